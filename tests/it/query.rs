//! The query layer on real files: views checked against an independent pass over the JSON,
//! report output snapshot-tested on sample-logs, and the read-only rules.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::util::*;

/// `sts-audit sql --format ndjson QUERY` over `lake`: the rows as JSON objects.
fn sql(lake: &Path, query: &str) -> Vec<Value> {
    let output = bin()
        .args(["sql", "--format", "ndjson", "--lake"])
        .arg(lake)
        .arg(query)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{query}\n{stderr}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What the views should say, computed straight from the JSON records.
#[derive(Debug, Default)]
struct Expected {
    /// Distinct credential-issuing calls per target role.
    calls_per_role: BTreeMap<String, u64>,
    calls: u64,
    /// Issued keys and keys of temporary credentials that signed calls.
    sessions: HashSet<String>,
    /// Per temporary key: first and last call time, source IPs, calls.
    usage: HashMap<String, (String, String, BTreeSet<String>, HashSet<String>)>,
    /// Keys whose usage depends on which of two different records with one (eventID, recipient)
    /// the ingest kept (hand-edited copies in real-logs; the lake keeps whichever came first).
    ambiguous: HashSet<String>,
}

fn expected(records: &[Value]) -> Expected {
    let (usable, _) = expected_keys(records);
    let mut versions: HashMap<(String, Option<String>), HashSet<String>> = HashMap::new();
    for record in records {
        let key = (
            record["eventID"].as_str().unwrap_or_default().to_owned(),
            record["recipientAccountId"].as_str().map(str::to_owned),
        );
        versions.entry(key).or_default().insert(record.to_string());
    }
    let mut seen = HashSet::new();
    let mut calls = HashSet::new();
    let mut model = Expected::default();
    for record in records {
        let key = (
            record["eventID"].as_str().unwrap_or_default().to_owned(),
            record["recipientAccountId"].as_str().map(str::to_owned),
        );
        if !usable.contains(&key) || !seen.insert(key.clone()) {
            continue;
        }
        let call_id = match record["sharedEventID"].as_str() {
            Some(shared) => shared.to_owned(),
            None => format!("{}@{:?}", key.0, key.1),
        };
        let is_sts_call = record["eventSource"] == "sts.amazonaws.com"
            && CREDENTIAL_CALLS.contains(&record["eventName"].as_str().unwrap_or(""));
        if is_sts_call && calls.insert(call_id.clone()) {
            model.calls += 1;
            if let Some(role) = target_role(record) {
                *model.calls_per_role.entry(role).or_default() += 1;
            }
        }
        if is_sts_call
            && record["errorCode"].is_null()
            && let Some(issued) = record["responseElements"]["credentials"]["accessKeyId"].as_str()
        {
            model.sessions.insert(issued.to_owned());
        }
        if let Some(signer) = record["userIdentity"]["accessKeyId"].as_str()
            && signer.starts_with("ASIA")
        {
            model.sessions.insert(signer.to_owned());
            if versions[&key].len() > 1 {
                model.ambiguous.insert(signer.to_owned());
            }
            let time = record["eventTime"]
                .as_str()
                .or_else(|| record["@timestamp"].as_str())
                .map(normalise)
                .unwrap_or_default();
            let entry = model
                .usage
                .entry(signer.to_owned())
                .or_insert_with(|| (time.clone(), time.clone(), BTreeSet::new(), HashSet::new()));
            entry.0 = entry.0.clone().min(time.clone());
            entry.1 = entry.1.clone().max(time);
            if let Some(ip) = record["sourceIPAddress"].as_str() {
                entry.2.insert(ip.to_owned());
            }
            entry.3.insert(call_id);
        }
    }
    model
}

/// The role a call targets: requestParameters.roleArn, else the role ARN in the error message.
fn target_role(record: &Value) -> Option<String> {
    if let Some(role) = record["requestParameters"]["roleArn"].as_str() {
        return Some(role.to_owned());
    }
    let message = record["errorMessage"].as_str()?;
    message
        .match_indices("arn:aws:iam::")
        .find_map(|(start, _)| {
            let arn: String = message[start..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ',' | ';'))
                .collect();
            Some(arn.trim_end_matches('.').to_owned()).filter(|arn| arn.contains(":role/"))
        })
}

/// The views agree with the independent model: assumption counts per role, the number of
/// sessions, and each used session's first/last use, IPs and call count.
fn check_views_against(lake: &Path, model: &Expected) {
    let total = sql(lake, "SELECT count(*) AS n FROM assumptions");
    assert_eq!(
        total[0]["n"], model.calls,
        "distinct credential-issuing calls"
    );

    let per_role = sql(
        lake,
        "SELECT role_arn, count(*) AS n FROM assumptions WHERE role_arn LIKE '%:role/%' GROUP BY role_arn",
    );
    let actual: BTreeMap<String, u64> = per_role
        .iter()
        .map(|r| {
            (
                r["role_arn"].as_str().unwrap().to_owned(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(actual, model.calls_per_role);

    let sessions = sql(
        lake,
        "SELECT access_key_id, first_used, last_used, distinct_source_ips, calls FROM sessions",
    );
    let keys: HashSet<String> = sessions
        .iter()
        .map(|s| s["access_key_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sessions.len(), keys.len(), "one row per key");
    assert_eq!(keys, model.sessions);
    for session in &sessions {
        let key = session["access_key_id"].as_str().unwrap();
        if model.ambiguous.contains(key) {
            continue;
        }
        match model.usage.get(key) {
            Some((first, last, ips, calls)) => {
                assert_eq!(session["first_used"], normalise(first), "{key}");
                assert_eq!(session["last_used"], normalise(last), "{key}");
                let actual_ips: BTreeSet<String> = session["distinct_source_ips"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|ip| ip.as_str().unwrap().to_owned())
                    .collect();
                assert_eq!(&actual_ips, ips, "{key}");
                assert_eq!(session["calls"], calls.len() as u64, "{key}");
            }
            None => assert_eq!(session["calls"], 0, "{key}"),
        }
    }
}

/// CloudTrail times as the renderer prints them (RFC 3339, Z, no zero fraction).
fn normalise(time: &str) -> String {
    let utc = chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.naive_utc())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(
                time.trim_end_matches('Z'),
                "%Y-%m-%d %H:%M:%S%.f",
            )
        });
    match utc {
        Ok(t) => t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
        Err(_) => time.to_owned(),
    }
}

#[test]
fn sample_logs_views_match_an_independent_pass() {
    let lake = sample_lake();
    let model = expected(&records_in(&repo().join("sample-logs")));
    assert!(model.calls > 10 && model.usage.len() > 5, "{model:?}");
    check_views_against(lake.path(), &model);

    // A known session: alice's cross-account Admin session, chained into ReadOnly.
    let alice = sql(
        lake.path(),
        "SELECT * FROM sessions WHERE role_arn = 'arn:aws:iam::222222222222:role/ops/Admin' AND is_cross_account",
    );
    assert_eq!(alice.len(), 1, "{alice:?}");
    let alice = &alice[0];
    assert_eq!(alice["caller"], "arn:aws:iam::111111111111:user/alice");
    assert_eq!(alice["chain_depth"], 1);
    assert_eq!(alice["mfa"], true);
    assert_eq!(alice["effective_duration_seconds"], 3600);
    let (first, last, ips, _) = &model.usage[alice["access_key_id"].as_str().unwrap()];
    assert_eq!(alice["first_used"], normalise(first));
    assert_eq!(alice["last_used"], normalise(last));
    assert_eq!(alice["distinct_source_ip_count"], ips.len() as u64);

    // The cross-account call is logged in both accounts but is one assumption, seen from the
    // caller's side.
    let copies = sql(
        lake.path(),
        "SELECT copies, recipient_account_id, caller_type FROM assumptions WHERE call_id IN (SELECT shared_event_id FROM events WHERE shared_event_id IS NOT NULL)",
    );
    assert!(!copies.is_empty());
    for copy in &copies {
        assert_eq!(copy["copies"], 2, "{copy}");
    }

    // A chained session knows its parent and its origin.
    let chained = sql(
        lake.path(),
        "SELECT * FROM sessions WHERE chain_depth = 2 AND role_name = 'ReadOnly'",
    );
    assert!(!chained.is_empty());
    for session in &chained {
        assert_eq!(
            session["origin_principal_arn"],
            "arn:aws:iam::111111111111:user/alice"
        );
        assert!(
            session["parent_access_key_id"]
                .as_str()
                .unwrap()
                .starts_with("ASIA")
        );
    }

    // A failed call without payloads still names its role (from errorMessage).
    let denied = sql(
        lake.path(),
        "SELECT role_arn FROM assumptions WHERE error_code IS NOT NULL",
    );
    assert_eq!(denied.len(), 3);
    assert!(
        denied.iter().all(|d| d["role_arn"].is_string()),
        "{denied:?}"
    );
}

#[test]
fn real_logs_views_match_an_independent_pass() {
    let Some(shared) = shared() else { return };
    let logs = shared.join("real-logs");
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert_eq!(
        run.code, 2,
        "real-logs has unusable records: {}",
        run.stderr
    );
    let model = expected(&records_in(&logs));
    check_views_against(lake.path(), &model);
}

#[test]
fn generated_corpus_views_match_an_independent_pass() {
    let corpus = tempfile::tempdir().unwrap();
    if generate(corpus.path(), 20_000, &["--days", "2", "--org-layout"]).is_none() {
        return;
    }
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[corpus.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let model = expected(&records_in(corpus.path()));
    assert!(model.calls > 100, "{}", model.calls);
    check_views_against(lake.path(), &model);
}

#[test]
fn reports_on_sample_logs_snapshot() {
    let lake = sample_lake();
    let lake_arg = lake.path().to_str().unwrap();
    let (code, list, stderr) = run(&["report", "--list", "--format", "csv"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("report-list", list);
    let names: Vec<String> = list
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 7);
    // `compliance` writes a document to --output: tests/it/compliance.rs.
    for name in names.iter().filter(|name| *name != "compliance") {
        let (code, table, stderr) = run(&["report", name, "--lake", lake_arg]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert!(
            !table.contains("(0 rows)"),
            "{name} finds something on sample-logs"
        );
        insta::assert_snapshot!(format!("report-{name}"), table);
    }
}

#[test]
fn report_scope_flags_are_values() {
    let lake = sample_lake();
    let lake_arg = lake.path().to_str().unwrap();
    let rows = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec![
            "report",
            "role-assumptions",
            "--format",
            "ndjson",
            "--lake",
            lake_arg,
        ];
        args.extend_from_slice(extra);
        let (code, out, stderr) = run(&args);
        assert_eq!(code, 0, "{stderr}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let total = |rows: &[Value]| {
        rows.iter()
            .map(|r| r["assumptions"].as_u64().unwrap())
            .sum::<u64>()
    };
    let all = total(&rows(&[]));
    let later = total(&rows(&["--from", "2024-03-01T12:00:00Z"]));
    let nothing = total(&rows(&["--to", "2024-02-01"]));
    let one_account = rows(&["--account", "999999999999"]);
    assert!(later > 0 && later < all, "{later} of {all}");
    assert_eq!(nothing, 0);
    assert!(!one_account.is_empty());
    assert!(
        one_account
            .iter()
            .all(|r| r["principal"].as_str().unwrap().contains("999999999999"))
    );
    // A value is validated and bound, never spliced into SQL.
    let (code, _, stderr) = run(&[
        "report",
        "role-assumptions",
        "--lake",
        lake_arg,
        "--account",
        "1' OR '1'='1",
    ]);
    assert_eq!(code, 64, "an invalid option value is a usage error");
    assert!(stderr.contains("invalid account id"), "{stderr}");
}

#[test]
fn sql_is_read_only() {
    let lake = sample_lake();
    let lake_arg = lake.path().to_str().unwrap();
    let target = lake.path().join("copied.csv");
    let attempts = [
        "CREATE EXTERNAL TABLE secrets STORED AS CSV LOCATION '/etc/passwd'".to_owned(),
        format!("COPY (SELECT 1) TO '{}'", target.display()),
        "CREATE TABLE t AS SELECT 1".to_owned(),
        "CREATE VIEW v AS SELECT 1".to_owned(),
        "INSERT INTO events SELECT * FROM events".to_owned(),
        "DROP TABLE events".to_owned(),
        "SET datafusion.execution.batch_size = 1".to_owned(),
    ];
    for attempt in &attempts {
        let (code, _, stderr) = run(&["sql", "--lake", lake_arg, attempt]);
        assert_eq!(code, 1, "{attempt} must fail");
        assert!(stderr.contains("only queries"), "{attempt}: {stderr}");
    }
    assert!(!target.exists());
    // No file or URL can be read as a table.
    for attempt in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'https://example.com/x.parquet'",
    ] {
        let (code, _, stderr) = run(&["sql", "--lake", lake_arg, attempt]);
        assert_eq!(code, 1, "{attempt}: {stderr}");
    }
    // Reading works, JSON functions included; several statements run in order.
    let (code, out, stderr) = run(&[
        "sql",
        "--lake",
        lake_arg,
        "--format",
        "csv",
        "SELECT json_get_str(request_parameters, 'roleArn') AS role FROM events WHERE event_name = 'AssumeRoleWithSAML'; SELECT count(*) AS n FROM events WHERE date = '2024-03-01'",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        out,
        "role\narn:aws:iam::222222222222:role/OktaDevelopers\nn\n253\n"
    );
}

#[test]
fn shell_reads_statements_and_backslash_commands() {
    let lake = sample_lake();
    let history = lake.path().join("history");
    let mut child = bin()
        .args(["sql", "--format", "csv", "--lake"])
        .arg(lake.path())
        .env("STS_AUDIT_HISTORY", &history)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"SELECT count(*)\n  AS n FROM assumptions;\n\\d\n\\d sessions\nSELEC oops;\n\\q\n",
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.starts_with("n\n"), "{stdout}");
    assert!(stdout.contains("assumptions,view,"), "{stdout}");
    assert!(stdout.contains("chain_depth,bigint,"), "{stdout}");
    assert!(
        stderr.contains("error"),
        "a bad statement is reported: {stderr}"
    );
}

#[test]
fn analyze_prints_the_core_reports() {
    let logs = repo().join("sample-logs");
    let (code, out, stderr) = run(&["analyze", "--quiet", logs.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for title in [
        "Who assumed which roles",
        "Cross-account",
        "Role chains",
        "How long",
    ] {
        assert!(out.contains(title), "{title}: {out}");
    }
    assert!(stderr.contains("253"), "ingest summary on stderr: {stderr}");
    // Then the findings: the sample's incidents (a key used after its expiration and from a
    // second network, GetFederationToken, AssumeRoot), with the window they come from.
    let findings = &out[out.find("Findings (detect)").expect(&out)..];
    assert!(
        findings.contains("2024-03-01T00:00:00Z .. 2024-03-02T00:00:00Z"),
        "{findings}"
    );
    for rule in ["duration-anomaly", "credential-elsewhere", "rare-sts-api"] {
        assert!(findings.contains(rule), "{rule}: {findings}");
    }
    assert!(
        stderr.contains("11 finding(s) (4 high, 3 medium, 4 low)"),
        "{stderr}"
    );

    let (code, json, stderr) = run(&[
        "analyze",
        "--quiet",
        "--format",
        "json",
        logs.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let high = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "high")
        .count();
    assert_eq!(high, 4, "{json}");
}

#[test]
fn schema_doc_is_current_and_complete() {
    let (code, markdown, stderr) = run(&["schema", "--all", "--format", "markdown"]);
    assert_eq!(code, 0, "{stderr}");
    let doc = std::fs::read_to_string(repo().join("docs/schema.md")).unwrap();
    assert!(
        doc.contains(&markdown),
        "docs/schema.md is stale: regenerate with `sts-audit schema --all --format markdown`"
    );
    let (_, csv, _) = run(&["schema", "--all", "--format", "csv"]);
    for line in csv.lines().skip(1) {
        assert!(!line.ends_with(','), "undocumented column: {line}");
    }
}

#[test]
fn engine_settings_come_from_the_environment() {
    let lake = sample_lake();
    let setting = |env: Option<&str>| {
        let mut command = bin();
        command
            .args(["sql", "--format", "csv", "--lake"])
            .arg(lake.path())
            .arg(
                "SELECT value FROM information_schema.df_settings \
             WHERE name = 'datafusion.execution.parquet.pushdown_filters'",
            );
        command.env_remove("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS");
        if let Some(value) = env {
            command.env("DATAFUSION_EXECUTION_PARQUET_PUSHDOWN_FILTERS", value);
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(setting(None).trim(), "value\nfalse");
    assert_eq!(setting(Some("true")).trim(), "value\ntrue");
}

#[test]
fn a_computed_view_serves_each_query_the_columns_it_needs() {
    // issued_credentials is computed per query for the columns asked so far: a later statement
    // of the same session that needs more columns must get them, and equal counts.
    let lake = sample_lake();
    let rows = sql(
        lake.path(),
        "SELECT count(*) AS n FROM issued_credentials; \
         SELECT count(*) AS n, count(role_arn) AS roles, count(DISTINCT api) AS apis \
         FROM issued_credentials; \
         SELECT count(*) AS n FROM sessions WHERE issued_in_lake",
    );
    let direct = sql(
        lake.path(),
        "SELECT count(*) AS n, count(role_arn) AS roles, count(DISTINCT api) AS apis \
         FROM assumptions WHERE issued_access_key_id IS NOT NULL",
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(direct[0]["n"].as_i64().unwrap() > 0);
    assert_eq!(rows[0]["n"], direct[0]["n"]);
    assert_eq!(rows[1], direct[0]);
    assert_eq!(rows[2]["n"], direct[0]["n"]);
}

/// A reader that goes away (`| head`) ends the output quietly: exit 0 and no error, for a
/// query's table and for `analyze`'s JSON (written whole at the end).
#[test]
fn a_closed_stdout_is_not_an_error() {
    let lake = sample_lake();
    let logs = repo().join("sample-logs");
    let lake_arg = lake.path().to_str().unwrap();
    let runs: [&[&str]; 2] = [
        &["sql", "--lake", lake_arg, "SELECT * FROM events"],
        &[
            "analyze",
            "--quiet",
            "--format",
            "json",
            logs.to_str().unwrap(),
        ],
    ];
    for args in runs {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command has written anything: its first write fails.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn triage_walks_a_key_back_to_its_origin_and_forward_through_what_it_issued() {
    let lake = sample_lake();
    let lake_arg = lake.path().to_str().unwrap();
    // The sample's incident: alice's ReadOnly session, used after its expiration and from a
    // second address. Nothing saved yet: --detect computes the findings for the key's days.
    let key = "ASIA7E30EEF958756693";
    let triage_findings = |extra: &[&str]| {
        let mut args = vec![
            "triage",
            "--lake",
            lake_arg,
            "--access-key",
            key,
            "--format",
            "json",
        ];
        args.extend(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        let found: Value = serde_json::from_str(&out).unwrap();
        found["findings"].as_array().unwrap().clone()
    };
    assert!(triage_findings(&[]).is_empty());
    let computed = triage_findings(&["--detect"]);
    assert!(
        computed.iter().all(|f| f["computed"] == true),
        "{computed:?}"
    );
    assert!(
        computed.iter().any(|f| f["rule"] == "duration-anomaly"),
        "{computed:?}"
    );
    let (code, _, err) = run(&["detect", "--lake", lake_arg, "--save"]);
    assert_eq!(code, 0, "{err}");
    let saved = triage_findings(&["--detect"]);
    assert_eq!(
        saved.len(),
        computed.len(),
        "the saved copies stand for the computed ones"
    );
    assert!(saved.iter().all(|f| f["computed"] == false), "{saved:?}");
    let (code, out, err) = run(&[
        "triage",
        "--lake",
        lake_arg,
        "--access-key",
        key,
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let found: Value = serde_json::from_str(&out).unwrap();
    let tree = &found["trees"][0];
    assert_eq!(tree["origin"], "arn:aws:iam::111111111111:user/alice");
    let chain: Vec<&str> = tree["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hop| hop["role_arn"].as_str().unwrap())
        .collect();
    assert_eq!(
        chain,
        [
            "arn:aws:iam::222222222222:role/ops/Admin",
            "arn:aws:iam::222222222222:role/ReadOnly"
        ]
    );
    assert_eq!(tree["chain"][1]["effective_duration_seconds"], 900);
    let calls = tree["activity"].as_array().unwrap();
    assert_eq!(calls.len(), 11);
    let new_addresses: Vec<&str> = calls
        .iter()
        .filter(|c| c["first_from_address"] == true)
        .map(|c| c["source_ip_address"].as_str().unwrap())
        .collect();
    assert_eq!(new_addresses, ["203.0.113.10", "198.51.100.77"]);
    let expired = calls
        .iter()
        .filter(|c| c["after_expiration"] == true)
        .count();
    assert_eq!(expired, 6, "08:56 to 09:17, after the 08:55 expiration");
    let rules: Vec<&str> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in ["duration-anomaly", "credential-elsewhere"] {
        assert!(rules.contains(&rule), "{rule}: {rules:?}");
    }

    // Forward: alice's Admin session issued the ReadOnly one.
    let (code, out, err) = run(&[
        "triage",
        "--lake",
        lake_arg,
        "--principal",
        "arn:aws:iam::111111111111:user/alice",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let found: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(found["sessions"].as_array().unwrap().len(), 2);
    let admin = found["trees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["access_key_id"] == "ASIA395905D40B1471A1")
        .unwrap();
    assert_eq!(admin["issued"][0]["session"]["access_key_id"], key);

    // The timeline, and an address and an event id as subjects.
    let (code, out, err) = run(&["triage", "--lake", lake_arg, "--ip", "198.51.100.77"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("198.51.100.77 [first from this address]"),
        "{out}"
    );
    assert!(out.contains("[after expiration]"), "{out}");
    assert!(!out.contains('\x1b'), "no colour off a terminal: {out}");
    let event = calls[8]["event_id"].as_str().unwrap();
    let (code, out, err) = run(&[
        "triage",
        "--lake",
        lake_arg,
        "--event-id",
        event,
        "--format",
        "markdown",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("# Triage of access key {key}")),
        "{out}"
    );
    let (code, _, err) = run(&["triage", "--lake", lake_arg, "--event-id", "no-such-event"]);
    assert_eq!(code, 1);
    assert!(err.contains("no event"), "{err}");
    let (code, _, _) = run(&["triage", "--lake", lake_arg]);
    assert_eq!(code, 64, "a subject is required");
}
