//! Sources: where log files come from. `key` understands the CloudTrail key layout and prunes by
//! it; `local` walks files and folders on disk; `read_ahead` asks the kernel to read the next local
//! files early; `s3` lists and fetches objects.

pub mod key;
pub mod local;
pub mod read_ahead;
pub mod s3;

use crate::error::SourceError;

/// Where an input lives; its [`SourceFile::name`] says where exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk; its name is its path as the walk of its source found it (relative when
    /// the source named on the command line was).
    Local,
    /// An object; its name is `s3://bucket/key`.
    S3,
}

/// One input file, as discovered (nothing read from it yet). A run holds one of these for every
/// input until the end, so it holds nothing that can be derived from its name.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub origin: Origin,
    /// The name recorded in the lake (`source_file`) and in the manifest: the path as given
    /// (see `local`), or `s3://bucket/key`.
    pub name: String,
    pub size: u64,
    /// What changes when the content does, for the manifest: the modification time in
    /// nanoseconds since the epoch for a file, the ETag for an object.
    pub version: String,
}

impl SourceFile {
    /// What the CloudTrail layout says about the file, when its path or key follows it.
    pub fn log_key(&self) -> Option<key::LogKey> {
        key::parse(&self.name)
    }

    /// Why the file is not read at all, when its path or key says it holds no events: the
    /// digest and insight folders of the layout.
    pub fn skipped_by_key(&self) -> Option<&'static str> {
        match self.log_key().and_then(|k| k.folder) {
            Some(key::TrailFolder::Digest) => Some("CloudTrail-Digest file"),
            Some(key::TrailFolder::Insight) => Some("CloudTrail-Insight file"),
            _ => None,
        }
    }

    /// The bucket and key of an object.
    pub fn s3_object(&self) -> Option<(&str, &str)> {
        match self.origin {
            Origin::S3 => self.name.strip_prefix("s3://")?.split_once('/'),
            Origin::Local => None,
        }
    }
}

/// The order inputs are visited in: by account and delivery day as the key layout says (inputs
/// outside the layout last), then by the delivery time in the file name, so each partition's
/// rows arrive roughly in time order even when several regions share a day; then by name.
pub fn visit_order(file: &SourceFile) -> impl Ord + '_ {
    let key = file.log_key();
    let day = key.as_ref().map(|k| (k.year, k.month, k.day));
    let in_layout = key.is_some();
    let account = key.and_then(|k| k.account);
    let file_name = file.name.rsplit(['/', '\\']).next().unwrap_or(&file.name);
    (
        !in_layout,
        account,
        day,
        key::delivery_stamp(file_name),
        file_name,
        &file.name,
    )
}

/// Puts inputs in visiting order and drops any named twice (a file given on its own and found
/// in a folder too).
pub fn sort_for_visiting(files: &mut Vec<SourceFile>) {
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_cached_key(|&file| visit_order(&files[file]));
    let mut taken: Vec<Option<SourceFile>> = std::mem::take(files).into_iter().map(Some).collect();
    files.extend(order.into_iter().filter_map(|file| taken[file].take()));
    files.dedup_by(|a, b| a.name == b.name);
}

/// What a walk or a listing found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub files: Vec<SourceFile>,
    /// Folders not descended into because the scope excludes them.
    pub pruned_folders: usize,
    /// Paths that could not be read while walking, folders that could not be listed.
    pub errors: Vec<SourceError>,
}

impl Discovery {
    /// Adds another source's findings.
    pub fn merge(&mut self, other: Discovery) {
        self.files.extend(other.files);
        self.pruned_folders += other.pruned_folders;
        self.errors.extend(other.errors);
    }
}
