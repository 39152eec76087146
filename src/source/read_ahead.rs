//! Read-ahead for local files. A worker that opens a file whose pages are not cached sleeps on
//! the read, about as long as decoding a small CloudTrail file takes (BENCHMARKS.md,
//! "Read-ahead"). `cat | zcat` overlaps those reads with the gunzip, and we must too. So one thread
//! asks the kernel (`posix_fadvise(WILLNEED)`) to start reading the next few files while the
//! workers decode the current ones. The thread does the opening as well, so that a directory or
//! inode lookup that goes to disk does not stall a worker either.
//!
//! This is advice only. The pages land in the page cache, not in our memory. A file that cannot
//! be opened here is reported later by the worker that opens it, and a failed advice only loses
//! the overlap.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

/// Sends paths to read ahead to a thread that advises the kernel about them. Paths go in
/// batches: each message wakes the thread, and on two cores a wake per file (two context
/// switches, 21k files at 1M events) cost more than the advice itself when the files are cached.
pub struct ReadAhead {
    paths: Option<Sender<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts the advising thread. If the thread cannot start, reading ahead is off.
    pub fn start() -> ReadAhead {
        let (paths, received) = channel::<Vec<String>>();
        let thread = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || {
                for path in received.iter().flatten() {
                    advise_will_need(&path);
                }
            })
            .ok();
        ReadAhead {
            paths: thread.as_ref().map(|_| paths),
            thread,
        }
    }

    /// Sends paths to `sink` instead of advising the kernel (for tests).
    pub fn to_channel(sink: Sender<Vec<String>>) -> ReadAhead {
        ReadAhead {
            paths: Some(sink),
            thread: None,
        }
    }

    /// Reading ahead is off.
    pub fn off() -> ReadAhead {
        ReadAhead {
            paths: None,
            thread: None,
        }
    }

    /// Asks for `batch` to be read ahead, in that order. Never blocks.
    pub fn request(&self, batch: Vec<String>) {
        if let Some(paths) = &self.paths
            && !batch.is_empty()
        {
            // A closed channel means the thread is gone; the read then simply happens later.
            let _ = paths.send(batch);
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.paths = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(target_os = "linux")]
fn advise_will_need(path: &str) {
    use rustix::fs::{Advice, fadvise};
    if let Ok(file) = std::fs::File::open(path) {
        // Starts the read and returns; the pages arrive while the workers decode other files.
        let _ = fadvise(&file, 0, None, Advice::WillNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_will_need(_path: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advising_a_real_and_a_missing_file_is_harmless() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.json.gz");
        std::fs::write(&path, b"{}").expect("write");
        let read_ahead = ReadAhead::start();
        read_ahead.request(vec![
            path.to_string_lossy().into_owned(),
            "/nonexistent/file.json.gz".into(),
        ]);
        drop(read_ahead);
        assert_eq!(std::fs::read(&path).expect("read back"), b"{}");
    }
}
