//! Inputs that used to make ingest unbounded or wrong: one large file among small ones, a file
//! of thousands of dates, one record read from two places, a symbolic link out of the source.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

const ACCOUNT: &str = "111122223333";

/// `AWSLogs/<account>/CloudTrail/us-east-1/2024/03/01/<account>_CloudTrail_..._<minute>_<n>.json.gz`
fn log_path(root: &Path, minute: u32, n: usize) -> PathBuf {
    let (hour, minute) = (minute / 60, minute % 60);
    root.join(format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2024/03/01/{ACCOUNT}_CloudTrail_us-east-1_20240301T{hour:02}{minute:02}Z_{n:04}.json.gz"
    ))
}

/// `count` records of one account from `minute` to three minutes later, newest first: a log
/// file's records are not in time order, and neighbouring files overlap in time.
fn minute_of_records(minute: u32, count: usize, padding: usize, id: &str) -> Vec<Value> {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    (0..count)
        .map(|i| {
            let second = i64::from(minute) * 60 + (180 * (count - 1 - i) / count) as i64;
            let time = start + chrono::TimeDelta::try_seconds(second).unwrap();
            let time = time.format("%Y-%m-%dT%H:%M:%SZ").to_string();
            let mut record = record(&format!("{id}-{minute}-{i}"), &time, ACCOUNT);
            record["requestParameters"] = serde_json::json!({"filter": "f".repeat(padding)});
            record
        })
        .collect()
}

/// Small log files for every minute from 00:00 to 10:00, and, when `large`, one file of about
/// 6 MB at 00:30 (CloudTrail delivers files this large for busy accounts).
fn small_files_and_maybe_a_large_one(root: &Path, large: bool) {
    for minute in 0..600 {
        let records = minute_of_records(minute, 20, 100, "small");
        write_records(&log_path(root, minute, 0), &records);
    }
    if large {
        let records = minute_of_records(30, 6000, 600, "large");
        write_records(&log_path(root, 30, 1), &records);
    }
}

#[test]
fn one_large_file_does_not_change_how_the_rest_is_written() {
    // 64M over 16 jobs: 4 MB per job, less than the large file decompressed.
    let args = ["--jobs", "16", "--buffer-size", "64M"];
    let mut files = Vec::new();
    for large in [false, true] {
        let corpus = tempfile::tempdir().unwrap();
        small_files_and_maybe_a_large_one(corpus.path(), large);
        let lake = tempfile::tempdir().unwrap();
        let mut run_args = args.to_vec();
        run_args.push(corpus.path().to_str().unwrap());
        let run = ingest(lake.path(), &run_args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let records = 600 * 20 + if large { 6000 } else { 0 };
        assert_eq!(count(&run, "records_written"), records);
        files.push(count(&run, "parquet_files_written"));
    }
    let (without, with) = (files[0], files[1]);
    assert!(without > 0);
    assert!(
        with <= without + without / 2 + 2,
        "{with} Parquet files with the large file, {without} without"
    );
}

#[test]
fn a_file_of_twenty_thousand_dates_is_written_once_per_date() {
    let corpus = tempfile::tempdir().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let dates = 20_000;
    let records: Vec<Value> = (0..dates)
        .map(|day| {
            let date = start + chrono::Days::new(day);
            let time = format!("{}T12:00:00Z", date.format("%Y-%m-%d"));
            record(&format!("e{day}"), &time, ACCOUNT)
        })
        .collect();
    write_records(&corpus.path().join("dates.json.gz"), &records);
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--jobs", "2", corpus.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&run, "records_written"), dates);
    // One file per date: each partition is written once, when it is the least recently used.
    assert_eq!(count(&run, "parquet_files_written"), dates);
    assert_eq!(lake_partitions(lake.path()).len(), dates as usize);
    assert_eq!(lake_files(lake.path()).len(), dates as usize);
}

#[test]
fn a_record_without_a_recipient_is_stored_once_across_runs() {
    let mut records: Vec<Value> = (0..10)
        .map(|i| record(&format!("r{i}"), "2024-03-01T10:00:00Z", ACCOUNT))
        .collect();
    records[3]["recipientAccountId"] = Value::Null;
    records[4]["recipientAccountId"] = "not-an-account".into();
    records[5]
        .as_object_mut()
        .unwrap()
        .remove("recipientAccountId");
    let loose = tempfile::tempdir().unwrap();
    write_records(&loose.path().join("export.json.gz"), &records);
    let layout = tempfile::tempdir().unwrap();
    write_records(&log_path(layout.path(), 600, 0), &records);

    let lake = tempfile::tempdir().unwrap();
    let first = ingest(lake.path(), &[loose.path().to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(count(&first, "records_written"), 10);
    let second = ingest(lake.path(), &[layout.path().to_str().unwrap()]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(count(&second, "records_written"), 0);
    assert_eq!(count(&second, "duplicates_dropped"), 10);
    let keys = lake_keys(lake.path());
    assert_eq!(keys.len(), 10);
    assert_unique(&keys);
    let unknown = lake_partitions(lake.path())
        .iter()
        .filter(|dir| dir.to_string_lossy().contains("account_id=unknown/"))
        .count();
    assert_eq!(
        unknown, 1,
        "records without a valid recipient under `unknown`"
    );
}

#[test]
#[cfg(unix)]
fn symbolic_links_do_not_lead_out_of_the_source() {
    let outside = tempfile::tempdir().unwrap();
    let outside_records: Vec<Value> = (0..7)
        .map(|i| record(&format!("out{i}"), "2024-03-01T10:00:00Z", ACCOUNT))
        .collect();
    write_records(
        &outside.path().join("secret/other.json.gz"),
        &outside_records,
    );
    let source = tempfile::tempdir().unwrap();
    let inside: Vec<Value> = (0..5)
        .map(|i| record(&format!("in{i}"), "2024-03-01T10:00:00Z", ACCOUNT))
        .collect();
    write_records(&source.path().join("logs/a.json.gz"), &inside);
    let link = source.path().join("escape");
    std::os::unix::fs::symlink(outside.path().join("secret"), &link).unwrap();
    // A link inside the source to a folder inside it is followed (dedup drops the copies).
    std::os::unix::fs::symlink(source.path().join("logs"), source.path().join("again")).unwrap();

    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[source.path().to_str().unwrap()]);
    assert_eq!(
        run.code, 2,
        "a link not followed is reported: {}",
        run.stderr
    );
    assert_eq!(count(&run, "records_read"), 10, "{}", run.summary);
    assert_eq!(count(&run, "records_written"), 5);
    assert!(
        run.stderr.contains(&link.display().to_string()) && run.stderr.contains("not followed"),
        "{}",
        run.stderr
    );

    // Asked to, ingest follows it.
    let followed = tempfile::tempdir().unwrap();
    let run = ingest(
        followed.path(),
        &["--follow-symlinks", source.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(count(&run, "records_written"), 12);
}
