//! Where a run reads from S3 and writes its lake: the S3 access a run needs (a runtime, the
//! loaded AWS configuration, one client per bucket), the lake it writes (on disk, or a local
//! staging lake whose files are uploaded as they are finished), and publishing the run's log
//! files there. Writing the files themselves is left to `sink`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::aws::Aws;
use crate::error::SinkError;
use crate::lake::LakeLocation;
use crate::plan::{IngestPlan, SourceLocation};
use crate::sink::lake::Lake;
use crate::sink::partition::PartWriter;
use crate::sink::remote::RemoteLake;

/// What S3 needs: a runtime for the SDK, the loaded configuration and one client per bucket.
pub(super) struct S3Access {
    pub runtime: tokio::runtime::Runtime,
    pub aws: Aws,
    pub clients: HashMap<String, aws_sdk_s3::Client>,
}

impl S3Access {
    /// None when the run touches no S3 at all (no runtime, no credential lookup).
    pub fn for_plan(plan: &IngestPlan) -> Result<Option<S3Access>, SinkError> {
        let buckets: Vec<&str> = plan
            .sources
            .iter()
            .filter_map(|source| match source {
                SourceLocation::S3(url) => Some(url.bucket.as_str()),
                SourceLocation::Local(_) => None,
            })
            .collect();
        if buckets.is_empty() && !matches!(plan.lake, LakeLocation::S3(_)) {
            return Ok(None);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|source| SinkError::Io {
                op: "starting the S3 runtime for",
                path: "S3".into(),
                source,
            })?;
        let aws = runtime.block_on(Aws::load(&plan.aws));
        let mut clients = HashMap::new();
        for bucket in buckets {
            if !clients.contains_key(bucket) {
                let client = runtime.block_on(aws.client_for_bucket(bucket));
                clients.insert(bucket.to_owned(), client);
            }
        }
        Ok(Some(S3Access {
            runtime,
            aws,
            clients,
        }))
    }
}

/// The lake a run writes: the lake itself on disk, or for a lake on S3 a local staging lake
/// whose files are uploaded as they are finished.
pub(super) struct Target {
    pub lake: Lake,
    pub remote: Option<Arc<RemoteLake>>,
    _staging: Option<tempfile::TempDir>,
}

impl Target {
    pub fn open(plan: &IngestPlan, s3: Option<&S3Access>) -> Result<Target, SinkError> {
        let (LakeLocation::S3(url), Some(s3)) = (&plan.lake, s3) else {
            let LakeLocation::Local(root) = &plan.lake else {
                unreachable!("S3 access is set up whenever the lake is on S3")
            };
            return Ok(Target {
                lake: Lake::open_for_writing(root)?,
                remote: None,
                _staging: None,
            });
        };
        let store = s3
            .runtime
            .block_on(s3.aws.object_store(&url.bucket))
            .map_err(|reason| SinkError::Remote {
                op: "opening",
                url: url.to_string(),
                reason,
            })?;
        let remote = Arc::new(RemoteLake::new(
            url.clone(),
            store,
            s3.runtime.handle().clone(),
        ));
        let staging = tempfile::Builder::new()
            .prefix("sts-audit-staging-")
            .tempdir()
            .map_err(SinkError::io(
                "creating a staging folder in",
                std::env::temp_dir(),
            ))?;
        let lake = Lake::open_for_writing(staging.path())?;
        remote.download_manifest(&lake.manifest_dir())?;
        Ok(Target {
            lake,
            remote: Some(remote),
            _staging: Some(staging),
        })
    }

    /// The writer of one worker's Parquet files.
    pub fn part_writer(&self, run_id: &str, worker: usize) -> PartWriter {
        PartWriter {
            events_dir: self.lake.events_dir(),
            run_id: run_id.to_owned(),
            worker,
            written: 0,
            remote: self.remote.clone(),
        }
    }

    /// Uploads a finished log file to the lake on S3 (a no-op on disk); returns where it now is.
    pub fn publish_log(
        &self,
        local: Option<PathBuf>,
        folder: &str,
    ) -> Result<Option<String>, SinkError> {
        let Some(path) = local else {
            return Ok(None);
        };
        let Some(remote) = &self.remote else {
            return Ok(Some(path.display().to_string()));
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let relative = format!("{folder}/{name}");
        remote.upload(&path, &relative)?;
        Ok(Some(format!(
            "{}{relative}",
            remote.url().object(&remote.url().folder())
        )))
    }
}
