//! The sessions around a key: its own, the chain that issued it (walked back through the
//! parent keys to the origin), and the sessions it issued (forward, recursively). Every lookup
//! is `queries/triage/sessions.sql` with a typed filter.

use chrono::{DateTime, Utc};
use datafusion::dataframe::DataFrame;
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{Expr, array_has, coalesce, col, lit};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Issued, KeyTree, Request, Subject, TriageError, activity};
use crate::error::QueryError;
use crate::query::sql::read_only;
use crate::render;

const SESSIONS_SQL: &str = include_str!("../../../queries/triage/sessions.sql");

/// A chain longer than this is cut (a chain of sessions re-assuming roles can loop).
const MAX_CHAIN: usize = 32;
/// How deep and how wide the forward walk goes from one key.
const MAX_FORWARD_DEPTH: usize = 8;
const MAX_ISSUED_PER_KEY: usize = 50;

/// A session as triage shows it: the `sessions` columns it needs, times as RFC 3339 UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_key_id: String,
    pub issued_in_lake: Option<bool>,
    pub issued_at: Option<String>,
    pub api: Option<String>,
    pub caller_type: Option<String>,
    pub caller: Option<String>,
    pub caller_account_id: Option<String>,
    pub caller_access_key_id: Option<String>,
    pub role_arn: Option<String>,
    pub role_account_id: Option<String>,
    pub role_session_name: Option<String>,
    pub principal_arn: Option<String>,
    pub issuing_source_ip: Option<String>,
    pub issuing_user_agent: Option<String>,
    pub requested_duration_seconds: Option<i64>,
    pub effective_duration_seconds: Option<i64>,
    pub credentials_expiration: Option<String>,
    pub mfa: Option<bool>,
    pub external_id: Option<String>,
    pub source_identity: Option<String>,
    pub parent_access_key_id: Option<String>,
    pub first_used: Option<String>,
    pub last_used: Option<String>,
    pub calls: Option<i64>,
    pub failed_calls: Option<i64>,
    #[serde(default)]
    pub distinct_source_ips: Option<Vec<String>>,
    pub used_after_expiration: Option<bool>,
    pub chain_depth: Option<i64>,
    pub origin_type: Option<String>,
    pub origin_principal_arn: Option<String>,
}

/// Which sessions a lookup wants.
#[derive(Debug, Clone)]
pub enum SessionFilter {
    Key(String),
    IssuedBy(String),
    Principal(String),
    Role(String),
    Ip(String),
    SessionName(String),
}

impl SessionFilter {
    /// The sessions involved with a subject that is not a temporary key.
    pub fn of(subject: &Subject) -> Self {
        match subject {
            Subject::AccessKey(key) => SessionFilter::IssuedBy(key.clone()),
            Subject::Principal(arn) | Subject::EventId(arn) => {
                SessionFilter::Principal(arn.clone())
            }
            Subject::Role(arn) => SessionFilter::Role(arn.clone()),
            Subject::Ip(ip) => SessionFilter::Ip(ip.clone()),
            Subject::SessionName(name) => SessionFilter::SessionName(name.clone()),
        }
    }

    fn expr(&self) -> Expr {
        let is = |column: &str, value: &str| col(column).eq(lit(value.to_owned()));
        match self {
            SessionFilter::Key(key) => is("access_key_id", key),
            // One side of the join each, so the filter is pushed into that side's scan.
            SessionFilter::IssuedBy(key) if super::is_temporary(key) => {
                is("parent_access_key_id", key)
            }
            SessionFilter::IssuedBy(key) => is("caller_access_key_id", key),
            SessionFilter::Principal(arn) => is("caller", arn)
                .or(is("principal_arn", arn))
                .or(is("origin_principal_arn", arn)),
            SessionFilter::Role(arn) => is("role_arn", arn),
            SessionFilter::Ip(ip) => is("issuing_source_ip", ip).or(array_has(
                coalesce(vec![col("distinct_source_ips"), lit(empty_list())]),
                lit(ip.clone()),
            )),
            SessionFilter::SessionName(name) => is("role_session_name", name),
        }
    }
}

/// An empty list of strings, for `coalesce` with a null list.
fn empty_list() -> datafusion::common::ScalarValue {
    datafusion::common::ScalarValue::List(datafusion::common::ScalarValue::new_list_nullable(
        &[],
        &arrow::datatypes::DataType::Utf8,
    ))
}

/// The sessions `filter` selects that were issued or used within `bounds` (microseconds UTC,
/// `to` exclusive), newest first, at most `limit`.
pub async fn sessions(
    ctx: &SessionContext,
    filter: SessionFilter,
    bounds: (Option<i64>, Option<i64>),
    limit: Option<usize>,
) -> Result<Vec<Session>, TriageError> {
    let mut frame = ctx
        .sql_with_options(SESSIONS_SQL, read_only())
        .await?
        .filter(filter.expr())?;
    let started = coalesce(vec![col("issued_at"), col("first_used")]);
    let ended = coalesce(vec![col("last_used"), col("issued_at")]);
    let (from, to) = bounds;
    if let Some(from) = from {
        frame = frame.filter(ended.gt_eq(lit(timestamp(from))))?;
    }
    if let Some(to) = to {
        frame = frame.filter(started.lt(lit(timestamp(to))))?;
    }
    let frame = frame
        .sort(vec![
            col("issued_at").sort(false, false),
            col("access_key_id").sort(true, false),
        ])?
        .limit(0, limit)?;
    rows(frame).await
}

/// Everything about `key`: its session, the chain back to the origin, its calls, and what it
/// issued.
pub async fn key_tree(
    ctx: &SessionContext,
    key: &str,
    request: &Request,
) -> Result<KeyTree, TriageError> {
    let session = one_session(ctx, key).await?;
    let chain = match &session {
        Some(session) => chain_to(ctx, session.clone()).await?,
        None => Vec::new(),
    };
    let (from, to) = activity_bounds(session.as_ref(), request);
    let (mut calls, truncated) = activity::calls(ctx, key, from, to, request.call_limit).await?;
    let expiration = session
        .as_ref()
        .and_then(|s| s.credentials_expiration.as_deref());
    activity::mark_after_expiration(&mut calls, expiration);
    let issued = forward(ctx, key.to_owned(), 0).await?;
    Ok(KeyTree {
        access_key_id: key.to_owned(),
        origin: session
            .as_ref()
            .and_then(|s| s.origin_principal_arn.clone()),
        origin_type: session.as_ref().and_then(|s| s.origin_type.clone()),
        session,
        chain,
        activity: calls,
        activity_truncated: truncated,
        issued,
    })
}

async fn one_session(ctx: &SessionContext, key: &str) -> Result<Option<Session>, TriageError> {
    let filter = SessionFilter::Key(key.to_owned());
    Ok(sessions(ctx, filter, (None, None), Some(1))
        .await?
        .into_iter()
        .next())
}

/// `session` and the sessions that issued it, origin first.
async fn chain_to(ctx: &SessionContext, session: Session) -> Result<Vec<Session>, TriageError> {
    let mut chain = vec![session];
    while chain.len() < MAX_CHAIN {
        let Some(parent) = chain.last().and_then(|s| s.parent_access_key_id.clone()) else {
            break;
        };
        if chain.iter().any(|s| s.access_key_id == parent) {
            break;
        }
        match one_session(ctx, &parent).await? {
            Some(found) => chain.push(found),
            None => break,
        }
    }
    chain.reverse();
    Ok(chain)
}

/// The sessions `key` issued, and theirs, oldest first.
async fn forward(
    ctx: &SessionContext,
    key: String,
    depth: usize,
) -> Result<Vec<Issued>, TriageError> {
    if depth >= MAX_FORWARD_DEPTH {
        return Ok(Vec::new());
    }
    let filter = SessionFilter::IssuedBy(key);
    let mut children = sessions(ctx, filter, (None, None), Some(MAX_ISSUED_PER_KEY)).await?;
    children.reverse();
    let mut issued = Vec::new();
    for session in children {
        let next = Box::pin(forward(ctx, session.access_key_id.clone(), depth + 1)).await?;
        issued.push(Issued {
            session,
            issued: next,
        });
    }
    Ok(issued)
}

/// The span to read a key's calls in: its session's first to last use (a key is never used
/// outside it), within `--from`/`--to`.
fn activity_bounds(
    session: Option<&Session>,
    request: &Request,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let first = session.and_then(|s| parse(&s.first_used));
    let last = session.and_then(|s| parse(&s.last_used));
    let from = request.from.and_then(DateTime::from_timestamp_micros);
    let to = request.to.and_then(DateTime::from_timestamp_micros);
    // `to` is exclusive; `last` inclusive: one microsecond past it.
    let last = last.and_then(|t| t.checked_add_signed(chrono::TimeDelta::microseconds(1)));
    let lower = [first, from].into_iter().flatten().max();
    let upper = [last, to].into_iter().flatten().min();
    (lower, upper)
}

fn timestamp(micros: i64) -> datafusion::common::ScalarValue {
    datafusion::common::ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into()))
}

/// A frame's rows as `T`, read as the JSON renderer writes them (times RFC 3339 UTC, lists as
/// arrays), so triage's JSON and the other commands' agree.
pub async fn rows<T: DeserializeOwned>(frame: DataFrame) -> Result<Vec<T>, TriageError> {
    let schema = frame.schema().as_arrow().clone().into();
    let batches = frame.collect().await?;
    render::json_rows(&schema, batches)
        .await?
        .into_iter()
        .map(|row| {
            serde_json::from_value(serde_json::Value::Object(row))
                .map_err(|e| TriageError::Query(QueryError::Render(e.to_string())))
        })
        .collect()
}
