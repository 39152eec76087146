//! `detect --save` and `--new-only`: findings kept in the lake as rows of the `findings` table
//! (its files and columns are `lake::findings`'), and the ids kept before.
//!
//! A run saves its window's file whole: the rows of the rules it ran are replaced by what they
//! found now (so a finding since suppressed or fixed goes away), the rows of rules it did not
//! run are kept. Every finding is saved, whatever `--min-severity` shows.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray,
};
use arrow::compute::{concat_batches, filter_record_batch};
use chrono::{DateTime, Utc};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::DetectError;
use super::findings::Finding;
use super::window::Window;
use crate::error::QueryError;
use crate::lake::findings::{self, FindingsFolder};

/// The ids of every finding saved so far (what `--new-only` leaves out).
pub async fn saved_ids(ctx: &SessionContext) -> Result<HashSet<String>, DetectError> {
    let batches = ctx
        .sql("SELECT DISTINCT id FROM findings")
        .await?
        .collect()
        .await?;
    let mut ids = HashSet::new();
    for batch in &batches {
        let column = batch.column(0);
        let text = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8)
            .map_err(render_error)?;
        ids.extend(text.as_string::<i32>().iter().flatten().map(str::to_owned));
    }
    Ok(ids)
}

/// Saves `found` (every finding of `rules` for `window`) into the window's file of the lake
/// whose events are at `events_url`; returns the rows the file holds now.
pub async fn save(
    ctx: &SessionContext,
    events_url: &ListingTableUrl,
    window: &Window,
    rules: &[String],
    found: &[Finding],
    detected_at: DateTime<Utc>,
) -> Result<usize, DetectError> {
    let folder = FindingsFolder::of(ctx, events_url)?;
    let name = findings::file_name(window.start, window.end);
    let mut batches = match folder.read(&name).await? {
        Some(bytes) => other_rules(&name, bytes, rules)?,
        None => Vec::new(),
    };
    batches.push(to_batch(found, window, detected_at)?);
    let all = concat_batches(&findings::schema(), &batches).map_err(render_error)?;
    folder.write(&name, parquet_bytes(&all)?).await?;
    Ok(all.num_rows())
}

/// The rows of a saved window file whose rule is not among `rules`.
fn other_rules(
    name: &str,
    bytes: Vec<u8>,
    rules: &[String],
) -> Result<Vec<RecordBatch>, DetectError> {
    let unreadable = |reason: String| DetectError::Saved {
        file: name.to_owned(),
        reason,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|builder| builder.build())
        .map_err(|e| unreadable(e.to_string()))?;
    let mut kept = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(e.to_string()))?;
        if batch.schema().fields() != findings::schema().fields() {
            return Err(unreadable(
                "its columns are not this version's (saved by another version?): \
                 remove it, or run detect for that window again without --save"
                    .to_owned(),
            ));
        }
        let rule = batch.column(1).as_string::<i32>();
        let keep: BooleanArray = rule
            .iter()
            .map(|rule| Some(!rule.is_some_and(|r| rules.iter().any(|ran| ran == r))))
            .collect();
        kept.push(filter_record_batch(&batch, &keep).map_err(render_error)?);
    }
    Ok(kept)
}

/// The findings as rows of the `findings` table.
pub fn to_batch(
    found: &[Finding],
    window: &Window,
    detected_at: DateTime<Utc>,
) -> Result<RecordBatch, DetectError> {
    let text = |get: &dyn Fn(&Finding) -> Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(found.iter().map(get)))
    };
    let time = |get: &dyn Fn(&Finding) -> Option<i64>| -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter(found.iter().map(get)).with_timezone("UTC"))
    };
    let every = |at: DateTime<Utc>| -> ArrayRef {
        let micros = std::iter::repeat_n(Some(at.timestamp_micros()), found.len());
        Arc::new(TimestampMicrosecondArray::from_iter(micros).with_timezone("UTC"))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|f| Some(f.id.clone())),
        text(&|f| Some(f.rule.clone())),
        text(&|f| Some(f.severity.to_string())),
        text(&|f| Some(f.title.clone())),
        text(&|f| Some(f.summary.clone())),
        time(&|f| micros(f.event_time.as_deref())),
        time(&|f| micros(f.last_event_time.as_deref())),
        text(&|f| f.account_id.clone()),
        text(&|f| f.principal_arn.clone()),
        text(&|f| f.role_arn.clone()),
        text(&|f| f.source_ip_address.clone()),
        text(&|f| f.access_key_id.clone()),
        lists(found.iter().map(|f| &f.event_ids)),
        lists(found.iter().map(|f| &f.attack)),
        text(&|f| Some(Value::Object(f.details.clone()).to_string())),
        every(window.start),
        every(window.end),
        every(detected_at),
    ];
    RecordBatch::try_new(findings::schema(), columns).map_err(render_error)
}

/// An RFC 3339 time as microseconds UTC.
fn micros(text: Option<&str>) -> Option<i64> {
    let time = DateTime::parse_from_rfc3339(text?).ok()?;
    Some(time.with_timezone(&Utc).timestamp_micros())
}

fn lists<'a>(values: impl Iterator<Item = &'a Vec<String>>) -> ArrayRef {
    let mut builder = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
        arrow::datatypes::Field::new("item", arrow::datatypes::DataType::Utf8, true),
    ));
    for items in values {
        for item in items {
            builder.values().append_value(item);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// One Parquet file holding `batch`.
fn parquet_bytes(batch: &RecordBatch) -> Result<Vec<u8>, DetectError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
        .map_err(|e| render_error(e.into()))?;
    writer
        .write(batch)
        .and_then(|()| writer.close().map(|_| ()))
        .map_err(|e| render_error(e.into()))?;
    Ok(bytes)
}

fn render_error(error: arrow::error::ArrowError) -> DetectError {
    DetectError::Query(QueryError::Render(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::detect::findings::Severity;
    use crate::query::detect::window::Chosen;
    use arrow::array::Array;

    fn window() -> Window {
        let start = DateTime::from_timestamp(1_749_340_800, 0).unwrap();
        Window {
            start,
            end: DateTime::from_timestamp(1_749_427_200, 0).unwrap(),
            baseline_start: start,
            baseline_days_asked: 0,
            baseline_days: 0.0,
            baseline_clipped: false,
            chosen: Chosen::Given,
        }
    }

    fn finding(id: &str, rule: &str) -> Finding {
        Finding {
            id: id.to_owned(),
            rule: rule.to_owned(),
            severity: Severity::High,
            title: "t".to_owned(),
            summary: "s".to_owned(),
            event_time: Some("2025-06-08T06:00:00Z".to_owned()),
            last_event_time: None,
            account_id: None,
            principal_arn: None,
            role_arn: None,
            source_ip_address: None,
            access_key_id: Some("ASIAEXAMPLE".to_owned()),
            event_ids: vec!["e1".to_owned(), "e2".to_owned()],
            attack: vec!["T1078".to_owned()],
            details: serde_json::Map::new(),
        }
    }

    #[test]
    fn a_file_keeps_the_rules_not_run_and_replaces_the_others() {
        let at = Utc::now();
        let first = to_batch(&[finding("a", "r1"), finding("b", "r2")], &window(), at).unwrap();
        let bytes = parquet_bytes(&first).unwrap();
        let kept = other_rules("f", bytes, &["r1".to_owned()]).unwrap();
        let rows: usize = kept.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 1);
        let ids = kept[0].column(0).as_string::<i32>();
        assert_eq!(ids.value(0), "b");
        let times = kept[0]
            .column(5)
            .as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(times.value(0), 1_749_362_400_000_000);
        assert!(kept[0].column(6).is_null(0));
    }
}
