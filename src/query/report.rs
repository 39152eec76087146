//! Reports: one `.sql` file each under `queries/reports/`, with a comment header (the grammar
//! of `header`, shared with the views) that names and describes it. The built-in ones are compiled in; `--queries DIR` adds (or overrides) reports
//! from a folder of the same kind of files, so an analyst extends the tool without rebuilding.
//!
//! ```sql
//! -- name: role-assumptions
//! -- title: Who assumed which roles
//! -- description: Each principal and the roles it assumed ...
//! --   (continued on indented comment lines)
//! SELECT ...
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use super::header;
use crate::error::QueryError;

/// The reports `analyze` prints, in order.
pub const CORE_REPORTS: &[&str] = &[
    "role-assumptions",
    "cross-account",
    "role-chains",
    "session-durations",
    "denied-assumptions",
];

const BUILT_IN: &[(&str, &str)] = &[
    (
        "role-assumptions.sql",
        include_str!("../../queries/reports/role-assumptions.sql"),
    ),
    (
        "source-ips.sql",
        include_str!("../../queries/reports/source-ips.sql"),
    ),
    (
        "session-durations.sql",
        include_str!("../../queries/reports/session-durations.sql"),
    ),
    (
        "cross-account.sql",
        include_str!("../../queries/reports/cross-account.sql"),
    ),
    (
        "role-chains.sql",
        include_str!("../../queries/reports/role-chains.sql"),
    ),
    (
        "denied-assumptions.sql",
        include_str!("../../queries/reports/denied-assumptions.sql"),
    ),
];

/// One report: its header and its SQL (the whole file; the header is comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub name: String,
    pub title: String,
    pub description: String,
    pub sql: String,
    /// Where it came from: `built-in` or the file's path.
    pub origin: String,
}

/// The report called `name` among `reports`.
pub fn find<'a>(
    reports: &'a BTreeMap<String, Report>,
    name: &str,
) -> Result<&'a Report, QueryError> {
    reports.get(name).ok_or_else(|| QueryError::UnknownReport {
        name: name.to_owned(),
    })
}

/// Reads the comment header of a report file (`header` has the grammar). `file_name` gives
/// the default name.
pub fn parse(file_name: &str, sql: &str, origin: &str) -> Result<Report, String> {
    let mut fields = header::parse(sql).fields;
    let default_name = file_name.strip_suffix(".sql").unwrap_or(file_name);
    let name = fields
        .remove("name")
        .unwrap_or_else(|| default_name.to_owned());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "report name {name:?} must be letters, digits, - or _"
        ));
    }
    Ok(Report {
        title: fields.remove("title").unwrap_or_else(|| name.clone()),
        description: fields.remove("description").unwrap_or_default(),
        name,
        sql: sql.to_owned(),
        origin: origin.to_owned(),
    })
}

/// The built-in reports, then those of `extra_dir` (a file with the same name replaces one).
pub fn load(extra_dir: Option<&Path>) -> Result<BTreeMap<String, Report>, QueryError> {
    let mut reports = BTreeMap::new();
    for (file_name, sql) in BUILT_IN {
        let report =
            parse(file_name, sql, "built-in").map_err(|reason| QueryError::ReportFile {
                path: Path::new("queries/reports").join(file_name),
                reason,
            })?;
        reports.insert(report.name.clone(), report);
    }
    if let Some(dir) = extra_dir {
        for report in load_dir(dir)? {
            reports.insert(report.name.clone(), report);
        }
    }
    Ok(reports)
}

/// Every `*.sql` file of `dir` (or of `dir/reports` when that exists), sorted by name.
fn load_dir(dir: &Path) -> Result<Vec<Report>, QueryError> {
    let nested = dir.join("reports");
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_owned()
    };
    let io_error = |source| QueryError::Io {
        path: dir.clone(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map_err(io_error)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let sql = std::fs::read_to_string(path).map_err(|source| QueryError::Io {
                path: path.clone(),
                source,
            })?;
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            parse(file_name, &sql, &path.display().to_string()).map_err(|reason| {
                QueryError::ReportFile {
                    path: path.clone(),
                    reason,
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_and_continuations() {
        let sql = "-- name: demo\n-- title: A demo\n-- description: first line\n--   second line\nSELECT 1 -- name: not a header\n";
        let report = parse("file.sql", sql, "test").unwrap();
        assert_eq!(report.name, "demo");
        assert_eq!(report.title, "A demo");
        assert_eq!(report.description, "first line second line");
    }

    #[test]
    fn name_defaults_to_file_and_is_validated() {
        assert_eq!(parse("x-y.sql", "SELECT 1", "t").unwrap().name, "x-y");
        assert!(parse("bad.sql", "-- name: ../etc\nSELECT 1", "t").is_err());
    }

    #[test]
    fn every_built_in_report_has_a_header() {
        let reports = load(None).unwrap();
        assert_eq!(reports.len(), BUILT_IN.len());
        for report in reports.values() {
            assert!(!report.description.is_empty(), "{}", report.name);
        }
        for core in CORE_REPORTS {
            assert!(reports.contains_key(*core), "{core}");
        }
    }
}
