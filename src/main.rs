//! The `sts-audit` binary: parse arguments, run the library, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 the run could not be done; 2 it finished but some inputs failed;
//! 64 invalid command line (EX_USAGE). A closed stdout (e.g. `| head`) is not an error.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sts_audit::check;
use sts_audit::cli::{
    AnalyzeArgs, CheckArgs, Cli, Command, DeriveArgs, IngestArgs, OutputFormat, ReportArgs,
    SchemaArgs, SqlArgs, SummaryFormat,
};
use sts_audit::commands::{self as query, Output, shell};
use sts_audit::derived::{self, DeriveSummary};
use sts_audit::error::PlanError;
use sts_audit::ingest::{self, render_text};
use sts_audit::plan::{IngestPlan, aws_options, default_memory_limit};
use sts_audit::query::{report, sql};
use sts_audit::render::visible_lines;
use sts_audit::sink::lake::{LakeLocation, LakeLock};

const EXIT_FAILED: u8 = 1;
const EXIT_PARTIAL: u8 = 2;
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    // Planning a query recurses once per level of its expressions: on a thread with a deep
    // stack, a long `1+1+...` is planned (or refused with an error) instead of overflowing.
    let command = std::thread::Builder::new()
        .name("sts-audit".to_owned())
        .stack_size(sql::STACK_BYTES)
        .spawn(move || run(&cli.command));
    match command.map(std::thread::JoinHandle::join) {
        Ok(Ok(code)) => code,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(error) => {
            eprintln!("sts-audit: error: starting the command: {error}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(command: &Command) -> ExitCode {
    let result = match command {
        Command::Ingest(args) => run_ingest(args),
        Command::Analyze(args) => run_analyze(args),
        Command::Derive(args) => run_derive(args),
        Command::Report(args) => run_report(args),
        Command::Sql(args) => run_sql(args),
        Command::Schema(args) => run_schema(args),
        Command::Check(args) => run_check(args),
    };
    match result {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // Messages quote input (paths, SQL, values): shown without raw control characters.
            eprintln!("sts-audit: error: {}", visible_lines(&format!("{error:#}")));
            if let Some(note) = damaged_files_note(command, &error) {
                eprintln!("{}", visible_lines(&note));
            }
            ExitCode::from(exit_code_of(&error))
        }
    }
}

/// 64 for an option whose value is invalid (a `--from` that is not a time, an account that
/// is not 12 digits, a lake URL that does not parse), as for any other bad command line;
/// 1 otherwise (a source that does not exist is a failed run, like an unreadable one).
fn exit_code_of(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<PlanError>() {
        Some(PlanError::Source { .. }) | None => EXIT_FAILED,
        Some(_) => EXIT_USAGE,
    }
}

fn run_ingest(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let plan = IngestPlan::from_args(args, chrono::Utc::now())?;
    // With --derive, a lake on disk stays locked from the first file to the derived tables.
    let _lock = match (&plan.lake, args.derive) {
        (LakeLocation::Local(root), true) => Some(LakeLock::acquire(root)?),
        _ => None,
    };
    let summary = ingest::run(&plan)?;
    // Built even when some inputs failed: what was ingested is consistent and worth querying.
    let derived = match args.derive {
        true => Some(build_derived(
            &plan.lake,
            &plan.aws,
            default_memory_limit(),
            false,
        )?),
        false => None,
    };
    let text = match plan.format {
        SummaryFormat::Text => {
            render_text(&summary) + &derived.map(|d| d.render_text()).unwrap_or_default()
        }
        SummaryFormat::Json => {
            let mut value = serde_json::to_value(&summary)?;
            if let Some(derived) = derived {
                value["derived"] = serde_json::to_value(derived)?;
            }
            serde_json::to_string_pretty(&value)? + "\n"
        }
    };
    print_stdout(&text)?;
    Ok(ExitCode::from(if summary.has_failures() {
        EXIT_PARTIAL
    } else {
        0
    }))
}

fn build_derived(
    lake: &LakeLocation,
    aws: &sts_audit::aws::AwsOptions,
    memory: usize,
    force: bool,
) -> anyhow::Result<DeriveSummary> {
    Ok(runtime()?.block_on(derived::build(lake, aws, memory, force))?)
}

fn run_derive(args: &DeriveArgs) -> anyhow::Result<ExitCode> {
    let lake = LakeLocation::parse(&args.lake).map_err(PlanError::Url)?;
    let memory = query::memory_limit(args.memory_limit);
    let summary = build_derived(&lake, &aws_options(&args.aws), memory, args.force)?;
    let text = match args.format {
        SummaryFormat::Text => summary.render_text(),
        SummaryFormat::Json => serde_json::to_string_pretty(&summary)? + "\n",
    };
    print_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let report = check::run(std::path::Path::new(&args.lake))?;
    let text = match args.format {
        SummaryFormat::Text => report.render_text(),
        SummaryFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    print_stdout(&text)?;
    Ok(ExitCode::from(match report.damaged.is_empty() {
        true => 0,
        false => EXIT_PARTIAL,
    }))
}

/// A query that failed reading Parquet names the lake's damaged files (DataFusion's error
/// does not say which file it was reading).
fn damaged_files_note(command: &Command, error: &anyhow::Error) -> Option<String> {
    let lake = match command {
        Command::Report(args) => &args.lake.lake,
        Command::Sql(args) => &args.lake.lake,
        _ => return None,
    };
    check::damaged_footers_note(lake, &format!("{error:#}"))
}

/// The runtime of the query commands; its threads run query operators, which recurse per
/// level of an expression like the planner, so they get the same deep stack.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(sql::STACK_BYTES)
        .build()?)
}

fn run_analyze(args: &AnalyzeArgs) -> anyhow::Result<ExitCode> {
    if matches!(args.format, OutputFormat::Csv | OutputFormat::Ndjson) {
        eprintln!(
            "sts-audit: error: analyze prints several reports: use --format table, markdown or json (or `report` for one report as CSV/NDJSON)"
        );
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let temporary = match &args.lake {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let lake = match (&args.lake, &temporary) {
        (Some(lake), _) => lake.clone(),
        (None, Some(dir)) => dir.path().join("lake").display().to_string(),
        (None, None) => unreachable!("a temporary lake is made when --lake is absent"),
    };
    let ingest_args = IngestArgs {
        sources: args.sources.clone(),
        lake: lake.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        accounts: args.accounts.clone(),
        regions: Vec::new(),
        jobs: None,
        strict: false,
        follow_symlinks: false,
        format: SummaryFormat::Text,
        max_file_size: 1 << 30,
        max_record_size: 1 << 20,
        buffer_size: 64 << 20,
        dedup_memory: 16 << 20,
        quiet: args.quiet,
        derive: false,
        concurrency: 32,
        aws: args.aws.clone(),
    };
    let plan = IngestPlan::from_args(&ingest_args, chrono::Utc::now())?;
    let _lock = match &plan.lake {
        LakeLocation::Local(root) => Some(LakeLock::acquire(root)?),
        LakeLocation::S3(_) => None,
    };
    let summary = ingest::run(&plan)?;
    // The summary goes to stderr so that stdout holds the reports alone.
    eprint!("{}", render_text(&summary));
    // Five reports read assumptions and sessions: computing them once is cheaper.
    build_derived(&plan.lake, &plan.aws, default_memory_limit(), false)?;
    let mut out = Output::stdout();
    runtime()?.block_on(query::print_core_reports(
        &plan.lake,
        &plan.aws,
        args.format,
        &mut out,
    ))?;
    Ok(ExitCode::from(if summary.has_failures() {
        EXIT_PARTIAL
    } else {
        0
    }))
}

fn run_report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let reports = report::load(args.queries.as_deref())?;
    let mut out = Output::open(&args.output)?;
    let runtime = runtime()?;
    if args.list {
        let all: Vec<_> = reports.values().collect();
        runtime.block_on(query::list_reports(&all, args.output.format, &mut out))?;
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let report = query::find_report(&reports, name)?;
    runtime.block_on(async {
        let ctx = query::open_lake(&args.lake).await?;
        let work = query::run_script(&ctx, &report.sql, args.output.format, &mut out);
        query::within(args.timeout, work).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn run_sql(args: &SqlArgs) -> anyhow::Result<ExitCode> {
    let script = match (&args.query, &args.file) {
        (Some(query), _) => Some(query.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?,
        ),
        (None, None) => None,
    };
    let runtime = runtime()?;
    let ctx = runtime.block_on(query::open_lake(&args.lake))?;
    match script {
        Some(script) => {
            let mut out = Output::open(&args.output)?;
            let work = query::run_script(&ctx, &script, args.output.format, &mut out);
            runtime.block_on(query::within(args.timeout, work))?;
        }
        None => shell::run(&runtime, &ctx, args.output.format, args.timeout)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_schema(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    let mut out = Output::open(&args.output)?;
    runtime.block_on(async {
        let (_lake, ctx) = query::empty_context().await?;
        query::describe(
            &ctx,
            args.table.as_deref(),
            args.all,
            args.output.format,
            &mut out,
        )
        .await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// True when the error is stdout closing early (`| head`): not a failure.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.to_string().contains("Broken pipe")
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

/// Allocations from this size up get a mapping of their own, returned to the system when freed.
const MMAP_THRESHOLD_BYTES: i32 = 2 << 20;

/// Free memory at the top of a heap is returned to the system only past this much.
const TRIM_THRESHOLD_BYTES: i32 = 256 << 20;

/// Ingest's large buffers (Arrow columns, Parquet pages and column chunks, compressor state)
/// live for one write or one row group. glibc's default mmap threshold rises to the size of
/// each large block freed (up to 32 MiB), so these blocks end up in the per-thread heaps, whose
/// freed space stays resident and, carved up by small allocations, is rarely whole again: peak
/// RSS of the 1M-event ingest benchmark was about 330 MiB (4M events over four days: 361). A
/// fixed threshold keeps the largest blocks out of the heaps. At 256 KiB it cost time instead:
/// every column buffer of a write was a fresh mapping, faulted in and zeroed page by page and
/// unmapped after, 2.3 s of system time per million events (the largest share of kernel time).
/// At 2 MiB, with heaps that keep their freed memory for reuse instead of trimming it back,
/// most of those buffers come from memory already mapped. Single runs, 1M events / 4M over four
/// days: system time 3.5 / 10.4 s at 256 KiB, 1.8 / 5.4 s at 2 MiB, 1.4 / 4.6 s at 4 MiB; peak
/// RSS 211 / 224, 260 / 272 and 257 / 298 MiB. 4 MiB saves a little more time but lets peak
/// memory grow with the length of the run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_allocator() {
    // SAFETY: mallopt only sets allocator parameters; it runs before any other thread exists.
    // glibc's own settings, when given, win.
    unsafe {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
        if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
