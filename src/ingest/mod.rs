//! Ingest orchestration: discover inputs, skip what the manifest says is done, decode files in
//! parallel (one rayon thread per job, each with its own partition buffers), publish the manifest
//! and the rejected-records log, and count everything. No format logic lives here: reading
//! sources is `source`'s, decoding `decode`'s, and what becomes of each record `sink`'s.
//!
//! `target` sets up S3 and the lake a run writes, `discover` finds the inputs, `feed` hands
//! them to the workers in order, `worker` does the per-file work, and `summary` counts it all.

mod discover;
mod feed;
mod outcome;
mod summary;
mod target;
mod worker;

use std::sync::PoisonError;
use std::time::Instant;

pub use summary::{Failure, IngestSummary, render_text};

use crate::error::{SinkError, SourceError};
use crate::lake::{MANIFEST_DIR, REJECTED_DIR};
use crate::plan::IngestPlan;
use crate::sink::manifest::Manifest;
use discover::discover;
use summary::Ledger;
use target::{S3Access, Target};
use worker::{Shared, work};

/// What stops an ingest run: a source that cannot be listed at all, or a lake that cannot be
/// written (or read). A bad input never does: it is counted in the summary.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Runs one ingest. Bad inputs are counted in the summary; only a source that cannot be listed
/// or a lake that cannot be written (or read) ends the run with an error.
pub fn run(plan: &IngestPlan) -> Result<IngestSummary, IngestError> {
    let started = Instant::now();
    let run_id = run_id();
    let s3 = S3Access::for_plan(plan)?;
    let target = Target::open(plan, s3.as_ref())?;
    let manifest = Manifest::load(&target.lake.manifest_dir())?;
    let inputs = discover(plan, s3.as_ref())?;
    let shared = Shared::start(plan, &run_id, &target, manifest, inputs, s3.as_ref())?;
    let parquet_files = run_workers(&shared, &target)?;
    let mut summary = finish(shared, &target, parquet_files)?;
    summary.finish_rates(started.elapsed());
    Ok(summary)
}

/// Runs one worker per job until the feed is empty; returns the Parquet files they wrote.
fn run_workers(shared: &Shared, target: &Target) -> Result<u64, SinkError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(shared.plan.jobs)
        .thread_name(|i| format!("ingest-{i}"))
        .build()
        .map_err(|e| SinkError::Io {
            op: "starting workers for",
            path: target.lake.root().to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let reports =
        pool.broadcast(|ctx| work(shared, target.part_writer(shared.run_id, ctx.index())));
    shared.progress.finish_and_clear();
    let mut parquet_files = 0;
    for report in reports {
        parquet_files += report? as u64;
    }
    Ok(parquet_files)
}

/// Publishes the rejected-records log and, last, the manifest segment that says this run's
/// inputs are done; returns the summary.
fn finish(shared: Shared, target: &Target, parquet_files: u64) -> Result<IngestSummary, SinkError> {
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
    summary.parquet_files_written += parquet_files;
    summary.stopped_early = stop.into_inner();
    summary.dedup_spills = index.spills() as u64;
    // Stop fetching (after --strict) before the last uploads need the runtime.
    drop(feed.fetched);
    let rejected_log = rejected.finish()?;
    summary.rejected_log = target.publish_log(rejected_log, REJECTED_DIR)?;
    let segment = segment.publish()?;
    target.publish_log(segment, MANIFEST_DIR)?;
    Ok(summary)
}

/// `20240301T120000123456Z-1a2b3c`: sorts by time, unique across concurrent processes. The
/// manifest's segments are read in name order and a later entry for an input wins, so the time
/// is written to the microsecond: with whole seconds, two runs in one second (a file fixed and
/// ingested again at once) were ordered by their salt, and the earlier run's entry could win.
fn run_id() -> String {
    let now = chrono::Utc::now();
    let salt = (now.timestamp_subsec_nanos() ^ std::process::id().rotate_left(16)) & 0xff_ffff;
    format!("{}-{salt:06x}", now.format("%Y%m%dT%H%M%S%6fZ"))
}

#[cfg(test)]
mod tests {
    use super::run_id;

    #[test]
    fn run_ids_sort_in_the_order_runs_start() {
        let first = run_id();
        std::thread::sleep(std::time::Duration::from_micros(20));
        let second = run_id();
        assert!(first < second, "{first} then {second}");
        assert_eq!(first.len(), "20240301T120000123456Z-1a2b3c".len());
    }
}
