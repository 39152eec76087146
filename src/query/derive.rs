//! Derived tables: the views `assumptions`, `session_usage`, `sessions` and `caller_sources`
//! computed once from `events` and kept in the lake as Parquet, so that reports read about a
//! million finished rows instead of pairing STS copies, aggregating every signed call and walking
//! role chains over ten million events at every query.
//!
//! Where a build lives, what `CURRENT.json` says and when the tables are current is the lake's
//! (`lake::derived`); this module only computes and publishes a build. The catalog uses the
//! derived tables only when their fingerprint matches `CURRENT.json`, and only where a narrowed
//! table equals the view computed from narrowed events: all of them for the whole lake,
//! `assumptions` alone for a time range, none for `--account` (see
//! `catalog::derived_in_scope`). Otherwise the views are computed from `events` as before:
//! slower, never wrong.
//!
//! Concurrency: on disk a build holds the lake's write lock (`<lake>/_lock`, shared with
//! `ingest`; a second run fails at once), so after publishing it removes every other build but
//! the previous one, which a query started before the switch may still be reading (a killed
//! build's partial folder included). On S3 there is no lock: another folder is removed only
//! when nothing was written to it for [`ABANDONED_AFTER`], since a younger one may be another
//! run's build in progress.

use std::time::Instant;

use chrono::Utc;
use datafusion::common::config::TableParquetOptions;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::execution::context::SessionContext;
use serde::Serialize;

use super::catalog::{self, Derived, QueryScope};
use crate::aws::AwsOptions;
use crate::error::QueryError;
use crate::lake::derived::{DERIVED_VIEWS, Freshness, LakeStore, Stamp, TableRows};
use crate::lake::{LakeLocation, LakeLock};

/// On S3, where no lock keeps two builds apart, a folder that is neither the current build nor
/// the previous one is removed only once nothing was written to it for this long: until then it
/// may be another run's build in progress.
const ABANDONED_AFTER: chrono::TimeDelta = match chrono::TimeDelta::try_hours(24) {
    Some(hours) => hours,
    None => panic!("24 hours is a valid TimeDelta"),
};

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
    let (fingerprint, event_files) = store.fingerprint(&catalog::views_sql()).await?;
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
    let (after, _) = store.fingerprint(&catalog::views_sql()).await?;
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
