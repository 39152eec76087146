//! A lake on S3 (`--lake s3://bucket/prefix`), with the same layout and the same publish rule as
//! on disk. An ingest into it works in a local staging lake that never holds more than what is
//! being written: each Parquet file is uploaded as soon as it is complete and then deleted
//! locally; the rejected-records log follows, and this run's manifest segment is uploaded last.
//! An S3 PUT is atomic (an object is visible whole or not at all), so a run killed at any moment
//! leaves complete files and no manifest entry for their inputs: the next run reads those inputs
//! again and the dedup index, which reads the partitions' keys back from S3, drops what is
//! already there.
//!
//! S3 has no lock file that works like `flock`: one ingest at a time per lake on S3 is the
//! scheduler's job (a second concurrent run would not corrupt anything, but could write
//! duplicates).

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
// Deprecated in parquet 59 in favour of hand-written readers; it is still the reader DataFusion
// 55 itself uses, and reading two columns of a file needs nothing more.
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;
use tokio::runtime::Handle;

use crate::aws::S3Url;
use crate::error::SinkError;
use crate::lake::partition::PartitionKey;
use crate::lake::schema::KEY_COLUMNS;
use crate::lake::{EVENTS_DIR, MANIFEST_DIR};

pub struct RemoteLake {
    url: S3Url,
    store: Arc<dyn ObjectStore>,
    root: ObjectPath,
    runtime: Handle,
}

impl RemoteLake {
    pub fn new(url: S3Url, store: Arc<dyn ObjectStore>, runtime: Handle) -> RemoteLake {
        let root = ObjectPath::from(url.prefix.trim_matches('/'));
        RemoteLake {
            url,
            store,
            root,
            runtime,
        }
    }

    pub fn url(&self) -> &S3Url {
        &self.url
    }

    fn path(&self, relative: &str) -> ObjectPath {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    fn error(&self, op: &'static str, relative: &str, error: impl ToString) -> SinkError {
        SinkError::Remote {
            op,
            url: format!("s3://{}/{}", self.url.bucket, self.path(relative)),
            reason: error.to_string(),
        }
    }

    /// Copies the manifest segments to `local_dir`, where the run reads them.
    pub fn download_manifest(&self, local_dir: &Path) -> Result<usize, SinkError> {
        let folder = self.path(MANIFEST_DIR);
        self.runtime.block_on(async {
            let objects: Vec<_> = self
                .store
                .list(Some(&folder))
                .try_collect()
                .await
                .map_err(|e| self.error("listing", MANIFEST_DIR, e))?;
            let mut copied = 0;
            for object in objects {
                let Some(name) = object.location.filename() else {
                    continue;
                };
                if name.starts_with('.') || !name.ends_with(".jsonl") {
                    continue;
                }
                let relative = format!("{MANIFEST_DIR}/{name}");
                let bytes = self
                    .store
                    .get(&object.location)
                    .await
                    .map_err(|e| self.error("reading", &relative, e))?
                    .bytes()
                    .await
                    .map_err(|e| self.error("reading", &relative, e))?;
                let target = local_dir.join(name);
                std::fs::write(&target, &bytes).map_err(SinkError::io("writing", &target))?;
                copied += 1;
            }
            Ok(copied)
        })
    }

    /// Calls `take` with the (event_id, recipient_account_id) columns of every Parquet file
    /// already in `partition`, reading only those two columns' pages.
    pub fn partition_keys(
        &self,
        partition: &PartitionKey,
        mut take: impl FnMut(&RecordBatch),
    ) -> Result<(), SinkError> {
        let relative = partition.relative_dir();
        let folder = self.path(&relative);
        self.runtime.block_on(async {
            let objects: Vec<_> = self
                .store
                .list(Some(&folder))
                .try_collect()
                .await
                .map_err(|e| self.error("listing", &relative, e))?;
            for object in objects {
                let name = object.location.filename().unwrap_or_default();
                if name.starts_with('.') || !name.ends_with(".parquet") {
                    continue;
                }
                let file = format!("{relative}/{name}");
                #[allow(deprecated)]
                let reader = ParquetObjectReader::new(self.store.clone(), object.location.clone())
                    .with_file_size(object.size);
                let builder = ParquetRecordBatchStreamBuilder::new(reader)
                    .await
                    .map_err(|e| self.error("reading", &file, e))?;
                let mask = ProjectionMask::columns(builder.parquet_schema(), KEY_COLUMNS);
                let mut batches = builder
                    .with_projection(mask)
                    .build()
                    .map_err(|e| self.error("reading", &file, e))?;
                while let Some(batch) = batches
                    .try_next()
                    .await
                    .map_err(|e| self.error("reading", &file, e))?
                {
                    take(&batch);
                }
            }
            Ok(())
        })
    }

    /// Uploads the finished local file `local` as `relative` (one PUT: visible whole or not at
    /// all), then removes the local copy.
    pub fn upload(&self, local: &Path, relative: &str) -> Result<(), SinkError> {
        let bytes = std::fs::read(local).map_err(SinkError::io("reading", local))?;
        let target = self.path(relative);
        self.runtime.block_on(async {
            self.store
                .put(&target, bytes.into())
                .await
                .map_err(|e| self.error("uploading", relative, e))
        })?;
        std::fs::remove_file(local).map_err(SinkError::io("removing", local))
    }

    /// True when the lake has an `events/` folder with anything in it.
    pub fn has_events(&self) -> Result<bool, SinkError> {
        let folder = self.path(EVENTS_DIR);
        self.runtime.block_on(async {
            let listing = self
                .store
                .list_with_delimiter(Some(&folder))
                .await
                .map_err(|e| self.error("listing", EVENTS_DIR, e))?;
            Ok(!listing.common_prefixes.is_empty() || !listing.objects.is_empty())
        })
    }
}
