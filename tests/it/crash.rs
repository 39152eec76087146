//! Kill the ingest at a random moment: the lake stays readable, and the next run finishes the job
//! without duplicates.

use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn a_killed_run_is_finished_by_the_next_without_duplicates() {
    let corpus = tempfile::tempdir().unwrap();
    if generate(corpus.path(), 60_000, &["--days", "2", "--accounts", "4"]).is_none() {
        return;
    }
    let lake = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args([
            "ingest",
            "--quiet",
            "--jobs",
            "1",
            "--buffer-size",
            "2M",
            "--lake",
        ])
        .arg(lake.path())
        .arg(corpus.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some data is published, then kill -9 in the middle of the run.
    let deadline = Instant::now() + Duration::from_secs(60);
    while lake_files(lake.path()).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed before it finished");
    let (published, unfinished) = manifest_files(lake.path());
    assert_eq!(published, 0, "a killed run records nothing as done");
    assert_eq!(unfinished, 1, "only its unfinished (hidden) segment");

    // Readable as it is: every published file is complete.
    let before = lake_keys(lake.path());
    assert!(!before.is_empty());
    assert_unique(&before);

    let run = ingest(lake.path(), &[corpus.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (expected, _) = expected_keys(&records_in(corpus.path()));
    let keys = lake_keys(lake.path());
    assert_unique(&keys);
    assert_eq!(keys.len(), expected.len());
    assert!(
        count(&run, "duplicates_dropped") >= before.len() as u64,
        "the first run's rows were recognised"
    );
    assert_eq!(
        manifest_files(lake.path()),
        (1, 0),
        "the next run published its segment and removed the killed run's"
    );
}

/// The manifest's segment files: (published, unfinished temporary ones).
fn manifest_files(lake: &std::path::Path) -> (usize, usize) {
    let names: Vec<String> = std::fs::read_dir(lake.join("_manifest"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let unfinished = names.iter().filter(|name| name.starts_with('.')).count();
    (names.len() - unfinished, unfinished)
}
