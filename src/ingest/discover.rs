//! What a run finds to read: the local sources walked (their day folders left to be listed as
//! the workers reach them) and the S3 sources listed, in visiting order. How a walk or a listing
//! works is left to `source`.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::target::S3Access;
use crate::error::SourceError;
use crate::plan::{IngestPlan, SourceLocation};
use crate::source::local::{self, DayGroup};
use crate::source::{Discovery, SourceFile, s3, sort_for_visiting};

/// What a run found to read: local day folders (not listed yet), and the inputs listed whole
/// (local files outside the layout, S3 objects), in visiting order.
pub(super) struct Inputs {
    pub days: Vec<DayGroup>,
    pub listed: Vec<SourceFile>,
    pub pruned_folders: usize,
    pub errors: Vec<SourceError>,
}

/// Walks the local sources and lists the S3 ones. A source that cannot be listed at all (no
/// such bucket, access denied) stops the run: there would be nothing to ingest.
pub(super) fn discover(plan: &IngestPlan, s3: Option<&S3Access>) -> Result<Inputs, SourceError> {
    let local_sources: Vec<PathBuf> = plan
        .sources
        .iter()
        .filter_map(|source| match source {
            SourceLocation::Local(path) => Some(path.clone()),
            SourceLocation::S3(_) => None,
        })
        .collect();
    let local = local::discover(&local_sources, &plan.scope, plan.follow_symlinks);
    let mut remote = list_s3(plan, s3)?;
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

/// Lists every S3 source, in visiting order.
fn list_s3(plan: &IngestPlan, s3: Option<&S3Access>) -> Result<Discovery, SourceError> {
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
    Ok(remote)
}

impl Inputs {
    /// The bytes a progress bar counts to: those of every input, day folders measured without
    /// keeping their names. Only worth the extra walk when someone watches the bar.
    pub fn total_bytes(&self, plan: &IngestPlan) -> u64 {
        if !plan.progress || !std::io::stderr().is_terminal() {
            return 0;
        }
        let listed_bytes: u64 = self.listed.iter().map(|f| f.size).sum();
        listed_bytes + self.days.iter().map(|day| day.measure().1).sum::<u64>()
    }
}
