//! Test harness: run the binary, read the lake back, count CloudTrail files independently.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::array::{Array, AsArray, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

pub type Key = (String, Option<String>);

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sts-audit"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The variable that lets the tests needing `../shared` skip in a checkout without it.
const SKIP_SHARED: &str = "STS_AUDIT_SKIP_SHARED";

/// `../shared`. When it is absent the test fails, unless `STS_AUDIT_SKIP_SHARED=1` says to
/// skip (then None, and a note): a green run means these tests ran.
pub fn shared() -> Option<PathBuf> {
    let dir = repo().join("../shared");
    if dir.join("real-logs").is_dir() {
        return Some(dir);
    }
    let skip = std::env::var(SKIP_SHARED).is_ok_and(|v| v == "1");
    assert!(
        skip,
        "{} is absent: these tests read its real logs and generator. Check it out beside the \
         repository, or set {SKIP_SHARED}=1 to skip them",
        dir.display()
    );
    eprintln!("SKIPPED ({SKIP_SHARED}=1): {} is absent", dir.display());
    None
}

pub struct Run {
    pub code: i32,
    pub summary: Value,
    pub stderr: String,
}

/// `sts-audit ingest --format json --quiet --lake LAKE ARGS...`
pub fn ingest(lake: &Path, args: &[&str]) -> Run {
    let output = bin()
        .args(["ingest", "--format", "json", "--quiet", "--lake"])
        .arg(lake)
        .args(args)
        .output()
        .expect("run sts-audit");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let summary = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\n{stderr}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        summary,
        stderr,
    }
}

/// Fake, static credentials, region us-east-1 and no shared config or endpoint: nothing of the
/// machine's AWS setup leaks into `command`, and no request waits for instance metadata.
pub fn isolated_aws(command: &mut Command) -> &mut Command {
    command
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_ENDPOINT_URL_CLOUDTRAIL")
}

pub fn count(run: &Run, field: &str) -> u64 {
    run.summary[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {}", run.summary))
}

/// Every data file of the lake.
pub fn lake_files(lake: &Path) -> Vec<PathBuf> {
    parquet_files_under(&lake.join("events"))
}

/// Every finished Parquet file under `dir`, at any depth (hidden temporary files left out),
/// sorted; none when `dir` is absent.
pub fn parquet_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

pub fn lake_batches(lake: &Path) -> Vec<RecordBatch> {
    lake_files(lake)
        .iter()
        .flat_map(|path| file_batches(path))
        .collect()
}

/// The rows of one Parquet file, read with the parquet crate's defaults.
pub fn file_batches(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    reader.map(|b| b.unwrap()).collect()
}

/// `sts-audit derive --lake LAKE`, which must succeed.
pub fn derive(lake: &Path) {
    let (code, _, stderr) = run(&["derive", "--lake", lake.to_str().unwrap()]);
    assert_eq!(code, 0, "derive failed: {stderr}");
}

pub fn text(batch: &RecordBatch, column: &str, row: usize) -> Option<String> {
    let array = batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"));
    // The lake writes text as views; older lakes hold plain strings.
    match array.as_string_opt::<i32>() {
        Some(strings) => strings.is_valid(row).then(|| strings.value(row).to_owned()),
        None => {
            let views = array.as_string_view();
            views.is_valid(row).then(|| views.value(row).to_owned())
        }
    }
}

/// (event_id, recipient_account_id) of every row, duplicates included.
pub fn lake_keys(lake: &Path) -> Vec<Key> {
    let mut keys = Vec::new();
    for batch in lake_batches(lake) {
        for row in 0..batch.num_rows() {
            keys.push((
                text(&batch, "event_id", row).unwrap(),
                text(&batch, "recipient_account_id", row),
            ));
        }
    }
    keys
}

pub fn assert_unique(keys: &[Key]) {
    let unique: HashSet<&Key> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "the lake holds duplicate (event_id, recipient) keys"
    );
}

/// Every record of every `{"Records":[...]}` file under `dir`, read with serde_json alone.
pub fn records_in(dir: &Path) -> Vec<Value> {
    let mut records = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if !path.to_string_lossy().ends_with(".json.gz")
            || path.to_string_lossy().contains("CloudTrail-Digest")
        {
            continue;
        }
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let document: Value = serde_json::from_str(&text).unwrap();
        if let Some(list) = document["Records"].as_array() {
            records.extend(list.iter().cloned());
        }
    }
    records
}

/// The independent count: a record belongs in the lake when it has a string eventID and a
/// readable time (eventTime, or Logstash's @timestamp when eventTime is absent).
pub fn expected_keys(records: &[Value]) -> (HashSet<Key>, usize) {
    let mut keys = HashSet::new();
    let mut unusable = 0;
    for record in records {
        let time = match record.get("eventTime") {
            Some(time) => time.as_str(),
            None => record.get("@timestamp").and_then(Value::as_str),
        };
        match (
            record["eventID"].as_str(),
            time.filter(|t| readable_time(t)),
        ) {
            (Some(id), Some(_)) => {
                keys.insert((
                    id.to_owned(),
                    record["recipientAccountId"].as_str().map(str::to_owned),
                ));
            }
            _ => unusable += 1,
        }
    }
    (keys, unusable)
}

fn readable_time(text: &str) -> bool {
    let text = text.trim_end_matches('Z');
    chrono::DateTime::parse_from_rfc3339(&format!("{text}Z")).is_ok()
        || ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .iter()
            .any(|f| chrono::NaiveDateTime::parse_from_str(text, f).is_ok())
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A CloudTrail record with the given id and time, and a few common fields.
pub fn record(id: &str, time: &str, recipient: &str) -> Value {
    serde_json::json!({
        "eventVersion": "1.08", "eventID": id, "eventTime": time, "eventSource": "ec2.amazonaws.com",
        "eventName": "DescribeInstances", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.1",
        "userAgent": "aws-cli/2", "recipientAccountId": recipient, "readOnly": true,
        "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::{recipient}:user/u"), "accountId": recipient},
        "requestParameters": null, "responseElements": null, "eventType": "AwsApiCall"
    })
}

pub fn write_records(path: &Path, records: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let document = serde_json::json!({ "Records": records });
    std::fs::write(path, gzip(document.to_string().as_bytes())).unwrap();
}

/// Runs the project's corpus generator; None without ../shared.
pub fn generate(out: &Path, events: u64, extra: &[&str]) -> Option<()> {
    let tool = shared()?.join("tools/gen_cloudtrail.py");
    let status = Command::new("python3")
        .arg(tool)
        .arg(out)
        .args(["--events", &events.to_string()])
        .args(extra)
        .status()
        .expect("python3 runs the generator");
    assert!(status.success(), "generator failed");
    Some(())
}

/// Asserts that the Parquet file's rows are in event-time order.
pub fn assert_sorted_by_time(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut last = i64::MIN;
    for batch in reader {
        let batch = batch.unwrap();
        let times = batch.column_by_name("event_time").unwrap();
        let times = times
            .as_any()
            .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
            .unwrap();
        for &time in times.values().iter() {
            assert!(
                time >= last,
                "{} is not sorted by event_time",
                path.display()
            );
            last = time;
        }
    }
}

/// The `account_id=…/date=…` folders of a lake that hold files.
pub fn lake_partitions(lake: &Path) -> HashSet<PathBuf> {
    lake_files(lake)
        .iter()
        .filter_map(|path| path.parent().map(Path::to_path_buf))
        .collect()
}

/// The STS APIs that issue credentials.
pub const CREDENTIAL_CALLS: [&str; 6] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
];

/// Credential-issuing STS calls are in `*-sts.parquet` files, every other row elsewhere.
/// Returns how many rows the `-sts` files hold.
pub fn assert_credential_calls_in_their_own_files(path: &Path) -> usize {
    let credential_file = path.to_string_lossy().ends_with("-sts.parquet");
    let file = std::fs::File::open(path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut rows = 0;
    for batch in reader {
        let batch = batch.unwrap();
        for row in 0..batch.num_rows() {
            let credential_call = text(&batch, "event_source", row).as_deref()
                == Some("sts.amazonaws.com")
                && text(&batch, "event_name", row)
                    .is_some_and(|name| CREDENTIAL_CALLS.contains(&name.as_str()));
            assert_eq!(
                credential_call,
                credential_file,
                "{} holds {:?}",
                path.display(),
                text(&batch, "event_name", row)
            );
            rows += 1;
        }
    }
    if credential_file { rows } else { 0 }
}

/// Runs the binary with `args`; (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let output = bin().args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A lake holding `sample-logs`.
pub fn sample_lake() -> tempfile::TempDir {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    lake
}
