//! Derived tables: the views `assumptions`, `session_usage`, `sessions` and `caller_sources`
//! computed once from `events` and kept in the lake as Parquet, so that reports read about a
//! million finished rows instead of pairing STS copies, aggregating every signed call and walking
//! role chains over ten million events at every query.
//!
//! ```text
//! <lake>/derived/<build>/assumptions/*.parquet
//! <lake>/derived/<build>/sessions/*.parquet      (and session_usage/, caller_sources/)
//! <lake>/derived/CURRENT.json        which build is complete and which event files it read
//! ```
//!
//! The fingerprint hashes the list of event files (name and size), the views' SQL and this
//! program's version, so derived tables can never be stale without anyone noticing: the catalog
//! recomputes it when it opens the lake and uses the derived tables only when it matches
//! `CURRENT.json`, and only where a narrowed table equals the view computed from narrowed events:
//! all of them for the whole lake, `assumptions` alone for a time range, none for `--account`
//! (see `catalog::derived_in_scope`). Otherwise the views are computed from `events` as before:
//! slower, never wrong.
//!
//! Crash safety: every build writes a folder of its own (`<fingerprint>-<time>`) that nothing
//! reads until `CURRENT.json` names it; that file is replaced atomically (a rename on disk, a PUT
//! on S3) and lists every file of the build with its size. A reader uses the build only when
//! its folder holds exactly those files, so a `CURRENT.json` naming a deleted, damaged or half
//! copied build is never used (the views are computed from `events`, and `derive` rebuilds).
//!
//! Concurrency: on disk a build holds the lake's write lock (`<lake>/_lock`, shared with
//! `ingest`; a second run fails at once), so after publishing it removes every other build but
//! the previous one, which a query started before the switch may still be reading (a killed
//! build's partial folder included). On S3 there is no lock: another folder is removed only
//! when nothing was written to it for [`ABANDONED_AFTER`], since a younger one may be another
//! run's build in progress.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::aws::AwsOptions;
use crate::error::QueryError;
use crate::query::catalog::{self, Derived, QueryScope, VIEWS};
use crate::sink::lake::{LakeLocation, LakeLock, folder_url};

/// The views kept as tables, in the order they are built (later ones read earlier ones).
/// `session_usage` is kept because `sessions` built from it and `assumptions` read back from
/// Parquet needs a fraction of the memory of `sessions` computed from `events` in one plan.
pub const DERIVED_VIEWS: [&str; 4] = ["assumptions", "session_usage", "sessions", "caller_sources"];

/// Bumped when the layout or the meaning of the derived files changes.
const FORMAT: &str = "sts-audit derived v2";

/// On S3, where no lock keeps two builds apart, a folder that is neither the current build nor
/// the previous one is removed only once nothing was written to it for this long: until then it
/// may be another run's build in progress.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

const FOLDER: &str = "derived";
const STAMP: &str = "CURRENT.json";

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

/// The outcome of `sts-audit derive`, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DeriveSummary {
    pub lake: String,
    /// False when the derived tables already matched the lake and nothing was written.
    pub built: bool,
    pub fingerprint: String,
    pub event_files: u64,
    pub tables: Vec<TableRows>,
    pub elapsed_seconds: f64,
}

impl DeriveSummary {
    pub fn render_text(&self) -> String {
        let mut text = if self.built {
            format!(
                "derived tables built in {:.1} s from {} event files ({})\n",
                self.elapsed_seconds, self.event_files, self.lake
            )
        } else {
            format!(
                "derived tables already current for {} event files ({})\n",
                self.event_files, self.lake
            )
        };
        for table in &self.tables {
            text += &format!("  {:<16} {:>10} rows\n", table.name, table.rows);
        }
        text
    }
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
        // `<lake>/events/` -> `<lake>/derived/`, as URLs: names are never re-parsed from text.
        let mut root: Url = AsRef::<Url>::as_ref(events_url).clone();
        if let Ok(mut segments) = root.path_segments_mut() {
            segments.pop_if_empty().pop().push("");
        }
        let derived_url = folder_url(&root, &[FOLDER]).ok_or_else(|| QueryError::Remote {
            lake: events_url.to_string(),
            reason: "the lake's location cannot hold a derived/ folder".to_owned(),
        })?;
        let derived =
            ObjectPath::from_url_path(derived_url.path()).map_err(|e| QueryError::Remote {
                lake: derived_url.to_string(),
                reason: e.to_string(),
            })?;
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

    /// A hash of every event file's name and size, the views' SQL and the format: any ingest
    /// that publishes a file changes it.
    pub async fn fingerprint(&self) -> Result<(String, u64), QueryError> {
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
        for view in VIEWS {
            hasher.update(view.sql.as_bytes());
        }
        for (path, size) in &files {
            hasher.update(path.as_bytes());
            hasher.update(&size.to_le_bytes());
        }
        Ok((format!("{:016x}", hasher.digest()), files.len() as u64))
    }

    /// What `CURRENT.json` says, if there is one that can be read.
    pub async fn stamp(&self) -> Result<Option<Stamp>, QueryError> {
        let path = self.derived.clone().join(STAMP);
        let bytes = match self.store.get(&path).await {
            Ok(found) => found.bytes().await.map_err(|e| self.error(e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        // An unreadable stamp (another version's) only means the tables must be rebuilt.
        Ok(serde_json::from_slice(&bytes).ok())
    }

    pub async fn freshness(&self) -> Result<Freshness, QueryError> {
        let (fingerprint, _) = self.fingerprint().await?;
        self.freshness_for(&fingerprint).await
    }

    /// Whether `CURRENT.json` names a complete build of the event files `fingerprint` hashes.
    async fn freshness_for(&self, fingerprint: &str) -> Result<Freshness, QueryError> {
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
    async fn build_files(&self, build: &str) -> Result<Vec<BuildFile>, QueryError> {
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

    async fn write_stamp(&self, stamp: &Stamp) -> Result<(), QueryError> {
        let json = serde_json::to_vec_pretty(stamp).map_err(|e| QueryError::Remote {
            lake: self.derived_url.to_string(),
            reason: e.to_string(),
        })?;
        // object_store writes a local file to a temporary name and renames it: atomic on
        // disk as on S3.
        self.store
            .put(&self.derived.clone().join(STAMP), PutPayload::from(json))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Removes the files of the builds `doomed` names, given the build and when anything in
    /// it was last written (never `CURRENT.json`).
    async fn remove_builds(
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
                    .unwrap_or(STAMP)
                    .to_owned();
                Ok((build != STAMP).then_some((build, meta.location, meta.last_modified)))
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

/// Computes the derived tables of `lake` unless they are current (or `force`), then points
/// `CURRENT.json` at them. A lake on disk stays locked (the ingest lock) for the whole build.
pub async fn build(
    lake: &LakeLocation,
    aws: &AwsOptions,
    memory_limit: usize,
    force: bool,
) -> Result<DeriveSummary, QueryError> {
    let started = Instant::now();
    let everything = QueryScope::default();
    let opened =
        catalog::open_catalog(lake, aws, &everything, memory_limit, Derived::Ignore).await?;
    let lock = lock(lake)?;
    let store = LakeStore::of(&opened.ctx, &opened.events_url)?;
    let (fingerprint, event_files) = store.fingerprint().await?;
    let summary = |built, fingerprint, tables| DeriveSummary {
        lake: lake.to_string(),
        built,
        fingerprint,
        event_files,
        tables,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    };
    if let Freshness::Current(stamp) = store.freshness_for(&fingerprint).await?
        && !force
    {
        return Ok(summary(false, fingerprint, stamp.tables));
    }
    let build = format!("{fingerprint}-{}", Utc::now().format("%Y%m%dT%H%M%S%6fZ"));
    let target = Build {
        store: &store,
        fingerprint: &fingerprint,
        folder: &build,
    };
    let written = write_tables(lake, aws, memory_limit, opened.ctx, &target).await;
    // A build that cannot be published is removed at once (else the next build would).
    let tables = match written {
        Ok(tables) => tables,
        Err(error) => {
            let _ = store.remove_builds(|b, _| b == build).await;
            return Err(error);
        }
    };
    let stamp = Stamp {
        fingerprint: fingerprint.clone(),
        build: build.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        built_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        event_files,
        tables: tables.clone(),
        files: store.build_files(&build).await?,
    };
    // Read again just before the switch: on S3 another run may have published meanwhile.
    let previous = store.stamp().await?.map(|p| p.build).unwrap_or_default();
    store.write_stamp(&stamp).await?;
    let abandoned = Utc::now() - ABANDONED_AFTER;
    let locked = lock.is_some();
    store
        .remove_builds(|b, written| b != build && b != previous && (locked || written < abandoned))
        .await?;
    Ok(summary(true, fingerprint, tables))
}

/// The write lock of a lake on disk (shared with `ingest`, held by this process already under
/// `ingest --derive`); none on S3, whose builds are kept apart by `ABANDONED_AFTER` instead.
fn lock(lake: &LakeLocation) -> Result<Option<LakeLock>, QueryError> {
    match lake {
        LakeLocation::Local(root) => Ok(Some(LakeLock::acquire(root).map_err(QueryError::Lock)?)),
        LakeLocation::S3(_) => Ok(None),
    }
}

/// Where a build writes, and the fingerprint of the event files it reads.
struct Build<'a> {
    store: &'a LakeStore,
    fingerprint: &'a str,
    folder: &'a str,
}

/// Writes every derived table into the build's folder, then checks that the lake's event files
/// are still the ones fingerprinted before.
async fn write_tables(
    lake: &LakeLocation,
    aws: &AwsOptions,
    memory_limit: usize,
    mut ctx: SessionContext,
    target: &Build<'_>,
) -> Result<Vec<TableRows>, QueryError> {
    let Build {
        store,
        fingerprint,
        folder: build,
    } = *target;
    let everything = QueryScope::default();
    let mut tables = Vec::new();
    for (built, name) in DERIVED_VIEWS.iter().enumerate() {
        if built > 0 {
            // Later tables read the ones already written (cheaper than computing them again).
            let done = Derived::Use {
                build: build.to_owned(),
                tables: DERIVED_VIEWS[..built].to_vec(),
            };
            ctx = catalog::open_catalog(lake, aws, &everything, memory_limit, done)
                .await?
                .ctx;
        }
        let rows = write_table(&ctx, store, build, name).await?;
        tables.push(TableRows {
            name: (*name).to_owned(),
            rows,
        });
    }
    // An ingest that published files meanwhile may or may not be in the tables: the stamp
    // would claim what was not read, so nothing is claimed.
    let (after, _) = store.fingerprint().await?;
    if after != fingerprint {
        return Err(QueryError::Remote {
            lake: lake.to_string(),
            reason: "the lake changed while its derived tables were built (an ingest ran?): \
                     run `sts-audit derive` again"
                .to_owned(),
        });
    }
    Ok(tables)
}

/// Writes view `name` as Parquet under the build's folder; returns its rows.
async fn write_table(
    ctx: &SessionContext,
    store: &LakeStore,
    build: &str,
    name: &str,
) -> Result<u64, QueryError> {
    let url = store.table_url(build, name)?;
    let frame = ctx.table(name).await?;
    let mut options = TableParquetOptions::default();
    options.global.compression = Some("zstd(3)".to_owned());
    let written = frame
        .write_parquet(
            url.as_str(),
            DataFrameWriteOptions::new().with_single_file_output(false),
            Some(options),
        )
        .await?;
    Ok(written
        .first()
        .and_then(|batch| {
            batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::UInt64Array>()
                .map(|counts| counts.values().iter().sum())
        })
        .unwrap_or(0))
}
