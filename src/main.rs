//! The `sts-audit` binary: parse arguments, run the library, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 the run could not be done; 2 it finished but some inputs failed;
//! 64 invalid command line (EX_USAGE). A closed stdout (e.g. `| head`) is not an error.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use sts_audit::cli::{Cli, Command, IngestArgs, SummaryFormat};
use sts_audit::ingest::{self, render_text};
use sts_audit::plan::IngestPlan;

const EXIT_FAILED: u8 = 1;
const EXIT_PARTIAL: u8 = 2;
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let result = match &cli.command {
        Command::Ingest(args) => run_ingest(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sts-audit: error: {error:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run_ingest(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let plan = IngestPlan::from_args(args, chrono::Utc::now())?;
    let summary = ingest::run(&plan)?;
    let text = match plan.format {
        SummaryFormat::Text => render_text(&summary),
        SummaryFormat::Json => serde_json::to_string_pretty(&summary)? + "\n",
    };
    print_stdout(&text)?;
    Ok(ExitCode::from(if summary.has_failures() {
        EXIT_PARTIAL
    } else {
        0
    }))
}

/// Writes to stdout; a reader that went away (broken pipe) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
