//! The kernel's text table, `/proc/net/ip_vs`, as a cheap check for another tool's edits.
//!
//! IPVS has no dump of every real server at once: reading them all over netlink is one GET_DEST
//! dump per service, some 150 ms of the router's CPU for 1,000 services under emulation. The text
//! table shows every service's scheduler and persistence, and every real server's address,
//! forwarding method, weight, active and inactive connections, in one read (about 20 ms there).
//! A read that carries idle services compares it with the text read at the check before: a
//! service whose lines changed is dumped again, and one whose lines stood still keeps its dump.
//! What the text does not show (thresholds, tunnel settings, most service flags) is left to a
//! slower full refresh.
//!
//! Only hashes are kept and compared; no line is parsed except the first line of a service that
//! changed, to name it. The text comes from the kernel of the router being read.

use std::hash::Hasher;

use rustc_hash::{FxHashMap, FxHasher};

use crate::model::sample::ServiceKey;

/// One service's lines, hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Block {
    /// The service line: scheduler and persistence.
    line: u64,
    /// The service line and each of its real servers' lines.
    whole: u64,
}

/// `/proc/net/ip_vs` reduced to a hash of each service's lines, keyed by a hash of the service's
/// protocol and address words.
#[derive(Debug, Default)]
pub(super) struct TextTable {
    blocks: FxHashMap<u64, Block>,
}

/// What differs between two reads of the text table.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TextChanges {
    /// A service was added or removed, or a service line changed: the services must be dumped.
    pub(super) services: bool,
    /// The services whose lines changed, as their first line names them; `None` for one whose
    /// line could not be read (every service must then be dumped).
    pub(super) edited: Vec<Option<ServiceKey>>,
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

impl TextTable {
    /// Hashes `text`, the whole of `/proc/net/ip_vs`.
    pub(super) fn read(text: &[u8]) -> Self {
        let mut blocks: FxHashMap<u64, Block> = FxHashMap::default();
        // The block being read: its key, and its hashes so far.
        let mut open: Option<(u64, u64, FxHasher)> = None;
        let mut close = |open: &mut Option<(u64, u64, FxHasher)>| {
            if let Some((key, line, whole)) = open.take() {
                // Firewall-mark services of both families share their first words; their
                // blocks are added up, so a change in either shows.
                let b = blocks.entry(key).or_default();
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
            let mut whole = FxHasher::default();
            whole.write(line);
            whole.write_u8(b'\n');
            open = Some((hash(key_words(line)), hash(line), whole));
        }
        close(&mut open);
        Self { blocks }
    }

    /// What differs in `self` from `before`, a read of the same table earlier.
    pub(super) fn changes_since(&self, before: &TextTable, text: &[u8]) -> TextChanges {
        let mut changes = TextChanges {
            services: self.blocks.len() != before.blocks.len(),
            edited: Vec::new(),
        };
        let mut edited_keys = rustc_hash::FxHashSet::default();
        for (key, block) in &self.blocks {
            match before.blocks.get(key) {
                None => changes.services = true,
                Some(b) if b == block => {}
                Some(b) => {
                    changes.services |= b.line != block.line;
                    edited_keys.insert(*key);
                }
            }
        }
        if edited_keys.is_empty() {
            return changes;
        }
        // Name the edited services from their first lines.
        for line in text.split(|b| *b == b'\n') {
            if line.is_empty() || line[0].is_ascii_whitespace() {
                continue;
            }
            if edited_keys.remove(&hash(key_words(line))) {
                let key = std::str::from_utf8(line)
                    .ok()
                    .and_then(crate::source::parse::ip_vs_service_key);
                changes.edited.push(key);
                if edited_keys.is_empty() {
                    break;
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{AddressFamily, Protocol};

    const TABLE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A4E0001:0050 wlc
  -> 0A4D0201:1F40      Route   1      0          0
  -> 0A4D0202:1F40      Route   1      0          0
TCP  0A4E0002:0050 rr persistent 75000 FFFFFFFF
  -> 0A4D0201:1F41      Route   1      0          0
FWM  0000002A rr
  -> 0A4D0203:0000      Masq    3      0          0
";

    fn changes(before: &str, after: &str) -> TextChanges {
        TextTable::read(after.as_bytes())
            .changes_since(&TextTable::read(before.as_bytes()), after.as_bytes())
    }

    fn addr(last: u8) -> Option<ServiceKey> {
        Some(ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: std::net::Ipv4Addr::new(10, 78, 0, last).into(),
            port: 80,
        })
    }

    #[test]
    fn the_same_table_is_no_change() {
        assert_eq!(changes(TABLE, TABLE), TextChanges::default());
    }

    #[test]
    fn a_weight_a_method_a_connection_count_or_a_real_server_names_its_service_alone() {
        for edit in [
            "  -> 0A4D0202:1F40      Route   0      0          0",
            "  -> 0A4D0202:1F40      Tunnel  1      0          0",
            "  -> 0A4D0202:1F40      Route   1      0          1",
            "  -> 0A4D0204:1F40      Route   1      0          0",
        ] {
            let after = TABLE.replace("  -> 0A4D0202:1F40      Route   1      0          0", edit);
            let c = changes(TABLE, &after);
            assert_eq!(
                c,
                TextChanges {
                    services: false,
                    edited: vec![addr(1)]
                },
                "{edit}"
            );
        }
        let removed = TABLE.replace("  -> 0A4D0202:1F40      Route   1      0          0\n", "");
        assert_eq!(changes(TABLE, &removed).edited, vec![addr(1)]);
    }

    #[test]
    fn a_service_line_added_removed_or_changed_needs_the_services_dumped() {
        let sched = TABLE.replace("TCP  0A4E0001:0050 wlc", "TCP  0A4E0001:0050 lc");
        let c = changes(TABLE, &sched);
        assert!(c.services);
        assert_eq!(c.edited, vec![addr(1)]);

        let persistence = TABLE.replace("persistent 75000", "persistent 1500");
        assert_eq!(
            changes(TABLE, &persistence),
            TextChanges {
                services: true,
                edited: vec![addr(2)]
            }
        );

        let added = format!("{TABLE}UDP  0A4E0003:0035 rr\n");
        assert!(changes(TABLE, &added).services);
        assert!(changes(&added, TABLE).services);
    }

    #[test]
    fn a_firewall_mark_service_is_named_and_an_unreadable_line_names_none() {
        let after = TABLE.replace("Masq    3", "Masq    4");
        assert_eq!(
            changes(TABLE, &after).edited,
            vec![Some(ServiceKey::Fwmark {
                mark: 42,
                family: AddressFamily::Inet
            })]
        );
        // A line the parser refuses is still seen to change, and names no service.
        let odd = TABLE.replace("FWM  0000002A rr", "FWM  zz rr");
        let odd_after = odd.replace("Masq    3", "Masq    4");
        assert_eq!(changes(&odd, &odd_after).edited, vec![None]);
    }
}
