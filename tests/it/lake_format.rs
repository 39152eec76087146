//! The lake's files as other readers see them: no embedded Arrow schema (`ARROW:schema`, which
//! would say `Utf8View`, a type that readers predating string views refuse), and DataFusion
//! reading back exactly the types sts-audit wrote, from the Parquet schema alone.

use std::path::Path;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
use parquet::file::reader::{FileReader, SerializedFileReader};
use sts_audit::lake::schema;

use crate::util::*;

/// The key-value metadata keys of a Parquet file's footer.
fn metadata_keys(path: &Path) -> Vec<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|pairs| pairs.iter().map(|pair| pair.key.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn event_files_carry_no_arrow_schema() {
    let lake = sample_lake();
    let files = lake_files(lake.path());
    assert!(files.len() >= 2, "{files:?}");
    for file in &files {
        let keys = metadata_keys(file);
        assert!(
            !keys.iter().any(|key| key == "ARROW:schema"),
            "{} embeds an Arrow schema: {keys:?}",
            file.display()
        );
    }
}

/// The derived tables are read by other engines too (docs/interop.md). (Findings and
/// verdicts hold plain `Utf8`, which every reader knows: their embedded schema is harmless.)
#[test]
fn derived_files_carry_no_arrow_schema() {
    let lake = sample_lake();
    let output = bin()
        .args(["derive", "--lake"])
        .arg(lake.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let derived = parquet_files_under(&lake.path().join("derived"));
    assert!(derived.len() >= 3, "{derived:?}");
    for file in &derived {
        let keys = metadata_keys(file);
        assert!(
            !keys.iter().any(|key| key == "ARROW:schema"),
            "{} embeds an Arrow schema: {keys:?}",
            file.display()
        );
    }
}

/// The schema DataFusion infers from one file by itself (no table schema given).
fn inferred_schema(file: &Path) -> arrow::datatypes::Schema {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ctx = SessionContext::new();
        let options = ParquetReadOptions::default();
        ctx.register_parquet("t", file.to_str().unwrap(), options)
            .await
            .unwrap();
        let table = ctx.table("t").await.unwrap();
        table.schema().as_arrow().clone()
    })
}

#[test]
fn datafusion_reads_back_the_types_written() {
    let lake = sample_lake();
    // Without the embedded schema, text comes back as DataFusion's string views, timestamps
    // as microseconds in UTC, and required columns as required: what the writer was given.
    let written = schema::schema();
    for file in lake_files(lake.path()) {
        let read = inferred_schema(&file);
        assert_eq!(read.fields().len(), written.fields().len());
        for (read, written) in read.fields().iter().zip(written.fields()) {
            assert_eq!(read, written, "{}", file.display());
        }
    }
}
