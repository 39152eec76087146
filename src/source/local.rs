//! Local files and folders. A walk finds the day folders of the CloudTrail layout (pruning
//! folders by the scope before descending into them) without listing what is inside them; each
//! account's delivery day is listed only when ingest reaches it. So a run holds the names of one
//! day's files at a time, not of every file under its sources, which for a month of an
//! organization trail would be hundreds of megabytes (BENCHMARKS.md, "File names and the
//! manifest in memory").
//!
//! Symbolic links are followed only while they stay inside the source they were found under (a
//! source named on the command line that is itself a link is read): a link to `/etc` in a log
//! folder must not make ingest read the system's files. A link leading out is not entered and
//! is reported; `--follow-symlinks` follows every link.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use chrono::NaiveDate;
use walkdir::{DirEntry, WalkDir};

use super::key;
use super::{Origin, SourceFile, sort_for_visiting};
use crate::error::SourceError;
use crate::lake::scope::Scope;

/// What the walk found, in visiting order.
#[derive(Debug, Default)]
pub struct LocalInputs {
    /// Day folders grouped by account and delivery day (across regions), not listed yet.
    pub days: Vec<DayGroup>,
    /// Files outside any day folder of the layout.
    pub loose: Vec<SourceFile>,
    /// Folders not descended into because the scope excludes them.
    pub pruned_folders: usize,
    /// Paths that could not be read while walking.
    pub errors: Vec<SourceError>,
}

/// The day folders of one account and delivery day (one per region and trail folder), and any
/// files in them named on their own as sources.
#[derive(Debug, Default)]
pub struct DayGroup {
    folders: Vec<DayFolder>,
    files: Vec<PathBuf>,
}

/// A day folder and the folder its walk may not leave by a symbolic link.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct DayFolder {
    path: PathBuf,
    within: Boundary,
}

/// How far a walk follows symbolic links: `None` follows every one (`--follow-symlinks`);
/// otherwise only links whose target is inside this folder (the source, resolved).
type Boundary = Option<Arc<Path>>;

/// One day group's files, in visiting order, and what could not be read.
#[derive(Debug, Default)]
pub struct DayListing {
    pub files: Vec<SourceFile>,
    pub errors: Vec<SourceError>,
}

type DayKey = (Option<String>, NaiveDate);

/// Walks every source (a file or a folder); see the module's note on symbolic links.
pub fn discover(sources: &[PathBuf], scope: &Scope, follow_symlinks: bool) -> LocalInputs {
    let mut found = LocalInputs::default();
    let mut days: BTreeMap<DayKey, DayGroup> = BTreeMap::new();
    for source in sources {
        let within = boundary(source, follow_symlinks);
        walk(source, &within, scope, &mut found, &mut days);
    }
    for group in days.values_mut() {
        group.folders.sort();
        group.folders.dedup();
    }
    found.days = days.into_values().collect();
    sort_for_visiting(&mut found.loose);
    found
}

/// The account and delivery day of a day folder (`.../CloudTrail/<region>/YYYY/MM/DD`), or of
/// the folder a file is in.
fn day_of(path: &Path) -> Option<DayKey> {
    let key = key::parse(&path.to_string_lossy())?;
    key.folder?;
    let (year, month, day) = (key.year?, key.month?, key.day?);
    Some((key.account, NaiveDate::from_ymd_opt(year, month, day)?))
}

fn boundary(source: &Path, follow_symlinks: bool) -> Boundary {
    if follow_symlinks {
        return None;
    }
    let resolved = std::fs::canonicalize(source).unwrap_or_else(|_| source.to_path_buf());
    Some(Arc::from(resolved))
}

/// Why a walk must not enter `entry`: a symbolic link (below the walk's root) whose target is
/// outside `within`.
fn escape(entry: &DirEntry, within: &Boundary) -> Option<SourceError> {
    let within = within.as_deref()?;
    if entry.depth() == 0 || !entry.path_is_symlink() {
        return None;
    }
    // A dangling link is reported by the walk itself.
    let target = std::fs::canonicalize(entry.path()).ok()?;
    if target.starts_with(within) {
        return None;
    }
    Some(SourceError::OutsideSource {
        path: entry.path().to_path_buf(),
        target,
        within: within.to_path_buf(),
    })
}

fn walk(
    root: &Path,
    within: &Boundary,
    scope: &Scope,
    found: &mut LocalInputs,
    days: &mut BTreeMap<DayKey, DayGroup>,
) {
    let mut not_entered = NotEntered::default();
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| not_entered.enters(entry, within, scope));
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => take_file(entry.path(), found, days),
            Ok(_) => {}
            Err(error) => found.errors.push(walk_error(&error, root)),
        }
    }
    for (day, folder) in not_entered.day_folders {
        days.entry(day).or_default().folders.push(DayFolder {
            path: recorded_name(&folder),
            within: within.clone(),
        });
    }
    found.errors.append(&mut not_entered.escaped);
    found.pruned_folders += not_entered.pruned;
}

/// What a walk did not descend into, and why: folders the scope excludes, day folders (listed
/// later), links leading out of the source.
#[derive(Default)]
struct NotEntered {
    pruned: usize,
    day_folders: Vec<(DayKey, PathBuf)>,
    escaped: Vec<SourceError>,
}

impl NotEntered {
    /// Whether a walk enters (or takes) `entry`; when not, notes why.
    fn enters(&mut self, entry: &DirEntry, within: &Boundary, scope: &Scope) -> bool {
        if let Some(escape) = escape(entry, within) {
            self.escaped.push(escape);
            return false;
        }
        if !entry.file_type().is_dir() {
            return true;
        }
        let in_scope =
            key::parse(&entry.path().to_string_lossy()).is_none_or(|k| scope.may_contain(&k));
        if !in_scope {
            self.pruned += 1;
            return false;
        }
        match day_of(entry.path()) {
            // Listed when ingest reaches its day, not now.
            Some(day) => {
                self.day_folders.push((day, entry.path().to_path_buf()));
                false
            }
            None => true,
        }
    }
}

/// Keeps a file the walk found: with its day group when it is in a day folder of the layout,
/// as a loose input otherwise.
fn take_file(path: &Path, found: &mut LocalInputs, days: &mut BTreeMap<DayKey, DayGroup>) {
    match path.parent().and_then(day_of) {
        Some(day) => days.entry(day).or_default().files.push(recorded_name(path)),
        None => match source_file(path) {
            Ok(file) => found.loose.push(file),
            Err(source) => found.errors.push(SourceError::Read {
                path: path.to_path_buf(),
                source,
            }),
        },
    }
}

impl DayGroup {
    /// Lists the group's files (every file below its folders, and the files named on their
    /// own), each once, in visiting order.
    pub fn list(&self) -> DayListing {
        let mut listing = DayListing::default();
        for folder in &self.folders {
            let mut escaped = Vec::new();
            let walker = folder
                .walk()
                .filter_entry(|entry| match escape(entry, &folder.within) {
                    Some(escape) => {
                        escaped.push(escape);
                        false
                    }
                    None => true,
                });
            for entry in walker {
                match entry {
                    Ok(entry) if entry.file_type().is_file() => listing.add(entry.path()),
                    Ok(_) => {}
                    Err(error) => listing.errors.push(walk_error(&error, &folder.path)),
                }
            }
            listing.errors.append(&mut escaped);
        }
        for file in &self.files {
            listing.add(file);
        }
        sort_for_visiting(&mut listing.files);
        listing
    }

    /// How many files the group holds and their bytes, without keeping their names (for a
    /// progress bar's total).
    pub fn measure(&self) -> (u64, u64) {
        let folders = self.folders.iter().flat_map(|folder| {
            folder
                .walk()
                .filter_entry(|entry| escape(entry, &folder.within).is_none())
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_file())
                .filter_map(|entry| entry.metadata().ok())
                .map(|metadata| metadata.len())
        });
        let files = self
            .files
            .iter()
            .filter(|file| {
                !self
                    .folders
                    .iter()
                    .any(|folder| file.starts_with(&folder.path))
            })
            .filter_map(|file| std::fs::metadata(file).ok())
            .map(|metadata| metadata.len());
        folders
            .chain(files)
            .fold((0, 0), |(count, bytes), size| (count + 1, bytes + size))
    }
}

impl DayFolder {
    fn walk(&self) -> walkdir::IntoIter {
        WalkDir::new(&self.path).follow_links(true).into_iter()
    }
}

impl DayListing {
    fn add(&mut self, path: &Path) {
        match source_file(path) {
            Ok(file) => self.files.push(file),
            Err(source) => self.errors.push(SourceError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

fn walk_error(error: &walkdir::Error, root: &Path) -> SourceError {
    let path = error.path().unwrap_or(root).to_path_buf();
    let reason = error
        .io_error()
        .map_or_else(|| error.to_string(), ToString::to_string);
    SourceError::Walk { path, reason }
}

/// The name a path is recorded under (in the manifest, `source_file`, `_rejected/` and the
/// summary): as the walk of the source named on the command line found it, so relative when
/// that source was, and a lake copied to another machine carries no path of the first one's
/// disk. Only `.` components are dropped (`./logs/a` and `logs/a` are one file); nothing is
/// resolved against the working directory or through links.
pub fn recorded_name(path: &Path) -> PathBuf {
    let kept: PathBuf = path
        .components()
        .filter(|part| !matches!(part, Component::CurDir))
        .collect();
    if kept.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        kept
    }
}

fn source_file(path: &Path) -> std::io::Result<SourceFile> {
    let metadata = std::fs::metadata(path)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i64);
    let name = recorded_name(path).to_string_lossy().into_owned();
    Ok(SourceFile {
        origin: Origin::Local,
        name,
        size: metadata.len(),
        version: modified.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, relative: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, relative).unwrap();
    }

    #[test]
    fn day_folders_are_grouped_by_account_and_day_and_listed_later() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let day = |account: &str, region: &str, d: &str, name: &str| {
            format!(
                "AWSLogs/{account}/CloudTrail/{region}/2024/03/{d}/{account}_CloudTrail_{region}_202403{d}T{name}Z_x.json.gz"
            )
        };
        touch(root, &day("111111111111", "us-east-1", "01", "0010"));
        touch(root, &day("111111111111", "eu-west-1", "01", "0005"));
        touch(root, &day("111111111111", "us-east-1", "02", "0000"));
        touch(root, &day("222222222222", "us-east-1", "01", "0000"));
        touch(root, "exports/b.jsonl");
        touch(root, "exports/a.jsonl");
        let explicit = root.join(day("111111111111", "us-east-1", "01", "0010"));
        let found = discover(&[root.to_path_buf(), explicit], &Scope::default(), false);
        assert!(found.errors.is_empty(), "{:?}", found.errors);
        assert_eq!(found.days.len(), 3, "(account, day) groups across regions");
        let names = |listing: DayListing| -> Vec<String> {
            assert!(listing.errors.is_empty());
            let files = listing
                .files
                .iter()
                .map(|f| f.name.rsplit('/').next().unwrap());
            files.map(str::to_owned).collect()
        };
        assert_eq!(
            names(found.days[0].list()),
            [
                "111111111111_CloudTrail_eu-west-1_20240301T0005Z_x.json.gz",
                "111111111111_CloudTrail_us-east-1_20240301T0010Z_x.json.gz",
            ],
            "regions merged in delivery order; the file named twice listed once"
        );
        assert_eq!(found.days[0].measure().0, 2, "measured once too");
        assert_eq!(names(found.days[1].list()).len(), 1);
        assert!(names(found.days[2].list())[0].starts_with("222222222222"));
        let loose: Vec<_> = found
            .loose
            .iter()
            .map(|f| &f.name[f.name.len() - 7..])
            .collect();
        assert_eq!(loose, ["a.jsonl", "b.jsonl"]);
    }

    #[test]
    fn folders_outside_the_scope_are_pruned_before_grouping() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(
            root,
            "AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/a.json.gz",
        );
        touch(
            root,
            "AWSLogs/222222222222/CloudTrail/us-east-1/2024/03/01/b.json.gz",
        );
        let scope = Scope {
            accounts: vec!["111111111111".into()],
            ..Scope::default()
        };
        let found = discover(&[root.to_path_buf()], &scope, false);
        assert_eq!(found.days.len(), 1);
        assert_eq!(found.pruned_folders, 1);
        assert!(found.days[0].list().files[0].name.ends_with("a.json.gz"));
    }
}
