//! `ipvsadm -Ln --exact` and its `--stats`, `--rate`, `--thresholds`, `--persistent-conn` views.

use super::ParseError;
use crate::model::sample::VirtualServiceSample;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvsadmView {
    Plain,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IpvsadmListing {
    pub view: IpvsadmView,
}

pub fn ipvsadm_list(_text: &str) -> Result<IpvsadmListing, ParseError> {
    Err(ParseError::new("ipvsadm", 0, "not implemented"))
}

/// Combines the plain listing with any other views of the same table into full samples.
pub fn merge_ipvsadm(
    _plain: &IpvsadmListing,
    _others: &[IpvsadmListing],
) -> Result<Vec<VirtualServiceSample>, ParseError> {
    Err(ParseError::new("ipvsadm", 0, "not implemented"))
}
