//! The demo corpus: known sessions with known numbers.

use crate::util::*;

#[test]
fn sample_logs_ingest_cleanly_with_known_sts_rows() {
    let lake = tempfile::tempdir().unwrap();
    let logs = repo().join("sample-logs");
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (expected, unusable) = expected_keys(&records_in(&logs));
    assert_eq!(unusable, 0);
    assert_eq!(count(&run, "records_written"), expected.len() as u64);
    assert!(
        count(&run, "duplicates_dropped") > 0,
        "the re-delivered file is deduplicated"
    );
    assert_eq!(
        run.summary["skipped_by_reason"]["CloudTrail-Digest file"],
        1
    );
    assert_unique(&lake_keys(lake.path()));

    let mut apis = std::collections::BTreeSet::new();
    let mut alice_admin = Vec::new();
    let mut denied = 0;
    for batch in lake_batches(lake.path()) {
        for row in 0..batch.num_rows() {
            let get = |c: &str| text(&batch, c, row);
            if get("event_source").as_deref() == Some("sts.amazonaws.com") {
                apis.insert(get("event_name").unwrap());
            }
            if get("role_arn").as_deref() == Some("arn:aws:iam::222222222222:role/ops/Admin") {
                if get("error_code").is_some() {
                    denied += 1;
                } else {
                    alice_admin.push((
                        get("recipient_account_id").unwrap(),
                        get("shared_event_id"),
                        get("issued_access_key_id"),
                    ));
                    assert_eq!(get("role_session_name").as_deref(), Some("alice"));
                    assert_eq!(get("external_id"), None);
                    assert_eq!(
                        get("mfa_serial_number").as_deref(),
                        Some("arn:aws:iam::111111111111:mfa/alice")
                    );
                    let duration = sts_audit::rebuild::rebuild_record(&batch, row).unwrap()["requestParameters"]["durationSeconds"].clone();
                    assert_eq!(duration, 3600);
                }
            }
        }
    }
    let expected_apis = [
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "GetFederationToken",
        "GetSessionToken",
    ];
    assert_eq!(apis.into_iter().collect::<Vec<_>>(), expected_apis);
    assert_eq!(
        denied, 3,
        "mallory's three denied calls name the role from errorMessage"
    );
    // One cross-account call, logged in both accounts with the same sharedEventID.
    alice_admin.sort();
    assert_eq!(alice_admin.len(), 2);
    assert_eq!(alice_admin[0].0, "111111111111");
    assert_eq!(alice_admin[1].0, "222222222222");
    assert!(alice_admin[0].1.is_some() && alice_admin[0].1 == alice_admin[1].1);
    assert_eq!(alice_admin[0].2, alice_admin[1].2);
}

#[test]
fn partitions_are_hive_style_and_sorted_by_time() {
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[repo().join("sample-logs").to_str().unwrap()]);
    assert_eq!(run.code, 0);
    for path in lake_files(lake.path()) {
        let relative = path
            .strip_prefix(lake.path())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = relative.split('/').collect();
        assert_eq!(parts[0], "events");
        assert!(
            parts[1].starts_with("account_id=") && parts[1].len() == "account_id=".len() + 12,
            "{relative}"
        );
        assert_eq!(parts[2], "date=2024-03-01", "{relative}");
        let file = std::fs::File::open(&path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let field = reader
            .schema()
            .field_with_name("event_time")
            .unwrap()
            .clone();
        assert_eq!(
            field.data_type(),
            &arrow::datatypes::DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                Some("UTC".into())
            )
        );
        assert_sorted_by_time(&path);
    }
}
