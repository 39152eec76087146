//! The digest chain of one trail in one account and region: each digest's signature (from the
//! S3 object's metadata, or offline from the `previousDigestSignature` of the digest after
//! it), the previous digest's hash and signature as the next records them, and the gaps: a
//! digest that names a previous one that is not there (deleted, one or several), digests that
//! stopped arriving before the period ended (tail truncation), and restarts (a starting digest
//! after a pause in logging, which is not a deletion: nobody but CloudTrail can sign one).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::digest::{Digest, layout_key};
use super::inventory::Found;
use super::keys::PublicKeys;

/// CloudTrail delivers a digest every hour, files or not.
pub const CADENCE: TimeDelta = ONE_HOUR;

/// How late a digest may arrive after its hour ends (CloudTrail's delivery delay).
pub const DELIVERY_DELAY: TimeDelta = ONE_HOUR;

const ONE_HOUR: TimeDelta = match TimeDelta::try_hours(1) {
    Some(hour) => hour,
    None => panic!("an hour is a valid TimeDelta"),
};

/// Which digests form one chain: a trail, in an account and region, standard or backfill.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ChainId {
    pub account: String,
    pub region: String,
    pub trail: String,
    /// The trail's home region (a digest's signing key may be listed there).
    pub home_region: String,
    pub backfill: bool,
}

/// One digest file as read.
#[derive(Debug)]
pub struct DigestNode {
    pub found: Found,
    /// When its file name says it ends (what it is ordered by, even when it cannot be read).
    pub stamp: DateTime<Utc>,
    pub parsed: Result<Digest, String>,
    /// The `signature` metadata of the S3 object (None on disk, where metadata is lost).
    pub s3_signature: Option<String>,
}

impl DigestNode {
    pub fn end(&self) -> DateTime<Utc> {
        self.parsed.as_ref().map_or(self.stamp, |d| d.end)
    }

    pub fn start(&self) -> DateTime<Utc> {
        let hour_before = self.stamp.checked_sub_signed(CADENCE);
        self.parsed
            .as_ref()
            .map_or(hour_before.unwrap_or(self.stamp), |d| d.start)
    }
}

/// How a digest's signature was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureFrom {
    /// The S3 object's `x-amz-meta-signature`.
    S3Metadata,
    /// The `previousDigestSignature` of the digest after it.
    NextDigest,
}

/// What the checks found about one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStatus {
    Valid(SignatureFrom),
    /// A check failed: which, in words.
    Invalid(String),
    /// The newest digest on disk: its signature arrives with the next digest.
    Pending,
    /// On disk, the digest after it does not chain to it (a restart or a gap), so its
    /// signature is not at hand: only its S3 object's metadata has it.
    Unverifiable(String),
}

/// A stretch of time, and how many hourly digests are missing in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub digests: u64,
    /// What tells: the absent digest a later one names, or why one is expected.
    pub evidence: String,
}

/// The chain's verdicts: one status per digest (in the order given), its gaps and restarts.
#[derive(Debug, Default)]
pub struct ChainOutcome {
    pub statuses: Vec<DigestStatus>,
    pub missing: Vec<Gap>,
    pub restarts: Vec<Gap>,
}

/// The period verified, `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        from < self.to && to > self.from
    }

    /// `gap` cut to the period; None when it lies outside. The count is the hours left.
    fn clip(&self, gap: Gap) -> Option<Gap> {
        let from = gap.from.max(self.from);
        let to = gap.to.min(self.to);
        // A restart's count (0) stays 0: it misses no digest.
        let digests = match gap.digests {
            0 => 0,
            n => hours(from, to).clamp(1, n),
        };
        (from < to).then_some(Gap {
            digests,
            from,
            to,
            ..gap
        })
    }
}

/// Checks a chain's digests, sorted by `stamp`.
pub fn analyze(
    id: &ChainId,
    nodes: &[DigestNode],
    keys: &PublicKeys,
    period: Period,
) -> ChainOutcome {
    let mut outcome = ChainOutcome {
        statuses: (0..nodes.len()).map(|i| status(nodes, i, keys)).collect(),
        ..ChainOutcome::default()
    };
    if id.backfill {
        // Backfill digests cover past hours again, one by one: they have no cadence to miss.
        return outcome;
    }
    for i in 0..nodes.len() {
        find_gap_before(nodes, i, period, &mut outcome);
    }
    if let Some(gap) = tail_gap(nodes, period) {
        // The newest digest's signature was in the digests after it, which are gone.
        if let Some(newest) = outcome.statuses.last_mut()
            && *newest == DigestStatus::Pending
        {
            *newest = DigestStatus::Unverifiable(
                "the digests after it, which hold its signature, are missing".to_owned(),
            );
        }
        outcome.missing.push(gap);
    }
    outcome
}

/// The checks of digest `i`, in the AWS CLI's order, plus the next digest's record of it.
fn status(nodes: &[DigestNode], i: usize, keys: &PublicKeys) -> DigestStatus {
    let node = &nodes[i];
    let digest = match &node.parsed {
        Ok(digest) => digest,
        Err(reason) => return DigestStatus::Invalid(reason.clone()),
    };
    let named = layout_key(&digest.fields.digest_s3_object);
    if named != node.found.key {
        return DigestStatus::Invalid(format!("moved: it was delivered as {named}"));
    }
    let next = nodes
        .get(i + 1)
        .and_then(|n| n.parsed.as_ref().ok())
        .filter(|next| links_to(next, node));
    let Some((signature, from)) = signature_of(node, next) else {
        return match i + 1 == nodes.len() {
            true => DigestStatus::Pending,
            false => DigestStatus::Unverifiable(
                "the next digest does not chain to it, and its signature is only in the S3 \
                 object's metadata"
                    .to_owned(),
            ),
        };
    };
    // The next digest's record first: a mismatch says the file changed after delivery, which
    // is what a user needs to hear (its signature fails too).
    if let Some(Err(reason)) = next.map(|next| recorded_matches(next, digest, &signature)) {
        return DigestStatus::Invalid(reason);
    }
    let fingerprint = &digest.fields.digest_public_key_fingerprint;
    let Some(key) = keys.get(fingerprint) else {
        return DigestStatus::Invalid(format!("no public key with fingerprint {fingerprint}"));
    };
    match digest.check_signature(key, &signature) {
        Ok(()) => DigestStatus::Valid(from),
        Err(reason) => DigestStatus::Invalid(reason),
    }
}

/// The signature to check: the object's metadata, else the next digest's record of it.
fn signature_of(node: &DigestNode, next: Option<&Digest>) -> Option<(String, SignatureFrom)> {
    if let Some(signature) = &node.s3_signature {
        return Some((signature.clone(), SignatureFrom::S3Metadata));
    }
    let recorded = next?.fields.previous_digest_signature.clone()?;
    Some((recorded, SignatureFrom::NextDigest))
}

/// Whether `later` names `earlier` as its previous digest.
fn links_to(later: &Digest, earlier: &DigestNode) -> bool {
    later
        .fields
        .previous_digest_s3_object
        .as_deref()
        .is_some_and(|key| layout_key(key) == earlier.found.key)
}

/// The next digest's record of this one: its hash and its signature.
fn recorded_matches(next: &Digest, digest: &Digest, signature: &str) -> Result<(), String> {
    let fields = &next.fields;
    let hash_ok = fields
        .previous_digest_hash_value
        .as_deref()
        .is_some_and(|h| h.eq_ignore_ascii_case(&digest.sha256_hex));
    if !hash_ok {
        return Err("its SHA-256 is not the one the next digest records".to_owned());
    }
    let signature_ok = fields
        .previous_digest_signature
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case(signature));
    match signature_ok {
        true => Ok(()),
        false => Err("its signature is not the one the next digest records".to_owned()),
    }
}

/// What lies between digest `i` and the one before it: digests missing (it names a previous
/// digest that is not there), or a restart (it is a starting digest after a pause).
fn find_gap_before(nodes: &[DigestNode], i: usize, period: Period, outcome: &mut ChainOutcome) {
    let Ok(digest) = &nodes[i].parsed else {
        return;
    };
    let before = i.checked_sub(1).map(|p| &nodes[p]);
    // With no digest before it: from the period's start; with none given, the one hour known.
    let unbounded = period.from == DateTime::<Utc>::MIN_UTC;
    let first_hour = digest
        .start
        .checked_sub_signed(CADENCE)
        .unwrap_or(digest.start);
    let from = match before {
        Some(before) => before.end(),
        None if unbounded => first_hour,
        None => period.from,
    };
    match digest.fields.previous_digest_s3_object.as_deref() {
        Some(previous) if before.is_none_or(|b| layout_key(previous) != b.found.key) => {
            let gap = Gap {
                from,
                to: digest.start.max(from),
                digests: hours(from, digest.start).max(1),
                evidence: format!("{} names {previous}", nodes[i].found.key),
            };
            // A first digest naming one before the listing: only a gap inside the period.
            if digest.start > period.from || before.is_some() {
                outcome.missing.extend(period.clip(gap));
            }
        }
        None if before.is_some() && digest.start > from => {
            let gap = Gap {
                from,
                to: digest.start,
                digests: 0,
                evidence: format!("{} starts a new chain", nodes[i].found.key),
            };
            outcome.restarts.extend(period.clip(gap));
        }
        _ => {}
    }
}

/// Digests that should have arrived before the period ended but did not: the newest digest
/// ends more than an hour (the cadence) and CloudTrail's delivery delay before the period's
/// end. Only then can deleted newest digests be told from digests not yet delivered.
fn tail_gap(nodes: &[DigestNode], period: Period) -> Option<Gap> {
    let newest = nodes.last()?.end();
    let overdue = (period.to - newest).checked_sub(&DELIVERY_DELAY)?;
    if overdue < CADENCE {
        return None;
    }
    let gap = Gap {
        from: newest,
        to: period.to,
        digests: u64::try_from(overdue.num_seconds() / CADENCE.num_seconds()).unwrap_or(0),
        evidence: format!(
            "no digest after {} although the period ends at {} (one is due every hour)",
            newest.format("%Y-%m-%dT%H:%M:%SZ"),
            period.to.format("%Y-%m-%dT%H:%M:%SZ")
        ),
    };
    period.clip(gap)
}

/// Whole hours (rounded) from `from` to `to`; 0 when `to` is not after `from`.
fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let seconds = (to - from).num_seconds().max(0);
    u64::try_from((seconds + CADENCE.num_seconds() / 2) / CADENCE.num_seconds()).unwrap_or(0)
}

/// The chain a digest file belongs to, from its name:
/// `<account>_CloudTrail-Digest_<region>_<trail>_<home region>_<YYYYMMDDTHHMMSSZ>[_backfill].json.gz`
/// (a trail's name may hold `_`; a region's never does). Also returns the end in the name.
pub fn chain_of(found: &Found) -> Option<(ChainId, DateTime<Utc>)> {
    let file = found.key.rsplit('/').next()?;
    let stem = file.strip_suffix(".json.gz")?;
    let (stem, backfill) = match stem.strip_suffix("_backfill") {
        Some(stem) => (stem, true),
        None => (stem, false),
    };
    let (rest, stamp) = stem.rsplit_once('_')?;
    let stamp = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
    let prefix = format!("{}_CloudTrail-Digest_{}_", found.account, found.region);
    let (trail, home_region) = rest.strip_prefix(&prefix)?.rsplit_once('_')?;
    let id = ChainId {
        account: found.account.clone(),
        region: found.region.clone(),
        trail: trail.to_owned(),
        home_region: home_region.to_owned(),
        backfill,
    };
    Some((id, stamp.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::inventory::Place;

    fn found(key: &str) -> Found {
        Found {
            name: key.to_owned(),
            key: key.to_owned(),
            account: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
            place: Place::Local(key.into()),
        }
    }

    #[test]
    fn digest_names_give_the_chain_and_the_end() {
        let key = "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2024/03/01/\
                   111122223333_CloudTrail-Digest_eu-west-1_my_trail_us-east-1_20240301T010405Z.json.gz";
        let (id, end) = chain_of(&found(key)).unwrap();
        assert_eq!(id.trail, "my_trail");
        assert!(!id.backfill);
        assert_eq!(end.to_rfc3339(), "2024-03-01T01:04:05+00:00");
        let backfill = key.replace(".json.gz", "_backfill.json.gz");
        assert!(chain_of(&found(&backfill)).unwrap().0.backfill);
        assert!(chain_of(&found("AWSLogs/111122223333/CloudTrail-Digest/x.json.gz")).is_none());
    }

    #[test]
    fn hours_round_to_the_cadence() {
        let t = |h: i64, m: i64| DateTime::from_timestamp(h * 3600 + m * 60, 0).unwrap();
        assert_eq!(hours(t(1, 0), t(3, 0)), 2);
        assert_eq!(hours(t(1, 0), t(1, 40)), 1);
        assert_eq!(hours(t(3, 0), t(1, 0)), 0);
    }
}
