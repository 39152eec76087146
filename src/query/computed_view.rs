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
    /// The computed rows, for the columns listed with them.
    computed: tokio::sync::Mutex<Option<Computed>>,
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
    state: SessionState,
    columns: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl Shared {
    /// The view's rows for `columns`, computing the view first if no result has them all.
    async fn rows(
        &self,
        plan: &LogicalPlan,
        state: &SessionState,
        columns: &[usize],
    ) -> Result<Vec<RecordBatch>> {
        let mut computed = self.computed.lock().await;
        let covers = |c: &Computed| columns.iter().all(|i| c.columns.contains(i));
        if !computed.as_ref().is_some_and(covers) {
            let wanted: Vec<usize> = lock(&self.wanted)?.iter().copied().collect();
            *computed = Some(compute(plan, state, wanted).await?);
        }
        let Some(computed) = computed.as_ref() else {
            return Err(DataFusionError::Internal("view not computed".into()));
        };
        let positions: Vec<usize> = columns
            .iter()
            .filter_map(|i| computed.columns.iter().position(|c| c == i))
            .collect();
        computed
            .batches
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
        let plan = self.plan.clone();
        let state = self.state.clone();
        let columns = self.columns.clone();
        let schema = self.schema.clone();
        let rows = async move {
            let batches = shared.rows(&plan, &state, &columns).await?;
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
