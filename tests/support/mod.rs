//! Shared pieces of the integration tests.
pub mod bin;
pub mod bounded;
pub mod json;
pub mod lab;
pub mod prometheus;
pub mod serde_snapshot;
pub mod sshd;
pub mod tmux;
pub mod watch;
