//! Parquet files of the lake: the writer settings in one place, and a writer that sorts a
//! partition's rows by event time and publishes the file atomically.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::lake::publish;
use crate::batch::{COLUMNS, col};
use crate::error::SinkError;

/// Rows per row group: large enough for good compression and few footers, small enough that a
/// reader prunes by event time at a useful granularity.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How many sorted rows are materialised at once while writing (bounds the extra memory).
const WRITE_CHUNK_ROWS: usize = 16 * 1024;

/// Columns that are (nearly) unique per row: a dictionary would only cost time.
const UNIQUE_COLUMNS: [usize; 6] = [
    col::EVENT_ID,
    col::REQUEST_ID,
    col::SHARED_EVENT_ID,
    col::REQUEST_PARAMETERS,
    col::RESPONSE_ELEMENTS,
    col::SESSION_TOKEN_SHA256,
];

/// Free-form text and JSON: nobody filters on their min/max, and computing page statistics
/// over kilobyte-long values costs a string comparison per row.
const NO_STATISTICS_COLUMNS: [usize; 11] = [
    col::ERROR_MESSAGE,
    col::USER_AGENT,
    col::USER_IDENTITY,
    col::REQUEST_PARAMETERS,
    col::RESPONSE_ELEMENTS,
    col::ADDITIONAL_EVENT_DATA,
    col::RESOURCES,
    col::SERVICE_EVENT_DETAILS,
    col::ADDENDUM,
    col::UNMAPPED,
    col::ON_BEHALF_OF,
];

/// The writer settings of every lake file: zstd, page statistics, dictionaries where values repeat.
pub fn writer_properties() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("sts-audit {}", env!("CARGO_PKG_VERSION")));
    for column in UNIQUE_COLUMNS {
        builder =
            builder.set_column_dictionary_enabled(ColumnPath::from(COLUMNS[column].name), false);
    }
    for column in NO_STATISTICS_COLUMNS {
        builder = builder.set_column_statistics_enabled(
            ColumnPath::from(COLUMNS[column].name),
            EnabledStatistics::None,
        );
    }
    builder.build()
}

/// Sorts `batch` by (event_time, event_id) and publishes it as `dir/name`.
pub fn write_sorted(dir: &Path, name: &str, batch: &RecordBatch) -> Result<PathBuf, SinkError> {
    let arrow_error = |source| SinkError::Arrow {
        path: dir.join(name),
        source,
    };
    let sort_columns = [col::EVENT_TIME, col::EVENT_ID].map(|column| SortColumn {
        values: batch.column(column).clone(),
        options: None,
    });
    let order = lexsort_to_indices(&sort_columns, None).map_err(arrow_error)?;
    publish(dir, name, |file| {
        write_in_order(file, batch, &order, &dir.join(name))
    })
}

fn write_in_order(
    file: &mut File,
    batch: &RecordBatch,
    order: &UInt32Array,
    path: &Path,
) -> Result<(), SinkError> {
    let parquet_error = |source| SinkError::Parquet {
        path: path.to_path_buf(),
        source,
    };
    let out = BufWriter::with_capacity(1 << 20, file);
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(writer_properties()))
        .map_err(parquet_error)?;
    let mut start = 0;
    while start < order.len() {
        let length = WRITE_CHUNK_ROWS.min(order.len() - start);
        let chunk = take_record_batch(batch, &order.slice(start, length)).map_err(|source| {
            SinkError::Arrow {
                path: path.to_path_buf(),
                source,
            }
        })?;
        writer.write(&chunk).map_err(parquet_error)?;
        start += length;
    }
    let out = writer.into_inner().map_err(parquet_error)?;
    out.into_inner().map_err(|error| SinkError::Io {
        op: "writing",
        path: path.to_path_buf(),
        source: error.into_error(),
    })?;
    Ok(())
}
