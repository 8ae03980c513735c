//! `/proc/stat`, `/proc/loadavg`, `/proc/meminfo`, `/proc/uptime`.

use super::ParseError;
use crate::model::sample::{LoadAvg, MemInfo, ProcStat, Uptime};

pub fn proc_stat(_text: &str) -> Result<ProcStat, ParseError> {
    Err(ParseError::new("/proc/stat", 0, "not implemented"))
}

pub fn loadavg(_text: &str) -> Result<LoadAvg, ParseError> {
    Err(ParseError::new("/proc/loadavg", 0, "not implemented"))
}

pub fn meminfo(_text: &str) -> Result<MemInfo, ParseError> {
    Err(ParseError::new("/proc/meminfo", 0, "not implemented"))
}

pub fn uptime(_text: &str) -> Result<Uptime, ParseError> {
    Err(ParseError::new("/proc/uptime", 0, "not implemented"))
}
