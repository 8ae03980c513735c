//! One poll's answers turned into each instance's event: a raw `NodeSample` (cumulative CPU
//! counters, with the time Prometheus scraped them), or a status when the instance is down or
//! its data is old. Pure: the task asks, this decides.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::model::sample::{
    CpuTimes, HostStatus, LoadAvg, MemInfo, NodeSample, ProcStat, Report, SourceEvent, Timestamp,
    Uptime,
};
use crate::model::snapshot::SAME_BOOT_S;
use crate::model::text::printable;
use crate::source::remote::parse_block;
use crate::source::spec::NodeMapping;

use super::api::Series;

/// What one poll asked and got, every query evaluated at `at` (seconds since the epoch).
#[derive(Debug, Default)]
pub(crate) struct Answers {
    pub at: f64,
    pub up: Vec<Series>,
    pub scraped_at: Vec<Series>,
    pub cores: Vec<Series>,
    pub cpu: Vec<Series>,
    /// `cpu` has one series per core and mode; else it has each instance's idle time summed
    /// over its cores ([`super::selector::Selector::cpu_idle_sums`]).
    pub per_core: bool,
    /// Without `per_core`: the per-core series of the few instances the screen shows.
    pub cpu_detail: Vec<Series>,
    pub gauges: Vec<Series>,
    /// Scrapes per [`super::selector::INTERVAL_WINDOW_S`], when asked this poll.
    pub scrape_counts: Option<Vec<Series>>,
}

/// The longest instance label shown.
const NAME_CHARS: usize = 120;

/// The most instances followed. Each is a node on the screen with its history; past this (a
/// selector that matches far more than a fleet, or a server that makes names up) the first seen
/// are kept, and the entry named `prometheus` says how many more there are.
pub(crate) const MAX_INSTANCES: usize = 10_000;

/// Staleness: an instance with no sample newer than this many scrape intervals is unreachable.
const STALE_SCRAPES: f64 = 3.0;

/// What is known of an instance across polls.
#[derive(Debug, Default)]
struct Known {
    /// The scrape time of the last sample sent: a poll that finds no newer scrape sends none.
    last_sample: Option<Timestamp>,
    /// The status last said (`Ok` after a sample).
    said: Option<(HostStatus, Option<String>)>,
    /// Where a busy-only total counts its cores' time from ([`totals_without_per_core`]).
    origin: Option<f64>,
    /// When (the poll's `at`) the answers first lacked it, while they do.
    missing_since: Option<f64>,
    /// Its `up` in the last answer that had it.
    last_up: Option<f64>,
}

/// Every instance seen in this run, and how instances are named and matched to real servers.
#[derive(Debug)]
pub(crate) struct Fleet {
    known: BTreeMap<String, Known>,
    /// Seconds between scrapes per instance, from `count_over_time(up[…])`.
    scrape_intervals: HashMap<String, f64>,
    mappings: Vec<(IpAddr, String)>,
    /// lbtop's poll interval: the scrape interval assumed until Prometheus's data tells it.
    poll_interval_s: f64,
    /// A failure was said on the entry named `prometheus` (before any instance was known), with
    /// the server's `host:port`.
    server_failed: Option<String>,
    /// Instances of the last poll past [`MAX_INSTANCES`], as last said.
    over: usize,
    /// Seconds an instance may be missing from the answers before it is forgotten.
    forget_after_s: f64,
    /// The name each instance is shown by ([`Fleet::shown_name`]), and the other way round.
    shown: HashMap<String, String>,
    instance_of: HashMap<String, String>,
}

/// One instance's numbers from one poll.
#[derive(Debug, Default)]
struct Acc {
    up: Option<f64>,
    scraped_at: Option<f64>,
    cores: Option<u32>,
    total: Option<CpuTimes>,
    /// `total` has idle only, and the rest of the cores' time as `user`.
    busy_unsplit: bool,
    /// Idle jiffies summed over the cores, without `per_core`.
    idle_sum: Option<u64>,
    cpus: BTreeMap<u32, CpuTimes>,
    gauges: HashMap<String, f64>,
}

impl Fleet {
    /// `mappings`: the config's `[[node]]` entries; those naming one address give the address
    /// of an instance whose label names the host (`web1:9100`). An instance missing from the
    /// answers for `forget_after_s` is forgotten ([`HostStatus::Gone`]).
    pub(crate) fn new(
        mappings: &[NodeMapping],
        poll_interval_s: f64,
        forget_after_s: f64,
    ) -> Fleet {
        let mappings = mappings
            .iter()
            .filter_map(|m| {
                let block = parse_block(&m.match_).ok()?;
                (block.prefix_len() == block.max_prefix_len())
                    .then(|| (block.addr(), host_of(&m.host).to_string()))
            })
            .collect();
        Fleet {
            known: BTreeMap::new(),
            scrape_intervals: HashMap::new(),
            mappings,
            poll_interval_s: poll_interval_s.max(0.001),
            server_failed: None,
            over: 0,
            forget_after_s,
            shown: HashMap::new(),
            instance_of: HashMap::new(),
        }
    }

    /// Whether any instance has been seen.
    pub(crate) fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The events of one poll: a sample for every instance scraped since its last one, a
    /// status for every instance whose status changed.
    pub(crate) fn absorb(&mut self, answers: Answers) -> Vec<SourceEvent> {
        if let Some(counts) = &answers.scrape_counts {
            for s in counts {
                if s.value >= 1.0 {
                    let interval = f64::from(super::selector::INTERVAL_WINDOW_S) / s.value;
                    self.scrape_intervals.insert(s.instance.clone(), interval);
                }
            }
        }
        let mut accs = gather(&answers);
        let mut events = Vec::new();
        let room = MAX_INSTANCES.saturating_sub(self.known.len());
        let mut new: Vec<String> = accs
            .keys()
            .filter(|i| !self.known.contains_key(*i))
            .cloned()
            .collect();
        new.sort_unstable();
        let over: Vec<String> = new.into_iter().skip(room).collect();
        for i in &over {
            accs.remove(i);
        }
        for (instance, acc) in &mut accs {
            let known = self.known.entry(instance.clone()).or_default();
            if !answers.per_core {
                totals_without_per_core(acc, &mut known.origin);
            }
        }
        let instances: Vec<String> = self.known.keys().cloned().collect();
        if let Some(host) = self.server_failed.take_if(|_| !instances.is_empty()) {
            // The entry that said Prometheus failed says it answers now.
            events.push(SourceEvent::Node {
                name: "prometheus".into(),
                host,
                report: Report::Status {
                    time: Timestamp((answers.at * 1000.0) as i64),
                    status: HostStatus::Ok,
                    message: Some("Prometheus answers; its nodes are listed by instance".into()),
                },
            });
        }
        // After the entry's recovery above: the same entry, and the later event wins.
        if over.len() != self.over {
            self.over = over.len();
            let message = if over.is_empty() {
                format!("every instance is followed (at most {MAX_INSTANCES})")
            } else {
                format!(
                    "{} more instances than the {MAX_INSTANCES} followed are not shown: narrow \
                     the selector",
                    over.len()
                )
            };
            events.push(SourceEvent::Node {
                name: "prometheus".into(),
                host: "prometheus".into(),
                report: Report::Status {
                    time: Timestamp((answers.at * 1000.0) as i64),
                    status: if over.is_empty() {
                        HostStatus::Ok
                    } else {
                        HostStatus::Error
                    },
                    message: Some(message),
                },
            });
        }
        for instance in instances {
            let report = self.report(&instance, accs.get(&instance), answers.at);
            if let Some(report) = report {
                let gone = matches!(
                    report,
                    Report::Status {
                        status: HostStatus::Gone,
                        ..
                    }
                );
                events.push(self.event(&instance, report));
                if gone && let Some(name) = self.shown.remove(&instance) {
                    self.instance_of.remove(&name);
                }
            }
        }
        events
    }

    /// A failure of the whole poll, said on every instance known (once per change); before any
    /// is known, on an entry for Prometheus itself, named `prometheus`.
    pub(crate) fn failed(
        &mut self,
        status: HostStatus,
        message: &str,
        url_host: &str,
    ) -> Vec<SourceEvent> {
        let time = Timestamp::now();
        let report = |status, message: &str| Report::Status {
            time,
            status,
            message: Some(message.to_string()),
        };
        if self.known.is_empty() {
            self.server_failed = Some(url_host.to_string());
            return vec![SourceEvent::Node {
                name: "prometheus".into(),
                host: url_host.to_string(),
                report: report(status, message),
            }];
        }
        let instances: Vec<String> = self.known.keys().cloned().collect();
        instances
            .into_iter()
            .filter_map(|i| {
                self.say(&i, status, Some(message.to_string()))
                    .then(|| self.event(&i, report(status, message)))
            })
            .collect()
    }

    /// Records a status; `false` when it was already said.
    fn say(&mut self, instance: &str, status: HostStatus, message: Option<String>) -> bool {
        let known = self.known.entry(instance.to_string()).or_default();
        let key = Some((status, message));
        if known.said == key {
            return false;
        }
        known.said = key;
        true
    }

    fn event(&mut self, instance: &str, report: Report<NodeSample>) -> SourceEvent {
        SourceEvent::Node {
            name: self.shown_name(instance),
            host: self.host_for(instance),
            report,
        }
    }

    /// The name `instance` is shown by, for as long as it is known: its label made printable,
    /// and where that is another instance's name already (labels that differ only in what is
    /// escaped or cut off), or the entry `prometheus`, with ` (2)`, ` (3)`… after it, so that two
    /// instances never share a node.
    fn shown_name(&mut self, instance: &str) -> String {
        if let Some(name) = self.shown.get(instance) {
            return name.clone();
        }
        let base = printable(instance, NAME_CHARS);
        let mut name = base.clone();
        let mut n = 1;
        while name == "prometheus" || self.instance_of.contains_key(&name) {
            n += 1;
            name = format!("{base} ({n})");
        }
        self.instance_of.insert(name.clone(), instance.to_string());
        self.shown.insert(instance.to_string(), name.clone());
        name
    }

    /// The instances of the nodes named `names` (as shown), in that order; a name not shown yet
    /// stands for the instance labelled so.
    pub(crate) fn instances_of(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .map(|n| self.instance_of.get(n).unwrap_or(n).clone())
            .collect()
    }

    /// The address real servers are matched on: the instance label's host when it is an
    /// address, else the `[[node]]` entry naming that host, else the host as labelled.
    fn host_for(&self, instance: &str) -> String {
        let host = host_of(instance);
        if let Ok(addr) = host.parse::<IpAddr>() {
            return addr.to_string();
        }
        self.mappings
            .iter()
            .find(|(_, h)| h == host)
            .map_or_else(|| printable(host, NAME_CHARS), |(a, _)| a.to_string())
    }

    /// This poll's report for one instance, when there is something new to say. An instance
    /// missing from the answers for `forget_after_s` is dropped, and its report says `Gone`:
    /// its target left service discovery (its `up` went with it). One whose last `up` was 0 is
    /// kept: it is down, and left the answers only as its series aged past the selector's window.
    fn report(&mut self, instance: &str, acc: Option<&Acc>, at: f64) -> Option<Report<NodeSample>> {
        let known = self.known.entry(instance.to_string()).or_default();
        if let Some(up) = acc.and_then(|a| a.up) {
            known.missing_since = None;
            known.last_up = Some(up);
        } else if known.last_up != Some(0.0)
            && at - *known.missing_since.get_or_insert(at) >= self.forget_after_s
        {
            self.known.remove(instance);
            self.scrape_intervals.remove(instance);
            let message = format!(
                "missing from Prometheus's answers for {:.0} s: no longer shown",
                self.forget_after_s
            );
            tracing::info!(instance = %printable(instance, NAME_CHARS), "{message}");
            return Some(Report::Status {
                time: Timestamp((at * 1000.0) as i64),
                status: HostStatus::Gone,
                message: Some(message),
            });
        }
        let interval = self
            .scrape_intervals
            .get(instance)
            .copied()
            .unwrap_or(self.poll_interval_s);
        let verdict = judge(acc, at, interval);
        let status_time = Timestamp((at * 1000.0) as i64);
        match verdict {
            Err((status, message)) => {
                self.say(instance, status, Some(message.clone()))
                    .then_some(Report::Status {
                        time: status_time,
                        status,
                        message: Some(message),
                    })
            }
            Ok(sample) => {
                let known = self.known.entry(instance.to_string()).or_default();
                if known.last_sample == Some(sample.time) {
                    return None;
                }
                known.last_sample = Some(sample.time);
                known.said = Some((HostStatus::Ok, None));
                Some(Report::Sample(sample))
            }
        }
    }
}

/// An instance's sample, or the status it gets instead.
fn judge(acc: Option<&Acc>, at: f64, interval: f64) -> Result<NodeSample, (HostStatus, String)> {
    let unreachable = |m: String| (HostStatus::Unreachable, m);
    let Some(acc) = acc.filter(|a| a.up.is_some()) else {
        return Err(unreachable(
            "not in Prometheus's answer any more: its target is gone, or it has been down \
             for over 10 minutes"
                .into(),
        ));
    };
    if acc.up != Some(1.0) {
        return Err(unreachable(
            "Prometheus cannot scrape it: up is 0 (its last scrape failed)".into(),
        ));
    }
    let scraped = acc.scraped_at.unwrap_or(0.0);
    let age = at - scraped;
    if age > STALE_SCRAPES * interval {
        return Err(unreachable(format!(
            "no sample for {age:.0} s, more than {STALE_SCRAPES} scrape intervals of {interval:.1} s"
        )));
    }
    let Some(total) = acc.total else {
        return Err((
            HostStatus::Error,
            "no node_cpu_seconds_total: is node_exporter's cpu collector on?".into(),
        ));
    };
    Ok(sample(acc, total, scraped))
}

/// The raw sample of one instance.
fn sample(acc: &Acc, total: CpuTimes, scraped: f64) -> NodeSample {
    let g = |name: &str| acc.gauges.get(name).copied();
    let bytes = |name: &str| g(name).map_or(0, |v| v.max(0.0) as u64);
    let boot = g("node_boot_time_seconds");
    NodeSample {
        time: Timestamp((scraped * 1000.0).round() as i64),
        stat: ProcStat {
            total,
            cpu_ids: acc.cpus.keys().copied().collect(),
            cpus: acc.cpus.values().copied().collect(),
            boot_time: boot.map(|b| b.max(0.0) as u64),
            online_cores: acc.cores,
            busy_unsplit: acc.busy_unsplit,
            ..ProcStat::default()
        },
        load: LoadAvg {
            one: g("node_load1").unwrap_or(0.0),
            five: g("node_load5").unwrap_or(0.0),
            fifteen: g("node_load15").unwrap_or(0.0),
            ..LoadAvg::default()
        },
        memory: MemInfo {
            total_bytes: bytes("node_memory_MemTotal_bytes"),
            free_bytes: bytes("node_memory_MemFree_bytes"),
            available_bytes: bytes("node_memory_MemAvailable_bytes"),
            buffers_bytes: bytes("node_memory_Buffers_bytes"),
            cached_bytes: bytes("node_memory_Cached_bytes"),
            swap_total_bytes: bytes("node_memory_SwapTotal_bytes"),
            swap_free_bytes: bytes("node_memory_SwapFree_bytes"),
        },
        uptime: Uptime {
            uptime_s: match (g(super::selector::NODE_TIME), boot) {
                (Some(now), Some(boot)) => (now - boot).max(0.0),
                _ => 0.0,
            },
            idle_s: 0.0,
        },
        facts: None,
        // node_exporter does not export what the direct-routing checks read.
        net: None,
    }
}

/// Every instance's numbers, from the answers.
fn gather(answers: &Answers) -> HashMap<String, Acc> {
    let mut accs: HashMap<String, Acc> = HashMap::new();
    for s in &answers.up {
        accs.entry(s.instance.clone()).or_default().up = Some(s.value);
    }
    for s in &answers.scraped_at {
        if let Some(a) = accs.get_mut(&s.instance) {
            a.scraped_at = Some(s.value);
        }
    }
    for s in &answers.cores {
        if let Some(a) = accs.get_mut(&s.instance) {
            a.cores = Some(s.value.max(0.0) as u32);
        }
    }
    for s in &answers.cpu {
        let (Some(a), Some(mode)) = (accs.get_mut(&s.instance), s.mode.as_deref()) else {
            continue;
        };
        if answers.per_core {
            add_core_line(a, s, mode);
        } else if mode == "idle" {
            let idle = a.idle_sum.get_or_insert(0);
            *idle = idle.saturating_add(jiffies(s.value));
        }
    }
    // The per-core lines of the nodes on screen, every mode: their totals are summed from them.
    for s in &answers.cpu_detail {
        if let (Some(a), Some(mode)) = (accs.get_mut(&s.instance), s.mode.as_deref()) {
            add_core_line(a, s, mode);
        }
    }
    for s in &answers.gauges {
        if let (Some(a), Some(name)) = (accs.get_mut(&s.instance), s.name.as_ref()) {
            a.gauges.insert(name.clone(), s.value);
        }
    }
    accs
}

/// node_exporter's seconds as jiffies (USER_HZ 100).
fn jiffies(seconds: f64) -> u64 {
    (seconds.max(0.0) * 100.0).round() as u64
}

/// One core's mode, to the core's line and the node's total.
fn add_core_line(a: &mut Acc, s: &Series, mode: &str) {
    if let Some(core) = s.cpu.as_deref().and_then(|c| c.parse::<u32>().ok()) {
        let j = jiffies(s.value);
        add_mode(a.cpus.entry(core).or_default(), mode, j);
        add_mode(a.total.get_or_insert_default(), mode, j);
    }
}

/// A node's total without the fleet's per-core answer, unless the screen asked for its per-core
/// lines (whose sum it is then): its idle sum, with the rest of its cores' time as busy time of
/// unknown kind (iowait included). The cores' time runs from `origin`, the node's boot time as
/// first seen, kept while the boot time stays within [`SAME_BOOT_S`] of it (beyond, a new
/// origin, and the derivation does not compare across it): a boot time that
/// moved by a second would otherwise be a second of busy time on every core. It ends at the
/// node's own clock at the scrape (`node_time_seconds`, read beside `/proc/stat`), else at the
/// scrape's time.
fn totals_without_per_core(a: &mut Acc, origin: &mut Option<f64>) {
    if a.total.is_some() {
        return;
    }
    let (Some(idle), Some(cores), Some(scraped)) = (a.idle_sum, a.cores, a.scraped_at) else {
        return;
    };
    let boot = a.gauges.get("node_boot_time_seconds").copied();
    let from = match (*origin, boot) {
        (Some(o), Some(b)) if (o - b).abs() <= SAME_BOOT_S as f64 => o,
        (Some(o), None) => o,
        (_, b) => *origin.insert(b.unwrap_or(0.0)),
    };
    let to = a
        .gauges
        .get(super::selector::NODE_TIME)
        .copied()
        .unwrap_or(scraped);
    let elapsed = jiffies(f64::from(cores) * (to - from));
    a.total = Some(CpuTimes {
        user: elapsed.saturating_sub(idle),
        idle,
        ..CpuTimes::default()
    });
    a.busy_unsplit = true;
}

/// The instances of `wanted` (instance labels of the nodes on screen, the detail's first, from
/// [`Fleet::instances_of`]) whose cores are asked for one by one: in that order, while their
/// cores together stay within `limit`, and at most 256.
pub(crate) fn detail_instances(cores: &[Series], wanted: &[String], limit: f64) -> Vec<String> {
    let wanted = &wanted[..wanted.len().min(256)];
    if wanted.is_empty() {
        return Vec::new();
    }
    // One pass over the fleet, not one per wanted node.
    let by_name: HashMap<&str, &Series> = cores
        .iter()
        .rev()
        .map(|s| (s.instance.as_str(), s))
        .collect();
    let mut picked = Vec::new();
    let mut total = 0.0;
    for name in wanted {
        let Some(s) = by_name.get(name.as_str()) else {
            continue;
        };
        if total + s.value > limit || picked.contains(&s.instance) {
            continue;
        }
        total += s.value;
        picked.push(s.instance.clone());
    }
    picked
}

/// Adds a mode's jiffies (node_exporter's seconds × USER_HZ 100) to its field.
fn add_mode(t: &mut CpuTimes, mode: &str, jiffies: u64) {
    let field = match mode {
        "user" => &mut t.user,
        "nice" => &mut t.nice,
        "system" => &mut t.system,
        "idle" => &mut t.idle,
        "iowait" => &mut t.iowait,
        "irq" => &mut t.irq,
        "softirq" => &mut t.softirq,
        "steal" => &mut t.steal,
        _ => return,
    };
    *field = field.saturating_add(jiffies);
}

/// The host of `host:port`, `[v6]:port`, or a bare host or address.
pub(crate) fn host_of(instance: &str) -> &str {
    let t = instance.trim();
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if t.parse::<IpAddr>().is_ok() {
        return t;
    }
    match t.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(instance: &str, value: f64) -> Series {
        Series {
            instance: instance.into(),
            job: None,
            name: None,
            mode: None,
            cpu: None,
            backend: None,
            value,
        }
    }

    fn cpu(instance: &str, core: &str, mode: &str, value: f64) -> Series {
        Series {
            cpu: Some(core.into()),
            mode: Some(mode.into()),
            ..series(instance, value)
        }
    }

    fn gauge(instance: &str, name: &str, value: f64) -> Series {
        Series {
            name: Some(name.into()),
            ..series(instance, value)
        }
    }

    fn answers(at: f64, scraped: f64, idle: f64) -> Answers {
        let i = "10.0.0.1:9100";
        Answers {
            at,
            up: vec![series(i, 1.0), series("web2:9100", 0.0)],
            scraped_at: vec![series(i, scraped), series("web2:9100", scraped)],
            cores: vec![series(i, 2.0)],
            cpu: vec![
                cpu(i, "1", "idle", idle),
                cpu(i, "0", "idle", idle),
                cpu(i, "0", "user", 10.5),
                cpu(i, "1", "user", 10.25),
                cpu(i, "0", "guest", 99.0),
            ],
            per_core: true,
            cpu_detail: Vec::new(),
            gauges: vec![
                gauge(i, "node_load1", 0.5),
                gauge(i, "node_memory_MemTotal_bytes", 8e9),
                gauge(i, "node_boot_time_seconds", 1000.0),
                gauge(i, "node_time_seconds", 4600.0),
            ],
            scrape_counts: Some(vec![series(i, 120.0)]),
        }
    }

    fn node(events: &[SourceEvent], want: &str) -> Report<NodeSample> {
        events
            .iter()
            .find_map(|e| match e {
                SourceEvent::Node { name, report, .. } if name == want => Some(report.clone()),
                _ => None,
            })
            .expect("event for the instance")
    }

    #[test]
    fn answers_become_raw_samples_with_the_scrape_time_and_per_core_jiffies() {
        let mappings = [NodeMapping {
            match_: "10.0.0.22".into(),
            host: "web2".into(),
        }];
        let mut fleet = Fleet::new(&mappings, 1.0, 600.0);
        let events = fleet.absorb(answers(2000.5, 2000.0, 100.0));
        let Report::Sample(s) = node(&events, "10.0.0.1:9100") else {
            panic!("a sample");
        };
        assert_eq!(s.time, Timestamp(2_000_000));
        assert_eq!(s.stat.cpu_ids, vec![0, 1]);
        assert_eq!(s.stat.cpus[0].user, 1050);
        assert_eq!(s.stat.cpus[1].idle, 10_000);
        assert_eq!(s.stat.total.user, 2075);
        assert_eq!(s.cores(), 2);
        assert_eq!(s.memory.total_bytes, 8_000_000_000);
        assert!((s.uptime.uptime_s - 3600.0).abs() < 1e-9);
        assert!((s.load.one - 0.5).abs() < 1e-9);
        let down = events
            .iter()
            .find(|e| matches!(e, SourceEvent::Node { name, .. } if name == "web2:9100"));
        match down {
            Some(SourceEvent::Node {
                host,
                report: Report::Status {
                    status, message, ..
                },
                ..
            }) => {
                assert_eq!(host, "10.0.0.22", "matched by the [[node]] entry");
                assert_eq!(*status, HostStatus::Unreachable);
                assert!(message.as_deref().unwrap_or("").contains("up is 0"));
            }
            other => panic!("{other:?}"),
        }
        // The same scrape again: nothing new to send, and the status is not said twice.
        assert!(fleet.absorb(answers(2001.0, 2000.0, 100.0)).is_empty());
        assert_eq!(fleet.absorb(answers(2002.0, 2001.0, 101.0)).len(), 1);
    }

    #[test]
    fn old_data_and_gone_targets_are_unreachable_with_the_reason() {
        let mut fleet = Fleet::new(&[], 1.0, 600.0);
        fleet.absorb(answers(2000.5, 2000.0, 100.0));
        // One scrape a second (120 in two minutes): 3.5 s old is more than three intervals.
        let events = fleet.absorb(Answers {
            scrape_counts: None,
            ..answers(2003.5, 2000.0, 100.0)
        });
        let Report::Status {
            status, message, ..
        } = node(&events, "10.0.0.1:9100")
        else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Unreachable);
        assert!(message.unwrap_or_default().contains("no sample for 4 s"));
        let gone = fleet.absorb(Answers {
            at: 2004.0,
            ..Answers::default()
        });
        let Report::Status { message, .. } = node(&gone, "10.0.0.1:9100") else {
            panic!("a status");
        };
        assert!(message.unwrap_or_default().contains("target is gone"));
        let failed = fleet.failed(HostStatus::Unreachable, "connection refused", "prom:9090");
        assert_eq!(failed.len(), 2, "both instances known");
    }

    #[test]
    fn an_instance_missing_from_the_answers_for_forget_after_is_gone_and_can_come_back() {
        let i = "10.0.0.1:9100";
        let mut fleet = Fleet::new(&[], 1.0, 10.0);
        fleet.absorb(answers(2000.5, 2000.0, 100.0));
        // Missing, then back within the ten seconds: never forgotten, and its time missing
        // starts again.
        let missing = |at: f64| Answers {
            at,
            up: vec![series("web2:9100", 0.0)],
            scraped_at: vec![series("web2:9100", at)],
            ..Answers::default()
        };
        let Report::Status { status, .. } = node(&fleet.absorb(missing(2001.0)), i) else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Unreachable);
        assert!(fleet.absorb(missing(2010.9)).is_empty());
        assert!(matches!(
            node(&fleet.absorb(answers(2011.0, 2011.0, 101.0)), i),
            Report::Sample(_)
        ));
        fleet.absorb(missing(2012.0));
        assert!(fleet.absorb(missing(2021.9)).is_empty());
        // Ten seconds missing: gone, once; the instance still down (web2) is not.
        let events = fleet.absorb(missing(2022.0));
        let Report::Status {
            status,
            message,
            time,
        } = node(&events, i)
        else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Gone);
        assert_eq!(time, Timestamp(2_022_000));
        assert!(
            message
                .unwrap_or_default()
                .contains("missing from Prometheus's answers for 10 s")
        );
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(!fleet.known.contains_key(i), "its memory is freed");
        assert!(
            fleet.known.contains_key("web2:9100"),
            "up is 0: still a target"
        );
        assert!(fleet.absorb(missing(2030.0)).is_empty(), "said once");
        // web2, down (up 0), then out of the answers as its series age: down, not gone.
        let without_web2 = |at: f64| Answers {
            at,
            ..Answers::default()
        };
        let Report::Status { status, .. } = node(&fleet.absorb(without_web2(2031.0)), "web2:9100")
        else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Unreachable);
        assert!(fleet.absorb(without_web2(5000.0)).is_empty());
        assert!(fleet.known.contains_key("web2:9100"), "a down node stays");
        assert!(
            fleet
                .failed(HostStatus::Unreachable, "refused", "prom:9090")
                .len()
                == 1,
            "a failure is said on the instances still known only"
        );
        // Back: a new instance, its first sample sent whole.
        let back = fleet.absorb(answers(2040.0, 2040.0, 102.0));
        assert!(matches!(node(&back, i), Report::Sample(_)));
        assert!(fleet.known.contains_key(i));
    }

    #[test]
    fn instances_whose_labels_print_the_same_are_told_apart() {
        let long = "n".repeat(NAME_CHARS);
        let labels = [
            "a\u{1b}[2Jx:9100".to_string(),
            "a\\u{1b}[2Jx:9100".to_string(),
            format!("{long}-1"),
            format!("{long}-2"),
            "prometheus".to_string(),
        ];
        let mut fleet = Fleet::new(&[], 1.0, 10.0);
        let up = |at: f64, labels: &[String]| Answers {
            at,
            up: labels.iter().map(|l| series(l, 1.0)).collect(),
            ..Answers::default()
        };
        let names = |events: &[SourceEvent]| -> Vec<String> {
            events
                .iter()
                .filter_map(|e| match e {
                    SourceEvent::Node { name, .. } => Some(name.clone()),
                    SourceEvent::Router { .. } => None,
                })
                .collect()
        };
        let first = names(&fleet.absorb(up(1000.0, &labels)));
        let escaped = "a\\u{1b}[2Jx:9100";
        assert_eq!(
            first,
            [
                escaped.to_string(),
                format!("{escaped} (2)"),
                long.clone(),
                format!("{long} (2)"),
                "prometheus (2)".to_string(),
            ],
            "in the order of the labels (a BTreeMap's), each its own"
        );
        // The nodes on screen are asked for by their own instances, suffix or not.
        assert_eq!(
            fleet.instances_of(&[format!("{escaped} (2)"), escaped.to_string(), "x".into()]),
            [labels[1].clone(), labels[0].clone(), "x".into()]
        );
        // The same instance keeps its name; one forgotten gives its name back.
        let first_long = format!("{long}-1");
        let rest: Vec<String> = labels
            .iter()
            .filter(|l| **l != first_long)
            .cloned()
            .collect();
        fleet.absorb(up(1001.0, &rest));
        assert!(fleet.failed(HostStatus::Unreachable, "x", "p:9090").len() == 5);
        let gone: Vec<SourceEvent> = fleet
            .absorb(up(1012.0, &rest))
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    SourceEvent::Node {
                        report: Report::Status {
                            status: HostStatus::Gone,
                            ..
                        },
                        ..
                    }
                )
            })
            .collect();
        assert_eq!(
            names(&gone),
            vec![long.clone()],
            "the first long one is gone"
        );
        let newcomer = format!("{long}-3");
        let back = names(&fleet.absorb(up(1013.0, &[newcomer])));
        assert!(back.contains(&long), "its name is free again: {back:?}");
        assert!(
            back.contains(&format!("{long} (2)")),
            "the other keeps its own: {back:?}"
        );
    }

    #[test]
    fn idle_sums_without_cores_give_busy_time_of_unknown_kind_and_the_core_count() {
        let i = "10.0.0.1:9100";
        // One poll of a large fleet: the idle sum, the cores, the node's clock and boot time.
        let poll = |scraped: f64, idle: f64, boot: f64| {
            let mut a = answers(scraped + 0.5, scraped, 100.0);
            a.per_core = false;
            a.cpu = vec![cpu(i, "", "idle", idle)];
            a.cores = vec![series(i, 32.0)];
            a.gauges = vec![
                gauge(i, "node_boot_time_seconds", boot),
                gauge(i, "node_time_seconds", scraped),
            ];
            a
        };
        let mut fleet = Fleet::new(&[], 1.0, 600.0);
        let mut sample = |a: Answers| match node(&fleet.absorb(a), i) {
            Report::Sample(s) => s,
            other => panic!("a sample: {other:?}"),
        };
        let s = sample(poll(2000.0, 20_000.0, 1000.0));
        assert!(s.stat.cpus.is_empty());
        assert!(s.stat.busy_unsplit);
        assert_eq!(s.cores(), 32);
        assert!(!s.has_per_core());
        // 32 cores for the 1,000 s since boot: 3,200,000 jiffies, less idle.
        assert_eq!(s.stat.total.idle, 2_000_000);
        assert_eq!(s.stat.total.user, 3_200_000 - 2_000_000);
        assert_eq!(s.stat.total.system, 0);

        // 10 s later, 4 cores' worth busy: 320 s of the cores' time, 280 of it idle. The boot
        // time moved by a second (NTP): the count stays on the first one.
        let t = sample(poll(2010.0, 20_280.0, 1001.0));
        let stats = crate::model::snapshot::derive_node(Some(&s), &t);
        let total = stats.cpu_total.expect("derived");
        assert!((total.busy() - 12.5).abs() < 1e-9, "{total:?}");
        assert_eq!(stats.cpu_detail(), "busy-only");

        // The node's clock stepped by two minutes, its boot time with it: a new origin, and that
        // one interval is not derived (the cores' time would jump by 32 × 120 s).
        let u = sample(poll(2020.0, 20_560.0, 1121.0));
        assert_eq!(
            crate::model::snapshot::derive_node(Some(&t), &u).cpu_total,
            None
        );
        // Rebooted: idle starts again, from the new boot time; that one interval is not derived.
        let r = sample(poll(2030.0, 100.0, 2025.0));
        assert_eq!(r.stat.total.user, 32 * 500 - 10_000);
        assert_eq!(
            crate::model::snapshot::derive_node(Some(&u), &r).cpu_total,
            None
        );
    }

    #[test]
    fn per_core_lines_of_the_nodes_on_screen_come_beside_the_sums_within_the_limit() {
        let cores = vec![
            series("a:9100", 64.0),
            series("b:9100", 64.0),
            series("c:9100", 8.0),
        ];
        let wanted = [
            "b:9100".to_string(),
            "a:9100".into(),
            "c:9100".into(),
            "x".into(),
        ];
        assert_eq!(
            detail_instances(&cores, &wanted, 100.0),
            vec!["b:9100".to_string(), "c:9100".into()],
            "the detail's node first; a that does not fit is left to its sums"
        );
        let i = "10.0.0.1:9100";
        let mut a = answers(2000.5, 2000.0, 100.0);
        a.per_core = false;
        a.cpu = vec![cpu(i, "", "idle", 200.0), cpu(i, "", "user", 20.75)];
        a.cpu_detail = vec![cpu(i, "0", "idle", 100.0), cpu(i, "1", "idle", 100.0)];
        let events = Fleet::new(&[], 1.0, 600.0).absorb(a);
        let Report::Sample(s) = node(&events, i) else {
            panic!("a sample");
        };
        assert!(s.has_per_core());
        assert!(!s.stat.busy_unsplit);
        assert_eq!(s.stat.cpu_ids, vec![0, 1]);
        assert_eq!(s.stat.total.idle, 20_000, "the total is its cores' sum");
    }

    #[test]
    fn past_the_most_instances_followed_the_rest_are_counted_and_said() {
        let mut fleet = Fleet::new(&[], 1.0, 600.0);
        let many = |n: usize| Answers {
            up: (0..n)
                .map(|i| series(&format!("i{i:06}:9100"), 1.0))
                .collect(),
            scraped_at: Vec::new(),
            cores: Vec::new(),
            cpu: Vec::new(),
            gauges: Vec::new(),
            scrape_counts: None,
            ..answers(2000.5, 2000.0, 100.0)
        };
        let events = fleet.absorb(many(MAX_INSTANCES + 5));
        assert_eq!(fleet.known.len(), MAX_INSTANCES);
        let Report::Status {
            status, message, ..
        } = node(&events, "prometheus")
        else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Error);
        assert_eq!(
            message.as_deref(),
            Some("5 more instances than the 10000 followed are not shown: narrow the selector")
        );
        // The first seen stay; said once while nothing changes.
        assert!(fleet.known.contains_key("i000000:9100"));
        assert!(!fleet.known.contains_key("i010004:9100"));
        let events = fleet.absorb(many(MAX_INSTANCES + 5));
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, SourceEvent::Node { name, .. } if name == "prometheus")),
            "said again"
        );
        let events = fleet.absorb(many(MAX_INSTANCES));
        let Report::Status { status, .. } = node(&events, "prometheus") else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Ok);
    }

    #[test]
    fn hosts_of_instance_labels() {
        assert_eq!(host_of("10.0.0.1:9100"), "10.0.0.1");
        assert_eq!(host_of("[fd00::1]:9100"), "fd00::1");
        assert_eq!(host_of("fd00::1"), "fd00::1");
        assert_eq!(host_of("web1.example:9100"), "web1.example");
        assert_eq!(host_of("web1"), "web1");
        let mut fleet = Fleet::new(&[], 1.0, 600.0);
        let failed = fleet.failed(HostStatus::Error, "x", "prom:9090");
        assert!(matches!(&failed[..], [SourceEvent::Node { name, .. }] if name == "prometheus"));
        // Once Prometheus answers, that entry says so.
        let events = fleet.absorb(answers(2000.5, 2000.0, 100.0));
        assert!(events.iter().any(|e| matches!(e, SourceEvent::Node {
            name,
            report: Report::Status { status: HostStatus::Ok, .. },
            ..
        } if name == "prometheus")));
    }
}
