//! Bad input is reported with its path and reason, counted, and the run goes on.

use std::path::Path;

use serde_json::json;

use crate::util::*;

const ACCOUNT: &str = "111122223333";

fn good(n: usize, prefix: &str) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| record(&format!("{prefix}-{i}"), "2024-03-01T10:00:00Z", ACCOUNT))
        .collect()
}

/// A folder with one good file and one of each kind of damage.
fn damaged_corpus(dir: &Path) {
    write_records(&dir.join("good.json.gz"), &good(10, "good"));
    let whole = gzip(
        json!({ "Records": good(3000, "cut") })
            .to_string()
            .as_bytes(),
    );
    std::fs::write(dir.join("truncated.json.gz"), &whole[..whole.len() / 2]).unwrap();
    let text = json!({ "Records": good(5, "inv") }).to_string();
    std::fs::write(
        dir.join("invalid.json"),
        format!("{},{{\"eventID\":", &text[..text.len() - 2]),
    )
    .unwrap();
    let mut odd = good(2, "odd");
    odd.push(json!({"eventID": "no-time", "eventName": "X"}));
    odd.push(json!({"eventTime": "2024-03-01T10:00:00Z", "eventName": "no id"}));
    odd.push(json!({"eventTime": 1709287200, "eventID": "numeric-time"}));
    odd.push(json!({"eventTime": "2024-03-01T10:00:00Z", "eventID": "wrong-types", "readOnly": "yes",
                    "userIdentity": "not an object", "awsRegion": 7, "recipientAccountId": ACCOUNT}));
    let deep = (0..200).fold(json!(1), |inner, _| json!([inner]));
    odd.push(json!({"eventTime": "2024-03-01T10:00:00Z", "eventID": "deep", "requestParameters": {"a": deep}}));
    odd.push(json!({"eventTime": "2024-03-01T10:00:00Z", "eventID": "huge", "requestParameters": {"a": "x".repeat(300_000)}}));
    write_records(&dir.join("odd-records.json.gz"), &odd);
    std::fs::write(dir.join("notes.txt"), "not a log").unwrap();
    std::fs::write(dir.join("empty.json"), "").unwrap();
    std::fs::write(
        dir.join("not-gzip.json.gz"),
        [0x1f, 0x8b, 0x08, 0x00, 1, 2, 3],
    )
    .unwrap();
}

#[test]
fn each_kind_of_damage_is_reported_and_the_run_goes_on() {
    let input = tempfile::tempdir().unwrap();
    damaged_corpus(input.path());
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--max-record-size", "256K", input.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 2, "failures give exit code 2");
    let reason_of = |file: &str| -> String {
        run.stderr
            .lines()
            .find(|l| l.contains(file))
            .unwrap_or_else(|| panic!("{file} is not reported:\n{}", run.stderr))
            .to_owned()
    };
    assert!(reason_of("truncated.json.gz").contains("partial"));
    assert!(reason_of("truncated.json.gz").contains("gzip"));
    assert!(reason_of("invalid.json").contains("partial"));
    assert!(reason_of("odd-records.json.gz").contains("5 record(s) rejected"));
    assert!(reason_of("not-gzip.json.gz").contains("gzip"));
    assert_eq!(count(&run, "files_partial"), 2);
    assert_eq!(count(&run, "files_failed"), 1, "not-gzip.json.gz");
    assert_eq!(count(&run, "files_skipped"), 2, "notes.txt and empty.json");
    assert_eq!(count(&run, "records_rejected"), 5);

    let rejected = std::fs::read_to_string(run.summary["rejected_log"].as_str().unwrap()).unwrap();
    for reason in [
        "no eventTime",
        "no eventID",
        "is not a time",
        "deeper than",
        "over the cap",
    ] {
        assert!(
            rejected.contains(reason),
            "{reason} missing from the rejected log"
        );
    }

    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    let ids: Vec<&str> = keys.iter().map(|(id, _)| id.as_str()).collect();
    let with = |prefix: &str| ids.iter().filter(|id| id.starts_with(prefix)).count();
    assert_eq!(with("good-"), 10);
    assert_eq!(with("inv-"), 5, "the records before the damage are kept");
    assert!(
        with("cut-") > 100 && with("cut-") < 3000,
        "a truncated file keeps what came before: {}",
        with("cut-")
    );
    assert_eq!(with("odd-"), 2);
    assert_eq!(
        with("wrong-types"),
        1,
        "odd field types are kept as written, not rejected"
    );
}

#[test]
fn strict_stops_at_the_first_failure() {
    let input = tempfile::tempdir().unwrap();
    damaged_corpus(input.path());
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--strict", "--jobs", "1", input.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert_eq!(run.summary["stopped_early"], true);
    assert!(count(&run, "files_ingested") < 3, "{}", run.summary);
}

#[test]
fn file_size_cap_is_reported() {
    let input = tempfile::tempdir().unwrap();
    write_records(&input.path().join("big.json.gz"), &good(2000, "big"));
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--max-file-size", "64K", input.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("exceeds the cap of 65536 bytes"),
        "{}",
        run.stderr
    );
    assert!(
        count(&run, "records_written") > 0,
        "records within the cap are kept"
    );
}

#[test]
fn bad_arguments_are_usage_errors() {
    let lake = tempfile::tempdir().unwrap();
    let status = |args: &[&str]| bin().args(args).output().unwrap().status.code();
    assert_eq!(status(&["ingest"]), Some(64));
    assert_eq!(status(&["ingest", "--bogus", "x"]), Some(64));
    let lake_arg = lake.path().to_str().unwrap();
    assert_eq!(
        status(&[
            "ingest",
            "--lake",
            lake_arg,
            "--from",
            "yesterday",
            "sample-logs"
        ]),
        Some(1)
    );
    assert_eq!(
        status(&["ingest", "--lake", lake_arg, "/no/such/folder"]),
        Some(1)
    );
    assert_eq!(status(&["--help"]), Some(0));
}
