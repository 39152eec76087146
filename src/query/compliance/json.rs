//! The JSON rendering: the [`Report`] as it is, `schema_version` first (README, "report
//! compliance", documents the fields). serde_json writes maps in key order and the report's
//! lists are ordered, so the bytes are deterministic.

use super::document::Report;
use super::error::ComplianceError;

pub fn render(report: &Report) -> Result<String, ComplianceError> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| ComplianceError::Section {
        id: "json".to_owned(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    Ok(text)
}
