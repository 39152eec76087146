//! `sts-audit detect`: every rule fires on its crafted incident and stays silent on its near
//! miss (tests/fixtures/detect, made by make_fixtures.py there), the real attack detonations of
//! ../shared/real-logs are flagged, and the contract around findings holds: exit codes, config
//! errors, stable ids, derived tables equal to computed views, OCSF's required attributes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::*;

/// Each rule: its findings on `fires` (one per incident), by severity, highest first.
const FIRES: &[(&str, &[&str])] = &[
    ("duration-anomaly", &["high", "medium"]),
    ("cross-account-outside", &["critical"]),
    ("fan-out", &["high"]),
    ("credential-elsewhere", &["high", "high"]),
    ("denied-burst", &["high"]),
    ("cross-account-chain", &["medium"]),
    ("rare-sts-api", &["high"]),
    ("new-federated-subject", &["high"]),
    ("first-seen", &["low", "low"]),
];

/// The window of every fixture (its baseline is the week before).
const WINDOW_DAY: &str = "2025-06-08";

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/detect")
}

/// A lake (with derived tables) holding one fixture case.
fn fixture_lake(rule: &str, kind: &str) -> tempfile::TempDir {
    let lake = tempfile::tempdir().unwrap();
    let source = fixtures().join(rule).join(kind);
    let run = ingest(lake.path(), &[source.to_str().unwrap(), "--derive"]);
    assert_eq!(run.code, 0, "{rule}/{kind}: {}", run.stderr);
    lake
}

/// The fixture's config flags (its `sts-audit.toml`, when it has one).
fn config_args(rule: &str) -> Vec<String> {
    let config = fixtures().join(rule).join("sts-audit.toml");
    match config.is_file() {
        true => vec!["--config".into(), config.display().to_string()],
        false => Vec::new(),
    }
}

/// `detect` on `lake` for the fixture window; (exit code, stdout, stderr).
fn detect(lake: &Path, extra: &[&str]) -> (i32, String, String) {
    let lake = lake.to_str().unwrap();
    let mut args = vec![
        "detect", "--lake", lake, "--from", WINDOW_DAY, "--to", WINDOW_DAY,
    ];
    args.extend(extra);
    run(&args)
}

/// The findings `detect --format json` prints.
fn findings(lake: &Path, extra: &[&str]) -> Vec<Value> {
    let (code, out, err) = detect(lake, &[&["--format", "json"], extra].concat());
    assert_eq!(code, 0, "{err}");
    match serde_json::from_str(&out) {
        Ok(Value::Array(findings)) => findings,
        other => panic!("not a JSON array ({other:?}): {out}"),
    }
}

fn severities(findings: &[Value]) -> Vec<&str> {
    findings
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect()
}

#[test]
fn every_rule_fires_on_its_incident_and_not_on_its_near_miss() {
    for (rule, expected) in FIRES {
        let config = config_args(rule);
        let mut args: Vec<&str> = config.iter().map(String::as_str).collect();
        args.extend(["--rules", rule]);
        let lake = fixture_lake(rule, "fires");
        let fired = findings(lake.path(), &args);
        assert_eq!(severities(&fired), *expected, "{rule}: {fired:#?}");
        assert!(fired.iter().all(|f| f["rule"] == *rule));
        let lake = fixture_lake(rule, "near-miss");
        let silent = findings(lake.path(), &args);
        assert!(silent.is_empty(), "{rule} near miss: {silent:#?}");
    }
}

#[test]
fn findings_follow_the_contract_and_their_ids_are_stable() {
    let lake = fixture_lake("credential-elsewhere", "fires");
    let first = findings(lake.path(), &[]);
    assert!(!first.is_empty());
    let fields = [
        "id",
        "rule",
        "severity",
        "title",
        "summary",
        "event_time",
        "last_event_time",
        "account_id",
        "principal_arn",
        "role_arn",
        "source_ip_address",
        "access_key_id",
        "event_ids",
        "attack",
        "details",
    ];
    for finding in &first {
        let keys: Vec<&str> = finding
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sorted = fields.to_vec();
        sorted.sort();
        assert_eq!(keys, sorted, "{finding}");
        assert_eq!(finding["id"].as_str().unwrap().len(), 32);
        assert!(finding["event_time"].as_str().unwrap().ends_with('Z'));
        assert!(!finding["event_ids"].as_array().unwrap().is_empty());
    }
    let ids = |findings: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> = findings.iter().map(|f| f["id"].to_string()).collect();
        ids.sort();
        ids
    };
    // A wider window holding the same incident gives the same ids.
    let path = lake.path().to_str().unwrap();
    let args = [
        "detect",
        "--lake",
        path,
        "--from",
        "2025-06-07",
        "--to",
        WINDOW_DAY,
    ];
    let (code, out, err) = run(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    let wider: Vec<Value> = serde_json::from_str(&out).unwrap();
    let wider: Vec<Value> = wider
        .into_iter()
        .filter(|f| f["rule"] == "credential-elsewhere")
        .collect();
    let again = findings(lake.path(), &[]);
    assert_eq!(ids(&first), ids(&again));
    let first_rule: Vec<Value> = first
        .into_iter()
        .filter(|f| f["rule"] == "credential-elsewhere")
        .collect();
    assert_eq!(ids(&first_rule), ids(&wider));
}

#[test]
fn ndjson_is_one_finding_a_line_and_csv_has_every_field() {
    let lake = fixture_lake("rare-sts-api", "fires");
    let json = findings(lake.path(), &[]);
    let (code, out, err) = detect(lake.path(), &["--format", "ndjson"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, json);
    let (code, out, _) = detect(lake.path(), &["--format", "csv"]);
    assert_eq!(code, 0);
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("id,rule,severity,title,summary,event_time"),
        "{header}"
    );
    assert_eq!(out.lines().count(), json.len() + 1);
}

#[test]
fn fail_on_gives_exit_3_and_min_severity_filters() {
    let lake = fixture_lake("duration-anomaly", "fires");
    let rules = ["--rules", "duration-anomaly"];
    let (code, _, err) = detect(lake.path(), &[&rules[..], &["--fail-on", "high"]].concat());
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("window 2025-06-08T00:00:00Z"), "{err}");
    let (code, _, _) = detect(
        lake.path(),
        &[&rules[..], &["--fail-on", "critical"]].concat(),
    );
    assert_eq!(code, 0);
    let high = findings(
        lake.path(),
        &[&rules[..], &["--min-severity", "high"]].concat(),
    );
    assert_eq!(severities(&high), ["high"]);
    let (code, _, _) = detect(lake.path(), &["--fail-on", "severe"]);
    assert_eq!(code, 64);
    // A baseline reaching before year -262144 is an error, not a panic (exit 101).
    let (code, _, err) = detect(lake.path(), &["--baseline-days", "4000000000"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn the_default_window_is_the_last_full_day() {
    let lake = fixture_lake("rare-sts-api", "fires");
    let (code, out, err) = run(&[
        "detect",
        "--lake",
        lake.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(the last full day in the lake)"), "{err}");
    assert!(
        err.contains("window 2025-06-08T00:00:00Z .. 2025-06-09T00:00:00Z"),
        "{err}"
    );
    assert!(err.contains("(30 asked, the lake holds no more)"), "{err}");
    assert!(out.contains("rare-sts-api"));
}

#[test]
fn a_bad_config_names_its_file_line_and_key() {
    let lake = fixture_lake("fan-out", "fires");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[rules.fan-out]\nmin_fanout_accounts = 3\nmin_accounts = 5\n",
            3,
            "rules.fan-out.min_accounts",
        ),
        (
            "baseline_days = 7\n\n[accounts]\norganisation = []\n",
            4,
            "organisation",
        ),
        (
            "[networks]\nknown = [\"10.0.0.0/33\"]\n",
            2,
            "networks.known",
        ),
    ];
    for (text, line, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let (code, _, err) = detect(lake.path(), &["--config", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{err}");
        let place = format!("{}:{line}: {key}", path.display());
        assert!(err.contains(&place), "{place} in {err}");
    }
}

#[test]
fn suppressions_hide_findings_and_are_counted() {
    let lake = fixture_lake("first-seen", "fires");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sts-audit.toml");
    let text = "[[suppress]]\nrule = \"first-seen\"\nprincipal = \"*\"\nreason = \"routine\"\n";
    std::fs::write(&path, text).unwrap();
    let args = ["--config", path.to_str().unwrap(), "--rules", "first-seen"];
    let (code, out, err) = detect(lake.path(), &[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        Value::Array(vec![])
    );
    assert!(
        err.contains("suppressed 2 first-seen finding(s): routine"),
        "{err}"
    );
}

#[test]
fn derived_tables_and_computed_views_give_equal_findings() {
    for rule in [
        "duration-anomaly",
        "cross-account-chain",
        "credential-elsewhere",
    ] {
        let lake = fixture_lake(rule, "fires");
        let config = config_args(rule);
        let args: Vec<&str> = config.iter().map(String::as_str).collect();
        let derived = findings(lake.path(), &args);
        let computed = findings(lake.path(), &[&args[..], &["--no-derived"]].concat());
        assert!(!derived.is_empty());
        assert_eq!(derived, computed, "{rule}");
    }
}

/// `sql` on `lake` as CSV lines (header first).
fn sql_lines(lake: &Path, query: &str) -> Vec<String> {
    let lake = lake.to_str().unwrap();
    let (code, out, err) = run(&["sql", "--lake", lake, "--format", "csv", query]);
    assert_eq!(code, 0, "{err}");
    out.lines().map(str::to_owned).collect()
}

#[test]
fn saved_findings_are_kept_once_per_window_and_new_only_alerts_once() {
    let lake = fixture_lake("credential-elsewhere", "fires");
    fn only<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        [&["--rules", "credential-elsewhere"], extra].concat()
    }
    let saved_files = || {
        let folder = lake.path().join("findings");
        std::fs::read_dir(folder).map(|d| d.count()).unwrap_or(0)
    };
    // Nothing saved yet: `findings` is an empty table and every finding is new.
    assert_eq!(
        sql_lines(lake.path(), "SELECT count(*) AS n FROM findings"),
        ["n", "0"]
    );
    let all = findings(lake.path(), &only(&[]));
    assert_eq!(all.len(), 2);
    let new = findings(lake.path(), &only(&["--new-only"]));
    assert_eq!(new, all);

    // --save keeps every finding, also those --min-severity does not show.
    let shown = findings(
        lake.path(),
        &only(&["--save", "--min-severity", "critical"]),
    );
    assert!(shown.is_empty());
    assert_eq!(saved_files(), 1);
    let mut ids: Vec<String> = all
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let rows = sql_lines(
        lake.path(),
        "SELECT id, rule, severity, event_time, cardinality(event_ids) > 0 AS evidence, \
         window_start FROM findings ORDER BY id",
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (row, id) in rows[1..].iter().zip(&ids) {
        let expected = format!("{id},credential-elsewhere,high,");
        assert!(row.starts_with(&expected), "{row}");
        assert!(row.ends_with(",true,2025-06-08T00:00:00Z"), "{row}");
    }

    // The same window again: replaced, not duplicated; nothing is new, so --fail-on stays 0.
    let again = findings(
        lake.path(),
        &only(&["--save", "--new-only", "--fail-on", "low"]),
    );
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(saved_files(), 1);
    let count = "SELECT count(*) AS n, count(DISTINCT id) AS ids FROM findings";
    assert_eq!(sql_lines(lake.path(), count), ["n,ids", "2,2"]);

    // Another rule saved into the same window keeps this rule's rows.
    findings(lake.path(), &["--save", "--rules", "first-seen"]);
    let by_rule = "SELECT rule, count(*) AS n FROM findings GROUP BY rule ORDER BY rule";
    let expected = ["rule,n", "credential-elsewhere,2", "first-seen,1"];
    assert_eq!(sql_lines(lake.path(), by_rule), expected);

    // `schema` documents the table.
    let (code, out, err) = run(&["schema", "findings", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    for column in [
        "id,string,",
        "event_ids,list<string>,",
        "window_start,timestamp (UTC),",
    ] {
        assert!(out.contains(column), "{column}: {out}");
    }
}

#[test]
fn list_and_explain_show_the_catalogue() {
    let (code, out, _) = run(&["detect", "--list", "--format", "csv"]);
    assert_eq!(code, 0);
    for (rule, _) in FIRES {
        assert!(out.contains(rule), "{rule}");
    }
    let (code, out, _) = run(&["detect", "--explain", "fan-out"]);
    assert_eq!(code, 0);
    assert!(out.contains("min_fanout_accounts = 4"), "{out}");
    assert!(out.contains("False positives:"), "{out}");
    let (code, _, err) = run(&["detect", "--explain", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown rule"), "{err}");
}

/// What OCSF requires of a Detection Finding with the `cloud` profile, as resolved from the
/// schema (class `detection_finding` extends `finding` extends `base_event`, objects with their
/// `extends` chains and constraints): the union of what v1.2.0 (the version the output declares
/// in `metadata.version`) and the schema at a5cfc68 (1.9.0-dev) require. v1.2.0 adds
/// `finding_info.title` and `metadata.product.vendor_name`; the output is valid for both.
const OCSF_REQUIRED: &[&str] = &[
    "activity_id",
    "category_uid",
    "class_uid",
    "finding_info",
    "metadata",
    "severity_id",
    "time",
    "type_uid",
    "cloud",
    "cloud.provider",
    "metadata.product",
    "metadata.version",
    "finding_info.uid",
    "finding_info.title",
    "metadata.product.vendor_name",
    "finding_info.analytic.type_id",
];

/// Objects that need at least one of these attributes (`at_least_one` constraints).
const OCSF_AT_LEAST_ONE: &[(&str, &[&str])] = &[
    ("metadata.product", &["name", "uid"]),
    ("finding_info.analytic", &["name", "uid"]),
    (
        "finding_info.attacks[]",
        &["tactic", "technique", "sub_technique"],
    ),
    (
        "evidences[]",
        &["actor", "api", "src_endpoint", "resources", "data"],
    ),
    (
        "evidences[].actor",
        &["user", "session", "process", "invoked_by"],
    ),
    ("evidences[].actor.user", &["name", "uid"]),
    ("cloud.account", &["name", "uid"]),
];

/// The values at `path` (`a.b`, `a[].b` for every element of list `a`).
fn at_path<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut values = vec![value];
    for part in path.split('.') {
        let (name, each) = match part.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (part, false),
        };
        values = values
            .into_iter()
            .filter_map(|v| v.get(name))
            .flat_map(|v| match (each, v) {
                (true, Value::Array(items)) => items.iter().collect(),
                (true, _) => Vec::new(),
                (false, v) => vec![v],
            })
            .collect();
    }
    values
}

#[test]
fn ocsf_output_has_every_required_attribute() {
    let mut checked = 0;
    for rule in [
        "credential-elsewhere",
        "cross-account-outside",
        "rare-sts-api",
    ] {
        let lake = fixture_lake(rule, "fires");
        let config = config_args(rule);
        let args: Vec<&str> = config.iter().map(String::as_str).collect();
        let (code, out, err) = detect(lake.path(), &[&args[..], &["--format", "ocsf"]].concat());
        assert_eq!(code, 0, "{err}");
        let objects: Vec<Value> = serde_json::from_str(&out).unwrap();
        for object in &objects {
            for path in OCSF_REQUIRED {
                assert!(
                    !at_path(object, path).is_empty(),
                    "{rule}: {path} in {object:#}"
                );
            }
            for (path, any) in OCSF_AT_LEAST_ONE {
                for inner in at_path(object, path) {
                    let has = any.iter().any(|a| inner.get(a).is_some());
                    assert!(has, "{rule}: {path} needs one of {any:?}: {inner}");
                }
            }
            assert_eq!(object["class_uid"], 2004);
            assert_eq!(object["type_uid"], 200401);
            assert_eq!(object["metadata"]["profiles"][0], "cloud");
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

/// A lake of ../shared/real-logs with derived tables, or None when ../shared is absent.
fn real_lake() -> Option<tempfile::TempDir> {
    let logs = shared()?.join("real-logs");
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[logs.to_str().unwrap(), "--derive"]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
    Some(lake)
}

#[test]
fn real_stratus_detonations_are_flagged_high() {
    let Some(lake) = real_lake() else { return };
    let day = |day: &str, rule: &str| -> Vec<Value> {
        let args = [
            "--from",
            day,
            "--to",
            day,
            "--rules",
            rule,
            "--min-severity",
            "high",
        ];
        let lake = lake.path().to_str().unwrap();
        let (code, out, err) =
            run(&[&["detect", "--lake", lake, "--format", "json"], &args[..]].concat());
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    };
    // Stratus sts-federation-token: a user mints long federated credentials.
    let federation = day("2024-11-30", "rare-sts-api");
    assert!(
        federation
            .iter()
            .any(|f| f["details"]["api"] == "GetFederationToken"
                && f["principal_arn"]
                    .as_str()
                    .unwrap_or("")
                    .contains("stratus-red-team")),
        "{federation:#?}"
    );
    // Stratus ec2-steal-instance-credentials: an instance's key used from elsewhere.
    let stolen = day("2024-08-02", "credential-elsewhere");
    assert!(
        stolen
            .iter()
            .any(|f| f["access_key_id"] == "ASIAP5CT9NN8EYVU1FXV"),
        "{stolen:#?}"
    );
}
