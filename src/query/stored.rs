//! The stored views (`assumption_copies`, `session_usage_daily`, `caller_sources_daily`): each
//! row depends on the events of one account and day, so `derive` keeps them as one Parquet
//! file per account and day (`lake::derived`), and the other views (`assumptions`,
//! `session_usage`, `sessions`, `caller_sources`) finish them at query time.
//!
//! A query reads, for every partition of its scope, the derived file when it is current and
//! the partition lies whole inside the scope's time range; every other partition (changed since
//! the last derive, never derived, or cut by `--from`/`--to`) is computed from its events with
//! the view's own SQL. The union is what the view computed from the scope's events gives, by
//! construction: never stale, and the same rows whichever way a partition was read.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef};
use chrono::NaiveDate;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::execution::context::SessionContext;

use super::catalog::{QueryScope, ViewSql, date_text_of, events_file_schema};
use super::known_files::KnownFiles;
use crate::error::QueryError;
use crate::lake::derived::{
    DataFile, DerivedFile, LakeStore, Partition, PartitionFiles, PartitionFilter,
    inputs_fingerprint,
};
use crate::lake::schema::PARTITION_COLUMNS;

const DAY_MICROS: i64 = 86_400_000_000;

/// The partitions of a scope and the derived files found for them.
pub struct Partitions {
    pub events: PartitionFiles,
    derived: BTreeMap<&'static str, BTreeMap<Partition, Vec<DerivedFile>>>,
    scope: QueryScope,
}

/// How many of a scope's whole days (account and day partitions) every stored view reads
/// from current derived files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DerivedCoverage {
    pub partitions: usize,
    pub current: usize,
}

impl Partitions {
    /// Lists the event partitions of `scope` and the derived files of each stored view there.
    pub async fn list(
        store: &LakeStore,
        scope: &QueryScope,
        views: &[&ViewSql],
    ) -> Result<Partitions, QueryError> {
        let filter = PartitionFilter {
            accounts: scope.accounts.clone(),
            first_date: scope.from.map(date_text_of),
            // `to` is exclusive: the last day with events is the one of its last microsecond.
            last_date: scope.to.map(|to| date_text_of(to.saturating_sub(1))),
        };
        let events = store.event_partitions(&filter).await?;
        let mut derived = BTreeMap::new();
        for view in views {
            derived.insert(
                view.name,
                store.derived_partitions(view.name, &filter).await?,
            );
        }
        Ok(Partitions {
            events,
            derived,
            scope: scope.clone(),
        })
    }

    /// The current derived file of `view` for `partition`, if there is one.
    pub fn current(&self, view: &ViewSql, partition: &Partition) -> Option<&DataFile> {
        let inputs = inputs_fingerprint(view.sql, self.events.get(partition)?);
        self.derived
            .get(view.name)?
            .get(partition)?
            .iter()
            .find(|derived| derived.inputs == inputs)
            .map(|derived| &derived.file)
    }

    /// Every derived file of `view` that is not current: superseded, or of a partition that
    /// no longer has events.
    pub fn superseded(&self, view: &ViewSql) -> Vec<&DataFile> {
        let Some(derived) = self.derived.get(view.name) else {
            return Vec::new();
        };
        derived
            .iter()
            .flat_map(|(partition, files)| {
                let current = self.current(view, partition).map(|file| &file.path);
                files
                    .iter()
                    .map(|derived| &derived.file)
                    .filter(move |file| Some(&file.path) != current)
            })
            .collect()
    }

    /// True when the scope's time range holds all of `partition`'s day.
    fn whole_day(&self, partition: &Partition) -> bool {
        let Ok(day) = NaiveDate::parse_from_str(&partition.date, "%Y-%m-%d") else {
            return false;
        };
        let Some(start) = day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
        else {
            return false;
        };
        self.scope.from.is_none_or(|from| from <= start)
            && self.scope.to.is_none_or(|to| start + DAY_MICROS <= to)
    }

    /// The derived files `view` reads, and the partitions it computes from events.
    fn split(&self, view: &ViewSql) -> (Vec<DataFile>, Vec<(&Partition, &Vec<DataFile>)>) {
        let mut served = Vec::new();
        let mut computed = Vec::new();
        for (partition, files) in &self.events {
            match self.current(view, partition) {
                Some(file) if self.whole_day(partition) => served.push(file.clone()),
                _ => computed.push((partition, files)),
            }
        }
        (served, computed)
    }

    /// How many whole days of the scope every one of `views` reads from derived files.
    pub fn coverage(&self, views: &[&ViewSql]) -> DerivedCoverage {
        let whole: Vec<&Partition> = self
            .events
            .keys()
            .filter(|partition| self.whole_day(partition))
            .collect();
        let current = whole
            .iter()
            .filter(|partition| {
                views
                    .iter()
                    .all(|view| self.current(view, partition).is_some())
            })
            .count();
        DerivedCoverage {
            partitions: whole.len(),
            current,
        }
    }
}

/// The partition columns of `events`, as its files' scans declare them.
fn partition_fields() -> Vec<FieldRef> {
    PARTITION_COLUMNS
        .iter()
        .map(|(name, _)| Arc::new(Field::new(*name, DataType::Utf8, false)))
        .collect()
}

/// The event files of `partitions` as a table shaped like `events`.
pub fn events_of(
    store: &LakeStore,
    partitions: &[(&Partition, &Vec<DataFile>)],
) -> Arc<dyn TableProvider> {
    let files = partitions
        .iter()
        .flat_map(|(partition, files)| {
            files.iter().map(|file| {
                let values = vec![
                    ScalarValue::Utf8(Some(partition.account.clone())),
                    ScalarValue::Utf8(Some(partition.date.clone())),
                ];
                (file.clone(), values)
            })
        })
        .collect();
    Arc::new(KnownFiles::new(
        store.store_url().clone(),
        events_file_schema(),
        partition_fields(),
        files,
    ))
}

/// Plans `view`'s SQL over `events` (registered as `events` while it is planned; the table
/// registered under that name before is put back).
pub async fn plan_over(
    ctx: &SessionContext,
    view: &ViewSql,
    events: Arc<dyn TableProvider>,
) -> Result<datafusion::dataframe::DataFrame, QueryError> {
    let setup = || QueryError::setup("stored view");
    let before = ctx.deregister_table("events").map_err(setup())?;
    ctx.register_table("events", events).map_err(setup())?;
    let planned = ctx.sql(view.sql).await;
    ctx.deregister_table("events").map_err(setup())?;
    if let Some(before) = before {
        ctx.register_table("events", before).map_err(setup())?;
    }
    planned.map_err(|source| QueryError::View {
        name: view.name.to_owned(),
        source: Box::new(source),
    })
}

/// Registers stored view `view`: its current derived files for the whole days of the scope,
/// computed from the events of every other partition (narrowed to the scope's times).
pub async fn register(
    ctx: &SessionContext,
    store: &LakeStore,
    view: &ViewSql,
    partitions: &Partitions,
) -> Result<(), QueryError> {
    let setup = || QueryError::setup("stored view");
    let (served, computed) = partitions.split(view);
    let mut events = ctx
        .read_table(events_of(store, &computed))
        .map_err(setup())?;
    for filter in partitions.scope.time_filters() {
        events = events.filter(filter).map_err(setup())?;
    }
    let from_events = plan_over(ctx, view, events.into_view()).await?;
    let frame = match served.is_empty() {
        true => from_events,
        false => {
            let schema = Arc::new(from_events.schema().as_arrow().clone());
            let files = served.into_iter().map(|file| (file, Vec::new())).collect();
            let derived = KnownFiles::new(store.store_url().clone(), schema, Vec::new(), files);
            let derived = ctx.read_table(Arc::new(derived)).map_err(setup())?;
            match computed.is_empty() {
                true => derived,
                false => derived.union(from_events).map_err(setup())?,
            }
        }
    };
    ctx.register_table(view.name, frame.into_view())
        .map_err(setup())?;
    Ok(())
}
