//! `caller_sources` and `source-ips` on the identities real logs hold: anonymous requests (as
//! flaws.cloud's public S3 bucket logged them: `principalId: ""`, `accountId:
//! "ANONYMOUS_PRINCIPAL"`) and identity fields that are present but empty.

use serde_json::{Value, json};

use crate::util::*;

/// An anonymous S3 read, shaped like flaws.cloud's records.
fn anonymous_read(id: &str, ip: &str) -> Value {
    json!({
        "eventVersion": "1.05", "eventID": id, "eventTime": "2017-02-12T20:07:52Z",
        "userIdentity": {"type": "AWSAccount", "principalId": "", "accountId": "ANONYMOUS_PRINCIPAL"},
        "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-west-2",
        "sourceIPAddress": ip, "userAgent": "[Mozilla/5.0]",
        "requestParameters": {"bucketName": "flaws.cloud", "key": "index.html"},
        "responseElements": null, "readOnly": true, "eventType": "AwsApiCall",
        "recipientAccountId": "975426262029"
    })
}

/// A call whose identity names its account only, the other fields logged empty.
fn empty_identity(id: &str) -> Value {
    let mut record = record(id, "2017-02-12T21:00:00Z", "975426262029");
    record["userIdentity"] = json!({
        "type": "AWSAccount", "principalId": "", "arn": "", "accountId": "111122223333"
    });
    record
}

#[test]
fn anonymous_and_empty_identities_are_named() {
    let logs = tempfile::tempdir().unwrap();
    let records = [
        anonymous_read("anon-1", "5.8.63.41"),
        anonymous_read("anon-2", "5.8.63.41"),
        anonymous_read("anon-3", "198.51.100.9"),
        empty_identity("empty-1"),
    ];
    write_records(&logs.path().join("trail.json.gz"), &records);
    let lake = tempfile::tempdir().unwrap();
    let ingested = ingest(lake.path(), &[logs.path().to_str().unwrap()]);
    assert_eq!(
        count(&ingested, "records_written"),
        4,
        "{}",
        ingested.stderr
    );
    let lake = lake.path().to_str().unwrap();
    let (code, stdout, stderr) = run(&["report", "source-ips", "--lake", lake, "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let calls = |identity: &str, ip: &str| {
        rows.iter()
            .find(|row| row["identity"] == identity && row["source_ip_address"] == ip)
            .map(|row| row["calls"].as_u64().unwrap())
    };
    assert_eq!(calls("anonymous", "5.8.63.41"), Some(2), "{stdout}");
    assert_eq!(calls("anonymous", "198.51.100.9"), Some(1), "{stdout}");
    assert_eq!(calls("111122223333", "203.0.113.1"), Some(1), "{stdout}");
    assert_eq!(rows.len(), 3, "{stdout}");
}
