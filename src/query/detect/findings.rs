//! Findings: the stable contract `detect` prints (`json`, `ndjson`, the table formats) and the
//! one OCSF maps. A rule's result rows become findings here: the contract columns by name,
//! every column after `attack` into `details`, and the stable `id` hashed from the rule's
//! `finding_key`. Which rules run and how they are bound is `mod`; suppressions `suppress`.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::DetectError;
use crate::render;

/// How much a finding matters, lowest first (so `>=` compares with `--min-severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str() == text)
            .ok_or_else(|| format!("{text:?} is not a severity (low, medium, high, critical)"))
    }
}

/// One finding, the fields in contract order; `None` is JSON `null` (the field does not apply).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The first 32 hex digits of sha256 of the rule's `finding_key`: stable across runs.
    pub id: String,
    pub rule: String,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    /// RFC 3339 UTC.
    pub event_time: Option<String>,
    pub last_event_time: Option<String>,
    pub account_id: Option<String>,
    pub principal_arn: Option<String>,
    pub role_arn: Option<String>,
    pub source_ip_address: Option<String>,
    pub access_key_id: Option<String>,
    pub event_ids: Vec<String>,
    pub attack: Vec<String>,
    /// The rule's own numbers: every column after `attack`.
    pub details: Map<String, Value>,
}

/// The contract fields, in order (`details` last).
pub const FIELDS: [&str; 15] = [
    "id",
    "rule",
    "severity",
    "title",
    "summary",
    "event_time",
    "last_event_time",
    "account_id",
    "principal_arn",
    "role_arn",
    "source_ip_address",
    "access_key_id",
    "event_ids",
    "attack",
    "details",
];

/// The stable id of a finding about `finding_key`.
pub fn finding_id(finding_key: &str) -> String {
    let digest = Sha256::digest(finding_key.as_bytes());
    digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The findings of rule `rule` from its result rows. Cells are read as the JSON renderer
/// writes them (times as RFC 3339 UTC, lists as arrays), so every format agrees.
pub async fn from_batches(
    rule: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<Finding>, DetectError> {
    let bad = |reason: String| DetectError::Finding {
        rule: rule.to_owned(),
        reason,
    };
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let detail_names = match names.iter().position(|name| name == "attack") {
        Some(at) => &names[at + 1..],
        None => return Err(bad("the result has no `attack` column".to_owned())),
    };
    let rows = render::json_rows(&schema, batches).await?;
    rows.into_iter()
        .map(|row| finding(row, detail_names).map_err(bad))
        .collect()
}

/// One row as a finding.
fn finding(mut row: Map<String, Value>, detail_names: &[String]) -> Result<Finding, String> {
    let details = detail_names
        .iter()
        .map(|name| (name.clone(), row.remove(name).unwrap_or(Value::Null)))
        .collect();
    let mut text = |name: &str| match row.remove(name) {
        Some(Value::String(text)) => Some(text),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let finding_key = text("finding_key").ok_or("a row has no finding_key")?;
    let severity = text("severity").ok_or("a row has no severity")?.parse()?;
    Ok(Finding {
        id: finding_id(&finding_key),
        rule: text("rule").ok_or("a row has no rule")?,
        severity,
        title: text("title").unwrap_or_default(),
        summary: text("summary").unwrap_or_default(),
        event_time: text("event_time"),
        last_event_time: text("last_event_time"),
        account_id: text("account_id"),
        principal_arn: text("principal_arn"),
        role_arn: text("role_arn"),
        source_ip_address: text("source_ip_address"),
        access_key_id: text("access_key_id"),
        event_ids: strings(row.remove("event_ids")),
        attack: strings(row.remove("attack")),
        details,
    })
}

/// A list cell as its non-null strings.
fn strings(value: Option<Value>) -> Vec<String> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Value::String(text) => Some(text),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect()
}

/// The findings as one batch of text columns for the table, CSV and Markdown renderers:
/// the contract fields, lists joined with spaces, `details` as compact JSON.
pub fn to_batch(findings: &[Finding]) -> Result<RecordBatch, DetectError> {
    let schema = Arc::new(Schema::new(
        FIELDS
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = FIELDS
        .iter()
        .map(|name| {
            let cells = findings.iter().map(|f| cell(f, name));
            Arc::new(StringArray::from_iter(cells)) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema, columns)
        .map_err(|e| DetectError::Query(crate::error::QueryError::Render(e.to_string())))
}

/// One field of a finding as table text.
fn cell(finding: &Finding, name: &str) -> Option<String> {
    let text = |value: &Option<String>| value.clone();
    match name {
        "id" => Some(finding.id.clone()),
        "rule" => Some(finding.rule.clone()),
        "severity" => Some(finding.severity.to_string()),
        "title" => Some(finding.title.clone()),
        "summary" => Some(finding.summary.clone()),
        "event_time" => text(&finding.event_time),
        "last_event_time" => text(&finding.last_event_time),
        "account_id" => text(&finding.account_id),
        "principal_arn" => text(&finding.principal_arn),
        "role_arn" => text(&finding.role_arn),
        "source_ip_address" => text(&finding.source_ip_address),
        "access_key_id" => text(&finding.access_key_id),
        "event_ids" => Some(finding.event_ids.join(" ")),
        "attack" => Some(finding.attack.join(" ")),
        _ => Some(Value::Object(finding.details.clone()).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_sha256_prefixes() {
        // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        assert_eq!(finding_id("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High);
        assert!(Severity::Medium > Severity::Low);
        assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
        assert!("severe".parse::<Severity>().is_err());
    }

    #[test]
    fn a_row_becomes_a_finding() {
        let row = serde_json::json!({
            "finding_key": "r|x", "rule": "r", "severity": "medium", "title": "t",
            "summary": "s", "event_time": "2025-06-08T06:00:00Z", "account_id": null,
            "event_ids": ["b", "a"], "attack": ["T1078.004"], "observed": 3
        });
        let Value::Object(row) = row else { panic!() };
        let finding = finding(row, &["observed".to_owned()]).unwrap();
        assert_eq!(finding.id, finding_id("r|x"));
        assert_eq!(finding.severity, Severity::Medium);
        assert_eq!(finding.account_id, None);
        assert_eq!(finding.event_ids, ["b", "a"]);
        assert_eq!(finding.details["observed"], 3);
    }
}
