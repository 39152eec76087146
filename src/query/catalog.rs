//! The lake as SQL: a DataFusion `SessionContext` with the `events` table (the Parquet lake,
//! Hive-partitioned by `account_id` and `date`) and the derived views kept as plain SQL in
//! `queries/views/`, optionally narrowed to a time range and accounts.
//!
//! The scope (`--from`, `--to`, `--account`) is applied once, to `events`, as typed filter
//! expressions: every view and report reads `events`, so they all see the same slice, and no
//! user value is ever formatted into SQL text.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::catalog::TableProvider;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::config::ConfigOptions;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{Expr, SessionConfig, col, lit};

use super::computed_view::ComputedView;
use super::header;
use super::stored::{self, DerivedCoverage, Partitions};
use crate::aws::{Aws, AwsOptions, S3Url};
use crate::error::QueryError;
use crate::lake::derived::LakeStore;
use crate::lake::findings::{self, FindingsFolder};
use crate::lake::partition::date_text;
use crate::lake::schema::{self, PARTITION_COLUMNS};
use crate::lake::verified::{self, VERIFIED_DIR};
use crate::lake::{EVENTS_DIR, LakeLocation, events_dir, folder_url};

/// A derived view: its name and its SQL, registered in this order (later views read earlier ones).
#[derive(Debug, Clone, Copy)]
pub struct ViewSql {
    pub name: &'static str,
    pub sql: &'static str,
    /// Computed once per query for all its references (and kept for the session), for the
    /// columns they need: DataFusion recomputes a view at every reference, and `sessions` reads
    /// `issued_credentials` four times (role chains are recursive). See `computed_view`.
    pub computed_once: bool,
    /// Kept by `derive` as one file per account and day: every row depends on the events of
    /// one partition (see `stored`).
    pub stored: bool,
}

const fn stored(name: &'static str, sql: &'static str) -> ViewSql {
    ViewSql {
        name,
        sql,
        computed_once: false,
        stored: true,
    }
}

const fn view(name: &'static str, sql: &'static str) -> ViewSql {
    ViewSql {
        name,
        sql,
        computed_once: false,
        stored: false,
    }
}

/// The views of `queries/views/`, compiled into the binary so it works from any folder: the
/// stored ones first, then the ones that finish them at query time.
pub const VIEWS: &[ViewSql] = &[
    stored(
        "assumption_copies",
        include_str!("../../queries/views/assumption_copies.sql"),
    ),
    stored(
        "session_usage_daily",
        include_str!("../../queries/views/session_usage_daily.sql"),
    ),
    stored(
        "caller_sources_daily",
        include_str!("../../queries/views/caller_sources_daily.sql"),
    ),
    view(
        "assumptions",
        include_str!("../../queries/views/assumptions.sql"),
    ),
    ViewSql {
        computed_once: true,
        ..view(
            "issued_credentials",
            include_str!("../../queries/views/issued_credentials.sql"),
        )
    },
    view(
        "session_usage",
        include_str!("../../queries/views/session_usage.sql"),
    ),
    view("sessions", include_str!("../../queries/views/sessions.sql")),
    view(
        "caller_sources",
        include_str!("../../queries/views/caller_sources.sql"),
    ),
];

/// The views `derive` keeps in the lake.
pub fn stored_views() -> Vec<&'static ViewSql> {
    VIEWS.iter().filter(|view| view.stored).collect()
}

/// The views' SQL in registration order, which the derived tables' fingerprint hashes.
pub fn views_sql() -> Vec<&'static str> {
    VIEWS.iter().map(|view| view.sql).collect()
}

/// Which slice of the lake the tables show. Times are microseconds UTC, `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryScope {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub accounts: Vec<String>,
}

impl QueryScope {
    pub fn is_everything(&self) -> bool {
        self.from.is_none() && self.to.is_none() && self.accounts.is_empty()
    }

    /// The exact bounds on `event_time` alone (for tables without the partition columns).
    pub(super) fn time_filters(&self) -> Vec<Expr> {
        let mut filters = Vec::new();
        if let Some(from) = self.from {
            filters.push(col("event_time").gt_eq(lit(timestamp(from))));
        }
        if let Some(to) = self.to {
            filters.push(col("event_time").lt(lit(timestamp(to))));
        }
        filters
    }

    /// The filter on `events`: partition columns first, so whole folders are skipped, then the
    /// exact bounds on `event_time` (also used for row-group pruning by Parquet statistics).
    fn filters(&self) -> Vec<Expr> {
        let mut filters = Vec::new();
        if let Some(from) = self.from {
            filters.push(col("date").gt_eq(lit(date_text_of(from))));
            filters.push(col("event_time").gt_eq(lit(timestamp(from))));
        }
        if let Some(to) = self.to {
            // `to` is exclusive, so its own date is the last one that can hold events.
            filters.push(col("date").lt_eq(lit(date_text_of(to))));
            filters.push(col("event_time").lt(lit(timestamp(to))));
        }
        if !self.accounts.is_empty() {
            let accounts = self.accounts.iter().map(|a| lit(a.as_str())).collect();
            filters.push(col("account_id").in_list(accounts, false));
        }
        filters
    }
}

fn timestamp(micros: i64) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(micros), Some("UTC".into()))
}

/// The `date` partition value of a bound, for comparing with the lake's folder names. Those
/// hold years 1 to 9999 only (`decode::time` refuses other event times), written with four
/// digits, where text order is date order; a bound outside that range (`--to 9999-12-31` is
/// the start of 10000-01-01) is clamped into it, so the text comparison stays a date comparison.
pub(super) fn date_text_of(micros: i64) -> String {
    let first = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN);
    let last = NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX);
    let date = match chrono::DateTime::from_timestamp_micros(micros) {
        Some(time) => time.date_naive().clamp(first, last),
        None if micros < 0 => first,
        None => last,
    };
    date_text(date)
}

/// The schema of `events` as DataFusion reads it: the lake's file schema with strings as
/// `Utf8View` (what DataFusion's Parquet reader produces natively), then the partition columns.
pub fn events_file_schema() -> SchemaRef {
    let fields: Vec<Field> = schema::schema()
        .fields()
        .iter()
        .map(|field| {
            let data_type = match field.data_type() {
                DataType::Utf8 => DataType::Utf8View,
                other => other.clone(),
            };
            field.as_ref().clone().with_data_type(data_type)
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Whether the stored views read the lake's derived files (see `stored`) or are computed
/// from `events` throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// For every partition whose derived files are current.
    WhenCurrent,
    /// Never: every view is computed from `events`.
    Ignore,
}

/// An open lake: the context, where its events are, and what was found of its derived tables.
pub struct Catalog {
    pub ctx: SessionContext,
    pub events_url: ListingTableUrl,
    /// How much of the scope the derived files answer for; None under `Derived::Ignore`.
    pub derived: Option<DerivedCoverage>,
}

/// A context with `events` (narrowed to `scope`) and every view registered (the derived
/// tables standing in for their views when they are current), JSON functions (`json_get_str`
/// and friends) available.
pub async fn open(
    lake: &LakeLocation,
    aws: &AwsOptions,
    scope: &QueryScope,
    memory_limit: usize,
) -> Result<SessionContext, QueryError> {
    Ok(
        open_catalog(lake, aws, scope, memory_limit, Derived::WhenCurrent)
            .await?
            .ctx,
    )
}

/// What a query may hold: `memory` bytes in its operators, `max_spill` bytes of temporary
/// files. Sorts, joins and grouping spill past `memory`; what cannot spill (the merge of
/// spilled sort runs, `array_agg`, `string_agg`, a join's build side) fails instead, as does
/// spilling past `max_spill`: an error, never an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryResources {
    pub memory: usize,
    pub max_spill: u64,
}

/// The spill cap when none is given (`--max-spill`).
pub const DEFAULT_MAX_SPILL: u64 = 32 << 30;

/// [`open`], with the choice of derived tables and what was found of them; temporary files
/// are capped at [`DEFAULT_MAX_SPILL`].
pub async fn open_catalog(
    lake: &LakeLocation,
    aws: &AwsOptions,
    scope: &QueryScope,
    memory_limit: usize,
    derived: Derived,
) -> Result<Catalog, QueryError> {
    let resources = QueryResources {
        memory: memory_limit,
        max_spill: DEFAULT_MAX_SPILL,
    };
    open_catalog_with(lake, aws, scope, resources, derived).await
}

/// [`open_catalog`] within `resources`.
pub async fn open_catalog_with(
    lake: &LakeLocation,
    aws: &AwsOptions,
    scope: &QueryScope,
    resources: QueryResources,
    derived: Derived,
) -> Result<Catalog, QueryError> {
    let config = SessionConfig::from(engine_options()?).with_information_schema(true);
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_limit(resources.memory, 1.0)
        .with_max_temp_directory_size(resources.max_spill)
        .build_arc()
        .map_err(QueryError::setup("query memory"))?;
    let mut ctx = SessionContext::new_with_config_rt(config, runtime);
    datafusion_functions_json::register_all(&mut ctx)
        .map_err(QueryError::setup("JSON functions"))?;
    let events = match lake {
        LakeLocation::Local(path) => local_events_url(path)?,
        LakeLocation::S3(url) => s3_events_url(&ctx, url, aws).await?,
    };
    register_events(&ctx, events.clone(), scope).await?;
    let store = LakeStore::of(&ctx, &events)?;
    let stored = stored_views();
    let partitions = match derived {
        Derived::Ignore => None,
        Derived::WhenCurrent => Some(Partitions::list(&store, scope, &stored).await?),
    };
    for view in VIEWS {
        match &partitions {
            Some(partitions) if view.stored => {
                stored::register(&ctx, &store, view, partitions).await?
            }
            _ => register_view(&ctx, view).await?,
        }
    }
    let found = partitions.map(|p| p.coverage(&stored));
    register_findings(&ctx, &events).await?;
    register_verified(&ctx, &events).await?;
    Ok(Catalog {
        ctx,
        events_url: events,
        derived: found,
    })
}

/// DataFusion settings that differ from its defaults, for the lake's shape.
const ENGINE_SETTINGS: [(&str, &str); 1] = [
    // Late materialisation (decode the filter columns, then only the rows that pass) is what
    // DataFusion's default avoids, and it measured slower here too, because the STS rows are
    // spread over every page (BENCHMARKS.md, "Query engine settings").
    ("datafusion.execution.parquet.pushdown_filters", "false"),
];

/// DataFusion's defaults, then [`ENGINE_SETTINGS`], with any `DATAFUSION_*` environment
/// variable taking precedence (e.g. `DATAFUSION_EXECUTION_TARGET_PARTITIONS=8`): the engine can
/// be tuned without a rebuild, while SQL itself stays unable to change settings.
fn engine_options() -> Result<ConfigOptions, QueryError> {
    let mut options = ConfigOptions::from_env().map_err(QueryError::setup("engine settings"))?;
    for (key, value) in ENGINE_SETTINGS {
        let variable = key.to_uppercase().replace('.', "_");
        if std::env::var_os(variable).is_none() {
            options
                .set(key, value)
                .map_err(QueryError::setup("engine settings"))?;
        }
    }
    Ok(options)
}

/// The `events/` folder as a URL built from the path, not parsed from text: a lake folder
/// named with `[`, `?`, `*`, `#` or `%20` is percent-encoded and never read as a glob or URL
/// syntax (`ListingTableUrl::try_new` without a glob matches everything under the prefix).
fn local_events_url(lake: &Path) -> Result<ListingTableUrl, QueryError> {
    let events = events_dir(lake)?;
    let url = url::Url::from_directory_path(&events).map_err(|()| QueryError::Remote {
        lake: lake.display().to_string(),
        reason: "the lake's path cannot be a file URL".to_owned(),
    })?;
    ListingTableUrl::try_new(url, None).map_err(QueryError::setup("lake path"))
}

/// Registers the lake's bucket with DataFusion (same credentials and endpoint as ingest) and
/// returns the `events/` prefix, after checking that there is a lake there.
async fn s3_events_url(
    ctx: &SessionContext,
    lake: &S3Url,
    aws: &AwsOptions,
) -> Result<ListingTableUrl, QueryError> {
    let remote = |reason: String| QueryError::Remote {
        lake: lake.to_string(),
        reason,
    };
    let aws = Aws::load(aws).await;
    let store = aws.object_store(&lake.bucket).await.map_err(remote)?;
    let events = object_store::path::Path::from(format!("{}{EVENTS_DIR}", lake.folder()));
    let listing = store
        .list_with_delimiter(Some(&events))
        .await
        .map_err(|e| remote(e.to_string()))?;
    if listing.common_prefixes.is_empty() && listing.objects.is_empty() {
        return Err(QueryError::NoLake {
            lake: lake.to_string(),
        });
    }
    let bucket = ObjectStoreUrl::parse(format!("s3://{}", lake.bucket))
        .map_err(QueryError::setup("lake URL"))?;
    ctx.register_object_store(bucket.as_ref(), store);
    let prefix = lake.folder();
    let folders: Vec<&str> = prefix.split('/').chain([EVENTS_DIR]).collect();
    let url = url::Url::parse(&format!("s3://{}/", lake.bucket))
        .ok()
        .and_then(|bucket| folder_url(&bucket, &folders))
        .ok_or_else(|| remote("the lake's prefix cannot be a URL".to_owned()))?;
    ListingTableUrl::try_new(url, None).map_err(QueryError::setup("lake URL"))
}

async fn register_events(
    ctx: &SessionContext,
    table_url: ListingTableUrl,
    scope: &QueryScope,
) -> Result<(), QueryError> {
    let partition_columns = PARTITION_COLUMNS
        .iter()
        .map(|(name, _)| ((*name).to_owned(), DataType::Utf8))
        .collect();
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(partition_columns);
    let config = ListingTableConfig::new(table_url)
        .with_listing_options(options)
        .with_schema(events_file_schema());
    let table = ListingTable::try_new(config).map_err(QueryError::setup("events table"))?;
    if scope.is_everything() {
        ctx.register_table("events", Arc::new(table))
            .map_err(QueryError::setup("events table"))?;
        return Ok(());
    }
    let mut frame = ctx
        .read_table(Arc::new(table))
        .map_err(QueryError::setup("events table"))?;
    for filter in scope.filters() {
        frame = frame
            .filter(filter)
            .map_err(QueryError::setup("events scope"))?;
    }
    ctx.register_table("events", frame.into_view())
        .map_err(QueryError::setup("events table"))?;
    Ok(())
}

pub(crate) async fn register_view(ctx: &SessionContext, view: &ViewSql) -> Result<(), QueryError> {
    let frame = ctx.sql(view.sql).await.map_err(|source| QueryError::View {
        name: view.name.to_owned(),
        source: Box::new(source),
    })?;
    let table: Arc<dyn TableProvider> = if view.computed_once {
        Arc::new(ComputedView::new(frame.logical_plan().clone()))
    } else {
        frame.into_view()
    };
    ctx.register_table(view.name, table)
        .map_err(QueryError::setup("view"))?;
    Ok(())
}

/// The column that ranks the saved copies of a finding, newest first.
const COPY_RANK: &str = "copy_rank";

/// `findings`: what `detect --save` kept, one row per finding id (its newest copy when
/// overlapping windows both found it), whatever the scope; empty when nothing was saved.
async fn register_findings(
    ctx: &SessionContext,
    events_url: &ListingTableUrl,
) -> Result<(), QueryError> {
    let setup = || QueryError::setup("findings table");
    let folder = FindingsFolder::of(ctx, events_url)?;
    let saved = folder_table(&folder, findings::schema(), "findings table").await?;
    let newest = row_number()
        .partition_by(vec![col("id")])
        .order_by(vec![
            col("detected_at").sort(false, false),
            col("window_end").sort(false, false),
        ])
        .build()
        .map_err(setup())?
        .alias(COPY_RANK);
    let frame = ctx
        .read_table(saved)
        .and_then(|frame| frame.window(vec![newest]))
        .and_then(|frame| frame.filter(col(COPY_RANK).eq(lit(1u64))))
        .and_then(|frame| frame.drop_columns(&[COPY_RANK]))
        .map_err(setup())?;
    ctx.register_table("findings", frame.into_view())
        .map_err(setup())?;
    Ok(())
}

/// `verified`: every verdict `verify --lake` kept, one row per file (or gap) per run, whatever
/// the scope; empty when nothing was verified. Queries take a file's newest row.
async fn register_verified(
    ctx: &SessionContext,
    events_url: &ListingTableUrl,
) -> Result<(), QueryError> {
    let folder = FindingsFolder::of_folder(ctx, events_url, VERIFIED_DIR)?;
    let table = folder_table(&folder, verified::schema(), "verified table").await?;
    ctx.register_table("verified", table)
        .map_err(QueryError::setup("verified table"))?;
    Ok(())
}

/// The Parquet files of a lake folder as a table of `schema`; empty when there are none.
async fn folder_table(
    folder: &FindingsFolder,
    schema: SchemaRef,
    what: &'static str,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let setup = || QueryError::setup(what);
    if folder.is_empty().await? {
        return Ok(Arc::new(
            MemTable::try_new(schema, vec![vec![]]).map_err(setup())?,
        ));
    }
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new(folder.table_url()?)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config).map_err(setup())?))
}

/// What `schema` and `\d` show about a table: what it is and what each column means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDoc {
    pub name: String,
    pub kind: &'static str,
    pub description: String,
    /// (column, meaning) in the table's order.
    pub columns: Vec<(String, String)>,
}

/// The documentation of `events`, every view and `findings`, from `schema::COLUMNS`, the views' headers
/// and `findings::COLUMNS`.
pub fn table_docs() -> Vec<TableDoc> {
    let mut columns: Vec<(String, String)> = schema::COLUMNS
        .iter()
        .map(|c| (c.name.to_owned(), c.doc.to_owned()))
        .collect();
    columns.extend(
        PARTITION_COLUMNS
            .iter()
            .map(|(name, doc)| ((*name).to_owned(), (*doc).to_owned())),
    );
    let mut docs = vec![TableDoc {
        name: "events".to_owned(),
        kind: "table",
        description:
            "One row per CloudTrail event, deduplicated on (event_id, recipient_account_id): \
                      the Parquet lake, partitioned by account_id and date."
                .to_owned(),
        columns,
    }];
    docs.extend(VIEWS.iter().map(|view| {
        let mut header = header::parse(view.sql);
        TableDoc {
            name: view.name.to_owned(),
            kind: "view",
            description: header.fields.remove("description").unwrap_or_default(),
            columns: header.columns,
        }
    }));
    docs.push(TableDoc {
        name: "findings".to_owned(),
        kind: "table",
        description: "One row per finding `detect --save` kept (its newest copy), by stable id: \
                      the lake's findings/ folder, empty until a detect run saves."
            .to_owned(),
        columns: findings::COLUMNS
            .iter()
            .map(|(name, doc)| ((*name).to_owned(), (*doc).to_owned()))
            .collect(),
    });
    docs.push(TableDoc {
        name: "verified".to_owned(),
        kind: "table",
        description: "One row per log file, digest file or gap in the digest chain per \
                      `verify --lake` run (a file's newest row is its state): the lake's \
                      verified/ folder, empty until a verify run records."
            .to_owned(),
        columns: verified::COLUMNS
            .iter()
            .map(|(name, doc)| ((*name).to_owned(), (*doc).to_owned()))
            .collect(),
    });
    docs
}
