//! Exactly once per (event_id, recipient_account_id). CloudTrail re-delivers files, and a
//! cross-account call is logged once in each account (those copies differ in recipient, so
//! both are kept).
//!
//! Keys (a 128-bit hash, 16 bytes) are kept per lake partition (account, date): a re-delivered
//! event has the same eventTime and recipient, so every copy of it lands in the same partition.
//! The first time a run touches a partition, the keys of its existing Parquet files are loaded;
//! this is also what makes a killed run safe to repeat.
//!
//! Copies of one key that land in two partitions (a hand-edited copy with another eventTime
//! date, a record without a valid recipient read from two accounts' files) are caught within a
//! run by a Bloom filter over all of the run's keys, checked exactly against the other
//! partitions on a "maybe".
//!
//! Memory is bounded: when the partitions' key sets outgrow the budget, the least recently used
//! ones that no worker holds are written to a spill file on disk and read back if touched again.
//! Ingest visits files grouped by account and day, so a partition is usually finished by the time
//! it is spilled; the resident set is the budget, or the largest single partition if bigger.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arrow::array::{Array, AsArray, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::partition::{PartitionKey, is_account_id};
use super::remote::RemoteLake;
use crate::error::SinkError;

type KeySet = HashSet<u128, BuildHasherDefault<PrehashedKey>>;

/// Bytes a key set costs per slot of capacity: the key, a control byte, and the slack of a
/// table that is at most 7/8 full.
const BYTES_PER_SLOT: usize = 20;

/// The keys of one partition, wherever they are at the moment.
enum Keys {
    /// The lake's existing keys have not been read yet.
    NotLoaded,
    Resident(KeySet),
    /// Written to `path` (16 bytes a key) to make room.
    Spilled {
        path: PathBuf,
        count: usize,
    },
}

/// One partition's keys. Workers hold an `Arc` of the partition they are writing to, which is
/// what keeps it from being spilled under them.
pub struct PartitionKeys {
    partition: PartitionKey,
    keys: Mutex<Keys>,
    resident_bytes: AtomicUsize,
    last_used: AtomicU64,
}

impl PartitionKeys {
    fn lock(&self) -> MutexGuard<'_, Keys> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the partition holds the key, wherever its keys are.
    fn contains(&self, hash: u128) -> Result<bool, SinkError> {
        match &*self.lock() {
            Keys::NotLoaded => Ok(false),
            Keys::Resident(set) => Ok(set.contains(&hash)),
            Keys::Spilled { path, .. } => {
                let bytes = std::fs::read(path).map_err(SinkError::io("reading", path))?;
                let wanted = hash.to_le_bytes();
                Ok(bytes.chunks_exact(16).any(|key| key == wanted))
            }
        }
    }
}

/// A Bloom filter over this run's keys, in layers that double in size as keys arrive, so that
/// it needs no size up front: 3 bytes a key, and "maybe" for about 1 key in 15,000
/// unseen per layer. The filter is blocked: all of a key's bits are in one 64-byte block, so a lookup
/// touches one cache line per layer (a classic filter's 14 scattered bits cost 14 cache misses
/// a key once the filter outgrows the cache). The keys are 128-bit hashes already: 32 bits of
/// the key pick the block and ten independent 9-bit slices of the other 96 pick the bits.
#[derive(Default)]
struct SeenFilter {
    layers: Vec<FilterLayer>,
}

/// 512 bits: one cache line.
type FilterBlock = [u64; 8];

struct FilterLayer {
    blocks: Vec<FilterBlock>,
    capacity: usize,
    count: usize,
}

const FILTER_BITS_PER_KEY: usize = 24;
/// Keys in a shard's first layer (the filter is split in [`FILTER_SHARDS`] shards).
const FILTER_FIRST_CAPACITY: usize = 1 << 17;
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
        if self.layers.iter().any(|layer| layer.contains(hash)) {
            return true;
        }
        let full = self.layers.last().is_none_or(|l| l.count >= l.capacity);
        if full {
            let capacity = self
                .layers
                .last()
                .map_or(FILTER_FIRST_CAPACITY, |l| l.capacity * 2);
            self.layers.push(FilterLayer::new(capacity));
        }
        if let Some(layer) = self.layers.last_mut() {
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
    /// Where spill files go (created on first use, removed at the end of the run).
    spill_parent: PathBuf,
    spill_dir: Mutex<Option<tempfile::TempDir>>,
    spills: AtomicUsize,
}

impl DedupIndex {
    /// `spill_parent` is a folder on the lake's disk for spill files.
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
            spill_parent: spill_parent.to_path_buf(),
            spill_dir: Mutex::default(),
            spills: AtomicUsize::new(0),
        }
    }

    /// The partition's key set, to pass to [`DedupIndex::insert_key`]; hold it while writing
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
                    keys: Mutex::new(Keys::NotLoaded),
                    resident_bytes: AtomicUsize::new(0),
                    last_used: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// True the first time a key is offered (the row is new), false for a duplicate.
    pub fn insert_key(
        &self,
        part: &Arc<PartitionKeys>,
        event_id: &str,
        recipient: Option<&str>,
    ) -> Result<bool, SinkError> {
        let hash = key_hash(event_id, recipient);
        let (inserted, grew) = {
            let mut keys = part.lock();
            let set = self.resident(part, &mut keys)?;
            let inserted = set.insert(hash);
            let grew = self.account(part, set.capacity() * BYTES_PER_SLOT);
            (inserted, grew)
        };
        part.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        // Only when a set was loaded or grew (rare: tables double), not at every key.
        if grew && self.resident_bytes.load(Ordering::Relaxed) > self.budget_bytes {
            self.spill_to_budget()?;
        }
        let any_account = !recipient.is_some_and(is_account_id);
        Ok(inserted && !self.seen_elsewhere(part, hash, any_account)?)
    }

    /// Whether this run already wrote the key to another partition: copies that disagree on
    /// eventTime's date (hand-edited logs) or on the file's account (records without a valid
    /// recipient). The filter answers "no" for nearly every key; only a "maybe" looks at the
    /// other partitions of the account (of every account when the recipient is not valid).
    fn seen_elsewhere(
        &self,
        part: &Arc<PartitionKeys>,
        hash: u128,
        any_account: bool,
    ) -> Result<bool, SinkError> {
        // Held through the check, so that two workers offering the same key to two partitions
        // cannot both find it absent.
        let shard = (hash >> 59) as usize % FILTER_SHARDS; // bits no filter bit comes from
        let mut filter = self.filter[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !filter.insert(hash) {
            return Ok(false);
        }
        let others: Vec<Arc<PartitionKeys>> = {
            let partitions = self
                .partitions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            partitions
                .values()
                .filter(|other| !Arc::ptr_eq(other, part))
                .filter(|other| {
                    any_account || other.partition.account() == part.partition.account()
                })
                .cloned()
                .collect()
        };
        for other in others {
            if other.contains(hash)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Both steps at once, for callers that do not hold the partition.
    #[cfg(test)]
    pub fn first_sighting(
        &self,
        partition: &PartitionKey,
        event_id: &str,
        recipient: Option<&str>,
    ) -> Result<bool, SinkError> {
        self.insert_key(&self.partition(partition), event_id, recipient)
    }

    /// How many times a partition's keys were written out to make room.
    pub fn spills(&self) -> usize {
        self.spills.load(Ordering::Relaxed)
    }

    /// The partition's set in memory: loaded from the lake the first time, from its spill file
    /// after a spill.
    fn resident<'k>(
        &self,
        part: &PartitionKeys,
        keys: &'k mut Keys,
    ) -> Result<&'k mut KeySet, SinkError> {
        match keys {
            Keys::Resident(_) => {}
            Keys::NotLoaded => *keys = Keys::Resident(self.load_partition(&part.partition)?),
            Keys::Spilled { path, count } => {
                let set = read_spill(path, *count)?;
                let _ = std::fs::remove_file(&*path);
                *keys = Keys::Resident(set);
            }
        }
        match keys {
            Keys::Resident(set) => Ok(set),
            _ => unreachable!("made resident above"),
        }
    }

    /// Records a partition's new resident size in the shared total; true when it grew.
    fn account(&self, part: &PartitionKeys, bytes: usize) -> bool {
        let before = part.resident_bytes.swap(bytes, Ordering::Relaxed);
        if bytes >= before {
            self.resident_bytes
                .fetch_add(bytes - before, Ordering::Relaxed);
        } else {
            self.resident_bytes
                .fetch_sub(before - bytes, Ordering::Relaxed);
        }
        bytes > before
    }

    /// Spills least recently used partitions that no worker holds until the total fits.
    fn spill_to_budget(&self) -> Result<(), SinkError> {
        while self.resident_bytes.load(Ordering::Relaxed) > self.budget_bytes {
            let victim = {
                let partitions = self
                    .partitions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                partitions
                    .values()
                    .filter(|part| Arc::strong_count(part) == 1)
                    .filter(|part| part.resident_bytes.load(Ordering::Relaxed) > 0)
                    .min_by_key(|part| part.last_used.load(Ordering::Relaxed))
                    .cloned()
            };
            let Some(victim) = victim else {
                return Ok(()); // everything resident is in use: over budget until it is not
            };
            if !self.spill(&victim)? {
                return Ok(()); // taken by a worker meanwhile: try again at a later insert
            }
        }
        Ok(())
    }

    /// Writes a partition's keys out; false when it could not be done right now.
    fn spill(&self, part: &PartitionKeys) -> Result<bool, SinkError> {
        let Ok(mut keys) = part.keys.try_lock() else {
            return Ok(false); // being used right now: not a victim after all
        };
        let Keys::Resident(set) = &*keys else {
            return Ok(false);
        };
        let path = self.spill_path()?;
        write_spill(&path, set)?;
        let count = set.len();
        *keys = Keys::Spilled { path, count };
        self.account(part, 0);
        self.spills.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn spill_path(&self) -> Result<PathBuf, SinkError> {
        let mut dir = self
            .spill_dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if dir.is_none() {
            let created = tempfile::Builder::new()
                .prefix(".dedup-spill-")
                .tempdir_in(&self.spill_parent)
                .map_err(SinkError::io(
                    "creating a spill folder in",
                    &self.spill_parent,
                ))?;
            *dir = Some(created);
        }
        let number = self.spills.load(Ordering::Relaxed);
        let next = self.clock.fetch_add(1, Ordering::Relaxed);
        let folder = dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        Ok(folder.join(format!("{number}-{next}.keys")))
    }

    /// The keys of a partition's existing rows (none for a partition the lake has not seen).
    fn load_partition(&self, partition: &PartitionKey) -> Result<KeySet, SinkError> {
        let mut set = KeySet::default();
        let dir = partition.dir(&self.events_dir);
        let result = match &self.remote {
            Some(remote) => remote.partition_keys(partition, |batch| insert_batch(&mut set, batch)),
            None => load_local_partition(&dir, &mut set),
        };
        result.map_err(|error| SinkError::Io {
            op: "reading existing keys of",
            path: dir,
            source: std::io::Error::other(error.to_string()),
        })?;
        Ok(set)
    }
}

fn load_local_partition(dir: &Path, set: &mut KeySet) -> Result<(), SinkError> {
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
            load_file(&path, set)?;
        }
    }
    Ok(())
}

fn load_file(path: &Path, set: &mut KeySet) -> Result<(), SinkError> {
    let parquet_error = |source| SinkError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(SinkError::io("opening", path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let mask = ProjectionMask::columns(
        builder.parquet_schema(),
        ["event_id", "recipient_account_id"],
    );
    let reader = builder
        .with_projection(mask)
        .build()
        .map_err(parquet_error)?;
    for batch in reader {
        let batch = batch.map_err(|source| SinkError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        insert_batch(set, &batch);
    }
    Ok(())
}

/// Remembers the keys of a batch of existing rows (event_id, recipient_account_id).
fn insert_batch(set: &mut KeySet, batch: &RecordBatch) {
    let (Some(ids), Some(recipients)) = (
        batch
            .column_by_name("event_id")
            .and_then(|c| c.as_string_opt::<i32>()),
        batch
            .column_by_name("recipient_account_id")
            .and_then(|c| c.as_string_opt::<i32>()),
    ) else {
        return;
    };
    for row in 0..batch.num_rows() {
        let recipient = recipients.is_valid(row).then(|| recipients.value(row));
        set.insert(key_hash(ids.value(row), recipient));
    }
}

fn write_spill(path: &Path, set: &KeySet) -> Result<(), SinkError> {
    let file = File::create(path).map_err(SinkError::io("creating", path))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for key in set {
        out.write_all(&key.to_le_bytes())
            .map_err(SinkError::io("writing", path))?;
    }
    out.flush().map_err(SinkError::io("writing", path))
}

fn read_spill(path: &Path, count: usize) -> Result<KeySet, SinkError> {
    let mut bytes = Vec::with_capacity(count * 16);
    File::open(path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(SinkError::io("reading", path))?;
    let mut set = KeySet::with_capacity_and_hasher(count, BuildHasherDefault::default());
    for chunk in bytes.chunks_exact(16) {
        let mut key = [0u8; 16];
        key.copy_from_slice(chunk);
        set.insert(u128::from_le_bytes(key));
    }
    Ok(set)
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

    #[test]
    fn keys_are_per_recipient() {
        let index = DedupIndex::new(
            Path::new("/nonexistent"),
            None,
            Path::new("/nonexistent"),
            64 << 20,
        );
        let date = chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let part = PartitionKey::new(Some("111122223333"), None, date);
        assert!(
            index
                .first_sighting(&part, "e1", Some("111122223333"))
                .unwrap()
        );
        assert!(
            !index
                .first_sighting(&part, "e1", Some("111122223333"))
                .unwrap()
        );
        assert!(
            index
                .first_sighting(&part, "e1", Some("222233334444"))
                .unwrap()
        );
        assert!(index.first_sighting(&part, "e1", None).unwrap());
        assert!(!index.first_sighting(&part, "e1", None).unwrap());
    }

    #[test]
    fn spilled_partitions_still_catch_duplicates() {
        let spill = tempfile::tempdir().unwrap();
        // A budget of one byte: every partition not held is spilled at the next insert.
        let index = DedupIndex::new(Path::new("/nonexistent"), None, spill.path(), 1);
        let day = |d| chrono::NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
        let parts: Vec<PartitionKey> = (1..=3)
            .map(|d| PartitionKey::new(Some("111122223333"), None, day(d)))
            .collect();
        for round in 0..2 {
            for part in &parts {
                for n in 0..1000 {
                    let id = format!("e{}-{n}", part.date());
                    let new = index
                        .first_sighting(part, &id, Some("111122223333"))
                        .unwrap();
                    assert_eq!(new, round == 0, "round {round} {part:?} {id}");
                }
            }
        }
        assert!(index.spills() >= 4, "spilled {} times", index.spills());
        drop(index);
        let left = std::fs::read_dir(spill.path()).unwrap().count();
        assert_eq!(left, 0, "spill folder removed at the end");
    }

    #[test]
    fn a_key_in_two_partitions_is_kept_once() {
        let spill = tempfile::tempdir().unwrap();
        let index = DedupIndex::new(Path::new("/nonexistent"), None, spill.path(), 1);
        let day = |d| chrono::NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
        let first = PartitionKey::new(Some("111122223333"), None, day(1));
        let second = PartitionKey::new(Some("111122223333"), None, day(2));
        for n in 0..5000 {
            let id = format!("e{n}");
            assert!(
                index
                    .first_sighting(&first, &id, Some("111122223333"))
                    .unwrap()
            );
        }
        assert!(index.first_sighting(&second, "f1", None).unwrap());
        // The first partition is spilled by now (budget of one byte); its keys still count.
        assert!(index.spills() >= 1);
        assert!(
            !index
                .first_sighting(&second, "e42", Some("111122223333"))
                .unwrap()
        );
        assert!(
            index
                .first_sighting(&second, "e42", Some("999988887777"))
                .unwrap()
        );
        // Without a valid recipient the partition account comes from the file: any account.
        let odd = PartitionKey::new(None, Some("444455556666"), day(1));
        let other = PartitionKey::new(None, Some("777788889999"), day(1));
        assert!(index.first_sighting(&odd, "x1", None).unwrap());
        assert!(!index.first_sighting(&other, "x1", None).unwrap());
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
    fn the_filter_grows_and_forgets_nothing() {
        let mut filter = SeenFilter::default();
        let keys: Vec<u128> = (0..3_000_000u64)
            .map(|n| key_hash(&format!("k{n}"), None))
            .collect();
        let maybes = keys.iter().filter(|&&key| filter.insert(key)).count();
        assert!(maybes < 1000, "{maybes} false maybes in 3M new keys");
        assert!(
            keys.iter().all(|&key| filter.insert(key)),
            "every key is remembered"
        );
        // 128Ki, 256Ki, ... 2Mi keys: the first four hold 2Mi - 128Ki keys, the fifth the rest.
        assert_eq!(filter.layers.len(), 5);
    }
}
