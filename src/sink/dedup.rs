//! Exactly once per (event_id, recipient_account_id). CloudTrail re-delivers files, and a
//! cross-account call is logged once in each account (those copies differ in recipient, so
//! both are kept).
//!
//! Keys (a 128-bit hash, 16 bytes) are kept per lake partition (account, date), in one slot
//! per hour of eventTime: a re-delivered event has the same eventTime and recipient, so every
//! copy of it meets the others in the same slot. The first time a run touches a partition, the
//! keys of its existing Parquet files are loaded; this is also what makes a killed run safe to
//! repeat.
//!
//! A record's partition depends on the record alone (a record without a valid recipient goes
//! to `account_id=unknown`, wherever its file was found), so copies read from two places meet
//! in one slot too. Copies of one key that land in two slots (a hand-edited copy with another
//! eventTime; a record without a valid recipient stored under its file's account by a version
//! before that rule) are caught within a run by
//! a Bloom filter over the run's most recent keys (the last 2-4 million), checked exactly
//! against the other slots on a "maybe". The filter has a fixed size, so that memory does not
//! grow with the length of a run (over all keys it was 3 bytes a key: 300 MB for 100M events);
//! files are visited account by account and day by day, so such copies, which come from the
//! same account's logs, are near each other in a run. Copies in one slot, which is every copy
//! CloudTrail itself delivers again, are always caught, in a run and across runs.
//!
//! Memory is bounded: when the slots outgrow the budget, the least recently used ones are
//! written, sorted, to a spill file, searched there on a "maybe" (one page read) and read back
//! if a record for their hour arrives again. Ingest visits files account by account and day by
//! day in delivery order, so a run works on the last hour or two of a partition at a time, and
//! the resident keys stay within the budget however busy a day is (with whole partitions as
//! the unit, a busy account's day alone outgrew it: BENCHMARKS.md, "Deduplication memory").

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimestampMicrosecondType};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::remote::RemoteLake;
use crate::error::SinkError;
use crate::lake::partition::{PartitionKey, is_account_id};
use crate::lake::schema::KEY_COLUMNS;

type KeySet = HashSet<u128, BuildHasherDefault<PrehashedKey>>;

/// Bytes a key set costs per key of capacity: the key, a control byte, and the slack of a
/// table that is at most 7/8 full.
const BYTES_PER_KEY: usize = 20;

/// Slots of a partition: one per hour of the day.
const SLOTS: usize = 24;

const MICROS_PER_HOUR: i64 = 3_600_000_000;

/// The slot of an event time (microseconds since the epoch): its hour of the day, UTC.
fn slot_of(event_time: i64) -> usize {
    (event_time.rem_euclid(24 * MICROS_PER_HOUR) / MICROS_PER_HOUR) as usize
}

/// Keys per page of a spilled slot (4 KiB): a lookup reads one page.
const KEYS_PER_PAGE: usize = 256;

/// The keys of one slot, wherever they are at the moment.
enum Keys {
    Resident(KeySet),
    Spilled(SpilledKeys),
}

impl Default for Keys {
    fn default() -> Self {
        Keys::Resident(KeySet::default())
    }
}

/// A slot's keys in the spill file: `count` keys in ascending order from `offset`, 16 bytes
/// each, and the first key of every page in memory.
struct SpilledKeys {
    offset: u64,
    count: usize,
    page_firsts: Vec<u128>,
}

/// One hour of a partition's keys.
#[derive(Default)]
struct KeySlot {
    keys: Mutex<Keys>,
    resident_bytes: AtomicUsize,
    last_used: AtomicU64,
}

impl KeySlot {
    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One partition's keys. Workers hold an `Arc` of the partition they are writing to, which
/// keeps the slot they write to from being spilled under them.
pub struct PartitionKeys {
    partition: PartitionKey,
    /// Set once the lake's existing keys of the partition are in the slots.
    loaded: AtomicBool,
    loading: Mutex<()>,
    /// The slot the partition's last key went to.
    current: AtomicUsize,
    slots: [KeySlot; SLOTS],
}

/// A Bloom filter over this run's most recent keys, in two generations of fixed size: when the
/// newer is full the older is dropped and a new one begun, so it holds the last one to two
/// generations of keys (2-4M over all shards) in at most 12.6 MB, 3 bytes a key, and answers
/// "maybe" for about 1 key in 15,000 unseen per generation. The filter is blocked: all of a
/// key's bits are in one 64-byte block, so a lookup touches one cache line per generation (a
/// classic filter's 14 scattered bits cost 14 cache misses a key once the filter outgrows the
/// cache). The keys are 128-bit hashes already: 32 bits of the key pick the block and ten
/// independent 9-bit slices of the other 96 pick the bits.
#[derive(Default)]
struct SeenFilter {
    generations: VecDeque<FilterLayer>,
}

/// 512 bits: one cache line.
type FilterBlock = [u64; 8];

struct FilterLayer {
    blocks: Vec<FilterBlock>,
    capacity: usize,
    count: usize,
}

const FILTER_BITS_PER_KEY: usize = 24;
/// Keys in one generation of a shard (the filter is split in [`FILTER_SHARDS`] shards): 2Mi
/// keys a generation over all shards, 6.3 MB. Allocated zeroed, so its pages cost memory only
/// once keys reach them.
const FILTER_GENERATION_CAPACITY: usize = 1 << 18;
/// Generations kept: the newest, filling, and the one before it.
const FILTER_GENERATIONS: usize = 2;
/// Shards of the filter, each behind its own lock, so that workers rarely wait for each other;
/// a key always goes to the same shard.
const FILTER_SHARDS: usize = 8;

impl FilterLayer {
    fn new(capacity: usize) -> Self {
        let bits = capacity * FILTER_BITS_PER_KEY;
        FilterLayer {
            blocks: vec![[0; 8]; bits.div_ceil(512)],
            capacity,
            count: 0,
        }
    }

    fn block(&self, hash: u128) -> usize {
        (u64::from(hash as u32) % self.blocks.len() as u64) as usize
    }

    fn contains(&self, hash: u128) -> bool {
        let block = &self.blocks[self.block(hash)];
        block_bits(hash).all(|bit| block[bit / 64] & (1 << (bit % 64)) != 0)
    }

    fn add(&mut self, hash: u128) {
        let index = self.block(hash);
        let block = &mut self.blocks[index];
        for bit in block_bits(hash) {
            block[bit / 64] |= 1 << (bit % 64);
        }
        self.count += 1;
    }
}

/// The ten bits of a key within its block: 9-bit slices of the key above its block bits.
fn block_bits(hash: u128) -> impl Iterator<Item = usize> {
    let (high, middle) = ((hash >> 64) as u64, (hash >> 32) as u32);
    let from_high = (0..7).map(move |i| (high >> (9 * i)) as usize & 511);
    let from_middle = (0..3).map(move |i| (middle >> (9 * i)) as usize & 511);
    from_high.chain(from_middle)
}

impl SeenFilter {
    /// Adds the key; true when it may have been added before.
    fn insert(&mut self, hash: u128) -> bool {
        if self.generations.iter().any(|layer| layer.contains(hash)) {
            return true;
        }
        let full = self
            .generations
            .back()
            .is_none_or(|l| l.count >= l.capacity);
        if full {
            if self.generations.len() == FILTER_GENERATIONS {
                self.generations.pop_front();
            }
            let newest = FilterLayer::new(FILTER_GENERATION_CAPACITY);
            self.generations.push_back(newest);
        }
        if let Some(layer) = self.generations.back_mut() {
            layer.add(hash);
        }
        false
    }
}

/// The keys seen so far, shared by all workers.
pub struct DedupIndex {
    events_dir: PathBuf,
    /// For a lake on S3: where the partitions' existing keys are read from.
    remote: Option<Arc<RemoteLake>>,
    partitions: Mutex<HashMap<PartitionKey, Arc<PartitionKeys>>>,
    /// Every key this run has offered, across partitions, in shards.
    filter: Vec<Mutex<SeenFilter>>,
    budget_bytes: usize,
    resident_bytes: AtomicUsize,
    clock: AtomicU64,
    spill: SpillFile,
    spills: AtomicUsize,
}

impl DedupIndex {
    /// `spill_parent` is a folder on the lake's disk for the spill file.
    pub fn new(
        events_dir: &Path,
        remote: Option<Arc<RemoteLake>>,
        spill_parent: &Path,
        budget_bytes: usize,
    ) -> Self {
        DedupIndex {
            events_dir: events_dir.to_path_buf(),
            remote,
            partitions: Mutex::default(),
            filter: (0..FILTER_SHARDS).map(|_| Mutex::default()).collect(),
            budget_bytes,
            resident_bytes: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            spill: SpillFile::new(spill_parent),
            spills: AtomicUsize::new(0),
        }
    }

    /// The partition's keys, to pass to [`DedupIndex::insert_key`]; hold them while writing
    /// to that partition.
    pub fn partition(&self, partition: &PartitionKey) -> Arc<PartitionKeys> {
        let mut partitions = self
            .partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        partitions
            .entry(partition.clone())
            .or_insert_with(|| {
                Arc::new(PartitionKeys {
                    partition: partition.clone(),
                    loaded: AtomicBool::new(false),
                    loading: Mutex::new(()),
                    current: AtomicUsize::new(usize::MAX),
                    slots: Default::default(),
                })
            })
            .clone()
    }

    /// True the first time a key is offered (the row is new), false for a duplicate.
    /// `event_time` is the record's, in microseconds since the epoch.
    pub fn insert_key(
        &self,
        part: &Arc<PartitionKeys>,
        event_id: &str,
        recipient: Option<&str>,
        event_time: i64,
    ) -> Result<bool, SinkError> {
        self.load_once(part)?;
        let hash = key_hash(event_id, recipient);
        let hour = slot_of(event_time);
        let slot = &part.slots[hour];
        // Both workers write the same partitions: storing only changes keeps the cache line
        // shared between the cores instead of moving it at every row.
        if part.current.load(Ordering::Relaxed) != hour {
            part.current.store(hour, Ordering::Relaxed);
        }
        let (inserted, grew) = {
            let mut keys = slot.lock();
            let set = self.resident(&mut keys)?;
            let inserted = set.insert(hash);
            let grew = self.account(slot, set.capacity() * BYTES_PER_KEY);
            (inserted, grew)
        };
        self.touch(slot);
        // Only when a set was read back or grew (rare: tables double), not at every key.
        if grew && self.resident_bytes.load(Ordering::Relaxed) > self.budget_bytes {
            self.spill_to_budget()?;
        }
        let any_account = !recipient.is_some_and(is_account_id);
        Ok(inserted && !self.seen_elsewhere(part, hour, hash, any_account)?)
    }

    /// Makes `slot` the most recently used. The clock advances only when the most recent slot
    /// changes (consecutive keys nearly always share their slot), so that the workers do not
    /// write the shared clock at every row.
    fn touch(&self, slot: &KeySlot) {
        if slot.last_used.load(Ordering::Relaxed) != self.clock.load(Ordering::Relaxed) {
            let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
            slot.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// Whether this run already wrote the key to another slot: copies that disagree on
    /// eventTime (hand-edited logs) or on the file's account (records without a valid
    /// recipient). The filter answers "no" for nearly every key; only a "maybe" looks at the
    /// other slots of the account (of every account when the recipient is not valid).
    fn seen_elsewhere(
        &self,
        part: &Arc<PartitionKeys>,
        hour: usize,
        hash: u128,
        any_account: bool,
    ) -> Result<bool, SinkError> {
        // Held through the check, so that two workers offering the same key to two slots
        // cannot both find it absent.
        let shard = (hash >> 59) as usize % FILTER_SHARDS; // bits no filter bit comes from
        let mut filter = self.filter[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !filter.insert(hash) {
            return Ok(false);
        }
        let candidates: Vec<Arc<PartitionKeys>> = {
            let partitions = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            partitions
                .values()
                .filter(|other| {
                    any_account || other.partition.account() == part.partition.account()
                })
                .cloned()
                .collect()
        };
        for other in candidates {
            for (other_hour, slot) in other.slots.iter().enumerate() {
                if Arc::ptr_eq(&other, part) && other_hour == hour {
                    continue;
                }
                if self.slot_contains(slot, hash)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn slot_contains(&self, slot: &KeySlot, hash: u128) -> Result<bool, SinkError> {
        match &*slot.lock() {
            Keys::Resident(set) => Ok(set.contains(&hash)),
            Keys::Spilled(spilled) => self.spill.contains(spilled, hash),
        }
    }

    /// Both steps at once, for callers that do not hold the partition.
    #[cfg(test)]
    pub fn first_sighting(
        &self,
        partition: &PartitionKey,
        event_id: &str,
        recipient: Option<&str>,
        event_time: i64,
    ) -> Result<bool, SinkError> {
        self.insert_key(&self.partition(partition), event_id, recipient, event_time)
    }

    /// How many times a slot's keys were written out to make room.
    pub fn spills(&self) -> usize {
        self.spills.load(Ordering::Relaxed)
    }

    /// The slot's set in memory, read back from the spill file if it was spilled.
    fn resident<'k>(&self, keys: &'k mut Keys) -> Result<&'k mut KeySet, SinkError> {
        if let Keys::Spilled(spilled) = keys {
            *keys = Keys::Resident(self.spill.read(spilled)?);
        }
        match keys {
            Keys::Resident(set) => Ok(set),
            Keys::Spilled(_) => unreachable!("read back above"),
        }
    }

    /// Records a slot's new resident size in the shared total; true when it grew.
    fn account(&self, slot: &KeySlot, bytes: usize) -> bool {
        let before = slot.resident_bytes.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            self.resident_bytes
                .fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            self.resident_bytes
                .fetch_sub(before - bytes, Ordering::Relaxed);
        }
        bytes > before
    }

    /// Spills the least recently used slots down to 3/4 of the budget (so that the next
    /// spill is some keys away), sparing the slot each held partition is writing to.
    fn spill_to_budget(&self) -> Result<(), SinkError> {
        let target = self.budget_bytes / 4 * 3;
        let mut victims: Vec<(u64, Arc<PartitionKeys>, usize)> = {
            let partitions = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let mut victims = Vec::new();
            for part in partitions.values() {
                // Before any clone below: the map's reference plus the workers'.
                let spared =
                    (Arc::strong_count(part) > 1).then(|| part.current.load(Ordering::Relaxed));
                for (hour, slot) in part.slots.iter().enumerate() {
                    if slot.resident_bytes.load(Ordering::Relaxed) > 0 && spared != Some(hour) {
                        let last_used = slot.last_used.load(Ordering::Relaxed);
                        victims.push((last_used, part.clone(), hour));
                    }
                }
            }
            victims
        };
        victims.sort_unstable_by_key(|(last_used, _, _)| *last_used);
        for (_, part, hour) in victims {
            if self.resident_bytes.load(Ordering::Relaxed) <= target {
                break;
            }
            self.spill_slot(&part.slots[hour])?;
        }
        Ok(())
    }

    /// Writes a slot's keys to the spill file, unless it is in use right now.
    fn spill_slot(&self, slot: &KeySlot) -> Result<(), SinkError> {
        let Ok(mut keys) = slot.keys.try_lock() else {
            return Ok(()); // being used right now: not a victim after all
        };
        let Keys::Resident(set) = &*keys else {
            return Ok(());
        };
        let spilled = self.spill.write(set)?;
        *keys = Keys::Spilled(spilled);
        self.account(slot, 0);
        self.spills.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Loads the partition's existing keys the first time it is touched.
    fn load_once(&self, part: &PartitionKeys) -> Result<(), SinkError> {
        if part.loaded.load(Ordering::Acquire) {
            return Ok(());
        }
        let _loading = part.loading.lock().unwrap_or_else(PoisonError::into_inner);
        if part.loaded.load(Ordering::Acquire) {
            return Ok(()); // another worker loaded it meanwhile
        }
        self.load_partition(part)?;
        part.loaded.store(true, Ordering::Release);
        Ok(())
    }

    /// Puts the keys of a partition's existing rows into its slots (none for a partition the
    /// lake has not seen), keeping to the budget file by file.
    fn load_partition(&self, part: &PartitionKeys) -> Result<(), SinkError> {
        let dir = part.partition.dir(&self.events_dir);
        let loaded = match &self.remote {
            Some(remote) => {
                let mut spill_error = None;
                let listed = remote.partition_keys(&part.partition, |batch| {
                    let result = self.insert_existing(part, batch);
                    if let Err(error) = result {
                        spill_error.get_or_insert(error);
                    }
                });
                listed.and(spill_error.map_or(Ok(()), Err))
            }
            None => self.load_local_partition(part, &dir),
        };
        loaded.map_err(|error| SinkError::Io {
            op: "reading existing keys of",
            path: dir,
            source: std::io::Error::other(error.to_string()),
        })
    }

    fn load_local_partition(&self, part: &PartitionKeys, dir: &Path) -> Result<(), SinkError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(()); // a partition this lake has not seen yet
        };
        for entry in entries {
            let path = entry.map_err(SinkError::io("listing", dir))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".parquet") && !name.starts_with('.') {
                self.load_file(part, &path)?;
            }
        }
        Ok(())
    }

    fn load_file(&self, part: &PartitionKeys, path: &Path) -> Result<(), SinkError> {
        let parquet_error = |source| SinkError::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(SinkError::io("opening", path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), KEY_COLUMNS);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(parquet_error)?;
        for batch in reader {
            let batch = batch.map_err(|source| SinkError::Arrow {
                path: path.to_path_buf(),
                source,
            })?;
            self.insert_existing(part, &batch)?;
        }
        Ok(())
    }

    /// Remembers the keys of a batch of existing rows (event_id, recipient_account_id, in the
    /// slot of their event_time).
    fn insert_existing(&self, part: &PartitionKeys, batch: &RecordBatch) -> Result<(), SinkError> {
        let column = |name| batch.column_by_name(name);
        // Files written before text became views hold Utf8; the cast to views copies no text.
        let text = |name| column(name).and_then(|c| cast(c, &DataType::Utf8View).ok());
        let (Some(ids), Some(recipients)) = (text("event_id"), text("recipient_account_id")) else {
            return Ok(());
        };
        let (Some(ids), Some(recipients), Some(times)) = (
            ids.as_string_view_opt(),
            recipients.as_string_view_opt(),
            column("event_time").and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
        ) else {
            return Ok(());
        };
        let mut grew = false;
        for row in 0..batch.num_rows() {
            let recipient = recipients.is_valid(row).then(|| recipients.value(row));
            let slot = &part.slots[slot_of(times.value(row))];
            let mut keys = slot.lock();
            let set = self.resident(&mut keys)?;
            set.insert(key_hash(ids.value(row), recipient));
            grew |= self.account(slot, set.capacity() * BYTES_PER_KEY);
        }
        if grew && self.resident_bytes.load(Ordering::Relaxed) > self.budget_bytes {
            self.spill_to_budget()?;
        }
        Ok(())
    }
}

/// The run's spill file: the keys of spilled slots, one sorted run after another. It has no
/// name (created unlinked), so it disappears with the process however the run ends.
struct SpillFile {
    parent: PathBuf,
    file: Mutex<Option<Arc<File>>>,
    end: AtomicU64,
}

impl SpillFile {
    fn new(parent: &Path) -> Self {
        SpillFile {
            parent: parent.to_path_buf(),
            file: Mutex::default(),
            end: AtomicU64::new(0),
        }
    }

    fn file(&self) -> Result<Arc<File>, SinkError> {
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(file) = &*file {
            return Ok(file.clone());
        }
        let created = tempfile::tempfile_in(&self.parent)
            .map_err(SinkError::io("creating a spill file in", &self.parent))?;
        Ok(file.insert(Arc::new(created)).clone())
    }

    fn write(&self, set: &KeySet) -> Result<SpilledKeys, SinkError> {
        let mut keys: Vec<u128> = set.iter().copied().collect();
        keys.sort_unstable();
        let bytes: Vec<u8> = keys.iter().flat_map(|key| key.to_le_bytes()).collect();
        let offset = self.end.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.file()?
            .write_all_at(&bytes, offset)
            .map_err(SinkError::io("writing", &self.parent))?;
        Ok(SpilledKeys {
            offset,
            count: keys.len(),
            page_firsts: keys.iter().step_by(KEYS_PER_PAGE).copied().collect(),
        })
    }

    fn read(&self, spilled: &SpilledKeys) -> Result<KeySet, SinkError> {
        let mut bytes = vec![0; spilled.count * 16];
        self.file()?
            .read_exact_at(&mut bytes, spilled.offset)
            .map_err(SinkError::io("reading the spill file in", &self.parent))?;
        let mut set = KeySet::with_capacity_and_hasher(spilled.count, Default::default());
        set.extend(bytes.chunks_exact(16).map(key_from_bytes));
        Ok(set)
    }

    /// Whether the spilled keys hold `hash`: one page read and a binary search.
    fn contains(&self, spilled: &SpilledKeys, hash: u128) -> Result<bool, SinkError> {
        let page = spilled.page_firsts.partition_point(|&first| first <= hash);
        let Some(page) = page.checked_sub(1) else {
            return Ok(false); // below the smallest key
        };
        let first = page * KEYS_PER_PAGE;
        let count = KEYS_PER_PAGE.min(spilled.count - first);
        let mut bytes = [0; KEYS_PER_PAGE * 16];
        let bytes = &mut bytes[..count * 16];
        self.file()?
            .read_exact_at(bytes, spilled.offset + (first * 16) as u64)
            .map_err(SinkError::io("reading the spill file in", &self.parent))?;
        let keys: Vec<u128> = bytes.chunks_exact(16).map(key_from_bytes).collect();
        Ok(keys.binary_search(&hash).is_ok())
    }
}

fn key_from_bytes(bytes: &[u8]) -> u128 {
    let mut key = [0; 16];
    key.copy_from_slice(bytes);
    u128::from_le_bytes(key)
}

/// 128 bits of XXH3 over the key: collisions are out of reach at any realistic lake size.
fn key_hash(event_id: &str, recipient: Option<&str>) -> u128 {
    // One call over the key laid out on the stack (the same bytes the streaming hasher would
    // see, so the same hash): a streaming hasher's setup costs more than hashing a short key.
    let mut bytes = [0u8; 96];
    let id = event_id.as_bytes();
    let (separator, account) = match recipient {
        Some(account) => (0u8, account.as_bytes()),
        None => (1u8, &[][..]),
    };
    let length = id.len() + 1 + account.len();
    if length <= bytes.len() {
        bytes[..id.len()].copy_from_slice(id);
        bytes[id.len()] = separator;
        bytes[id.len() + 1..length].copy_from_slice(account);
        return xxh3_128(&bytes[..length]);
    }
    let mut hasher = Xxh3::new();
    hasher.update(event_id.as_bytes());
    match recipient {
        Some(account) => {
            hasher.update(&[0]);
            hasher.update(account.as_bytes());
        }
        None => hasher.update(&[1]),
    }
    hasher.digest128()
}

/// The keys are hashes already: hash them again by taking their low bits.
#[derive(Default)]
pub struct PrehashedKey(u64);

impl Hasher for PrehashedKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 = (value >> 64) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = MICROS_PER_HOUR;

    fn day(d: u32) -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    /// Microseconds at `hour` o'clock of 2024-03-`d`.
    fn at(d: u32, hour: i64) -> i64 {
        day(d)
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros()
            + hour * HOUR
    }

    #[test]
    fn keys_are_per_recipient() {
        let index = DedupIndex::new(
            Path::new("/nonexistent"),
            None,
            Path::new("/nonexistent"),
            64 << 20,
        );
        let part = PartitionKey::new(Some("111122223333"), day(1));
        let time = at(1, 5);
        let offer = |recipient| index.first_sighting(&part, "e1", recipient, time).unwrap();
        assert!(offer(Some("111122223333")));
        assert!(!offer(Some("111122223333")));
        assert!(offer(Some("222233334444")));
        assert!(offer(None));
        assert!(!offer(None));
    }

    #[test]
    fn slots_are_hours_of_the_day() {
        assert_eq!(slot_of(at(1, 0)), 0);
        assert_eq!(slot_of(at(1, 1) - 1), 0);
        assert_eq!(slot_of(at(1, 23)), 23);
        assert_eq!(slot_of(at(2, 0)), 0);
        // Before the epoch too.
        assert_eq!(slot_of(-1), 23);
    }

    #[test]
    fn spilled_slots_still_catch_duplicates() {
        let spill = tempfile::tempdir().unwrap();
        // A budget of one byte: every slot not being written is spilled at the next growth.
        let index = DedupIndex::new(Path::new("/nonexistent"), None, spill.path(), 1);
        let parts: Vec<PartitionKey> = (1..=3)
            .map(|d| PartitionKey::new(Some("111122223333"), day(d)))
            .collect();
        for round in 0..2 {
            for (d, part) in (1..=3).zip(&parts) {
                for n in 0..3000 {
                    let id = format!("e{d}-{n}");
                    let time = at(d, n % 24);
                    let new = index
                        .first_sighting(part, &id, Some("111122223333"), time)
                        .unwrap();
                    assert_eq!(new, round == 0, "round {round} {part:?} {id}");
                }
            }
        }
        assert!(index.spills() >= 100, "spilled {} times", index.spills());
        drop(index);
        let left = std::fs::read_dir(spill.path()).unwrap().count();
        assert_eq!(left, 0, "nothing left behind");
    }

    #[test]
    fn spilled_keys_are_found_on_their_page() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillFile::new(dir.path());
        let set: KeySet = (0..10_000u64)
            .map(|n| key_hash(&format!("k{n}"), None))
            .collect();
        let spilled = spill.write(&set).unwrap();
        assert_eq!(
            spilled.page_firsts.len(),
            10_000usize.div_ceil(KEYS_PER_PAGE)
        );
        for key in &set {
            assert!(spill.contains(&spilled, *key).unwrap());
        }
        for n in 0..10_000u64 {
            let absent = key_hash(&format!("absent{n}"), None);
            assert!(!spill.contains(&spilled, absent).unwrap());
        }
        assert!(!spill.contains(&spilled, 0).unwrap());
        assert!(!spill.contains(&spilled, u128::MAX).unwrap());
        // A second run after the first; both read back whole.
        let other: KeySet = [1, 2, 3].into_iter().collect();
        let second = spill.write(&other).unwrap();
        assert_eq!(spill.read(&second).unwrap(), other);
        assert_eq!(spill.read(&spilled).unwrap(), set);
    }

    #[test]
    fn a_key_in_two_slots_is_kept_once() {
        let spill = tempfile::tempdir().unwrap();
        let index = DedupIndex::new(Path::new("/nonexistent"), None, spill.path(), 1);
        let first = PartitionKey::new(Some("111122223333"), day(1));
        let second = PartitionKey::new(Some("111122223333"), day(2));
        for n in 0..5000 {
            let id = format!("e{n}");
            let time = at(1, n % 24);
            assert!(
                index
                    .first_sighting(&first, &id, Some("111122223333"), time)
                    .unwrap()
            );
        }
        assert!(index.first_sighting(&second, "f1", None, at(2, 0)).unwrap());
        // The first partition's slots are spilled by now (budget of one byte); their keys
        // still count, on another day and in another hour of the same day.
        assert!(index.spills() >= 1);
        let recipient = Some("111122223333");
        assert!(
            !index
                .first_sighting(&second, "e42", recipient, at(2, 3))
                .unwrap()
        );
        assert!(
            !index
                .first_sighting(&first, "e43", recipient, at(1, 0))
                .unwrap()
        );
        assert!(
            index
                .first_sighting(&second, "e42", Some("999988887777"), at(2, 3))
                .unwrap()
        );
        // Without a valid recipient a record may sit in any account's partition (lakes written
        // before such records went to `unknown` hold them under their file's account).
        let odd = PartitionKey::new(Some("444455556666"), day(1));
        let other = PartitionKey::new(None, day(1));
        assert!(index.first_sighting(&odd, "x1", None, at(1, 1)).unwrap());
        assert!(!index.first_sighting(&other, "x1", None, at(1, 1)).unwrap());
    }

    #[test]
    fn key_hashes_are_the_hashes_of_the_key_bytes() {
        let streamed = |id: &str, recipient: Option<&str>| {
            let mut hasher = Xxh3::new();
            hasher.update(id.as_bytes());
            match recipient {
                Some(account) => {
                    hasher.update(&[0]);
                    hasher.update(account.as_bytes());
                }
                None => hasher.update(&[1]),
            }
            hasher.digest128()
        };
        let long = "x".repeat(200);
        for id in ["e1", "", long.as_str()] {
            for recipient in [None, Some("111122223333"), Some("")] {
                assert_eq!(key_hash(id, recipient), streamed(id, recipient));
            }
        }
        assert_ne!(key_hash("e1", None), key_hash("e1", Some("")));
    }

    #[test]
    fn the_filter_remembers_the_recent_keys_in_a_fixed_size() {
        let mut filter = SeenFilter::default();
        let capacity = FILTER_GENERATION_CAPACITY;
        let keys: Vec<u128> = (0..3 * capacity as u64)
            .map(|n| key_hash(&format!("k{n}"), None))
            .collect();
        let maybes = keys.iter().filter(|&&key| filter.insert(key)).count();
        assert!(
            maybes < 300,
            "{maybes} false maybes in {} new keys",
            keys.len()
        );
        assert_eq!(
            filter.generations.len(),
            2,
            "the oldest generation is dropped"
        );
        let recent = &keys[2 * capacity..];
        assert!(
            recent.iter().all(|&key| filter.insert(key)),
            "every key of the last generation is remembered"
        );
        let forgotten = keys[..capacity]
            .iter()
            .filter(|&&key| !filter.generations.iter().any(|l| l.contains(key)))
            .count();
        assert!(forgotten > capacity - 100, "the first generation is gone");
    }
}
