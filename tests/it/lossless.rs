//! Nothing is lost: every row rebuilds the record AWS wrote, equal as JSON, except the session
//! token, which is replaced by its fingerprint and stored nowhere.

use std::collections::HashSet;
use std::path::Path;

use arrow::array::Array;
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
        !secrets.is_empty() || logs.ends_with("none"),
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
            for column in batch.columns() {
                if let Some(strings) = column.as_any().downcast_ref::<arrow::array::StringArray>() {
                    let value = if strings.is_valid(row) {
                        strings.value(row)
                    } else {
                        ""
                    };
                    assert!(
                        !secrets.iter().any(|s| value.contains(s.as_str())),
                        "a session token reached the lake"
                    );
                }
            }
            rows += 1;
        }
    }
    assert_eq!(rows, count(&run, "records_written"));
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
