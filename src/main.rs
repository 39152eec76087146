//! The `sts-audit` binary: parse arguments, run the command (`commands`) on a thread with a
//! deep stack, map the outcome to an exit code. The flags (`cli`) and the commands are the
//! binary's own modules: the library below them takes plain types.
//!
//! Exit codes: 0 success; 1 the run could not be done; 2 it finished but some inputs failed;
//! 3 `detect` found something at its `--fail-on` severity; 4 `verify` found something that
//! does not verify; 64 invalid command line (EX_USAGE). A closed stdout (e.g. `| head`) is not an error.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use sts_audit::check;
use sts_audit::error::PlanError;
use sts_audit::query::sql;
use sts_audit::render::visible_lines;

use cli::{Cli, Command};
use commands::Outcome;

const EXIT_FAILED: u8 = 1;
const EXIT_PARTIAL: u8 = 2;
const EXIT_FINDINGS: u8 = 3;
const EXIT_UNVERIFIED: u8 = 4;
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
    match commands::run(command) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(EXIT_PARTIAL),
        Ok(Outcome::Usage) => ExitCode::from(EXIT_USAGE),
        Ok(Outcome::Findings) => ExitCode::from(EXIT_FINDINGS),
        Ok(Outcome::Unverified) => ExitCode::from(EXIT_UNVERIFIED),
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            // Messages quote input (paths, SQL, values): shown without raw control characters.
            eprintln!("sts-audit: error: {}", visible_lines(&format!("{error:#}")));
            if let Some(note) = damaged_files_note(command, &error) {
                eprintln!("{}", visible_lines(&note));
            }
            if format!("{error:#}").contains("Resources exhausted") {
                eprintln!("{MEMORY_NOTE}");
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

/// What to do when a query ran out of its memory pool (operators that cannot spill, such as
/// a hash join's build side, fail instead of spilling).
const MEMORY_NOTE: &str = "sts-audit: the query needed more memory than its pool (--memory-limit, \
default half of the available memory): build the derived tables (`sts-audit derive`, or ingest \
with --derive) so that each day's part of the views is read instead of computed, narrow \
--from/--to, or raise --memory-limit";

/// A query that failed reading Parquet names the lake's damaged files (DataFusion's error
/// does not say which file it was reading).
fn damaged_files_note(command: &Command, error: &anyhow::Error) -> Option<String> {
    let lake = match command {
        Command::Report(args) => &args.lake.lake,
        Command::Sql(args) => &args.lake.lake,
        Command::Detect(args) => &args.lake.lake,
        Command::Triage(args) => &args.lake.lake,
        _ => return None,
    };
    check::damaged_footers_note(lake, &format!("{error:#}"))
}

/// True when the error is stdout closing early (`| head`): not a failure. Every write to the
/// output keeps its `io::Error` as the error's source, so its kind tells.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Allocations from this size up get a mapping of their own, returned to the system when freed.
const MMAP_THRESHOLD_BYTES: i32 = 2 << 20;

/// Free memory at the top of a heap is returned to the system only past this much.
const TRIM_THRESHOLD_BYTES: i32 = 256 << 20;

/// Ingest's large buffers (Arrow columns, Parquet pages and column chunks, compressor state)
/// live for one write or one row group. glibc's default mmap threshold rises to the size of
/// each large block freed (up to 32 MiB), so these blocks end up in the per-thread heaps, whose
/// freed space stays resident and, carved up by small allocations, is rarely whole again. A
/// fixed threshold keeps the largest blocks out of the heaps. Too low a threshold costs time
/// instead: every column buffer of a write becomes a fresh mapping, faulted in and zeroed page
/// by page and unmapped after. With heaps that keep their freed memory for reuse instead of
/// trimming it back, most of those buffers come from memory already mapped; a higher threshold
/// saves a little more time but lets peak memory grow with the length of the run.
/// BENCHMARKS.md, "Allocator: mmap and trim thresholds", has the measurements.
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
