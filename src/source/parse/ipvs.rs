//! `/proc/net/ip_vs` and `/proc/net/ip_vs_stats` (all numbers in hex).

use super::ParseError;
use crate::model::sample::{IpvsGlobalStats, VirtualServiceSample};

pub fn ip_vs(_text: &str) -> Result<Vec<VirtualServiceSample>, ParseError> {
    Err(ParseError::new("/proc/net/ip_vs", 0, "not implemented"))
}

pub fn ip_vs_stats(_text: &str) -> Result<IpvsGlobalStats, ParseError> {
    Err(ParseError::new(
        "/proc/net/ip_vs_stats",
        0,
        "not implemented",
    ))
}
