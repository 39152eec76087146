//! The lake under races, damage and unusual names: overlapping `derive` runs, a derived file
//! deleted, folder names with glob and URL characters, a truncated data file.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::util::*;

fn run(lake: &Path, args: &[&str]) -> Output {
    bin().args(args).arg("--lake").arg(lake).output().unwrap()
}

/// Runs `args` (plus `--lake LAKE`), asserting success; stdout.
fn stdout(lake: &Path, args: &[&str]) -> String {
    let output = run(lake, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Data rows of a CSV report (the header line not counted).
fn report_rows(lake: &Path, name: &str, extra: &[&str]) -> usize {
    let args = [&["report", name, "--format", "csv"][..], extra].concat();
    stdout(lake, &args).lines().count() - 1
}

fn sql_count(lake: &Path, query: &str, extra: &[&str]) -> u64 {
    let args = [&["sql", "--format", "csv", query][..], extra].concat();
    let out = stdout(lake, &args);
    out.lines().nth(1).unwrap().parse().unwrap()
}

fn derive(lake: &Path, extra: &[&str]) -> Value {
    let args = [&["derive", "--format", "json"][..], extra].concat();
    serde_json::from_str(&stdout(lake, &args)).unwrap()
}

fn sample_lake(lake: &Path) {
    let logs = repo().join("sample-logs");
    let run = ingest(lake, &[logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn computed(summary: &Value) -> u64 {
    summary["computed"]
        .as_u64()
        .unwrap_or_else(|| panic!("{summary}"))
}

#[test]
fn overlapping_derive_runs_never_lose_the_derived_tables() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    sample_lake(lake);
    let expected = report_rows(lake, "role-assumptions", &["--no-derived"]);
    assert!(expected > 0, "the sample logs hold role assumptions");
    derive(lake, &[]);
    for round in 0..3 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                bin()
                    .args(["derive", "--force", "--format", "json", "--lake"])
                    .arg(lake)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in runs {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            // The one that finds the lake locked says so and fails; none may succeed wrongly.
            match output.status.code() {
                Some(0) => {}
                Some(1) => assert!(stderr.contains("in use by another"), "{stderr}"),
                other => panic!("round {round}: exit {other:?}: {stderr}"),
            }
        }
        assert_eq!(report_rows(lake, "role-assumptions", &[]), expected);
        let again = derive(lake, &[]);
        assert_eq!(computed(&again), 0, "round {round}: current: {again}");
        assert_eq!(report_rows(lake, "role-assumptions", &[]), expected);
    }
}

#[test]
fn derive_fails_clearly_while_another_run_holds_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    sample_lake(lake);
    // What a running ingest or derive holds.
    let lock = std::fs::File::create(lake.join("_lock")).unwrap();
    lock.try_lock().unwrap();
    let output = run(lake, &["derive"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("in use by another ingest or derive"),
        "{stderr}"
    );
    assert!(!lake.join("derived").exists());
    drop(lock);
    assert!(computed(&derive(lake, &[])) > 0);
}

#[test]
fn a_deleted_derived_file_is_computed_from_events_and_derived_again() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    sample_lake(lake);
    let expected = report_rows(lake, "role-assumptions", &["--no-derived"]);
    let sessions = sql_count(lake, "SELECT count(*) FROM sessions", &["--no-derived"]);
    assert!(expected > 0 && sessions > 0);
    derive(lake, &[]);
    let files: Vec<_> = walkdir::WalkDir::new(lake.join("derived/assumption_copies"))
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .filter(|path| path.is_file())
        .collect();
    assert!(files.len() > 1, "a file per partition: {files:?}");
    std::fs::remove_file(&files[0]).unwrap();

    assert_eq!(report_rows(lake, "role-assumptions", &[]), expected);
    assert_eq!(
        sql_count(lake, "SELECT count(*) FROM sessions", &[]),
        sessions
    );
    let rebuilt = derive(lake, &[]);
    assert_eq!(computed(&rebuilt), 1, "that partition alone: {rebuilt}");
    assert!(files[0].is_file());
    assert_eq!(report_rows(lake, "role-assumptions", &[]), expected);
}

#[test]
fn a_lake_folder_named_with_glob_and_url_characters_works() {
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = plain_dir.path().join("lake");
    sample_lake(&plain);
    let parent = tempfile::tempdir().unwrap();
    let lake = parent.path().join("a[1] ?*#%20 b");
    sample_lake(&lake);

    let events = "SELECT count(*) FROM events";
    let expected = sql_count(&plain, events, &[]);
    assert!(expected > 0);
    assert_eq!(sql_count(&lake, events, &[]), expected);
    let rows = report_rows(&plain, "role-assumptions", &[]);
    assert!(rows > 0);
    assert_eq!(report_rows(&lake, "role-assumptions", &[]), rows);

    let built = derive(&lake, &[]);
    assert!(computed(&built) > 0, "{built}");
    let plan = stdout(
        &lake,
        &["sql", "--format", "csv", "EXPLAIN SELECT * FROM sessions"],
    );
    assert!(
        plan.contains("derived/session_usage_daily/"),
        "derived tables are read: {plan}"
    );
    for table in ["assumptions", "sessions", "caller_sources"] {
        let query = format!("SELECT count(*) FROM {table}");
        assert_eq!(
            sql_count(&lake, &query, &[]),
            sql_count(&plain, &query, &["--no-derived"]),
            "{table}"
        );
    }
    assert_eq!(report_rows(&lake, "role-assumptions", &[]), rows);
    let beside: Vec<_> = std::fs::read_dir(parent.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec![lake.file_name().unwrap().to_owned()]);
}

#[test]
fn check_names_a_truncated_data_file_and_what_it_held() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path();
    sample_lake(lake);
    let healthy = run(lake, &["check", "--format", "json"]);
    assert_eq!(healthy.status.code(), Some(0));
    let healthy: Value = serde_json::from_slice(&healthy.stdout).unwrap();
    let files = lake_files(lake);
    assert_eq!(healthy["files_checked"], files.len() as u64);
    assert_eq!(healthy["damaged"], serde_json::json!([]));

    let victim = files.iter().find(|f| !f.ends_with("-sts.parquet")).unwrap();
    let bytes = std::fs::read(victim).unwrap();
    std::fs::write(victim, &bytes[..bytes.len() / 2]).unwrap();

    let failed = run(lake, &["report", "role-assumptions"]);
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains(&victim.display().to_string()), "{stderr}");

    let checked = run(lake, &["check", "--format", "json"]);
    assert_eq!(checked.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&checked.stdout).unwrap();
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 1, "{report}");
    let file = &damaged[0];
    assert_eq!(file["path"], victim.display().to_string());
    assert_eq!(file["damage"], "footer");
    let partition = victim.parent().unwrap();
    let date = partition.file_name().unwrap().to_string_lossy();
    assert_eq!(format!("date={}", file["date"].as_str().unwrap()), date);
    let account = partition.parent().unwrap().file_name().unwrap();
    assert_eq!(
        format!("account_id={}", file["account_id"].as_str().unwrap()),
        account.to_string_lossy()
    );
    assert_eq!(file["sources_from"], "manifest");
    let sources = file["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{file}");
    assert!(
        report["repair"]
            .as_str()
            .unwrap()
            .contains("_manifest/run-")
    );
    let text = stdout_any(lake, &["check"]);
    assert!(text.contains("to repair"), "{text}");

    // Damage inside the data, the footer intact: found by reading every page.
    let largest = files
        .iter()
        .filter(|f| *f != victim)
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest).unwrap();
    let start = bytes.len() / 4;
    bytes[start..start + 4096].fill(0xff);
    std::fs::write(largest, &bytes).unwrap();
    let checked = run(lake, &["check", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(2), "{stderr}");
    let report: Value = serde_json::from_slice(&checked.stdout).unwrap();
    let damaged = report["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 2, "{report}");
    let inner = damaged
        .iter()
        .find(|d| d["path"] == largest.display().to_string())
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(inner["damage"], "data", "{inner}");
    assert!(!inner["sources"].as_array().unwrap().is_empty(), "{inner}");
}

fn stdout_any(lake: &Path, args: &[&str]) -> String {
    String::from_utf8(run(lake, args).stdout).unwrap()
}
