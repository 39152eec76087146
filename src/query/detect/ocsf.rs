//! OCSF output: each finding as an OCSF Detection Finding (class 2004, category Findings)
//! with the `cloud` profile, the evidence in `evidences[0]` (actor, session, source
//! endpoint, role, CloudTrail event IDs) and the rule's numbers in `unmapped.details`. The
//! mapping is the research's (`docs/detections.md`); `tests/it/detect.rs` checks the
//! schema's required attributes. What a finding holds is `findings`.

use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::findings::{Finding, Severity};

/// The OCSF schema version the output follows (and the test checks).
pub const SCHEMA_VERSION: &str = "1.2.0";

/// The ATT&CK version the technique IDs are from.
const ATTACK_VERSION: &str = "v16";

/// Each technique the rules name, with its tactic (uid, name).
const TACTICS: &[(&str, &str, &str)] = &[
    ("T1078.004", "TA0001", "Initial Access"),
    ("T1550.001", "TA0008", "Lateral Movement"),
    ("T1552.005", "TA0006", "Credential Access"),
    ("T1606", "TA0006", "Credential Access"),
    ("T1199", "TA0001", "Initial Access"),
    ("T1021.007", "TA0008", "Lateral Movement"),
    ("T1580", "TA0007", "Discovery"),
    ("T1087.004", "TA0007", "Discovery"),
    ("T1548.005", "TA0004", "Privilege Escalation"),
    ("T1195.002", "TA0001", "Initial Access"),
];

/// `finding` as a Detection Finding created at `now_ms` (milliseconds since the epoch).
pub fn detection_finding(finding: &Finding, now_ms: i64) -> Value {
    let start = finding.event_time.as_deref().and_then(millis);
    let end = finding.last_event_time.as_deref().and_then(millis);
    let resources = role_resources(finding);
    let mut object = json!({
        "class_uid": 2004, "class_name": "Detection Finding",
        "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create",
        "type_uid": 200401, "type_name": "Detection Finding: Create",
        "severity_id": severity_id(finding.severity), "severity": capitalised(finding.severity),
        "status_id": 1, "status": "New",
        "time": now_ms,
        "message": finding.summary,
        "is_alert": finding.severity >= Severity::Medium,
        "confidence_id": 0, "confidence": "Unknown",
        "metadata": metadata(finding),
        "cloud": cloud(finding),
        "finding_info": finding_info(finding, start, end),
        "evidences": [evidence(finding, &resources)],
        "resources": resources,
        "unmapped": {"details": finding.details},
    });
    if let Value::Object(map) = &mut object {
        insert_some(map, "start_time", start);
        insert_some(map, "end_time", end);
    }
    object
}

fn metadata(finding: &Finding) -> Value {
    json!({
        "version": SCHEMA_VERSION,
        "uid": finding.id,
        "profiles": ["cloud"],
        "product": {
            "name": "sts-audit", "vendor_name": "sts-audit", "uid": "sts-audit",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "log_name": "CloudTrail",
        "log_provider": "AWS CloudTrail",
    })
}

fn cloud(finding: &Finding) -> Value {
    let mut cloud = json!({"provider": "AWS"});
    if let (Some(account), Value::Object(map)) = (&finding.account_id, &mut cloud) {
        let account = json!({"uid": account, "type_id": 10, "type": "AWS Account"});
        map.insert("account".to_owned(), account);
    }
    cloud
}

fn finding_info(finding: &Finding, start: Option<i64>, end: Option<i64>) -> Value {
    let mut info = json!({
        "uid": finding.id,
        "title": finding.title,
        "desc": finding.summary,
        "analytic": {"uid": finding.rule, "name": finding.rule, "type_id": 1, "type": "Rule"},
        "types": [finding.rule],
        "attacks": finding.attack.iter().map(|t| attack(t)).collect::<Vec<_>>(),
        "data_sources": ["AWS CloudTrail"],
        "related_events_count": finding.event_ids.len(),
    });
    if let Value::Object(map) = &mut info {
        insert_some(map, "first_seen_time", start);
        insert_some(map, "last_seen_time", end);
    }
    info
}

/// One ATT&CK technique: its technique (and sub-technique) and tactic.
fn attack(technique: &str) -> Value {
    let parent = technique.split('.').next().unwrap_or(technique);
    let mut attack = json!({"version": ATTACK_VERSION, "technique": {"uid": parent}});
    let Value::Object(map) = &mut attack else {
        return attack;
    };
    if technique.contains('.') {
        map.insert("sub_technique".to_owned(), json!({"uid": technique}));
    }
    if let Some((_, uid, name)) = TACTICS.iter().find(|(t, _, _)| *t == technique) {
        map.insert("tactic".to_owned(), json!({"uid": uid, "name": name}));
    }
    attack
}

/// The evidence: who (actor and session), from where, which role, which CloudTrail events.
fn evidence(finding: &Finding, resources: &[Value]) -> Value {
    let mut actor = Map::new();
    if let Some(principal) = &finding.principal_arn {
        let name = principal.rsplit('/').next().unwrap_or(principal);
        actor.insert("user".to_owned(), json!({"uid": principal, "name": name}));
    }
    if let Some(key) = &finding.access_key_id {
        actor.insert(
            "session".to_owned(),
            json!({"uid": key, "credential_uid": key}),
        );
    }
    let mut evidence = Map::new();
    evidence.insert("name".to_owned(), json!(finding.rule));
    if !actor.is_empty() {
        evidence.insert("actor".to_owned(), Value::Object(actor));
    }
    if let Some(source) = &finding.source_ip_address {
        let endpoint = match source.parse::<std::net::IpAddr>() {
            Ok(_) => json!({"ip": source}),
            Err(_) => json!({"svc_name": source}),
        };
        evidence.insert("src_endpoint".to_owned(), endpoint);
    }
    if !resources.is_empty() {
        evidence.insert("resources".to_owned(), json!(resources));
    }
    evidence.insert("data".to_owned(), json!({"event_ids": finding.event_ids}));
    Value::Object(evidence)
}

fn role_resources(finding: &Finding) -> Vec<Value> {
    let Some(role) = &finding.role_arn else {
        return Vec::new();
    };
    let kind = match role.contains(":role/") {
        true => "AWS::IAM::Role",
        false => "AWS::IAM::Principal",
    };
    vec![json!({"uid": role, "type": kind, "cloud_partition": "aws"})]
}

fn severity_id(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

fn capitalised(severity: Severity) -> String {
    let text = severity.as_str();
    text[..1].to_uppercase() + &text[1..]
}

/// An RFC 3339 time as milliseconds since the epoch.
fn millis(time: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<i64>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), json!(value));
    }
}
