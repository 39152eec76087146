//! The detect config (`sts-audit.toml` in a local lake, or `--config FILE`): TOML, every key
//! optional, unknown keys refused. This file reads and checks it against the rule catalogue;
//! a mistake is a [`DetectError::Config`] naming the file, line and key. `params` binds what
//! it says into the rules, `networks` expands its CIDRs, `suppress` applies its suppressions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::DetectError;
use super::networks::Cidr;
use super::rules::{ParamValue, Rule};
use super::suppress::Suppression;

/// The config, checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub baseline_days: Option<u32>,
    /// Overrides every rule's `admin_role_pattern`.
    pub admin_roles: Option<String>,
    /// The organization's accounts (accounts whose logs are in the lake are internal anyway).
    pub organization: Vec<String>,
    /// Third parties allowed in: (account, name).
    pub trusted: Vec<(String, String)>,
    /// Networks that are never new: (`*` or a principal/role ARN, network).
    pub known_networks: Vec<(String, Cidr)>,
    /// The prefix lengths addresses are compared at.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub disabled: Vec<String>,
    /// Per rule: parameter name -> value.
    pub thresholds: BTreeMap<String, BTreeMap<String, ParamValue>>,
    pub suppressions: Vec<Suppression>,
}

impl Config {
    /// No config: the defaults.
    pub fn empty() -> Config {
        Config {
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            ..Config::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    baseline_days: Option<u32>,
    admin_roles: Option<String>,
    #[serde(default)]
    accounts: AccountsSection,
    #[serde(default)]
    networks: NetworksSection,
    /// `disabled = [...]` and one table of parameters per rule id.
    #[serde(default)]
    rules: BTreeMap<String, toml::Value>,
    #[serde(default)]
    suppress: Vec<SuppressSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsSection {
    #[serde(default)]
    organization: Vec<String>,
    #[serde(default)]
    trusted: Vec<TrustedSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedSection {
    id: String,
    name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworksSection {
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    #[serde(default)]
    known: Vec<String>,
    #[serde(default)]
    by_principal: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressSection {
    rule: String,
    principal: Option<String>,
    role: Option<String>,
    account: Option<String>,
    subject: Option<String>,
    reason: String,
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path, rules: &[Rule]) -> Result<Config, DetectError> {
    let text = std::fs::read_to_string(path).map_err(|source| DetectError::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, path, rules)
}

/// Checks the config `text` (read from `path`, for messages).
pub fn parse(text: &str, path: &Path, rules: &[Rule]) -> Result<Config, DetectError> {
    let file: FileConfig = toml::from_str(text).map_err(|error| {
        let line = error.span().map_or(1, |span| line_at(text, span.start));
        DetectError::Config {
            path: path.to_owned(),
            line,
            key: key_on_line(text, line),
            reason: error.message().to_owned(),
        }
    })?;
    let place = Place { text, path };
    let mut config = Config::empty();
    config.baseline_days = file.baseline_days;
    config.admin_roles = file.admin_roles;
    accounts(&mut config, file.accounts, &place)?;
    networks(&mut config, file.networks, &place)?;
    rule_sections(&mut config, file.rules, rules, &place)?;
    for (index, section) in file.suppress.into_iter().enumerate() {
        config
            .suppressions
            .push(suppression(section, index, rules, &place)?);
    }
    Ok(config)
}

/// The file, for pointing at a line of it.
struct Place<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Place<'_> {
    /// An error at the line where `key` is set under `[section]` (or where the section starts).
    fn error(&self, section: &str, key: &str, reason: String) -> DetectError {
        DetectError::Config {
            path: self.path.to_owned(),
            line: line_of(self.text, section, key),
            key: match section {
                "" => key.to_owned(),
                _ => format!("{section}.{key}"),
            },
            reason,
        }
    }
}

fn accounts(
    config: &mut Config,
    section: AccountsSection,
    place: &Place,
) -> Result<(), DetectError> {
    for account in &section.organization {
        check_account(account).map_err(|r| place.error("accounts", "organization", r))?;
    }
    for trusted in &section.trusted {
        check_account(&trusted.id).map_err(|r| place.error("[accounts.trusted", "id", r))?;
    }
    config.organization = section.organization;
    config.trusted = section
        .trusted
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    Ok(())
}

fn check_account(account: &str) -> Result<(), String> {
    match account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(()),
        false => Err(format!("{account:?} is not a 12-digit AWS account ID")),
    }
}

fn networks(
    config: &mut Config,
    section: NetworksSection,
    place: &Place,
) -> Result<(), DetectError> {
    if let Some(prefix) = section.ipv4_prefix {
        if ![8, 16, 24, 32].contains(&prefix) {
            let reason = format!("{prefix}: IPv4 networks are compared at 8, 16, 24 or 32 bits");
            return Err(place.error("networks", "ipv4_prefix", reason));
        }
        config.ipv4_prefix = prefix;
    }
    if let Some(prefix) = section.ipv6_prefix {
        if prefix == 0 || prefix > 128 || prefix % 16 != 0 {
            let reason = format!("{prefix}: IPv6 networks are compared at a multiple of 16 bits");
            return Err(place.error("networks", "ipv6_prefix", reason));
        }
        config.ipv6_prefix = prefix;
    }
    let scoped = section
        .known
        .into_iter()
        .map(|cidr| ("*".to_owned(), "known".to_owned(), cidr))
        .chain(section.by_principal.into_iter().flat_map(|(scope, cidrs)| {
            cidrs
                .into_iter()
                .map(move |cidr| (scope.clone(), scope.clone(), cidr))
        }));
    for (scope, key, text) in scoped {
        let section_name = if scope == "*" {
            "networks"
        } else {
            "networks.by_principal"
        };
        let cidr = text
            .parse::<Cidr>()
            .and_then(|cidr| {
                cidr.compared_networks(config.ipv4_prefix, config.ipv6_prefix)?;
                Ok(cidr)
            })
            .map_err(|reason| place.error(section_name, &key, reason))?;
        config.known_networks.push((scope, cidr));
    }
    Ok(())
}

/// `[rules]`: `disabled`, and `[rules.<id>]` tables of parameters.
fn rule_sections(
    config: &mut Config,
    sections: BTreeMap<String, toml::Value>,
    rules: &[Rule],
    place: &Place,
) -> Result<(), DetectError> {
    for (key, value) in sections {
        if key == "disabled" {
            config.disabled = rule_list(value, rules).map_err(|r| place.error("rules", &key, r))?;
            continue;
        }
        let Some(rule) = rules.iter().find(|rule| rule.id == key) else {
            let reason = format!("unknown rule {key:?}; `sts-audit detect --list` shows them");
            return Err(place.error("rules", &key, reason));
        };
        let toml::Value::Table(table) = value else {
            let reason = "expected a table of the rule's parameters".to_owned();
            return Err(place.error("rules", &key, reason));
        };
        let section = format!("rules.{key}");
        let mut values = BTreeMap::new();
        for (name, value) in table {
            let value =
                threshold(rule, &name, value).map_err(|r| place.error(&section, &name, r))?;
            values.insert(name, value);
        }
        config.thresholds.insert(key, values);
    }
    Ok(())
}

fn rule_list(value: toml::Value, rules: &[Rule]) -> Result<Vec<String>, String> {
    let toml::Value::Array(items) = value else {
        return Err("expected a list of rule ids".to_owned());
    };
    items
        .into_iter()
        .map(|item| match item {
            toml::Value::String(id) if rules.iter().any(|r| r.id == id) => Ok(id),
            other => Err(format!(
                "{other} is not a rule id; `sts-audit detect --list` shows them"
            )),
        })
        .collect()
}

/// A parameter value of the type of the rule's default.
fn threshold(rule: &Rule, name: &str, value: toml::Value) -> Result<ParamValue, String> {
    let Some(param) = rule.params.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = rule.params.iter().map(|p| p.name.as_str()).collect();
        return Err(format!(
            "rule {} has no parameter {name:?} (its parameters: {})",
            rule.id,
            names.join(", ")
        ));
    };
    match (&param.default, value) {
        (ParamValue::Integer(_), toml::Value::Integer(v)) => Ok(ParamValue::Integer(v)),
        (ParamValue::Number(_), toml::Value::Integer(v)) => Ok(ParamValue::Number(v as f64)),
        (ParamValue::Number(_), toml::Value::Float(v)) => Ok(ParamValue::Number(v)),
        (ParamValue::Text(_), toml::Value::String(v)) => Ok(ParamValue::Text(v)),
        (default, other) => Err(format!(
            "{other} is not of the type of its default ({default})"
        )),
    }
}

fn suppression(
    section: SuppressSection,
    index: usize,
    rules: &[Rule],
    place: &Place,
) -> Result<Suppression, DetectError> {
    let error = |key: &str, reason: String| DetectError::Config {
        path: place.path.to_owned(),
        line: nth_line(place.text, "[[suppress]]", index),
        key: format!("suppress[{index}].{key}"),
        reason,
    };
    if section.rule != "*" && !rules.iter().any(|r| r.id == section.rule) {
        return Err(error("rule", format!("unknown rule {:?}", section.rule)));
    }
    if section.reason.trim().is_empty() {
        return Err(error("reason", "a suppression needs a reason".to_owned()));
    }
    let patterns = [
        &section.principal,
        &section.role,
        &section.account,
        &section.subject,
    ];
    if patterns.iter().all(|p| p.is_none()) {
        let reason = "give at least one of principal, role, account, subject".to_owned();
        return Err(error("rule", reason));
    }
    Ok(Suppression {
        rule: section.rule,
        principal: section.principal,
        role: section.role,
        account: section.account,
        subject: section.subject,
        reason: section.reason,
    })
}

/// The 1-based line of byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The key set on `line` (the text before `=`), or the table its header names.
fn key_on_line(text: &str, line: usize) -> String {
    let content = text
        .lines()
        .nth(line.saturating_sub(1))
        .unwrap_or_default()
        .trim();
    match content.split_once('=') {
        Some((key, _)) => key.trim().trim_matches('"').to_owned(),
        None => content.trim_matches(['[', ']']).to_owned(),
    }
}

/// The line where `key` is set in the table `[section]` (`section` may start with `[` for an
/// array of tables), else where the section starts, else 1.
fn line_of(text: &str, section: &str, key: &str) -> usize {
    let header = match section.strip_prefix('[') {
        Some(array) => format!("[[{array}]]"),
        None => format!("[{section}]"),
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let start = lines.iter().position(|l| *l == header);
    let from = start.map_or(0, |at| at + 1);
    let quoted = format!("\"{key}\"");
    let found = lines[from.min(lines.len())..]
        .iter()
        .take_while(|l| start.is_none() || !l.starts_with('['))
        .position(|l| {
            let name = l.split('=').next().unwrap_or_default().trim();
            name == key || name == quoted
        });
    match (found, start) {
        (Some(offset), _) => from + offset + 1,
        (None, Some(at)) => at + 1,
        (None, None) => 1,
    }
}

/// The line of the `index`-th occurrence of the line `marker`.
fn nth_line(text: &str, marker: &str, index: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim() == marker)
        .nth(index)
        .map_or(1, |(at, _)| at + 1)
}

/// Where a lake on disk keeps its config.
pub fn in_lake(lake: &Path) -> PathBuf {
    lake.join("sts-audit.toml")
}

#[cfg(test)]
mod tests {
    use super::super::rules::catalogue;
    use super::*;

    fn parse_text(text: &str) -> Result<Config, DetectError> {
        parse(text, Path::new("sts-audit.toml"), &catalogue().unwrap())
    }

    fn where_wrong(text: &str) -> (usize, String) {
        match parse_text(text) {
            Err(DetectError::Config { line, key, .. }) => (line, key),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_config() {
        let text = r#"
baseline_days = 14
[accounts]
organization = ["111122223333"]
[[accounts.trusted]]
id = "999900001111"
name = "Acme Scanner"
[networks]
known = ["198.51.100.0/24"]
[networks.by_principal]
"arn:aws:iam::111122223333:role/web" = ["10.20.0.0/16"]
[rules]
disabled = ["first-seen"]
[rules.fan-out]
min_fanout_accounts = 6
fanout_factor = 2
[[suppress]]
rule = "credential-elsewhere"
role = "arn:aws:iam::111122223333:role/vpn-*"
reason = "VPN egress"
"#;
        let config = parse_text(text).unwrap();
        assert_eq!(config.baseline_days, Some(14));
        assert_eq!(
            config.trusted,
            [("999900001111".into(), "Acme Scanner".into())]
        );
        assert_eq!(config.known_networks.len(), 2);
        assert_eq!(config.disabled, ["first-seen"]);
        let fan_out = &config.thresholds["fan-out"];
        assert_eq!(fan_out["min_fanout_accounts"], ParamValue::Integer(6));
        assert_eq!(fan_out["fanout_factor"], ParamValue::Number(2.0));
        assert_eq!(config.suppressions.len(), 1);
    }

    #[test]
    fn mistakes_name_their_line_and_key() {
        assert_eq!(
            where_wrong("\n\nbaseline_dayz = 3\n"),
            (3, "baseline_dayz".into())
        );
        assert_eq!(
            where_wrong("baseline_days = \"x\"\n"),
            (1, "baseline_days".into())
        );
        let text = "[rules.fan-out]\n\nmin_accounts = 3\n";
        assert_eq!(where_wrong(text), (3, "rules.fan-out.min_accounts".into()));
        let text = "[accounts]\norganization = [\"12\"]\n";
        assert_eq!(where_wrong(text), (2, "accounts.organization".into()));
        let text = "[rules.nope]\nx = 1\n";
        assert_eq!(where_wrong(text), (1, "rules.nope".into()));
        let text = "[[suppress]]\nrule = \"fan-out\"\nreason = \"\"\nprincipal = \"x\"\n";
        assert_eq!(where_wrong(text), (1, "suppress[0].reason".into()));
    }
}
