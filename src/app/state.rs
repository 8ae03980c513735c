//! The application state, and the one place it changes: `ingest` for source events, `tick` for the
//! passing of time, `update` for operator actions. Pure and synchronous; side effects leave as
//! `Command`s for the runtime to carry out.

mod dr;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::control::plan::{self, ActionKind, PlanError, RealKey, WeightChange, cuts_off};
use crate::model::alert::{AlertBook, AlertEvent, AlertKind, AlertRules, Severity};
use crate::model::history::Ring;
use crate::model::sample::{
    HostStatus, NodeSample, Report, RouterSample, ServiceKey, SourceEvent, Timestamp,
};
use crate::model::snapshot::{
    CpuPercent, NodeStats, RouterStats, counters_advanced, derive_node, derive_router,
};

use super::action::{Action, Context};
use super::event::{Event, Outcome};
use super::mode::{Mode, Speed};
use super::replay::{RecordingView, ReplayView, SeekTo};
use super::rows;

mod mouse;
mod pair;
mod traffic;

pub use pair::{PAIR_SUBJECT, PairEntry, PairSide, SyncHealth};

pub use traffic::{TrafficHistory, TrafficPoint};

/// What the state asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Poll every source now.
    Refresh,
    ToggleRecord,
    /// Change a weight on the router; `force` when the operator confirmed cutting a service off.
    /// `warnings`: what the confirmation warned of, for the audit line.
    Apply {
        change: WeightChange,
        force: bool,
        warnings: Vec<String>,
    },
    /// Replay: go to a moment.
    Seek(SeekTo),
    /// Replay: one frame forward (`1`) or back (`-1`); the replay pauses.
    Step(i8),
    /// Replay: play at this speed.
    SetSpeed(super::mode::Speed),
    /// Replay: stop or start the clock.
    SetPaused(bool),
    /// Capture the mouse (`true`) or leave it to the terminal, for selecting text.
    SetMouse(bool),
}

/// Settings the state needs, resolved from config and command line.
#[derive(Debug, Clone, PartialEq)]
pub struct StateOptions {
    pub interval: Duration,
    pub rules: AlertRules,
    pub history_len: usize,
    pub read_only: bool,
    /// The router is read from a captured snapshot (`--proc-root`): read-only too, and the
    /// action keys say so.
    pub snapshot: bool,
    /// Whether lbtop takes the mouse at start (`M` turns it off and on).
    pub mouse: bool,
}

impl StateOptions {
    /// Why the router cannot be changed from this view, if it cannot.
    pub(crate) fn read_only_reason(&self) -> Option<PlanError> {
        if self.snapshot {
            Some(PlanError::Snapshot)
        } else if self.read_only {
            Some(PlanError::ReadOnly)
        } else {
            None
        }
    }

    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only_reason().is_some()
    }
}

impl Default for StateOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            rules: AlertRules::default(),
            history_len: 300,
            read_only: false,
            snapshot: false,
            mouse: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pane {
    Services,
    Nodes,
    Alerts,
}

impl Pane {
    const ORDER: [Pane; 3] = [Pane::Services, Pane::Nodes, Pane::Alerts];

    fn step(self, forward: bool) -> Pane {
        let i = Self::ORDER.iter().position(|p| *p == self).unwrap_or(0);
        let n = Self::ORDER.len();
        Self::ORDER[if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        }]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSort {
    Id,
    Connections,
    Cps,
    Traffic,
    Weight,
    /// By the load per core of the node behind each real server (a service by its busiest).
    LoadPerCore,
}

impl ServiceSort {
    const ORDER: [ServiceSort; 6] = [
        ServiceSort::Id,
        ServiceSort::Connections,
        ServiceSort::Cps,
        ServiceSort::Traffic,
        ServiceSort::Weight,
        ServiceSort::LoadPerCore,
    ];

    /// Whether this sort's order (before a reverse) is ascending: by id it is; by a value it is
    /// biggest first.
    pub(crate) fn ascending(self) -> bool {
        self == Self::Id
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Id => "service",
            Self::Connections => "connections",
            Self::Cps => "cps",
            Self::Traffic => "bytes/s",
            Self::Weight => "weight",
            Self::LoadPerCore => "load/core",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeSort {
    Name,
    LoadPerCore,
    Cpu,
    Memory,
}

impl NodeSort {
    const ORDER: [NodeSort; 4] = [
        NodeSort::Name,
        NodeSort::LoadPerCore,
        NodeSort::Cpu,
        NodeSort::Memory,
    ];

    /// Whether this sort's order (before a reverse) is ascending: by name it is; by a value it
    /// is biggest first.
    pub(crate) fn ascending(self) -> bool {
        self == Self::Name
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::LoadPerCore => "load/core",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
        }
    }
}

fn cycle<T: Copy + PartialEq>(order: &[T], cur: T) -> T {
    let i = order.iter().position(|x| *x == cur).unwrap_or(0);
    order[(i + 1) % order.len()]
}

/// The router as the state knows it.
#[derive(Debug, Clone)]
pub struct RouterEntry {
    pub host: String,
    pub status: HostStatus,
    pub message: Option<String>,
    /// The sample the current rates are measured from: the last one with older counters.
    pub prev: Option<RouterSample>,
    pub cur: Option<RouterSample>,
    pub stats: RouterStats,
    /// Every service's and real server's traffic over the history held.
    pub traffic: TrafficHistory,
    /// The router's own set-up problems ([`crate::model::dr::router_problems`]), as the alert
    /// on `router` says them.
    pub problems: Vec<String>,
}

impl RouterEntry {
    fn new(host: &str) -> Self {
        Self {
            host: host.to_string(),
            status: HostStatus::Connecting,
            message: None,
            prev: None,
            cur: None,
            stats: RouterStats::default(),
            traffic: TrafficHistory::default(),
            problems: Vec::new(),
        }
    }

    pub fn last_sample(&self) -> Option<Timestamp> {
        self.cur.as_ref().map(|s| s.time)
    }
}

/// A node as the state knows it.
#[derive(Debug, Clone)]
pub struct NodeEntry {
    pub name: String,
    pub host: String,
    pub status: HostStatus,
    pub message: Option<String>,
    pub prev: Option<NodeSample>,
    pub cur: Option<NodeSample>,
    pub stats: Option<NodeStats>,
    pub load_history: Ring<f64>,
    pub cpu_history: Ring<f64>,
    /// Every sample's time, load averages and CPU, for the detail's charts.
    pub history: Ring<NodePoint>,
    pub level: Option<Severity>,
    /// What the direct-routing checks found: `None` when the node is no direct-routing or tunnel
    /// real server or could not be checked, else one sentence per problem (`app::state::dr`).
    pub dr_problems: Option<Vec<String>>,
}

/// One sample of a node as its charts draw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodePoint {
    pub time: Timestamp,
    /// The 1-, 5- and 15-minute load averages.
    pub load: [f64; 3],
    /// The whole node's CPU over the interval before, when it could be measured.
    pub cpu: Option<CpuPercent>,
    /// `cpu` has its busy time split by kind (not a busy-only node: `NodeStats::busy_unsplit`).
    pub kinds: bool,
}

impl NodeEntry {
    pub(crate) fn new(name: &str, host: &str, history: usize) -> Self {
        Self {
            name: name.to_string(),
            host: host.to_string(),
            status: HostStatus::Connecting,
            message: None,
            prev: None,
            cur: None,
            stats: None,
            load_history: Ring::new(history),
            cpu_history: Ring::new(history),
            history: Ring::new(history),
            level: None,
            dr_problems: None,
        }
    }

    pub fn last_sample(&self) -> Option<Timestamp> {
        self.cur.as_ref().map(|s| s.time)
    }
}

/// A row of the services tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRow {
    Service(usize),
    Real(usize, usize),
}

/// What the services selection points at, kept by identity so that it survives re-sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSelection {
    Service(ServiceKey),
    Real(ServiceKey, IpAddr, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Popup {
    Help,
    NodeDetail(String),
    /// The detail of what is selected in the services pane: a virtual service or a real server.
    ServiceDetail,
    /// A weight change waiting for enter (or esc).
    Confirm(PendingAction),
}

/// A short message for the operator that takes no keys: what an action did, or why it could not
/// be done. It goes by itself after a few seconds (an error stays longer), when another comes,
/// or on esc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub text: String,
    pub error: bool,
    /// When the clock that ages it ([`State::age_toast`]) first saw it.
    since: Option<Timestamp>,
}

impl Toast {
    /// How long it stays, in milliseconds.
    fn lasts_ms(&self) -> i64 {
        if self.error { 12_000 } else { 4_000 }
    }
}

/// A planned change shown for confirmation. When it would cut the service off (`cuts_off`), a
/// [`PromptKind::Confirm`] prompt is open too: the operator must type the service to confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAction {
    pub change: WeightChange,
    pub cuts_off: bool,
    /// The node whose detail the change was started from: it opens again once the change is
    /// applied or cancelled.
    pub from_node: Option<String>,
    /// What the operator should know before applying it, such as persistence templates that
    /// keep sending clients to a drained server (`app::state::dr`).
    pub warnings: Vec<String>,
}

/// A line being typed. Every prompt is edited the same way ([`Prompt::edit`]); its kind says
/// which characters it takes and what Enter does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// What a prompt is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptKind {
    /// The filter: the rows follow it as it is typed; Enter keeps it, Esc clears it.
    Filter,
    /// Replay: a time to go to (`model::time`).
    GoTo,
    /// The new weight of a real server, for a reweight.
    Weight { service: ServiceKey, real: RealKey },
    /// A drain that cuts its service off: the service, typed out.
    Confirm(WeightChange),
}

/// What an edit did to a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Typing,
    Accept,
    Cancel,
}

impl Prompt {
    fn new(kind: PromptKind, text: String) -> Prompt {
        Prompt { kind, text }
    }

    /// The one edit path: a character the kind takes, backspace, Enter or Esc.
    fn edit(&mut self, input: TextInput) -> Edit {
        match input {
            TextInput::Char(c) if self.takes(c) => self.text.push(c),
            TextInput::Char(_) => {}
            TextInput::Backspace => {
                self.text.pop();
            }
            TextInput::Accept => return Edit::Accept,
            TextInput::Cancel => return Edit::Cancel,
        }
        Edit::Typing
    }

    fn takes(&self, c: char) -> bool {
        match self.kind {
            // A weight is at most 65535: five digits, and a sixth to be refused with a reason.
            PromptKind::Weight { .. } => c.is_ascii_digit() && self.text.len() < 6,
            _ => !c.is_control() && self.text.chars().count() < 256,
        }
    }
}

/// What a pane showed in the last frame drawn: its first row, and how many rows it had room for.
/// The next frame starts from the same first row while the selection stays in view, so that
/// a click past the first page selects what it is on instead of scrolling the list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaneView {
    pub first: usize,
    pub rows: usize,
}

/// The panes' views in the last frame drawn (`Event::Drawn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScreenView {
    pub services: PaneView,
    pub nodes: PaneView,
    pub alerts: PaneView,
}

impl ScreenView {
    pub fn pane(&self, pane: Pane) -> PaneView {
        match pane {
            Pane::Services => self.services,
            Pane::Nodes => self.nodes,
            Pane::Alerts => self.alerts,
        }
    }
}

/// View state: what is focused, selected, sorted, filtered, open.
#[derive(Debug, Clone)]
pub struct UiState {
    pub focus: Pane,
    pub service_sel: Option<ServiceSelection>,
    pub node_sel: Option<String>,
    pub alert_sel: usize,
    pub service_sort: ServiceSort,
    pub node_sort: NodeSort,
    pub reverse: bool,
    /// The filter the rows follow (kept after its prompt closes).
    pub filter: String,
    pub collapsed: HashSet<ServiceKey>,
    pub popup: Option<Popup>,
    pub page: usize,
    /// The line being typed, if any: while one is open, keys are its text.
    pub prompt: Option<Prompt>,
    /// Whether lbtop takes the mouse (clicks, the wheel) or leaves it to the terminal.
    pub mouse: bool,
    /// The message shown over the panes, if any; it takes no keys.
    pub toast: Option<Toast>,
    /// The help screen's selected line, among the keys it lists.
    pub help_line: usize,
    /// The real server selected in the open node detail, by identity; `None` for its first.
    pub detail_sel: Option<(ServiceKey, RealKey)>,
    /// What each pane showed in the last frame drawn.
    pub view: ScreenView,
}

impl UiState {
    /// Whether the filter is being typed.
    pub fn filter_editing(&self) -> bool {
        matches!(&self.prompt, Some(p) if p.kind == PromptKind::Filter)
    }

    /// Replay: the time typed after `g`, while its prompt is open.
    pub fn goto(&self) -> Option<&str> {
        match &self.prompt {
            Some(p) if p.kind == PromptKind::GoTo => Some(&p.text),
            _ => None,
        }
    }

    /// The open prompt of `kind`'s sort (a weight or a typed confirmation), if it is open.
    pub fn prompt(&self) -> Option<&Prompt> {
        self.prompt.as_ref()
    }
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            focus: Pane::Services,
            service_sel: None,
            node_sel: None,
            alert_sel: 0,
            service_sort: ServiceSort::Id,
            node_sort: NodeSort::Name,
            reverse: false,
            filter: String::new(),
            collapsed: HashSet::new(),
            popup: None,
            page: 10,
            prompt: None,
            mouse: true,
            toast: None,
            help_line: 0,
            detail_sel: None,
            view: ScreenView::default(),
        }
    }
}

/// Everything lbtop knows and shows. The fields are private: the state changes only through its
/// own methods (`update`, `ingest`, `tick` and the named setters below), each of which marks it
/// for a redraw; everything else reads it through the accessors.
#[derive(Debug, Clone)]
pub struct State {
    options: StateOptions,
    mode: Mode,
    now: Timestamp,
    router: Option<RouterEntry>,
    /// The HA pair, when two directors are watched (`--router a,b`).
    pair: Option<PairEntry>,
    nodes: Vec<NodeEntry>,
    node_index: HashMap<String, usize>,
    /// Nodes by the address they answer to, for matching real servers to nodes.
    node_by_addr: HashMap<IpAddr, usize>,
    alerts: AlertBook,
    ui: UiState,
    /// Weights real servers had before lbtop drained them (from the audit log), for restore.
    restore_points: HashMap<(ServiceKey, RealKey), i32>,
    /// Real servers lbtop drained this session: their rows count connections down.
    draining: HashSet<(ServiceKey, RealKey)>,
    /// The change being applied now, if any.
    applying: Option<WeightChange>,
    /// Events that arrived while the live view was paused; applied on resume.
    /// A deque: once full, each new event drops one from the front.
    held: VecDeque<SourceEvent>,
    /// Bumped on every change that needs a redraw.
    generation: u64,
    /// Since when the router's data has been within the staleness limit (for its hysteresis).
    router_fresh_since: Option<Timestamp>,
    /// The recording being made, if any.
    recording: Option<RecordingView>,
    /// The recording being replayed, if any.
    replay: Option<ReplayView>,
}

/// Events held while paused, at most; past it the oldest sample is dropped (a later one
/// supersedes it), a status only when nothing else is held: a status, `Gone` above all, is said
/// once and never again.
const HELD_LIMIT: usize = 100_000;

impl State {
    pub fn new(options: StateOptions) -> Self {
        let ui = UiState {
            mouse: options.mouse,
            ..UiState::default()
        };
        Self {
            options,
            mode: Mode::Live,
            now: Timestamp::now(),
            router: None,
            pair: None,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            node_by_addr: HashMap::new(),
            alerts: AlertBook::new(1000),
            ui,
            restore_points: HashMap::new(),
            draining: HashSet::new(),
            applying: None,
            held: VecDeque::new(),
            generation: 0,
            router_fresh_since: None,
            recording: None,
            replay: None,
        }
    }

    pub fn options(&self) -> &StateOptions {
        &self.options
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The time of the last sample or tick.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    pub fn router(&self) -> Option<&RouterEntry> {
        self.router.as_ref()
    }

    pub fn nodes(&self) -> &[NodeEntry] {
        &self.nodes
    }

    pub fn alerts(&self) -> &AlertBook {
        &self.alerts
    }

    /// Selection, sorting, filter, popups: what the panes show and how.
    pub fn ui(&self) -> &UiState {
        &self.ui
    }

    /// Weights real servers had before lbtop drained them (from the audit log), for restore.
    pub fn restore_points(&self) -> &HashMap<(ServiceKey, RealKey), i32> {
        &self.restore_points
    }

    /// Real servers lbtop drained this session.
    pub fn draining(&self) -> &HashSet<(ServiceKey, RealKey)> {
        &self.draining
    }

    /// The change being applied now, if any.
    pub fn applying(&self) -> Option<&WeightChange> {
        self.applying.as_ref()
    }

    /// The recording being made, if any.
    pub fn recording(&self) -> Option<&RecordingView> {
        self.recording.as_ref()
    }

    /// The recording being replayed, if any.
    pub fn replay(&self) -> Option<&ReplayView> {
        self.replay.as_ref()
    }

    /// The weights from before lbtop's drains, read from the audit log at start.
    pub(crate) fn set_restore_points(&mut self, points: HashMap<(ServiceKey, RealKey), i32>) {
        self.restore_points = points;
        self.touch();
    }

    /// Shows `text` for a few seconds without taking keys (a recording started or stopped).
    pub fn show_message(&mut self, text: String) {
        self.toast(text, false);
    }

    /// Shows an error for longer than a message, without taking keys either.
    pub(crate) fn show_error(&mut self, text: String) {
        self.toast(text, true);
    }

    fn toast(&mut self, text: String, error: bool) {
        self.ui.toast = Some(Toast {
            text,
            error,
            since: None,
        });
        self.touch();
    }

    /// Ages the message on screen by the clock (wall-clock time: the live view's ticks, a
    /// replay's timer): it goes once it has been shown long enough.
    pub(crate) fn age_toast(&mut self, now: Timestamp) {
        let Some(toast) = &mut self.ui.toast else {
            return;
        };
        match toast.since {
            None => toast.since = Some(now),
            Some(since) if now.0.saturating_sub(since.0) >= toast.lasts_ms() => {
                self.ui.toast = None;
                self.touch();
            }
            Some(_) => {}
        }
    }

    /// Opens `popup` over the panes.
    pub fn show_popup(&mut self, popup: Popup) {
        self.ui.popup = Some(popup);
        self.touch();
    }

    /// Enters replay mode on `view`, playing at `speed` or paused.
    pub fn start_replay(&mut self, view: ReplayView, paused: bool, speed: Speed) {
        self.mode = Mode::Replay { paused, speed };
        self.replay = Some(view);
        self.touch();
    }

    /// Pauses or resumes a replay, at `speed`. Nothing happens outside replay mode.
    pub(crate) fn set_replay_play(&mut self, paused: bool, speed: Speed) {
        if let Mode::Replay { .. } = self.mode {
            let mode = Mode::Replay { paused, speed };
            if self.mode != mode {
                self.mode = mode;
                self.touch();
            }
        }
    }

    /// For tests that build a particular situation by hand: the options, the time, the router
    /// and the nodes, changed in place without going through samples.
    #[cfg(any(test, feature = "testing"))]
    pub fn testing_parts(
        &mut self,
    ) -> (
        &mut StateOptions,
        &mut Timestamp,
        Option<&mut RouterEntry>,
        &mut [NodeEntry],
    ) {
        self.touch();
        (
            &mut self.options,
            &mut self.now,
            self.router.as_mut(),
            &mut self.nodes,
        )
    }

    /// Declares the router before its first report, so it shows as connecting.
    pub fn add_router(&mut self, host: &str) {
        self.router = Some(RouterEntry::new(host));
        self.touch();
    }

    /// Declares a node before its first report, so it shows as connecting.
    pub fn add_node(&mut self, name: &str, host: &str) {
        if !self.node_index.contains_key(name) {
            let i = self.nodes.len();
            self.node_index.insert(name.to_string(), i);
            for text in [host, name] {
                if let Ok(addr) = text.parse::<IpAddr>() {
                    self.node_by_addr.entry(addr).or_insert(i);
                }
            }
            let mut node = NodeEntry::new(name, host, self.options.history_len);
            // Its load level carries on from the alerts (after `restore_alerts`, from before).
            node.level = self.alerts.level(name, AlertKind::Load);
            self.nodes.push(node);
            self.touch();
        }
    }

    /// Forgets a node its source has stopped watching ([`HostStatus::Gone`]): its entry, its
    /// history, its selection and detail, and its alerts, each cleared as of `time`. A later
    /// report of the same name starts it afresh.
    fn forget_node(&mut self, name: &str, time: Timestamp) -> Vec<AlertEvent> {
        if let Some(i) = self.node_index.remove(name)
            && i < self.nodes.len()
        {
            let gone = self.nodes.remove(i);
            // Later nodes move up one; no string is copied, so a fleet forgetting thousands
            // at once stays linear per node.
            for v in self.node_index.values_mut() {
                if *v > i {
                    *v -= 1;
                }
            }
            let mut lost = false;
            self.node_by_addr.retain(|_, v| {
                lost |= *v == i;
                *v != i
            });
            for v in self.node_by_addr.values_mut() {
                if *v > i {
                    *v -= 1;
                }
            }
            if lost {
                // Another node declared for the same address takes it, the first as in
                // `add_node`.
                for text in [&gone.host, &gone.name] {
                    if let Ok(addr) = text.parse::<IpAddr>()
                        && let Some(j) = self.nodes.iter().position(|n| {
                            [&n.host, &n.name]
                                .iter()
                                .any(|t| t.parse::<IpAddr>() == Ok(addr))
                        })
                    {
                        self.node_by_addr.entry(addr).or_insert(j);
                    }
                }
            }
        }
        if self.ui.node_sel.as_deref() == Some(name) {
            self.ui.node_sel = None;
        }
        match &mut self.ui.popup {
            Some(Popup::NodeDetail(n)) if n == name => {
                self.ui.popup = None;
                self.ui.detail_sel = None;
            }
            // A change asked from its detail goes back to the panes, not to a detail of nothing.
            Some(Popup::Confirm(p)) if p.from_node.as_deref() == Some(name) => {
                p.from_node = None;
            }
            _ => {}
        }
        // Its alerts go whether or not it has an entry: after a seek, alerts restored from
        // before the warm-up can name a node no event of the warm-up declared.
        let kinds: Vec<AlertKind> = self
            .alerts
            .active()
            .filter(|(subject, _, _)| *subject == name)
            .map(|(_, kind, _)| kind)
            .collect();
        let events = kinds
            .into_iter()
            .filter_map(|kind| self.alerts.set(time, name, kind, None))
            .collect();
        self.touch();
        events
    }

    pub fn node(&self, name: &str) -> Option<&NodeEntry> {
        self.node_index.get(name).and_then(|&i| self.nodes.get(i))
    }

    /// A change counter: the view needs redrawing when it differs from the last one drawn.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn touch(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Shows the recording in progress (or none).
    pub fn set_recording(&mut self, view: Option<RecordingView>) {
        if self.recording != view {
            self.recording = view;
            self.touch();
        }
    }

    /// Shows where the replay is.
    pub(crate) fn set_replay_position(&mut self, position: Timestamp, warning: Option<String>) {
        if let Some(r) = &mut self.replay
            && (r.position != position || r.warning != warning)
        {
            r.position = position;
            r.warning = warning;
            self.touch();
        }
    }

    /// Forgets every host, sample and alert, keeping the view (focus, selection, sort, filter)
    /// and the mode: a replay seeks by feeding a fresh history.
    pub(crate) fn clear_data(&mut self) {
        self.router = None;
        self.nodes.clear();
        self.node_index.clear();
        self.node_by_addr.clear();
        self.alerts = AlertBook::new(1000);
        self.held.clear();
        self.now = Timestamp(0);
        self.router_fresh_since = None;
        self.touch();
    }

    /// Takes in alert events raised earlier (a recording's, oldest first), as if they had been
    /// raised here: replay rebuilds the alert history from before a seek's warm-up with them, so
    /// the alerts pane, the alerts on and every node's load level (and with it the hysteresis)
    /// are what they would be after playing from the start.
    pub fn restore_alerts(&mut self, events: impl IntoIterator<Item = AlertEvent>) {
        self.alerts.restore(events);
        for node in &mut self.nodes {
            node.level = self.alerts.level(&node.name, AlertKind::Load);
        }
        self.touch();
    }

    /// Everything that changes the state comes in here: an operator's action or typed text, a
    /// source's report, the passing of time, the end of a weight change. It does no I/O; what
    /// the runtime must do is the outcome's command, and the alerts raised or cleared go to the
    /// recorder and the log.
    pub fn handle(&mut self, event: Event) -> Outcome {
        match event {
            Event::Action(action) => Outcome::command(self.act(action)),
            Event::Text(input) => Outcome::command(self.type_text(input)),
            Event::Mouse(mouse) => Outcome::command(self.pointer(mouse)),
            Event::Source(event) => Outcome::alerts(self.take_in(event)),
            Event::Tick(now) => Outcome::alerts(self.pass_time(now)),
            Event::Applied { change, result } => Outcome::command(self.applied(&change, result)),
            Event::Recorded(action) => {
                self.recorded(&action);
                Outcome::default()
            }
            // What is on screen already: no redraw needed.
            Event::Drawn(view) => {
                self.ui.view = view;
                Outcome::default()
            }
        }
    }

    /// `handle(Event::Source(event))`: the alert events it caused.
    pub fn ingest(&mut self, event: SourceEvent) -> Vec<AlertEvent> {
        self.handle(Event::Source(event)).alerts
    }

    /// `handle(Event::Tick(now))`: the alert events the passing of time caused.
    pub fn tick(&mut self, now: Timestamp) -> Vec<AlertEvent> {
        self.handle(Event::Tick(now)).alerts
    }

    /// `handle(Event::Action(action))`: what the runtime must do, if anything.
    pub fn update(&mut self, action: Action) -> Option<Command> {
        self.handle(Event::Action(action)).command
    }

    /// Takes in what a source reported. Returns the alert events it caused.
    fn take_in(&mut self, event: SourceEvent) -> Vec<AlertEvent> {
        if self.mode == Mode::Paused {
            if self.held.len() >= HELD_LIMIT {
                let is_sample = |e: &SourceEvent| {
                    matches!(
                        e,
                        SourceEvent::Router {
                            report: Report::Sample(_),
                            ..
                        } | SourceEvent::Node {
                            report: Report::Sample(_),
                            ..
                        }
                    )
                };
                let oldest = self.held.iter().position(is_sample).unwrap_or(0);
                self.held.remove(oldest);
            }
            self.held.push_back(event);
            return Vec::new();
        }
        self.apply(event)
    }

    fn apply(&mut self, event: SourceEvent) -> Vec<AlertEvent> {
        self.touch();
        match event {
            SourceEvent::Router { host, report } => {
                if self.pair.is_some() {
                    self.apply_pair(&host, report).unwrap_or_default()
                } else {
                    self.apply_router(&host, report)
                }
            }
            SourceEvent::Node { name, host, report } => self.apply_node(&name, &host, report),
        }
    }

    fn apply_router(&mut self, host: &str, report: Report<RouterSample>) -> Vec<AlertEvent> {
        let history_len = self.options.history_len;
        let router = self.router.get_or_insert_with(|| RouterEntry::new(host));
        router.host = host.to_string();
        match report {
            Report::Sample(sample) => {
                let time = sample.time;
                if self.now < time {
                    self.now = time;
                }
                // Rates are measured from the last sample with older counters (the same one
                // while a router over SSH carries its counters over between readings).
                if router
                    .cur
                    .as_ref()
                    .is_none_or(|last| counters_advanced(last, &sample))
                {
                    router.prev = router.cur.take();
                }
                router.stats = derive_router(router.prev.as_ref(), &sample);
                router.traffic.push(&sample, &router.stats, history_len);
                router.status = HostStatus::Ok;
                router.message = sample.notes.first().cloned();
                router.cur = Some(sample);
                // Staleness clears in `pass_time`, once the data has been fresh for a while.
                let mut events = Vec::new();
                events.extend(
                    self.alerts
                        .set(time, "router", AlertKind::Unreachable, None),
                );
                events.extend(self.check_direct_routing(None, time));
                events
            }
            Report::Status {
                time,
                status,
                message,
            } => {
                router.status = status;
                router.message = message.clone();
                // A router that answers with an error (IPVS absent, unreadable output) shows it in
                // its pane; only losing the connection is an alert. Stale data alerts on its own.
                let level = match status {
                    HostStatus::Error => None,
                    other => unreachable_level(other, message.as_deref()),
                };
                self.alerts
                    .set(time, "router", AlertKind::Unreachable, level)
                    .into_iter()
                    .collect()
            }
        }
    }

    fn apply_node(
        &mut self,
        name: &str,
        host: &str,
        report: Report<NodeSample>,
    ) -> Vec<AlertEvent> {
        if let Report::Status {
            time,
            status: HostStatus::Gone,
            ..
        } = report
        {
            return self.forget_node(name, time);
        }
        self.add_node(name, host);
        let Some(&i) = self.node_index.get(name) else {
            return Vec::new();
        };
        let rules = self.options.rules;
        let node = &mut self.nodes[i];
        let mut events = Vec::new();
        match report {
            Report::Sample(sample) => {
                let time = sample.time;
                if self.now < time {
                    self.now = time;
                }
                let stats = derive_node(node.cur.as_ref(), &sample);
                node.load_history.push(stats.load[0]);
                if let Some(c) = stats.cpu_total {
                    node.cpu_history.push(c.busy());
                }
                node.history.push(NodePoint {
                    time,
                    load: stats.load,
                    cpu: stats.cpu_total,
                    kinds: !stats.busy_unsplit,
                });
                node.level = rules.load_level(stats.load[0], stats.cores, node.level);
                let level = node.level.map(|sev| {
                    (
                        sev,
                        format!(
                            "load {:.2} on {} cores ({:.2} per core)",
                            stats.load[0], stats.cores, stats.load_per_core
                        ),
                    )
                });
                node.stats = Some(stats);
                node.status = HostStatus::Ok;
                node.message = None;
                node.prev = node.cur.replace(sample);
                events.extend(self.alerts.set(time, name, AlertKind::Load, level));
                events.extend(self.alerts.set(time, name, AlertKind::Unreachable, None));
                events.extend(self.check_direct_routing(Some(i), time));
            }
            Report::Status {
                time,
                status,
                message,
            } => {
                node.status = status;
                node.message = message.clone();
                let level = unreachable_level(status, message.as_deref());
                events.extend(self.alerts.set(time, name, AlertKind::Unreachable, level));
            }
        }
        events
    }

    /// The passing of time: ages grow, and stale data becomes an alert.
    fn pass_time(&mut self, now: Timestamp) -> Vec<AlertEvent> {
        self.age_toast(now);
        if self.mode == Mode::Paused {
            return Vec::new();
        }
        self.now = now;
        self.touch();
        let limit = self.options.interval.as_secs_f64()
            * f64::from(self.options.rules.stale_intervals.max(1));
        let mut events = Vec::new();
        if let Some(last) = self.router.as_ref().and_then(RouterEntry::last_sample) {
            let age = now.seconds_since(last);
            if age > limit {
                self.router_fresh_since = None;
            } else if self.router_fresh_since.is_none() {
                self.router_fresh_since = Some(now);
            }
            let fresh_for = self
                .router_fresh_since
                .map_or(0.0, |since| now.seconds_since(since));
            let stale_now = self.alerts.level("router", AlertKind::Stale).is_some();
            let level = AlertRules::is_stale(age, limit, stale_now, fresh_for).then(|| {
                // The message says what the test says: older than the limit, or late within it.
                let text = if age > limit {
                    format!("router data is {age:.1}s old (over the {limit:.1}s limit)")
                } else {
                    format!("router data came over {limit:.1}s late in the last {limit:.0}s")
                };
                (Severity::Warning, text)
            });
            events.extend(self.alerts.set(now, "router", AlertKind::Stale, level));
        }
        events
    }

    /// Acts on an operator action. Returns what the runtime must do, if anything.
    fn act(&mut self, action: Action) -> Option<Command> {
        self.touch();
        match self.popup_action(action) {
            Some(command) => command,
            None => self.view_action(action),
        }
    }

    /// An action while a popup is open. A confirmation is modal: it takes only apply and cancel.
    /// Help scrolls with the moving keys and closes on its own key or esc; a node's detail
    /// selects among its real servers with the moving keys, acts on one with drain, reweight
    /// and restore, and closes on enter or esc. Any other key closes the popup and acts as it would without it
    /// (`None`): no popup swallows a key that means something.
    fn popup_action(&mut self, action: Action) -> Option<Option<Command>> {
        let popup = self.ui.popup.as_ref()?;
        if let Popup::Confirm(pending) = popup {
            return Some(match action {
                Action::Apply if !pending.cuts_off => {
                    let change = pending.change.clone();
                    let warnings = pending.warnings.clone();
                    self.close_confirm();
                    self.applying = Some(change.clone());
                    Some(Command::Apply {
                        change,
                        force: false,
                        warnings,
                    })
                }
                Action::Back | Action::Quit => {
                    self.close_confirm();
                    None
                }
                _ => None,
            });
        }
        if let Popup::NodeDetail(name) = popup {
            let name = name.clone();
            if let Some(command) = self.detail_action(&name, action) {
                return Some(command);
            }
        }
        if matches!(self.ui.popup, Some(Popup::ServiceDetail)) && self.service_detail_action(action)
        {
            return Some(None);
        }
        let popup = self.ui.popup.as_ref()?;
        let closes = action == Action::Back
            || (matches!(popup, Popup::Help) && action == Action::Help)
            || (matches!(popup, Popup::NodeDetail(_) | Popup::ServiceDetail)
                && matches!(action, Action::Toggle | Action::Detail));
        if matches!(popup, Popup::Help) && self.scroll_help(action) {
            return Some(None);
        }
        self.ui.popup = None;
        closes.then_some(None)
    }

    /// Closes the confirmation, going back to the node detail it was started from, if any.
    fn close_confirm(&mut self) {
        self.ui.popup = match self.ui.popup.take() {
            Some(Popup::Confirm(PendingAction {
                from_node: Some(name),
                ..
            })) => Some(Popup::NodeDetail(name)),
            _ => None,
        };
    }

    /// An action in the node detail of `name`: the moving keys select one of its real servers,
    /// and drain, reweight and restore act on that one as they do from the services pane.
    /// `None` for an action the detail does not take.
    fn detail_action(&mut self, name: &str, action: Action) -> Option<Option<Command>> {
        let reals = self.node_reals(name);
        let at = self.detail_row(&reals);
        let last = reals.len().saturating_sub(1);
        let to = match action {
            Action::Up => at.saturating_sub(1),
            Action::Down => at + 1,
            Action::PageUp | Action::Top => 0,
            Action::PageDown | Action::Bottom => last,
            Action::Drain | Action::Reweight | Action::Restore => {
                self.start_action(action);
                return Some(None);
            }
            _ => return None,
        };
        self.ui.detail_sel = reals
            .get(to.min(last))
            .and_then(|&(s, r)| self.real_key(s, r));
        Some(None)
    }

    /// An action in the service detail: the moving keys move the services pane's selection,
    /// which the detail shows. `false` for an action it does not take.
    fn service_detail_action(&mut self, action: Action) -> bool {
        let delta = match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -(self.ui.page as isize),
            Action::PageDown => self.ui.page as isize,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return false,
        };
        self.move_selection_in(Pane::Services, delta);
        true
    }

    /// The index into `reals` (a node's, [`State::node_reals`]) of the one selected in the
    /// node detail: its first when none is, or the one selected is gone.
    pub fn detail_row(&self, reals: &[(usize, usize)]) -> usize {
        self.ui
            .detail_sel
            .and_then(|sel| {
                reals
                    .iter()
                    .position(|&(s, r)| self.real_key(s, r) == Some(sel))
            })
            .unwrap_or(0)
    }

    /// The service and real server at indices `s`, `r` of the router's current sample.
    fn real_key(&self, s: usize, r: usize) -> Option<(ServiceKey, RealKey)> {
        let svc = self.router.as_ref()?.cur.as_ref()?.services.get(s)?;
        Some((svc.key, RealKey::of(svc.reals.get(r)?)))
    }

    /// The keys listed on the help screen: those of the groups shown in this mode.
    pub(crate) fn help_actions(&self) -> Vec<Action> {
        let shown = Context::shown(self.mode.is_replay());
        Action::ALL
            .iter()
            .copied()
            .filter(|a| shown.contains(&a.context()))
            .collect()
    }

    /// Moves the help screen's selection; `false` for an action that does not move it.
    fn scroll_help(&mut self, action: Action) -> bool {
        let last = self.help_actions().len().saturating_sub(1);
        let at = self.ui.help_line;
        self.ui.help_line = match action {
            Action::Up => at.saturating_sub(1),
            Action::Down => at + 1,
            Action::PageUp => at.saturating_sub(self.ui.page),
            Action::PageDown => at + self.ui.page,
            Action::Top => 0,
            Action::Bottom => last,
            _ => return false,
        }
        .min(last);
        true
    }

    /// An action on the view and its panes, with no popup in the way.
    fn view_action(&mut self, action: Action) -> Option<Command> {
        match action {
            Action::Quit => return Some(Command::Quit),
            Action::Help => {
                self.show_popup(Popup::Help);
                self.ui.help_line = 0;
            }
            // Esc closes the message on screen first, then clears the filter.
            Action::Back if self.ui.toast.take().is_some() => {}
            Action::Back => self.ui.filter.clear(),
            Action::NextPane => self.ui.focus = self.ui.focus.step(true),
            Action::PrevPane => self.ui.focus = self.ui.focus.step(false),
            Action::Up => self.move_selection(-1),
            Action::Down => self.move_selection(1),
            Action::PageUp => self.move_selection(-(self.page_rows() as isize)),
            Action::PageDown => self.move_selection(self.page_rows() as isize),
            Action::Top => self.move_selection(isize::MIN / 2),
            Action::Bottom => self.move_selection(isize::MAX / 2),
            Action::Toggle => self.toggle(),
            Action::Detail => self.open_detail(),
            Action::ExpandAll => self.ui.collapsed.clear(),
            Action::CollapseAll => self.collapse_all(),
            Action::SortNext => match self.ui.focus {
                Pane::Nodes => self.ui.node_sort = cycle(&NodeSort::ORDER, self.ui.node_sort),
                _ => self.ui.service_sort = cycle(&ServiceSort::ORDER, self.ui.service_sort),
            },
            Action::SortReverse => self.ui.reverse = !self.ui.reverse,
            Action::Filter => {
                let text = self.ui.filter.clone();
                self.ui.prompt = Some(Prompt::new(PromptKind::Filter, text));
            }
            Action::Pause => return self.toggle_pause(),
            Action::Refresh => return Some(Command::Refresh),
            Action::ToggleMouse => {
                self.ui.mouse = !self.ui.mouse;
                return Some(Command::SetMouse(self.ui.mouse));
            }
            Action::ToggleRecord if self.mode.is_replay() => {
                self.show_error("recording works in the live view; this is a replay".into());
            }
            Action::ToggleRecord => return Some(Command::ToggleRecord),
            a if a.is_replay() && self.mode.is_replay() => return self.replay_action(a),
            Action::Drain | Action::Reweight | Action::Restore => self.start_action(action),
            // Nothing is being confirmed.
            Action::Apply => {}
            // Only the replay actions are left here (`Action::is_replay`), outside a replay.
            _ => self.show_error("seek, step and speed work in replay mode".into()),
        }
        None
    }

    /// Whether keys are text for a prompt (filter, go-to time, weight, typed confirmation) rather
    /// than actions.
    pub fn wants_text(&self) -> bool {
        self.ui.prompt.is_some()
    }

    /// A key typed into the open prompt.
    fn type_text(&mut self, input: TextInput) -> Option<Command> {
        let mut prompt = self.ui.prompt.take()?;
        self.touch();
        match prompt.edit(input) {
            Edit::Typing => {
                if prompt.kind == PromptKind::Filter {
                    self.ui.filter.clone_from(&prompt.text);
                }
                self.ui.prompt = Some(prompt);
                None
            }
            Edit::Cancel => {
                match prompt.kind {
                    PromptKind::Filter => self.ui.filter.clear(),
                    PromptKind::Confirm(_) => self.close_confirm(),
                    PromptKind::GoTo | PromptKind::Weight { .. } => {}
                }
                None
            }
            Edit::Accept => self.accept(prompt),
        }
    }

    /// Enter on a prompt.
    fn accept(&mut self, prompt: Prompt) -> Option<Command> {
        match prompt.kind {
            PromptKind::Filter => None,
            PromptKind::GoTo => {
                let start = self.replay.as_ref().map_or(self.now, |r| r.start);
                let current = self.replay.as_ref().map_or(self.now, |r| r.position);
                match crate::model::time::parse(&prompt.text, start, current) {
                    Ok(t) => Some(Command::Seek(SeekTo::At(t))),
                    Err(e) => {
                        self.show_error(e);
                        None
                    }
                }
            }
            PromptKind::Weight { service, real } => {
                match prompt.text.parse::<i64>() {
                    Ok(w) => self.plan_and_confirm(ActionKind::Reweight, service, real, w),
                    // Nothing typed yet: the prompt stays.
                    Err(_) => self.ui.prompt = Some(prompt),
                }
                None
            }
            PromptKind::Confirm(change) => {
                let warnings = match &self.ui.popup {
                    Some(Popup::Confirm(p)) => p.warnings.clone(),
                    _ => Vec::new(),
                };
                self.close_confirm();
                if prompt.text.trim() == change.service.to_string() {
                    self.applying = Some(change.clone());
                    return Some(Command::Apply {
                        change,
                        force: true,
                        warnings,
                    });
                }
                self.show_error(format!(
                    "\"{}\" is not {}: nothing was changed",
                    prompt.text, change.service
                ));
                None
            }
        }
    }

    /// The question a weight change is confirmed with, naming the router it changes:
    /// `drain 10.77.0.11:80 of tcp:10.77.1.100:80 on lb1?`
    pub(crate) fn confirm_question(&self, change: &WeightChange) -> String {
        let router = match self.router.as_ref().map(|r| r.host.as_str()) {
            None | Some("local") => "local (this machine)",
            Some(host) => host,
        };
        let router = match self.pair.as_ref().map(|p| p.master) {
            Some(crate::model::pair::Master::One(_)) => format!("{router}, the master"),
            _ => router.to_string(),
        };
        let (real, service) = (change.real, change.service);
        match change.kind {
            ActionKind::Drain => format!("drain {real} of {service} on {router}?"),
            ActionKind::Reweight => {
                format!(
                    "set the weight of {real} of {service} on {router} to {}?",
                    change.to
                )
            }
            ActionKind::Restore => {
                format!(
                    "restore {real} of {service} on {router} to weight {}?",
                    change.to
                )
            }
        }
    }

    /// The real server the action keys act on: the one selected in the open node detail, or
    /// else in the services pane, if a real server row is selected there.
    pub fn selected_real(&self) -> Option<(ServiceKey, RealKey)> {
        if let Some(Popup::NodeDetail(name)) = &self.ui.popup {
            let reals = self.node_reals(name);
            return reals
                .get(self.detail_row(&reals))
                .and_then(|&(s, r)| self.real_key(s, r));
        }
        match self.ui.service_sel {
            Some(ServiceSelection::Real(k, address, port)) if self.ui.focus == Pane::Services => {
                Some((k, RealKey { address, port }))
            }
            _ => None,
        }
    }

    fn start_action(&mut self, action: Action) {
        if let Some(reason) = self.options.read_only_reason() {
            self.show_error(reason.to_string());
            return;
        }
        // node_exporter's metrics are a view, not a way to the router (nor the method a change
        // must send back).
        if self
            .router()
            .and_then(|r| r.cur.as_ref())
            .is_some_and(|c| c.source == crate::model::sample::RouterSourceKind::Prometheus)
        {
            self.show_error(PlanError::Prometheus.to_string());
            return;
        }
        let Some((service, real)) = self.selected_real() else {
            let why = match &self.ui.popup {
                Some(Popup::NodeDetail(name)) => format!("{name} is no real server of a service"),
                _ => "select a real server in the services pane first".into(),
            };
            self.show_error(why);
            return;
        };
        if self.applying.is_some() {
            self.show_error("another change is being applied; wait for its result".into());
            return;
        }
        match action {
            Action::Drain => self.plan_and_confirm(ActionKind::Drain, service, real, 0),
            Action::Reweight => {
                self.ui.prompt = Some(Prompt::new(
                    PromptKind::Weight { service, real },
                    String::new(),
                ));
            }
            _ => match self.restore_points.get(&(service, real)) {
                Some(&w) => {
                    self.plan_and_confirm(ActionKind::Restore, service, real, i64::from(w));
                }
                None => self.show_error(
                    PlanError::NothingToRestore {
                        service: service.to_string(),
                        real: real.to_string(),
                    }
                    .to_string(),
                ),
            },
        }
    }

    fn plan_and_confirm(&mut self, kind: ActionKind, service: ServiceKey, real: RealKey, to: i64) {
        let table = self
            .router
            .as_ref()
            .and_then(|r| r.cur.as_ref())
            .map_or(&[][..], |c| &c.services[..]);
        match plan::plan(table, kind, &service, &real, to) {
            Ok(change) => {
                let from_node = match &self.ui.popup {
                    Some(Popup::NodeDetail(name)) => Some(name.clone()),
                    _ => None,
                };
                let cut = change.to == 0
                    && plan::find(table, &service, &real)
                        .is_ok_and(|(svc, _)| cuts_off(svc, &real));
                if cut {
                    self.ui.prompt = Some(Prompt::new(
                        PromptKind::Confirm(change.clone()),
                        String::new(),
                    ));
                }
                let warnings = self.change_warnings(&change);
                self.show_popup(Popup::Confirm(PendingAction {
                    change,
                    cuts_off: cut,
                    from_node,
                    warnings,
                }));
            }
            Err(e) => self.show_error(e.to_string()),
        }
    }

    /// Replay: a recorded action that was carried out marks its real server as live did (a
    /// drain counts its connections down, anything else ends that), without a popup. One whose
    /// service or real server does not parse is left out.
    fn recorded(&mut self, action: &crate::record::ActionRecord) {
        if action.result != crate::record::ActionOutcome::Done {
            return;
        }
        let (Ok(service), Ok(real)) = (
            plan::parse_service(&action.service),
            action.real.parse::<RealKey>(),
        ) else {
            return;
        };
        let key = (service, real);
        if action.new_weight == 0 {
            self.restore_points.insert(key, action.old_weight);
            self.draining.insert(key);
        } else {
            self.draining.remove(&key);
        }
        self.touch();
    }

    /// The outcome of an applied change. Returns a refresh so the table shows it at once.
    fn applied(&mut self, change: &WeightChange, result: Result<(), String>) -> Option<Command> {
        self.touch();
        self.applying = None;
        let key = (change.service, change.real);
        match result {
            Ok(()) => {
                if change.kind == ActionKind::Drain {
                    self.restore_points.insert(key, change.from);
                    self.draining.insert(key);
                } else {
                    self.draining.remove(&key);
                }
                self.show_message(format!("done: {change}"));
            }
            Err(e) => self.show_error(format!("{change} failed: {e}")),
        }
        Some(Command::Refresh)
    }

    /// The replay keys: commands for the runtime's player, with the mode kept up to date.
    fn replay_action(&mut self, action: Action) -> Option<Command> {
        let Mode::Replay { paused, speed } = self.mode else {
            return None;
        };
        match action {
            Action::StepForward | Action::StepBack => {
                self.mode = Mode::Replay {
                    paused: true,
                    speed,
                };
                Some(Command::Step(if action == Action::StepForward {
                    1
                } else {
                    -1
                }))
            }
            Action::SeekForward => Some(Command::Seek(SeekTo::By(10_000))),
            Action::SeekBack => Some(Command::Seek(SeekTo::By(-10_000))),
            Action::SeekForwardLong => Some(Command::Seek(SeekTo::By(60_000))),
            Action::SeekBackLong => Some(Command::Seek(SeekTo::By(-60_000))),
            Action::GoToTime => {
                self.ui.prompt = Some(Prompt::new(PromptKind::GoTo, String::new()));
                None
            }
            Action::NextMark => self.seek_mark(true),
            Action::PrevMark => self.seek_mark(false),
            Action::SpeedUp | Action::SpeedDown => {
                let speed = if action == Action::SpeedUp {
                    speed.faster()
                } else {
                    speed.slower()
                };
                self.mode = Mode::Replay { paused, speed };
                Some(Command::SetSpeed(speed))
            }
            _ => None,
        }
    }

    /// Replay: a seek to the first alert or action mark after the position (`forward`) or the
    /// last one before it; a message when there is none that way.
    fn seek_mark(&mut self, forward: bool) -> Option<Command> {
        let r = self.replay.as_ref()?;
        let times = r.marks.iter().map(|&(t, _)| t);
        let mark = if forward {
            times.filter(|&t| t > r.position).min()
        } else {
            times.filter(|&t| t < r.position).max()
        };
        if mark.is_none() {
            self.show_message(format!(
                "no alert or action {} this point of the recording",
                if forward { "after" } else { "before" }
            ));
        }
        mark.map(|t| Command::Seek(SeekTo::At(t)))
    }

    fn toggle_pause(&mut self) -> Option<Command> {
        if let Mode::Replay { paused, speed } = self.mode {
            self.mode = Mode::Replay {
                paused: !paused,
                speed,
            };
            return Some(Command::SetPaused(!paused));
        }
        match self.mode {
            Mode::Live => self.mode = Mode::Paused,
            Mode::Paused => {
                self.mode = Mode::Live;
                for event in std::mem::take(&mut self.held) {
                    self.apply(event);
                }
            }
            Mode::Replay { .. } => {}
        }
        None
    }

    /// Collapses every service; a selected real server gives the selection to its service.
    fn collapse_all(&mut self) {
        if let Some(r) = &self.router
            && let Some(cur) = &r.cur
        {
            self.ui.collapsed = cur.services.iter().map(|s| s.key).collect();
        }
        if let Some(ServiceSelection::Real(k, ..)) = self.ui.service_sel {
            self.ui.service_sel = Some(ServiceSelection::Service(k));
        }
    }

    /// Enter: a service expands or collapses; a real server or a node opens its detail.
    fn toggle(&mut self) {
        match (self.ui.focus, self.ui.service_sel) {
            (Pane::Services, Some(ServiceSelection::Service(k))) => {
                if !self.ui.collapsed.remove(&k) {
                    self.ui.collapsed.insert(k);
                }
            }
            (Pane::Services, Some(ServiceSelection::Real(..))) | (Pane::Nodes, _) => {
                self.open_detail();
            }
            (Pane::Services, None) | (Pane::Alerts, _) => {}
        }
    }

    /// Opens the detail of what the focused pane has selected (its first row when none is): a
    /// service's or real server's, or a node's.
    fn open_detail(&mut self) {
        match self.ui.focus {
            Pane::Services => {
                if self.ui.service_sel.is_none() {
                    self.move_selection_in(Pane::Services, 1);
                }
                if self.ui.service_sel.is_some() {
                    self.show_popup(Popup::ServiceDetail);
                }
            }
            Pane::Nodes => {
                if let Some(name) = self.selected_node_name() {
                    self.ui.detail_sel = None;
                    self.show_popup(Popup::NodeDetail(name));
                }
            }
            Pane::Alerts => {}
        }
    }

    /// The rows a page key moves: the focused pane's height as last drawn, if it has been.
    fn page_rows(&self) -> usize {
        match self.ui.view.pane(self.ui.focus).rows {
            0 => self.ui.page,
            rows => rows,
        }
    }

    fn move_selection(&mut self, delta: isize) {
        self.move_selection_in(self.ui.focus, delta);
    }

    /// Moves the selection of `pane` (focused or not) by `delta` rows.
    fn move_selection_in(&mut self, pane: Pane, delta: isize) {
        let step = |cur: Option<usize>, len: usize| -> Option<usize> {
            if len == 0 {
                return None;
            }
            let base = cur.map_or(if delta >= 0 { -1 } else { len as isize }, |c| c as isize);
            Some(base.saturating_add(delta).clamp(0, len as isize - 1) as usize)
        };
        match pane {
            Pane::Services => {
                let rows = self.service_rows();
                let cur = self.selected_service_row(&rows);
                if let Some(i) = step(cur, rows.len()) {
                    self.ui.service_sel = self.row_identity(rows[i]);
                }
            }
            Pane::Nodes => {
                let rows = self.node_rows();
                let cur = self.selected_node_row(&rows);
                if let Some(i) = step(cur, rows.len()) {
                    self.ui.node_sel = Some(self.nodes[rows[i]].name.clone());
                }
            }
            Pane::Alerts => {
                let len = self.alerts.lines(usize::MAX).len();
                self.ui.alert_sel = step(Some(self.ui.alert_sel), len).unwrap_or(0);
            }
        }
    }

    fn row_identity(&self, row: ServiceRow) -> Option<ServiceSelection> {
        let cur = self.router.as_ref()?.cur.as_ref()?;
        Some(match row {
            ServiceRow::Service(s) => ServiceSelection::Service(cur.services.get(s)?.key),
            ServiceRow::Real(s, r) => {
                let svc = cur.services.get(s)?;
                let real = svc.reals.get(r)?;
                ServiceSelection::Real(svc.key, real.address, real.port)
            }
        })
    }

    /// The index into `rows` of the selected services row.
    pub(crate) fn selected_service_row(&self, rows: &[ServiceRow]) -> Option<usize> {
        let sel = self.ui.service_sel?;
        rows.iter().position(|&r| self.row_identity(r) == Some(sel))
    }

    /// The index into `rows` of the selected node.
    pub fn selected_node_row(&self, rows: &[usize]) -> Option<usize> {
        let sel = self.ui.node_sel.as_deref()?;
        rows.iter().position(|&i| self.nodes[i].name == sel)
    }

    fn selected_node_name(&self) -> Option<String> {
        let rows = self.node_rows();
        let i = self
            .selected_node_row(&rows)
            .or((!rows.is_empty()).then_some(0))?;
        Some(self.nodes[rows[i]].name.clone())
    }

    /// The services tree as shown ([`rows::service_rows`]).
    pub fn service_rows(&self) -> Vec<ServiceRow> {
        rows::service_rows(self.router.as_ref(), &self.ui, |addr| {
            self.node_for_real(addr)
        })
    }

    /// The nodes whose CPU detail is on screen: the node detail's, then the node list's rows in
    /// the last frame. A source that gives per-node sums asks these for their per-core lines.
    pub fn nodes_in_view(&self) -> Vec<String> {
        let mut names: Vec<String> = match &self.ui.popup {
            Some(Popup::NodeDetail(name)) => vec![name.clone()],
            _ => Vec::new(),
        };
        let view = self.ui.view.nodes;
        for &i in self.node_rows().iter().skip(view.first).take(view.rows) {
            if let Some(n) = self.nodes.get(i)
                && !names.contains(&n.name)
            {
                names.push(n.name.clone());
            }
        }
        names
    }

    /// Indices into `nodes`, filtered and sorted as shown ([`rows::node_rows`]).
    pub fn node_rows(&self) -> Vec<usize> {
        rows::node_rows(&self.nodes, &self.ui)
    }

    /// The real servers of node `name` across services, as `(service, real)` indices into the
    /// router's current sample ([`rows::node_reals`]).
    pub fn node_reals(&self, name: &str) -> Vec<(usize, usize)> {
        rows::node_reals(self.router.as_ref(), |addr| {
            self.node_for_real(addr).is_some_and(|n| n.name == name)
        })
    }

    /// The node whose address is this real server's, if one is watched.
    pub(crate) fn node_for_real(&self, addr: IpAddr) -> Option<&NodeEntry> {
        self.node_by_addr
            .get(&addr)
            .and_then(|&i| self.nodes.get(i))
    }

    /// How old a source's newest data is, in seconds.
    pub(crate) fn age_of(&self, last: Option<Timestamp>) -> Option<f64> {
        last.map(|t| self.now.seconds_since(t).max(0.0))
    }
}

/// Keys typed while a prompt is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextInput {
    Char(char),
    Backspace,
    Accept,
    Cancel,
}

/// The alert a host's status raises: critical whenever lbtop gets no numbers from it. `Error`
/// is critical too: it also stands for a failed SSH handshake, a refused session and a
/// Prometheus that answers every query with an error, where nothing of the host is known.
fn unreachable_level(status: HostStatus, message: Option<&str>) -> Option<(Severity, String)> {
    let severity = match status {
        HostStatus::Ok | HostStatus::Connecting | HostStatus::Gone => return None,
        HostStatus::Error
        | HostStatus::Unreachable
        | HostStatus::AuthFailed
        | HostStatus::HostKeyUnknown
        | HostStatus::HostKeyChanged => Severity::Critical,
    };
    let text = match message {
        Some(m) => format!("{}: {m}", status.as_str()),
        None => status.as_str().to_string(),
    };
    Some((severity, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{RouterSourceKind, SourceEvent};

    fn router_sample(ms: i64) -> SourceEvent {
        SourceEvent::Router {
            host: "r".into(),
            report: Report::Sample(RouterSample {
                ipvs: None,
                parts: Default::default(),
                sysctl: None,
                addrs: None,
                owners: None,
                sync: None,
                time: Timestamp(ms),
                source: RouterSourceKind::Proc,
                services: Vec::new(),
                global: None,
                connections: None,
                notes: Vec::new(),
            }),
        }
    }

    #[test]
    fn router_data_older_than_three_intervals_is_an_alert_that_clears_after_fresh_data() {
        let mut s = State::new(StateOptions::default());
        s.ingest(router_sample(10_000));
        assert!(
            s.tick(Timestamp(12_900)).is_empty(),
            "2.9 s is within 3 intervals"
        );
        let raised = s.tick(Timestamp(13_100));
        assert!(
            raised
                .iter()
                .any(|e| e.raised && e.kind == AlertKind::Stale)
        );
        // New data: the alert holds until the data has been fresh for the whole limit (3 s).
        let stale_cleared = |events: &[AlertEvent]| {
            events
                .iter()
                .any(|e| !e.raised && e.kind == AlertKind::Stale)
        };
        assert!(!stale_cleared(&s.ingest(router_sample(13_200))));
        assert!(!stale_cleared(&s.tick(Timestamp(13_300))));
        s.ingest(router_sample(14_200));
        s.ingest(router_sample(15_200));
        assert!(!stale_cleared(&s.tick(Timestamp(15_300))));
        s.ingest(router_sample(16_200));
        assert!(stale_cleared(&s.tick(Timestamp(16_300))));
    }

    #[test]
    fn a_router_error_shows_in_its_pane_but_a_lost_connection_alerts() {
        let mut s = State::new(StateOptions::default());
        let status = |status| SourceEvent::Router {
            host: "r".into(),
            report: Report::Status {
                time: Timestamp(1),
                status,
                message: Some("why".into()),
            },
        };
        assert!(s.ingest(status(HostStatus::Error)).is_empty());
        assert_eq!(
            s.router.as_ref().and_then(|r| r.message.as_deref()),
            Some("why")
        );
        let events = s.ingest(status(HostStatus::Unreachable));
        assert!(
            events
                .iter()
                .any(|e| e.raised && e.severity == Severity::Critical)
        );
    }

    #[test]
    fn actions_on_a_router_read_from_prometheus_are_refused_with_the_reason() {
        use crate::model::sample::{Forward, RealServerSample, ServiceKey, VirtualServiceSample};
        let key: ServiceKey =
            crate::control::plan::parse_service("tcp:10.0.0.100:80").expect("service");
        let address: IpAddr = "10.0.0.11".parse().expect("address");
        let mut s = State::new(StateOptions::default());
        let SourceEvent::Router { host, report } = router_sample(1_000) else {
            panic!("a router event");
        };
        let Report::Sample(mut sample) = report else {
            panic!("a sample");
        };
        sample.source = RouterSourceKind::Prometheus;
        sample.services = vec![VirtualServiceSample {
            key,
            scheduler: None,
            persistent: None,
            ops: false,
            totals: None,
            rates: None,
            flags: None,
            pe_name: None,
            reals: vec![RealServerSample {
                address,
                port: 80,
                forward: Forward::Unknown,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
                active_conns: 0,
                inactive_conns: 0,
                persistent_conns: None,
                totals: None,
                rates: None,
                tunnel: None,
            }],
        }];
        s.ingest(SourceEvent::Router {
            host,
            report: Report::Sample(sample),
        });
        s.ui.focus = Pane::Services;
        s.ui.service_sel = Some(ServiceSelection::Real(key, address, 80));
        assert!(s.update(Action::Drain).is_none());
        let toast = s.ui.toast.as_ref().map(|t| t.text.as_str()).unwrap_or("");
        assert!(toast.contains("read from Prometheus"), "{toast}");
        assert!(s.ui.popup.is_none(), "no confirmation");
    }

    #[test]
    fn pause_holds_source_events_and_resume_applies_them_in_order() {
        let mut s = State::new(StateOptions::default());
        s.ingest(router_sample(1_000));
        s.update(Action::Pause);
        s.ingest(router_sample(2_000));
        s.ingest(router_sample(3_000));
        assert_eq!(
            s.router.as_ref().and_then(RouterEntry::last_sample),
            Some(Timestamp(1_000))
        );
        s.update(Action::Pause);
        assert_eq!(
            s.router.as_ref().and_then(RouterEntry::last_sample),
            Some(Timestamp(3_000))
        );
        assert_eq!(
            s.router
                .as_ref()
                .and_then(|r| r.prev.as_ref())
                .map(|p| p.time),
            Some(Timestamp(2_000))
        );
    }

    fn node_sample(ms: i64, load: f64) -> SourceEvent {
        use crate::model::sample::{CpuTimes, LoadAvg, ProcStat};
        SourceEvent::Node {
            name: "web1".into(),
            host: "10.0.0.2".into(),
            report: Report::Sample(NodeSample {
                time: Timestamp(ms),
                stat: ProcStat {
                    cpus: vec![CpuTimes::default(); 4],
                    cpu_ids: (0..4).collect(),
                    ..ProcStat::default()
                },
                load: LoadAvg {
                    one: load,
                    ..LoadAvg::default()
                },
                ..NodeSample::default()
            }),
        }
    }

    #[test]
    fn restored_alerts_carry_the_load_level_and_its_hysteresis_on() {
        // Live: critical at 4.5 on 4 cores, and 3.9 is still inside the hysteresis band.
        let mut live = State::new(StateOptions::default());
        live.add_node("web1", "10.0.0.2");
        let raised = live.ingest(node_sample(1_000, 4.5));
        assert_eq!(live.ingest(node_sample(2_000, 3.9)), vec![]);
        // A seek restores the events before its warm-up, then plays the warm-up.
        let mut sought = State::new(StateOptions::default());
        sought.add_node("web1", "10.0.0.2");
        sought.restore_alerts(raised);
        assert_eq!(sought.nodes[0].level, Some(Severity::Critical));
        assert_eq!(sought.ingest(node_sample(2_000, 3.9)), vec![]);
        assert_eq!(sought.alerts.log(), live.alerts.log());
        assert_eq!(sought.nodes[0].level, live.nodes[0].level);
        // A node first seen after the restore takes its level from the alerts too.
        let mut late = State::new(StateOptions::default());
        late.restore_alerts(live.alerts.log().to_vec());
        late.ingest(node_sample(2_000, 3.9));
        assert_eq!(late.nodes[0].level, Some(Severity::Critical));
    }

    fn node_status(name: &str, host: &str, ms: i64, status: HostStatus) -> SourceEvent {
        SourceEvent::Node {
            name: name.into(),
            host: host.into(),
            report: Report::Status {
                time: Timestamp(ms),
                status,
                message: Some("why".into()),
            },
        }
    }

    #[test]
    fn a_gone_node_is_forgotten_with_its_alerts_and_can_come_back_afresh() {
        let mut s = State::new(StateOptions::default());
        s.add_node("web0", "10.0.0.1");
        s.ingest(node_sample(1_000, 4.5));
        s.add_node("web2", "10.0.0.3");
        assert!(
            s.ingest(node_status(
                "web0",
                "10.0.0.1",
                1_000,
                HostStatus::Unreachable
            ))
            .iter()
            .any(|e| e.raised && e.severity == Severity::Critical)
        );
        s.ui.node_sel = Some("web1".into());
        s.ui.popup = Some(Popup::NodeDetail("web1".into()));
        assert_eq!(s.alerts.worst("web1"), Some(Severity::Critical));
        let cleared = s.ingest(node_status("web1", "10.0.0.2", 2_000, HostStatus::Gone));
        assert!(
            !cleared.is_empty() && cleared.iter().all(|e| !e.raised && e.subject == "web1"),
            "its load alert cleared: {cleared:?}"
        );
        assert!(s.node("web1").is_none());
        assert_eq!(s.alerts.worst("web1"), None);
        assert_eq!(
            s.alerts.worst("web0"),
            Some(Severity::Critical),
            "others kept"
        );
        assert_eq!(s.ui.node_sel, None);
        assert_eq!(s.ui.popup, None);
        // The others are found by name and by address as before.
        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["web0", "web2"]);
        for (name, addr) in [("web0", "10.0.0.1"), ("web2", "10.0.0.3")] {
            let i = s.node_by_addr[&addr.parse::<IpAddr>().expect("addr")];
            assert_eq!(s.nodes[i].name, name);
            assert_eq!(s.node(name).map(|n| n.name.as_str()), Some(name));
        }
        assert!(
            !s.node_by_addr
                .contains_key(&"10.0.0.2".parse::<IpAddr>().expect("addr"))
        );
        // Gone again, or never known: nothing.
        assert!(
            s.ingest(node_status("web1", "10.0.0.2", 2_500, HostStatus::Gone))
                .is_empty()
        );
        assert!(
            s.node("web1").is_none(),
            "a gone status does not declare it"
        );
        // Back: a new entry, its history from its new samples only.
        s.ingest(node_sample(3_000, 1.0));
        let back = s.node("web1").expect("back");
        assert_eq!(back.history.iter().count(), 1);
        assert_eq!(back.level, None);
    }

    #[test]
    fn a_gone_node_without_an_entry_still_has_its_restored_alerts_cleared() {
        // After a seek: the alert from before the warm-up, no event of the node in it.
        let mut live = State::new(StateOptions::default());
        let raised = live.ingest(node_status(
            "web9",
            "10.0.0.9",
            1_000,
            HostStatus::Unreachable,
        ));
        let mut sought = State::new(StateOptions::default());
        sought.restore_alerts(raised);
        assert_eq!(sought.alerts.worst("web9"), Some(Severity::Critical));
        let cleared = sought.ingest(node_status("web9", "10.0.0.9", 9_000, HostStatus::Gone));
        assert_eq!(cleared.len(), 1);
        assert_eq!(sought.alerts.worst("web9"), None);
        assert!(sought.node("web9").is_none(), "not declared by it");
    }

    #[test]
    fn a_second_node_at_a_gone_nodes_address_takes_the_address() {
        let mut s = State::new(StateOptions::default());
        s.add_node("a", "10.0.0.1");
        s.add_node("b", "10.0.0.2");
        s.add_node("c", "10.0.0.1");
        let addr = |t: &str| t.parse::<IpAddr>().expect("addr");
        assert_eq!(
            s.node_for_real(addr("10.0.0.1")).map(|n| n.name.as_str()),
            Some("a")
        );
        s.ingest(node_status("a", "10.0.0.1", 1_000, HostStatus::Gone));
        assert_eq!(
            s.node_for_real(addr("10.0.0.1")).map(|n| n.name.as_str()),
            Some("c")
        );
        assert_eq!(
            s.node_for_real(addr("10.0.0.2")).map(|n| n.name.as_str()),
            Some("b")
        );
        s.ingest(node_status("b", "10.0.0.2", 1_000, HostStatus::Gone));
        assert_eq!(
            s.node_for_real(addr("10.0.0.1")).map(|n| n.name.as_str()),
            Some("c")
        );
        assert!(s.node_for_real(addr("10.0.0.2")).is_none());
        assert_eq!(s.node("c").map(|n| n.name.as_str()), Some("c"));
    }

    #[test]
    fn a_full_pause_drops_old_samples_before_any_status() {
        let mut s = State::new(StateOptions::default());
        s.ingest(node_sample(500, 1.0));
        s.update(Action::Pause);
        s.ingest(node_status("web1", "10.0.0.2", 1_000, HostStatus::Gone));
        for i in 0..HELD_LIMIT {
            s.ingest(router_sample(2_000 + i as i64));
        }
        assert_eq!(s.held.len(), HELD_LIMIT);
        assert!(
            s.held.iter().any(|e| matches!(
                e,
                SourceEvent::Node {
                    report: Report::Status { .. },
                    ..
                }
            )),
            "the status is held"
        );
        s.update(Action::Pause);
        assert!(s.node("web1").is_none(), "forgotten on resume");
    }

    #[test]
    fn a_nodes_history_keeps_each_samples_time_and_its_three_load_averages() {
        let mut s = State::new(StateOptions::default());
        s.ingest(node_sample(1_000, 2.0));
        s.ingest(node_sample(2_000, 3.0));
        let points: Vec<NodePoint> = s.nodes[0].history.iter().collect();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].time, Timestamp(2_000));
        assert_eq!(points[1].load[0], 3.0);
        assert_eq!(points[1].load.len(), 3);
    }

    fn cluster() -> State {
        use crate::testing::scripted::{ClusterShape, ScriptedCluster};
        let shape = ClusterShape {
            nodes: 6,
            cores: 4,
            services: 3,
            reals_per_service: 3,
        };
        let mut cluster = ScriptedCluster::new(shape, 7);
        let mut s = State::new(StateOptions::default());
        for _ in 0..3 {
            for e in cluster.step() {
                s.ingest(e);
            }
        }
        s
    }

    #[test]
    fn services_and_real_servers_keep_a_traffic_history_and_gone_ones_are_forgotten() {
        let mut s = cluster();
        let router = s.router.as_ref().expect("a router");
        let cur = router.cur.as_ref().expect("a sample");
        let svc = &cur.services[0];
        let real = RealKey::of(&svc.reals[0]);
        // Three samples: the first has no rates yet.
        assert_eq!(router.traffic.service(&svc.key).map(Ring::len), Some(2));
        let points: Vec<_> = router
            .traffic
            .real(svc.key, real)
            .expect("the real server's history")
            .iter()
            .collect();
        assert_eq!(points.len(), 2);
        assert_eq!(points[1].time, cur.time);
        let reals: usize = cur.services.iter().map(|s| s.reals.len()).sum();
        assert_eq!(router.traffic.reals.len(), reals);
        // The router drops every service: their histories go with them.
        s.ingest(router_sample(cur.time.0 + 1_000));
        let traffic = &s.router.as_ref().expect("a router").traffic;
        assert!(traffic.services.is_empty() && traffic.reals.is_empty());
    }

    #[test]
    fn a_nodes_real_servers_are_those_at_its_address_across_services() {
        let s = cluster();
        let node = &s.nodes[0];
        let reals = s.node_reals(&node.name);
        assert!(reals.len() >= 2, "{reals:?}");
        let services = &s
            .router
            .as_ref()
            .and_then(|r| r.cur.as_ref())
            .expect("a router sample")
            .services;
        for &(svc, real) in &reals {
            let addr = services[svc].reals[real].address;
            assert_eq!(s.node_for_real(addr).map(|n| &n.name), Some(&node.name));
        }
        let distinct: HashSet<usize> = reals.iter().map(|&(svc, _)| svc).collect();
        assert_eq!(distinct.len(), reals.len(), "one per service here");
    }

    #[test]
    fn the_node_detail_selection_is_what_drain_acts_on_and_the_detail_comes_back() {
        let mut s = cluster();
        let name = s.nodes[0].name.clone();
        s.show_popup(Popup::NodeDetail(name.clone()));
        let first = s
            .selected_real()
            .expect("its first real server, with none selected");
        s.update(Action::Down);
        let second = s.selected_real().expect("selected");
        assert_ne!(first, second);
        assert_eq!(
            s.ui.popup,
            Some(Popup::NodeDetail(name.clone())),
            "down stays in it"
        );
        assert!(s.update(Action::Drain).is_none());
        let Some(Popup::Confirm(pending)) = &s.ui.popup else {
            panic!("no confirmation: {:?}", s.ui.popup);
        };
        assert_eq!((pending.change.service, pending.change.real), second);
        assert_eq!(pending.change.to, 0);
        let command = s.update(Action::Apply);
        assert!(matches!(command, Some(Command::Apply { force: false, .. })));
        assert_eq!(s.ui.popup, Some(Popup::NodeDetail(name)));
    }
}
