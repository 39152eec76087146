//! The Markdown rendering, for tickets: the same content as the HTML page (the charts' data
//! is in their sections' tables), every table cell escaped by `text::markdown_cell` so that a
//! hostile value can neither break the table nor start a formula in a spreadsheet.

use std::fmt::Write;

use super::document::{Report, evidence};
use super::sections::Section;
use super::text::{markdown_cell, plain};
use crate::query::detect::findings::{Finding, Severity};

pub fn render(report: &Report) -> String {
    let mut doc = String::with_capacity(32 * 1024);
    let period = &report.period;
    let _ = writeln!(doc, "# STS access compliance report\n");
    let _ = writeln!(doc, "**Period:** {}  ", markdown_cell(&period.human()));
    let _ = writeln!(doc, "{}  ", markdown_cell(&period.note));
    let _ = writeln!(
        doc,
        "Baseline for comparisons from {}.\n",
        markdown_cell(&period.baseline_start)
    );
    summary(&mut doc, report);
    findings(&mut doc, report);
    for section in &report.sections {
        section_table(&mut doc, section);
    }
    let _ = writeln!(
        doc,
        "---\n\nComputed by sts-audit {}. Detection rules run: {}.",
        env!("CARGO_PKG_VERSION"),
        markdown_cell(&report.detection_rules.join(", "))
    );
    doc
}

fn summary(doc: &mut String, report: &Report) {
    doc.push_str("## Findings by severity\n\n| severity | findings |\n| --- | ---: |\n");
    for severity in Severity::ALL.iter().rev() {
        let _ = writeln!(doc, "| {severity} | {} |", report.count(*severity));
    }
    doc.push('\n');
}

fn findings(doc: &mut String, report: &Report) {
    doc.push_str("## Findings\n\n");
    if report.findings.is_empty() {
        doc.push_str("No findings in the period.\n\n");
        return;
    }
    for finding in &report.findings {
        finding_block(doc, finding);
    }
}

/// One finding: a heading with an explicit anchor (`finding-<id>`), its summary, its fields.
fn finding_block(doc: &mut String, f: &Finding) {
    let _ = writeln!(
        doc,
        "### <a id=\"finding-{}\"></a>{}: {}\n\n{}\n\n| field | value |\n| --- | --- |",
        markdown_cell(&f.id),
        f.severity.as_str().to_uppercase(),
        markdown_cell(&f.title),
        markdown_cell(&f.summary)
    );
    let details = f.details.iter().map(|(k, v)| (k.as_str(), plain(v)));
    for (name, value) in evidence(f).into_iter().chain(details) {
        if !value.is_empty() {
            let _ = writeln!(
                doc,
                "| {} | {} |",
                markdown_cell(name),
                markdown_cell(&value)
            );
        }
    }
    doc.push('\n');
}

fn section_table(doc: &mut String, section: &Section) {
    let _ = writeln!(
        doc,
        "## {}\n\n{}\n",
        markdown_cell(&section.title),
        markdown_cell(&section.description)
    );
    if section.rows.is_empty() {
        doc.push_str("None in the period.\n\n");
        return;
    }
    let header: Vec<String> = section.columns.iter().map(|c| markdown_cell(c)).collect();
    let _ = writeln!(doc, "| {} |", header.join(" | "));
    let _ = writeln!(doc, "|{}", " --- |".repeat(section.columns.len()));
    for row in &section.rows {
        let cells: Vec<String> = row.iter().map(|cell| markdown_cell(&plain(cell))).collect();
        let _ = writeln!(doc, "| {} |", cells.join(" | "));
    }
    doc.push('\n');
}
