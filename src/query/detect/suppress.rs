//! Suppressions from the config: a rule (or `*`), glob patterns on the principal, role,
//! account or federated subject, and a reason. A suppressed finding is not printed but
//! counted, per rule and reason, so nothing disappears silently; the command reports counts.

use std::collections::BTreeMap;

use serde_json::Value;

use super::findings::Finding;

/// One `[[suppress]]` entry. Every pattern given must match; `*` matches any run of
/// characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub rule: String,
    pub principal: Option<String>,
    pub role: Option<String>,
    pub account: Option<String>,
    pub subject: Option<String>,
    pub reason: String,
}

/// How many findings each (rule, reason) suppressed.
pub type Suppressed = BTreeMap<(String, String), usize>;

impl Suppression {
    fn matches(&self, finding: &Finding) -> bool {
        let subject = match finding.details.get("subject") {
            Some(Value::String(subject)) => Some(subject.as_str()),
            _ => None,
        };
        (self.rule == "*" || self.rule == finding.rule)
            && pattern_matches(&self.principal, finding.principal_arn.as_deref())
            && pattern_matches(&self.role, finding.role_arn.as_deref())
            && pattern_matches(&self.account, finding.account_id.as_deref())
            && pattern_matches(&self.subject, subject)
    }
}

/// No pattern matches anything; a pattern never matches a missing value.
fn pattern_matches(pattern: &Option<String>, value: Option<&str>) -> bool {
    match (pattern, value) {
        (None, _) => true,
        (Some(pattern), Some(value)) => glob(pattern.as_bytes(), value.as_bytes()),
        (Some(_), None) => false,
    }
}

/// `*` and `?` glob matching, iterative (backtracks to the last `*` only).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|c| *c == b'*')
}

/// The findings no suppression matches, and the counts of those suppressed.
pub fn apply(findings: Vec<Finding>, suppressions: &[Suppression]) -> (Vec<Finding>, Suppressed) {
    let mut suppressed = Suppressed::new();
    let kept = findings
        .into_iter()
        .filter(
            |finding| match suppressions.iter().find(|s| s.matches(finding)) {
                Some(by) => {
                    let key = (finding.rule.clone(), by.reason.clone());
                    *suppressed.entry(key).or_default() += 1;
                    false
                }
                None => true,
            },
        )
        .collect();
    (kept, suppressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("arn:*:role/vpn-*", "arn:aws:iam::1:role/vpn-a", true),
            ("arn:*:role/vpn-*", "arn:aws:iam::1:role/web", false),
            ("1111????3333", "111122223333", true),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} {text}"
            );
        }
    }
}
