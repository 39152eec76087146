//! The rule catalogue: one `.sql` file per rule under `queries/detections/`, compiled into the
//! binary, each with a header in the grammar of `query::header` (`id`, `title`, `severity`,
//! `attack`, `rationale`, `params`, `config`, `false_positives`, `baseline`). This file reads
//! the headers and the parameters' defaults; binding them is `params`, running them `mod`.

use super::DetectError;
use super::findings::Severity;
use crate::query::header;

/// The built-in rules, in the order they run and are listed.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "duration-anomaly",
        include_str!("../../../queries/detections/duration-anomaly.sql"),
    ),
    (
        "cross-account-outside",
        include_str!("../../../queries/detections/cross-account-outside.sql"),
    ),
    (
        "fan-out",
        include_str!("../../../queries/detections/fan-out.sql"),
    ),
    (
        "credential-elsewhere",
        include_str!("../../../queries/detections/credential-elsewhere.sql"),
    ),
    (
        "denied-burst",
        include_str!("../../../queries/detections/denied-burst.sql"),
    ),
    (
        "cross-account-chain",
        include_str!("../../../queries/detections/cross-account-chain.sql"),
    ),
    (
        "rare-sts-api",
        include_str!("../../../queries/detections/rare-sts-api.sql"),
    ),
    (
        "new-federated-subject",
        include_str!("../../../queries/detections/new-federated-subject.sql"),
    ),
    (
        "first-seen",
        include_str!("../../../queries/detections/first-seen.sql"),
    ),
];

/// A tunable parameter's value: what its `$name` placeholder is bound to.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Integer(i64),
    Number(f64),
    Text(String),
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Integer(value) => write!(f, "{value}"),
            ParamValue::Number(value) => write!(f, "{value:?}"),
            ParamValue::Text(text) => write!(f, "'{text}'"),
        }
    }
}

/// A tunable parameter from a rule's `params` header entry `name: default — meaning`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    pub default: ParamValue,
    pub meaning: String,
}

/// One rule: its header and its SQL (the whole file; the header is comments).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// How the rule grades its findings, as the header says it.
    pub severity: String,
    /// The ATT&CK techniques, with their names.
    pub attack: String,
    pub rationale: String,
    pub params: Vec<Param>,
    /// The config tables the rule reads.
    pub config: String,
    pub false_positives: String,
    pub baseline: String,
    pub sql: &'static str,
}

impl Rule {
    /// The highest severity the rule can give (the first its `severity` field names).
    pub fn highest_severity(&self) -> Option<Severity> {
        self.severity
            .split_whitespace()
            .find_map(|w| w.parse().ok())
    }

    /// The ATT&CK technique IDs of the `attack` field (`T1078.004`, ...).
    pub fn technique_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .attack
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
            .filter(|word| is_technique(word))
            .map(str::to_owned)
            .collect();
        ids.dedup();
        ids
    }
}

fn is_technique(word: &str) -> bool {
    word.strip_prefix('T')
        .is_some_and(|rest| rest.len() >= 4 && rest.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// Every built-in rule, in order.
pub fn catalogue() -> Result<Vec<Rule>, DetectError> {
    BUILT_IN
        .iter()
        .map(|(id, sql)| {
            parse(sql).map_err(|reason| DetectError::RuleFile {
                id: (*id).to_owned(),
                reason,
            })
        })
        .collect()
}

/// Reads a rule's header.
fn parse(sql: &'static str) -> Result<Rule, String> {
    let header = header::parse(sql);
    let mut fields = header.fields;
    let mut take = |key: &str| fields.remove(key).unwrap_or_default();
    let id = take("id");
    if id.is_empty() {
        return Err("the header has no `id`".to_owned());
    }
    let params = header
        .params
        .iter()
        .map(|(name, rest)| param(name, rest))
        .collect::<Result<_, _>>()?;
    Ok(Rule {
        id,
        title: take("title"),
        severity: take("severity"),
        attack: take("attack"),
        rationale: take("rationale"),
        params,
        config: take("config"),
        false_positives: take("false_positives"),
        baseline: take("baseline"),
        sql,
    })
}

/// A `params` entry: `name` and `default — meaning`.
fn param(name: &str, rest: &str) -> Result<Param, String> {
    let (default, meaning) = rest
        .split_once(" — ")
        .ok_or_else(|| format!("parameter {name}: expected `default — meaning`"))?;
    Ok(Param {
        name: name.to_owned(),
        default: literal(default.trim())
            .ok_or_else(|| format!("parameter {name}: {default:?} is not a literal"))?,
        meaning: meaning.trim().to_owned(),
    })
}

/// A default as SQL writes it: `'text'`, an integer or a decimal number.
pub fn literal(text: &str) -> Option<ParamValue> {
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Some(ParamValue::Text(inner.to_owned()));
    }
    if let Ok(integer) = text.parse() {
        return Some(ParamValue::Integer(integer));
    }
    text.parse().ok().map(ParamValue::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_a_full_header() {
        let rules = catalogue().unwrap();
        assert_eq!(rules.len(), BUILT_IN.len());
        for (rule, (id, _)) in rules.iter().zip(BUILT_IN) {
            assert_eq!(rule.id, *id);
            for field in [&rule.title, &rule.rationale, &rule.false_positives] {
                assert!(!field.is_empty(), "{id}");
            }
            assert!(rule.highest_severity().is_some(), "{id}");
            assert!(!rule.technique_ids().is_empty(), "{id}");
            for param in &rule.params {
                let placeholder = format!("${}", param.name);
                assert!(rule.sql.contains(&placeholder), "{id}: {placeholder}");
            }
        }
    }

    #[test]
    fn defaults_and_techniques() {
        assert_eq!(literal("3"), Some(ParamValue::Integer(3)));
        assert_eq!(literal("2.0"), Some(ParamValue::Number(2.0)));
        assert_eq!(literal("'a b'"), Some(ParamValue::Text("a b".into())));
        assert_eq!(literal("x"), None);
        let rules = catalogue().unwrap();
        let rare = rules.iter().find(|r| r.id == "rare-sts-api").unwrap();
        assert_eq!(
            rare.technique_ids(),
            ["T1550.001", "T1078.004", "T1548.005"]
        );
        let fan_out = rules.iter().find(|r| r.id == "fan-out").unwrap();
        assert_eq!(fan_out.highest_severity(), Some(Severity::High));
        assert_eq!(fan_out.params[0].name, "fanout_window_seconds");
        assert_eq!(fan_out.params[0].default, ParamValue::Integer(3600));
    }
}
