//! The comment header of every SQL file under `queries/` (views, reports and detections): one
//! grammar, one parser. Reports read `name`, `title`, `description` and `parameters` from it,
//! the catalog reads a view's `description` and `columns`, detections read `id`, `title`,
//! `severity`, `attack`, `params` and the rest; what a field means is theirs.
//!
//! ```sql
//! -- name: sessions
//! -- description: One row per issued temporary credential ...
//! --   (continued on indented comment lines)
//! -- columns:
//! --   access_key_id: the session's temporary access key (ASIA...)
//! SELECT ...
//! ```
//!
//! `-- key: value` (a key of lowercase letters and `_`) starts a field; an indented comment
//! line, or one that starts no field, continues the last field. The lines that continue
//! `columns` or `params` are their entries, `name: meaning` each (a detection's `params` entry
//! reads `name: default — meaning`). The header ends at the first line that is neither a
//! comment nor blank.

use std::collections::BTreeMap;

/// The fields of a header, and the columns its `columns` field lists.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Header {
    /// Each field's text, continuation lines joined with spaces (`columns` and `params` have
    /// none).
    pub fields: BTreeMap<String, String>,
    /// `columns`: each column's name and meaning, in order.
    pub columns: Vec<(String, String)>,
    /// `params`: each parameter's name and the rest of its entry, in order.
    pub params: Vec<(String, String)>,
}

/// The fields whose continuation lines are entries.
const COLUMNS: &str = "columns";
const PARAMS: &str = "params";

/// Reads the header at the top of `sql`.
pub fn parse(sql: &str) -> Header {
    let mut header = Header::default();
    let mut last_key: Option<String> = None;
    for line in sql.lines() {
        let Some(comment) = line.trim_start().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        // `--   more text` continues the previous field; `-- key: value` starts one.
        let continued = comment.starts_with("  ");
        let comment = comment.trim();
        match comment.split_once(':') {
            Some((key, value)) if !continued && is_key(key) => {
                header
                    .fields
                    .insert(key.to_owned(), value.trim().to_owned());
                last_key = Some(key.to_owned());
            }
            _ => header.continue_field(last_key.as_deref(), comment),
        }
    }
    header
}

/// A field name: lowercase ASCII letters and `_`.
fn is_key(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// `name: rest` as an entry.
fn entry(text: &str) -> Option<(String, String)> {
    let (name, rest) = text.split_once(':')?;
    Some((name.trim().to_owned(), rest.trim().to_owned()))
}

impl Header {
    /// Adds a continuation line to field `key` (nothing before the first field).
    fn continue_field(&mut self, key: Option<&str>, text: &str) {
        match key {
            Some(COLUMNS) => self.columns.extend(entry(text)),
            Some(PARAMS) => self.params.extend(entry(text)),
            Some(key) => {
                if let Some(field) = self.fields.get_mut(key) {
                    field.push(' ');
                    field.push_str(text);
                }
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_continuations_and_columns() {
        let sql = "\n-- name: demo\n-- description: first line\n--   second line\n\
                   -- columns:\n--   a: the first\n--   b: the second, UTC\n\
                   SELECT 1 -- name: not a header\n-- title: after the header\n";
        let header = parse(sql);
        assert_eq!(header.fields["name"], "demo");
        assert_eq!(header.fields["description"], "first line second line");
        assert_eq!(header.fields["columns"], "");
        assert!(!header.fields.contains_key("title"));
        let columns = [("a", "the first"), ("b", "the second, UTC")]
            .map(|(name, meaning)| (name.to_owned(), meaning.to_owned()));
        assert_eq!(header.columns, columns);
    }

    #[test]
    fn every_view_names_itself_and_documents_its_columns() {
        for view in crate::query::catalog::VIEWS {
            let header = parse(view.sql);
            assert_eq!(header.fields["name"], view.name);
            assert!(!header.fields["description"].is_empty(), "{}", view.name);
            assert!(!header.columns.is_empty(), "{}", view.name);
        }
    }

    #[test]
    fn params_are_entries_and_keys_may_hold_underscores() {
        let sql = "-- id: r\n-- params:\n--   limit_seconds: 900 — bucket length\n\
                   -- false_positives: retries\n--   of deploys\nSELECT 1";
        let header = parse(sql);
        assert_eq!(header.fields["false_positives"], "retries of deploys");
        let params = [("limit_seconds".to_owned(), "900 — bucket length".to_owned())];
        assert_eq!(header.params, params);
    }

    #[test]
    fn text_before_the_first_field_is_ignored() {
        let header = parse("-- just a note\n-- name: x\nSELECT 1");
        assert_eq!(header.fields.len(), 1);
        assert_eq!(header.fields["name"], "x");
    }
}
