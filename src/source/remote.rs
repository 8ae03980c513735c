//! The router and the nodes over SSH: one async task per host that connects (with a deadline),
//! polls on the interval (each poll with its own deadline), reports a status when something goes
//! wrong, and reconnects with exponential backoff and jitter. A dead, slow or cut-off host only
//! ever waits in its own task.
//!
//! What runs on the hosts is fixed text: the node command and the router script below. Nothing
//! from the configuration, IPVS or the operator is ever put into them; the only choice (whether
//! ipvsadm goes through `sudo -n`) picks one of three constant lines.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, MissedTickBehavior};

use crate::cli::{NodesSpec, RouterSpec, SourceArgs};
use crate::config::{Config, NodeMapping};
use crate::model::sample::{
    HostFacts, HostStatus, IpvsInfo, NodeSample, Report, RouterSample, RouterSourceKind,
    SourceEvent, Timestamp,
};

use super::parse::{self, IpvsadmView};
use super::poller::PollHandle;
use super::ssh::config::parse_jump_list;
use super::ssh::hosts::{HostSpec, display_names, expand_node_list};
use super::ssh::{
    Connection, ExecOutput, ResolvedHost, SshArgs, SshContext, SshError, SshSettings, SshTuning,
};

/// How many top clients of the connection table the router reports.
pub const TOP_CLIENTS: usize = super::local::TOP_CLIENTS;

// ───────────────────────────── what runs on the hosts ─────────────────────────────

/// One exec per node poll: one `head` process prints the two host facts and the four `/proc`
/// files the local node reads, each after POSIX head's `==> FILE <==` header. The login shell
/// execs it, so a poll costs the node one process, under any login shell.
pub const NODE_COMMAND: &str = "exec head -n 1000000 /proc/sys/kernel/hostname \
/proc/sys/kernel/osrelease /proc/stat /proc/loadavg /proc/meminfo /proc/uptime";

/// The router script is sent on stdin to this, so no quoting of it is ever needed.
pub const ROUTER_COMMAND: &str = "exec /bin/sh -s";

/// Whether the router script runs ipvsadm through `sudo -n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SudoMode {
    /// When the login user is not root.
    #[default]
    Auto,
    Always,
    Never,
}

impl SudoMode {
    fn script_line(self) -> &'static str {
        match self {
            SudoMode::Auto => "LBTOP_SUDO=auto\n",
            SudoMode::Always => "LBTOP_SUDO=always\n",
            SudoMode::Never => "LBTOP_SUDO=never\n",
        }
    }
}

impl FromStr for SudoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(SudoMode::Auto),
            "always" => Ok(SudoMode::Always),
            "never" => Ok(SudoMode::Never),
            other => Err(format!("{other:?}: use auto, always or never")),
        }
    }
}

const ROUTER_SCRIPT_HEAD: &str = "echo lbtop-router 1\n";

/// POSIX sh. ipvsadm's views each run once (as `ipvsadm_list` parses them); when the plain view
/// fails (no rights, no sudo), the others are not tried.
const ROUTER_SCRIPT_BODY: &str = r#"PATH="$PATH:/usr/sbin:/sbin"; export PATH
echo "@@lbtop ip_vs"
if [ -r /proc/net/ip_vs ]; then cat /proc/net/ip_vs; else echo "@@lbtop absent"; fi
echo "@@lbtop ip_vs_stats"
cat /proc/net/ip_vs_stats 2>/dev/null
IPVSADM=$(command -v ipvsadm 2>/dev/null)
if [ -z "$IPVSADM" ]; then
  echo "@@lbtop ipvsadm-missing"
else
  case "$LBTOP_SUDO" in
    never) S= ;;
    always) S="sudo -n" ;;
    *) if [ "$(id -u)" = 0 ]; then S=; else S="sudo -n"; fi ;;
  esac
  for v in plain --stats --rate --thresholds --persistent-conn; do
    o=; [ "$v" = plain ] || o="$v"
    echo "@@lbtop ipvsadm $v"
    $S "$IPVSADM" -L -n --exact $o 2>&1 </dev/null
    rc=$?
    echo "@@lbtop rc $rc"
    if [ "$v" = plain ] && [ "$rc" != 0 ]; then break; fi
  done
fi
if [ -r /proc/net/ip_vs_conn ]; then
  echo "@@lbtop conn"
  awk -v top="#;

const ROUTER_SCRIPT_TAIL: &str = r#"
echo "@@lbtop end"
"#;

/// The whole router script for a sudo mode. Built from constants only.
pub fn router_script(sudo: SudoMode) -> String {
    let mut s = String::with_capacity(2048);
    s.push_str(ROUTER_SCRIPT_HEAD);
    s.push_str(sudo.script_line());
    s.push_str(ROUTER_SCRIPT_BODY);
    s.push_str(&TOP_CLIENTS.to_string());
    s.push_str(" '");
    s.push_str(parse::CONN_SUMMARY_AWK);
    s.push_str("' /proc/net/ip_vs_conn </dev/null\nfi");
    s.push_str(ROUTER_SCRIPT_TAIL);
    s
}

// ───────────────────────────── reading the replies ─────────────────────────────

/// The reply split at its `@@lbtop NAME` marker lines.
struct Sections<'a> {
    parts: Vec<(&'a str, &'a str)>,
    ended: bool,
}

impl<'a> Sections<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }
}

const MARK: &str = "@@lbtop ";

fn split_sections<'a>(text: &'a str, header: &str) -> Option<Sections<'a>> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != header {
        return None;
    }
    let mut parts: Vec<(&str, &str)> = Vec::new();
    let mut offset = first.len();
    let mut current: Option<(&str, usize)> = None;
    let mut ended = false;
    for line in lines {
        let start = offset;
        offset += line.len();
        let Some(name) = line.trim_end_matches(['\n', '\r']).strip_prefix(MARK) else {
            continue;
        };
        if let Some((n, body_start)) = current.take() {
            parts.push((n, &text[body_start..start]));
        }
        if name == "end" {
            ended = true;
            break;
        }
        current = Some((name, offset));
    }
    if let Some((n, body_start)) = current {
        parts.push((n, &text[body_start..]));
    }
    Some(Sections { parts, ended })
}

/// The start of a reply that is not lbtop's, for the message.
fn reply_excerpt(out: &ExecOutput) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let shown: String = text.trim().chars().take(80).collect();
    let mut m = if shown.is_empty() {
        "an empty reply".to_string()
    } else {
        format!("{shown:?}")
    };
    if let Some(e) = out.stderr_line() {
        m.push_str(&format!(", stderr {e:?}"));
    }
    match (out.exit_status, &out.exit_signal) {
        (_, Some(sig)) => m.push_str(&format!(", killed by {sig}")),
        (Some(0), None) | (None, None) => {}
        (Some(code), None) => m.push_str(&format!(", exit status {code}")),
    }
    m
}

fn unexpected(out: &ExecOutput, what: &str) -> SshError {
    SshError::Reply(format!(
        "unexpected reply to the {what}: {} (is a ForceCommand or a login script in the way?)",
        reply_excerpt(out)
    ))
}

/// `head`'s output for several files, split at its `==> FILE <==` headers: (file, contents).
fn head_sections(text: &str) -> Option<Vec<(&str, &str)>> {
    let mut parts: Vec<(&str, &str)> = Vec::new();
    let mut offset = 0;
    let mut current: Option<(&str, usize)> = None;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let header = line
            .trim_end_matches('\n')
            .strip_prefix("==> ")
            .and_then(|l| l.strip_suffix(" <=="));
        match (header, current) {
            (Some(name), cur) => {
                if let Some((n, body_start)) = cur {
                    // head puts a blank line before every header but the first.
                    let body = &text[body_start..start];
                    parts.push((n, body.strip_suffix('\n').unwrap_or(body)));
                }
                current = Some((name, offset));
            }
            (None, None) => return None,
            (None, Some(_)) => {}
        }
    }
    let (n, body_start) = current?;
    parts.push((n, &text[body_start..]));
    Some(parts)
}

/// A node's reply as a sample, through the same parsers as the local node.
pub fn parse_node_reply(out: &ExecOutput, time: Timestamp) -> Result<NodeSample, SshError> {
    let text = String::from_utf8_lossy(&out.stdout);
    let sections = head_sections(&text).ok_or_else(|| unexpected(out, "node poll"))?;
    let get = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| n.strip_prefix("/proc/") == Some(name))
            .map(|(_, b)| *b)
    };
    let file = |name: &str| -> Result<&str, SshError> {
        match get(name) {
            Some(body) if !body.trim().is_empty() => Ok(body),
            _ => Err(SshError::Reply(format!(
                "/proc/{name} could not be read on the node{}",
                out.stderr_line()
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default()
            ))),
        }
    };
    // The last file is one line; without its newline the reply was cut short.
    let uptime = file("uptime")?;
    if !uptime.ends_with('\n') || uptime.lines().count() != 1 {
        return Err(SshError::Reply(format!(
            "truncated reply to the node poll ({} bytes)",
            out.stdout.len()
        )));
    }
    let parse_err = |e: parse::ParseError| SshError::Reply(e.to_string());
    let fact = |name: &str| {
        get(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(120).collect::<String>())
    };
    Ok(NodeSample {
        time,
        stat: parse::proc_stat(file("stat")?).map_err(parse_err)?,
        load: parse::loadavg(file("loadavg")?).map_err(parse_err)?,
        memory: parse::meminfo(file("meminfo")?).map_err(parse_err)?,
        uptime: parse::uptime(uptime).map_err(parse_err)?,
        facts: Some(HostFacts {
            hostname: fact("sys/kernel/hostname"),
            os: None,
            kernel: fact("sys/kernel/osrelease"),
        }),
    })
}

const IPVSADM_VIEWS: [(&str, IpvsadmView); 5] = [
    ("ipvsadm plain", IpvsadmView::Plain),
    ("ipvsadm --stats", IpvsadmView::Stats),
    ("ipvsadm --rate", IpvsadmView::Rate),
    ("ipvsadm --thresholds", IpvsadmView::Thresholds),
    ("ipvsadm --persistent-conn", IpvsadmView::PersistentConn),
];

/// An ipvsadm section: its output and exit status (`@@lbtop rc N` is a section of its own).
fn ipvsadm_run<'a>(sections: &Sections<'a>, name: &str) -> Option<(&'a str, Option<i32>)> {
    let i = sections.parts.iter().position(|(n, _)| *n == name)?;
    let (_, body) = sections.parts[i];
    let rc = sections
        .parts
        .get(i + 1)
        .and_then(|(n, _)| n.strip_prefix("rc "))
        .and_then(|c| c.trim().parse().ok());
    Some((body, rc))
}

/// The router's reply as a sample: ipvsadm's views merged when ipvsadm ran, else `/proc/net/ip_vs`
/// with a note saying why.
pub fn parse_router_reply(out: &ExecOutput, time: Timestamp) -> Result<RouterSample, SshError> {
    let text = String::from_utf8_lossy(&out.stdout);
    let sections =
        split_sections(&text, "lbtop-router 1").ok_or_else(|| unexpected(out, "router poll"))?;
    if !sections.ended {
        return Err(SshError::Reply(format!(
            "truncated reply to the router poll ({} bytes, no end marker)",
            out.stdout.len()
        )));
    }
    let parse_err = |e: parse::ParseError| SshError::Reply(format!("router: {e}"));
    let proc_text = sections.get("ip_vs").unwrap_or_default();
    if sections.get("absent").is_some() {
        return Err(SshError::Reply(
            "IPVS not loaded on the router (no /proc/net/ip_vs; modprobe ip_vs)".into(),
        ));
    }
    let mut notes = Vec::new();
    let mut ipvs = None;
    const FALLBACK: &str = "showing /proc/net/ip_vs: no thresholds, persistent-connection counts or kernel rate estimates";
    let services = if sections.get("ipvsadm-missing").is_some() {
        notes.push(format!(
            "ipvsadm is not installed on the router; {FALLBACK}"
        ));
        None
    } else {
        match ipvsadm_run(&sections, "ipvsadm plain") {
            None => {
                notes.push(format!("the router sent no ipvsadm listing; {FALLBACK}"));
                None
            }
            Some((body, rc)) if rc != Some(0) => {
                let why = body
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("no message")
                    .chars()
                    .take(160)
                    .collect::<String>();
                notes.push(format!("ipvsadm failed on the router ({why}); {FALLBACK}"));
                None
            }
            Some((plain_text, _)) => {
                let merged = (|| {
                    let plain = parse::ipvsadm_list(plain_text)?;
                    let mut others = Vec::new();
                    for (name, view) in &IPVSADM_VIEWS[1..] {
                        if let Some((body, Some(0))) = ipvsadm_run(&sections, name) {
                            let listing = parse::ipvsadm_list(body)?;
                            if listing.view == *view {
                                others.push(listing);
                            }
                        }
                    }
                    let info = match (&plain.version, plain.conn_table_size) {
                        (Some(version), Some(size)) => Some(IpvsInfo {
                            version: version.clone(),
                            conn_table_size: size,
                            timeouts: None,
                        }),
                        _ => None,
                    };
                    Ok::<_, parse::ParseError>((parse::merge_ipvsadm(&plain, &others)?, info))
                })();
                match merged {
                    Ok((s, info)) => {
                        ipvs = info;
                        Some(s)
                    }
                    Err(e) => {
                        notes.push(format!("ipvsadm output not understood ({e}); {FALLBACK}"));
                        None
                    }
                }
            }
        }
    };
    let services = match services {
        Some(s) => s,
        None => parse::ip_vs(proc_text).map_err(parse_err)?,
    };
    let global = match sections.get("ip_vs_stats") {
        Some(t) if !t.trim().is_empty() => Some(parse::ip_vs_stats(t).map_err(parse_err)?),
        _ => None,
    };
    let connections = match sections.get("conn") {
        Some(t) => Some(parse::conn_summary(t).map_err(parse_err)?),
        None => None,
    };
    Ok(RouterSample {
        time,
        source: RouterSourceKind::Ssh,
        services,
        global,
        connections,
        notes,
        ipvs,
    })
}

// ───────────────────────────── one task per host ─────────────────────────────

/// What a host is watched as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Node,
    Router(SudoMode),
}

/// A host to watch over SSH.
#[derive(Debug, Clone)]
pub struct RemoteSource {
    /// The node's name, or the router's host as given.
    pub name: String,
    /// The host as events carry it (an address for nodes when known, so real servers match).
    pub host: String,
    pub resolved: ResolvedHost,
    pub role: Role,
    ctx: Arc<SshContext>,
}

impl RemoteSource {
    pub fn new(
        name: String,
        host: String,
        resolved: ResolvedHost,
        role: Role,
        ctx: Arc<SshContext>,
    ) -> RemoteSource {
        RemoteSource {
            name,
            host,
            resolved,
            role,
            ctx,
        }
    }

    fn event_status(&self, status: HostStatus, message: Option<String>) -> SourceEvent {
        let report_time = Timestamp::now();
        match self.role {
            Role::Node => SourceEvent::Node {
                name: self.name.clone(),
                host: self.host.clone(),
                report: Report::Status {
                    time: report_time,
                    status,
                    message,
                },
            },
            Role::Router(_) => SourceEvent::Router {
                host: self.host.clone(),
                report: Report::Status {
                    time: report_time,
                    status,
                    message,
                },
            },
        }
    }

    async fn poll(&self, conn: &Connection) -> Result<SourceEvent, SshError> {
        let time = Timestamp::now();
        let limit = self.ctx.tuning.max_reply_bytes;
        match self.role {
            Role::Node => {
                let out = conn.exec(NODE_COMMAND, None, limit).await?;
                let sample = parse_node_reply(&out, time)?;
                Ok(SourceEvent::Node {
                    name: self.name.clone(),
                    host: self.host.clone(),
                    report: Report::Sample(sample),
                })
            }
            Role::Router(sudo) => {
                let script = router_script(sudo);
                let out = conn
                    .exec(ROUTER_COMMAND, Some(script.as_bytes()), limit)
                    .await?;
                let sample = parse_router_reply(&out, time)?;
                Ok(SourceEvent::Router {
                    host: self.host.clone(),
                    report: Report::Sample(sample),
                })
            }
        }
    }

    /// Starts the host's task. With `limit`, it stops after that many samples, and a failure is
    /// final (for `--once`); without, it runs until the receiver goes away.
    pub fn spawn(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> PollHandle {
        let refresh = Arc::new(Notify::new());
        tokio::spawn(run(self, interval, tx, refresh.clone(), limit));
        PollHandle::from_notify(refresh)
    }
}

/// Sends status changes only (a sample means ok).
struct Reporter<'a> {
    src: &'a RemoteSource,
    tx: &'a mpsc::Sender<SourceEvent>,
    last: Option<(HostStatus, Option<String>)>,
}

impl Reporter<'_> {
    /// `false` once nobody listens.
    async fn failure(&mut self, e: &SshError) -> bool {
        let status = e.status();
        let message = e.to_string();
        let key = (status, Some(message.clone()));
        if self.last.as_ref() == Some(&key) {
            return !self.tx.is_closed();
        }
        tracing::warn!(host = %self.src.name, endpoint = %self.src.resolved.endpoint(), status = status.as_str(), "{message}");
        self.last = Some(key);
        self.tx
            .send(self.src.event_status(status, Some(message)))
            .await
            .is_ok()
    }

    async fn sample(&mut self, event: SourceEvent) -> bool {
        if self
            .last
            .as_ref()
            .is_some_and(|(s, _)| *s != HostStatus::Ok)
        {
            tracing::info!(host = %self.src.name, "answering again");
        }
        self.last = Some((HostStatus::Ok, None));
        self.tx.send(event).await.is_ok()
    }
}

/// The first instant on the grid of `interval` (counted from the Unix epoch) at least half an
/// interval from now.
fn next_on_grid(interval: Duration) -> Instant {
    let period = interval.as_nanos().max(1);
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut wait = period - since_epoch % period;
    if wait < period / 2 {
        wait += period;
    }
    Instant::now() + Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX))
}

/// The wait after `current` failed again: doubled, at most `backoff_max`.
fn next_backoff(current: Duration, tuning: &SshTuning) -> Duration {
    (current * 2).clamp(tuning.backoff_min, tuning.backoff_max)
}

/// `wait` spread by ±25 %, so that hosts that failed together do not retry together.
fn with_jitter(wait: Duration) -> Duration {
    wait.mul_f64(jitter())
}

/// A factor in [0.75, 1.25) for spreading reconnects.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return 1.0;
    }
    0.75 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5
}

async fn run(
    src: RemoteSource,
    interval: Duration,
    tx: mpsc::Sender<SourceEvent>,
    refresh: Arc<Notify>,
    limit: Option<u32>,
) {
    let tuning = src.ctx.tuning;
    let interval = interval.max(Duration::from_millis(10));
    let connect_timeout = src
        .resolved
        .connect_timeout
        .unwrap_or(tuning.connect_timeout);
    let once = limit.is_some();
    let poll_timeout = match src.role {
        Role::Node => tuning.poll_timeout,
        Role::Router(_) => tuning.router_poll_timeout,
    };
    let mut reporter = Reporter {
        src: &src,
        tx: &tx,
        last: None,
    };
    let mut backoff = tuning.backoff_min;
    let mut samples = 0u32;
    loop {
        let started = Instant::now();
        let deadline = started + connect_timeout;
        // The stages have their own deadlines; this one catches anything else that might wait.
        let attempt = tokio::time::timeout_at(
            deadline + Duration::from_secs(1),
            Connection::connect(&src.ctx, &src.resolved, deadline),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Unreachable(format!(
                "no answer within {}",
                humantime::format_duration(connect_timeout)
            )))
        });
        let conn = match attempt {
            Ok(c) => c,
            Err(e) => {
                if !reporter.failure(&e).await || once {
                    return;
                }
                let wait = with_jitter(backoff);
                tracing::debug!(host = %src.name, "reconnecting in {wait:?}");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = refresh.notified() => {}
                }
                backoff = next_backoff(backoff, &tuning);
                continue;
            }
        };
        tracing::info!(
            host = %src.name,
            endpoint = %conn.endpoint(),
            "connected in {} ms",
            started.elapsed().as_millis()
        );
        // The first poll at once; then on a grid shared by every host (whole seconds for 1 s), so
        // that samples of one round come together and the screen redraws once for them.
        let mut ticker = if once {
            let mut t = tokio::time::interval_at(Instant::now() + interval, interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        } else {
            let mut t = tokio::time::interval_at(next_on_grid(interval), interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Skip);
            t
        };
        let mut first = true;
        loop {
            if !first {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = refresh.notified() => {}
                    // Lost while idle (keepalives unanswered, the host went away): say so now,
                    // not at the next poll.
                    e = conn.closed() => {
                        if !reporter.failure(&e).await || once {
                            return;
                        }
                        break;
                    }
                }
            }
            first = false;
            let polled = tokio::time::timeout(poll_timeout, src.poll(&conn))
                .await
                .unwrap_or_else(|_| {
                    Err(SshError::Unreachable(format!(
                        "no answer to a poll within {}",
                        humantime::format_duration(poll_timeout)
                    )))
                });
            match polled {
                Ok(event) => {
                    backoff = tuning.backoff_min;
                    if !reporter.sample(event).await {
                        conn.close().await;
                        return;
                    }
                    samples += 1;
                    if limit.is_some_and(|l| samples >= l) {
                        conn.close().await;
                        return;
                    }
                }
                Err(e) => {
                    let lost = e.loses_connection() || conn.is_closed();
                    if !reporter.failure(&e).await || once {
                        conn.close().await;
                        return;
                    }
                    if lost {
                        break;
                    }
                }
            }
        }
        conn.close().await;
    }
}

// ───────────────────────────── the set of remote hosts ─────────────────────────────

/// An address block of a `[[node]]` mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block (10.0.0.0/24)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        fn bits(a: IpAddr) -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u128::from(u32::from(v)), 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        }
        let ((n, w1), (a, w2)) = (bits(self.net), bits(addr));
        if w1 != w2 {
            return false;
        }
        let shift = w1 - u32::from(self.prefix);
        shift >= w1 || (n >> shift) == (a >> shift)
    }
}

/// `[[node]]` mappings from the config file, checked.
#[derive(Debug, Clone, Default)]
pub struct NodeMap {
    entries: Vec<(Cidr, HostSpec)>,
}

impl NodeMap {
    pub fn new(mappings: &[NodeMapping]) -> Result<NodeMap, String> {
        let mut entries = Vec::new();
        for m in mappings {
            let cidr: Cidr = m
                .match_
                .parse()
                .map_err(|e| format!("[[node]] match: {e}"))?;
            let host = HostSpec::parse(&m.host).map_err(|e| format!("[[node]] host: {e}"))?;
            entries.push((cidr, host));
        }
        Ok(NodeMap { entries })
    }

    /// The first mapping whose block holds `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<&HostSpec> {
        self.entries
            .iter()
            .find(|(c, _)| c.contains(addr))
            .map(|(_, h)| h)
    }
}

/// `--nodes auto`: nodes are the router's real servers, each mapped to an SSH host by a
/// `[[node]]` entry, else by an ssh_config alias whose HostName is the address, else the address.
#[derive(Debug, Clone)]
pub struct AutoNodes {
    pub map: NodeMap,
    pub jump: Option<Vec<HostSpec>>,
    pub ctx: Arc<SshContext>,
}

impl AutoNodes {
    /// The source for a real server's address, or the reason it cannot be watched.
    pub fn source_for(&self, addr: IpAddr) -> Result<RemoteSource, Box<(String, SshError)>> {
        let spec = match self.map.lookup(addr) {
            Some(s) => s.clone(),
            None => HostSpec {
                user: None,
                host: self
                    .ctx
                    .settings
                    .alias_for_address(addr)
                    .unwrap_or_else(|| addr.to_string()),
                port: None,
            },
        };
        let name = spec.host.clone();
        let resolved = self
            .ctx
            .settings
            .resolve(&spec, self.jump.as_deref())
            .map_err(|e| Box::new((name.clone(), SshError::from(e))))?;
        Ok(RemoteSource::new(
            name,
            addr.to_string(),
            resolved,
            Role::Node,
            self.ctx.clone(),
        ))
    }

    /// A channel for the router's events: they pass on to `out`, and each real server not seen
    /// before becomes a node task (announced as connecting first). Refreshing `group` refreshes
    /// every node found.
    fn tap(
        self,
        interval: Duration,
        out: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
        group: Arc<Notify>,
    ) -> mpsc::Sender<SourceEvent> {
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(64);
        tokio::spawn(async move {
            let mut seen: HashSet<IpAddr> = HashSet::new();
            let mut names: HashSet<String> = HashSet::new();
            let mut children: Vec<PollHandle> = Vec::new();
            loop {
                tokio::select! {
                    ev = rx.recv() => {
                        let Some(ev) = ev else { break };
                        if let SourceEvent::Router { report: Report::Sample(s), .. } = &ev {
                            let addrs: Vec<IpAddr> = s
                                .services
                                .iter()
                                .flat_map(|svc| svc.reals.iter().map(|r| r.address))
                                .collect();
                            for addr in addrs {
                                if !seen.insert(addr) {
                                    continue;
                                }
                                let event = match self.source_for(addr) {
                                    Ok(src) if names.insert(src.name.clone()) => {
                                        tracing::info!(node = %src.name, %addr, "found on the router");
                                        let announce = src.event_status(HostStatus::Connecting, None);
                                        if out.send(announce).await.is_err() {
                                            return;
                                        }
                                        children.push(src.spawn(interval, out.clone(), limit));
                                        continue;
                                    }
                                    Ok(_) => continue,
                                    Err(failed) => {
                                        let (name, e) = *failed;
                                        SourceEvent::Node {
                                        name,
                                        host: addr.to_string(),
                                        report: Report::Status {
                                            time: Timestamp::now(),
                                            status: e.status(),
                                            message: Some(e.to_string()),
                                        },
                                    }
                                    }
                                };
                                if out.send(event).await.is_err() {
                                    return;
                                }
                            }
                        }
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                    () = group.notified() => children.iter().for_each(PollHandle::refresh),
                }
            }
        });
        tx
    }
}

/// Every host watched over SSH.
#[derive(Debug, Default)]
pub struct RemoteSet {
    pub router: Option<RemoteSource>,
    pub nodes: Vec<RemoteSource>,
    pub auto: Option<AutoNodes>,
}

/// What [`RemoteSet::start`] gives back.
pub struct Started {
    /// One per host, and one for the nodes `auto` finds.
    pub handles: Vec<PollHandle>,
    /// Where a router that is not watched over SSH should send its events (through `auto`'s
    /// discovery when it is on).
    pub router_tx: mpsc::Sender<SourceEvent>,
}

impl RemoteSet {
    /// The SSH hosts the command line names: `--router HOST`, `--nodes LIST` or `auto`, with
    /// `-F`, `-o` and `--jump`. Errors (a bad host, an unreadable ssh config, a bad `[[node]]`
    /// entry) are for the operator, as they are.
    pub fn from_args(args: &SourceArgs, config: &Config) -> Result<RemoteSet, String> {
        let settings = SshSettings::load(&SshArgs {
            config_file: args.ssh_config.clone(),
            options: args.ssh_option.clone(),
        })
        .map_err(|e| e.to_string())?;
        let ctx = SshContext::new(settings, SshTuning::for_interval(config.interval));
        RemoteSet::with_context(args, config, ctx)
    }

    /// As [`from_args`](Self::from_args) with the SSH settings and tuning given.
    pub fn with_context(
        args: &SourceArgs,
        config: &Config,
        ctx: Arc<SshContext>,
    ) -> Result<RemoteSet, String> {
        let mut set = RemoteSet::default();
        let jump = match &args.jump {
            Some(j) => {
                Some(parse_jump_list(std::slice::from_ref(j)).map_err(|e| format!("--jump: {e}"))?)
            }
            None => None,
        };
        if let RouterSpec::Remote(text) = &args.router {
            let spec = HostSpec::parse(text).map_err(|e| format!("--router: {e}"))?;
            let resolved = ctx
                .settings
                .resolve(&spec, None)
                .map_err(|e| format!("--router: {e}"))?;
            set.router = Some(RemoteSource::new(
                text.clone(),
                text.clone(),
                resolved,
                Role::Router(args.router_sudo),
                ctx.clone(),
            ));
        }
        match &args.nodes {
            NodesSpec::List(entries) => {
                let hosts = expand_node_list(entries, None).map_err(|e| format!("--nodes: {e}"))?;
                for (spec, name) in hosts.iter().zip(display_names(&hosts)) {
                    let resolved = ctx
                        .settings
                        .resolve(spec, jump.as_deref())
                        .map_err(|e| format!("--nodes: {e}"))?;
                    let host = resolved.hostname.clone();
                    set.nodes.push(RemoteSource::new(
                        name,
                        host,
                        resolved,
                        Role::Node,
                        ctx.clone(),
                    ));
                }
            }
            NodesSpec::Auto => {
                if args.router == RouterSpec::None {
                    return Err(
                        "--nodes auto finds the nodes on the router; name one with --router".into(),
                    );
                }
                set.auto = Some(AutoNodes {
                    map: NodeMap::new(&config.node_map)?,
                    jump,
                    ctx: ctx.clone(),
                });
            }
            NodesSpec::Local | NodesSpec::None => {}
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.router.is_none() && self.nodes.is_empty() && self.auto.is_none()
    }

    /// The nodes known before anything runs: `(name, host)`.
    pub fn node_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.host.as_str()))
    }

    /// Starts every task; see [`RemoteSource::spawn`] for `limit`.
    pub fn start(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> Started {
        let mut handles = Vec::new();
        let router_tx = match self.auto {
            Some(auto) => {
                let group = Arc::new(Notify::new());
                handles.push(PollHandle::from_notify(group.clone()));
                auto.tap(interval, tx.clone(), limit, group)
            }
            None => tx.clone(),
        };
        if let Some(r) = self.router {
            handles.push(r.spawn(interval, router_tx.clone(), limit));
        }
        for n in self.nodes {
            handles.push(n.spawn(interval, tx.clone(), limit));
        }
        Started { handles, router_tx }
    }

    /// How long `--once` waits at most: every host has its own deadlines well inside this.
    pub fn once_deadline(&self, interval: Duration, rounds: u32) -> Duration {
        let t = self
            .router
            .as_ref()
            .or(self.nodes.first())
            .map(|s| s.ctx.tuning)
            .or_else(|| self.auto.as_ref().map(|a| a.ctx.tuning))
            .unwrap_or_default();
        let one = t.connect_timeout + (interval + t.router_poll_timeout) * rounds;
        let hops = if self.auto.is_some() { 2 } else { 1 };
        one * hops + Duration::from_secs(2)
    }
}

/// `--once` bookkeeping: which hosts still owe samples.
#[derive(Debug, Default)]
pub struct OnceProgress {
    rounds: u32,
    /// `None` is the router; `Some(name)` a node. Value: samples seen, finished.
    hosts: HashMap<Option<String>, (u32, bool)>,
}

impl OnceProgress {
    pub fn new(rounds: u32) -> OnceProgress {
        OnceProgress {
            rounds,
            hosts: HashMap::new(),
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
        if entry.1 {
            return false;
        }
        if sample {
            entry.0 += 1;
        }
        if entry.0 >= self.rounds || status.is_some_and(|s| s != HostStatus::Connecting) {
            entry.1 = true;
        }
        true
    }

    pub fn done(&self) -> bool {
        self.hosts.values().all(|(_, finished)| *finished)
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

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput {
            stdout: stdout.as_bytes().to_vec(),
            exit_status: Some(0),
            ..ExecOutput::default()
        }
    }

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/tests/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect(path)
    }

    /// What `head` prints for NODE_COMMAND, built from the fixtures.
    fn node_reply() -> String {
        let mut s = String::from(
            "==> /proc/sys/kernel/hostname <==\nweb1\n\n==> /proc/sys/kernel/osrelease <==\n6.1.0\n",
        );
        for f in ["stat", "loadavg", "meminfo", "uptime"] {
            s.push_str(&format!(
                "\n==> /proc/{f} <==\n{}",
                fixture(&format!("proc/{f}"))
            ));
        }
        s
    }

    #[test]
    fn the_node_command_matches_what_head_prints_here() {
        // This machine's own head, on this machine's /proc, read back by the same function.
        let out = std::process::Command::new("sh")
            .args(["-c", NODE_COMMAND])
            .output()
            .expect("sh");
        let reply = ExecOutput {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_status: out.status.code().map(|c| c as u32),
            exit_signal: None,
        };
        let s = parse_node_reply(&reply, Timestamp(1)).expect("parse");
        assert!(!s.stat.cpus.is_empty());
        assert!(s.facts.and_then(|f| f.kernel).is_some());
    }

    #[test]
    fn a_node_reply_parses_like_the_local_files() {
        let s = parse_node_reply(&out(&node_reply()), Timestamp(1)).expect("parse");
        assert_eq!(
            s.stat,
            parse::proc_stat(&fixture("proc/stat")).expect("stat")
        );
        assert_eq!(s.facts.and_then(|f| f.hostname).as_deref(), Some("web1"));
    }

    #[test]
    fn garbage_and_truncated_node_replies_are_clear_errors() {
        let full = node_reply();
        let cases: Vec<(String, &str)> = vec![
            ("Welcome to junk\n".into(), "unexpected reply"),
            (String::new(), "an empty reply"),
            (full[..full.len() - 3].to_string(), "truncated"),
            (full[..full.len() / 2].to_string(), "could not be read"),
            (full.replace("cpu", "cpX"), "/proc/stat"),
            (
                "==> /proc/stat <==\n\n==> /proc/uptime <==\n1.0 2.0\n".into(),
                "/proc/stat could not be read",
            ),
        ];
        for (text, needle) in cases {
            let e = parse_node_reply(&out(&text), Timestamp(1)).expect_err(needle);
            assert!(matches!(e, SshError::Reply(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        // Any prefix of a good reply is an error, never a panic.
        for cut in (0..full.len()).step_by(97) {
            let _ = parse_node_reply(&out(&full[..cut]), Timestamp(1));
        }
    }

    fn router_reply(with_ipvsadm: bool) -> String {
        let mut s = format!(
            "lbtop-router 1\n@@lbtop ip_vs\n{}@@lbtop ip_vs_stats\n{}",
            fixture("ipvs/ip_vs"),
            fixture("ipvs/ip_vs_stats")
        );
        if with_ipvsadm {
            for (name, file) in [
                ("plain", "ipvsadm-Ln-exact.txt"),
                ("--stats", "ipvsadm-Ln-exact-stats.txt"),
                ("--rate", "ipvsadm-Ln-exact-rate.txt"),
                ("--thresholds", "ipvsadm-Ln-exact-thresholds.txt"),
                ("--persistent-conn", "ipvsadm-Ln-exact-persistent-conn.txt"),
            ] {
                s.push_str(&format!(
                    "@@lbtop ipvsadm {name}\n{}@@lbtop rc 0\n",
                    fixture(&format!("ipvs/{file}"))
                ));
            }
        } else {
            s.push_str("@@lbtop ipvsadm plain\nsudo: a password is required\n@@lbtop rc 1\n");
        }
        s.push_str(
            "@@lbtop conn\nT 2 0\nR 0A4D000B 0050 ESTABLISHED 2\nC 0A4E0002 2\n@@lbtop end\n",
        );
        s
    }

    #[test]
    fn a_router_reply_merges_ipvsadm_views() {
        let s = parse_router_reply(&out(&router_reply(true)), Timestamp(1)).expect("parse");
        assert_eq!(s.source, RouterSourceKind::Ssh);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert!(!s.services.is_empty());
        assert!(s.services.iter().all(|v| v.totals.is_some()));
        assert!(
            s.services
                .iter()
                .flat_map(|v| &v.reals)
                .all(|r| r.persistent_conns.is_some())
        );
        assert!(s.global.is_some());
        assert_eq!(s.connections.map(|c| c.total), Some(2));
    }

    #[test]
    fn without_ipvsadm_rights_the_router_falls_back_to_proc_with_a_note() {
        let s = parse_router_reply(&out(&router_reply(false)), Timestamp(1)).expect("parse");
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
        let missing = router_reply(false).replace(
            "@@lbtop ipvsadm plain\nsudo: a password is required\n@@lbtop rc 1\n",
            "@@lbtop ipvsadm-missing\n",
        );
        let s = parse_router_reply(&out(&missing), Timestamp(1)).expect("parse");
        assert!(s.notes[0].contains("not installed"), "{:?}", s.notes);
        let absent = "lbtop-router 1\n@@lbtop ip_vs\n@@lbtop absent\n@@lbtop end\n";
        let e = parse_router_reply(&out(absent), Timestamp(1)).expect_err("absent");
        assert!(e.to_string().contains("modprobe ip_vs"), "{e}");
    }

    #[test]
    fn the_router_script_is_constant_text_per_sudo_mode() {
        let auto = router_script(SudoMode::Auto);
        assert!(auto.starts_with("echo lbtop-router 1\nLBTOP_SUDO=auto\n"));
        assert!(auto.ends_with("echo \"@@lbtop end\"\n"));
        assert_eq!(
            auto.matches('\'').count(),
            2,
            "only the awk program is quoted"
        );
        assert!(!parse::CONN_SUMMARY_AWK.contains('\''));
        assert!(router_script(SudoMode::Never).contains("LBTOP_SUDO=never"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitter_stays_within_a_quarter() {
        let t = SshTuning::default();
        let mut b = t.backoff_min;
        let mut seen = vec![b];
        for _ in 0..8 {
            b = next_backoff(b, &t);
            seen.push(b);
        }
        let secs: Vec<u64> = seen.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30, 30]);
        let waits: Vec<Duration> = (0..200)
            .map(|_| with_jitter(Duration::from_secs(8)))
            .collect();
        assert!(waits.iter().all(|w| (6.0..10.0).contains(&w.as_secs_f64())));
        assert!(waits.iter().any(|w| *w != waits[0]), "jitter varies");
    }

    #[test]
    fn the_grid_puts_every_host_on_the_same_instants() {
        let i = Duration::from_secs(1);
        let (a, b) = (next_on_grid(i), next_on_grid(i));
        let d = if a > b { a - b } else { b - a };
        assert!(d < Duration::from_millis(5), "{d:?}");
        let wait = a - Instant::now();
        assert!(
            wait >= Duration::from_millis(490) && wait <= Duration::from_millis(1500),
            "{wait:?}"
        );
    }

    #[test]
    fn cidr_blocks_match_their_addresses() {
        let c: Cidr = "10.0.0.0/24".parse().expect("cidr");
        assert!(c.contains("10.0.0.77".parse().expect("ip")));
        assert!(!c.contains("10.0.1.1".parse().expect("ip")));
        assert!(!c.contains("fd00::1".parse().expect("ip")));
        let one: Cidr = "fd77::11".parse().expect("cidr");
        assert!(one.contains("fd77::11".parse().expect("ip")));
        assert!(!one.contains("fd77::12".parse().expect("ip")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("web1".parse::<Cidr>().is_err());
    }

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
            }),
        };
        assert!(p.see(&router()));
        assert!(p.see(&router()));
        assert!(p.done());
    }
}
