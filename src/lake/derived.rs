//! The derived tables as the lake holds them: where a build's tables live, what `CURRENT.json`
//! says about them ([`Stamp`]), and whether they match the lake's event files ([`Freshness`]).
//! Computing them is `crate::query::derive`'s job, choosing them over the views `catalog`'s.
//!
//! ```text
//! <lake>/derived/<build>/assumptions/*.parquet
//! <lake>/derived/<build>/sessions/*.parquet      (and session_usage/, caller_sources/)
//! <lake>/derived/CURRENT.json        which build is complete and which event files it read
//! ```
//!
//! The fingerprint hashes the list of event files (name and size), the views' SQL (given by the
//! caller, so the lake does not depend on the catalog) and this program's version, so derived
//! tables can never be stale without anyone noticing.
//!
//! Crash safety: every build writes a folder of its own (`<fingerprint>-<time>`) that nothing
//! reads until `CURRENT.json` names it; that file is replaced atomically (a rename on disk, a PUT
//! on S3) and lists every file of the build with its size. A reader uses the build only when
//! its folder holds exactly those files, so a `CURRENT.json` naming a deleted, damaged or half
//! copied build is never used.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{CURRENT_STAMP, DERIVED_DIR, folder_url, sibling_folder};
use crate::error::QueryError;

/// The views kept as tables, in the order they are built (later ones read earlier ones).
/// `session_usage` is kept because `sessions` built from it and `assumptions` read back from
/// Parquet needs a fraction of the memory of `sessions` computed from `events` in one plan.
pub const DERIVED_VIEWS: [&str; 4] = ["assumptions", "session_usage", "sessions", "caller_sources"];

/// Bumped when the layout or the meaning of the derived files changes.
const FORMAT: &str = "sts-audit derived v2";

/// What `CURRENT.json` says: the fingerprint whose tables are complete, and what they hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub fingerprint: String,
    /// The folder under `derived/` that holds the tables.
    pub build: String,
    pub version: String,
    pub built_at: String,
    pub event_files: u64,
    pub tables: Vec<TableRows>,
    /// Every Parquet file of the build as it was published: a build folder that no longer
    /// holds exactly these (deleted by a run of an older version, damaged, half copied) is
    /// never read.
    pub files: Vec<BuildFile>,
}

/// One file of a build: its path under the build's folder (`sessions/part-0.parquet`) and size.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BuildFile {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRows {
    pub name: String,
    pub rows: u64,
}

/// Whether the derived tables match the lake as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Never built.
    Missing,
    /// Built for other event files (an ingest ran since) or by another version.
    Stale,
    /// `CURRENT.json` names a build whose folder does not hold the files it lists (deleted,
    /// truncated, half copied): never read, rebuilt by the next `derive`.
    Incomplete {
        build: String,
    },
    Current(Stamp),
}

/// The lake's storage as DataFusion sees it: its object store and the paths in it.
pub struct LakeStore {
    store: Arc<dyn ObjectStore>,
    events: ObjectPath,
    derived: ObjectPath,
    /// `file:///abs/lake/derived/` or `s3://bucket/prefix/derived/`, every name percent-encoded.
    derived_url: Url,
    /// The `derived` folder of a lake on disk, whose emptied folders are removed too.
    local_folder: Option<std::path::PathBuf>,
}

impl LakeStore {
    /// The store behind `events_url`, which the catalog registered in `ctx`.
    pub fn of(ctx: &SessionContext, events_url: &ListingTableUrl) -> Result<Self, QueryError> {
        let store = ctx
            .runtime_env()
            .object_store(events_url)
            .map_err(QueryError::setup("lake storage"))?;
        let (derived_url, derived) = sibling_folder(events_url, DERIVED_DIR)?;
        let local_folder = match derived_url.scheme() {
            "file" => derived_url.to_file_path().ok(),
            _ => None,
        };
        Ok(LakeStore {
            store,
            events: events_url.prefix().clone(),
            derived,
            derived_url,
            local_folder,
        })
    }

    /// Where a derived table of `build` lives, as a URL DataFusion lists (never as a glob).
    pub fn table_url(&self, build: &str, name: &str) -> Result<ListingTableUrl, QueryError> {
        let url = folder_url(&self.derived_url, &[build, name]).ok_or_else(|| self.bad_url())?;
        ListingTableUrl::try_new(url, None).map_err(QueryError::setup("derived table URL"))
    }

    fn bad_url(&self) -> QueryError {
        QueryError::Remote {
            lake: self.derived_url.to_string(),
            reason: "cannot name a build folder under it".to_owned(),
        }
    }

    /// A hash of every event file's name and size, the views' SQL (`views_sql`, in registration
    /// order) and the format: any ingest that publishes a file changes it.
    pub async fn fingerprint(&self, views_sql: &[&str]) -> Result<(String, u64), QueryError> {
        let mut files: Vec<(String, u64)> = self
            .store
            .list(Some(&self.events))
            .try_filter_map(|meta| async move {
                let name = meta.location.filename().unwrap_or_default();
                let data = name.ends_with(".parquet") && !name.starts_with(['.', '_']);
                Ok(data.then(|| (meta.location.to_string(), meta.size)))
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        files.sort();
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(FORMAT.as_bytes());
        hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
        for sql in views_sql {
            hasher.update(sql.as_bytes());
        }
        for (path, size) in &files {
            hasher.update(path.as_bytes());
            hasher.update(&size.to_le_bytes());
        }
        Ok((format!("{:016x}", hasher.digest()), files.len() as u64))
    }

    /// What `CURRENT.json` says, if there is one that can be read.
    pub async fn stamp(&self) -> Result<Option<Stamp>, QueryError> {
        let path = self.derived.clone().join(CURRENT_STAMP);
        let bytes = match self.store.get(&path).await {
            Ok(found) => found.bytes().await.map_err(|e| self.error(e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        // An unreadable stamp (another version's) only means the tables must be rebuilt.
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// Whether `CURRENT.json` names a complete build of the lake as it is now (see
    /// [`LakeStore::fingerprint`] for `views_sql`).
    pub async fn freshness(&self, views_sql: &[&str]) -> Result<Freshness, QueryError> {
        let (fingerprint, _) = self.fingerprint(views_sql).await?;
        self.freshness_for(&fingerprint).await
    }

    /// Whether `CURRENT.json` names a complete build of the event files `fingerprint` hashes.
    pub async fn freshness_for(&self, fingerprint: &str) -> Result<Freshness, QueryError> {
        let Some(stamp) = self.stamp().await? else {
            return Ok(Freshness::Missing);
        };
        if stamp.fingerprint != fingerprint {
            return Ok(Freshness::Stale);
        }
        if self.build_files(&stamp.build).await? != stamp.files {
            return Ok(Freshness::Incomplete { build: stamp.build });
        }
        Ok(Freshness::Current(stamp))
    }

    /// The Parquet files under `derived/<build>/`, sorted (none when the folder is gone).
    pub async fn build_files(&self, build: &str) -> Result<Vec<BuildFile>, QueryError> {
        let folder = self.derived.clone().join(build);
        let depth = folder.parts().count();
        let mut files: Vec<BuildFile> = self
            .store
            .list(Some(&folder))
            .try_filter_map(|meta| async move {
                let parts: Vec<String> = meta
                    .location
                    .parts()
                    .skip(depth)
                    .map(|part| part.as_ref().to_owned())
                    .collect();
                let path = parts.join("/");
                let data = path.ends_with(".parquet");
                Ok(data.then_some(BuildFile {
                    path,
                    size: meta.size,
                }))
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        files.sort();
        Ok(files)
    }

    pub async fn write_stamp(&self, stamp: &Stamp) -> Result<(), QueryError> {
        let json = serde_json::to_vec_pretty(stamp).map_err(|e| QueryError::Remote {
            lake: self.derived_url.to_string(),
            reason: e.to_string(),
        })?;
        // object_store writes a local file to a temporary name and renames it: atomic on
        // disk as on S3.
        self.store
            .put(
                &self.derived.clone().join(CURRENT_STAMP),
                PutPayload::from(json),
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Removes the files of the builds `doomed` names, given the build and when anything in
    /// it was last written (never `CURRENT.json`).
    pub async fn remove_builds(
        &self,
        doomed: impl Fn(&str, DateTime<Utc>) -> bool,
    ) -> Result<(), QueryError> {
        let depth = self.derived.parts().count();
        let files: Vec<(String, ObjectPath, DateTime<Utc>)> = self
            .store
            .list(Some(&self.derived))
            .try_filter_map(|meta| async move {
                let build = meta.location.parts().nth(depth);
                let build = build
                    .as_ref()
                    .map(|p| p.as_ref())
                    .unwrap_or(CURRENT_STAMP)
                    .to_owned();
                Ok((build != CURRENT_STAMP).then_some((build, meta.location, meta.last_modified)))
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        let mut written: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for (build, _, modified) in &files {
            let newest = written.entry(build.as_str()).or_insert(*modified);
            *newest = (*newest).max(*modified);
        }
        for (build, path, _) in &files {
            if written
                .get(build.as_str())
                .is_some_and(|at| doomed(build.as_str(), *at))
            {
                self.store.delete(path).await.map_err(|e| self.error(e))?;
            }
        }
        // On disk, deleting files leaves their folders: remove the empty ones (deepest first).
        if let Some(folder) = &self.local_folder {
            let folders = walkdir::WalkDir::new(folder)
                .min_depth(1)
                .contents_first(true);
            for entry in folders.into_iter().flatten() {
                if entry.file_type().is_dir() {
                    let _ = std::fs::remove_dir(entry.path()); // fails when not empty: kept
                }
            }
        }
        Ok(())
    }

    fn error(&self, error: object_store::Error) -> QueryError {
        QueryError::Remote {
            lake: self.derived_url.to_string(),
            reason: error.to_string(),
        }
    }
}
