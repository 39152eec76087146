//! `sts-audit analyze`: ingests SOURCE into a lake (a temporary one unless `--lake`), builds
//! its derived tables, and prints the core reports (`report::CORE_REPORTS`), each under its
//! title, then what `sts-audit detect` finds in the logs' last full day. Ingest runs exactly as
//! `sts-audit ingest` would with the same flags.

use std::io::Write;

use chrono::SecondsFormat;

use clap::{Args, FromArgMatches};
use datafusion::execution::context::SessionContext;
use sts_audit::aws::AwsOptions;
use sts_audit::error::QueryError;
use sts_audit::ingest::{self, render_text};
use sts_audit::lake::{LakeLocation, LakeLock};
use sts_audit::plan::default_memory_limit;
use sts_audit::query::catalog::{self, QueryScope};
use sts_audit::query::detect::config::{self, Config};
use sts_audit::query::detect::findings::Severity;
use sts_audit::query::detect::{DetectError, Request, Run, rules};
use sts_audit::query::report;
use sts_audit::query::sql as statements;
use sts_audit::render;

use super::{Outcome, Output, derive, detect, ingest::plan_of, run_script, runtime};
use crate::cli::{AnalyzeArgs, DetectFormat, IngestArgs, OutputFormat};

pub fn run(args: &AnalyzeArgs) -> anyhow::Result<Outcome> {
    if matches!(args.format, OutputFormat::Csv | OutputFormat::Ndjson) {
        eprintln!(
            "sts-audit: error: analyze prints several reports: use --format table, markdown or json (or `report` for one report as CSV/NDJSON)"
        );
        return Ok(Outcome::Usage);
    }
    // Removed when dropped, at the end of the run.
    let temporary = match &args.lake {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let lake = match (&args.lake, &temporary) {
        (Some(lake), _) => lake.clone(),
        (_, Some(dir)) => dir.path().join("lake").display().to_string(),
        (None, None) => unreachable!("a temporary lake is made when --lake is absent"),
    };
    let plan = plan_of(&ingest_args(args, lake)?, chrono::Utc::now())?;
    let _lock = match &plan.lake {
        LakeLocation::Local(root) => Some(LakeLock::acquire(root)?),
        LakeLocation::S3(_) => None,
    };
    let summary = ingest::run(&plan)?;
    // The summary goes to stderr so that stdout holds the reports alone.
    eprint!("{}", render_text(&summary));
    // Five reports read assumptions and sessions: computing them once is cheaper.
    derive::build(&plan.lake, &plan.aws, default_memory_limit(), false)?;
    let mut out = Output::stdout();
    runtime()?.block_on(print_core_reports(
        &plan.lake,
        &plan.aws,
        args.format,
        &mut out,
    ))?;
    Ok(Outcome::unless_failures(summary.has_failures()))
}

/// The `ingest` flags for `analyze`'s run: what `analyze` has (sources, scope, quiet, AWS
/// access) from its flags, the rest at `ingest`'s own defaults, which clap parses from an
/// `ingest` command line naming nothing else, so that the two commands cannot drift apart.
fn ingest_args(args: &AnalyzeArgs, lake: String) -> anyhow::Result<IngestArgs> {
    let command = IngestArgs::augment_args(clap::Command::new("ingest"));
    let matches = command.try_get_matches_from(["ingest", "SOURCE"])?;
    let mut ingest = IngestArgs::from_arg_matches(&matches)?;
    ingest.sources = args.sources.clone();
    ingest.lake = lake;
    ingest.scope = args.scope.clone();
    ingest.quiet = args.quiet;
    ingest.aws = args.aws.clone();
    Ok(ingest)
}

/// Prints the core reports over `lake`, each under its title, then the findings.
async fn print_core_reports(
    lake: &LakeLocation,
    aws: &AwsOptions,
    format: OutputFormat,
    out: &mut Output,
) -> anyhow::Result<()> {
    let ctx = catalog::open(lake, aws, &QueryScope::default(), default_memory_limit()).await?;
    let reports = report::load(None)?;
    let mut json = serde_json::Map::new();
    for name in report::CORE_REPORTS {
        let report = report::find(&reports, name)?;
        match format {
            OutputFormat::Json => {
                let mut text = Vec::new();
                let (schema, stream) = single_statement(&ctx, &report.sql).await?;
                render::write_stream(format.into(), out.style, &schema, stream, &mut text).await?;
                json.insert(report.name.clone(), serde_json::from_slice(&text)?);
            }
            OutputFormat::Markdown => {
                writeln!(
                    out.writer,
                    "## {}\n\n{}\n",
                    report.title, report.description
                )?;
                run_script(&ctx, &report.sql, format, out).await?;
                writeln!(out.writer)?;
            }
            _ => {
                writeln!(out.writer, "{} ({})", report.title, report.name)?;
                run_script(&ctx, &report.sql, format, out).await?;
                writeln!(out.writer)?;
            }
        }
    }
    // A lake of digest files alone holds no event: the reports are empty, nothing to detect.
    let Some(run) = findings(&ctx, lake).await? else {
        if format == OutputFormat::Json {
            writeln!(out.writer, "{}", serde_json::to_string_pretty(&json)?)?;
        }
        out.writer.flush()?;
        return Ok(());
    };
    match format {
        OutputFormat::Json => {
            json.insert("findings".to_owned(), serde_json::to_value(&run.findings)?);
            // Serialized first, so that a failed write stays an io::Error (a closed stdout).
            let text = serde_json::to_string_pretty(&json)?;
            writeln!(out.writer, "{text}")?;
        }
        OutputFormat::Markdown => {
            writeln!(out.writer, "## Findings\n\n{}\n", findings_title(&run))?;
            detect::write_findings(&run.findings, DetectFormat::Markdown, out).await?;
        }
        _ => {
            writeln!(out.writer, "Findings (detect): {}", findings_title(&run))?;
            detect::write_findings(&run.findings, DetectFormat::Table, out).await?;
        }
    }
    out.writer.flush()?;
    Ok(())
}

/// What `sts-audit detect` finds with its defaults (the lake's own `sts-audit.toml`, when a
/// lake on disk has one): the last full day, against the days before it.
async fn findings(ctx: &SessionContext, lake: &LakeLocation) -> anyhow::Result<Option<Run>> {
    let catalogue = rules::catalogue()?;
    let config = match lake {
        LakeLocation::Local(root) if config::in_lake(root).is_file() => {
            config::load(&config::in_lake(root), &catalogue)?
        }
        _ => Config::empty(),
    };
    let request = Request {
        from: None,
        to: None,
        baseline_days: None,
        rules: None,
        min_severity: Severity::Low,
        config,
        now: chrono::Utc::now(),
    };
    let run = match sts_audit::query::detect::detect(ctx, &request).await {
        Ok(run) => run,
        Err(DetectError::EmptyLake) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    detect::note_run(&run);
    Ok(Some(run))
}

/// The line above the findings: the window and baseline they come from.
fn findings_title(run: &Run) -> String {
    let window = &run.window;
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    format!(
        "what `sts-audit detect` flags in {} .. {}, against the {:.1} day(s) before it \
         (`sts-audit detect --explain RULE` tells what each rule looks for)",
        time(window.start),
        time(window.end),
        window.baseline_days
    )
}

/// The first statement of a report, run; its results as one stream.
async fn single_statement(
    ctx: &SessionContext,
    script: &str,
) -> Result<
    (
        arrow::datatypes::SchemaRef,
        datafusion::execution::SendableRecordBatchStream,
    ),
    QueryError,
> {
    let mut statements = statements::parse_statements(script)?;
    let statement = statements
        .pop_front()
        .ok_or_else(|| QueryError::NotReadOnly("empty report".to_owned()))?;
    statements::execute(ctx, statement).await
}
