//! `assets/demo.lbrec` (made in the lab by `scripts/make-demo`) stays a readable recording of what
//! the README promises: traffic through the router, a node above its core count with the alert
//! raised, and a drain and restore done from lbtop — checked with this build's reader.

use lbtop::model::alert::Severity;
use lbtop::model::sample::{Report, SourceEvent};
use lbtop::record::ActionOutcome;
use lbtop::record::player::Player;

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");

#[test]
fn the_demo_recording_shows_traffic_an_overloaded_node_and_a_drain() {
    let mut p = Player::open(std::path::Path::new(DEMO)).expect("the demo recording opens");
    let mut router_conns = Vec::new();
    let mut overloaded = Vec::new();
    let mut critical = Vec::new();
    let mut actions = Vec::new();
    let mut frames = 0;
    while let Some(frame) = p.next_frame() {
        frames += 1;
        for e in &frame.events {
            match e {
                SourceEvent::Router {
                    report: Report::Sample(s),
                    ..
                } => {
                    let dr = s
                        .services
                        .iter()
                        .find(|v| v.key.to_string() == "tcp:10.77.1.100:80");
                    router_conns.push(dr.and_then(|v| v.totals).map_or(0, |t| t.conns));
                }
                SourceEvent::Node {
                    name,
                    report: Report::Sample(s),
                    ..
                } if s.load.one > s.cores() as f64 => overloaded.push(name.clone()),
                _ => {}
            }
        }
        critical.extend(
            frame
                .alerts
                .iter()
                .filter(|a| a.raised && a.severity == Severity::Critical)
                .map(|a| a.subject.clone()),
        );
        actions.extend(frame.actions);
    }
    assert!(p.damage_report().is_none(), "{:?}", p.damage_report());
    assert!(frames > 100, "a few minutes at 2 s: {frames} frames");
    assert!(
        router_conns.last() > router_conns.first(),
        "connections went through the DR service: {:?} → {:?}",
        router_conns.first(),
        router_conns.last()
    );
    assert!(overloaded.iter().any(|n| n == "rs1"), "rs1 above its cores");
    assert!(critical.iter().any(|n| n == "rs1"), "rs1's critical alert");
    let done: Vec<_> = actions
        .iter()
        .filter(|a| a.result == ActionOutcome::Done)
        .map(|a| {
            (
                a.service.as_str(),
                a.real.as_str(),
                a.old_weight,
                a.new_weight,
            )
        })
        .collect();
    assert_eq!(
        done,
        [
            ("tcp:10.77.1.100:80", "10.77.0.11:80", 1, 0),
            ("tcp:10.77.1.100:80", "10.77.0.11:80", 0, 1)
        ],
        "a drain of rs1, then its restore"
    );
}

/// The demo replayed at 100 columns: the drain and the restore both show as ◆ on the position
/// bar, although alerts were raised in the same columns (actions outrank alerts there).
#[test]
fn the_demo_replay_shows_both_actions_on_the_position_bar() {
    use lbtop::app::{State, StateOptions};
    use lbtop::config::{Keymap, Theme};
    use lbtop::runtime::replay::Replayer;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    let mut state = State::new(StateOptions::default());
    let _r = Replayer::new(
        Player::open(std::path::Path::new(DEMO)).expect("open"),
        &mut state,
        "demo.lbrec",
    );
    let mut terminal = Terminal::new(TestBackend::new(100, 30)).expect("test backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, &state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    let screen = terminal.backend().to_string();
    let bar = screen
        .lines()
        .find(|l| l.contains(" / 4:0"))
        .unwrap_or_else(|| panic!("no position bar:\n{screen}"));
    assert_eq!(bar.matches('◆').count(), 2, "{bar}");
    assert!(bar.contains('▲'), "the alerts show too: {bar}");
}

#[test]
fn in_the_demo_the_router_staleness_alert_does_not_bury_the_nodes() {
    use lbtop::app::{State, StateOptions};
    use lbtop::model::alert::AlertKind;
    use lbtop::runtime::replay::Replayer;

    // The moment an operator looked at (`g 03:03:50`): before, 42 of 48 log lines were the
    // router's stale/cleared pairs, every ~6 s, and they pushed the nodes' CRIT lines away.
    let mut state = State::new(StateOptions::default());
    let player = Player::open(std::path::Path::new(DEMO)).expect("open");
    let start = player.recording.start();
    let mut replayer = Replayer::new(player, &mut state, "demo.lbrec");
    let t = lbtop::model::time::parse("03:03:50", start, start).expect("time");
    replayer.seek(&mut state, t);
    let lines = state.alerts().lines(48);
    let router = lines
        .iter()
        .filter(|l| l.event.subject == "router" && l.event.kind == AlertKind::Stale)
        .count();
    assert!(
        router <= 2,
        "{router} router staleness lines of {}",
        lines.len()
    );
    assert!(
        lines
            .iter()
            .any(|l| l.event.severity == Severity::Critical && l.event.subject != "router"),
        "a node's CRIT line is in view: {lines:?}"
    );
    // The recording holds what live raised then (42 stale/cleared events by this moment): replay
    // shows what live showed, folded into one line.
    // The log is in time order.
    let times: Vec<_> = state.alerts().log().iter().map(|e| e.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn going_to_a_clock_time_just_before_the_demo_starts_goes_to_its_start() {
    use lbtop::app::{State, StateOptions};
    use lbtop::runtime::replay::Replayer;

    // The demo starts at 03:00:54: `g 03:00:00` went to the end (the next day) before.
    let mut state = State::new(StateOptions::default());
    let player = Player::open(std::path::Path::new(DEMO)).expect("open");
    let start = player.recording.start();
    let mut replayer = Replayer::new(player, &mut state, "demo.lbrec");
    let t = lbtop::model::time::parse("03:00:00", start, start).expect("time");
    replayer.seek(&mut state, t);
    assert_eq!(replayer.position(), start);
}

#[test]
fn the_demos_drain_shows_in_replay_after_playing_and_after_a_seek() {
    use lbtop::app::{State, StateOptions};
    use lbtop::runtime::replay::Replayer;

    let mut state = State::new(StateOptions::default());
    let mut player = Player::open(std::path::Path::new(DEMO)).expect("open");
    let actions = player.actions_before(player.len());
    let drain = actions
        .iter()
        .find(|a| a.new_weight == 0 && a.result == ActionOutcome::Done)
        .expect("the demo drains a real server")
        .clone();
    let restore = actions
        .iter()
        .find(|a| a.new_weight > 0 && a.time > drain.time)
        .expect("and restores it")
        .clone();
    let key = (
        lbtop::control::plan::parse_service(&drain.service).expect("service"),
        drain.real.parse().expect("real"),
    );
    let mut replayer = Replayer::new(player, &mut state, "demo.lbrec");
    // Played through from the start to just after the drain.
    replayer.advance(&mut state, std::time::Duration::from_millis(0));
    let mid = lbtop::model::sample::Timestamp(drain.time.0 + 5_000);
    while replayer.position() < mid {
        replayer.step(&mut state, true);
    }
    assert!(state.draining().contains(&key), "played: {key:?} draining");
    // A seek from elsewhere (the warm-up does not reach back to the drain) shows it too.
    replayer.seek(&mut state, replayer.position());
    let later = lbtop::model::sample::Timestamp((drain.time.0 + restore.time.0) / 2);
    replayer.seek(&mut state, later);
    assert!(
        state.draining().contains(&key),
        "after a seek: {key:?} draining"
    );
    replayer.seek(
        &mut state,
        lbtop::model::sample::Timestamp(restore.time.0 + 2_000),
    );
    assert!(!state.draining().contains(&key), "restored");
}
