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

/// The charts' buckets held at once, over every series: a recording of a large table (thousands
/// of services and real servers) coarsens its charts to stay within this, rather than hold
/// `MAX_POINTS` buckets for each (5,000 services × 3 real servers: 55,000 series, 0.8 GB). At
/// 24 bytes a bucket: 96 MiB.
pub(crate) const MAX_BUCKETS: usize = 4 << 20;

/// Coarsening stops at this many buckets; tracks past the budget then get no charts.
pub(crate) const MIN_BUCKETS: usize = 16;

/// The shared time axis: `start..=end` in `base` equal slices, `stride` of which (a power of two)
/// make one of its `buckets` (the last one may hold fewer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    pub start: Timestamp,
    pub end: Timestamp,
    pub buckets: usize,
    /// How many samples of one host fall into a bucket, at most (1: not downsampled).
    pub per_bucket: u64,
    base: usize,
    stride: usize,
    /// Samples of one host over the axis, at most.
    samples: u64,
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
            base: buckets,
            stride: 1,
            samples: samples as u64,
        }
    }

    pub fn span_ms(&self) -> i64 {
        (self.end.0 - self.start.0).max(1)
    }

    /// The bucket of time `t` (clamped to the axis).
    pub fn bucket(&self, t: Timestamp) -> usize {
        let off = (t.0 - self.start.0).clamp(0, self.span_ms()) as f64;
        ((off / self.span_ms() as f64 * self.base as f64) as usize).min(self.base - 1) / self.stride
    }

    /// Where the middle of bucket `i` falls, 0.0 at the start to 1.0 at the end.
    pub fn center(&self, i: usize) -> f64 {
        let lo = i.saturating_mul(self.stride).min(self.base);
        let hi = (i.saturating_add(1))
            .saturating_mul(self.stride)
            .min(self.base);
        (lo + hi) as f64 / 2.0 / self.base as f64
    }

    /// Halves the buckets (each new one is two old ones), unless there are [`MIN_BUCKETS`] or
    /// fewer; `false` then.
    fn coarsen(&mut self) -> bool {
        if self.buckets <= MIN_BUCKETS {
            return false;
        }
        self.stride *= 2;
        self.buckets = self.base.div_ceil(self.stride);
        self.per_bucket = self
            .samples
            .saturating_mul(self.stride as u64)
            .div_ceil(self.base as u64);
        true
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

    /// A series on `axis` for a track within the charts' budget; else one that takes nothing
    /// and has no chart.
    fn within(axis: &Axis, charted: bool) -> Self {
        if charted {
            Self::new(axis)
        } else {
            Self(Vec::new())
        }
    }

    /// Whether it holds buckets (a track within the budget).
    pub fn charted(&self) -> bool {
        !self.0.is_empty()
    }

    /// Merges each two buckets in a row into one, as [`Axis::coarsen`] does.
    fn coarsen(&mut self) {
        let merged = self
            .0
            .chunks(2)
            .map(|pair| {
                pair.iter().fold(Bucket::default(), |m, b| {
                    if b.n == 0 {
                        m
                    } else if m.n == 0 {
                        *b
                    } else {
                        Bucket {
                            sum: m.sum + b.sum,
                            max: m.max.max(b.max),
                            n: m.n.saturating_add(b.n),
                        }
                    }
                })
            })
            .collect();
        self.0 = merged;
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

/// Series of a node's charts (load, cores, busy-only, and the CPU kinds), a service's (conn/s,
/// active, inactive, bytes in and out per second) and a real server's (its shares).
const NODE_SERIES: usize = 3 + CPU_KINDS.len();
const SERVICE_SERIES: usize = 5;
const REAL_SERIES: usize = 2;

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
    /// Whether any sample had an active or inactive connection (kept beside the charts, which
    /// a track past their budget has none of).
    pub had_conns: bool,
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
    /// Series held, each `axis.buckets` long (within [`MAX_BUCKETS`] together).
    series: usize,
    /// Nodes and services past the budget, with no charts.
    pub uncharted: usize,
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
            series: 0,
            uncharted: 0,
        }
    }

    /// Makes room for `k` more series: while they would take the charts past [`MAX_BUCKETS`],
    /// every chart is coarsened. `false` when even the coarsest leave no room: the track gets
    /// no series then.
    fn room_for(&mut self, k: usize) -> bool {
        while (self.series + k).saturating_mul(self.axis.buckets) > MAX_BUCKETS {
            if !self.axis.coarsen() {
                return false;
            }
            self.each_series(Series::coarsen);
        }
        self.series += k;
        true
    }

    fn each_series(&mut self, f: impl Fn(&mut Series)) {
        for n in &mut self.nodes {
            [&mut n.load, &mut n.cores, &mut n.busy_only]
                .into_iter()
                .chain(n.cpu.iter_mut())
                .for_each(&f);
        }
        for s in &mut self.services {
            [
                &mut s.cps,
                &mut s.active,
                &mut s.inactive,
                &mut s.in_bps,
                &mut s.out_bps,
            ]
            .into_iter()
            .for_each(&f);
            for r in &mut s.reals {
                f(&mut r.conn_share);
                f(&mut r.weight_share);
            }
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
        let charted = self.room_for(NODE_SERIES);
        self.uncharted += usize::from(!charted);
        let axis = self.axis;
        let new = || Series::within(&axis, charted);
        let i = *self.node_index.entry(name.to_string()).or_insert_with(|| {
            self.nodes.push(NodeTrack {
                name: name.to_string(),
                host: host.to_string(),
                load: new(),
                cores: new(),
                cpu: std::array::from_fn(|_| new()),
                busy_only: new(),
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
        let max_gap = self.max_gap_ms;
        let level = n.level;
        self.node_track(&n.name, &n.host);
        // After the track: making it may have coarsened the axis.
        let bucket = self.axis.bucket(time);
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
        for (si, svc) in cur.services.iter().enumerate() {
            let stats = r.stats.services.get(si);
            let i = match self.service_index.get(&svc.key) {
                Some(&i) => i,
                None => {
                    let charted = self.room_for(SERVICE_SERIES);
                    self.uncharted += usize::from(!charted);
                    self.services
                        .push(ServiceTrack::new(svc.key, &self.axis, charted));
                    self.service_index.insert(svc.key, self.services.len() - 1);
                    self.services.len() - 1
                }
            };
            // Its real servers' tracks first: making them may coarsen the axis.
            for real in &svc.reals {
                let key = (real.address, real.port);
                if !self.services[i].real_index.contains_key(&key) {
                    let charted = self.services[i].cps.charted() && self.room_for(REAL_SERIES);
                    let axis = self.axis;
                    self.services[i].add_real(key, real.id(), &axis, charted);
                }
            }
            let bucket = self.axis.bucket(time);
            let t = &mut self.services[i];
            t.bytes.add(svc.totals);
            if let Some(s) = stats {
                t.had_conns |= s.active_conns > 0 || s.inactive_conns > 0;
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
                let Some(&k) = t.real_index.get(&(real.address, real.port)) else {
                    continue;
                };
                let Some(rt) = t.reals.get_mut(k) else {
                    continue;
                };
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
    fn new(key: ServiceKey, axis: &Axis, charted: bool) -> Self {
        let new = || Series::within(axis, charted);
        Self {
            key,
            cps: new(),
            active: new(),
            inactive: new(),
            in_bps: new(),
            out_bps: new(),
            peak_cps: None,
            bytes: Bytes::default(),
            had_conns: false,
            reals: Vec::new(),
            real_index: FxMap::default(),
        }
    }

    fn add_real(&mut self, key: (IpAddr, u16), id: String, axis: &Axis, charted: bool) {
        let new = || Series::within(axis, charted);
        self.reals.push(RealTrack {
            id,
            node: None,
            conn_share: new(),
            weight_share: new(),
            peak_cps: None,
            bytes: Bytes::default(),
            weight: None,
            weight_changes: Vec::new(),
        });
        self.real_index.insert(key, self.reals.len() - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarsening_the_axis_puts_each_time_in_the_half_of_its_bucket() {
        let mut axis = Axis::new(Timestamp(0), Timestamp(599_000), 1000, 600);
        assert_eq!(axis.buckets, 600);
        let before: Vec<usize> = (0..600_000)
            .step_by(7)
            .map(|t| axis.bucket(Timestamp(t)))
            .collect();
        let centers: Vec<f64> = (0..600).map(|i| axis.center(i)).collect();
        assert!(axis.coarsen());
        assert_eq!((axis.buckets, axis.per_bucket), (300, 2));
        let mut long = Axis::new(Timestamp(0), Timestamp(699_000), 1000, 600);
        assert_eq!(long.per_bucket, 2);
        for _ in 0..3 {
            assert!(long.coarsen());
        }
        assert_eq!(
            (long.buckets, long.per_bucket),
            (75, 10),
            "700 samples in 75 slices"
        );
        for (t, b) in (0..600_000).step_by(7).zip(before) {
            assert_eq!(axis.bucket(Timestamp(t)), b / 2, "at {t} ms");
        }
        for i in 0..300 {
            let mid = (centers[2 * i] + centers[2 * i + 1]) / 2.0;
            assert!((axis.center(i) - mid).abs() < 1e-12, "bucket {i}");
        }
        // An odd count: the last bucket holds one slice, and is centred on it.
        while axis.buckets > 75 {
            assert!(axis.coarsen());
        }
        assert!(axis.coarsen());
        assert_eq!(axis.buckets, 38);
        assert!((axis.center(37) - (592.0 + 600.0) / 2.0 / 600.0).abs() < 1e-12);
        assert_eq!(axis.bucket(Timestamp(599_000)), 37);
        while axis.coarsen() {}
        assert!(axis.buckets <= MIN_BUCKETS && axis.buckets > MIN_BUCKETS / 2);
    }

    #[test]
    fn coarsening_a_series_keeps_the_sums_the_peaks_and_the_counts() {
        let axis = Axis::new(Timestamp(0), Timestamp(4_000), 1000, 600);
        let mut s = Series::new(&axis);
        for (bucket, v) in [(0, 1.0), (0, 3.0), (1, 5.0), (3, 2.0), (4, 7.0)] {
            s.add(bucket, v);
        }
        s.coarsen();
        assert_eq!(s.mean(), [Some(3.0), Some(2.0), Some(7.0)]);
        assert_eq!(s.max(), [Some(5.0), Some(2.0), Some(7.0)]);
        assert_eq!(s.peak(), 7.0);
    }

    #[test]
    fn tracks_past_the_budget_coarsen_every_chart_then_go_without() {
        let axis = Axis::new(Timestamp(0), Timestamp(599_000), 1000, 600);
        let mut c = Collected::new(axis, 1000, 1.0);
        let mut charted = 0usize;
        loop {
            if !c.room_for(SERVICE_SERIES) {
                break;
            }
            charted += 1;
            assert!(c.series * c.axis.buckets <= MAX_BUCKETS);
        }
        assert!(c.axis.buckets <= MIN_BUCKETS, "coarsest first");
        assert_eq!(charted * SERVICE_SERIES, c.series);
        assert!(c.series * c.axis.buckets <= MAX_BUCKETS);
        assert!(c.series * c.axis.buckets > MAX_BUCKETS - MIN_BUCKETS * SERVICE_SERIES);
        // Series made before a coarsening are coarsened with the axis.
        let mut c = Collected::new(axis, 1000, 1.0);
        c.node_track("n", "h");
        assert_eq!(c.series, NODE_SERIES);
        assert!(c.room_for(MAX_BUCKETS / 300));
        assert_eq!(c.axis.buckets, 150);
        assert!(c.nodes[0].cpu.iter().all(|s| s.0.len() == 150));
        assert_eq!(c.nodes[0].load.0.len(), 150);
    }
}
