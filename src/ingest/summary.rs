//! What a run did: the summary's counts, for people (text) and schedulers (JSON), and the
//! ledger that counts each input's outcome as it ends and records the inputs that are done in
//! the manifest. Deciding an input's outcome is left to the workers, the manifest's format to
//! `sink`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::outcome::{FileOutcome, Status};
use crate::error::{SinkError, SourceError};
use crate::sink::manifest::{ManifestEntry, SegmentWriter};
use crate::source::SourceFile;

/// At most this many failures are listed in the summary (all are printed to stderr and counted).
const LISTED_FAILURES: usize = 1000;

/// One problem with one input, as printed and as listed in the JSON summary.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub source: String,
    pub reason: String,
}

/// What a run did, for people (text) and schedulers (JSON).
#[derive(Debug, Default, Serialize)]
pub struct IngestSummary {
    pub run_id: String,
    pub lake: String,
    pub files_seen: u64,
    pub files_ingested: u64,
    pub files_partial: u64,
    pub files_failed: u64,
    pub files_skipped: u64,
    pub files_unchanged: u64,
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub folders_pruned: u64,
    pub records_read: u64,
    pub records_written: u64,
    pub duplicates_dropped: u64,
    pub records_rejected: u64,
    /// Records that earlier runs rejected in the inputs this run found unchanged (and so did
    /// not read): still only in `_rejected/`, said again on every run until the inputs change.
    pub records_rejected_earlier: u64,
    /// The unchanged inputs those records are in.
    pub files_with_earlier_rejections: u64,
    pub records_outside_scope: u64,
    pub sts_records: u64,
    pub bytes_in: u64,
    pub bytes_decompressed: u64,
    pub parquet_files_written: u64,
    /// Times a partition's dedup keys were written to disk to stay within --dedup-memory.
    pub dedup_spills: u64,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
    pub mb_per_second: f64,
    pub rejected_log: Option<String>,
    pub stopped_early: bool,
    pub failures: Vec<Failure>,
}

impl IngestSummary {
    /// True when anything failed: the exit code is then 2.
    pub fn has_failures(&self) -> bool {
        self.files_failed + self.files_partial + self.records_rejected > 0
            || !self.failures.is_empty()
    }

    pub(super) fn fail(&mut self, source: &str, reason: String) {
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push(Failure {
                source: source.to_owned(),
                reason,
            });
        }
    }

    /// Lists a path or object that could not be walked, listed or fetched.
    pub(super) fn fail_source(&mut self, error: &SourceError) {
        self.fail(&error.location(), error.reason());
    }

    /// Sets the run's time and the rates derived from it.
    pub(super) fn finish_rates(&mut self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        self.elapsed_seconds = (seconds * 1000.0).round() / 1000.0;
        self.records_per_second = (self.records_read as f64 / seconds).round();
        self.mb_per_second =
            ((self.bytes_decompressed as f64 / 1e6 / seconds) * 10.0).round() / 10.0;
    }
}

/// What the run has finished so far: the summary's counts, and the manifest entries of the
/// inputs that are done (written out as they come, so that a run holds nothing per input once
/// the input is read).
pub(super) struct Ledger {
    pub summary: IngestSummary,
    pub segment: SegmentWriter,
}

impl Ledger {
    /// Counts one input's outcome, and records it in the manifest when it is done for good.
    pub fn record(
        &mut self,
        file: &SourceFile,
        outcome: &FileOutcome,
        run_id: &str,
    ) -> Result<(), SinkError> {
        let status = self.summary.count(file, outcome);
        // A file is done for good only when nothing in it was left out by this run's scope and
        // its failure is about its content (an unreadable file is tried again next time).
        let finished =
            outcome.counts.outside_scope == 0 && !matches!(outcome.status, Status::Unreadable(_));
        if !finished || outcome.cut_short {
            return Ok(());
        }
        self.segment.add(&ManifestEntry {
            source: file.name.clone(),
            size: file.size,
            modified: file.version.clone(),
            status: status.to_owned(),
            records: outcome.counts.records,
            rejected: outcome.counts.rejected,
            run: run_id.to_owned(),
        })
    }
}

impl IngestSummary {
    /// Adds one input's counts and outcome; returns the status the manifest records.
    fn count(&mut self, file: &SourceFile, outcome: &FileOutcome) -> &'static str {
        let counts = outcome.counts;
        self.records_read += counts.records;
        self.records_written += counts.written;
        self.duplicates_dropped += counts.duplicates;
        self.records_rejected += counts.rejected;
        self.records_outside_scope += counts.outside_scope;
        self.sts_records += counts.sts;
        self.bytes_in += file.size;
        self.bytes_decompressed += outcome.decompressed;
        if let Some(reason) = &outcome.first_rejection {
            self.fail(
                &file.name,
                format!("{} record(s) rejected (first: {reason})", counts.rejected),
            );
        }
        self.count_status(&file.name, &outcome.status)
    }

    fn count_status(&mut self, name: &str, status: &Status) -> &'static str {
        match status {
            Status::Ingested => {
                self.files_ingested += 1;
                "ingested"
            }
            Status::Partial(reason) => {
                self.files_partial += 1;
                self.fail(name, format!("partial: {reason}"));
                "partial"
            }
            Status::Failed(reason) | Status::Unreadable(reason) => {
                self.files_failed += 1;
                self.fail(name, reason.clone());
                "failed"
            }
            Status::Skipped(reason) => {
                self.files_skipped += 1;
                let category = reason.split(':').next().unwrap_or(reason).to_owned();
                *self.skipped_by_reason.entry(category).or_default() += 1;
                "skipped"
            }
        }
    }
}

/// The human summary printed at the end of a run.
pub fn render_text(summary: &IngestSummary) -> String {
    let s = summary;
    let mut out = format!(
        "{} files seen, lake {}: {} ingested, {} partial, {} failed, {} skipped, {} unchanged since the last run\n",
        s.files_seen,
        crate::render::visible(&s.lake),
        s.files_ingested,
        s.files_partial,
        s.files_failed,
        s.files_skipped,
        s.files_unchanged
    );
    for (reason, count) in &s.skipped_by_reason {
        out += &format!("  skipped  {count} {reason}\n");
    }
    out += &format!(
        "  records  {} read, {} written, {} duplicates dropped, {} rejected, {} outside scope, {} STS credential calls\n",
        s.records_read,
        s.records_written,
        s.duplicates_dropped,
        s.records_rejected,
        s.records_outside_scope,
        s.sts_records
    );
    out += &format!(
        "  bytes    {:.1} MB in, {:.1} MB decompressed, {} Parquet files written, {} folders pruned\n",
        s.bytes_in as f64 / 1e6,
        s.bytes_decompressed as f64 / 1e6,
        s.parquet_files_written,
        s.folders_pruned
    );
    out += &format!(
        "  speed    {:.2} s, {:.0} records/s, {:.1} MB/s\n",
        s.elapsed_seconds, s.records_per_second, s.mb_per_second
    );
    if let Some(path) = &s.rejected_log {
        out += &format!("  rejected records kept in {path}\n");
    }
    if s.records_rejected_earlier > 0 {
        out += &format!(
            "  earlier  {} records rejected by earlier runs in {} unchanged files, still not in the lake (see _rejected/)\n",
            s.records_rejected_earlier, s.files_with_earlier_rejections
        );
    }
    if s.stopped_early {
        out += "  stopped at the first failure (--strict)\n";
    }
    out
}
