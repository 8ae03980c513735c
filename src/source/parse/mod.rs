//! Pure text parsers for what the kernel and ipvsadm print. They never panic: bad input gives a
//! `ParseError` naming the file and the line.

use std::fmt;

mod conn;
mod connsum;
mod daemon;
mod ipvs;
mod ipvsadm;
mod net;
mod proc;
mod text;

pub(crate) use conn::cores;
pub use conn::{ConnReadError, MAX_TABLE_BYTES, sum_ip_vs_conn};
pub use connsum::{CONN_SUMMARY_AWK, conn_summary};
pub use daemon::ipvsadm_daemon;
pub use ipvs::{ASSUMED_KERNEL_HZ, ip_vs, ip_vs_service_key, ip_vs_stats, ip_vs_with_hz};
pub use ipvsadm::{
    IpvsadmListing, IpvsadmReal, IpvsadmRealColumns, IpvsadmService, IpvsadmServiceColumns,
    IpvsadmView, ipvsadm_list, merge_ipvsadm, overlay_views,
};
pub use net::{fib_trie_local, if_inet6, local_addrs, net_route, netconf, router_sysctl};
pub use proc::{loadavg, meminfo, proc_stat, uptime};

/// A parse failure: which input, which line (1-based; 0 when the input as a whole is wrong), what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub input: &'static str,
    pub line: usize,
    pub message: String,
}

impl ParseError {
    pub fn new(input: &'static str, line: usize, message: impl Into<String>) -> Self {
        Self {
            input,
            line,
            message: message.into(),
        }
    }

    /// The error with the path actually read in place of the input's usual name (a snapshot's
    /// file under `--proc-root` is not `/proc/...`).
    pub fn at(&self, path: &std::path::Path) -> String {
        if self.line == 0 {
            format!("{}: {}", path.display(), self.message)
        } else {
            format!("{} line {}: {}", path.display(), self.line, self.message)
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.input, self.message)
        } else {
            write!(f, "{} line {}: {}", self.input, self.line, self.message)
        }
    }
}
