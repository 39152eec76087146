//! Sources: where log files come from. `key` understands the CloudTrail key layout and prunes by
//! it; `local` walks files and folders on disk.

pub mod key;
pub mod local;

use std::path::PathBuf;

/// One input file, as discovered (nothing read from it yet).
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The name recorded in the lake (`source_file`) and in the manifest: the absolute path.
    pub name: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch, for the manifest's change check.
    pub modified: i64,
    /// What the CloudTrail layout says about the file, when its path follows it.
    pub key: Option<key::LogKey>,
}
