//! Cells as text, and text made safe for each format. Attackers control user agents, session
//! names and error messages, so every value is escaped where it is written: `html` for HTML and
//! SVG, `markdown_cell` for Markdown tables.

use std::fmt::Write;

use serde_json::Value;

use crate::render::visible;

/// A cell as plain text: null empty, lists joined with `, `, control characters escaped.
pub fn plain(value: &Value) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Object(_) => value.to_string(),
    };
    visible(&text).into_owned()
}

/// `text` escaped for HTML text and attribute values (and SVG, which is XML).
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as a Markdown table cell: the characters Markdown or a table would read escaped with
/// a backslash (`|` would end the cell, `<` start HTML, backticks code), line breaks as spaces,
/// and a leading `=`, `+`, `-` or `@` escaped too, so a spreadsheet the table is pasted into
/// does not read it as a formula.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for (at, c) in text.chars().enumerate() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '=' | '+' | '-' | '@' if at == 0 => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `n` with thousands separators: 1,234,567.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (at, digit) in digits.chars().enumerate() {
        if at > 0 && (digits.len() - at).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    match n < 0 {
        true => format!("-{out}"),
        false => out,
    }
}

/// Seconds as people read a duration: `45 s`, `15 min`, `1 h 30 min`, `12 h`.
pub fn duration(seconds: i64) -> String {
    let mut out = String::new();
    match seconds {
        s if s < 60 => {
            let _ = write!(out, "{s} s");
        }
        s if s < 3600 => {
            let _ = write!(out, "{} min", s / 60);
        }
        s => {
            let _ = write!(out, "{} h", s / 3600);
            if s % 3600 >= 60 {
                let _ = write!(out, " {} min", (s % 3600) / 60);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        let hostile = "<script>alert('x')</script>\"&";
        assert_eq!(
            html(hostile),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;"
        );
    }

    #[test]
    fn markdown_cells_cannot_break_the_table_or_start_a_formula() {
        assert_eq!(markdown_cell("a|b`c<d>"), "a\\|b\\`c\\<d\\>");
        assert_eq!(markdown_cell("=HYPERLINK(1)"), "\\=HYPERLINK(1)");
        assert_eq!(markdown_cell("-x\ny"), "\\-x y");
        assert_eq!(markdown_cell("a-b"), "a-b");
    }

    #[test]
    fn counts_and_durations() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(900), "15 min");
        assert_eq!(duration(5400), "1 h 30 min");
        assert_eq!(duration(43200), "12 h");
        assert_eq!(duration(7), "7 s");
    }

    #[test]
    fn plain_cells() {
        assert_eq!(plain(&serde_json::json!(["a", "b"])), "a, b");
        assert_eq!(plain(&Value::Null), "");
        assert_eq!(plain(&serde_json::json!("bell\u{7}")), "bell\\u{7}");
    }
}
