//! `sts-audit ingest`: the flags checked into an [`IngestPlan`], the run (with `--derive`, the
//! derived tables after it, under the lake's lock) and its summary. The ingest itself is the
//! library's `ingest`; the derived tables are built as `derive` builds them.

use chrono::{DateTime, Utc};
use sts_audit::aws::AwsOptions;
use sts_audit::decode::record::RecordLimits;
use sts_audit::error::PlanError;
use sts_audit::ingest::{self, render_text};
use sts_audit::lake::scope::Scope;
use sts_audit::lake::{LakeLocation, LakeLock};
use sts_audit::plan::{self, IngestPlan, bytes, default_memory_limit};

use super::{Outcome, derive, print_stdout};
use crate::cli::{IngestArgs, SummaryFormat};

pub fn run(args: &IngestArgs) -> anyhow::Result<Outcome> {
    let plan = plan_of(args, Utc::now())?;
    // With --derive, a lake on disk stays locked from the first file to the derived tables.
    let _lock = match (&plan.lake, args.derive) {
        (LakeLocation::Local(root), true) => Some(LakeLock::acquire(root)?),
        _ => None,
    };
    let summary = ingest::run(&plan)?;
    // Built even when some inputs failed: what was ingested is consistent and worth querying.
    let derived = match args.derive {
        true => Some(derive::build(
            &plan.lake,
            &plan.aws,
            default_memory_limit(),
            false,
        )?),
        false => None,
    };
    let text = match args.format {
        SummaryFormat::Text => {
            render_text(&summary) + &derived.map(|d| d.render_text()).unwrap_or_default()
        }
        SummaryFormat::Json => {
            let mut value = serde_json::to_value(&summary)?;
            if let Some(derived) = derived {
                value["derived"] = serde_json::to_value(derived)?;
            }
            serde_json::to_string_pretty(&value)? + "\n"
        }
    };
    print_stdout(&text)?;
    Ok(Outcome::unless_failures(summary.has_failures()))
}

/// The flags as a plan: scope checked, sources found, lake parsed, counts at least 1.
pub fn plan_of(args: &IngestArgs, now: DateTime<Utc>) -> Result<IngestPlan, PlanError> {
    let scope = &args.scope;
    let bounds = plan::validate_scope(
        scope.from.as_deref(),
        scope.to.as_deref(),
        &scope.accounts,
        now,
    )?;
    let sources = args
        .sources
        .iter()
        .map(|text| plan::source_location(text))
        .collect::<Result<Vec<_>, _>>()?;
    let lake = LakeLocation::parse(&args.lake).map_err(PlanError::Url)?;
    if args.concurrency == 0 {
        return Err(PlanError::Concurrency);
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        return Err(PlanError::Jobs);
    }
    Ok(IngestPlan {
        sources,
        lake,
        aws: AwsOptions::from(&args.aws),
        concurrency: args.concurrency,
        scope: Scope {
            from: bounds.from,
            to: bounds.to,
            accounts: scope.accounts.clone(),
            regions: args.regions.clone(),
        },
        jobs,
        strict: args.strict,
        follow_symlinks: args.follow_symlinks,
        max_file_bytes: args.max_file_size,
        limits: RecordLimits {
            // A text value is addressed by a 32-bit length in its Arrow view.
            max_record_bytes: bytes(args.max_record_size.min(u32::MAX.into())),
            ..RecordLimits::default()
        },
        buffer_bytes: bytes(args.buffer_size),
        dedup_bytes: bytes(args.dedup_memory),
        progress: !args.quiet,
    })
}
