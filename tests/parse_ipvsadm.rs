//! ipvsadm 1.31's listings as captured in the lab VM (see tests/fixtures/SOURCES.md), and the
//! kernel's /proc table as the oracle for what they describe.

use std::net::IpAddr;

use lbtop::model::sample::{
    AddressFamily, Forward, IpvsCounters, Persistence, Protocol, ServiceKey, TunnelKind,
    VirtualServiceSample,
};
use lbtop::source::parse::{
    IpvsadmListing, IpvsadmRealColumns, IpvsadmServiceColumns, IpvsadmView, ip_vs, ipvsadm_list,
    merge_ipvsadm,
};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/ipvs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn listing(name: &str) -> IpvsadmListing {
    ipvsadm_list(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tcp(a: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: a.parse().expect("test address"),
        port,
    }
}

fn merged() -> Vec<VirtualServiceSample> {
    let others: Vec<IpvsadmListing> = [
        "ipvsadm-Ln-exact-stats.txt",
        "ipvsadm-Ln-exact-rate.txt",
        "ipvsadm-Ln-exact-thresholds.txt",
        "ipvsadm-Ln-exact-persistent-conn.txt",
    ]
    .iter()
    .map(|n| listing(n))
    .collect();
    merge_ipvsadm(&listing("ipvsadm-Ln-exact.txt"), &others).expect("merges")
}

#[test]
fn captured_views_are_told_apart_by_their_titles() {
    let views = [
        ("ipvsadm-Ln-exact.txt", IpvsadmView::Plain),
        ("ipvsadm-Ln-exact-stats.txt", IpvsadmView::Stats),
        ("ipvsadm-Ln-exact-rate.txt", IpvsadmView::Rate),
        ("ipvsadm-Ln-exact-thresholds.txt", IpvsadmView::Thresholds),
        (
            "ipvsadm-Ln-exact-persistent-conn.txt",
            IpvsadmView::PersistentConn,
        ),
        ("ipvsadm-Ln-exact-t-dr80.txt", IpvsadmView::Plain),
        ("ipvsadm-Ln-exact-f1.txt", IpvsadmView::Plain),
        ("ipvsadm-Ln-exact-tun-info.txt", IpvsadmView::TunInfo),
        ("ipvsadm-Ln-exact-stats-t-dr80.txt", IpvsadmView::Stats),
        ("sample2/ipvsadm-Ln-exact-stats.txt", IpvsadmView::Stats),
        ("sample2/ipvsadm-Ln-exact-rate.txt", IpvsadmView::Rate),
    ];
    for (name, view) in views {
        let l = listing(name);
        assert_eq!(l.view, view, "{name}");
        // Listing one service (-t, -f) prints no version line.
        let whole_table = !name.contains("-t-") && !name.contains("-f1");
        let version = whole_table.then_some("1.2.1");
        assert_eq!(l.version.as_deref(), version, "{name}");
        assert_eq!(l.conn_table_size, whole_table.then_some(4096), "{name}");
    }
    assert_eq!(listing("ipvsadm-Ln-exact.txt").services.len(), 24);
}

#[test]
fn captured_tun_info_view_gives_each_tunnel_real_its_encapsulation() {
    let tun = listing("ipvsadm-Ln-exact-tun-info.txt");
    let m = merge_ipvsadm(&tun, &[listing("ipvsadm-Ln-exact-thresholds.txt")]).expect("merges");
    let svc = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.101", 80))
        .expect("the tunnel service");
    let encap = |addr: &str| {
        let r = svc
            .reals
            .iter()
            .find(|r| r.address.to_string() == addr)
            .unwrap_or_else(|| panic!("real {addr}"));
        assert_eq!(r.forward, Forward::Tunnel, "{addr}");
        r.tunnel.map(|t| (t.kind, t.port, t.flags, r.weight))
    };
    assert_eq!(encap("10.77.0.11"), Some((TunnelKind::Ipip, 0, 0, 1)));
    assert_eq!(encap("10.77.0.97"), Some((TunnelKind::Gue, 99, 2, 0)));
    assert_eq!(encap("10.77.0.98"), Some((TunnelKind::Gre, 0, 0, 4)));
    assert_eq!(encap("10.77.0.99"), Some((TunnelKind::Gue, 6080, 1, 2)));
    // Reals that do not tunnel have none, and the plain view never gives one.
    let dr = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.100", 80))
        .expect("DR service");
    assert!(dr.reals.iter().all(|r| r.tunnel.is_none()));
    assert!(
        merged()
            .iter()
            .flat_map(|s| &s.reals)
            .all(|r| r.tunnel.is_none())
    );
    // The same table as the plain view, but for the tunnels added for the capture.
    assert_eq!(m.len(), listing("ipvsadm-Ln-exact.txt").services.len());
}

#[test]
fn tun_info_that_is_not_understood_names_its_line() {
    let text = fixture("ipvsadm-Ln-exact-tun-info.txt").replace("gue:6080:+c", "gue:6080:?c");
    let e = ipvsadm_list(&text).expect_err("bad tunnel info");
    assert!(e.to_string().contains("unknown tunnel info"), "{e}");
    assert!(e.line > 3, "{e}");
    // A plain listing cannot be merged as another view of a --tun-info one.
    let tun = listing("ipvsadm-Ln-exact-tun-info.txt");
    assert!(merge_ipvsadm(&tun, &[listing("ipvsadm-Ln-exact.txt")]).is_err());
}

#[test]
fn captured_outputs_that_are_not_service_listings_are_refused() {
    for name in [
        "ipvsadm-Lnc.txt",
        "ipvsadm-Sn.txt",
        "ipvsadm-Ln-timeout.txt",
    ] {
        let e = ipvsadm_list(&fixture(name)).expect_err(name);
        assert_eq!(e.line, 1, "{name}");
    }
}

#[test]
fn captured_plain_view_ignores_scheduler_flags_in_parentheses() {
    let l = listing("ipvsadm-Ln-exact-f1.txt");
    assert_eq!(
        l.services[0].key,
        ServiceKey::Fwmark {
            mark: 1,
            family: AddressFamily::Inet
        }
    );
    assert_eq!(
        l.services[0].columns,
        IpvsadmServiceColumns::Plain {
            scheduler: "sh".into(),
            persistent: None,
            ops: false
        }
    );
    let m = merged();
    let mh = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.110", 8013))
        .expect("service");
    assert_eq!(mh.scheduler.as_deref(), Some("mh"));
}

#[test]
fn captured_stats_view_reads_exact_counters() {
    let l = listing("ipvsadm-Ln-exact-stats.txt");
    let dr = &l.services[0];
    assert_eq!(dr.key, tcp("10.77.1.100", 80));
    assert_eq!(
        dr.columns,
        IpvsadmServiceColumns::Stats(IpvsCounters {
            conns: 13,
            in_packets: 63,
            out_packets: 51,
            in_bytes: 3898,
            out_bytes: 4233
        })
    );
    assert_eq!(
        dr.reals[0].columns,
        IpvsadmRealColumns::Stats(IpvsCounters {
            conns: 6,
            in_packets: 37,
            out_packets: 31,
            in_bytes: 2342,
            out_bytes: 2715
        })
    );
}

#[test]
fn captured_views_merge_into_full_samples() {
    let m = merged();
    assert_eq!(m.len(), 24);
    let dr = &m[0];
    assert_eq!(dr.key, tcp("10.77.1.100", 80));
    assert_eq!(dr.scheduler.as_deref(), Some("wlc"));
    assert_eq!(dr.totals.map(|t| (t.conns, t.in_bytes)), Some((13, 3898)));
    let rates = dr.rates.expect("rates");
    assert_eq!(
        (
            rates.cps,
            rates.in_pps,
            rates.out_pps,
            rates.in_bps,
            rates.out_bps
        ),
        (0.0, 2.0, 1.0, 94.0, 103.0)
    );
    let ids: Vec<String> = dr.reals.iter().map(|r| r.id()).collect();
    assert_eq!(ids, ["10.77.0.11:80", "10.77.0.12:80", "10.77.0.13:80"]);
    let r11 = &dr.reals[0];
    assert_eq!(
        (
            r11.forward,
            r11.weight,
            r11.active_conns,
            r11.inactive_conns
        ),
        (Forward::Route, 1, 1, 5)
    );
    assert_eq!(r11.totals.map(|t| t.out_packets), Some(31));
    assert_eq!(r11.persistent_conns, Some(0));
    let r12 = &dr.reals[1];
    assert_eq!(
        r12.rates.map(|r| (r.in_pps, r.in_bps, r.out_bps)),
        Some((1.0, 72.0, 91.0))
    );
    let r13 = &dr.reals[2];
    assert_eq!((r13.upper_threshold, r13.lower_threshold), (1000, 800));

    let nat = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.100", 8080))
        .expect("service");
    let weights: Vec<(i32, u32, u32)> = nat
        .reals
        .iter()
        .map(|r| (r.weight, r.upper_threshold, r.lower_threshold))
        .collect();
    assert_eq!(weights, vec![(65535, 0, 0), (1, 50, 0), (0, 0, 0)]);

    let p300 = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.103", 80))
        .expect("service");
    assert_eq!(
        p300.persistent,
        Some(Persistence {
            timeout_s: 300,
            netmask: "255.255.255.255".into()
        })
    );
    assert_eq!(p300.reals[2].persistent_conns, Some(1));
    let p600 = m
        .iter()
        .find(|s| s.key == tcp("10.77.1.104", 80))
        .expect("service");
    assert_eq!(
        p600.persistent.as_ref().map(|p| p.netmask.as_str()),
        Some("255.255.255.0")
    );

    let fwm2 = m
        .iter()
        .find(|s| {
            s.key
                == ServiceKey::Fwmark {
                    mark: 2,
                    family: AddressFamily::Inet6,
                }
        })
        .expect("IPv6 mark service");
    assert_eq!(fwm2.scheduler.as_deref(), Some("wlc"));
    assert!(fwm2.totals.is_some() && fwm2.rates.is_some());
    assert!(m.iter().all(|s| s.totals.is_some() && s.rates.is_some()));
}

#[test]
fn captured_udp_service_keeps_one_packet_scheduling() {
    let m = merged();
    let udp = m
        .iter()
        .find(|s| s.key.protocol() == Some(Protocol::Udp))
        .expect("UDP service");
    assert!(udp.ops);
    assert_eq!(udp.reals.len(), 3);
}

/// A real server's address, port, forwarding method and weight.
type RealConfig = (IpAddr, u16, Forward, i32);

/// What both sources know about a service: everything but the connection counts, which moved
/// between the two captures.
#[derive(Debug, PartialEq)]
struct Configuration {
    key: ServiceKey,
    scheduler: Option<String>,
    persistent: Option<Persistence>,
    ops: bool,
    reals: Vec<RealConfig>,
}

fn configuration(s: &VirtualServiceSample) -> Configuration {
    let mut reals: Vec<RealConfig> = s
        .reals
        .iter()
        .map(|r| (r.address, r.port, r.forward, r.weight))
        .collect();
    reals.sort_by_key(|r| (r.0, r.1));
    Configuration {
        key: s.key,
        scheduler: s.scheduler.clone(),
        persistent: s.persistent.clone(),
        ops: s.ops,
        reals,
    }
}

#[test]
fn captured_ipvsadm_and_proc_describe_the_same_table() {
    let mut from_proc: Vec<_> = ip_vs(&fixture("ip_vs"))
        .expect("parses")
        .iter()
        .map(configuration)
        .collect();
    let mut from_ipvsadm: Vec<_> = merged().iter().map(configuration).collect();
    from_proc.sort_by_key(|c| c.key);
    from_ipvsadm.sort_by_key(|c| c.key);
    assert_eq!(from_proc, from_ipvsadm);
}

#[test]
fn captured_counters_only_grow_between_samples() {
    let a = listing("ipvsadm-Ln-exact-stats.txt");
    let b = listing("sample2/ipvsadm-Ln-exact-stats.txt");
    assert_eq!(a.services.len(), b.services.len());
    for (x, y) in a.services.iter().zip(&b.services) {
        assert_eq!(x.key, y.key);
        let (IpvsadmServiceColumns::Stats(p), IpvsadmServiceColumns::Stats(q)) =
            (&x.columns, &y.columns)
        else {
            panic!("stats view without counters");
        };
        assert!(
            q.conns >= p.conns && q.in_packets >= p.in_packets && q.in_bytes >= p.in_bytes,
            "{:?}",
            x.key
        );
    }
}
