//! The subcommands, one file each: each takes its clap arguments, turns them into the
//! library's plain types, runs the library and says how the run ended ([`Outcome`]). What
//! several share lives here: opening the lake from the scope flags, where results go
//! ([`Output`]), the query runtime and statement runner. `anyhow` stops here; `main` maps the
//! outcome or error to an exit code. The library below never sees a clap type.

mod analyze;
mod check;
mod completions;
mod compliance;
mod derive;
mod detect;
mod ingest;
mod man;
mod report;
mod schema;
mod shell;
mod sql;
mod triage;
mod verify;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::execution::context::SessionContext;
use datafusion::physical_plan::memory::MemoryStream;
use serde::Serialize;
use sts_audit::aws::AwsOptions;
use sts_audit::error::{PlanError, QueryError};
use sts_audit::lake::LakeLocation;
use sts_audit::plan::{bytes, default_memory_limit, validate_scope};
use sts_audit::query::catalog::{self, Catalog, Derived, QueryResources, QueryScope};
use sts_audit::query::sql as statements;
use sts_audit::query::stored::DerivedCoverage;
use sts_audit::render::{self, TableStyle};

use crate::cli::{Command, LakeArgs, OutputArgs, OutputFormat, ScopeArgs, SummaryFormat};

/// How a command that ran to its end finished; `main` turns it into the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// It finished, but some inputs failed (each was reported on stderr).
    Partial,
    /// The options cannot work together, which clap cannot tell (reported on stderr).
    Usage,
    /// `detect` ran and a finding reached `--fail-on`.
    Findings,
    /// `verify` ran and something of the period did not verify.
    Unverified,
}

impl Outcome {
    /// `Partial` when some inputs failed, else `Success`.
    fn unless_failures(has_failures: bool) -> Outcome {
        match has_failures {
            true => Outcome::Partial,
            false => Outcome::Success,
        }
    }
}

/// Runs `command`.
pub fn run(command: &Command) -> anyhow::Result<Outcome> {
    match command {
        Command::Ingest(args) => ingest::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Derive(args) => derive::run(args),
        Command::Report(args) => report::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Triage(args) => triage::run(args),
        Command::Sql(args) => sql::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Check(args) => check::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
        Command::Verify(args) => verify::run(args),
    }
}

/// Where results go and how tables are laid out there.
pub struct Output {
    pub writer: Box<dyn Write>,
    pub style: TableStyle,
}

impl Output {
    /// `--output FILE`, else stdout.
    pub fn open(args: &OutputArgs) -> Result<Output, QueryError> {
        let Some(path) = &args.output else {
            return Ok(Output::stdout());
        };
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

    /// Stdout; tables wrap to the terminal when it is one.
    pub fn stdout() -> Output {
        let stdout = std::io::stdout();
        let wrap_to_terminal = stdout.is_terminal();
        Output {
            writer: Box::new(BufWriter::new(stdout)),
            style: TableStyle { wrap_to_terminal },
        }
    }
}

/// The scope flags as typed bounds, by the rules `ingest` uses too.
fn query_scope(args: &ScopeArgs) -> Result<QueryScope, PlanError> {
    let bounds = validate_scope(
        args.from.as_deref(),
        args.to.as_deref(),
        &args.accounts,
        chrono::Utc::now(),
    )?;
    Ok(QueryScope {
        from: bounds.from,
        to: bounds.to,
        accounts: args.accounts.clone(),
    })
}

/// The lake as `--lake`, the scope flags and `--no-derived` say. On a terminal, says so when
/// the derived tables are stale (an ingest ran since `derive`), because queries are slower.
async fn open_lake(args: &LakeArgs) -> anyhow::Result<SessionContext> {
    let scope = query_scope(&args.scope)?;
    Ok(open_catalog(args, &scope).await?.ctx)
}

/// The whole lake, derived tables when current (detect's baseline and triage's chains reach
/// outside any --from/--to, which those commands apply themselves).
pub(super) async fn open_whole_lake(args: &LakeArgs) -> anyhow::Result<Catalog> {
    open_catalog(args, &QueryScope::default()).await
}

/// The lake of `args` narrowed to `scope`, with what was found of its derived tables.
async fn open_catalog(args: &LakeArgs, scope: &QueryScope) -> anyhow::Result<Catalog> {
    let resources = QueryResources {
        memory: memory_limit(args.memory_limit),
        max_spill: args.max_spill,
    };
    let lake = LakeLocation::parse(&args.lake).map_err(PlanError::Url)?;
    let derived = match args.no_derived {
        true => Derived::Ignore,
        false => Derived::WhenCurrent,
    };
    let aws = AwsOptions::from(&args.aws);
    let catalog = catalog::open_catalog_with(&lake, &aws, scope, resources, derived).await?;
    note_derived_freshness(catalog.derived.as_ref(), &args.lake);
    Ok(catalog)
}

/// Tells, on a terminal, that part of the scope is computed from events (slower) because the
/// derived tables of some partitions predate the last ingest or were never built.
fn note_derived_freshness(coverage: Option<&DerivedCoverage>, lake: &str) {
    let Some(coverage) = coverage else { return };
    let stale = coverage.partitions - coverage.current;
    if stale > 0 && std::io::stderr().is_terminal() {
        eprintln!(
            "sts-audit: note: {stale} of {} partitions (account and day) changed since the last              `sts-audit derive` or were never derived: their sessions and assumptions are              computed from events (slower); `sts-audit derive --lake {lake}` updates them",
            coverage.partitions
        );
    }
}

/// `--memory-limit` in bytes, or the default for this machine ([`default_memory_limit`]).
fn memory_limit(flag: Option<u64>) -> usize {
    flag.map_or_else(default_memory_limit, bytes)
}

/// The runtime of the query commands; its threads run query operators, which recurse per
/// level of an expression like the planner, so they get the same deep stack.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(statements::STACK_BYTES)
        .build()?)
}

/// `work`, stopped with [`QueryError::Timeout`] when it takes longer than `limit`. Dropping
/// it cancels the query: DataFusion stops its tasks when their stream is dropped.
async fn within<T>(
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
async fn run_script(
    ctx: &SessionContext,
    script: &str,
    format: OutputFormat,
    out: &mut Output,
) -> Result<u64, QueryError> {
    let mut rows = 0;
    for statement in statements::parse_statements(script)? {
        let (schema, stream) = statements::execute(ctx, statement).await?;
        rows += render::write_stream(format.into(), out.style, &schema, stream, &mut out.writer)
            .await?;
    }
    Ok(rows)
}

/// A batch of text columns named `names`, for listings (reports, tables, columns).
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

/// Writes one batch as query results are written.
async fn write_batch(
    batch: RecordBatch,
    format: OutputFormat,
    out: &mut Output,
) -> Result<(), QueryError> {
    let schema: SchemaRef = batch.schema();
    let stream = MemoryStream::try_new(vec![batch], schema.clone(), None)?;
    render::write_stream(
        format.into(),
        out.style,
        &schema,
        Box::pin(stream),
        &mut out.writer,
    )
    .await?;
    Ok(())
}

/// A summary as text or pretty JSON, per `--format`.
fn summary_text<T: Serialize>(
    format: SummaryFormat,
    summary: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<String> {
    Ok(match format {
        SummaryFormat::Text => text(summary),
        SummaryFormat::Json => serde_json::to_string_pretty(summary)? + "\n",
    })
}

/// Writes to stdout; a reader that went away (broken pipe) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
