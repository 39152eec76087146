//! Derived tables: stored per account and day by `derive`, read where current and computed from
//! events elsewhere, and giving exactly the answers the views give when computed from `events`,
//! for the whole lake, time ranges and accounts, whatever mix of current and stale partitions.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

/// What every view and every report says, as CSV, one string per query.
const QUERIES: [&str; 6] = [
    "SELECT * FROM assumptions ORDER BY call_id, event_time",
    "SELECT * FROM session_usage ORDER BY access_key_id",
    "SELECT * FROM sessions ORDER BY access_key_id",
    "SELECT * FROM caller_sources ORDER BY kind, identity, source_ip_address, user_agent",
    "SELECT count(*) AS n, sum(calls) AS calls, max(chain_depth) AS depth FROM sessions",
    "SELECT * FROM assumption_copies ORDER BY event_id, recipient_account_id",
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

/// The plan of a query on `session_usage_daily` within `extra`'s scope.
fn plan(lake: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "sql",
        "--format",
        "csv",
        "EXPLAIN SELECT count(*) FROM session_usage_daily",
    ];
    args.extend_from_slice(extra);
    stdout(lake, &args)
}

/// True when the scope reads derived files, and true when it reads event files.
fn reads(lake: &Path, extra: &[&str]) -> (bool, bool) {
    let plan = plan(lake, extra);
    (
        plan.contains("derived/session_usage_daily/"),
        plan.contains("/events/account_id="),
    )
}

fn number(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
}

fn rows_written(summary: &Value, name: &str) -> u64 {
    summary["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .map(|t| number(t, "rows"))
        .unwrap_or_else(|| panic!("no {name} in {summary}"))
}

fn scalar(lake: &Path, query: &str, extra: &[&str]) -> String {
    let mut args = vec!["sql", "--format", "csv", query];
    args.extend_from_slice(extra);
    stdout(lake, &args).lines().nth(1).unwrap().to_owned()
}

fn assert_same_answers(lake: &Path, scope: &[&str]) {
    let computed = answers(lake, &[scope, &["--no-derived"]].concat());
    let derived = answers(lake, scope);
    for ((query, a), b) in QUERIES
        .iter()
        .chain(REPORTS.iter())
        .zip(&computed)
        .zip(&derived)
    {
        assert_eq!(
            a, b,
            "{query} ({scope:?}): derived tables differ from the views"
        );
    }
}

/// The scopes every lake is checked in: whole lake, ranges cut mid-day on either side, a
/// range of whole days, one account, two accounts, and an account with a range.
fn scopes(lake: &Path) -> Vec<Vec<String>> {
    // The median STS call: both halves hold some, and it is not at midnight.
    let median = scalar(
        lake,
        "SELECT event_time FROM (SELECT event_time, \
         row_number() OVER (ORDER BY event_time) AS n, count(*) OVER () AS total \
         FROM assumptions) WHERE n = total / 2 + 1",
        &["--no-derived"],
    );
    let day = scalar(
        lake,
        "SELECT min(date) FROM assumption_copies",
        &["--no-derived"],
    );
    let accounts: Vec<String> = stdout(
        lake,
        &[
            "sql",
            "--format",
            "csv",
            "--no-derived",
            "SELECT account_id, count(*) AS n FROM assumption_copies GROUP BY account_id \
             ORDER BY n DESC, account_id",
        ],
    )
    .lines()
    .skip(1)
    .filter_map(|line| line.split(',').next().map(str::to_owned))
    .take(2)
    .collect();
    assert!(!accounts.is_empty(), "the lake has STS calls");
    let mut scopes = vec![
        vec![],
        vec!["--from".to_owned(), median.clone()],
        vec!["--to".to_owned(), median.clone()],
        vec!["--from".to_owned(), day.clone(), "--to".to_owned(), median],
        vec!["--account".to_owned(), accounts[0].clone()],
        vec![
            "--account".to_owned(),
            accounts[0].clone(),
            "--from".to_owned(),
            day,
        ],
    ];
    if let Some(second) = accounts.get(1) {
        scopes.push(vec![
            "--account".to_owned(),
            accounts[0].clone(),
            "--account".to_owned(),
            second.clone(),
        ]);
    }
    scopes
}

/// Derives `lake` and checks every view and report in every scope against `--no-derived`.
fn check_derived_equal_views(lake: &Path) {
    assert_eq!(reads(lake, &[]), (false, true), "nothing derived yet");
    let summary = derive(lake, &[]);
    assert_eq!(number(&summary, "computed"), number(&summary, "partitions"));
    for table in [
        "assumption_copies",
        "session_usage_daily",
        "caller_sources_daily",
    ] {
        let rows = scalar(
            lake,
            &format!("SELECT count(*) FROM {table}"),
            &["--no-derived"],
        );
        assert_eq!(rows_written(&summary, table).to_string(), rows, "{table}");
    }
    assert_eq!(reads(lake, &[]), (true, false), "whole lake: derived only");
    for scope in scopes(lake) {
        let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
        // A range may cut every day of a small lake: then nothing is read from derived files.
        let ranged = scope
            .iter()
            .any(|flag| flag.starts_with("--from") || flag.starts_with("--to"));
        assert!(
            ranged || reads(lake, &scope).0,
            "{scope:?} reads derived files"
        );
        assert_same_answers(lake, &scope);
    }
    let again = derive(lake, &[]);
    assert_eq!(number(&again, "computed"), 0, "current: {again}");
}

#[test]
fn derived_tables_answer_like_the_views_on_sample_logs() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    // The cases the per-day design must stitch: a key used after expiry, a key whose issuing
    // call is not in the lake.
    let cases = scalar(
        lake.path(),
        "SELECT count(*) FILTER (WHERE used_after_expiration) || '/' || \
         count(*) FILTER (WHERE NOT issued_in_lake) FROM sessions",
        &["--no-derived"],
    );
    let (expired, unissued) = cases.split_once('/').unwrap();
    assert!(expired != "0" && unissued != "0", "{cases}");
    check_derived_equal_views(lake.path());
    assert_eq!(reads(lake.path(), &["--no-derived"]), (false, true));
}

#[test]
fn derived_tables_answer_like_the_views_on_real_logs() {
    let shared = shared().expect("../shared/real-logs");
    let lake = tempfile::tempdir().unwrap();
    let logs = shared.join("real-logs");
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    check_derived_equal_views(lake.path());
}

/// A generated multi-day organisation: sessions that span midnight and chains whose hops are
/// on different days, ingested day by day with a derive after each day (incremental), against
/// one ingest and one derive.
#[test]
fn derived_tables_stitch_days_and_grow_with_the_new_days_only() {
    let corpus = tempfile::tempdir().unwrap();
    generate(
        corpus.path(),
        30_000,
        &["--days", "4", "--org-layout", "--start", "2024-03-01"],
    )
    .expect("../shared/tools/gen_cloudtrail.py");
    let source = corpus.path().to_str().unwrap();
    let whole = tempfile::tempdir().unwrap();
    assert_eq!(ingest(whole.path(), &[source]).code, 0);
    let spanning = scalar(
        whole.path(),
        "SELECT count(*) FILTER (WHERE date_trunc('day', first_used) <> date_trunc('day', last_used)) \
         || '/' || (SELECT count(*) FROM sessions AS s JOIN sessions AS p \
            ON s.parent_access_key_id = p.access_key_id \
            WHERE date_trunc('day', s.issued_at) <> date_trunc('day', p.issued_at)) \
         FROM sessions",
        &["--no-derived"],
    );
    let (midnight, _) = spanning.split_once('/').unwrap();
    assert!(midnight != "0", "sessions span midnight: {spanning}");
    check_derived_equal_views(whole.path());

    // Day by day: each derive computes the partitions that day's files changed, not the lake.
    let daily = tempfile::tempdir().unwrap();
    // The corpus's last folder holds late deliveries, some of the next day.
    let days = [
        "2024-03-01",
        "2024-03-02",
        "2024-03-03",
        "2024-03-04",
        "2024-03-05",
    ];
    let mut previous = 0;
    for day in days {
        // `--to` with a date includes that whole day: only that day's partitions change.
        let scope = ["--from", day, "--to", day, source];
        assert_eq!(ingest(daily.path(), &scope).code, 0);
        let summary = derive(daily.path(), &[]);
        let partitions = number(&summary, "partitions");
        assert_eq!(
            number(&summary, "computed"),
            partitions - previous,
            "{day}: {summary}"
        );
        previous = partitions;
    }
    assert!(previous >= 4, "a partition per account and day");
    assert_eq!(answers(daily.path(), &[]), answers(whole.path(), &[]));
    assert_same_answers(daily.path(), &[]);
}

#[test]
fn a_changed_partition_is_computed_from_events_until_derived_again() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs/AWSLogs/o-samples01");
    let first = logs.join("111111111111");
    assert_eq!(ingest(lake.path(), &[first.to_str().unwrap()]).code, 0);
    derive(lake.path(), &[]);
    let query = "SELECT count(*) AS n FROM sessions";
    let before = scalar(lake.path(), query, &[]);

    // More accounts: their partitions are new, so they are computed; the first one is read.
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    assert_eq!(reads(lake.path(), &[]), (true, true), "derived and events");
    let now = scalar(lake.path(), query, &[]);
    assert_eq!(now, scalar(lake.path(), query, &["--no-derived"]));
    assert_ne!(now, before, "the new files add sessions");
    assert_same_answers(lake.path(), &[]);

    let again = derive(lake.path(), &[]);
    assert!(
        number(&again, "computed") < number(&again, "partitions"),
        "{again}"
    );
    assert_eq!(reads(lake.path(), &[]), (true, false));
    assert_eq!(scalar(lake.path(), query, &[]), now);
    let forced = derive(lake.path(), &["--force"]);
    assert_eq!(number(&forced, "computed"), number(&forced, "partitions"));
}

#[test]
fn foreign_and_superseded_files_are_never_read_and_are_removed() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    derive(lake.path(), &[]);
    let derived = lake.path().join("derived");
    // What an older version left, and a file whose name is no partition's fingerprint.
    let old_build = derived.join("0123456789abcdef-20240101T000000000000Z/sessions");
    std::fs::create_dir_all(&old_build).unwrap();
    std::fs::write(old_build.join("part-0.parquet"), b"PAR1 not really").unwrap();
    std::fs::write(derived.join("CURRENT.json"), b"{ torn").unwrap();
    let partition = std::fs::read_dir(derived.join("session_usage_daily"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let day = std::fs::read_dir(&partition)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let stale = day.join("00000000000000000000000000000000.parquet");
    std::fs::write(&stale, b"PAR1 not really").unwrap();
    let expected = scalar(
        lake.path(),
        "SELECT count(*) FROM sessions",
        &["--no-derived"],
    );
    assert_eq!(
        scalar(lake.path(), "SELECT count(*) FROM sessions", &[]),
        expected
    );

    let summary = derive(lake.path(), &[]);
    assert_eq!(number(&summary, "computed"), 0, "{summary}");
    assert_eq!(number(&summary, "removed_files"), 3, "{summary}");
    assert!(!stale.exists() && !old_build.exists());
    assert!(!derived.join("CURRENT.json").exists());
    assert_eq!(
        scalar(lake.path(), "SELECT count(*) FROM sessions", &[]),
        expected
    );
}

#[test]
fn ingest_derive_builds_the_tables_in_the_same_run() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let run = ingest(lake.path(), &["--derive", logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let derived = &run.summary["derived"];
    assert_eq!(number(derived, "computed"), number(derived, "partitions"));
    assert!(number(derived, "partitions") > 0, "{derived}");
    assert_eq!(reads(lake.path(), &[]), (true, false));
}

#[test]
fn derive_fits_a_small_memory_pool_by_splitting_its_work() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    assert_eq!(ingest(lake.path(), &[logs.to_str().unwrap()]).code, 0);
    let summary = derive(lake.path(), &["--memory-limit", "64M"]);
    assert_eq!(number(&summary, "computed"), number(&summary, "partitions"));
    assert_same_answers(lake.path(), &[]);
}

/// The identity of a session of `role` in `account`, signing with `key`.
fn session_identity(account: &str, role: &str, key: &str) -> Value {
    serde_json::json!({
        "type": "AssumedRole",
        "principalId": format!("AROAEXAMPLE:{role}"),
        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/s"),
        "accountId": account,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account,
                "userName": role},
            "attributes": {"creationDate": "2024-03-01T23:50:00Z", "mfaAuthenticated": "false"}
        }
    })
}

/// An AssumeRole of `role` in `role_account` by `caller`, logged in `recipient`'s trail.
fn assume_role(
    id: &str,
    time: &str,
    recipient: &str,
    caller: Value,
    role: (&str, &str),
    issued: &str,
    expires: &str,
) -> Value {
    let (role_account, role_name) = role;
    let mut record = record(id, time, recipient);
    record["eventSource"] = "sts.amazonaws.com".into();
    record["eventName"] = "AssumeRole".into();
    record["readOnly"] = true.into();
    record["userIdentity"] = caller;
    record["requestParameters"] = serde_json::json!({
        "roleArn": format!("arn:aws:iam::{role_account}:role/{role_name}"),
        "roleSessionName": "s", "durationSeconds": 3600
    });
    record["responseElements"] = serde_json::json!({
        "credentials": {"accessKeyId": issued, "expiration": expires, "sessionToken": "IQoJb3JpZ2luX2VjEXAMPLE"},
        "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:s",
            "arn": format!("arn:aws:sts::{role_account}:assumed-role/{role_name}/s")}
    });
    record
}

/// A call signed by `key`, a session of `role` in `account`.
fn signed_call(id: &str, time: &str, account: &str, role: &str, key: &str) -> Value {
    let mut record = record(id, time, account);
    record["userIdentity"] = session_identity(account, role, key);
    record
}

/// A chain whose hops are on different days, across two accounts (the second hop logged in
/// both), a session used across midnight and again days after it expired, and a key whose
/// issuing call is not in the lake: each partition derived on its own, stitched at query time.
#[test]
fn chains_and_sessions_across_days_are_stitched_exactly() {
    let logs = tempfile::tempdir().unwrap();
    let (first, second) = ("111111111111", "222222222222");
    let user = serde_json::json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE",
        "arn": format!("arn:aws:iam::{first}:user/alice"), "accountId": first,
        "accessKeyId": "AKIAEXAMPLEALICE", "userName": "alice"});
    let mut hop2_caller_copy = assume_role(
        "hop2-a",
        "2024-03-02T00:10:00Z",
        first,
        session_identity(first, "Jump", "ASIAHOPONE"),
        (second, "Target"),
        "ASIAHOPTWO",
        "2024-03-02T01:10:00Z",
    );
    let mut hop2_role_copy = assume_role(
        "hop2-b",
        "2024-03-02T00:10:00Z",
        second,
        serde_json::json!({"type": "AWSAccount", "principalId": "AROAEXAMPLE:s", "accountId": first}),
        (second, "Target"),
        "ASIAHOPTWO",
        "2024-03-02T01:10:00Z",
    );
    for copy in [&mut hop2_caller_copy, &mut hop2_role_copy] {
        copy["sharedEventID"] = "shared-hop2".into();
    }
    let day = |d: &str| format!("AWSLogs/{first}/CloudTrail/us-east-1/2024/03/{d}");
    let day2 = |d: &str| format!("AWSLogs/{second}/CloudTrail/us-east-1/2024/03/{d}");
    let files = [
        (
            day("01"),
            vec![
                assume_role(
                    "hop1",
                    "2024-03-01T23:50:00Z",
                    first,
                    user,
                    (first, "Jump"),
                    "ASIAHOPONE",
                    "2024-03-02T00:50:00Z",
                ),
                signed_call(
                    "use1-a",
                    "2024-03-01T23:55:00Z",
                    first,
                    "Jump",
                    "ASIAHOPONE",
                ),
            ],
        ),
        (
            day("02"),
            vec![
                signed_call(
                    "use1-b",
                    "2024-03-02T00:05:00Z",
                    first,
                    "Jump",
                    "ASIAHOPONE",
                ),
                hop2_caller_copy,
                signed_call(
                    "orphan",
                    "2024-03-02T03:00:00Z",
                    first,
                    "Jump",
                    "ASIANEVERISSUED",
                ),
            ],
        ),
        (
            day2("02"),
            vec![
                hop2_role_copy,
                signed_call(
                    "use2-a",
                    "2024-03-02T00:20:00Z",
                    second,
                    "Target",
                    "ASIAHOPTWO",
                ),
            ],
        ),
        (
            day2("05"),
            vec![signed_call(
                "use2-late",
                "2024-03-05T09:00:00Z",
                second,
                "Target",
                "ASIAHOPTWO",
            )],
        ),
    ];
    for (folder, records) in &files {
        write_records(&logs.path().join(folder).join("log.json.gz"), records);
    }
    let lake = tempfile::tempdir().unwrap();
    assert_eq!(
        ingest(lake.path(), &[logs.path().to_str().unwrap()]).code,
        0
    );
    let chain = "SELECT access_key_id, issued_in_lake, chain_depth, accounts_crossed, calls, \
                 used_after_expiration, role_chain FROM sessions ORDER BY access_key_id";
    let expected = "access_key_id,issued_in_lake,chain_depth,accounts_crossed,calls,used_after_expiration,role_chain\n\
        ASIAHOPONE,true,1,0,3,false,arn:aws:iam::111111111111:user/alice -> arn:aws:iam::111111111111:role/Jump\n\
        ASIAHOPTWO,true,2,1,2,true,arn:aws:iam::111111111111:user/alice -> arn:aws:iam::111111111111:role/Jump -> arn:aws:iam::222222222222:role/Target\n\
        ASIANEVERISSUED,false,,,1,,\n";
    let from_events = stdout(
        lake.path(),
        &["sql", "--format", "csv", "--no-derived", chain],
    );
    assert_eq!(from_events, expected);
    check_derived_equal_views(lake.path());
    assert_eq!(
        stdout(lake.path(), &["sql", "--format", "csv", chain]),
        expected
    );
    // Day by day: the second day's derive computes only its partitions.
    let daily = tempfile::tempdir().unwrap();
    for day in ["2024-03-01", "2024-03-02", "2024-03-05"] {
        let scope = ["--from", day, "--to", day, logs.path().to_str().unwrap()];
        assert_eq!(ingest(daily.path(), &scope).code, 0);
        derive(daily.path(), &[]);
    }
    assert_eq!(
        stdout(daily.path(), &["sql", "--format", "csv", chain]),
        expected
    );
    assert_eq!(answers(daily.path(), &[]), answers(lake.path(), &[]));
}
