//! `verify`: CloudTrail's log file integrity validation, offline or on S3. For each account,
//! region and trail it walks the digest chain over the period (`chain`), checks each digest's
//! signature with the public keys of `keys`, each listed log file's SHA-256 (`hash`), and
//! finds every gap: digests missing in the middle or at the end, log files a digest names that
//! are absent, log files no digest names. The result (`report`) says, per account and region,
//! what verified and what did not; `record` keeps it in the lake per source file, for the
//! compliance report.
//!
//! It reads what `inventory` finds under the sources (the `CloudTrail-Digest/` folders next to
//! the `CloudTrail/` ones that ingest reads), and nothing else: no lake, no query.

pub mod chain;
pub mod digest;
pub mod hash;
pub mod inventory;
pub mod keys;
pub mod logs;
pub mod record;
pub mod report;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use rayon::prelude::*;

use crate::aws::{Aws, AwsOptions};
use crate::decode::inflate::Inflater;
use crate::error::VerifyError;
use crate::lake::scope::Scope;
use crate::plan::SourceLocation;
use crate::source::s3;
use chain::{ChainId, DigestNode, Period};
use digest::Digest;
use inventory::{Found, Inventory, Place};
use keys::PublicKeys;
use report::VerifyReport;

/// What a run verifies.
#[derive(Debug)]
pub struct VerifyPlan {
    pub sources: Vec<SourceLocation>,
    /// Accounts, regions, and the day folders to list (the period with a day of slack).
    pub scope: Scope,
    pub period: Period,
    /// The keys of `--public-keys`; None: CloudTrail's `ListPublicKeys`.
    pub public_keys: Option<PublicKeys>,
    pub aws: AwsOptions,
    /// S3 requests in flight.
    pub concurrency: usize,
}

/// Runs the verification; the report says what verified.
pub fn run(plan: &VerifyPlan) -> Result<VerifyReport, VerifyError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(VerifyError::Runtime)?;
    runtime.block_on(run_async(plan))
}

async fn run_async(plan: &VerifyPlan) -> Result<VerifyReport, VerifyError> {
    let aws = LazyAws {
        options: &plan.aws,
        loaded: tokio::sync::OnceCell::new(),
    };
    let inventory = discover(plan, &aws).await?;
    let chains = load_chains(&inventory, plan.concurrency).await;
    let public_keys = match &plan.public_keys {
        Some(given) => given.clone(),
        None => cloudtrail_keys(&aws, &chains).await?,
    };
    let outcomes: BTreeMap<&ChainId, chain::ChainOutcome> = chains
        .iter()
        .map(|(id, nodes)| (id, chain::analyze(id, nodes, &public_keys, plan.period)))
        .collect();
    let (period, concurrency) = (plan.period, plan.concurrency);
    let checked = logs::check(&chains, &outcomes, &inventory, period, concurrency).await;
    Ok(report::build(
        period, &chains, &outcomes, &checked, &inventory,
    ))
}

/// The keys CloudTrail lists for the chains found: in each chain's region and its trail's home
/// region, valid since an hour before the oldest digest ends. None are needed when no digest was
/// found.
async fn cloudtrail_keys(
    aws: &LazyAws<'_>,
    chains: &BTreeMap<ChainId, Vec<DigestNode>>,
) -> Result<PublicKeys, VerifyError> {
    let oldest = chains.values().flatten().map(|node| node.stamp).min();
    let Some(since) = oldest.and_then(|end| end.checked_sub_signed(TimeDelta::try_hours(1)?))
    else {
        return Ok(PublicKeys::default());
    };
    let regions: BTreeSet<String> = chains
        .keys()
        .flat_map(|id| [id.region.clone(), id.home_region.clone()])
        .collect();
    keys::fetch(aws.get().await, &regions, since).await
}

/// AWS, loaded on first use: a run over folders with `--public-keys` never loads it (loading
/// may ask the instance metadata service for a region).
struct LazyAws<'a> {
    options: &'a AwsOptions,
    loaded: tokio::sync::OnceCell<Aws>,
}

impl LazyAws<'_> {
    async fn get(&self) -> &Aws {
        self.loaded.get_or_init(|| Aws::load(self.options)).await
    }
}

/// Lists every source.
async fn discover(plan: &VerifyPlan, aws: &LazyAws<'_>) -> Result<Inventory, VerifyError> {
    let mut inventory = Inventory::default();
    for source in &plan.sources {
        match source {
            SourceLocation::Local(path) => inventory::walk_local(path, &plan.scope, &mut inventory),
            SourceLocation::S3(url) => {
                let aws = aws.get().await;
                inventory::list_s3(aws, url, &plan.scope, plan.concurrency, &mut inventory).await?
            }
        }
    }
    Ok(inventory)
}

/// Reads every digest (and, on S3, its signature metadata), grouped into chains sorted by time.
/// A digest whose name does not follow CloudTrail's is not part of any chain, and is reported.
async fn load_chains(
    inventory: &Inventory,
    concurrency: usize,
) -> BTreeMap<ChainId, Vec<DigestNode>> {
    let named: Vec<(ChainId, DateTime<Utc>, &Found)> = inventory
        .digests
        .iter()
        .filter_map(|found| chain::chain_of(found).map(|(id, stamp)| (id, stamp, found)))
        .collect();
    let local: Vec<Option<DigestNode>> = named
        .par_iter()
        .map_init(Inflater::new, |inflater, (_, stamp, found)| {
            match &found.place {
                Place::Local(path) => Some(node(found, *stamp, read_digest(path, inflater), None)),
                Place::S3 { .. } => None,
            }
        })
        .collect();
    let remote = futures::stream::iter(named.iter().enumerate())
        .filter_map(|(index, (_, stamp, found))| async move {
            match &found.place {
                Place::S3 { bucket, key } => Some((index, *stamp, *found, bucket, key)),
                Place::Local(_) => None,
            }
        })
        .map(|(index, stamp, found, bucket, key)| async move {
            (
                index,
                fetch_digest(inventory, found, stamp, bucket, key).await,
            )
        })
        .buffer_unordered(concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut nodes = local;
    for (index, fetched) in remote {
        nodes[index] = Some(fetched);
    }
    let mut chains: BTreeMap<ChainId, Vec<DigestNode>> = BTreeMap::new();
    for ((id, _, _), node) in named.into_iter().zip(nodes) {
        if let Some(node) = node {
            chains.entry(id).or_default().push(node);
        }
    }
    for nodes in chains.values_mut() {
        nodes.sort_by(|a, b| {
            a.stamp
                .cmp(&b.stamp)
                .then_with(|| a.found.key.cmp(&b.found.key))
        });
    }
    chains
}

fn node(
    found: &Found,
    stamp: DateTime<Utc>,
    bytes: Result<Vec<u8>, String>,
    s3_signature: Option<String>,
) -> DigestNode {
    DigestNode {
        found: found.clone(),
        stamp,
        parsed: bytes.and_then(|bytes| Digest::parse(&bytes)),
        s3_signature,
    }
}

fn read_digest(path: &std::path::Path, inflater: &mut Option<Inflater>) -> Result<Vec<u8>, String> {
    let compressed = std::fs::read(path).map_err(|e| e.to_string())?;
    hash::gunzip(&compressed, inflater)
}

/// A digest object and its `signature` metadata (with `signature-algorithm`, as the AWS CLI
/// requires: a signature of another algorithm is not one this checks).
async fn fetch_digest(
    inventory: &Inventory,
    found: &Found,
    stamp: DateTime<Utc>,
    bucket: &str,
    key: &str,
) -> DigestNode {
    let Some(client) = inventory.client(bucket) else {
        return node(found, stamp, Err(format!("no client for {bucket}")), None);
    };
    match s3::fetch_with_metadata(client, bucket, key).await {
        Ok((body, metadata)) => {
            let signature = metadata.get("signature").cloned();
            let bytes = hash::gunzip(&body, &mut Inflater::new());
            let bytes = match metadata.get("signature-algorithm") {
                Some(algorithm) if algorithm != digest::SIGNATURE_ALGORITHM => {
                    Err(format!("signature algorithm {algorithm:?} in its metadata"))
                }
                _ => bytes,
            };
            node(found, stamp, bytes, signature)
        }
        Err(error) => node(found, stamp, Err(error.reason()), None),
    }
}
