//! The HA pair (`--router a,b`): both directors' latest samples, which one is the master (it
//! holds the VIPs, [`crate::model::pair::master`]), the drift between their tables, and the
//! alerts on them. The master's samples feed the router entry the panes, the JSON and the
//! actions use; the backup's are kept here only.

use crate::model::alert::{AlertEvent, AlertKind, Severity};
use crate::model::dr::service_vips;
use crate::model::pair::{self, Drift, Master};
use crate::model::sample::{HostStatus, Report, RouterSample, SyncDaemon, SyncRole, Timestamp};

use super::State;

/// The alert subject of the pair's own problems (drift between the tables).
pub const PAIR_SUBJECT: &str = "pair";

/// The pair as the state knows it.
#[derive(Debug, Clone)]
pub struct PairEntry {
    /// The two directors, as they were named (`--router a,b`): the hosts their events carry.
    pub names: [String; 2],
    pub sides: [PairSide; 2],
    /// Which one holds the VIPs, from both latest samples.
    pub master: Master,
    /// The side whose samples feed the router entry: the master, or while none is known the one
    /// that was last.
    pub active: usize,
    /// The differences between the two tables, from both latest samples.
    pub drift: Vec<Drift>,
}

/// One director of the pair.
#[derive(Debug, Clone)]
pub struct PairSide {
    pub status: HostStatus,
    pub message: Option<String>,
    pub cur: Option<RouterSample>,
}

/// Whether the sync daemons run as a pair needs: a master daemon on the master, a backup daemon
/// on the backup, with the same sync id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncHealth {
    Ok,
    /// A sentence saying what is wrong.
    Wrong(String),
    /// Not known: a side's daemons not read, or no master known.
    Unknown,
}

impl PairEntry {
    fn new(names: [String; 2]) -> Self {
        let side = || PairSide {
            status: HostStatus::Connecting,
            message: None,
            cur: None,
        };
        PairEntry {
            names,
            sides: [side(), side()],
            master: Master::Unknown,
            active: 0,
            drift: Vec::new(),
        }
    }

    fn names(&self) -> [&str; 2] {
        [self.names[0].as_str(), self.names[1].as_str()]
    }

    /// The master's and the backup's index, when one side is the master.
    pub fn roles(&self) -> Option<(usize, usize)> {
        match self.master {
            Master::One(m) => Some((m, 1 - m)),
            _ => None,
        }
    }

    /// Each side's active and inactive connections, where its sample is in.
    pub fn connections(&self) -> [Option<(u64, u64)>; 2] {
        [0, 1].map(|i| self.sides[i].cur.as_ref().map(pair::connections))
    }

    /// The state of the sync daemons.
    pub fn sync(&self) -> SyncHealth {
        let Some((m, b)) = self.roles() else {
            return SyncHealth::Unknown;
        };
        let daemons = |i: usize| self.sides[i].cur.as_ref().and_then(|s| s.sync.as_ref());
        let (Some(dm), Some(db)) = (daemons(m), daemons(b)) else {
            return SyncHealth::Unknown;
        };
        let find = |d: &[SyncDaemon], role| d.iter().find(|x| x.role == role).cloned();
        let names = self.names();
        match (find(dm, SyncRole::Master), find(db, SyncRole::Backup)) {
            (None, _) => {
                SyncHealth::Wrong(format!("no master sync daemon on the master {}", names[m]))
            }
            (_, None) => {
                SyncHealth::Wrong(format!("no backup sync daemon on the backup {}", names[b]))
            }
            (Some(x), Some(y)) if x.syncid != y.syncid => SyncHealth::Wrong(format!(
                "sync id {} on {} and {} on {}",
                x.syncid, names[m], y.syncid, names[b]
            )),
            _ => SyncHealth::Ok,
        }
    }

    /// The pane title's summary: `master lb1, backup lb2, sync ok, conns 5/4`.
    pub fn summary(&self) -> String {
        let names = self.names();
        let mut out = match self.master {
            Master::One(m) => format!("master {}, backup {}", names[m], names[1 - m]),
            Master::Both => format!("both {} and {} hold VIPs", names[0], names[1]),
            Master::Neither => format!("neither {} nor {} holds the VIPs", names[0], names[1]),
            Master::Unknown => format!("pair {} and {}: master unknown", names[0], names[1]),
        };
        match self.sync() {
            SyncHealth::Ok => out.push_str(", sync ok"),
            SyncHealth::Wrong(_) => out.push_str(", sync WRONG"),
            SyncHealth::Unknown => out.push_str(", sync ?"),
        }
        if let Some((m, b)) = self.roles()
            && let [Some(x), Some(y)] = [self.connections()[m], self.connections()[b]]
        {
            out.push_str(&format!(", conns {}/{}", x.0 + x.1, y.0 + y.1));
        }
        if !self.drift.is_empty() {
            out.push_str(&format!(", {} drift", self.drift.len()));
        }
        out
    }

    /// The pair's own problems: no director or both holding the VIPs, the sync daemons wrong.
    pub fn problems(&self) -> Vec<String> {
        let names = self.names();
        let vips = || {
            self.sides
                .iter()
                .filter_map(|s| s.cur.as_ref())
                .flat_map(service_vips)
                .fold(Vec::new(), |mut v, a| {
                    if !v.contains(&a) {
                        v.push(a);
                    }
                    v
                })
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = Vec::new();
        match self.master {
            Master::Neither => out.push(format!(
                "neither {} nor {} holds {}, so packets for it do not reach IPVS (is keepalived \
                 running on either?)",
                names[0],
                names[1],
                vips()
            )),
            Master::Both => out.push(format!(
                "both {} and {} hold VIPs of {}: a split brain (VRRP adverts lost between them)",
                names[0],
                names[1],
                vips()
            )),
            Master::One(_) | Master::Unknown => {}
        }
        if let SyncHealth::Wrong(why) = self.sync() {
            out.push(format!("connection sync: {why}"));
        }
        out
    }
}

impl State {
    /// Declares an HA pair of directors (`--router a,b`) before their first reports.
    pub fn add_pair(&mut self, a: &str, b: &str) {
        self.pair = Some(PairEntry::new([a.to_string(), b.to_string()]));
        self.add_router(a);
    }

    pub fn pair(&self) -> Option<&PairEntry> {
        self.pair.as_ref()
    }

    /// A report of one director of the pair: kept on its side; the master's (or while none is
    /// known, the last active side's) goes on to the router entry. `None` when `host` is not
    /// one of the pair.
    pub(super) fn apply_pair(
        &mut self,
        host: &str,
        report: Report<RouterSample>,
    ) -> Option<Vec<AlertEvent>> {
        let pair = self.pair.as_mut()?;
        let i = pair.names.iter().position(|n| n == host)?;
        let mut events = Vec::new();
        let time = match &report {
            Report::Sample(s) => s.time,
            Report::Status { time, .. } => *time,
        };
        let side = &mut pair.sides[i];
        match &report {
            Report::Sample(s) => {
                side.status = HostStatus::Ok;
                side.message = None;
                side.cur = Some(s.clone());
            }
            Report::Status {
                status, message, ..
            } => {
                side.status = *status;
                side.message.clone_from(message);
            }
        }
        let before = pair.active;
        pair.master = match (&pair.sides[0].cur, &pair.sides[1].cur) {
            (Some(a), Some(b)) => pair::master(a, b),
            _ => Master::Unknown,
        };
        if let Master::One(m) = pair.master {
            pair.active = m;
        }
        pair.drift = match (&pair.sides[0].cur, &pair.sides[1].cur) {
            (Some(a), Some(b)) => pair::drift(a, b),
            _ => Vec::new(),
        };
        let active = pair.active;
        if active != before {
            // Another director's counters: the rates start again from its next sample.
            let name = pair.names[active].clone();
            let latest = pair.sides[active].cur.clone();
            if let Some(r) = self.router.as_mut() {
                r.host = name.clone();
                r.prev = None;
                r.cur = None;
            }
            if let Some(s) = latest.filter(|_| i != active) {
                events.extend(self.apply_router(&name, Report::Sample(s)));
            }
        }
        if i == active {
            events.extend(self.apply_router(host, report));
        } else if let Report::Status {
            status, message, ..
        } = &report
        {
            // The backup's connection: an alert of its own, not the router's.
            let level = super::unreachable_level(*status, message.as_deref());
            events.extend(self.alerts.set(time, host, AlertKind::Unreachable, level));
        } else {
            events.extend(self.alerts.set(time, host, AlertKind::Unreachable, None));
            events.extend(self.check_direct_routing(None, time));
        }
        events.extend(self.check_drift(time));
        Some(events)
    }

    /// The drift between the tables, as a warning naming each difference.
    fn check_drift(&mut self, time: Timestamp) -> Vec<AlertEvent> {
        let Some(pair) = self.pair.as_ref() else {
            return Vec::new();
        };
        let names = pair.names();
        let said: Vec<String> = pair.drift.iter().map(|d| d.describe(names)).collect();
        let level = (!said.is_empty()).then(|| {
            (
                Severity::Warning,
                format!("the tables differ: {}", said.join("; ")),
            )
        });
        self.alerts
            .set(time, PAIR_SUBJECT, AlertKind::Pair, level)
            .into_iter()
            .collect()
    }

    /// For a change confirmed on the master: what the backup holds of the same real server.
    pub(super) fn backup_weight_note(
        &self,
        change: &crate::control::plan::WeightChange,
    ) -> Option<String> {
        let pair = self.pair.as_ref()?;
        let (m, b) = pair.roles()?;
        let names = pair.names();
        let backup = pair.sides[b].cur.as_ref()?;
        let real = (change.real.address, change.real.port);
        Some(match pair::weight_on(backup, &change.service, real) {
            None => format!(
                "the backup {} does not have this real server: the change is made on the master \
                 {} only",
                names[b], names[m]
            ),
            Some(w) if w == change.from => format!(
                "the backup {} holds the same weight ({w}); the change is made on the master {} \
                 only",
                names[b], names[m]
            ),
            Some(w) => format!(
                "the backup {} holds weight {w}, not {}; the change is made on the master {} only",
                names[b], change.from, names[m]
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::StateOptions;
    use crate::control::plan::{ActionKind, RealKey, WeightChange};
    use crate::model::sample::{
        Forward, LocalAddrs, Protocol, RealServerSample, RouterSourceKind, ServiceKey, SourceEvent,
        VirtualServiceSample,
    };
    use std::net::{IpAddr, Ipv4Addr};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: IpAddr::V4(Ipv4Addr::new(10, 77, 2, 100)),
            port: 80,
        }
    }

    fn director(ms: i64, holds: bool, weight: i32, role: SyncRole) -> RouterSample {
        let mut v4 = vec![(Ipv4Addr::new(10, 77, 0, 21), 32)];
        if holds {
            v4.push((Ipv4Addr::new(10, 77, 2, 100), 32));
        }
        RouterSample {
            time: Timestamp(ms),
            source: RouterSourceKind::Ssh,
            services: vec![VirtualServiceSample {
                key: key(),
                scheduler: Some("wlc".into()),
                persistent: None,
                ops: false,
                totals: None,
                rates: None,
                flags: None,
                pe_name: None,
                reals: vec![RealServerSample {
                    address: IpAddr::V4(Ipv4Addr::new(10, 77, 1, 11)),
                    port: 80,
                    forward: Forward::Route,
                    weight,
                    upper_threshold: 0,
                    lower_threshold: 0,
                    active_conns: if holds { 5 } else { 3 },
                    inactive_conns: 0,
                    persistent_conns: None,
                    totals: None,
                    rates: None,
                    tunnel: None,
                }],
            }],
            global: None,
            connections: None,
            notes: Vec::new(),
            ipvs: None,
            parts: Default::default(),
            sysctl: None,
            addrs: Some(LocalAddrs { v4, v6: Vec::new() }),
            owners: None,
            sync: Some(vec![SyncDaemon {
                role,
                mcast_ifn: "eth0".into(),
                syncid: 77,
            }]),
        }
    }

    fn event(host: &str, s: RouterSample) -> SourceEvent {
        SourceEvent::Router {
            host: host.into(),
            report: Report::Sample(s),
        }
    }

    fn pair_state() -> State {
        let mut s = State::new(StateOptions::default());
        s.add_pair("lb1", "lb2");
        s
    }

    #[test]
    fn the_master_feeds_the_router_and_the_backup_not_holding_the_vip_is_no_problem() {
        let mut s = pair_state();
        s.ingest(event("lb1", director(1000, true, 1, SyncRole::Master)));
        s.ingest(event("lb2", director(1100, false, 1, SyncRole::Backup)));
        let p = s.pair().expect("pair");
        assert_eq!(p.master, Master::One(0));
        assert_eq!(p.sync(), SyncHealth::Ok);
        assert_eq!(p.summary(), "master lb1, backup lb2, sync ok, conns 5/3");
        let r = s.router().expect("router");
        assert_eq!(r.host, "lb1");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert_eq!(s.alerts.level(PAIR_SUBJECT, AlertKind::Pair), None);
        // The VIP moves: lb2 is the master and its samples feed the router from now on.
        s.ingest(event("lb1", director(2000, false, 1, SyncRole::Backup)));
        assert_eq!(s.pair().expect("pair").master, Master::Neither);
        assert!(
            s.router().expect("router").problems[0].starts_with("neither lb1 nor lb2 holds"),
            "{:?}",
            s.router().expect("router").problems
        );
        s.ingest(event("lb2", director(2100, true, 1, SyncRole::Master)));
        let p = s.pair().expect("pair");
        assert_eq!(p.master, Master::One(1));
        assert_eq!(p.summary(), "master lb2, backup lb1, sync ok, conns 5/3");
        let r = s.router().expect("router");
        assert_eq!(r.host, "lb2");
        assert_eq!(r.cur.as_ref().map(|c| c.time), Some(Timestamp(2100)));
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        // Both hold it: a split brain.
        s.ingest(event("lb1", director(3000, true, 1, SyncRole::Master)));
        assert!(
            s.router().expect("router").problems[0].contains("split brain"),
            "{:?}",
            s.router().expect("router").problems
        );
    }

    #[test]
    fn a_weight_on_one_side_only_is_drift_and_the_confirmation_names_the_backups_weight() {
        let mut s = pair_state();
        s.ingest(event("lb1", director(1000, true, 1, SyncRole::Master)));
        s.ingest(event("lb2", director(1100, false, 4, SyncRole::Master)));
        let p = s.pair().expect("pair");
        assert_eq!(p.drift.len(), 1);
        assert!(matches!(p.sync(), SyncHealth::Wrong(w) if w.contains("no backup sync daemon")));
        assert_eq!(
            s.alerts.level(PAIR_SUBJECT, AlertKind::Pair),
            Some(Severity::Warning)
        );
        let change = WeightChange {
            kind: ActionKind::Drain,
            service: key(),
            real: RealKey {
                address: IpAddr::V4(Ipv4Addr::new(10, 77, 1, 11)),
                port: 80,
            },
            from: 1,
            to: 0,
        };
        let note = s.backup_weight_note(&change).expect("a note");
        assert!(
            note.contains("the backup lb2 holds weight 4, not 1"),
            "{note}"
        );
        assert!(s.confirm_question(&change).ends_with("on lb1, the master?"));
        s.ingest(event("lb2", director(2100, false, 1, SyncRole::Backup)));
        assert_eq!(s.alerts.level(PAIR_SUBJECT, AlertKind::Pair), None);
        let note = s.backup_weight_note(&change).expect("a note");
        assert!(note.contains("holds the same weight (1)"), "{note}");
    }
}
