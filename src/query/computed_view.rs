//! A view that is computed at most once per query for all the places that read it, and only for
//! the columns they read.
//!
//! `sessions` reads `issued_credentials` four times (role chains are recursive); DataFusion would
//! compute a plain view four times. A table computed in full once is what the catalog used to
//! register, but that computes every column (JSON extraction included) for a query that needs
//! three. Here each scan of the view only records which columns it needs and returns a
//! [`ComputedScanExec`]; scans are all planned before any runs, so the first one to run computes
//! the view once with the union of the columns the query's scans asked for, and every scan
//! serves its columns from that result. The result is kept for later queries of the session
//! (the shell) and computed again only when one needs a column it lacks.
//!
//! A scan's partitions each take every n-th batch of a result, so all of them must read the
//! same result: a scan takes one when its first partition runs and keeps it. (They once asked
//! the shared slot each time, and a scan served from an earlier query's result could see its
//! other partitions served from a recomputation, whose batches fall differently: rows were
//! read twice or not at all, nondeterministically; `sessions` lost role chains after `analyze`
//! had run its reports.)

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning,
    PlanProperties, ReplaceChildrenOptions, SendableRecordBatchStream, collect,
};
use futures::{StreamExt, TryStreamExt};

/// A view's logical plan, computed on demand (see the module documentation).
#[derive(Debug)]
pub struct ComputedView {
    plan: LogicalPlan,
    schema: SchemaRef,
    shared: Arc<Shared>,
}

/// What the scans of one view share.
#[derive(Debug, Default)]
struct Shared {
    /// Every column a scan has asked for so far.
    wanted: Mutex<BTreeSet<usize>>,
    /// The latest computed rows, for the columns listed with them.
    computed: tokio::sync::Mutex<Option<Arc<Computed>>>,
}

#[derive(Debug)]
struct Computed {
    columns: Vec<usize>,
    batches: Vec<RecordBatch>,
}

impl ComputedView {
    pub fn new(plan: LogicalPlan) -> Self {
        let schema = Arc::new(plan.schema().as_arrow().clone());
        ComputedView {
            plan,
            schema,
            shared: Arc::default(),
        }
    }
}

#[async_trait]
impl TableProvider for ComputedView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        lock(&self.shared.wanted)?.extend(columns.iter().copied());
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| DataFusionError::Internal("not a SessionState".into()))?
            .clone();
        // The physical schema can differ from the logical one in nullability: plan it (without
        // running it) to declare what the rows will really look like.
        let physical = state.create_physical_plan(&self.plan).await?;
        let schema = Arc::new(physical.schema().project(&columns)?);
        let partitions = state.config().target_partitions().max(1);
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Ok(Arc::new(ComputedScanExec {
            plan: self.plan.clone(),
            shared: self.shared.clone(),
            taken: Arc::default(),
            state,
            columns,
            schema,
            properties: Arc::new(properties),
        }))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| DataFusionError::Internal("computed view lock poisoned".into()))
}

/// One scan of a [`ComputedView`]: its columns, split round-robin over its partitions.
#[derive(Debug)]
struct ComputedScanExec {
    plan: LogicalPlan,
    shared: Arc<Shared>,
    /// The result this scan's partitions all read, taken when the first of them runs.
    taken: Arc<tokio::sync::OnceCell<Arc<Computed>>>,
    state: SessionState,
    columns: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl Shared {
    /// The latest result, computed first if none has all of `columns`.
    async fn result(
        &self,
        plan: &LogicalPlan,
        state: &SessionState,
        columns: &[usize],
    ) -> Result<Arc<Computed>> {
        let mut computed = self.computed.lock().await;
        match computed.as_ref() {
            Some(result) if columns.iter().all(|i| result.columns.contains(i)) => {
                Ok(result.clone())
            }
            _ => {
                let wanted: Vec<usize> = lock(&self.wanted)?.iter().copied().collect();
                let result = Arc::new(compute(plan, state, wanted).await?);
                *computed = Some(result.clone());
                Ok(result)
            }
        }
    }
}

impl Computed {
    /// The rows for `columns` (all of which the result has).
    fn rows(&self, columns: &[usize]) -> Result<Vec<RecordBatch>> {
        let positions: Vec<usize> = columns
            .iter()
            .filter_map(|i| self.columns.iter().position(|c| c == i))
            .collect();
        self.batches
            .iter()
            .map(|batch| Ok(batch.project(&positions)?))
            .collect()
    }
}

/// Runs the view's plan for `columns` only (the optimizer prunes what they do not need).
async fn compute(
    plan: &LogicalPlan,
    state: &SessionState,
    mut columns: Vec<usize>,
) -> Result<Computed> {
    if columns.is_empty() {
        columns.push(0); // only rows are counted: any one column keeps their number
    }
    let schema = plan.schema();
    let exprs: Vec<Expr> = columns
        .iter()
        .map(|&i| Expr::Column(datafusion::common::Column::from(schema.qualified_field(i))))
        .collect();
    let projected = LogicalPlanBuilder::from(plan.clone())
        .project(exprs)?
        .build()?;
    let physical = state.create_physical_plan(&projected).await?;
    let batches = collect(physical, state.task_ctx()).await?;
    Ok(Computed { columns, batches })
}

impl DisplayAs for ComputedScanExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ComputedScanExec: columns={:?}", self.columns)
    }
}

impl ExecutionPlan for ComputedScanExec {
    fn name(&self) -> &'static str {
        "ComputedScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let partitions = self.properties.partitioning.partition_count();
        let shared = self.shared.clone();
        let taken = self.taken.clone();
        let plan = self.plan.clone();
        let state = self.state.clone();
        let columns = self.columns.clone();
        let schema = self.schema.clone();
        let rows = async move {
            let result = taken
                .get_or_try_init(|| shared.result(&plan, &state, &columns))
                .await?;
            let batches = result.rows(&columns)?;
            // Declared with this scan's schema (the same columns, planned the same way).
            let mine: Vec<Result<RecordBatch>> = batches
                .into_iter()
                .skip(partition)
                .step_by(partitions)
                .map(|batch| {
                    // With the row count: a scan may want no column at all (`count(*)`).
                    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                    let columns = batch.columns().to_vec();
                    Ok(RecordBatch::try_new_with_options(
                        schema.clone(),
                        columns,
                        &options,
                    )?)
                })
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(mine))
        };
        let stream = futures::stream::once(rows).try_flatten().boxed();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::common::collect as collect_stream;
    use datafusion::prelude::{SessionConfig, SessionContext};

    fn numbers(schema: &SchemaRef, values: std::ops::Range<i64>) -> RecordBatch {
        let tens = values.clone().map(|v| v * 10);
        let columns: Vec<arrow::array::ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(values)),
            Arc::new(Int64Array::from_iter_values(tens)),
        ];
        RecordBatch::try_new(schema.clone(), columns).expect("two Int64 columns")
    }

    fn first_column(batches: &[RecordBatch]) -> Vec<i64> {
        let mut values: Vec<i64> = batches
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        values.sort_unstable();
        values
    }

    /// Between one partition of a scan and the next, another scan wants a column the result
    /// lacks and the source has changed: the view is computed again with its batches shifted.
    /// The first scan's partitions must still read one result, every row exactly once.
    #[tokio::test]
    async fn a_scans_partitions_read_one_result_when_another_scan_recomputes() -> Result<()> {
        let config = SessionConfig::new().with_target_partitions(2);
        let ctx = SessionContext::new_with_config(config);
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("tens", DataType::Int64, false),
        ]));
        let batches = (0..4)
            .map(|i| numbers(&schema, i * 10..i * 10 + 10))
            .collect();
        let source = Arc::new(MemTable::try_new(schema.clone(), vec![batches])?);
        ctx.register_table("t", source.clone())?;
        let view = ComputedView::new(ctx.table("t").await?.into_unoptimized_plan());
        let state = ctx.state();

        let narrow = view.scan(&state, Some(&vec![0]), &[], None).await?;
        let mut read = collect_stream(narrow.execute(0, ctx.task_ctx())?).await?;
        source.batches[0]
            .write()
            .await
            .insert(0, numbers(&schema, 100..105));
        let wide = view.scan(&state, Some(&vec![0, 1]), &[], None).await?;
        let recomputed = collect(wide, ctx.task_ctx()).await?;
        read.extend(collect_stream(narrow.execute(1, ctx.task_ctx())?).await?);

        assert_eq!(first_column(&read), (0..40).collect::<Vec<_>>());
        let mut expected: Vec<i64> = (0..40).collect();
        expected.extend(100..105);
        assert_eq!(first_column(&recomputed), expected);
        Ok(())
    }
}
