//! `[[node]]` mappings from the config file: address blocks to SSH hosts, for `--nodes auto`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::source::spec::NodeMapping;
use crate::source::ssh::HostSpec;

/// An address block of a `[[node]]` mapping.
pub type Cidr = IpNet;

/// A `[[node]]` block as written: `10.0.0.0/24`, or one address (`fd77::11`).
pub fn parse_block(s: &str) -> Result<Cidr, String> {
    let t = s.trim();
    if let Ok(addr) = t.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    t.parse::<IpNet>().map_err(|_| match t.split_once('/') {
        Some((a, _)) if a.trim().parse::<IpAddr>().is_ok() => {
            let max = if a.contains(':') { 128 } else { 32 };
            format!("{s:?}: the prefix length must be 0 to {max}")
        }
        _ => format!("{s:?} is not an address or CIDR block (10.0.0.0/24)"),
    })
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
            let cidr = parse_block(&m.match_).map_err(|e| format!("[[node]] match: {e}"))?;
            let host = HostSpec::parse(&m.host).map_err(|e| format!("[[node]] host: {e}"))?;
            entries.push((cidr, host));
        }
        Ok(NodeMap { entries })
    }

    /// The first mapping whose block holds `addr`.
    pub(crate) fn lookup(&self, addr: IpAddr) -> Option<&HostSpec> {
        self.entries
            .iter()
            .find(|(c, _)| c.contains(&addr))
            .map(|(_, h)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let c = parse_block("10.0.0.0/24").expect("cidr");
        assert!(c.contains(&"10.0.0.77".parse::<IpAddr>().expect("ip")));
        assert!(!c.contains(&"10.0.1.1".parse::<IpAddr>().expect("ip")));
        assert!(!c.contains(&"fd00::1".parse::<IpAddr>().expect("ip")));
        let one = parse_block("fd77::11").expect("cidr");
        assert!(one.contains(&"fd77::11".parse::<IpAddr>().expect("ip")));
        assert!(!one.contains(&"fd77::12".parse::<IpAddr>().expect("ip")));
        let all = parse_block("0.0.0.0/0").expect("cidr");
        assert!(all.contains(&"192.0.2.1".parse::<IpAddr>().expect("ip")));
        assert!(
            parse_block("10.0.0.0/33")
                .expect_err("prefix")
                .contains("0 to 32")
        );
        assert!(
            parse_block("fd00::/129")
                .expect_err("prefix")
                .contains("0 to 128")
        );
        assert!(
            parse_block(" 10.1.0.0/16 ")
                .expect("spaces")
                .contains(&"10.1.2.3".parse::<IpAddr>().expect("ip"))
        );
        assert!(
            parse_block("web1")
                .expect_err("name")
                .contains("not an address")
        );
    }
}
