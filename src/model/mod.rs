//! The data model: raw samples, derived snapshots, alerts and history.

pub mod sample;
