//! What a verification looks at: the digest files under `CloudTrail-Digest/` and the log files
//! under `CloudTrail/` of the sources, in scope (account, region, and day folders with a day of
//! slack, so that the digest after the period, which holds the signature of the period's last
//! one, is found too). Names only: the files are read by `chain` (digests) and `hash` (logs).

use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::aws::{Aws, S3Url};
use crate::error::SourceError;
use crate::lake::scope::Scope;
use crate::source::key::{self, TrailFolder};
use crate::source::{local, s3};

/// A digest or log file found under a source.
#[derive(Debug, Clone)]
pub struct Found {
    /// What ingest records as `source_file`: the path as the walk of the source found it
    /// (`source::local::recorded_name`), or `s3://bucket/key`.
    pub name: String,
    /// The part from `AWSLogs/` on (`digest::layout_key`): how digests name it.
    pub key: String,
    pub account: String,
    pub region: String,
    pub place: Place,
}

/// Where a file is, to read it.
#[derive(Debug, Clone)]
pub enum Place {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

/// The files of every source, split by trail folder.
#[derive(Debug, Default)]
pub struct Inventory {
    pub digests: Vec<Found>,
    pub logs: Vec<Found>,
    pub errors: Vec<SourceError>,
    /// The S3 client of each bucket listed (digests and logs are fetched with it).
    pub clients: Vec<(String, aws_sdk_s3::Client)>,
}

impl Inventory {
    /// Files one at a time: into digests or logs by their folder; others are ignored.
    fn take(&mut self, name: String, layout_path: &str, place: Place, scope: &Scope) {
        let Some(parsed) = key::parse(layout_path) else {
            return;
        };
        if parsed.day.is_none() || !scope.may_contain(&parsed) {
            return;
        }
        let (Some(account), Some(region)) = (parsed.account, parsed.region) else {
            return;
        };
        let found = Found {
            name,
            key: super::digest::layout_key(layout_path),
            account,
            region,
            place,
        };
        match parsed.folder {
            Some(TrailFolder::Digest) => self.digests.push(found),
            Some(TrailFolder::Events) => self.logs.push(found),
            _ => {}
        }
    }

    pub fn client(&self, bucket: &str) -> Option<&aws_sdk_s3::Client> {
        self.clients
            .iter()
            .find(|(name, _)| name == bucket)
            .map(|(_, client)| client)
    }
}

/// Walks a local folder (symbolic links are not followed: a bucket copied to disk has none).
pub fn walk_local(source: &Path, scope: &Scope, inventory: &mut Inventory) {
    let walk = WalkDir::new(source).into_iter().filter_entry(|entry| {
        !entry.file_type().is_dir()
            || key::parse(&entry.path().to_string_lossy()).is_none_or(|k| {
                k.folder
                    .is_none_or(|f| matches!(f, TrailFolder::Digest | TrailFolder::Events))
                    && scope.may_contain(&k)
            })
    });
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                inventory.errors.push(SourceError::Walk {
                    path: error.path().unwrap_or(source).to_path_buf(),
                    reason: error.to_string(),
                });
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let name = local::recorded_name(path).to_string_lossy().into_owned();
        inventory.take(name.clone(), &name, Place::Local(path.to_path_buf()), scope);
    }
}

/// Lists an S3 source's digest and log folders in scope.
pub async fn list_s3(
    aws: &Aws,
    url: &S3Url,
    scope: &Scope,
    concurrency: usize,
    inventory: &mut Inventory,
) -> Result<(), SourceError> {
    let client = aws.client_for_bucket(&url.bucket).await;
    let wanted = [TrailFolder::Events, TrailFolder::Digest];
    let found = s3::discover_folders(&client, url, scope, concurrency, &wanted).await?;
    inventory.errors.extend(found.errors);
    for file in found.files {
        let Some((bucket, key)) = file.s3_object() else {
            continue;
        };
        let place = Place::S3 {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        let key = key.to_owned();
        inventory.take(file.name.clone(), &key, place, scope);
    }
    inventory.clients.push((url.bucket.clone(), client));
    Ok(())
}
