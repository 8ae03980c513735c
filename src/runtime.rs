//! The runtime: starts the sources, runs the select loop over keys, source events, tick and render
//! timers, and carries out the state's commands. The terminal is restored on every way out.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::app::state::{Popup, TextInput};
use crate::app::{Command, Event, State, StateOptions};
use crate::cli::{NodesSpec, RouterSpec, SourceArgs};
use crate::config::{Config, Keymap};
use crate::control::audit::AuditLog;
use crate::control::plan::WeightChange;
use crate::control::{RouterControl, apply_warned};
use crate::model::alert::AlertEvent;
use crate::model::sample::{SourceEvent, Timestamp};
use crate::source::local::{LocalNode, LocalRouter};
use crate::source::poller::{self, LocalNodePoll, LocalRouterPoll, Poll, PollHandle};
use crate::source::remote::{self, RemoteSet};

pub(crate) mod event_loop;
pub mod mouse;
pub mod recording;
pub mod replay;
pub mod signals;

use event_loop::Feed;
use recording::LiveRecorder;
use signals::StopSignals;

/// Why lbtop could not run. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Unsupported(String),
    #[error("terminal: {0}")]
    Terminal(#[from] std::io::Error),
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// A recording that could not go on (a write error, a full disk).
    #[error("{0}")]
    Recording(String),
    /// The TUI was asked for without a terminal on stdin and stdout.
    #[error(
        "no terminal: the dashboard needs one on stdin and stdout; for a snapshot use \
         `lbtop --once --json`, to record use `lbtop record FILE`"
    )]
    NoTerminal,
    /// SIGTERM, SIGINT or SIGHUP (its number) stopped the TUI; the terminal has been restored.
    #[error("stopped by signal {0}")]
    Signal(i32),
}

/// The sources named on the command line, ready to poll.
#[derive(Default)]
pub struct SourceSet {
    pub router: Option<(String, Box<dyn Poll>)>,
    pub nodes: Vec<(String, String, Box<dyn Poll>)>,
    /// Hosts watched over SSH, each in its own async task.
    pub remote: RemoteSet,
    /// The HA pair's two directors (`--router a,b`), by the hosts their events carry.
    pub pair: Option<[String; 2]>,
}

impl Poll for Box<dyn Poll> {
    fn poll(&mut self) -> SourceEvent {
        (**self).poll()
    }
}

/// Builds the sources for `args`; the config gives the interval (SSH timeouts follow it) and the
/// `[[node]]` mappings for `--nodes auto`.
pub fn sources_for(args: &SourceArgs, config: &Config) -> Result<SourceSet, RunError> {
    if let Some(root) = &args.proc_root
        && !root.is_dir()
    {
        return Err(RunError::Unsupported(format!(
            "--proc-root {}: not a directory",
            crate::model::text::printable(&root.display().to_string(), 200)
        )));
    }
    // `local` (alone or in a list) is this machine as a node; the rest are reached over SSH.
    let (local_node, remote_nodes) = args.nodes.split_local();
    let mut set = SourceSet::default();
    let directors = args.router.directors();
    if directors
        .iter()
        .any(|d| matches!(d, RouterSpec::Remote(_) | RouterSpec::Prometheus(_)))
        || matches!(
            remote_nodes,
            NodesSpec::List(_) | NodesSpec::Auto | NodesSpec::Prometheus(_)
        )
    {
        let mut spec = args.spec();
        if args.router_agent.is_none()
            && let Some(agent) = &config.router_agent
        {
            spec.router_agent = agent.clone();
        }
        spec.prometheus = prometheus_spec(args, config)?;
        spec.forget_after = config.forget_after;
        set.remote = RemoteSet::from_spec(&spec, config.interval, &config.node_map)
            .map_err(RunError::Unsupported)?;
    }
    set.pair = args.router.pair_names();
    if directors.contains(&&RouterSpec::Local) {
        set.router = Some((
            "local".into(),
            Box::new(LocalRouterPoll(LocalRouter::new(args.proc_root.clone()))),
        ));
    }
    if local_node {
        let p = LocalNodePoll::new(LocalNode::new(args.proc_root.clone()));
        set.nodes = vec![(p.name.clone(), "local".into(), Box::new(p))];
    }
    Ok(set)
}

/// Where Prometheus is and how to sign in: the command line's URL and CA over the config
/// file's; credentials from LBTOP_PROMETHEUS_USER and _PASSWORD, or _TOKEN, over the file's.
fn prometheus_spec(
    args: &SourceArgs,
    config: &Config,
) -> Result<Option<crate::source::spec::PrometheusSpec>, RunError> {
    use crate::source::spec::{PrometheusAuth, PrometheusSpec};
    let file = &config.prometheus;
    let Some(url) = args.prometheus.clone().or_else(|| file.url.clone()) else {
        return Ok(None);
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let auth = match (
        env("LBTOP_PROMETHEUS_USER"),
        env("LBTOP_PROMETHEUS_PASSWORD"),
        env("LBTOP_PROMETHEUS_TOKEN"),
    ) {
        (Some(user), Some(password), None) => PrometheusAuth::Basic { user, password },
        (None, None, Some(token)) => PrometheusAuth::Bearer(token),
        (None, None, None) => file.auth.clone(),
        _ => {
            return Err(RunError::Unsupported(
                "Prometheus credentials: set LBTOP_PROMETHEUS_USER and LBTOP_PROMETHEUS_PASSWORD, \
                 or LBTOP_PROMETHEUS_TOKEN alone"
                    .into(),
            ));
        }
    };
    Ok(Some(PrometheusSpec {
        url,
        ca: args.prometheus_ca.clone().or_else(|| file.ca.clone()),
        auth,
        timeout: file.timeout,
        answer_memory: file.answer_memory,
    }))
}

/// The TUI needs a terminal on stdin (keys) and stdout (the screen); checked before anything is
/// written to either, so without one lbtop says so instead of failing in raw mode.
pub fn require_terminal() -> Result<(), RunError> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(RunError::NoTerminal)
    }
}

/// The state's settings from the resolved config and the command line.
pub fn state_options(config: &Config, read_only: bool) -> StateOptions {
    StateOptions {
        interval: config.interval,
        rules: crate::model::alert::AlertRules {
            warning_margin: config.thresholds.warning_margin,
            hysteresis: config.thresholds.hysteresis,
            stale_intervals: config.thresholds.stale_intervals,
        },
        history_len: config.history_len,
        read_only,
        snapshot: false,
        mouse: config.mouse,
    }
}

fn declare(state: &mut State, set: &SourceSet) {
    if let Some([a, b]) = &set.pair {
        state.add_pair(a, b);
    } else if let Some((host, _)) = &set.router {
        state.add_router(host);
    }
    for (name, host, _) in &set.nodes {
        state.add_node(name, host);
    }
    if let Some(host) = set.remote.router_host().filter(|_| set.pair.is_none()) {
        state.add_router(&host);
    }
    for (name, host) in set.remote.node_names() {
        state.add_node(name, host);
    }
}

/// `--once`: one sample, or two `interval` apart so rates and CPU percentages are real. Returns
/// the state to print (`report::write_snapshot`).
pub async fn once(mut set: SourceSet, mut state: State, interval: Duration) -> State {
    if !set.remote.is_empty() {
        return once_remote(set, state, interval).await;
    }
    declare(&mut state, &set);
    let rounds = if interval.is_zero() { 1 } else { 2 };
    for round in 0..rounds {
        if round > 0 {
            tokio::time::sleep(interval).await;
        }
        if let Some((_, p)) = &mut set.router {
            state.ingest(p.poll());
        }
        for (_, _, p) in &mut set.nodes {
            state.ingest(p.poll());
        }
    }
    state
}

/// `--once` with SSH hosts: every source runs as a task; each host is done after its samples or
/// its first failure, and the whole wait is bounded. Hosts that never answered are reported so.
async fn once_remote(set: SourceSet, mut state: State, interval: Duration) -> State {
    declare(&mut state, &set);
    let rounds: u32 = if interval.is_zero() { 1 } else { 2 };
    let mut progress = remote::OnceProgress::new(rounds);
    if let Some(pair) = &set.pair {
        progress.expect_pair(pair);
    } else if set.router.is_some() || set.remote.router_host().is_some() {
        progress.expect(None);
    }
    for (name, _, _) in &set.nodes {
        progress.expect(Some(name));
    }
    for (name, _) in set.remote.node_names() {
        progress.expect(Some(name));
    }
    let wait = set.remote.once_deadline(interval, rounds);
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(1024);
    let started = set.remote.start(interval, tx.clone(), Some(rounds));
    let mut handles = started.handles;
    // Prometheus's instances are known from its answers: wait for its task to end too.
    let mut fleet_done = started.fleet_done;
    if let Some((_, p)) = set.router {
        handles.push(poller::spawn(p, interval, started.router_tx.clone()));
    }
    for (_, _, p) in set.nodes {
        handles.push(poller::spawn(p, interval, tx.clone()));
    }
    drop((tx, started.router_tx));
    let deadline = tokio::time::Instant::now() + wait;
    while fleet_done.is_some() || !progress.done() {
        tokio::select! {
            _ = async {
                match fleet_done.as_mut() {
                    Some(done) => done.await,
                    None => std::future::pending().await,
                }
            } => {
                fleet_done = None;
                // Its events are all sent: take those not received yet.
                while let Ok(ev) = rx.try_recv() {
                    if progress.see(&ev) {
                        state.ingest(ev);
                    }
                }
            }
            ev = rx.recv() => match ev {
                Some(ev) => {
                    if progress.see(&ev) {
                        state.ingest(ev);
                    }
                }
                None => break,
            },
            () = tokio::time::sleep_until(deadline) => break,
        }
    }
    for name in progress.pending() {
        let host = match &name {
            None => state.router().map(|r| r.host.clone()),
            Some(n) => state.node(n).map(|n| n.host.clone()),
        };
        state.ingest(remote::unanswered(name, host.unwrap_or_default(), wait));
    }
    for host in progress.pending_pair() {
        state.ingest(remote::unanswered(None, host, wait));
    }
    drop(handles);
    state
}

/// Maps a key to what it does: text while a prompt is open (the filter, a go-to time, a weight,
/// a typed confirmation), else the keymap's action; either goes to `State::handle`. Ctrl-C quits
/// from a prompt too.
pub fn handle_key(state: &mut State, keymap: &Keymap, key: KeyEvent) -> Option<Command> {
    if state.wants_text() {
        let input = match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                return Some(Command::Quit);
            }
            KeyCode::Enter => TextInput::Accept,
            KeyCode::Esc => TextInput::Cancel,
            KeyCode::Backspace => TextInput::Backspace,
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                TextInput::Char(c)
            }
            _ => return None,
        };
        return state.handle(Event::Text(input)).command;
    }
    let action = if matches!(state.ui().popup, Some(Popup::Confirm(_))) {
        keymap.confirm_action_for(&key)?
    } else {
        keymap.action_for(&key)?
    };
    state.handle(Event::Action(action)).command
}

/// A terminal event for the live and replay loops: a key or a mouse event to act on, a resize
/// that forces a redraw, or the end of input (quit).
fn terminal_event(
    state: &mut State,
    keymap: &Keymap,
    ev: Option<std::io::Result<TermEvent>>,
    drawn: &mut Option<u64>,
    pointer: &mut mouse::Pointer,
) -> Result<Option<Command>, RunError> {
    Ok(match ev {
        Some(Ok(TermEvent::Key(key))) if key.kind != KeyEventKind::Release => {
            handle_key(state, keymap, key)
        }
        Some(Ok(TermEvent::Mouse(m))) => pointer
            .event(state, m, std::time::Instant::now())
            .and_then(|m| state.handle(Event::Mouse(m)).command),
        Some(Ok(TermEvent::Resize(..))) => {
            *drawn = None;
            None
        }
        Some(Ok(_)) => None,
        Some(Err(e)) => return Err(RunError::Terminal(e)),
        None => Some(Command::Quit),
    })
}

/// Draws the screen when the state changed since the last frame (or a resize asked for one).
fn redraw_if_changed(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut State,
    config: &Config,
    drawn: &mut Option<u64>,
) -> Result<(), RunError> {
    if *drawn != Some(state.generation()) {
        let mut view = None;
        terminal.draw(|f| {
            view = Some(crate::ui::draw_screen(
                f,
                state,
                &config.theme,
                &config.keymap,
            ));
        })?;
        if let Some(view) = view {
            state.handle(Event::Drawn(view));
        }
        *drawn = Some(state.generation());
    }
    Ok(())
}

fn log_alerts(events: &[AlertEvent]) {
    for e in events {
        if e.raised {
            tracing::warn!(subject = %e.subject, severity = e.severity.as_str(), "{}", e.message);
        } else {
            tracing::info!(subject = %e.subject, "{}", e.message);
        }
    }
}

/// How the TUI changes the router's weights, if it can: the router it watches, and the audit log.
pub struct Controls {
    pub router: crate::control::AnyControl,
    /// The second director of an HA pair: a change goes to whichever is the master.
    pub peer: Option<crate::control::AnyControl>,
    pub audit: Option<AuditLog>,
}

impl Controls {
    /// Controls for the router named on the command line; `None` when there is no router to
    /// change (or it cannot be reached the way the command line says, which the watch reports).
    pub fn for_router(args: &SourceArgs, audit: Option<AuditLog>, config: &Config) -> Option<Self> {
        let interval = config.interval;
        let agent = args
            .router_agent
            .clone()
            .or_else(|| config.router_agent.clone())
            .unwrap_or_default();
        let ssh = crate::source::ssh::SshArgs {
            config_file: args.ssh_config.clone(),
            options: args.ssh_option.clone(),
        };
        let mut controls = Vec::new();
        for d in args.router.directors() {
            match crate::control::AnyControl::for_router(d, &ssh, args.router_sudo, interval) {
                Ok(Some(c)) => controls.push(c.with_agent(agent.clone())),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("no weight changes: {e}");
                    return None;
                }
            }
        }
        let mut controls = controls.into_iter();
        Some(Self {
            router: controls.next()?,
            peer: controls.next(),
            audit,
        })
    }

    /// The control of the director named `host` (the pair's master), else the first.
    fn control_for(&self, host: Option<&str>) -> &crate::control::AnyControl {
        match &self.peer {
            Some(p) if host.is_some_and(|h| p.router_name() == h) => p,
            _ => &self.router,
        }
    }
}

type Applying = Pin<Box<dyn Future<Output = (WeightChange, Result<(), String>)>>>;

fn start_apply(
    controls: Option<&Controls>,
    router: Option<&str>,
    change: WeightChange,
    force: bool,
    warnings: Vec<String>,
) -> Applying {
    let ctrl = controls.map(|c| (c.control_for(router).clone(), c.audit.clone()));
    Box::pin(async move {
        let result = match ctrl {
            Some((mut router, audit)) => {
                apply_warned(&mut router, &change, force, &warnings, audit.as_ref())
                    .await
                    .map_err(|e| e.to_string())
            }
            None => Err("this router cannot be changed from here".to_string()),
        };
        (change, result)
    })
}

/// Runs the live TUI, recording into `record` from the start when given (`--record FILE`).
pub async fn run_tui_recording(
    set: SourceSet,
    mut state: State,
    config: &Config,
    record: Option<&std::path::Path>,
    controls: Option<Controls>,
) -> Result<(), RunError> {
    let mut recorder = LiveRecorder::new(config.interval, &set);
    if let Some(path) = record {
        recorder.start(path)?;
        recorder.refresh(&mut state);
    }
    declare(&mut state, &set);
    if let Some(c) = &controls
        && let Some(audit) = &c.audit
    {
        // Of a pair, the drains made on either director (each was the master then).
        let mut points = std::collections::HashMap::new();
        for router in c.peer.iter().chain(std::iter::once(&c.router)) {
            match audit.restore_points(&router.router_name()) {
                Ok(p) => points.extend(p),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        state.set_restore_points(points);
    }
    if let Some(c) = &controls {
        // The router's agent for actions starts now (sudo paid once), not at the first confirm.
        for router in std::iter::once(&c.router).chain(&c.peer) {
            let router = router.clone();
            tokio::spawn(async move { router.warm_up().await });
        }
    }
    let (tx, rx) = mpsc::channel::<SourceEvent>(1024);
    let started = set.remote.start(config.interval, tx.clone(), None);
    let mut handles: Vec<PollHandle> = started.handles;
    if let Some((_, p)) = set.router {
        handles.push(poller::spawn(p, config.interval, started.router_tx.clone()));
    }
    drop(started.router_tx);
    for (_, _, p) in set.nodes {
        handles.push(poller::spawn(p, config.interval, tx.clone()));
    }
    drop(tx);

    // Listening before the terminal is set up: a signal from here on ends the loop, and the
    // terminal is restored and the recording closed below.
    let mut signals = StopSignals::listen().map_err(RunError::Terminal)?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut feed = LiveFeed {
        rx,
        detail: started.detail,
        handles,
        controls: controls.as_ref(),
        recorder,
        applying: None,
        tick,
        closed: false,
    };
    let mut terminal = mouse::init_terminal(state.ui().mouse);
    let result = event_loop::run(&mut terminal, &mut state, config, &mut signals, &mut feed).await;
    mouse::restore_terminal();
    feed.recorder.stop();
    result
}

/// The live sources as the loop's feed: their events, the weight change being applied, and the
/// tick that ages the data; the recorder sees everything the state does, in the same order.
struct LiveFeed<'a> {
    rx: mpsc::Receiver<SourceEvent>,
    /// Prometheus's nodes: which per-core lines the screen shows, told at every tick.
    detail: Option<crate::source::prometheus::DetailWanted>,
    handles: Vec<PollHandle>,
    controls: Option<&'a Controls>,
    recorder: LiveRecorder,
    applying: Option<Applying>,
    tick: tokio::time::Interval,
    /// Every source has stopped: the channel is not polled again.
    closed: bool,
}

/// What the live feed waits for.
enum Live {
    /// Source events, as many as had arrived.
    Sources(Vec<SourceEvent>),
    Applied(WeightChange, Result<(), String>),
    Tick,
    /// Every source has stopped.
    Closed,
}

impl LiveFeed<'_> {
    fn handle(&self, state: &mut State, event: Event) -> Option<Command> {
        if let Event::Source(e) = &event {
            self.recorder.event(e);
        }
        let outcome = state.handle(event);
        self.recorder.alerts(&outcome.alerts);
        log_alerts(&outcome.alerts);
        outcome.command
    }
}

impl Feed for LiveFeed<'_> {
    type Item = Live;

    async fn next(&mut self) -> Live {
        tokio::select! {
            ev = self.rx.recv(), if !self.closed => match ev {
                Some(ev) => {
                    let mut batch = vec![ev];
                    while let Ok(ev) = self.rx.try_recv() {
                        batch.push(ev);
                    }
                    Live::Sources(batch)
                }
                None => {
                    self.closed = true;
                    Live::Closed
                }
            },
            Some((change, result)) = async {
                match self.applying.as_mut() {
                    Some(f) => Some(f.await),
                    None => None,
                }
            }, if self.applying.is_some() => {
                self.applying = None;
                Live::Applied(change, result)
            }
            _ = self.tick.tick() => Live::Tick,
        }
    }

    fn take(&mut self, state: &mut State, item: Live) -> Option<Command> {
        match item {
            Live::Sources(batch) => {
                for ev in batch {
                    self.handle(state, Event::Source(ev));
                }
                None
            }
            Live::Applied(change, result) => {
                match &result {
                    Ok(()) => tracing::info!("{change}: done"),
                    Err(e) => tracing::warn!("{change}: {e}"),
                }
                // The same record as the audit log's goes into the recording, if one is running.
                self.recorder.action(crate::record::ActionRecord {
                    time: Timestamp::now(),
                    user: crate::control::audit::operator(),
                    router: self.controls.map_or_else(
                        || "local".into(),
                        |c| {
                            c.control_for(state.router().map(|r| r.host.as_str()))
                                .router_name()
                        },
                    ),
                    service: change.service.to_string(),
                    real: change.real.to_string(),
                    old_weight: change.from,
                    new_weight: change.to,
                    result: match &result {
                        Ok(()) => crate::record::ActionOutcome::Done,
                        Err(e) => crate::record::ActionOutcome::Failed(e.clone()),
                    },
                });
                self.handle(state, Event::Applied { change, result })
            }
            Live::Tick => {
                if let Some(d) = &self.detail {
                    d.set(state.nodes_in_view());
                }
                let command = self.handle(state, Event::Tick(Timestamp::now()));
                self.recorder.refresh(state);
                command
            }
            // Nothing more will come from the sources; keys, signals and the tick still work.
            Live::Closed => None,
        }
    }

    fn carry_out(&mut self, state: &mut State, command: Command) {
        match command {
            Command::Refresh => self.handles.iter().for_each(PollHandle::refresh),
            Command::Apply {
                change,
                force,
                warnings,
            } => {
                let router = state.router().map(|r| r.host.clone());
                self.applying = Some(start_apply(
                    self.controls,
                    router.as_deref(),
                    change,
                    force,
                    warnings,
                ));
            }
            Command::ToggleRecord => self.recorder.toggle(state),
            // Seek, step, speed: replay only (runtime::replay); quit: the loop's.
            _ => {}
        }
    }
}
