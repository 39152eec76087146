//! Running SQL against the lake, read-only: queries, `EXPLAIN`, `DESCRIBE` and `SHOW TABLES`
//! run; DDL (`CREATE EXTERNAL TABLE`, which could read any file), DML (`INSERT`, `COPY`, which
//! could write one) and statements (`SET`) are refused before anything executes. The session has
//! no table functions that read files or URLs, and URL tables are not enabled.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::sql::parser::{CopyToSource, DFParser, Statement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};

use crate::error::QueryError;

/// What ad-hoc SQL and reports may do: read.
pub fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// The stack of the threads that plan and run queries. Planning, optimising and evaluating
/// an expression recurse once per level of it (DataFusion's own recursion grows its stack on
/// the heap, but cloning, comparing, printing and dropping an expression tree do not), so a
/// long `a + b + ...` needs a deep stack. Only the pages used are ever touched.
pub const STACK_BYTES: usize = 256 << 20;

/// The deepest expression (or chain of `UNION`s) a statement may hold. Deeper trees would
/// still fit in [`STACK_BYTES`], but DataFusion's optimizer passes take time and memory that
/// grow with the square of the depth: past this a statement is refused before it is planned,
/// at once, instead of running for minutes. Hand-written SQL stays far below it.
pub const MAX_DEPTH: usize = 2_000;

/// Splits a script into statements (`;`-separated, comments allowed) and refuses one nested
/// deeper than [`MAX_DEPTH`]. (The parser itself limits nesting by parentheses and subqueries,
/// but builds `a + b + ...` and `UNION` chains in a loop, one level per term.)
pub fn parse_statements(sql: &str) -> Result<VecDeque<Statement>, QueryError> {
    let statements = DFParser::parse_sql(sql)?;
    if let Some(depth) = statements.iter().find_map(too_deep) {
        // Dropping a tree recurses once per level too: the process is about to report the
        // error (or the shell to read the next statement), so the tree is left unfreed.
        std::mem::forget(statements);
        return Err(QueryError::TooDeep(format!(
            "the statement is nested more than {depth} levels deep (a chain of that many \
             operators or UNIONs): split it, or use IN (...) lists and CTEs"
        )));
    }
    Ok(statements)
}

/// [`MAX_DEPTH`] when `statement` is deeper than that.
fn too_deep(statement: &Statement) -> Option<usize> {
    let mut depth = Depth::default();
    let deep = match statement {
        Statement::Statement(inner) => inner.visit(&mut depth).is_break(),
        Statement::Explain(explain) => return too_deep(&explain.statement),
        Statement::CopyTo(copy) => match &copy.source {
            CopyToSource::Query(query) => query.visit(&mut depth).is_break(),
            CopyToSource::Relation(_) => false,
        },
        Statement::CreateExternalTable(_) | Statement::Reset(_) => false,
    };
    deep.then_some(MAX_DEPTH)
}

/// Counts how deep the visit is in expressions; stops it past [`MAX_DEPTH`], so the visit
/// itself never recurses deeper than that.
#[derive(Default)]
struct Depth {
    expressions: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.expressions += 1;
        match self.expressions > MAX_DEPTH {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.expressions -= 1;
        ControlFlow::Continue(())
    }

    /// A `UNION` chain is a tree of its own, walked here without recursion.
    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let mut pending = vec![query.body.as_ref()];
        let mut operations = 0usize;
        while let Some(body) = pending.pop() {
            if let SetExpr::SetOperation { left, right, .. } = body {
                operations += 1;
                pending.extend([left.as_ref(), right.as_ref()]);
            }
        }
        match operations > MAX_DEPTH {
            true => ControlFlow::Break(()),
            false => ControlFlow::Continue(()),
        }
    }
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
