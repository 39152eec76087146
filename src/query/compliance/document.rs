//! What a compliance report holds ([`Report`]), which the three renderings (`html`,
//! `markdown`, `json`) and the `manifest` read; computing it is `mod`'s.

use serde::Serialize;

use super::period::Period;
use super::sections::Section;
use crate::query::detect::findings::{Finding, Severity};

/// The version of the JSON rendering's layout (README, "report compliance"); bumped when a
/// field changes meaning or goes away.
pub const SCHEMA_VERSION: &str = "1";

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

/// A finding's evidence as the documents list it: (field, value), the empty ones left out.
/// The rule's own numbers (`details`) follow it, each format in its own layout.
pub fn evidence(f: &Finding) -> Vec<(&'static str, String)> {
    let fields = [
        ("finding id", Some(f.id.clone())),
        ("rule", Some(f.rule.clone())),
        ("first evidence", f.event_time.clone()),
        ("last evidence", f.last_event_time.clone()),
        ("account", f.account_id.clone()),
        ("principal", f.principal_arn.clone()),
        ("role", f.role_arn.clone()),
        ("source IP", f.source_ip_address.clone()),
        ("access key", f.access_key_id.clone()),
        ("ATT&CK", Some(f.attack.join(", "))),
        ("event IDs", Some(f.event_ids.join(" "))),
    ];
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|v| !v.is_empty())?)))
        .collect()
}
