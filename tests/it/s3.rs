//! S3 against a real S3 server: moto in server mode on a free port of 127.0.0.1, installed by
//! `scripts/install-test-tools.sh` (called from here, so a new machine needs nothing by hand).
//! Objects are put with the AWS CLI, not with the code under test. Credentials are fake.

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

const ORG: &str = "o-a1b2c3d4e5";
const ACCOUNTS: [&str; 3] = ["111122223333", "222233334444", "333344445555"];
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const DAYS: [&str; 3] = ["01", "02", "03"];

/// The folder with the Python tools (moto, awscli), installed on first use.
fn tools() -> PathBuf {
    let output = Command::new(repo().join("scripts/install-test-tools.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-test-tools.sh");
    assert!(
        output.status.success(),
        "installing the S3 test tools failed"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A moto server, stopped when dropped (the `verify` tests use it too).
pub(crate) struct S3Server {
    child: Child,
    endpoint: String,
    tools: PathBuf,
}

impl S3Server {
    pub(crate) fn start() -> S3Server {
        let tools = tools();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(tools.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            tools,
        }
    }

    /// Fake, static credentials and no shared config (`isolated_aws`).
    fn env(&self, command: &mut Command) {
        isolated_aws(command);
    }

    /// The AWS CLI against this server.
    pub(crate) fn aws(&self, args: &[&str]) {
        let mut command = Command::new(self.tools.join("aws"));
        self.env(&mut command);
        let output = command
            .args(args)
            .args(["--endpoint-url", &self.endpoint])
            .output()
            .expect("run aws");
        assert!(
            output.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub(crate) fn upload(&self, dir: &Path, url: &str) {
        self.aws(&[
            "s3",
            "cp",
            "--recursive",
            "--quiet",
            dir.to_str().unwrap(),
            url,
        ]);
    }

    /// sts-audit with this server as the endpoint (through the variable or the flag).
    pub(crate) fn sts_audit(&self, args: &[&str], endpoint_by_flag: bool) -> (i32, String, String) {
        let mut command = bin();
        self.env(&mut command);
        command.args(args);
        if endpoint_by_flag {
            command.args(["--endpoint-url", &self.endpoint]);
        } else {
            command.env("AWS_ENDPOINT_URL_S3", &self.endpoint);
        }
        let output = command.output().expect("run sts-audit");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn ingest(&self, source: &str, lake: &str, extra: &[&str]) -> Run {
        let mut args = vec!["ingest", source, "--lake", lake, "--format", "json", "-q"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = self.sts_audit(&args, true);
        let summary = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}\n{stderr}"));
        Run {
            code,
            summary,
            stderr,
        }
    }

    /// Rows of a query over a lake (local folder or s3:// URL), as JSON objects.
    fn sql(&self, lake: &str, query: &str) -> Vec<Value> {
        let (code, stdout, stderr) =
            self.sts_audit(&["sql", "--format", "ndjson", "--lake", lake, query], false);
        assert_eq!(code, 0, "{query}\n{stderr}");
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An organization trail: three accounts, two regions, three days, a re-delivered file, digest
/// files, 1,050 small files in one day folder (more than one listing page), a corrupt object,
/// and other services' logs beside AWSLogs/.
fn org_trail(root: &Path) -> usize {
    let mut files = 0;
    for account in ACCOUNTS {
        for region in REGIONS {
            for day in DAYS {
                let folder = root.join(format!(
                    "AWSLogs/{ORG}/{account}/CloudTrail/{region}/2024/03/{day}"
                ));
                for file in 0..3 {
                    let records: Vec<Value> = (0..20)
                        .map(|i| {
                            let id = format!("{account}-{region}-{day}-{file}-{i}");
                            let time = format!("2024-03-{day}T{:02}:{:02}:00Z", file + 8, i);
                            record(&id, &time, account)
                        })
                        .collect();
                    let name =
                        format!("{account}_CloudTrail_{region}_202403{day}T{file}_x.json.gz");
                    write_records(&folder.join(name), &records);
                    files += 1;
                }
                let digest = root.join(format!(
                    "AWSLogs/{ORG}/{account}/CloudTrail-Digest/{region}/2024/03/{day}/d.json.gz"
                ));
                std::fs::create_dir_all(digest.parent().unwrap()).unwrap();
                std::fs::write(&digest, gzip(br#"{"digestStartTime":"x"}"#)).unwrap();
            }
        }
    }
    let busy = root.join(format!(
        "AWSLogs/{ORG}/{}/CloudTrail/us-east-1/2024/03/02",
        ACCOUNTS[0]
    ));
    for file in 0..1050 {
        let id = format!("busy-{file}");
        write_records(
            &busy.join(format!("busy-{file:04}.json.gz")),
            &[record(&id, "2024-03-02T12:00:00Z", ACCOUNTS[0])],
        );
        files += 1;
    }
    // CloudTrail delivered this file twice.
    let first = busy.join(format!(
        "{}_CloudTrail_us-east-1_20240302T0_x.json.gz",
        ACCOUNTS[0]
    ));
    std::fs::copy(&first, busy.join("redelivered.json.gz")).unwrap();
    files += 1;
    let good = gzip(
        serde_json::json!({"Records": [record("cut-1", "2024-03-02T13:00:00Z", ACCOUNTS[0])]})
            .to_string()
            .as_bytes(),
    );
    std::fs::write(busy.join("corrupt.json.gz"), &good[..good.len() / 2]).unwrap();
    files += 1;
    let other = root.join("elasticloadbalancing/2024/03/01/lb.log.gz");
    std::fs::create_dir_all(other.parent().unwrap()).unwrap();
    std::fs::write(other, gzip(b"not cloudtrail")).unwrap();
    files
}

/// (event_id, recipient, event_time) of every row: what must not depend on where logs came from.
fn rows(server: &S3Server, lake: &str) -> BTreeSet<String> {
    server
        .sql(
            lake,
            "SELECT event_id, recipient_account_id, event_time FROM events",
        )
        .into_iter()
        .map(|row| row.to_string())
        .collect()
}

#[test]
fn s3_source_ingests_like_local_disk() {
    let server = S3Server::start();
    let corpus = tempfile::tempdir().unwrap();
    let files = org_trail(corpus.path());
    server.aws(&["s3", "mb", "s3://trail"]);
    server.upload(corpus.path(), "s3://trail/");

    let local_lake = tempfile::tempdir().unwrap();
    let local = ingest(local_lake.path(), &[corpus.path().to_str().unwrap()]);
    let s3_lake = tempfile::tempdir().unwrap();
    let s3_lake_dir = s3_lake.path().to_str().unwrap();
    let remote = server.ingest("s3://trail", s3_lake_dir, &[]);

    assert_eq!(
        remote.code, 2,
        "the corrupt object is a failure: {}",
        remote.stderr
    );
    assert_eq!(local.code, 2);
    let corrupt = format!(
        "s3://trail/AWSLogs/{ORG}/{}/CloudTrail/us-east-1/2024/03/02/corrupt.json.gz",
        ACCOUNTS[0]
    );
    assert!(remote.stderr.contains(&corrupt), "{}", remote.stderr);
    // Every event log object listed (pagination past 1,000 keys), digests and other services'
    // folders never listed.
    assert_eq!(count(&remote, "files_seen"), files as u64);
    assert!(
        count(&remote, "folders_pruned") >= 4,
        "ELB logs and three digest folders"
    );
    for field in [
        "files_ingested",
        "files_failed",
        "files_partial",
        "records_read",
        "records_written",
        "duplicates_dropped",
    ] {
        assert_eq!(count(&remote, field), count(&local, field), "{field}");
    }
    let expected_rows = (ACCOUNTS.len() * REGIONS.len() * DAYS.len() * 3 * 20 + 1050) as u64;
    assert_eq!(count(&remote, "records_written"), expected_rows);
    assert_eq!(
        count(&remote, "duplicates_dropped"),
        20,
        "the re-delivered file"
    );
    let local_dir = local_lake.path().to_str().unwrap();
    assert_eq!(rows(&server, s3_lake_dir), rows(&server, local_dir));
    let sources = server.sql(
        s3_lake_dir,
        "SELECT count(*) AS n FROM events WHERE source_file LIKE 's3://trail/AWSLogs/%'",
    );
    assert_eq!(sources[0]["n"], expected_rows);

    // A scheduled re-run fetches nothing; a late delivery into an old day folder is picked up.
    let again = server.ingest("s3://trail", s3_lake_dir, &[]);
    assert_eq!(count(&again, "records_read"), 0);
    assert_eq!(
        count(&again, "files_unchanged"),
        files as u64,
        "the corrupt one too: its damage is recorded"
    );
    let late = tempfile::tempdir().unwrap();
    let late_records: Vec<Value> = (0..7)
        .map(|i| record(&format!("late-{i}"), "2024-03-01T23:59:00Z", ACCOUNTS[2]))
        .collect();
    let late_key = format!(
        "AWSLogs/{ORG}/{}/CloudTrail/eu-west-1/2024/03/02/late.json.gz",
        ACCOUNTS[2]
    );
    write_records(&late.path().join(&late_key), &late_records);
    server.upload(late.path(), "s3://trail/");
    let third = server.ingest("s3://trail", s3_lake_dir, &[]);
    assert_eq!(count(&third, "files_ingested"), 1);
    assert_eq!(count(&third, "records_written"), 7);

    // Scope: only the day folders that can hold the range are listed, with the same result as
    // the same scope on disk.
    let scoped_lake = tempfile::tempdir().unwrap();
    let scope = [
        "--from",
        "2024-03-03",
        "--to",
        "2024-03-03",
        "--account",
        ACCOUNTS[1],
    ];
    let scoped = server.ingest("s3://trail", scoped_lake.path().to_str().unwrap(), &scope);
    let scoped_local_lake = tempfile::tempdir().unwrap();
    let mut local_args = vec![corpus.path().to_str().unwrap()];
    local_args.extend_from_slice(&scope);
    let scoped_local = ingest(scoped_local_lake.path(), &local_args);
    assert_eq!(scoped.code, 0, "{}", scoped.stderr);
    assert_eq!(count(&scoped, "records_written"), 2 * 3 * 20);
    assert_eq!(
        count(&scoped, "records_written"),
        count(&scoped_local, "records_written")
    );
    assert!(
        count(&scoped, "files_seen") <= 2 * 2 * 3,
        "only days 02-03 (a day of slack) of one account are listed: {}",
        scoped.summary
    );
}

#[test]
fn lake_on_s3_is_the_same_lake() {
    let server = S3Server::start();
    server.aws(&["s3", "mb", "s3://lake"]);
    let sample = repo().join("sample-logs");
    let sample = sample.to_str().unwrap();
    let s3_lake = "s3://lake/teams/security/sts";

    let local_lake = tempfile::tempdir().unwrap();
    let local_dir = local_lake.path().to_str().unwrap();
    let local = ingest(local_lake.path(), &[sample]);
    let first = server.ingest(sample, s3_lake, &[]);
    assert_eq!(first.code, local.code, "{}", first.stderr);
    assert_eq!(
        count(&first, "records_written"),
        count(&local, "records_written")
    );
    assert!(count(&first, "records_written") > 0);
    assert_eq!(rows(&server, s3_lake), rows(&server, local_dir));

    // Reports read the lake on S3 exactly as on disk.
    let reports_match = || {
        for report in ["role-assumptions", "cross-account", "session-durations"] {
            let (code, on_s3, stderr) = server.sts_audit(
                &["report", report, "--format", "csv", "--lake", s3_lake],
                true,
            );
            assert_eq!(code, 0, "{stderr}");
            let (_, on_disk, _) = server.sts_audit(
                &["report", report, "--format", "csv", "--lake", local_dir],
                true,
            );
            assert_eq!(on_s3, on_disk, "{report}");
        }
    };
    reports_match();

    // What an older version's derive left: never read, and removed by the next derive.
    let other = tempfile::tempdir().unwrap();
    let other_build = "0123456789abcdef-20240101T000000000000Z";
    std::fs::create_dir_all(other.path().join("sessions")).unwrap();
    std::fs::write(other.path().join("sessions/part-0.parquet"), b"PAR1 half").unwrap();
    let other_url = format!("{s3_lake}/derived/{other_build}/");
    server.upload(other.path(), &other_url);

    // Derived tables are built on S3 and read from there, with the same answers.
    let (code, summary, stderr) =
        server.sts_audit(&["derive", "--format", "json", "--lake", s3_lake], true);
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&summary).unwrap();
    let computed = &summary["computed"];
    assert!(computed.as_u64() > Some(0), "{summary}");
    assert_eq!(computed, &summary["partitions"], "{summary}");
    let (code, again, stderr) =
        server.sts_audit(&["derive", "--format", "json", "--lake", s3_lake], true);
    assert_eq!(code, 0, "{stderr}");
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["computed"], 0, "current on S3: {again}");
    let (code, _, stderr) = server.sts_audit(
        &["derive", "--force", "--format", "json", "--lake", s3_lake],
        true,
    );
    assert_eq!(code, 0, "{stderr}");
    let explain = [
        "sql",
        "--format",
        "csv",
        "--lake",
        s3_lake,
        "EXPLAIN SELECT role_arn FROM sessions",
    ];
    let (_, plan, _) = server.sts_audit(&explain, true);
    assert!(plan.contains("derived/session_usage_daily/"), "{plan}");
    reports_match();

    // Findings are saved on S3 as on disk, once per window however often it runs.
    let detect = |extra: &[&str]| {
        let mut args = vec!["detect", "--lake", s3_lake, "--format", "json"];
        args.extend(extra);
        let (code, out, stderr) = server.sts_audit(&args, true);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    };
    let found = detect(&["--save"]);
    assert!(found.len() >= 4, "the sample's incidents: {found:?}");
    assert_eq!(detect(&["--save", "--new-only"]), Vec::<Value>::new());
    let saved = [
        "sql",
        "--lake",
        s3_lake,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM findings",
    ];
    let (code, count_csv, stderr) = server.sts_audit(&saved, true);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(count_csv, format!("n\n{}\n", found.len()));

    // The manifest is on S3: a re-run reads nothing.
    let again = server.ingest(sample, s3_lake, &[]);
    assert_eq!(count(&again, "records_read"), 0);
    assert_eq!(
        count(&again, "files_unchanged"),
        count(&first, "files_seen")
    );

    // Dedup reads the keys already in the lake on S3: a copy of a logged file adds nothing.
    let copy = tempfile::tempdir().unwrap();
    let original = walkdir::WalkDir::new(sample)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| {
            let path = e.path().to_string_lossy();
            path.contains("/CloudTrail/") && path.ends_with(".json.gz")
        })
        .unwrap();
    std::fs::copy(original.path(), copy.path().join("copy.json.gz")).unwrap();
    let copied = server.ingest(copy.path().to_str().unwrap(), s3_lake, &[]);
    assert!(count(&copied, "records_read") > 0);
    assert_eq!(count(&copied, "records_written"), 0);
    assert_eq!(
        count(&copied, "duplicates_dropped"),
        count(&copied, "records_read")
    );
    assert_eq!(rows(&server, s3_lake), rows(&server, local_dir));

    // The layout is the same as on disk: Hive partitions, manifest, nothing temporary.
    let (code, listing, _) = {
        let mut command = Command::new(server.tools.join("aws"));
        server.env(&mut command);
        let output = command
            .args(["s3", "ls", "--recursive", "s3://lake/teams/security/sts/"])
            .args(["--endpoint-url", &server.endpoint])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            (),
        )
    };
    assert_eq!(code, Some(0));
    assert!(
        listing.contains("teams/security/sts/events/account_id="),
        "{listing}"
    );
    assert!(
        listing.contains("teams/security/sts/_manifest/run-"),
        "{listing}"
    );
    assert!(!listing.contains(".tmp"), "{listing}");
    assert!(
        listing.contains("teams/security/sts/derived/session_usage_daily/"),
        "{listing}"
    );
    assert_eq!(
        listing
            .matches("teams/security/sts/findings/window=")
            .count(),
        1,
        "one file for the one window saved twice: {listing}"
    );
    assert!(
        !listing.contains(other_build),
        "what an older version left is removed: {listing}"
    );

    // No lake there: a clear error and exit 1.
    let (code, _, stderr) = server.sts_audit(
        &["report", "role-assumptions", "--lake", "s3://lake/none"],
        true,
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("no lake at s3://lake/none"), "{stderr}");
}

#[test]
fn unreachable_bucket_fails_the_run() {
    let server = S3Server::start();
    let lake = tempfile::tempdir().unwrap();
    let (code, _, stderr) = server.sts_audit(
        &[
            "ingest",
            "s3://no-such-bucket",
            "--lake",
            lake.path().to_str().unwrap(),
            "-q",
        ],
        true,
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("s3://no-such-bucket/"), "{stderr}");
    assert!(stderr.contains("NoSuchBucket"), "{stderr}");
}

#[test]
fn profile_and_endpoint_follow_the_aws_cli() {
    let server = S3Server::start();
    server.aws(&["s3", "mb", "s3://profiled"]);
    let logs = tempfile::tempdir().unwrap();
    write_records(
        &logs
            .path()
            .join("AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/a.json.gz"),
        &[record("p-1", "2024-03-01T10:00:00Z", "111122223333")],
    );
    server.upload(logs.path(), "s3://profiled/");
    // A profile with its own keys and endpoint; no key in the environment.
    let config = tempfile::NamedTempFile::new().unwrap();
    let profile = |endpoint: &str| {
        format!(
            "[profile audit]\naws_access_key_id = profilekey\naws_secret_access_key = profilesecret\nregion = eu-west-1\nendpoint_url = {endpoint}\n"
        )
    };
    let run = |config_text: &str, env: &[(&str, &str)]| {
        std::fs::write(config.path(), config_text).unwrap();
        let lake = tempfile::tempdir().unwrap();
        let mut command = bin();
        server.env(&mut command);
        command
            .env("AWS_CONFIG_FILE", config.path())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .envs(env.iter().copied())
            .args([
                "ingest",
                "s3://profiled",
                "--profile",
                "audit",
                "-q",
                "--format",
                "json",
            ])
            .arg("--lake")
            .arg(lake.path());
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (
            output.status.code(),
            stdout,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // The profile's endpoint_url.
    let (code, stdout, stderr) = run(&profile(&server.endpoint), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"records_written\": 1"), "{stdout}");
    // AWS_ENDPOINT_URL_S3 comes before the profile's (which points nowhere here).
    let (code, _, stderr) = run(
        &profile("http://127.0.0.1:9"),
        &[("AWS_ENDPOINT_URL_S3", server.endpoint.as_str())],
    );
    assert_eq!(code, Some(0), "{stderr}");
    // And without any endpoint setting that works, the failure names the bucket.
    let (code, _, stderr) = run(&profile("http://127.0.0.1:9"), &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("s3://profiled/"), "{stderr}");
}

impl S3Server {
    /// Keys under `prefix` in `bucket`, straight from the server (moto answers unsigned
    /// requests): fast enough to poll while a run is going.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        use std::io::{Read, Write};
        let address = self.endpoint.trim_start_matches("http://");
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.0\r\nHost: {address}\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
            .split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn a_killed_ingest_into_a_lake_on_s3_is_finished_by_the_next() {
    let server = S3Server::start();
    server.aws(&["s3", "mb", "s3://crash"]);
    let corpus = tempfile::tempdir().unwrap();
    for account in ACCOUNTS {
        for day in DAYS {
            for file in 0..4 {
                let records: Vec<Value> = (0..2000)
                    .map(|i| {
                        let id = format!("{account}-{day}-{file}-{i}");
                        let time = format!(
                            "2024-03-{day}T{:02}:{:02}:{:02}Z",
                            file,
                            i / 60 % 60,
                            i % 60
                        );
                        record(&id, &time, account)
                    })
                    .collect();
                let path = corpus.path().join(format!(
                    "AWSLogs/{account}/CloudTrail/us-east-1/2024/03/{day}/{file}.json.gz"
                ));
                write_records(&path, &records);
            }
        }
    }
    let expected = (ACCOUNTS.len() * DAYS.len() * 4 * 2000) as u64;
    let lake = "s3://crash/lake";
    let mut command = bin();
    server.env(&mut command);
    let mut child = command
        .args([
            "ingest",
            "-q",
            "--jobs",
            "1",
            "--buffer-size",
            "1M",
            "--lake",
            lake,
        ])
        .args(["--endpoint-url", &server.endpoint])
        .arg(corpus.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let parquet = |server: &S3Server| {
        server
            .keys("crash", "lake/events/")
            .into_iter()
            .filter(|k| k.ends_with(".parquet"))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet(&server) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "killed before it finished"
    );
    assert!(
        parquet(&server) >= 3,
        "some files were uploaded before the kill"
    );
    assert!(
        server.keys("crash", "lake/_manifest/").is_empty(),
        "a killed run records nothing as done"
    );
    let count_rows = |server: &S3Server| {
        let row = &server.sql(
            lake,
            "SELECT count(*) AS n, count(DISTINCT event_id || '/' || recipient_account_id) AS k FROM events",
        )[0];
        (row["n"].as_u64().unwrap(), row["k"].as_u64().unwrap())
    };
    let (before, distinct) = count_rows(&server);
    assert!(before > 0);
    assert_eq!(
        before, distinct,
        "readable as it is, every uploaded file complete"
    );

    let run = server.ingest(corpus.path().to_str().unwrap(), lake, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        count(&run, "duplicates_dropped") >= before,
        "the first run's rows were recognised"
    );
    assert_eq!(count_rows(&server), (expected, expected));
}
