//! Parquet files of the lake: the writer settings in one place, and a file writer that takes
//! rows in event-time order and publishes the file atomically when it is complete.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use arrow::array::{AsArray, RecordBatch, UInt32Array};
use arrow::compute::{SortColumn, lexsort_to_indices};
use arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::lake::{commit, create_temporary};
use crate::batch::pick_rows;
use crate::error::SinkError;
use crate::lake::schema::{COLUMNS, col};

/// Rows per row group at most: large enough for good compression and few footers, small enough
/// that a reader prunes by event time at a useful granularity.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A row group is also finished once its writer holds this much memory (the encoded pages, the
/// page being filled and the dictionaries of every column; about five times the row group's
/// compressed size). Wide CloudTrail rows reach it well before [`ROW_GROUP_ROWS`], and an open
/// file's memory then swings between nothing and this; with up to four files open, larger
/// swings were what made peak memory grow with the length of a run (the longer the run, the
/// closer it came to every file being full at once). BENCHMARKS.md, "Row groups and write
/// chunks".
const ROW_GROUP_MEMORY_BYTES: usize = 8 << 20;

/// How many sorted rows are materialised at once while writing: it bounds the extra memory of
/// the copies, and most columns of a chunk this small are under the allocator's mmap
/// threshold, so they reuse heap memory instead of fresh pages, at no CPU cost we could measure
/// (BENCHMARKS.md, "Row groups and write chunks").
const WRITE_CHUNK_ROWS: usize = 1024;

/// Columns that are (nearly) unique per row, and `user_identity`, whose distinct values (a few
/// hundred bytes of JSON each) outgrow a dictionary page within every row group, so that the
/// writer hashed every value only to fall back to plain pages (BENCHMARKS.md, "Dictionaries
/// and compression per column"). zstd finds the repeats instead. A dictionary would only cost
/// time.
const NO_DICTIONARY_COLUMNS: [usize; 7] = [
    col::USER_IDENTITY,
    col::EVENT_ID,
    col::REQUEST_ID,
    col::SHARED_EVENT_ID,
    col::REQUEST_PARAMETERS,
    col::RESPONSE_ELEMENTS,
    col::SESSION_TOKEN_SHA256,
];

/// Free-form text and JSON, and the unique identifiers: nobody filters on their min/max (the
/// range of random IDs in a row group is nearly everything), and page statistics cost a string
/// comparison per row.
const NO_STATISTICS_COLUMNS: [usize; 15] = [
    col::EVENT_ID,
    col::REQUEST_ID,
    col::SHARED_EVENT_ID,
    col::SESSION_TOKEN_SHA256,
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

/// Columns written without compression: enumerations, account IDs and flags, stored as
/// dictionary indices or bits, where zstd gains little on a few kilobytes per row group. Every
/// compressed column writer holds zstd contexts, and parquet creates a decompression context
/// for each even though a writer never decompresses: with four files open, compressing these
/// columns costs memory for nothing (BENCHMARKS.md, "Dictionaries and compression per
/// column").
const UNCOMPRESSED_COLUMNS: [usize; 27] = [
    col::EVENT_VERSION,
    col::AWS_REGION,
    col::EVENT_SOURCE,
    col::EVENT_NAME,
    col::EVENT_TYPE,
    col::EVENT_CATEGORY,
    col::API_VERSION,
    col::READ_ONLY,
    col::MANAGEMENT_EVENT,
    col::RECIPIENT_ACCOUNT_ID,
    col::VPC_ENDPOINT_ACCOUNT_ID,
    col::TLS_VERSION,
    col::TLS_CIPHER_SUITE,
    col::SESSION_CREDENTIAL_FROM_CONSOLE,
    col::USER_TYPE,
    col::PRINCIPAL_ACCOUNT_ID,
    col::INVOKED_BY,
    col::IDENTITY_PROVIDER,
    col::SESSION_ISSUER_TYPE,
    col::SESSION_ISSUER_ACCOUNT_ID,
    col::MFA_AUTHENTICATED,
    col::EC2_ROLE_DELIVERY,
    col::WEB_ID_FEDERATED_PROVIDER,
    col::ROLE_ACCOUNT_ID,
    col::DURATION_SECONDS,
    col::WEB_IDENTITY_PROVIDER,
    col::SAML_ISSUER,
];

/// The most distinct event names a row group's Bloom filter is sized for (an account calls a
/// few hundred APIs a day; more only raises the false-positive rate). The writer folds each
/// filter down to the size its actual names need.
const EVENT_NAME_BLOOM_NDV: u64 = 4096;

/// The false-positive rate the `event_name` filters are folded down to. Far lower than usual,
/// because the row groups of an account hold the same few dozen names day after day: a name
/// that collides in one filter collides in nearly all of them, and a query for six names then
/// skips nothing; at this rate a row group's filter is still small (BENCHMARKS.md, "Bloom
/// filters on event_name").
const EVENT_NAME_BLOOM_FPP: f64 = 0.0001;

/// The writer settings of every lake file: zstd, page statistics, dictionaries where values
/// repeat, and a Bloom filter on `event_name`, so that a reader looking for some calls (the
/// credential-issuing STS calls every view reads, kept in files of their own) skips the row
/// groups that have none.
pub fn writer_properties() -> WriterProperties {
    let event_name = ColumnPath::from(COLUMNS[col::EVENT_NAME].name);
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_column_bloom_filter_enabled(event_name.clone(), true)
        .set_column_bloom_filter_fpp(event_name.clone(), EVENT_NAME_BLOOM_FPP)
        .set_column_bloom_filter_max_ndv(event_name, EVENT_NAME_BLOOM_NDV)
        .set_created_by(format!("sts-audit {}", env!("CARGO_PKG_VERSION")));
    for column in NO_DICTIONARY_COLUMNS {
        builder =
            builder.set_column_dictionary_enabled(ColumnPath::from(COLUMNS[column].name), false);
    }
    for column in UNCOMPRESSED_COLUMNS {
        builder = builder.set_column_compression(
            ColumnPath::from(COLUMNS[column].name),
            Compression::UNCOMPRESSED,
        );
    }
    for column in NO_STATISTICS_COLUMNS {
        builder = builder.set_column_statistics_enabled(
            ColumnPath::from(COLUMNS[column].name),
            EnabledStatistics::None,
        );
    }
    builder.build()
}

/// How every lake file is written: [`writer_properties`], and no embedded Arrow schema
/// (`ARROW:schema`). The Parquet schema says everything the columns need (strings, booleans,
/// 64-bit integers, microsecond UTC timestamps); the Arrow schema would only add that text is
/// held as string views, which readers that parse it but do not know views (Arrow C++ before
/// 15, arrow-js and Daft today) refuse, failing to open the file. DataFusion reads text as views anyway
/// (`schema_force_view_types`), so it reads back the same types without it.
pub fn writer_options() -> ArrowWriterOptions {
    ArrowWriterOptions::new()
        .with_properties(writer_properties())
        .with_skip_arrow_metadata(true)
}

/// The order that sorts `batch` by (event_time, event_id).
pub fn time_order(batch: &RecordBatch) -> Result<UInt32Array, ArrowError> {
    let sort_columns = [col::EVENT_TIME, col::EVENT_ID].map(|column| SortColumn {
        values: batch.column(column).clone(),
        options: None,
    });
    lexsort_to_indices(&sort_columns, None)
}

/// The event times of a lake batch, microseconds since the epoch (never null: a record without
/// a time is rejected before it becomes a row).
pub fn event_times(batch: &RecordBatch) -> &[i64] {
    batch
        .column(col::EVENT_TIME)
        .as_primitive::<TimestampMicrosecondType>()
        .values()
}

/// A lake file being written. Rows go in sorted by event time, one sorted run after another,
/// each run starting no earlier than the last ended (the caller checks [`PartFile::last_time`]),
/// so the whole file is sorted. Readers see it only once [`PartFile::finish`] renamed it.
pub struct PartFile {
    dir: PathBuf,
    name: String,
    temporary: PathBuf,
    writer: ArrowWriter<BufWriter<File>>,
    rows: usize,
    last_time: Option<i64>,
}

impl PartFile {
    pub fn create(dir: &Path, name: String, schema: SchemaRef) -> Result<PartFile, SinkError> {
        let (file, temporary) = create_temporary(dir, &name)?;
        let out = BufWriter::with_capacity(1 << 20, file);
        let writer =
            ArrowWriter::try_new_with_options(out, schema, writer_options()).map_err(|source| {
                SinkError::Parquet {
                    path: temporary.clone(),
                    source,
                }
            })?;
        Ok(PartFile {
            dir: dir.to_path_buf(),
            name,
            temporary,
            writer,
            rows: 0,
            last_time: None,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The event time of the last row written, if any.
    pub fn last_time(&self) -> Option<i64> {
        self.last_time
    }

    /// Appends rows picked from `batches` as (batch, row) pairs, in that order (a time order,
    /// starting no earlier than [`PartFile::last_time`]). Copies a chunk at a time, so the extra
    /// memory stays small whatever the batches.
    pub fn append(
        &mut self,
        batches: &[&RecordBatch],
        rows: &[(usize, usize)],
    ) -> Result<(), SinkError> {
        for chunk in rows.chunks(WRITE_CHUNK_ROWS) {
            let chunk = pick_rows(batches, chunk).map_err(|source| SinkError::Arrow {
                path: self.temporary.clone(),
                source,
            })?;
            self.writer
                .write(&chunk)
                .map_err(|source| SinkError::Parquet {
                    path: self.temporary.clone(),
                    source,
                })?;
            if self.writer.memory_size() > ROW_GROUP_MEMORY_BYTES {
                self.writer.flush().map_err(|source| SinkError::Parquet {
                    path: self.temporary.clone(),
                    source,
                })?;
            }
        }
        if let Some(&(batch, row)) = rows.last() {
            self.last_time = Some(event_times(batches[batch])[row]);
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Writes the footer, makes the file durable and gives it its final name; returns its path.
    pub fn finish(self) -> Result<PathBuf, SinkError> {
        let parquet_error = |source| SinkError::Parquet {
            path: self.temporary.clone(),
            source,
        };
        let out = self.writer.into_inner().map_err(parquet_error)?;
        let file = out.into_inner().map_err(|error| SinkError::Io {
            op: "writing",
            path: self.temporary.clone(),
            source: error.into_error(),
        })?;
        commit(file, &self.temporary, &self.dir, &self.name)
    }
}
