//! `sts-audit report compliance`: the compliance report of the library's `query::compliance`
//! over the whole lake (the detections' baseline reads before the period), written to
//! `--output` in the format its extension names, with `<output>.manifest.json` beside it.
//! No `--output`, another extension or `--account` is a usage error (exit 64).

use std::path::{Path, PathBuf};

use sts_audit::plan::validate_scope;
use sts_audit::query::compliance::{self, Format, Request, manifest};
use sts_audit::query::detect::config::{self, Config};
use sts_audit::query::detect::rules;

use super::detect::config_file;
use super::open_whole_lake;
use super::{Outcome, runtime, within};
use crate::cli::ReportArgs;

pub fn run(args: &ReportArgs) -> anyhow::Result<Outcome> {
    let Some((path, format)) = output(args) else {
        return Ok(Outcome::Usage);
    };
    let request = request(args)?;
    let runtime = runtime()?;
    let started = std::time::Instant::now();
    let (text, manifest) = runtime.block_on(async {
        let catalog = open_whole_lake(&args.lake).await?;
        let work = async {
            let report = compliance::build(&catalog.ctx, &request)
                .await
                .map_err(query_error)?;
            let text = compliance::render(&report, format).map_err(query_error)?;
            let name = file_name(&path);
            let events = &catalog.events_url;
            let manifest = manifest::build(
                &catalog.ctx,
                events,
                &report,
                format,
                &name,
                text.as_bytes(),
            )
            .await
            .map_err(query_error)?;
            Ok((text, manifest))
        };
        anyhow::Ok(within(args.timeout, work).await?)
    })?;
    write(&path, text.as_bytes())?;
    write(&manifest_path(&path), manifest.to_json()?.as_bytes())?;
    eprintln!(
        "sts-audit: wrote {} ({} bytes, {}) and its manifest in {:.2} s",
        path.display(),
        text.len(),
        format.as_str(),
        started.elapsed().as_secs_f64()
    );
    Ok(Outcome::Success)
}

/// `--output` and its format; None (after saying why) when the command line cannot work.
fn output(args: &ReportArgs) -> Option<(PathBuf, Format)> {
    if !args.lake.scope.accounts.is_empty() {
        eprintln!(
            "sts-audit: error: report compliance covers every account of the lake (no --account)"
        );
        return None;
    }
    let Some(path) = args.output.output.clone() else {
        eprintln!(
            "sts-audit: error: report compliance needs --output FILE.html, FILE.md or FILE.json"
        );
        return None;
    };
    let Some(format) = Format::of_path(&path) else {
        eprintln!(
            "sts-audit: error: {}: the report's format comes from the extension: .html, .md or .json",
            path.display()
        );
        return None;
    };
    Some((path, format))
}

/// The flags as the library's request; a time that does not parse is a usage error.
fn request(args: &ReportArgs) -> anyhow::Result<Request> {
    let now = chrono::Utc::now();
    let scope = &args.lake.scope;
    let bounds = validate_scope(scope.from.as_deref(), scope.to.as_deref(), &[], now)?;
    let config = match config_file(args.config.as_ref(), &args.lake) {
        Some(path) => config::load(&path, &rules::catalogue()?)?,
        None => Config::empty(),
    };
    Ok(Request {
        from: bounds.from,
        to: bounds.to,
        config,
        now,
    })
}

/// The library's error as the query layer's, which `within` and the exit codes know.
fn query_error(error: compliance::ComplianceError) -> sts_audit::error::QueryError {
    match error {
        compliance::ComplianceError::Query(error) => error,
        other => sts_audit::error::QueryError::Render(other.to_string()),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `<output>.manifest.json`.
pub fn manifest_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed over it, so a reader
/// (or a scheduled diff) never sees half a report. The file is created like any other (its
/// mode from the umask), not with a temporary file's private mode.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written =
        std::fs::write(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        // Nothing to keep of a failed write; the error names the report's path.
        let _ = std::fs::remove_file(&temporary);
        anyhow::bail!("{}: {error}", path.display());
    }
    Ok(())
}
