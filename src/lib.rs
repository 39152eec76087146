//! sts-audit: who assumed which IAM roles, from which source IPs, for how long, from CloudTrail logs.
//!
//! The code follows the data:
//!
//! ```text
//! source (local walk | S3 listing + concurrent fetch)  ->  decode (gzip -> JSON -> typed record,
//!   STS fields)  ->  batch (Arrow builders)  ->  sink (partitioned Parquet + manifest + dedup
//!   index, on disk or uploaded to S3)
//! ```
//!
//! ```text
//! catalog (DataFusion over the lake + queries/views)  ->  sql (read-only)  ->  report  ->  render
//! ```
//!
//! `lake` is what both lines share: where the lake is, its folder names, the `events` schema,
//! its partitions and the derived tables' layout; it imports neither line.
//! `aws` holds the AWS access (credentials, region, endpoint) that both S3 ends share.
//! `ingest` orchestrates the first stages, `query` the last (its module docs give the order);
//! `plan` validates what a run is asked to do. `rebuild` is the inverse of `decode` + `batch`
//! and proves that nothing but the live session token is lost on the way into the lake.
//!
//! The command line (clap) and the commands are the binary's (`src/cli.rs`, `src/commands/`):
//! this library takes plain types and returns the typed errors of `error`.

pub mod aws;
pub mod batch;
pub mod check;
pub mod decode;
pub mod error;
pub mod ingest;
pub mod lake;
pub mod plan;
pub mod query;
pub mod rebuild;
pub mod render;
pub mod sink;
pub mod source;
pub mod verify;
