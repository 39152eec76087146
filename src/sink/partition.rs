//! Rows buffered per Hive partition (account, date) until the memory budget says to write them,
//! then appended in event-time order to an open file of the partition. Credential-issuing STS
//! calls go to files of their own (see [`FileKind`]). One `Partitions` per worker, so workers
//! never wait on each other to append.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::error::ArrowError;

use super::parquet::{PartFile, event_times, time_order};
use super::remote::RemoteLake;
use crate::batch::{EventBatchBuilder, compact, pick_rows};
use crate::error::SinkError;
use crate::lake::partition::PartitionKey;
use crate::lake::schema::{Row, schema};

/// How long after the newest row of a partition a row may still arrive and be written in time
/// order. Logs are read in delivery order, and CloudTrail delivers most events within minutes,
/// so rows this recent are held back for the next write; a row later than this starts a new file.
const LATENESS_MICROS: i64 = 15 * 60 * 1_000_000;

/// A partition holds back at most this share of the budget as too recent to write, whatever
/// the lateness window holds. Held rows are copied at every write (they are merged with the
/// next rows), so without a cap both the copy and the memory grew with the rate of events.
/// Rows later than what was held start a new file, which the benchmarks show stays rare
/// (BENCHMARKS.md, "Held-back rows and open files").
const HOLD_SHARE: usize = 8;

/// The share of the budget the file being read may take from the rows (one half).
const RESERVABLE_SHARE: usize = 2;

/// A partition holding less than this share of the budget is small: when even the largest is
/// small, the budget is full of partitions, not rows (see `Partitions::make_room`).
const SMALL_SHARE: usize = 16;

/// Rows per file before a worker starts the next one (row groups are smaller; see
/// `parquet::ROW_GROUP_ROWS`): large files for readers, bounded uploads to S3.
const FILE_MAX_ROWS: usize = 512 * 1024;

/// Files of each kind one worker keeps open: each holds its unfinished row group and a
/// compressor per column (see `parquet::ROW_GROUP_MEMORY_BYTES`). Files are
/// visited partition by partition, so one is enough: the few rows of a neighbouring day
/// (events just before midnight, delivered after) wait in the buffer and go to their own small
/// file.
const MAX_OPEN_FILES: usize = 1;

/// Which files of a partition a row goes to. The credential-issuing STS calls, which every
/// derived view reads (`assumptions`, `sessions`), are a small share of a real account's events
/// but spread over all of its logs: kept in files of their own, with a Bloom filter on
/// `event_name` in every file, a query for them skips the other files' row groups without
/// decoding them, in DataFusion as in DuckDB, Spark or Athena. Each file is still one sorted
/// run by event time, and `events` reads both kinds as one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Events = 0,
    CredentialCalls = 1,
}

impl FileKind {
    const ALL: [FileKind; 2] = [FileKind::Events, FileKind::CredentialCalls];

    pub fn of_call(is_credential_call: bool) -> FileKind {
        if is_credential_call {
            FileKind::CredentialCalls
        } else {
            FileKind::Events
        }
    }

    /// What the file name ends with, before `.parquet`.
    fn suffix(self) -> &'static str {
        match self {
            FileKind::Events => "",
            FileKind::CredentialCalls => "-sts",
        }
    }
}

/// Where a worker's files go and how they are named.
pub struct PartWriter {
    pub events_dir: PathBuf,
    pub run_id: String,
    pub worker: usize,
    pub written: usize,
    /// The lake on S3 each finished file goes to (the local copy is then removed).
    pub remote: Option<Arc<RemoteLake>>,
}

impl PartWriter {
    fn create(&mut self, key: &PartitionKey, kind: FileKind) -> Result<PartFile, SinkError> {
        let dir = key.dir(&self.events_dir);
        std::fs::create_dir_all(&dir).map_err(SinkError::io("creating", &dir))?;
        let name = format!(
            "part-{}-{}-{:05}{}.parquet",
            self.run_id,
            self.worker,
            self.written,
            kind.suffix()
        );
        self.written += 1;
        PartFile::create(&dir, name, schema())
    }

    fn publish(&self, key: &PartitionKey, file: PartFile) -> Result<(), SinkError> {
        let path = file.finish()?;
        if let Some(remote) = &self.remote {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            remote.upload(&path, &format!("{}/{name}", key.relative_dir()))?;
        }
        Ok(())
    }
}

/// One partition's rows on their way to disk: new rows, rows held back as too recent to write
/// in order yet, and the open file.
#[derive(Default)]
struct Pending {
    fresh: EventBatchBuilder,
    /// Sorted by time, all within `LATENESS_MICROS` of the newest row seen.
    held: Option<RecordBatch>,
    held_bytes: usize,
    file: Option<PartFile>,
    last_used: u64,
}

impl Pending {
    fn bytes(&self) -> usize {
        self.fresh.bytes() + self.held_bytes
    }
}

/// A partition's pending rows, one [`Pending`] per [`FileKind`].
type PartitionFiles = [Pending; 2];

/// Which rows a write keeps back for the next one.
#[derive(Clone, Copy, PartialEq)]
enum Hold {
    /// Those within [`LATENESS_MICROS`] of the newest row (normal).
    Recent,
    /// The newest rows that fit in this many bytes (when the recent rows alone are over the
    /// budget).
    Newest(usize),
    /// None (closing the file).
    Nothing,
}

/// One worker's buffered rows and open files.
pub struct Partitions {
    pending: HashMap<PartitionKey, PartitionFiles>,
    buffered_bytes: usize,
    budget_bytes: usize,
    /// Memory the worker holds outside the buffer (the file being read), counted against the
    /// budget so that larger input files mean fewer buffered rows, not more memory.
    reserved_bytes: usize,
    appends: u64,
    /// The most files of one kind this worker has had open at once, the moment of a switch
    /// from one file to the next included.
    most_open: usize,
    /// Open files of each kind: counted, not searched for, as a worker may hold thousands of
    /// partitions.
    open: [usize; 2],
    writer: PartWriter,
}

impl Partitions {
    pub fn new(writer: PartWriter, budget_bytes: usize) -> Self {
        Partitions {
            pending: HashMap::new(),
            buffered_bytes: 0,
            budget_bytes,
            reserved_bytes: 0,
            appends: 0,
            most_open: 0,
            open: [0; 2],
            writer,
        }
    }

    /// Buffers a row; writes the largest partition's rows out when the budget is exceeded.
    pub fn append(
        &mut self,
        key: &PartitionKey,
        kind: FileKind,
        row: &Row,
    ) -> Result<(), SinkError> {
        self.appends += 1;
        let files = match self.pending.get_mut(key) {
            Some(files) => files,
            None => self.pending.entry(key.clone()).or_default(),
        };
        let pending = &mut files[kind as usize];
        let before = pending.fresh.bytes();
        pending.fresh.append(row);
        pending.last_used = self.appends;
        self.buffered_bytes += pending.fresh.bytes() - before;
        if self.over_budget() {
            self.make_room()?;
        }
        Ok(())
    }

    /// Sets the memory the worker holds outside the buffer; see `reserved_bytes`. At most
    /// [`RESERVABLE_SHARE`] of the budget is counted: a file larger than that is held on top of
    /// the budget (up to `--max-file-size`) rather than leave no room for rows, which would
    /// write every row on its own, each write a file.
    pub fn reserve(&mut self, bytes: usize) {
        self.reserved_bytes = bytes.min(self.reservable());
    }

    /// The most memory outside the buffer that is counted against the budget; a worker keeps
    /// no more than this of a file's buffers from one file to the next.
    pub fn reservable(&self) -> usize {
        self.budget_bytes / RESERVABLE_SHARE
    }

    fn over_budget(&self) -> bool {
        self.buffered_bytes + self.reserved_bytes > self.budget_bytes
    }

    /// The most a partition holds back as too recent to write; see [`HOLD_SHARE`].
    fn hold_limit(&self) -> usize {
        self.budget_bytes / HOLD_SHARE
    }

    /// Brings the buffer back under the budget: by writing the largest partition, unless even
    /// that holds less than [`SMALL_SHARE`] of the budget. Then the budget is full of many small
    /// partitions (an organization trail of many sparse accounts, a file of many dates), and
    /// writing one would free next to nothing: the least recently used ones are written and
    /// closed instead.
    fn make_room(&mut self) -> Result<(), SinkError> {
        let largest = self
            .pending
            .iter()
            .flat_map(|(key, files)| FileKind::ALL.map(|kind| (key, kind, &files[kind as usize])))
            .max_by_key(|(_, _, pending)| pending.bytes())
            .map(|(key, kind, pending)| (key.clone(), kind, pending.bytes()));
        match largest {
            Some((key, kind, bytes)) if bytes >= self.budget_bytes / SMALL_SHARE => {
                self.write_largest(key, kind)
            }
            Some(_) => self.close_least_used(),
            None => Ok(()),
        }
    }

    /// Writes and closes partitions, least recently used first, until a quarter of the budget
    /// is free: many at once, so that the next partitions have room and the search for the
    /// least used ones is not repeated at every row.
    fn close_least_used(&mut self) -> Result<(), SinkError> {
        let mut by_use: Vec<(u64, PartitionKey)> = self
            .pending
            .iter()
            .map(|(key, files)| (files.iter().map(|p| p.last_used).max(), key))
            .map(|(used, key)| (used.unwrap_or_default(), key.clone()))
            .collect();
        by_use.sort_unstable();
        let target = self.budget_bytes - self.budget_bytes / 4;
        for (_, key) in by_use {
            if self.buffered_bytes + self.reserved_bytes <= target {
                break;
            }
            for kind in FileKind::ALL {
                self.close(&key, kind)?;
            }
        }
        Ok(())
    }

    fn write_largest(&mut self, key: PartitionKey, kind: FileKind) -> Result<(), SinkError> {
        self.write(&key, kind, Hold::Recent)?;
        // All of it was recent (a partition with more than a budget of rows in the lateness
        // window): write the older part anyway rather than exceed the budget, but keep the
        // newest half a budget back. Writing everything would move the file's end to the newest
        // row, and the next input's rows, nearly all a little older, would start a new file
        // (at --buffer-size 32M, 170 files instead of 78 on the 4M-event benchmark).
        if self.over_budget() {
            self.write(&key, kind, Hold::Newest(self.budget_bytes / 2))?;
        }
        // A budget smaller than one row's fixed cost.
        if self.over_budget() {
            self.write(&key, kind, Hold::Nothing)?;
        }
        Ok(())
    }

    /// Sorts the partition's rows of one kind by time and appends them to its open file,
    /// keeping the most recent back unless `hold` says otherwise. Rows older than what the file
    /// already holds (a very late delivery) close it and start the next file, so every file
    /// stays sorted.
    fn write(&mut self, key: &PartitionKey, kind: FileKind, hold: Hold) -> Result<(), SinkError> {
        let Some(files) = self.pending.get_mut(key) else {
            return Ok(());
        };
        let pending = &mut files[kind as usize];
        if pending.fresh.rows() == 0 && pending.held.is_none() {
            return Ok(());
        }
        let dir = key.dir(&self.writer.events_dir);
        let arrow_error = |source| SinkError::Arrow {
            path: dir.clone(),
            source,
        };
        let pending_bytes = pending.bytes();
        self.buffered_bytes -= self.buffered_bytes.min(pending_bytes);
        pending.held_bytes = 0;
        let fresh = pending.fresh.finish().map_err(arrow_error)?;
        let held = pending.held.take();
        let batches: Vec<&RecordBatch> = held.iter().chain([&fresh]).collect();
        let rows = time_ordered_rows(held.as_ref(), &fresh).map_err(arrow_error)?;
        let Some(&(last_batch, last_row)) = rows.last() else {
            return Ok(());
        };
        let time = |&(batch, row): &(usize, usize)| event_times(batches[batch])[row];
        let per_row = (pending_bytes / rows.len()).max(1);
        let newest = |bytes: usize| rows.len().saturating_sub(bytes / per_row);
        let ready = match hold {
            Hold::Nothing => rows.len(),
            Hold::Recent => {
                let watermark =
                    event_times(batches[last_batch])[last_row].saturating_sub(LATENESS_MICROS);
                let in_order = rows.partition_point(|row| time(row) <= watermark);
                in_order.max(newest(self.hold_limit()))
            }
            Hold::Newest(bytes) => newest(bytes),
        };
        if ready > 0 {
            self.file_for(key, kind, time(&rows[0]))?
                .append(&batches, &rows[..ready])?;
        }
        if ready < rows.len() {
            let (recent, bytes) = pick_rows(&batches, &rows[ready..])
                .and_then(|recent| compact(&recent))
                .map_err(arrow_error)?;
            let pending = &mut self.pending.entry(key.clone()).or_default()[kind as usize];
            pending.held_bytes = bytes;
            self.buffered_bytes += pending.held_bytes;
            pending.held = Some(recent);
        }
        self.close_least_recent(kind)
    }

    /// The partition's file that rows from `first` on can be appended to: its open file,
    /// unless that is full or already past `first`; else a new one. A new file is created
    /// only after this worker's other files of the kind are closed, so that it never holds
    /// more than [`MAX_OPEN_FILES`] of them, not even for the moment of the switch (each holds
    /// a row group and a compressor per column: closing after opening put a third file in the
    /// peak memory of runs over several days).
    fn file_for(
        &mut self,
        key: &PartitionKey,
        kind: FileKind,
        first: i64,
    ) -> Result<&mut PartFile, SinkError> {
        let pending = &mut self.pending.entry(key.clone()).or_default()[kind as usize];
        let full_or_behind = pending.file.as_ref().is_some_and(|file| {
            file.rows() >= FILE_MAX_ROWS || file.last_time().is_some_and(|last| first < last)
        });
        if full_or_behind && let Some(file) = pending.file.take() {
            self.open[kind as usize] -= 1;
            self.writer.publish(key, file)?;
        }
        if pending.file.is_none() {
            self.close_others(key, kind, MAX_OPEN_FILES - 1)?;
        }
        let others_open = self.open_files(kind, Some(key));
        let pending = &mut self.pending.entry(key.clone()).or_default()[kind as usize];
        match pending.file {
            Some(ref mut file) => Ok(file),
            None => {
                self.most_open = self.most_open.max(others_open + 1);
                let file = self.writer.create(key, kind)?;
                self.open[kind as usize] += 1;
                Ok(pending.file.insert(file))
            }
        }
    }

    /// Past `MAX_OPEN_FILES` of a kind, finishes the ones this worker touched least recently.
    fn close_least_recent(&mut self, kind: FileKind) -> Result<(), SinkError> {
        while self.open_files(kind, None) > MAX_OPEN_FILES {
            if !self.close_oldest(kind, None)? {
                break;
            }
        }
        Ok(())
    }

    /// Finishes this worker's files of a kind, least recently touched first, other than
    /// `key`'s, until at most `keep` of them are open.
    fn close_others(
        &mut self,
        key: &PartitionKey,
        kind: FileKind,
        keep: usize,
    ) -> Result<(), SinkError> {
        while self.open_files(kind, Some(key)) > keep {
            if !self.close_oldest(kind, Some(key))? {
                break;
            }
        }
        Ok(())
    }

    /// Finishes the least recently touched open file of a kind (not `except`'s); false when
    /// there is none.
    fn close_oldest(
        &mut self,
        kind: FileKind,
        except: Option<&PartitionKey>,
    ) -> Result<bool, SinkError> {
        let oldest = self
            .pending
            .iter()
            .filter(|(key, _)| Some(*key) != except)
            .map(|(key, files)| (key, &files[kind as usize]))
            .filter(|(_, pending)| pending.file.is_some())
            .min_by_key(|(_, pending)| pending.last_used)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(key) => self.close(&key, kind).map(|()| true),
            None => Ok(false),
        }
    }

    /// Open files of a kind, not counting `except`'s.
    fn open_files(&self, kind: FileKind, except: Option<&PartitionKey>) -> usize {
        let excepted = except
            .and_then(|key| self.pending.get(key))
            .is_some_and(|files| files[kind as usize].file.is_some());
        self.open[kind as usize] - usize::from(excepted)
    }

    /// Writes everything the partition still has of one kind and publishes its file; forgets
    /// the partition once neither kind has anything left.
    fn close(&mut self, key: &PartitionKey, kind: FileKind) -> Result<(), SinkError> {
        self.write(key, kind, Hold::Nothing)?;
        let Some(files) = self.pending.get_mut(key) else {
            return Ok(());
        };
        let pending = std::mem::take(&mut files[kind as usize]);
        self.buffered_bytes -= self.buffered_bytes.min(pending.bytes());
        let forget = files
            .iter()
            .all(|other| other.file.is_none() && other.bytes() == 0);
        if forget {
            self.pending.remove(key);
        }
        if let Some(file) = pending.file {
            self.open[kind as usize] -= 1;
            self.writer.publish(key, file)?;
        }
        Ok(())
    }

    /// Writes and publishes everything; returns how many files this worker wrote in all.
    pub fn flush_all(mut self) -> Result<usize, SinkError> {
        let mut keys: Vec<PartitionKey> = self.pending.keys().cloned().collect();
        keys.sort();
        for key in keys {
            for kind in FileKind::ALL {
                self.close(&key, kind)?;
            }
        }
        Ok(self.writer.written)
    }
}

/// The rows of `held` (already in time order) and of `fresh`, merged in time order, as
/// (batch, row) pairs over `[held, fresh]` (or `[fresh]` without held rows). Merging instead of
/// concatenating keeps one copy of the rows in memory.
fn time_ordered_rows(
    held: Option<&RecordBatch>,
    fresh: &RecordBatch,
) -> Result<Vec<(usize, usize)>, ArrowError> {
    let fresh_batch = usize::from(held.is_some());
    let fresh_order = time_order(fresh)?;
    let mut fresh_rows = fresh_order
        .values()
        .iter()
        .map(|&row| row as usize)
        .peekable();
    let Some(held) = held else {
        return Ok(fresh_rows.map(|row| (0, row)).collect());
    };
    let held_times = event_times(held);
    let fresh_times = event_times(fresh);
    let mut rows = Vec::with_capacity(held.num_rows() + fresh.num_rows());
    for (held_row, &held_time) in held_times.iter().enumerate() {
        while let Some(&row) = fresh_rows.peek()
            && fresh_times[row] < held_time
        {
            rows.push((fresh_batch, row));
            fresh_rows.next();
        }
        rows.push((0, held_row));
    }
    rows.extend(fresh_rows.map(|row| (fresh_batch, row)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::fs::File;
    use std::path::Path;

    use crate::lake::schema::{Cell, col};
    use arrow::array::AsArray;
    use arrow::datatypes::TimestampMicrosecondType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    const MINUTE: i64 = 60 * 1_000_000;

    fn row(id: usize, micros: i64) -> Row<'static> {
        let mut row = Row::default();
        row.set(col::EVENT_ID, Cell::text(format!("event-{id:06}")));
        row.set(col::EVENT_TIME, Cell::Time(micros));
        row.set(col::REQUEST_PARAMETERS, Cell::text("x".repeat(200)));
        row
    }

    /// Every file's event times, in file order.
    fn file_times(dir: &Path) -> Vec<Vec<i64>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
                    .unwrap()
                    .build()
                    .unwrap();
                reader
                    .flat_map(|batch| {
                        let batch = batch.unwrap();
                        let times = batch.column(col::EVENT_TIME);
                        times
                            .as_primitive::<TimestampMicrosecondType>()
                            .values()
                            .to_vec()
                    })
                    .collect()
            })
            .collect()
    }

    fn partitions(events_dir: &Path, budget_bytes: usize) -> Partitions {
        let writer = PartWriter {
            events_dir: events_dir.to_path_buf(),
            run_id: "test".into(),
            worker: 0,
            written: 0,
            remote: None,
        };
        Partitions::new(writer, budget_bytes)
    }

    /// Appends rows with these event times, in this order, to one partition with this budget;
    /// returns how many files were written and the times in each file.
    fn write_rows(budget_bytes: usize, times: &[i64]) -> (usize, Vec<Vec<i64>>) {
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let mut parts = partitions(lake.path(), budget_bytes);
        for (i, &micros) in times.iter().enumerate() {
            parts
                .append(&key, FileKind::Events, &row(i, micros))
                .unwrap();
        }
        let written = parts.flush_all().unwrap();
        (written, file_times(&key.dir(lake.path())))
    }

    fn sorted(times: &[i64]) -> Vec<i64> {
        let mut sorted = times.to_vec();
        sorted.sort();
        sorted
    }

    #[test]
    fn rows_arriving_a_little_out_of_order_make_one_sorted_file() {
        // One row every 15 s, each pair delivered swapped, every 10th row 10 rows late; a
        // budget of about 120 rows: many writes, each holding back the newest rows, as many as
        // fit in the hold share (about 15, enough for a row 10 rows late).
        let times: Vec<i64> = (0..2000_i64)
            .map(|i| if i % 10 == 9 { i - 10 } else { i ^ 1 })
            .map(|minute| 1_709_251_200_000_000 + minute * MINUTE / 4)
            .collect();
        assert_eq!(write_rows(128 * 1024, &times), (1, vec![sorted(&times)]));
    }

    #[test]
    fn a_busy_partition_over_the_budget_still_makes_one_sorted_file() {
        // A row a second: the 15 minutes held back are far more than the budget, so writes
        // must keep back less; rows still arrive a second out of order (pairs swapped).
        let times: Vec<i64> = (0..6000_i64)
            .map(|i| 1_709_251_200_000_000 + (i ^ 1) * 1_000_000)
            .collect();
        assert_eq!(write_rows(256 * 1024, &times), (1, vec![sorted(&times)]));
    }

    #[test]
    fn a_busy_partition_holds_back_at_most_a_share_of_the_budget() {
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let budget = 256 * 1024;
        let mut parts = partitions(lake.path(), budget);
        let start = 1_709_251_200_000_000;
        let mut most_held = 0;
        // A row a second: 15 minutes of rows are several budgets.
        for i in 0..6000_i64 {
            parts
                .append(
                    &key,
                    FileKind::Events,
                    &row(i as usize, start + i * 1_000_000),
                )
                .unwrap();
            most_held = most_held.max(parts.pending[&key][FileKind::Events as usize].held_bytes);
        }
        assert!(most_held > 0, "nothing was ever held back");
        // A held batch's arrays round up their buffers: allow a little over the share.
        let limit = budget / HOLD_SHARE;
        assert!(most_held <= limit + limit / 2, "held {most_held} bytes");
        assert_eq!(parts.flush_all().unwrap(), 1);
    }

    #[test]
    fn memory_reserved_outside_the_buffer_counts_against_the_budget_up_to_half() {
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let budget = 1 << 20;
        let start = 1_709_251_200_000_000;
        let mut parts = partitions(lake.path(), budget);
        // A file far larger than the budget being read: rows still get half of it, rather
        // than be written one by one.
        parts.reserve(10 * budget);
        assert_eq!(parts.reserved_bytes, budget / 2);
        let mut most = 0;
        for i in 0..2000_i64 {
            parts
                .append(&key, FileKind::Events, &row(i as usize, start + i * MINUTE))
                .unwrap();
            most = most.max(parts.buffered_bytes);
        }
        assert!(most > budget / 4, "at most {most} bytes of rows buffered");
        assert!(
            most <= budget / 2 + budget / 16,
            "{most} bytes of rows buffered"
        );
        assert_eq!(parts.flush_all().unwrap(), 1);
    }

    #[test]
    fn many_small_partitions_are_counted_and_closed_least_recently_used_first() {
        let lake = tempfile::tempdir().unwrap();
        let budget = 2 << 20;
        let mut parts = partitions(lake.path(), budget);
        let start = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let days = 1000;
        for day in 0..days {
            let date = start + chrono::Days::new(day);
            let key = PartitionKey::new(Some("111122223333"), date);
            let micros = date
                .and_hms_opt(12, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros();
            parts
                .append(&key, FileKind::Events, &row(day as usize, micros))
                .unwrap();
            assert!(
                parts.buffered_bytes <= budget,
                "{} bytes",
                parts.buffered_bytes
            );
            // Each partition's builders are counted, not only its row's text (~300 bytes).
            let per_partition = parts.buffered_bytes / parts.pending.len();
            assert!(per_partition > 2048, "{per_partition} bytes a partition");
        }
        assert!(
            parts.pending.len() < days as usize,
            "every partition still held"
        );
        // Each partition written once, whole.
        assert_eq!(parts.flush_all().unwrap(), days as usize);
    }

    #[test]
    fn a_row_later_than_the_lateness_window_starts_a_new_sorted_file() {
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let mut parts = partitions(lake.path(), 8 * 1024);
        let start = 1_709_251_200_000_000;
        for i in 0..500_i64 {
            parts
                .append(
                    &key,
                    FileKind::Events,
                    &row(i as usize, start + (i + 120) * MINUTE),
                )
                .unwrap();
        }
        // Two hours late: the first file already holds later rows.
        parts
            .append(&key, FileKind::Events, &row(999, start))
            .unwrap();
        for i in 500..600_i64 {
            parts
                .append(
                    &key,
                    FileKind::Events,
                    &row(i as usize, start + (i + 120) * MINUTE),
                )
                .unwrap();
        }
        assert_eq!(parts.flush_all().unwrap(), 2);
        let files = file_times(&key.dir(lake.path()));
        let rows: usize = files.iter().map(Vec::len).sum();
        assert_eq!(rows, 601);
        for times in &files {
            assert!(times.is_sorted(), "a file is not sorted by time");
        }
        assert!(files.iter().any(|times| times.first() == Some(&start)));
    }

    #[test]
    fn a_worker_keeps_a_bounded_number_of_files_open() {
        let lake = tempfile::tempdir().unwrap();
        let mut parts = partitions(lake.path(), 4 * 1024);
        let start = 1_709_251_200_000_000;
        for day in 0..10 {
            let date = NaiveDate::from_ymd_opt(2024, 3, 1 + day).unwrap();
            let key = PartitionKey::new(Some("111122223333"), date);
            for i in 0..100 {
                let micros = start + i64::from(day) * 1440 * MINUTE + i * MINUTE;
                parts
                    .append(&key, FileKind::Events, &row(i as usize, micros))
                    .unwrap();
            }
            let open = parts.open_files(FileKind::Events, None);
            assert!(open <= MAX_OPEN_FILES, "{open} files open");
        }
        // Not even while switching from one day's file to the next.
        assert_eq!(parts.most_open, MAX_OPEN_FILES);
        // One file per day: each partition was finished while the next ones were written.
        assert_eq!(parts.flush_all().unwrap(), 10);
    }

    #[test]
    fn wide_rows_make_row_groups_smaller_than_the_row_limit() {
        // 2 KB of poorly compressible text a row: the writer's memory reaches its cap long
        // before ROW_GROUP_ROWS rows.
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let mut parts = partitions(lake.path(), 256 << 20);
        let start = 1_709_251_200_000_000;
        let rows = 20_000;
        for i in 0..rows {
            let mut wide = row(i, start + i as i64 * 1_000_000);
            let text: String = (0..128)
                .map(|j| {
                    format!(
                        "{:016x}",
                        xxhash_rust::xxh3::xxh3_64(&[i, j].map(|n| n as u8))
                    )
                })
                .collect();
            wide.set(col::REQUEST_PARAMETERS, Cell::text(text));
            parts.append(&key, FileKind::Events, &wide).unwrap();
        }
        assert_eq!(parts.flush_all().unwrap(), 1);
        let path = std::fs::read_dir(key.dir(lake.path()))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let groups: Vec<i64> = builder
            .metadata()
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        assert!(groups.len() > 1, "one row group of {groups:?} rows");
        assert_eq!(groups.iter().sum::<i64>(), rows as i64);
    }

    #[test]
    fn credential_calls_go_to_files_of_their_own() {
        let lake = tempfile::tempdir().unwrap();
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let key = PartitionKey::new(Some("111122223333"), date);
        let mut parts = partitions(lake.path(), 8 * 1024);
        let start = 1_709_251_200_000_000;
        for i in 0..1000_i64 {
            let kind = FileKind::of_call(i % 5 == 0);
            parts
                .append(&key, kind, &row(i as usize, start + i * MINUTE))
                .unwrap();
        }
        assert_eq!(parts.flush_all().unwrap(), 2);
        let dir = key.dir(lake.path());
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let credential_files = names.iter().filter(|n| n.ends_with("-sts.parquet")).count();
        assert_eq!(credential_files, 1, "{names:?}");
        let mut rows: Vec<usize> = file_times(&dir).iter().map(Vec::len).collect();
        rows.sort();
        assert_eq!(rows, [200, 800]);
        assert!(file_times(&dir).iter().all(|times| times.is_sorted()));
    }
}
