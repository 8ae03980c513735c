//! The router over SSH: what to ask at each poll, and the sample from what came back.
//!
//! `/proc/net/ip_vs` and `ip_vs_stats` are read at every poll, so weights and active and inactive
//! connections are always fresh. ipvsadm's counters (`--stats`), the details `/proc` lacks
//! (`--thresholds`, `--persistent-conn`, `--tun-info`) and the connection table cost the router
//! far more on a large table, so each reply says what each part cost (the program's CPU and its
//! children's), and the next readings are spaced so that they stay within a share of one router
//! core ([`Budget`]). The details are read again when the table's shape changes, and every
//! [`DETAILS_MAX_AGE`], as soon as the budget allows. A sample carries the latest reading of each
//! part with its time.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

use crate::model::sample::{
    ConnSummary, IpvsGlobalStats, IpvsInfo, LocalAddrs, PartTimes, RouterSample, RouterSourceKind,
    SyncDaemon, TABLE_OWNERS, Timestamp, VirtualServiceSample,
};
use crate::source::budget::Budget;
use crate::source::parse::{self, IpvsadmListing, IpvsadmView};
use crate::source::spec::RouterBudget;
use crate::source::ssh::SshError;

use super::program::RouterPart;
use super::reply::{Sections, cpu_ticks};

/// The details are read again this often (or as soon after as the budget allows).
pub(crate) const DETAILS_MAX_AGE: Duration = Duration::from_secs(30);
/// After ipvsadm was missing or refused, it is tried again this often.
const IPVSADM_RETRY: Duration = Duration::from_secs(30);

const FALLBACK: &str =
    "showing /proc/net/ip_vs: no counters, thresholds or persistent-connection counts";

/// What the router told about itself since the connection was made.
#[derive(Debug)]
pub(crate) struct RouterWatch {
    ipvsadm: Budget,
    conn_budget: Budget,
    /// Clock ticks per second of the router's CPU times.
    hz: u64,
    /// Read everything at every poll (`--once`).
    everything: bool,
    stats: Option<(IpvsadmListing, Timestamp)>,
    /// The primary view (`--tun-info` or plain), `--thresholds` and `--persistent-conn`.
    details: Option<Details>,
    conn: Option<(ConnSummary, Timestamp)>,
    info: Option<IpvsInfo>,
    tun_info_unknown: bool,
    /// Why ipvsadm cannot be used, and when that was found.
    ipvsadm_problem: Option<(String, Instant)>,
    /// The shape of the table at the last poll.
    shape: Option<u64>,
    agent: AgentUse,
    /// The services and real servers at the last poll ([`members_of`]).
    members: Option<u64>,
    /// The programs managing the table.
    owners: OwnerScan,
    /// The router's addresses at the last poll, as a hash: a VRRP transition changes them.
    addrs_key: Option<u64>,
    /// The sync daemons (`None` when ipvsadm's answer could not be read), and when: the table's
    /// members, the addresses' hash and the instant.
    sync: Option<SyncRead>,
}

#[derive(Debug)]
struct SyncRead {
    daemons: Option<Vec<SyncDaemon>>,
    members: Option<u64>,
    addrs_key: Option<u64>,
    read: Instant,
}

/// Whether the router's polls go to `lbtop agent`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum AgentUse {
    /// Tried at the next start of a program.
    #[default]
    Wanted,
    Running,
    /// Not usable (absent, another version, sudo refused): the shell program serves, and the
    /// samples carry this note.
    FellBack(String),
}

#[derive(Debug)]
struct Details {
    views: Vec<IpvsadmListing>,
    time: Timestamp,
    read: Instant,
    shape: Option<u64>,
}

/// What one reply cost the router, in CPU seconds, by part.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Costs {
    pub proc: f64,
    pub ipvsadm: f64,
    pub conn: f64,
}

impl RouterWatch {
    pub fn new(budget: RouterBudget, interval: Duration, hz: u64, everything: bool) -> RouterWatch {
        RouterWatch {
            ipvsadm: Budget::new(budget.ipvsadm, interval),
            conn_budget: Budget::new(budget.connections, interval),
            hz: hz.max(1),
            everything,
            stats: None,
            details: None,
            conn: None,
            info: None,
            tun_info_unknown: false,
            ipvsadm_problem: None,
            shape: None,
            agent: AgentUse::default(),
            members: None,
            owners: OwnerScan::default(),
            addrs_key: None,
            sync: None,
        }
    }

    /// Whether to try `lbtop agent` when a program starts: unless it fell back once. An agent
    /// that ended (the connection went) is started again.
    pub(crate) fn wants_agent(&self) -> bool {
        !matches!(self.agent, AgentUse::FellBack(_))
    }

    pub(crate) fn agent_started(&mut self) {
        self.agent = AgentUse::Running;
    }

    /// The connection the agent ran on is gone: until one starts again, the agent does not
    /// answer (a fallback is kept).
    pub(crate) fn agent_ended(&mut self) {
        if self.agent == AgentUse::Running {
            self.agent = AgentUse::Wanted;
        }
    }

    /// Whether the agent answers the polls (then no second program reads ipvsadm).
    pub(crate) fn agent_running(&self) -> bool {
        self.agent == AgentUse::Running
    }

    /// The agent cannot be used: the shell program serves, with a note saying why.
    pub(crate) fn agent_fell_back(&mut self, why: String) {
        self.agent = AgentUse::FellBack(why);
    }

    /// Starts over on a new connection (its program may tick at another rate); what was learnt
    /// about costs is kept.
    pub(crate) fn reconnected(&mut self, hz: u64) {
        self.hz = hz.max(1);
        self.stats = None;
        self.details = None;
        self.conn = None;
        self.ipvsadm_problem = None;
        self.shape = None;
        self.members = None;
        self.owners.forget();
        self.sync = None;
    }

    /// Whether the sync daemons should be read again: never read, or services or real servers
    /// came or went or the router's addresses changed since (keepalived starts and stops them
    /// with its VRRP state), or older than [`DETAILS_MAX_AGE`]. Weights do not count.
    fn sync_due(&self, now: Instant) -> bool {
        self.sync.as_ref().is_none_or(|s| {
            s.members != self.members
                || s.addrs_key != self.addrs_key
                || now.saturating_duration_since(s.read) >= DETAILS_MAX_AGE
        })
    }

    fn details_parts(&self) -> [RouterPart; 3] {
        let primary = if self.tun_info_unknown {
            RouterPart::Plain
        } else {
            RouterPart::TunInfo
        };
        [primary, RouterPart::Thresholds, RouterPart::Persistent]
    }

    /// Whether the details should be read again: never read, older than [`DETAILS_MAX_AGE`], or
    /// the table's shape changed since.
    fn details_due(&self, now: Instant) -> bool {
        match &self.details {
            None => true,
            Some(d) => {
                now.saturating_duration_since(d.read) >= DETAILS_MAX_AGE || d.shape != self.shape
            }
        }
    }

    fn ipvsadm_usable(&self, now: Instant) -> bool {
        self.ipvsadm_problem
            .as_ref()
            .is_none_or(|(_, at)| now.saturating_duration_since(*at) >= IPVSADM_RETRY)
    }

    /// The parts to ask for at this poll.
    pub fn plan(&mut self, now: Instant) -> Vec<RouterPart> {
        let mut parts = Vec::new();
        // The process table, when services or real servers came or went (a new keepalived
        // configuration) or a minute has passed.
        if self.owners.due(self.members, now) {
            parts.push(RouterPart::Owner);
        }
        if self.everything || self.sync_due(now) {
            parts.push(RouterPart::Daemon);
        }
        if self.everything {
            parts.push(RouterPart::Stats);
            parts.extend(self.details_parts());
            parts.push(RouterPart::Conn);
            return parts;
        }
        if self.ipvsadm_usable(now) {
            let allowed = self.ipvsadm.allows(now);
            // Everything ipvsadm does shares the budget: on a table so large that the views
            // cost more than it allows, the details too wait for it, past their 30 s.
            if allowed && self.details_due(now) {
                parts.extend(self.details_parts());
            }
            if allowed {
                parts.push(RouterPart::Stats);
            }
        }
        if self.conn_budget.allows(now) {
            parts.push(RouterPart::Conn);
        }
        parts
    }

    /// Takes in a reply with the costlier parts (`asked`), read at `time`; the reply may also
    /// hold `/proc` (`--once` asks for everything in one request).
    pub(crate) fn absorb_parts(
        &mut self,
        text: &str,
        asked: &[RouterPart],
        time: Timestamp,
        now: Instant,
    ) -> Result<Costs, SshError> {
        let sections = Sections::split(text);
        let costs = self.costs(&sections);
        self.take_ipvsadm(&sections, asked, time, now);
        let conn = match sections.get("conn") {
            Some(body) if asked.contains(&RouterPart::Conn) => Some(
                parse::conn_summary(body).map_err(|e| SshError::Reply(format!("router: {e}")))?,
            ),
            _ => None,
        };
        if let Some(c) = conn {
            self.conn = Some((c, time));
        }
        if asked.contains(&RouterPart::Owner)
            && let Some(body) = sections.get("owner")
        {
            let names = TABLE_OWNERS
                .iter()
                .filter(|o| body.lines().any(|l| l == **o))
                .map(|o| (*o).to_string())
                .collect();
            self.owners
                .found(self.members.unwrap_or_default(), now, names);
        }
        if asked.contains(&RouterPart::Daemon) {
            let daemons = match sections.get("daemon").map(parse::ipvsadm_daemon) {
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => {
                    tracing::warn!("router sync daemons: {e}");
                    None
                }
                None => None,
            };
            self.sync = Some(SyncRead {
                daemons,
                members: self.members,
                addrs_key: self.addrs_key,
                read: now,
            });
        }
        self.ipvsadm.spend(now, costs.ipvsadm);
        self.conn_budget.spend(now, costs.conn);
        Ok(costs)
    }

    /// Takes in a reply with `/proc/net/ip_vs` and `ip_vs_stats`, and makes the sample: the table
    /// as `/proc` has it now, with the latest reading of each costlier part laid over it.
    pub fn sample(&mut self, text: &str, time: Timestamp) -> Result<RouterSample, SshError> {
        let sections = Sections::split(text);
        let (services, global) = self.table(&sections)?;
        let mut sample = self.assemble(services, global, time);
        sample.sysctl = sections.get("sysctl").and_then(parse::router_sysctl);
        sample.addrs = router_addrs(&sections);
        self.addrs_key = sample.addrs.as_ref().map(|a| {
            let mut h = DefaultHasher::new();
            a.hash(&mut h);
            h.finish()
        });
        // Daemons read with the first /proc of a connection are of these addresses.
        if let Some(s) = self.sync.as_mut().filter(|s| s.addrs_key.is_none()) {
            s.addrs_key = self.addrs_key;
        }
        sample.make_printable();
        Ok(sample)
    }

    /// The table in a reply, as `/proc` has it; notes its shape.
    fn table(
        &mut self,
        sections: &Sections,
    ) -> Result<(Vec<VirtualServiceSample>, Option<IpvsGlobalStats>), SshError> {
        let parse_err = |e: parse::ParseError| SshError::Reply(format!("router: {e}"));
        if sections.get("absent").is_some() {
            return Err(SshError::Reply(
                "IPVS not loaded on the router (no /proc/net/ip_vs; modprobe ip_vs)".into(),
            ));
        }
        let Some(proc_text) = sections.get("ip_vs") else {
            return Err(SshError::Reply(
                "the router's reply has no /proc/net/ip_vs".into(),
            ));
        };
        let services = parse::ip_vs(proc_text).map_err(parse_err)?;
        let global = match sections.get("ip_vs_stats") {
            Some(t) if !t.trim().is_empty() => Some(parse::ip_vs_stats(t).map_err(parse_err)?),
            _ => None,
        };
        self.shape = Some(shape_of(&services));
        self.members = Some(members_of(&services));
        Ok((services, global))
    }

    /// The sample: `services` from `/proc` with the latest reading of each part laid over them.
    fn assemble(
        &self,
        mut services: Vec<VirtualServiceSample>,
        global: Option<IpvsGlobalStats>,
        time: Timestamp,
    ) -> RouterSample {
        if let Some(d) = &self.details {
            parse::overlay_views(&mut services, d.views.iter());
        }
        if let Some((stats, _)) = &self.stats {
            parse::overlay_views(&mut services, std::iter::once(stats));
        }
        let older = |t: Timestamp| (t != time).then_some(t);
        let parts = PartTimes {
            counters: self.stats.as_ref().and_then(|(_, t)| older(*t)),
            details: self.details.as_ref().and_then(|d| older(d.time)),
            connections: self.conn.as_ref().and_then(|(_, t)| older(*t)),
        };
        let mut notes: Vec<String> = self
            .ipvsadm_problem
            .iter()
            .map(|(why, _)| format!("{why}; {FALLBACK}"))
            .collect();
        if let AgentUse::FellBack(why) = &self.agent {
            notes.push(format!("{why}; reading with lbtop's shell program"));
        }
        RouterSample {
            time,
            source: RouterSourceKind::Ssh,
            services,
            global,
            connections: self.conn.as_ref().map(|(c, _)| c.clone()),
            notes,
            ipvs: self.info.clone(),
            parts,
            sysctl: None,
            addrs: None,
            owners: self.owners.names(),
            sync: self.sync.as_ref().and_then(|s| s.daemons.clone()),
        }
    }

    #[cfg(test)]
    /// A reply to a request for `/proc` and `asked`, taken in whole: the table (whose shape the
    /// details read with it belong to), the parts, then the sample.
    pub(crate) fn absorb(
        &mut self,
        text: &str,
        asked: &[RouterPart],
        time: Timestamp,
        now: Instant,
    ) -> Result<(RouterSample, Costs), SshError> {
        let (services, global) = self.table(&Sections::split(text))?;
        let costs = self.absorb_parts(text, asked, time, now)?;
        Ok((self.assemble(services, global, time), costs))
    }

    /// Whether nothing but `/proc` was read since the connection was made.
    pub(crate) fn has_read_nothing(&self) -> bool {
        self.stats.is_none()
            && self.details.is_none()
            && self.conn.is_none()
            && self.ipvsadm_problem.is_none()
    }

    /// Whether this watch reads everything at every poll (`--once`), in one request.
    pub(crate) fn reads_everything(&self) -> bool {
        self.everything
    }

    /// Takes note that a request for the costlier parts failed (no answer in time, the program
    /// gone): the pane says so, and they are tried again after a while.
    pub(crate) fn parts_failed(&mut self, why: String, now: Instant) {
        self.ipvsadm_problem = Some((why, now));
    }

    /// What each part cost, from the cost lines between them.
    fn costs(&self, sections: &Sections) -> Costs {
        let mut costs = Costs::default();
        let mut last: Option<u64> = None;
        for (name, _) in &sections.parts {
            let Some(rest) = name.strip_prefix("cpu ") else {
                continue;
            };
            let (part, line) = rest.split_once(' ').unwrap_or((rest, ""));
            let Some(ticks) = cpu_ticks(line) else {
                continue;
            };
            let spent = last.map_or(0.0, |l| ticks.saturating_sub(l) as f64 / self.hz as f64);
            last = Some(ticks);
            match part {
                "start" => {}
                "proc" => costs.proc += spent,
                "conn" => costs.conn += spent,
                "owner" => costs.proc += spent,
                // ipvsadm's smallest answer; it forks ipvsadm all the same.
                "daemon" => costs.ipvsadm += spent,
                _ => costs.ipvsadm += spent,
            }
        }
        costs
    }

    /// Takes the ipvsadm views in the reply.
    fn take_ipvsadm(
        &mut self,
        sections: &Sections,
        asked: &[RouterPart],
        time: Timestamp,
        now: Instant,
    ) {
        if !asked.iter().any(|p| p.is_view()) {
            return;
        }
        if sections.get("ipvsadm-missing").is_some() {
            self.ipvsadm_problem = Some(("ipvsadm is not installed on the router".into(), now));
            return;
        }
        let mut views = Vec::new();
        let mut failures: Vec<(RouterPart, String)> = Vec::new();
        for part in asked.iter().filter(|p| p.is_view()) {
            match ipvsadm_view(sections, *part) {
                Ok(listing) => views.push((*part, listing)),
                Err(why) => failures.push((*part, why)),
            }
        }
        // ipvsadm before 1.31 does not know --tun-info, while its other views work: the plain
        // view from then on.
        if let [(RouterPart::TunInfo, _)] = failures.as_slice()
            && !views.is_empty()
        {
            self.tun_info_unknown = true;
            failures.clear();
        }
        if let Some((_, why)) = failures.into_iter().next() {
            self.ipvsadm_problem = Some((why, now));
            return;
        }
        self.ipvsadm_problem = None;
        self.keep_views(views, time, now);
    }

    /// Keeps ipvsadm's views that all came: the version and table size they tell, the stats
    /// view, and the details (when the primary view is among them).
    fn keep_views(
        &mut self,
        views: Vec<(RouterPart, IpvsadmListing)>,
        time: Timestamp,
        now: Instant,
    ) {
        let mut details = Vec::new();
        for (part, listing) in views {
            if let (Some(version), Some(size)) = (&listing.version, listing.conn_table_size) {
                self.info = Some(IpvsInfo {
                    version: version.clone(),
                    conn_table_size: size,
                    timeouts: None,
                });
            }
            match part {
                RouterPart::Stats if listing.view == IpvsadmView::Stats => {
                    self.stats = Some((listing, time));
                }
                RouterPart::Stats => {}
                _ => details.push(listing),
            }
        }
        // The primary view goes first: the others' counts are laid over what it says.
        details.sort_by_key(|l| !l.view.is_primary());
        if details.iter().any(|l| l.view.is_primary()) {
            self.details = Some(Details {
                views: details,
                time,
                read: now,
                shape: self.shape,
            });
        }
    }
}

/// One ipvsadm view from the reply, or why there is none.
fn ipvsadm_view(sections: &Sections, part: RouterPart) -> Result<IpvsadmListing, String> {
    let name = format!("ipvsadm {}", part.word());
    match sections.with_rc(&name) {
        None => Err("the router sent no ipvsadm listing".into()),
        Some((body, rc)) if rc != Some(0) => {
            let why = body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("no message");
            Err(format!(
                "ipvsadm failed on the router ({})",
                crate::model::text::printable(why, 160)
            ))
        }
        Some((body, _)) => {
            parse::ipvsadm_list(body).map_err(|e| format!("ipvsadm output not understood ({e})"))
        }
    }
}

/// The router's local addresses in a reply: `None` when the program did not send them, sent
/// only part of them, or sent what does not parse (the checks are then not made, and nothing
/// else of the sample is lost).
fn router_addrs(sections: &Sections) -> Option<LocalAddrs> {
    let fib = sections.get("fib_trie")?;
    if sections.get("addrs-truncated").is_some() {
        return None;
    }
    parse::local_addrs(fib, sections.get("if_inet6").unwrap_or(""))
        .map_err(|e| tracing::warn!("the router's addresses: {e}"))
        .ok()
}

/// A hash of the table's services and real servers alone: what changes when a new configuration
/// is loaded, and not when a health check or an operator moves a weight.
pub(crate) fn members_of(services: &[VirtualServiceSample]) -> u64 {
    let mut h = DefaultHasher::new();
    for s in services {
        s.key.hash(&mut h);
        for r in &s.reals {
            r.address.hash(&mut h);
            r.port.hash(&mut h);
        }
    }
    h.finish()
}

/// How long the table's managers found in the process table are believed without a look: a
/// controller that starts or stops without changing the table shows within this time.
pub(crate) const OWNERS_MAX_AGE: Duration = Duration::from_secs(60);

/// The programs managing the table (keepalived and the like), and when to look for them again:
/// when services or real servers come or go ([`members_of`]), and every [`OWNERS_MAX_AGE`].
/// Weight changes do not count: health checkers make them all the time, and a process-table
/// read per poll is what the scan is meant to avoid.
#[derive(Debug, Default)]
pub(crate) struct OwnerScan {
    /// The members' hash and the time of the last look, and what it found.
    last: Option<(u64, Instant, Vec<String>)>,
}

impl OwnerScan {
    pub(crate) fn due(&self, members: Option<u64>, now: Instant) -> bool {
        match (&self.last, members) {
            (Some((m, at, _)), Some(members)) => {
                *m != members || now.saturating_duration_since(*at) >= OWNERS_MAX_AGE
            }
            _ => true,
        }
    }

    pub(crate) fn found(&mut self, members: u64, now: Instant, names: Vec<String>) {
        self.last = Some((members, now, names));
    }

    /// The members' hash at the last look.
    pub(crate) fn members(&self) -> Option<u64> {
        self.last.as_ref().map(|(m, _, _)| *m)
    }

    pub(crate) fn names(&self) -> Option<Vec<String>> {
        self.last.as_ref().map(|(_, _, n)| n.clone())
    }

    pub(crate) fn forget(&mut self) {
        self.last = None;
    }
}

/// A hash of the table's services, real servers, methods and weights: what calls for the
/// details to be read again when it changes.
pub(crate) fn shape_of(services: &[VirtualServiceSample]) -> u64 {
    let mut h = DefaultHasher::new();
    for s in services {
        s.key.hash(&mut h);
        for r in &s.reals {
            r.address.hash(&mut h);
            r.port.hash(&mut h);
            r.forward.hash(&mut h);
            r.weight.hash(&mut h);
        }
    }
    h.finish()
}

#[cfg(test)]
mod reply_tests {
    use super::*;
    use crate::source::remote::program::router_request;

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect(path)
    }

    const STAT: &str = "77 (sh) S 1 77 77 0 -1 4194560 1 2 0 0";

    /// A reply as the router program prints it, from the lab's captured files: `/proc`, then
    /// each part asked for with the program's CPU times after it (`ticks` apart).
    fn reply(parts: &[RouterPart], ticks: u64) -> String {
        let cpu = |name: &str, t: u64| format!("@@lbtop cpu {name} {STAT} {t} 0 0 0\n");
        let mut s = cpu("start", 0);
        s.push_str(&format!(
            "@@lbtop ip_vs\n{}@@lbtop ip_vs_stats\n{}",
            fixture("ipvs/ip_vs"),
            fixture("ipvs/ip_vs_stats")
        ));
        s.push_str(&cpu("proc", 1));
        let mut t = 1;
        for p in parts {
            let file = match p {
                RouterPart::Stats => "ipvsadm-Ln-exact-stats.txt",
                RouterPart::Thresholds => "ipvsadm-Ln-exact-thresholds.txt",
                RouterPart::Persistent => "ipvsadm-Ln-exact-persistent-conn.txt",
                RouterPart::TunInfo => "ipvsadm-Ln-exact-tun-info.txt",
                RouterPart::Plain => "ipvsadm-Ln-exact.txt",
                RouterPart::Owner => {
                    s.push_str("@@lbtop owner\nkeepalived\nsshd\nkeepalived\n");
                    s.push_str(&cpu("owner", t));
                    continue;
                }
                RouterPart::Daemon => {
                    s.push_str("@@lbtop daemon\nbackup sync daemon (mcast=eth0, syncid=7)\n");
                    s.push_str(&cpu("daemon", t));
                    continue;
                }
                RouterPart::Conn => {
                    s.push_str(
                        "@@lbtop conn\nT 2 0\nR 0A4D000B 0050 ESTABLISHED 2\nC 0A4E0002 2\n",
                    );
                    t += ticks;
                    s.push_str(&cpu("conn", t));
                    continue;
                }
            };
            s.push_str(&format!(
                "@@lbtop ipvsadm {}\n{}@@lbtop rc 0\n",
                p.word(),
                fixture(&format!("ipvs/{file}"))
            ));
            t += ticks;
            s.push_str(&cpu(p.word(), t));
        }
        s
    }

    /// A watch with ipvsadm at 10 % of a core and the connection table at 5 %.
    fn watch() -> RouterWatch {
        let budget = RouterBudget {
            ipvsadm: 0.10,
            connections: 0.05,
        };
        RouterWatch::new(budget, Duration::from_secs(1), 100, false)
    }

    #[test]
    fn the_routers_text_is_made_printable_before_it_leaves_the_watch() {
        let mut w = watch();
        let hostile = "wlc\u{1b}[31m\u{202e}\u{2028}";
        let text = reply(&[], 1).replacen(" wlc", &format!(" {hostile}"), 1);
        assert!(text.contains(hostile), "the fixture has a wlc service");
        let s = w.sample(&text, Timestamp(1000)).expect("a sample");
        let scheds: Vec<&str> = s
            .services
            .iter()
            .filter_map(|v| v.scheduler.as_deref())
            .collect();
        assert!(
            scheds.contains(&"wlc\\u{1b}[31m\\u{202e}\\u{2028}"),
            "{scheds:?}"
        );
        assert!(
            scheds
                .iter()
                .all(|t| crate::model::text::is_printable(t, 32)),
            "{scheds:?}"
        );
    }

    #[test]
    fn an_agent_counts_as_running_only_until_its_connection_ends_and_a_fallback_stays() {
        let mut w = watch();
        assert!(w.wants_agent() && !w.agent_running());
        w.agent_started();
        assert!(w.agent_running());
        w.agent_ended();
        assert!(!w.agent_running() && w.wants_agent(), "tried again");
        w.agent_fell_back("absent".into());
        w.agent_ended();
        assert!(!w.wants_agent(), "a fallback is kept");
    }

    #[test]
    fn the_first_poll_reads_everything_and_merges_it_over_proc() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        assert_eq!(
            router_request(1, false, &parts),
            "q 1 owner daemon tun thresholds persistent stats conn\n"
        );
        let (s, costs) = w
            .absorb(&reply(&parts, 1), &parts, Timestamp(1000), t0)
            .expect("absorb");
        // The process table's managers, each once, other programs left out; not read again
        // while the table keeps its shape.
        assert_eq!(s.owners, Some(vec!["keepalived".to_string()]));
        assert!(!w.plan(t0).contains(&RouterPart::Owner));
        // The sync daemons likewise, while the router's addresses stay the same.
        assert_eq!(
            s.sync,
            Some(vec![crate::model::sample::SyncDaemon {
                role: crate::model::sample::SyncRole::Backup,
                mcast_ifn: "eth0".into(),
                syncid: 7
            }])
        );
        assert!(!w.plan(t0).contains(&RouterPart::Daemon));
        assert_eq!(s.source, RouterSourceKind::Ssh);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert!(s.parts.is_fresh());
        assert!(s.services.iter().all(|v| v.totals.is_some()));
        assert!(
            s.services
                .iter()
                .flat_map(|v| &v.reals)
                .all(|r| r.persistent_conns.is_some() && r.totals.is_some())
        );
        assert!(s.global.is_some());
        assert!(s.ipvs.is_some());
        assert_eq!(s.connections.as_ref().map(|c| c.total), Some(2));
        assert!((costs.ipvsadm - 0.04).abs() < 1e-9, "{costs:?}");
        assert!((costs.conn - 0.01).abs() < 1e-9, "{costs:?}");
        // The merge over /proc is what ipvsadm's own views merged say, thresholds and tunnels
        // included (the connection counts were captured at other times than /proc's).
        let views: Vec<IpvsadmListing> = [
            "ipvsadm-Ln-exact-thresholds.txt",
            "ipvsadm-Ln-exact-persistent-conn.txt",
            "ipvsadm-Ln-exact-stats.txt",
        ]
        .iter()
        .map(|f| parse::ipvsadm_list(&fixture(&format!("ipvs/{f}"))).expect(f))
        .collect();
        let primary =
            parse::ipvsadm_list(&fixture("ipvs/ipvsadm-Ln-exact-tun-info.txt")).expect("tun");
        let merged = parse::merge_ipvsadm(&primary, &views).expect("merge");
        let key = |v: &VirtualServiceSample| v.key;
        let mut ours = s.services.clone();
        let mut theirs = merged;
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
        for v in ours.iter_mut().chain(theirs.iter_mut()) {
            v.reals.sort_by_key(|r| (r.address, r.port));
            v.flags = None;
            v.pe_name = None;
            for r in &mut v.reals {
                r.active_conns = 0;
                r.inactive_conns = 0;
            }
        }
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(theirs.iter_mut()) {
            // The lab added a real server between the captures: compare those in both.
            b.reals.retain(|r| {
                a.reals
                    .iter()
                    .any(|x| (x.address, x.port) == (r.address, r.port))
            });
            assert_eq!(a, b, "{}", a.key);
        }
    }

    /// `tr -s ' '`, as the router program squeezes what it sends.
    fn squeezed(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            if !(c == ' ' && out.ends_with(' ')) {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn squeezed_replies_give_the_same_sample() {
        let t0 = Instant::now();
        let (mut a, mut b) = (watch(), watch());
        let parts = a.plan(t0);
        let text = reply(&parts, 1);
        assert!(squeezed(&text).len() < text.len() * 3 / 4);
        let (x, _) = a.absorb(&text, &parts, Timestamp(0), t0).expect("as is");
        let (y, _) = b
            .absorb(&squeezed(&text), &parts, Timestamp(0), t0)
            .expect("squeezed");
        assert_eq!(x, y);
    }

    #[test]
    fn costly_parts_wait_for_the_budget_and_samples_carry_their_time() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        // The ipvsadm views cost 3 s each: 12 s at 10 % of a core is 120 s of credit.
        w.absorb(&reply(&parts, 300), &parts, Timestamp(0), t0)
            .expect("first");
        let t1 = t0 + Duration::from_secs(1);
        let parts = w.plan(t1);
        assert!(parts.is_empty(), "{parts:?}");
        let (s, _) = w
            .absorb(&reply(&parts, 300), &parts, Timestamp(1000), t1)
            .expect("second");
        assert_eq!(s.parts.counters, Some(Timestamp(0)));
        assert_eq!(s.parts.details, Some(Timestamp(0)));
        assert_eq!(s.parts.connections, Some(Timestamp(0)));
        assert!(s.services.iter().all(|v| v.totals.is_some()), "kept");
        // Past 30 s the details are due, but wait for the budget as the counters do; the sync
        // daemons (one small answer) are read again.
        assert_eq!(w.plan(t0 + DETAILS_MAX_AGE), [RouterPart::Daemon]);
        let paid = w.plan(t0 + Duration::from_secs(120));
        assert!(paid.contains(&RouterPart::TunInfo), "{paid:?}");
        assert!(paid.contains(&RouterPart::Stats), "{paid:?}");
    }

    #[test]
    fn the_sync_daemons_are_read_again_when_the_routers_addresses_change() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        assert!(parts.contains(&RouterPart::Daemon), "{parts:?}");
        w.absorb(&reply(&parts, 0), &parts, Timestamp(0), t0)
            .expect("first");
        let with = |addr: &str| {
            format!(
                "{}@@lbtop fib_trie\n  |-- {addr}\n     /32 host LOCAL\n",
                reply(&[], 0)
            )
        };
        let s = w.sample(&with("10.0.0.1"), Timestamp(1000)).expect("addrs");
        assert!(s.addrs.is_some());
        // The daemons were read with the connection's first addresses.
        assert!(!w.plan(t0).contains(&RouterPart::Daemon));
        w.sample(&with("10.0.0.1"), Timestamp(2000)).expect("same");
        assert!(!w.plan(t0).contains(&RouterPart::Daemon));
        // VRRP brought the VIP: keepalived switches its sync daemon.
        w.sample(&with("192.0.2.10"), Timestamp(3000))
            .expect("the VIP came");
        assert!(w.plan(t0).contains(&RouterPart::Daemon));
    }

    #[test]
    fn a_shape_change_asks_for_the_details_again_at_the_next_plan() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        w.absorb(&reply(&parts, 0), &parts, Timestamp(0), t0)
            .expect("first");
        let t1 = t0 + Duration::from_secs(1);
        w.sample(&reply(&[], 0), Timestamp(1000)).expect("same");
        assert!(
            !w.plan(t1).contains(&RouterPart::Thresholds),
            "no change, no details"
        );
        // A weight changed in /proc.
        let changed = reply(&[], 0).replacen("Route   1", "Route   7", 1);
        assert_ne!(changed, reply(&[], 0), "the fixture has a weight-1 route");
        w.sample(&changed, Timestamp(2000)).expect("changed");
        let again = w.plan(t1 + Duration::from_secs(1));
        assert!(again.contains(&RouterPart::Thresholds), "{again:?}");
        assert!(again.contains(&RouterPart::Stats), "{again:?}");
        // A weight is no reason to look for the table's managers again.
        assert!(!again.contains(&RouterPart::Owner), "{again:?}");
    }

    #[test]
    fn the_managers_are_looked_for_again_when_members_change_or_a_minute_passed() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        w.absorb(&reply(&parts, 0), &parts, Timestamp(0), t0)
            .expect("first");
        let t1 = t0 + Duration::from_secs(1);
        assert!(!w.plan(t1).contains(&RouterPart::Owner));
        // A real server removed: a new configuration, perhaps a new controller.
        let proc_text = fixture("ipvs/ip_vs");
        let first_real = proc_text
            .lines()
            .find(|l| l.trim_start().starts_with("->") && !l.contains("RemoteAddress"))
            .expect("a real server line");
        let fewer = reply(&[], 0).replacen(&format!("{first_real}\n"), "", 1);
        assert_ne!(fewer, reply(&[], 0));
        w.sample(&fewer, Timestamp(1000)).expect("fewer");
        assert!(w.plan(t1).contains(&RouterPart::Owner));
        let t2 = t1 + Duration::from_secs(1);
        let asked = [RouterPart::Owner];
        w.absorb(&reply(&asked, 0), &asked, Timestamp(2000), t2)
            .expect("owners");
        assert!(!w.plan(t2).contains(&RouterPart::Owner));
        assert!(w.plan(t2 + OWNERS_MAX_AGE).contains(&RouterPart::Owner));
    }

    #[test]
    fn without_ipvsadm_rights_the_router_falls_back_to_proc_with_a_note() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        let mut text = reply(&[], 0);
        for p in &parts {
            if p.is_view() {
                text.push_str(&format!(
                    "@@lbtop ipvsadm {}\nsudo: a password is required\n@@lbtop rc 1\n",
                    p.word()
                ));
            }
        }
        let (s, _) = w.absorb(&text, &parts, Timestamp(0), t0).expect("absorb");
        assert_eq!(s.notes.len(), 1);
        assert!(
            s.notes[0].contains("sudo: a password is required"),
            "{:?}",
            s.notes
        );
        assert_eq!(
            s.services,
            parse::ip_vs(&fixture("ipvs/ip_vs")).expect("proc")
        );
        // Not asked again until the retry time.
        let later = w.plan(t0 + Duration::from_secs(1));
        assert!(!later.contains(&RouterPart::Stats), "{later:?}");
        let missing = reply(&[], 0) + "@@lbtop ipvsadm tun\n@@lbtop ipvsadm-missing\n";
        let mut w = watch();
        let (s, _) = w
            .absorb(&missing, &[RouterPart::TunInfo], Timestamp(0), t0)
            .expect("absorb");
        assert!(s.notes[0].contains("not installed"), "{:?}", s.notes);
        let absent = "@@lbtop ip_vs\n@@lbtop absent\n";
        let e = watch()
            .absorb(absent, &[], Timestamp(0), t0)
            .expect_err("absent");
        assert!(e.to_string().contains("modprobe ip_vs"), "{e}");
    }

    #[test]
    fn an_ipvsadm_without_tun_info_is_asked_for_the_plain_view_from_then_on() {
        let mut w = watch();
        let t0 = Instant::now();
        let parts = w.plan(t0);
        let others: Vec<RouterPart> = parts
            .iter()
            .copied()
            .filter(|p| *p != RouterPart::TunInfo)
            .collect();
        let text = reply(&others, 0)
            + "@@lbtop ipvsadm tun\nipvsadm: unrecognized option '--tun-info'\n@@lbtop rc 2\n";
        let (s, _) = w.absorb(&text, &parts, Timestamp(0), t0).expect("absorb");
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        let next = w.plan(t0 + DETAILS_MAX_AGE);
        assert!(next.contains(&RouterPart::Plain), "{next:?}");
        assert!(!next.contains(&RouterPart::TunInfo), "{next:?}");
    }
}
