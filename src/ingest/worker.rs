//! The workers: one per job, each taking inputs from the feed until none are left, with its own
//! partition buffers; per input, it reads the bytes, hands the records to a `RecordSink`, says
//! what went wrong, and counts the outcome in the ledger. Decompressing and parsing are left to
//! `decode`, what becomes of each record to `sink`.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::discover::Inputs;
use super::feed::{DayCounts, EarlierRejections, Feed};
use super::outcome::{FileOutcome, Status};
use super::summary::{IngestSummary, Ledger};
use super::target::{S3Access, Target};
use crate::decode::{Content, FileBuffer, for_each_record, read_decompressed};
use crate::error::{FileError, SinkError};
use crate::plan::IngestPlan;
use crate::sink::dedup::DedupIndex;
use crate::sink::manifest::{Manifest, SegmentWriter};
use crate::sink::partition::{PartWriter, Partitions};
use crate::sink::record_sink::{RecordRules, RecordSink};
use crate::sink::rejected::RejectedLog;
use crate::source::s3::Fetched;
use crate::source::{Origin, SourceFile};

/// State the workers share.
pub(super) struct Shared<'a> {
    pub plan: &'a IngestPlan,
    pub run_id: &'a str,
    pub manifest: Manifest,
    pub feed: Feed,
    pub stop: AtomicBool,
    pub index: DedupIndex,
    pub rejected: RejectedLog,
    pub progress: ProgressBar,
    pub messages: Mutex<()>,
    pub ledger: Mutex<Ledger>,
}

impl<'a> Shared<'a> {
    /// Counts what discovery found (and says what could not be read), drops the inputs an
    /// earlier run finished, and starts the feed.
    pub fn start(
        plan: &'a IngestPlan,
        run_id: &'a str,
        target: &Target,
        manifest: Manifest,
        inputs: Inputs,
        s3: Option<&S3Access>,
    ) -> Result<Shared<'a>, SinkError> {
        let total_bytes = inputs.total_bytes(plan);
        let Inputs {
            days,
            mut listed,
            pruned_folders,
            errors,
        } = inputs;
        let mut summary = IngestSummary {
            run_id: run_id.to_owned(),
            lake: plan.lake.to_string(),
            folders_pruned: pruned_folders as u64,
            files_seen: listed.len() as u64,
            ..IngestSummary::default()
        };
        for error in &errors {
            eprintln!("sts-audit: {}", crate::render::visible(&error.to_string()));
            summary.fail_source(error);
        }
        let mut earlier = EarlierRejections::default();
        listed.retain(|f| {
            let done = manifest.is_done(&f.name, f.size, &f.version);
            if done {
                earlier.add(manifest.rejected_in(&f.name));
            }
            !done
        });
        summary.files_unchanged = summary.files_seen - listed.len() as u64;
        summary.records_rejected_earlier = earlier.records;
        summary.files_with_earlier_rejections = earlier.files;
        let feed = Feed::start(days, listed, plan.concurrency, s3);
        Shared::new(plan, run_id, target, manifest, feed, total_bytes, summary)
    }

    fn new(
        plan: &'a IngestPlan,
        run_id: &'a str,
        target: &Target,
        manifest: Manifest,
        feed: Feed,
        total_bytes: u64,
        summary: IngestSummary,
    ) -> Result<Shared<'a>, SinkError> {
        let lake = &target.lake;
        let events_dir = lake.events_dir();
        let remote = target.remote.clone();
        Ok(Shared {
            plan,
            run_id,
            manifest,
            feed,
            stop: AtomicBool::new(false),
            index: DedupIndex::new(&events_dir, remote, lake.root(), plan.dedup_bytes),
            rejected: RejectedLog::new(lake.rejected_dir(), run_id),
            progress: progress_bar(plan.progress, total_bytes),
            messages: Mutex::new(()),
            ledger: Mutex::new(Ledger {
                summary,
                segment: SegmentWriter::create(&lake.manifest_dir(), run_id)?,
            }),
        })
    }

    fn say(&self, line: &str) {
        let _guard = self.messages.lock().unwrap_or_else(PoisonError::into_inner);
        // `line` quotes input (paths, object keys, reasons): no raw control characters.
        let line = crate::render::visible(line);
        self.progress.suspend(|| eprintln!("sts-audit: {line}"));
    }

    /// The next input to decode, and its body when it was fetched from S3.
    fn next_input(&self) -> Option<(SourceFile, Option<Fetched>)> {
        let mut counts = DayCounts::default();
        let next = self
            .feed
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next(&self.manifest, &mut counts);
        self.count_listing(counts);
        if let Some(file) = next {
            return Some((file, None));
        }
        let fetched = self
            .feed
            .fetched
            .as_ref()?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv()?;
        let file = self.feed.fetched_files.get(fetched.file)?.clone();
        Some((file, Some(fetched)))
    }

    /// Counts what listing a day found (nothing, mostly: a day is listed once).
    fn count_listing(&self, counts: DayCounts) {
        if counts.seen == 0 && counts.errors.is_empty() {
            return;
        }
        for error in &counts.errors {
            self.say(&error.to_string());
        }
        self.progress.inc(counts.unchanged_bytes);
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let summary = &mut ledger.summary;
        summary.files_seen += counts.seen;
        summary.files_unchanged += counts.unchanged;
        summary.records_rejected_earlier += counts.earlier.records;
        summary.files_with_earlier_rejections += counts.earlier.files;
        for error in &counts.errors {
            summary.fail_source(error);
        }
    }

    fn record(&self, file: &SourceFile, outcome: &FileOutcome) -> Result<(), SinkError> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(file, outcome, self.run_id)
    }

    fn record_rules(&self) -> RecordRules<'_> {
        RecordRules {
            scope: &self.plan.scope,
            limits: &self.plan.limits,
            strict: self.plan.strict,
            index: &self.index,
            rejected: &self.rejected,
        }
    }
}

/// One job: takes files until there are none left, then writes out what it buffered; returns
/// how many Parquet files it wrote.
pub(super) fn work(shared: &Shared, writer: PartWriter) -> Result<usize, SinkError> {
    let mut parts = Partitions::new(writer, shared.plan.buffer_bytes / shared.plan.jobs);
    let mut buf = FileBuffer::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let Some((file, fetched)) = shared.next_input() else {
            break;
        };
        let file = &file;
        let outcome = process_file(file, fetched, shared, &mut parts, &mut buf)?;
        report_outcome(shared, file, &outcome);
        if shared.plan.strict && outcome.is_failure() {
            shared.stop.store(true, Ordering::Relaxed);
        }
        shared.progress.inc(file.size);
        shared.record(file, &outcome)?;
        buf.release_over(parts.reservable());
    }
    // Give the decompression buffer back before the final writes need memory.
    drop(buf);
    parts.flush_all()
}

fn process_file(
    file: &SourceFile,
    fetched: Option<Fetched>,
    shared: &Shared,
    parts: &mut Partitions,
    buf: &mut FileBuffer,
) -> Result<FileOutcome, SinkError> {
    if let Some(reason) = file.skipped_by_key() {
        return Ok(FileOutcome::unread(Status::Skipped(reason.to_owned())));
    }
    let damage = match read_input(file, fetched, shared.plan.max_file_bytes, buf) {
        Ok(damage) => damage,
        Err(reason) => return Ok(FileOutcome::unread(Status::Unreadable(reason))),
    };
    let decompressed = buf.data().len() as u64;
    parts.reserve(buf.footprint());
    let rules = shared.record_rules();
    let mut records = RecordSink::new(&file.name, &rules, parts);
    let parsed = for_each_record(buf.data(), |item| records.take(item));
    let taken = records.finish()?;
    let damage = damage.or(parsed.error).map(|e| e.to_string());
    let status = match (parsed.content, damage) {
        (Content::Records, None) => Status::Ingested,
        (Content::Records, Some(reason)) if parsed.records > 0 => Status::Partial(reason),
        (_, Some(reason)) => Status::Failed(reason),
        (Content::Digest, None) => Status::Skipped("CloudTrail-Digest file".into()),
        (Content::Insight, None) => Status::Skipped("CloudTrail-Insight file".into()),
        (Content::NotCloudTrail(reason), None) => {
            Status::Skipped(format!("not a CloudTrail log: {reason}"))
        }
    };
    Ok(FileOutcome {
        status,
        counts: taken.counts,
        decompressed,
        first_rejection: taken.first_rejection,
        cut_short: taken.cut_short,
    })
}

/// Reads an input's bytes, decompressed, into `buf`; returns the damage found on the way, or
/// why the input could not be read at all.
fn read_input(
    file: &SourceFile,
    fetched: Option<Fetched>,
    cap: u64,
    buf: &mut FileBuffer,
) -> Result<Option<FileError>, String> {
    let bytes = match (file.origin, fetched) {
        (Origin::Local, _) => match File::open(&file.name) {
            Ok(input) => read_decompressed(input, cap, buf),
            Err(error) => return Err(FileError::Read(error.to_string()).to_string()),
        },
        (Origin::S3, Some(fetched)) => match &fetched.body {
            Ok(body) => read_decompressed(&body[..], cap, buf),
            Err(error) => return Err(FileError::Read(error.reason()).to_string()),
        },
        (Origin::S3, None) => return Err("not fetched".into()),
    };
    match bytes.damage {
        Some(FileError::Read(reason)) => Err(reason),
        damage => Ok(damage),
    }
}

fn report_outcome(shared: &Shared, file: &SourceFile, outcome: &FileOutcome) {
    let name = &file.name;
    match &outcome.status {
        Status::Partial(reason) => shared.say(&format!(
            "{name}: partial, kept {} records read before the damage: {reason}",
            outcome.counts.records
        )),
        Status::Failed(reason) | Status::Unreadable(reason) => {
            shared.say(&format!("{name}: {reason}"))
        }
        Status::Ingested | Status::Skipped(_) => {}
    }
    if let Some(reason) = &outcome.first_rejection {
        let count = outcome.counts.rejected;
        shared.say(&format!(
            "{name}: {count} record(s) rejected and kept in _rejected/ (first: {reason})"
        ));
    }
}

fn progress_bar(enabled: bool, total_bytes: u64) -> ProgressBar {
    let target = if enabled {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(total_bytes), target);
    let style = ProgressStyle::with_template(
        "{spinner} ingest [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar
}
