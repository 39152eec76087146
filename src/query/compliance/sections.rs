//! The report's sections: one catalogued SQL file each under `queries/compliance/` (the
//! header grammar of `query::header`: name, title, description), run read-only over the whole
//! lake's catalog with the period bound as typed parameters (`$period_start`, `$period_end`,
//! their `_date` forms for partition pruning, `$baseline_start`), never pasted into SQL. Each
//! result is kept as a table of JSON cells, read as the JSON renderer writes them (times as
//! RFC 3339 UTC, lists as arrays), so the three formats show the same values.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;
use serde::Serialize;
use serde_json::Value;

use super::error::ComplianceError;
use super::period::Period;
use crate::query::header;
use crate::query::sql::read_only;
use crate::render;

/// The sections in the order the documents show them: (id, SQL).
pub const SECTIONS: &[(&str, &str)] = &[
    (
        "coverage",
        include_str!("../../../queries/compliance/coverage.sql"),
    ),
    ("gaps", include_str!("../../../queries/compliance/gaps.sql")),
    (
        "integrity",
        include_str!("../../../queries/compliance/integrity.sql"),
    ),
    (
        "assumptions-per-day",
        include_str!("../../../queries/compliance/assumptions-per-day.sql"),
    ),
    (
        "top-principals",
        include_str!("../../../queries/compliance/top-principals.sql"),
    ),
    (
        "access",
        include_str!("../../../queries/compliance/access.sql"),
    ),
    (
        "cross-account",
        include_str!("../../../queries/compliance/cross-account.sql"),
    ),
    (
        "durations",
        include_str!("../../../queries/compliance/durations.sql"),
    ),
    (
        "duration-distribution",
        include_str!("../../../queries/compliance/duration-distribution.sql"),
    ),
    (
        "role-chains",
        include_str!("../../../queries/compliance/role-chains.sql"),
    ),
    (
        "denied",
        include_str!("../../../queries/compliance/denied.sql"),
    ),
];

/// One section's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub columns: Vec<String>,
    /// One array per row, cells in column order.
    pub rows: Vec<Vec<Value>>,
    /// The SQL it ran (in the manifest, not in the documents).
    #[serde(skip)]
    pub sql: &'static str,
}

impl Section {
    /// The cell of `column` in `row`; Null when there is no such column.
    pub fn cell<'a>(&'a self, row: &'a [Value], column: &str) -> &'a Value {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|at| row.get(at))
            .unwrap_or(&Value::Null)
    }

    /// The integer cell of `column` in `row` (0 when null or not a number).
    pub fn int(&self, row: &[Value], column: &str) -> i64 {
        self.cell(row, column).as_i64().unwrap_or(0)
    }

    /// The text of `column` in `row` as the documents show it.
    pub fn text(&self, row: &[Value], column: &str) -> String {
        super::text::plain(self.cell(row, column))
    }
}

/// Every section over `period`.
pub async fn run_all(
    ctx: &SessionContext,
    period: &Period,
) -> Result<Vec<Section>, ComplianceError> {
    let values = parameters(period);
    let mut sections = Vec::with_capacity(SECTIONS.len());
    for (id, sql) in SECTIONS {
        sections.push(run(ctx, id, sql, &values).await?);
    }
    Ok(sections)
}

/// The period as the sections' parameter values.
fn parameters(period: &Period) -> HashMap<String, ScalarValue> {
    let times = [
        ("period_start", period.start_time()),
        ("period_end", period.end_time()),
        ("baseline_start", period.baseline_time()),
    ];
    let mut values = HashMap::new();
    for (name, time) in times {
        values.insert(name.to_owned(), timestamp(time));
        let date = time.format("%Y-%m-%d").to_string();
        values.insert(format!("{name}_date"), ScalarValue::Utf8(Some(date)));
    }
    values
}

fn timestamp(time: DateTime<Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(time.timestamp_micros()), Some("UTC".into()))
}

/// One section: its SQL planned read-only, the period bound, its rows read as JSON.
async fn run(
    ctx: &SessionContext,
    id: &'static str,
    sql: &'static str,
    values: &HashMap<String, ScalarValue>,
) -> Result<Section, ComplianceError> {
    let failed = |reason: String| ComplianceError::Section {
        id: id.to_owned(),
        reason,
    };
    let frame = ctx
        .sql_with_options(sql, read_only())
        .await
        .and_then(|frame| frame.with_param_values(values.clone()))
        .map_err(|e| failed(e.to_string()))?;
    let schema: arrow::datatypes::SchemaRef = frame.schema().as_arrow().clone().into();
    let batches = frame.collect().await.map_err(|e| failed(e.to_string()))?;
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let rows = render::json_rows(&schema, batches)
        .await?
        .into_iter()
        .map(|mut object| {
            let cells = columns
                .iter()
                .map(|c| object.remove(c).unwrap_or(Value::Null));
            cells.collect()
        })
        .collect();
    let mut fields = header::parse(sql).fields;
    Ok(Section {
        id,
        title: fields.remove("title").unwrap_or_else(|| id.to_owned()),
        description: fields.remove("description").unwrap_or_default(),
        columns,
        rows,
        sql,
    })
}

/// One NDJSON line as cells in `columns`' order.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_names_itself_and_has_a_title() {
        for (id, sql) in SECTIONS {
            let header = header::parse(sql);
            assert_eq!(header.fields["name"], *id);
            assert!(!header.fields["title"].is_empty(), "{id}");
            assert!(!header.fields["description"].is_empty(), "{id}");
        }
    }
}
