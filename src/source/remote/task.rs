//! One async task per host: it connects (with a deadline), starts lbtop's program on the host
//! once per connection, polls it on the interval (each poll with its own deadline), reports a
//! status when something goes wrong, and reconnects with exponential backoff and jitter. A dead,
//! slow or cut-off host only ever waits in its own task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::model::sample::{HostFacts, HostStatus, Report, SourceEvent, Timestamp};
use crate::source::agent::{AgentChoice, AgentProgram, AgentStart, FAILED};
use crate::source::poller::PollHandle;
use crate::source::spec::RouterBudget;
use crate::source::ssh::{
    Connection, RemoteProgram, ResolvedHost, SshContext, SshError, SshTuning,
};

use super::program::{self, NODE_PROGRAM, PROGRAM_COMMAND, READY, RouterPart, SudoMode, end_line};
use super::reply::{self, expand};
use super::router::RouterWatch;

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
    /// A router's CPU budget for its costlier parts.
    pub budget: RouterBudget,
    /// Whether a router runs `lbtop agent` (`--router-agent`).
    pub agent: AgentChoice,
    pub(super) ctx: Arc<SshContext>,
    /// Whether a node's polls read what the direct-routing checks need: on while the node is a
    /// direct-routing or tunnel real server of the router (set by `dr_watch`).
    pub(super) dr: Arc<AtomicBool>,
}

/// How long a request for the router's costlier parts may take: ipvsadm on a large table takes
/// seconds, and more through sudo on a busy router.
const PARTS_TIMEOUT: Duration = Duration::from_secs(120);

/// How much larger than the bytes received (`max_reply_bytes`) a reply may grow once its gzip
/// members are expanded: the router's `/proc/net/ip_vs` and ipvsadm views pack about 80 to 1.
const EXPANSION: usize = 8;

/// What a request for the costlier parts gives back: the program (when it can go on), what was
/// asked, when, and the reply.
type PartsReply = (
    Option<Running>,
    Vec<RouterPart>,
    Timestamp,
    Result<String, SshError>,
);

/// The router's second program: idle (with the program once started), or answering.
enum Parts<'a> {
    Idle(Option<Running>),
    Busy(Pin<Box<dyn Future<Output = PartsReply> + Send + 'a>>),
}

/// lbtop's program running on a host, with what its greeting said.
struct Running {
    program: RemoteProgram,
    facts: Option<HostFacts>,
    /// The router's `/proc/net/ip_vs` as this program sent it last, for its kept reader's
    /// "same" and patches.
    ip_vs: Option<String>,
}

/// What answers a host's polls: the shell program, or on a router `lbtop agent`.
enum Live {
    Shell(Box<Running>),
    Agent(Box<AgentProgram>),
}

impl Live {
    async fn close(self) {
        match self {
            Live::Shell(r) => r.program.close().await,
            Live::Agent(a) => a.close().await,
        }
    }
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
            budget: RouterBudget::default(),
            agent: AgentChoice::Never,
            ctx,
            dr: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same source, running `lbtop agent` on a router when `agent` allows.
    pub(crate) fn with_agent(mut self, agent: AgentChoice) -> RemoteSource {
        self.agent = agent;
        self
    }

    /// Makes a node's polls read (or stop reading) what the direct-routing checks need. lbtop
    /// turns it on while the node is a direct-routing or tunnel real server of the router.
    pub fn check_direct_routing(&self, on: bool) {
        self.dr.store(on, Ordering::Relaxed);
    }

    /// The same source with a router CPU budget.
    pub(crate) fn with_budget(mut self, budget: RouterBudget) -> RemoteSource {
        self.budget = budget;
        self
    }

    pub(super) fn event_status(&self, status: HostStatus, message: Option<String>) -> SourceEvent {
        let time = Timestamp::now();
        match self.role {
            Role::Node => SourceEvent::Node {
                name: self.name.clone(),
                host: self.host.clone(),
                report: Report::Status {
                    time,
                    status,
                    message,
                },
            },
            Role::Router(_) => SourceEvent::Router {
                host: self.host.clone(),
                report: Report::Status {
                    time,
                    status,
                    message,
                },
            },
        }
    }

    /// The host's role, as messages name it.
    fn role_name(&self) -> &'static str {
        match self.role {
            Role::Node => "node",
            Role::Router(_) => "router",
        }
    }

    /// Why a program that did not greet within `wait` was given up.
    fn not_started(&self, wait: Duration) -> SshError {
        SshError::Unreachable(format!(
            "the {} program did not start within {}",
            self.role_name(),
            humantime::format_duration(wait)
        ))
    }

    fn what(&self) -> &'static str {
        match self.role {
            Role::Node => "node poll",
            Role::Router(_) => "router poll",
        }
    }

    /// Starts what answers the polls: on a router, `lbtop agent` when it is wanted and usable
    /// (a fallback is noted in the watch, and then the shell program starts); else lbtop's
    /// shell program.
    async fn start_live(
        &self,
        conn: &Connection,
        watch: &mut Option<RouterWatch>,
    ) -> Result<Live, SshError> {
        if let Some(w) = watch.as_mut() {
            w.agent_ended();
        }
        if let (Role::Router(sudo), Some(w)) = (self.role, watch.as_mut())
            && w.wants_agent()
            && let Some(command) = self.agent.command(sudo)
        {
            // The first reply holds the whole table, sent once: as large as an expanded reply.
            let limit = self.ctx.tuning.max_reply_bytes.saturating_mul(EXPANSION);
            // Two thirds of the start's time (10 s of the usual 15): an agent that never greets
            // leaves the rest for the shell program, so the fallback happens (and is kept)
            // instead of the start timing out and the agent being tried again at every
            // reconnect.
            let wait = self.ctx.tuning.router_poll_timeout * 2 / 3;
            match AgentProgram::start(conn, &command, limit, wait).await {
                Ok(agent) => {
                    tracing::info!(host = %self.name, "the router's agent answers");
                    w.agent_started();
                    return Ok(Live::Agent(agent));
                }
                Err(AgentStart::Failed(e)) => return Err(*e),
                Err(AgentStart::Fallback(why)) => {
                    tracing::info!(host = %self.name, "router agent: {why}");
                    w.agent_fell_back(why);
                }
            }
        }
        let wait = match self.role {
            Role::Node => self.ctx.tuning.poll_timeout,
            Role::Router(_) => self.ctx.tuning.router_poll_timeout,
        };
        Ok(Live::Shell(Box::new(self.start(conn, watch, wait).await?)))
    }

    /// Starts lbtop's shell program on the connection and reads its greeting, for at most
    /// `wait`; a program that has not greeted by then is closed (dropping its channel would
    /// leave it open on the host).
    async fn start(
        &self,
        conn: &Connection,
        watch: &mut Option<RouterWatch>,
        wait: Duration,
    ) -> Result<Running, SshError> {
        let text = match self.role {
            Role::Node => NODE_PROGRAM.to_string(),
            Role::Router(sudo) => program::router_program(sudo),
        };
        let mut program = conn.start_program(PROGRAM_COMMAND, text.as_bytes()).await?;
        let limit = self.ctx.tuning.max_reply_bytes;
        let greeted = tokio::time::timeout(wait, program.read_until(READY.as_bytes(), limit))
            .await
            .unwrap_or_else(|_| Err(self.not_started(wait)));
        let greeting = match greeted {
            Ok(g) => g,
            Err(SshError::Reply(why)) if !why.starts_with("reply larger") => {
                let e = reply::unexpected(
                    self.what(),
                    program.pending(),
                    program.stderr_line(),
                    program.ended(),
                );
                program.close().await;
                tracing::debug!(host = %self.name, "program ended: {why}");
                return Err(e);
            }
            Err(e) => {
                program.close().await;
                return Err(e);
            }
        };
        let text = String::from_utf8_lossy(&greeting);
        let facts = match self.role {
            Role::Node => reply::node_greeting(&text).map(Some),
            Role::Router(_) => reply::router_greeting(&text).map(|hz| {
                if let Some(w) = watch.as_mut() {
                    w.reconnected(hz);
                }
                None
            }),
        };
        match facts {
            Some(facts) => Ok(Running {
                program,
                facts,
                ip_vs: None,
            }),
            None => {
                let e = reply::unexpected(self.what(), &greeting, program.stderr_line(), None);
                program.close().await;
                Err(e)
            }
        }
    }

    /// Sends one request and reads its reply.
    async fn ask(
        &self,
        running: &mut Running,
        seq: u64,
        request: &str,
    ) -> Result<String, SshError> {
        let limit = self.ctx.tuning.max_reply_bytes;
        let sent = running.program.send(request.as_bytes()).await;
        match running
            .program
            .read_until(end_line(seq).as_bytes(), limit)
            .await
        {
            Ok(bytes) => expand(&bytes, limit.saturating_mul(EXPANSION)),
            Err(e) => {
                let pending = running.program.pending();
                if pending.is_empty() {
                    Err(sent.err().unwrap_or(e))
                } else if matches!(&e, SshError::Reply(m) if m.starts_with("reply larger")) {
                    Err(e)
                } else {
                    Err(SshError::Reply(format!(
                        "truncated reply to the {} ({} bytes, no end marker): {e}",
                        self.what(),
                        pending.len()
                    )))
                }
            }
        }
    }

    /// One poll. A failure to talk to the program leaves `running` empty (the program is
    /// closed, and started again at the next poll); a reply that does not parse keeps it.
    async fn poll(
        &self,
        conn: &Connection,
        running: &mut Option<Live>,
        watch: &mut Option<RouterWatch>,
        seq: &mut u64,
        full: bool,
    ) -> Result<SourceEvent, SshError> {
        if running.is_none() {
            *running = Some(self.start_live(conn, watch).await?);
        }
        let live = match running.as_mut() {
            Some(Live::Shell(live)) => live,
            Some(Live::Agent(agent)) => {
                return match agent.poll(full).await {
                    Ok(sample) => Ok(SourceEvent::Router {
                        host: self.host.clone(),
                        report: Report::Sample(sample),
                    }),
                    Err(e) => {
                        // An answered failure leaves the agent as it was; anything else, not.
                        if !matches!(&e, SshError::Reply(m) if m.starts_with(FAILED)) {
                            close(running).await;
                        }
                        Err(e)
                    }
                };
            }
            None => return Err(SshError::Reply("lbtop's program did not start".into())),
        };
        match (self.role, watch.as_mut()) {
            (Role::Router(_), Some(w)) => {
                // The costlier parts go to the second program, but for `--once` and the first
                // poll of a connection, so that its first sample is whole.
                let asked = if w.reads_everything() || w.has_read_nothing() {
                    w.plan(std::time::Instant::now())
                } else {
                    Vec::new()
                };
                *seq += 1;
                let time = Timestamp::now();
                let request = program::router_request(*seq, true, &asked);
                let text = match self
                    .ask(live, *seq, &request)
                    .await
                    .and_then(|t| reply::with_whole_ip_vs(t, &mut live.ip_vs))
                {
                    Ok(t) => t,
                    Err(e) => {
                        close(running).await;
                        return Err(e);
                    }
                };
                if !asked.is_empty() {
                    let costs = w.absorb_parts(&text, &asked, time, std::time::Instant::now())?;
                    tracing::debug!(host = %self.name, ?asked, ?costs, "router parts");
                }
                Ok(SourceEvent::Router {
                    host: self.host.clone(),
                    report: Report::Sample(w.sample(&text, time)?),
                })
            }
            _ => {
                *seq += 1;
                let time = Timestamp::now();
                let request = program::node_request(*seq, self.dr.load(Ordering::Relaxed));
                let text = match self.ask(live, *seq, &request).await {
                    Ok(t) => t,
                    Err(e) => {
                        close(running).await;
                        return Err(e);
                    }
                };
                let sample = reply::node_reply(&text, time, live.facts.clone())?;
                Ok(SourceEvent::Node {
                    name: self.name.clone(),
                    host: self.host.clone(),
                    report: Report::Sample(sample),
                })
            }
        }
    }

    /// Asks the router's second program (started first when there is none) for the costlier
    /// parts. Gives the program back while it can go on answering.
    async fn ask_parts(
        &self,
        conn: &Connection,
        program: Option<Running>,
        seq: u64,
        asked: Vec<RouterPart>,
    ) -> PartsReply {
        let mut running = match program {
            Some(r) => r,
            // The first program's greeting told the watch what it needs. Within the parts'
            // time: a program that never greets would otherwise hold the parts for the life of
            // the connection, and they would never be read again.
            None => match self.start(conn, &mut None, PARTS_TIMEOUT).await {
                Ok(r) => r,
                Err(e) => return (None, asked, Timestamp::now(), Err(e)),
            },
        };
        let time = Timestamp::now();
        let request = program::router_request(seq, false, &asked);
        let answer = tokio::time::timeout(PARTS_TIMEOUT, self.ask(&mut running, seq, &request))
            .await
            .unwrap_or_else(|_| {
                Err(SshError::Unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(PARTS_TIMEOUT)
                )))
            });
        match answer {
            Ok(text) => (Some(running), asked, time, Ok(text)),
            Err(e) => {
                running.program.close().await;
                (None, asked, time, Err(e))
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
        self.spawn_joinable(interval, tx, limit).0
    }

    /// As [`RemoteSource::spawn`], with the task's handle: aborting it and awaiting it ends the
    /// task, and its connection, for good.
    pub(crate) fn spawn_joinable(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> (PollHandle, tokio::task::JoinHandle<()>) {
        let refresh = Arc::new(Notify::new());
        let task = tokio::spawn(run(self, interval, tx, refresh.clone(), limit));
        (PollHandle::from_notify(refresh), task)
    }
}

/// Ends the program, if one runs.
async fn close(running: &mut Option<Live>) {
    if let Some(r) = running.take() {
        r.close().await;
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

/// How a connection's polling ends: connect again, or stop the task.
enum Next {
    Reconnect,
    Stop,
}

/// What a host's task keeps across connections: its settings, the status it reported last, the
/// backoff, the samples sent, and what the router told about its costs.
struct HostTask<'a> {
    src: &'a RemoteSource,
    interval: Duration,
    refresh: &'a Notify,
    limit: Option<u32>,
    once: bool,
    connect_timeout: Duration,
    poll_timeout: Duration,
    reporter: Reporter<'a>,
    backoff: Duration,
    samples: u32,
    watch: Option<RouterWatch>,
    seq: u64,
    /// The next poll follows a refresh (an operator's action): the agent reads everything.
    full_next: bool,
}

async fn run(
    src: RemoteSource,
    interval: Duration,
    tx: mpsc::Sender<SourceEvent>,
    refresh: Arc<Notify>,
    limit: Option<u32>,
) {
    let mut task = HostTask::new(&src, interval, &tx, &refresh, limit);
    loop {
        let conn = match task.connect().await {
            Ok(conn) => conn,
            Err(Next::Reconnect) => continue,
            Err(Next::Stop) => return,
        };
        match task.serve(&conn).await {
            Next::Reconnect => {}
            Next::Stop => return,
        }
    }
}

impl<'a> HostTask<'a> {
    fn new(
        src: &'a RemoteSource,
        interval: Duration,
        tx: &'a mpsc::Sender<SourceEvent>,
        refresh: &'a Notify,
        limit: Option<u32>,
    ) -> HostTask<'a> {
        let tuning = src.ctx.tuning;
        let interval = interval.max(Duration::from_millis(10));
        let once = limit.is_some();
        HostTask {
            src,
            interval,
            refresh,
            limit,
            once,
            connect_timeout: src
                .resolved
                .connect_timeout
                .unwrap_or(tuning.connect_timeout),
            poll_timeout: match src.role {
                Role::Node => tuning.poll_timeout,
                Role::Router(_) => tuning.router_poll_timeout,
            },
            reporter: Reporter {
                src,
                tx,
                last: None,
            },
            backoff: tuning.backoff_min,
            samples: 0,
            // What the router told about its costs outlives a connection.
            watch: match src.role {
                Role::Router(_) => Some(RouterWatch::new(src.budget, interval, 100, once)),
                Role::Node => None,
            },
            seq: 0,
            full_next: false,
        }
    }

    /// One attempt to connect. After a failure it waits out the backoff (or a refresh) and says
    /// to try again, or to stop when that was final.
    async fn connect(&mut self) -> Result<Connection, Next> {
        let src = self.src;
        let started = Instant::now();
        let deadline = started + self.connect_timeout;
        // The stages have their own deadlines; this one catches anything else that might wait.
        let attempt = tokio::time::timeout_at(
            deadline + Duration::from_secs(1),
            Connection::connect(&src.ctx, &src.resolved, deadline),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Unreachable(format!(
                "no answer within {}",
                humantime::format_duration(self.connect_timeout)
            )))
        });
        match attempt {
            Ok(conn) => {
                tracing::info!(
                    host = %src.name,
                    endpoint = %conn.endpoint(),
                    "connected in {} ms",
                    started.elapsed().as_millis()
                );
                Ok(conn)
            }
            Err(e) => {
                if !self.reporter.failure(&e).await || self.once {
                    return Err(Next::Stop);
                }
                let wait = with_jitter(self.backoff);
                tracing::debug!(host = %src.name, "reconnecting in {wait:?}");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.refresh.notified() => {}
                }
                self.backoff = next_backoff(self.backoff, &self.src.ctx.tuning);
                Err(Next::Reconnect)
            }
        }
    }

    /// The first poll at once; then on a grid shared by every host (whole seconds for 1 s), so
    /// that samples of one round come together and the screen redraws once for them.
    fn ticker(&self) -> Interval {
        let interval = self.interval;
        if self.once {
            let mut t = tokio::time::interval_at(Instant::now() + interval, interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Delay);
            t
        } else {
            let mut t = tokio::time::interval_at(next_on_grid(interval), interval);
            t.set_missed_tick_behavior(MissedTickBehavior::Skip);
            t
        }
    }

    /// Polls over `conn` until it is lost or the task is done. Closes what it leaves behind,
    /// except when the connection ended while idle and the task stops.
    async fn serve(&mut self, conn: &Connection) -> Next {
        let mut ticker = self.ticker();
        let mut first = true;
        let mut running: Option<Live> = None;
        let mut parts = Parts::Idle(None);
        loop {
            if !first && let Err(next) = self.wait(conn, &mut ticker, &mut parts).await {
                match next {
                    Next::Stop => return Next::Stop,
                    Next::Reconnect => break,
                }
            }
            first = false;
            let polled = self.poll(conn, &mut running).await;
            // The router's costlier parts, on their own program, when the budget allows.
            if polled.is_ok() {
                self.start_parts(conn, &mut parts);
            }
            if let Some(next) = self.report(polled, conn, &mut running).await {
                match next {
                    Next::Stop => return Next::Stop,
                    Next::Reconnect => break,
                }
            }
        }
        close(&mut running).await;
        conn.close().await;
        Next::Reconnect
    }

    /// Waits for the next tick or a refresh, taking in the router's costlier parts as they
    /// come. A connection lost while idle (keepalives unanswered, the host went away) is said
    /// now, not at the next poll.
    async fn wait(
        &mut self,
        conn: &Connection,
        ticker: &mut Interval,
        parts: &mut Parts<'_>,
    ) -> Result<(), Next> {
        let refresh = self.refresh;
        loop {
            tokio::select! {
                _ = ticker.tick() => return Ok(()),
                () = refresh.notified() => {
                    self.full_next = true;
                    return Ok(());
                }
                reply = async {
                    match &mut *parts {
                        Parts::Busy(f) => f.await,
                        Parts::Idle(_) => std::future::pending().await,
                    }
                } => {
                    *parts = Parts::Idle(self.took_parts(reply));
                }
                e = conn.closed() => {
                    if !self.reporter.failure(&e).await || self.once {
                        return Err(Next::Stop);
                    }
                    return Err(Next::Reconnect);
                }
            }
        }
    }

    /// Takes in the router's answer for its costlier parts; gives back the program.
    fn took_parts(&mut self, reply: PartsReply) -> Option<Running> {
        let (program, asked, time, result) = reply;
        if let Some(w) = self.watch.as_mut() {
            let now = std::time::Instant::now();
            match result.and_then(|text| w.absorb_parts(&text, &asked, time, now)) {
                Ok(costs) => {
                    tracing::debug!(host = %self.src.name, ?asked, ?costs, "router parts");
                }
                Err(e) => {
                    tracing::warn!(host = %self.src.name, "router parts: {e}");
                    w.parts_failed(format!("ipvsadm's views: {e}"), now);
                }
            }
        }
        program
    }

    /// One poll within its deadline. A poll cut off mid-reply ends the program, whose state is
    /// then unknown.
    async fn poll(
        &mut self,
        conn: &Connection,
        running: &mut Option<Live>,
    ) -> Result<SourceEvent, SshError> {
        let poll_timeout = self.poll_timeout;
        if running.is_none() {
            // Started within a deadline of its own, so that the first poll has all of its own.
            let started =
                tokio::time::timeout(poll_timeout, self.src.start_live(conn, &mut self.watch))
                    .await
                    .unwrap_or_else(|_| Err(self.src.not_started(poll_timeout)));
            *running = Some(started?);
        }
        let full = std::mem::take(&mut self.full_next);
        let polled = tokio::time::timeout(
            poll_timeout,
            self.src
                .poll(conn, running, &mut self.watch, &mut self.seq, full),
        )
        .await
        .unwrap_or_else(|_| {
            Err(SshError::Unreachable(format!(
                "no answer to a poll within {}",
                humantime::format_duration(poll_timeout)
            )))
        });
        if polled.is_err() && matches!(polled, Err(SshError::Unreachable(_))) {
            // Cut off mid-reply: the program is in an unknown state.
            close(running).await;
        }
        polled
    }

    /// Asks the router's second program for what the budget allows now, when it is idle.
    fn start_parts<'c>(&mut self, conn: &'c Connection, parts: &mut Parts<'c>)
    where
        'a: 'c,
    {
        if let (Some(w), Parts::Idle(_)) = (self.watch.as_mut(), &*parts)
            && !w.reads_everything()
            && !w.agent_running()
        {
            let asked = w.plan(std::time::Instant::now());
            if !asked.is_empty()
                && let Parts::Idle(program) = std::mem::replace(parts, Parts::Idle(None))
            {
                self.seq += 1;
                *parts = Parts::Busy(Box::pin(self.src.ask_parts(conn, program, self.seq, asked)));
            }
        }
    }

    /// Reports a poll's outcome. Says how polling ends, if it does: at the sample limit, when
    /// nobody listens, after a final failure (all closed), or when the connection is lost.
    async fn report(
        &mut self,
        polled: Result<SourceEvent, SshError>,
        conn: &Connection,
        running: &mut Option<Live>,
    ) -> Option<Next> {
        match polled {
            Ok(event) => {
                self.backoff = self.src.ctx.tuning.backoff_min;
                if !self.reporter.sample(event).await {
                    close(running).await;
                    conn.close().await;
                    return Some(Next::Stop);
                }
                self.samples += 1;
                if self.limit.is_some_and(|l| self.samples >= l) {
                    close(running).await;
                    conn.close().await;
                    return Some(Next::Stop);
                }
                None
            }
            Err(e) => {
                let lost = e.loses_connection() || conn.is_closed();
                if !self.reporter.failure(&e).await || self.once {
                    close(running).await;
                    conn.close().await;
                    return Some(Next::Stop);
                }
                lost.then_some(Next::Reconnect)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
