//! `sts-audit check`: lists the lake's damaged data files (the library's `check`); exit 2
//! when there are some.

use sts_audit::check::{self, CheckReport};

use super::{Outcome, print_stdout, summary_text};
use crate::cli::CheckArgs;

pub fn run(args: &CheckArgs) -> anyhow::Result<Outcome> {
    let report = check::run(std::path::Path::new(&args.lake))?;
    print_stdout(&summary_text(
        args.format,
        &report,
        CheckReport::render_text,
    )?)?;
    Ok(Outcome::unless_failures(!report.damaged.is_empty()))
}
