//! A scripted source: a deterministic cluster of any size, for frame snapshots and benchmarks.
//! It produces the same raw samples real sources do (cumulative counters that advance between
//! steps), so everything downstream runs the real derivation.

use std::net::{IpAddr, Ipv4Addr};

use crate::model::sample::{
    ConnSummary, CpuTimes, Forward, HostFacts, IpvsCounters, IpvsGlobalStats, LoadAvg, MemInfo,
    NodeSample, Persistence, ProcStat, Protocol, RealServerSample, Report, RouterSample,
    RouterSourceKind, ServiceKey, SourceEvent, Timestamp, Uptime, VirtualServiceSample,
};

/// The shape of a scripted cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterShape {
    pub nodes: usize,
    pub cores: usize,
    pub services: usize,
    pub reals_per_service: usize,
}

/// A small deterministic generator (SplitMix64): same seed, same cluster, on every machine.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A scripted cluster that advances one interval per `step`.
#[derive(Debug, Clone)]
pub struct ScriptedCluster {
    shape: ClusterShape,
    rng: Rng,
    time: Timestamp,
    interval_ms: i64,
    cpus: Vec<Vec<CpuTimes>>,
    totals: Vec<Vec<IpvsCounters>>,
    bursts: Option<Bursts>,
}

/// A node that runs over its core count now and then, so that alerts are raised and cleared
/// all through a recording: `node` is at 1.3 × its cores for the first `length` steps of every
/// `every`, and as usual otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Bursts {
    pub node: usize,
    pub every: u64,
    pub length: u64,
}

/// Starts at 2026-01-01T00:00:00Z, so snapshots show fixed times.
pub const EPOCH: Timestamp = Timestamp(1_767_225_600_000);

impl ScriptedCluster {
    pub fn new(shape: ClusterShape, seed: u64) -> Self {
        Self {
            shape,
            rng: Rng(seed),
            time: EPOCH,
            interval_ms: 1000,
            cpus: vec![vec![CpuTimes::default(); shape.cores]; shape.nodes],
            totals: vec![vec![IpvsCounters::default(); shape.reals_per_service]; shape.services],
            bursts: None,
        }
    }

    /// The same cluster, with one node's load bursting over its core count (see `Bursts`).
    pub fn with_bursts(mut self, bursts: Bursts) -> Self {
        self.bursts = Some(bursts);
        self
    }

    /// How busy node `i` is at this step.
    fn busy_now(&self, i: usize) -> f64 {
        let step = (self.time.0.saturating_sub(EPOCH.0) / self.interval_ms.max(1)).max(0) as u64;
        match self.bursts {
            Some(b) if b.node == i && step % b.every.max(1) < b.length => 1.3,
            _ => Self::node_busy(i),
        }
    }

    pub fn node_name(i: usize) -> String {
        format!("web{:02}", i + 1)
    }

    pub(crate) fn node_address(i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 2) as u8))
    }

    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// Advances one interval and returns every source's report for it.
    pub fn step(&mut self) -> Vec<SourceEvent> {
        self.time = Timestamp(self.time.0 + self.interval_ms);
        let mut events = Vec::with_capacity(self.shape.nodes + 1);
        if self.shape.services > 0 {
            events.push(SourceEvent::Router {
                host: "lvs-router".into(),
                report: Report::Sample(self.router_sample()),
            });
        }
        for i in 0..self.shape.nodes {
            events.push(SourceEvent::Node {
                name: Self::node_name(i),
                host: Self::node_address(i).to_string(),
                report: Report::Sample(self.node_sample(i)),
            });
        }
        events
    }

    /// How busy node `i` is, 0–1.3: most nodes moderate, a few over their core count.
    fn node_busy(i: usize) -> f64 {
        match i % 7 {
            0 => 1.15,
            3 => 0.97,
            _ => 0.2 + (i % 5) as f64 * 0.12,
        }
    }

    fn node_sample(&mut self, i: usize) -> NodeSample {
        let busy = self.busy_now(i);
        let tick = 100u64; // jiffies per core per second
        for core in &mut self.cpus[i] {
            let b = (busy.min(1.0) * tick as f64) as u64;
            let b = b.saturating_sub(self.rng.below(8)).min(tick);
            let system = b / 4;
            let softirq = b / 20;
            let iowait = self.rng.below(3).min(tick - b);
            let steal = u64::from(i.is_multiple_of(11)) * 2;
            let user = b.saturating_sub(system + softirq + steal);
            core.user += user;
            core.system += system;
            core.softirq += softirq;
            core.steal += steal;
            core.iowait += iowait;
            core.idle += tick - b - iowait;
        }
        let mut total = CpuTimes::default();
        for c in &self.cpus[i] {
            total.user += c.user;
            total.system += c.system;
            total.softirq += c.softirq;
            total.steal += c.steal;
            total.iowait += c.iowait;
            total.idle += c.idle;
        }
        let cores = self.shape.cores as f64;
        NodeSample {
            time: self.time,
            stat: ProcStat {
                total,
                cpus: self.cpus[i].clone(),
                cpu_ids: (0..self.shape.cores as u32).collect(),
                ..ProcStat::default()
            },
            load: LoadAvg {
                one: (busy * cores * 100.0).round() / 100.0,
                five: (busy * cores * 0.9 * 100.0).round() / 100.0,
                fifteen: (busy * cores * 0.8 * 100.0).round() / 100.0,
                runnable: 1,
                entities: 300,
                last_pid: 4242,
            },
            memory: MemInfo {
                total_bytes: 64 << 30,
                free_bytes: 20 << 30,
                available_bytes: (40 - (i % 9) as u64) << 30,
                ..MemInfo::default()
            },
            uptime: Uptime {
                uptime_s: 86_400.0 * 3.0 + i as f64 * 3600.0,
                idle_s: 0.0,
            },
            facts: Some(HostFacts {
                hostname: Some(Self::node_name(i)),
                os: Some("Debian GNU/Linux 13".into()),
                kernel: Some("6.12.0-amd64".into()),
            }),
            net: None,
        }
    }

    fn router_sample(&mut self) -> RouterSample {
        let mut services = Vec::with_capacity(self.shape.services);
        let mut by_state = std::collections::BTreeMap::new();
        let mut global = IpvsCounters::default();
        for s in 0..self.shape.services {
            let svc = self.service_sample(s);
            if let Some(t) = &svc.totals {
                add_counts(&mut global, t);
            }
            for real in &svc.reals {
                *by_state.entry("ESTABLISHED".to_string()).or_insert(0) +=
                    u64::from(real.active_conns);
                *by_state.entry("FIN_WAIT".to_string()).or_insert(0) +=
                    u64::from(real.inactive_conns);
            }
            services.push(svc);
        }
        let total = by_state.values().sum();
        RouterSample {
            ipvs: None,
            parts: Default::default(),
            sysctl: None,
            addrs: None,
            owners: None,
            sync: None,
            time: self.time,
            source: RouterSourceKind::Netlink,
            services,
            global: Some(IpvsGlobalStats {
                totals: global,
                rates: Some(Default::default()),
            }),
            connections: Some(ConnSummary {
                total,
                by_state,
                ..ConnSummary::default()
            }),
            notes: Vec::new(),
        }
    }

    /// Service `s`: every tenth by firewall mark, every fifth over UDP, with its real servers
    /// one poll further on.
    fn service_sample(&mut self, s: usize) -> VirtualServiceSample {
        let key = if s % 10 == 9 {
            ServiceKey::Fwmark {
                mark: s as u32 + 1,
                family: crate::model::sample::AddressFamily::Inet,
            }
        } else {
            ServiceKey::Addr {
                protocol: if s % 5 == 4 {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10 + (s / 20) as u8)),
                port: 80 + (s % 20) as u16,
            }
        };
        let mut reals = Vec::with_capacity(self.shape.reals_per_service);
        let mut svc_totals = IpvsCounters::default();
        for r in 0..self.shape.reals_per_service {
            let real = self.real_sample(s, r);
            if let Some(t) = &real.totals {
                add_counts(&mut svc_totals, t);
            }
            reals.push(real);
        }
        VirtualServiceSample {
            flags: None,
            pe_name: None,
            key,
            scheduler: Some(if s.is_multiple_of(3) { "wlc" } else { "wrr" }.into()),
            persistent: (s % 6 == 5).then(|| Persistence {
                timeout_s: 300,
                netmask: "255.255.255.255".into(),
            }),
            ops: false,
            totals: Some(svc_totals),
            rates: None,
            reals,
        }
    }

    /// Real server `r` of service `s`, its counters one poll further on; the second real of the
    /// first service is drained.
    fn real_sample(&mut self, s: usize, r: usize) -> RealServerSample {
        let conns = 5 + self.rng.below(20);
        let t = &mut self.totals[s][r];
        t.conns += conns;
        t.in_packets += conns * 12;
        t.out_packets += conns * 10;
        t.in_bytes += conns * 1500;
        t.out_bytes += conns * 90_000;
        let totals = *t;
        let node = (s * self.shape.reals_per_service + r) % self.shape.nodes.max(1);
        let drained = s == 0 && r == 1;
        RealServerSample {
            tunnel: None,
            address: Self::node_address(node),
            port: 80,
            forward: match s % 4 {
                1 => Forward::Masq,
                2 => Forward::Tunnel,
                _ => Forward::Route,
            },
            weight: if drained { 0 } else { 1 + (r % 3) as i32 },
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: if drained {
                2
            } else {
                10 + self.rng.below(40) as u32
            },
            inactive_conns: 30 + self.rng.below(100) as u32,
            persistent_conns: Some(0),
            totals: Some(totals),
            rates: None,
        }
    }
}

/// Adds the counts the scripted cluster keeps (connections, packets, bytes) of `c` to `into`.
fn add_counts(into: &mut IpvsCounters, c: &IpvsCounters) {
    into.conns += c.conns;
    into.in_packets += c.in_packets;
    into.out_packets += c.out_packets;
    into.in_bytes += c.in_bytes;
    into.out_bytes += c.out_bytes;
}
