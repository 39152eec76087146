//! The findings `detect --save` keeps, as the lake holds them: one Parquet file per detection
//! window, one row per finding, the contract's fields plus the window and when it ran.
//!
//! ```text
//! <lake>/findings/window=<start>--<end>.parquet     e.g. window=20250608T000000Z--20250609T000000Z.parquet
//! ```
//!
//! Saving a window again replaces its file in one PUT (a rename on disk, atomic on S3), so a
//! re-run never duplicates and a killed run leaves the previous file. A finding two
//! overlapping windows both found is in both files; the `findings` table shows its newest copy.
//! What the rows mean is `query::detect::saved`'s; this module only names and types them, so
//! that the catalog can read them without depending on detection.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionContext;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{FINDINGS_DIR, sibling_folder};
use crate::error::QueryError;

/// The columns of a saved finding, in file order, with what they mean (`schema findings`).
pub const COLUMNS: [(&str, &str); 18] = [
    (
        "id",
        "Stable id: the same finding has the same id in every run",
    ),
    ("rule", "The rule that found it (sts-audit detect --list)"),
    ("severity", "low, medium, high or critical"),
    ("title", "What the rule found, in a few words"),
    ("summary", "One sentence a person reads"),
    ("event_time", "First evidence"),
    ("last_event_time", "Last evidence"),
    ("account_id", "The account it is about"),
    (
        "principal_arn",
        "The principal (or federated subject) it is about",
    ),
    ("role_arn", "The role it is about"),
    ("source_ip_address", "The address it is about"),
    ("access_key_id", "The temporary key it is about"),
    ("event_ids", "Every CloudTrail eventID that evidences it"),
    ("attack", "MITRE ATT&CK technique ids"),
    (
        "details",
        "The rule's numbers (baseline, observed, threshold) as JSON",
    ),
    (
        "window_start",
        "Start of the detection window that found it",
    ),
    ("window_end", "End of that window (exclusive)"),
    ("detected_at", "When that detect run ran"),
];

/// The Arrow schema of [`COLUMNS`].
pub fn schema() -> SchemaRef {
    let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let list = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let fields = COLUMNS.iter().map(|(name, _)| {
        let (data_type, nullable) = match *name {
            "id" | "rule" | "severity" | "title" | "summary" | "details" => (DataType::Utf8, false),
            "event_ids" | "attack" => (list.clone(), false),
            "window_start" | "window_end" | "detected_at" => (time.clone(), false),
            "event_time" | "last_event_time" => (time.clone(), true),
            _ => (DataType::Utf8, true),
        };
        Field::new(*name, data_type, nullable)
    });
    Arc::new(Schema::new(fields.collect::<Vec<_>>()))
}

/// The file of the window `start`..`end`.
pub fn file_name(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let stamp = |time: DateTime<Utc>| time.format("%Y%m%dT%H%M%SZ").to_string();
    format!("window={}--{}.parquet", stamp(start), stamp(end))
}

/// The lake's `findings/` folder in the lake's object store (which the catalog registered);
/// [`FindingsFolder::of_folder`] opens another folder of Parquet files the same way
/// (`verified/`).
pub struct FindingsFolder {
    store: Arc<dyn ObjectStore>,
    folder: ObjectPath,
    url: url::Url,
}

impl FindingsFolder {
    pub fn of(ctx: &SessionContext, events_url: &ListingTableUrl) -> Result<Self, QueryError> {
        Self::of_folder(ctx, events_url, FINDINGS_DIR)
    }

    /// The lake's folder `name` beside `events/`.
    pub fn of_folder(
        ctx: &SessionContext,
        events_url: &ListingTableUrl,
        name: &str,
    ) -> Result<Self, QueryError> {
        let store = ctx
            .runtime_env()
            .object_store(events_url)
            .map_err(QueryError::setup("lake storage"))?;
        let (url, folder) = sibling_folder(events_url, name)?;
        Ok(FindingsFolder { store, folder, url })
    }

    /// The folder as a URL DataFusion lists (never as a glob).
    pub fn table_url(&self) -> Result<ListingTableUrl, QueryError> {
        ListingTableUrl::try_new(self.url.clone(), None)
            .map_err(QueryError::setup("findings table URL"))
    }

    /// Whether any findings were saved (an empty folder cannot be listed as a table on S3).
    pub async fn is_empty(&self) -> Result<bool, QueryError> {
        let first = self
            .store
            .list(Some(&self.folder))
            .try_filter(|meta| {
                let name = meta.location.filename().unwrap_or_default();
                std::future::ready(name.ends_with(".parquet"))
            })
            .try_next()
            .await
            .map_err(|e| self.error(e))?;
        Ok(first.is_none())
    }

    /// The bytes of file `name`, if it exists.
    pub async fn read(&self, name: &str) -> Result<Option<Vec<u8>>, QueryError> {
        match self.store.get(&self.folder.clone().join(name)).await {
            Ok(found) => {
                let bytes = found.bytes().await.map_err(|e| self.error(e))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes file `name` in one PUT: readers see the old file or the new one, never a part.
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<(), QueryError> {
        self.store
            .put(&self.folder.clone().join(name), PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    fn error(&self, error: object_store::Error) -> QueryError {
        QueryError::Remote {
            lake: self.url.to_string(),
            reason: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_names_its_file() {
        let start = DateTime::from_timestamp(1_749_340_800, 0).unwrap();
        let end = DateTime::from_timestamp(1_749_427_200, 0).unwrap();
        assert_eq!(
            file_name(start, end),
            "window=20250608T000000Z--20250609T000000Z.parquet"
        );
    }

    #[test]
    fn every_column_is_documented_and_typed() {
        let schema = schema();
        assert_eq!(schema.fields().len(), COLUMNS.len());
        assert!(COLUMNS.iter().all(|(_, doc)| !doc.is_empty()));
    }
}
