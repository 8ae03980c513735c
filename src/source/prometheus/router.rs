//! The router from Prometheus (`--router 'prometheus:INSTANCE'`): the table node_exporter's ipvs
//! collector exports for one instance, read-only. One query per metric family — the backends'
//! weights, active and inactive connections, and the router-wide counters — all evaluated at
//! one instant, turned into a raw `RouterSample` with the scrape's own time.
//!
//! node_exporter gives no scheduler, persistence, forwarding method, thresholds or per-service
//! and per-real counters: the sample says so (`scheduler: None`, `Forward::Unknown`, no totals,
//! `RouterSourceKind::Prometheus`), and nothing is made up in their place.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::sample::{
    AddressFamily, Forward, HostStatus, IpvsCounters, IpvsGlobalStats, Protocol, RealServerSample,
    Report, RouterSample, RouterSourceKind, ServiceKey, Timestamp, VirtualServiceSample,
};
use crate::model::text::printable;

use super::api::{Backend, Series};
use super::selector::INTERVAL_WINDOW_S;

/// The router-wide counters node_exporter reads from `/proc/net/ip_vs_stats`.
pub(crate) const GLOBAL_COUNTERS: [&str; 5] = [
    "node_ipvs_connections_total",
    "node_ipvs_incoming_packets_total",
    "node_ipvs_outgoing_packets_total",
    "node_ipvs_incoming_bytes_total",
    "node_ipvs_outgoing_bytes_total",
];

/// Staleness: no scrape newer than this many scrape intervals is unreachable.
const STALE_SCRAPES: f64 = 3.0;

/// The PromQL of one instance's router queries.
#[derive(Debug, Clone)]
pub(crate) struct RouterQueries {
    /// `instance="…"`, the label value escaped for PromQL.
    matcher: String,
}

impl RouterQueries {
    pub(crate) fn new(instance: &str) -> RouterQueries {
        let escaped = instance.replace('\\', "\\\\").replace('"', "\\\"");
        RouterQueries {
            matcher: format!("instance=\"{escaped}\""),
        }
    }

    pub(crate) fn up(&self) -> String {
        format!("up{{{}}}", self.matcher)
    }

    pub(crate) fn scraped_at(&self) -> String {
        format!("timestamp(up{{{}}})", self.matcher)
    }

    /// Scrapes in the last [`INTERVAL_WINDOW_S`] seconds: the scrape interval.
    pub(crate) fn scrape_count(&self) -> String {
        format!(
            "count_over_time(up{{{}}}[{INTERVAL_WINDOW_S}s])",
            self.matcher
        )
    }

    /// Whether the ipvs collector read the kernel's files at the last scrape.
    pub(crate) fn collector(&self) -> String {
        format!(
            "node_scrape_collector_success{{{},collector=\"ipvs\"}}",
            self.matcher
        )
    }

    pub(crate) fn backend(&self, what: &str) -> String {
        format!("node_ipvs_backend_{what}{{{}}}", self.matcher)
    }

    pub(crate) fn global(&self) -> String {
        format!(
            "{{{},__name__=~\"{}\"}}",
            self.matcher,
            GLOBAL_COUNTERS.join("|")
        )
    }
}

/// What one poll asked and got, every query evaluated at `at` (seconds since the epoch).
#[derive(Debug, Default)]
pub(crate) struct RouterAnswers {
    pub at: f64,
    pub up: Vec<Series>,
    pub scraped_at: Vec<Series>,
    /// Asked once a minute (`None` between): the scrape interval moves seldom.
    pub scrape_count: Option<Vec<Series>>,
    pub collector: Vec<Series>,
    pub weight: Vec<Series>,
    pub active: Vec<Series>,
    pub inactive: Vec<Series>,
    pub global: Vec<Series>,
}

/// What is known of the router across polls.
#[derive(Debug)]
pub(crate) struct RouterView {
    instance: String,
    /// lbtop's poll interval: the scrape interval assumed while Prometheus has too few scrapes
    /// to tell it (at least a second).
    poll_interval_s: f64,
    last_scrape: Option<f64>,
    /// The scrapes counted in the last [`INTERVAL_WINDOW_S`] seconds, at the last asking, by job.
    scrape_counts: Vec<Series>,
    /// The status last said, so that each is said once.
    said: Option<(HostStatus, String)>,
}

impl RouterView {
    pub(crate) fn new(instance: &str, poll_interval_s: f64) -> RouterView {
        RouterView {
            instance: instance.to_string(),
            poll_interval_s: poll_interval_s.max(1.0),
            last_scrape: None,
            scrape_counts: Vec::new(),
            said: None,
        }
    }

    /// The router's name in the state and the events: the instance label, printable.
    pub(crate) fn host(&self) -> String {
        printable(&self.instance, 120)
    }

    /// This poll's report: a sample when the instance was scraped since the last one, a status
    /// when it changed, else nothing.
    pub(crate) fn absorb(&mut self, a: &RouterAnswers) -> Option<Report<RouterSample>> {
        if let Some(counts) = &a.scrape_count {
            self.scrape_counts = counts.clone();
        }
        match self.judge(a) {
            Ok((scraped, sample)) => {
                if self.last_scrape == Some(scraped) {
                    return None;
                }
                self.last_scrape = Some(scraped);
                self.said = None;
                Some(Report::Sample(sample))
            }
            Err((status, message)) => self.failed(status, &message, a.at),
        }
    }

    /// A failure, said once per change.
    pub(crate) fn failed(
        &mut self,
        status: HostStatus,
        message: &str,
        at: f64,
    ) -> Option<Report<RouterSample>> {
        let key = Some((status, message.to_string()));
        if self.said == key {
            return None;
        }
        self.said = key;
        Some(Report::Status {
            time: Timestamp((at * 1000.0) as i64),
            status,
            message: Some(message.to_string()),
        })
    }

    /// The sample and its scrape time, or the status the router gets instead.
    fn judge(&self, a: &RouterAnswers) -> Result<(f64, RouterSample), (HostStatus, String)> {
        let name = self.host();
        let Some(up) = pick_up(&a.up, &a.collector) else {
            return Err((
                HostStatus::Error,
                format!(
                    "Prometheus has no target with instance=\"{name}\" (write the instance \
                     label exactly as Prometheus shows it, e.g. 10.0.0.1:9100)"
                ),
            ));
        };
        let job = up.job.as_deref();
        let named = if a.up.len() > 1 {
            format!("{name} (job {})", printable(job.unwrap_or("none"), 60))
        } else {
            name.clone()
        };
        if up.value != 1.0 {
            return Err((
                HostStatus::Unreachable,
                format!("Prometheus cannot scrape {named}: up is 0 (its last scrape failed)"),
            ));
        }
        let scraped = of_job(&a.scraped_at, job).map_or(0.0, |s| s.value);
        let interval = of_job(&self.scrape_counts, job)
            .filter(|s| s.value >= 2.0)
            .map_or(self.poll_interval_s, |s| {
                f64::from(INTERVAL_WINDOW_S) / s.value
            });
        let age = a.at - scraped;
        if age > STALE_SCRAPES * interval {
            return Err((
                HostStatus::Unreachable,
                format!(
                    "no scrape of {name} for {age:.0} s, more than {STALE_SCRAPES} scrape \
                     intervals of {interval:.1} s"
                ),
            ));
        }
        match a.collector.first().map(|s| s.value) {
            None => {
                return Err((
                    HostStatus::Error,
                    format!(
                        "{name} exports no ipvs collector: start node_exporter there with \
                         --collector.ipvs (on by default)"
                    ),
                ));
            }
            Some(v) if v != 1.0 => {
                return Err((
                    HostStatus::Error,
                    format!(
                        "node_exporter on {name} could not read IPVS \
                         (node_scrape_collector_success{{collector=\"ipvs\"}} is 0): is the \
                         ip_vs module loaded, and /proc/net/ip_vs readable?"
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok((scraped, sample(a, scraped)))
    }
}

/// The router's `up`: the one series when there is one. One instance label can be scraped by
/// several jobs (node_exporter and a blackbox probe of the same address): then the job that
/// exports the ipvs collector; when none does now, a job whose scrape failed (node_exporter may
/// be the one that is down), else the first.
fn pick_up<'a>(up: &'a [Series], collector: &[Series]) -> Option<&'a Series> {
    if up.len() <= 1 {
        return up.first();
    }
    match collector.first() {
        Some(c) => up.iter().find(|s| s.job == c.job),
        None => up.iter().find(|s| s.value != 1.0).or(up.first()),
    }
}

/// The series of `job` in `series`, or the first when the job is not known.
fn of_job<'a>(series: &'a [Series], job: Option<&str>) -> Option<&'a Series> {
    series
        .iter()
        .find(|s| s.job.as_deref() == job)
        .or_else(|| job.is_none().then(|| series.first()).flatten())
}

/// The raw sample of one poll's answers.
fn sample(a: &RouterAnswers, scraped: f64) -> RouterSample {
    let (services, dropped) = table(a);
    let mut notes = vec![
        "from Prometheus (node_exporter's ipvs metrics): no scheduler, persistence, forwarding \
         method, thresholds or per-service and per-real counters; read-only"
            .to_string(),
    ];
    if dropped > 0 {
        notes.push(format!(
            "{dropped} backend series Prometheus answered could not be read (labels that are \
             not an address, a port or a protocol, or a backend missing from one of the three \
             queries)"
        ));
    }
    RouterSample {
        time: Timestamp((scraped * 1000.0).round() as i64),
        source: RouterSourceKind::Prometheus,
        services,
        global: global(&a.global),
        connections: None,
        notes,
        ipvs: None,
        parts: Default::default(),
        sysctl: None,
        addrs: None,
        owners: None,
        sync: None,
    }
}

/// The router-wide counters, when Prometheus has all five.
fn global(series: &[Series]) -> Option<IpvsGlobalStats> {
    let get = |name: &str| {
        series
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
            .map(|s| s.value.max(0.0) as u64)
    };
    let [conns, in_packets, out_packets, in_bytes, out_bytes] = GLOBAL_COUNTERS.map(get);
    Some(IpvsGlobalStats {
        totals: IpvsCounters {
            conns: conns?,
            in_packets: in_packets?,
            out_packets: out_packets?,
            in_bytes: in_bytes?,
            out_bytes: out_bytes?,
        },
        rates: None,
    })
}

/// A backend's service and real server, from its labels.
fn parse_backend(b: &Backend) -> Option<(ServiceKey, IpAddr, u16)> {
    let remote: IpAddr = b.remote_address.parse().ok()?;
    let remote_port: u16 = b.remote_port.parse().ok()?;
    let key = if b.proto == "FWM" {
        ServiceKey::Fwmark {
            mark: u32::from_str_radix(&b.local_mark, 16).ok()?,
            family: if remote.is_ipv6() {
                AddressFamily::Inet6
            } else {
                AddressFamily::Inet
            },
        }
    } else {
        ServiceKey::Addr {
            protocol: Protocol::from_upper(&b.proto)?,
            address: b.local_address.parse().ok()?,
            port: b.local_port.parse().ok()?,
        }
    };
    Some((key, remote, remote_port))
}

type RealKey = (ServiceKey, IpAddr, u16);

/// One value per backend of a metric family; series that cannot be read are counted.
fn by_backend(series: &[Series], dropped: &mut usize) -> BTreeMap<RealKey, f64> {
    let mut out = BTreeMap::new();
    for s in series {
        match s.backend.as_deref().and_then(parse_backend) {
            Some(k) => {
                out.insert(k, s.value);
            }
            None => *dropped += 1,
        }
    }
    out
}

/// The services and their real servers, in key order; and how many series were left out.
fn table(a: &RouterAnswers) -> (Vec<VirtualServiceSample>, usize) {
    let mut dropped = 0;
    let weights = by_backend(&a.weight, &mut dropped);
    let active = by_backend(&a.active, &mut dropped);
    let inactive = by_backend(&a.inactive, &mut dropped);
    let mut services: BTreeMap<ServiceKey, VirtualServiceSample> = BTreeMap::new();
    for (&(key, address, port), &weight) in &weights {
        let k = (key, address, port);
        let (Some(&act), Some(&inact)) = (active.get(&k), inactive.get(&k)) else {
            dropped += 1;
            continue;
        };
        let count = |v: f64| v.clamp(0.0, f64::from(u32::MAX)) as u32;
        services
            .entry(key)
            .or_insert_with(|| VirtualServiceSample {
                key,
                scheduler: None,
                persistent: None,
                ops: false,
                totals: None,
                rates: None,
                flags: None,
                pe_name: None,
                reals: Vec::new(),
            })
            .reals
            .push(RealServerSample {
                address,
                port,
                forward: Forward::Unknown,
                weight: weight.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32,
                upper_threshold: 0,
                lower_threshold: 0,
                active_conns: count(act),
                inactive_conns: count(inact),
                persistent_conns: None,
                totals: None,
                rates: None,
                tunnel: None,
            });
    }
    (services.into_values().collect(), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(proto: &str, local: &str, port: &str, mark: &str, remote: &str, v: f64) -> Series {
        Series {
            instance: "lb1:9100".into(),
            job: None,
            name: None,
            mode: None,
            cpu: None,
            backend: Some(Box::new(Backend {
                proto: proto.into(),
                local_address: local.into(),
                local_port: port.into(),
                local_mark: mark.into(),
                remote_address: remote.into(),
                remote_port: "80".into(),
            })),
            value: v,
        }
    }

    fn one(value: f64) -> Vec<Series> {
        vec![Series {
            instance: "lb1:9100".into(),
            job: None,
            name: None,
            mode: None,
            cpu: None,
            backend: None,
            value,
        }]
    }

    fn answers() -> RouterAnswers {
        let b = |v| {
            vec![
                backend("TCP", "10.0.0.100", "80", "", "10.0.0.11", v),
                backend("FWM", "", "0", "0000002a", "fd00::12", v + 1.0),
                backend("SCTPX", "10.0.0.100", "80", "", "10.0.0.11", v),
            ]
        };
        RouterAnswers {
            at: 1000.5,
            up: one(1.0),
            scraped_at: one(1000.0),
            scrape_count: Some(one(120.0)),
            collector: one(1.0),
            weight: b(3.0),
            active: b(5.0),
            inactive: b(7.0),
            global: GLOBAL_COUNTERS
                .iter()
                .enumerate()
                .map(|(i, n)| Series {
                    name: Some((*n).to_string()),
                    ..one(i as f64 * 10.0).remove(0)
                })
                .collect(),
        }
    }

    #[test]
    fn backends_become_services_with_what_node_exporter_cannot_know_left_unknown() {
        let mut view = RouterView::new("lb1:9100", 1.0);
        let Some(Report::Sample(s)) = view.absorb(&answers()) else {
            panic!("a sample");
        };
        assert_eq!(s.time, Timestamp(1_000_000));
        assert_eq!(s.source, RouterSourceKind::Prometheus);
        assert_eq!(s.services.len(), 2);
        let tcp = &s.services[0];
        assert_eq!(tcp.key.to_string(), "tcp:10.0.0.100:80");
        assert_eq!(tcp.scheduler, None);
        let r = &tcp.reals[0];
        assert_eq!((r.weight, r.active_conns, r.inactive_conns), (3, 5, 7));
        assert_eq!(r.forward, Forward::Unknown);
        assert_eq!((r.totals, r.rates), (None, None));
        let fwm = &s.services[1];
        assert_eq!(
            fwm.key,
            ServiceKey::Fwmark {
                mark: 42,
                family: AddressFamily::Inet6
            }
        );
        let g = s.global.expect("counters");
        assert_eq!((g.totals.conns, g.totals.out_bytes, g.rates), (0, 40, None));
        assert!(s.notes.iter().any(|n| n.contains("3 backend series")));
        // The same scrape again: nothing new.
        assert_eq!(view.absorb(&answers()), None);
    }

    #[test]
    fn a_router_prometheus_cannot_read_says_why_once() {
        let mut view = RouterView::new("lb1:9100", 1.0);
        let down = RouterAnswers {
            up: one(0.0),
            ..answers()
        };
        let Some(Report::Status {
            status, message, ..
        }) = view.absorb(&down)
        else {
            panic!("a status");
        };
        assert_eq!(status, HostStatus::Unreachable);
        assert!(message.unwrap_or_default().contains("up is 0"));
        assert_eq!(view.absorb(&down), None, "said once");
        let no_ipvs = RouterAnswers {
            collector: one(0.0),
            ..answers()
        };
        let Some(Report::Status { message, .. }) = view.absorb(&no_ipvs) else {
            panic!("a status");
        };
        assert!(message.unwrap_or_default().contains("ip_vs module"));
        let no_collector = RouterAnswers {
            collector: Vec::new(),
            ..answers()
        };
        let Some(Report::Status { message, .. }) = view.absorb(&no_collector) else {
            panic!("a status");
        };
        assert!(
            message
                .unwrap_or_default()
                .contains("exports no ipvs collector")
        );
        let gone = RouterAnswers {
            at: 2000.0,
            ..RouterAnswers::default()
        };
        let Some(Report::Status { message, .. }) = view.absorb(&gone) else {
            panic!("a status");
        };
        assert!(message.unwrap_or_default().contains("no target"));
        let old = RouterAnswers {
            at: 1010.0,
            ..answers()
        };
        let Some(Report::Status { message, .. }) = view.absorb(&old) else {
            panic!("a status");
        };
        assert!(
            message
                .unwrap_or_default()
                .contains("no scrape of lb1:9100 for 10 s")
        );
    }

    #[test]
    fn of_two_jobs_with_one_instance_label_the_one_with_the_ipvs_collector_counts() {
        let job = |v: Vec<Series>, job: &str| -> Vec<Series> {
            v.into_iter()
                .map(|s| Series {
                    job: Some(job.into()),
                    ..s
                })
                .collect()
        };
        // A blackbox probe of the same address is down; node_exporter is up and was scraped.
        let mut up = job(one(0.0), "blackbox");
        up.extend(job(one(1.0), "node"));
        let mut scraped_at = job(one(10.0), "blackbox");
        scraped_at.extend(job(one(1000.0), "node"));
        let both = RouterAnswers {
            up: up.clone(),
            scraped_at: scraped_at.clone(),
            collector: job(one(1.0), "node"),
            ..answers()
        };
        let mut view = RouterView::new("lb1:9100", 1.0);
        assert!(matches!(view.absorb(&both), Some(Report::Sample(_))));
        // node_exporter down too: no collector now, and the status names the failed job.
        let down = RouterAnswers {
            up: job(one(0.0), "node")
                .into_iter()
                .chain(job(one(1.0), "blackbox"))
                .collect(),
            scraped_at,
            collector: Vec::new(),
            ..answers()
        };
        let Some(Report::Status { message, .. }) = view.absorb(&down) else {
            panic!("a status");
        };
        let message = message.unwrap_or_default();
        assert!(message.contains("(job node): up is 0"), "{message}");
    }

    #[test]
    fn the_scrape_interval_is_kept_between_the_polls_that_ask_it() {
        let mut view = RouterView::new("lb1:9100", 1.0);
        // 12 scrapes in the window: one every 10 s, so a scrape 25 s old is still fresh.
        let first = RouterAnswers {
            scrape_count: Some(one(12.0)),
            ..answers()
        };
        assert!(matches!(view.absorb(&first), Some(Report::Sample(_))));
        let later = RouterAnswers {
            at: 1025.0,
            scraped_at: one(1000.5),
            scrape_count: None,
            ..answers()
        };
        assert!(matches!(view.absorb(&later), Some(Report::Sample(_))));
    }

    #[test]
    fn instance_labels_are_escaped_in_the_queries() {
        let q = RouterQueries::new(r#"a"b\c"#);
        assert_eq!(q.up(), r#"up{instance="a\"b\\c"}"#);
        assert!(
            q.global()
                .contains(r#"__name__=~"node_ipvs_connections_total|"#)
        );
    }
}
