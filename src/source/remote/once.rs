//! `--once` over SSH: which hosts still owe samples, and the status of one given up on.

use std::collections::HashMap;
use std::time::Duration;

use crate::model::sample::{HostStatus, Report, SourceEvent, Timestamp};

/// `--once` bookkeeping: which hosts still owe samples.
#[derive(Debug, Default)]
pub struct OnceProgress {
    rounds: u32,
    /// `None` is the router; `Some(name)` a node. Value: samples seen, finished.
    hosts: HashMap<Option<String>, (u32, bool)>,
    /// The directors of an HA pair, by host, when two are watched (then not under `None`).
    pair: HashMap<String, (u32, bool)>,
}

impl OnceProgress {
    pub fn new(rounds: u32) -> OnceProgress {
        OnceProgress {
            rounds,
            hosts: HashMap::new(),
            pair: HashMap::new(),
        }
    }

    /// Expects the two directors of an HA pair, each by the host its events carry.
    pub fn expect_pair(&mut self, hosts: &[String; 2]) {
        for h in hosts {
            self.pair.entry(h.clone()).or_insert((0, false));
        }
    }

    /// Expects a host (the router when `name` is `None`).
    pub fn expect(&mut self, name: Option<&str>) {
        self.hosts
            .entry(name.map(String::from))
            .or_insert((0, false));
    }

    /// Takes note of an event; `false` when the host was already finished (the event is surplus).
    pub fn see(&mut self, event: &SourceEvent) -> bool {
        let (key, sample, status) = match event {
            SourceEvent::Router { host, report } if self.pair.contains_key(host) => {
                let entry = self.pair.entry(host.clone()).or_insert((0, false));
                return Self::count(
                    entry,
                    self.rounds,
                    matches!(report, Report::Sample(_)),
                    report_status(report),
                );
            }
            SourceEvent::Router { report, .. } => (
                None,
                matches!(report, Report::Sample(_)),
                report_status(report),
            ),
            SourceEvent::Node { name, report, .. } => (
                Some(name.clone()),
                matches!(report, Report::Sample(_)),
                report_status(report),
            ),
        };
        let entry = self.hosts.entry(key).or_insert((0, false));
        Self::count(entry, self.rounds, sample, status)
    }

    fn count(
        entry: &mut (u32, bool),
        rounds: u32,
        sample: bool,
        status: Option<HostStatus>,
    ) -> bool {
        if entry.1 {
            return false;
        }
        if sample {
            entry.0 += 1;
        }
        if entry.0 >= rounds || status.is_some_and(|s| s != HostStatus::Connecting) {
            entry.1 = true;
        }
        true
    }

    pub fn done(&self) -> bool {
        self.hosts
            .values()
            .chain(self.pair.values())
            .all(|(_, finished)| *finished)
    }

    /// The directors of the pair still waited for, by host.
    pub fn pending_pair(&self) -> Vec<String> {
        self.pair
            .iter()
            .filter(|(_, (_, f))| !f)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The hosts still waited for: `None` for the router.
    pub fn pending(&self) -> Vec<Option<String>> {
        self.hosts
            .iter()
            .filter(|(_, (_, f))| !f)
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// The status event for a host `--once` gave up on: the router when `name` is `None`, else the
/// node of that name; `host` is the host the event carries.
pub fn unanswered(name: Option<String>, host: String, wait: Duration) -> SourceEvent {
    fn status<S>(wait: Duration) -> Report<S> {
        Report::Status {
            time: Timestamp::now(),
            status: HostStatus::Unreachable,
            message: Some(format!(
                "no answer within {}",
                humantime::format_duration(wait)
            )),
        }
    }
    match name {
        None => SourceEvent::Router {
            host,
            report: status(wait),
        },
        Some(name) => SourceEvent::Node {
            name,
            host,
            report: status(wait),
        },
    }
}

fn report_status<S>(report: &Report<S>) -> Option<HostStatus> {
    match report {
        Report::Sample(_) => None,
        Report::Status { status, .. } => Some(*status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{RouterSample, RouterSourceKind};

    #[test]
    fn once_progress_finishes_hosts_on_samples_or_failures() {
        let mut p = OnceProgress::new(2);
        p.expect(None);
        p.expect(Some("n1"));
        let node = |report| SourceEvent::Node {
            name: "n1".into(),
            host: "h".into(),
            report,
        };
        let fail = Report::Status {
            time: Timestamp(1),
            status: HostStatus::AuthFailed,
            message: None,
        };
        assert!(p.see(&node(fail.clone())));
        assert!(!p.see(&node(fail)));
        assert!(!p.done());
        assert_eq!(p.pending(), vec![None]);
        let router = || SourceEvent::Router {
            host: "r".into(),
            report: Report::Sample(RouterSample {
                time: Timestamp(1),
                source: RouterSourceKind::Ssh,
                services: vec![],
                global: None,
                connections: None,
                notes: vec![],
                ipvs: None,
                parts: Default::default(),
                sysctl: None,
                addrs: None,
                owners: None,
                sync: None,
            }),
        };
        assert!(p.see(&router()));
        assert!(p.see(&router()));
        assert!(p.done());
    }
}
