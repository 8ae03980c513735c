//! The JSON snapshot (`--once --json`, replay export): schema 1, documented in `docs/json.md`.
//! Field names are a public contract; add fields, never rename them.
//!
//! `write_snapshot` writes it, straight from the state into a reused buffer (`json.rs`). The same
//! snapshot as serde values lives with the tests (`tests/support/serde_snapshot.rs`): the
//! reference the writer is tested against byte for byte, and the benchmark's alternative.
//! `export` plays a recording out as JSON lines or CSV; `html` makes the report page of one
//! (`lbtop report`).

pub mod export;
pub mod html;
mod json;

pub use json::write_snapshot;

pub const SCHEMA: u32 = 1;
