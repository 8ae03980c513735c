//! `/proc/net/ip_vs_conn`, summed into counts without keeping the rows.

use super::ParseError;
use crate::model::sample::ConnSummary;

/// Sums the connection table line by line, so a caller can stream a large file.
#[derive(Debug, Default)]
pub struct ConnSummer {
    top_n: usize,
}

impl ConnSummer {
    pub fn new(top_n: usize) -> Self {
        Self { top_n }
    }

    /// `line_no` is 1-based and only used in errors.
    pub fn feed_line(&mut self, line_no: usize, _line: &str) -> Result<(), ParseError> {
        let _ = self.top_n;
        Err(ParseError::new(
            "/proc/net/ip_vs_conn",
            line_no,
            "not implemented",
        ))
    }

    pub fn finish(self) -> ConnSummary {
        ConnSummary::default()
    }
}

pub fn sum_ip_vs_conn(_text: &str, _top_n: usize) -> Result<ConnSummary, ParseError> {
    Err(ParseError::new(
        "/proc/net/ip_vs_conn",
        0,
        "not implemented",
    ))
}
