//! Exactly once per (event_id, recipient_account_id). CloudTrail re-delivers files, and a
//! cross-account call is logged once in each account (those copies differ in recipient, so
//! both are kept).
//!
//! Within a run, every key is remembered (a 128-bit hash, 16 bytes a record). Against earlier
//! runs, a partition's existing keys are loaded from its Parquet files the first time the run
//! touches that partition: a re-delivered event has the same eventTime, so its earlier copy is in
//! the same (account, date) partition. This is also what makes a killed run safe to repeat.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arrow::array::{Array, AsArray, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use xxhash_rust::xxh3::Xxh3;

use super::partition::PartitionKey;
use super::remote::RemoteLake;
use crate::error::SinkError;

const SHARDS: usize = 64;

type KeySet = HashSet<u128, BuildHasherDefault<PrehashedKey>>;
type Loaded = Arc<OnceLock<Result<(), String>>>;

/// The keys seen so far, shared by all workers.
pub struct DedupIndex {
    events_dir: PathBuf,
    /// For a lake on S3: where the partitions' existing keys are read from.
    remote: Option<Arc<RemoteLake>>,
    shards: Vec<Mutex<KeySet>>,
    loaded: Mutex<HashMap<PartitionKey, Loaded>>,
}

impl DedupIndex {
    pub fn new(events_dir: &Path, remote: Option<Arc<RemoteLake>>) -> Self {
        DedupIndex {
            events_dir: events_dir.to_path_buf(),
            remote,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            loaded: Mutex::default(),
        }
    }

    /// True the first time a key is offered (the row is new), false for a duplicate.
    /// `ensure_loaded` must have been called for the key's partition.
    pub fn insert_key(&self, event_id: &str, recipient: Option<&str>) -> bool {
        self.insert(key_hash(event_id, recipient))
    }

    /// Both steps at once, for callers that do not cache the partition.
    pub fn first_sighting(
        &self,
        partition: &PartitionKey,
        event_id: &str,
        recipient: Option<&str>,
    ) -> Result<bool, SinkError> {
        self.ensure_loaded(partition)?;
        Ok(self.insert_key(event_id, recipient))
    }

    fn insert(&self, hash: u128) -> bool {
        let shard = &self.shards[(hash as usize) % SHARDS];
        shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hash)
    }

    /// Loads a partition's existing keys once; other workers wait for the first one.
    pub fn ensure_loaded(&self, partition: &PartitionKey) -> Result<(), SinkError> {
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            loaded.entry(partition.clone()).or_default().clone()
        };
        let dir = partition.dir(&self.events_dir);
        let result = cell.get_or_init(|| {
            match &self.remote {
                Some(remote) => remote.partition_keys(partition, |batch| self.insert_batch(batch)),
                None => self.load_partition(&dir),
            }
            .map_err(|e| e.to_string())
        });
        result.clone().map_err(|reason| SinkError::Io {
            op: "reading existing keys of",
            path: dir,
            source: std::io::Error::other(reason),
        })
    }

    fn load_partition(&self, dir: &Path) -> Result<(), SinkError> {
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
                self.load_file(&path)?;
            }
        }
        Ok(())
    }

    fn load_file(&self, path: &Path) -> Result<(), SinkError> {
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
            self.insert_batch(&batch);
        }
        Ok(())
    }

    /// Remembers the keys of a batch of existing rows (event_id, recipient_account_id).
    fn insert_batch(&self, batch: &RecordBatch) {
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
            self.insert(key_hash(ids.value(row), recipient));
        }
    }
}

/// 128 bits of XXH3 over the key: collisions are out of reach at any realistic lake size.
fn key_hash(event_id: &str, recipient: Option<&str>) -> u128 {
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
        let index = DedupIndex::new(Path::new("/nonexistent"), None);
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
}
