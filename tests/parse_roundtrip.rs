//! Round trips: random tables printed the way the kernel (`ip_vs_info_seq_show`) and ipvsadm
//! (`print_service_entry`) print them, parsed back. The printing here follows their format
//! strings; it is constructed, not captured output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbtop::model::sample::{
    AddressFamily, Forward, Persistence, Protocol, RealServerSample, ServiceKey,
    VirtualServiceSample,
};
use lbtop::source::parse::{ASSUMED_KERNEL_HZ, ip_vs, ipvsadm_list, merge_ipvsadm};
use proptest::prelude::*;

fn addr(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        any::<u128>()
            .prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
            .boxed()
    } else {
        any::<u32>()
            .prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
            .boxed()
    }
}

fn real(v6: bool) -> impl Strategy<Value = RealServerSample> {
    (
        addr(v6),
        any::<u16>(),
        prop::sample::select(vec![
            Forward::Route,
            Forward::Masq,
            Forward::Tunnel,
            Forward::Local,
        ]),
        -1i32..65536,
        0u32..=i32::MAX as u32,
        0u32..=i32::MAX as u32,
    )
        .prop_map(
            |(address, port, forward, weight, active_conns, inactive_conns)| RealServerSample {
                tunnel: None,
                address,
                port,
                forward,
                weight,
                upper_threshold: 0,
                lower_threshold: 0,
                active_conns,
                inactive_conns,
                persistent_conns: None,
                totals: None,
                rates: None,
            },
        )
}

/// A service; `ops` only on IPv4 (the kernel's IPv6 line has no flags field), mark services
/// IPv4 only (the /proc line does not say the family).
fn service() -> impl Strategy<Value = VirtualServiceSample> {
    (any::<bool>(), any::<bool>()).prop_flat_map(|(v6, fwm)| {
        let v6 = v6 && !fwm;
        let key = if fwm {
            (1u32..)
                .prop_map(|mark| ServiceKey::Fwmark {
                    mark,
                    family: AddressFamily::Inet,
                })
                .boxed()
        } else {
            (
                prop::sample::select(vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp]),
                addr(v6),
                any::<u16>(),
            )
                .prop_map(|(protocol, address, port)| ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                })
                .boxed()
        };
        let persistence = prop::option::of((1u32..1_000_000, 0u32..=32).prop_map(
            move |(t, bits)| Persistence {
                timeout_s: t,
                netmask: if v6 {
                    (bits * 4).to_string()
                } else {
                    Ipv4Addr::from(u32::MAX.checked_shl(32 - bits).unwrap_or(0)).to_string()
                },
            },
        ));
        (
            key,
            prop::sample::select(vec!["rr", "wrr", "lc", "wlc", "sh", "mh", "none"]),
            persistence,
            any::<bool>().prop_map(move |o| o && !v6),
            prop::collection::vec(real(v6), 0..4),
        )
            .prop_map(
                |(key, scheduler, persistent, ops, reals)| VirtualServiceSample {
                    flags: None,
                    pe_name: None,
                    key,
                    scheduler: Some(scheduler.to_string()),
                    persistent,
                    ops,
                    totals: None,
                    rates: None,
                    reals,
                },
            )
    })
}

fn full_v6(a: Ipv6Addr) -> String {
    a.segments()
        .iter()
        .map(|s| format!("{s:04x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `/proc/net/ip_vs` as ip_vs_info_seq_show prints it (little-endian machine).
fn print_proc(services: &[VirtualServiceSample]) -> String {
    let mut t = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n",
    );
    for s in services {
        let ops = if s.ops { "ops " } else { "" };
        let mut v6 = false;
        match s.key {
            ServiceKey::Addr {
                protocol,
                address: IpAddr::V4(a),
                port,
            } => {
                t += &format!(
                    "{}  {:08X}:{port:04X} {} {ops}",
                    protocol.as_str().to_uppercase(),
                    u32::from(a),
                    s.scheduler.as_deref().unwrap_or_default()
                );
            }
            ServiceKey::Addr {
                protocol,
                address: IpAddr::V6(a),
                port,
            } => {
                v6 = true;
                t += &format!(
                    "{}  [{}]:{port:04X} {} ",
                    protocol.as_str().to_uppercase(),
                    full_v6(a),
                    s.scheduler.as_deref().unwrap_or_default()
                );
            }
            ServiceKey::Fwmark { mark, .. } => {
                t += &format!(
                    "FWM  {mark:08X} {} {ops}",
                    s.scheduler.as_deref().unwrap_or_default()
                );
            }
        }
        match &s.persistent {
            Some(p) => {
                let mask = if v6 {
                    p.netmask.parse::<u32>().expect("plen").swap_bytes()
                } else {
                    u32::from(p.netmask.parse::<Ipv4Addr>().expect("mask"))
                };
                t += &format!(
                    "persistent {} {mask:08X}\n",
                    p.timeout_s * ASSUMED_KERNEL_HZ
                );
            }
            None => t += "\n",
        }
        for r in &s.reals {
            let target = match r.address {
                IpAddr::V4(a) => format!("{:08X}:{:04X}", u32::from(a), r.port),
                IpAddr::V6(a) => format!("[{}]:{:04X}", full_v6(a), r.port),
            };
            t += &format!(
                "  -> {target}      {:<7} {:<6} {:<10} {:<10}\n",
                r.forward.as_proc(),
                r.weight,
                r.active_conns,
                r.inactive_conns
            );
        }
    }
    t
}

/// `ipvsadm -Ln --exact` as print_service_entry prints it.
fn print_ipvsadm(services: &[VirtualServiceSample]) -> String {
    let mut t = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
    );
    for s in services {
        let v6 = matches!(
            s.key,
            ServiceKey::Addr {
                address: IpAddr::V6(_),
                ..
            }
        );
        t += &match s.key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => format!(
                "{}  {} {}",
                protocol.as_str().to_uppercase(),
                lbtop::model::sample::SocketText(address, port),
                s.scheduler.as_deref().unwrap_or_default()
            ),
            ServiceKey::Fwmark { mark, family } => format!(
                "FWM  {mark}{} {}",
                if family == AddressFamily::Inet6 {
                    " IPv6"
                } else {
                    ""
                },
                s.scheduler.as_deref().unwrap_or_default()
            ),
        };
        if let Some(p) = &s.persistent {
            t += &format!(" persistent {}", p.timeout_s);
            let host = if v6 { "128" } else { "255.255.255.255" };
            if p.netmask != host {
                t += &format!(" mask {}", p.netmask);
            }
        }
        if s.ops {
            t += " ops";
        }
        t += "\n";
        for r in &s.reals {
            let target = lbtop::model::sample::SocketText(r.address, r.port).to_string();
            t += &format!(
                "  -> {target:<28} {:<7} {:<6} {:<10} {:<10}\n",
                r.forward.as_proc(),
                r.weight,
                r.active_conns,
                r.inactive_conns
            );
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn proc_ip_vs_reads_back_what_the_kernel_format_prints(
        services in prop::collection::vec(service(), 0..6)
    ) {
        // A mark service whose reals are all IPv6 is read as IPv6; keep the generated ones IPv4.
        let services: Vec<_> = services
            .into_iter()
            .filter(|s| !(matches!(s.key, ServiceKey::Fwmark { .. })
                && !s.reals.is_empty()
                && s.reals.iter().all(|r| r.address.is_ipv6())))
            .collect();
        let text = print_proc(&services);
        prop_assert_eq!(ip_vs(&text).expect("parses"), services);
    }

    #[test]
    fn ipvsadm_plain_listing_reads_back_what_ipvsadm_prints(
        services in prop::collection::vec(service(), 0..6)
    ) {
        let text = print_ipvsadm(&services);
        let listing = ipvsadm_list(&text).expect("parses");
        prop_assert_eq!(merge_ipvsadm(&listing, &[]).expect("merges"), services);
    }
}
