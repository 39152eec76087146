//! How one input ended: what the workers report and the ledger counts. Its own file so that
//! `worker` (which produces outcomes) and `summary` (which counts them) do not import each other.

use crate::sink::record_sink::RecordCounts;

/// How one file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Status {
    Ingested,
    /// Some records read before damage; the damage is the reason.
    Partial(String),
    /// Damaged with nothing usable.
    Failed(String),
    /// Could not be opened or read: not recorded, so the next run tries again.
    Unreadable(String),
    Skipped(String),
}

pub(super) struct FileOutcome {
    pub status: Status,
    pub counts: RecordCounts,
    /// Bytes after decompression.
    pub decompressed: u64,
    pub first_rejection: Option<String>,
    /// Reading stopped before the end of the file (--strict).
    pub cut_short: bool,
}

impl FileOutcome {
    /// A file that ended before any record was read from it.
    pub(super) fn unread(status: Status) -> FileOutcome {
        FileOutcome {
            status,
            counts: RecordCounts::default(),
            decompressed: 0,
            first_rejection: None,
            cut_short: false,
        }
    }

    pub(super) fn is_failure(&self) -> bool {
        let bad_status = matches!(
            self.status,
            Status::Partial(_) | Status::Failed(_) | Status::Unreadable(_)
        );
        bad_status || self.counts.rejected > 0
    }
}
