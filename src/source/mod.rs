//! Sources: tasks that read the router and the nodes and send raw samples. They know nothing of the UI.

use std::path::PathBuf;

pub mod budget;
pub mod local;
pub mod netlink;
pub mod parse;
pub mod poller;
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
    #[error("{}: {what}, not a regular file; not read", path.display())]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{}: larger than {}; not read further", path.display(), bytesize::ByteSize::b(*limit).display().iec())]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("IPVS is not available: modprobe ip_vs")]
    IpvsAbsent,
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
}
