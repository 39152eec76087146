//! What a verification found, per account and region: digests valid, invalid (and which check
//! failed), pending, unverifiable, missing (as ranges of hours); log files valid, modified,
//! missing, unlisted, unproven, pending; and every problem by name. Rendered as a table or JSON.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use comfy_table::{Table, presets::ASCII_MARKDOWN};
use serde::Serialize;

use crate::render::{markdown_cell, visible};

use super::chain::{ChainId, ChainOutcome, DigestNode, DigestStatus, Gap, Period, SignatureFrom};
use super::inventory::Inventory;
use super::logs::{CheckedLog, LogStatus};

/// The counts of one account and region (or of everything).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub digests_valid: u64,
    pub digests_invalid: u64,
    pub digests_pending: u64,
    pub digests_unverifiable: u64,
    /// Hourly digests missing, summed over the gaps.
    pub digests_missing: u64,
    pub logs_valid: u64,
    pub logs_modified: u64,
    pub logs_missing: u64,
    pub logs_unlisted: u64,
    pub logs_unproven: u64,
    pub logs_pending: u64,
}

impl Counts {
    /// True when nothing failed (pending is not a failure: the next run checks it).
    pub fn passed(&self) -> bool {
        self.digests_invalid
            + self.digests_unverifiable
            + self.digests_missing
            + self.logs_modified
            + self.logs_missing
            + self.logs_unlisted
            + self.logs_unproven
            == 0
    }

    fn add(&mut self, other: &Counts) {
        self.digests_valid += other.digests_valid;
        self.digests_invalid += other.digests_invalid;
        self.digests_pending += other.digests_pending;
        self.digests_unverifiable += other.digests_unverifiable;
        self.digests_missing += other.digests_missing;
        self.logs_valid += other.logs_valid;
        self.logs_modified += other.logs_modified;
        self.logs_missing += other.logs_missing;
        self.logs_unlisted += other.logs_unlisted;
        self.logs_unproven += other.logs_unproven;
        self.logs_pending += other.logs_pending;
    }

    fn count_log(&mut self, status: LogStatus) {
        let counter = match status {
            LogStatus::Valid => &mut self.logs_valid,
            LogStatus::Modified => &mut self.logs_modified,
            LogStatus::Missing => &mut self.logs_missing,
            LogStatus::Unlisted => &mut self.logs_unlisted,
            LogStatus::Unproven => &mut self.logs_unproven,
            LogStatus::Pending => &mut self.logs_pending,
        };
        *counter += 1;
    }

    fn count_digest(&mut self, status: &DigestStatus) {
        let counter = match status {
            DigestStatus::Valid(_) => &mut self.digests_valid,
            DigestStatus::Invalid(_) => &mut self.digests_invalid,
            DigestStatus::Pending => &mut self.digests_pending,
            DigestStatus::Unverifiable(_) => &mut self.digests_unverifiable,
        };
        *counter += 1;
    }
}

/// One account and region.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RegionReport {
    pub account: String,
    pub region: String,
    pub trails: Vec<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Digests missing: in the middle (a later digest names an absent one) or at the end.
    pub missing_ranges: Vec<Gap>,
    /// Pauses in logging: a new chain started (not a failure; log files there are unlisted).
    pub restarts: Vec<Gap>,
}

/// One file (or gap) that did not verify, or is pending.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub account: String,
    pub region: String,
    /// `digest`, `log` or `gap`.
    pub kind: &'static str,
    pub status: String,
    pub file: String,
    pub detail: String,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub from: Option<DateTime<Utc>>,
    pub to: DateTime<Utc>,
    pub passed: bool,
    pub totals: Counts,
    pub regions: Vec<RegionReport>,
    pub problems: Vec<Problem>,
    /// Paths and objects that could not be listed.
    pub errors: Vec<String>,
    /// Every file's verdict, for the lake's record (`record`).
    #[serde(skip)]
    pub records: Vec<FileVerdict>,
}

/// One file's or gap's verdict, as the lake keeps it.
#[derive(Debug, Clone)]
pub struct FileVerdict {
    /// The file's `source_file` name; for a gap, a description of it.
    pub subject: String,
    pub kind: &'static str,
    pub status: String,
    pub detail: String,
    pub account: String,
    pub region: String,
    pub trail: Option<String>,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub digest: Option<String>,
    pub method: Option<SignatureFrom>,
}

type RegionKey = (String, String);

/// Puts the chains' and log files' verdicts together.
pub fn build(
    period: Period,
    chains: &BTreeMap<ChainId, Vec<DigestNode>>,
    outcomes: &BTreeMap<&ChainId, ChainOutcome>,
    logs: &[CheckedLog],
    inventory: &Inventory,
) -> VerifyReport {
    let mut regions: BTreeMap<RegionKey, RegionReport> = BTreeMap::new();
    let mut records = Vec::new();
    for (id, nodes) in chains {
        let Some(outcome) = outcomes.get(id) else {
            continue;
        };
        let region = region_entry(&mut regions, &id.account, &id.region);
        if !region.trails.contains(&id.trail) {
            region.trails.push(id.trail.clone());
        }
        add_chain(period, id, nodes, outcome, region, &mut records);
    }
    for log in logs {
        let region = region_entry(&mut regions, &log.account, &log.region);
        region.counts.count_log(log.status);
        records.push(log_verdict(log));
    }
    let mut totals = Counts::default();
    for region in regions.values() {
        totals.add(&region.counts);
    }
    let errors: Vec<String> = inventory.errors.iter().map(ToString::to_string).collect();
    VerifyReport {
        from: (period.from > DateTime::<Utc>::MIN_UTC).then_some(period.from),
        to: period.to,
        passed: totals.passed() && errors.is_empty(),
        problems: problems(&records),
        totals,
        regions: regions.into_values().collect(),
        errors,
        records,
    }
}

fn region_entry<'a>(
    regions: &'a mut BTreeMap<RegionKey, RegionReport>,
    account: &str,
    region: &str,
) -> &'a mut RegionReport {
    regions
        .entry((account.to_owned(), region.to_owned()))
        .or_insert_with(|| RegionReport {
            account: account.to_owned(),
            region: region.to_owned(),
            ..RegionReport::default()
        })
}

/// A chain's digests of the period, its gaps and restarts, into its region's report.
fn add_chain(
    period: Period,
    id: &ChainId,
    nodes: &[DigestNode],
    outcome: &ChainOutcome,
    region: &mut RegionReport,
    records: &mut Vec<FileVerdict>,
) {
    for (node, status) in nodes.iter().zip(&outcome.statuses) {
        if !period.overlaps(node.start(), node.end()) {
            continue;
        }
        region.counts.count_digest(status);
        records.push(digest_verdict(id, node, status));
    }
    for gap in &outcome.missing {
        region.counts.digests_missing += gap.digests;
        region.missing_ranges.push(gap.clone());
        records.push(gap_verdict(id, gap));
    }
    region.restarts.extend(outcome.restarts.iter().cloned());
}

fn digest_verdict(id: &ChainId, node: &DigestNode, status: &DigestStatus) -> FileVerdict {
    let (name, detail, method) = match status {
        DigestStatus::Valid(from) => ("valid", String::new(), Some(*from)),
        DigestStatus::Invalid(why) => ("invalid", why.clone(), None),
        DigestStatus::Pending => (
            "pending",
            "the newest digest: its signature arrives with the next one".to_owned(),
            None,
        ),
        DigestStatus::Unverifiable(why) => ("unverifiable", why.clone(), None),
    };
    FileVerdict {
        subject: node.found.name.clone(),
        kind: "digest",
        status: name.to_owned(),
        detail,
        account: id.account.clone(),
        region: id.region.clone(),
        trail: Some(id.trail.clone()),
        start: Some(node.start()),
        end: Some(node.end()),
        digest: None,
        method,
    }
}

fn gap_verdict(id: &ChainId, gap: &Gap) -> FileVerdict {
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    FileVerdict {
        subject: format!(
            "{} digest(s) of {}/{}/{} missing from {} to {}",
            gap.digests,
            id.account,
            id.region,
            id.trail,
            stamp(gap.from),
            stamp(gap.to)
        ),
        kind: "gap",
        status: "missing".to_owned(),
        detail: gap.evidence.clone(),
        account: id.account.clone(),
        region: id.region.clone(),
        trail: Some(id.trail.clone()),
        start: Some(gap.from),
        end: Some(gap.to),
        digest: None,
        method: None,
    }
}

fn log_verdict(log: &CheckedLog) -> FileVerdict {
    FileVerdict {
        subject: log.name.clone(),
        kind: "log",
        status: log.status.name().to_owned(),
        detail: log.detail.clone(),
        account: log.account.clone(),
        region: log.region.clone(),
        trail: None,
        start: None,
        end: log.time,
        digest: log.digest.clone(),
        method: log.method,
    }
}

/// Everything but the valid, in a stable order.
fn problems(records: &[FileVerdict]) -> Vec<Problem> {
    let mut problems: Vec<Problem> = records
        .iter()
        .filter(|r| r.status != "valid")
        .map(|r| Problem {
            account: r.account.clone(),
            region: r.region.clone(),
            kind: r.kind,
            status: r.status.clone(),
            file: r.subject.clone(),
            detail: r.detail.clone(),
        })
        .collect();
    problems.sort_by(|a, b| {
        (&a.account, &a.region, a.kind, &a.file).cmp(&(&b.account, &b.region, b.kind, &b.file))
    });
    problems
}

impl Problem {
    /// `kind status account region: file (detail)`, each name through `shown`.
    fn line(&self, shown: impl Fn(&str) -> String) -> String {
        let detail = match self.detail.is_empty() {
            true => String::new(),
            false => format!(" ({})", shown(&self.detail)),
        };
        format!(
            "{} {} {} {}: {}{detail}",
            self.kind,
            shown(&self.status),
            shown(&self.account),
            shown(&self.region),
            shown(&self.file),
        )
    }
}

impl VerifyReport {
    /// The table: one row per account and region, then the problems, then the verdict. Names
    /// come from the sources (an injected file names itself): control characters are escaped.
    pub fn render_text(&self) -> String {
        let mut text = format!("{}\n", self.summary_table(|t| visible(t).into_owned()));
        for problem in &self.problems {
            text += &problem.line(|t| visible(t).into_owned());
            text += "\n";
        }
        for error in &self.errors {
            text += &format!("error: {}\n", visible(error));
        }
        text + self.verdict() + "\n"
    }

    /// [`render_text`](Self::render_text) as a Markdown document: the period, the table, the
    /// problems as a list, the verdict. Cells cannot open a tag or a column.
    pub fn render_markdown(&self) -> String {
        let cell = |t: &str| markdown_cell(&visible(t));
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let from = self
            .from
            .map(time)
            .unwrap_or_else(|| "the first digest".into());
        let mut text = format!(
            "## CloudTrail log integrity, {from} .. {}\n\n{}\n\n",
            time(self.to),
            self.summary_table(cell)
        );
        if !self.problems.is_empty() {
            text += "### Problems\n\n";
            for problem in &self.problems {
                text += &format!("- {}\n", problem.line(cell));
            }
            text += "\n";
        }
        for error in &self.errors {
            text += &format!("- error: {}\n", cell(error));
        }
        text + "**" + self.verdict() + "**\n"
    }

    fn verdict(&self) -> &'static str {
        match self.passed {
            true => "verified: every digest and log file of the period checks out",
            false => "NOT verified: see the problems above",
        }
    }

    /// One row per account and region and one for all, each name through `cell`.
    fn summary_table(&self, cell: impl Fn(&str) -> String) -> Table {
        let mut table = Table::new();
        table.load_preset(ASCII_MARKDOWN).set_header(vec![
            "account",
            "region",
            "trails",
            "digests valid",
            "invalid",
            "pending",
            "unverifiable",
            "missing",
            "logs valid",
            "modified",
            "missing",
            "unlisted",
            "unproven",
            "pending",
        ]);
        for region in &self.regions {
            table.add_row(row(
                &cell(&region.account),
                &cell(&region.region),
                &cell(&region.trails.join(" ")),
                &region.counts,
            ));
        }
        table.add_row(row("(all)", "", "", &self.totals));
        table
    }
}

fn row(account: &str, region: &str, trails: &str, c: &Counts) -> Vec<String> {
    let mut cells = vec![account.to_owned(), region.to_owned(), trails.to_owned()];
    cells.extend(
        [
            c.digests_valid,
            c.digests_invalid,
            c.digests_pending,
            c.digests_unverifiable,
            c.digests_missing,
            c.logs_valid,
            c.logs_modified,
            c.logs_missing,
            c.logs_unlisted,
            c.logs_unproven,
            c.logs_pending,
        ]
        .map(|n| n.to_string()),
    );
    cells
}
