//! What later runs say and what a lake keeps of its sources: records rejected by an earlier
//! run stay visible in the summary of every run until their file changes, and the paths in the
//! manifest, `source_file`, `_rejected/` and the summary are the ones given on the command line
//! (relative stays relative), so a lake copied elsewhere carries no path of the first machine.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// A file of two good records and one without an eventID (rejected).
fn write_damaged(path: &Path, good: &[&str]) {
    let mut records: Vec<Value> = good
        .iter()
        .map(|id| record(id, "2024-03-01T10:00:00Z", "111111111111"))
        .collect();
    let mut bad = record("x", "2024-03-01T10:00:01Z", "111111111111");
    bad.as_object_mut().unwrap().remove("eventID");
    records.push(bad);
    write_records(path, &records);
}

#[test]
fn later_runs_still_report_records_rejected_earlier() {
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("trail.json.gz");
    write_damaged(&file, &["a", "b"]);
    let lake = tempfile::tempdir().unwrap();
    let source = logs.path().to_str().unwrap();

    let first = ingest(lake.path(), &[source]);
    assert_eq!(count(&first, "records_rejected"), 1, "{}", first.stderr);
    assert_eq!(first.code, 2);

    let second = ingest(lake.path(), &[source]);
    assert_eq!(count(&second, "files_unchanged"), 1);
    assert_eq!(count(&second, "records_rejected"), 0);
    assert_eq!(count(&second, "records_rejected_earlier"), 1);
    assert_eq!(count(&second, "files_with_earlier_rejections"), 1);
    assert_eq!(second.code, 0, "nothing failed in this run");
    let lake_arg = lake.path().to_str().unwrap();
    let (code, text, stderr) = run(&["ingest", "--lake", lake_arg, source]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("1 records rejected by earlier runs in 1 unchanged files"),
        "{text}"
    );

    // Fixed at the source: the file changes, is read again, and nothing is rejected any more.
    write_records(
        &file,
        &[record("c", "2024-03-01T11:00:00Z", "111111111111")],
    );
    let third = ingest(lake.path(), &[source]);
    assert_eq!(count(&third, "records_rejected"), 0, "{}", third.stderr);
    let fourth = ingest(lake.path(), &[source]);
    assert_eq!(count(&fourth, "files_unchanged"), 1);
    assert_eq!(count(&fourth, "records_rejected_earlier"), 0);
}

/// `sts-audit ingest --format json --quiet --lake lake logs`, run in `dir`.
fn ingest_in(dir: &Path) -> Value {
    let output = bin()
        .current_dir(dir)
        .args([
            "ingest", "--format", "json", "--quiet", "--lake", "lake", "./logs",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn paths_are_stored_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let day = "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01";
    let delivered = dir
        .path()
        .join(day)
        .join("111111111111_CloudTrail_a.json.gz");
    write_records(
        &delivered,
        &[record("d1", "2024-03-01T09:00:00Z", "111111111111")],
    );
    write_damaged(&dir.path().join("logs/loose.json.gz"), &["l1"]);

    let summary = ingest_in(dir.path());
    assert_eq!(summary["records_written"], 2, "{summary}");
    let lake = dir.path().join("lake");
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(lake.join("_manifest")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let entry: Value = serde_json::from_str(line).unwrap();
            sources.push(entry["source"].as_str().unwrap().to_owned());
        }
    }
    sources.sort();
    let expected = [
        "logs/AWSLogs/111111111111/CloudTrail/us-east-1/2024/03/01/111111111111_CloudTrail_a.json.gz",
        "logs/loose.json.gz",
    ];
    assert_eq!(sources, expected, "the manifest");
    let mut stored: Vec<String> = lake_batches(&lake)
        .iter()
        .flat_map(|batch| (0..batch.num_rows()).map(|row| text(batch, "source_file", row).unwrap()))
        .collect();
    stored.sort();
    assert_eq!(stored, expected, "source_file");
    let rejected = std::fs::read_dir(lake.join("_rejected"))
        .unwrap()
        .next()
        .unwrap();
    let line: Value = serde_json::from_str(
        std::fs::read_to_string(rejected.unwrap().path())
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(line["source"], "logs/loose.json.gz", "_rejected/");
    assert_eq!(
        summary["failures"][0]["source"], "logs/loose.json.gz",
        "the summary"
    );

    // The same command again finds every file unchanged, and still names the rejection.
    let again = ingest_in(dir.path());
    assert_eq!(again["files_unchanged"], 2, "{again}");
    assert_eq!(again["records_rejected_earlier"], 1, "{again}");
}
