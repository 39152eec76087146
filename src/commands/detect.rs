//! `sts-audit detect`: runs the detection rules over a window of the lake (the library's
//! `query::detect`), says on stderr which window and baseline it used and what it found, writes
//! the findings in the asked format, and ends with [`Outcome::Findings`] (exit 3) when one
//! reaches `--fail-on`. `--list` and `--explain` show the rule catalogue.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::StringArray;
use chrono::SecondsFormat;
use sts_audit::error::QueryError;
use sts_audit::lake::LakeLocation;
use sts_audit::plan::validate_scope;
use sts_audit::query::detect::config::{self, Config};
use sts_audit::query::detect::findings::{self, Finding, Severity};
use sts_audit::query::detect::rules::{self, ParamValue, Rule};
use sts_audit::query::detect::window::Chosen;
use sts_audit::query::detect::{self, DetectError, Request, Run, ocsf, saved};

use super::{Outcome, Output, open_whole_lake, runtime, text_batch, write_batch};
use crate::cli::{DetectArgs, DetectFormat, LakeArgs, OutputArgs, OutputFormat};

pub fn run(args: &DetectArgs) -> anyhow::Result<Outcome> {
    if !args.lake.scope.accounts.is_empty() {
        eprintln!("sts-audit: error: detect reads every account of the lake (no --account)");
        return Ok(Outcome::Usage);
    }
    let catalogue = rules::catalogue()?;
    let mut out = Output::open(&output_args(args))?;
    let runtime = runtime()?;
    if args.list {
        runtime.block_on(list(&catalogue, table_format(args.format), &mut out))?;
        out.writer.flush()?;
        return Ok(Outcome::Success);
    }
    if let Some(id) = &args.explain {
        let rule = catalogue
            .iter()
            .find(|rule| &rule.id == id)
            .ok_or_else(|| DetectError::UnknownRule { id: id.clone() })?;
        out.writer.write_all(explain(rule).as_bytes())?;
        out.writer.flush()?;
        return Ok(Outcome::Success);
    }
    let request = request(args, &catalogue)?;
    let shown = runtime.block_on(detect_and_save(args, &request))?;
    runtime.block_on(write_findings(&shown, args.format, &mut out))?;
    out.writer.flush()?;
    let failed = args
        .fail_on
        .is_some_and(|level| shown.iter().any(|f| f.severity >= level.into()));
    Ok(match failed {
        true => Outcome::Findings,
        false => Outcome::Success,
    })
}

/// Runs the rules and says what it found; with `--save` keeps every finding in the lake.
/// Returns the findings to show: those reaching `--min-severity`, with `--new-only` only those whose id
/// was not saved before this run.
async fn detect_and_save(args: &DetectArgs, request: &Request) -> anyhow::Result<Vec<Finding>> {
    let catalog = open_whole_lake(&args.lake).await?;
    let saved_before = match args.new_only {
        true => Some(saved::saved_ids(&catalog.ctx).await?),
        false => None,
    };
    let run = detect::detect(&catalog.ctx, request).await?;
    note_run(&run);
    if args.save {
        let every: Vec<Finding> = run
            .findings
            .iter()
            .chain(&run.below_min_severity)
            .cloned()
            .collect();
        let ctx = &catalog.ctx;
        let url = &catalog.events_url;
        let now = chrono::Utc::now();
        saved::save(ctx, url, &run.window, &run.rules, &every, now).await?;
        eprintln!(
            "sts-audit: saved {} finding(s) of the window in the lake (the findings table)",
            every.len()
        );
    }
    let shown = match &saved_before {
        Some(ids) => {
            let new: Vec<Finding> = run
                .findings
                .iter()
                .filter(|f| !ids.contains(&f.id))
                .cloned()
                .collect();
            eprintln!(
                "sts-audit: --new-only: {} new, {} saved before",
                new.len(),
                run.findings.len() - new.len()
            );
            new
        }
        None => run.findings,
    };
    Ok(shown)
}

fn output_args(args: &DetectArgs) -> OutputArgs {
    OutputArgs {
        format: table_format(args.format),
        output: args.output.clone(),
    }
}

/// The renderer's format for listings (OCSF has no listing form: JSON).
fn table_format(format: DetectFormat) -> OutputFormat {
    match format {
        DetectFormat::Table => OutputFormat::Table,
        DetectFormat::Json | DetectFormat::Ocsf => OutputFormat::Json,
        DetectFormat::Ndjson => OutputFormat::Ndjson,
        DetectFormat::Markdown => OutputFormat::Markdown,
        DetectFormat::Csv => OutputFormat::Csv,
    }
}

/// The flags as the library's request; a time that does not parse is a usage error.
fn request(args: &DetectArgs, catalogue: &[Rule]) -> anyhow::Result<Request> {
    let now = chrono::Utc::now();
    let scope = &args.lake.scope;
    let bounds = validate_scope(scope.from.as_deref(), scope.to.as_deref(), &[], now)?;
    let config = match config_file(args.config.as_ref(), &args.lake) {
        Some(path) => config::load(&path, catalogue)?,
        None => Config::empty(),
    };
    Ok(Request {
        from: bounds.from,
        to: bounds.to,
        baseline_days: args.baseline_days,
        rules: args.rules.clone(),
        min_severity: args.min_severity.into(),
        config,
        now,
    })
}

/// `--config`, else the lake's own `sts-audit.toml` when the lake is on disk and has one.
pub(super) fn config_file(config: Option<&PathBuf>, lake: &LakeArgs) -> Option<PathBuf> {
    if let Some(path) = config {
        return Some(path.clone());
    }
    match LakeLocation::parse(&lake.lake) {
        Ok(LakeLocation::Local(lake)) => Some(config::in_lake(&lake)).filter(|p| p.is_file()),
        _ => None,
    }
}

/// Says on stderr which window and baseline were used and what was found and suppressed.
pub(super) fn note_run(run: &Run) {
    let window = &run.window;
    let how = match window.chosen {
        Chosen::LastFullDay => " (the last full day in the lake)",
        Chosen::Given => "",
    };
    eprintln!(
        "sts-audit: window {} .. {}{how}; baseline {:.1} day(s) before it ({} asked{})",
        window.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        window.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        window.baseline_days,
        window.baseline_days_asked,
        match window.baseline_clipped {
            true => ", the lake holds no more",
            false => "",
        }
    );
    let counts: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| (s, run.findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    eprintln!(
        "sts-audit: {} finding(s){} from {} rule(s){}",
        run.findings.len(),
        match counts.is_empty() {
            true => String::new(),
            false => format!(" ({})", counts.join(", ")),
        },
        run.rules.len(),
        match run.below_min_severity.len() {
            0 => String::new(),
            n => format!("; {n} below --min-severity not shown"),
        }
    );
    for ((rule, reason), count) in &run.suppressed {
        eprintln!("sts-audit: suppressed {count} {rule} finding(s): {reason}");
    }
}

/// The findings in `format`.
pub(super) async fn write_findings(
    findings: &[Finding],
    format: DetectFormat,
    out: &mut Output,
) -> anyhow::Result<()> {
    match format {
        DetectFormat::Json => write_json_array(findings.iter().map(serde_json::to_value), out),
        DetectFormat::Ocsf => {
            let now = chrono::Utc::now().timestamp_millis();
            let objects = findings.iter().map(|f| Ok(ocsf::detection_finding(f, now)));
            write_json_array(objects, out)
        }
        DetectFormat::Ndjson => {
            for finding in findings {
                serde_json::to_writer(&mut out.writer, finding)?;
                out.writer.write_all(b"\n")?;
            }
            Ok(())
        }
        DetectFormat::Csv => write_batch(findings::to_batch(findings)?, OutputFormat::Csv, out)
            .await
            .map_err(Into::into),
        DetectFormat::Table | DetectFormat::Markdown => {
            let batch = findings::to_batch(findings)?;
            let main = batch
                .project(&MAIN_FIELDS)
                .map_err(|e| QueryError::Render(e.to_string()))?;
            write_batch(main, table_format(format), out)
                .await
                .map_err(Into::into)
        }
    }
}

/// The fields a table shows (positions in `findings::FIELDS`): id, severity, rule,
/// event_time, account_id, principal_arn, role_arn, source_ip_address, summary.
const MAIN_FIELDS: [usize; 9] = [0, 2, 1, 5, 7, 8, 9, 10, 4];

/// A JSON array, one element a line (as the query commands write JSON).
fn write_json_array(
    values: impl Iterator<Item = serde_json::Result<serde_json::Value>>,
    out: &mut Output,
) -> anyhow::Result<()> {
    let mut first = true;
    out.writer.write_all(b"[")?;
    for value in values {
        out.writer
            .write_all(if first { b"\n  " } else { b",\n  " })?;
        serde_json::to_writer(&mut out.writer, &value?)?;
        first = false;
    }
    out.writer
        .write_all(if first { b"]\n" } else { b"\n]\n" })?;
    Ok(())
}

/// `--list`: the rules as a table.
async fn list(rules: &[Rule], format: OutputFormat, out: &mut Output) -> Result<(), QueryError> {
    let column = |get: &dyn Fn(&Rule) -> String| -> Arc<StringArray> {
        Arc::new(StringArray::from_iter_values(rules.iter().map(get)))
    };
    let batch = text_batch(
        &["id", "title", "severity", "attack", "params"],
        vec![
            column(&|r| r.id.clone()),
            column(&|r| r.title.clone()),
            column(&|r| {
                r.highest_severity()
                    .map(|s| format!("up to {s}"))
                    .unwrap_or_default()
            }),
            column(&|r| r.technique_ids().join(" ")),
            column(&|r| {
                // Patterns are long: `--explain` shows them; numbers fit here.
                let params = r.params.iter().map(|p| match &p.default {
                    ParamValue::Text(_) => p.name.clone(),
                    number => format!("{}={number}", p.name),
                });
                params.collect::<Vec<_>>().join(" ")
            }),
        ],
    )?;
    write_batch(batch, format, out).await
}

/// `--explain ID`: the rule's header as prose, then its SQL.
fn explain(rule: &Rule) -> String {
    let mut text = format!("{}: {}\n\n", rule.id, rule.title);
    let sections = [
        ("Severity", &rule.severity),
        ("ATT&CK", &rule.attack),
        ("How", &rule.rationale),
        ("Baseline", &rule.baseline),
        ("Config tables", &rule.config),
        ("False positives", &rule.false_positives),
    ];
    for (name, body) in sections.iter().filter(|(_, body)| !body.is_empty()) {
        text.push_str(&format!("{name}:\n  {body}\n\n"));
    }
    if !rule.params.is_empty() {
        text.push_str(&format!(
            "Parameters ([rules.{}] in the config):\n",
            rule.id
        ));
        for param in &rule.params {
            let line = format!(
                "  {} = {}  ({})\n",
                param.name, param.default, param.meaning
            );
            text.push_str(&line);
        }
        text.push('\n');
    }
    text.push_str("SQL (queries/detections/");
    text.push_str(&rule.id);
    text.push_str(".sql):\n");
    text.push_str(rule.sql);
    if !rule.sql.ends_with('\n') {
        text.push('\n');
    }
    text
}
