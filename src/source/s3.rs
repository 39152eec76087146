//! CloudTrail logs in S3: discover the layout with delimiter listings (pruning folders by the key
//! layout and the scope before listing them), then fetch many objects at once.
//!
//! Listing a whole trail bucket is what makes collectors slow: a bucket holds years of small
//! objects, but a run needs a few day folders. So the walk goes one folder level at a time
//! (`AWSLogs/` → org → account → `CloudTrail/` → region → year → month → day), in parallel, and
//! only day folders inside `--from/--to` (with a day of slack) are listed object by object.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::key::{self, TrailFolder};
use super::{Discovery, Origin, SourceFile};
use crate::aws::S3Url;
use crate::error::SourceError;
use crate::lake::scope::Scope;

/// Attempts at reading one object's body (the SDK retries the request itself; this covers a
/// connection lost while the body streams).
const BODY_ATTEMPTS: u32 = 4;

/// One folder's listing: its objects and its subfolders.
#[derive(Debug, Default)]
struct Listing {
    objects: Vec<SourceFile>,
    folders: Vec<String>,
}

/// Walks `url` level by level with at most `concurrency` listings in flight.
pub async fn discover(
    client: &Client,
    url: &S3Url,
    scope: &Scope,
    concurrency: usize,
) -> Result<Discovery, SourceError> {
    discover_folders(client, url, scope, concurrency, &[TrailFolder::Events]).await
}

/// [`discover`] into the trail folders `wanted` (`verify` lists `CloudTrail-Digest/` too).
pub async fn discover_folders(
    client: &Client,
    url: &S3Url,
    scope: &Scope,
    concurrency: usize,
    wanted: &[TrailFolder],
) -> Result<Discovery, SourceError> {
    let mut found = Discovery::default();
    let root = url.folder();
    let first = list_folder(client, url, &root)
        .await
        .map_err(|listing| SourceError::Unlistable(Box::new(listing)))?;
    let mut queue = VecDeque::new();
    let filter = Filter { scope, wanted };
    take_listing(first, &filter, &mut queue, &mut found);
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < concurrency
            && let Some(folder) = queue.pop_front()
        {
            running.push(async move { list_folder(client, url, &folder).await });
        }
        let Some(listing) = running.next().await else {
            break;
        };
        match listing {
            Ok(listing) => take_listing(listing, &filter, &mut queue, &mut found),
            Err(error) => found.errors.push(error),
        }
    }
    found.files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Which folders a walk enters: those of the `wanted` trail folders that may hold files in scope.
struct Filter<'a> {
    scope: &'a Scope,
    wanted: &'a [TrailFolder],
}

/// Keeps a listing's objects and queues the subfolders that may hold logs in scope.
fn take_listing(
    listing: Listing,
    filter: &Filter,
    queue: &mut VecDeque<String>,
    found: &mut Discovery,
) {
    // Above the layout (a bucket's root, a custom trail prefix) other services' logs may sit
    // beside `AWSLogs/`: when it is there, it is the only folder worth walking.
    let has_layout = listing.folders.iter().any(|f| is_awslogs(f));
    let above_layout = listing.folders.iter().any(|f| key::parse(f).is_none());
    if has_layout && above_layout {
        for folder in listing.folders {
            if is_awslogs(&folder) {
                queue.push_back(folder);
            } else {
                found.pruned_folders += 1;
            }
        }
        return;
    }
    found.files.extend(listing.objects);
    for folder in listing.folders {
        if may_hold_logs(&folder, filter) {
            queue.push_back(folder);
        } else {
            found.pruned_folders += 1;
        }
    }
}

fn is_awslogs(folder: &str) -> bool {
    folder.trim_end_matches('/').rsplit('/').next() == Some("AWSLogs")
}

/// Only the wanted trail folders are listed (for ingest, Digest, Insight and other services'
/// folders hold no event logs, and skipping them costs nothing).
fn may_hold_logs(folder: &str, filter: &Filter) -> bool {
    match key::parse(folder) {
        None => true,
        Some(key) => {
            key.folder.is_none_or(|f| filter.wanted.contains(&f)) && filter.scope.may_contain(&key)
        }
    }
}

/// Every page of one folder's listing.
async fn list_folder(client: &Client, url: &S3Url, folder: &str) -> Result<Listing, SourceError> {
    let bucket = &url.bucket;
    let mut listing = Listing::default();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(folder)
        .delimiter("/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| SourceError::List {
            url: url.object(folder),
            reason: describe(&e),
        })?;
        for prefix in page.common_prefixes() {
            if let Some(folder) = prefix.prefix() {
                listing.folders.push(folder.to_owned());
            }
        }
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if key.ends_with('/') {
                continue; // a "folder" placeholder object
            }
            let url = format!("s3://{bucket}/{key}");
            listing.objects.push(SourceFile {
                origin: Origin::S3,
                name: url,
                size: object.size().map_or(0, |s| u64::try_from(s).unwrap_or(0)),
                version: object
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_owned(),
            });
        }
    }
    Ok(listing)
}

/// An object's bytes as fetched, with the share of the memory budget they hold until dropped.
pub struct Fetched {
    pub file: usize,
    pub body: Result<Bytes, SourceError>,
    pub _budget: Option<OwnedSemaphorePermit>,
}

/// What to fetch: the index of the file in the run's list, and where it is.
pub struct FetchJob {
    pub file: usize,
    pub client: Client,
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub size: u64,
}

/// Starts fetching `jobs` on `runtime`, `concurrency` at a time, holding at most `budget_bytes`
/// of fetched-but-unprocessed bodies; bodies arrive on the returned channel in completion order.
pub fn spawn_fetcher(
    runtime: &tokio::runtime::Handle,
    jobs: Vec<FetchJob>,
    concurrency: usize,
    budget_bytes: u64,
) -> mpsc::Receiver<Fetched> {
    let (sender, receiver) = mpsc::channel(concurrency.max(1));
    // Permits are KiB so that a u32 permit count covers any budget.
    let budget_kib = u32::try_from(budget_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    runtime.spawn(async move {
        let fetches = futures::stream::iter(jobs)
            .map(|job| {
                let budget = budget.clone();
                async move {
                    let kib = u32::try_from(job.size.div_ceil(1024))
                        .unwrap_or(u32::MAX)
                        .clamp(1, budget_kib);
                    let permit = budget.acquire_many_owned(kib).await.ok();
                    let body = fetch(&job).await;
                    Fetched {
                        file: job.file,
                        body,
                        _budget: permit,
                    }
                }
            })
            .buffer_unordered(concurrency.max(1));
        futures::pin_mut!(fetches);
        while let Some(fetched) = fetches.next().await {
            if sender.send(fetched).await.is_err() {
                break; // the workers stopped (--strict): nothing more is needed
            }
        }
    });
    receiver
}

/// GETs one object (only the version that was listed) and reads its body, with retries.
async fn fetch(job: &FetchJob) -> Result<Bytes, SourceError> {
    let failed = |reason| SourceError::Fetch {
        url: format!("s3://{}/{}", job.bucket, job.key),
        reason,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = job.client.get_object().bucket(&job.bucket).key(&job.key);
        if !job.etag.is_empty() {
            request = request.if_match(format!("\"{}\"", job.etag));
        }
        let response = request.send().await.map_err(|e| failed(describe(&e)))?;
        match response.body.collect().await {
            Ok(body) => return Ok(body.into_bytes()),
            Err(_) if attempt < BODY_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(error) => return Err(failed(format!("reading the object: {error}"))),
        }
    }
}

/// An object's bytes and its user metadata (`x-amz-meta-*`, without the prefix): `verify`
/// reads a digest's signature there.
pub async fn fetch_with_metadata(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<(Bytes, std::collections::HashMap<String, String>), SourceError> {
    let failed = |reason| SourceError::Fetch {
        url: format!("s3://{bucket}/{key}"),
        reason,
    };
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| failed(describe(&e)))?;
    let metadata = response.metadata().cloned().unwrap_or_default();
    let body = response
        .body
        .collect()
        .await
        .map_err(|e| failed(format!("reading the object: {e}")))?;
    Ok((body.into_bytes(), metadata))
}

/// The service's own words for an error (code and message), not just "service error".
fn describe<E, R>(error: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => inner.to_string(),
            }
        }
        other => {
            // The chain of sources says what actually went wrong (DNS, refused, TLS, ...).
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_worth_listing() {
        let scope = Scope {
            from: chrono::DateTime::parse_from_rfc3339("2024-03-10T00:00:00Z")
                .ok()
                .map(|t| t.timestamp_micros()),
            ..Scope::default()
        };
        let trail = "logs/AWSLogs/o-abc123/111122223333/";
        let scope = Filter {
            scope: &scope,
            wanted: &[TrailFolder::Events],
        };
        assert!(may_hold_logs("logs/", &scope));
        assert!(may_hold_logs(trail, &scope));
        assert!(may_hold_logs(&format!("{trail}CloudTrail/"), &scope));
        assert!(!may_hold_logs(
            &format!("{trail}CloudTrail-Digest/"),
            &scope
        ));
        assert!(!may_hold_logs(
            &format!("{trail}CloudTrail-Insight/"),
            &scope
        ));
        assert!(!may_hold_logs(&format!("{trail}Config/"), &scope));
        let day = |d: &str| format!("{trail}CloudTrail/us-east-1/2024/03/{d}/");
        assert!(may_hold_logs(&day("09"), &scope), "a day of slack");
        assert!(!may_hold_logs(&day("08"), &scope));
        assert!(is_awslogs("prefix/AWSLogs/"));
        assert!(!is_awslogs("prefix/NotAWSLogs/"));
    }
}
