//! `derive`: computes the stored views (`catalog::stored_views`) for every partition of the
//! lake (account and day) whose derived file is missing or stale, and writes one Parquet file
//! per view and partition (`lake::derived`); the design is in `docs/derived-tables.md`.
//!
//! The unit of work is one view over the event files of one day's changed partitions (split
//! further when they exceed [`UNIT_BYTES`] or the memory pool): its inputs are those files,
//! its outputs one file per partition, named by the fingerprint of the inputs. Nothing else
//! is shared between units, so they can run anywhere in any order; here they run one after
//! the other, each with the whole memory pool and every core.
//!
//! A lake on disk stays locked (the ingest lock) for the whole run. On S3 there is no lock and
//! none is needed: a file is named by the inputs it was computed from, so a partition an
//! ingest changed meanwhile is simply stale again, and two runs write the same bytes.

use std::collections::VecDeque;
use std::time::Instant;

use arrow::array::{RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::cmp::eq;
use arrow::datatypes::SchemaRef;
use datafusion::execution::context::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;

use super::catalog::{self, Derived, QueryScope, ViewSql};
use super::stored::{self, Partitions};
use crate::aws::AwsOptions;
use crate::error::QueryError;
use crate::lake::derived::{DataFile, LakeStore, Partition, inputs_fingerprint};
use crate::lake::{LakeLocation, LakeLock};

/// The most event-file bytes one unit of work reads: a day of a large organisation is split
/// into groups of accounts of about this size, so that memory follows this, not the day.
const UNIT_BYTES: u64 = 256 << 20;

/// The outcome of `sts-audit derive`, for the summary.
#[derive(Debug, Clone, Serialize)]
pub struct DeriveSummary {
    pub lake: String,
    /// The lake's partitions (account and day).
    pub partitions: usize,
    /// The partitions whose derived files this run computed (changed or new since the last
    /// run; all of them with `--force`).
    pub computed: usize,
    /// What was written, per stored view.
    pub tables: Vec<TableWrites>,
    /// Derived files removed: superseded by this run's, of partitions without events, or
    /// left by older versions.
    pub removed_files: usize,
    pub elapsed_seconds: f64,
}

/// The files and rows one stored view got in a run.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TableWrites {
    pub name: String,
    pub files: usize,
    pub rows: u64,
}

impl DeriveSummary {
    pub fn render_text(&self) -> String {
        let mut text = match self.computed {
            0 => format!(
                "derived tables already current for all {} partitions (account and day) of {}\n",
                self.partitions, self.lake
            ),
            computed => format!(
                "derived tables computed for {computed} of {} partitions (account and day) of {} \
                 in {:.1} s\n",
                self.partitions, self.lake, self.elapsed_seconds
            ),
        };
        for table in self.tables.iter().filter(|table| table.files > 0) {
            text += &format!(
                "  {:<22} {:>6} files {:>10} rows\n",
                table.name, table.files, table.rows
            );
        }
        if self.removed_files > 0 {
            text += &format!("  removed {} superseded files\n", self.removed_files);
        }
        text
    }
}

/// Computes the derived files of every partition of `lake` whose files are missing or stale
/// (every partition with `force`), then removes the files no partition uses any more.
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
    let _lock = lock(lake)?;
    let store = LakeStore::of(&opened.ctx, &opened.events_url)?;
    let views = catalog::stored_views();
    let partitions = Partitions::list(&store, &everything, &views).await?;
    let mut computed = std::collections::BTreeSet::new();
    let mut tables = Vec::new();
    for view in &views {
        let stale: Vec<(&Partition, &Vec<DataFile>)> = partitions
            .events
            .iter()
            .filter(|(partition, _)| force || partitions.current(view, partition).is_none())
            .collect();
        computed.extend(stale.iter().map(|(partition, _)| *partition));
        let written = derive_view(&opened.ctx, &store, view, units_of(&stale)).await?;
        tables.push(written);
    }
    let removed_files = remove_unused(&store, &everything, &views).await?;
    Ok(DeriveSummary {
        lake: lake.to_string(),
        partitions: partitions.events.len(),
        computed: computed.len(),
        tables,
        removed_files,
        elapsed_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The write lock of a lake on disk (shared with `ingest`, held by this process already under
/// `ingest --derive`); none on S3.
fn lock(lake: &LakeLocation) -> Result<Option<LakeLock>, QueryError> {
    match lake {
        LakeLocation::Local(root) => Ok(Some(LakeLock::acquire(root).map_err(QueryError::Lock)?)),
        LakeLocation::S3(_) => Ok(None),
    }
}

/// Partitions of one day whose event files a unit of work reads together.
type Unit<'a> = Vec<(&'a Partition, &'a Vec<DataFile>)>;

/// `stale` (in partition order: by account, then day) grouped by day, each day's partitions
/// in groups of at most [`UNIT_BYTES`] of event files (one partition alone may exceed it).
fn units_of<'a>(stale: &[(&'a Partition, &'a Vec<DataFile>)]) -> VecDeque<Unit<'a>> {
    let mut by_day: std::collections::BTreeMap<&str, Vec<(&Partition, &Vec<DataFile>)>> =
        std::collections::BTreeMap::new();
    for (partition, files) in stale {
        by_day
            .entry(partition.date.as_str())
            .or_default()
            .push((partition, files));
    }
    let mut units = VecDeque::new();
    for day in by_day.into_values() {
        let mut unit: Unit = Vec::new();
        let mut bytes = 0u64;
        for (partition, files) in day {
            let size: u64 = files.iter().map(|file| file.size).sum();
            if !unit.is_empty() && bytes + size > UNIT_BYTES {
                units.push_back(std::mem::take(&mut unit));
                bytes = 0;
            }
            unit.push((partition, files));
            bytes += size;
        }
        if !unit.is_empty() {
            units.push_back(unit);
        }
    }
    units
}

/// Runs `view` over each unit and publishes its files. A unit that runs out of memory is
/// split in two and tried again; one partition that cannot fit fails the run, saying so.
async fn derive_view(
    ctx: &SessionContext,
    store: &LakeStore,
    view: &ViewSql,
    mut units: VecDeque<Unit<'_>>,
) -> Result<TableWrites, QueryError> {
    let mut writes = TableWrites {
        name: view.name.to_owned(),
        files: 0,
        rows: 0,
    };
    while let Some(unit) = units.pop_front() {
        let (schema, batches) = match compute(ctx, store, view, &unit).await {
            Ok(computed) => computed,
            Err(error) if out_of_memory(&error) && unit.len() > 1 => {
                let mut first = unit;
                let second = first.split_off(first.len() / 2);
                units.push_front(second);
                units.push_front(first);
                continue;
            }
            Err(error) if out_of_memory(&error) => {
                let (partition, _) = unit[0];
                return Err(QueryError::Remote {
                    lake: store.store_url().to_string(),
                    reason: format!(
                        "{} of account {} on {} does not fit in the memory pool (raise \
                         --memory-limit): {error}",
                        view.name, partition.account, partition.date
                    ),
                });
            }
            Err(error) => return Err(error),
        };
        for (partition, files) in &unit {
            let rows = rows_of(&batches, &partition.account)?;
            let count: usize = rows.iter().map(RecordBatch::num_rows).sum();
            let inputs = inputs_fingerprint(view.sql, files);
            let path = store.derived_path(view.name, partition, &inputs);
            store.publish(&path, parquet_bytes(&schema, &rows)?).await?;
            writes.files += 1;
            writes.rows += count as u64;
        }
    }
    Ok(writes)
}

/// `view` computed from the event files of `unit`: its schema and rows.
async fn compute(
    ctx: &SessionContext,
    store: &LakeStore,
    view: &ViewSql,
    unit: &Unit<'_>,
) -> Result<(SchemaRef, Vec<RecordBatch>), QueryError> {
    let frame = stored::plan_over(ctx, view, stored::events_of(store, unit)).await?;
    let schema = std::sync::Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await?;
    Ok((schema, batches))
}

fn out_of_memory(error: &QueryError) -> bool {
    error.to_string().contains("Resources exhausted")
}

/// The rows of `batches` read from account folder `account` (every stored view has
/// `account_id`).
fn rows_of(batches: &[RecordBatch], account: &str) -> Result<Vec<RecordBatch>, QueryError> {
    let wanted = StringArray::new_scalar(account);
    batches
        .iter()
        .map(|batch| {
            let column = batch
                .column_by_name("account_id")
                .ok_or_else(|| QueryError::Render("a stored view without account_id".into()))?;
            let mask = eq(column, &wanted).map_err(|e| QueryError::Render(e.to_string()))?;
            filter_record_batch(batch, &mask).map_err(|e| QueryError::Render(e.to_string()))
        })
        .collect()
}

/// One Parquet file holding `batches`, without the embedded Arrow schema (readers that do not
/// know string views could not open it; the catalog reads with the view's own schema).
fn parquet_bytes(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>, QueryError> {
    let error = |e: parquet::errors::ParquetError| QueryError::Render(e.to_string());
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_created_by(format!("sts-audit {}", env!("CARGO_PKG_VERSION")))
        .build();
    let options = ArrowWriterOptions::new()
        .with_properties(properties)
        .with_skip_arrow_metadata(true);
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new_with_options(&mut bytes, schema.clone(), options).map_err(error)?;
    for batch in batches {
        writer.write(batch).map_err(error)?;
    }
    writer.close().map_err(error)?;
    Ok(bytes)
}

/// Removes every derived file no partition reads (superseded, or of a partition without
/// events any more) and whatever older versions left under `derived/`; returns how many.
async fn remove_unused(
    store: &LakeStore,
    everything: &QueryScope,
    views: &[&ViewSql],
) -> Result<usize, QueryError> {
    let partitions = Partitions::list(store, everything, views).await?;
    let mut unused: Vec<_> = views
        .iter()
        .flat_map(|view| partitions.superseded(view))
        .map(|file| file.path.clone())
        .collect();
    let names: Vec<&str> = views.iter().map(|view| view.name).collect();
    unused.extend(store.foreign_derived_files(&names).await?);
    store.remove(&unused).await?;
    Ok(unused.len())
}
