//! Which inputs are already in the lake. Each run appends one segment file, published
//! atomically after all of that run's data files are: a run killed before then leaves no segment,
//! and the next run reads its inputs again (dedup drops what had been written).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::lake::{commit, create_temporary};
use crate::error::SinkError;

/// One input that needs no reading again while its size and modification time stay the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The path as the walk of the source named on the command line found it (relative when
    /// that source was), or `s3://bucket/key`.
    pub source: String,
    pub size: u64,
    /// Nanoseconds since the epoch for a file, the ETag for an object.
    pub modified: String,
    /// `ingested`, `partial`, `failed` (damaged content) or `skipped` (not a CloudTrail log).
    pub status: String,
    pub records: u64,
    /// Records of the input that were rejected (kept in `_rejected/`); absent in segments
    /// written before it was recorded.
    #[serde(default)]
    pub rejected: u64,
    pub run: String,
}

/// The union of all segments: for each source, what its latest entry says it was (size and
/// version). A lake's manifest names every file it ever ingested and a run keeps it to the end
/// (day folders are listed as the run reaches them), so each source is held as two hashes, 24
/// bytes, not as the text of its entry (about ten times more; BENCHMARKS.md, "File names and
/// the manifest in memory").
#[derive(Debug, Default)]
pub struct Manifest {
    done: HashMap<u128, u64>,
    /// The inputs whose latest entry rejected records, and how many: few, so they cost
    /// nothing next to `done`, and a run that finds such an input unchanged can still say that
    /// its rejected records are not in the lake.
    rejected: HashMap<u128, u64>,
}

/// The fields of an entry a run needs, borrowed from the line where possible.
#[derive(Deserialize)]
struct EntryFields<'a> {
    #[serde(borrow)]
    source: Cow<'a, str>,
    size: u64,
    #[serde(borrow)]
    modified: Cow<'a, str>,
    #[serde(default)]
    rejected: u64,
}

/// 128 bits of the name: collisions are out of reach at any manifest size.
fn source_hash(source: &str) -> u128 {
    xxh3_128(source.as_bytes())
}

/// The size and version: only ever compared with the same source's, so 64 bits are plenty.
fn version_hash(size: u64, modified: &str) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(&size.to_le_bytes());
    hasher.update(modified.as_bytes());
    hasher.digest()
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest, SinkError> {
        let mut names: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        let mut manifest = Manifest::default();
        for path in names {
            manifest.read_segment(&path)?;
        }
        manifest.done.shrink_to_fit();
        manifest.rejected.shrink_to_fit();
        Ok(manifest)
    }

    fn read_segment(&mut self, path: &Path) -> Result<(), SinkError> {
        let file = std::fs::File::open(path).map_err(SinkError::io("opening", path))?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut number = 0;
        loop {
            line.clear();
            number += 1;
            if reader
                .read_line(&mut line)
                .map_err(SinkError::io("reading", path))?
                == 0
            {
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let entry: EntryFields =
                serde_json::from_str(&line).map_err(|e| SinkError::Manifest {
                    path: path.to_path_buf(),
                    line: number,
                    reason: e.to_string(),
                })?;
            let source = source_hash(&entry.source);
            self.done
                .insert(source, version_hash(entry.size, &entry.modified));
            if entry.rejected > 0 {
                self.rejected.insert(source, entry.rejected);
            } else {
                self.rejected.remove(&source);
            }
        }
    }

    /// True when `source` was finished by an earlier run and has not changed since.
    pub fn is_done(&self, source: &str, size: u64, modified: &str) -> bool {
        self.done
            .get(&source_hash(source))
            .is_some_and(|&version| version == version_hash(size, modified))
    }

    /// How many records of `source` its latest run rejected (0 when none, or when it was not
    /// ingested): while the input stays unchanged they are nowhere in the lake but `_rejected/`.
    pub fn rejected_in(&self, source: &str) -> u64 {
        self.rejected
            .get(&source_hash(source))
            .copied()
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }
}

/// This run's segment: entries are written as inputs finish, to a hidden temporary file (so a
/// run holds nothing per input once it is done), and the segment is published at the end, after
/// all of the run's data files are. A run that dies leaves only the temporary file, which the
/// next run removes.
pub struct SegmentWriter {
    dir: PathBuf,
    name: String,
    temporary: PathBuf,
    out: BufWriter<File>,
    entries: u64,
}

impl SegmentWriter {
    pub fn create(dir: &Path, run_id: &str) -> Result<SegmentWriter, SinkError> {
        let name = format!("run-{run_id}.jsonl");
        let (file, temporary) = create_temporary(dir, &name)?;
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            name,
            temporary,
            out: BufWriter::new(file),
            entries: 0,
        })
    }

    pub fn add(&mut self, entry: &ManifestEntry) -> Result<(), SinkError> {
        // An entry always serializes: a failure is the write (a full disk), an I/O error on
        // the segment file, not a manifest that cannot be read.
        serde_json::to_writer(&mut self.out, entry)
            .map_err(std::io::Error::from)
            .map_err(SinkError::io("writing", &self.temporary))?;
        self.out
            .write_all(b"\n")
            .map_err(SinkError::io("writing", &self.temporary))?;
        self.entries += 1;
        Ok(())
    }

    /// Makes the segment durable and visible; returns its path, or None (and leaves nothing
    /// behind) when there was nothing to record.
    pub fn publish(self) -> Result<Option<PathBuf>, SinkError> {
        let file = self.out.into_inner().map_err(|error| SinkError::Io {
            op: "writing",
            path: self.temporary.clone(),
            source: error.into_error(),
        })?;
        if self.entries == 0 {
            drop(file);
            std::fs::remove_file(&self.temporary)
                .map_err(SinkError::io("removing", &self.temporary))?;
            return Ok(None);
        }
        commit(file, &self.temporary, &self.dir, &self.name).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_an_io_error_on_the_segment_not_a_manifest_error() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            panic!("/dev/full is needed to simulate a full disk");
        }
        let mut segment = SegmentWriter {
            dir: PathBuf::from("/dev"),
            name: "full".into(),
            temporary: full.to_path_buf(),
            out: BufWriter::with_capacity(16, File::create(full).unwrap()),
            entries: 0,
        };
        let entry = ManifestEntry {
            source: "/logs/a.json.gz".into(),
            size: 20,
            modified: "1".into(),
            status: "ingested".into(),
            records: 1,
            rejected: 0,
            run: "r".into(),
        };
        let error = segment.add(&entry).unwrap_err();
        match &error {
            SinkError::Io { path, source, .. } => {
                assert_eq!(path, full);
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
            }
            other => panic!("not an I/O error: {other}"),
        }
        assert!(
            error.to_string().starts_with("writing /dev/full: "),
            "{error}"
        );
    }

    #[test]
    fn segments_round_trip_and_later_runs_win() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |run: &str, size| ManifestEntry {
            source: "/logs/a.json.gz".into(),
            size,
            modified: "1".into(),
            status: "ingested".into(),
            records: 3,
            rejected: size / 10 - 1,
            run: run.into(),
        };
        let write_segment = |run_id, entries: &[ManifestEntry]| {
            let mut segment = SegmentWriter::create(dir.path(), run_id).unwrap();
            for entry in entries {
                segment.add(entry).unwrap();
            }
            segment.publish().unwrap()
        };
        assert!(write_segment("20240101T000000Z-1", &[entry("1", 10)]).is_some());
        assert!(write_segment("20240102T000000Z-1", &[entry("2", 20)]).is_some());
        assert_eq!(write_segment("20240103T000000Z-1", &[]), None);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2, "an empty segment leaves nothing behind");
        let manifest = Manifest::load(dir.path()).unwrap();
        assert_eq!(manifest.len(), 1);
        assert!(manifest.is_done("/logs/a.json.gz", 20, "1"));
        assert!(
            !manifest.is_done("/logs/a.json.gz", 10, "1"),
            "the file changed since"
        );
        assert!(!manifest.is_done("/logs/b.json.gz", 20, "1"));
        assert_eq!(
            manifest.rejected_in("/logs/a.json.gz"),
            1,
            "the latest run's count"
        );
        assert_eq!(manifest.rejected_in("/logs/b.json.gz"), 0);
    }

    #[test]
    fn segments_without_a_rejected_count_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let line = r#"{"source":"logs/a.json.gz","size":1,"modified":"2","status":"ingested","records":3,"run":"r"}"#;
        std::fs::write(dir.path().join("run-r.jsonl"), format!("{line}\n")).unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        assert!(manifest.is_done("logs/a.json.gz", 1, "2"));
        assert_eq!(manifest.rejected_in("logs/a.json.gz"), 0);
    }

    #[test]
    fn names_that_json_escapes_are_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let odd = "/logs/a \"quoted\" \\ name\t\u{e9}.json.gz";
        let mut segment = SegmentWriter::create(dir.path(), "20240101T000000Z-1").unwrap();
        for (source, size) in [(odd, 7), ("/logs/plain.json.gz", 8)] {
            segment
                .add(&ManifestEntry {
                    source: source.into(),
                    size,
                    modified: "123".into(),
                    status: "ingested".into(),
                    records: 1,
                    rejected: 0,
                    run: "1".into(),
                })
                .unwrap();
        }
        segment.publish().unwrap();
        let manifest = Manifest::load(dir.path()).unwrap();
        assert_eq!(manifest.len(), 2);
        assert!(manifest.is_done(odd, 7, "123"));
        assert!(manifest.is_done("/logs/plain.json.gz", 8, "123"));
        assert!(!manifest.is_done(odd, 7, "124"), "another version");
        assert!(!manifest.is_done(odd, 8, "123"), "another size");
    }
}
