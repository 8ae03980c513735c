//! lbtop: a terminal dashboard for Linux IPVS/LVS clusters.

pub mod app;
pub mod config;
pub mod model;
pub mod source;
