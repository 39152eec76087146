//! Local files and folders: a recursive walk that prunes folders by the CloudTrail layout before
//! descending into them.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use walkdir::WalkDir;

use super::key::{self, Scope};
use super::{Discovery, Origin, SourceFile};

/// Walks every source (a file or a folder), in a stable order.
pub fn discover(sources: &[PathBuf], scope: &Scope) -> Discovery {
    let mut found = Discovery::default();
    for source in sources {
        walk(source, scope, &mut found);
    }
    found.files.sort_by(|a, b| a.name.cmp(&b.name));
    found.files.dedup_by(|a, b| a.name == b.name);
    found
}

fn walk(root: &Path, scope: &Scope, found: &mut Discovery) {
    let mut pruned = 0;
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| {
            let keep = !entry.file_type().is_dir()
                || key::parse(&entry.path().to_string_lossy())
                    .is_none_or(|k| scope.may_contain(&k));
            pruned += usize::from(!keep);
            keep
        });
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() => match source_file(entry.path()) {
                Ok(file) => found.files.push(file),
                Err(error) => found
                    .errors
                    .push((entry.path().display().to_string(), error.to_string())),
            },
            Ok(_) => {}
            Err(error) => {
                let path = error.path().unwrap_or(root).display().to_string();
                let reason = error
                    .io_error()
                    .map_or_else(|| error.to_string(), ToString::to_string);
                found.errors.push((path, reason));
            }
        }
    }
    found.pruned_folders += pruned;
}

fn source_file(path: &Path) -> std::io::Result<SourceFile> {
    let metadata = std::fs::metadata(path)?;
    let absolute = std::path::absolute(path)?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos() as i64);
    let name = absolute.to_string_lossy().into_owned();
    Ok(SourceFile {
        origin: Origin::Local,
        name,
        size: metadata.len(),
        version: modified.to_string(),
    })
}
