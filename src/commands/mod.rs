//! The query commands: `report`, `sql`, `schema` and `analyze`, wiring catalog → SQL → render.

pub mod shell;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::memory::MemoryStream;

use crate::aws::AwsOptions;
use crate::cli::{LakeArgs, OutputArgs, OutputFormat};
use crate::derived::Freshness;
use crate::error::{PlanError, QueryError};
use crate::plan::{aws_options, default_memory_limit, parse_bound};
use crate::query::catalog::{self, Derived, QueryResources, QueryScope, TableDoc};
use crate::query::report::{self, Report};
use crate::query::sql;
use crate::render::{self, TableStyle};
use crate::sink::lake::LakeLocation;
use crate::sink::partition::is_account_id;

/// Where results go and how tables are laid out there.
pub struct Output {
    pub writer: Box<dyn Write>,
    pub style: TableStyle,
}

impl Output {
    pub fn open(args: &OutputArgs) -> Result<Output, QueryError> {
        match &args.output {
            Some(path) => {
                let file = File::create(path).map_err(|source| QueryError::Io {
                    path: path.clone(),
                    source,
                })?;
                Ok(Output {
                    writer: Box::new(BufWriter::new(file)),
                    style: TableStyle {
                        wrap_to_terminal: false,
                    },
                })
            }
            None => Ok(Output::stdout()),
        }
    }

    pub fn stdout() -> Output {
        let stdout = std::io::stdout();
        let wrap_to_terminal = stdout.is_terminal();
        Output {
            writer: Box::new(BufWriter::new(stdout)),
            style: TableStyle { wrap_to_terminal },
        }
    }
}

/// The scope flags as typed bounds; the same rules as `ingest` (`--to` date inclusive).
pub fn scope_of(args: &LakeArgs) -> Result<QueryScope, PlanError> {
    let now = chrono::Utc::now();
    let from = args
        .from
        .as_deref()
        .map(|t| parse_bound("--from", t, now, false))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| parse_bound("--to", t, now, true))
        .transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(PlanError::EmptyRange {
            from: args.from.clone().unwrap_or_default(),
            to: args.to.clone().unwrap_or_default(),
        });
    }
    if let Some(bad) = args.accounts.iter().find(|a| !is_account_id(a)) {
        return Err(PlanError::Account(bad.clone()));
    }
    Ok(QueryScope {
        from,
        to,
        accounts: args.accounts.clone(),
    })
}

/// The lake as `--lake`, the scope flags and `--no-derived` say. On a terminal, says so when
/// the derived tables are stale (an ingest ran since `derive`), because queries are slower.
pub async fn open_lake(args: &LakeArgs) -> anyhow::Result<SessionContext> {
    let scope = scope_of(args)?;
    let resources = QueryResources {
        memory: memory_limit(args.memory_limit),
        max_spill: args.max_spill,
    };
    let lake = LakeLocation::parse(&args.lake).map_err(PlanError::Url)?;
    let derived = match args.no_derived {
        true => Derived::Ignore,
        false => Derived::WhenCurrent,
    };
    let aws = aws_options(&args.aws);
    let catalog = catalog::open_catalog_with(&lake, &aws, &scope, resources, derived).await?;
    if catalog.derived == Some(Freshness::Stale) && std::io::stderr().is_terminal() {
        eprintln!(
            "sts-audit: note: the derived tables predate the last ingest, so assumptions and \
             sessions are computed from events (slower); `sts-audit derive --lake {}` updates them",
            args.lake
        );
    }
    if let Some(Freshness::Incomplete { build }) = &catalog.derived {
        eprintln!(
            "sts-audit: warning: derived/CURRENT.json names build {build}, whose files are \
             missing or changed, so assumptions and sessions are computed from events (slower); \
             `sts-audit derive --lake {}` rebuilds them",
            args.lake
        );
    }
    Ok(catalog.ctx)
}

/// `--memory-limit` in bytes, or the default for this machine ([`default_memory_limit`]).
pub fn memory_limit(flag: Option<u64>) -> usize {
    match flag {
        Some(bytes) => usize::try_from(bytes).unwrap_or(usize::MAX),
        None => default_memory_limit(),
    }
}

/// `work`, stopped with [`QueryError::Timeout`] when it takes longer than `limit`. Dropping
/// it cancels the query: DataFusion stops its tasks when their stream is dropped.
pub async fn within<T>(
    limit: Option<Duration>,
    work: impl Future<Output = Result<T, QueryError>>,
) -> Result<T, QueryError> {
    let Some(limit) = limit else {
        return work.await;
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| QueryError::Timeout(limit))?
}

/// Runs every statement of `script` in order, writing each result; returns the rows written.
pub async fn run_script(
    ctx: &SessionContext,
    script: &str,
    format: OutputFormat,
    out: &mut Output,
) -> Result<u64, QueryError> {
    let mut rows = 0;
    for statement in sql::parse_statements(script)? {
        let (schema, stream) = sql::execute(ctx, statement).await?;
        rows += render::write_stream(format, out.style, &schema, stream, &mut out.writer).await?;
    }
    Ok(rows)
}

/// `report --list`: the reports as a table.
pub async fn list_reports(
    reports: &[&Report],
    format: OutputFormat,
    out: &mut Output,
) -> Result<(), QueryError> {
    let column = |get: fn(&Report) -> String| -> Arc<StringArray> {
        Arc::new(StringArray::from_iter_values(
            reports.iter().map(|r| get(r)),
        ))
    };
    let batch = text_batch(
        &["name", "title", "description", "parameters", "origin"],
        vec![
            column(|r| r.name.clone()),
            column(|r| r.title.clone()),
            column(|r| r.description.clone()),
            column(|r| r.parameters.join(", ")),
            column(|r| r.origin.clone()),
        ],
    )?;
    write_batch(batch, format, out).await
}

pub fn find_report<'a>(
    reports: &'a std::collections::BTreeMap<String, Report>,
    name: &str,
) -> Result<&'a Report, QueryError> {
    reports.get(name).ok_or_else(|| QueryError::UnknownReport {
        name: name.to_owned(),
    })
}

fn text_batch(names: &[&str], columns: Vec<Arc<StringArray>>) -> Result<RecordBatch, QueryError> {
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|name| Field::new(*name, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let columns = columns.into_iter().map(|c| c as _).collect();
    RecordBatch::try_new(schema, columns).map_err(|e| QueryError::Render(e.to_string()))
}

async fn write_batch(
    batch: RecordBatch,
    format: OutputFormat,
    out: &mut Output,
) -> Result<(), QueryError> {
    let schema: SchemaRef = batch.schema();
    let stream = MemoryStream::try_new(vec![batch], schema.clone(), None)?;
    render::write_stream(
        format,
        out.style,
        &schema,
        Box::pin(stream),
        &mut out.writer,
    )
    .await?;
    Ok(())
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
    let Some(_) = table.or(all.then_some("")) else {
        let batch = text_batch(
            &["table", "kind", "description"],
            vec![
                Arc::new(StringArray::from_iter_values(docs.iter().map(|d| &d.name))),
                Arc::new(StringArray::from_iter_values(docs.iter().map(|d| d.kind))),
                Arc::new(StringArray::from_iter_values(
                    docs.iter().map(|d| &d.description),
                )),
            ],
        )?;
        return write_batch(batch, format, out).await;
    };
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

/// A column type as an analyst reads it.
pub fn sql_type(data_type: &DataType) -> String {
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
pub async fn empty_context() -> anyhow::Result<(tempfile::TempDir, SessionContext)> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("events"))?;
    let lake = LakeLocation::Local(dir.path().to_path_buf());
    let ctx = catalog::open(
        &lake,
        &AwsOptions::default(),
        &QueryScope::default(),
        256 << 20,
    )
    .await?;
    Ok((dir, ctx))
}

/// Prints the core reports over `lake`, each under its title.
pub async fn print_core_reports(
    lake: &LakeLocation,
    aws: &AwsOptions,
    format: OutputFormat,
    out: &mut Output,
) -> anyhow::Result<()> {
    let ctx = catalog::open(lake, aws, &QueryScope::default(), default_memory_limit()).await?;
    let reports = report::load(None)?;
    let mut json = serde_json::Map::new();
    for name in report::CORE_REPORTS {
        let report = find_report(&reports, name)?;
        match format {
            OutputFormat::Json => {
                let mut text = Vec::new();
                let (schema, stream) = single_statement(&ctx, &report.sql).await?;
                render::write_stream(format, out.style, &schema, stream, &mut text).await?;
                json.insert(report.name.clone(), serde_json::from_slice(&text)?);
            }
            OutputFormat::Markdown => {
                writeln!(
                    out.writer,
                    "## {}\n\n{}\n",
                    report.title, report.description
                )?;
                run_script(&ctx, &report.sql, format, out).await?;
                writeln!(out.writer)?;
            }
            _ => {
                writeln!(out.writer, "{} ({})", report.title, report.name)?;
                run_script(&ctx, &report.sql, format, out).await?;
                writeln!(out.writer)?;
            }
        }
    }
    if format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out.writer, &json)?;
        writeln!(out.writer)?;
    }
    out.writer.flush()?;
    Ok(())
}

async fn single_statement(
    ctx: &SessionContext,
    script: &str,
) -> Result<(SchemaRef, datafusion::execution::SendableRecordBatchStream), QueryError> {
    let mut statements = sql::parse_statements(script)?;
    let statement = statements
        .pop_front()
        .ok_or_else(|| QueryError::NotReadOnly("empty report".to_owned()))?;
    sql::execute(ctx, statement).await
}
