//! The compliance report (issue 26): one document over a period of the lake that a security
//! team can send as it is. By concept: `period` (which span the report covers), `sections`
//! (the catalogued SQL of `queries/compliance/` run with the period bound, each a table),
//! the findings of `query::detect` for the same period, `document` (the [`Report`] they make),
//! `html`, `markdown` and `json` (its three renderings, escaped for their format; `format`
//! names them), `svg` (the charts the HTML draws itself), `text` (cells as text, escaping),
//! `manifest` (what the output was computed from, for an auditor) and `error`. This file only
//! computes and dispatches: no file of the folder imports it.
//!
//! Everything is deterministic: the same lake and period give the same bytes (no generation
//! time, every query ordered with full tie-breakers, the findings without their run time).
//! Flags, the output file and exit codes are the binary's (`commands/compliance.rs`).

pub mod document;
pub mod error;
pub mod format;
pub mod html;
pub mod json;
pub mod manifest;
pub mod markdown;
pub mod period;
pub mod sections;
mod svg;
mod text;

use chrono::{DateTime, Utc};
use datafusion::execution::context::SessionContext;

use crate::query::detect::config::Config;
use crate::query::detect::findings::Severity;
use crate::query::detect::{self, DetectError};
use crate::query::materialized;
pub use document::{Report, SCHEMA_VERSION};
pub use error::ComplianceError;
pub use format::Format;
use period::Period;

/// What a report is asked for: the period's bounds (microseconds UTC, `to` exclusive; either
/// may be absent, see [`period::plan`]) and the detections' config.
#[derive(Debug, Clone)]
pub struct Request {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub config: Config,
    pub now: DateTime<Utc>,
}

/// Computes the report over the lake of `ctx` (opened whole: the detections' baseline reads
/// before the period).
pub async fn build(ctx: &SessionContext, request: &Request) -> Result<Report, ComplianceError> {
    let span = detect::window::lake_span(ctx)
        .await?
        .ok_or(DetectError::EmptyLake)?;
    let period = period::plan(&span, request.from, request.to)?;
    // The sections read sessions and assumptions too: computed once for the whole report.
    let _computed = materialized::materialize(ctx, &detect::VIEWS_READ).await?;
    let run = detect::detect_over_computed(ctx, &detect_request(&period, request)).await?;
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

/// `report` as `format`.
pub fn render(report: &Report, format: Format) -> Result<String, ComplianceError> {
    match format {
        Format::Html => Ok(html::render(report)),
        Format::Markdown => Ok(markdown::render(report)),
        Format::Json => json::render(report),
    }
}
