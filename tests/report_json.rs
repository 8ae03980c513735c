//! The hand-written JSON writer (`report::write_snapshot`) against the serde reference
//! (`tests/support/serde_snapshot.rs`): byte for byte the same as serde_json's output of the snapshot with CPU
//! percentages rounded to two decimals, for the scripted cluster and for generated states full of
//! edge cases (control characters and quotes in names and errors, NaN and infinite numbers,
//! IPv6, firewall marks, unknown tunnel kinds, times before 1970 and past 9999).

mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbtop::app::{State, StateOptions};
use lbtop::model::sample::{
    AddressFamily, ConnSummary, CpuTimes, Forward, HostStatus, IpvsCounters, IpvsGlobalStats,
    IpvsInfo, IpvsRates, IpvsTimeouts, LoadAvg, MemInfo, NodeSample, Persistence, ProcStat,
    Protocol, RealServerSample, Report, RouterSample, RouterSourceKind, ServiceKey, SourceEvent,
    Timestamp, TunnelEncap, TunnelKind, Uptime, VirtualServiceSample,
};
use lbtop::report;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use support::serde_snapshot;

/// What the writer writes, and what serde writes of the reference snapshot: rounded, and as is.
fn both(state: &State) -> (String, String, Value) {
    let mut line = Vec::new();
    report::write_snapshot(state, &mut line);
    let mut snap = serde_snapshot::snapshot(state);
    // Through text, as the writer's output is read back: the same parser on both sides.
    let exact = serde_json::from_str(&serde_json::to_string(&snap).expect("serde")).expect("JSON");
    serde_snapshot::round_percentages(&mut snap);
    let rounded = serde_json::to_string(&snap).expect("serde");
    (String::from_utf8(line).expect("utf-8"), rounded, exact)
}

/// The writer's output parses, and differs from the exact serde snapshot only in the CPU
/// percentages, each by at most half a hundredth.
fn check_against_exact(written: &str, mut exact: Value) -> Result<(), TestCaseError> {
    let got: Value = serde_json::from_str(written)
        .map_err(|e| TestCaseError::fail(format!("not JSON: {e}: {written}")))?;
    let nodes = exact["nodes"].as_array_mut().map(|a| a.len()).unwrap_or(0);
    for i in 0..nodes {
        let mut fields = vec![("cpu_total_percent".to_string(), None)];
        let cores = exact["nodes"][i]["cpus"].as_array().map_or(0, Vec::len);
        for c in 0..cores {
            // Indexing a `null` mutably would turn it into an object: leave absent CPUs alone.
            if !exact["nodes"][i]["cpus"][c].is_object() {
                continue;
            }
            for k in [
                "user", "nice", "system", "iowait", "irq", "softirq", "steal", "idle",
            ] {
                fields.push((k.to_string(), Some(c)));
            }
        }
        for (k, core) in fields {
            let (old, new) = match core {
                None => (
                    &mut exact["nodes"][i][&k],
                    &got["nodes"][i]["cpu_total_percent"],
                ),
                Some(c) => (
                    &mut exact["nodes"][i]["cpus"][c][&k],
                    &got["nodes"][i]["cpus"][c][&k],
                ),
            };
            if let (Some(a), Some(b)) = (old.as_f64(), new.as_f64()) {
                prop_assert!(
                    (a - b).abs() <= 0.005 + 1e-9 * a.abs(),
                    "{k}: {a} written as {b}"
                );
                *old = new.clone();
            }
        }
    }
    prop_assert_eq!(got, exact);
    Ok(())
}

#[test]
fn the_scripted_cluster_is_written_byte_for_byte_as_serde_writes_it() {
    let shape = ClusterShape {
        nodes: 12,
        cores: 8,
        services: 12,
        reals_per_service: 4,
    };
    let mut c = ScriptedCluster::new(shape, 3);
    let mut s = State::new(StateOptions::default());
    for step in 0..5 {
        for e in c.step() {
            s.ingest(e);
        }
        s.tick(c.time());
        let (written, rounded, exact) = both(&s);
        assert_eq!(written, rounded, "step {step}");
        check_against_exact(&written, exact).expect("close to the exact snapshot");
    }
}

#[test]
fn a_pair_is_written_as_serde_writes_it_with_master_sync_and_drift() {
    use lbtop::model::sample::{LocalAddrs, SyncDaemon, SyncRole};
    let shape = ClusterShape {
        nodes: 2,
        cores: 2,
        services: 3,
        reals_per_service: 2,
    };
    let mut c = ScriptedCluster::new(shape, 5);
    let mut s = State::new(StateOptions::default());
    s.add_pair("lb1", "lb2\"");
    let daemon = |role| {
        Some(vec![SyncDaemon {
            role,
            mcast_ifn: "eth\u{1}0".into(),
            syncid: 7,
        }])
    };
    for step in 0..3 {
        for e in c.step() {
            let SourceEvent::Router {
                report: Report::Sample(mut a),
                ..
            } = e
            else {
                s.ingest(e);
                continue;
            };
            let vips: Vec<(Ipv4Addr, u8)> = a
                .services
                .iter()
                .filter_map(|v| match v.key {
                    ServiceKey::Addr {
                        address: IpAddr::V4(x),
                        ..
                    } => Some((x, 32)),
                    _ => None,
                })
                .collect();
            let mut b = a.clone();
            a.addrs = Some(LocalAddrs {
                v4: vips,
                v6: Vec::new(),
            });
            a.sync = daemon(SyncRole::Master);
            b.addrs = Some(LocalAddrs::default());
            b.sync = daemon(SyncRole::Backup);
            if step == 2 {
                b.services[0].reals[0].weight += 3;
                b.services.pop();
            }
            for (host, sample) in [("lb1", a), ("lb2\"", b)] {
                s.ingest(SourceEvent::Router {
                    host: host.into(),
                    report: Report::Sample(sample),
                });
            }
        }
        s.tick(c.time());
        let (written, rounded, exact) = both(&s);
        assert_eq!(written, rounded, "step {step}");
        check_against_exact(&written, exact).expect("close to the exact snapshot");
    }
    let v: Value = serde_json::from_str(&both(&s).0).expect("JSON");
    let p = &v["router"]["pair"];
    assert_eq!(p["master"], "lb1", "{p}");
    assert_eq!(p["sync"], "ok", "{p}");
    assert_eq!(p["drift"].as_array().map(Vec::len), Some(2), "{p}");
}

#[test]
fn an_empty_state_and_a_state_without_a_router_are_written_too() {
    let mut s = State::new(StateOptions::default());
    *s.testing_parts().1 = Timestamp(0);
    let (written, rounded, _) = both(&s);
    assert_eq!(written, rounded);
    assert_eq!(
        written,
        r#"{"schema":1,"time":"1970-01-01T00:00:00.000Z","router":null,"nodes":[],"alerts":[]}"#
    );
    s.add_router("r\"1\n");
    s.add_node("n\u{1}", "h\\");
    let (written, rounded, _) = both(&s);
    assert_eq!(written, rounded);
}

// ───────────────────────────── generated states ─────────────────────────────

/// Text from outside: mostly names, sometimes any characters at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9.-]{0,10}",
        2 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => vec(prop::sample::select(vec!['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{7f}', 'é', '\u{2028}', '😀', 'a']), 0..8)
            .prop_map(String::from_iter),
    ]
}

/// A float as a source might report it, NaN and infinities included.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0..64.0f64,
        2 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(1e-7),
        1 => Just(1e16),
    ]
}

fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..1_000_000, 1 => any::<u64>()]
}

fn time() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        6 => (1_700_000_000_000i64..1_800_000_000_000).prop_map(Timestamp),
        1 => any::<i64>().prop_map(Timestamp),
        1 => (-100_000_000_000i64..0).prop_map(Timestamp),
    ]
}

fn status() -> impl Strategy<Value = HostStatus> {
    prop::sample::select(vec![
        HostStatus::Connecting,
        HostStatus::Ok,
        HostStatus::Unreachable,
        HostStatus::AuthFailed,
        HostStatus::HostKeyUnknown,
        HostStatus::HostKeyChanged,
        HostStatus::Error,
    ])
}

fn cpu_times() -> impl Strategy<Value = CpuTimes> {
    vec(0u64..1000, 8).prop_map(|v| CpuTimes {
        user: v[0],
        nice: v[1],
        system: v[2],
        idle: v[3],
        iowait: v[4],
        irq: v[5],
        softirq: v[6],
        steal: v[7],
        guest: 0,
        guest_nice: 0,
    })
}

fn add(a: &CpuTimes, b: &CpuTimes) -> CpuTimes {
    CpuTimes {
        user: a.user + b.user,
        nice: a.nice + b.nice,
        system: a.system + b.system,
        idle: a.idle + b.idle,
        iowait: a.iowait + b.iowait,
        irq: a.irq + b.irq,
        softirq: a.softirq + b.softirq,
        steal: a.steal + b.steal,
        guest: 0,
        guest_nice: 0,
    }
}

/// A node: two samples (so CPU percentages are derived), or a status, or both.
#[derive(Debug, Clone)]
struct NodeCase {
    name: String,
    host: String,
    first: Vec<CpuTimes>,
    step: Vec<CpuTimes>,
    load: [f64; 3],
    memory: (u64, u64),
    uptime: f64,
    samples: usize,
    status: Option<(HostStatus, Option<String>)>,
}

fn node_case() -> BoxedStrategy<NodeCase> {
    (
        text(),
        text(),
        1usize..5,
        (float(), float(), float()),
        (counter(), counter()),
        float(),
        0usize..3,
        prop::option::of((status(), prop::option::of(text()))),
    )
        .prop_flat_map(
            |(name, host, cores, load, memory, uptime, samples, status)| {
                (
                    vec(cpu_times(), cores),
                    vec(cpu_times(), cores),
                    Just((name, host, load, memory, uptime, samples, status)),
                )
            },
        )
        .prop_map(
            |(first, step, (name, host, load, memory, uptime, samples, status))| NodeCase {
                name,
                host,
                first,
                step,
                load: [load.0, load.1, load.2],
                memory,
                uptime,
                samples,
                status,
            },
        )
        .boxed()
}

fn node_sample(n: &NodeCase, time: Timestamp, second: bool) -> NodeSample {
    let cpus: Vec<CpuTimes> = if second {
        n.first
            .iter()
            .zip(&n.step)
            .map(|(a, b)| add(a, b))
            .collect()
    } else {
        n.first.clone()
    };
    let total = cpus.iter().fold(CpuTimes::default(), |acc, c| add(&acc, c));
    NodeSample {
        time,
        stat: ProcStat {
            total,
            cpu_ids: (0..cpus.len() as u32).collect(),
            cpus,
            ..ProcStat::default()
        },
        load: LoadAvg {
            one: n.load[0],
            five: n.load[1],
            fifteen: n.load[2],
            ..LoadAvg::default()
        },
        memory: MemInfo {
            total_bytes: n.memory.0,
            available_bytes: n.memory.1,
            ..MemInfo::default()
        },
        uptime: Uptime {
            uptime_s: n.uptime,
            idle_s: 0.0,
        },
        facts: None,
        net: None,
    }
}

fn address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u16; 8]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

fn counters() -> BoxedStrategy<IpvsCounters> {
    (counter(), counter(), counter(), counter(), counter())
        .prop_map(|(a, b, c, d, e)| IpvsCounters {
            conns: a,
            in_packets: b,
            out_packets: c,
            in_bytes: d,
            out_bytes: e,
        })
        .boxed()
}

fn rates() -> BoxedStrategy<IpvsRates> {
    (float(), float(), float(), float(), float())
        .prop_map(|(a, b, c, d, e)| IpvsRates {
            cps: a,
            in_pps: b,
            out_pps: c,
            in_bps: d,
            out_bps: e,
        })
        .boxed()
}

fn real() -> BoxedStrategy<RealServerSample> {
    (
        address(),
        any::<u16>(),
        prop::sample::select(vec![
            Forward::Route,
            Forward::Masq,
            Forward::Tunnel,
            Forward::Local,
            Forward::Unknown,
        ]),
        any::<i32>(),
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of(counters()),
        prop::option::of(rates()),
        prop::option::of((any::<u8>(), any::<u16>(), any::<u16>())),
    )
        .prop_map(
            |(address, port, forward, weight, (up, low, act, inact), pers, totals, rates, tun)| {
                RealServerSample {
                    address,
                    port,
                    forward,
                    weight,
                    upper_threshold: up,
                    lower_threshold: low,
                    active_conns: act,
                    inactive_conns: inact,
                    persistent_conns: pers,
                    totals,
                    rates,
                    tunnel: tun.map(|(k, port, flags)| TunnelEncap {
                        kind: TunnelKind::from_kernel(k % 5),
                        port,
                        flags,
                    }),
                }
            },
        )
        .boxed()
}

fn service() -> BoxedStrategy<VirtualServiceSample> {
    (
        prop_oneof![
            (
                prop::sample::select(vec![Protocol::Tcp, Protocol::Udp, Protocol::Sctp]),
                address(),
                any::<u16>()
            )
                .prop_map(|(protocol, address, port)| ServiceKey::Addr {
                    protocol,
                    address,
                    port
                }),
            any::<u32>().prop_map(|mark| ServiceKey::Fwmark {
                mark,
                family: AddressFamily::Inet6
            }),
        ],
        prop::option::of(text()),
        prop::option::of((any::<u32>(), text())),
        any::<bool>(),
        prop::option::of(counters()),
        prop::option::of(rates()),
        prop::option::of(any::<u32>()),
        prop::option::of(text()),
        vec(real(), 0..4),
    )
        .prop_map(
            |(key, scheduler, persistent, ops, totals, rates, flags, pe_name, reals)| {
                VirtualServiceSample {
                    key,
                    scheduler,
                    persistent: persistent
                        .map(|(timeout_s, netmask)| Persistence { timeout_s, netmask }),
                    ops,
                    totals,
                    rates,
                    flags,
                    pe_name,
                    reals,
                }
            },
        )
        .boxed()
}

/// The router: two samples (the second's counters advanced, so rates are derived), then maybe
/// a status.
#[derive(Debug, Clone)]
struct RouterCase {
    host: String,
    sample: RouterSample,
    advance: u64,
    samples: usize,
    status: Option<(HostStatus, Option<String>)>,
}

fn router_case() -> BoxedStrategy<RouterCase> {
    (
        text(),
        (
            prop::sample::select(vec![
                RouterSourceKind::Netlink,
                RouterSourceKind::Proc,
                RouterSourceKind::Ssh,
                RouterSourceKind::Prometheus,
            ]),
            vec(service(), 0..4),
            prop::option::of((counters(), prop::option::of(rates()))),
            prop::option::of((
                counter(),
                prop::collection::btree_map(text(), counter(), 0..3),
                prop::collection::btree_map(text(), counter(), 0..3),
            )),
            vec(text(), 0..3),
            prop::option::of((
                text(),
                any::<u32>(),
                prop::option::of((any::<u32>(), any::<u32>(), any::<u32>())),
            )),
        ),
        0u64..1000,
        0usize..3,
        prop::option::of((status(), prop::option::of(text()))),
    )
        .prop_map(
            |(host, (source, services, global, conns, notes, ipvs), advance, samples, status)| {
                // Some real servers get connection states, keyed as the writer looks them up.
                let connections = conns.map(|(total, by_state, extra)| {
                    let mut by_real_state: BTreeMap<String, BTreeMap<String, u64>> = services
                        .iter()
                        .flat_map(|s| s.reals.iter().step_by(2))
                        .map(|r| (r.id(), by_state.clone()))
                        .collect();
                    by_real_state.insert("[::1]:1".into(), extra);
                    ConnSummary {
                        total,
                        by_state,
                        by_real_state,
                        top_clients: Vec::new(),
                    }
                });
                RouterCase {
                    host,
                    sample: RouterSample {
                        time: Timestamp(0),
                        source,
                        services,
                        global: global.map(|(totals, rates)| IpvsGlobalStats { totals, rates }),
                        connections,
                        notes,
                        ipvs: ipvs.map(|(version, conn_table_size, t)| IpvsInfo {
                            version,
                            conn_table_size,
                            timeouts: t.map(|(tcp_s, tcp_fin_s, udp_s)| IpvsTimeouts {
                                tcp_s,
                                tcp_fin_s,
                                udp_s,
                            }),
                        }),
                        parts: Default::default(),
                        sysctl: None,
                        addrs: None,
                        owners: None,
                        sync: None,
                    },
                    advance,
                    samples,
                    status,
                }
            },
        )
        .boxed()
}

fn advanced(mut s: RouterSample, by: u64, time: Timestamp) -> RouterSample {
    s.time = time;
    // As a router over SSH carries parts read earlier: ages in the JSON.
    s.parts.connections = Some(Timestamp(time.0.saturating_sub(by.min(100_000) as i64)));
    let bump = |c: &mut IpvsCounters| {
        c.conns = c.conns.wrapping_add(by);
        c.in_bytes = c.in_bytes.wrapping_add(by * 1500);
    };
    for svc in &mut s.services {
        svc.totals.as_mut().map(bump);
        for r in &mut svc.reals {
            r.totals.as_mut().map(bump);
        }
    }
    s
}

fn build(t0: Timestamp, dt: i64, router: Option<RouterCase>, nodes: &[NodeCase]) -> State {
    let mut s = State::new(StateOptions::default());
    let t1 = Timestamp(t0.0.saturating_add(dt));
    if let Some(r) = &router {
        s.add_router(&r.host);
        for i in 0..r.samples {
            let time = if i == 0 { t0 } else { t1 };
            let sample = if i == 0 {
                RouterSample {
                    time,
                    ..r.sample.clone()
                }
            } else {
                advanced(r.sample.clone(), r.advance, time)
            };
            s.ingest(SourceEvent::Router {
                host: r.host.clone(),
                report: Report::Sample(sample),
            });
        }
        if let Some((status, message)) = &r.status {
            s.ingest(SourceEvent::Router {
                host: r.host.clone(),
                report: Report::Status {
                    time: t1,
                    status: *status,
                    message: message.clone(),
                },
            });
        }
    }
    for n in nodes {
        s.add_node(&n.name, &n.host);
        for i in 0..n.samples {
            let time = if i == 0 { t0 } else { t1 };
            s.ingest(SourceEvent::Node {
                name: n.name.clone(),
                host: n.host.clone(),
                report: Report::Sample(node_sample(n, time, i > 0)),
            });
        }
        if let Some((status, message)) = &n.status {
            s.ingest(SourceEvent::Node {
                name: n.name.clone(),
                host: n.host.clone(),
                report: Report::Status {
                    time: t1,
                    status: *status,
                    message: message.clone(),
                },
            });
        }
    }
    s.tick(Timestamp(t1.0.saturating_add(dt.saturating_mul(4))));
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn the_writer_writes_what_serde_writes_of_the_rounded_snapshot(
        t0 in time(),
        dt in prop_oneof![Just(1000i64), 1i64..5000, Just(0)],
        router in prop::option::of(router_case()),
        nodes in vec(node_case(), 0..4),
    ) {
        let state = build(t0, dt, router, &nodes);
        let (written, rounded, exact) = both(&state);
        prop_assert_eq!(&written, &rounded);
        check_against_exact(&written, exact)?;
    }
}
