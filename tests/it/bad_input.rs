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
        Some(64),
        "an invalid option value is a usage error"
    );
    assert_eq!(
        status(&["ingest", "--lake", lake_arg, "/no/such/folder"]),
        Some(1)
    );
    assert_eq!(status(&["--help"]), Some(0));
}

/// Damages the text of a record.
type Damage = Box<dyn Fn(String) -> Vec<u8>>;

/// `{"Records":[...]}` files damaged in their first record (and an NDJSON export whose first
/// line is cut), each with `n` good records after the damage.
fn first_record_damaged(dir: &Path, n: usize) {
    let good_after = |prefix: &str| -> String {
        good(n, prefix)
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let first = |prefix: &str| {
        record(&format!("{prefix}-first"), "2024-03-01T10:00:00Z", ACCOUNT).to_string()
    };
    let cases: [(&str, Damage); 5] = [
        (
            "nul",
            Box::new(|r: String| r.replace("aws-cli/2", "aws-cli\0/2").into_bytes()),
        ),
        (
            "utf8",
            Box::new(|r: String| {
                let mut bytes = r.replace("aws-cli/2", "aws-cli#/2").into_bytes();
                let at = bytes.iter().position(|b| *b == b'#').unwrap();
                bytes[at] = 0xff;
                bytes
            }),
        ),
        (
            "comma",
            Box::new(|r: String| r.replacen('}', ",}", 1).into_bytes()),
        ),
        (
            "surrogate-key",
            Box::new(|r: String| {
                r.replace("\"userAgent\"", "\"user\\ud800Agent\"")
                    .into_bytes()
            }),
        ),
        (
            "surrogate-id",
            Box::new(|r: String| r.replace("-first\"", "-first\\ud800\"").into_bytes()),
        ),
    ];
    for (name, damage) in cases {
        let mut body = b"{\"Records\":[".to_vec();
        body.extend(damage(first(name)));
        body.push(b',');
        body.extend(good_after(name).into_bytes());
        body.extend(b"]}");
        std::fs::write(dir.join(format!("{name}.json")), body).unwrap();
    }
    let lines: Vec<String> = good(n + 1, "ndjson")
        .iter()
        .map(|r| r.to_string())
        .collect();
    std::fs::write(dir.join("ndjson.json"), &lines.join("\n")[25..]).unwrap();
}

#[test]
fn damage_in_the_first_record_is_reported_and_the_rest_kept() {
    let input = tempfile::tempdir().unwrap();
    first_record_damaged(input.path(), 4);
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[input.path().to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    for name in ["nul", "utf8", "comma", "surrogate-key", "ndjson"] {
        let file = format!("{name}.json:");
        assert!(
            run.stderr
                .lines()
                .any(|l| l.contains(&file) && l.contains("1 record(s) rejected")),
            "{file} is not reported:\n{}",
            run.stderr
        );
    }
    assert_eq!(count(&run, "files_skipped"), 0, "{}", run.summary);
    assert_eq!(count(&run, "files_ingested"), 6);
    // The lone surrogate in eventID reads as a record without an eventID string.
    assert_eq!(count(&run, "records_rejected"), 6);
    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    for name in [
        "nul",
        "utf8",
        "comma",
        "surrogate-key",
        "surrogate-id",
        "ndjson",
    ] {
        let kept = keys.iter().filter(|(id, _)| id.starts_with(name)).count();
        assert_eq!(kept, 4, "{name}: the records after the damage are kept");
    }
    let rejected = std::fs::read_to_string(run.summary["rejected_log"].as_str().unwrap()).unwrap();
    assert_eq!(rejected.lines().count(), 6);
    assert!(
        rejected.contains("\\u0000"),
        "the damaged text is kept: {rejected}"
    );
}

#[test]
fn strict_stops_at_damage_in_the_first_record() {
    let input = tempfile::tempdir().unwrap();
    first_record_damaged(input.path(), 4);
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--strict", "--jobs", "1", input.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 2);
    assert_eq!(run.summary["stopped_early"], true);
    assert_eq!(count(&run, "records_rejected"), 1);
}

#[test]
fn records_under_a_later_key_or_as_one_object_are_read() {
    let input = tempfile::tempdir().unwrap();
    let records = good(3, "later");
    // Written by hand: serde_json would sort "Records" first.
    let document = format!(
        r#"{{"version":"1.0","note":{{"Records":"not these"}},"Records":{}}}"#,
        serde_json::Value::from(records)
    );
    std::fs::write(input.path().join("later.json"), document).unwrap();
    let single = serde_json::json!({"Records": good(1, "single")[0]});
    std::fs::write(input.path().join("single.json"), single.to_string()).unwrap();
    // Not CloudTrail: skipped, as before.
    let digest = json!({"awsAccountId": ACCOUNT, "digestStartTime": "x", "logFiles": []});
    std::fs::write(input.path().join("digest.json"), digest.to_string()).unwrap();
    std::fs::write(
        input.path().join("config.json"),
        r#"{"name":"app","port":8080}"#,
    )
    .unwrap();
    std::fs::write(input.path().join("readme.txt"), "hello\n{\"a\":1}\n").unwrap();
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[input.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&run, "records_written"), 4, "{}", run.summary);
    assert_eq!(count(&run, "files_skipped"), 3, "{}", run.summary);
}
