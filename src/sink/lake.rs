//! Opening a lake on disk for writing: its folders created, its write lock held, the temporary
//! files of an interrupted run removed; and the one publish rule every file follows (written
//! to a hidden temporary name, synced, renamed, its folder synced). Where the lake is and what
//! its folders are called belong to `lake`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::SinkError;
use crate::lake::{EVENTS_DIR, LakeLock, MANIFEST_DIR, REJECTED_DIR};

/// An open lake, locked for writing for as long as this value lives.
#[derive(Debug)]
pub struct Lake {
    root: PathBuf,
    _lock: LakeLock,
}

impl Lake {
    /// Creates the layout if needed, takes the write lock and removes temporary files that an
    /// interrupted run left behind.
    pub fn open_for_writing(root: &Path) -> Result<Lake, SinkError> {
        for dir in [
            root.join(EVENTS_DIR),
            root.join(MANIFEST_DIR),
            root.join(REJECTED_DIR),
        ] {
            fs::create_dir_all(&dir).map_err(SinkError::io("creating", &dir))?;
        }
        let lock = LakeLock::acquire(root)?;
        let lake = Lake {
            root: root.to_path_buf(),
            _lock: lock,
        };
        lake.remove_temporary_files()?;
        Ok(lake)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn events_dir(&self) -> PathBuf {
        self.root.join(EVENTS_DIR)
    }

    pub fn manifest_dir(&self) -> PathBuf {
        self.root.join(MANIFEST_DIR)
    }

    pub fn rejected_dir(&self) -> PathBuf {
        self.root.join(REJECTED_DIR)
    }

    fn remove_temporary_files(&self) -> Result<(), SinkError> {
        for entry in walkdir::WalkDir::new(&self.root).into_iter().flatten() {
            if entry.file_type().is_file() && is_temporary(entry.path()) {
                fs::remove_file(entry.path()).map_err(SinkError::io("removing", entry.path()))?;
            }
        }
        Ok(())
    }
}

/// Temporary files are hidden (`.` prefix) and end in `.tmp` until they are published.
pub fn temporary_name(final_name: &str) -> String {
    format!(".{final_name}.tmp")
}

fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp"))
}

/// The hidden temporary file that becomes `dir/name` at [`commit`].
pub fn create_temporary(dir: &Path, name: &str) -> Result<(File, PathBuf), SinkError> {
    let temporary = dir.join(temporary_name(name));
    let file = File::create(&temporary).map_err(SinkError::io("creating", &temporary))?;
    Ok((file, temporary))
}

/// Makes a fully written temporary file durable and renames it to `dir/name`.
pub fn commit(file: File, temporary: &Path, dir: &Path, name: &str) -> Result<PathBuf, SinkError> {
    let target = dir.join(name);
    file.sync_all()
        .map_err(SinkError::io("syncing", temporary))?;
    drop(file);
    fs::rename(temporary, &target).map_err(SinkError::io("publishing", &target))?;
    sync_dir(dir)?;
    Ok(target)
}

/// Makes a rename durable (a no-op where folders cannot be opened, as on Windows).
pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    match File::open(dir) {
        Ok(handle) => handle.sync_all().or(Ok(())),
        Err(_) => Ok(()),
    }
}
