//! Shared pieces of the integration tests.
pub mod lab;
pub mod sshd;
pub mod watch;
