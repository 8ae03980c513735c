//! `[[node]]` mappings from the config file: address blocks to SSH hosts, for `--nodes auto`.

use std::net::IpAddr;
use std::str::FromStr;

use crate::source::spec::NodeMapping;
use crate::source::ssh::HostSpec;

/// An address block of a `[[node]]` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block (10.0.0.0/24)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        fn bits(a: IpAddr) -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        }
        let ((n, w1), (a, w2)) = (bits(self.net), bits(addr));
        if w1 != w2 {
            return false;
        }
        let shift = w1 - u32::from(self.prefix);
        shift >= w1 || (n >> shift) == (a >> shift)
    }
}

/// `[[node]]` mappings from the config file, checked.
#[derive(Debug, Clone, Default)]
pub struct NodeMap {
    entries: Vec<(Cidr, HostSpec)>,
}

impl NodeMap {
    pub fn new(mappings: &[NodeMapping]) -> Result<NodeMap, String> {
        let mut entries = Vec::new();
        for m in mappings {
            let cidr: Cidr = m
                .match_
                .parse()
                .map_err(|e| format!("[[node]] match: {e}"))?;
            let host = HostSpec::parse(&m.host).map_err(|e| format!("[[node]] host: {e}"))?;
            entries.push((cidr, host));
        }
        Ok(NodeMap { entries })
    }

    /// The first mapping whose block holds `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<&HostSpec> {
        self.entries
            .iter()
            .find(|(c, _)| c.contains(addr))
            .map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let c: Cidr = "10.0.0.0/24".parse().expect("cidr");
        assert!(c.contains("10.0.0.77".parse().expect("ip")));
        assert!(!c.contains("10.0.1.1".parse().expect("ip")));
        assert!(!c.contains("fd00::1".parse().expect("ip")));
        let one: Cidr = "fd77::11".parse().expect("cidr");
        assert!(one.contains("fd77::11".parse().expect("ip")));
        assert!(!one.contains("fd77::12".parse().expect("ip")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("web1".parse::<Cidr>().is_err());
    }
}
