//! Whole-frame snapshots of the TUI, fed by the scripted source, at 80×24 and 160×50. The state,
//! derivation, alerts and drawing are all the real ones; only the samples are scripted.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::{Command, State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use lbtop::runtime::handle_key;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
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
    assert!(
        s.ui().filter_editing(),
        "the prompt stays open while typing"
    );
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.ui().filter, "web03");
    let rows = s.node_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(s.nodes()[rows[0]].name, "web03");
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
    assert_eq!(s.ui().filter, "web03q");
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
    // A router that had data and then fails keeps its last table, says why in the pane's title
    // and the status line, and raises no alert of its own (stale data alerts later).
    let frame = render(&s, 160, 50);
    assert!(
        frame.contains("IPVS is not available: modprobe ip_vs"),
        "{frame}"
    );
    assert!(frame.contains("router error"), "{frame}");
    assert!(
        frame.contains("TCP 192.0.2.10:80"),
        "last table kept: {frame}"
    );
    assert!(
        s.alerts()
            .level("router", lbtop::model::alert::AlertKind::Unreachable)
            .is_none()
    );
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
    let picked = s.ui().node_sel.clone();
    handle_key(&mut s, &Keymap::defaults(), key('s'));
    assert_eq!(s.ui().node_sel, picked);
    let rows = s.node_rows();
    let at = s.selected_node_row(&rows).expect("still selected");
    assert_eq!(Some(s.nodes()[rows[at]].name.clone()), picked);
}

#[test]
fn a_node_over_its_core_count_raises_a_critical_alert() {
    let s = small();
    // web01 is scripted at 1.15 × its cores, web04 at 0.97 × (within the 1-load margin of 4 cores).
    use lbtop::model::alert::{AlertKind, Severity};
    assert_eq!(
        s.alerts().level("web01", AlertKind::Load),
        Some(Severity::Critical)
    );
    assert_eq!(
        s.alerts().level("web04", AlertKind::Load),
        Some(Severity::Warning)
    );
    assert_eq!(s.alerts().level("web02", AlertKind::Load), None);
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

/// Selects the first real server of the first service in the services pane.
fn select_first_real(s: &mut State) {
    press(s, KeyCode::Down);
    press(s, KeyCode::Down);
    assert!(s.selected_real().is_some(), "a real server is selected");
}

#[test]
fn drain_key_asks_to_confirm_the_exact_change_and_enter_applies_it() {
    let mut s = small();
    select_first_real(&mut s);
    assert_eq!(handle_key(&mut s, &Keymap::defaults(), key('d')), None);
    let frame = render(&s, 100, 30);
    assert!(
        frame.contains("TCP 192.0.2.10:80 → 10.0.0.2:80  weight 1 → 0 (drain)"),
        "{frame}"
    );
    insta::assert_snapshot!(frame);
    match press(&mut s, KeyCode::Enter) {
        Some(Command::Apply { change, force }) => {
            assert_eq!((change.from, change.to, force), (1, 0, false));
        }
        other => panic!("enter did not apply: {other:?}"),
    }
    assert!(s.applying().is_some());
}

#[test]
fn escape_cancels_a_drain() {
    let mut s = small();
    select_first_real(&mut s);
    handle_key(&mut s, &Keymap::defaults(), key('d'));
    assert_eq!(press(&mut s, KeyCode::Esc), None);
    assert!(s.ui().popup.is_none());
    assert!(s.applying().is_none());
}

#[test]
fn read_only_mode_disables_the_action_keys() {
    let mut s = small();
    s.testing_parts().0.read_only = true;
    select_first_real(&mut s);
    for c in ['d', 'w', 'r'] {
        assert_eq!(handle_key(&mut s, &Keymap::defaults(), key(c)), None);
        assert!(
            matches!(&s.ui().popup, Some(lbtop::app::state::Popup::Message(m)) if m.contains("read-only")),
            "{c}: {:?}",
            s.ui().popup
        );
        press(&mut s, KeyCode::Esc);
    }
}

#[test]
fn a_snapshot_disables_the_action_keys_and_says_why() {
    let mut s = small();
    s.testing_parts().0.snapshot = true;
    select_first_real(&mut s);
    for c in ['d', 'w', 'r'] {
        assert_eq!(handle_key(&mut s, &Keymap::defaults(), key(c)), None);
        assert!(
            matches!(&s.ui().popup, Some(lbtop::app::state::Popup::Message(m)) if m.contains("--proc-root")),
            "{c}: {:?}",
            s.ui().popup
        );
        press(&mut s, KeyCode::Esc);
    }
    assert!(render(&s, 120, 30).contains("snapshot, read-only"));
}

#[test]
fn drain_confirmation_names_the_router_it_changes() {
    let mut s = small();
    let router = s.router().expect("a router").host.clone();
    select_first_real(&mut s);
    handle_key(&mut s, &Keymap::defaults(), key('d'));
    let Some(lbtop::app::state::Popup::Confirm(pending)) = s.ui().popup.clone() else {
        panic!("no confirmation: {:?}", s.ui().popup);
    };
    let question = format!(
        "drain {} of {} on {router}?",
        pending.change.real, pending.change.service
    );
    let frame = render(&s, 120, 30);
    assert!(frame.contains(&question), "no {question:?} in:\n{frame}");
}

#[test]
fn reweight_prompts_for_a_number_then_confirms() {
    let mut s = small();
    select_first_real(&mut s);
    handle_key(&mut s, &Keymap::defaults(), key('w'));
    for c in "12x3".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    assert!(render(&s, 100, 30).contains("new weight (0–65535): 123"));
    press(&mut s, KeyCode::Enter);
    assert!(render(&s, 100, 30).contains("weight 1 → 123 (reweight)"));
    assert!(matches!(
        press(&mut s, KeyCode::Enter),
        Some(Command::Apply { .. })
    ));
}

#[test]
fn draining_the_last_live_server_needs_the_service_typed() {
    let mut s = small();
    // Service 0's reals: weights 1, 0 (drained), 3. Drain the weight-3 one first, then the other.
    select_first_real(&mut s);
    let first = s.selected_real().expect("selected");
    let change = lbtop::control::plan::WeightChange {
        kind: lbtop::control::plan::ActionKind::Drain,
        service: first.0,
        real: first.1,
        from: 1,
        to: 0,
    };
    // Simulate the router having applied a drain of the other live server (weight 3 → 0).
    let mut cluster_state = s.clone();
    if let Some(r) = cluster_state.testing_parts().2
        && let Some(cur) = r.cur.as_mut()
    {
        for real in &mut cur.services[0].reals {
            if real.address != first.1.address {
                real.weight = 0;
            }
        }
    }
    let mut s = cluster_state;
    handle_key(&mut s, &Keymap::defaults(), key('d'));
    assert!(s.wants_text(), "a typed confirmation is open");
    assert!(render(&s, 120, 30).contains("Type tcp:192.0.2.10:80 to confirm"));
    for c in "tcp:192.0.2.10:81".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        None,
        "the wrong service does not apply"
    );
    assert!(render(&s, 120, 30).contains("nothing was changed"));
    press(&mut s, KeyCode::Esc);
    handle_key(&mut s, &Keymap::defaults(), key('d'));
    for c in "tcp:192.0.2.10:80".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        Some(Command::Apply {
            change,
            force: true
        })
    );
}

#[test]
fn after_a_drain_the_row_counts_connections_down() {
    let mut s = small();
    select_first_real(&mut s);
    let (service, real) = s.selected_real().expect("selected");
    let change = lbtop::control::plan::WeightChange {
        kind: lbtop::control::plan::ActionKind::Drain,
        service,
        real,
        from: 1,
        to: 0,
    };
    assert_eq!(s.action_done(&change, Ok(())), Some(Command::Refresh));
    assert_eq!(s.restore_points().get(&(service, real)), Some(&1));
    if let Some(r) = s.testing_parts().2
        && let Some(cur) = r.cur.as_mut()
    {
        cur.services[0].reals[0].weight = 0;
    }
    assert!(render(&s, 120, 30).contains("draining"));
    if let Some(r) = s.testing_parts().2
        && let Some(cur) = r.cur.as_mut()
    {
        let x = &mut cur.services[0].reals[0];
        (x.active_conns, x.inactive_conns, x.persistent_conns) = (0, 0, Some(0));
    }
    assert!(render(&s, 120, 30).contains("drained"));
    // And restore now offers the old weight back.
    press(&mut s, KeyCode::Esc);
    handle_key(&mut s, &Keymap::defaults(), key('r'));
    assert!(render(&s, 120, 30).contains("weight 0 → 1 (restore)"));
}

#[test]
fn the_services_title_says_how_old_the_counters_and_details_are() {
    let mut s = small();
    let mut sample = s
        .router()
        .as_ref()
        .and_then(|r| r.cur.clone())
        .expect("a router sample");
    // As a router over SSH carries ipvsadm's counters and details read earlier.
    sample.time = Timestamp(sample.time.0 + 2_000);
    sample.parts.counters = Some(Timestamp(sample.time.0 - 12_000));
    sample.parts.details = Some(Timestamp(sample.time.0 - 75_000));
    s.ingest(SourceEvent::Router {
        host: "local".into(),
        report: Report::Sample(sample),
    });
    let frame = render(&s, 200, 50);
    assert!(
        frame.contains("counters 12s old, details 1m15s old"),
        "{frame}"
    );
    // Read with the sample: no age.
    let fresh = render(&small(), 200, 50);
    assert!(!fresh.contains(" old"), "{fresh}");
}
