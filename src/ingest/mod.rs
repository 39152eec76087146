//! Ingest orchestration: discover inputs, skip what the manifest says is done, decode files in
//! parallel (one rayon thread per job, each with its own partition buffers), publish the manifest
//! and the rejected-records log, and count everything. No format logic lives here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::aws::Aws;
use crate::batch::col;
use crate::decode::record::{RecordFields, to_row};
use crate::decode::sts::is_credential_call;
use crate::decode::time::date_of;
use crate::decode::{Content, FileBuffer, Item, for_each_record, read_decompressed};
use crate::error::{FileError, SinkError, SourceError};
use crate::plan::{IngestPlan, SourceLocation};
use crate::sink::dedup::{DedupIndex, PartitionKeys};
use crate::sink::lake::{Lake, LakeLocation};
use crate::sink::manifest::{Manifest, ManifestEntry, SegmentWriter};
use crate::sink::partition::{FileKind, PartWriter, PartitionKey, Partitions, partition_account};
use crate::sink::rejected::{RecordText, RejectedLog};
use crate::sink::remote::RemoteLake;
use crate::source::key::Scope;
use crate::source::local::{self, DayGroup};
use crate::source::read_ahead::ReadAhead;
use crate::source::s3::{self, FetchJob, Fetched};
use crate::source::{Discovery, Origin, SourceFile, sort_for_visiting};

/// Fetched S3 objects waiting to be decoded hold at most this much memory.
const FETCH_BUDGET_BYTES: u64 = 256 << 20;

/// Local inputs are read ahead this many files before the workers reach them: enough to keep
/// reads in flight while two workers decode ~3,000 small files a second, and few enough that
/// the pages are still cached when a worker gets there.
const READ_AHEAD_FILES: usize = 32;
/// ... or fewer, once the window holds this many bytes (large files need fewer in flight).
const READ_AHEAD_BYTES: u64 = 32 << 20;

/// What stops an ingest run: a source that cannot be listed at all, or a lake that cannot be
/// written (or read). A bad input never does: it is counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

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

    fn fail(&mut self, source: &str, reason: String) {
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push(Failure {
                source: source.to_owned(),
                reason,
            });
        }
    }
}

/// How one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Ingested,
    /// Some records read before damage; the damage is the reason.
    Partial(String),
    /// Damaged with nothing usable.
    Failed(String),
    /// Could not be opened or read: not recorded, so the next run tries again.
    Unreadable(String),
    Skipped(String),
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    records: u64,
    written: u64,
    duplicates: u64,
    rejected: u64,
    outside_scope: u64,
    sts: u64,
    decompressed: u64,
}

struct FileOutcome {
    status: Status,
    counts: Counts,
    first_rejection: Option<String>,
    /// Reading stopped before the end of the file (--strict).
    cut_short: bool,
}

/// Hands out the inputs to decode, in visiting order: local day folders, listed one (account,
/// day) at a time as the workers reach them; then local files outside the layout and S3 objects
/// a worker opens itself (skipped by their key without fetching); then S3 objects as their
/// bodies arrive.
struct Feed {
    queue: Mutex<Queue>,
    /// The S3 objects to fetch; [`Fetched::file`] is an index into it.
    fetched_files: Vec<SourceFile>,
    fetched: Option<Mutex<tokio::sync::mpsc::Receiver<Fetched>>>,
}

struct Queue {
    days: std::vec::IntoIter<DayGroup>,
    /// The inputs listed and not taken yet, in visiting order: the day folders listed so far,
    /// then, once every day is listed, the inputs listed whole.
    listed: VecDeque<SourceFile>,
    direct: std::vec::IntoIter<SourceFile>,
    read_ahead: ReadAhead,
    /// How many inputs at the front of `listed` were already passed to `read_ahead`.
    requested: usize,
}

/// What listing one day found, for the summary.
#[derive(Default)]
struct DayCounts {
    seen: u64,
    unchanged: u64,
    unchanged_bytes: u64,
    errors: Vec<SourceError>,
}

impl Queue {
    fn new(days: Vec<DayGroup>, direct: Vec<SourceFile>, read_ahead: ReadAhead) -> Queue {
        Queue {
            days: days.into_iter(),
            listed: VecDeque::new(),
            direct: direct.into_iter(),
            read_ahead,
            requested: 0,
        }
    }

    /// The next input a worker opens itself. Inputs an earlier run finished are dropped and
    /// counted in `counts`. The inputs after it are passed to the read-ahead.
    fn next(&mut self, manifest: &Manifest, counts: &mut DayCounts) -> Option<SourceFile> {
        self.fill(manifest, counts);
        let file = self.listed.pop_front()?;
        self.requested = self.requested.saturating_sub(1);
        self.request_ahead();
        Some(file)
    }

    /// Lists day folders until more inputs wait than the read-ahead window holds, so reading
    /// ahead crosses from one day to the next. Once every day is listed, it queues the inputs
    /// that were listed whole.
    fn fill(&mut self, manifest: &Manifest, counts: &mut DayCounts) {
        while self.listed.len() <= READ_AHEAD_FILES {
            let Some(day) = self.days.next() else {
                self.listed.extend(self.direct.by_ref());
                return;
            };
            let listing = day.list();
            counts.seen += listing.files.len() as u64;
            counts.errors.extend(listing.errors);
            for file in listing.files {
                if manifest.is_done(&file.name, file.size, &file.version) {
                    counts.unchanged += 1;
                    counts.unchanged_bytes += file.size;
                } else {
                    self.listed.push_back(file);
                }
            }
        }
    }

    /// Passes the local inputs in the window at the front of `listed` to the read-ahead, those
    /// not passed before, once at most half the window is left to read: in batches of half a
    /// window, not one by one. The window holds READ_AHEAD_FILES inputs, or fewer once it holds
    /// READ_AHEAD_BYTES.
    fn request_ahead(&mut self) {
        let mut bytes = 0;
        let mut window = 0;
        for file in self.listed.iter().take(READ_AHEAD_FILES) {
            if window > 0 && bytes >= READ_AHEAD_BYTES {
                break;
            }
            bytes += file.size;
            window += 1;
        }
        if self.requested > window / 2 {
            return;
        }
        let batch = self
            .listed
            .iter()
            .take(window)
            .skip(self.requested)
            .filter(|file| file.origin == Origin::Local)
            .map(|file| file.name.clone())
            .collect();
        self.read_ahead.request(batch);
        self.requested = self.requested.max(window);
    }
}

/// State the workers share.
struct Shared<'a> {
    plan: &'a IngestPlan,
    run_id: &'a str,
    manifest: Manifest,
    feed: Feed,
    stop: AtomicBool,
    index: DedupIndex,
    rejected: RejectedLog,
    progress: ProgressBar,
    messages: Mutex<()>,
    ledger: Mutex<Ledger>,
}

impl Shared<'_> {
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
        for error in counts.errors {
            summary.fail(&error.location(), error.reason());
        }
    }

    fn record(&self, file: &SourceFile, outcome: &FileOutcome) -> Result<(), SinkError> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(file, outcome, self.run_id)
    }
}

/// What the run has finished so far: the summary's counts, and the manifest entries of the
/// inputs that are done (written out as they come, so that a run holds nothing per input once
/// the input is read).
struct Ledger {
    summary: IngestSummary,
    segment: SegmentWriter,
}

/// The lake a run writes: the lake itself on disk, or for a lake on S3 a local staging lake
/// whose files are uploaded as they are finished.
struct Target {
    lake: Lake,
    remote: Option<Arc<RemoteLake>>,
    _staging: Option<tempfile::TempDir>,
}

/// What S3 needs: a runtime for the SDK, the loaded configuration and one client per bucket.
struct S3Access {
    runtime: tokio::runtime::Runtime,
    aws: Aws,
    clients: HashMap<String, aws_sdk_s3::Client>,
}

impl S3Access {
    /// None when the run touches no S3 at all (no runtime, no credential lookup).
    fn for_plan(plan: &IngestPlan) -> Result<Option<S3Access>, SinkError> {
        let buckets: Vec<&str> = plan
            .sources
            .iter()
            .filter_map(|source| match source {
                SourceLocation::S3(url) => Some(url.bucket.as_str()),
                SourceLocation::Local(_) => None,
            })
            .collect();
        if buckets.is_empty() && !matches!(plan.lake, LakeLocation::S3(_)) {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| SinkError::Io {
                op: "starting the S3 runtime for",
                path: "S3".into(),
                source,
            })?;
        let aws = runtime.block_on(Aws::load(&plan.aws));
        let mut clients = HashMap::new();
        for bucket in buckets {
            if !clients.contains_key(bucket) {
                let client = runtime.block_on(aws.client_for_bucket(bucket));
                clients.insert(bucket.to_owned(), client);
            }
        }
        Ok(Some(S3Access {
            runtime,
            aws,
            clients,
        }))
    }
}

fn open_target(plan: &IngestPlan, s3: Option<&S3Access>) -> Result<Target, SinkError> {
    let (LakeLocation::S3(url), Some(s3)) = (&plan.lake, s3) else {
        let LakeLocation::Local(root) = &plan.lake else {
            unreachable!("S3 access is set up whenever the lake is on S3")
        };
        return Ok(Target {
            lake: Lake::open_for_writing(root)?,
            remote: None,
            _staging: None,
        });
    };
    let store = s3
        .runtime
        .block_on(s3.aws.object_store(&url.bucket))
        .map_err(|reason| SinkError::Remote {
            op: "opening",
            url: url.to_string(),
            reason,
        })?;
    let remote = Arc::new(RemoteLake::new(
        url.clone(),
        store,
        s3.runtime.handle().clone(),
    ));
    let staging = tempfile::Builder::new()
        .prefix("sts-audit-staging-")
        .tempdir()
        .map_err(SinkError::io(
            "creating a staging folder in",
            std::env::temp_dir(),
        ))?;
    let lake = Lake::open_for_writing(staging.path())?;
    remote.download_manifest(&lake.manifest_dir())?;
    Ok(Target {
        lake,
        remote: Some(remote),
        _staging: Some(staging),
    })
}

/// What a run found to read: local day folders (not listed yet), and the inputs listed whole
/// (local files outside the layout, S3 objects), in visiting order.
struct Inputs {
    days: Vec<DayGroup>,
    listed: Vec<SourceFile>,
    pruned_folders: usize,
    errors: Vec<SourceError>,
}

/// Walks the local sources and lists the S3 ones. A source that cannot be listed at all (no
/// such bucket, access denied) stops the run: there would be nothing to ingest.
fn discover(plan: &IngestPlan, s3: Option<&S3Access>) -> Result<Inputs, SourceError> {
    let local_sources: Vec<_> = plan
        .sources
        .iter()
        .filter_map(|source| match source {
            SourceLocation::Local(path) => Some(path.clone()),
            SourceLocation::S3(_) => None,
        })
        .collect();
    let local = local::discover(&local_sources, &plan.scope, plan.follow_symlinks);
    let mut remote = Discovery::default();
    for source in &plan.sources {
        if let (SourceLocation::S3(url), Some(s3)) = (source, s3) {
            let client = &s3.clients[&url.bucket];
            let listed =
                s3.runtime
                    .block_on(s3::discover(client, url, &plan.scope, plan.concurrency))?;
            remote.merge(listed);
        }
    }
    // Account by account and day by day (across regions), so that a partition's rows and keys
    // are finished with before the next ones start: larger Parquet files, and dedup key sets
    // that can be spilled for good.
    sort_for_visiting(&mut remote.files);
    let mut listed = local.loose;
    listed.append(&mut remote.files);
    let mut errors = local.errors;
    errors.append(&mut remote.errors);
    Ok(Inputs {
        days: local.days,
        listed,
        pruned_folders: local.pruned_folders + remote.pruned_folders,
        errors,
    })
}

/// Splits the inputs listed whole into those workers open themselves and those fetched from
/// S3, starts the fetching, and queues the day folders first.
fn feed(
    days: Vec<DayGroup>,
    listed: Vec<SourceFile>,
    plan: &IngestPlan,
    s3: Option<&S3Access>,
) -> Feed {
    let mut direct = Vec::new();
    let mut fetched_files = Vec::new();
    let mut jobs = Vec::new();
    for source in listed {
        match (source.s3_object(), s3) {
            (Some((bucket, key)), Some(s3)) if source.skipped_by_key().is_none() => {
                jobs.push(FetchJob {
                    file: fetched_files.len(),
                    client: s3.clients[bucket].clone(),
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    etag: source.version.clone(),
                    size: source.size,
                });
                fetched_files.push(source);
            }
            _ => direct.push(source),
        }
    }
    let fetched = s3.filter(|_| !jobs.is_empty()).map(|s3| {
        Mutex::new(s3::spawn_fetcher(
            s3.runtime.handle(),
            jobs,
            plan.concurrency,
            FETCH_BUDGET_BYTES,
        ))
    });
    Feed {
        queue: Mutex::new(Queue::new(days, direct, ReadAhead::start())),
        fetched_files,
        fetched,
    }
}

/// The bytes a progress bar counts to: those of every input, day folders measured without
/// keeping their names. Only worth the extra walk when someone watches the bar.
fn total_bytes(plan: &IngestPlan, days: &[DayGroup], listed: &[SourceFile]) -> u64 {
    if !plan.progress || !std::io::stderr().is_terminal() {
        return 0;
    }
    let listed_bytes: u64 = listed.iter().map(|f| f.size).sum();
    listed_bytes + days.iter().map(|day| day.measure().1).sum::<u64>()
}

/// Runs one ingest. Bad inputs are counted in the summary; only a lake that cannot be
/// written (or read) ends the run with an error.
pub fn run(plan: &IngestPlan) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let run_id = run_id();
    let s3 = S3Access::for_plan(plan)?;
    let target = open_target(plan, s3.as_ref())?;
    let lake = &target.lake;
    let manifest = Manifest::load(&lake.manifest_dir())?;
    let Inputs {
        days,
        mut listed,
        pruned_folders,
        errors,
    } = discover(plan, s3.as_ref())?;
    let mut summary = IngestSummary {
        run_id: run_id.clone(),
        lake: plan.lake.to_string(),
        folders_pruned: pruned_folders as u64,
        files_seen: listed.len() as u64,
        ..IngestSummary::default()
    };
    for error in &errors {
        eprintln!("sts-audit: {}", crate::render::visible(&error.to_string()));
        summary.fail(&error.location(), error.reason());
    }
    let total_bytes = total_bytes(plan, &days, &listed);
    listed.retain(|f| !manifest.is_done(&f.name, f.size, &f.version));
    summary.files_unchanged = summary.files_seen - listed.len() as u64;

    let shared = Shared {
        plan,
        run_id: &run_id,
        manifest,
        feed: feed(days, listed, plan, s3.as_ref()),
        stop: AtomicBool::new(false),
        index: DedupIndex::new(
            &lake.events_dir(),
            target.remote.clone(),
            lake.root(),
            plan.dedup_bytes,
        ),
        rejected: RejectedLog::new(lake.rejected_dir(), &run_id),
        progress: progress_bar(plan.progress, total_bytes),
        messages: Mutex::new(()),
        ledger: Mutex::new(Ledger {
            summary,
            segment: SegmentWriter::create(&lake.manifest_dir(), &run_id)?,
        }),
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.jobs)
        .thread_name(|i| format!("ingest-{i}"))
        .build()
        .map_err(|e| SinkError::Io {
            op: "starting workers for",
            path: lake.root().to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let writer = |worker| PartWriter {
        events_dir: lake.events_dir(),
        run_id: run_id.clone(),
        worker,
        written: 0,
        remote: target.remote.clone(),
    };
    let reports = pool.broadcast(|ctx| work(&shared, writer(ctx.index())));
    shared.progress.finish_and_clear();

    let Shared {
        feed,
        stop,
        index,
        rejected,
        ledger,
        ..
    } = shared;
    let Ledger {
        mut summary,
        segment,
    } = ledger.into_inner().unwrap_or_else(PoisonError::into_inner);
    for report in reports {
        summary.parquet_files_written += report? as u64;
    }
    summary.stopped_early = stop.into_inner();
    summary.dedup_spills = index.spills() as u64;
    // Stop fetching (after --strict) before the last uploads need the runtime.
    drop(feed.fetched);
    let rejected_log = rejected.finish()?;
    summary.rejected_log = publish_log(&target, rejected_log, "_rejected")?;
    // Last: the manifest segment says this run's inputs are done.
    let segment = segment.publish()?;
    publish_log(&target, segment, "_manifest")?;
    finish_rates(&mut summary, started.elapsed());
    Ok(summary)
}

/// Uploads a finished log file to the lake on S3 (a no-op on disk); returns where it now is.
fn publish_log(
    target: &Target,
    local: Option<std::path::PathBuf>,
    folder: &str,
) -> Result<Option<String>, SinkError> {
    let Some(path) = local else {
        return Ok(None);
    };
    let Some(remote) = &target.remote else {
        return Ok(Some(path.display().to_string()));
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let relative = format!("{folder}/{name}");
    remote.upload(&path, &relative)?;
    Ok(Some(format!(
        "{}{relative}",
        remote.url().object(&remote.url().folder())
    )))
}

/// One job: takes files until there are none left, then writes out what it buffered; returns
/// how many Parquet files it wrote.
fn work(shared: &Shared, writer: PartWriter) -> Result<usize, SinkError> {
    let mut parts = Partitions::new(writer, shared.plan.buffer_bytes / shared.plan.jobs);
    let mut buf = FileBuffer::default();
    while !shared.stop.load(Ordering::Relaxed) {
        let Some((file, fetched)) = shared.next_input() else {
            break;
        };
        let file = &file;
        let outcome = process_file(file, fetched, shared, &mut parts, &mut buf)?;
        report_outcome(shared, file, &outcome);
        if shared.plan.strict && is_failure(&outcome) {
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

fn is_failure(outcome: &FileOutcome) -> bool {
    let bad_status = matches!(
        outcome.status,
        Status::Partial(_) | Status::Failed(_) | Status::Unreadable(_)
    );
    bad_status || outcome.counts.rejected > 0
}

fn process_file(
    file: &SourceFile,
    fetched: Option<Fetched>,
    shared: &Shared,
    parts: &mut Partitions,
    buf: &mut FileBuffer,
) -> Result<FileOutcome, SinkError> {
    let mut outcome = FileOutcome {
        status: Status::Ingested,
        counts: Counts::default(),
        first_rejection: None,
        cut_short: false,
    };
    if let Some(reason) = file.skipped_by_key() {
        outcome.status = Status::Skipped(reason.to_owned());
        return Ok(outcome);
    }
    let cap = shared.plan.max_file_bytes;
    let bytes = match (file.origin, fetched) {
        (Origin::Local, _) => match File::open(&file.name) {
            Ok(input) => read_decompressed(input, cap, buf),
            Err(error) => {
                outcome.status = Status::Unreadable(FileError::Read(error.to_string()).to_string());
                return Ok(outcome);
            }
        },
        (Origin::S3, Some(fetched)) => match &fetched.body {
            Ok(body) => read_decompressed(&body[..], cap, buf),
            Err(error) => {
                outcome.status = Status::Unreadable(FileError::Read(error.reason()).to_string());
                return Ok(outcome);
            }
        },
        (Origin::S3, None) => {
            outcome.status = Status::Unreadable("not fetched".into());
            return Ok(outcome);
        }
    };
    if let Some(FileError::Read(reason)) = &bytes.damage {
        outcome.status = Status::Unreadable(reason.clone());
        return Ok(outcome);
    }
    outcome.counts.decompressed = buf.data().len() as u64;
    parts.reserve(buf.footprint());
    let mut records = RecordSink {
        file,
        shared,
        parts,
        last: None,
        counts: &mut outcome.counts,
        first_rejection: None,
        error: None,
        cut_short: false,
    };
    let parsed = for_each_record(buf.data(), |item| records.take(item));
    let cut_short = records.cut_short;
    let first_rejection = records.first_rejection.take();
    if let Some(error) = records.error.take() {
        return Err(error);
    }
    outcome.first_rejection = first_rejection;
    outcome.cut_short = cut_short;
    let damage = bytes.damage.or(parsed.error).map(|e| e.to_string());
    outcome.status = match (parsed.content, damage) {
        (Content::Records, None) => Status::Ingested,
        (Content::Records, Some(reason)) if parsed.records > 0 => Status::Partial(reason),
        (_, Some(reason)) => Status::Failed(reason),
        (Content::Digest, None) => Status::Skipped("CloudTrail-Digest file".into()),
        (Content::Insight, None) => Status::Skipped("CloudTrail-Insight file".into()),
        (Content::NotCloudTrail(reason), None) => {
            Status::Skipped(format!("not a CloudTrail log: {reason}"))
        }
    };
    Ok(outcome)
}

/// Takes the records of one file: row, scope, dedup, buffer.
struct RecordSink<'s, 'a> {
    file: &'a SourceFile,
    shared: &'a Shared<'a>,
    parts: &'s mut Partitions,
    /// The partition of the previous record and its keys: consecutive records nearly always
    /// share it (and holding its keys keeps them from being spilled).
    last: Option<(PartitionKey, Arc<PartitionKeys>)>,
    counts: &'s mut Counts,
    first_rejection: Option<String>,
    error: Option<SinkError>,
    cut_short: bool,
}

impl RecordSink<'_, '_> {
    /// Returns false to stop reading the file (a fatal sink error, or --strict).
    fn take(&mut self, item: Item) -> bool {
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

    fn store(&mut self, record: &RecordFields) -> Result<bool, SinkError> {
        let row = match to_row(record, &self.file.name, &self.shared.plan.limits) {
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
        if !in_scope(&self.shared.plan.scope, time, &row) {
            self.counts.outside_scope += 1;
            return Ok(true);
        }
        let recipient = row.text(col::RECIPIENT_ACCOUNT_ID);
        let Some(date) = date_of(time) else {
            return Ok(true);
        };
        let same_partition = self.last.as_ref().is_some_and(|(last, _)| {
            last.date() == date && last.account() == partition_account(recipient)
        });
        if !same_partition {
            let partition = PartitionKey::new(recipient, date);
            let keys = self.shared.index.partition(&partition);
            self.last = Some((partition, keys));
        }
        let Some((partition, keys)) = &self.last else {
            return Ok(true); // set just above
        };
        let event_id = row.text(col::EVENT_ID).unwrap_or_default();
        if !self
            .shared
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
}

impl RecordSink<'_, '_> {
    /// Keeps a record that cannot become a row in the rejected log (secrets already redacted).
    fn reject(&mut self, reason: String, text: RecordText) -> Result<bool, SinkError> {
        self.counts.rejected += 1;
        self.shared.rejected.add(&self.file.name, &reason, text)?;
        self.first_rejection.get_or_insert(reason);
        Ok(!self.shared.plan.strict)
    }
}

fn in_scope(scope: &Scope, time: i64, row: &crate::batch::Row) -> bool {
    let listed = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|v| list.iter().any(|x| x == v))
    };
    scope.from.is_none_or(|from| time >= from)
        && scope.to.is_none_or(|to| time < to)
        && listed(&scope.accounts, row.text(col::RECIPIENT_ACCOUNT_ID))
        && listed(&scope.regions, row.text(col::AWS_REGION))
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

impl Ledger {
    /// Counts one input's outcome, and records it in the manifest when it is done for good.
    fn record(
        &mut self,
        file: &SourceFile,
        outcome: &FileOutcome,
        run_id: &str,
    ) -> Result<(), SinkError> {
        let summary = &mut self.summary;
        let counts = outcome.counts;
        summary.records_read += counts.records;
        summary.records_written += counts.written;
        summary.duplicates_dropped += counts.duplicates;
        summary.records_rejected += counts.rejected;
        summary.records_outside_scope += counts.outside_scope;
        summary.sts_records += counts.sts;
        summary.bytes_in += file.size;
        summary.bytes_decompressed += counts.decompressed;
        if let Some(reason) = &outcome.first_rejection {
            summary.fail(
                &file.name,
                format!("{} record(s) rejected (first: {reason})", counts.rejected),
            );
        }
        let status = match &outcome.status {
            Status::Ingested => {
                summary.files_ingested += 1;
                "ingested"
            }
            Status::Partial(reason) => {
                summary.files_partial += 1;
                summary.fail(&file.name, format!("partial: {reason}"));
                "partial"
            }
            Status::Failed(reason) | Status::Unreadable(reason) => {
                summary.files_failed += 1;
                summary.fail(&file.name, reason.clone());
                "failed"
            }
            Status::Skipped(reason) => {
                summary.files_skipped += 1;
                let category = reason.split(':').next().unwrap_or(reason).to_owned();
                *summary.skipped_by_reason.entry(category).or_default() += 1;
                "skipped"
            }
        };
        // A file is done for good only when nothing in it was left out by this run's scope and
        // its failure is about its content (an unreadable file is tried again next time).
        let finished =
            counts.outside_scope == 0 && !matches!(outcome.status, Status::Unreadable(_));
        if !finished || outcome.cut_short {
            return Ok(());
        }
        self.segment.add(&ManifestEntry {
            source: file.name.clone(),
            size: file.size,
            modified: file.version.clone(),
            status: status.to_owned(),
            records: counts.records,
            run: run_id.to_owned(),
        })
    }
}

fn finish_rates(summary: &mut IngestSummary, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    summary.elapsed_seconds = (seconds * 1000.0).round() / 1000.0;
    summary.records_per_second = (summary.records_read as f64 / seconds).round();
    summary.mb_per_second =
        ((summary.bytes_decompressed as f64 / 1e6 / seconds) * 10.0).round() / 10.0;
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

/// `20240301T120000Z-1a2b3c`: sorts by time, unique across concurrent processes.
fn run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xff_ffff;
    format!("{}-{salt:06x}", now.format("%Y%m%dT%H%M%SZ"))
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
    if s.stopped_early {
        out += "  stopped at the first failure (--strict)\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::mpsc::channel;

    fn input(origin: Origin, name: String, size: u64) -> SourceFile {
        SourceFile {
            origin,
            name,
            size,
            version: "1".into(),
        }
    }

    /// Takes every input from a queue of `files`; returns the names taken and those read ahead.
    fn drain(files: Vec<SourceFile>) -> (Vec<String>, Vec<String>) {
        let manifest = Manifest::load(Path::new("/nonexistent/manifest")).expect("empty manifest");
        let (sink, requested) = channel();
        let mut queue = Queue::new(Vec::new(), files, ReadAhead::to_channel(sink));
        let mut counts = DayCounts::default();
        let mut taken = Vec::new();
        while let Some(file) = queue.next(&manifest, &mut counts) {
            taken.push(file.name);
        }
        (taken, requested.try_iter().flatten().collect())
    }

    #[test]
    fn every_local_input_after_the_first_is_read_ahead_once_in_order() {
        let files = (0..100)
            .map(|i| input(Origin::Local, format!("/logs/{i:03}.json.gz"), 1000))
            .collect();
        let (taken, requested) = drain(files);
        assert_eq!(taken.len(), 100);
        assert_eq!(requested, taken[1..]);
    }

    #[test]
    fn large_inputs_shrink_the_window_and_objects_are_not_read_ahead() {
        let manifest = Manifest::load(Path::new("/nonexistent/manifest")).expect("empty manifest");
        let mut files: Vec<_> = (0..10)
            .map(|i| input(Origin::Local, format!("/logs/{i}.json"), 20 << 20))
            .collect();
        files.insert(1, input(Origin::S3, "s3://b/AWSLogs/x.json.gz".into(), 1));
        let (sink, requested) = channel();
        let mut queue = Queue::new(Vec::new(), files, ReadAhead::to_channel(sink));
        let first = queue.next(&manifest, &mut DayCounts::default());
        assert_eq!(first.map(|f| f.name).as_deref(), Some("/logs/0.json"));
        // The window behind the first input: the object (not read ahead), then two 20 MiB
        // files, which reach the 32 MiB bound.
        let ahead: Vec<String> = requested.try_iter().flatten().collect();
        assert_eq!(ahead, ["/logs/1.json", "/logs/2.json"]);
    }
}
