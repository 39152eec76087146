//! `sts-audit sql`: runs read-only SQL (an argument or `-f FILE`) over the lake, or without
//! either opens the interactive shell (`shell`). The read-only rules are the library's
//! `query::sql`.

use super::{Outcome, Output, open_lake, run_script, runtime, shell, within};
use crate::cli::SqlArgs;

pub fn run(args: &SqlArgs) -> anyhow::Result<Outcome> {
    let script = match (&args.query, &args.file) {
        (Some(query), _) => Some(query.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| anyhow::anyhow!("reading {}: {error}", path.display()))?,
        ),
        (None, None) => None,
    };
    let runtime = runtime()?;
    let ctx = runtime.block_on(open_lake(&args.lake))?;
    match script {
        Some(script) => {
            let mut out = Output::open(&args.output)?;
            let work = run_script(&ctx, &script, args.output.format, &mut out);
            runtime.block_on(within(args.timeout, work))?;
        }
        None => shell::run(&runtime, &ctx, args.output.format, args.timeout)?,
    }
    Ok(Outcome::Success)
}
