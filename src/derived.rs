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
//! on S3). Other builds' folders (a killed build's partial one included) are removed afterwards,
//! except the previous build's, which a query started before the switch may still be reading.

use std::sync::Arc;
use std::time::Instant;

use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::aws::AwsOptions;
use crate::catalog::{self, Derived, QueryScope, VIEWS};
use crate::error::QueryError;
use crate::sink::lake::LakeLocation;

/// The views kept as tables, in the order they are built (later ones read earlier ones).
/// `session_usage` is kept because `sessions` built from it and `assumptions` read back from
/// Parquet needs a fraction of the memory of `sessions` computed from `events` in one plan.
pub const DERIVED_VIEWS: [&str; 4] = ["assumptions", "session_usage", "sessions", "caller_sources"];

/// Bumped when the layout or the meaning of the derived files changes.
const FORMAT: &str = "sts-audit derived v1";

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
    Current(Stamp),
}

/// The lake's storage as DataFusion sees it: its object store and the paths in it.
pub struct LakeStore {
    store: Arc<dyn ObjectStore>,
    events: ObjectPath,
    derived: ObjectPath,
    /// `file:///abs/lake/derived/` or `s3://bucket/prefix/derived/`.
    derived_url: String,
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
        let events = events_url.prefix().clone();
        let root: Vec<_> = events.parts().collect();
        let derived = root[..root.len().saturating_sub(1)]
            .iter()
            .cloned()
            .chain(std::iter::once(FOLDER.into()))
            .collect::<ObjectPath>();
        let base = events_url.object_store();
        let derived_url = format!(
            "{}{}/",
            base.as_str().trim_end_matches('/'),
            url_path(&derived)
        );
        let local_folder =
            (events_url.scheme() == "file").then(|| std::path::PathBuf::from(url_path(&derived)));
        Ok(LakeStore {
            store,
            events,
            derived,
            derived_url,
            local_folder,
        })
    }

    /// Where a derived table of `build` lives, as a URL DataFusion lists.
    pub fn table_url(&self, build: &str, name: &str) -> Result<ListingTableUrl, QueryError> {
        ListingTableUrl::parse(format!("{}{build}/{name}/", self.derived_url))
            .map_err(QueryError::setup("derived table URL"))
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
        let Some(stamp) = self.stamp().await? else {
            return Ok(Freshness::Missing);
        };
        let (fingerprint, _) = self.fingerprint().await?;
        Ok(if stamp.fingerprint == fingerprint {
            Freshness::Current(stamp)
        } else {
            Freshness::Stale
        })
    }

    async fn write_stamp(&self, stamp: &Stamp) -> Result<(), QueryError> {
        let json = serde_json::to_vec_pretty(stamp).map_err(|e| QueryError::Remote {
            lake: self.derived_url.clone(),
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

    /// Removes the files of the builds `doomed` names (never `CURRENT.json`).
    async fn remove_builds(&self, doomed: impl Fn(&str) -> bool) -> Result<(), QueryError> {
        let depth = self.derived.parts().count();
        let doomed = &doomed;
        let doomed: Vec<ObjectPath> = self
            .store
            .list(Some(&self.derived))
            .try_filter_map(|meta| async move {
                let build = meta.location.parts().nth(depth);
                let build = build.as_ref().map(|p| p.as_ref()).unwrap_or(STAMP);
                Ok((build != STAMP && doomed(build)).then_some(meta.location))
            })
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        for path in doomed {
            self.store.delete(&path).await.map_err(|e| self.error(e))?;
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
            lake: self.derived_url.clone(),
            reason: error.to_string(),
        }
    }
}

fn url_path(path: &ObjectPath) -> String {
    path.parts()
        .map(|part| format!("/{}", part.as_ref()))
        .collect()
}

/// Computes the derived tables of `lake` unless they are current (or `force`), then points
/// `CURRENT.json` at them.
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
    let store = LakeStore::of(&opened.ctx, &opened.events_url)?;
    let previous = store.stamp().await?;
    let (fingerprint, event_files) = store.fingerprint().await?;
    if let Some(stamp) = previous.as_ref().filter(|s| s.fingerprint == fingerprint)
        && !force
    {
        return Ok(DeriveSummary {
            lake: lake.to_string(),
            built: false,
            fingerprint,
            event_files,
            tables: stamp.tables.clone(),
            elapsed_seconds: started.elapsed().as_secs_f64(),
        });
    }
    let build = format!(
        "{fingerprint}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%6fZ")
    );
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
            let _ = store.remove_builds(|b| b == build).await;
            return Err(error);
        }
    };
    let stamp = Stamp {
        fingerprint: fingerprint.clone(),
        build: build.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        built_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        event_files,
        tables: tables.clone(),
    };
    store.write_stamp(&stamp).await?;
    let previous = previous.map(|p| p.build).unwrap_or_default();
    store.remove_builds(|b| b != build && b != previous).await?;
    Ok(DeriveSummary {
        lake: lake.to_string(),
        built: true,
        fingerprint,
        event_files,
        tables,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
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
