//! Error types, one per layer. Each variant names the operation that failed and carries the
//! path (or key) it failed on, so a message alone tells the user where to look.

use std::path::PathBuf;

/// Errors in turning command-line arguments into a plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("invalid time {value:?} for {flag}: {reason}")]
    Time {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--from {from} is after --to {to}")]
    EmptyRange { from: String, to: String },
    #[error("invalid account id {0:?}: expected 12 digits")]
    Account(String),
    #[error("source {path}: {source}")]
    Source {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--jobs must be at least 1")]
    Jobs,
    #[error("--concurrency must be at least 1")]
    Concurrency,
    #[error("{0}")]
    Url(String),
}

/// Errors that stop an ingest run as a whole (a bad input file never does: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing Parquet {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
    #[error("building record batch for {path}: {source}")]
    Arrow {
        path: PathBuf,
        source: arrow::error::ArrowError,
    },
    #[error(
        "lake {path} is in use by another ingest or derive (its _lock is held); try again when it finishes"
    )]
    Locked { path: PathBuf },
    #[error("{op} {url}: {reason}")]
    Remote {
        op: &'static str,
        url: String,
        reason: String,
    },
    #[error("manifest {path} line {line}: {reason}")]
    Manifest {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

impl SinkError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| SinkError::Io { op, path, source }
    }
}

/// Why one input file could not be read completely. Never fatal to the run.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FileError {
    #[error("cannot read: {0}")]
    Read(String),
    #[error("gzip stream damaged after {decompressed} bytes: {reason}")]
    Gzip { decompressed: u64, reason: String },
    #[error("decompressed size exceeds the cap of {cap} bytes (raise --max-file-size)")]
    TooLarge { cap: u64 },
    #[error("invalid JSON: {0}")]
    Json(String),
}

/// Errors of the query layer: opening the lake as tables, planning and running SQL, rendering.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no lake at {lake} (no events/ folder): run `sts-audit ingest` first")]
    NoLake { lake: String },
    /// The lake's write lock, held by another ingest or derive.
    #[error(transparent)]
    Lock(SinkError),
    #[error("lake {lake}: {reason}")]
    Remote { lake: String, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("setting up {what}: {source}")]
    Setup {
        what: &'static str,
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("view {name} (queries/views/{name}.sql): {source}")]
    View {
        name: String,
        source: Box<datafusion::error::DataFusionError>,
    },
    #[error("{0}")]
    Sql(Box<datafusion::error::DataFusionError>),
    #[error("only queries can run here (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE): {0}")]
    NotReadOnly(String),
    #[error("unknown report {name:?}; `sts-audit report --list` shows them")]
    UnknownReport { name: String },
    #[error("report file {path}: {reason}")]
    ReportFile { path: PathBuf, reason: String },
    #[error("unknown table {0:?}; \\d lists the tables")]
    UnknownTable(String),
    #[error("the query did not finish within {} (--timeout)", humantime(.0))]
    Timeout(std::time::Duration),
    #[error("{0}")]
    TooDeep(String),
    #[error("rendering results: {0}")]
    Render(String),
    #[error("writing output: {0}")]
    Output(#[source] std::io::Error),
}

/// `90s` as `1m 30s`, for messages.
fn humantime(duration: &std::time::Duration) -> String {
    let millis = duration.as_millis();
    let (hours, minutes) = (millis / 3_600_000, millis / 60_000 % 60);
    let seconds = (millis % 60_000) as f64 / 1000.0;
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m {seconds}s"),
        _ => format!("{hours}h {minutes}m {seconds}s"),
    }
}

impl QueryError {
    pub fn setup(
        what: &'static str,
    ) -> impl FnOnce(datafusion::error::DataFusionError) -> QueryError {
        move |source| QueryError::Setup {
            what,
            source: Box::new(source),
        }
    }
}

impl From<datafusion::error::DataFusionError> for QueryError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        QueryError::Sql(Box::new(error))
    }
}

/// Errors of the source layer: a path that could not be walked or read, an S3 folder that could
/// not be listed, an object that could not be fetched. Each is about one path or
/// `s3://bucket/key` and is counted while the run goes on, except [`SourceError::Unlistable`]:
/// a source that cannot be listed at all leaves nothing to ingest.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file found while walking whose size, time or absolute path could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A folder or file the walk could not read (permissions, a dangling link, a loop).
    #[error("{path}: {reason}")]
    Walk { path: PathBuf, reason: String },
    /// A symbolic link leading out of the source it was found under.
    #[error("{path}: {}", outside_source(.target, .within))]
    OutsideSource {
        path: PathBuf,
        target: PathBuf,
        within: PathBuf,
    },
    /// A folder below an S3 source that could not be listed.
    #[error("{url}: {reason}")]
    List { url: String, reason: String },
    /// The folder an S3 source names could not be listed (no such bucket, access denied).
    #[error("listing {0}")]
    Unlistable(Box<SourceError>),
    /// An object whose body could not be fetched.
    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl SourceError {
    /// The path or `s3://bucket/key` the error is about.
    pub fn location(&self) -> String {
        match self {
            SourceError::Read { path, .. }
            | SourceError::Walk { path, .. }
            | SourceError::OutsideSource { path, .. } => path.display().to_string(),
            SourceError::List { url, .. } | SourceError::Fetch { url, .. } => url.clone(),
            SourceError::Unlistable(listing) => listing.location(),
        }
    }

    /// What went wrong there, without the location.
    pub fn reason(&self) -> String {
        match self {
            SourceError::Read { source, .. } => source.to_string(),
            SourceError::Walk { reason, .. }
            | SourceError::List { reason, .. }
            | SourceError::Fetch { reason, .. } => reason.clone(),
            SourceError::OutsideSource { target, within, .. } => outside_source(target, within),
            SourceError::Unlistable(listing) => listing.reason(),
        }
    }
}

fn outside_source(target: &std::path::Path, within: &std::path::Path) -> String {
    format!(
        "symbolic link to {} outside the source {}, not followed (--follow-symlinks follows it)",
        target.display(),
        within.display()
    )
}

/// Errors that stop `verify` as a whole. A digest or log file that fails a check never does:
/// it is a finding of the run, in its report.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("public keys {path}: {reason}")]
    PublicKeys { path: PathBuf, reason: String },
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error(
        "CloudTrail's ListPublicKeys in {region}: {reason}. Without access to CloudTrail's API, \
         pass --public-keys FILE, the output of `aws cloudtrail list-public-keys --start-time \
         <from>` in each trail's region"
    )]
    ListPublicKeys { region: String, reason: String },
    #[error("the verification record in lake {lake}: {reason}")]
    Record { lake: String, reason: String },
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
}
