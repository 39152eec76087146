//! Derived tables: built by `derive`, used only while they match the lake, and giving exactly
//! the answers the views give when computed from `events`.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// What every derived table and every report says, as CSV, one string per query.
const QUERIES: [&str; 5] = [
    "SELECT * FROM assumptions ORDER BY call_id, event_time",
    "SELECT * FROM session_usage ORDER BY access_key_id",
    "SELECT * FROM sessions ORDER BY access_key_id",
    "SELECT * FROM caller_sources ORDER BY kind, identity, source_ip_address, user_agent",
    "SELECT count(*) AS n, sum(calls) AS calls, max(chain_depth) AS depth FROM sessions",
];

const REPORTS: [&str; 6] = [
    "cross-account",
    "denied-assumptions",
    "role-assumptions",
    "role-chains",
    "session-durations",
    "source-ips",
];

/// Runs `args` (plus `--lake LAKE`), asserting success; stdout.
fn stdout(lake: &Path, args: &[&str]) -> String {
    let output = bin().args(args).arg("--lake").arg(lake).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Every query and report, as CSV, with `extra` flags (`--no-derived`, a scope).
fn answers(lake: &Path, extra: &[&str]) -> Vec<String> {
    let sql = QUERIES.iter().map(|query| {
        let mut args = vec!["sql", "--format", "csv", query];
        args.extend_from_slice(extra);
        stdout(lake, &args)
    });
    let reports = REPORTS.iter().map(|name| {
        let mut args = vec!["report", name, "--format", "csv"];
        args.extend_from_slice(extra);
        stdout(lake, &args)
    });
    sql.chain(reports).collect()
}

fn derive(lake: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["derive", "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&stdout(lake, &args)).unwrap()
}

/// True when a query on `sessions` reads its derived Parquet files.
fn reads_derived(lake: &Path, extra: &[&str]) -> bool {
    let mut args = vec![
        "sql",
        "--format",
        "csv",
        "EXPLAIN SELECT role_arn FROM sessions",
    ];
    args.extend_from_slice(extra);
    let plan = stdout(lake, &args);
    plan.contains("/derived/") && plan.contains("/sessions/")
}

fn table_rows(summary: &Value, name: &str) -> u64 {
    summary["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["rows"].as_u64())
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}

fn count(lake: &Path, table: &str) -> u64 {
    let query = format!("SELECT count(*) AS n FROM {table}");
    let out = stdout(lake, &["sql", "--format", "csv", "--no-derived", &query]);
    out.lines().nth(1).unwrap().parse().unwrap()
}

fn check_derived_equal_views(lake: &Path) {
    let from_events = answers(lake, &["--no-derived"]);
    assert!(!reads_derived(lake, &[]));
    let summary = derive(lake, &[]);
    assert_eq!(summary["built"], true, "{summary}");
    for table in ["assumptions", "session_usage", "sessions", "caller_sources"] {
        assert_eq!(table_rows(&summary, table), count(lake, table), "{table}");
    }
    assert!(
        reads_derived(lake, &[]),
        "derived tables are used once built"
    );
    let derived = answers(lake, &[]);
    for (query, rows) in QUERIES.iter().zip(&derived) {
        assert!(rows.lines().count() > 1, "{query} finds something");
    }
    assert_same_answers(&from_events, &derived, "whole lake");

    // A time range: `assumptions` comes from its derived table, narrowed; the rest is computed
    // from the narrowed events. Split at the median STS call, so both halves hold some.
    let median = stdout(
        lake,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT event_time FROM (SELECT event_time, \
             row_number() OVER (ORDER BY event_time) AS n, count(*) OVER () AS total \
             FROM assumptions) WHERE n = total / 2 + 1",
        ],
    );
    let median = median.lines().nth(1).unwrap().to_owned();
    for bound in ["--from", "--to"] {
        let scope = [bound, median.as_str()];
        let explain = [
            "sql",
            "--format",
            "csv",
            "EXPLAIN SELECT * FROM assumptions",
        ];
        let plan = stdout(lake, &[&explain[..], &scope[..]].concat());
        assert!(plan.contains("/derived/"), "{bound}: {plan}");
        let computed = answers(lake, &[&scope[..], &["--no-derived"]].concat());
        let derived = answers(lake, &scope);
        assert_same_answers(&computed, &derived, &format!("{bound} {median}"));
    }
}

fn assert_same_answers(computed: &[String], derived: &[String], scope: &str) {
    for ((query, a), b) in QUERIES
        .iter()
        .chain(REPORTS.iter())
        .zip(computed)
        .zip(derived)
    {
        assert_eq!(
            a, b,
            "{query} ({scope}): derived tables differ from the views"
        );
    }
}

#[test]
fn derived_tables_answer_like_the_views_on_sample_logs() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    check_derived_equal_views(lake.path());
    // Current tables are not built again.
    let again = derive(lake.path(), &[]);
    assert_eq!(again["built"], false, "{again}");
    // `sessions` aggregates the events of a scope: computed from the narrowed events.
    assert!(!reads_derived(lake.path(), &["--from", "2024-03-01"]));
    assert!(!reads_derived(lake.path(), &["--account", "111111111111"]));
    assert!(!reads_derived(lake.path(), &["--no-derived"]));
}

#[test]
fn derived_tables_answer_like_the_views_on_real_logs() {
    let Some(shared) = shared() else { return };
    let lake = tempfile::tempdir().unwrap();
    let logs = shared.join("real-logs");
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    check_derived_equal_views(lake.path());
}

#[test]
fn derived_tables_are_not_used_once_an_ingest_changed_the_lake() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs/AWSLogs/o-samples01");
    let first = logs.join("111111111111");
    assert_eq!(ingest(lake.path(), &[first.to_str().unwrap()]).code, 0);
    let built = derive(lake.path(), &[]);
    let before = table_rows(&built, "sessions");
    assert!(reads_derived(lake.path(), &[]));

    // More files: the tables describe the old lake, so the views are computed again.
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    assert!(
        !reads_derived(lake.path(), &[]),
        "stale tables must not be read"
    );
    let query = [
        "sql",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM sessions",
    ];
    let now = stdout(lake.path(), &query);
    assert_eq!(now, format!("n\n{}\n", count(lake.path(), "sessions")));
    assert_ne!(now, format!("n\n{before}\n"), "the new files add sessions");

    // Built again: used again, and the previous build is kept for queries still reading it.
    let rebuilt = derive(lake.path(), &[]);
    assert_eq!(rebuilt["built"], true);
    assert!(reads_derived(lake.path(), &[]));
    assert_eq!(stdout(lake.path(), &query), now);
    let builds = std::fs::read_dir(lake.path().join("derived"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count();
    assert_eq!(builds, 2, "this build and the previous one");
}

#[test]
fn a_broken_build_is_invisible_and_cleaned_up() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    let derived = lake.path().join("derived");
    // What a build killed half-way leaves: a folder that CURRENT.json does not name.
    let partial = derived.join("0123456789abcdef-20240101T000000000000Z/sessions");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("half.parquet"), b"PAR1 not really").unwrap();
    let expected = count(lake.path(), "sessions");
    let query = [
        "sql",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM sessions",
    ];
    assert_eq!(stdout(lake.path(), &query), format!("n\n{expected}\n"));
    // An unreadable CURRENT.json only means there are no current tables.
    std::fs::write(derived.join("CURRENT.json"), b"{ torn").unwrap();
    assert_eq!(stdout(lake.path(), &query), format!("n\n{expected}\n"));

    derive(lake.path(), &[]);
    assert!(!partial.exists(), "the partial build is removed");
    assert_eq!(stdout(lake.path(), &query), format!("n\n{expected}\n"));
}

#[test]
fn ingest_derive_builds_the_tables_in_the_same_run() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let run = ingest(lake.path(), &["--derive", logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let derived = &run.summary["derived"];
    assert_eq!(derived["built"], true, "{}", run.summary);
    assert_eq!(
        table_rows(derived, "sessions"),
        count(lake.path(), "sessions")
    );
    assert!(reads_derived(lake.path(), &[]));
}
