//! The lake's record of what `verify --lake` proved about the log files: one Parquet file per
//! run, one row per log file, digest file or gap in the digest chain it looked at.
//!
//! ```text
//! <lake>/verified/run-<YYYYMMDDTHHMMSSZ>-<pid>.parquet
//! ```
//!
//! A file is written whole and then renamed into place (one PUT on S3), like the rest of the
//! lake. The catalog reads the folder as the `verified` table; a file verified several times
//! has a row per run, and queries take its newest (`verified_at`). Writing is `verify`'s job,
//! reading the catalog's: this module only names and types the rows.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};

/// The folder of the verification record.
pub const VERIFIED_DIR: &str = "verified";

/// The columns, in file order, with what they mean (`schema verified`).
pub const COLUMNS: [(&str, &str); 12] = [
    (
        "source_file",
        "The log or digest file as ingest names it (its path, or s3://bucket/key): joins events.source_file; for a gap, what is missing",
    ),
    ("kind", "log, digest or gap (hourly digests missing)"),
    (
        "status",
        "log: valid, modified, missing, unlisted, unproven or pending; digest: valid, invalid, pending or unverifiable; gap: missing",
    ),
    ("detail", "Which check failed, or why it is pending"),
    ("account_id", "The account of the file's folder"),
    ("region", "The region of the file's folder"),
    (
        "trail",
        "The trail whose digests it is about (digests and gaps)",
    ),
    ("period_start", "A digest's or gap's start"),
    (
        "period_end",
        "A digest's or gap's end; a log file's delivery (its digest's end, or the time in its name)",
    ),
    ("digest_file", "The digest that names the log file"),
    (
        "method",
        "How that digest's signature was had: s3-metadata (the object's) or next-digest (offline, from the digest after it)",
    ),
    ("verified_at", "When that verify run ran"),
];

/// The Arrow schema of [`COLUMNS`].
pub fn schema() -> SchemaRef {
    let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let fields = COLUMNS.iter().map(|(name, _)| {
        let (data_type, nullable) = match *name {
            "period_start" | "period_end" => (time.clone(), true),
            "verified_at" => (time.clone(), false),
            "trail" | "digest_file" | "method" => (DataType::Utf8, true),
            _ => (DataType::Utf8, false),
        };
        Field::new(*name, data_type, nullable)
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// The file of a run that ran at `at` in process `pid`.
pub fn file_name(at: DateTime<Utc>, pid: u32) -> String {
    format!("run-{}-{pid}.parquet", at.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_documented_and_typed() {
        assert_eq!(schema().fields().len(), COLUMNS.len());
        assert!(COLUMNS.iter().all(|(_, doc)| !doc.is_empty()));
        let at = DateTime::from_timestamp(1_749_340_800, 0).unwrap();
        assert_eq!(file_name(at, 7), "run-20250608T000000Z-7.parquet");
    }
}
