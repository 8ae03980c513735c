//! /proc/net/ip_vs, ip_vs_stats and ip_vs_conn as the lab VM's kernel (Debian 6.1) printed them;
//! see tests/fixtures/SOURCES.md.

use std::net::IpAddr;

use lbtop::model::sample::ConnSummary;
use lbtop::model::sample::{AddressFamily, Forward, Persistence, Protocol, ServiceKey};
use lbtop::source::parse::{ConnReadError, ParseError, ip_vs, ip_vs_stats, sum_ip_vs_conn};

/// A captured connection table summed from its file, as lbtop sums `/proc/net/ip_vs_conn`.
fn sum_conn_fixture(name: &str, top_n: usize) -> Result<ConnSummary, ParseError> {
    let path = format!("{}/tests/fixtures/ipvs/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    sum_ip_vs_conn(file, top_n).map_err(|e| match e {
        ConnReadError::Parse(e) => e,
        other => panic!("{path}: {other}"),
    })
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/ipvs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn tcp(a: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: ip(a),
        port,
    }
}

#[test]
fn captured_ip_vs_lists_every_lab_service() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    assert_eq!(s.len(), 24);
    assert_eq!(s.iter().map(|v| v.reals.len()).sum::<usize>(), 53);
    let schedulers: std::collections::BTreeSet<&str> =
        s.iter().filter_map(|v| v.scheduler.as_deref()).collect();
    for sched in [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ] {
        assert!(schedulers.contains(sched), "{sched}");
    }
}

#[test]
fn captured_ip_vs_reads_an_ipv6_direct_routing_service() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    let v6 = &s[0];
    assert_eq!(v6.key, tcp("fd79::100", 80));
    assert_eq!(v6.scheduler.as_deref(), Some("rr"));
    assert_eq!(v6.persistent, None);
    let reals: Vec<(String, Forward, i32, u32, u32)> = v6
        .reals
        .iter()
        .map(|r| {
            (
                r.id(),
                r.forward,
                r.weight,
                r.active_conns,
                r.inactive_conns,
            )
        })
        .collect();
    assert_eq!(
        reals,
        vec![
            ("[fd77::13]:80".into(), Forward::Route, 1, 0, 3),
            ("[fd77::12]:80".into(), Forward::Route, 1, 0, 2),
            ("[fd77::11]:80".into(), Forward::Route, 1, 0, 2),
        ]
    );
}

#[test]
fn captured_ip_vs_reads_one_packet_scheduling_and_sctp() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    let udp = &s[1];
    assert_eq!(
        udp.key,
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            address: ip("10.77.1.100"),
            port: 53
        }
    );
    assert!(udp.ops);
    let sctp = s
        .iter()
        .find(|v| v.key.protocol() == Some(Protocol::Sctp))
        .expect("an SCTP service");
    assert_eq!(sctp.reals[0].id(), "10.77.0.11:9999");
}

#[test]
fn captured_ip_vs_turns_jiffies_into_the_configured_persistence_timeout() {
    // The rules say -p 300 and -p 600 -M 255.255.255.0; the kernel (HZ=250) printed 75000 and
    // 150000 jiffies.
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    let p300 = s
        .iter()
        .find(|v| v.key == tcp("10.77.1.103", 80))
        .expect("service");
    assert_eq!(
        p300.persistent,
        Some(Persistence {
            timeout_s: 300,
            netmask: "255.255.255.255".into()
        })
    );
    let p600 = s
        .iter()
        .find(|v| v.key == tcp("10.77.1.104", 80))
        .expect("service");
    assert_eq!(
        p600.persistent,
        Some(Persistence {
            timeout_s: 600,
            netmask: "255.255.255.0".into()
        })
    );
}

#[test]
fn captured_ip_vs_reads_nat_weights_from_drained_to_maximum() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    let nat = s
        .iter()
        .find(|v| v.key == tcp("10.77.1.100", 8080))
        .expect("service");
    let reals: Vec<(String, Forward, i32, u32, u32)> = nat
        .reals
        .iter()
        .map(|r| {
            (
                r.id(),
                r.forward,
                r.weight,
                r.active_conns,
                r.inactive_conns,
            )
        })
        .collect();
    assert_eq!(
        reals,
        vec![
            ("10.77.0.13:80".into(), Forward::Masq, 0, 0, 0),
            ("10.77.0.12:80".into(), Forward::Masq, 1, 0, 1),
            ("10.77.0.11:80".into(), Forward::Masq, 65535, 4, 8),
        ]
    );
    let tun = s
        .iter()
        .find(|v| v.key == tcp("10.77.1.101", 80))
        .expect("service");
    assert!(tun.reals.iter().all(|r| r.forward == Forward::Tunnel));
}

#[test]
fn captured_ip_vs_tells_firewall_mark_families_apart_by_their_reals() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    let fwm1 = &s[22];
    assert_eq!(
        fwm1.key,
        ServiceKey::Fwmark {
            mark: 1,
            family: AddressFamily::Inet
        }
    );
    assert_eq!(fwm1.scheduler.as_deref(), Some("sh"));
    assert_eq!(fwm1.reals[0].id(), "10.77.0.12:0");
    let fwm2 = &s[23];
    assert_eq!(
        fwm2.key,
        ServiceKey::Fwmark {
            mark: 2,
            family: AddressFamily::Inet6
        }
    );
    assert_eq!(
        (fwm2.reals[0].id(), fwm2.reals[0].weight),
        ("[fd77::13]:0".into(), 2)
    );
}

#[test]
fn captured_ip_vs_has_no_counters_thresholds_or_persistent_conns() {
    let s = ip_vs(&fixture("ip_vs")).expect("parses");
    assert!(s.iter().all(|v| v.totals.is_none() && v.rates.is_none()));
    assert!(s.iter().flat_map(|v| &v.reals).all(|r| r.totals.is_none()
        && r.rates.is_none()
        && r.persistent_conns.is_none()
        && r.upper_threshold == 0
        && r.lower_threshold == 0));
}

#[test]
fn captured_ip_vs_stats_reads_hex_totals_and_rates() {
    let g = ip_vs_stats(&fixture("ip_vs_stats")).expect("parses");
    assert_eq!(g.totals.conns, 0x55);
    assert_eq!(g.totals.in_packets, 0x1D3);
    assert_eq!(g.totals.out_packets, 0x187);
    assert_eq!(g.totals.in_bytes, 0x7E3C);
    assert_eq!(g.totals.out_bytes, 0x8F4D);
    let rates = g.rates.expect("the kernel's estimates");
    assert_eq!(
        (
            rates.cps,
            rates.in_pps,
            rates.out_pps,
            rates.in_bps,
            rates.out_bps
        ),
        (2.0, 12.0, 11.0, 879.0, 1047.0)
    );
}

#[test]
fn captured_ip_vs_stats_counters_only_grow_between_samples() {
    let a = ip_vs_stats(&fixture("ip_vs_stats")).expect("parses").totals;
    let b = ip_vs_stats(&fixture("sample2/ip_vs_stats"))
        .expect("parses")
        .totals;
    assert_eq!((b.conns, b.in_packets), (91, 508));
    assert!(b.conns >= a.conns && b.in_packets >= a.in_packets && b.out_bytes >= a.out_bytes);
}

#[test]
fn captured_ip_vs_conn_sums_states_reals_and_clients() {
    let s = sum_conn_fixture("ip_vs_conn", 5).expect("parses");
    assert_eq!(s.total, 78);
    let states: Vec<(&str, u64)> = s.by_state.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(
        states,
        vec![("ASSURED", 2), ("ESTABLISHED", 8), ("TIME_WAIT", 68)]
    );
    let count = |real: &str, state: &str| s.by_real_state[real].get(state).copied();
    assert_eq!(count("10.77.0.11:80", "ESTABLISHED"), Some(5));
    assert_eq!(count("10.77.0.11:80", "TIME_WAIT"), Some(18));
    assert_eq!(count("10.77.0.12:80", "ASSURED"), Some(1));
    assert_eq!(count("10.77.0.13:80", "ESTABLISHED"), Some(2));
    assert_eq!(count("[fd77::11]:80", "TIME_WAIT"), Some(4));
    assert_eq!(count("[fd77::12]:80", "TIME_WAIT"), Some(9));
    assert_eq!(count("[fd77::13]:80", "TIME_WAIT"), Some(8));
    assert_eq!(s.by_real_state.len(), 6);
    // 10.78.0.0 is a persistence template: the client address masked with 255.255.255.0.
    assert_eq!(
        s.top_clients,
        vec![
            (ip("10.78.0.2"), 56),
            (ip("fd78::2"), 21),
            (ip("10.78.0.0"), 1)
        ]
    );
}

#[test]
fn captured_ip_vs_conn_top_n_keeps_only_the_busiest_clients() {
    let s = sum_conn_fixture("ip_vs_conn", 1).expect("parses");
    assert_eq!(s.top_clients, vec![(ip("10.78.0.2"), 56)]);
}

#[test]
fn captured_ip_vs_conn_sync_is_not_mistaken_for_ip_vs_conn() {
    // ip_vs_conn_sync has an extra Origin column before Expires.
    let e = sum_conn_fixture("ip_vs_conn_sync", 1).expect_err("different format");
    assert_eq!(e.line, 2);
}
