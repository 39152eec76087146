//! The compliance report (issue 26): one document over a period of the lake that a security
//! team can send as it is. By concept: `period` (which span the report covers), `sections`
//! (the catalogued SQL of `queries/compliance/` run with the period bound, each a table),
//! the findings of `query::detect` for the same period, `html`, `markdown` and `json` (the
//! three renderings of one [`Report`], escaped for their format), `svg` (the charts the HTML
//! draws itself) and `manifest` (what the output was computed from, for an auditor).
//!
//! Everything is deterministic: the same lake and period give the same bytes (no generation
//! time, every query ordered with full tie-breakers, the findings without their run time).
//! Flags, the output file and exit codes are the binary's (`commands/compliance.rs`).

pub mod html;
pub mod json;
pub mod manifest;
pub mod markdown;
pub mod period;
pub mod sections;
mod svg;
mod text;

use std::path::Path;

use chrono::{DateTime, Utc};
use datafusion::execution::context::SessionContext;
use serde::Serialize;

use crate::error::QueryError;
use crate::query::detect::config::Config;
use crate::query::detect::findings::{Finding, Severity};
use crate::query::detect::{self, DetectError};
use period::Period;
use sections::Section;

/// The version of the JSON rendering's layout (README, "report compliance"); bumped when a
/// field changes meaning or goes away.
pub const SCHEMA_VERSION: &str = "1";

/// Errors of the compliance report; each names the section it is about.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("compliance section {id} (queries/compliance/{id}.sql): {reason}")]
    Section { id: String, reason: String },
}

/// What a report is asked for: the period's bounds (microseconds UTC, `to` exclusive; either
/// may be absent, see [`period::plan`]) and the detections' config.
#[derive(Debug, Clone)]
pub struct Request {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub config: Config,
    pub now: DateTime<Utc>,
}

/// The report's content, which every format renders in full.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: &'static str,
    pub period: Period,
    /// In the order the documents show them; see [`sections::SECTIONS`].
    pub sections: Vec<Section>,
    /// Highest severity first, then by first evidence (as `detect` orders them).
    pub findings: Vec<Finding>,
    /// The detection rules that ran.
    pub detection_rules: Vec<String>,
}

impl Report {
    /// The section `id`; every id of [`sections::SECTIONS`] is present.
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Computes the report over the lake of `ctx` (opened whole: the detections' baseline reads
/// before the period).
pub async fn build(ctx: &SessionContext, request: &Request) -> Result<Report, ComplianceError> {
    let span = detect::window::lake_span(ctx)
        .await?
        .ok_or(DetectError::EmptyLake)?;
    let period = period::plan(&span, request.from, request.to)?;
    let run = detect::detect(ctx, &detect_request(&period, request)).await?;
    let period = period.with_baseline(run.window.baseline_start);
    // The detections registered the config tables (`cfg_org_accounts`, ...) the sections join.
    let sections = sections::run_all(ctx, &period).await?;
    Ok(Report {
        schema_version: SCHEMA_VERSION,
        period,
        sections,
        findings: run.findings,
        detection_rules: run.rules,
    })
}

/// The detections over exactly the report's period, every severity.
fn detect_request(period: &Period, request: &Request) -> detect::Request {
    detect::Request {
        from: Some(period.start_micros()),
        to: Some(period.end_micros()),
        baseline_days: None,
        rules: None,
        min_severity: Severity::Low,
        config: request.config.clone(),
        now: request.now,
    }
}

/// The three renderings, chosen by the output file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Markdown,
    Json,
}

impl Format {
    /// `.html` (or `.htm`), `.md`, `.json`; None for anything else.
    pub fn of_path(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "html" | "htm" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "markdown",
            Format::Json => "json",
        }
    }
}

/// `report` as `format`.
pub fn render(report: &Report, format: Format) -> Result<String, ComplianceError> {
    match format {
        Format::Html => Ok(html::render(report)),
        Format::Markdown => Ok(markdown::render(report)),
        Format::Json => json::render(report),
    }
}
