//! The records of one input file on their way into the partitions: each becomes a row (or is
//! kept in the rejected log), is checked against the run's scope, deduplicated, and buffered in
//! its Hive partition. Reading the file is left to `decode`, choosing the files and counting
//! their outcomes to `ingest`.

use std::sync::Arc;

use super::dedup::{DedupIndex, PartitionKeys};
use super::partition::{FileKind, Partitions};
use super::rejected::{RecordText, RejectedLog};
use crate::decode::Item;
use crate::decode::record::{RecordFields, RecordLimits, to_row};
use crate::decode::sts::is_credential_call;
use crate::decode::time::date_of;
use crate::error::SinkError;
use crate::lake::partition::{PartitionKey, partition_account};
use crate::lake::schema::{Row, col};
use crate::lake::scope::Scope;

/// What every file's records are checked against and go into, for the whole run.
pub struct RecordRules<'a> {
    pub scope: &'a Scope,
    pub limits: &'a RecordLimits,
    /// Stop reading a file at its first rejected record (--strict).
    pub strict: bool,
    pub index: &'a DedupIndex,
    pub rejected: &'a RejectedLog,
}

/// What happened to one file's records.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordCounts {
    pub records: u64,
    pub written: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub outside_scope: u64,
    /// Credential-issuing STS calls written.
    pub sts: u64,
}

/// What a file's records came to, once it is read.
pub struct RecordsTaken {
    pub counts: RecordCounts,
    /// The reason the first rejected record was rejected.
    pub first_rejection: Option<String>,
    /// Reading stopped before the end of the file (--strict).
    pub cut_short: bool,
}

/// Takes the records of one file: row, scope, dedup, buffer.
pub struct RecordSink<'a> {
    /// The input's name, recorded with rejected records.
    source: &'a str,
    rules: &'a RecordRules<'a>,
    parts: &'a mut Partitions,
    /// The partition of the previous record and its keys: consecutive records nearly always
    /// share it (and holding its keys keeps them from being spilled).
    last: Option<(PartitionKey, Arc<PartitionKeys>)>,
    counts: RecordCounts,
    first_rejection: Option<String>,
    error: Option<SinkError>,
    cut_short: bool,
}

impl<'a> RecordSink<'a> {
    pub fn new(
        source: &'a str,
        rules: &'a RecordRules<'a>,
        parts: &'a mut Partitions,
    ) -> RecordSink<'a> {
        RecordSink {
            source,
            rules,
            parts,
            last: None,
            counts: RecordCounts::default(),
            first_rejection: None,
            error: None,
            cut_short: false,
        }
    }

    /// Returns false to stop reading the file (a fatal sink error, or --strict).
    pub fn take(&mut self, item: Item) -> bool {
        self.counts.records += 1;
        let stored = match item {
            Item::Record(record) => self.store(record),
            Item::Damaged(damaged) => {
                let mut text = RecordText::damaged();
                text.push(&damaged.text());
                self.reject(damaged.reason.clone(), text)
            }
        };
        match stored {
            Ok(keep_going) => {
                self.cut_short |= !keep_going;
                keep_going
            }
            Err(error) => {
                self.error = Some(error);
                false
            }
        }
    }

    /// What the file's records came to, or the error that stopped taking them.
    pub fn finish(self) -> Result<RecordsTaken, SinkError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(RecordsTaken {
            counts: self.counts,
            first_rejection: self.first_rejection,
            cut_short: self.cut_short,
        })
    }

    fn store(&mut self, record: &RecordFields) -> Result<bool, SinkError> {
        let row = match to_row(record, self.source, self.rules.limits) {
            Ok(row) => row,
            Err(rejection) => {
                let mut text = RecordText::json();
                record.write_json(|piece| text.push(piece));
                return self.reject(rejection.0, text);
            }
        };
        let Some(time) = row.event_time() else {
            return Ok(true);
        };
        if !in_scope(self.rules.scope, time, &row) {
            self.counts.outside_scope += 1;
            return Ok(true);
        }
        let recipient = row.text(col::RECIPIENT_ACCOUNT_ID);
        let Some(date) = date_of(time) else {
            return Ok(true);
        };
        self.enter_partition(recipient, date);
        let Some((partition, keys)) = &self.last else {
            return Ok(true); // set just above
        };
        let event_id = row.text(col::EVENT_ID).unwrap_or_default();
        if !self
            .rules
            .index
            .insert_key(keys, event_id, recipient, time)?
        {
            self.counts.duplicates += 1;
            return Ok(true);
        }
        let credential_call =
            is_credential_call(row.text(col::EVENT_SOURCE), row.text(col::EVENT_NAME));
        self.counts.sts += u64::from(credential_call);
        self.parts
            .append(partition, FileKind::of_call(credential_call), &row)?;
        self.counts.written += 1;
        Ok(true)
    }

    /// Makes the partition of a record of `recipient` on `date`, and its dedup keys, the last
    /// one: it is the previous record's nearly always.
    fn enter_partition(&mut self, recipient: Option<&str>, date: chrono::NaiveDate) {
        let same_partition = self.last.as_ref().is_some_and(|(last, _)| {
            last.date() == date && last.account() == partition_account(recipient)
        });
        if !same_partition {
            let partition = PartitionKey::new(recipient, date);
            let keys = self.rules.index.partition(&partition);
            self.last = Some((partition, keys));
        }
    }

    /// Keeps a record that cannot become a row in the rejected log (secrets already redacted).
    fn reject(&mut self, reason: String, text: RecordText) -> Result<bool, SinkError> {
        self.counts.rejected += 1;
        self.rules.rejected.add(self.source, &reason, text)?;
        self.first_rejection.get_or_insert(reason);
        Ok(!self.rules.strict)
    }
}

fn in_scope(scope: &Scope, time: i64, row: &Row) -> bool {
    let listed = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
    };
    scope.from.is_none_or(|from| time >= from)
        && scope.to.is_none_or(|to| time < to)
        && listed(&scope.accounts, row.text(col::RECIPIENT_ACCOUNT_ID))
        && listed(&scope.regions, row.text(col::AWS_REGION))
}
