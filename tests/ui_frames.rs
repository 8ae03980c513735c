//! Whole-frame snapshots of the TUI, fed by the scripted source, at 80×24 and 160×50. The state,
//! derivation, alerts and drawing are all the real ones; only the samples are scripted.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::{Command, Event, State, StateOptions};
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
        // The live view lists every key but the replay's.
        let listed = frame.contains(&b.description);
        assert_eq!(
            listed,
            !b.action.is_replay(),
            "{:?}: {}\n{frame}",
            b.action,
            b.description
        );
    }
    for heading in ["Everywhere", "Live view"] {
        assert!(frame.contains(heading), "{heading}: {frame}");
    }
    insta::assert_snapshot!(frame);
}

#[test]
fn help_in_a_replay_lists_the_replay_keys_and_not_the_live_only_ones() {
    let mut s = small();
    s.start_replay(
        lbtop::app::replay::ReplayView::default(),
        true,
        lbtop::app::Speed::NORMAL,
    );
    handle_key(&mut s, &Keymap::defaults(), key('?'));
    let frame = render(&s, 160, 50);
    for b in Keymap::defaults().bindings() {
        let live_only = b.action.context() == lbtop::app::Context::Live;
        assert_eq!(
            frame.contains(&b.description),
            !live_only,
            "{:?}: {}\n{frame}",
            b.action,
            b.description
        );
    }
    assert!(frame.contains("Replay"), "{frame}");
}

#[test]
fn help_scrolls_to_its_last_key_at_80x24() {
    let mut s = small();
    handle_key(&mut s, &Keymap::defaults(), key('?'));
    let top = render(&s, 80, 24);
    let last = "Apply the weight change being confirmed";
    assert!(!top.contains(last), "cut at 80x24 before scrolling:\n{top}");
    insta::assert_snapshot!("help_at_80x24_top", top);
    press(&mut s, KeyCode::End);
    let bottom = render(&s, 80, 24);
    assert!(bottom.contains(last), "{bottom}");
    insta::assert_snapshot!("help_at_80x24_end", bottom);
    // Page by page and line by line back to the top; the help stays open throughout.
    press(&mut s, KeyCode::PageUp);
    for _ in 0..40 {
        handle_key(&mut s, &Keymap::defaults(), key('k'));
    }
    assert_eq!(s.ui().popup, Some(lbtop::app::state::Popup::Help));
    assert_eq!(render(&s, 80, 24), top);
    handle_key(&mut s, &Keymap::defaults(), key('j'));
    assert_eq!(s.ui().help_line, 1);
    press(&mut s, KeyCode::Home);
    assert_eq!(s.ui().help_line, 0);
    // Its own key closes it.
    handle_key(&mut s, &Keymap::defaults(), key('?'));
    assert_eq!(s.ui().popup, None);
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
    // The focused nodes pane (heavy borders): the services pane names web01 beside its real
    // servers.
    assert!(
        frame
            .lines()
            .filter(|l| l.starts_with("\"┃"))
            .all(|l| !l.contains("web01 ")),
        "the top scrolled away: {frame}"
    );
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
        Some(Command::Apply { change, force, .. }) => {
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
            matches!(&s.ui().toast, Some(t) if t.error && t.text.contains("read-only")),
            "{c}: {:?}",
            s.ui().toast
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
            matches!(&s.ui().toast, Some(t) if t.error && t.text.contains("--proc-root")),
            "{c}: {:?}",
            s.ui().toast
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
            force: true,
            warnings: Vec::new(),
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
    let applied = Event::Applied {
        change,
        result: Ok(()),
    };
    assert_eq!(s.handle(applied).command, Some(Command::Refresh));
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

/// `small()` with an alert on `web07` that flapped: raised and cleared 21 times in the minute
/// before the others, raised last, so three alerts are on.
fn flapping() -> State {
    use lbtop::model::alert::{AlertEvent, AlertKind, Severity};
    let mut s = small();
    let start = lbtop::testing::scripted::EPOCH.0 - 60_000;
    s.restore_alerts((0..21).map(|i| AlertEvent {
        time: Timestamp(start + i * 2_000),
        severity: Severity::Warning,
        subject: "web07".into(),
        kind: AlertKind::Load,
        message: "load 3.10 on 4 cores (0.78 per core)".into(),
        raised: i % 2 == 0,
    }));
    s
}

/// The lines of the alerts pane in `frame`, from its title down.
fn alerts_pane(frame: &str) -> Vec<&str> {
    let lines: Vec<&str> = frame.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.contains(" Alerts "))
        .expect("an alerts pane");
    lines[top..].to_vec()
}

#[test]
fn the_alert_log_folds_repeats_into_one_line_with_a_count() {
    let s = flapping();
    assert_eq!(s.alerts().active_count(), 3);
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        let frame = render(&s, w, h);
        let pane = alerts_pane(&frame).join("\n");
        assert!(pane.contains("×21 web07"), "{w}x{h}:\n{frame}");
        assert_eq!(pane.matches("web07").count(), 1, "{w}x{h}:\n{frame}");
        insta::assert_snapshot!(format!("alerts_folded_at_{w}x{h}"), frame);
    }
    // Newest first: the node alerts of 00:00:01, then the flapping one (last at 23:59:40).
    let frame = render(&s, 120, 40);
    let pane = alerts_pane(&frame);
    let at = |what: &str| pane.iter().position(|l| l.contains(what));
    assert!(
        at("web04") < at("web07") && at("web01") < at("web07"),
        "{frame}"
    );
    assert!(pane.iter().any(|l| l.contains("since 23:59:00")), "{frame}");
}

#[test]
fn the_alerts_pane_takes_the_rows_the_nodes_do_not_need() {
    let s = flapping();
    // 120x24: every active alert shows, and the nodes pane has no empty rows to spare.
    let frame = render(&s, 120, 24);
    let pane = alerts_pane(&frame).join("\n");
    for subject in ["web01", "web04", "web07"] {
        assert!(pane.contains(subject), "{subject}:\n{frame}");
    }
    insta::assert_snapshot!("alerts_spare_rows_at_120x24", frame);
    // 200x60: the alerts are as wide as the screen, not squeezed beside the nodes.
    let frame = render(&s, 200, 60);
    let title = alerts_pane(&frame)[0];
    assert!(title.chars().count() >= 200 - 2, "{frame}");
    assert!(frame.contains("(0.97 per core)"), "whole lines: {frame}");
}

#[test]
fn narrow_services_keep_the_connection_share_and_node_load_over_the_rates() {
    let frame = render(&small(), 80, 24);
    let header = frame
        .lines()
        .find(|l| l.contains("Service / real server"))
        .expect("header");
    for kept in ["C%", "Load/c", "Weight", "Active"] {
        assert!(header.contains(kept), "{kept}: {header}");
    }
    for dropped in ["CPS", "CPS trend"] {
        assert!(!header.contains(dropped), "{dropped}: {header}");
    }
}

#[test]
fn the_sorted_column_carries_an_arrow_and_services_sort_by_load_per_core() {
    let mut s = small();
    let frame = render(&s, 120, 40);
    assert!(frame.contains("Service / real server▲"), "{frame}");
    assert!(frame.contains("Node▲"), "{frame}");
    // s: connections, cps, bytes/s, weight, load per core.
    for _ in 0..5 {
        handle_key(&mut s, &Keymap::defaults(), key('s'));
    }
    assert_eq!(
        s.ui().service_sort,
        lbtop::app::state::ServiceSort::LoadPerCore
    );
    let frame = render(&s, 120, 40);
    assert!(frame.contains("▼Load/c"), "{frame}");
    assert!(!frame.contains("real server▲"), "{frame}");
    insta::assert_snapshot!("services_sorted_by_load_per_core_at_120x40", frame);
    // Busiest node first under each service: 10.0.0.2 (1.15) before 10.0.0.4 (0.44) before
    // 10.0.0.3 (0.32).
    let order: Vec<usize> = ["10.0.0.2:80", "10.0.0.4:80", "10.0.0.3:80"]
        .iter()
        .map(|r| frame.find(r).expect("shown"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{frame}");
    handle_key(&mut s, &Keymap::defaults(), key('S'));
    assert!(render(&s, 120, 40).contains("▲Load/c"));
}

#[test]
fn information_takes_no_keys_and_goes_by_itself() {
    let mut s = small();
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), key('R')),
        Some(Command::ToggleRecord)
    );
    // What the runtime does with it: start recording and say so.
    s.show_message("recording to /tmp/lbtop-20260101-000000.lbrec".into());
    let frame = render(&s, 80, 24);
    assert!(frame.contains("recording to"), "{frame}");
    insta::assert_snapshot!("message_as_a_toast_at_80x24", frame);
    // The next R stops the recording, and q quits: the message takes neither.
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), key('R')),
        Some(Command::ToggleRecord)
    );
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), key('q')),
        Some(Command::Quit)
    );
    // It goes after a few seconds.
    let now = s.now();
    s.tick(Timestamp(now.0 + 1_000));
    assert!(s.ui().toast.is_some());
    s.tick(Timestamp(now.0 + 6_000));
    assert!(s.ui().toast.is_none());
    assert!(!render(&s, 80, 24).contains("recording to"));
}

#[test]
fn keys_act_through_help_and_a_node_detail_and_close_them() {
    let mut s = small();
    handle_key(&mut s, &Keymap::defaults(), key('?'));
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), key('q')),
        Some(Command::Quit)
    );
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Enter);
    assert!(matches!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::NodeDetail(_))
    ));
    handle_key(&mut s, &Keymap::defaults(), key('s'));
    assert_eq!(s.ui().popup, None);
    assert_eq!(s.ui().node_sort, lbtop::app::state::NodeSort::LoadPerCore);
}

#[test]
fn small_things_say_what_they_mean() {
    let mut s = small();
    // Fresh nodes are ok, not an age; the memory says of what.
    let frame = render(&s, 160, 50);
    assert!(frame.contains("web01          ok "), "{frame}");
    assert!(frame.contains("% of 64G"), "{frame}");
    // A filter that matches nothing says so in the panes.
    for c in "/nosuchthing".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    press(&mut s, KeyCode::Enter);
    let frame = render(&s, 120, 40);
    assert_eq!(
        frame
            .matches("nothing matches the filter \"nosuchthing\"")
            .count(),
        2,
        "{frame}"
    );
    // Late numbers show their age.
    let now = s.now();
    s.tick(Timestamp(now.0 + 5_000));
    press(&mut s, KeyCode::Esc);
    assert!(render(&s, 160, 50).contains("web01          ok 5.0s"));
}

/// Opens the detail of the node `name` from the nodes pane.
fn open_node_detail(s: &mut State, name: &str) {
    press(s, KeyCode::Tab);
    while s.ui().node_sel.as_deref() != Some(name) {
        press(s, KeyCode::Down);
    }
    press(s, KeyCode::Enter);
    assert_eq!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::NodeDetail(name.into()))
    );
}

#[test]
fn node_detail_lists_the_nodes_real_servers_with_charts_at_120x40_and_200x60() {
    // A minute of history, for the charts.
    let mut s = cluster_state(
        ClusterShape {
            nodes: 6,
            cores: 4,
            services: 3,
            reals_per_service: 3,
        },
        60,
    );
    open_node_detail(&mut s, "web01");
    let frame = render(&s, 120, 40);
    for shown in [
        "Real server (d or w or r)",
        "TCP 192.0.2.10:80",
        "10.0.0.2:80",
        " Load 1m 5m 15m ── 4 cores",
        " CPU % busy user system irq iowait",
    ] {
        assert!(frame.contains(shown), "{shown}: {frame}");
    }
    insta::assert_snapshot!("node_detail_at_120x40", frame);
    insta::assert_snapshot!("node_detail_at_200x60", render(&s, 200, 60));
}

#[test]
fn drain_from_the_node_detail_acts_on_the_real_server_selected_there() {
    let mut s = small();
    open_node_detail(&mut s, "web01");
    let reals = s.node_reals("web01");
    assert!(reals.len() >= 2, "web01 serves several services");
    press(&mut s, KeyCode::Down);
    let (service, real) = s.selected_real().expect("a real server is selected");
    assert_eq!(real.address.to_string(), "10.0.0.2");
    let first = {
        press(&mut s, KeyCode::Up);
        s.selected_real().expect("selected")
    };
    assert_ne!(
        first.0, service,
        "down moved to another service's real server"
    );
    press(&mut s, KeyCode::Down);
    assert_eq!(handle_key(&mut s, &Keymap::defaults(), key('d')), None);
    let frame = render(&s, 120, 40);
    let line = format!("{} → {real}", lbtop::control::plan::service_label(&service));
    assert!(frame.contains(&line), "{line}: {frame}");
    match press(&mut s, KeyCode::Enter) {
        Some(Command::Apply { change, force, .. }) => {
            assert_eq!(
                (change.service, change.real, change.to, force),
                (service, real, 0, false)
            );
        }
        other => panic!("enter did not apply: {other:?}"),
    }
    // Back in the detail it was started from.
    assert_eq!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::NodeDetail("web01".into()))
    );
}

#[test]
fn reweight_and_restore_from_the_node_detail_take_the_same_path() {
    let mut s = small();
    open_node_detail(&mut s, "web01");
    let (service, real) = s.selected_real().expect("the first real server by default");
    handle_key(&mut s, &Keymap::defaults(), key('w'));
    for c in "7".chars() {
        handle_key(&mut s, &Keymap::defaults(), key(c));
    }
    press(&mut s, KeyCode::Enter);
    match &s.ui().popup {
        Some(lbtop::app::state::Popup::Confirm(p)) => {
            assert_eq!(
                (p.change.service, p.change.real, p.change.to),
                (service, real, 7)
            );
        }
        other => panic!("no confirmation: {other:?}"),
    }
    press(&mut s, KeyCode::Esc);
    assert!(matches!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::NodeDetail(_))
    ));
    // Nothing was drained by lbtop: restore says so, as it does from the services pane.
    handle_key(&mut s, &Keymap::defaults(), key('r'));
    let toast = s.ui().toast.as_ref().expect("an error");
    assert!(toast.error && toast.text.contains("restore"), "{toast:?}");
}

#[test]
fn services_name_the_node_behind_each_real_server_and_drop_it_first_when_narrow() {
    let frame = render(&small(), 160, 50);
    let row = frame
        .lines()
        .find(|l| l.contains("├ 10.0.0.2:80"))
        .expect("a real server row");
    assert!(row.contains("web01"), "{row}");
    let narrow = render(&small(), 80, 24);
    let header = narrow
        .lines()
        .find(|l| l.contains("Service / real server"))
        .expect("header");
    assert!(!header.contains("Node"), "{header}");
}

/// A minute of a small cluster, for charts.
fn a_minute() -> State {
    cluster_state(
        ClusterShape {
            nodes: 6,
            cores: 4,
            services: 3,
            reals_per_service: 3,
        },
        60,
    )
}

#[test]
fn i_opens_a_services_detail_with_charts_of_its_traffic_at_80x24_120x40_and_200x60() {
    let mut s = a_minute();
    press(&mut s, KeyCode::Down);
    assert_eq!(handle_key(&mut s, &Keymap::defaults(), key('i')), None);
    assert_eq!(s.ui().popup, Some(lbtop::app::state::Popup::ServiceDetail));
    let frame = render(&s, 120, 40);
    for shown in [
        "TCP 192.0.2.10:80",
        "3 real servers",
        " Connections/s cps",
        " Connections active inactive",
        " Bytes/s in out",
        "-58s",
    ] {
        assert!(frame.contains(shown), "{shown}: {frame}");
    }
    insta::assert_snapshot!("service_detail_at_120x40", frame);
    insta::assert_snapshot!("service_detail_at_200x60", render(&s, 200, 60));
    insta::assert_snapshot!("service_detail_at_80x24", render(&s, 80, 24));
    // `i` again closes it, as enter and esc do.
    handle_key(&mut s, &Keymap::defaults(), key('i'));
    assert_eq!(s.ui().popup, None);
}

#[test]
fn enter_on_a_real_server_opens_its_detail_and_down_moves_to_the_next_row() {
    let mut s = a_minute();
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    let Some(lbtop::app::state::ServiceSelection::Real(_, address, _)) = s.ui().service_sel else {
        panic!("a real server row: {:?}", s.ui().service_sel);
    };
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.ui().popup, Some(lbtop::app::state::Popup::ServiceDetail));
    let frame = render(&s, 120, 40);
    assert!(frame.contains(&format!("{address}:80 of TCP")), "{frame}");
    assert!(frame.contains("forwarding"), "{frame}");
    insta::assert_snapshot!("real_server_detail_at_120x40", frame);
    press(&mut s, KeyCode::Down);
    assert_eq!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::ServiceDetail),
        "down stays in the detail"
    );
    let Some(lbtop::app::state::ServiceSelection::Real(_, next, _)) = s.ui().service_sel else {
        panic!("the next real server: {:?}", s.ui().service_sel);
    };
    assert_ne!(next, address);
    assert!(render(&s, 120, 40).contains(&format!("{next}:80 of TCP")));
    // Enter on a service still expands and collapses it.
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::Home);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.ui().popup, None);
    assert_eq!(s.ui().collapsed.len(), 1);
}

#[test]
fn few_nodes_show_their_core_meters_under_their_rows_when_there_is_room() {
    let s = small();
    let wide = render(&s, 160, 50);
    let web01 = wide
        .lines()
        .position(|l| l.contains("!! web01"))
        .expect("web01's row");
    let under = wide.lines().nth(web01 + 1).expect("a line under it");
    for core in ["  0[", "  1[", "  2[", "  3["] {
        assert!(under.contains(core), "{core}: {under}");
    }
    // No room at 80x24: a line per node, the cores as a strip.
    let narrow = render(&s, 80, 24);
    assert!(!narrow.contains("  0["), "{narrow}");
}

#[test]
fn trends_widen_with_the_screen() {
    let s = a_minute();
    let bars = |line: &str| line.chars().filter(|c| "▁▂▃▄▅▆▇█".contains(*c)).count();
    let frame = render(&s, 200, 60);
    let row = |text: &str| {
        frame
            .lines()
            .find(|l| l.contains(text))
            .unwrap_or_else(|| panic!("{text}: {frame}"))
            .to_string()
    };
    // A minute of samples: wider than the columns' 12 (load) and 10 (CPS) cells.
    assert!(bars(&row("!! web01")) > 40, "{}", row("!! web01"));
    assert!(
        bars(&row("▾ TCP 192.0.2.10:80")) > 40,
        "{}",
        row("▾ TCP 192.0.2.10:80")
    );
}
