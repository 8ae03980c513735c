//! The JSON snapshot as serde values: the reference `lbtop::report::write_snapshot` is tested
//! against, byte for byte (`tests/report_json.rs`), and the benchmark's alternative
//! (`benches/record.rs`). The shipped path never builds these. Adding a field to schema 1 means
//! adding it to both.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use lbtop::app::State;
use lbtop::model::alert::Severity;
use lbtop::model::sample::{
    IpvsCounters, IpvsInfo, IpvsRates, PartAges, Persistence, RealServerSample, RouterSysctl,
    ServiceKey, SyncDaemon, TunnelEncap, VirtualServiceSample,
};
use lbtop::model::snapshot::{CpuPercent, RealStats, ServiceStats};

use lbtop::report::SCHEMA;

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub schema: u32,
    pub time: String,
    pub router: Option<Router>,
    pub nodes: Vec<Node>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Serialize)]
pub struct Router {
    pub host: String,
    pub source: Option<&'static str>,
    /// The fields of services and real servers the source cannot know (null in them).
    pub unknown: &'static [&'static str],
    pub status: &'static str,
    /// The connection as the nodes' `status` tells it (`ok`, `unreachable`, `auth-failed`, …).
    pub host_status: &'static str,
    pub error: Option<String>,
    pub services: Vec<Service>,
    pub connections: Option<Connections>,
    /// Router-wide counters and rates from `/proc/net/ip_vs_stats`, when read.
    pub totals: Option<IpvsCounters>,
    pub rates: Option<IpvsRates>,
    pub notes: Vec<String>,
    /// Version, connection-table size and timeouts, when read over netlink.
    pub ipvs: Option<IpvsInfo>,
    /// How much older than the sample its costlier parts are (a router over SSH reads them as
    /// its CPU budget allows).
    pub ages_s: Option<PartAges>,
    /// The router's forwarding and IPVS expiry settings, where read.
    pub sysctl: Option<RouterSysctl>,
    /// Each VIP and whether it is a local address of the router, where its addresses were read.
    pub vips: Option<Vec<Vip>>,
    /// The router's own set-up problems, as sentences.
    pub problems: Vec<String>,
    /// The programs on the router that manage the table, where its process table was read.
    pub owners: Option<Vec<String>>,
    /// The connection-sync daemons, where they were read.
    pub sync: Option<Vec<SyncDaemon>>,
    /// The HA pair, when two directors are watched.
    pub pair: Option<Pair>,
}

#[derive(Debug, Serialize)]
pub struct Pair {
    pub master: Option<String>,
    pub state: &'static str,
    pub sync: &'static str,
    pub sync_problem: Option<String>,
    pub directors: Vec<Director>,
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Director {
    pub host: String,
    pub role: Option<&'static str>,
    pub host_status: &'static str,
    pub error: Option<String>,
    pub holds_vips: Option<bool>,
    pub services: Option<usize>,
    pub connections: Option<DirectorConns>,
    pub owners: Option<Vec<String>>,
    pub sync: Option<Vec<SyncDaemon>>,
}

#[derive(Debug, Serialize)]
pub struct DirectorConns {
    pub active: u64,
    pub inactive: u64,
}

fn pair(state: &State) -> Option<Pair> {
    use lbtop::app::SyncHealth;
    use lbtop::model::pair::Master;
    let p = state.pair()?;
    let roles = p.roles();
    let health = p.sync();
    let names = [p.names[0].as_str(), p.names[1].as_str()];
    Some(Pair {
        master: roles.map(|(m, _)| p.names[m].clone()),
        state: match p.master {
            Master::One(_) => "master",
            Master::Both => "both",
            Master::Neither => "neither",
            Master::Unknown => "unknown",
        },
        sync: match &health {
            SyncHealth::Ok => "ok",
            SyncHealth::Wrong(_) => "wrong",
            SyncHealth::Unknown => "unknown",
        },
        sync_problem: match health {
            SyncHealth::Wrong(w) => Some(w),
            _ => None,
        },
        directors: (0..2)
            .map(|i| {
                let side = &p.sides[i];
                let cur = side.cur.as_ref();
                Director {
                    host: p.names[i].clone(),
                    role: roles.map(|(m, _)| if m == i { "master" } else { "backup" }),
                    host_status: side.status.as_str(),
                    error: side
                        .message
                        .clone()
                        .filter(|_| side.status != lbtop::model::sample::HostStatus::Ok),
                    holds_vips: cur.and_then(|c| {
                        let addrs = c.addrs.as_ref()?;
                        let vips = lbtop::model::dr::service_vips(c);
                        let held = vips.iter().filter(|v| addrs.holds(**v)).count();
                        match held {
                            0 => Some(false),
                            h if h == vips.len() => Some(true),
                            _ => None,
                        }
                    }),
                    services: cur.map(|c| c.services.len()),
                    connections: p.connections()[i]
                        .map(|(active, inactive)| DirectorConns { active, inactive }),
                    owners: cur.and_then(|c| c.owners.clone()),
                    sync: cur.and_then(|c| c.sync.clone()),
                }
            })
            .collect(),
        drift: p.drift.iter().map(|d| d.describe(names)).collect(),
    })
}

#[derive(Debug, Serialize)]
pub struct Vip {
    pub address: IpAddr,
    pub local: bool,
}

#[derive(Debug, Serialize)]
pub struct Service {
    pub id: String,
    pub protocol: Option<&'static str>,
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub fwmark: Option<u32>,
    pub scheduler: Option<String>,
    pub persistent: Option<Persistence>,
    pub ops: bool,
    /// The kernel's IP_VS_SVC_F_* bits, when read over netlink.
    pub flags: Option<u32>,
    pub pe_name: Option<String>,
    pub totals: Option<IpvsCounters>,
    pub rates: Option<IpvsRates>,
    pub reals: Vec<Real>,
}

#[derive(Debug, Serialize)]
pub struct Real {
    pub id: String,
    pub address: IpAddr,
    pub port: u16,
    pub forward: Option<&'static str>,
    pub weight: i32,
    pub upper_threshold: Option<u32>,
    pub lower_threshold: Option<u32>,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persistent_conns: Option<u32>,
    pub totals: Option<IpvsCounters>,
    pub rates: Option<IpvsRates>,
    /// Encapsulation of a tunnelling real server, when read over netlink.
    pub tunnel: Option<TunnelEncap>,
    pub conn_states: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Serialize)]
pub struct Connections {
    pub total: u64,
    pub by_state: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub name: String,
    pub host: String,
    pub status: &'static str,
    pub error: Option<String>,
    pub cores: Option<usize>,
    pub load: Option<[f64; 3]>,
    pub cpu_total_percent: Option<f64>,
    pub cpus: Option<Vec<Option<CpuPercent>>>,
    pub cpu_detail: Option<&'static str>,
    pub memory: Option<Memory>,
    pub uptime_s: Option<f64>,
    pub dr_problems: Option<Vec<String>>,
    pub alert: Option<Severity>,
}

#[derive(Debug, Serialize)]
pub struct Alert {
    pub time: String,
    pub severity: Severity,
    pub subject: String,
    pub message: String,
}

fn service(
    svc: &VirtualServiceSample,
    st: Option<&ServiceStats>,
    conns: Option<&lbtop::model::sample::ConnSummary>,
    thresholds: bool,
) -> Service {
    let (protocol, address, port, fwmark) = match svc.key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => (Some(protocol.as_str()), Some(address), Some(port), None),
        ServiceKey::Fwmark { mark, .. } => (None, None, None, Some(mark)),
    };
    Service {
        id: svc.key.to_string(),
        protocol,
        address,
        port,
        fwmark,
        scheduler: svc.scheduler.clone(),
        persistent: svc.persistent.clone(),
        ops: svc.ops,
        flags: svc.flags,
        pe_name: svc.pe_name.clone(),
        totals: svc.totals,
        rates: st.and_then(|s| s.rates),
        reals: svc
            .reals
            .iter()
            .enumerate()
            .map(|(i, r)| real(r, st.and_then(|s| s.reals.get(i)), conns, thresholds))
            .collect(),
    }
}

fn real(
    r: &RealServerSample,
    st: Option<&RealStats>,
    conns: Option<&lbtop::model::sample::ConnSummary>,
    thresholds: bool,
) -> Real {
    let id = r.id();
    Real {
        conn_states: conns.map(|c| c.by_real_state.get(&id).cloned().unwrap_or_default()),
        id,
        address: r.address,
        port: r.port,
        forward: r.forward.known_str(),
        weight: r.weight,
        upper_threshold: thresholds.then_some(r.upper_threshold),
        lower_threshold: thresholds.then_some(r.lower_threshold),
        active_conns: r.active_conns,
        inactive_conns: r.inactive_conns,
        persistent_conns: r.persistent_conns,
        totals: r.totals,
        rates: st.and_then(|s| s.rates),
        tunnel: r.tunnel,
    }
}

/// The state as a schema-1 snapshot value, at full precision (the reference for `write_snapshot`,
/// which rounds CPU percentages to two decimals; see `round_percentages`).
pub fn snapshot(state: &State) -> Snapshot {
    let router = state.router().map(|r| {
        let cur = r.cur.as_ref();
        let conns = cur.and_then(|c| c.connections.as_ref());
        let thresholds =
            !cur.is_some_and(|c| c.source.unknown_fields().contains(&"upper_threshold"));
        Router {
            host: r.host.clone(),
            source: cur.map(|c| c.source.as_str()),
            unknown: cur.map_or(&[][..], |c| c.source.unknown_fields()),
            status: if r.status == lbtop::model::sample::HostStatus::Ok {
                "ok"
            } else {
                "error"
            },
            host_status: r.status.as_str(),
            error: r
                .message
                .clone()
                .filter(|_| r.status != lbtop::model::sample::HostStatus::Ok),
            services: cur
                .map(|c| {
                    c.services
                        .iter()
                        .enumerate()
                        .map(|(i, s)| service(s, r.stats.services.get(i), conns, thresholds))
                        .collect()
                })
                .unwrap_or_default(),
            connections: conns.map(|c| Connections {
                total: c.total,
                by_state: c.by_state.clone(),
            }),
            totals: cur.and_then(|c| c.global.map(|g| g.totals)),
            rates: r.stats.global_rates,
            notes: cur.map(|c| c.notes.clone()).unwrap_or_default(),
            ipvs: cur.and_then(|c| c.ipvs.clone()),
            ages_s: cur.map(|c| c.parts.ages(c.time)),
            sysctl: cur.and_then(|c| c.sysctl),
            vips: cur.and_then(|c| {
                let addrs = c.addrs.as_ref()?;
                Some(
                    lbtop::model::dr::service_vips(c)
                        .into_iter()
                        .map(|address| Vip {
                            address,
                            local: addrs.holds(address),
                        })
                        .collect(),
                )
            }),
            problems: r.problems.clone(),
            owners: cur.and_then(|c| c.owners.clone()),
            sync: cur.and_then(|c| c.sync.clone()),
            pair: pair(state),
        }
    });
    let nodes = state
        .nodes()
        .iter()
        .map(|n| {
            let st = n.stats.as_ref();
            Node {
                name: n.name.clone(),
                host: n.host.clone(),
                status: n.status.as_str(),
                error: n.message.clone(),
                cores: st.map(|s| s.cores),
                load: st.map(|s| s.load),
                cpu_total_percent: st.and_then(|s| s.cpu_total).map(|c| c.busy()),
                cpus: st
                    .filter(|s| s.cpus.iter().any(Option::is_some))
                    .map(|s| s.cpus.clone()),
                cpu_detail: st.map(|s| s.cpu_detail()),
                memory: st.map(|s| Memory {
                    total_bytes: s.memory_total_bytes,
                    available_bytes: s.memory_available_bytes,
                }),
                uptime_s: st.map(|s| s.uptime_s),
                dr_problems: n.dr_problems.clone(),
                alert: state.alerts().worst(&n.name),
            }
        })
        .collect();
    // Newest first; alerts raised at the same moment keep the book's order (subject, kind).
    let mut active: Vec<_> = state.alerts().active().collect();
    active.sort_by_key(|a| std::cmp::Reverse(a.2.since));
    let alerts = active
        .into_iter()
        .map(|(subject, _, a)| Alert {
            time: a.since.rfc3339(),
            severity: a.severity,
            subject: subject.to_string(),
            message: a.message.clone(),
        })
        .collect();
    Snapshot {
        schema: SCHEMA,
        time: state.now().rfc3339(),
        router,
        nodes,
        alerts,
    }
}

/// Rounds the CPU percentages to two decimals, as `write_snapshot` writes them: with this, serde
/// writes a snapshot byte for byte as `write_snapshot` does.
pub fn round_percentages(snapshot: &mut Snapshot) {
    let round = |x: &mut f64| *x = (*x * 100.0).round() / 100.0;
    for n in &mut snapshot.nodes {
        if let Some(t) = &mut n.cpu_total_percent {
            round(t);
        }
        for c in n.cpus.iter_mut().flatten().flatten() {
            for x in [
                &mut c.user,
                &mut c.nice,
                &mut c.system,
                &mut c.iowait,
                &mut c.irq,
                &mut c.softirq,
                &mut c.steal,
                &mut c.idle,
            ] {
                round(x);
            }
        }
    }
}

use std::io::{self, Write};

use lbtop::app::playback::{Range, Summary, play};
use lbtop::record::player::Player;

/// JSON lines the way `json` wrote them before `report::write_snapshot`: a serde `Snapshot` value
/// per frame, serialised by serde_json on up to four worker threads (CPU percentages at full
/// precision). The benchmark's alternative (`benches/record.rs`, `export_1h`).
pub fn json_serde(
    player: &mut Player,
    state: &mut State,
    range: Range,
    out: &mut impl Write,
) -> io::Result<Summary> {
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "export stopped");
    std::thread::scope(|scope| {
        let mut to_workers: Vec<SyncSender<Snapshot>> = Vec::new();
        let mut from_workers: Vec<Receiver<Vec<u8>>> = Vec::new();
        // Written lines go back to their worker for reuse: no fresh quarter-megabyte per line.
        let mut spent: Vec<SyncSender<Vec<u8>>> = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<Snapshot>(4);
            let (ltx, lrx) = sync_channel::<Vec<u8>>(4);
            let (stx, srx) = sync_channel::<Vec<u8>>(8);
            scope.spawn(move || {
                for snap in rx {
                    let mut line = srx.try_recv().unwrap_or_default();
                    line.clear();
                    if serde_json::to_writer(&mut line, &snap).is_err() {
                        break;
                    }
                    line.push(b'\n');
                    if ltx.send(line).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(tx);
            from_workers.push(lrx);
            spent.push(stx);
        }
        // Lines go round the workers in turn, so reading them in turn keeps the order.
        let producer = scope.spawn(move || {
            let mut n = 0usize;
            play(
                player,
                state,
                range,
                |_, _| Ok(()),
                |state, _| {
                    to_workers[n % workers]
                        .send(snapshot(state))
                        .map_err(|_| gone())?;
                    n += 1;
                    Ok(())
                },
            )
        });
        let mut rows = 0u64;
        let mut written: io::Result<()> = Ok(());
        for i in 0.. {
            let Ok(line) = from_workers[i % workers].recv() else {
                break;
            };
            if let Err(e) = out.write_all(&line) {
                written = Err(e);
                break;
            }
            let _ = spent[i % workers].try_send(line);
            rows += 1;
        }
        drop(from_workers);
        let played = producer
            .join()
            .map_err(|_| io::Error::other("export thread panicked"))?;
        written?;
        let mut s = played?;
        s.rows = rows;
        out.flush()?;
        Ok(s)
    })
}
