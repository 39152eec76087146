//! The query wing, in the order a query runs through it: `catalog` opens the lake as
//! DataFusion tables and registers the views of `queries/views/*.sql` (with `computed_view`
//! for the ones computed in Rust, and the derived tables that `derive` builds and keeps in the
//! lake); `sql`
//! runs read-only statements over that catalog; `report` loads the named reports of
//! `queries/reports/*.sql` that `sql` runs; `crate::render` writes the results. `header` reads
//! the comment header that views and reports share. Detections (`detect/`), triage (`triage`)
//! and the compliance report belong here too, each a folder or file of its own that runs
//! catalogued SQL with bound parameters.
//!
//! It takes plain types and returns [`crate::error::QueryError`]; the command line (flags,
//! output destination, exit codes) is the binary's.

pub mod catalog;
pub mod compliance;
pub mod computed_view;
pub mod derive;
pub mod detect;
mod header;
mod known_files;
pub mod materialized;
pub mod report;
pub mod sql;
pub mod stored;
pub mod triage;
