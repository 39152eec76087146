//! `sts-audit triage`: the library's `query::triage` tree for one subject, written as an
//! incident timeline (table: one line per event, grouped by session, colour on a terminal
//! only), Markdown for a ticket, JSON (the tree) or NDJSON (one line per hop, call, issued
//! session and finding).

use std::io::{IsTerminal, Write};

use serde_json::{Value, json};
use sts_audit::plan::validate_scope;
use sts_audit::query::detect::config::{self, Config};
use sts_audit::query::detect::rules;
use sts_audit::query::triage::activity::Call;
use sts_audit::query::triage::walk::Session;
use sts_audit::query::triage::{self, Issued, KeyFinding, KeyTree, Request, Subject, Triage};
use sts_audit::render::{markdown_cell, visible};

use super::detect::config_file;
use super::{Outcome, Output, open_whole_lake, runtime};
use crate::cli::{OutputArgs, OutputFormat, TriageArgs};

pub fn run(args: &TriageArgs) -> anyhow::Result<Outcome> {
    if args.format == OutputFormat::Csv {
        eprintln!(
            "sts-audit: error: triage prints a tree: use --format table, markdown, json or ndjson"
        );
        return Ok(Outcome::Usage);
    }
    let scope = &args.lake.scope;
    let now = chrono::Utc::now();
    let bounds = validate_scope(scope.from.as_deref(), scope.to.as_deref(), &[], now)?;
    let request = Request {
        subject: subject(args),
        from: bounds.from,
        to: bounds.to,
        session_limit: args.limit,
        call_limit: args.calls,
        detect: match args.detect {
            true => Some(detect_config(args)?),
            false => None,
        },
    };
    let colour = args.output.is_none() && std::io::stdout().is_terminal();
    let mut out = Output::open(&OutputArgs {
        format: args.format,
        output: args.output.clone(),
    })?;
    let found = runtime()?.block_on(async {
        let catalog = open_whole_lake(&args.lake).await?;
        anyhow::Ok(triage::triage(&catalog.ctx, &request).await?)
    })?;
    let text = match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&found)? + "\n",
        OutputFormat::Ndjson => ndjson(&found)?,
        OutputFormat::Markdown => markdown(&found),
        _ => timeline(&found, Paint { on: colour }),
    };
    out.writer.write_all(text.as_bytes())?;
    out.writer.flush()?;
    Ok(Outcome::Success)
}

/// `--config`, else the lake's own `sts-audit.toml` (as `detect` reads it).
fn detect_config(args: &TriageArgs) -> anyhow::Result<Config> {
    Ok(match config_file(args.config.as_ref(), &args.lake) {
        Some(path) => config::load(&path, &rules::catalogue()?)?,
        None => Config::empty(),
    })
}

fn subject(args: &TriageArgs) -> Subject {
    let given = [
        (
            &args.access_key,
            Subject::AccessKey as fn(String) -> Subject,
        ),
        (&args.principal, Subject::Principal),
        (&args.role, Subject::Role),
        (&args.ip, Subject::Ip),
        (&args.session_name, Subject::SessionName),
        (&args.event_id, Subject::EventId),
    ];
    given
        .into_iter()
        .find_map(|(value, make)| value.clone().map(make))
        .unwrap_or(Subject::EventId(String::new())) // clap requires one of them
}

/// ANSI colour, on a terminal only.
#[derive(Clone, Copy)]
struct Paint {
    on: bool,
}

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        match self.on {
            true => format!("\x1b[{code}m{text}\x1b[0m"),
            false => text.to_owned(),
        }
    }
    fn bold(self, text: &str) -> String {
        self.wrap("1", text)
    }
    fn red(self, text: &str) -> String {
        self.wrap("31", text)
    }
    fn yellow(self, text: &str) -> String {
        self.wrap("33", text)
    }
}

/// Text of an optional field, control characters escaped; `-` when absent.
fn show(value: &Option<String>) -> String {
    value
        .as_deref()
        .map_or("-".to_owned(), |v| visible(v).into_owned())
}

fn subject_line(subject: &Subject) -> String {
    let (kind, value) = match subject {
        Subject::AccessKey(v) => ("access key", v),
        Subject::Principal(v) => ("principal", v),
        Subject::Role(v) => ("role", v),
        Subject::Ip(v) => ("address", v),
        Subject::SessionName(v) => ("session name", v),
        Subject::EventId(v) => ("event", v),
    };
    format!("{kind} {}", visible(value))
}

/// The incident timeline.
fn timeline(found: &Triage, paint: Paint) -> String {
    let mut text = paint.bold(&format!("Triage of {}\n", subject_line(&found.subject)));
    if !found.sessions.is_empty() {
        text += &format!(
            "\n{} session(s) involved, newest first{}:\n",
            found.sessions.len(),
            match found.more_sessions {
                true => " (more exist: raise --limit or narrow --from/--to)",
                false => "",
            }
        );
        for session in &found.sessions {
            text += &format!("  {}\n", session_line(session));
        }
    }
    if found.trees.is_empty() {
        text += "\nNo session or call of it in the lake.\n";
    }
    for tree in &found.trees {
        text += &tree_text(tree, paint);
    }
    text += &paint.bold("\nFindings about these keys and principals:\n");
    if found.findings.is_empty() {
        text +=
            "  none saved (a daily `sts-audit detect --save` keeps them; --detect computes them)\n";
    }
    for finding in &found.findings {
        text += &format!("  {}\n", finding_line(finding, paint));
    }
    text
}

fn tree_text(tree: &KeyTree, paint: Paint) -> String {
    let mut text = paint.bold(&format!("\n== Key {}\n", visible(&tree.access_key_id)));
    match (&tree.origin, &tree.origin_type) {
        (Some(origin), kind) => {
            text += &format!("Origin: {} ({})\n", visible(origin), show(kind));
        }
        _ if tree.session.is_none() => {
            text += "Origin: not issued in the lake (a long-term key, or issued before the lake starts)\n";
        }
        _ => {}
    }
    if !tree.chain.is_empty() {
        text += "How it was obtained (origin first):\n";
        for (hop, session) in tree.chain.iter().enumerate() {
            text += &format!("  {}. {}\n", hop + 1, hop_line(session));
        }
    }
    text += &format!(
        "What it did ({} call(s){}):\n",
        tree.activity.len(),
        match tree.activity_truncated {
            true => ", more not shown: raise --calls",
            false => "",
        }
    );
    for call in &tree.activity {
        text += &format!("  {}\n", call_line(call, paint));
    }
    if !tree.issued.is_empty() {
        text += "What it issued:\n";
        text += &issued_text(&tree.issued, 1);
    }
    text
}

fn issued_text(issued: &[Issued], depth: usize) -> String {
    let mut text = String::new();
    for item in issued {
        let pad = "  ".repeat(depth);
        text += &format!("{pad}- {}\n", session_line(&item.session));
        text += &issued_text(&item.issued, depth + 1);
    }
    text
}

/// One hop of a chain: the STS call that issued a session.
fn hop_line(session: &Session) -> String {
    format!(
        "{} {} by {} from {} ({}) -> {} as {:?}: key {}, asked {} s, granted {} s, expires {}{}",
        show(&session.issued_at),
        show(&session.api),
        show(&session.caller),
        show(&session.issuing_source_ip),
        show(&session.issuing_user_agent),
        show(&session.role_arn),
        visible(session.role_session_name.as_deref().unwrap_or("")),
        visible(&session.access_key_id),
        number(session.requested_duration_seconds),
        number(session.effective_duration_seconds),
        show(&session.credentials_expiration),
        match session.mfa {
            Some(true) => ", MFA",
            _ => "",
        }
    )
}

/// A session in a list: key, role, when, use.
fn session_line(session: &Session) -> String {
    let ips = session.distinct_source_ips.clone().unwrap_or_default();
    format!(
        "{} {} {} -> {} ({}): {} call(s), {} failed, from {}",
        show(&session.issued_at),
        visible(&session.access_key_id),
        show(&session.api),
        show(&session.role_arn),
        show(&session.caller),
        number(session.calls),
        number(session.failed_calls),
        match ips.is_empty() {
            true => "-".to_owned(),
            false => visible(&ips.join(", ")).into_owned(),
        }
    )
}

fn call_line(call: &Call, paint: Paint) -> String {
    let error = match &call.error_code {
        Some(code) => paint.red(&format!(" ERROR {}", visible(code))),
        None => String::new(),
    };
    let address = match call.first_from_address {
        true => paint.yellow(&format!(
            "{} [first from this address]",
            show(&call.source_ip_address)
        )),
        false => show(&call.source_ip_address),
    };
    let expired = match call.after_expiration {
        true => paint.red(" [after expiration]"),
        false => String::new(),
    };
    format!(
        "{} {} {} {} {}{}{} ({})",
        show(&call.event_time),
        show(&call.event_source),
        show(&call.event_name),
        show(&call.aws_region),
        address,
        error,
        expired,
        show(&call.user_agent)
    )
}

fn finding_line(finding: &KeyFinding, paint: Paint) -> String {
    let severity = match finding.severity.as_str() {
        "critical" | "high" => paint.red(&finding.severity),
        "medium" => paint.yellow(&finding.severity),
        _ => finding.severity.clone(),
    };
    format!(
        "{severity} {} {} {}{}: {}",
        show(&finding.event_time),
        visible(&finding.rule),
        visible(&finding.id),
        match finding.computed {
            true => " (computed)",
            false => "",
        },
        visible(&finding.summary)
    )
}

fn number(value: Option<i64>) -> String {
    value.map_or("-".to_owned(), |n| n.to_string())
}

/// The same content for a ticket: headings and tables.
fn markdown(found: &Triage) -> String {
    let cell = |value: &Option<String>| markdown_cell(&show(value));
    let mut text = format!(
        "# Triage of {}\n",
        markdown_cell(&subject_line(&found.subject))
    );
    if !found.sessions.is_empty() {
        text += "\n## Sessions involved (newest first)\n\n| issued_at | access_key_id | api | role_arn | caller | calls | failed |\n| --- | --- | --- | --- | --- | --- | --- |\n";
        for s in &found.sessions {
            text += &format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&s.issued_at),
                markdown_cell(&s.access_key_id),
                cell(&s.api),
                cell(&s.role_arn),
                cell(&s.caller),
                number(s.calls),
                number(s.failed_calls)
            );
        }
    }
    for tree in &found.trees {
        text += &format!("\n## Key {}\n\n", markdown_cell(&tree.access_key_id));
        if let Some(origin) = &tree.origin {
            text += &format!(
                "Origin: {} ({})\n\n",
                markdown_cell(origin),
                cell(&tree.origin_type)
            );
        }
        if !tree.chain.is_empty() {
            text += "| hop | issued_at | api | caller | source_ip | user_agent | role_arn | key | asked_s | granted_s | expires |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n";
            for (hop, s) in tree.chain.iter().enumerate() {
                text += &format!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    hop + 1,
                    cell(&s.issued_at),
                    cell(&s.api),
                    cell(&s.caller),
                    cell(&s.issuing_source_ip),
                    cell(&s.issuing_user_agent),
                    cell(&s.role_arn),
                    markdown_cell(&s.access_key_id),
                    number(s.requested_duration_seconds),
                    number(s.effective_duration_seconds),
                    cell(&s.credentials_expiration)
                );
            }
            text += "\n";
        }
        text += "| event_time | event_source | event_name | source_ip | new address | after expiration | error | user_agent |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n";
        for c in &tree.activity {
            text += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&c.event_time),
                cell(&c.event_source),
                cell(&c.event_name),
                cell(&c.source_ip_address),
                if c.first_from_address { "yes" } else { "" },
                if c.after_expiration { "yes" } else { "" },
                markdown_cell(c.error_code.as_deref().unwrap_or("")),
                cell(&c.user_agent)
            );
        }
        if tree.activity_truncated {
            text += "\nMore calls not shown (raise --calls).\n";
        }
        if !tree.issued.is_empty() {
            text += "\nIssued:\n\n";
            text += &markdown_cell(&issued_text(&tree.issued, 0)).replace("<br>", "\n");
        }
    }
    text += "\n## Findings\n\n";
    if found.findings.is_empty() {
        text += "None saved (a daily `sts-audit detect --save` keeps them; `--detect` computes them).\n";
    } else {
        text +=
            "| severity | event_time | rule | id | summary |\n| --- | --- | --- | --- | --- |\n";
        for f in &found.findings {
            text += &format!(
                "| {} | {} | {} | {} | {} |\n",
                markdown_cell(&f.severity),
                cell(&f.event_time),
                markdown_cell(&f.rule),
                markdown_cell(&f.id),
                markdown_cell(&f.summary)
            );
        }
    }
    text
}

/// One JSON object a line: every hop, call, issued session and finding, each with its
/// `type` and the key it belongs to.
fn ndjson(found: &Triage) -> anyhow::Result<String> {
    let mut lines = Vec::new();
    let mut push = |kind: &str, key: &str, value: Value| -> anyhow::Result<()> {
        let mut object = json!({"type": kind, "tree_key": key});
        if let (Value::Object(target), Value::Object(fields)) = (&mut object, value) {
            target.extend(fields);
        }
        lines.push(serde_json::to_string(&object)?);
        Ok(())
    };
    for session in &found.sessions {
        push(
            "session",
            &session.access_key_id,
            serde_json::to_value(session)?,
        )?;
    }
    for tree in &found.trees {
        let key = &tree.access_key_id;
        for (hop, session) in tree.chain.iter().enumerate() {
            let mut value = serde_json::to_value(session)?;
            value["hop"] = json!(hop + 1);
            push("hop", key, value)?;
        }
        for call in &tree.activity {
            push("call", key, serde_json::to_value(call)?)?;
        }
        let mut stack: Vec<&Issued> = tree.issued.iter().collect();
        while let Some(item) = stack.pop() {
            push("issued", key, serde_json::to_value(&item.session)?)?;
            stack.extend(item.issued.iter());
        }
    }
    for finding in &found.findings {
        push("finding", "", serde_json::to_value(finding)?)?;
    }
    Ok(lines.join("\n") + if lines.is_empty() { "" } else { "\n" })
}
