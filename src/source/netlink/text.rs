//! The kernel's text table, `/proc/net/ip_vs`, as a cheap check for another tool's edits.
//!
//! IPVS has no dump of every real server at once: reading them all over netlink is one GET_DEST
//! dump per service, some 150 ms of the router's CPU for 1,000 services under emulation. The text
//! table shows every service's scheduler and persistence, and every real server's address,
//! forwarding method, weight, active and inactive connections, in one read (about 20 ms there).
//! A check compares each service's lines with those of the check before; a carried dump stands
//! confirmed only where its service's lines are in both reads and equal, and the dump was taken
//! before the earlier read (or just after it, in the same poll): an edit undone between two
//! checks leaves the text equal, and a dump taken in between may show the edit. Every other
//! dump is taken again. What the text does not show (thresholds, tunnel settings, most service
//! flags) is left to a slower full refresh.
//!
//! Only hashes are kept and compared, and each service's first line is parsed once, when it is
//! first seen, to name the service. The text comes from the kernel of the router being read; a
//! line lbtop cannot parse names no service, and a dump its service is not found for is taken
//! again.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use super::parse::{AF_INET6, ServiceIdentity};
use crate::model::sample::{AddressFamily, Protocol, ServiceKey, SocketText};

/// One service's lines, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    /// The service line: scheduler and persistence.
    line: u64,
    /// The service line and each of its real servers' lines.
    whole: u64,
}

/// `/proc/net/ip_vs` reduced to a hash of each service's lines, keyed by a hash of the service's
/// protocol and address words, and the services those words name.
#[derive(Debug, Default)]
pub(super) struct TextTable {
    blocks: FxHashMap<u64, Block>,
    /// Which block each service's dump is checked against: both families of a firewall mark
    /// (the text does not say which) share one.
    names: FxHashMap<ServiceIdentity, u64>,
}

/// A service's name for a log line: `tcp:10.0.0.1:80`, `fwm:42`.
pub(super) fn name(id: &ServiceIdentity) -> String {
    if let Some(mark) = id.fwmark {
        return format!("fwm:{mark}");
    }
    let a = id.addr;
    let address: std::net::IpAddr = if id.af == AF_INET6 {
        std::net::Ipv6Addr::from(a).into()
    } else {
        std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3]).into()
    };
    let protocol = Protocol::from_ipproto(id.protocol).map_or("ip", Protocol::as_str);
    format!("{protocol}:{}", SocketText(address, id.port))
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// The service line's protocol and address words (`TCP  0A000001:0050`, `FWM  0000002A`).
fn key_words(line: &[u8]) -> &[u8] {
    let mut words = 0;
    let mut in_word = false;
    for (i, b) in line.iter().enumerate() {
        let space = b.is_ascii_whitespace();
        if in_word && space {
            words += 1;
            if words == 2 {
                return &line[..i];
            }
        }
        in_word = !space;
    }
    line
}

/// The identities a service line names: a firewall mark's of both families.
fn identities(line: &[u8]) -> Vec<ServiceIdentity> {
    let key = std::str::from_utf8(line)
        .ok()
        .and_then(crate::source::parse::ip_vs_service_key);
    match key {
        Some(ServiceKey::Fwmark { mark, .. }) => [AddressFamily::Inet, AddressFamily::Inet6]
            .map(|family| ServiceIdentity::of(&ServiceKey::Fwmark { mark, family }))
            .to_vec(),
        Some(k) => vec![ServiceIdentity::of(&k)],
        None => Vec::new(),
    }
}

impl TextTable {
    /// Hashes `text`, the whole of `/proc/net/ip_vs`; the names of services already in `before`
    /// (the check before) are taken from it rather than parsed again.
    pub(super) fn read(text: &[u8], before: Option<&TextTable>) -> Self {
        let mut blocks: FxHashMap<u64, Block> = FxHashMap::default();
        // Service lines whose words `before` does not know, to be named below.
        let mut unnamed: Vec<(u64, &[u8])> = Vec::new();
        // The block being read: its key, and its hashes so far.
        let mut open: Option<(u64, u64, FxHasher)> = None;
        let mut close = |open: &mut Option<(u64, u64, FxHasher)>| {
            if let Some((key, line, whole)) = open.take() {
                // Firewall-mark services of both families share their first words (and a read
                // torn by a concurrent edit may repeat a service); their blocks are added up, so
                // a change in either shows.
                let b = blocks.entry(key).or_insert(Block { line: 0, whole: 0 });
                b.line = b.line.wrapping_add(line);
                b.whole = b.whole.wrapping_add(whole.finish());
            }
        };
        for line in text.split(|b| *b == b'\n') {
            if line.is_empty()
                || line.starts_with(b"IP Virtual Server")
                || line.starts_with(b"Prot ")
            {
                continue;
            }
            if line[0].is_ascii_whitespace() {
                // A real server (or the heading above them, before any service).
                if let Some((_, _, whole)) = open.as_mut() {
                    whole.write(line);
                    whole.write_u8(b'\n');
                }
                continue;
            }
            close(&mut open);
            let key = hash(key_words(line));
            if before.is_none_or(|b| !b.blocks.contains_key(&key)) {
                unnamed.push((key, line));
            }
            let mut whole = FxHasher::default();
            whole.write(line);
            whole.write_u8(b'\n');
            open = Some((key, hash(line), whole));
        }
        close(&mut open);
        let mut names: FxHashMap<ServiceIdentity, u64> = FxHashMap::default();
        if let Some(before) = before {
            names.extend(
                before
                    .names
                    .iter()
                    .filter(|(_, key)| blocks.contains_key(key))
                    .map(|(id, key)| (id.clone(), *key)),
            );
        }
        for (key, line) in unnamed {
            names.extend(identities(line).into_iter().map(|id| (id, key)));
        }
        Self { blocks, names }
    }

    /// Whether a service was added or removed, or a service line changed, since `before`.
    pub(super) fn services_changed(&self, before: &TextTable) -> bool {
        self.blocks.len() != before.blocks.len()
            || self
                .blocks
                .iter()
                .any(|(key, b)| before.blocks.get(key).is_none_or(|o| o.line != b.line))
    }

    /// Whether the service `id`'s lines are in both reads, and the same.
    pub(super) fn unchanged(&self, before: &TextTable, id: &ServiceIdentity) -> bool {
        self.names.get(id).is_some_and(|key| {
            let now = self.blocks.get(key);
            now.is_some() && now == before.blocks.get(key)
        })
    }

    /// The services whose lines differ from `before`'s (added ones included), for a log line.
    pub(super) fn changed_names(&self, before: &TextTable) -> Vec<&ServiceIdentity> {
        let mut out: Vec<&ServiceIdentity> = self
            .names
            .iter()
            .filter(|(_, key)| self.blocks.get(*key) != before.blocks.get(*key))
            .map(|(id, _)| id)
            .collect();
        out.sort_by_key(|id| (id.fwmark, id.port, id.addr));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the kernel writes it (`ip_vs_info_seq_show`), trailing spaces included.
    const TABLE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A4E0001:0050 wlc 
  -> 0A4D0201:1F40      Route   1      0          0         
  -> 0A4D0202:1F40      Route   1      0          0         
TCP  0A4E0002:0050 rr  persistent 75000 FFFFFFFF
  -> 0A4D0201:1F41      Route   1      0          0         
TCP  [fd79:0000:0000:0000:0000:0000:0000:0100]:0050 rr 
  -> [fd77:0000:0000:0000:0000:0000:0000:0013]:0050      Route   1      0          3         
FWM  0000002A rr 
  -> 0A4D0203:0000      Masq    3      0          0         
";

    fn tcp(last: u8) -> ServiceIdentity {
        ServiceIdentity::of(&ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: std::net::Ipv4Addr::new(10, 78, 0, last).into(),
            port: 80,
        })
    }

    fn v6() -> ServiceIdentity {
        ServiceIdentity::of(&ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: "fd79::100".parse().expect("address"),
            port: 80,
        })
    }

    fn mark(family: AddressFamily) -> ServiceIdentity {
        ServiceIdentity::of(&ServiceKey::Fwmark { mark: 42, family })
    }

    fn all() -> [ServiceIdentity; 5] {
        [
            tcp(1),
            tcp(2),
            v6(),
            mark(AddressFamily::Inet),
            mark(AddressFamily::Inet6),
        ]
    }

    /// Which of [`all`] a check of `after` against `before` finds unchanged.
    fn unchanged(before: &str, after: &str) -> Vec<bool> {
        let b = TextTable::read(before.as_bytes(), None);
        let a = TextTable::read(after.as_bytes(), Some(&b));
        all().iter().map(|id| a.unchanged(&b, id)).collect()
    }

    #[test]
    fn the_same_table_is_unchanged_for_every_kind_of_service() {
        assert_eq!(unchanged(TABLE, TABLE), [true; 5]);
        let b = TextTable::read(TABLE.as_bytes(), None);
        assert!(!TextTable::read(TABLE.as_bytes(), Some(&b)).services_changed(&b));
    }

    #[test]
    fn a_weight_a_method_a_connection_count_or_a_real_server_changes_its_service_alone() {
        let line = "  -> 0A4D0202:1F40      Route   1      0          0         ";
        for edit in [
            "  -> 0A4D0202:1F40      Route   0      0          0         ",
            "  -> 0A4D0202:1F40      Tunnel  1      0          0         ",
            "  -> 0A4D0202:1F40      Route   1      0          1         ",
            "  -> 0A4D0204:1F40      Route   1      0          0         ",
        ] {
            let after = TABLE.replace(line, edit);
            assert_eq!(
                unchanged(TABLE, &after),
                [false, true, true, true, true],
                "{edit}"
            );
        }
        let removed = TABLE.replace(&format!("{line}\n"), "");
        assert_eq!(unchanged(TABLE, &removed), [false, true, true, true, true]);
        let conns = TABLE.replace("Route   1      0          3", "Route   1      0          2");
        assert_eq!(unchanged(TABLE, &conns), [true, true, false, true, true]);
        // Both families of the mark: the text does not say which changed.
        let fwm = TABLE.replace("Masq    3", "Masq    4");
        assert_eq!(unchanged(TABLE, &fwm), [true, true, true, false, false]);
        let b = TextTable::read(TABLE.as_bytes(), None);
        let a = TextTable::read(fwm.as_bytes(), Some(&b));
        assert!(!a.services_changed(&b));
        assert_eq!(
            a.changed_names(&b),
            [&mark(AddressFamily::Inet), &mark(AddressFamily::Inet6)]
        );
        assert_eq!(name(&v6()), "tcp:[fd79::100]:80");
        assert_eq!(name(&tcp(1)), "tcp:10.78.0.1:80");
        assert_eq!(name(&mark(AddressFamily::Inet6)), "fwm:42");
    }

    #[test]
    fn a_service_added_removed_or_its_line_changed_changes_the_services() {
        let changed = |after: &str| {
            let b = TextTable::read(TABLE.as_bytes(), None);
            TextTable::read(after.as_bytes(), Some(&b)).services_changed(&b)
        };
        let sched = TABLE.replace("TCP  0A4E0001:0050 wlc", "TCP  0A4E0001:0050 lc");
        assert!(changed(&sched));
        assert_eq!(unchanged(TABLE, &sched), [false, true, true, true, true]);
        assert!(changed(
            &TABLE.replace("persistent 75000", "persistent 1500")
        ));
        let added = format!("{TABLE}UDP  0A4E0003:0035 rr\n");
        assert!(changed(&added));
        // A service missing from either read (removed, or skipped by a read torn by another
        // tool's edit) is not found unchanged.
        let gone = TABLE.replace(
            "TCP  0A4E0002:0050 rr  persistent 75000 FFFFFFFF\n  -> 0A4D0201:1F41      Route   1      0          0         \n",
            "",
        );
        assert!(changed(&gone));
        assert_eq!(unchanged(TABLE, &gone), [true, false, true, true, true]);
        assert_eq!(unchanged(&gone, TABLE), [true, false, true, true, true]);
    }

    #[test]
    fn a_line_that_cannot_be_read_names_no_service() {
        let odd = TABLE.replace("FWM  0000002A rr", "FWM  zz rr");
        assert_eq!(unchanged(&odd, &odd), [true, true, true, false, false]);
    }
}
