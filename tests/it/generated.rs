//! A generated organization-trail corpus: counts equal an independent count.

use crate::util::*;

#[test]
fn generated_corpus_matches_an_independent_count() {
    let corpus = tempfile::tempdir().unwrap();
    if generate(corpus.path(), 30_000, &["--days", "2", "--org-layout"]).is_none() {
        return;
    }
    let lake = tempfile::tempdir().unwrap();
    let run = ingest(
        lake.path(),
        &["--jobs", "2", corpus.path().to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let records = records_in(corpus.path());
    let (expected, unusable) = expected_keys(&records);
    assert_eq!(unusable, 0);
    assert_eq!(count(&run, "records_read"), records.len() as u64);
    assert_eq!(count(&run, "records_written"), expected.len() as u64);
    assert!(
        count(&run, "duplicates_dropped") > 0,
        "the generator re-delivers files"
    );
    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    assert_eq!(
        keys.into_iter().collect::<std::collections::HashSet<_>>(),
        expected
    );
    // One file per partition, job and kind (credential calls, the rest), plus at most one for
    // the rows of a neighbouring day.
    let files = lake_files(lake.path());
    let partitions = lake_partitions(lake.path()).len();
    assert!(
        files.len() <= partitions * 2 * 2 * 2,
        "{} files for {partitions} partitions",
        files.len()
    );

    // The same corpus with a dedup budget far below its keys (hours of keys spill to disk and
    // are read back) and a row buffer of a few hundred rows (each partition's file is written in many
    // sorted runs, recent rows held back between them): the lake is the same, every file sorted.
    let small = tempfile::tempdir().unwrap();
    let run = ingest(
        small.path(),
        &[
            "--jobs",
            "2",
            "--dedup-memory",
            "1K",
            "--buffer-size",
            "256K",
            corpus.path().to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(count(&run, "dedup_spills") > 0, "the budget forced spills");
    assert_eq!(count(&run, "records_written"), expected.len() as u64);
    let keys = lake_keys(small.path());
    assert_unique(&keys);
    assert_eq!(
        keys.into_iter().collect::<std::collections::HashSet<_>>(),
        expected
    );
    let leftovers: Vec<_> = std::fs::read_dir(small.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "hidden files left: {leftovers:?}");
    let mut credential_rows = 0;
    for path in lake_files(small.path()).iter().chain(&files) {
        assert_sorted_by_time(path);
        credential_rows += assert_credential_calls_in_their_own_files(path);
    }
    assert_eq!(credential_rows as u64, 2 * count(&run, "sts_records"));

    // STS rows agree with the records: one per credential-issuing call, each with a role or a key.
    let mut sts_keys = std::collections::HashSet::new();
    for record in &records {
        if record["eventSource"] == "sts.amazonaws.com"
            && CREDENTIAL_CALLS.contains(&record["eventName"].as_str().unwrap_or(""))
        {
            sts_keys.insert((
                record["eventID"].as_str().unwrap().to_owned(),
                record["recipientAccountId"].as_str().map(str::to_owned),
            ));
        }
    }
    assert_eq!(count(&run, "sts_records"), sts_keys.len() as u64);
    for batch in lake_batches(lake.path()) {
        for row in 0..batch.num_rows() {
            if text(&batch, "event_name", row).as_deref() == Some("AssumeRole")
                && text(&batch, "error_code", row).is_none()
            {
                assert!(text(&batch, "role_arn", row).is_some());
                assert!(
                    text(&batch, "issued_access_key_id", row)
                        .is_some_and(|k| k.starts_with("ASIA"))
                );
            }
        }
    }
}
