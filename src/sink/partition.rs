//! Rows buffered per Hive partition (account, date) until the memory budget says to write them.
//! One `Partitions` per worker, so workers never wait on each other to append.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;

use super::parquet::write_sorted;
use super::remote::RemoteLake;
use crate::batch::{EventBatchBuilder, Row};
use crate::error::SinkError;
use crate::source::key::date_text;

/// A partition of the `events` table; both parts are validated, so they are safe as path names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    account: String,
    date: NaiveDate,
}

/// The partition account for records whose account is missing or malformed.
pub const UNKNOWN_ACCOUNT: &str = "unknown";

impl PartitionKey {
    /// The record's `recipientAccountId` when it is 12 digits, else the account its file's key
    /// names, else `unknown`: a record can never name a folder outside the lake.
    pub fn new(
        recipient: Option<&str>,
        key_account: Option<&str>,
        date: NaiveDate,
    ) -> PartitionKey {
        PartitionKey {
            account: partition_account(recipient, key_account).to_owned(),
            date,
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn date(&self) -> NaiveDate {
        self.date
    }

    /// `<events>/account_id=<account>/date=<YYYY-MM-DD>`
    pub fn dir(&self, events_dir: &Path) -> PathBuf {
        events_dir
            .join(format!("account_id={}", self.account))
            .join(format!("date={}", date_text(self.date)))
    }

    /// `events/account_id=<account>/date=<YYYY-MM-DD>`, relative to the lake's root.
    pub fn relative_dir(&self) -> String {
        format!(
            "events/account_id={}/date={}",
            self.account,
            date_text(self.date)
        )
    }
}

/// The account folder for a record: see [`PartitionKey::new`].
pub fn partition_account<'a>(recipient: Option<&'a str>, key_account: Option<&'a str>) -> &'a str {
    [recipient, key_account]
        .into_iter()
        .flatten()
        .find(|account| is_account_id(account))
        .unwrap_or(UNKNOWN_ACCOUNT)
}

/// Twelve ASCII digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
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
    fn write(
        &mut self,
        key: &PartitionKey,
        builder: &mut EventBatchBuilder,
    ) -> Result<usize, SinkError> {
        let dir = key.dir(&self.events_dir);
        std::fs::create_dir_all(&dir).map_err(SinkError::io("creating", &dir))?;
        let batch = builder.finish().map_err(|source| SinkError::Arrow {
            path: dir.clone(),
            source,
        })?;
        let name = format!(
            "part-{}-{}-{:05}.parquet",
            self.run_id, self.worker, self.written
        );
        let path = write_sorted(&dir, &name, &batch)?;
        if let Some(remote) = &self.remote {
            remote.upload(&path, &format!("{}/{name}", key.relative_dir()))?;
        }
        self.written += 1;
        Ok(batch.num_rows())
    }
}

/// One worker's buffered rows.
pub struct Partitions {
    buffers: HashMap<PartitionKey, EventBatchBuilder>,
    buffered_bytes: usize,
    budget_bytes: usize,
    writer: PartWriter,
}

impl Partitions {
    pub fn new(writer: PartWriter, budget_bytes: usize) -> Self {
        Partitions {
            buffers: HashMap::new(),
            buffered_bytes: 0,
            budget_bytes,
            writer,
        }
    }

    /// Buffers a row; writes the largest partition out when the budget is exceeded.
    pub fn append(&mut self, key: &PartitionKey, row: &Row) -> Result<(), SinkError> {
        let builder = match self.buffers.get_mut(key) {
            Some(builder) => builder,
            None => self.buffers.entry(key.clone()).or_default(),
        };
        let before = builder.bytes();
        builder.append(row);
        self.buffered_bytes += builder.bytes() - before;
        if self.buffered_bytes > self.budget_bytes {
            self.flush_largest()?;
        }
        Ok(())
    }

    fn flush_largest(&mut self) -> Result<(), SinkError> {
        let largest = self
            .buffers
            .iter()
            .max_by_key(|(_, builder)| builder.bytes())
            .map(|(key, _)| key.clone());
        if let Some(key) = largest {
            self.flush(&key)?;
        }
        Ok(())
    }

    fn flush(&mut self, key: &PartitionKey) -> Result<(), SinkError> {
        if let Some(mut builder) = self.buffers.remove(key) {
            self.buffered_bytes -= builder.bytes();
            if builder.rows() > 0 {
                self.writer.write(key, &mut builder)?;
            }
        }
        Ok(())
    }

    /// Writes everything still buffered; returns how many files this worker wrote in all.
    pub fn flush_all(mut self) -> Result<usize, SinkError> {
        let mut keys: Vec<PartitionKey> = self.buffers.keys().cloned().collect();
        keys.sort();
        for key in keys {
            self.flush(&key)?;
        }
        Ok(self.writer.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_accounts_are_validated() {
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let cases = [
            (Some("111122223333"), Some("999999999999"), "111122223333"),
            (Some("../../etc"), Some("999999999999"), "999999999999"),
            (Some("12345"), None, "unknown"),
            (None, Some("o-abc/../x"), "unknown"),
            (None, None, "unknown"),
        ];
        for (recipient, key_account, expected) in cases {
            let key = PartitionKey::new(recipient, key_account, date);
            assert_eq!(key.account(), expected);
            let dir = key.dir(Path::new("/lake/events"));
            assert_eq!(
                dir,
                PathBuf::from(format!(
                    "/lake/events/account_id={expected}/date=2024-03-01"
                ))
            );
        }
    }
}
