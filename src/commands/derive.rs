//! `sts-audit derive`: builds the derived tables (the library's `query::derive::build`) and prints
//! what it did. `ingest --derive` and `analyze` build them through [`build`] too.

use sts_audit::aws::AwsOptions;
use sts_audit::error::PlanError;
use sts_audit::lake::LakeLocation;
use sts_audit::query::derive::{self as derived, DeriveSummary};

use super::{Outcome, memory_limit, print_stdout, runtime, summary_text};
use crate::cli::DeriveArgs;

pub fn run(args: &DeriveArgs) -> anyhow::Result<Outcome> {
    let lake = LakeLocation::parse(&args.lake).map_err(PlanError::Url)?;
    let memory = memory_limit(args.memory_limit);
    let summary = build(&lake, &AwsOptions::from(&args.aws), memory, args.force)?;
    print_stdout(&summary_text(
        args.format,
        &summary,
        DeriveSummary::render_text,
    )?)?;
    Ok(Outcome::Success)
}

/// Builds the derived tables of `lake` (unless current, or `force`) on a query runtime.
pub fn build(
    lake: &LakeLocation,
    aws: &AwsOptions,
    memory: usize,
    force: bool,
) -> anyhow::Result<DeriveSummary> {
    Ok(runtime()?.block_on(derived::build(lake, aws, memory, force))?)
}
