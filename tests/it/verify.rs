//! `verify` on trails written here in CloudTrail's exact format and layout: gzip log files,
//! hourly digests (fields in CloudTrail's order, Java's `\/` escapes, `null` in a starting
//! digest), chained and signed (SHA256withRSA over the documented string) with a key pair made
//! once per test binary; the public key is handed over as `list-public-keys` prints it. Then
//! each tampering a user has reported is applied to a copy, and the report must name exactly it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine as _;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::util::*;

pub const ACCOUNT: &str = "111122223333";
pub const REGION: &str = "eu-west-1";
pub const TRAIL: &str = "org_trail";
pub const BUCKET: &str = "trail-bucket";
/// The fingerprint CloudTrail would name the key by (never recomputed by verify).
const FINGERPRINT: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
/// The trail's first digest starts here (2024-03-01T00:04:05Z); each covers an hour.
const CHAIN_START: i64 = 1_709_251_445;

fn keys() -> &'static (RsaPrivateKey, RsaPrivateKey) {
    static KEYS: OnceLock<(RsaPrivateKey, RsaPrivateKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rsa::rand_core::OsRng;
        (
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            RsaPrivateKey::new(&mut rng, 2048).unwrap(),
        )
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn stamp(at: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap()
        .format(format)
        .to_string()
}

/// What to write: `hours` digests, two log files an hour, and the changes to CloudTrail's
/// behaviour a test needs (a digest signed with the wrong key, a pause in logging).
#[derive(Clone, Default)]
pub struct TrailSpec {
    pub hours: usize,
    pub wrong_key_at: Option<usize>,
    /// Logging pauses for two hours before digest `i`, which starts a new chain.
    pub restart_at: Option<usize>,
    /// `AWSLogs/o-.../` above the account.
    pub org: Option<&'static str>,
    pub accounts: Vec<String>,
}

/// One digest written: its key (from the bucket's root) and signature.
pub struct Written {
    pub key: String,
    pub signature: String,
}

/// Writes the trail under `root` (as a bucket copied to disk); returns its digests in order.
pub fn write_trail(root: &Path, spec: &TrailSpec) -> Vec<Written> {
    let accounts = match spec.accounts.is_empty() {
        true => vec![ACCOUNT.to_owned()],
        false => spec.accounts.clone(),
    };
    accounts
        .iter()
        .flat_map(|account| write_account(root, spec, account))
        .collect()
}

fn write_account(root: &Path, spec: &TrailSpec, account: &str) -> Vec<Written> {
    let base = match spec.org {
        Some(org) => format!("AWSLogs/{org}/{account}"),
        None => format!("AWSLogs/{account}"),
    };
    let mut written = Vec::new();
    let mut previous: Option<(String, String, String)> = None; // key, hash, signature
    let mut start = CHAIN_START;
    for hour in 0..spec.hours {
        if spec.restart_at == Some(hour) {
            start += 2 * 3600;
            previous = None;
        }
        let end = start + 3600;
        let logs: Vec<String> = [600, 2400]
            .iter()
            .map(|offset| write_log(root, &base, account, start + offset, hour))
            .collect();
        let signer = match spec.wrong_key_at == Some(hour) {
            true => &keys().1,
            false => &keys().0,
        };
        let at = Hour {
            account,
            region: REGION,
            base: &base,
            start,
            end,
        };
        let digest = write_digest(root, &at, previous.as_ref(), &logs, signer);
        previous = Some(digest.clone());
        let (key, _, signature) = digest;
        written.push(Written { key, signature });
        start = end;
    }
    written
}

/// Where and when a digest is.
struct Hour<'a> {
    account: &'a str,
    region: &'a str,
    /// `[prefix/]AWSLogs/[o-org/]<account>`
    base: &'a str,
    start: i64,
    end: i64,
}

/// Writes one signed digest naming `logs`; returns its key, SHA-256 and signature.
fn write_digest(
    root: &Path,
    at: &Hour,
    previous: Option<&(String, String, String)>,
    logs: &[String],
    signer: &RsaPrivateKey,
) -> (String, String, String) {
    let (account, region, end) = (at.account, at.region, at.end);
    let key = format!(
        "{}/CloudTrail-Digest/{region}/{}/{account}_CloudTrail-Digest_{region}_{TRAIL}_us-east-1_{}.json.gz",
        at.base,
        stamp(end, "%Y/%m/%d"),
        stamp(end, "%Y%m%dT%H%M%SZ")
    );
    let json = digest_json(account, at.start, end, &key, previous, root, logs);
    let digest_hash = hex(&Sha256::digest(json.as_bytes()));
    let to_sign = format!(
        "{}\n{BUCKET}/{key}\n{digest_hash}\n{}",
        stamp(end, "%Y-%m-%dT%H:%M:%SZ"),
        previous.map_or("null", |p| p.2.as_str())
    );
    let hashed = Sha256::digest(to_sign.as_bytes());
    let signature = hex(&signer.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed).unwrap());
    put(root, &key, &gzip(json.as_bytes()));
    (key, digest_hash, signature)
}

/// Not a test: signs the log files under `$STS_AUDIT_SIGN_TRAIL` (e.g. a trail of
/// `gen_cloudtrail.py`) with hourly digests in CloudTrail's format, replacing any digests there,
/// and writes `public-keys.json` beside `AWSLogs/` (`bench/verify.sh` runs it).
#[test]
#[ignore = "a helper for bench/verify.sh"]
fn sign_trail_for_bench() {
    let root = PathBuf::from(std::env::var("STS_AUDIT_SIGN_TRAIL").expect("STS_AUDIT_SIGN_TRAIL"));
    let mut groups: std::collections::BTreeMap<(String, String), Vec<(i64, String)>> =
        Default::default();
    for entry in walkdir::WalkDir::new(&root) {
        let entry = entry.unwrap();
        let path = entry
            .path()
            .strip_prefix(&root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if path.contains("/CloudTrail-Digest/") && entry.file_type().is_file() {
            std::fs::remove_file(entry.path()).unwrap();
            continue;
        }
        let Some((base, rest)) = path.split_once("/CloudTrail/") else {
            continue;
        };
        if !path.ends_with(".json.gz") {
            continue;
        }
        let region = rest.split('/').next().unwrap().to_owned();
        let name = rest.rsplit('/').next().unwrap();
        let stamp = name.split('_').nth(3).unwrap();
        let at = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").unwrap();
        let at = at.and_utc().timestamp();
        groups
            .entry((base.to_owned(), region))
            .or_default()
            .push((at, path));
    }
    for ((base, region), mut logs) in groups {
        logs.sort();
        let account = base.rsplit('/').next().unwrap();
        // Hours from 23:04:05 before the first file's day, as CloudTrail's digests run.
        let mut start = logs[0].0 - logs[0].0.rem_euclid(86_400) - 3600 + 245;
        let mut previous = None;
        let mut next = 0;
        while next < logs.len() {
            let end = start + 3600;
            let hour: Vec<String> = logs[next..]
                .iter()
                .take_while(|(at, _)| *at < end)
                .map(|(_, path)| path.clone())
                .collect();
            next += hour.len();
            let at = Hour {
                account,
                region: &region,
                base: &base,
                start,
                end,
            };
            previous = Some(write_digest(
                &root,
                &at,
                previous.as_ref(),
                &hour,
                &keys().0,
            ));
            start = end;
        }
    }
    let keys = public_keys_file(&root);
    eprintln!("signed; public keys in {}", keys.display());
}

/// One log file delivered at `at` with one record; returns its key.
fn write_log(root: &Path, base: &str, account: &str, at: i64, hour: usize) -> String {
    let key = format!(
        "{base}/CloudTrail/{REGION}/{}/{account}_CloudTrail_{REGION}_{}_{:016}.json.gz",
        stamp(at, "%Y/%m/%d"),
        stamp(at, "%Y%m%dT%H%MZ"),
        at
    );
    put(root, &key, &gzip(log_json(account, at, hour).as_bytes()));
    key
}

pub fn log_json(account: &str, at: i64, hour: usize) -> String {
    format!(
        r#"{{"Records":[{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::{account}:user/alice","accountId":"{account}"}},"eventTime":"{}","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","awsRegion":"{REGION}","sourceIPAddress":"203.0.113.10","requestParameters":{{"roleArn":"arn:aws:iam::{account}:role/Admin","roleSessionName":"s{hour}"}},"eventID":"{account}-{at}","eventType":"AwsApiCall","recipientAccountId":"{account}"}}]}}"#,
        stamp(at - 60, "%Y-%m-%dT%H:%M:%SZ")
    )
}

fn put(root: &Path, key: &str, bytes: &[u8]) {
    let path = root.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A digest as CloudTrail writes it: its fields in order, `/` escaped as `\/` (Java's JSON).
fn digest_json(
    account: &str,
    start: i64,
    end: i64,
    key: &str,
    previous: Option<&(String, String, String)>,
    root: &Path,
    logs: &[String],
) -> String {
    let time = |t: i64| format!("\"{}\"", stamp(t, "%Y-%m-%dT%H:%M:%SZ"));
    let text = |s: &str| serde_json::to_string(s).unwrap();
    let files: Vec<String> = logs
        .iter()
        .map(|log| {
            let content = gunzip(&std::fs::read(root.join(log)).unwrap());
            format!(
                r#"{{"s3Bucket":{},"s3Object":{},"hashValue":"{}","hashAlgorithm":"SHA-256","newestEventTime":{},"oldestEventTime":{}}}"#,
                text(BUCKET),
                text(log),
                hex(&Sha256::digest(&content)),
                time(start),
                time(start)
            )
        })
        .collect();
    let (prev_bucket, prev_key, prev_hash, prev_algorithm, prev_signature) = match previous {
        Some((key, hash, signature)) => (
            text(BUCKET),
            text(key),
            text(hash),
            text("SHA-256"),
            text(signature),
        ),
        None => {
            let null = || "null".to_owned();
            (null(), null(), null(), null(), null())
        }
    };
    let json = format!(
        r#"{{"awsAccountId":"{account}","digestStartTime":{},"digestEndTime":{},"digestS3Bucket":{},"digestS3Object":{},"digestPublicKeyFingerprint":"{FINGERPRINT}","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":{},"oldestEventTime":{},"previousDigestS3Bucket":{prev_bucket},"previousDigestS3Object":{prev_key},"previousDigestHashValue":{prev_hash},"previousDigestHashAlgorithm":{prev_algorithm},"previousDigestSignature":{prev_signature},"logFiles":[{}]}}"#,
        time(start),
        time(end),
        text(BUCKET),
        text(key),
        time(end),
        time(start),
        files.join(",")
    );
    json.replace('/', "\\/")
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(bytes), &mut out).unwrap();
    out
}

/// The public key as `aws cloudtrail list-public-keys` prints it (base64 DER PKCS#1).
pub fn public_keys_file(dir: &Path) -> PathBuf {
    let der = keys().0.to_public_key().to_pkcs1_der().unwrap();
    let listing = serde_json::json!({"PublicKeyList": [{
        "Value": base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        "ValidityStartTime": "2024-01-01T00:00:00+00:00",
        "ValidityEndTime": "2024-12-31T00:00:00+00:00",
        "Fingerprint": FINGERPRINT,
    }]});
    let path = dir.join("public-keys.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&listing).unwrap()).unwrap();
    path
}

/// The period of a 6-hour trail, ending an hour after its newest digest.
const PERIOD: [&str; 4] = [
    "--from",
    "2024-03-01T00:00:00Z",
    "--to",
    "2024-03-01T07:00:00Z",
];

pub struct Verified {
    pub code: i32,
    pub report: Value,
    pub stderr: String,
}

pub fn verify(sources: &[&Path], keys: &Path, extra: &[&str]) -> Verified {
    let mut command = bin();
    command
        .arg("verify")
        .args(sources)
        .arg("--public-keys")
        .arg(keys);
    command.args(["--format", "json"]).args(extra);
    run_verify(command)
}

pub fn run_verify(mut command: Command) -> Verified {
    let output = command.output().expect("run sts-audit verify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}\n{stderr}"));
    Verified {
        code: output.status.code().unwrap_or(-1),
        report,
        stderr,
    }
}

/// The totals' counts that are not zero, as `name=n` (a report says exactly this and no more).
pub fn nonzero(report: &Value) -> Vec<String> {
    let totals = report["totals"].as_object().unwrap();
    let mut counts: Vec<String> = totals
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(name, n)| format!("{name}={n}"))
        .collect();
    counts.sort();
    counts
}

/// The first problem of `status` (the pending newest digest is listed too).
pub fn problem<'a>(report: &'a Value, kind: &str, status: &str) -> &'a Value {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == kind && p["status"] == status)
        .unwrap_or_else(|| panic!("no {kind} {status} in {report}"))
}

/// A fresh 6-hour trail and its public keys, in a temporary folder.
fn trail(spec: TrailSpec) -> (tempfile::TempDir, Vec<Written>, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let digests = write_trail(&dir.path().join("bucket"), &TrailSpec { hours: 6, ..spec });
    let keys = public_keys_file(dir.path());
    (dir, digests, keys)
}

fn check(dir: &Path, keys: &Path, extra: &[&str]) -> Verified {
    let mut args = PERIOD.to_vec();
    args.extend_from_slice(extra);
    verify(&[&dir.join("bucket")], keys, &args)
}

#[test]
fn an_intact_trail_verifies_offline_with_its_newest_digest_pending() {
    let (dir, _, keys) = trail(TrailSpec::default());
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.report, run.stderr);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=5",
            "logs_pending=2",
            "logs_valid=10"
        ]
    );
    assert_eq!(run.report["passed"], true);
    let region = &run.report["regions"][0];
    assert_eq!(
        (region["account"].as_str(), region["region"].as_str()),
        (Some(ACCOUNT), Some(REGION))
    );
    assert_eq!(region["trails"], serde_json::json!([TRAIL]));

    // The table says the same.
    let (code, text) = verify_as(dir.path(), &keys, "table");
    assert_eq!(code, Some(0));
    assert!(
        text.contains("| 111122223333 | eu-west-1 | org_trail | 5 "),
        "{text}"
    );
    assert!(text.contains("verified: every digest"), "{text}");
}

/// The first log file of digest `hour` (0-based), from the bucket's root.
fn log_of(dir: &Path, hour: usize) -> PathBuf {
    let at = CHAIN_START + hour as i64 * 3600 + 600;
    let key = format!(
        "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{}/{ACCOUNT}_CloudTrail_{REGION}_{}_{at:016}.json.gz",
        stamp(at, "%Y/%m/%d"),
        stamp(at, "%Y%m%dT%H%MZ"),
    );
    dir.join("bucket").join(key)
}

#[test]
fn a_modified_log_file_is_reported_as_modified() {
    let (dir, _, keys) = trail(TrailSpec::default());
    let log = log_of(dir.path(), 2);
    let content = String::from_utf8(gunzip(&std::fs::read(&log).unwrap())).unwrap();
    std::fs::write(
        &log,
        gzip(content.replace("203.0.113.10", "198.51.100.7").as_bytes()),
    )
    .unwrap();
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4, "{}", run.report);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=5",
            "logs_modified=1",
            "logs_pending=2",
            "logs_valid=9"
        ]
    );
    let problem = problem(&run.report, "log", "modified");
    assert_eq!(problem["file"], log.to_str().unwrap());
}

#[test]
fn a_deleted_log_file_is_reported_missing() {
    let (dir, _, keys) = trail(TrailSpec::default());
    std::fs::remove_file(log_of(dir.path(), 1)).unwrap();
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=5",
            "logs_missing=1",
            "logs_pending=2",
            "logs_valid=9"
        ]
    );
    let missing = problem(&run.report, "log", "missing")["file"]
        .as_str()
        .unwrap();
    assert!(
        missing.starts_with("s3://trail-bucket/AWSLogs/"),
        "{missing}"
    );
}

/// A log file of hour 3 that no digest lists, its name ending in `unique`; returns its path.
fn inject_log(dir: &Path, unique: &str) -> PathBuf {
    let injected = log_of(dir, 3).with_file_name(format!(
        "{ACCOUNT}_CloudTrail_{REGION}_20240301T0320Z_{unique}.json.gz"
    ));
    let records = log_json(ACCOUNT, CHAIN_START + 3 * 3600 + 900, 9);
    std::fs::write(&injected, gzip(records.as_bytes())).unwrap();
    injected
}

#[test]
fn an_injected_log_file_is_reported_unlisted() {
    let (dir, _, keys) = trail(TrailSpec::default());
    let injected = inject_log(dir.path(), "injectedinjected");
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=5",
            "logs_pending=2",
            "logs_unlisted=1",
            "logs_valid=10"
        ]
    );
    assert_eq!(
        problem(&run.report, "log", "unlisted")["file"],
        injected.to_str().unwrap()
    );
}

/// `verify --format FORMAT` on the trail in `dir`: exit code and stdout.
fn verify_as(dir: &Path, keys: &Path, format: &str) -> (Option<i32>, String) {
    let output = bin()
        .arg("verify")
        .arg(dir.join("bucket"))
        .arg("--public-keys")
        .arg(keys)
        .args(PERIOD)
        .args(["--format", format])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    (output.status.code(), stdout)
}

#[test]
fn every_verdict_is_a_row_and_a_file_named_to_fool_the_reader_is_shown_escaped() {
    let (dir, _, keys) = trail(TrailSpec::default());
    // An attacker who can write to the bucket picks the name: a terminal escape that erases
    // the line, and a Markdown column.
    let injected = inject_log(dir.path(), "inj\u{1b}[2Kected|x");

    let (code, table) = verify_as(dir.path(), &keys, "table");
    assert_eq!(code, Some(4), "{table}");
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(
        table.contains("log unlisted 111122223333 eu-west-1"),
        "{table}"
    );

    let (code, markdown) = verify_as(dir.path(), &keys, "markdown");
    assert_eq!(code, Some(4));
    assert!(
        markdown.starts_with("## CloudTrail log integrity, 2024-03-01T00:00:00Z"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| 111122223333 | eu-west-1 | org_trail | 5 "),
        "{markdown}"
    );
    assert!(!markdown.contains('\u{1b}'), "{markdown:?}");
    assert!(markdown.contains("ected\\|x.json.gz"), "{markdown}");
    assert!(markdown.contains("**NOT verified"), "{markdown}");

    // Every digest (6), log file (12 listed, 1 injected) and gap (none) is one row, with the
    // lake's `verified` columns.
    let (code, csv) = verify_as(dir.path(), &keys, "csv");
    assert_eq!(code, Some(4));
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "source_file,kind,status,detail,account_id,region,trail,period_start,period_end,\
             digest_file,method,verified_at"
        )
    );
    assert_eq!(lines.count(), 19, "{csv}");
    assert!(!csv.contains('\u{1b}'), "{csv:?}");

    let (code, ndjson) = verify_as(dir.path(), &keys, "ndjson");
    assert_eq!(code, Some(4));
    let rows: Vec<Value> = ndjson
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let count = |kind: &str, status: &str| {
        rows.iter()
            .filter(|r| r["kind"] == kind && r["status"] == status)
            .count()
    };
    assert_eq!(
        [
            count("digest", "valid"),
            count("digest", "pending"),
            count("log", "valid"),
            count("log", "pending"),
            count("log", "unlisted"),
            rows.len()
        ],
        [5, 1, 10, 2, 1, 19]
    );
    let unlisted = rows.iter().find(|r| r["status"] == "unlisted").unwrap();
    assert_eq!(unlisted["source_file"], injected.to_str().unwrap());
}

#[test]
fn a_deleted_digest_in_the_middle_is_one_missing_hour() {
    let (dir, digests, keys) = trail(TrailSpec::default());
    std::fs::remove_file(dir.path().join("bucket").join(&digests[2].key)).unwrap();
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    // The digest before it held its signature in the deleted one: offline, unverifiable; the
    // log files of both hours cannot be proven.
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_missing=1",
            "digests_pending=1",
            "digests_unverifiable=1",
            "digests_valid=3",
            "logs_pending=2",
            "logs_unproven=4",
            "logs_valid=6"
        ]
    );
    let gap = &run.report["regions"][0]["missing_ranges"][0];
    assert_eq!(gap["from"], "2024-03-01T02:04:05Z");
    assert_eq!(gap["to"], "2024-03-01T03:04:05Z");
    assert_eq!(gap["digests"], 1);
}

#[test]
fn two_consecutive_deleted_digests_are_two_missing_hours() {
    let (dir, digests, keys) = trail(TrailSpec::default());
    for digest in &digests[2..4] {
        std::fs::remove_file(dir.path().join("bucket").join(&digest.key)).unwrap();
    }
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_missing=2",
            "digests_pending=1",
            "digests_unverifiable=1",
            "digests_valid=2",
            "logs_pending=2",
            "logs_unproven=6",
            "logs_valid=4"
        ]
    );
    let ranges = &run.report["regions"][0]["missing_ranges"];
    assert_eq!(ranges.as_array().unwrap().len(), 1);
    assert_eq!(ranges[0]["from"], "2024-03-01T02:04:05Z");
    assert_eq!(ranges[0]["to"], "2024-03-01T04:04:05Z");
}

#[test]
fn the_newest_digests_deleted_are_missing_at_the_end_once_overdue() {
    let (dir, digests, keys) = trail(TrailSpec::default());
    for digest in &digests[4..] {
        std::fs::remove_file(dir.path().join("bucket").join(&digest.key)).unwrap();
    }
    // Two hours after the last one deleted, both are overdue.
    let late = [
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-03-01T08:00:00Z",
    ];
    let run = verify(&[&dir.path().join("bucket")], &keys, &late);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_missing=2",
            "digests_unverifiable=1",
            "digests_valid=3",
            "logs_unproven=6",
            "logs_valid=6"
        ]
    );
    let gap = &run.report["regions"][0]["missing_ranges"][0];
    assert_eq!(gap["from"], "2024-03-01T04:04:05Z");
    assert_eq!(gap["digests"], 2);

    // Within two hours of the newest remaining one, nothing is overdue yet: it is pending,
    // and so are the log files delivered after it.
    let early = [
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-03-01T05:00:00Z",
    ];
    let run = verify(&[&dir.path().join("bucket")], &keys, &early);
    assert_eq!(run.code, 0, "{}", run.report);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=3",
            "logs_pending=4",
            "logs_valid=6"
        ]
    );
}

#[test]
fn a_modified_digest_is_invalid() {
    let (dir, digests, keys) = trail(TrailSpec::default());
    let path = dir.path().join("bucket").join(&digests[2].key);
    let json = String::from_utf8(gunzip(&std::fs::read(&path).unwrap())).unwrap();
    // Hide a log file from it: the digest no longer matches its hash and signature.
    let cut = json.find(r#"{"s3Bucket""#).unwrap();
    let end = json[cut..].find("},").unwrap() + cut + 2;
    let edited = format!("{}{}", &json[..cut], &json[end..]);
    std::fs::write(&path, gzip(edited.as_bytes())).unwrap();
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_invalid=1",
            "digests_pending=1",
            "digests_valid=4",
            "logs_pending=2",
            "logs_unlisted=1",
            "logs_unproven=1",
            "logs_valid=8"
        ]
    );
    assert_eq!(
        problem(&run.report, "digest", "invalid")["detail"],
        "its SHA-256 is not the one the next digest records"
    );
}

#[test]
fn a_signature_from_the_wrong_key_is_invalid() {
    let (dir, _, keys) = trail(TrailSpec {
        wrong_key_at: Some(2),
        ..TrailSpec::default()
    });
    let run = check(dir.path(), &keys, &[]);
    assert_eq!(run.code, 4);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_invalid=1",
            "digests_pending=1",
            "digests_valid=4",
            "logs_pending=2",
            "logs_unproven=2",
            "logs_valid=8"
        ]
    );
    assert_eq!(
        problem(&run.report, "digest", "invalid")["detail"],
        "signature does not verify"
    );
}

#[test]
fn a_starting_digest_after_a_pause_is_a_restart_not_a_gap() {
    let (dir, _, keys) = trail(TrailSpec {
        restart_at: Some(3),
        ..TrailSpec::default()
    });
    let late = [
        "--from",
        "2024-03-01T00:00:00Z",
        "--to",
        "2024-03-01T09:00:00Z",
    ];
    let run = verify(&[&dir.path().join("bucket")], &keys, &late);
    // Nothing is missing; the digest before the pause held its signature only in S3's
    // metadata, which a copy on disk does not have.
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_unverifiable=1",
            "digests_valid=4",
            "logs_pending=2",
            "logs_unproven=2",
            "logs_valid=8"
        ]
    );
    let region = &run.report["regions"][0];
    assert_eq!(region["missing_ranges"], serde_json::json!([]));
    assert_eq!(region["restarts"][0]["from"], "2024-03-01T03:04:05Z");
    assert_eq!(region["restarts"][0]["to"], "2024-03-01T05:04:05Z");
    assert_eq!(run.code, 4);
}

/// CloudTrail's `ListPublicKeys` played by `tests/fixtures/verify/fake_cloudtrail.py`: it serves
/// `pages` in turn to each region's requests and logs every request.
struct FakeCloudTrail {
    child: std::process::Child,
    endpoint: String,
    log: PathBuf,
}

impl FakeCloudTrail {
    fn start(dir: &Path, pages: Value) -> FakeCloudTrail {
        let pages_path = dir.join("pages.json");
        std::fs::write(&pages_path, pages.to_string()).unwrap();
        let log = dir.join("requests.ndjson");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/fixtures/verify/fake_cloudtrail.py"))
            .arg(&pages_path)
            .arg(&log)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start python3 fake_cloudtrail.py");
        let mut port = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut port,
        )
        .unwrap();
        let port: u16 = port.trim().parse().expect("the fake server's port");
        FakeCloudTrail {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// `verify` of `source` (no --public-keys) with this server as CloudTrail, fake static
    /// credentials and nothing of the machine's AWS setup.
    fn command(&self, source: &Path) -> Command {
        let mut command = bin();
        isolated_aws(&mut command)
            .env("AWS_ENDPOINT_URL_CLOUDTRAIL", &self.endpoint)
            .arg("verify")
            .arg(source)
            .args(PERIOD)
            .args(["--format", "json"]);
        command
    }

    /// (region, target, StartTime, NextToken) of every request, in order.
    fn requests(&self) -> Vec<(String, String, Value, Value)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|line| {
                let request: Value = serde_json::from_str(line).unwrap();
                assert_eq!(request["service"], "cloudtrail", "{request}");
                (
                    request["region"].as_str().unwrap().to_owned(),
                    request["target"].as_str().unwrap().to_owned(),
                    request["body"]["StartTime"].clone(),
                    request["body"]["NextToken"].clone(),
                )
            })
            .collect()
    }
}

impl Drop for FakeCloudTrail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A key as `ListPublicKeys` answers it on the wire (the blob base64, times in epoch seconds).
fn listed_key(key: &RsaPrivateKey, fingerprint: &str) -> Value {
    let der = key.to_public_key().to_pkcs1_der().unwrap();
    serde_json::json!({
        "Value": base64::engine::general_purpose::STANDARD.encode(der.as_bytes()),
        "ValidityStartTime": 1_704_067_200.0,
        "ValidityEndTime": 1_735_603_200.0,
        "Fingerprint": fingerprint,
    })
}

/// Without --public-keys the keys come from CloudTrail's API, every page of it, in the
/// digests' region and the trail's home region, from an hour before the oldest digest ends.
#[test]
fn without_public_keys_they_come_from_cloudtrails_api() {
    let (dir, _, _) = trail(TrailSpec::default());
    let pages = serde_json::json!([
        {"status": 200, "body": {"PublicKeyList": [listed_key(&keys().1, "ffff0000ffff0000ffff0000ffff0000")],
                                 "NextToken": "page-2"}},
        {"status": 200, "body": {"PublicKeyList": [listed_key(&keys().0, FINGERPRINT)]}},
    ]);
    let server = FakeCloudTrail::start(dir.path(), pages);
    let run = run_verify(server.command(&dir.path().join("bucket")));
    assert_eq!(run.code, 0, "{}\n{}", run.report, run.stderr);
    assert_eq!(
        nonzero(&run.report),
        [
            "digests_pending=1",
            "digests_valid=5",
            "logs_pending=2",
            "logs_valid=10"
        ]
    );
    let target = "CloudTrail_20131101.ListPublicKeys";
    // The first digest ends at CHAIN_START + 1 h: keys valid since CHAIN_START.
    let since = serde_json::json!(CHAIN_START);
    let expected: Vec<(String, String, Value, Value)> = ["eu-west-1", "us-east-1"]
        .iter()
        .flat_map(|region| {
            [Value::Null, serde_json::json!("page-2")]
                .map(|token| (region.to_string(), target.to_owned(), since.clone(), token))
        })
        .collect();
    assert_eq!(server.requests(), expected);
}

/// CloudTrail refusing (no permission) stops the run with exit 1 and says how to go offline;
/// so does a bad --public-keys file.
#[test]
fn without_keys_from_the_api_or_with_a_bad_file_the_run_fails() {
    let (dir, _, _) = trail(TrailSpec::default());
    let denied = serde_json::json!([{"status": 400, "body": {
        "__type": "AccessDeniedException",
        "message": "User is not authorized to perform: cloudtrail:ListPublicKeys"}}]);
    let server = FakeCloudTrail::start(dir.path(), denied);
    let output = server.command(&dir.path().join("bucket")).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in [
        "ListPublicKeys in eu-west-1",
        "cloudtrail:ListPublicKeys",
        "--public-keys FILE",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert_eq!(server.requests().len(), 1, "access denied is not retried");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{}").unwrap();
    let output = bin()
        .arg("verify")
        .arg(dir.path())
        .arg("--public-keys")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad.json"));
}

/// On S3 every digest's signature is in its object's metadata: the newest verifies too, and
/// tampering shows as offline.
#[test]
fn on_s3_signatures_come_from_the_objects_metadata() {
    let server = crate::s3::S3Server::start();
    let (dir, digests, keys) = trail(TrailSpec::default());
    let bucket = dir.path().join("bucket");
    // A modified log file, uploaded in place of the original.
    let log = log_of(dir.path(), 1);
    let content = String::from_utf8(gunzip(&std::fs::read(&log).unwrap())).unwrap();
    std::fs::write(&log, gzip(content.replace("alice", "mallory").as_bytes())).unwrap();
    server.aws(&["s3", "mb", &format!("s3://{BUCKET}")]);
    server.upload(
        &bucket.join("AWSLogs").join(ACCOUNT).join("CloudTrail"),
        &format!("s3://{BUCKET}/AWSLogs/{ACCOUNT}/CloudTrail/"),
    );
    for digest in &digests {
        let metadata = format!(
            "signature={},signature-algorithm=SHA256withRSA",
            digest.signature
        );
        let file = bucket.join(&digest.key);
        let url = format!("s3://{BUCKET}/{}", digest.key);
        server.aws(&[
            "s3",
            "cp",
            "--quiet",
            file.to_str().unwrap(),
            &url,
            "--metadata",
            &metadata,
        ]);
    }
    let source = format!("s3://{BUCKET}");
    let mut args = vec![
        "verify",
        source.as_str(),
        "--public-keys",
        keys.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend(PERIOD);
    let (code, stdout, stderr) = server.sts_audit(&args, true);
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(code, 4, "{report}\n{stderr}");
    assert_eq!(
        nonzero(&report),
        ["digests_valid=6", "logs_modified=1", "logs_valid=11"]
    );
    let modified = problem(&report, "log", "modified")["file"]
        .as_str()
        .unwrap();
    assert!(
        modified.starts_with("s3://trail-bucket/AWSLogs/111122223333/CloudTrail/"),
        "{modified}"
    );
}

/// The rows of section `id` of a compliance report in JSON, as objects.
fn section_rows(report: &Value, id: &str) -> Vec<serde_json::Map<String, Value>> {
    let sections = report["sections"].as_array().unwrap();
    let found = sections.iter().find(|s| s["id"] == id).unwrap();
    let columns: Vec<String> = found["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let rows = found["rows"].as_array().unwrap();
    rows.iter()
        .map(|row| {
            let cells = row.as_array().unwrap().iter().cloned();
            columns.iter().cloned().zip(cells).collect()
        })
        .collect()
}

/// `verify --lake` keeps each verdict; the compliance report's coverage counts the records of
/// verified files, and its integrity section lists what did not verify.
#[test]
fn the_lake_records_verdicts_and_compliance_shows_the_verified_share() {
    let (dir, _, keys) = trail(TrailSpec::default());
    let injected = log_of(dir.path(), 3).with_file_name(format!(
        "{ACCOUNT}_CloudTrail_{REGION}_20240301T0320Z_injectedinjected.json.gz"
    ));
    let record = log_json(ACCOUNT, CHAIN_START + 3 * 3600 + 900, 9);
    std::fs::write(&injected, gzip(record.as_bytes())).unwrap();
    // Both name the folder relative to where they run, as a user would (`verify` spelling it
    // `./bucket`): the records must still meet their files' verdicts.
    let lake = dir.path().join("lake");
    let ingested = bin()
        .current_dir(dir.path())
        .args(["ingest", "bucket", "--lake", "lake"])
        .output()
        .unwrap();
    assert_eq!(
        ingested.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ingested.stderr)
    );
    let mut verify = bin();
    verify
        .current_dir(dir.path())
        .args(["verify", "./bucket", "--public-keys"])
        .arg(&keys)
        .args(PERIOD)
        .args(["--lake", "lake", "--format", "json"]);
    let run = run_verify(verify);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("recorded 19 verdicts"),
        "{}",
        run.stderr
    );
    let files: Vec<_> = std::fs::read_dir(lake.join("verified"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        files.len() == 1 && files[0].ends_with(".parquet"),
        "{files:?}"
    );

    let out = dir.path().join("report.json");
    let output = bin()
        .args(["report", "compliance", "--lake"])
        .arg(&lake)
        .args(["--from", "2024-03-01", "--to", "2024-03-01", "--output"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // 13 records, one per file: 10 from verified files; the 2 of the newest (pending) digest
    // and the injected one are not.
    let coverage = section_rows(&report, "coverage");
    let all = coverage
        .iter()
        .find(|r| r["account_id"] == "(all)")
        .unwrap();
    assert_eq!(all["records"], 13);
    assert_eq!(all["verified_records"], 10);
    assert_eq!(all["verified_percent"], 76.9);
    let integrity = section_rows(&report, "integrity");
    let listed: Vec<(String, String)> = integrity
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("digest", "pending"),
        ("log", "pending"),
        ("log", "pending"),
        ("log", "unlisted"),
    ];
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected.map(|(k, s)| (k.to_owned(), s.to_owned())),
        "{listed:?}"
    );
    let unlisted = integrity
        .iter()
        .find(|r| r["status"] == "unlisted")
        .unwrap();
    let relative = injected.strip_prefix(dir.path()).unwrap();
    assert_eq!(unlisted["source_file"], relative.to_str().unwrap());
}
