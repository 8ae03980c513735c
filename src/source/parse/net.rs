//! A node's addresses, routes and per-device settings, for the direct-routing checks:
//! `/proc/net/fib_trie` (its `LOCAL` entries), `/proc/net/if_inet6`, `/proc/net/route`, and the
//! lines the node program makes of `/proc/sys/net/ipv4/conf/DEV/*` and `/sys/class/net/DEV/flags`
//! (`DEV ARP_IGNORE ARP_ANNOUNCE` and `DEV RP_FILTER FLAGS`, `-` for a file it could not read).
//!
//! The text comes from another host: every entry is checked, names are made printable, and the
//! number of entries is bounded.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::model::sample::{DeviceConf, LocalAddrs, Route4, RouterSysctl};
use crate::model::text::printable;

use super::ParseError;

/// The most entries kept of any one file: a node with more is not a plain real server, and what
/// the checks need (the VIP, the device toward the router) comes early in each.
pub const MAX_ENTRIES: usize = 4096;

/// RTF_UP and RTF_GATEWAY.
const RTF_UP: u32 = 0x1;
const RTF_GATEWAY: u32 = 0x2;

/// A device name as shown: printable, at most 32 characters (the kernel's are at most 15 bytes).
fn device_name(s: &str) -> String {
    printable(s, 32)
}

/// The `LOCAL` entries of `/proc/net/fib_trie` (or of the node program's excerpt of it: the
/// `|-- ADDR` line before each `LOCAL` line), without repeats, in the order met.
pub fn fib_trie_local(text: &str) -> Result<Vec<(Ipv4Addr, u8)>, ParseError> {
    const INPUT: &str = "/proc/net/fib_trie";
    let mut out: Vec<(Ipv4Addr, u8)> = Vec::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("|-- ") {
            leaf = Some(a.trim().parse().map_err(|_| {
                ParseError::new(
                    INPUT,
                    i + 1,
                    format!("not an address: {:?}", printable(a, 40)),
                )
            })?);
            continue;
        }
        let Some(rest) = t.strip_prefix('/') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let len = words.next().unwrap_or("");
        if !words.any(|w| w == "LOCAL") {
            continue;
        }
        let len: u8 = len.parse().ok().filter(|&l| l <= 32).ok_or_else(|| {
            ParseError::new(
                INPUT,
                i + 1,
                format!("bad prefix length: {:?}", printable(len, 20)),
            )
        })?;
        let Some(addr) = leaf else {
            return Err(ParseError::new(
                INPUT,
                i + 1,
                "a LOCAL entry before any address",
            ));
        };
        if !out.contains(&(addr, len)) {
            if out.len() >= MAX_ENTRIES {
                break;
            }
            out.push((addr, len));
        }
    }
    Ok(out)
}

/// `/proc/net/if_inet6`: each address and the device holding it.
pub fn if_inet6(text: &str) -> Result<Vec<(Ipv6Addr, String)>, ParseError> {
    const INPUT: &str = "/proc/net/if_inet6";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let bad = |what: &str| ParseError::new(INPUT, i + 1, what.to_string());
        if f.len() != 6 || f[0].len() != 32 {
            return Err(bad("not six fields with a 32-digit address"));
        }
        let bits = u128::from_str_radix(f[0], 16).map_err(|_| bad("the address is not hex"))?;
        if out.len() >= MAX_ENTRIES {
            break;
        }
        out.push((Ipv6Addr::from(bits), device_name(f[5])));
    }
    Ok(out)
}

/// An address as `/proc/net/route` prints it: the 32 bits as the node holds them in memory, in
/// hexadecimal. Read as a little-endian host writes them (x86, arm64 and most others).
fn route_addr(hex: &str) -> Option<Ipv4Addr> {
    if hex.len() != 8 {
        return None;
    }
    let n = u32::from_str_radix(hex, 16).ok()?;
    Some(Ipv4Addr::from(n.to_le_bytes()))
}

/// `/proc/net/route`: the main table's routes that are up.
pub fn net_route(text: &str) -> Result<Vec<Route4>, ParseError> {
    const INPUT: &str = "/proc/net/route";
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() || (i == 0 && f[0] == "Iface") {
            continue;
        }
        let bad = |what: &str| ParseError::new(INPUT, i + 1, what.to_string());
        if f.len() < 8 {
            return Err(bad("fewer than eight fields"));
        }
        let destination = route_addr(f[1]).ok_or_else(|| bad("bad destination"))?;
        let flags = u32::from_str_radix(f[3], 16).map_err(|_| bad("bad flags"))?;
        let mask = route_addr(f[7]).ok_or_else(|| bad("bad mask"))?;
        let via = route_addr(f[2]).ok_or_else(|| bad("bad gateway"))?;
        if flags & RTF_UP == 0 {
            continue;
        }
        if out.len() >= MAX_ENTRIES {
            break;
        }
        out.push(Route4 {
            device: device_name(f[0]),
            destination,
            mask,
            gateway: flags & RTF_GATEWAY != 0,
            via: (flags & RTF_GATEWAY != 0).then_some(via),
        });
    }
    Ok(out)
}

/// A host's local addresses from `/proc/net/fib_trie` (or the programs' excerpt of it) and
/// `/proc/net/if_inet6`.
pub fn local_addrs(fib_trie: &str, if_inet6_text: &str) -> Result<LocalAddrs, ParseError> {
    Ok(LocalAddrs {
        v4: fib_trie_local(fib_trie)?,
        v6: if_inet6(if_inet6_text)?
            .into_iter()
            .map(|(a, _)| a)
            .collect(),
    })
}

/// The router program's `sysctl` lines (`ip_forward 1`, `expire_nodest_conn 0`,
/// `expire_quiescent_template 0`, `-` for a file it could not read). Other names and values that
/// are not numbers are left out; `None` when nothing was read.
pub fn router_sysctl(text: &str) -> Option<RouterSysctl> {
    let mut s = RouterSysctl::default();
    for line in text.lines() {
        let mut w = line.split_ascii_whitespace();
        let (Some(name), Some(value)) = (w.next(), w.next()) else {
            continue;
        };
        let value = value.parse::<u32>().ok();
        match name {
            "ip_forward" => s.ip_forward = value,
            "expire_nodest_conn" => s.expire_nodest_conn = value,
            "expire_quiescent_template" => s.expire_quiescent_template = value,
            _ => {}
        }
    }
    (s != RouterSysctl::default()).then_some(s)
}

/// A number of the device lines: decimal, hex with `0x` (flags), or `-` for a file the node
/// could not read.
fn setting(s: &str, input: &'static str, line: usize) -> Result<Option<u32>, ParseError> {
    if s == "-" {
        return Ok(None);
    }
    let parsed = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    parsed
        .map(Some)
        .map_err(|_| ParseError::new(input, line, format!("not a number: {:?}", printable(s, 20))))
}

/// One device line: `DEV A B` as `(name, a, b)`.
type DeviceLine = (String, Option<u32>, Option<u32>);

/// The device lines of one section.
fn device_lines(text: &str, input: &'static str) -> Result<Vec<DeviceLine>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() {
            continue;
        }
        if f.len() != 3 {
            return Err(ParseError::new(
                input,
                i + 1,
                format!("not three fields: {:?}", printable(line, 80)),
            ));
        }
        if out.len() >= MAX_ENTRIES {
            break;
        }
        out.push((
            device_name(f[0]),
            setting(f[1], input, i + 1)?,
            setting(f[2], input, i + 1)?,
        ));
    }
    Ok(out)
}

/// The node program's device lines: `arp` holds `DEV ARP_IGNORE ARP_ANNOUNCE` (read at every
/// such poll), `flags` holds `DEV RP_FILTER FLAGS` (flags in hex, `0x1003`; read less often), each
/// value `-` where the file could not be read. The devices are `arp`'s, in its order.
pub fn netconf(arp: &str, flags: &str) -> Result<Vec<DeviceConf>, ParseError> {
    let flags = device_lines(flags, "device flags")?;
    Ok(device_lines(arp, "device ARP settings")?
        .into_iter()
        .map(|(name, arp_ignore, arp_announce)| {
            let (rp_filter, flags) = flags
                .iter()
                .find(|(n, _, _)| *n == name)
                .map_or((None, None), |(_, r, f)| (*r, *f));
            DeviceConf {
                name,
                arp_ignore,
                arp_announce,
                rp_filter,
                flags,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/proc/net/fib_trie` of a Debian 13 real server (kernel 6.12) with the VIP on lo: the main
    /// and local tables merged, so each entry shows twice.
    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.1.0/24 2 0 2
        |-- 10.0.1.0
           /24 link UNICAST
        |-- 10.0.1.2
           /32 host LOCAL
     |-- 10.0.0.100
        /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.0.0.100
        /32 host LOCAL
";

    #[test]
    fn fib_trie_gives_each_local_address_once() {
        let got = fib_trie_local(FIB_TRIE).expect("parses");
        let want: Vec<(Ipv4Addr, u8)> = vec![
            ("10.0.1.2".parse().expect("test value"), 32),
            ("10.0.0.100".parse().expect("test value"), 32),
            ("127.0.0.0".parse().expect("test value"), 8),
            ("127.0.0.1".parse().expect("test value"), 32),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn fib_trie_refuses_a_bad_address_and_a_bad_prefix_naming_the_line() {
        let e = fib_trie_local("Main:\n |-- 10.0.0.999\n  /32 host LOCAL\n").expect_err("an error");
        assert_eq!(e.line, 2, "{e}");
        let e = fib_trie_local(" |-- 10.0.0.1\n  /33 host LOCAL\n").expect_err("an error");
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = fib_trie_local("  /32 host LOCAL\n").expect_err("an error");
        assert!(e.to_string().contains("before any address"), "{e}");
        // Lines it does not know are skipped; an escape in an address is shown escaped.
        assert_eq!(
            fib_trie_local("Id 100:\n\u{1b}[2J\n").expect("test value"),
            []
        );
        let e = fib_trie_local(" |-- \u{1b}[2J\n").expect_err("an error");
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }

    #[test]
    fn if_inet6_gives_addresses_and_devices() {
        let text = "00000000000000000000000000000001 01 80 10 80       lo\n\
                    20010db8000000000000000000000064 01 80 00 80       lo\n\
                    fe800000000000000000000000000002 02 40 20 80     eth0\n";
        let got = if_inet6(text).expect("parses");
        assert_eq!(
            got[0],
            ("::1".parse().expect("test value"), "lo".to_string())
        );
        assert_eq!(
            got[1],
            (
                "2001:db8::64".parse().expect("test value"),
                "lo".to_string()
            )
        );
        assert_eq!(got[2].1, "eth0");
        assert!(if_inet6("zz 01 80 10 80 lo\n").is_err());
        assert!(if_inet6(&format!("{} 01 80 10 80\n", "0".repeat(32))).is_err());
        let name =
            if_inet6(&format!("{} 01 80 10 80 e\u{1b}x\n", "0".repeat(32))).expect("test value");
        assert_eq!(name[0].1, "e\\u{1b}x");
    }

    #[test]
    fn route_reads_little_endian_addresses_and_the_gateway_flag() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0101000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0001000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    eth1\t0002000A\t00000000\t0000\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let got = net_route(text).expect("parses");
        assert_eq!(got.len(), 2, "the route that is down is left out");
        assert!(got[0].gateway);
        assert_eq!(got[0].via, Some(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(got[1].via, None);
        assert_eq!(got[1].destination, Ipv4Addr::new(10, 0, 1, 0));
        assert_eq!(got[1].mask, Ipv4Addr::new(255, 255, 255, 0));
        assert!(!got[1].gateway);
        let e = net_route("Iface x\neth0 0000000G 0 1 0 0 0 00000000\n").expect_err("an error");
        assert_eq!((e.line, e.message.as_str()), (2, "bad destination"));
        assert!(net_route("eth0 00000000 0\n").is_err());
    }

    #[test]
    fn netconf_reads_numbers_hex_flags_and_unreadable_files() {
        let got = netconf(
            "all 1 2\nlo 0 0\neth0 - 0\n",
            "all 0 -\nlo 0 0x9\neth0 2 0x1003\n",
        )
        .expect("parses");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].arp_ignore, Some(1));
        assert_eq!(got[1].flags, Some(9));
        assert_eq!(got[2].arp_ignore, None);
        assert_eq!(got[2].rp_filter, Some(2));
        // A device the flags do not list yet has none.
        let got = netconf("tunl0 0 0\n", "").expect("parses");
        assert_eq!((got[0].rp_filter, got[0].flags), (None, None));
        assert!(netconf("eth0 1 2 3\n", "").is_err());
        let e = netconf("eth0 x 2\n", "").expect_err("an error");
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(netconf("eth0 0 0\n", "eth0 0xZZ 2\n").is_err());
    }

    #[test]
    fn router_sysctl_takes_known_names_and_numbers_only() {
        let s = router_sysctl(
            "ip_forward 1\nexpire_nodest_conn -\nexpire_quiescent_template 0\nx 9\n\u{1b}\n",
        )
        .expect("read");
        assert_eq!(s.ip_forward, Some(1));
        assert_eq!(s.expire_nodest_conn, None);
        assert_eq!(s.expire_quiescent_template, Some(0));
        assert_eq!(router_sysctl("ip_forward -\ngarbage\n"), None);
    }

    #[test]
    fn entries_are_bounded() {
        let many: String = (0..MAX_ENTRIES + 10)
            .map(|i| format!("d{i} 0 0\n"))
            .collect();
        assert_eq!(
            netconf(&many, &many).expect("test value").len(),
            MAX_ENTRIES
        );
    }
}
