//! Derived values: CPU percentages and rates from two consecutive raw samples. Pure functions, used
//! alike by live and replay.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use super::sample::{
    CpuTimes, IpvsCounters, IpvsRates, NodeSample, ProcStat, RealServerSample, RouterSample,
    VirtualServiceSample,
};

/// Share of a CPU's time in each state over one interval, in percent (0–100).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct CpuPercent {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
    pub idle: f64,
}

impl CpuPercent {
    /// Time doing work: everything but idle and iowait, as htop counts it.
    pub fn busy(&self) -> f64 {
        (100.0 - self.idle - self.iowait).clamp(0.0, 100.0)
    }
}

/// Percentages from two readings of one CPU line. `None` when no time passed or a counter went
/// backwards (a CPU went offline and came back, or the counters were reset).
pub(crate) fn derive_cpu(prev: &CpuTimes, cur: &CpuTimes) -> Option<CpuPercent> {
    let d = |a: u64, b: u64| b.checked_sub(a);
    let user = d(prev.user, cur.user)?;
    let nice = d(prev.nice, cur.nice)?;
    let system = d(prev.system, cur.system)?;
    let idle = d(prev.idle, cur.idle)?;
    let iowait = d(prev.iowait, cur.iowait).unwrap_or(0); // iowait may legitimately dip on some kernels
    let irq = d(prev.irq, cur.irq)?;
    let softirq = d(prev.softirq, cur.softirq)?;
    let steal = d(prev.steal, cur.steal)?;
    let total = user + nice + system + idle + iowait + irq + softirq + steal;
    if total == 0 {
        return None;
    }
    let pct = |v: u64| v as f64 * 100.0 / total as f64;
    Some(CpuPercent {
        user: pct(user),
        nice: pct(nice),
        system: pct(system),
        iowait: pct(iowait),
        irq: pct(irq),
        softirq: pct(softirq),
        steal: pct(steal),
        idle: pct(idle),
    })
}

/// The increase of a cumulative counter. A 32-bit counter that wrapped is unwrapped; any other
/// decrease is a reset (a service re-created, a router rebooted) and gives `None`.
pub(crate) fn counter_delta(prev: u64, cur: u64) -> Option<u64> {
    if cur >= prev {
        return Some(cur - prev);
    }
    let max32 = u64::from(u32::MAX);
    if prev <= max32 && cur <= max32 {
        let wrapped = max32 - prev + cur + 1;
        // A genuine wrap comes from a value near the top; a big jump is a reset.
        if wrapped <= max32 / 2 {
            return Some(wrapped);
        }
    }
    None
}

/// Per-second rates from two counter readings `seconds` apart.
pub(crate) fn derive_rates(
    prev: &IpvsCounters,
    cur: &IpvsCounters,
    seconds: f64,
) -> Option<IpvsRates> {
    if seconds <= 0.0 || !seconds.is_finite() {
        return None;
    }
    let r = |a: u64, b: u64| counter_delta(a, b).map(|d| d as f64 / seconds);
    Some(IpvsRates {
        cps: r(prev.conns, cur.conns)?,
        in_pps: r(prev.in_packets, cur.in_packets)?,
        out_pps: r(prev.out_packets, cur.out_packets)?,
        in_bps: r(prev.in_bytes, cur.in_bytes)?,
        out_bps: r(prev.out_bytes, cur.out_bytes)?,
    })
}

/// What lbtop shows of a node at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeStats {
    pub cores: usize,
    pub load: [f64; 3],
    /// 1-minute load divided by cores: above 1.0 the node is over capacity.
    pub load_per_core: f64,
    pub cpu_total: Option<CpuPercent>,
    /// `cpu_total`'s busy time is not split by kind: its `user` is all of it
    /// (`ProcStat::busy_unsplit`).
    pub busy_unsplit: bool,
    /// One per core, in `/proc/stat` order; `None` for a core whose counters did not advance.
    pub cpus: Vec<Option<CpuPercent>>,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub uptime_s: f64,
}

impl NodeStats {
    /// Which CPU detail the source gave: `per-core`, `per-node` (the sums over the cores by
    /// kind), or `busy-only` (the node's busy and idle shares, iowait counted as busy, as
    /// Prometheus gives them for a fleet too large to ask for every core and mode).
    pub fn cpu_detail(&self) -> &'static str {
        if !self.cpus.is_empty() {
            "per-core"
        } else if self.busy_unsplit {
            "busy-only"
        } else {
            "per-node"
        }
    }

    pub(crate) fn memory_used_fraction(&self) -> Option<f64> {
        (self.memory_total_bytes > 0)
            .then(|| 1.0 - self.memory_available_bytes as f64 / self.memory_total_bytes as f64)
    }
}

/// Derives a node's view from its previous and current samples.
pub(crate) fn derive_node(prev: Option<&NodeSample>, cur: &NodeSample) -> NodeStats {
    let cores = cur.cores();
    let same_cpus = prev.filter(|p| p.stat.cpu_ids == cur.stat.cpu_ids);
    let cpus = match same_cpus {
        Some(p) => p
            .stat
            .cpus
            .iter()
            .zip(&cur.stat.cpus)
            .map(|(a, b)| derive_cpu(a, b))
            .collect(),
        None => vec![None; cur.stat.cpus.len()],
    };
    NodeStats {
        cores,
        load: [cur.load.one, cur.load.five, cur.load.fifteen],
        load_per_core: cur.load.one / cores as f64,
        cpu_total: prev.and_then(|p| derive_total(&p.stat, &cur.stat)),
        busy_unsplit: cur.stat.busy_unsplit,
        cpus,
        memory_total_bytes: cur.memory.total_bytes,
        memory_available_bytes: cur.memory.available_bytes,
        uptime_s: cur.uptime.uptime_s,
    }
}

/// How far a node's boot time may move and still be the same basis for an unsplit busy time:
/// NTP's steps and the kernel's rounding move it by seconds, a reboot or a stepped clock by more.
pub(crate) const SAME_BOOT_S: u64 = 60;

/// A node's CPU shares over its cores. An unsplit busy time is the cores' time since an origin
/// less idle, so it compares only with another such reading over the same cores and origin: a
/// change of any (a node that came on or left the screen and so got or lost its per-core lines,
/// a core that went offline, a boot time that moved by more than [`SAME_BOOT_S`]) gives `None`
/// for that one interval rather than a jump. Within it, the cores' time comes from two clock
/// readings whose jitter can exceed a quiet node's busy time: a busy time that went back is
/// taken as none.
fn derive_total(prev: &ProcStat, cur: &ProcStat) -> Option<CpuPercent> {
    let boot_moved = match (prev.boot_time, cur.boot_time) {
        (Some(a), Some(b)) => a.abs_diff(b) > SAME_BOOT_S,
        _ => false,
    };
    if prev.busy_unsplit != cur.busy_unsplit
        || (cur.busy_unsplit && (prev.online_cores != cur.online_cores || boot_moved))
    {
        return None;
    }
    if cur.busy_unsplit {
        let mut total = cur.total;
        total.user = total.user.max(prev.total.user);
        return derive_cpu(&prev.total, &total);
    }
    derive_cpu(&prev.total, &cur.total)
}

/// Derived values for one real server, parallel to `VirtualServiceSample::reals`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RealStats {
    /// The kernel's estimate when the source gives one, else the counter-delta rate.
    pub rates: Option<IpvsRates>,
    /// This server's weight as a share of the service's total weight (0–1).
    pub weight_share: f64,
    /// This server's active + inactive connections as a share of the service's (0–1).
    pub conn_share: f64,
}

/// Derived values for one virtual service, parallel to `RouterSample::services`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceStats {
    pub rates: Option<IpvsRates>,
    pub active_conns: u64,
    pub inactive_conns: u64,
    pub total_weight: i64,
    pub reals: Vec<RealStats>,
}

/// Derived values for the router, parallel to the current sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouterStats {
    pub services: Vec<ServiceStats>,
    /// Router-wide rates: the kernel's estimate from `ip_vs_stats`, else counter deltas.
    pub global_rates: Option<IpvsRates>,
}

fn pick_rates(
    kernel: Option<IpvsRates>,
    prev: Option<&IpvsCounters>,
    cur: Option<&IpvsCounters>,
    seconds: f64,
) -> Option<IpvsRates> {
    kernel.or_else(|| derive_rates(prev?, cur?, seconds))
}

/// The previous sample's items by key, the last one of a key winning (as collecting them into
/// a map does). A few are searched in place, many through a map: a router sample is derived
/// every poll, and hashing a handful of keys cost more than the rest of the derivation.
enum Previous<'a, T, K> {
    Few(&'a [T], fn(&T) -> K),
    Many(HashMap<K, &'a T>),
}

impl<'a, T, K: Eq + std::hash::Hash> Previous<'a, T, K> {
    const FEW: usize = 32;

    fn new(items: &'a [T], key: fn(&T) -> K) -> Self {
        if items.len() <= Self::FEW {
            Self::Few(items, key)
        } else {
            Self::Many(items.iter().map(|x| (key(x), x)).collect())
        }
    }

    fn get(&self, k: &K) -> Option<&'a T> {
        match self {
            Self::Few(items, key) => items.iter().rev().find(|x| key(x) == *k),
            Self::Many(map) => map.get(k).copied(),
        }
    }
}

fn real_key(r: &RealServerSample) -> (IpAddr, u16) {
    (r.address, r.port)
}

fn derive_service(
    prev: Option<&VirtualServiceSample>,
    cur: &VirtualServiceSample,
    seconds: f64,
) -> ServiceStats {
    let active_conns: u64 = cur.reals.iter().map(|r| u64::from(r.active_conns)).sum();
    let inactive_conns: u64 = cur.reals.iter().map(|r| u64::from(r.inactive_conns)).sum();
    let total_weight: i64 = cur.reals.iter().map(|r| i64::from(r.weight.max(0))).sum();
    let all_conns = active_conns + inactive_conns;
    let prev_reals = Previous::new(prev.map_or(&[][..], |p| &p.reals), real_key);
    let reals = cur
        .reals
        .iter()
        .map(|r| {
            let p = prev_reals.get(&real_key(r));
            let conns = u64::from(r.active_conns) + u64::from(r.inactive_conns);
            RealStats {
                rates: pick_rates(
                    r.rates,
                    p.and_then(|p| p.totals.as_ref()),
                    r.totals.as_ref(),
                    seconds,
                ),
                weight_share: if total_weight > 0 {
                    f64::from(r.weight.max(0)) / total_weight as f64
                } else {
                    0.0
                },
                conn_share: if all_conns > 0 {
                    conns as f64 / all_conns as f64
                } else {
                    0.0
                },
            }
        })
        .collect();
    ServiceStats {
        rates: pick_rates(
            cur.rates,
            prev.and_then(|p| p.totals.as_ref()),
            cur.totals.as_ref(),
            seconds,
        ),
        active_conns,
        inactive_conns,
        total_weight,
        reals,
    }
}

/// Derives the router's view from the sample its rates are measured from and the current one.
///
/// A router over SSH reads the per-service and per-real counters less often than `/proc`, and
/// its samples carry the latest counters with the time they were read: `prev` is then the last
/// sample with older counters ([`counters_advanced`]), and the rates span the two readings.
pub(crate) fn derive_router(prev: Option<&RouterSample>, cur: &RouterSample) -> RouterStats {
    let seconds = prev.map_or(0.0, |p| {
        cur.counters_time().seconds_since(p.counters_time())
    });
    let global_seconds = prev.map_or(0.0, |p| cur.time.seconds_since(p.time));
    let prev_services = Previous::new(prev.map_or(&[][..], |p| &p.services), |s| s.key);
    let services = cur
        .services
        .iter()
        .map(|s| derive_service(prev_services.get(&s.key), s, seconds))
        .collect();
    let global_rates = cur.global.as_ref().and_then(|g| g.rates).or_else(|| {
        derive_rates(
            &prev?.global.as_ref()?.totals,
            &cur.global.as_ref()?.totals,
            global_seconds,
        )
    });
    RouterStats {
        services,
        global_rates,
    }
}

/// Whether `cur` brings counters newer than `last`'s: then `last` becomes the sample the next
/// rates are measured from.
pub(crate) fn counters_advanced(last: &RouterSample, cur: &RouterSample) -> bool {
    cur.counters_time() != last.counters_time()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{Forward, Protocol, RouterSourceKind, ServiceKey, Timestamp};

    #[test]
    fn the_previous_item_of_a_key_is_the_last_one_whether_searched_or_mapped() {
        for n in [3usize, 100] {
            // Keys 0..n, then key 1 again: the second one wins, as in a map built from them.
            let items: Vec<(u32, usize)> = (0..n as u32)
                .chain([1])
                .enumerate()
                .map(|(i, k)| (k, i))
                .collect();
            let prev = Previous::new(&items, |x| x.0);
            assert!(matches!(prev, Previous::Few(..)) == (n < 32), "{n}");
            assert_eq!(prev.get(&1), Some(&(1, n)));
            assert_eq!(prev.get(&2), Some(&(2, 2)));
            assert_eq!(prev.get(&(n as u32)), None);
        }
    }

    fn times(user: u64, system: u64, idle: u64) -> CpuTimes {
        CpuTimes {
            user,
            system,
            idle,
            ..CpuTimes::default()
        }
    }

    #[test]
    fn cpu_percentages_split_the_interval_by_state() {
        let p = derive_cpu(&times(100, 100, 100), &times(150, 125, 125)).expect("advanced");
        assert!((p.user - 50.0).abs() < 1e-9);
        assert!((p.system - 25.0).abs() < 1e-9);
        assert!((p.idle - 25.0).abs() < 1e-9);
        assert!((p.busy() - 75.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_counters_going_backwards_give_no_percentage() {
        assert_eq!(derive_cpu(&times(200, 0, 0), &times(100, 0, 0)), None);
        assert_eq!(derive_cpu(&times(1, 1, 1), &times(1, 1, 1)), None);
    }

    #[test]
    fn a_wrapped_32_bit_counter_is_unwrapped() {
        assert_eq!(counter_delta(u64::from(u32::MAX) - 9, 10), Some(20));
    }

    #[test]
    fn a_counter_reset_gives_no_rate() {
        assert_eq!(counter_delta(1_000_000, 5), None);
        assert_eq!(counter_delta(u64::MAX - 5, 3), None);
    }

    #[test]
    fn rates_divide_counter_deltas_by_elapsed_seconds() {
        let a = IpvsCounters {
            conns: 10,
            in_packets: 100,
            out_packets: 50,
            in_bytes: 1000,
            out_bytes: 500,
        };
        let b = IpvsCounters {
            conns: 30,
            in_packets: 300,
            out_packets: 150,
            in_bytes: 5000,
            out_bytes: 2500,
        };
        let r = derive_rates(&a, &b, 2.0).expect("rates");
        assert_eq!((r.cps, r.in_pps, r.out_bps), (10.0, 100.0, 1000.0));
        assert_eq!(derive_rates(&a, &b, 0.0), None);
    }

    fn service(conns: u64, kernel_cps: Option<f64>) -> VirtualServiceSample {
        VirtualServiceSample {
            flags: None,
            pe_name: None,
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: IpAddr::from([192, 0, 2, 10]),
                port: 80,
            },
            scheduler: Some("wlc".into()),
            persistent: None,
            ops: false,
            totals: Some(IpvsCounters {
                conns,
                ..IpvsCounters::default()
            }),
            rates: kernel_cps.map(|cps| IpvsRates {
                cps,
                ..IpvsRates::default()
            }),
            reals: vec![
                RealServerSample {
                    tunnel: None,
                    address: IpAddr::from([10, 0, 0, 2]),
                    port: 80,
                    forward: Forward::Route,
                    weight: 3,
                    upper_threshold: 0,
                    lower_threshold: 0,
                    active_conns: 3,
                    inactive_conns: 1,
                    persistent_conns: None,
                    totals: None,
                    rates: None,
                },
                RealServerSample {
                    tunnel: None,
                    address: IpAddr::from([10, 0, 0, 3]),
                    port: 80,
                    forward: Forward::Route,
                    weight: 1,
                    upper_threshold: 0,
                    lower_threshold: 0,
                    active_conns: 0,
                    inactive_conns: 0,
                    persistent_conns: None,
                    totals: None,
                    rates: None,
                },
            ],
        }
    }

    fn router(ms: i64, s: VirtualServiceSample) -> RouterSample {
        RouterSample {
            ipvs: None,
            parts: Default::default(),
            sysctl: None,
            addrs: None,
            owners: None,
            sync: None,
            time: Timestamp(ms),
            source: RouterSourceKind::Proc,
            services: vec![s],
            global: None,
            connections: None,
            notes: vec![],
        }
    }

    #[test]
    fn service_rates_come_from_counters_when_the_kernel_gives_none() {
        let st = derive_router(
            Some(&router(0, service(100, None))),
            &router(2000, service(140, None)),
        );
        assert_eq!(st.services[0].rates.map(|r| r.cps), Some(20.0));
        assert_eq!(st.services[0].reals[0].weight_share, 0.75);
        assert_eq!(st.services[0].reals[0].conn_share, 1.0);
        assert_eq!(st.services[0].active_conns, 3);
    }

    #[test]
    fn the_kernels_rate_estimate_is_passed_through_as_given() {
        let st = derive_router(
            Some(&router(0, service(100, Some(7.0)))),
            &router(2000, service(140, Some(9.0))),
        );
        assert_eq!(st.services[0].rates.map(|r| r.cps), Some(9.0));
    }
}
