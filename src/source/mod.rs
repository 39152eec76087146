//! Sources: where log files come from. `key` understands the CloudTrail key layout and prunes by
//! it; `local` walks files and folders on disk; `s3` lists and fetches objects.

pub mod key;
pub mod local;
pub mod s3;

/// Where an input lives; its [`SourceFile::name`] says where exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk; its name is its absolute path.
    Local,
    /// An object; its name is `s3://bucket/key`.
    S3,
}

/// One input file, as discovered (nothing read from it yet). A run holds one of these for every
/// input until the end, so it holds nothing that can be derived from its name.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub origin: Origin,
    /// The name recorded in the lake (`source_file`) and in the manifest: the absolute path, or
    /// `s3://bucket/key`.
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

    /// The bucket and key of an object.
    pub fn s3_object(&self) -> Option<(&str, &str)> {
        match self.origin {
            Origin::S3 => self.name.strip_prefix("s3://")?.split_once('/'),
            Origin::Local => None,
        }
    }
}

/// What a walk or a listing found.
#[derive(Debug, Default)]
pub struct Discovery {
    pub files: Vec<SourceFile>,
    /// Folders not descended into because the scope excludes them.
    pub pruned_folders: usize,
    /// Paths that could not be read while walking: (path, reason).
    pub errors: Vec<(String, String)>,
}

impl Discovery {
    /// Adds another source's findings.
    pub fn merge(&mut self, other: Discovery) {
        self.files.extend(other.files);
        self.pruned_folders += other.pruned_folders;
        self.errors.extend(other.errors);
    }
}
