//! Rows of the `events` table into Arrow record batches: one builder per column, text kept as
//! views into shared blocks, and the row picking and compaction a write needs. The columns
//! themselves, [`Row`] and [`Cell`] belong to the lake (`lake::schema`); `decode` fills rows,
//! `sink` writes the batches built here.

use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::new_null_array;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, ByteView, Int64Builder, NullBufferBuilder,
    RecordBatch, StringViewArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::{Buffer, ScalarBuffer};
use arrow::compute::interleave;
use arrow::error::ArrowError;

use crate::lake::schema::{COLUMNS, Cell, Kind, Row, col, data_type, schema};

/// One column of a batch being built. A column is only a count of nulls until its first value:
/// most batches have columns with no value at all (the STS columns outside credential calls,
/// most identity details, VPC endpoints...), and these then cost nothing per row, neither here
/// nor when the rows are sorted for a write (see [`pick_rows`]).
struct ColumnBuilder {
    kind: Kind,
    /// Nulls appended before the first value.
    leading_nulls: usize,
    values: Option<Values>,
}

enum Values {
    Text(TextViews),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Time(TimestampMicrosecondBuilder),
}

/// Memory a non-text value takes in a builder: the value and its validity bit, rounded up.
const FIXED_VALUE_BYTES: usize = 9;

impl ColumnBuilder {
    fn new(kind: Kind) -> Self {
        ColumnBuilder {
            kind,
            leading_nulls: 0,
            values: None,
        }
    }

    /// Appends a cell (a cell of the wrong kind becomes null; decode never produces one);
    /// returns the memory it took.
    fn append(&mut self, cell: &Cell) -> usize {
        let fits = matches!(
            (self.kind, cell),
            (Kind::Text, Cell::Text(_))
                | (Kind::Bool, Cell::Bool(_))
                | (Kind::Int, Cell::Int(_))
                | (Kind::Time, Cell::Time(_))
        );
        let values = match &mut self.values {
            Some(values) => values,
            None if !fits => {
                self.leading_nulls += 1;
                // What the null will take once the column is an array.
                return null_bytes(self.kind);
            }
            None => {
                let values = Values::with_nulls(self.kind, self.leading_nulls);
                self.leading_nulls = 0;
                self.values.insert(values)
            }
        };
        values.append(cell)
    }

    /// The memory the column holds, allocated but unused room included.
    fn allocated(&self) -> usize {
        size_of::<ColumnBuilder>() + self.values.as_ref().map_or(0, Values::allocated)
    }

    fn finish(&mut self) -> ArrayRef {
        match self.values.take() {
            Some(mut values) => values.finish(),
            None => new_null_array(
                &data_type(self.kind),
                std::mem::take(&mut self.leading_nulls),
            ),
        }
    }
}

/// The memory a null takes in an array of `kind`.
fn null_bytes(kind: Kind) -> usize {
    match kind {
        Kind::Text => size_of::<u128>(),
        _ => FIXED_VALUE_BYTES,
    }
}

impl Values {
    /// A builder holding `nulls` nulls.
    fn with_nulls(kind: Kind, nulls: usize) -> Values {
        // Small, and grown by doubling: a partition of a few rows must not hold kilobytes per
        // column (a file of 20,000 dates makes 20,000 partitions).
        let rows = nulls.max(INITIAL_ROWS);
        match kind {
            Kind::Text => Values::Text(TextViews::with_nulls(nulls)),
            Kind::Bool => {
                let mut b = BooleanBuilder::with_capacity(rows);
                b.append_nulls(nulls);
                Values::Bool(b)
            }
            Kind::Int => {
                let mut b = Int64Builder::with_capacity(rows);
                b.append_nulls(nulls);
                Values::Int(b)
            }
            Kind::Time => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC");
                b.append_nulls(nulls);
                Values::Time(b)
            }
        }
    }

    fn append(&mut self, cell: &Cell) -> usize {
        match (self, cell) {
            (Values::Text(b), Cell::Text(v)) => return b.append(v),
            (Values::Text(b), _) => return b.append_null(),
            (Values::Bool(b), Cell::Bool(v)) => b.append_value(*v),
            (Values::Bool(b), _) => b.append_null(),
            (Values::Int(b), Cell::Int(v)) => b.append_value(*v),
            (Values::Int(b), _) => b.append_null(),
            (Values::Time(b), Cell::Time(v)) => b.append_value(*v),
            (Values::Time(b), _) => b.append_null(),
        }
        FIXED_VALUE_BYTES
    }

    fn allocated(&self) -> usize {
        // A value and its validity bit.
        let fixed = |capacity: usize, width: usize| capacity * width + capacity.div_ceil(8);
        match self {
            Values::Text(b) => b.allocated(),
            Values::Bool(b) => 2 * b.capacity().div_ceil(8),
            Values::Int(b) => fixed(b.capacity(), 8),
            Values::Time(b) => fixed(b.capacity(), 8),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Values::Text(b) => Arc::new(b.finish()),
            Values::Bool(b) => Arc::new(b.finish()),
            Values::Int(b) => Arc::new(b.finish()),
            Values::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Room for this many values when a column gets its first value; it doubles from there.
const INITIAL_ROWS: usize = 16;

/// The longest value a view holds inline, without a copy in a data block.
const INLINE_BYTES: usize = 12;

/// Data blocks start this small and double up to [`MAX_BLOCK_BYTES`], so that a partition of a
/// few rows holds a few kilobytes, not a megabyte per column.
const MIN_BLOCK_BYTES: usize = 1 << 10;

/// The largest data block: under the allocator's mmap threshold (`tune_allocator` in
/// main.rs), so that a block freed after a write is reused from the heap by the next, instead
/// of being mapped afresh and unmapped again (BENCHMARKS.md, "Text columns").
const MAX_BLOCK_BYTES: usize = 1 << 20;

/// A text column as Arrow string views. Sorting rows for a write then moves 16-byte views, not
/// the text, whose sorted copy was a large share of ingest time (BENCHMARKS.md, "Text columns"). A value equal
/// to the previous one stored in a block (the `source_file` of every row of a file, the
/// identity of a session's consecutive calls) is stored once, as a second view of the same
/// bytes.
struct TextViews {
    views: Vec<u128>,
    nulls: NullBufferBuilder,
    blocks: Vec<Buffer>,
    block: Vec<u8>,
    /// The view of the last value stored in a block.
    last: Option<u128>,
    /// Comparisons with the last value so far, and how many found it repeated.
    checks: usize,
    repeats: usize,
}

/// A column stops looking for repeats once fewer than one in this many comparisons found one
/// (after [`REPEAT_TRIALS`]): unique values (event IDs) then cost no comparison at all.
const REPEAT_SHARE: usize = 8;
const REPEAT_TRIALS: usize = 64;

impl Default for TextViews {
    fn default() -> Self {
        TextViews {
            views: Vec::with_capacity(INITIAL_ROWS),
            nulls: NullBufferBuilder::new(INITIAL_ROWS),
            blocks: Vec::new(),
            block: Vec::new(),
            last: None,
            checks: 0,
            repeats: 0,
        }
    }
}

impl TextViews {
    /// Appends a value; returns the memory it took.
    fn append(&mut self, value: &str) -> usize {
        let bytes = value.as_bytes();
        self.nulls.append_non_null();
        if bytes.len() <= INLINE_BYTES {
            self.views.push(make_view(bytes, 0, 0));
            return size_of::<u128>();
        }
        if let Some(view) = self.last
            && self.worth_checking()
        {
            self.checks += 1;
            if self.stored(view) == bytes {
                self.repeats += 1;
                self.views.push(view);
                return size_of::<u128>();
            }
        }
        if self.block.capacity() - self.block.len() < bytes.len() {
            self.start_block(bytes.len());
        }
        // Blocks are at most the larger of MAX_BLOCK_BYTES and one value (a record is capped
        // far below 4 GiB), so these fit the view's u32 fields.
        let offset = self.block.len() as u32;
        let view = make_view(bytes, self.blocks.len() as u32, offset);
        self.block.extend_from_slice(bytes);
        self.views.push(view);
        self.last = Some(view);
        size_of::<u128>() + bytes.len()
    }

    fn allocated(&self) -> usize {
        let blocks: usize = self.blocks.iter().map(Buffer::capacity).sum();
        self.views.capacity() * size_of::<u128>()
            + self.nulls.allocated_size()
            + self.blocks.capacity() * size_of::<Buffer>()
            + blocks
            + self.block.capacity()
    }

    fn worth_checking(&self) -> bool {
        self.checks < REPEAT_TRIALS || self.repeats * REPEAT_SHARE >= self.checks
    }

    fn append_null(&mut self) -> usize {
        self.nulls.append_null();
        self.views.push(0);
        size_of::<u128>()
    }

    fn with_nulls(nulls: usize) -> TextViews {
        let mut views = TextViews::default();
        views.nulls.append_n_nulls(nulls);
        views.views.resize(nulls, 0);
        views
    }

    /// The bytes of a view made by `append` for a value stored in a block.
    fn stored(&self, view: u128) -> &[u8] {
        let view = ByteView::from(view);
        let block = match self.blocks.get(view.buffer_index as usize) {
            Some(block) => block.as_slice(),
            None => self.block.as_slice(),
        };
        let start = view.offset as usize;
        block
            .get(start..start + view.length as usize)
            .unwrap_or_default()
    }

    /// Closes the block being filled and starts one with room for at least `bytes`.
    fn start_block(&mut self, bytes: usize) {
        let size = (self.block.capacity() * 2)
            .clamp(MIN_BLOCK_BYTES, MAX_BLOCK_BYTES)
            .max(bytes);
        let full = std::mem::replace(&mut self.block, Vec::with_capacity(size));
        if !full.is_empty() {
            self.blocks.push(Buffer::from_vec(full));
        }
    }

    fn finish(&mut self) -> StringViewArray {
        let block = std::mem::take(&mut self.block);
        if !block.is_empty() {
            self.blocks.push(Buffer::from_vec(block));
        }
        let views = ScalarBuffer::from(std::mem::take(&mut self.views));
        let blocks = std::mem::take(&mut self.blocks);
        let nulls = self.nulls.finish();
        self.last = None;
        (self.checks, self.repeats) = (0, 0);
        // SAFETY: every view was made by `make_view` from a `&str` (valid UTF-8): inline, or
        // over the bytes copied at its offset into the block whose index it holds; the blocks
        // are pushed in that order, and a null's view is zero. That is what `try_new` checks.
        unsafe { StringViewArray::new_unchecked(views, blocks, nulls) }
    }
}

/// The builder's memory beyond its rows' text is measured again at these row counts (powers of
/// two up to this one), so that a small partition counts what it really holds; past it the
/// rows dominate and the measure stays.
const MEASURED_ROWS: usize = 64;

/// Collects rows of one partition until the sink writes them out. Holds nothing until its
/// first row: a worker may know thousands of partitions.
#[derive(Default)]
pub struct EventBatchBuilder {
    columns: Vec<ColumnBuilder>,
    rows: usize,
    /// The rows' values, as each append counts them.
    bytes: usize,
    /// What the builder holds beyond `bytes` (the columns themselves, room allocated ahead),
    /// as last measured.
    overhead: usize,
}

impl EventBatchBuilder {
    pub fn append(&mut self, row: &Row) {
        if self.columns.is_empty() {
            self.columns = new_columns();
        }
        for (builder, cell) in self.columns.iter_mut().zip(row.cells.iter()) {
            self.bytes += builder.append(cell);
        }
        self.rows += 1;
        if self.rows <= MEASURED_ROWS && self.rows.is_power_of_two() {
            self.overhead = self.allocated().saturating_sub(self.bytes);
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The memory the buffered rows hold, for the sink's memory budget: their values and the
    /// builder's fixed cost (about 80 columns, each with room for its first values), which is
    /// most of it for a partition of a few rows.
    pub fn bytes(&self) -> usize {
        self.bytes + self.overhead
    }

    fn allocated(&self) -> usize {
        let columns = self
            .columns
            .iter()
            .map(ColumnBuilder::allocated)
            .sum::<usize>();
        columns + (self.columns.capacity() - self.columns.len()) * size_of::<ColumnBuilder>()
    }

    /// Drains the builder into a batch; the builder is empty and holds nothing afterwards.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        if self.columns.is_empty() {
            self.columns = new_columns();
        }
        let arrays = self.columns.iter_mut().map(ColumnBuilder::finish).collect();
        self.columns = Vec::new();
        self.rows = 0;
        self.bytes = 0;
        self.overhead = 0;
        RecordBatch::try_new(schema(), arrays)
    }
}

fn new_columns() -> Vec<ColumnBuilder> {
    COLUMNS.iter().map(|c| ColumnBuilder::new(c.kind)).collect()
}

/// The rows `rows` (batch, row) of `batches` as one batch, in that order. A column with no
/// value in any of the batches is made as nulls at once, instead of being picked row by row.
pub fn pick_rows(
    batches: &[&RecordBatch],
    rows: &[(usize, usize)],
) -> Result<RecordBatch, ArrowError> {
    let columns = (0..col::COUNT)
        .map(|column| {
            let arrays: Vec<&dyn Array> = batches
                .iter()
                .map(|batch| batch.column(column).as_ref())
                .collect();
            if arrays.iter().all(|array| array.null_count() == array.len()) {
                Ok(new_null_array(arrays[0].data_type(), rows.len()))
            } else {
                interleave(&arrays, rows)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema(), columns)
}

/// `batch` with its text in blocks of its own, only as large as its values, and the memory it
/// takes (counted as [`EventBatchBuilder::bytes`] counts it). Rows picked out of a larger batch
/// still share that batch's blocks and would keep all of them alive.
pub fn compact(batch: &RecordBatch) -> Result<(RecordBatch, usize), ArrowError> {
    let mut bytes = 0;
    let columns = batch
        .columns()
        .iter()
        .map(|column| match column.as_string_view_opt() {
            Some(strings) if strings.null_count() < strings.len() => {
                let mut views = TextViews::default();
                for value in strings {
                    bytes += match value {
                        Some(value) => views.append(value),
                        None => views.append_null(),
                    };
                }
                Arc::new(views.finish()) as ArrayRef
            }
            Some(nulls) => {
                bytes += nulls.len() * size_of::<u128>();
                column.clone()
            }
            None => {
                bytes += column.len() * FIXED_VALUE_BYTES;
                column.clone()
            }
        })
        .collect();
    Ok((RecordBatch::try_new(batch.schema(), columns)?, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_batch() {
        let mut row = Row::default();
        row.set(col::EVENT_TIME, Cell::Time(1_000_000));
        row.set(col::EVENT_ID, Cell::text("e1"));
        row.set(col::READ_ONLY, Cell::Bool(true));
        let mut builder = EventBatchBuilder::default();
        builder.append(&row);
        builder.append(&row);
        let batch = builder.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.num_columns(), col::COUNT);
        assert_eq!(builder.rows(), 0);
        assert_eq!(builder.bytes(), 0);
    }

    fn texts(array: &StringViewArray) -> Vec<Option<&str>> {
        array.iter().collect()
    }

    #[test]
    fn text_views_keep_every_value_and_null() {
        let long = |n: usize| format!("{n:0>40}");
        let mut views = TextViews::default();
        let mut expected = Vec::new();
        for n in 0..5000 {
            // Inline values, long values that cross block boundaries, repeats and nulls.
            let value = match n % 5 {
                0 => None,
                1 => Some("short".to_owned()),
                2 | 3 => Some(long(n / 5)),
                _ => Some("y".repeat(n % 3000)),
            };
            match &value {
                Some(text) => views.append(text),
                None => views.append_null(),
            };
            expected.push(value);
        }
        let array = views.finish();
        array.to_data().validate_full().unwrap();
        let expected: Vec<Option<&str>> = expected.iter().map(Option::as_deref).collect();
        assert_eq!(texts(&array), expected);
        assert!(
            array.data_buffers().len() > 1,
            "the values span several blocks"
        );
        assert_eq!(array.null_count(), 1000);
    }

    #[test]
    fn a_repeated_value_is_stored_once() {
        let path = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/file.json.gz";
        let mut views = TextViews::default();
        assert_eq!(views.append(path), size_of::<u128>() + path.len());
        for _ in 0..999 {
            assert_eq!(views.append(path), size_of::<u128>());
        }
        let other = "another value, longer than twelve bytes";
        views.append(other);
        let array = views.finish();
        assert_eq!(array.len(), 1000 + 1);
        assert_eq!(
            array.total_buffer_bytes_used(),
            1000 * path.len() + other.len()
        );
        let stored: usize = array.data_buffers().iter().map(|b| b.len()).sum();
        assert_eq!(
            stored,
            path.len() + other.len(),
            "the path's bytes are in a block once"
        );
        assert!(array.iter().take(1000).all(|v| v == Some(path)));
    }

    #[test]
    fn a_value_larger_than_a_block_gets_a_block_of_its_own() {
        let big = "z".repeat(3 * MAX_BLOCK_BYTES);
        let mut views = TextViews::default();
        views.append("first value in the block");
        let taken = views.append(&big);
        assert_eq!(taken, size_of::<u128>() + big.len());
        views.append("after the big one");
        let array = views.finish();
        array.to_data().validate_full().unwrap();
        assert_eq!(array.value(1), big);
        assert_eq!(array.value(2), "after the big one");
    }
}
