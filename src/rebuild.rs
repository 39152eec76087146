//! The inverse of ingest: a CloudTrail record rebuilt from its row, equal as JSON to the record
//! AWS wrote except that secrets (`responseElements.credentials.sessionToken`, any
//! `secretAccessKey`: see `decode::secrets`) hold their fingerprints, and that a record with a
//! duplicated key holds the earlier values under `sts_audit_duplicate_keys`. This is how the lake
//! proves it lost nothing (see tests/lossless.rs), and how a row can be handed back to tools that
//! expect CloudTrail JSON.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMicrosecondType;
use serde_json::{Map, Value};

use crate::decode::record::{FieldKind, LOGSTASH_TIME, TLS_KEYS, TOP_LEVEL};
use crate::decode::time::format_event_time;
use crate::lake::schema::{COLUMNS, Kind, col};

/// Rebuilds the record of row `row` of a batch with the lake's schema.
pub fn rebuild_record(batch: &RecordBatch, row: usize) -> Result<Value, String> {
    let unmapped = match text(batch, col::UNMAPPED, row)? {
        Some(json) => serde_json::from_str::<Map<String, Value>>(&json)
            .map_err(|e| format!("unmapped: {e}"))?,
        None => Map::new(),
    };
    let mut record = Map::new();
    for &(key, column, kind) in TOP_LEVEL {
        if unmapped.contains_key(key) {
            continue;
        }
        if let Some(value) = field_value(batch, row, column, kind, &unmapped)? {
            record.insert(key.to_owned(), value);
        }
    }
    record.extend(unmapped);
    Ok(Value::Object(record))
}

fn field_value(
    batch: &RecordBatch,
    row: usize,
    column: usize,
    kind: FieldKind,
    unmapped: &Map<String, Value>,
) -> Result<Option<Value>, String> {
    let value = match kind {
        FieldKind::Text => text(batch, column, row)?.map(Value::String),
        FieldKind::Bool => boolean(batch, column, row)?.map(Value::Bool),
        FieldKind::BoolText => {
            boolean(batch, column, row)?.map(|flag| Value::String(flag.to_string()))
        }
        FieldKind::Json => match text(batch, column, row)? {
            Some(json) => Some(
                serde_json::from_str(&json)
                    .map_err(|e| format!("{}: {e}", COLUMNS[column].name))?,
            ),
            None => None,
        },
        // A record that had Logstash's @timestamp keeps its own eventTime (if any) in `unmapped`.
        FieldKind::Time if unmapped.contains_key(LOGSTASH_TIME) => None,
        FieldKind::Time => timestamp(batch, column, row)?
            .and_then(format_event_time)
            .map(Value::String),
        FieldKind::Tls => tls(batch, row)?,
    };
    Ok(value)
}

fn tls(batch: &RecordBatch, row: usize) -> Result<Option<Value>, String> {
    let mut object = Map::new();
    for (key, column) in TLS_KEYS {
        if let Some(value) = text(batch, column, row)? {
            object.insert(key.to_owned(), Value::String(value));
        }
    }
    Ok((!object.is_empty()).then_some(Value::Object(object)))
}

fn column(batch: &RecordBatch, column: usize, expected: Kind) -> Result<&dyn Array, String> {
    let spec = &COLUMNS[column];
    let array = batch
        .column_by_name(spec.name)
        .ok_or_else(|| format!("column {} is missing", spec.name))?;
    debug_assert_eq!(spec.kind, expected);
    Ok(array.as_ref())
}

fn text(batch: &RecordBatch, index: usize, row: usize) -> Result<Option<String>, String> {
    let array = column(batch, index, Kind::Text)?;
    let name = COLUMNS[index].name;
    if array.is_null(row) {
        return Ok(None);
    }
    if let Some(strings) = array.as_string_opt::<i32>() {
        return Ok(Some(strings.value(row).to_owned()));
    }
    if let Some(views) = array.as_string_view_opt() {
        return Ok(Some(views.value(row).to_owned()));
    }
    Err(format!("column {name} is not text"))
}

fn boolean(batch: &RecordBatch, index: usize, row: usize) -> Result<Option<bool>, String> {
    let array = column(batch, index, Kind::Bool)?;
    let flags = array
        .as_boolean_opt()
        .ok_or_else(|| format!("column {} is not boolean", COLUMNS[index].name))?;
    Ok(flags.is_valid(row).then(|| flags.value(row)))
}

fn timestamp(batch: &RecordBatch, index: usize, row: usize) -> Result<Option<i64>, String> {
    let array = column(batch, index, Kind::Time)?;
    let times = array
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| {
            format!(
                "column {} is not a microsecond timestamp",
                COLUMNS[index].name
            )
        })?;
    Ok(times.is_valid(row).then(|| times.value(row)))
}
