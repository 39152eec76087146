//! The feed: hands the workers their inputs in visiting order. Local day folders are listed one
//! (account, day) at a time as the workers reach them, and the local files ahead of the workers
//! are read ahead; S3 objects are fetched concurrently within a memory budget. Listing, reading
//! ahead and fetching themselves are left to `source`.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::target::S3Access;
use crate::error::SourceError;
use crate::sink::manifest::Manifest;
use crate::source::local::DayGroup;
use crate::source::read_ahead::ReadAhead;
use crate::source::s3::{self, FetchJob, Fetched};
use crate::source::{Origin, SourceFile};

/// Fetched S3 objects waiting to be decoded hold at most this much memory.
const FETCH_BUDGET_BYTES: u64 = 256 << 20;

/// Local inputs are read ahead this many files before the workers reach them: enough to keep
/// reads in flight while two workers decode ~3,000 small files a second, and few enough that
/// the pages are still cached when a worker gets there.
const READ_AHEAD_FILES: usize = 32;
/// ... or fewer, once the window holds this many bytes (large files need fewer in flight).
const READ_AHEAD_BYTES: u64 = 32 << 20;

/// Hands out the inputs to decode, in visiting order: local day folders, listed one (account,
/// day) at a time as the workers reach them; then local files outside the layout and S3 objects
/// a worker opens itself (skipped by their key without fetching); then S3 objects as their
/// bodies arrive.
pub(super) struct Feed {
    pub queue: Mutex<Queue>,
    /// The S3 objects to fetch; [`Fetched::file`] is an index into it.
    pub fetched_files: Vec<SourceFile>,
    pub fetched: Option<Mutex<tokio::sync::mpsc::Receiver<Fetched>>>,
}

impl Feed {
    /// Splits the inputs listed whole into those workers open themselves and those fetched from
    /// S3, starts the fetching, and queues the day folders first.
    pub fn start(
        days: Vec<DayGroup>,
        listed: Vec<SourceFile>,
        concurrency: usize,
        s3: Option<&S3Access>,
    ) -> Feed {
        let mut direct = Vec::new();
        let mut fetched_files = Vec::new();
        let mut jobs = Vec::new();
        for source in listed {
            match (source.s3_object(), s3) {
                (Some((bucket, key)), Some(s3)) if source.skipped_by_key().is_none() => {
                    jobs.push(FetchJob {
                        file: fetched_files.len(),
                        client: s3.clients[bucket].clone(),
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        etag: source.version.clone(),
                        size: source.size,
                    });
                    fetched_files.push(source);
                }
                _ => direct.push(source),
            }
        }
        let fetched = s3.filter(|_| !jobs.is_empty()).map(|s3| {
            Mutex::new(s3::spawn_fetcher(
                s3.runtime.handle(),
                jobs,
                concurrency,
                FETCH_BUDGET_BYTES,
            ))
        });
        Feed {
            queue: Mutex::new(Queue::new(days, direct, ReadAhead::start())),
            fetched_files,
            fetched,
        }
    }
}

/// The inputs workers open themselves, in visiting order, with the read-ahead running ahead of
/// the workers.
pub(super) struct Queue {
    days: std::vec::IntoIter<DayGroup>,
    /// The inputs listed and not taken yet, in visiting order: the day folders listed so far,
    /// then, once every day is listed, the inputs listed whole.
    listed: VecDeque<SourceFile>,
    direct: std::vec::IntoIter<SourceFile>,
    read_ahead: ReadAhead,
    /// How many inputs at the front of `listed` were already passed to `read_ahead`.
    requested: usize,
}

/// What listing one day found, for the summary.
#[derive(Default)]
pub(super) struct DayCounts {
    pub seen: u64,
    pub unchanged: u64,
    pub unchanged_bytes: u64,
    /// What earlier runs rejected in the unchanged inputs.
    pub earlier: EarlierRejections,
    pub errors: Vec<SourceError>,
}

/// Records that earlier runs rejected in inputs a run finds unchanged, and how many inputs.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct EarlierRejections {
    pub records: u64,
    pub files: u64,
}

impl EarlierRejections {
    pub fn add(&mut self, rejected: u64) {
        if rejected > 0 {
            self.records += rejected;
            self.files += 1;
        }
    }
}

impl Queue {
    fn new(days: Vec<DayGroup>, direct: Vec<SourceFile>, read_ahead: ReadAhead) -> Queue {
        Queue {
            days: days.into_iter(),
            listed: VecDeque::new(),
            direct: direct.into_iter(),
            read_ahead,
            requested: 0,
        }
    }

    /// The next input a worker opens itself. Inputs an earlier run finished are dropped and
    /// counted in `counts`. The inputs after it are passed to the read-ahead.
    pub fn next(&mut self, manifest: &Manifest, counts: &mut DayCounts) -> Option<SourceFile> {
        self.fill(manifest, counts);
        let file = self.listed.pop_front()?;
        self.requested = self.requested.saturating_sub(1);
        self.request_ahead();
        Some(file)
    }

    /// Lists day folders until more inputs wait than the read-ahead window holds, so reading
    /// ahead crosses from one day to the next. Once every day is listed, it queues the inputs
    /// that were listed whole.
    fn fill(&mut self, manifest: &Manifest, counts: &mut DayCounts) {
        while self.listed.len() <= READ_AHEAD_FILES {
            let Some(day) = self.days.next() else {
                self.listed.extend(self.direct.by_ref());
                return;
            };
            let listing = day.list();
            counts.seen += listing.files.len() as u64;
            counts.errors.extend(listing.errors);
            for file in listing.files {
                if manifest.is_done(&file.name, file.size, &file.version) {
                    counts.unchanged += 1;
                    counts.unchanged_bytes += file.size;
                    counts.earlier.add(manifest.rejected_in(&file.name));
                } else {
                    self.listed.push_back(file);
                }
            }
        }
    }

    /// Passes the local inputs in the window at the front of `listed` to the read-ahead, those
    /// not passed before, once at most half the window is left to read: in batches of half a
    /// window, not one by one. The window holds READ_AHEAD_FILES inputs, or fewer once it holds
    /// READ_AHEAD_BYTES.
    fn request_ahead(&mut self) {
        let mut bytes = 0;
        let mut window = 0;
        for file in self.listed.iter().take(READ_AHEAD_FILES) {
            if window > 0 && bytes >= READ_AHEAD_BYTES {
                break;
            }
            bytes += file.size;
            window += 1;
        }
        if self.requested > window / 2 {
            return;
        }
        let batch = self
            .listed
            .iter()
            .take(window)
            .skip(self.requested)
            .filter(|file| file.origin == Origin::Local)
            .map(|file| file.name.clone())
            .collect();
        self.read_ahead.request(batch);
        self.requested = self.requested.max(window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::mpsc::channel;

    fn input(origin: Origin, name: String, size: u64) -> SourceFile {
        SourceFile {
            origin,
            name,
            size,
            version: "1".into(),
        }
    }

    /// Takes every input from a queue of `files`; returns the names taken and those read ahead.
    fn drain(files: Vec<SourceFile>) -> (Vec<String>, Vec<String>) {
        let manifest = Manifest::load(Path::new("/nonexistent/manifest")).expect("empty manifest");
        let (sink, requested) = channel();
        let mut queue = Queue::new(Vec::new(), files, ReadAhead::to_channel(sink));
        let mut counts = DayCounts::default();
        let mut taken = Vec::new();
        while let Some(file) = queue.next(&manifest, &mut counts) {
            taken.push(file.name);
        }
        (taken, requested.try_iter().flatten().collect())
    }

    #[test]
    fn every_local_input_after_the_first_is_read_ahead_once_in_order() {
        let files = (0..100)
            .map(|i| input(Origin::Local, format!("/logs/{i:03}.json.gz"), 1000))
            .collect();
        let (taken, requested) = drain(files);
        assert_eq!(taken.len(), 100);
        assert_eq!(requested, taken[1..]);
    }

    #[test]
    fn large_inputs_shrink_the_window_and_objects_are_not_read_ahead() {
        let manifest = Manifest::load(Path::new("/nonexistent/manifest")).expect("empty manifest");
        let mut files: Vec<_> = (0..10)
            .map(|i| input(Origin::Local, format!("/logs/{i}.json"), 20 << 20))
            .collect();
        files.insert(1, input(Origin::S3, "s3://b/AWSLogs/x.json.gz".into(), 1));
        let (sink, requested) = channel();
        let mut queue = Queue::new(Vec::new(), files, ReadAhead::to_channel(sink));
        let first = queue.next(&manifest, &mut DayCounts::default());
        assert_eq!(first.map(|f| f.name).as_deref(), Some("/logs/0.json"));
        // The window behind the first input: the object (not read ahead), then two 20 MiB
        // files, which reach the 32 MiB bound.
        let ahead: Vec<String> = requested.try_iter().flatten().collect();
        assert_eq!(ahead, ["/logs/1.json", "/logs/2.json"]);
    }
}
