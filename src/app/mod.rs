//! Application state: one place where state changes, driven by actions and source events.

pub mod action;
