//! The query commands under hostile and unusual input: text chosen by callers is printed
//! without its control characters and CSV without live formulas, bounds far in the future or
//! past are dates, deep SQL is planned or refused (never a crash), and runaway queries stop.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// An empty lake: enough for SQL that reads no table.
fn empty_lake() -> tempfile::TempDir {
    let lake = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(lake.path().join("events")).unwrap();
    lake
}

/// One number from `sql --format ndjson QUERY` with `extra` flags.
fn sql_count(lake: &Path, extra: &[&str], query: &str) -> u64 {
    let mut args = vec![
        "sql",
        "--format",
        "ndjson",
        "--lake",
        lake.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(query);
    let (code, out, stderr) = run(&args);
    assert_eq!(code, 0, "{query} {extra:?}: {stderr}");
    let row: Value = serde_json::from_str(out.trim()).unwrap();
    row["n"].as_u64().unwrap()
}

/// What a caller can put in a user agent or a session name: a terminal title change, a bell,
/// a carriage return, a screen clear, a right-to-left override.
const HOSTILE: &str = "aws-cli\u{1b}]0;owned\u{7}\r\u{1b}[2J\u{202e}txt.exe";

/// Bytes a terminal acts on, besides the newlines that end lines.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
        .collect()
}

#[test]
fn caller_text_is_printed_escaped_and_csv_has_no_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let mut hostile = record("hostile-1", "2024-03-01T10:00:00Z", "111122223333");
    hostile["userAgent"] = Value::from(HOSTILE);
    hostile["sourceIPAddress"] = Value::from("=HYPERLINK(\"http://x\",\"y\")");
    let mut plain = record("plain-1", "2024-03-01T11:00:00Z", "111122223333");
    plain["sourceIPAddress"] = Value::from("-2+3");
    write_records(&dir.path().join("logs/hostile.json.gz"), &[hostile, plain]);
    let lake = dir.path().join("lake");
    let ingested = ingest(&lake, &[dir.path().join("logs").to_str().unwrap()]);
    assert_eq!(
        count(&ingested, "records_written"),
        2,
        "{}",
        ingested.stderr
    );
    let query = "SELECT user_agent, source_ip_address, -5 AS n FROM events ORDER BY event_time";
    let shown = "aws-cli\\u{1b}]0;owned\\u{7}\\u{d}\\u{1b}[2J\\u{202e}txt.exe";
    for format in ["table", "markdown", "csv"] {
        let (code, out, stderr) = run(&[
            "sql",
            "--lake",
            lake.to_str().unwrap(),
            "--format",
            format,
            query,
        ]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(raw_controls(&out), Vec::<char>::new(), "{format}: {out}");
        assert!(out.contains(shown), "{format}: {out}");
    }
    let (_, csv, _) = run(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "csv",
        query,
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "user_agent,source_ip_address,n",
            &format!("{shown},\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",-5"),
            "aws-cli/2,'-2+3,-5",
        ]
    );
    // JSON keeps the exact text.
    let (_, ndjson, _) = run(&[
        "sql",
        "--lake",
        lake.to_str().unwrap(),
        "--format",
        "ndjson",
        query,
    ]);
    let first: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(first["user_agent"], HOSTILE);
    assert_eq!(first["n"], -5);
    // Error messages quote SQL: escaped too.
    let bad = format!("SELECT * FROM \"{HOSTILE}\"");
    let (code, _, stderr) = run(&["sql", "--lake", lake.to_str().unwrap(), &bad]);
    assert_eq!(code, 1);
    assert_eq!(raw_controls(&stderr), Vec::<char>::new(), "{stderr}");
    assert!(stderr.contains("\\u{1b}"), "{stderr}");
}

#[test]
fn far_bounds_are_dates_and_every_table_agrees() {
    let lake = sample_lake();
    let lake = lake.path();
    let events = "SELECT count(*) AS n FROM events";
    let assumptions = "SELECT count(*) AS n FROM assumptions";
    let sessions = "SELECT count(*) AS n FROM sessions";
    let all = [events, assumptions, sessions].map(|q| sql_count(lake, &[], q));
    assert!(all.iter().all(|n| *n > 0), "{all:?}");
    let wide: [&[&str]; 3] = [
        &["--to", "9999-12-31"],
        &["--from", "0001-01-01", "--to", "9999-12-31T23:59:59Z"],
        &["--from", "-700000d"],
    ];
    for derived in [false, true] {
        if derived {
            let (code, _, stderr) = run(&["derive", "--lake", lake.to_str().unwrap()]);
            assert_eq!(code, 0, "{stderr}");
        }
        for flags in wide {
            let seen = [events, assumptions, sessions].map(|q| sql_count(lake, flags, q));
            assert_eq!(seen, all, "{flags:?}, derived tables built: {derived}");
        }
        let none =
            [events, assumptions, sessions].map(|q| sql_count(lake, &["--to", "0001-01-01"], q));
        assert_eq!(none, [0, 0, 0], "derived tables built: {derived}");
    }
}

#[test]
fn invalid_option_values_are_usage_errors() {
    let lake = empty_lake();
    let lake_arg = lake.path().to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["sql", "--from", "-99999999d", "SELECT 1"], "out of range"),
        (&["sql", "--to", "yesterday", "SELECT 1"], "invalid time"),
        (
            &[
                "sql",
                "--from",
                "2024-03-02",
                "--to",
                "2024-03-01",
                "SELECT 1",
            ],
            "after",
        ),
        (
            &["sql", "--account", "12", "SELECT 1"],
            "invalid account id",
        ),
        (&["sql", "--timeout", "5x", "SELECT 1"], "duration"),
        (
            &["report", "role-assumptions", "--from", "-99999999999w"],
            "out of range",
        ),
    ];
    for (args, message) in cases {
        let mut args = args.to_vec();
        args.extend(["--lake", lake_arg]);
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 64, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let logs = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&[
        "ingest",
        logs.path().to_str().unwrap(),
        "--lake",
        lake_arg,
        "--from",
        "-99999999d",
    ]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("out of range"), "{stderr}");
}

/// `SELECT 1+1+...` with `terms` ones, as a file (too long for one argument).
fn sum_query(dir: &Path, terms: usize) -> std::path::PathBuf {
    let path = dir.join(format!("sum-{terms}.sql"));
    let sum = vec!["1"; terms].join("+");
    std::fs::write(&path, format!("SELECT {sum} AS n")).unwrap();
    path
}

#[test]
fn a_long_expression_runs_and_an_absurd_one_is_an_error() {
    let lake = empty_lake();
    let lake_arg = lake.path().to_str().unwrap();
    for terms in [1_000, 1_990] {
        let file = sum_query(lake.path(), terms);
        let (code, out, stderr) = run(&[
            "sql",
            "--lake",
            lake_arg,
            "--format",
            "ndjson",
            "-f",
            file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{terms} terms: {stderr}");
        assert_eq!(out.trim(), format!("{{\"n\":{terms}}}"));
    }
    let file = sum_query(lake.path(), 1_000_000);
    let (code, _, stderr) = run(&["sql", "--lake", lake_arg, "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nested more than 2000 levels"), "{stderr}");
    let file = sum_query(lake.path(), 10_000);
    let (code, _, stderr) = run(&["sql", "--lake", lake_arg, "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nested more than 2000 levels"), "{stderr}");
    let unions = vec!["SELECT 1"; 5_000].join(" UNION ALL ");
    let file = lake.path().join("unions.sql");
    std::fs::write(&file, unions).unwrap();
    let (code, _, stderr) = run(&["sql", "--lake", lake_arg, "-f", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nested more than"), "{stderr}");
}

#[test]
fn timeout_stops_a_runaway_query() {
    let lake = empty_lake();
    let forever = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) \
                   SELECT count(*) AS n FROM r";
    let started = Instant::now();
    let (code, out, stderr) = run(&[
        "sql",
        "--lake",
        lake.path().to_str().unwrap(),
        "--timeout",
        "2s",
        forever,
    ]);
    let elapsed = started.elapsed();
    assert_eq!(code, 1, "{out}\n{stderr}");
    assert!(stderr.contains("did not finish within 2s"), "{stderr}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn help_says_how_the_memory_limit_is_chosen() {
    let (code, out, _) = run(&["sql", "--help"]);
    assert_eq!(code, 0);
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(out.contains("half of the memory available"), "{out}");
    assert!(out.contains("--max-spill"), "{out}");
    assert!(out.contains("--timeout"), "{out}");
}
