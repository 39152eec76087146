//! No secret reaches the lake: session tokens and secret access keys are redacted in rows, in
//! `_rejected/` and in messages, whatever the spelling of the record that holds them. Each case
//! ingests one record and searches every file under the lake for the secret: the bytes of every
//! file (the rejected log, the manifest) and every text value of every Parquet file (their pages
//! are compressed, so their bytes alone prove nothing).

use std::path::Path;

use arrow::array::AsArray;
use arrow::datatypes::DataType;

use crate::util::*;

const ACCOUNT: &str = "111122223333";
/// What a leak would show: the middle of the token, in no fingerprint.
const MARK: &str = "XqSECRETwEaCXVzLWVh";

fn token() -> String {
    format!("IQoJb3JpZ2luX2VjEJr//////////{MARK}c3QtMSJHMEUCIQDexample")
}

/// A successful AssumeRole record with `fields` spliced in (the caller writes
/// `responseElements`, and may override the time).
fn sts_record(id: &str, fields: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventID":"{id}","eventTime":"2024-03-01T10:00:00Z",
        "eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"us-east-1",
        "recipientAccountId":"{ACCOUNT}","requestParameters":{{"roleArn":"arn:aws:iam::{ACCOUNT}:role/R",
        "roleSessionName":"s"}},{fields}}}"#
    )
}

fn credentials(secret_key: &str) -> String {
    format!(
        r#"{{"accessKeyId":"ASIAEXAMPLE","{secret_key}":"{}","expiration":"Mar 1, 2024, 11:00:00 AM"}}"#,
        token()
    )
}

/// Every place under `lake` that holds `needle`: files by their bytes, Parquet files by the
/// text of each value.
fn places_holding(lake: &Path, needle: &str) -> Vec<String> {
    let mut places = Vec::new();
    for entry in walkdir::WalkDir::new(lake)
        .into_iter()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if !entry.file_type().is_file() {
            continue;
        }
        let bytes = std::fs::read(path).unwrap();
        if memchr_find(&bytes, needle.as_bytes()) {
            places.push(path.display().to_string());
        }
    }
    for batch in lake_batches(lake) {
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let texts: Vec<String> = match field.data_type() {
                DataType::Utf8View => column
                    .as_string_view()
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
                DataType::Utf8 => column
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
                _ => continue,
            };
            if texts.iter().any(|text| text.contains(needle)) {
                places.push(format!("column {}", field.name()));
            }
        }
    }
    places
}

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Ingests `records` (JSON texts, written as they are) and checks that the secret is nowhere in
/// the lake nor on stderr, while the record itself is (so the search would have found it).
fn assert_secret_kept_out(records: &[String], written: u64, rejected: u64) {
    let input = tempfile::tempdir().unwrap();
    let body = format!("{{\"Records\":[{}]}}", records.join(","));
    std::fs::write(input.path().join("trail.json"), body).unwrap();
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[input.path().to_str().unwrap()]);
    assert_eq!(count(&run, "records_written"), written, "{}", run.summary);
    assert_eq!(count(&run, "records_rejected"), rejected, "{}", run.stderr);
    assert_eq!(run.code, if rejected > 0 { 2 } else { 0 }, "{}", run.stderr);
    assert!(
        !places_holding(lake.path(), "case-").is_empty(),
        "the search finds the record's own id"
    );
    let leaks = places_holding(lake.path(), MARK);
    assert!(leaks.is_empty(), "the secret is in {leaks:?}");
    assert!(
        !run.stderr.contains(MARK),
        "the secret is on stderr: {}",
        run.stderr
    );
}

#[test]
fn a_rejected_sts_record_is_kept_without_its_token() {
    let record = sts_record(
        "case-rejected",
        &format!(
            r#""responseElements":{{"credentials":{}}}"#,
            credentials("sessionToken")
        ),
    )
    .replace("2024-03-01T10:00:00Z", "2024-03-01T10:00:00+0000");
    assert_secret_kept_out(&[record], 0, 1);
}

#[test]
fn a_lone_surrogate_in_the_response_does_not_shield_the_token() {
    let fields = format!(
        r#""responseElements":{{"note":"\ud800","credentials":{}}}"#,
        credentials("sessionToken")
    );
    assert_secret_kept_out(&[sts_record("case-surrogate", &fields)], 1, 0);
}

#[test]
fn a_huge_number_in_the_response_does_not_shield_the_token() {
    let fields = format!(
        r#""responseElements":{{"n":1e400,"credentials":{}}}"#,
        credentials("sessionToken")
    );
    assert_secret_kept_out(&[sts_record("case-number", &fields)], 1, 0);
}

#[test]
fn an_escaped_key_does_not_shield_the_token() {
    let fields = format!(
        r#""responseElements":{{"credentials":{}}}"#,
        credentials("session\\u0054oken")
    );
    assert_secret_kept_out(&[sts_record("case-escaped", &fields)], 1, 0);
}

#[test]
fn a_response_written_as_a_string_does_not_shield_the_token() {
    let response = format!(r#"{{"credentials":{}}}"#, credentials("sessionToken"));
    let fields = format!(
        r#""responseElements":{}"#,
        serde_json::Value::from(response)
    );
    assert_secret_kept_out(&[sts_record("case-string", &fields)], 1, 0);
}

#[test]
fn a_secret_access_key_is_redacted() {
    let fields = format!(
        r#""responseElements":{{"credentials":{}}}"#,
        credentials("secretAccessKey")
    );
    assert_secret_kept_out(&[sts_record("case-secret-key", &fields)], 1, 0);
}

#[test]
fn a_damaged_record_is_kept_without_its_token() {
    let fields = format!(
        "\"note\":\"\0\",\"responseElements\":{{\"credentials\":{}}}",
        credentials("sessionToken")
    );
    assert_secret_kept_out(&[sts_record("case-damaged", &fields)], 0, 1);
}

#[test]
fn the_earlier_copy_of_a_duplicated_response_is_redacted_too() {
    let fields = format!(
        r#""responseElements":{{"credentials":{}}},"responseElements":null"#,
        credentials("sessionToken")
    );
    assert_secret_kept_out(&[sts_record("case-duplicate", &fields)], 1, 0);
}

#[test]
fn a_rejection_message_does_not_quote_the_token() {
    let record = sts_record("case-message", r#""responseElements":null"#).replace(
        r#""2024-03-01T10:00:00Z""#,
        &format!(r#"{{"sessionToken":"{}"}}"#, token()),
    );
    assert_secret_kept_out(&[record], 0, 1);
}
