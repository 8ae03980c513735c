//! The data model: raw samples, derived snapshots, alerts and history.

pub mod alert;
pub(crate) mod delta;
pub mod dr;
pub mod history;
pub mod pair;
pub mod sample;
pub mod snapshot;
pub mod text;
pub mod time;
