//! `sts-audit verify`: the flags checked into a [`VerifyPlan`], the run (the library's
//! `verify`), the report on stdout, and with `--lake` the verdicts kept in the lake. Exit 0
//! when everything of the period verified, 4 when something did not.

use std::io::Write;

use chrono::{DateTime, Utc};
use sts_audit::aws::AwsOptions;
use sts_audit::error::PlanError;
use sts_audit::lake::LakeLocation;
use sts_audit::lake::scope::Scope;
use sts_audit::plan;
use sts_audit::verify::chain::Period;
use sts_audit::verify::keys::PublicKeys;
use sts_audit::verify::report::FileVerdict;
use sts_audit::verify::{self, VerifyPlan, record};

use super::{Outcome, Output, print_stdout, runtime, write_batch};
use crate::cli::{OutputFormat, VerifyArgs, VerifyFormat};

pub fn run(args: &VerifyArgs) -> anyhow::Result<Outcome> {
    let now = Utc::now();
    let lake = args
        .lake
        .as_deref()
        .map(LakeLocation::parse)
        .transpose()
        .map_err(PlanError::Url)?;
    let plan = plan_of(args, now)?;
    let report = verify::run(&plan)?;
    match args.format {
        VerifyFormat::Table => print_stdout(&report.render_text())?,
        VerifyFormat::Markdown => print_stdout(&report.render_markdown())?,
        VerifyFormat::Json => print_stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?,
        VerifyFormat::Csv => print_verdicts(&report.records, OutputFormat::Csv, now)?,
        VerifyFormat::Ndjson => print_verdicts(&report.records, OutputFormat::Ndjson, now)?,
    }
    if let Some(lake) = &lake {
        let written = record::write(lake, &plan.aws, &report.records, now)?;
        eprintln!(
            "sts-audit: recorded {} verdicts in {written}",
            report.records.len()
        );
    }
    Ok(match report.passed {
        true => Outcome::Success,
        false => Outcome::Unverified,
    })
}

/// Every verdict as a row of the lake's `verified` table, by account, region, time and file.
fn print_verdicts(
    verdicts: &[FileVerdict],
    format: OutputFormat,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut sorted = verdicts.to_vec();
    sorted.sort_by(|a, b| {
        let key = |v: &FileVerdict| (v.account.clone(), v.region.clone(), v.start, v.kind);
        key(a).cmp(&key(b)).then_with(|| a.subject.cmp(&b.subject))
    });
    let batch = record::batch(&sorted, now)?;
    let mut out = Output::stdout();
    runtime()?.block_on(write_batch(batch, format, &mut out))?;
    match out.writer.flush() {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The flags as a plan: the period (default: everything found, up to now), sources, keys.
fn plan_of(args: &VerifyArgs, now: DateTime<Utc>) -> anyhow::Result<VerifyPlan> {
    let scope = &args.scope;
    let bounds = plan::validate_scope(
        scope.from.as_deref(),
        scope.to.as_deref(),
        &scope.accounts,
        now,
    )?;
    let time = |micros: i64| DateTime::from_timestamp_micros(micros);
    let period = Period {
        from: bounds
            .from
            .and_then(time)
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        to: bounds.to.and_then(time).unwrap_or(now),
    };
    let sources = args
        .sources
        .iter()
        .map(|text| plan::source_location(text))
        .collect::<Result<Vec<_>, _>>()?;
    if args.concurrency == 0 {
        return Err(PlanError::Concurrency.into());
    }
    let public_keys = match args.public_keys.is_empty() {
        true => None,
        false => {
            let mut keys = PublicKeys::default();
            for path in &args.public_keys {
                keys.add_file(path)?;
            }
            Some(keys)
        }
    };
    Ok(VerifyPlan {
        sources,
        scope: Scope {
            from: bounds.from,
            to: Some(period.to.timestamp_micros()),
            accounts: scope.accounts.clone(),
            regions: args.regions.clone(),
        },
        period,
        public_keys,
        aws: AwsOptions::from(&args.aws),
        concurrency: args.concurrency,
    })
}
