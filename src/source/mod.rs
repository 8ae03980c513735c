//! Sources: tasks that read the router and the nodes and send raw samples. They know nothing of the UI.

use std::path::PathBuf;

pub mod agent;
pub mod budget;
pub mod local;
pub mod netlink;
pub mod parse;
pub(crate) mod poller;
pub mod prometheus;
pub mod remote;
pub mod spec;
pub mod ssh;

/// Why a source could not produce a sample. Each message names the place.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    /// A file that does not parse, named by the path read (a snapshot's under `--proc-root`).
    #[error("{}", source.at(path))]
    ParseFile {
        path: PathBuf,
        source: parse::ParseError,
    },
    /// Not a regular file, too large, or unreadable (see [`crate::fsutil`]).
    #[error(transparent)]
    File(#[from] crate::fsutil::FileError),
    #[error("IPVS is not available: modprobe ip_vs")]
    IpvsAbsent,
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
}
