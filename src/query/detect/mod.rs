//! Detections (issue 25): the rules of `queries/detections/*.sql` run over the lake's
//! catalog for a window, each against a baseline of what came before it, and their rows
//! become findings with stable ids. By concept: `rules` (the catalogue and its headers),
//! `window` (window and baseline planning), `config` (the TOML config) with `networks` (its
//! CIDRs), `params` (binding values and config tables), `findings` (the contract),
//! `suppress` (suppressions), `ocsf` (OCSF Detection Finding objects) and `saved` (findings
//! kept in the lake: `--save`, `--new-only`).
//!
//! It takes plain types and returns [`DetectError`]; flags, output and exit codes are the
//! binary's (`commands/detect.rs`). Opening the lake is `query::catalog`'s.

pub mod config;
pub mod findings;
mod networks;
pub mod ocsf;
mod params;
pub mod rules;
pub mod saved;
pub mod suppress;
pub mod window;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use datafusion::execution::context::SessionContext;

use crate::error::QueryError;
use crate::query::materialized;
use crate::query::sql::read_only;
use config::Config;
use findings::{Finding, Severity};
use rules::Rule;
use suppress::Suppressed;
use window::Window;

/// Errors of the detection layer; each names the rule, file or key it is about.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{path}:{line}: {key}: {reason}")]
    Config {
        path: PathBuf,
        line: usize,
        key: String,
        reason: String,
    },
    #[error("reading the config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unknown rule {id:?}; `sts-audit detect --list` shows them")]
    UnknownRule { id: String },
    #[error("rule file queries/detections/{id}.sql: {reason}")]
    RuleFile { id: String, reason: String },
    #[error("rule {id} (queries/detections/{id}.sql): {source}")]
    Rule {
        id: String,
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("rule {rule}: {reason}")]
    Finding { rule: String, reason: String },
    #[error("config table {name}: {reason}")]
    Table { name: &'static str, reason: String },
    #[error("saved findings {file}: {reason}")]
    Saved { file: String, reason: String },
    #[error("{0}")]
    Window(String),
    #[error("the lake holds no events: nothing to detect")]
    EmptyLake,
}

impl From<datafusion::error::DataFusionError> for DetectError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        DetectError::Query(QueryError::from(error))
    }
}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Request {
    /// The window's bounds, microseconds UTC (`to` exclusive); see [`window::plan`].
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Overrides the config's `baseline_days`.
    pub baseline_days: Option<u32>,
    /// Only these rules (else every rule the config does not disable).
    pub rules: Option<Vec<String>>,
    pub min_severity: Severity,
    pub config: Config,
    pub now: DateTime<Utc>,
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Run {
    pub window: Window,
    pub rules: Vec<String>,
    /// Ordered by severity (highest first), then first evidence.
    pub findings: Vec<Finding>,
    pub suppressed: Suppressed,
    /// Findings below `min_severity`: not shown, but saved.
    pub below_min_severity: Vec<Finding>,
}

/// Which of the catalogue's rules run: those asked for, else all but the disabled ones.
pub fn select<'a>(
    catalogue: &'a [Rule],
    asked: Option<&[String]>,
    config: &Config,
) -> Result<Vec<&'a Rule>, DetectError> {
    let Some(asked) = asked else {
        let enabled = catalogue
            .iter()
            .filter(|r| !config.disabled.contains(&r.id));
        return Ok(enabled.collect());
    };
    asked
        .iter()
        .map(|id| {
            catalogue
                .iter()
                .find(|rule| &rule.id == id)
                .ok_or_else(|| DetectError::UnknownRule { id: id.clone() })
        })
        .collect()
}

/// The views that finish the stored ones which detect's rules read (each several times), and
/// which a run therefore computes once (`materialized`).
pub const VIEWS_READ: [&str; 3] = ["assumptions", "sessions", "caller_sources"];

/// Runs the rules `request` selects over the lake of `ctx` (the whole lake: the baseline
/// reads before the window), with the views they read computed once for all of them.
pub async fn detect(ctx: &SessionContext, request: &Request) -> Result<Run, DetectError> {
    let catalogue = rules::catalogue()?;
    let selected = select(&catalogue, request.rules.as_deref(), &request.config)?;
    let _computed = materialized::materialize(ctx, &views_read(&selected)).await?;
    detect_over_computed(ctx, request).await
}

/// Which of [`VIEWS_READ`] the rules' SQL names.
fn views_read(rules: &[&Rule]) -> Vec<&'static str> {
    let named = |rule: &Rule, view: &str| {
        rule.sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
            .any(|word| word == view)
    };
    VIEWS_READ
        .into_iter()
        .filter(|view| rules.iter().any(|rule| named(rule, view)))
        .collect()
}

/// [`detect`] where the caller has computed [`VIEWS_READ`] already (see `materialized`).
pub async fn detect_over_computed(
    ctx: &SessionContext,
    request: &Request,
) -> Result<Run, DetectError> {
    let catalogue = rules::catalogue()?;
    let selected = select(&catalogue, request.rules.as_deref(), &request.config)?;
    let span = window::lake_span(ctx)
        .await?
        .ok_or(DetectError::EmptyLake)?;
    let baseline_days = request
        .baseline_days
        .or(request.config.baseline_days)
        .unwrap_or(window::DEFAULT_BASELINE_DAYS);
    let window = window::plan(span, request.from, request.to, baseline_days, request.now)?;
    params::register_config_tables(ctx, &request.config)?;
    let mut all = Vec::new();
    for rule in &selected {
        all.extend(run_rule(ctx, rule, &window, &request.config).await?);
    }
    let (kept, suppressed) = suppress::apply(all, &request.config.suppressions);
    let (mut findings, below): (Vec<_>, Vec<_>) = kept
        .into_iter()
        .partition(|f| f.severity >= request.min_severity);
    findings.sort_by(|a, b| {
        let order = |f: &Finding| (f.event_time.clone(), f.rule.clone(), f.id.clone());
        b.severity
            .cmp(&a.severity)
            .then_with(|| order(a).cmp(&order(b)))
    });
    Ok(Run {
        window,
        rules: selected.iter().map(|r| r.id.clone()).collect(),
        findings,
        suppressed,
        below_min_severity: below,
    })
}

/// One rule's findings: its SQL planned read-only, its placeholders bound, its rows read.
async fn run_rule(
    ctx: &SessionContext,
    rule: &Rule,
    window: &Window,
    config: &Config,
) -> Result<Vec<Finding>, DetectError> {
    let failed = |source| DetectError::Rule {
        id: rule.id.clone(),
        source: Box::new(source),
    };
    let values = params::values(rule, window, config);
    let frame = ctx
        .sql_with_options(rule.sql, read_only())
        .await
        .and_then(|frame| frame.with_param_values(values))
        .map_err(failed)?;
    let schema = frame.schema().as_arrow().clone().into();
    let batches = frame.collect().await.map_err(failed)?;
    findings::from_batches(&rule.id, schema, batches).await
}
