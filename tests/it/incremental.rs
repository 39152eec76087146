//! Re-runs read only what is new, late files are picked up, and nothing is ingested twice.

use crate::util::*;

#[test]
fn a_second_run_changes_nothing_and_late_files_are_picked_up() {
    let input = tempfile::tempdir().unwrap();
    let day = |d: &str| {
        input.path().join(format!(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/{d}"
        ))
    };
    let batch = |prefix: &str, time: &str| -> Vec<serde_json::Value> {
        (0..50)
            .map(|i| record(&format!("{prefix}{i}"), time, "111122223333"))
            .collect()
    };
    write_records(
        &day("01").join("a.json.gz"),
        &batch("a", "2024-03-01T10:00:00Z"),
    );
    write_records(
        &day("02").join("b.json.gz"),
        &batch("b", "2024-03-02T10:00:00Z"),
    );
    let lake = tempfile::tempdir().unwrap();
    let source = input.path().to_str().unwrap();

    let first = ingest(lake.path(), &[source]);
    assert_eq!((first.code, count(&first, "records_written")), (0, 100));

    let second = ingest(lake.path(), &[source]);
    assert_eq!(count(&second, "files_unchanged"), 2);
    assert_eq!(count(&second, "records_read"), 0, "nothing is read again");
    assert_eq!(lake_keys(lake.path()).len(), 100);

    // A file delivered late into an old day folder, repeating half of an earlier file.
    let mut late = batch("late", "2024-03-01T11:00:00Z");
    late.extend(batch("a", "2024-03-01T10:00:00Z").into_iter().take(25));
    write_records(&day("01").join("late.json.gz"), &late);
    let third = ingest(lake.path(), &[source]);
    assert_eq!(count(&third, "files_unchanged"), 2);
    assert_eq!(count(&third, "records_written"), 50);
    assert_eq!(
        count(&third, "duplicates_dropped"),
        25,
        "already in the lake from the first run"
    );
    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    assert_eq!(keys.len(), 150);

    // A changed file is read again; its old rows are not duplicated.
    write_records(
        &day("02").join("b.json.gz"),
        &batch("b", "2024-03-02T10:00:00Z")[..40],
    );
    let fourth = ingest(lake.path(), &[source]);
    assert_eq!(count(&fourth, "records_read"), 40);
    assert_eq!(count(&fourth, "records_written"), 0);
    assert_eq!(lake_keys(lake.path()).len(), 150);
}

#[test]
fn scope_prunes_folders_and_filters_records() {
    let input = tempfile::tempdir().unwrap();
    let folder = |account: &str, d: &str| {
        input.path().join(format!(
            "AWSLogs/{account}/CloudTrail/us-east-1/2024/03/{d}"
        ))
    };
    for (account, d) in [
        ("111122223333", "01"),
        ("111122223333", "05"),
        ("111122223333", "09"),
        ("444455556666", "05"),
    ] {
        let records: Vec<_> = (0..10)
            .map(|i| {
                record(
                    &format!("{account}-{d}-{i}"),
                    &format!("2024-03-{d}T0{}:00:00Z", i % 10),
                    account,
                )
            })
            .collect();
        write_records(&folder(account, d).join("f.json.gz"), &records);
    }
    let lake = tempfile::tempdir().unwrap();
    let source = input.path().to_str().unwrap();
    let run = ingest(
        lake.path(),
        &[
            "--from",
            "2024-03-05T03:00:00Z",
            "--to",
            "2024-03-05",
            "--account",
            "111122223333",
            source,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        count(&run, "files_seen"),
        1,
        "other days and accounts are pruned by folder"
    );
    assert_eq!(
        count(&run, "records_written"),
        7,
        "03:00 to the end of the day"
    );
    assert_eq!(count(&run, "records_outside_scope"), 3);
    // A partly filtered file is not marked done: a wider run still gets the rest.
    let wider = ingest(lake.path(), &[source]);
    assert_eq!(count(&wider, "records_written"), 40 - 7);
    assert_unique(&lake_keys(lake.path()));
}

#[test]
fn overlapping_sources_read_each_file_once() {
    let input = tempfile::tempdir().unwrap();
    let day = input
        .path()
        .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01");
    let other_region = input
        .path()
        .join("AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01");
    let records = |prefix: &str| -> Vec<serde_json::Value> {
        (0..10)
            .map(|i| {
                record(
                    &format!("{prefix}{i}"),
                    "2024-03-01T10:00:00Z",
                    "111122223333",
                )
            })
            .collect()
    };
    write_records(&day.join("a.json.gz"), &records("a"));
    write_records(&other_region.join("b.json.gz"), &records("b"));
    write_records(&input.path().join("exports/c.json.gz"), &records("c"));
    let lake = tempfile::tempdir().unwrap();
    let root = input.path().to_str().unwrap();
    let file = day.join("a.json.gz");
    // The whole folder, one of its day folders, and a file in that day folder.
    let run = ingest(
        lake.path(),
        &[root, day.to_str().unwrap(), file.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&run, "files_seen"), 3);
    assert_eq!(count(&run, "records_read"), 30, "each file read once");
    assert_eq!(count(&run, "duplicates_dropped"), 0);
    let again = ingest(lake.path(), &[root, file.to_str().unwrap()]);
    assert_eq!(count(&again, "files_unchanged"), 3);
    assert_eq!(count(&again, "records_read"), 0);
}
