//! `sts-audit man`: the manual pages, rendered by `clap_mangen` from the command-line types
//! (their help and `after_help` texts), on stdout or as files named for `man` to find.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use super::Outcome;
use crate::cli::{Cli, ManArgs};

pub fn run(args: &ManArgs) -> anyhow::Result<Outcome> {
    let command = Cli::command();
    match &args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            render(command, &mut out)?;
            out.flush()?;
        }
        Some(dir) => write_pages(command, dir)?,
    }
    Ok(Outcome::Success)
}

/// `sts-audit.1` and `sts-audit-<subcommand>.1` for each subcommand, in `dir`.
fn write_pages(command: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(command, dir)
        .with_context(|| format!("writing the manual pages to {}", dir.display()))
}

fn render(command: clap::Command, out: &mut impl Write) -> anyhow::Result<()> {
    clap_mangen::Man::new(command)
        .render(out)
        .context("writing the manual page")
}
