//! lbtop: a terminal dashboard for Linux IPVS/LVS clusters.
//!
//! Data flows one way: sources produce raw samples, `app::State` derives and keeps what is shown,
//! `ui` draws it.

pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod fsutil;
pub mod model;
pub mod owner_only;
pub mod record;
pub mod report;
pub mod runtime;
pub mod source;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod ui;
