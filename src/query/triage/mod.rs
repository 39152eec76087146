//! Triage (issue 26): everything the lake knows about one key, principal, role, address,
//! session name or event, as a tree a person reads as an incident timeline and a program reads
//! as JSON. For a temporary key: how it was obtained, walked back to its origin ([`walk`]),
//! everything it did ([`activity`]), every session it issued, recursively, and the saved
//! findings about any key of that tree. For the other subjects: the sessions involved, newest
//! first, each with the same tree.
//!
//! Every lookup is a typed filter on `sessions` (derived tables when current) or on `events`
//! narrowed to the days a key was used, so a big lake is read only where the subject was.

pub mod activity;
pub mod walk;

use datafusion::execution::context::SessionContext;
use datafusion::prelude::{col, lit};
use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use crate::error::QueryError;
use crate::query::detect::config::Config;
use crate::query::detect::findings::Severity;
use crate::query::detect::{self, DetectError};
use activity::Call;
use walk::{Session, SessionFilter};

/// What is triaged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Subject {
    /// A temporary (ASIA...) or long-term (AKIA...) access key.
    AccessKey(String),
    Principal(String),
    Role(String),
    Ip(String),
    SessionName(String),
    EventId(String),
}

/// A triage run: the subject, the time bounds (microseconds UTC, `to` exclusive) and how many
/// sessions and calls to show at most.
#[derive(Debug, Clone)]
pub struct Request {
    pub subject: Subject,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Sessions detailed for a subject that is not a temporary key (newest first).
    pub session_limit: usize,
    /// Calls listed per key.
    pub call_limit: usize,
    /// Also run the detection rules over the days of the trees (with this config), besides
    /// reading the saved findings.
    pub detect: Option<Config>,
}

/// One key's tree: its session, the chain that issued it, what it did, what it issued.
#[derive(Debug, Clone, Serialize)]
pub struct KeyTree {
    pub access_key_id: String,
    /// The session of the key (None for a long-term key or a key never issued in the lake).
    pub session: Option<Session>,
    /// The sessions that led to it, origin first, ending with its own.
    pub chain: Vec<Session>,
    /// Who is at the root of the chain.
    pub origin: Option<String>,
    pub origin_type: Option<String>,
    pub activity: Vec<Call>,
    /// More calls than `call_limit`: the list stops there.
    pub activity_truncated: bool,
    pub issued: Vec<Issued>,
}

/// A session a key issued, and what it issued in turn.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub session: Session,
    pub issued: Vec<Issued>,
}

/// What triage found.
#[derive(Debug, Clone, Serialize)]
pub struct Triage {
    pub subject: Subject,
    /// For a subject that is not a temporary key: the sessions involved, newest first.
    pub sessions: Vec<Session>,
    /// Sessions beyond `session_limit`, not detailed.
    pub more_sessions: bool,
    pub trees: Vec<KeyTree>,
    /// Findings about any key or principal of the trees: saved by `detect --save`, and with
    /// `detect` in the request computed for the trees' days; highest severity first.
    pub findings: Vec<KeyFinding>,
}

/// A finding about a key or principal of the trees (the `findings` table's main columns).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFinding {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub summary: String,
    pub event_time: Option<String>,
    pub access_key_id: Option<String>,
    pub principal_arn: Option<String>,
    /// Computed by this run (`--detect`) rather than read from the saved findings.
    #[serde(default)]
    pub computed: bool,
}

/// Errors of triage: the lake's, or a subject the lake does not know.
#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("{0}")]
    NotFound(String),
}

impl From<datafusion::error::DataFusionError> for TriageError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        TriageError::Query(QueryError::from(error))
    }
}

/// Triage `request.subject` in the lake of `ctx` (the whole lake: chains reach back).
pub async fn triage(ctx: &SessionContext, request: &Request) -> Result<Triage, TriageError> {
    let subject = resolve(ctx, &request.subject).await?;
    let (sessions, more_sessions, keys) = match &subject {
        Subject::AccessKey(key) if is_temporary(key) => (Vec::new(), false, vec![key.clone()]),
        other => {
            let filter = SessionFilter::of(other);
            let limit = request.session_limit;
            let bounds = (request.from, request.to);
            let mut found = walk::sessions(ctx, filter, bounds, Some(limit + 1)).await?;
            let more = found.len() > limit;
            found.truncate(limit);
            let keys = found.iter().map(|s| s.access_key_id.clone()).collect();
            (found, more, keys)
        }
    };
    let mut trees = Vec::new();
    if let Subject::AccessKey(key) = &subject
        && !is_temporary(key)
    {
        trees.push(walk::key_tree(ctx, key, request).await?);
    }
    for key in &keys {
        trees.push(walk::key_tree(ctx, key, request).await?);
    }
    let mut findings = saved_findings(ctx, &trees).await?;
    if let Some(config) = &request.detect {
        findings = merge(findings, computed_findings(ctx, &trees, config).await?);
    }
    Ok(Triage {
        subject,
        sessions,
        more_sessions,
        trees,
        findings,
    })
}

/// A temporary key (ASIA...) was issued by STS: it has a chain and a session.
pub fn is_temporary(key: &str) -> bool {
    key.starts_with("ASIA")
}

/// An event id becomes the key that signed the event (or its principal when unsigned).
async fn resolve(ctx: &SessionContext, subject: &Subject) -> Result<Subject, TriageError> {
    let Subject::EventId(id) = subject else {
        return Ok(subject.clone());
    };
    let frame = ctx
        .table("events")
        .await?
        .filter(col("event_id").eq(lit(id.as_str())))?
        .select(vec![col("access_key_id"), col("principal_arn")])?
        .limit(0, Some(1))?;
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = walk::rows(frame).await?;
    let Some(row) = rows.into_iter().next() else {
        return Err(TriageError::NotFound(format!(
            "no event {id:?} in the lake"
        )));
    };
    let text = |name: &str| row.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    match (text("access_key_id"), text("principal_arn")) {
        (Some(key), _) => Ok(Subject::AccessKey(key)),
        (None, Some(principal)) => Ok(Subject::Principal(principal)),
        (None, None) => Err(TriageError::NotFound(format!(
            "event {id:?} has neither an access key nor a principal to follow"
        ))),
    }
}

/// The saved findings about any key or principal of `trees`, highest severity first.
async fn saved_findings(
    ctx: &SessionContext,
    trees: &[KeyTree],
) -> Result<Vec<KeyFinding>, TriageError> {
    let mut keys = Vec::new();
    let mut principals = Vec::new();
    for tree in trees {
        tree.visit(&mut |session| {
            keys.push(lit(session.access_key_id.clone()));
            if let Some(principal) = &session.principal_arn {
                principals.push(lit(principal.clone()));
            }
        });
        keys.push(lit(tree.access_key_id.clone()));
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let about = col("access_key_id").in_list(keys, false);
    let about = match principals.is_empty() {
        true => about,
        false => about.or(col("principal_arn").in_list(principals, false)),
    };
    let severity_rank = datafusion::prelude::when(col("severity").eq(lit("critical")), lit(0))
        .when(col("severity").eq(lit("high")), lit(1))
        .when(col("severity").eq(lit("medium")), lit(2))
        .otherwise(lit(3))?;
    let frame = ctx
        .table("findings")
        .await?
        .filter(about)?
        .sort(vec![
            severity_rank.sort(true, false),
            col("event_time").sort(true, false),
            col("id").sort(true, false),
        ])?
        .select(
            [
                "id",
                "rule",
                "severity",
                "summary",
                "event_time",
                "access_key_id",
                "principal_arn",
            ]
            .map(col)
            .to_vec(),
        )?;
    walk::rows(frame).await
}

/// The findings the detection rules give for the days of `trees` (from the day of the first
/// issue or use to the end of the day of the last use) about their keys and principals.
async fn computed_findings(
    ctx: &SessionContext,
    trees: &[KeyTree],
    config: &Config,
) -> Result<Vec<KeyFinding>, TriageError> {
    let mut times = Vec::new();
    let mut keys = HashSet::new();
    let mut principals = HashSet::new();
    for tree in trees {
        keys.insert(tree.access_key_id.clone());
        tree.visit(&mut |session| {
            keys.insert(session.access_key_id.clone());
            principals.extend(session.principal_arn.clone());
            let used = [&session.issued_at, &session.first_used, &session.last_used];
            times.extend(
                used.into_iter()
                    .flatten()
                    .filter_map(|t| micros(t.as_str())),
            );
        });
        times.extend(
            tree.activity
                .iter()
                .filter_map(|c| micros(c.event_time.as_ref()?)),
        );
    }
    let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) else {
        return Ok(Vec::new());
    };
    let request = detect::Request {
        from: Some(day_start(*first)),
        to: Some(day_start(*last).saturating_add(MICROS_PER_DAY)),
        baseline_days: None,
        rules: None,
        min_severity: Severity::Low,
        config: config.clone(),
        now: chrono::Utc::now(),
    };
    let run = detect::detect(ctx, &request).await?;
    let about = |f: &detect::findings::Finding| {
        f.access_key_id.as_ref().is_some_and(|k| keys.contains(k))
            || f.principal_arn
                .as_ref()
                .is_some_and(|p| principals.contains(p))
    };
    let found = run.findings.iter().chain(&run.below_min_severity);
    Ok(found
        .filter(|f| about(f))
        .map(|f| KeyFinding {
            id: f.id.clone(),
            rule: f.rule.clone(),
            severity: f.severity.to_string(),
            summary: f.summary.clone(),
            event_time: f.event_time.clone(),
            access_key_id: f.access_key_id.clone(),
            principal_arn: f.principal_arn.clone(),
            computed: true,
        })
        .collect())
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn micros(text: &str) -> Option<i64> {
    let time = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(time.timestamp_micros())
}

fn day_start(micros: i64) -> i64 {
    micros - micros.rem_euclid(MICROS_PER_DAY)
}

/// Saved and computed findings, one per id (the saved copy first), highest severity first.
fn merge(saved: Vec<KeyFinding>, computed: Vec<KeyFinding>) -> Vec<KeyFinding> {
    let known: HashSet<String> = saved.iter().map(|f| f.id.clone()).collect();
    let mut all = saved;
    all.extend(computed.into_iter().filter(|f| !known.contains(&f.id)));
    let rank = |severity: &str| match severity {
        "critical" => 0,
        "high" => 1,
        "medium" => 2,
        _ => 3,
    };
    all.sort_by(|a, b| {
        (rank(&a.severity), &a.event_time, &a.id).cmp(&(rank(&b.severity), &b.event_time, &b.id))
    });
    all
}

impl KeyTree {
    /// Calls `visit` on every session of the tree: the chain, then the issued ones.
    pub fn visit(&self, visit: &mut dyn FnMut(&Session)) {
        for session in &self.chain {
            visit(session);
        }
        fn issued(list: &[Issued], visit: &mut dyn FnMut(&Session)) {
            for item in list {
                visit(&item.session);
                issued(&item.issued, visit);
            }
        }
        issued(&self.issued, visit);
    }
}
