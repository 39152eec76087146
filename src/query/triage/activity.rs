//! What a key did: the calls it signed, in time order, read only from the days it was used
//! (`queries/triage/activity.sql` with typed filters on the key, `event_time` and `date`), one
//! row per call (a cross-account call logged in two accounts is one call), the first call from
//! each address marked.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use datafusion::execution::context::SessionContext;
use datafusion::prelude::{col, lit};
use serde::{Deserialize, Serialize};

use super::TriageError;
use super::walk::rows;
use crate::lake::partition::date_text;
use crate::query::sql::read_only;

const ACTIVITY_SQL: &str = include_str!("../../../queries/triage/activity.sql");

/// One call a key signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub event_time: Option<String>,
    pub event_id: Option<String>,
    pub event_source: Option<String>,
    pub event_name: Option<String>,
    pub aws_region: Option<String>,
    pub recipient_account_id: Option<String>,
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// The first call of this key from its address.
    #[serde(default)]
    pub first_from_address: bool,
    /// Signed after the key's credentials expired.
    #[serde(default)]
    pub after_expiration: bool,
}

/// Marks the calls made after `expiration` (RFC 3339), when it is known.
pub fn mark_after_expiration(calls: &mut [Call], expiration: Option<&str>) {
    let parse = |text: &str| DateTime::parse_from_rfc3339(text).ok();
    let Some(expiration) = expiration.and_then(parse) else {
        return;
    };
    for call in calls {
        call.after_expiration = call
            .event_time
            .as_deref()
            .and_then(parse)
            .is_some_and(|at| at > expiration);
    }
}

/// The calls `key` signed within `from`..`to` (`to` exclusive), oldest first, at most `limit`;
/// true when there were more.
pub async fn calls(
    ctx: &SessionContext,
    key: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<(Vec<Call>, bool), TriageError> {
    let mut frame = ctx
        .sql_with_options(ACTIVITY_SQL, read_only())
        .await?
        .filter(col("access_key_id").eq(lit(key.to_owned())))?;
    if let Some(from) = from {
        frame = frame
            .filter(col("date").gt_eq(lit(date_text(from.date_naive()))))?
            .filter(col("event_time").gt_eq(lit(timestamp(from))))?;
    }
    if let Some(to) = to {
        frame = frame
            .filter(col("date").lt_eq(lit(date_text(to.date_naive()))))?
            .filter(col("event_time").lt(lit(timestamp(to))))?;
    }
    let frame = frame
        .sort(vec![
            col("event_time").sort(true, false),
            col("event_id").sort(true, false),
            col("recipient_account_id").sort(true, false),
        ])?
        .drop_columns(&["access_key_id", "date"])?
        // Twice the limit: a call logged in two accounts has two rows.
        .limit(0, Some(limit.saturating_mul(2).saturating_add(1)))?;
    let mut calls: Vec<Call> = rows(frame).await?;
    let capped = calls.len() > limit.saturating_mul(2);
    calls.dedup_by(|later, earlier| later.event_id.is_some() && later.event_id == earlier.event_id);
    let truncated = capped || calls.len() > limit;
    calls.truncate(limit);
    mark_new_addresses(&mut calls);
    Ok((calls, truncated))
}

/// Marks the first call from each source address.
fn mark_new_addresses(calls: &mut [Call]) {
    let mut seen = HashSet::new();
    for call in calls {
        let address = call.source_ip_address.clone().unwrap_or_default();
        call.first_from_address = seen.insert(address);
    }
}

fn timestamp(time: DateTime<Utc>) -> datafusion::common::ScalarValue {
    datafusion::common::ScalarValue::TimestampMicrosecond(
        Some(time.timestamp_micros()),
        Some("UTC".into()),
    )
}
