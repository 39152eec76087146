//! The lake's folder layout:
//!
//! ```text
//! <lake>/events/account_id=<12 digits|unknown>/date=<YYYY-MM-DD>/part-<run>-<worker>-<n>.parquet
//! <lake>/_manifest/run-<run>.jsonl     inputs already ingested (one segment per run)
//! <lake>/_rejected/run-<run>.ndjson    records that could not become rows, with the reason
//! <lake>/_lock                         held by the one ingest that may write at a time
//! ```
//!
//! Names starting with `_` or `.` are ignored by Spark, Athena, DuckDB and DataFusion, so only
//! complete Parquet files under `events/` are ever read as data.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

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

/// An open lake, locked for writing for as long as this value lives.
#[derive(Debug)]
pub struct Lake {
    root: PathBuf,
    _lock: File,
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
        let lock_path = root.join("_lock");
        let lock = File::create(&lock_path).map_err(SinkError::io("creating", &lock_path))?;
        lock.try_lock().map_err(|_| SinkError::Locked {
            path: root.to_path_buf(),
        })?;
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
