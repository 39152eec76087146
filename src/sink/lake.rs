//! The lake's folder layout:
//!
//! ```text
//! <lake>/events/account_id=<12 digits|unknown>/date=<YYYY-MM-DD>/part-<run>-<worker>-<n>.parquet
//! <lake>/_manifest/run-<run>.jsonl     inputs already ingested (one segment per run)
//! <lake>/_rejected/run-<run>.ndjson    records that could not become rows, with the reason
//! <lake>/_lock                         held by the one ingest or derive that may write at a time
//! ```
//!
//! Names starting with `_` or `.` are ignored by Spark, Athena, DuckDB and DataFusion, so only
//! complete Parquet files under `events/` are ever read as data.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::aws::S3Url;
use crate::error::SinkError;

/// Where a lake lives: a folder, or a prefix in an S3 bucket (same layout in both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    Local(PathBuf),
    S3(S3Url),
}

impl LakeLocation {
    /// `s3://bucket/prefix` or a folder.
    pub fn parse(text: &str) -> Result<LakeLocation, String> {
        match S3Url::parse(text) {
            Some(url) => url.map(LakeLocation::S3),
            None => Ok(LakeLocation::Local(PathBuf::from(text))),
        }
    }
}

impl std::fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LakeLocation::Local(path) => write!(f, "{}", path.display()),
            LakeLocation::S3(url) => write!(f, "{url}"),
        }
    }
}

/// The write lock of a lake on disk, `<lake>/_lock`, shared by `ingest` and `derive`: one run
/// writes at a time, and a second one fails at once with [`SinkError::Locked`] (it does not
/// wait: a scheduler retries, a person sees why). Within one process the lock is reentrant, so
/// that `ingest --derive` holds it from the first file ingested to the derived tables published,
/// and its derive step does not lock itself out. Released when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct LakeLock {
    _file: Arc<File>,
}

/// The locks this process holds, by the lake's canonical path.
static HELD: Mutex<Option<HashMap<PathBuf, Weak<File>>>> = Mutex::new(None);

impl LakeLock {
    /// Takes the lock of the lake at `root` (creating the folder), or shares this process's.
    pub fn acquire(root: &Path) -> Result<LakeLock, SinkError> {
        fs::create_dir_all(root).map_err(SinkError::io("creating", root))?;
        let key = fs::canonicalize(root).map_err(SinkError::io("resolving", root))?;
        // A poisoned map only means another thread panicked while holding it: the map is intact.
        let mut held = HELD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let held = held.get_or_insert_with(HashMap::new);
        if let Some(file) = held.get(&key).and_then(Weak::upgrade) {
            return Ok(LakeLock { _file: file });
        }
        let lock_path = key.join("_lock");
        let file = File::create(&lock_path).map_err(SinkError::io("creating", &lock_path))?;
        file.try_lock().map_err(|_| SinkError::Locked {
            path: root.to_path_buf(),
        })?;
        let file = Arc::new(file);
        held.insert(key, Arc::downgrade(&file));
        Ok(LakeLock { _file: file })
    }
}

/// `base` with `names` appended as folders (a trailing `/`), each name percent-encoded: a
/// folder called `a[1] ?*#%20 b` stays one folder with that name, never a glob, a query, a
/// fragment or an escape. None when `base` cannot have a path (it always can for `file:` and
/// `s3:`).
pub fn folder_url(base: &url::Url, names: &[&str]) -> Option<url::Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(names.iter().filter(|name| !name.is_empty()))
        .push("");
    Some(url)
}

/// An open lake, locked for writing for as long as this value lives.
#[derive(Debug)]
pub struct Lake {
    root: PathBuf,
    _lock: LakeLock,
}

impl Lake {
    /// Creates the layout if needed, takes the write lock and removes temporary files that an
    /// interrupted run left behind.
    pub fn open_for_writing(root: &Path) -> Result<Lake, SinkError> {
        for dir in [
            root.join("events"),
            root.join("_manifest"),
            root.join("_rejected"),
        ] {
            fs::create_dir_all(&dir).map_err(SinkError::io("creating", &dir))?;
        }
        let lock = LakeLock::acquire(root)?;
        let lake = Lake {
            root: root.to_path_buf(),
            _lock: lock,
        };
        lake.remove_temporary_files()?;
        Ok(lake)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn events_dir(&self) -> PathBuf {
        self.root.join("events")
    }

    pub fn manifest_dir(&self) -> PathBuf {
        self.root.join("_manifest")
    }

    pub fn rejected_dir(&self) -> PathBuf {
        self.root.join("_rejected")
    }

    fn remove_temporary_files(&self) -> Result<(), SinkError> {
        for entry in walkdir::WalkDir::new(&self.root).into_iter().flatten() {
            if entry.file_type().is_file() && is_temporary(entry.path()) {
                fs::remove_file(entry.path()).map_err(SinkError::io("removing", entry.path()))?;
            }
        }
        Ok(())
    }
}

/// Temporary files are hidden (`.` prefix) and end in `.tmp` until they are published.
pub fn temporary_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
}

/// The hidden temporary file that becomes `dir/name` at [`commit`].
pub fn create_temporary(dir: &Path, name: &str) -> Result<(File, PathBuf), SinkError> {
    let temporary = dir.join(temporary_name(name));
    let file = File::create(&temporary).map_err(SinkError::io("creating", &temporary))?;
    Ok((file, temporary))
}

/// Makes a fully written temporary file durable and renames it to `dir/name`.
pub fn commit(file: File, temporary: &Path, dir: &Path, name: &str) -> Result<PathBuf, SinkError> {
    let target = dir.join(name);
    file.sync_all()
        .map_err(SinkError::io("syncing", temporary))?;
    drop(file);
    fs::rename(temporary, &target).map_err(SinkError::io("publishing", &target))?;
    sync_dir(dir)?;
    Ok(target)
}

/// Makes a rename durable (a no-op where folders cannot be opened, as on Windows).
pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    match File::open(dir) {
        Ok(handle) => handle.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_urls_keep_every_character_of_a_name() {
        let base = url::Url::from_directory_path("/data/a[1] ?*#%20 b").unwrap();
        let url = folder_url(&base, &["derived", "x#y", "sessions"]).unwrap();
        assert_eq!(
            url.to_file_path().unwrap(),
            Path::new("/data/a[1] ?*#%20 b/derived/x#y/sessions")
        );
        let s3 = url::Url::parse("s3://bucket/").unwrap();
        let url = folder_url(&s3, &["pre fix%", "", "events"]).unwrap();
        assert_eq!(url.as_str(), "s3://bucket/pre%20fix%25/events/");
    }
}
