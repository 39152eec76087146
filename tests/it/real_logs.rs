//! ../shared/real-logs: every record AWS wrote is accounted for.

use crate::util::*;

#[test]
fn real_logs_ingest_matches_an_independent_count() {
    let Some(shared) = shared() else { return };
    let logs = shared.join("real-logs");
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);

    let records = records_in(&logs);
    let (expected, unusable) = expected_keys(&records);
    assert_eq!(count(&run, "records_read"), records.len() as u64);
    assert_eq!(
        count(&run, "records_written"),
        expected.len() as u64,
        "{}",
        run.stderr
    );
    assert_eq!(count(&run, "records_rejected"), unusable as u64);
    assert_eq!(
        count(&run, "records_written")
            + count(&run, "duplicates_dropped")
            + count(&run, "records_rejected"),
        count(&run, "records_read"),
        "every record is written, a duplicate, or rejected"
    );
    // Rejected records are kept, not dropped: one line each in the rejected log.
    let log = run.summary["rejected_log"]
        .as_str()
        .expect("a rejected log");
    assert_eq!(
        std::fs::read_to_string(log).unwrap().lines().count(),
        unusable
    );
    assert_eq!(run.code, 2, "rejected records make the exit code 2");
    assert_eq!(count(&run, "files_failed"), 0);

    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    let found: std::collections::HashSet<Key> = keys.into_iter().collect();
    assert_eq!(found, expected);
    // 89 credential-issuing calls in the corpus (PROVENANCE.md), minus the rejected and duplicate ones.
    assert!(count(&run, "sts_records") >= 80, "{}", run.summary);
}

#[test]
fn denied_assume_role_names_its_role_from_the_error_message() {
    let Some(shared) = shared() else { return };
    let logs = shared.join("real-logs/invictus-ir-aws-dataset");
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(lake.path(), &[logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut denied = 0;
    for batch in lake_batches(lake.path()) {
        for row in 0..batch.num_rows() {
            if text(&batch, "event_name", row).as_deref() == Some("AssumeRole")
                && text(&batch, "error_code", row).as_deref() == Some("AccessDenied")
            {
                denied += 1;
                let role = text(&batch, "role_arn", row).expect("role from errorMessage");
                assert!(
                    role.starts_with("arn:aws:iam::123837392027:role/"),
                    "{role}"
                );
                assert_eq!(
                    text(&batch, "role_account_id", row).as_deref(),
                    Some("123837392027")
                );
            }
        }
    }
    assert_eq!(
        denied, 13,
        "PROVENANCE.md: 13 of the 49 AssumeRole calls are AccessDenied"
    );
}
