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
