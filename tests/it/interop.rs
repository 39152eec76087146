//! Other engines read the lake as sts-audit does: DuckDB, pyarrow and Spark (PySpark, local
//! mode) each read the events and the derived tables of a generated lake, and their row counts,
//! column profiles and a sample of typed values must equal what `sts-audit sql` returns. Every
//! snippet of the README and `docs/` runs here too (`docs/interop.md`). The engines come from
//! `scripts/install-interop-tools.sh`; the test fails, never skips, when they cannot be had.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::util::*;

const ENGINES: [&str; 3] = ["duckdb", "pyarrow", "spark"];

/// Where documented snippets name the lake; the test puts its own path there.
const DOC_LAKE: &str = "/data/sts-lake";

/// The bin folder of the interop tools' environment, installed on first use.
fn interop_tools() -> PathBuf {
    let output = Command::new(repo().join("scripts/install-interop-tools.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/install-interop-tools.sh");
    assert!(
        output.status.success(),
        "installing the interop tools failed"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// `sts-audit sql --format json STATEMENT` over `lake`: its rows.
fn sql(lake: &Path, statement: &str) -> Vec<Value> {
    let lake = lake.to_str().unwrap();
    let (code, stdout, stderr) = run(&["sql", "--lake", lake, "--format", "json", statement]);
    assert_eq!(code, 0, "{statement}: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

/// How a column is profiled, from its DataFusion type.
fn kind(data_type: &str) -> &'static str {
    let nested = ["List", "LargeList", "FixedSizeList", "Struct", "Map"]
        .iter()
        .any(|outer| data_type.starts_with(outer));
    match data_type {
        _ if data_type.starts_with("Timestamp") => "time",
        "Boolean" => "bool",
        _ if data_type.starts_with("Int") || data_type.starts_with("UInt") => "int",
        _ if !nested && (data_type.contains("Utf8") || data_type == "Date32") => "text",
        _ => "other",
    }
}

/// The columns of `table` as sts-audit sees them, with their kinds.
fn columns(lake: &Path, table: &str) -> BTreeMap<String, String> {
    let statement = format!(
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_name = '{table}'"
    );
    let columns: BTreeMap<String, String> = sql(lake, &statement)
        .iter()
        .map(|row| {
            let name = row["column_name"].as_str().unwrap().to_owned();
            (name, kind(row["data_type"].as_str().unwrap()).to_owned())
        })
        .collect();
    assert!(!columns.is_empty(), "no columns in {table}");
    columns
}

/// sts-audit's row count and column profile of `table` (what `scripts/lake-readers.py`
/// computes with each engine: see there).
fn profile(lake: &Path, table: &str, columns: &BTreeMap<String, String>) -> Value {
    let mut terms = vec!["count(*)".to_owned()];
    for (name, kind) in columns {
        let c = format!("\"{name}\"");
        terms.push(format!("count({c})"));
        match kind.as_str() {
            "text" => terms.extend([
                format!("min(CAST({c} AS VARCHAR))"),
                format!("max(CAST({c} AS VARCHAR))"),
            ]),
            "bool" => terms.push(format!("count(*) FILTER (WHERE {c})")),
            "int" => terms.push(format!("sum({c})")),
            "time" => terms.extend([
                format!("CAST(min({c}) AS BIGINT)"),
                format!("CAST(max({c}) AS BIGINT)"),
            ]),
            _ => {}
        }
    }
    let select: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, term)| format!("{term} AS t{i}"))
        .collect();
    let rows = sql(lake, &format!("SELECT {} FROM {table}", select.join(", ")));
    let mut values = (0..terms.len()).map(|i| rows[0][format!("t{i}")].clone());
    let row_count = values.next().unwrap();
    let mut profile = serde_json::Map::new();
    for (name, kind) in columns {
        let mut entry = json!({ "count": values.next().unwrap() });
        let fields: &[&str] = match kind.as_str() {
            "text" | "time" => &["min", "max"],
            "bool" => &["true"],
            "int" => &["sum"],
            _ => &[],
        };
        for field in fields {
            entry[field] = values.next().unwrap();
        }
        profile.insert(name.clone(), entry);
    }
    json!({ "rows": row_count, "profile": profile })
}

const SAMPLE_COLUMNS: [&str; 8] = [
    "event_id",
    "account_id",
    "date",
    "event_time",
    "read_only",
    "duration_seconds",
    "role_arn",
    "user_identity",
];

/// The first events by (event_id, account_id), as sts-audit returns them.
fn sample(lake: &Path, limit: usize) -> Vec<Value> {
    let select: Vec<String> = SAMPLE_COLUMNS
        .iter()
        .map(|&c| match c {
            "event_time" => "CAST(event_time AS BIGINT) AS event_time".to_owned(),
            _ => c.to_owned(),
        })
        .collect();
    let statement = format!(
        "SELECT {} FROM events ORDER BY event_id, account_id LIMIT {limit}",
        select.join(", ")
    );
    sql(lake, &statement)
        .iter()
        .map(|row| Value::Array(SAMPLE_COLUMNS.iter().map(|&c| row[c].clone()).collect()))
        .collect()
}

/// One fenced code block of the documentation.
struct Snippet {
    file: String,
    info: String,
    code: String,
}

/// Every fenced block of README.md and docs/*.md, with its info string (`sql duckdb`).
fn doc_snippets() -> Vec<Snippet> {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut snippets = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut open: Option<Snippet> = None;
        for line in text.lines() {
            let fence = line.trim_start().strip_prefix("```");
            match (fence, open.take()) {
                (Some(_), Some(done)) => snippets.push(done),
                (Some(info), None) => {
                    open = Some(Snippet {
                        file: file.file_name().unwrap().to_string_lossy().into_owned(),
                        info: info.trim().to_owned(),
                        code: String::new(),
                    })
                }
                (None, Some(mut block)) => {
                    block.code.push_str(line);
                    block.code.push('\n');
                    open = Some(block);
                }
                (None, None) => {}
            }
        }
        assert!(
            open.is_none(),
            "{}: a code block is not closed",
            file.display()
        );
    }
    snippets
}

/// The snippets marked `info`, with the lake's path in place of the documented one.
fn runnable(info: &str, lake: &Path) -> Vec<String> {
    doc_snippets()
        .into_iter()
        .filter(|s| s.info == info)
        .map(|s| s.code.replace(DOC_LAKE, lake.to_str().unwrap()))
        .collect()
}

/// Runs `scripts/lake-readers.py ENGINE SPEC` in `dir` (where `sts-lake` is the lake).
fn read_with(tools: &Path, engine: &str, spec: &Value, dir: &Path) -> Value {
    let spec_path = dir.join(format!("spec-{engine}.json"));
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let output = Command::new(tools.join("python"))
        .arg(repo().join("scripts/lake-readers.py"))
        .arg(engine)
        .arg(&spec_path)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{engine} failed: {stderr}");
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{engine} printed no JSON ({e}): {stderr}"))
}

/// The tables to compare: `events` and every stored view `derive` keeps (one file per account
/// and day, in `<account>/<date>/` folders that are not Hive partitions: each engine reads
/// the view's folder whole).
fn tables(lake: &Path) -> BTreeMap<String, Value> {
    let mut tables = BTreeMap::new();
    let partitions = json!({ "account_id": "string", "date": "date" });
    let events = json!({ "root": lake.join("events"), "partitions": partitions });
    tables.insert("events".to_owned(), events);
    for name in [
        "assumption_copies",
        "session_usage_daily",
        "caller_sources_daily",
    ] {
        let root = lake.join("derived").join(name);
        assert!(
            !parquet_files_under(&root).is_empty(),
            "no files for {name}"
        );
        let table = json!({ "root": root, "partitions": {} });
        tables.insert(name.to_owned(), table);
    }
    tables
}

#[test]
fn duckdb_pyarrow_and_spark_read_what_sts_audit_reads() {
    let tools = interop_tools();
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    if generate(&logs, 20_000, &["--days", "3"]).is_none() {
        return;
    }
    let lake = dir.path().join("sts-lake");
    let run = ingest(&lake, &[logs.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    derive(&lake);

    let mut tables = tables(&lake);
    let mut expected = serde_json::Map::new();
    for (name, table) in &mut tables {
        let columns = columns(&lake, name);
        expected.insert(name.clone(), profile(&lake, name, &columns));
        table["columns"] = json!(columns);
    }
    let events_rows = expected["events"]["rows"].as_u64().unwrap();
    assert_eq!(events_rows, count(&run, "records_written"));
    let sample_rows = sample(&lake, 40);
    assert_eq!(sample_rows.len(), 40);
    let spec = json!({
        "tables": tables,
        "sample": { "table": "events", "columns": SAMPLE_COLUMNS,
                    "order": ["event_id", "account_id"], "limit": 40 },
    });
    for engine in ENGINES {
        let mut spec = spec.clone();
        if engine != "pyarrow" {
            spec["snippets"] = json!(runnable(&format!("sql {engine}"), &lake));
        }
        let seen = read_with(&tools, engine, &spec, dir.path());
        assert_same_as_sts_audit(engine, &seen, &expected, &sample_rows);
        assert_snippets_ran(engine, &seen);
    }
}

fn assert_same_as_sts_audit(
    engine: &str,
    seen: &Value,
    expected: &serde_json::Map<String, Value>,
    sample: &[Value],
) {
    for (table, want) in expected {
        let got = &seen["tables"][table];
        assert_eq!(got["rows"], want["rows"], "{engine}: rows of {table}");
        let want_profile = want["profile"].as_object().unwrap();
        for (column, want_column) in want_profile {
            assert_eq!(
                &got["profile"][column], want_column,
                "{engine}: {table}.{column}"
            );
        }
    }
    let types = &seen["tables"]["events"]["types"];
    let (text, time) = match engine {
        "duckdb" => ("VARCHAR", "TIMESTAMP WITH TIME ZONE"),
        "pyarrow" => ("string", "timestamp[us, tz=UTC]"),
        _ => ("string", "timestamp"),
    };
    assert_eq!(types["account_id"], text, "{engine}: {types}");
    assert_eq!(types["event_id"], text, "{engine}: {types}");
    assert_eq!(types["event_time"], time, "{engine}: {types}");
    let got: Vec<Value> = seen["sample"].as_array().unwrap().clone();
    assert_eq!(got, sample, "{engine}: the sample of typed values");
}

/// Every documented snippet for the engine ran and returned rows; an `account_id` it returns
/// is text.
fn assert_snippets_ran(engine: &str, seen: &Value) {
    for (i, result) in seen["snippets"].as_array().unwrap().iter().enumerate() {
        assert!(
            result["rows"].as_u64().unwrap() > 0,
            "{engine}: snippet {i} returned no rows"
        );
        if let Some(account) = result["types"].get("account_id") {
            assert!(
                account == "VARCHAR" || account == "string",
                "{engine}: snippet {i} reads account_id as {account}"
            );
        }
    }
}

#[test]
fn documented_python_snippets_run() {
    let tools = interop_tools();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("sts-lake");
    let run = ingest(&lake, &[repo().join("sample-logs").to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    derive(&lake);
    for info in ["python pyarrow", "python pyspark"] {
        let snippets = runnable(info, &lake);
        assert!(!snippets.is_empty(), "no {info} snippet");
        for code in snippets {
            let output = Command::new(tools.join("python"))
                .args(["-c", &code])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{info}:\n{code}\n{stderr}");
            assert!(!stdout.trim().is_empty(), "{info} printed nothing:\n{code}");
        }
    }
}

/// Every SQL or Python block says which engine runs it, and each engine has one.
#[test]
fn every_documented_snippet_names_its_engine() {
    let known = [
        "sql duckdb",
        "sql spark",
        "sql athena",
        "sql trino",
        "python pyarrow",
        "python pyspark",
    ];
    let snippets = doc_snippets();
    for snippet in &snippets {
        let language = snippet.info.split_whitespace().next().unwrap_or_default();
        if language == "sql" || language == "python" {
            assert!(
                known.contains(&snippet.info.as_str()),
                "{}: a block marked `{}` is run by no test:\n{}",
                snippet.file,
                snippet.info,
                snippet.code
            );
        }
    }
    for info in known {
        assert!(
            snippets.iter().any(|s| s.info == info),
            "no `{info}` snippet"
        );
    }
}

/// The DDL of `docs/interop.md` declares every column of `events`, in order, with the type
/// each engine reads it as (Athena and Trino cannot run here: this is their check).
#[test]
fn documented_ddl_declares_every_column() {
    let (code, stdout, stderr) = run(&["schema", "events", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let schema: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    for (engine, types) in [
        ("sql athena", ["timestamp", "string", "boolean", "bigint"]),
        (
            "sql trino",
            ["timestamp(3)", "varchar", "boolean", "bigint"],
        ),
        ("sql spark", ["TIMESTAMP", "STRING", "BOOLEAN", "BIGINT"]),
    ] {
        let ddl = doc_snippets()
            .into_iter()
            .find(|s| s.info == engine && s.code.contains("CREATE"))
            .unwrap_or_else(|| panic!("no {engine} DDL"));
        let declared = declared_columns(&ddl.code);
        let wanted: Vec<(String, String)> = schema
            .iter()
            .map(|column| {
                let name = column["column"].as_str().unwrap();
                let data_type = match column["type"].as_str().unwrap() {
                    "timestamp (UTC)" => types[0],
                    "string" => types[1],
                    "boolean" => types[2],
                    "bigint" => types[3],
                    other => panic!("{name}: a type the DDL check does not know: {other}"),
                };
                (name.to_owned(), data_type.to_owned())
            })
            .filter(|(name, _)| !declared.partitions.contains(name))
            .collect();
        assert_eq!(declared.data, wanted, "{engine}");
        assert_eq!(declared.partitions, ["account_id", "date"], "{engine}");
    }
}

struct Declared {
    data: Vec<(String, String)>,
    partitions: Vec<String>,
}

/// The columns a `CREATE TABLE name ( ... )` declares (`name type` a line), and the partition
/// columns: those after the data columns in Spark and Trino, or in `PARTITIONED BY (...)`.
fn declared_columns(ddl: &str) -> Declared {
    let mut data = Vec::new();
    let mut inside = false;
    for line in ddl.lines() {
        if line.starts_with("CREATE") {
            inside = true;
            continue;
        }
        if inside && line.starts_with(')') {
            break;
        }
        if inside {
            let line = line.trim().trim_end_matches(',');
            let (name, data_type) = line.split_once(char::is_whitespace).unwrap();
            let name = name.trim_matches(|c| c == '`' || c == '"');
            data.push((name.to_owned(), data_type.trim().to_owned()));
        }
    }
    let partitions = match ddl.split_once("PARTITIONED BY (") {
        Some((_, rest)) if rest.contains(" string") => rest
            .split(')')
            .next()
            .unwrap()
            .split(',')
            .map(|c| {
                let name = c.split_whitespace().next().unwrap();
                name.trim_matches(|c| c == '`' || c == '"').to_owned()
            })
            .collect(),
        _ => {
            let tail = data.split_off(data.len() - 2);
            tail.into_iter().map(|(name, _)| name).collect()
        }
    };
    Declared { data, partitions }
}
