//! Keeps a run's verdicts in the lake (`lake::verified`): one Parquet file per run under
//! `<lake>/verified/`, written under a hidden name and renamed into place on disk, one PUT on
//! S3, so a reader never sees part of one.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::report::FileVerdict;
use crate::aws::{Aws, AwsOptions};
use crate::error::VerifyError;
use crate::lake::LakeLocation;
use crate::lake::verified::{self, VERIFIED_DIR};

/// Writes `verdicts` as the record of a run at `at`; returns where.
pub fn write(
    lake: &LakeLocation,
    aws: &AwsOptions,
    verdicts: &[FileVerdict],
    at: DateTime<Utc>,
) -> Result<String, VerifyError> {
    let failed = |reason: String| VerifyError::Record {
        lake: lake.to_string(),
        reason,
    };
    let bytes = parquet_bytes(verdicts, at).map_err(failed)?;
    let name = verified::file_name(at, std::process::id());
    match lake {
        LakeLocation::Local(root) => write_local(root, &name, &bytes).map_err(failed),
        LakeLocation::S3(url) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(VerifyError::Runtime)?;
            runtime
                .block_on(async {
                    let store = Aws::load(aws).await.object_store(&url.bucket).await?;
                    let key = format!("{}{VERIFIED_DIR}/{name}", url.folder());
                    store
                        .put(&ObjectPath::from(key.as_str()), PutPayload::from(bytes))
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(url.object(&key))
                })
                .map_err(failed)
        }
    }
}

fn write_local(root: &std::path::Path, name: &str, bytes: &[u8]) -> Result<String, String> {
    let folder = root.join(VERIFIED_DIR);
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let path = folder.join(name);
    let hidden = folder.join(format!(".{name}.tmp"));
    std::fs::write(&hidden, bytes)
        .and_then(|()| std::fs::rename(&hidden, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// The verdicts as one Parquet file of `lake::verified`'s schema.
fn parquet_bytes(verdicts: &[FileVerdict], at: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let batch = batch(verdicts, at).map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
        .map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// The verdicts as rows of `lake::verified`'s schema (`verified_at` = `at`): what the lake
/// keeps, and what `verify --format csv|ndjson` prints.
pub fn batch(
    verdicts: &[FileVerdict],
    at: DateTime<Utc>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let text = |get: &dyn Fn(&FileVerdict) -> Option<String>| -> ArrayRef {
        Arc::new(verdicts.iter().map(get).collect::<StringArray>())
    };
    let time = |get: &dyn Fn(&FileVerdict) -> Option<DateTime<Utc>>| -> ArrayRef {
        let micros = verdicts
            .iter()
            .map(|v| get(v).map(|t| t.timestamp_micros()));
        Arc::new(
            micros
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let columns = vec![
        text(&|v| Some(v.subject.clone())),
        text(&|v| Some(v.kind.to_owned())),
        text(&|v| Some(v.status.clone())),
        text(&|v| Some(v.detail.clone())),
        text(&|v| Some(v.account.clone())),
        text(&|v| Some(v.region.clone())),
        text(&|v| v.trail.clone()),
        time(&|v| v.start),
        time(&|v| v.end),
        text(&|v| v.digest.clone()),
        text(&|v| v.method.map(|m| method_name(m).to_owned())),
        time(&|_| Some(at)),
    ];
    RecordBatch::try_new(verified::schema(), columns)
}

fn method_name(method: super::chain::SignatureFrom) -> &'static str {
    match method {
        super::chain::SignatureFrom::S3Metadata => "s3-metadata",
        super::chain::SignatureFrom::NextDigest => "next-digest",
    }
}
