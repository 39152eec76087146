//! `sts-audit report`: runs one report of `queries/reports/` (plus `--queries DIR`) over the
//! lake, or lists them. Loading and finding reports is the library's `query::report`. The
//! name `compliance` is the compliance report (`commands/compliance.rs`), which no report
//! file can replace.

use std::sync::Arc;

use arrow::array::StringArray;
use sts_audit::error::QueryError;
use sts_audit::query::report::{self, Report};

use super::{
    Outcome, Output, compliance, open_lake, run_script, runtime, text_batch, within, write_batch,
};
use crate::cli::{OutputFormat, ReportArgs};

/// The name of the compliance report.
const COMPLIANCE: &str = "compliance";

pub fn run(args: &ReportArgs) -> anyhow::Result<Outcome> {
    if args.name.as_deref() == Some(COMPLIANCE) {
        return compliance::run(args);
    }
    let reports = report::load(args.queries.as_deref())?;
    let mut out = Output::open(&args.output)?;
    let runtime = runtime()?;
    if args.list {
        let compliance = compliance_entry();
        let mut all: Vec<_> = reports.values().collect();
        all.push(&compliance);
        all.sort_by(|a, b| a.name.cmp(&b.name));
        runtime.block_on(list(&all, args.output.format, &mut out))?;
        return Ok(Outcome::Success);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let report = report::find(&reports, name)?;
    runtime.block_on(async {
        let ctx = open_lake(&args.lake).await?;
        let work = run_script(&ctx, &report.sql, args.output.format, &mut out);
        within(args.timeout, work).await?;
        anyhow::Ok(())
    })?;
    Ok(Outcome::Success)
}

/// The compliance report as `--list` shows it.
fn compliance_entry() -> Report {
    Report {
        name: COMPLIANCE.to_owned(),
        title: "Compliance report".to_owned(),
        description: "Coverage and gaps, who reached which roles and how, the cross-account \
                      matrix, session durations, role chains, denied attempts and detect's \
                      findings for the period, as HTML, Markdown or JSON (--output \
                      FILE.html|.md|.json), with a manifest"
            .to_owned(),
        sql: String::new(),
        origin: "built-in".to_owned(),
    }
}

/// `report --list`: the reports as a table.
async fn list(
    reports: &[&Report],
    format: OutputFormat,
    out: &mut Output,
) -> Result<(), QueryError> {
    let column = |get: fn(&Report) -> String| -> Arc<StringArray> {
        Arc::new(StringArray::from_iter_values(
            reports.iter().map(|r| get(r)),
        ))
    };
    let batch = text_batch(
        &["name", "title", "description", "origin"],
        vec![
            column(|r| r.name.clone()),
            column(|r| r.title.clone()),
            column(|r| r.description.clone()),
            column(|r| r.origin.clone()),
        ],
    )?;
    write_batch(batch, format, out).await
}
