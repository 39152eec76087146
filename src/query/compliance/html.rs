//! The HTML rendering: one self-contained page (the style inline, the charts inline SVG, no
//! script, font or image to fetch) that opens from an email attachment and prints on A4.
//! Summary cards first, then the findings (each with an anchor, `#finding-<id>`), coverage,
//! access, the cross-account matrix, durations, role chains and denied attempts. Every value is
//! escaped by `text::html` where it is written.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;

use super::document::{Report, evidence};
use super::period::Period;
use super::sections::Section;
use super::svg::{self, Bar, Series};
use super::text::{count, duration, html, plain};
use crate::query::detect::findings::{Finding, Severity};

const STYLE: &str = include_str!("style.css");

/// The page's sections for the table of contents: (anchor, heading).
const CONTENTS: [(&str, &str); 7] = [
    ("findings", "Findings"),
    ("coverage", "Coverage"),
    ("access", "Who reached which roles"),
    ("cross-account", "Cross-account access"),
    ("durations", "Session durations"),
    ("role-chains", "Role chains"),
    ("denied", "Denied attempts"),
];

pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024);
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(
        page,
        "<title>STS access compliance report, {}</title><style>{STYLE}</style></head>\n<body><main>\n",
        html(&report.period.human())
    );
    masthead(&mut page, report);
    cards(&mut page, report);
    contents(&mut page);
    findings(&mut page, report);
    coverage(&mut page, report);
    access(&mut page, report);
    cross_account(&mut page, report);
    durations(&mut page, report);
    plain_section(&mut page, report, "role-chains", "Role chains");
    plain_section(&mut page, report, "denied", "Denied attempts");
    footer(&mut page, report);
    page.push_str("</main></body></html>\n");
    page
}

fn masthead(page: &mut String, report: &Report) {
    let _ = write!(
        page,
        "<header class=\"top\"><div class=\"kicker\">sts-audit \u{b7} CloudTrail STS</div>\
         <h1>STS access compliance report</h1><div class=\"period\">{}</div>\
         <div class=\"note\">{} Baseline for comparisons from {}.</div></header>",
        html(&report.period.human()),
        html(&report.period.note),
        html(&report.period.baseline_start)
    );
}

/// The numbers a reader wants first.
fn cards(page: &mut String, report: &Report) {
    page.push_str("<section class=\"cards\">");
    let totals = coverage_totals(report);
    let total = |column: &str| totals.map_or(0, |(s, row)| s.int(row, column));
    let accounts = report
        .section("coverage")
        .map_or(0, |s| s.rows.len().saturating_sub(1));
    let (succeeded, failed) = per_day_totals(report);
    let gaps = report.section("gaps").map_or(0, |s| s.rows.len());
    card(page, "", &count(total("records")), "records");
    card(page, "", &count(accounts as i64), "accounts");
    card(page, "", &count(total("regions")), "regions");
    card(page, "", &count(total("days")), "days with logs");
    card(page, "", &count(total("files")), "log files");
    card(page, "", &count(succeeded + failed), "STS credential calls");
    card(
        page,
        if failed > 0 { "warn" } else { "" },
        &count(failed),
        "denied or failed",
    );
    card(
        page,
        if gaps > 0 { "warn" } else { "" },
        &count(gaps as i64),
        "account-day gaps",
    );
    for severity in Severity::ALL.iter().rev() {
        let n = report.count(*severity) as i64;
        let class = format!("sev {severity}");
        card(page, &class, &count(n), &format!("{severity} findings"));
    }
    page.push_str("</section>\n");
}

fn card(page: &mut String, class: &str, value: &str, label: &str) {
    let _ = write!(
        page,
        "<div class=\"card {class}\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
        html(value),
        html(label)
    );
}

fn contents(page: &mut String) {
    page.push_str("<nav class=\"toc\">");
    for (anchor, heading) in CONTENTS {
        let _ = write!(page, "<a href=\"#{anchor}\">{}</a>", html(heading));
    }
    page.push_str("</nav>\n");
}

/// The coverage section and its `(all)` row.
fn coverage_totals(report: &Report) -> Option<(&Section, &Vec<Value>)> {
    let section = report.section("coverage")?;
    let row = section
        .rows
        .iter()
        .find(|row| section.text(row, "account_id") == "(all)")?;
    Some((section, row))
}

/// Succeeded and failed STS calls over the period.
fn per_day_totals(report: &Report) -> (i64, i64) {
    report.section("assumptions-per-day").map_or((0, 0), |s| {
        s.rows.iter().fold((0, 0), |(ok, failed), row| {
            (ok + s.int(row, "succeeded"), failed + s.int(row, "failed"))
        })
    })
}

fn heading(page: &mut String, anchor: &str, title: &str, lead: &str) {
    let _ = write!(
        page,
        "<section id=\"{anchor}\"><h2>{}</h2><p class=\"lead\">{}</p>",
        html(title),
        html(lead)
    );
}

fn findings(page: &mut String, report: &Report) {
    let lead = format!(
        "What the {} detection rules of `sts-audit detect` flag in the period, highest severity \
         first, each with its evidence (the CloudTrail event IDs) and the rule's numbers.",
        report.detection_rules.len()
    );
    heading(page, "findings", "Findings", &lead);
    if report.findings.is_empty() {
        page.push_str("<p class=\"empty\">No findings in the period.</p></section>\n");
        return;
    }
    findings_index(page, &report.findings);
    for finding in &report.findings {
        finding_article(page, finding);
    }
    page.push_str("</section>\n");
}

fn findings_index(page: &mut String, findings: &[Finding]) {
    page.push_str(
        "<table><thead><tr><th>severity</th><th>rule</th><th>what</th><th>principal</th>\
         <th>first evidence</th></tr></thead><tbody>",
    );
    for f in findings {
        let _ = write!(
            page,
            "<tr><td><span class=\"badge {sev}\">{sev}</span></td><td><code>{}</code></td>\
             <td><a href=\"#finding-{}\">{}</a></td><td>{}</td><td class=\"num\">{}</td></tr>",
            html(&f.rule),
            html(&f.id),
            html(&f.title),
            html(f.principal_arn.as_deref().unwrap_or("")),
            html(f.event_time.as_deref().unwrap_or("")),
            sev = f.severity,
        );
    }
    page.push_str("</tbody></table>\n");
}

fn finding_article(page: &mut String, f: &Finding) {
    let _ = write!(
        page,
        "<article class=\"finding {sev}\" id=\"finding-{id}\"><h3><a href=\"#finding-{id}\">\
         <span class=\"badge {sev}\">{sev}</span> {}</a></h3><p class=\"summary\">{}</p>\
         <dl class=\"evidence\">",
        html(&f.title),
        html(&f.summary),
        sev = f.severity,
        id = html(&f.id),
    );
    for (name, value) in evidence(f) {
        let _ = write!(
            page,
            "<dt>{}</dt><dd class=\"mono\">{}</dd>",
            html(name),
            html(&value)
        );
    }
    page.push_str("</dl><dl class=\"numbers\">");
    for (name, value) in &f.details {
        let value = plain(value);
        if !value.is_empty() {
            let name = name.replace('_', " ");
            let _ = write!(
                page,
                "<dt>{}</dt><dd>{}</dd>",
                html(&name),
                breakable(&value)
            );
        }
    }
    page.push_str("</dl></article>\n");
}

fn coverage(page: &mut String, report: &Report) {
    let lead = "The accounts, regions, days and log files the period's records came from, the \
                share of records from log files whose integrity was proven, and the gaps: days \
                an account has no logs while other accounts do, and what did not verify.";
    heading(page, "coverage", "Coverage", lead);
    if let Some(section) = report.section("coverage") {
        table(page, section);
    }
    for id in ["gaps", "integrity"] {
        if let Some(section) = report.section(id) {
            let _ = write!(
                page,
                "<h3>{}</h3><p class=\"lead\">{}</p>",
                html(&section.title),
                html(&section.description)
            );
            table(page, section);
        }
    }
    page.push_str("</section>\n");
}

fn access(page: &mut String, report: &Report) {
    let lead = "Each principal and the roles it assumed or tried to assume, per STS API, with \
                MFA and federation shown; the charts show the calls per day and the busiest \
                principals.";
    heading(page, "access", "Who reached which roles, and how", lead);
    if let Some(section) = report.section("assumptions-per-day") {
        page.push_str("<h3>STS credential calls per day</h3>");
        let bars = day_bars(section, &report.period);
        page.push_str(&svg::columns(
            &bars,
            &OK_FAILED,
            "STS credential calls per day",
        ));
    }
    if let Some(section) = report.section("top-principals") {
        page.push_str("<h3>Top principals</h3>");
        page.push_str(&svg::rows(
            &principal_bars(section),
            &OK_FAILED,
            "Top principals",
        ));
    }
    if let Some(section) = report.section("access") {
        table(page, section);
    }
    page.push_str("</section>\n");
}

const OK_FAILED: [Series; 2] = [
    Series {
        name: "succeeded",
        colour: "#1f4e8c",
    },
    Series {
        name: "failed",
        colour: "#c0392b",
    },
];

/// One bar per day of the period, days without calls included (a quiet day is information).
fn day_bars(section: &Section, period: &Period) -> Vec<Bar> {
    let calls: BTreeMap<String, Vec<i64>> = section
        .rows
        .iter()
        .map(|row| {
            let values = vec![section.int(row, "succeeded"), section.int(row, "failed")];
            (section.text(row, "day"), values)
        })
        .collect();
    let last = period.end_time() - chrono::TimeDelta::microseconds(1);
    let days = period.start_time().date_naive().iter_days();
    days.take_while(|day| *day <= last.date_naive())
        .take(MAX_DAYS)
        .map(|day| {
            let label = day.format("%Y-%m-%d").to_string();
            let values = calls.get(&label).cloned().unwrap_or_else(|| vec![0, 0]);
            Bar { label, values }
        })
        .collect()
}

/// The most days the per-day chart draws (a longer period shows its first days only; the
/// table in the Markdown and JSON has them all).
const MAX_DAYS: usize = 366;

fn principal_bars(section: &Section) -> Vec<Bar> {
    section
        .rows
        .iter()
        .map(|row| {
            let failed = section.int(row, "failed");
            Bar {
                label: section.text(row, "principal"),
                values: vec![section.int(row, "calls") - failed, failed],
            }
        })
        .collect()
}

fn cross_account(page: &mut String, report: &Report) {
    let lead = "Source account (rows) by target account (columns): assumptions, failed ones in \
                brackets. Trusted sources are listed in the config's [[accounts.trusted]]; \
                internal ones log to this lake or belong to the configured organization; \
                external ones are neither and deserve a look.";
    heading(page, "cross-account", "Cross-account access", lead);
    let Some(section) = report.section("cross-account") else {
        page.push_str("</section>\n");
        return;
    };
    if section.rows.is_empty() {
        page.push_str("<p class=\"empty\">No cross-account assumptions in the period.</p>");
    } else {
        matrix(page, section);
        table(page, section);
    }
    page.push_str("</section>\n");
}

/// The matrix: one row per source account, one column per target account.
fn matrix(page: &mut String, section: &Section) {
    let mut cells: BTreeMap<(String, String), (i64, i64, String)> = BTreeMap::new();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    let mut targets: Vec<String> = Vec::new();
    for row in &section.rows {
        let (source, target) = (
            section.text(row, "source_account_id"),
            section.text(row, "target_account_id"),
        );
        let class = section.text(row, "source_class");
        sources.insert(source.clone(), class.clone());
        targets.push(target.clone());
        let entry = (
            section.int(row, "assumptions"),
            section.int(row, "failed"),
            class,
        );
        cells.insert((source, target), entry);
    }
    targets.sort();
    targets.dedup();
    page.push_str("<table class=\"matrix\"><thead><tr><th>source \u{2193} / target \u{2192}</th><th>source is</th>");
    for target in &targets {
        let _ = write!(page, "<th class=\"num\">{}</th>", html(target));
    }
    page.push_str("</tr></thead><tbody>");
    for (source, class) in &sources {
        let _ = write!(
            page,
            "<tr><td class=\"mono\">{}</td><td><span class=\"badge {c}\">{c}</span></td>",
            html(source),
            c = html(class)
        );
        for target in &targets {
            match cells.get(&(source.clone(), target.clone())) {
                Some((n, failed, class)) => {
                    let failed = if *failed > 0 {
                        format!(" ({})", count(*failed))
                    } else {
                        String::new()
                    };
                    let _ = write!(
                        page,
                        "<td class=\"cell {}\">{}{}</td>",
                        html(class),
                        count(*n),
                        failed
                    );
                }
                None => page.push_str("<td class=\"none\">\u{b7}</td>"),
            }
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>\n");
}

const DURATION_BUCKETS: [Series; 6] = [
    Series {
        name: "\u{2264} 15 min",
        colour: "#9cc3e6",
    },
    Series {
        name: "\u{2264} 1 h",
        colour: "#4f8fcf",
    },
    Series {
        name: "\u{2264} 4 h",
        colour: "#1f4e8c",
    },
    Series {
        name: "\u{2264} 12 h",
        colour: "#d9822b",
    },
    Series {
        name: "> 12 h",
        colour: "#c0392b",
    },
    Series {
        name: "unknown",
        colour: "#b8c0cc",
    },
];

const BUCKET_COLUMNS: [&str; 6] = [
    "up_to_15m",
    "up_to_1h",
    "up_to_4h",
    "up_to_12h",
    "longer",
    "unknown",
];

fn durations(page: &mut String, report: &Report) {
    let lead = "Per role: the lifetime STS granted against the longest it allows and the role's \
                baseline (the longest grant before the period), and the time sessions were \
                actually used. Sessions used after their credentials expired are flagged.";
    heading(page, "durations", "Session durations", lead);
    if let Some(section) = report.section("duration-distribution") {
        let bars: Vec<Bar> = section
            .rows
            .iter()
            .map(|row| Bar {
                label: section.text(row, "role_arn"),
                values: BUCKET_COLUMNS.iter().map(|c| section.int(row, c)).collect(),
            })
            .collect();
        page.push_str("<h3>Lifetime granted, sessions per role</h3>");
        page.push_str(&svg::rows(
            &bars,
            &DURATION_BUCKETS,
            "Lifetime granted per role",
        ));
    }
    if let Some(section) = report.section("durations") {
        durations_table(page, section);
    }
    page.push_str("</section>\n");
}

fn durations_table(page: &mut String, section: &Section) {
    page.push_str(
        "<table><thead><tr><th>role</th><th class=\"num\">sessions</th><th class=\"num\">granted \
         median</th><th class=\"num\">granted max</th><th class=\"num\">STS allows</th><th \
         class=\"num\">baseline max</th><th class=\"num\">used median</th><th class=\"num\">used \
         max</th><th>flags</th></tr></thead><tbody>",
    );
    for row in &section.rows {
        let seconds = |column: &str| match section.cell(row, column).as_i64() {
            Some(s) => duration(s),
            None => "\u{2014}".to_owned(),
        };
        let baseline = match section.int(row, "baseline_sessions") {
            0 => "no baseline".to_owned(),
            n => format!(
                "{} ({} sessions)",
                seconds("baseline_granted_max"),
                count(n)
            ),
        };
        let _ = write!(
            page,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            breakable(&section.text(row, "role_arn")),
            count(section.int(row, "sessions")),
            html(&seconds("granted_p50")),
            html(&seconds("granted_max")),
            html(&seconds("allowed_max")),
            html(&baseline),
            html(&seconds("active_p50")),
            html(&seconds("active_max")),
            duration_flags(section, row),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// Badges for a role's sessions: used after expiry, granted beyond the baseline.
fn duration_flags(section: &Section, row: &[Value]) -> String {
    let mut flags = String::new();
    let expired = section.int(row, "used_after_expiration");
    if expired > 0 {
        let _ = write!(
            flags,
            "<span class=\"badge flag\">{} used after expiry</span> ",
            count(expired)
        );
    }
    let baseline = section.int(row, "baseline_granted_max");
    if section.int(row, "baseline_sessions") > 0 && section.int(row, "granted_max") > baseline {
        flags.push_str("<span class=\"badge medium\">above baseline</span>");
    }
    flags
}

fn plain_section(page: &mut String, report: &Report, id: &str, title: &str) {
    let Some(section) = report.section(id) else {
        return;
    };
    heading(page, id, title, &section.description);
    table(page, section);
    page.push_str("</section>\n");
}

/// Tables with more columns than this are set denser.
const WIDE_TABLE_COLUMNS: usize = 8;

/// A section as a table: numbers right-aligned, empty cells dimmed.
fn table(page: &mut String, section: &Section) {
    if section.rows.is_empty() {
        page.push_str("<p class=\"empty\">None in the period.</p>\n");
        return;
    }
    // Many columns share the page's width: a denser table keeps them on it.
    match section.columns.len() > WIDE_TABLE_COLUMNS {
        true => page.push_str("<table class=\"wide\"><thead><tr>"),
        false => page.push_str("<table><thead><tr>"),
    }
    for (at, column) in section.columns.iter().enumerate() {
        let class = if is_numeric(section, at) {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(page, "<th{class}>{}</th>", html(&column.replace('_', " ")));
    }
    page.push_str("</tr></thead><tbody>");
    for row in &section.rows {
        page.push_str("<tr>");
        for cell in row {
            table_cell(page, cell);
        }
        page.push_str("</tr>");
    }
    page.push_str("</tbody></table>\n");
}

fn table_cell(page: &mut String, cell: &Value) {
    match cell {
        Value::Number(n) => {
            let shown = n.as_i64().map_or_else(|| n.to_string(), count);
            let _ = write!(page, "<td class=\"num\">{}</td>", html(&shown));
        }
        Value::Null => page.push_str("<td class=\"nil\">\u{2014}</td>"),
        other => {
            let text = plain(other);
            match (text.is_empty(), is_time(&text)) {
                (true, _) => page.push_str("<td class=\"nil\">\u{2014}</td>"),
                (false, true) => {
                    // Two lines in a narrow column: the date, then the time.
                    let (date, time) = text.split_at(11);
                    let (date, time) = (html(date), html(time));
                    let _ = write!(
                        page,
                        "<td class=\"time\"><span>{date}</span><wbr><span>{time}</span></td>"
                    );
                }
                (false, false) => {
                    let _ = write!(page, "<td>{}</td>", breakable(&text));
                }
            }
        }
    }
}

/// An RFC 3339 time as the cells hold them (`2024-03-01T08:00:00Z`).
fn is_time(text: &str) -> bool {
    text.len() == 20
        && text.as_bytes().get(10) == Some(&b'T')
        && chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

/// `text` escaped, with break opportunities where a reader expects a long identifier to wrap
/// (after the `/` and `:` of ARNs and URLs, between the words of `AssumeRoleWithSAML`), so
/// that narrow columns never split it in the middle of a word. Short text stays as it is.
fn breakable(text: &str) -> String {
    if text.chars().count() < BREAKABLE_CHARS {
        return html(text);
    }
    // An ARN or URL breaks at its separators only: `role/ReadOnly` keeps the role's name whole.
    let has_separators = text.contains(['/', ':']);
    let mut out = String::with_capacity(text.len() + 16);
    let mut previous = ' ';
    for c in text.chars() {
        let after_separator = matches!(previous, '/' | ':') && !matches!(c, '/' | ':');
        let next_word = !has_separators && c.is_ascii_uppercase() && previous.is_ascii_lowercase();
        if after_separator || next_word {
            out.push_str("<wbr>");
        }
        out.push_str(&html(c.encode_utf8(&mut [0; 4])));
        previous = c;
    }
    out
}

/// Text this long or longer gets [`breakable`]'s break opportunities.
const BREAKABLE_CHARS: usize = 16;

/// Whether column `at` holds numbers (its first non-null cell is one).
fn is_numeric(section: &Section, at: usize) -> bool {
    section
        .rows
        .iter()
        .filter_map(|row| row.get(at))
        .find(|cell| !cell.is_null())
        .is_some_and(Value::is_number)
}

fn footer(page: &mut String, report: &Report) {
    let _ = write!(
        page,
        "<footer>Computed by sts-audit {} from the CloudTrail lake for {}. Detection rules run: {}. \
         The same lake and period give this page byte for byte; the manifest beside it holds its \
         SHA-256, the lake's fingerprint and every SQL statement used.</footer>",
        env!("CARGO_PKG_VERSION"),
        html(&report.period.human()),
        html(&report.detection_rules.join(", "))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_identifiers_break_after_separators_and_between_words() {
        assert_eq!(
            breakable("arn:aws:iam::222222222222:role/ops/Admin"),
            "arn:<wbr>aws:<wbr>iam::<wbr>222222222222:<wbr>role/<wbr>ops/<wbr>Admin"
        );
        assert_eq!(
            breakable("AssumeRoleWithSAML"),
            "Assume<wbr>Role<wbr>With<wbr>SAML"
        );
        assert_eq!(
            breakable("<b>x</b> and more"),
            "&lt;b&gt;x&lt;/<wbr>b&gt; and more"
        );
        assert_eq!(breakable("short/text"), "short/text");
    }
}
