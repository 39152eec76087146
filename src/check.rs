//! `sts-audit check`: finds the lake's damaged data files (a footer that cannot be read, or
//! data pages that cannot be decoded) and says what each held, so that the lake can be repaired
//! by ingesting those sources again. Also names the damaged files when a query fails on one.
//!
//! What a damaged file held: its partition (account and date, from its folder), the run that
//! wrote it (from its name, `part-<run>-<worker>-<n>.parquet`), and the sources of its rows:
//! the distinct `source_file` values when that column can still be read, else the sources the
//! manifest records for that run (`_manifest/run-<run>.jsonl`) in that account. Local lakes only.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use arrow::array::AsArray;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use serde::Serialize;

use crate::source::key;

/// One damaged data file and what it held.
#[derive(Debug, Clone, Serialize)]
pub struct DamagedFile {
    pub path: PathBuf,
    /// `footer` (nothing can be read) or `data` (the footer reads, some pages do not).
    pub damage: &'static str,
    pub reason: String,
    pub account_id: Option<String>,
    pub date: Option<String>,
    /// The ingest run that wrote it.
    pub run: Option<String>,
    /// `source_file` when that column still reads, else `manifest`.
    pub sources_from: &'static str,
    pub sources: Vec<String>,
}

/// The outcome of `sts-audit check`.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub lake: PathBuf,
    pub files_checked: u64,
    pub damaged: Vec<DamagedFile>,
    /// What to do, when something is damaged.
    pub repair: Option<String>,
}

/// Reads every data file of the lake at `lake` whole (in parallel) and reports the damaged ones.
pub fn run(lake: &Path) -> Result<CheckReport, crate::error::QueryError> {
    let files = data_files(lake)?;
    let damaged: Vec<DamagedFile> = files
        .par_iter()
        .filter_map(|path| {
            guarded(|| read_whole(path))
                .err()
                .map(|(damage, reason)| (path, damage, reason))
        })
        .map(|(path, damage, reason)| describe(lake, path, damage, reason))
        .collect();
    let repair = (!damaged.is_empty()).then(|| repair_hint(lake, &damaged));
    Ok(CheckReport {
        lake: lake.to_path_buf(),
        files_checked: files.len() as u64,
        damaged,
        repair,
    })
}

/// The Parquet data files under `<lake>/events` (not hidden, not temporary), sorted.
fn data_files(lake: &Path) -> Result<Vec<PathBuf>, crate::error::QueryError> {
    let events = crate::query::catalog::events_dir(lake)?;
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&events)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_file())
        .map(walkdir::DirEntry::into_path)
        .filter(|path| is_data_file(path))
        .collect();
    files.sort();
    Ok(files)
}

fn is_data_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.ends_with(".parquet") && !name.starts_with(['.', '_'])
}

/// Reads the footer, then every row; the kind of damage and why, at the first failure.
fn read_whole(path: &Path) -> Result<(), (&'static str, String)> {
    let file = File::open(path).map_err(|e| ("footer", e.to_string()))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|builder| builder.build())
        .map_err(|e| ("footer", e.to_string()))?;
    for batch in reader {
        batch.map_err(|e| ("data", e.to_string()))?;
    }
    Ok(())
}

/// Runs `read`, a panic of the Parquet reader (some damaged pages make it panic rather than
/// fail) counted as damaged data.
fn guarded<T>(
    read: impl FnOnce() -> Result<T, (&'static str, String)>,
) -> Result<T, (&'static str, String)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Err(("data", format!("the Parquet reader failed on it: {text}")))
    })
}

/// Only the footer: what a failed query needs to name the file, without reading all data.
fn footer_damage(path: &Path) -> Option<String> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return Some(error.to_string()),
    };
    ParquetRecordBatchReaderBuilder::try_new(file)
        .err()
        .map(|e| e.to_string())
}

fn describe(lake: &Path, path: &Path, damage: &'static str, reason: String) -> DamagedFile {
    let (account_id, date) = partition_of(path);
    let run = run_of(path);
    let sources = guarded(|| Ok(source_files(path))).ok().flatten();
    let (sources_from, sources) = match sources {
        Some(sources) => ("source_file", sources),
        None => (
            "manifest",
            manifest_sources(lake, run.as_deref(), account_id.as_deref()),
        ),
    };
    DamagedFile {
        path: path.to_path_buf(),
        damage,
        reason,
        account_id,
        date,
        run,
        sources_from,
        sources,
    }
}

/// `account_id=…` and `date=…` from the file's folders.
fn partition_of(path: &Path) -> (Option<String>, Option<String>) {
    let value = |column: &str| {
        path.ancestors()
            .filter_map(|dir| dir.file_name()?.to_str()?.strip_prefix(column))
            .next()
            .map(str::to_owned)
    };
    (value("account_id="), value("date="))
}

/// `part-<run>-<worker>-<n>.parquet`, where a run id is `<time>-<salt>`.
fn run_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?.strip_prefix("part-")?;
    let mut parts = name.splitn(3, '-');
    let (time, salt) = (parts.next()?, parts.next()?);
    Some(format!("{time}-{salt}"))
}

/// The distinct `source_file` values, when that column alone can still be read whole.
fn source_files(path: &Path) -> Option<Vec<String>> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).ok()?).ok()?;
    let column = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == "source_file")?;
    let mask = ProjectionMask::leaves(builder.parquet_schema(), [column]);
    let reader = builder.with_projection(mask).build().ok()?;
    let mut sources = BTreeSet::new();
    for batch in reader {
        let batch = batch.ok()?;
        let array = batch.column(0);
        if let Some(views) = array.as_string_view_opt() {
            sources.extend(views.iter().flatten().map(str::to_owned));
        } else if let Some(strings) = array.as_string_opt::<i32>() {
            sources.extend(strings.iter().flatten().map(str::to_owned));
        }
    }
    Some(sources.into_iter().collect())
}

/// The sources the manifest records for `run` whose key names `account` (or no account).
fn manifest_sources(lake: &Path, run: Option<&str>, account: Option<&str>) -> Vec<String> {
    let Some(run) = run else { return Vec::new() };
    let segment = lake.join("_manifest").join(format!("run-{run}.jsonl"));
    let Ok(file) = File::open(&segment) else {
        return Vec::new();
    };
    let mut sources = BTreeSet::new();
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let entry: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let Some(source) = entry["source"].as_str() else {
            continue;
        };
        let keyed = key::parse(source).and_then(|k| k.account);
        if keyed.is_none() || keyed.as_deref() == account {
            sources.insert(source.to_owned());
        }
    }
    sources.into_iter().collect()
}

/// What to run to get the lost rows back: ingest those runs' sources again. The manifest
/// would skip them as done, so its segments for those runs go first; deduplication drops every
/// record still in the lake, so only what the damaged files held is written again.
fn repair_hint(lake: &Path, damaged: &[DamagedFile]) -> String {
    let runs: BTreeSet<&str> = damaged.iter().filter_map(|d| d.run.as_deref()).collect();
    let lake = lake.display();
    let mut hint = format!(
        "move the damaged files out of {lake}/events (e.g. into {lake}/_damaged/), then \
         remove these manifest segments so that their sources are read again:\n"
    );
    for run in runs {
        hint += &format!("  rm {lake}/_manifest/run-{run}.jsonl\n");
    }
    hint += &format!(
        "and run the ingest again over the same sources: sts-audit ingest <SOURCES> --lake \
         {lake} (records still in the lake are dropped as duplicates; the lost ones are \
         written back)\n"
    );
    hint
}

impl CheckReport {
    pub fn render_text(&self) -> String {
        let mut text = format!(
            "checked {} data files in {}: {} damaged\n",
            self.files_checked,
            self.lake.display(),
            self.damaged.len()
        );
        for file in &self.damaged {
            text += &format!(
                "{}: {} unreadable: {}\n",
                file.path.display(),
                file.damage,
                file.reason
            );
            text += &format!(
                "  held: account_id={} date={} run={}\n",
                file.account_id.as_deref().unwrap_or("?"),
                file.date.as_deref().unwrap_or("?"),
                file.run.as_deref().unwrap_or("?")
            );
            text += &format!("  sources ({}):\n", file.sources_from);
            for source in &file.sources {
                text += &format!("    {source}\n");
            }
        }
        if let Some(repair) = &self.repair {
            text += &format!("to repair: {repair}");
        }
        text
    }
}

/// When a query on a lake on disk failed reading Parquet: the data files whose footer cannot
/// be read (a footer check only, fast), as lines to add to the error, with where to go next.
pub fn damaged_footers_note(lake: &str, error: &str) -> Option<String> {
    let lake = Path::new(lake);
    if !error.to_lowercase().contains("parquet") || !lake.join("events").is_dir() {
        return None;
    }
    let files = data_files(lake).ok()?;
    let damaged: Vec<String> = files
        .par_iter()
        .filter_map(|path| {
            guarded(|| Ok(footer_damage(path)))
                .unwrap_or_else(|(_, reason)| Some(reason))
                .map(|reason| format!("  {}: {reason}", path.display()))
        })
        .collect();
    let mut note = match damaged.is_empty() {
        true => String::new(),
        false => format!("damaged lake files:\n{}\n", damaged.join("\n")),
    };
    note += &format!(
        "`sts-audit check --lake {}` lists every damaged file, what it held and how to repair",
        lake.display()
    );
    Some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_says_its_partition_and_run() {
        let path = Path::new(
            "/l/events/account_id=111122223333/date=2024-03-01/part-20240302T101500Z-00a1b2-3-00007-sts.parquet",
        );
        let (account, date) = partition_of(path);
        assert_eq!(account.as_deref(), Some("111122223333"));
        assert_eq!(date.as_deref(), Some("2024-03-01"));
        assert_eq!(run_of(path).as_deref(), Some("20240302T101500Z-00a1b2"));
        assert_eq!(run_of(Path::new("/l/x.parquet")), None);
        assert_eq!(partition_of(Path::new("/l/x.parquet")), (None, None));
    }
}
