//! Whole-frame snapshots of the TUI, fed by the scripted source, at 80×24 and 160×50. The state,
//! derivation, alerts and drawing are all the real ones; only the samples are scripted.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::{Command, State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use lbtop::runtime::handle_key;
use lbtop::source::scripted::{ClusterShape, ScriptedCluster};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn cluster_state(shape: ClusterShape, steps: usize) -> State {
    let mut state = State::new(StateOptions::default());
    let mut cluster = ScriptedCluster::new(shape, 7);
    for _ in 0..steps {
        for e in cluster.step() {
            state.ingest(e);
        }
    }
    state.tick(cluster.time());
    state
}

fn small() -> State {
    cluster_state(
        ClusterShape {
            nodes: 6,
            cores: 4,
            services: 3,
            reals_per_service: 3,
        },
        4,
    )
}

fn render(state: &State, w: u16, h: u16) -> String {
    let theme = Theme::default();
    let keymap = Keymap::defaults();
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &theme, &keymap))
        .expect("draw");
    terminal.backend().to_string()
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn press(state: &mut State, code: KeyCode) -> Option<Command> {
    handle_key(
        state,
        &Keymap::defaults(),
        KeyEvent::new(code, KeyModifiers::NONE),
    )
}

#[test]
fn cluster_at_80x24() {
    insta::assert_snapshot!(render(&small(), 80, 24));
}

#[test]
fn cluster_at_160x50() {
    insta::assert_snapshot!(render(&small(), 160, 50));
}

#[test]
fn help_is_generated_from_the_keymap() {
    let mut s = small();
    handle_key(&mut s, &Keymap::defaults(), key('?'));
    let frame = render(&s, 160, 50);
    for b in Keymap::defaults().bindings() {
        assert!(
            frame.contains(&b.description),
            "help lacks {:?}: {}",
            b.action,
            b.description
        );
    }
    insta::assert_snapshot!(frame);
}

#[test]
fn node_detail_shows_a_bar_per_core() {
    let mut s = small();
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    insta::assert_snapshot!(render(&s, 160, 50));
}

#[test]
fn filter_keeps_only_matching_nodes_and_services() {
    let mut s = small();
    for c in "/web03".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    assert!(s.ui.filter_editing, "the prompt stays open while typing");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.ui.filter, "web03");
    let rows = s.node_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(s.nodes[rows[0]].name, "web03");
    // Real servers on that node match by the node's name.
    assert!(
        s.service_rows()
            .iter()
            .any(|r| matches!(r, lbtop::app::state::ServiceRow::Real(..)))
    );
    insta::assert_snapshot!(render(&s, 80, 24));
    // Typing `q` into the filter must not quit.
    handle_key(&mut s, &Keymap::defaults(), key('/'));
    assert_eq!(handle_key(&mut s, &Keymap::defaults(), key('q')), None);
    assert_eq!(s.ui.filter, "web03q");
}

#[test]
fn ipvs_absent_is_a_clear_non_fatal_message() {
    let mut s = small();
    s.ingest(SourceEvent::Router {
        host: "local".into(),
        report: Report::Status {
            time: Timestamp(0),
            status: HostStatus::Error,
            message: Some("IPVS is not available: modprobe ip_vs".into()),
        },
    });
    // A fresh router entry that never had data shows the message in its pane.
    let mut fresh = State::new(StateOptions::default());
    fresh.add_router("local");
    for e in ScriptedCluster::new(
        ClusterShape {
            nodes: 2,
            cores: 2,
            services: 0,
            reals_per_service: 0,
        },
        1,
    )
    .step()
    {
        fresh.ingest(e);
    }
    fresh.ingest(SourceEvent::Router {
        host: "local".into(),
        report: Report::Status {
            time: Timestamp(0),
            status: HostStatus::Error,
            message: Some("IPVS is not available: modprobe ip_vs".into()),
        },
    });
    let frame = render(&fresh, 80, 24);
    assert!(frame.contains("IPVS is not available: modprobe ip_vs"));
    assert!(frame.contains("web01"), "nodes keep working: {frame}");
}

#[test]
fn quit_key_asks_the_runtime_to_quit() {
    let mut s = small();
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), key('q')),
        Some(Command::Quit)
    );
}

#[test]
fn collapsing_a_service_hides_its_real_servers() {
    let mut s = small();
    let before = s.service_rows().len();
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.service_rows().len(), before - 3);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.service_rows().len(), before);
}

#[test]
fn selection_follows_the_node_when_sorting_changes_the_order() {
    let mut s = small();
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    let picked = s.ui.node_sel.clone();
    handle_key(&mut s, &Keymap::defaults(), key('s'));
    assert_eq!(s.ui.node_sel, picked);
    let rows = s.node_rows();
    let at = s.selected_node_row(&rows).expect("still selected");
    assert_eq!(Some(s.nodes[rows[at]].name.clone()), picked);
}

#[test]
fn a_node_over_its_core_count_raises_a_critical_alert() {
    let s = small();
    // web01 is scripted at 1.15 × its cores, web04 at 0.97 × (within the 1-load margin of 4 cores).
    use lbtop::model::alert::{AlertKind, Severity};
    assert_eq!(
        s.alerts.level("web01", AlertKind::Load),
        Some(Severity::Critical)
    );
    assert_eq!(
        s.alerts.level("web04", AlertKind::Load),
        Some(Severity::Warning)
    );
    assert_eq!(s.alerts.level("web02", AlertKind::Load), None);
}

#[test]
fn two_hundred_nodes_of_64_cores_stay_readable() {
    let s = cluster_state(
        ClusterShape {
            nodes: 200,
            cores: 64,
            services: 10,
            reals_per_service: 10,
        },
        2,
    );
    let frame = render(&s, 160, 50);
    // Every visible node row keeps its name, load and a per-core strip.
    assert!(frame.contains("web01"));
    assert!(frame.contains("/64"));
    insta::assert_snapshot!(frame);
}

#[test]
fn the_selected_row_stays_in_view_when_jumping_to_the_end_of_a_long_list() {
    let mut s = cluster_state(
        ClusterShape {
            nodes: 200,
            cores: 8,
            services: 30,
            reals_per_service: 10,
        },
        2,
    );
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::End);
    let frame = render(&s, 160, 50);
    assert!(frame.contains("web200"), "{frame}");
    assert!(!frame.contains("web01 "), "the top scrolled away: {frame}");
    press(&mut s, KeyCode::BackTab);
    press(&mut s, KeyCode::End);
    let frame = render(&s, 160, 50);
    assert!(
        frame.contains("FWM 30"),
        "the last service (marks sort last) is in view: {frame}"
    );
}
