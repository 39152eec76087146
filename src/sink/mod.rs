//! Sink: where rows end up. `lake` owns the folder layout and its lock, `partition` buffers rows
//! per Hive partition, `parquet` writes and atomically publishes files, `dedup` keeps each
//! (event_id, recipient_account_id) once, `manifest` remembers which inputs are done, and
//! `rejected` keeps the records that could not become rows; `remote` puts the lake on S3.
//! `record_sink` takes one file's records through scope, dedup and into the partitions.

pub mod dedup;
pub mod lake;
pub mod manifest;
pub mod parquet;
pub mod partition;
pub mod record_sink;
pub mod rejected;
pub mod remote;
