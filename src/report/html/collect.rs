//! What the report gathers while the recording plays: per node, per service and per real server,
//! the exact figures for the tables (peaks, times, totals, weight changes) over every sample, and
//! the charts' series, downsampled into at most `Axis::buckets` time buckets.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::app::State;
use crate::app::playback::{Fed, FrameNotes};
use crate::model::alert::{AlertEvent, Severity};
use crate::model::sample::{IpvsCounters, RealServerSample, ServiceKey, Timestamp};
use crate::model::snapshot::RealStats;
use crate::record::ActionRecord;

/// The indexes of tracks by name or address, looked up for every sample: FxHash (SipHash was a
/// tenth of the report's time; the keys are the recording's few hosts and services).
type FxMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// Alerts and actions kept for the log tables; more are counted, not listed.
pub(crate) const MAX_LOG: usize = 5000;

/// The shared time axis: `buckets` equal slices of `start..=end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub start: Timestamp,
    pub end: Timestamp,
    pub buckets: usize,
    /// How many samples of one host fall into a bucket, at most (1: not downsampled).
    pub per_bucket: u64,
}

impl Axis {
    /// An axis over `start..=end` for samples `interval_ms` apart: one bucket per sample when
    /// they fit in `max_points`, else `max_points` buckets.
    pub fn new(start: Timestamp, end: Timestamp, interval_ms: u64, max_points: usize) -> Self {
        // Times from a file: saturating, whatever they are.
        let span = end.0.saturating_sub(start.0).max(1) as u64;
        let samples = (span / interval_ms.max(1) + 1) as usize;
        let buckets = samples.clamp(1, max_points.max(1));
        Self {
            start,
            end,
            buckets,
            per_bucket: (samples as u64).div_ceil(buckets as u64),
        }
    }

    pub fn span_ms(&self) -> i64 {
        (self.end.0 - self.start.0).max(1)
    }

    /// The bucket of time `t` (clamped to the axis).
    pub fn bucket(&self, t: Timestamp) -> usize {
        let off = (t.0 - self.start.0).clamp(0, self.span_ms()) as f64;
        ((off / self.span_ms() as f64 * self.buckets as f64) as usize).min(self.buckets - 1)
    }

    /// Where `t` falls, 0.0 at the start to 1.0 at the end.
    pub fn fraction(&self, t: Timestamp) -> f64 {
        ((t.0 - self.start.0) as f64 / self.span_ms() as f64).clamp(0.0, 1.0)
    }

    /// How many empty buckets in a row make a gap in a line: three missed samples (when an
    /// alert calls router data stale), or two slices of a downsampled axis.
    pub fn gap_buckets(&self) -> usize {
        if self.downsampled() { 2 } else { 3 }
    }

    pub fn downsampled(&self) -> bool {
        self.per_bucket > 1
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    sum: f64,
    max: f64,
    n: u32,
}

/// One chart line: per bucket, the mean and the maximum of the values that fell in it.
#[derive(Debug, Clone)]
pub(crate) struct Series(Vec<Bucket>);

impl Series {
    fn new(axis: &Axis) -> Self {
        Self(vec![Bucket::default(); axis.buckets])
    }

    fn add(&mut self, bucket: usize, v: f64) {
        if !v.is_finite() {
            return;
        }
        if let Some(b) = self.0.get_mut(bucket) {
            b.max = if b.n == 0 { v } else { b.max.max(v) };
            b.sum += v;
            b.n += 1;
        }
    }

    pub fn mean(&self) -> Vec<Option<f64>> {
        self.0
            .iter()
            .map(|b| (b.n > 0).then(|| b.sum / f64::from(b.n)))
            .collect()
    }

    pub fn max(&self) -> Vec<Option<f64>> {
        self.0.iter().map(|b| (b.n > 0).then_some(b.max)).collect()
    }

    pub fn peak(&self) -> f64 {
        self.0
            .iter()
            .filter(|b| b.n > 0)
            .fold(0.0, |m, b| m.max(b.max))
    }
}

/// The CPU kinds charted, in stacking order: user counts nice with it, system irq.
pub(crate) const CPU_KINDS: [&str; 5] = ["user", "system", "softirq", "iowait", "steal"];

/// One node over the recording.
#[derive(Debug, Clone)]
pub(crate) struct NodeTrack {
    pub name: String,
    pub host: String,
    pub load: Series,
    pub cores: Series,
    pub cpu: [Series; 5],
    /// Busy percent of the samples whose kinds the source did not give (busy-only).
    pub busy_only: Series,
    pub peak_load: Option<(f64, Timestamp, usize)>,
    pub above_cores_ms: i64,
    pub warning_ms: i64,
    pub critical_ms: i64,
    pub samples: u64,
    last: Option<Timestamp>,
}

/// One real server of one service over the recording.
#[derive(Debug, Clone)]
pub(crate) struct RealTrack {
    pub id: String,
    pub node: Option<String>,
    pub conn_share: Series,
    pub weight_share: Series,
    pub peak_cps: Option<(f64, Timestamp)>,
    pub bytes: Bytes,
    pub weight: Option<i32>,
    /// (time, old weight, new weight), as the router's samples showed them.
    pub weight_changes: Vec<(Timestamp, i32, i32)>,
}

/// One virtual service over the recording.
#[derive(Debug, Clone)]
pub(crate) struct ServiceTrack {
    pub key: ServiceKey,
    pub cps: Series,
    pub active: Series,
    pub inactive: Series,
    pub in_bps: Series,
    pub out_bps: Series,
    pub peak_cps: Option<(f64, Timestamp)>,
    pub bytes: Bytes,
    pub reals: Vec<RealTrack>,
    real_index: FxMap<(IpAddr, u16), usize>,
}

/// Bytes through a service or real server within the range, from its cumulative counters: the
/// sum of their increases (a counter that went back, as after a reset, counts from zero).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bytes {
    pub inbound: u64,
    pub outbound: u64,
    last: Option<IpvsCounters>,
}

impl Bytes {
    fn add(&mut self, cur: Option<IpvsCounters>) {
        let Some(cur) = cur else { return };
        if let Some(last) = self.last {
            let up = |c: u64, l: u64| if c >= l { c - l } else { c };
            self.inbound = self.inbound.saturating_add(up(cur.in_bytes, last.in_bytes));
            self.outbound = self
                .outbound
                .saturating_add(up(cur.out_bytes, last.out_bytes));
        }
        self.last = Some(cur);
    }
}

/// Everything the report shows, gathered frame by frame.
#[derive(Debug)]
pub(crate) struct Collected {
    pub axis: Axis,
    pub warning_margin: f64,
    pub nodes: Vec<NodeTrack>,
    node_index: FxMap<String, usize>,
    pub services: Vec<ServiceTrack>,
    service_index: FxMap<ServiceKey, usize>,
    pub alerts: Vec<AlertEvent>,
    pub alerts_total: u64,
    pub actions: Vec<ActionRecord>,
    pub actions_total: u64,
    pub frames: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Longest a host's samples may be apart and still count as continuous (for times).
    max_gap_ms: i64,
}

impl Collected {
    pub fn new(axis: Axis, interval_ms: u64, warning_margin: f64) -> Self {
        Self {
            axis,
            warning_margin,
            nodes: Vec::new(),
            node_index: FxMap::default(),
            services: Vec::new(),
            service_index: FxMap::default(),
            alerts: Vec::new(),
            alerts_total: 0,
            actions: Vec::new(),
            actions_total: 0,
            frames: 0,
            first: None,
            last: None,
            max_gap_ms: 3 * interval_ms.max(1) as i64,
        }
    }

    /// After each event fed to the state.
    pub fn event(&mut self, state: &State, fed: &Fed) {
        match fed {
            Fed::NodeSample { name, time } => self.node_sample(state, name, *time),
            Fed::RouterSample { time } => self.router_sample(state, *time),
            Fed::Status => {}
        }
    }

    /// After each frame, with its alerts and actions.
    pub fn frame(&mut self, time: Timestamp, notes: &FrameNotes) {
        self.frames += 1;
        self.first.get_or_insert(time);
        self.last = Some(time);
        for a in &notes.alerts {
            self.alerts_total += 1;
            if self.alerts.len() < MAX_LOG {
                self.alerts.push(a.clone());
            }
        }
        for a in &notes.actions {
            self.actions_total += 1;
            if self.actions.len() < MAX_LOG {
                self.actions.push(a.clone());
            }
        }
    }

    fn node_track(&mut self, name: &str, host: &str) -> &mut NodeTrack {
        if let Some(&i) = self.node_index.get(name) {
            return &mut self.nodes[i];
        }
        let axis = self.axis;
        let i = *self.node_index.entry(name.to_string()).or_insert_with(|| {
            self.nodes.push(NodeTrack {
                name: name.to_string(),
                host: host.to_string(),
                load: Series::new(&axis),
                cores: Series::new(&axis),
                cpu: std::array::from_fn(|_| Series::new(&axis)),
                busy_only: Series::new(&axis),
                peak_load: None,
                above_cores_ms: 0,
                warning_ms: 0,
                critical_ms: 0,
                samples: 0,
                last: None,
            });
            self.nodes.len() - 1
        });
        &mut self.nodes[i]
    }

    fn node_sample(&mut self, state: &State, name: &str, time: Timestamp) {
        let Some(n) = state.node(name) else { return };
        let Some(st) = n.stats.as_ref() else { return };
        let bucket = self.axis.bucket(time);
        let max_gap = self.max_gap_ms;
        let level = n.level;
        let t = self.node_track(&n.name, &n.host);
        let dt = t
            .last
            .map_or(0, |l| (time.0 - l.0).clamp(0, max_gap.max(1)));
        t.last = Some(time);
        t.samples += 1;
        let load = st.load[0];
        t.load.add(bucket, load);
        t.cores.add(bucket, st.cores as f64);
        // A busy-only node (Prometheus, a large fleet) has no kinds to chart: its busy line.
        if let Some(c) = st.cpu_total.filter(|_| st.busy_unsplit) {
            t.busy_only.add(bucket, c.busy());
        } else if let Some(c) = st.cpu_total {
            for (s, v) in t.cpu.iter_mut().zip([
                c.user + c.nice,
                c.system + c.irq,
                c.softirq,
                c.iowait,
                c.steal,
            ]) {
                s.add(bucket, v);
            }
        }
        if load.is_finite() && t.peak_load.is_none_or(|(p, _, _)| load > p) {
            t.peak_load = Some((load, time, st.cores));
        }
        if load > st.cores as f64 {
            t.above_cores_ms += dt;
        }
        match level {
            Some(Severity::Warning) => t.warning_ms += dt,
            Some(Severity::Critical) => t.critical_ms += dt,
            None => {}
        }
    }

    fn router_sample(&mut self, state: &State, time: Timestamp) {
        let Some(r) = state.router() else { return };
        let Some(cur) = r.cur.as_ref() else { return };
        let bucket = self.axis.bucket(time);
        for (si, svc) in cur.services.iter().enumerate() {
            let stats = r.stats.services.get(si);
            let axis = self.axis;
            let i = *self.service_index.entry(svc.key).or_insert_with(|| {
                self.services.push(ServiceTrack::new(svc.key, &axis));
                self.services.len() - 1
            });
            let t = &mut self.services[i];
            t.bytes.add(svc.totals);
            if let Some(s) = stats {
                t.active.add(bucket, s.active_conns as f64);
                t.inactive.add(bucket, s.inactive_conns as f64);
                if let Some(rates) = s.rates {
                    t.cps.add(bucket, rates.cps);
                    t.in_bps.add(bucket, rates.in_bps);
                    t.out_bps.add(bucket, rates.out_bps);
                    if t.peak_cps.is_none_or(|(p, _)| rates.cps > p) {
                        t.peak_cps = Some((rates.cps, time));
                    }
                }
            }
            for (ri, real) in svc.reals.iter().enumerate() {
                let node = || state.node_for_real(real.address).map(|n| n.name.clone());
                let rt = t.real(real.address, real.port, &axis, || real.id());
                rt.sample(real, stats.and_then(|s| s.reals.get(ri)), bucket, time);
                if rt.node.is_none() {
                    rt.node = node();
                }
            }
        }
    }
}

impl RealTrack {
    fn sample(
        &mut self,
        real: &RealServerSample,
        stats: Option<&RealStats>,
        bucket: usize,
        time: Timestamp,
    ) {
        self.bytes.add(real.totals);
        if let Some(s) = stats {
            self.conn_share.add(bucket, s.conn_share * 100.0);
            self.weight_share.add(bucket, s.weight_share * 100.0);
            if let Some(cps) = s.rates.map(|r| r.cps)
                && self.peak_cps.is_none_or(|(p, _)| cps > p)
            {
                self.peak_cps = Some((cps, time));
            }
        }
        if let Some(w) = self.weight
            && w != real.weight
            && self.weight_changes.len() < MAX_LOG
        {
            self.weight_changes.push((time, w, real.weight));
        }
        self.weight = Some(real.weight);
    }
}

impl ServiceTrack {
    fn new(key: ServiceKey, axis: &Axis) -> Self {
        Self {
            key,
            cps: Series::new(axis),
            active: Series::new(axis),
            inactive: Series::new(axis),
            in_bps: Series::new(axis),
            out_bps: Series::new(axis),
            peak_cps: None,
            bytes: Bytes::default(),
            reals: Vec::new(),
            real_index: FxMap::default(),
        }
    }

    fn real(
        &mut self,
        address: IpAddr,
        port: u16,
        axis: &Axis,
        id: impl FnOnce() -> String,
    ) -> &mut RealTrack {
        let i = *self.real_index.entry((address, port)).or_insert_with(|| {
            self.reals.push(RealTrack {
                id: id(),
                node: None,
                conn_share: Series::new(axis),
                weight_share: Series::new(axis),
                peak_cps: None,
                bytes: Bytes::default(),
                weight: None,
                weight_changes: Vec::new(),
            });
            self.reals.len() - 1
        });
        &mut self.reals[i]
    }
}
