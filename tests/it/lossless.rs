//! Nothing is lost: every row rebuilds the record AWS wrote, equal as JSON, except the session
//! token, which is replaced by its fingerprint and stored nowhere: not in any text of the event
//! files, the derived tables or `_rejected/`.

use std::collections::HashSet;
use std::path::Path;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value;
use sts_audit::decode::record::token_fingerprint;
use sts_audit::rebuild::rebuild_record;

use crate::util::*;

/// The record as the lake should give it back: the token replaced by its fingerprint.
fn as_stored(mut record: Value) -> (Value, Option<String>) {
    let token = record
        .pointer_mut("/responseElements/credentials/sessionToken")
        .filter(|t| t.is_string());
    let mut secret = None;
    if let Some(token) = token {
        let text = token.as_str().unwrap_or_default().to_owned();
        *token = Value::String(token_fingerprint(&text));
        secret = Some(text);
    }
    (record, secret)
}

/// Whether a column holds text, at any depth (a list of strings, a struct with a string field):
/// whatever Arrow type the writer chose for it (plain, large or view).
fn holds_text(data_type: &DataType) -> bool {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::List(field)
        | DataType::LargeList(field)
        | DataType::ListView(field)
        | DataType::LargeListView(field)
        | DataType::FixedSizeList(field, _)
        | DataType::Map(field, _) => holds_text(field.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| holds_text(f.data_type())),
        DataType::Dictionary(_, values) => holds_text(values),
        _ => false,
    }
}

/// Checks every text column of `batch` for the secrets; returns the names of those checked.
fn assert_no_secret_in(batch: &RecordBatch, secrets: &[String], file: &Path) -> Vec<String> {
    let mut checked = Vec::new();
    let options = FormatOptions::default();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !holds_text(field.data_type()) {
            continue;
        }
        let formatter = ArrayFormatter::try_new(column.as_ref(), &options).unwrap();
        for row in (0..column.len()).filter(|&row| column.is_valid(row)) {
            let value = formatter.value(row).to_string();
            assert!(
                !secrets.iter().any(|s| value.contains(s.as_str())),
                "a session token reached column {} of {}",
                field.name(),
                file.display()
            );
        }
        checked.push(field.name().clone());
    }
    checked
}

/// Checks every Parquet file under `dir`; returns how many text columns were checked in all.
fn assert_no_secret_under(dir: &Path, secrets: &[String]) -> usize {
    let files = parquet_files_under(dir);
    assert!(!files.is_empty(), "no Parquet file under {}", dir.display());
    let mut checked = 0;
    for file in &files {
        for batch in file_batches(file) {
            checked += assert_no_secret_in(&batch, secrets, file).len();
        }
    }
    assert!(
        checked > 0,
        "no text column to check under {}",
        dir.display()
    );
    checked
}

/// Checks the bytes of every file of `<lake>/_rejected/`; returns how many there are.
fn assert_no_secret_rejected(lake: &Path, secrets: &[String]) -> usize {
    let mut files = 0;
    for entry in walkdir::WalkDir::new(lake.join("_rejected"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
    {
        let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap()).into_owned();
        assert!(
            !secrets.iter().any(|s| text.contains(s.as_str())),
            "a session token reached {}",
            entry.path().display()
        );
        files += 1;
    }
    files
}

fn assert_round_trip(logs: &Path) {
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    let mut originals = HashSet::new();
    let mut secrets = Vec::new();
    for record in records_in(logs) {
        let (stored, secret) = as_stored(record);
        originals.insert(stored.to_string());
        secrets.extend(secret.filter(|s| s.len() > 8));
    }
    assert!(
        !secrets.is_empty(),
        "the corpus has session tokens to protect"
    );
    let mut rows = 0;
    for batch in lake_batches(lake.path()) {
        for row in 0..batch.num_rows() {
            let rebuilt = rebuild_record(&batch, row).unwrap();
            assert!(
                originals.contains(&rebuilt.to_string()),
                "row {row} of {:?} does not rebuild its record:\n{rebuilt}",
                text(&batch, "source_file", row)
            );
            rows += 1;
        }
    }
    assert_eq!(rows, count(&run, "records_written"));

    // Every text column of every event file: the lake stores text as string views, which a
    // check of plain strings alone would pass over without looking.
    let events = assert_no_secret_under(&lake.path().join("events"), &secrets);
    assert!(events >= 50, "only {events} text columns checked in events");
    derive(lake.path());
    assert_no_secret_under(&lake.path().join("derived"), &secrets);
    let rejected = assert_no_secret_rejected(lake.path(), &secrets);
    if count(&run, "records_rejected") > 0 {
        assert!(rejected > 0, "rejected records but no file in _rejected/");
    }
}

#[test]
fn real_logs_rebuild_exactly() {
    let Some(shared) = shared() else { return };
    assert_round_trip(&shared.join("real-logs"));
}

#[test]
fn sample_logs_rebuild_exactly() {
    assert_round_trip(&repo().join("sample-logs"));
}

#[test]
fn every_text_kind_is_checked() {
    for data_type in [DataType::Utf8, DataType::LargeUtf8, DataType::Utf8View] {
        assert!(holds_text(&data_type), "{data_type}");
        let list = DataType::List(std::sync::Arc::new(arrow::datatypes::Field::new(
            "item", data_type, true,
        )));
        assert!(holds_text(&list), "{list}");
    }
    assert!(!holds_text(&DataType::Int64));
}
