//! Reading files for verification: a digest's uncompressed bytes, and the SHA-256 of a log
//! file's uncompressed content (what a digest records), many files at once. Local files are
//! hashed in parallel on rayon's threads (inflated whole by libdeflate, else streamed); S3
//! objects are fetched `concurrency` at a time and hashed as they arrive, so memory holds at
//! most `concurrency` objects.

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use futures::StreamExt;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::digest::hex;
use super::inventory::{Found, Inventory, Place};
use crate::decode::inflate::Inflater;
use crate::source::s3;

/// Largest uncompressed log or digest file read (CloudTrail's are a few MB at most).
const MAX_UNCOMPRESSED: usize = 1 << 30;

/// A file's uncompressed bytes, or why it could not be read.
pub fn read_local(path: &Path) -> Result<Vec<u8>, String> {
    let compressed = std::fs::read(path).map_err(|e| e.to_string())?;
    gunzip(&compressed, &mut None)
}

/// Inflates every gzip member; a plain (not gzip) file is refused: CloudTrail writes gzip.
pub fn gunzip(compressed: &[u8], inflater: &mut Option<Inflater>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(inflater) = inflater
        && let Some(size) = inflater.gzip(compressed, &mut out, MAX_UNCOMPRESSED)
    {
        out.truncate(size);
        return Ok(out);
    }
    // libdeflate refused it (damage, or no decompressor): the streaming decoder says why.
    out.clear();
    MultiGzDecoder::new(compressed)
        .take(MAX_UNCOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a readable gzip file: {e}"))?;
    match out.len() > MAX_UNCOMPRESSED {
        true => Err("over 1 GiB uncompressed".to_owned()),
        false => Ok(out),
    }
}

/// The hex SHA-256 of each file's uncompressed content, in the order given.
pub async fn hash_all(
    files: &[&Found],
    inventory: &Inventory,
    concurrency: usize,
) -> Vec<Result<String, String>> {
    let local: Vec<Result<String, String>> = files
        .par_iter()
        .map_init(Inflater::new, |inflater, found| match &found.place {
            Place::Local(path) => hash_local(path, inflater),
            Place::S3 { .. } => Ok(String::new()),
        })
        .collect();
    let remote =
        futures::stream::iter(files.iter().enumerate())
            .filter_map(|(index, found)| async move {
                match &found.place {
                    Place::S3 { bucket, key } => Some((index, bucket, key)),
                    Place::Local(_) => None,
                }
            })
            .map(|(index, bucket, key)| async move {
                (index, hash_object(inventory, bucket, key).await)
            })
            .buffer_unordered(concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
    let mut hashes = local;
    for (index, hash) in remote {
        hashes[index] = hash;
    }
    hashes
}

fn hash_local(path: &Path, inflater: &mut Option<Inflater>) -> Result<String, String> {
    let compressed = std::fs::read(path).map_err(|e| e.to_string())?;
    Ok(hex(&Sha256::digest(gunzip(&compressed, inflater)?)))
}

async fn hash_object(inventory: &Inventory, bucket: &str, key: &str) -> Result<String, String> {
    let client = inventory
        .client(bucket)
        .ok_or_else(|| format!("no client for bucket {bucket}"))?;
    let (body, _) = s3::fetch_with_metadata(client, bucket, key)
        .await
        .map_err(|e| e.reason())?;
    // Inflating and hashing a few MB is quick next to the fetch; it stays on this task.
    Ok(hex(&Sha256::digest(gunzip(&body, &mut Inflater::new())?)))
}
