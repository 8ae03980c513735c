//! `/proc/net/ip_vs` and `/proc/net/ip_vs_stats` (all numbers in hex).
//!
//! The kernel writes these in `ip_vs_info_seq_show` and `ip_vs_stats_show`
//! (`net/netfilter/ipvs/ip_vs_ctl.c`). The virtual-service table has no per-service counters,
//! thresholds or persistent-connection counts, so those stay `None`/0 here.

use std::net::{IpAddr, Ipv4Addr};

use super::ParseError;
use super::text::{
    bracketed_ipv6, dec_u32, excerpt, hex_ipv4, hex_u16, hex_u32, hex_u64, numbered_lines,
};
use crate::model::sample::{
    AddressFamily, Forward, IpvsCounters, IpvsGlobalStats, IpvsRates, Persistence,
    RealServerSample, ServiceKey, VirtualServiceSample,
};

const IP_VS: &str = "/proc/net/ip_vs";
const IP_VS_STATS: &str = "/proc/net/ip_vs_stats";

/// The kernel tick rate `ip_vs` assumes when it converts the persistence timeout (see
/// [`ip_vs_with_hz`]): Debian's and older Ubuntu's `CONFIG_HZ`.
pub const ASSUMED_KERNEL_HZ: u32 = 250;

/// Parses `/proc/net/ip_vs`, assuming the kernel ticks at [`ASSUMED_KERNEL_HZ`].
pub fn ip_vs(text: &str) -> Result<Vec<VirtualServiceSample>, ParseError> {
    ip_vs_with_hz(text, ASSUMED_KERNEL_HZ)
}

/// Parses `/proc/net/ip_vs`.
///
/// The kernel prints a persistent service's timeout in jiffies (`svc->timeout`, which it stores as
/// seconds × `CONFIG_HZ`), so `hz` is needed to turn it into seconds; a timeout that is not a
/// whole number of seconds at that rate is rounded up. `hz` 0 is treated as 1 (timeout left in
/// jiffies).
///
/// Firewall-mark lines do not say the address family; a mark service is taken as IPv6 when it has
/// real servers and all of them are IPv6, else as IPv4.
pub fn ip_vs_with_hz(text: &str, hz: u32) -> Result<Vec<VirtualServiceSample>, ParseError> {
    let hz = hz.max(1);
    let mut services: Vec<VirtualServiceSample> = Vec::new();
    // The raw persistence netmask of each service, resolved once its family is known.
    let mut raw_masks: Vec<Option<u32>> = Vec::new();
    for (line_no, line) in numbered_lines(text) {
        let err = |msg: String| ParseError::new(IP_VS, line_no, msg);
        let trimmed = line.trim_start();
        if trimmed.is_empty()
            || line.starts_with("IP Virtual Server version")
            || line.starts_with("Prot LocalAddress:Port")
            || trimmed.starts_with("-> RemoteAddress:Port")
        {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("->") {
            let real = real_server(rest).map_err(err)?;
            let svc = services
                .last_mut()
                .ok_or_else(|| err("real server before any virtual service".into()))?;
            svc.reals.push(real);
        } else {
            let (svc, mask) = service(line, hz).map_err(err)?;
            services.push(svc);
            raw_masks.push(mask);
        }
    }
    for (svc, mask) in services.iter_mut().zip(raw_masks) {
        if let ServiceKey::Fwmark { family, .. } = &mut svc.key
            && !svc.reals.is_empty()
            && svc.reals.iter().all(|r| r.address.is_ipv6())
        {
            *family = AddressFamily::Inet6;
        }
        let family = match svc.key {
            ServiceKey::Addr { address, .. } if address.is_ipv6() => AddressFamily::Inet6,
            ServiceKey::Addr { .. } => AddressFamily::Inet,
            ServiceKey::Fwmark { family, .. } => family,
        };
        if let (Some(p), Some(mask)) = (svc.persistent.as_mut(), mask) {
            p.netmask = netmask_text(family, mask);
        }
    }
    Ok(services)
}

/// The service a line of `/proc/net/ip_vs` names (a firewall mark's family taken as IPv4), or
/// `None` when it is not a service line lbtop can read.
pub fn ip_vs_service_key(line: &str) -> Option<ServiceKey> {
    service(line, ASSUMED_KERNEL_HZ)
        .ok()
        .map(|(svc, _)| svc.key)
}

/// `TCP  0A000001:0050 wlc ops persistent 75000 FFFFFF00`, `TCP  [2001:0db8::…]:01BB rr`,
/// `FWM  0000002A rr`. Returns the raw persistence netmask beside the sample.
fn service(line: &str, hz: u32) -> Result<(VirtualServiceSample, Option<u32>), String> {
    let mut f = line.split_ascii_whitespace();
    let (Some(proto), Some(target), Some(scheduler)) = (f.next(), f.next(), f.next()) else {
        return Err(format!("expected a virtual service, got {}", excerpt(line)));
    };
    let key = if proto == "FWM" {
        let mark =
            hex_u32(target).ok_or_else(|| format!("bad firewall mark {}", excerpt(target)))?;
        ServiceKey::Fwmark {
            mark,
            family: AddressFamily::Inet,
        }
    } else {
        let protocol = crate::model::sample::Protocol::from_upper(proto)
            .ok_or_else(|| format!("unknown protocol {}", excerpt(proto)))?;
        let (address, port) = hex_socket(target)?;
        ServiceKey::Addr {
            protocol,
            address,
            port,
        }
    };
    let mut svc = VirtualServiceSample {
        flags: None,
        pe_name: None,
        key,
        scheduler: Some(scheduler.to_string()),
        persistent: None,
        ops: false,
        totals: None,
        rates: None,
        reals: Vec::new(),
    };
    let mut mask = None;
    while let Some(flag) = f.next() {
        match flag {
            "ops" => svc.ops = true,
            "persistent" => {
                let (Some(t), Some(m)) = (f.next(), f.next()) else {
                    return Err("persistent needs a timeout and a netmask".into());
                };
                let jiffies = dec_u32(t).ok_or_else(|| format!("bad timeout {}", excerpt(t)))?;
                mask = Some(hex_u32(m).ok_or_else(|| format!("bad netmask {}", excerpt(m)))?);
                svc.persistent = Some(Persistence {
                    timeout_s: jiffies.div_ceil(hz),
                    netmask: String::new(),
                });
            }
            // Flags a later kernel may print; the line is still worth reading.
            _ => {}
        }
    }
    Ok((svc, mask))
}

/// `0A000001:0050      Route   1      0          0` (after the `->`).
fn real_server(rest: &str) -> Result<RealServerSample, String> {
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let [target, forward, weight, active, inactive] = f[..] else {
        return Err(format!(
            "expected address, forward, weight, active, inactive; got {}",
            excerpt(rest)
        ));
    };
    let (address, port) = hex_socket(target)?;
    Ok(RealServerSample {
        tunnel: None,
        address,
        port,
        forward: Forward::from_proc(forward)
            .ok_or_else(|| format!("unknown forwarding method {}", excerpt(forward)))?,
        weight: weight
            .parse()
            .map_err(|_| format!("bad weight {}", excerpt(weight)))?,
        upper_threshold: 0,
        lower_threshold: 0,
        active_conns: conn_count(active)?,
        inactive_conns: conn_count(inactive)?,
        persistent_conns: None,
        totals: None,
        rates: None,
    })
}

/// The kernel prints connection counters with `%d`; a negative one (a counter that went below
/// zero in the kernel) is shown as 0 rather than failing the whole table.
fn conn_count(s: &str) -> Result<u32, String> {
    let n: i64 = s
        .parse()
        .map_err(|_| format!("bad connection count {}", excerpt(s)))?;
    Ok(u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

/// `0A000001:0050` or `[2001:0db8:0000:0000:0000:0000:0000:0010]:01BB`.
fn hex_socket(s: &str) -> Result<(IpAddr, u16), String> {
    let bad = || format!("bad address:port {}", excerpt(s));
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port = hex_u16(port).ok_or_else(bad)?;
    let addr = if addr.starts_with('[') {
        IpAddr::V6(bracketed_ipv6(addr).ok_or_else(bad)?)
    } else {
        IpAddr::V4(hex_ipv4(addr).ok_or_else(bad)?)
    };
    Ok((addr, port))
}

/// IPv4: the mask in dotted form (`255.255.255.0`). IPv6: the prefix length; the kernel keeps it
/// as a host-order number but prints it through `ntohl`, so on little-endian machines 128 shows
/// as `80000000`.
fn netmask_text(family: AddressFamily, raw: u32) -> String {
    match family {
        AddressFamily::Inet => Ipv4Addr::from(raw).to_string(),
        AddressFamily::Inet6 => {
            let plen = if raw <= 128 { raw } else { raw.swap_bytes() };
            plen.to_string()
        }
    }
}

/// `/proc/net/ip_vs_stats`: two header lines, a line of five hex totals (conns, in packets,
/// out packets, in bytes, out bytes), a blank line, one header line, and five hex rates.
pub fn ip_vs_stats(text: &str) -> Result<IpvsGlobalStats, ParseError> {
    let mut rows: Vec<[u64; 5]> = Vec::with_capacity(2);
    for (line_no, line) in numbered_lines(text) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.is_empty() || f.iter().any(|t| hex_u64(t).is_none() && is_header_word(t)) {
            continue;
        }
        let err = |msg: String| ParseError::new(IP_VS_STATS, line_no, msg);
        let [a, b, c, d, e] = f[..] else {
            return Err(err(format!(
                "expected 5 hex numbers, got {}",
                excerpt(line)
            )));
        };
        let mut row = [0u64; 5];
        for (slot, t) in row.iter_mut().zip([a, b, c, d, e]) {
            *slot = hex_u64(t).ok_or_else(|| err(format!("bad hex number {}", excerpt(t))))?;
        }
        if rows.len() == 2 {
            return Err(err("more than two rows of numbers".into()));
        }
        rows.push(row);
    }
    let [totals, rates] = rows[..] else {
        return Err(ParseError::new(
            IP_VS_STATS,
            0,
            format!(
                "expected a totals row and a rates row, found {} rows",
                rows.len()
            ),
        ));
    };
    Ok(IpvsGlobalStats {
        totals: IpvsCounters {
            conns: totals[0],
            in_packets: totals[1],
            out_packets: totals[2],
            in_bytes: totals[3],
            out_bytes: totals[4],
        },
        rates: Some(IpvsRates {
            cps: rates[0] as f64,
            in_pps: rates[1] as f64,
            out_pps: rates[2] as f64,
            in_bps: rates[3] as f64,
            out_bps: rates[4] as f64,
        }),
    })
}

/// Words of the `ip_vs_stats` column headers (`Total`, `Conns/s`, `Bytes`, …).
fn is_header_word(t: &str) -> bool {
    matches!(
        t,
        "Total"
            | "Incoming"
            | "Outgoing"
            | "Conns"
            | "Packets"
            | "Bytes"
            | "Conns/s"
            | "Pkts/s"
            | "Bytes/s"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::Protocol;
    use std::net::Ipv6Addr;

    // Constructed from the seq_printf formats of ip_vs_info_seq_show / ip_vs_stats_show, not
    // captured from a kernel. Real captures are tested in tests/parse_ipvs.rs.
    const TABLE: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C000020A:0050 wlc 
  -> C6336401:0050      Route   3      12         40        
  -> C6336402:0050      Masq    0      0          1         
UDP  C000020A:0035 rr ops persistent 75000 FFFFFF00
  -> C6336401:0035      Tunnel  1      0          0         
TCP  [2001:0db8:0000:0000:0000:0000:0000:0010]:01BB sh persistent 2500 80000000
  -> [2001:0db8:0000:0000:0000:0000:0000:0001]:01BB      Local   1      -1         0         
FWM  0000002A rr 
  -> C6336401:0000      Route   1      0          0         
";

    #[test]
    fn ip_vs_reads_services_and_real_servers_from_hex() {
        let s = ip_vs(TABLE).expect("parses");
        assert_eq!(s.len(), 4);
        assert_eq!(
            s[0].key,
            ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: "192.0.2.10".parse().expect("ip"),
                port: 80
            }
        );
        assert_eq!(s[0].scheduler.as_deref(), Some("wlc"));
        assert_eq!(s[0].persistent, None);
        assert!(!s[0].ops);
        assert_eq!(s[0].reals.len(), 2);
        let r = &s[0].reals[0];
        assert_eq!(r.id(), "198.51.100.1:80");
        assert_eq!(r.forward, Forward::Route);
        assert_eq!((r.weight, r.active_conns, r.inactive_conns), (3, 12, 40));
        assert_eq!((r.persistent_conns, r.totals, r.rates), (None, None, None));
        assert_eq!(s[0].reals[1].forward, Forward::Masq);
        assert_eq!(s[0].totals, None);
    }

    #[test]
    fn ip_vs_converts_persistence_timeout_from_jiffies_and_mask_to_dotted_form() {
        let s = ip_vs(TABLE).expect("parses");
        assert!(s[1].ops);
        let p = s[1].persistent.as_ref().expect("persistent");
        assert_eq!(p.timeout_s, 300);
        assert_eq!(p.netmask, "255.255.255.0");
        assert_eq!(
            ip_vs_with_hz(TABLE, 1000).expect("parses")[1]
                .persistent
                .as_ref()
                .expect("persistent")
                .timeout_s,
            75
        );
    }

    #[test]
    fn ip_vs_reads_ipv6_services_with_byte_swapped_prefix_length() {
        let s = ip_vs(TABLE).expect("parses");
        let ServiceKey::Addr { address, port, .. } = s[2].key else {
            panic!("not an address service")
        };
        assert_eq!(address, "2001:db8::10".parse::<Ipv6Addr>().expect("ip"));
        assert_eq!(port, 443);
        assert_eq!(s[2].persistent.as_ref().expect("persistent").netmask, "128");
        assert_eq!(s[2].reals[0].id(), "[2001:db8::1]:443");
        assert_eq!(s[2].reals[0].forward, Forward::Local);
    }

    #[test]
    fn ip_vs_shows_a_negative_kernel_counter_as_zero() {
        assert_eq!(ip_vs(TABLE).expect("parses")[2].reals[0].active_conns, 0);
    }

    #[test]
    fn ip_vs_reads_firewall_mark_in_hex() {
        let s = ip_vs(TABLE).expect("parses");
        assert_eq!(
            s[3].key,
            ServiceKey::Fwmark {
                mark: 42,
                family: AddressFamily::Inet
            }
        );
    }

    #[test]
    fn ip_vs_takes_a_mark_service_with_only_ipv6_reals_as_ipv6() {
        let s = ip_vs("FWM  00000001 rr \n  -> [0000:0000:0000:0000:0000:0000:0000:0001]:0000      Route   1      0          0\n")
            .expect("parses");
        assert_eq!(
            s[0].key,
            ServiceKey::Fwmark {
                mark: 1,
                family: AddressFamily::Inet6
            }
        );
    }

    #[test]
    fn ip_vs_with_only_headers_has_no_services() {
        let head = "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n";
        assert_eq!(ip_vs(head).expect("parses"), vec![]);
    }

    #[test]
    fn ip_vs_errors_name_the_offending_line() {
        let e =
            ip_vs("  -> C6336401:0050      Route   3      12         40\n").expect_err("must fail");
        assert_eq!((e.input, e.line), (IP_VS, 1));
        let e = ip_vs("TCP  C000020A:0050 wlc\n  -> C6336401:0050 Bridge 1 0 0\n")
            .expect_err("must fail");
        assert_eq!(e.line, 2);
        let e = ip_vs("TCP  C000020A:0050 wlc\nTCP  C000020A wlc\n").expect_err("must fail");
        assert_eq!(e.line, 2);
        let e = ip_vs("ICMP  C000020A:0050 wlc\n").expect_err("must fail");
        assert_eq!(e.line, 1);
        let e = ip_vs("TCP  C000020A:0050 wlc persistent 300\n").expect_err("must fail");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn ip_vs_skips_service_flags_it_does_not_know() {
        let s = ip_vs("TCP  C000020A:0050 wlc quic ops \n").expect("parses");
        assert!(s[0].ops);
    }

    const STATS: &str = "   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
      1F      3E8        0            1F400                0

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
       2       A0        0             1000                0
";

    #[test]
    fn ip_vs_stats_reads_hex_totals_and_rates() {
        let g = ip_vs_stats(STATS).expect("parses");
        assert_eq!(g.totals.conns, 31);
        assert_eq!(g.totals.in_packets, 1000);
        assert_eq!(g.totals.in_bytes, 128_000);
        assert_eq!(g.rates.expect("kernel rates").cps, 2.0);
        assert_eq!(g.rates.expect("kernel rates").in_pps, 160.0);
        assert_eq!(g.rates.expect("kernel rates").in_bps, 4096.0);
    }

    #[test]
    fn ip_vs_stats_needs_both_rows() {
        let only_totals: String = STATS.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(ip_vs_stats(&only_totals).expect_err("must fail").line, 0);
        let e =
            ip_vs_stats("      1F      3E8        0            1F400\n").expect_err("must fail");
        assert_eq!(e.line, 1);
    }
}
