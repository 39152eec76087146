//! The log files of the period against the digests: each file a digest of the period names is
//! hashed and compared (valid, modified) or found absent (missing); each file under
//! `CloudTrail/` that no digest names is unlisted (injected, or misplaced), unless its hour's
//! digest is missing (then nothing can prove it: unproven) or it came after the newest digest
//! (pending: the next digest will name it). A file is only valid when the digest naming it is.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Serialize;

use super::chain::{ChainId, ChainOutcome, DigestNode, DigestStatus, Period, SignatureFrom};
use super::digest::{LogEntry, layout_key};
use super::hash;
use super::inventory::{Found, Inventory};
use crate::source::key;

/// What a log file turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStatus {
    /// Its SHA-256 is the one a verified digest records.
    Valid,
    /// Its SHA-256 is not the one its digest records.
    Modified,
    /// A digest names it, and it is not there.
    Missing,
    /// No digest names it, though its hour's digest is there.
    Unlisted,
    /// Nothing can prove it: its digest did not verify, or is missing.
    Unproven,
    /// Its digest is the newest, whose signature arrives with the next one (or none yet names it).
    Pending,
}

impl LogStatus {
    pub fn name(self) -> &'static str {
        match self {
            LogStatus::Valid => "valid",
            LogStatus::Modified => "modified",
            LogStatus::Missing => "missing",
            LogStatus::Unlisted => "unlisted",
            LogStatus::Unproven => "unproven",
            LogStatus::Pending => "pending",
        }
    }
}

/// One log file's verdict.
#[derive(Debug, Clone)]
pub struct CheckedLog {
    pub account: String,
    pub region: String,
    /// Its `source_file` name when present, else where the digest says it was (`s3://b/k`).
    pub name: String,
    pub status: LogStatus,
    pub detail: String,
    /// The digest that names it, and how that digest's signature was had.
    pub digest: Option<String>,
    pub method: Option<SignatureFrom>,
    /// When it was delivered (its digest's end, or the time in its name).
    pub time: Option<DateTime<Utc>>,
}

/// A log entry of a digest of the period, with that digest's verdict.
struct Named<'a> {
    entry: &'a LogEntry,
    node: &'a DigestNode,
    status: &'a DigestStatus,
}

/// Checks every log file of the period.
pub async fn check(
    chains: &BTreeMap<ChainId, Vec<DigestNode>>,
    outcomes: &BTreeMap<&ChainId, ChainOutcome>,
    inventory: &Inventory,
    period: Period,
    concurrency: usize,
) -> Vec<CheckedLog> {
    let mut every_named: HashSet<String> = HashSet::new();
    let mut named_in_period: Vec<Named> = Vec::new();
    for (id, nodes) in chains {
        let Some(outcome) = outcomes.get(id) else {
            continue;
        };
        for (node, status) in nodes.iter().zip(&outcome.statuses) {
            let Ok(digest) = &node.parsed else { continue };
            let in_period = period.overlaps(node.start(), node.end());
            for entry in digest.log_files() {
                every_named.insert(layout_key(&entry.s3_object));
                if in_period {
                    named_in_period.push(Named {
                        entry,
                        node,
                        status,
                    });
                }
            }
        }
    }
    let mut checked = check_named(&named_in_period, inventory, concurrency).await;
    checked.extend(unnamed(&every_named, chains, outcomes, inventory, period));
    checked
}

/// Hashes the named files that are there; the others are missing.
async fn check_named(
    named: &[Named<'_>],
    inventory: &Inventory,
    concurrency: usize,
) -> Vec<CheckedLog> {
    let by_key: HashMap<&str, &Found> =
        inventory.logs.iter().map(|f| (f.key.as_str(), f)).collect();
    let present: Vec<&Found> = named
        .iter()
        .filter_map(|n| by_key.get(layout_key(&n.entry.s3_object).as_str()).copied())
        .collect();
    let mut hashes = hash::hash_all(&present, inventory, concurrency)
        .await
        .into_iter();
    named
        .iter()
        .map(|n| {
            let found = by_key.get(layout_key(&n.entry.s3_object).as_str());
            let hash = found.and_then(|_| hashes.next());
            verdict(n, found.copied(), hash)
        })
        .collect()
}

/// A named file's verdict from its hash (None: absent) and its digest's status.
fn verdict(
    named: &Named,
    found: Option<&Found>,
    hash: Option<Result<String, String>>,
) -> CheckedLog {
    let method = match named.status {
        DigestStatus::Valid(from) => Some(*from),
        _ => None,
    };
    let (status, detail) = match hash {
        None => (
            LogStatus::Missing,
            "named by its digest, not found".to_owned(),
        ),
        Some(Err(reason)) => (LogStatus::Modified, format!("cannot be read: {reason}")),
        Some(Ok(hash)) if !hash.eq_ignore_ascii_case(&named.entry.hash_value) => (
            LogStatus::Modified,
            format!(
                "SHA-256 {hash}, its digest records {}",
                named.entry.hash_value
            ),
        ),
        Some(Ok(_)) => match named.status {
            DigestStatus::Valid(_) => (LogStatus::Valid, String::new()),
            DigestStatus::Pending => (
                LogStatus::Pending,
                "its digest is the newest: verified when the next one arrives".to_owned(),
            ),
            DigestStatus::Invalid(_) | DigestStatus::Unverifiable(_) => (
                LogStatus::Unproven,
                "its hash matches, but its digest did not verify".to_owned(),
            ),
        },
    };
    CheckedLog {
        account: named.node.found.account.clone(),
        region: named.node.found.region.clone(),
        name: found.map_or_else(
            || format!("s3://{}/{}", named.entry.s3_bucket, named.entry.s3_object),
            |f| f.name.clone(),
        ),
        status,
        detail,
        digest: Some(named.node.found.name.clone()),
        method,
        time: Some(named.node.end()),
    }
}

/// A file's name and its delivery minute may differ from its digest's hour by this much
/// (the name is written when delivery starts).
const SLACK: TimeDelta = match TimeDelta::try_minutes(2) {
    Some(slack) => slack,
    None => panic!("2 minutes is a valid TimeDelta"),
};

/// The files of the period no digest names.
fn unnamed(
    every_named: &HashSet<String>,
    chains: &BTreeMap<ChainId, Vec<DigestNode>>,
    outcomes: &BTreeMap<&ChainId, ChainOutcome>,
    inventory: &Inventory,
    period: Period,
) -> Vec<CheckedLog> {
    inventory
        .logs
        .iter()
        .filter(|found| !every_named.contains(&found.key))
        .filter_map(|found| {
            let time = delivered_at(found);
            if time.is_some_and(|t| t < period.from || t >= period.to) {
                return None;
            }
            let (status, detail) = place_in_chains(found, time, chains, outcomes);
            Some(CheckedLog {
                account: found.account.clone(),
                region: found.region.clone(),
                name: found.name.clone(),
                status,
                detail,
                digest: None,
                method: None,
                time,
            })
        })
        .collect()
}

/// Why no digest names a file delivered at `time`, from its account and region's chains.
fn place_in_chains(
    found: &Found,
    time: Option<DateTime<Utc>>,
    chains: &BTreeMap<ChainId, Vec<DigestNode>>,
    outcomes: &BTreeMap<&ChainId, ChainOutcome>,
) -> (LogStatus, String) {
    let mine: Vec<(&ChainId, &Vec<DigestNode>)> = chains
        .iter()
        .filter(|(id, _)| !id.backfill && id.account == found.account && id.region == found.region)
        .collect();
    if mine.is_empty() {
        return (
            LogStatus::Unproven,
            "no digest of its account and region was found".to_owned(),
        );
    }
    let Some(time) = time else {
        return (LogStatus::Unlisted, "named by no digest".to_owned());
    };
    let in_gap = mine
        .iter()
        .filter_map(|(id, _)| outcomes.get(id))
        .any(|outcome| {
            outcome
                .missing
                .iter()
                .any(|gap| time + SLACK >= gap.from && time - SLACK <= gap.to)
        });
    if in_gap {
        return (
            LogStatus::Unproven,
            "the digest of its hour is missing".to_owned(),
        );
    }
    let newest = mine
        .iter()
        .filter_map(|(_, nodes)| nodes.last())
        .map(DigestNode::end)
        .max();
    match newest {
        Some(newest) if time + SLACK >= newest => (
            LogStatus::Pending,
            "delivered after the newest digest: the next one will name it".to_owned(),
        ),
        _ => (
            LogStatus::Unlisted,
            "named by no digest, though its hour's digest is there".to_owned(),
        ),
    }
}

/// The delivery time in a CloudTrail log file's name (`..._YYYYMMDDTHHMMZ_...`).
fn delivered_at(found: &Found) -> Option<DateTime<Utc>> {
    let file = found.key.rsplit('/').next()?;
    let stamp = key::delivery_stamp(file)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ")
        .ok()
        .map(|t| t.and_utc())
}
