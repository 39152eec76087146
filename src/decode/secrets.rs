//! Secrets in records: session tokens and secret access keys are replaced by their fingerprint
//! (`sha256:` and 16 hex digits) wherever input bytes are written: rows, the rejected-records log,
//! messages.
//!
//! The scanner works on bytes and never fails, so it is more lenient than the JSON parser that
//! captured the record: a lone surrogate, a number like `1e400`, a NUL or a cut record does not
//! stop it. A key counts as secret when, its escapes decoded (`"session\u0054oken"`), it reads
//! `sessionToken` or `secretAccessKey` (first letter in either case). A JSON string whose text is
//! itself JSON (a `responseElements` written as a string) is searched too. The search is only run
//! on text that [`may_hold_secret`] flags: vectorised searches, no parse.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

/// The key names without their first letter (matched in either case). Two vectorised searches
/// (and one for a backslash) cost less than one automaton for all of them.
static TRIGGERS: LazyLock<[Finder<'static>; 2]> =
    LazyLock::new(|| [Finder::new("essionToken"), Finder::new("ecretAccessKey")]);

/// Strings inside strings are searched this many levels deep.
const MAX_NESTED_STRINGS: usize = 8;

/// What kind of secret a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    SessionToken,
    SecretAccessKey,
}

/// True when `text` may hold a secret (false means it certainly holds none).
pub fn may_hold_secret(text: &[u8]) -> bool {
    // `\u`, with which a key can spell the names in escapes.
    let escape = || memchr::memchr_iter(b'\\', text).any(|at| text.get(at + 1) == Some(&b'u'));
    TRIGGERS.iter().any(|finder| finder.find(text).is_some()) || escape()
}

/// The secret a key names, if any.
pub fn secret_key(key: &str) -> Option<Secret> {
    let mut chars = key.chars();
    let first = chars.next()?.to_ascii_lowercase();
    match (first, chars.as_str()) {
        ('s', "essionToken") => Some(Secret::SessionToken),
        ('s', "ecretAccessKey") => Some(Secret::SecretAccessKey),
        _ => None,
    }
}

/// Text with its secrets replaced, and the fingerprints of the session tokens it held, in order.
#[derive(Debug, Default)]
pub struct Redacted {
    pub text: String,
    pub session_tokens: Vec<String>,
}

/// `text` with every secret value replaced by its fingerprint; None when it holds none.
pub fn redact(text: &str) -> Option<Redacted> {
    if !may_hold_secret(text.as_bytes()) {
        return None;
    }
    let mut redacted = Redacted::default();
    redact_into(text, &mut redacted, 0).then_some(redacted)
}

/// `text` with its secrets replaced (borrowed when it holds none).
pub fn redacted(text: &str) -> Cow<'_, str> {
    match redact(text) {
        Some(redacted) => Cow::Owned(redacted.text),
        None => Cow::Borrowed(text),
    }
}

/// The value stored for a secret key's value: a string's fingerprint, or None for `null`.
pub fn secret_value_fingerprint(raw: &str) -> Option<String> {
    match raw.as_bytes().first() {
        Some(b'"') => Some(token_fingerprint(&decode_string(raw))),
        Some(b'n') if raw == "null" => None,
        _ => Some(token_fingerprint(raw)),
    }
}

/// Writes `text` redacted into `out.text`; false (and `out.text` untouched) when nothing changed.
fn redact_into(text: &str, out: &mut Redacted, depth: usize) -> bool {
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut pos = 0;
    let mut changed = false;
    let start_len = out.text.len();
    while let Some(offset) = memchr::memchr(b'"', &bytes[pos..]) {
        let start = pos + offset;
        let end = string_end(bytes, start);
        let after = skip_space(bytes, end);
        pos = end;
        if bytes.get(after) == Some(&b':') {
            let Some(kind) = secret_key(&decode_string(&text[start..end])) else {
                continue;
            };
            let value_start = skip_space(bytes, after + 1);
            let value_end = value_end(bytes, value_start).unwrap_or(bytes.len());
            pos = value_end;
            let Some(fingerprint) = secret_value_fingerprint(&text[value_start..value_end]) else {
                continue;
            };
            out.text.push_str(&text[copied..value_start]);
            push_json_string(&mut out.text, &fingerprint);
            copied = value_end;
            changed = true;
            if kind == Secret::SessionToken {
                out.session_tokens.push(fingerprint);
            }
        } else if depth < MAX_NESTED_STRINGS && may_hold_secret(&bytes[start..end]) {
            // A string whose text may be JSON with a secret in it.
            let inner = decode_string(&text[start..end]);
            let mut nested = Redacted::default();
            if redact_into(&inner, &mut nested, depth + 1) {
                out.text.push_str(&text[copied..start]);
                push_json_string(&mut out.text, &nested.text);
                out.session_tokens.append(&mut nested.session_tokens);
                copied = end;
                changed = true;
            }
        }
    }
    if changed {
        out.text.push_str(&text[copied..]);
    } else {
        out.text.truncate(start_len);
    }
    changed
}

/// `sha256:` and the first 16 hex digits of the token's SHA-256.
pub fn token_fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut fingerprint = String::with_capacity(23);
    fingerprint.push_str("sha256:");
    for byte in &digest[..8] {
        fingerprint.push(char::from(HEX[usize::from(byte >> 4)]));
        fingerprint.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    fingerprint
}

/// The index after the string that opens at `start` (its closing quote), or the end of the
/// text when it is never closed.
pub fn string_end(bytes: &[u8], start: usize) -> usize {
    string_close(bytes, start).unwrap_or(bytes.len())
}

/// The index after the closing quote of the string that opens at `start`; None when the text
/// ends first.
pub fn string_close(bytes: &[u8], start: usize) -> Option<usize> {
    let mut pos = start + 1;
    while let Some(offset) = memchr::memchr2(b'"', b'\\', bytes.get(pos..).unwrap_or_default()) {
        let at = pos + offset;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        pos = at + 2;
    }
    None
}

/// The index after the JSON value that starts at `start`, read leniently: strings by their
/// quotes, objects and arrays by their brackets, anything else up to a delimiter. None when the
/// value is cut off by the end of the text.
pub fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => string_close(bytes, start),
        b'{' | b'[' => brackets_end(bytes, start),
        _ => {
            let delimiter =
                |b: &u8| matches!(b, b',' | b'}' | b']' | b':') || b.is_ascii_whitespace();
            Some(
                bytes[start..]
                    .iter()
                    .position(delimiter)
                    .map_or(bytes.len(), |len| start + len),
            )
        }
    }
}

/// The index after the bracket that closes the one at `start`, skipping strings.
fn brackets_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut pos = start;
    while pos < bytes.len() {
        match bytes[pos] {
            b'"' => {
                pos = string_close(bytes, pos)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(pos + 1);
                }
            }
            _ => {}
        }
        pos += 1;
    }
    None
}

fn skip_space(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

/// The text of a JSON string literal (quotes optional at the end), its escapes decoded
/// leniently: a lone surrogate reads as U+FFFD, an unknown escape as itself.
pub fn decode_string(raw: &str) -> Cow<'_, str> {
    let inner = raw.strip_prefix('"').unwrap_or(raw);
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => out.push(unicode_escape(&mut chars)),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// The character of a `\uXXXX` escape (and of its low surrogate, when it is a pair).
fn unicode_escape(chars: &mut std::str::Chars) -> char {
    let hex = |chars: &mut std::str::Chars| -> Option<u32> {
        let digits: String = chars.by_ref().take(4).collect();
        u32::from_str_radix(&digits, 16).ok()
    };
    let Some(high) = hex(chars) else {
        return char::REPLACEMENT_CHARACTER;
    };
    if !(0xd800..0xdc00).contains(&high) {
        return char::from_u32(high).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    let rest = chars.as_str();
    let Some(low) = rest.strip_prefix("\\u").and_then(|r| r.get(..4)) else {
        return char::REPLACEMENT_CHARACTER;
    };
    match u32::from_str_radix(low, 16) {
        Ok(low @ 0xdc00..0xe000) => {
            chars.nth(5);
            char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))
                .unwrap_or(char::REPLACEMENT_CHARACTER)
        }
        _ => char::REPLACEMENT_CHARACTER,
    }
}

fn push_json_string(out: &mut String, text: &str) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

/// Messages quote at most this much of the input.
const QUOTED_BYTES: usize = 300;

/// Input text fit for a message: secrets redacted, at most [`QUOTED_BYTES`] long.
pub fn quoted(text: &str) -> String {
    let text = redacted(text);
    if text.len() <= QUOTED_BYTES {
        return text.into_owned();
    }
    let cut = (0..=QUOTED_BYTES)
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    format!("{}... ({} bytes)", &text[..cut], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLETOKENxyz";

    fn assert_redacted(text: &str) -> Redacted {
        let redacted = redact(text).unwrap_or_else(|| panic!("nothing redacted in {text}"));
        assert!(
            !redacted.text.contains(TOKEN) && !redacted.text.contains("EXAMPLETOKEN"),
            "{}",
            redacted.text
        );
        redacted
    }

    #[test]
    fn plain_token_is_replaced_in_place() {
        let text =
            format!(r#"{{"credentials": {{"sessionToken": "{TOKEN}", "a": [1]}}, "b": 1e400}}"#);
        let redacted = assert_redacted(&text);
        let fingerprint = token_fingerprint(TOKEN);
        assert_eq!(
            redacted.text,
            format!(
                r#"{{"credentials": {{"sessionToken": "{fingerprint}", "a": [1]}}, "b": 1e400}}"#
            )
        );
        assert_eq!(redacted.session_tokens, [fingerprint]);
    }

    #[test]
    fn each_spelling_of_a_secret_is_redacted() {
        let cases = [
            // A lone surrogate and a number no f64 holds: a strict parser gives up on both.
            format!(r#"{{"x":"\ud800","credentials":{{"sessionToken":"{TOKEN}"}}}}"#),
            format!(r#"{{"n":1e400,"credentials":{{"sessionToken":"{TOKEN}"}}}}"#),
            // The key spelled with an escape.
            format!(r#"{{"credentials":{{"session\u0054oken":"{TOKEN}"}}}}"#),
            // The response written as a JSON string.
            serde_json::Value::from(format!(r#"{{"credentials":{{"sessionToken":"{TOKEN}"}}}}"#))
                .to_string(),
            // Twice inside strings.
            serde_json::Value::from(
                serde_json::Value::from(format!(r#"{{"sessionToken":"{TOKEN}"}}"#)).to_string(),
            )
            .to_string(),
            format!(r#"{{"credentials":{{"secretAccessKey":"{TOKEN}"}}}}"#),
            format!(
                r#"{{"Credentials":{{"SecretAccessKey":"{TOKEN}","SessionToken":"{TOKEN}"}}}}"#
            ),
            // Damaged text: a NUL and a record cut in the middle of the token.
            format!("{{\"a\":\"\0\",\"sessionToken\":\"{TOKEN}\"}}"),
            format!(r#"{{"sessionToken":"{TOKEN}"#),
            // Not a string.
            format!(r#"{{"sessionToken":{{"value":"{TOKEN}"}}}}"#),
        ];
        for case in cases {
            assert_redacted(&case);
        }
    }

    #[test]
    fn text_without_secrets_is_left_alone() {
        for text in [
            r#"{"credentials":{"accessKeyId":"ASIA","expiration":"x"}}"#,
            r#"{"sessionToken":null}"#,
            r#"{"a":"\u00e9","sessionTokenCount":3}"#,
            "",
            "\"",
        ] {
            assert!(redact(text).is_none(), "{text}");
        }
    }

    #[test]
    fn lenient_values_and_strings() {
        let cases: [(&str, Option<usize>); 6] = [
            (r#"{"a":"}"}x"#, Some(9)),
            (r#"[1,[2]],"#, Some(7)),
            ("123,", Some(3)),
            (r#""ab\"c" "#, Some(7)),
            (r#"{"a":"#, None),
            (r#""abc"#, None),
        ];
        for (text, end) in cases {
            assert_eq!(value_end(text.as_bytes(), 0), end, "{text}");
        }
        assert_eq!(
            decode_string(r#""a\u0054\ud83d\ude00\ud800b""#),
            "aT\u{1f600}\u{fffd}b"
        );
    }
}
