//! Query results as text: an aligned table for people, CSV, JSON and NDJSON for programs,
//! Markdown for tickets and wikis. Times print as UTC RFC 3339 (`2024-03-01T08:00:00Z`), lists
//! as JSON arrays in CSV and one item per line in tables.
//!
//! CSV, JSON and NDJSON stream batch by batch; a table needs every row to size its columns.
//!
//! Text in CloudTrail is chosen by callers (user agents, session names, error messages), so
//! tables, Markdown and CSV show control characters escaped ([`visible`]), CSV cells that a
//! spreadsheet would run as a formula are quoted ([`csv_text`]) and Markdown cells cannot open
//! an HTML tag ([`markdown_cell`]). JSON and NDJSON keep every
//! value exact: JSON escaping already makes them safe to print.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use comfy_table::{ContentArrangement, Table, presets};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use serde_json::Value;

use crate::error::QueryError;

/// The formats results are written in (the command line's `--format` maps onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    Ndjson,
    Markdown,
}

/// RFC 3339 in UTC; `%.f` prints fractions only when there are some.
const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.fZ";
const NAIVE_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

fn format_options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_timestamp_tz_format(Some(TIME_FORMAT))
        .with_timestamp_format(Some(NAIVE_TIME_FORMAT))
        .with_null("")
}

/// How a table is laid out: wrapped to the terminal's width, or never wrapped (files, pipes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableStyle {
    pub wrap_to_terminal: bool,
}

/// Writes every batch of `stream` to `out` in `format`; returns the number of rows.
pub async fn write_stream(
    format: OutputFormat,
    style: TableStyle,
    schema: &SchemaRef,
    mut stream: SendableRecordBatchStream,
    out: &mut dyn Write,
) -> Result<u64, QueryError> {
    let mut rows = 0u64;
    let mut held = Vec::new();
    if format == OutputFormat::Csv {
        return write_csv_stream(schema, stream, out).await;
    }
    if format == OutputFormat::Json {
        out.write_all(b"[").map_err(QueryError::Output)?;
    }
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        match format {
            OutputFormat::Table | OutputFormat::Markdown => held.push(batch.clone()),
            OutputFormat::Csv => unreachable!("CSV is written by write_csv_stream"),
            OutputFormat::Json => write_json(out, &batch, rows == 0, false)?,
            OutputFormat::Ndjson => write_json(out, &batch, true, true)?,
        }
        rows += batch.num_rows() as u64;
    }
    match format {
        OutputFormat::Table => {
            let table = build_table(schema, &held, style)?;
            writeln!(out, "{table}").map_err(QueryError::Output)?;
            let noun = if rows == 1 { "row" } else { "rows" };
            writeln!(out, "({rows} {noun})").map_err(QueryError::Output)?;
        }
        OutputFormat::Markdown => write_markdown(out, schema, &held)?,
        OutputFormat::Json => out.write_all(b"\n]\n").map_err(QueryError::Output)?,
        OutputFormat::Csv | OutputFormat::Ndjson => {}
    }
    out.flush().map_err(QueryError::Output)?;
    Ok(rows)
}

fn render_error(error: impl std::fmt::Display) -> QueryError {
    QueryError::Render(error.to_string())
}

fn build_table(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    style: TableStyle,
) -> Result<Table, QueryError> {
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_content_arrangement(if style.wrap_to_terminal {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    table.set_header(
        schema
            .fields()
            .iter()
            .map(|f| visible(f.name()).into_owned()),
    );
    for batch in batches {
        let columns = formatters(batch)?;
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .zip(&columns)
                .map(|(array, format)| cell_text(array.as_ref(), format, row, "\n"));
            table.add_row(cells.collect::<Vec<_>>());
        }
    }
    Ok(table)
}

/// The rows of `batches` as JSON objects, each value as the JSON renderer writes it (times
/// RFC 3339 UTC, lists as arrays), so that code reading rows agrees with every output format.
pub async fn json_rows(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<Vec<serde_json::Map<String, Value>>, QueryError> {
    let stream =
        datafusion::physical_plan::memory::MemoryStream::try_new(batches, schema.clone(), None)?;
    let mut text = Vec::new();
    let style = TableStyle {
        wrap_to_terminal: false,
    };
    write_stream(
        OutputFormat::Ndjson,
        style,
        schema,
        Box::pin(stream),
        &mut text,
    )
    .await?;
    let text = String::from_utf8(text).map_err(render_error)?;
    text.lines()
        .map(|line| serde_json::from_str(line).map_err(render_error))
        .collect()
}

/// A GitHub-flavoured Markdown table, unpadded so that documents diff line by line.
fn write_markdown(
    out: &mut dyn Write,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), QueryError> {
    let escape = markdown_cell;
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| escape(&visible(f.name())))
        .collect();
    writeln!(out, "| {} |", names.join(" | ")).map_err(QueryError::Output)?;
    writeln!(out, "|{}", " --- |".repeat(names.len())).map_err(QueryError::Output)?;
    for batch in batches {
        let columns = formatters(batch)?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .zip(&columns)
                .map(|(array, format)| escape(&cell_text(array.as_ref(), format, row, "\n")))
                .collect();
            writeln!(out, "| {} |", cells.join(" | ")).map_err(QueryError::Output)?;
        }
    }
    Ok(())
}

/// A Markdown table cell: `&` and `<` as entities (a value like `<img src=...>` or `<script>`
/// in a user agent stays text in every renderer), `|` escaped, the line breaks between list
/// items as `<br>`. Control characters are already escaped ([`visible`]).
pub fn markdown_cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('|', "\\|")
        .replace('\n', "<br>")
}

fn formatters(batch: &RecordBatch) -> Result<Vec<ArrayFormatter<'_>>, QueryError> {
    static OPTIONS: std::sync::LazyLock<FormatOptions<'static>> =
        std::sync::LazyLock::new(format_options);
    batch
        .columns()
        .iter()
        .map(|array| ArrayFormatter::try_new(array.as_ref(), &OPTIONS).map_err(render_error))
        .collect()
}

/// A cell as text for tables, control characters escaped: lists joined by `separator`.
fn cell_text(array: &dyn Array, format: &ArrayFormatter, row: usize, separator: &str) -> String {
    if array.is_null(row) {
        return String::new();
    }
    if let Some(text) = string_value(array, row) {
        return visible(text).into_owned();
    }
    if is_list(array.data_type()) {
        let Value::Array(items) = cell_json(array, format, row) else {
            return visible(&format.value(row).to_string()).into_owned();
        };
        let texts: Vec<String> = items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => visible(&text).into_owned(),
                other => visible(&other.to_string()).into_owned(),
            })
            .collect();
        return texts.join(separator);
    }
    visible(&format.value(row).to_string()).into_owned()
}

/// Whether a character is shown escaped: C0 controls (newline and tab included), DEL, C1
/// controls, and the Unicode bidirectional controls that reorder what follows them on screen
/// (and the line and paragraph separators). Escape sequences, bells and carriage returns in a
/// terminal, or a right-to-left override in a report, would let a caller's text rewrite
/// what an analyst sees.
fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// True when `text` holds a character [`is_hidden`] escapes. The byte test comes first: every
/// such character starts with one of these bytes in UTF-8, and most text has none.
fn needs_escape(text: &str) -> bool {
    text.bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == 0xc2 || b == 0xd8 || b == 0xe2)
        && text.chars().any(is_hidden)
}

/// Appends `text` with every [`is_hidden`] character written as its code point in Rust's
/// notation, `\u{1b}` for ESC, `\u{a}` for a newline, `\u{202e}` for a right-to-left
/// override. Backslashes themselves are kept, so such text in the data looks the same.
fn push_visible(out: &mut String, text: &str) {
    for c in text.chars() {
        if is_hidden(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
}

/// `text` as tables, Markdown, CSV and messages show it: control characters escaped (see
/// [`push_visible`]). The text itself when there are none.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !needs_escape(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    push_visible(&mut out, text);
    Cow::Owned(out)
}

/// [`visible`] for messages of several lines: newlines are kept.
pub fn visible_lines(text: &str) -> Cow<'_, str> {
    if !needs_escape(text) {
        return Cow::Borrowed(text);
    }
    let lines: Vec<Cow<str>> = text.split('\n').map(visible).collect();
    Cow::Owned(lines.join("\n"))
}

/// Whether a spreadsheet would read a cell starting this way as a formula (OWASP's list:
/// `=`, `+`, `-`, `@`, tab, carriage return).
fn starts_formula(text: &str) -> bool {
    matches!(
        text.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// A text cell as CSV holds it: [`visible`], and prefixed with `'` when it would start a
/// formula, so a spreadsheet shows it as text. Only text cells: a number like `-5` stays.
pub fn csv_text(text: &str) -> Cow<'_, str> {
    let mut scratch = String::new();
    match push_csv_text(text, &mut scratch) {
        true => Cow::Owned(scratch),
        false => Cow::Borrowed(text),
    }
}

/// [`csv_text`] into `scratch`; false (nothing written) when the text stays as it is.
fn push_csv_text(text: &str, scratch: &mut String) -> bool {
    let formula = starts_formula(text);
    if !formula && !needs_escape(text) {
        return false;
    }
    scratch.clear();
    if formula {
        scratch.push('\'');
    }
    push_visible(scratch, text);
    true
}

/// A text cell's CSV bytes: `text` itself, or its [`csv_text`] written to `scratch`.
fn csv_text_bytes<'s>(text: &'s str, scratch: &'s mut String) -> &'s [u8] {
    if push_csv_text(text, scratch) {
        scratch.as_bytes()
    } else {
        text.as_bytes()
    }
}

fn is_list(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)
    )
}

/// Batches rendered to CSV at once while the previous ones are written: rendering is most of
/// the CPU of a large export, and it runs on the blocking pool beside the query's own threads.
const CSV_BATCHES_IN_FLIGHT: usize = 4;

/// CSV with a header line; batches are rendered in parallel and written in order.
async fn write_csv_stream(
    schema: &SchemaRef,
    stream: SendableRecordBatchStream,
    out: &mut dyn Write,
) -> Result<u64, QueryError> {
    let mut header = csv::Writer::from_writer(Vec::new());
    header
        .write_record(
            schema
                .fields()
                .iter()
                .map(|f| csv_text(f.name()).into_owned()),
        )
        .map_err(render_error)?;
    let header = header.into_inner().map_err(render_error)?;
    out.write_all(&header).map_err(QueryError::Output)?;
    let mut rendered = stream
        .map(|batch| async move {
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            let text = tokio::task::spawn_blocking(move || csv_bytes(&batch))
                .await
                .map_err(render_error)??;
            Ok::<_, QueryError>((rows, text))
        })
        .buffered(CSV_BATCHES_IN_FLIGHT);
    let mut rows = 0;
    while let Some(result) = rendered.next().await {
        let (batch_rows, text) = result?;
        out.write_all(&text).map_err(QueryError::Output)?;
        rows += batch_rows;
    }
    out.flush().map_err(QueryError::Output)?;
    Ok(rows)
}

/// A column of a batch, typed once so that each cell is read without a downcast.
enum CsvColumn<'a> {
    Text(&'a arrow::array::StringArray),
    TextView(&'a arrow::array::StringViewArray),
    UtcTime(
        &'a arrow::array::TimestampMicrosecondArray,
        ArrayFormatter<'a>,
    ),
    Other(&'a dyn Array, ArrayFormatter<'a>),
}

impl<'a> CsvColumn<'a> {
    fn of(array: &'a dyn Array, format: ArrayFormatter<'a>) -> Self {
        match array.data_type() {
            DataType::Utf8 => CsvColumn::Text(array.as_string::<i32>()),
            DataType::Utf8View => CsvColumn::TextView(array.as_string_view()),
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(zone))
                if is_utc(zone) =>
            {
                CsvColumn::UtcTime(array.as_primitive(), format)
            }
            _ => CsvColumn::Other(array, format),
        }
    }

    /// The cell's CSV text (before quoting); formatted ones go through `scratch`.
    fn cell<'s>(&'s self, row: usize, scratch: &'s mut String) -> &'s [u8] {
        match self {
            CsvColumn::Text(array) if array.is_valid(row) => {
                csv_text_bytes(array.value(row), scratch)
            }
            CsvColumn::TextView(array) if array.is_valid(row) => {
                csv_text_bytes(array.value(row), scratch)
            }
            CsvColumn::UtcTime(array, format) if array.is_valid(row) => {
                scratch.clear();
                if !push_utc_micros(scratch, array.value(row)) {
                    // Beyond year 9999: the formatter's text. Writing to a String cannot fail.
                    let _ = write!(scratch, "{}", format.value(row));
                }
                scratch.as_bytes()
            }
            CsvColumn::Other(array, format) => csv_field(*array, format, row, scratch),
            _ => b"",
        }
    }
}

/// One batch as CSV lines.
fn csv_bytes(batch: &RecordBatch) -> Result<Vec<u8>, QueryError> {
    let columns: Vec<CsvColumn> = batch
        .columns()
        .iter()
        .zip(formatters(batch)?)
        .map(|(array, format)| CsvColumn::of(array.as_ref(), format))
        .collect();
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(batch.num_rows() * 256));
    // One buffer for the cells that need formatting: no allocation per cell.
    let mut scratch = String::new();
    for row in 0..batch.num_rows() {
        for column in &columns {
            writer
                .write_field(column.cell(row, &mut scratch))
                .map_err(render_error)?;
        }
        writer.write_record(None::<&[u8]>).map_err(render_error)?;
    }
    writer.into_inner().map_err(render_error)
}

/// A CSV cell: strings as [`csv_text`], lists as JSON arrays, the rest through the formatter
/// (into `scratch`), control characters escaped.
fn csv_field<'a>(
    array: &'a dyn Array,
    format: &ArrayFormatter,
    row: usize,
    scratch: &'a mut String,
) -> &'a [u8] {
    if array.is_null(row) {
        return b"";
    }
    if let Some(text) = string_value(array, row) {
        return csv_text_bytes(text, scratch);
    }
    scratch.clear();
    if push_utc_time(scratch, array, row) {
        return scratch.as_bytes();
    }
    let text = if is_list(array.data_type()) {
        // serde_json escapes C0 controls but not C1 or bidi controls.
        cell_json(array, format, row).to_string()
    } else {
        format.value(row).to_string()
    };
    push_visible(scratch, &text);
    scratch.as_bytes()
}

fn write_json(
    out: &mut dyn Write,
    batch: &RecordBatch,
    first: bool,
    lines: bool,
) -> Result<(), QueryError> {
    let schema = batch.schema();
    let columns = formatters(batch)?;
    // Built by hand to keep the columns in query order (a serde_json map would sort them).
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| Value::String(field.name().clone()).to_string())
        .collect();
    let mut text = String::new();
    for row in 0..batch.num_rows() {
        text.clear();
        text.push('{');
        for (i, (array, format)) in batch.columns().iter().zip(&columns).enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&names[i]);
            text.push(':');
            text.push_str(&cell_json(array.as_ref(), format, row).to_string());
        }
        text.push('}');
        if lines {
            writeln!(out, "{text}").map_err(QueryError::Output)?;
        } else {
            let separator = if first && row == 0 { "\n  " } else { ",\n  " };
            write!(out, "{separator}{text}").map_err(QueryError::Output)?;
        }
    }
    Ok(())
}

/// A cell as a JSON value: numbers and booleans typed, lists as arrays, the rest as text.
/// `format` is the formatter of `array` (made once per batch, not per cell).
fn cell_json(array: &dyn Array, format: &ArrayFormatter, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    if let Some(text) = string_value(array, row) {
        return Value::String(text.to_owned());
    }
    let mut time = String::new();
    if push_utc_time(&mut time, array, row) {
        return Value::String(time);
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::List(_) => list_json(array.as_list::<i32>().value(row).as_ref()),
        DataType::LargeList(_) => list_json(array.as_list::<i64>().value(row).as_ref()),
        DataType::FixedSizeList(_, _) => list_json(array.as_fixed_size_list().value(row).as_ref()),
        data_type => {
            let text = format.value(row).to_string();
            if data_type.is_numeric()
                && let Ok(number) = text.parse::<serde_json::Number>()
            {
                return Value::Number(number);
            }
            Value::String(text)
        }
    }
}

/// Appends a UTC microsecond timestamp cell as [`TIME_FORMAT`] prints it (fractions only when
/// there are some, in 3, 6 or 9 digits), without chrono's format-string interpreter, which was a
/// fifth of the CPU of a large CSV export. False (nothing written) for any other cell.
fn push_utc_time(out: &mut String, array: &dyn Array, row: usize) -> bool {
    match array.data_type() {
        DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some(zone))
            if is_utc(zone) =>
        {
            let micros = array
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(row);
            push_utc_micros(out, micros)
        }
        _ => false,
    }
}

fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "+00:00" | "Z")
}

/// [`push_utc_time`] of a microsecond count.
fn push_utc_micros(out: &mut String, micros: i64) -> bool {
    use chrono::{Datelike, Timelike};
    let Some(time) = chrono::DateTime::from_timestamp_micros(micros) else {
        return false;
    };
    let Ok(year) = u32::try_from(time.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    push_digits(out, year, 4);
    out.push('-');
    push_digits(out, time.month(), 2);
    out.push('-');
    push_digits(out, time.day(), 2);
    out.push('T');
    push_digits(out, time.hour(), 2);
    out.push(':');
    push_digits(out, time.minute(), 2);
    out.push(':');
    push_digits(out, time.second(), 2);
    let nanos = time.nanosecond();
    if nanos != 0 {
        out.push('.');
        if nanos % 1_000_000 == 0 {
            push_digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            push_digits(out, nanos / 1_000, 6);
        } else {
            push_digits(out, nanos, 9);
        }
    }
    out.push('Z');
    true
}

/// `value` in exactly `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

/// The text of a string cell without going through a formatter (the common, hot case).
fn string_value(array: &dyn Array, row: usize) -> Option<&str> {
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row)),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row)),
        DataType::Utf8View => Some(array.as_string_view().value(row)),
        _ => None,
    }
}

fn list_json(values: &dyn Array) -> Value {
    let options = format_options();
    match ArrayFormatter::try_new(values, &options) {
        Ok(format) => Value::Array(
            (0..values.len())
                .map(|i| cell_json(values, &format, i))
                .collect(),
        ),
        Err(error) => Value::String(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{
        BooleanArray, Float64Array, Int64Array, ListBuilder, StringBuilder,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Field, Schema};
    use datafusion::physical_plan::memory::MemoryStream;

    use super::*;

    #[test]
    fn markdown_cells_cannot_open_a_tag_or_a_column() {
        assert_eq!(
            markdown_cell("<img src=x onerror=alert(1)> a|b & c\nd"),
            "&lt;img src=x onerror=alert(1)> a\\|b &amp; c<br>d"
        );
    }

    fn sample() -> (SchemaRef, RecordBatch) {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("10.0.0.1");
        list.values().append_value("10.0.0.2");
        list.append(true);
        list.append(false);
        let time = TimestampMicrosecondArray::from(vec![Some(1_709_280_000_000_000), None])
            .with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("ratio", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("at", time.data_type().clone(), true),
            Field::new("ips", list.finish().data_type().clone(), true),
        ]));
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("10.0.0.1");
        list.values().append_value("10.0.0.2");
        list.append(true);
        list.append(false);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(arrow::array::StringArray::from(vec![Some("a,\"b\""), None])),
                Arc::new(Int64Array::from(vec![Some(3), None])),
                Arc::new(Float64Array::from(vec![Some(0.5), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
                Arc::new(time),
                Arc::new(list.finish()),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    fn render(format: OutputFormat) -> String {
        let (schema, batch) = sample();
        render_batch(format, schema, batch)
    }

    #[test]
    fn csv_quotes_and_lists_as_json() {
        assert_eq!(
            render(OutputFormat::Csv),
            "name,n,ratio,ok,at,ips\n\"a,\"\"b\"\"\",3,0.5,true,2024-03-01T08:00:00Z,\"[\"\"10.0.0.1\"\",\"\"10.0.0.2\"\"]\"\n,,,,,\n"
        );
    }

    #[test]
    fn times_print_as_the_formatter_does() {
        let times = [
            0,
            1_709_280_000_000_000,
            1_709_280_000_123_000,
            1_709_280_000_123_456,
            -1_000_001,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999Z
            -62_135_596_800_000_000, // 0001-01-01
        ];
        let array = TimestampMicrosecondArray::from(times.to_vec()).with_timezone("UTC");
        let options = format_options();
        let format = ArrayFormatter::try_new(&array, &options).unwrap();
        for (row, micros) in times.iter().enumerate() {
            let mut fast = String::new();
            assert!(push_utc_time(&mut fast, &array, row));
            assert_eq!(fast, format.value(row).to_string(), "{micros}");
        }
        let local = TimestampMicrosecondArray::from(vec![0]).with_timezone("+01:00");
        assert!(!push_utc_time(&mut String::new(), &local, 0));
    }

    #[test]
    fn ndjson_types_values() {
        let text = render(OutputFormat::Ndjson);
        assert!(
            text.starts_with("{\"name\":"),
            "columns keep query order: {text}"
        );
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first,
            serde_json::json!({"name": "a,\"b\"", "n": 3, "ratio": 0.5, "ok": true,
                "at": "2024-03-01T08:00:00Z", "ips": ["10.0.0.1", "10.0.0.2"]})
        );
        let second: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert!(second.as_object().unwrap().values().all(Value::is_null));
    }

    #[test]
    fn json_is_one_array() {
        let all: Value = serde_json::from_str(&render(OutputFormat::Json)).unwrap();
        assert_eq!(all.as_array().unwrap().len(), 2);
    }

    #[test]
    fn table_counts_rows() {
        let text = render(OutputFormat::Table);
        assert!(text.contains("2024-03-01T08:00:00Z"), "{text}");
        assert!(text.ends_with("(2 rows)\n"), "{text}");
        let markdown = render(OutputFormat::Markdown);
        assert!(markdown.contains("10.0.0.1<br>10.0.0.2"), "{markdown}");
    }

    /// What a caller can put in a user agent: an OSC title change, a bell, a carriage return,
    /// a screen clear, a right-to-left override, a C1 CSI.
    const HOSTILE: &str = "aws-cli\x1b]0;owned\x07\r\x1b[2J\u{202e}gpj.exe\u{9b}31m\x7f";

    fn hostile_batch() -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("agent", DataType::Utf8View, true),
            Field::new("text", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]));
        let agents = arrow::array::StringViewArray::from(vec![HOSTILE, "=HYPERLINK(\"x\")", "ok"]);
        let texts = arrow::array::StringArray::from(vec!["-5", "@SUM(A1)", "\tplain"]);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(agents),
                Arc::new(texts),
                Arc::new(Int64Array::from(vec![-5, 3, 0])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    fn render_batch(format: OutputFormat, schema: SchemaRef, batch: RecordBatch) -> String {
        let stream = MemoryStream::try_new(vec![batch], schema.clone(), None).unwrap();
        let mut out = Vec::new();
        let style = TableStyle {
            wrap_to_terminal: false,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(write_stream(
                format,
                style,
                &schema,
                Box::pin(stream),
                &mut out,
            ))
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    const SHOWN: &str =
        "aws-cli\\u{1b}]0;owned\\u{7}\\u{d}\\u{1b}[2J\\u{202e}gpj.exe\\u{9b}31m\\u{7f}";

    #[test]
    fn human_formats_show_control_characters_escaped() {
        for format in [
            OutputFormat::Table,
            OutputFormat::Markdown,
            OutputFormat::Csv,
        ] {
            let (schema, batch) = hostile_batch();
            let text = render_batch(format, schema, batch);
            let hidden: Vec<char> = text
                .chars()
                .filter(|&c| c != '\n' && is_hidden(c))
                .collect();
            assert!(hidden.is_empty(), "{format:?}: {hidden:?} in {text}");
            assert!(text.contains(SHOWN), "{format:?}: {text}");
        }
    }

    #[test]
    fn csv_quotes_formulas_in_text_cells_only() {
        let (schema, batch) = hostile_batch();
        let text = render_batch(OutputFormat::Csv, schema, batch);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("{SHOWN},'-5,-5"));
        assert_eq!(lines[2], "\"'=HYPERLINK(\"\"x\"\")\",'@SUM(A1),3");
        assert_eq!(lines[3], "ok,'\\u{9}plain,0");
        assert_eq!(csv_text("plain"), "plain");
        assert_eq!(csv_text("+1"), "'+1");
    }

    #[test]
    fn json_keeps_text_exact() {
        let (schema, batch) = hostile_batch();
        let text = render_batch(OutputFormat::Ndjson, schema, batch);
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["agent"], HOSTILE);
        assert_eq!(first["text"], "-5");
        assert_eq!(first["n"], -5);
    }

    #[test]
    fn visible_escapes_only_controls() {
        let cases = [
            ("plain – text ü", "plain – text ü"),
            ("a\nb", "a\\u{a}b"),
            ("\u{200f}\u{2066}\u{61c}", "\\u{200f}\\u{2066}\\u{61c}"),
            ("\u{85}\0", "\\u{85}\\u{0}"),
        ];
        for (text, shown) in cases {
            assert_eq!(visible(text), shown, "{text:?}");
        }
        assert_eq!(visible_lines("one\x1b\ntwo"), "one\\u{1b}\ntwo");
    }
}
