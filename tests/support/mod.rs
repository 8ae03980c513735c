//! Shared pieces of the integration tests.
pub mod sshd;
pub mod watch;
