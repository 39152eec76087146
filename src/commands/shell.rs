//! The interactive SQL shell of `sts-audit sql`: statements end with `;` and may span lines;
//! backslash commands describe the tables (as `schema` does). History persists across sessions.

use std::path::PathBuf;

use clap::ValueEnum;
use datafusion::execution::context::SessionContext;
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use sts_audit::render::visible_lines;

use super::schema::describe;
use super::{Output, run_script, within};
use crate::cli::OutputFormat;

const HELP: &str = "\
  SQL ending with ;       run it (several lines are fine)
  \\d                      list tables and views
  \\d NAME                 columns of a table or view
  \\format FORMAT          table, csv, json, ndjson or markdown
  \\q                      quit (or Ctrl-D)
Tables: events, assumptions, sessions, session_usage, issued_credentials, caller_sources. Read-only.";

/// Runs the shell until `\q` or end of input.
pub fn run(
    runtime: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    mut format: OutputFormat,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    eprintln!("sts-audit SQL shell: \\? for help, \\q to quit.");
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() { "sts> " } else { " ..> " };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(error.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            match meta_command(runtime, ctx, trimmed, &mut format) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    eprintln!("error: {}", visible_lines(&format!("{error:#}")));
                    continue;
                }
            }
        }
        if trimmed.is_empty() && buffer.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let statement = std::mem::take(&mut buffer);
        let _ = editor.add_history_entry(statement.trim());
        let mut out = Output::stdout();
        let started = std::time::Instant::now();
        let work = run_script(ctx, &statement, format, &mut out);
        match runtime.block_on(within(timeout, work)) {
            Ok(_) => eprintln!("({:.3} s)", started.elapsed().as_secs_f64()),
            Err(error) => eprintln!("error: {}", visible_lines(&error.to_string())),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(())
}

/// Runs a backslash command; false means quit.
fn meta_command(
    runtime: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    command: &str,
    format: &mut OutputFormat,
) -> anyhow::Result<bool> {
    let mut words = command.split_whitespace();
    let name = words.next().unwrap_or_default();
    let argument = words.next().map(|w| w.trim_end_matches(';'));
    match name {
        "\\q" | "\\quit" => return Ok(false),
        "\\?" | "\\h" | "\\help" => eprintln!("{HELP}"),
        "\\d" => {
            let mut out = Output::stdout();
            runtime.block_on(describe(ctx, argument, false, *format, &mut out))?;
        }
        "\\format" => match argument {
            Some(text) => {
                *format = OutputFormat::from_str(text, true).map_err(anyhow::Error::msg)?;
            }
            None => eprintln!("format: {format:?}"),
        },
        other => anyhow::bail!("unknown command {other}; \\? lists them"),
    }
    Ok(true)
}

fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("STS_AUDIT_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".sts_audit_history"))
}
