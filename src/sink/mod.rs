//! Sink: where rows end up. `lake` owns the folder layout and its lock, `partition` buffers rows
//! per Hive partition, `parquet` writes and atomically publishes files, `dedup` keeps each
//! (event_id, recipient_account_id) once, `manifest` remembers which inputs are done, and
//! `rejected` keeps the records that could not become rows; `remote` puts the lake on S3.

pub mod dedup;
pub mod lake;
pub mod manifest;
pub mod parquet;
pub mod partition;
pub mod rejected;
pub mod remote;
