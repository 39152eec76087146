//! The lake as both wings see it: where it is ([`LakeLocation`]), what its folders and files
//! are called, how a lake on disk is found and locked. Its parts: the `events` schema
//! ([`schema`]), the Hive partitions ([`partition`]), the derived tables' layout and
//! freshness ([`derived`]) and the saved findings' layout and columns ([`findings`]). Writing into it is `sink`'s job, querying it `catalog`'s.
//!
//! ```text
//! <lake>/events/account_id=<12 digits|unknown>/date=<YYYY-MM-DD>/part-<run>-<worker>-<n>.parquet
//! <lake>/_manifest/run-<run>.jsonl     inputs already ingested (one segment per run)
//! <lake>/_rejected/run-<run>.ndjson    records that could not become rows, with the reason
//! <lake>/derived/                      the derived tables and CURRENT.json (see `derived`)
//! <lake>/findings/                     the findings `detect --save` kept (see `findings`)
//! <lake>/verified/                     what `verify --lake` proved, per source file (see `verified`)
//! <lake>/_lock                         held by the one ingest or derive that may write at a time
//! ```
//!
//! Names starting with `_` or `.` are ignored by Spark, Athena, DuckDB and DataFusion, so only
//! complete Parquet files under `events/` are ever read as data.

pub mod derived;
pub mod findings;
pub mod partition;
pub mod schema;
pub mod scope;
pub mod verified;

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use datafusion::datasource::listing::ListingTableUrl;
use object_store::path::Path as ObjectPath;

use crate::aws::S3Url;
use crate::error::{QueryError, SinkError};

/// The folder of the `events` table's Parquet files.
pub const EVENTS_DIR: &str = "events";
/// The folder of the manifest segments: which inputs each run ingested.
pub const MANIFEST_DIR: &str = "_manifest";
/// The folder of the rejected-records logs.
pub const REJECTED_DIR: &str = "_rejected";
/// The folder of the derived tables' builds and their stamp.
const DERIVED_DIR: &str = "derived";
/// The folder of the findings `detect --save` keeps.
pub const FINDINGS_DIR: &str = "findings";
/// The write lock of a lake on disk.
const LOCK_FILE: &str = "_lock";

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
        let lock_path = key.join(LOCK_FILE);
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

/// The lake's folder `name` (beside `events/`), as a URL and as a path in the lake's object
/// store, built from the `events` URL as URLs: names are never re-parsed from text.
pub fn sibling_folder(
    events_url: &ListingTableUrl,
    name: &str,
) -> Result<(url::Url, ObjectPath), QueryError> {
    let mut root: url::Url = AsRef::<url::Url>::as_ref(events_url).clone();
    if let Ok(mut segments) = root.path_segments_mut() {
        segments.pop_if_empty().pop().push("");
    }
    let url = folder_url(&root, &[name]).ok_or_else(|| QueryError::Remote {
        lake: events_url.to_string(),
        reason: format!("the lake's location cannot hold a {name}/ folder"),
    })?;
    let path = ObjectPath::from_url_path(url.path()).map_err(|e| QueryError::Remote {
        lake: url.to_string(),
        reason: e.to_string(),
    })?;
    Ok((url, path))
}

/// Where the lake's `events` folder is; an error that says what to do when there is no lake.
pub fn events_dir(lake: &Path) -> Result<PathBuf, QueryError> {
    let events = lake.join(EVENTS_DIR);
    if !events.is_dir() {
        return Err(QueryError::NoLake {
            lake: lake.display().to_string(),
        });
    }
    std::fs::canonicalize(&events).map_err(|source| QueryError::Io {
        path: events.clone(),
        source,
    })
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
