//! The manifest written beside a report (`<output>.manifest.json`): the SHA-256 of the output,
//! the lake's fingerprint (the event files' names and sizes and the views' SQL, as
//! `lake::derived` hashes them), the period, the program's version and every statement the
//! report ran (its sections and the detection rules), so an auditor can tell what a report was
//! computed from and recompute it. Deterministic like the report: no time of generation.

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::document::{Report, SCHEMA_VERSION};
use super::error::ComplianceError;
use super::format::Format;
use super::period::Period;
use crate::lake::derived::{self, LakeStore};
use crate::query::catalog;
use crate::query::detect::rules;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    /// The report's file name (without its folder, so moving both keeps them matched).
    pub output: String,
    pub format: &'static str,
    pub sha256: String,
    pub bytes: u64,
    pub schema_version: &'static str,
    pub program_version: &'static str,
    /// `derived::lake_fingerprint`: changes with any event file published and with the views.
    pub lake_fingerprint: String,
    pub event_files: u64,
    pub period: Period,
    pub sections: Vec<Statement>,
    pub detections: Vec<Statement>,
}

/// One statement the report ran: the section or rule id and its SQL text.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub id: String,
    pub sql: String,
}

/// The manifest of `output` (`name`, rendered as `format` from `report`) over the lake whose
/// events are at `events_url`.
pub async fn build(
    ctx: &SessionContext,
    events_url: &ListingTableUrl,
    report: &Report,
    format: Format,
    name: &str,
    output: &[u8],
) -> Result<Manifest, ComplianceError> {
    let store = LakeStore::of(ctx, events_url)?;
    let (lake_fingerprint, event_files) =
        derived::lake_fingerprint(&store, &catalog::views_sql()).await?;
    let catalogue = rules::catalogue()?;
    let detections = catalogue
        .iter()
        .filter(|rule| report.detection_rules.contains(&rule.id))
        .map(|rule| Statement {
            id: rule.id.clone(),
            sql: rule.sql.to_owned(),
        });
    let sections = report.sections.iter().map(|section| Statement {
        id: section.id.to_owned(),
        sql: section.sql.to_owned(),
    });
    Ok(Manifest {
        output: name.to_owned(),
        format: format.as_str(),
        sha256: sha256_hex(output),
        bytes: output.len() as u64,
        schema_version: SCHEMA_VERSION,
        program_version: env!("CARGO_PKG_VERSION"),
        lake_fingerprint,
        event_files,
        period: report.period.clone(),
        sections: sections.collect(),
        detections: detections.collect(),
    })
}

/// Lowercase hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Manifest {
    pub fn to_json(&self) -> Result<String, ComplianceError> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| ComplianceError::Section {
                id: "manifest".to_owned(),
                reason: e.to_string(),
            })?;
        text.push('\n');
        Ok(text)
    }
}
