//! lbtop: a terminal dashboard for Linux IPVS/LVS clusters.
//!
//! Data flows one way: sources produce raw samples, `app::State` derives and keeps what is shown,
//! `ui` draws it. See ARCHITECTURE in the repository's shared docs.

pub mod app;
pub mod cli;
pub mod model;
pub mod report;
pub mod runtime;
pub mod source;
pub mod ui;
