//! `sts-audit report compliance`: the three formats over the sample lake carry its real
//! numbers and findings, two runs give the same bytes, the manifest matches the output, hostile
//! values are escaped, and the HTML loads in a real headless browser (Debian's chromium,
//! installed by scripts/install-browser.sh) with no console error and no network request.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::*;

/// The sample's high findings: (rule, stable id), as `detect` reports them.
const HIGH_FINDINGS: [(&str, &str); 4] = [
    ("duration-anomaly", "5908cad0fd7f588a3eea3e61a0a3ffb5"),
    ("credential-elsewhere", "dd4a3ca37c9180380ddb189202fb4c4f"),
    ("rare-sts-api", "291cc64b162ec98cbc6db138d358adc6"),
    ("rare-sts-api", "da6b03a5cb4daf0d9a19e5cd08c168b0"),
];

/// Runs `report compliance` on `lake` into `output`; returns (exit code, stderr).
fn compliance(lake: &Path, output: &Path, extra: &[&str]) -> (i32, String) {
    let run = bin()
        .args(["report", "compliance", "--lake"])
        .arg(lake)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .expect("run sts-audit");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    (run.status.code().unwrap_or(-1), stderr)
}

fn written(lake: &Path, output: &Path) -> Vec<u8> {
    let (code, stderr) = compliance(lake, output, &[]);
    assert_eq!(code, 0, "{stderr}");
    std::fs::read(output).unwrap()
}

fn manifest_of(output: &Path) -> Value {
    let mut name = output.as_os_str().to_owned();
    name.push(".manifest.json");
    serde_json::from_slice(&std::fs::read(PathBuf::from(name)).unwrap()).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn json_carries_the_samples_coverage_access_and_findings() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("report.json");
    let report: Value = serde_json::from_slice(&written(lake.path(), &path)).unwrap();
    assert_eq!(report["schema_version"], "1");
    assert_eq!(report["period"]["start"], "2024-02-01T00:00:00Z");
    assert_eq!(report["period"]["end"], "2024-03-02T00:00:00Z");
    assert_eq!(report["period"]["chosen"], "default");
    let section = |id: &str| -> Vec<Value> {
        let sections = report["sections"].as_array().unwrap();
        let found = sections.iter().find(|s| s["id"] == id).unwrap();
        let columns: Vec<&str> = found["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let rows = found["rows"].as_array().unwrap();
        rows.iter()
            .map(|row| {
                let cells = row.as_array().unwrap();
                let object = columns
                    .iter()
                    .zip(cells)
                    .map(|(c, v)| (c.to_string(), v.clone()));
                Value::Object(object.collect())
            })
            .collect()
    };
    // The sample's numbers, counted independently by `sts-audit sql` over the same files:
    // 253 records from 21 distinct log files in 3 accounts on 1 day.
    let coverage = section("coverage");
    let all = coverage
        .iter()
        .find(|r| r["account_id"] == "(all)")
        .unwrap();
    // 22 log files hold them, one a re-delivery (`_R_`) of another under a second name. Which
    // copy of each of its records an ingest keeps depends on which worker reads it first, so
    // the records name 21 files, or 22 when the two copies' records are split between them.
    assert_eq!(all["records"].as_i64(), Some(253));
    let files = all["files"].as_i64();
    assert!(files == Some(21) || files == Some(22), "{files:?}");
    assert_eq!(
        (all["days"].as_i64(), all["regions"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(coverage.len(), 4, "3 accounts and the total");
    assert!(
        section("gaps").is_empty(),
        "every account logged on the sample's day"
    );
    let per_day = section("assumptions-per-day");
    assert_eq!(per_day.len(), 1);
    assert_eq!(
        (
            per_day[0]["succeeded"].as_i64(),
            per_day[0]["failed"].as_i64()
        ),
        (Some(10), Some(3))
    );
    let denied = section("denied");
    assert_eq!(denied.len(), 1);
    assert_eq!(
        denied[0]["principal"],
        "arn:aws:iam::111111111111:user/mallory"
    );
    assert_eq!(denied[0]["attempts"], 3);
    let saml = section("access");
    let bob = saml
        .iter()
        .find(|r| r["principal"] == "bob@example.com")
        .unwrap();
    assert_eq!(bob["federation"], "http://www.okta.com/exk1sample");
    let cross = section("cross-account");
    let pairs: Vec<(String, String, String, i64)> = cross
        .iter()
        .map(|r| {
            (
                r["source_account_id"].as_str().unwrap().into(),
                r["target_account_id"].as_str().unwrap().into(),
                r["source_class"].as_str().unwrap().into(),
                r["assumptions"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (
                "111111111111".into(),
                "222222222222".into(),
                "internal".into(),
                5
            ),
            (
                "999999999999".into(),
                "222222222222".into(),
                "internal".into(),
                1
            ),
        ]
    );
    let durations = section("durations");
    let read_only = durations
        .iter()
        .find(|r| r["role_arn"] == "arn:aws:iam::222222222222:role/ReadOnly")
        .unwrap();
    assert_eq!(
        (
            read_only["granted_max"].as_i64(),
            read_only["active_max"].as_i64()
        ),
        (Some(900), Some(2160))
    );
    assert_eq!(read_only["used_after_expiration"], 1);
    assert_eq!(section("role-chains").len(), 1);
    let findings = report["findings"].as_array().unwrap();
    let severities: Vec<&str> = findings
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities.iter().filter(|s| **s == "high").count(), 4);
    assert_eq!(severities.iter().filter(|s| **s == "medium").count(), 3);
    assert_eq!(severities.iter().filter(|s| **s == "low").count(), 4);
    for (rule, id) in HIGH_FINDINGS {
        assert!(
            findings.iter().any(|f| f["id"] == id && f["rule"] == rule),
            "{rule} {id}"
        );
    }
    assert!(
        !String::from_utf8(std::fs::read(&path).unwrap())
            .unwrap()
            .contains("detected_at")
    );
}

#[test]
fn trusted_accounts_come_from_the_config() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("sts-audit.toml");
    std::fs::write(
        &config,
        "[[accounts.trusted]]\nid = \"999999999999\"\nname = \"scanner vendor\"\n",
    )
    .unwrap();
    let path = out.path().join("report.json");
    let (code, stderr) = compliance(lake.path(), &path, &["--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(&path).unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    let cross = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "cross-account")
        .unwrap();
    let classes: Vec<&str> = cross["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[2].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["internal", "trusted"]);
}

#[test]
fn every_format_is_byte_identical_across_runs_and_matches_its_manifest() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    for name in ["report.html", "report.md", "report.json"] {
        let first = written(lake.path(), &out.path().join(format!("1-{name}")));
        let second = written(lake.path(), &out.path().join(format!("2-{name}")));
        assert!(first == second, "{name}: two runs differ");
        let manifest = manifest_of(&out.path().join(format!("1-{name}")));
        assert_eq!(manifest["sha256"], sha256_hex(&first), "{name}");
        assert_eq!(manifest["bytes"], first.len() as u64);
        assert_eq!(manifest["output"], format!("1-{name}"));
        assert_eq!(manifest["lake_fingerprint"].as_str().unwrap().len(), 16);
        assert_eq!(
            manifest["event_files"],
            lake_files(lake.path()).len() as u64
        );
        assert_eq!(manifest["period"]["start"], "2024-02-01T00:00:00Z");
        assert_eq!(manifest["program_version"], env!("CARGO_PKG_VERSION"));
        let sections = manifest["sections"].as_array().unwrap();
        assert!(
            sections.iter().any(
                |s| s["id"] == "coverage" && s["sql"].as_str().unwrap().contains("FROM events")
            )
        );
        assert_eq!(manifest["detections"].as_array().unwrap().len(), 9);
        // The manifests differ only in the output's name.
        let other = manifest_of(&out.path().join(format!("2-{name}")));
        assert_eq!(manifest["sha256"], other["sha256"]);
    }
    let markdown = std::fs::read_to_string(out.path().join("1-report.md")).unwrap();
    for heading in [
        "## Findings",
        "## Coverage of the logs",
        "## Cross-account access matrix",
        "## Denied attempts",
    ] {
        assert!(markdown.contains(heading), "{heading}");
    }
    for (_, id) in HIGH_FINDINGS {
        assert!(
            markdown.contains(&format!("<a id=\"finding-{id}\"></a>HIGH")),
            "{id}"
        );
    }
}

#[test]
fn a_period_without_an_output_file_of_a_known_kind_is_a_usage_error() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = compliance(lake.path(), &out.path().join("report.txt"), &[]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains(".html, .md or .json"), "{stderr}");
    let html = out.path().join("r.html");
    let (code, _) = compliance(lake.path(), &html, &["--account", "111111111111"]);
    assert_eq!(code, 64);
    let run = bin()
        .args(["report", "compliance", "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(64));
    let (code, _) = compliance(lake.path(), &html, &["--from", "yesterday"]);
    assert_eq!(code, 64);
    let list = bin()
        .args(["report", "--list", "--format", "csv"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("\ncompliance,"));
}

#[test]
fn a_given_period_is_kept_and_an_empty_one_reports_nothing_found() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("before.json");
    let (code, stderr) = compliance(
        lake.path(),
        &path,
        &["--from", "2024-01-01", "--to", "2024-01-31"],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(report["period"]["start"], "2024-01-01T00:00:00Z");
    assert_eq!(report["period"]["end"], "2024-02-01T00:00:00Z");
    assert_eq!(report["period"]["chosen"], "given");
    assert_eq!(report["findings"].as_array().unwrap().len(), 0);
}

/// A lake whose attacker-controlled fields hold markup, a table break and a formula.
fn hostile_lake() -> tempfile::TempDir {
    let lake = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut denied = record("hostile-1", "2024-03-01T10:00:00Z", "222222222222");
    denied["eventSource"] = "sts.amazonaws.com".into();
    denied["eventName"] = "AssumeRole".into();
    denied["errorCode"] = "AccessDenied".into();
    denied["userAgent"] = "<script>alert(1)</script>".into();
    denied["userIdentity"]["arn"] =
        "arn:aws:iam::111111111111:user/=HYPERLINK(\"http://192.0.2.9\")".into();
    denied["userIdentity"]["accountId"] = "111111111111".into();
    denied["errorMessage"] = "User: x is not authorized <img src=\"http://192.0.2.9/p.png\"> | `rm` on resource: arn:aws:iam::222222222222:role/Admin".into();
    denied["requestParameters"] = serde_json::json!({"roleArn": "arn:aws:iam::222222222222:role/Admin", "roleSessionName": "<b>s</b>"});
    let normal = record("normal-1", "2024-03-01T11:00:00Z", "222222222222");
    write_records(&logs.path().join("hostile.json.gz"), &[denied, normal]);
    let run = ingest(lake.path(), &[logs.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    lake
}

#[test]
fn hostile_values_are_escaped_in_html_and_markdown() {
    let lake = hostile_lake();
    let out = tempfile::tempdir().unwrap();
    let html = String::from_utf8(written(lake.path(), &out.path().join("r.html"))).unwrap();
    assert!(!html.contains("<img src=\"http"), "markup passed through");
    assert!(!html.contains("<script>"), "a script passed through");
    // Escaped (long values get break opportunities after `/`).
    assert!(
        html.contains("&lt;img src=&quot;http:/"),
        "the message is not shown escaped"
    );
    let markdown = String::from_utf8(written(lake.path(), &out.path().join("r.md"))).unwrap();
    assert!(!markdown.contains(" <img"), "markup passed through");
    assert!(markdown.contains("\\<img src=\"http://192.0.2.9/p.png\"\\> \\| \\`rm\\`"));
    // Pasted into a spreadsheet, the cell does not start a formula.
    assert!(!markdown.contains("| =HYPERLINK"));
    let report = browser_check(&out.path().join("r.html"), None);
    assert_eq!(report["requests"], serde_json::json!([]), "{report}");
}

/// The headless browser, installed on first use; the test fails when it cannot be.
fn chromium() -> PathBuf {
    let output = Command::new(repo().join("scripts/install-browser.sh"))
        .output()
        .expect("run scripts/install-browser.sh");
    assert!(
        output.status.success(),
        "installing chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// What the page did in chromium (scripts/browser-check.py), with a screenshot when asked.
fn browser_check(page: &Path, screenshot: Option<&Path>) -> Value {
    let mut command = Command::new("python3");
    command
        .arg(repo().join("scripts/browser-check.py"))
        .arg(chromium())
        .arg(page);
    if let Some(path) = screenshot {
        command.arg("--screenshot").arg(path);
    }
    let output = command.output().expect("run scripts/browser-check.py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn html_loads_offline_in_a_headless_browser_with_every_section_and_finding() {
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("compliance.html");
    let html = String::from_utf8(written(lake.path(), &page)).unwrap();
    for anchor in [
        "findings",
        "coverage",
        "access",
        "cross-account",
        "durations",
        "role-chains",
        "denied",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{anchor}\">")),
            "{anchor}"
        );
    }
    for (rule, id) in HIGH_FINDINGS {
        assert!(
            html.contains(&format!("class=\"finding high\" id=\"finding-{id}\"")),
            "{rule} {id}"
        );
        assert!(html.contains(&format!("href=\"#finding-{id}\"")), "{id}");
    }
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 3);
    assert!(!html.contains("<script") && !html.contains("src=\"http") && !html.contains("@import"));
    // Kept beside the test binary, to be looked at.
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compliance-report.png");
    let report = browser_check(&page, Some(&screenshot));
    assert_eq!(report["loaded"], true, "{report}");
    assert_eq!(report["console_errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["exceptions"], serde_json::json!([]), "{report}");
    assert_eq!(report["requests"], serde_json::json!([]), "{report}");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn the_browser_check_catches_a_network_request_and_a_script_error() {
    let out = tempfile::tempdir().unwrap();
    let page = out.path().join("bad.html");
    let bad = "<!DOCTYPE html><html><body><img src=\"http://192.0.2.1/x.png\"><script>nosuch()</script></body></html>";
    std::fs::write(&page, bad).unwrap();
    let report = browser_check(&page, None);
    assert_eq!(
        report["requests"],
        serde_json::json!(["http://192.0.2.1/x.png"])
    );
    assert_eq!(
        report["exceptions"].as_array().unwrap().len(),
        1,
        "{report}"
    );
}

#[test]
fn derived_tables_and_computed_views_give_the_same_bytes() {
    // One lake, so that both reports read the same rows (which copy of a re-delivered record
    // an ingest keeps is not fixed: see `json_carries_the_samples_coverage_access_and_findings`).
    let lake = sample_lake();
    let out = tempfile::tempdir().unwrap();
    for name in ["report.html", "report.json"] {
        let views = out.path().join(format!("views-{name}"));
        let (code, stderr) = compliance(lake.path(), &views, &["--no-derived"]);
        assert_eq!(code, 0, "{stderr}");
        let from_views = std::fs::read(&views).unwrap();
        let derived = bin()
            .args(["derive", "--lake"])
            .arg(lake.path())
            .output()
            .unwrap();
        assert!(derived.status.success());
        assert!(lake.path().join("derived/session_usage_daily").is_dir());
        let from_tables = written(lake.path(), &out.path().join(format!("tables-{name}")));
        let first_difference = from_views
            .iter()
            .zip(&from_tables)
            .position(|(a, b)| a != b)
            .unwrap_or(from_views.len().min(from_tables.len()));
        let around = |bytes: &[u8]| {
            let start = first_difference.saturating_sub(200);
            let end = (first_difference + 200).min(bytes.len());
            String::from_utf8_lossy(&bytes[start.min(end)..end]).into_owned()
        };
        assert!(
            from_views == from_tables,
            "{name}: derived tables change the report at byte {first_difference}:\n{}\n---\n{}",
            around(&from_views),
            around(&from_tables)
        );
    }
}
