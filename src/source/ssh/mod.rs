//! SSH to the router and the nodes, as OpenSSH users expect it: ssh_config and `-o` options,
//! known_hosts, the agent and key files, jump hosts, and one connection per host kept open.
//!
//! Nothing here knows what is read over the connection; that is `source::remote`.

pub mod config;
pub mod connection;
pub mod hosts;
pub mod jump;
pub mod known_hosts;
pub mod session;

use std::time::Duration;

use crate::model::sample::HostStatus;

pub use config::{ResolvedHost, SshArgs, SshConfigError, SshSettings, StrictHostKeyChecking};
pub use connection::{Connection, ExecOutput, SshContext};
pub use hosts::{HostSpec, HostsError};
pub use session::RemoteProgram;

/// Timeouts and limits of the SSH sources. `ConnectTimeout`, `ServerAliveInterval` and
/// `ServerAliveCountMax` from the ssh config override the first three per host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshTuning {
    /// TCP connect, SSH handshake, host key check and authentication together.
    pub connect_timeout: Duration,
    /// How long one node poll (one exec and its whole reply) may take.
    pub poll_timeout: Duration,
    /// How long one router poll may take: it runs ipvsadm five times (through sudo when not
    /// root) and awk over the whole connection table, which takes seconds on a busy router.
    pub router_poll_timeout: Duration,
    /// A keepalive goes out after this long without a word from the server.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives before the connection counts as lost.
    pub keepalive_max: usize,
    /// The first wait before reconnecting; it doubles (with ±25 % jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The largest reply accepted from one poll.
    pub max_reply_bytes: usize,
}

impl SshTuning {
    /// Defaults for polling every `interval`: node polls may take two intervals (at least 5 s),
    /// router polls three (at least 15 s).
    pub fn for_interval(interval: Duration) -> SshTuning {
        SshTuning {
            connect_timeout: Duration::from_secs(10),
            poll_timeout: (interval * 2).max(Duration::from_secs(5)),
            router_poll_timeout: (interval * 3).max(Duration::from_secs(15)),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_reply_bytes: 8 << 20,
        }
    }
}

impl Default for SshTuning {
    fn default() -> SshTuning {
        SshTuning::for_interval(Duration::from_secs(1))
    }
}

/// Why a host could not be watched. The message is for the operator; [`SshError::status`] says
/// which status the host shows.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// No TCP connection, no answer in time, or the connection was lost.
    #[error("{0}")]
    Unreachable(String),
    #[error(
        "host key unknown: {key_type} key {fingerprint} for {name}{}; not in {files} — check it, \
         then add it (ssh-keyscan) or run with -o StrictHostKeyChecking=accept-new",
        other_types_note(other_types)
    )]
    HostKeyUnknown {
        name: String,
        key_type: String,
        fingerprint: String,
        files: String,
        other_types: Vec<String>,
    },
    #[error(
        "HOST KEY CHANGED for {name}: the server sent {key_type} key {fingerprint}, which does not \
         match {}:{line}{}; refusing to connect (possible man-in-the-middle). If the change is \
         expected, remove the old key (ssh-keygen -R)",
        path.display(),
        if *revoked { " (marked @revoked)" } else { "" }
    )]
    HostKeyChanged {
        name: String,
        key_type: String,
        fingerprint: String,
        path: std::path::PathBuf,
        line: usize,
        revoked: bool,
    },
    #[error("cannot record the host key in {}: {message}", path.display())]
    KnownHostsWrite {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("authentication failed for {user}: {detail}")]
    AuthFailed { user: String, detail: String },
    #[error("via jump host {via}: {source}")]
    Jump {
        via: String,
        #[source]
        source: Box<SshError>,
    },
    #[error(transparent)]
    Config(#[from] SshConfigError),
    #[error("ssh: {0}")]
    Protocol(russh::Error),
    /// The host answered, but not with what was asked for.
    #[error("{0}")]
    Reply(String),
}

fn other_types_note(types: &[String]) -> String {
    if types.is_empty() {
        String::new()
    } else {
        format!(" (a key of another type is known: {})", types.join(", "))
    }
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> SshError {
        use russh::Error as E;
        match e {
            E::IO(io) => SshError::Unreachable(io_message(&io)),
            E::Disconnect | E::HUP | E::SendError | E::RecvError => {
                SshError::Unreachable("connection closed by the host".into())
            }
            E::KeepaliveTimeout => {
                SshError::Unreachable("no answer to keepalives; connection lost".into())
            }
            E::ConnectionTimeout | E::InactivityTimeout | E::Elapsed(_) => {
                SshError::Unreachable("connection timed out".into())
            }
            other => SshError::Protocol(other),
        }
    }
}

/// An I/O error as a short operator message: `connection refused`, `no route to host`, ….
pub(crate) fn io_message(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => "connection reset by the host".into(),
        K::ConnectionAborted => "connection aborted".into(),
        K::TimedOut => "connection timed out".into(),
        K::UnexpectedEof | K::BrokenPipe => "connection closed by the host".into(),
        K::HostUnreachable => "no route to host".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        _ => e.to_string(),
    }
}

impl SshError {
    /// The status a host with this error shows.
    pub fn status(&self) -> HostStatus {
        match self {
            SshError::Unreachable(_) => HostStatus::Unreachable,
            SshError::HostKeyUnknown { .. } => HostStatus::HostKeyUnknown,
            SshError::HostKeyChanged { .. } => HostStatus::HostKeyChanged,
            SshError::AuthFailed { .. } => HostStatus::AuthFailed,
            SshError::Jump { source, .. } => source.status(),
            SshError::KnownHostsWrite { .. }
            | SshError::Config(_)
            | SshError::Protocol(_)
            | SshError::Reply(_) => HostStatus::Error,
        }
    }

    /// Whether the connection is unusable after this error (then it is dropped and made anew).
    pub(crate) fn loses_connection(&self) -> bool {
        !matches!(self, SshError::Reply(_))
    }
}
