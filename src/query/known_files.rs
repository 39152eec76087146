//! A table over Parquet files already listed: the derived files of the partitions a query
//! reads, or the event files of the partitions it computes. A `ListingTable` would list the
//! folders again at every scan, and walk every partition folder of a year-long lake on S3 to
//! prune a filter that names a few hundred of them; here the catalog lists once, chooses, and
//! the scan opens exactly the chosen files.

use std::sync::Arc;

use arrow::datatypes::{FieldRef, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{ScalarValue, project_schema};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchemaBuilder;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;

use crate::lake::derived::DataFile;

/// Parquet files of one schema in one store, each with the values of the table's partition
/// columns (none for the derived tables, whose files hold every column).
#[derive(Debug)]
pub struct KnownFiles {
    store_url: ObjectStoreUrl,
    file_schema: SchemaRef,
    partition_columns: Vec<FieldRef>,
    /// file schema then partition columns: what the table shows.
    schema: SchemaRef,
    files: Vec<(DataFile, Vec<ScalarValue>)>,
}

impl KnownFiles {
    /// `files`, each with its partition values in the order of `partition_columns`.
    pub fn new(
        store_url: ObjectStoreUrl,
        file_schema: SchemaRef,
        partition_columns: Vec<FieldRef>,
        files: Vec<(DataFile, Vec<ScalarValue>)>,
    ) -> Self {
        let table_schema = TableSchemaBuilder::new(Arc::clone(&file_schema))
            .with_table_partition_cols(partition_columns.clone())
            .build();
        KnownFiles {
            store_url,
            schema: Arc::clone(table_schema.table_schema()),
            file_schema,
            partition_columns,
            files,
        }
    }

    /// The files spread over `groups` lists of about equal bytes, one per thread.
    fn file_groups(&self, groups: usize) -> Vec<FileGroup> {
        let mut by_size: Vec<&(DataFile, Vec<ScalarValue>)> = self.files.iter().collect();
        by_size.sort_by_key(|(file, _)| std::cmp::Reverse(file.size));
        let mut lists: Vec<(u64, Vec<PartitionedFile>)> = vec![(0, Vec::new()); groups.max(1)];
        for (file, values) in by_size {
            let mut partitioned = PartitionedFile::new(file.path.as_ref(), file.size);
            // The path as listed: parsing its text again would encode its `%` escapes twice.
            partitioned.object_meta.location = file.path.clone();
            partitioned.partition_values = values.clone();
            if let Some(smallest) = lists.iter_mut().min_by_key(|(bytes, _)| *bytes) {
                smallest.0 += file.size;
                smallest.1.push(partitioned);
            }
        }
        lists
            .into_iter()
            .filter(|(_, files)| !files.is_empty())
            .map(|(_, files)| FileGroup::new(files))
            .collect()
    }
}

#[async_trait]
impl TableProvider for KnownFiles {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let format = ParquetFormat::default().with_options(state.table_options().parquet.clone());
        let table_schema = TableSchemaBuilder::new(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_columns.clone())
            .build();
        let groups = self.file_groups(state.config().target_partitions());
        let config =
            FileScanConfigBuilder::new(self.store_url.clone(), format.file_source(table_schema))
                .with_file_groups(groups)
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
        format.create_physical_plan(state, config).await
    }
}
