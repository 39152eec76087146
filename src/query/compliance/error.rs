//! The compliance report's errors, in a file of their own so that every file of the folder
//! can name them without importing the folder's `mod`.

use crate::error::QueryError;
use crate::query::detect::DetectError;

/// Errors of the compliance report; each names the section it is about.
#[derive(Debug, thiserror::Error)]
pub enum ComplianceError {
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("compliance section {id} (queries/compliance/{id}.sql): {reason}")]
    Section { id: String, reason: String },
}
