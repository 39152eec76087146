//! `sts-audit schema` (and the shell's `\d`): the tables and views, and their columns with
//! types and meanings. The descriptions are the catalog's (`catalog::table_docs`); the
//! column types are read from a session over an empty lake, so they are the views' real ones.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, TimeUnit};
use datafusion::execution::context::SessionContext;
use sts_audit::aws::AwsOptions;
use sts_audit::error::QueryError;
use sts_audit::lake::LakeLocation;
use sts_audit::query::catalog::{self, QueryScope, TableDoc};

use super::{Outcome, Output, runtime, text_batch, write_batch};
use crate::cli::{OutputFormat, SchemaArgs};

/// Memory for the session over the empty lake: it runs no query.
const EMPTY_LAKE_MEMORY: usize = 256 << 20;

pub fn run(args: &SchemaArgs) -> anyhow::Result<Outcome> {
    let runtime = runtime()?;
    let mut out = Output::open(&args.output)?;
    runtime.block_on(async {
        let (_lake, ctx) = empty_context().await?;
        let table = args.table.as_deref();
        describe(&ctx, table, args.all, args.output.format, &mut out).await?;
        anyhow::Ok(())
    })?;
    Ok(Outcome::Success)
}

/// The tables and views (`table` None), one table's columns, or every column of every table.
pub async fn describe(
    ctx: &SessionContext,
    table: Option<&str>,
    all: bool,
    format: OutputFormat,
    out: &mut Output,
) -> Result<(), QueryError> {
    let docs = catalog::table_docs();
    if table.is_none() && !all {
        return write_batch(tables_batch(&docs)?, format, out).await;
    }
    let chosen: Vec<&TableDoc> = match table {
        Some(name) => vec![
            docs.iter()
                .find(|d| d.name == name)
                .ok_or_else(|| QueryError::UnknownTable(name.to_owned()))?,
        ],
        None => docs.iter().collect(),
    };
    let (mut tables, mut names, mut types, mut meanings) = (vec![], vec![], vec![], vec![]);
    for doc in chosen {
        let schema = ctx
            .table(doc.name.as_str())
            .await?
            .schema()
            .as_arrow()
            .clone();
        for field in schema.fields() {
            let meaning = doc
                .columns
                .iter()
                .find(|(name, _)| name == field.name())
                .map(|(_, meaning)| meaning.clone())
                .unwrap_or_default();
            tables.push(doc.name.clone());
            names.push(field.name().clone());
            types.push(sql_type(field.data_type()));
            meanings.push(meaning);
        }
    }
    let mut columns = vec![
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(types)),
        Arc::new(StringArray::from(meanings)),
    ];
    let mut headers = vec!["column", "type", "description"];
    if all {
        columns.insert(0, Arc::new(StringArray::from(tables)));
        headers.insert(0, "table");
    }
    write_batch(text_batch(&headers, columns)?, format, out).await
}

/// The list of tables and views: name, kind, description.
fn tables_batch(docs: &[TableDoc]) -> Result<arrow::array::RecordBatch, QueryError> {
    text_batch(
        &["table", "kind", "description"],
        vec![
            Arc::new(StringArray::from_iter_values(docs.iter().map(|d| &d.name))),
            Arc::new(StringArray::from_iter_values(docs.iter().map(|d| d.kind))),
            Arc::new(StringArray::from_iter_values(
                docs.iter().map(|d| &d.description),
            )),
        ],
    )
}

/// A column type as an analyst reads it.
fn sql_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => "string".to_owned(),
        DataType::Boolean => "boolean".to_owned(),
        DataType::Int64 => "bigint".to_owned(),
        DataType::Int32 => "int".to_owned(),
        DataType::UInt64 => "bigint unsigned".to_owned(),
        DataType::Float64 => "double".to_owned(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp ({tz})"),
        DataType::List(item) | DataType::LargeList(item) => {
            format!("list<{}>", sql_type(item.data_type()))
        }
        other => other.to_string(),
    }
}

/// A context over an empty lake: what `schema` needs to know the views' column types.
async fn empty_context() -> anyhow::Result<(tempfile::TempDir, SessionContext)> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join(sts_audit::lake::EVENTS_DIR))?;
    let lake = LakeLocation::Local(dir.path().to_path_buf());
    let ctx = catalog::open(
        &lake,
        &AwsOptions::default(),
        &QueryScope::default(),
        EMPTY_LAKE_MEMORY,
    )
    .await?;
    Ok((dir, ctx))
}
