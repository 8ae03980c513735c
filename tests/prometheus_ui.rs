//! A node with per-node CPU sums only (what Prometheus gives for a fleet too large to ask for
//! every core): the list and the detail say so instead of drawing cores they do not have, and the
//! node whose detail is open is the first the source is asked per-core lines for. A router from
//! Prometheus: `?` for what node_exporter does not export, and the action keys refused.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::{State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::{CpuTimes, NodeSample, ProcStat, Report, SourceEvent, Timestamp};
use lbtop::runtime::handle_key;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn sums(time: i64, busy: u64, idle: u64) -> SourceEvent {
    SourceEvent::Node {
        name: "10.0.0.7:9100".into(),
        host: "10.0.0.7".into(),
        report: Report::Sample(NodeSample {
            time: Timestamp(time),
            stat: ProcStat {
                total: CpuTimes {
                    user: busy,
                    idle,
                    ..CpuTimes::default()
                },
                online_cores: Some(32),
                ..ProcStat::default()
            },
            ..NodeSample::default()
        }),
    }
}

fn render(state: &State) -> String {
    let mut terminal = Terminal::new(TestBackend::new(160, 50)).expect("backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    terminal.backend().to_string()
}

#[test]
fn per_node_sums_are_shown_as_such_in_the_list_and_the_detail() {
    let mut state = State::new(StateOptions::default());
    state.ingest(sums(1_000, 1_000, 3_000));
    // 32 cores for 1 s: 3,200 jiffies, a quarter of them busy.
    state.ingest(sums(2_000, 1_800, 5_400));
    state.tick(Timestamp(2_000));
    let node = state.node("10.0.0.7:9100").and_then(|n| n.stats.clone());
    let node = node.expect("derived");
    assert_eq!(node.cores, 32);
    assert_eq!(node.cpu_detail(), "per-node");
    assert!((node.cpu_total.expect("total").busy() - 25.0).abs() < 1e-9);
    let list = render(&state);
    assert!(list.contains("per-node"), "{list}");
    let keymap = Keymap::defaults();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    handle_key(&mut state, &keymap, key(KeyCode::Tab));
    handle_key(&mut state, &keymap, key(KeyCode::Enter));
    let detail = render(&state);
    assert_eq!(
        state.nodes_in_view().first().map(String::as_str),
        Some("10.0.0.7:9100")
    );
    assert!(detail.contains("all  32["), "{detail}");
    assert!(detail.contains(" 25.0%]"), "{detail}");
    assert!(
        detail.contains("per-node sums: the source gave no per-core detail"),
        "{detail}"
    );
}

fn busy_only(time: i64, busy: u64, idle: u64, cores: u32) -> SourceEvent {
    let SourceEvent::Node {
        name,
        host,
        report: Report::Sample(mut sample),
    } = sums(time, busy, idle)
    else {
        unreachable!("sums gives a sample");
    };
    sample.stat.online_cores = Some(cores);
    sample.stat.busy_unsplit = true;
    SourceEvent::Node {
        name,
        host,
        report: Report::Sample(sample),
    }
}

fn total_of(state: &State) -> Option<lbtop::model::snapshot::CpuPercent> {
    state
        .node("10.0.0.7:9100")
        .and_then(|n| n.stats.clone())
        .expect("derived")
        .cpu_total
}

#[test]
fn busy_only_nodes_say_so_and_a_change_of_their_detail_is_not_taken_for_load() {
    let mut state = State::new(StateOptions::default());
    state.ingest(busy_only(1_000, 1_000, 2_200, 32));
    // 32 cores for 1 s: 3,200 jiffies; 1,600 busy, 1,600 idle.
    state.ingest(busy_only(2_000, 2_600, 3_800, 32));
    state.tick(Timestamp(2_000));
    let node = state.node("10.0.0.7:9100").and_then(|n| n.stats.clone());
    let node = node.expect("derived");
    assert_eq!(node.cpu_detail(), "busy-only");
    let total = node.cpu_total.expect("total");
    assert!((total.busy() - 50.0).abs() < 1e-9, "{total:?}");
    let list = render(&state);
    // The cores column, 8 cells wide here.
    assert!(list.contains(" busy "), "{list}");
    let keymap = Keymap::defaults();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    handle_key(&mut state, &keymap, key(KeyCode::Tab));
    handle_key(&mut state, &keymap, key(KeyCode::Enter));
    let detail = render(&state);
    assert!(detail.contains(" 50.0%]"), "{detail}");
    assert!(detail.contains("busy only: the source gave"), "{detail}");

    // The cores' time is two clock readings: a jitter that takes the busy time back is none.
    state.ingest(busy_only(3_000, 2_590, 7_010, 32));
    state.tick(Timestamp(3_000));
    let total = total_of(&state).expect("derived despite the jitter");
    assert!(total.busy().abs() < 1e-9, "{total:?}");
    // The node comes on screen: its total is now its cores' sum, on another basis, though
    // every counter went up.
    state.ingest(sums(4_000, 3_000, 9_000));
    state.tick(Timestamp(4_000));
    assert_eq!(total_of(&state), None, "a change of basis");
    // And leaves it.
    state.ingest(busy_only(5_000, 4_000, 12_000, 32));
    state.tick(Timestamp(5_000));
    assert_eq!(total_of(&state), None, "a change of basis back");
    // A core goes offline: the cores' time changes basis too.
    state.ingest(busy_only(6_000, 5_000, 14_000, 31));
    state.tick(Timestamp(6_000));
    assert_eq!(total_of(&state), None, "a core fewer");
}

fn prometheus_router(time: i64) -> SourceEvent {
    use lbtop::model::sample::{
        Forward, RealServerSample, RouterSample, RouterSourceKind, ServiceKey, VirtualServiceSample,
    };
    let key: ServiceKey =
        lbtop::control::plan::parse_service("tcp:10.0.0.100:80").expect("service");
    SourceEvent::Router {
        host: "10.0.0.1:9100".into(),
        report: Report::Sample(RouterSample {
            time: Timestamp(time),
            source: RouterSourceKind::Prometheus,
            services: vec![VirtualServiceSample {
                key,
                scheduler: None,
                persistent: None,
                ops: false,
                totals: None,
                rates: None,
                flags: None,
                pe_name: None,
                reals: vec![RealServerSample {
                    address: "10.0.0.11".parse().expect("address"),
                    port: 80,
                    forward: Forward::Unknown,
                    weight: 3,
                    upper_threshold: 0,
                    lower_threshold: 0,
                    active_conns: 5,
                    inactive_conns: 7,
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
            addrs: None,
            owners: None,
            sync: None,
        }),
    }
}

#[test]
fn a_router_from_prometheus_shows_what_it_cannot_know_as_unknown_and_refuses_changes() {
    let mut state = State::new(StateOptions::default());
    state.add_router("10.0.0.1:9100");
    state.ingest(prometheus_router(1_000));
    state.ingest(prometheus_router(2_000));
    state.tick(Timestamp(2_000));
    let screen = render(&state);
    assert!(screen.contains("via prometheus"), "{screen}");
    assert!(
        screen.contains("read-only; scheduler, method, thresholds and rates unknown (?)"),
        "{screen}"
    );
    assert!(
        screen.contains("TCP 10.0.0.100:80 ?"),
        "the scheduler: {screen}"
    );
    let real = screen
        .lines()
        .find(|l| l.contains("10.0.0.11:80"))
        .expect("the real server's row");
    assert!(real.contains(" ? "), "method and rates: {real}");
    assert!(
        !real.contains(" - "),
        "no rate shown as merely not derived yet: {real}"
    );
    let keymap = Keymap::defaults();
    let key = |c| KeyEvent::new(c, KeyModifiers::NONE);
    handle_key(&mut state, &keymap, key(KeyCode::Down));
    handle_key(&mut state, &keymap, key(KeyCode::Down));
    handle_key(&mut state, &keymap, key(KeyCode::Char('d')));
    let refused = render(&state);
    assert!(refused.contains("read from Prometheus"), "{refused}");
}
