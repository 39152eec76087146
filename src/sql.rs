//! Running SQL against the lake, read-only: queries, `EXPLAIN`, `DESCRIBE` and `SHOW TABLES`
//! run; DDL (`CREATE EXTERNAL TABLE`, which could read any file), DML (`INSERT`, `COPY`, which
//! could write one) and statements (`SET`) are refused before anything executes. The session has
//! no table functions that read files or URLs, and URL tables are not enabled.

use std::collections::VecDeque;

use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};

use crate::error::QueryError;

/// What ad-hoc SQL and reports may do: read.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Splits a script into statements (`;`-separated, comments allowed).
pub fn parse_statements(sql: &str) -> Result<VecDeque<Statement>, QueryError> {
    Ok(DFParser::parse_sql(sql)?)
}

/// Plans one statement, refuses anything but reading, and starts it: the result streams, so a
/// large result is never held in memory by this layer.
pub async fn execute(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<(SchemaRef, SendableRecordBatchStream), QueryError> {
    let text = statement.to_string();
    let plan = ctx.state().statement_to_plan(statement).await?;
    read_only()
        .verify_plan(&plan)
        .map_err(|_| QueryError::NotReadOnly(shorten(&text)))?;
    let frame = ctx.execute_logical_plan(plan).await?;
    let schema = frame.schema().as_arrow().clone().into();
    let stream = frame.execute_stream().await?;
    Ok((schema, stream))
}

/// The first line of a statement, for error messages.
fn shorten(statement: &str) -> String {
    let first = statement.lines().next().unwrap_or_default();
    if first.chars().count() > 80 {
        first.chars().take(77).collect::<String>() + "..."
    } else {
        first.to_owned()
    }
}
