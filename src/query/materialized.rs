//! Views computed once for a run that reads them many times: detect's rules and the compliance
//! report's sections each read `sessions` and `assumptions`, often several times in one
//! statement (a CTE DataFusion inlines at every reference), and every reference computes the
//! whole view again, hash joins included, which cannot spill. Here each view named is computed
//! once into a Parquet file in a temporary folder and registered in its place; the views that
//! read it are planned again over it. Dropping the guard puts the views back as they were and
//! removes the files.
//!
//! Memory is that of computing each view once (its rows are streamed to the file, a row group
//! at a time); disk is the views' rows, uncompressed but for LZ4.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::execution::context::SessionContext;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;

use super::catalog::{VIEWS, register_view};
use crate::error::QueryError;

/// Rows per row group of a temporary file: what the writer holds before it writes.
const ROWS_PER_GROUP: usize = 65_536;

/// The views as computed, until dropped.
pub struct MaterializedViews {
    ctx: SessionContext,
    /// The tables replaced, in the order they were replaced.
    replaced: Vec<(&'static str, Arc<dyn TableProvider>)>,
    _folder: tempfile::TempDir,
}

impl MaterializedViews {
    /// The views replaced (materialized, or planned again over one that was).
    pub fn replaced(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.replaced.iter().map(|(name, _)| *name)
    }
}

impl Drop for MaterializedViews {
    fn drop(&mut self) {
        for (name, table) in self.replaced.drain(..).rev() {
            // Deregistering a name that is there and registering a table under a name that
            // is free cannot fail (the catalog is in memory).
            let _ = self.ctx.deregister_table(name);
            let _ = self.ctx.register_table(name, table);
        }
    }
}

/// Computes each view of `names` (of the views that finish the stored ones) once, in the
/// catalog's order, and registers it as a Parquet file; every later view is planned again
/// over what was computed.
pub async fn materialize(
    ctx: &SessionContext,
    names: &[&str],
) -> Result<MaterializedViews, QueryError> {
    let folder = tempfile::Builder::new()
        .prefix("sts-audit-views-")
        .tempdir()
        .map_err(|source| QueryError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let mut guard = MaterializedViews {
        ctx: ctx.clone(),
        replaced: Vec::new(),
        _folder: folder,
    };
    let later = VIEWS
        .iter()
        .filter(|view| !view.stored)
        .skip_while(|view| !names.contains(&view.name));
    let setup = || QueryError::setup("materialized view");
    for view in later {
        let Some(original) = ctx.table_provider(view.name).await.ok() else {
            continue;
        };
        if names.contains(&view.name) {
            let path = guard._folder.path().join(format!("{}.parquet", view.name));
            let table = compute(ctx, view.name, &path).await?;
            ctx.deregister_table(view.name).map_err(setup())?;
            ctx.register_table(view.name, table).map_err(setup())?;
        } else {
            ctx.deregister_table(view.name).map_err(setup())?;
            register_view(ctx, view).await?;
        }
        guard.replaced.push((view.name, original));
    }
    Ok(guard)
}

/// Writes the rows of `name` to `path` and returns the file as a table of the view's schema.
async fn compute(
    ctx: &SessionContext,
    name: &str,
    path: &Path,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let failed = |source| QueryError::View {
        name: name.to_owned(),
        source: Box::new(source),
    };
    let io = |source| QueryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let frame = ctx.table(name).await.map_err(failed)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let mut stream = frame.execute_stream().await.map_err(failed)?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
        .build();
    let file = File::create(path).map_err(io)?;
    let parquet = |source: datafusion::parquet::errors::ParquetError| failed(source.into());
    let mut writer =
        ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(parquet)?;
    while let Some(batch) = stream.next().await {
        writer.write(&batch.map_err(failed)?).map_err(parquet)?;
    }
    writer.close().map_err(parquet)?;
    let options = ParquetReadOptions::default().schema(&schema);
    let url = path.to_string_lossy();
    let table = ctx
        .read_parquet(url.as_ref(), options)
        .await
        .map_err(failed)?;
    Ok(table.into_view())
}
