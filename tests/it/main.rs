//! Integration tests: the real binary on real files, checked against independent counts.
//! One test binary (faster to link); `util` is the shared harness.

// The harness's helpers are not `#[test]` functions, but a failed unwrap there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod caller_sources;
mod completions;
mod compliance;
mod crash;
mod derived;
mod detect;
mod generated;
mod incremental;
mod interop;
mod lake_format;
mod lake_safety;
mod limits;
mod lossless;
mod materialized;
mod query;
mod query_limits;
mod real_logs;
mod reruns;
mod s3;
mod sample_logs;
mod secrets;
mod util;
mod verify;
