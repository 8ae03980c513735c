//! Frame snapshots of replay and recording on screen: the REPLAY position bar with its alert marks,
//! the go-to prompt, and `● REC` on the live status line. Scripted data, real drawing.

use std::time::Duration;

use lbtop::app::replay::{RecordingView, ReplayView};
use lbtop::app::state::TextInput;
use lbtop::app::{Action, Event, Speed, State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::Timestamp;
use lbtop::record::RecorderStatus;
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::runtime::replay::Replayer;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SHAPE: ClusterShape = ClusterShape {
    nodes: 6,
    cores: 4,
    services: 3,
    reals_per_service: 3,
};

fn render(state: &State, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    terminal.backend().to_string()
}

fn replaying() -> (tempfile::TempDir, State, Replayer) {
    let d = tempfile::tempdir().expect("dir");
    let path = d.path().join("r.lbrec");
    let opts = WriterOptions::default();
    let mut w = Writer::new(
        std::fs::File::create(&path).expect("create"),
        scripted_info(SHAPE, &opts),
        opts,
    )
    .expect("writer");
    record_scripted(
        &mut w,
        &mut ScriptedCluster::new(SHAPE, 7),
        &mut State::new(StateOptions::default()),
        120,
    )
    .expect("record");
    w.finish().expect("finish");
    let mut state = State::new(StateOptions::default());
    let r = Replayer::new(Player::open(&path).expect("open"), &mut state, "r.lbrec");
    (d, state, r)
}

#[test]
fn replay_at_100x30_shows_the_position_bar_with_alert_marks() {
    let (_d, mut state, mut r) = replaying();
    r.advance(&mut state, Duration::from_secs(45));
    let c = state.update(Action::Pause).expect("pause");
    r.apply(&mut state, &c);
    insta::assert_snapshot!(render(&state, 100, 30));
}

#[test]
fn a_recording_spanning_every_time_there_is_draws_its_bar_and_resolves_a_typed_time() {
    // Times are whatever the file says; a plain difference of these overflows (a debug build
    // panicked drawing the bar).
    let (_d, mut state, _r) = replaying();
    let (start, end) = (Timestamp(i64::MIN + 1), Timestamp(i64::MAX));
    state.start_replay(
        ReplayView {
            file: "wide.lbrec".into(),
            start,
            end,
            position: Timestamp(0),
            marks: vec![(start, 1), (Timestamp(0), 2), (end, 4)],
            warning: None,
        },
        true,
        Speed::NORMAL,
    );
    let frame = render(&state, 100, 30);
    assert!(frame.contains("❚❚"), "{frame}");
    for typed in ["00:00", "23:59:59", "+1h", "-1h"] {
        state.update(Action::GoToTime);
        for c in typed.chars() {
            state.handle(Event::Text(TextInput::Char(c)));
        }
        let seek = state.handle(Event::Text(TextInput::Accept)).command;
        assert!(seek.is_some(), "{typed}: {:?}", state.ui().popup);
    }
    let status = RecorderStatus {
        path: "wide.lbrec".into(),
        bytes: 0,
        frames: 2,
        first: Some(start),
        last: Some(end),
        dropped: 0,
        error: None,
        finished: true,
    };
    assert_eq!(status.duration(), Duration::from_millis(i64::MAX as u64));
}

#[test]
fn go_to_prompt_replaces_the_status_line() {
    let (_d, mut state, _r) = replaying();
    state.update(Action::GoToTime);
    let frame = render(&state, 100, 30);
    let last = frame.lines().last().unwrap_or_default().to_string();
    assert!(last.contains("go to:"), "{last}");
}

#[test]
fn recording_shows_rec_size_and_duration_on_the_live_status_line() {
    let mut state = State::new(StateOptions::default());
    let mut c = ScriptedCluster::new(SHAPE, 7);
    for _ in 0..3 {
        for e in c.step() {
            state.ingest(e);
        }
    }
    state.set_recording(Some(RecordingView {
        file: "lbtop-20260101-000000.lbrec".into(),
        bytes: 1_234_567,
        duration: Duration::from_secs(95),
        error: None,
    }));
    let frame = render(&state, 120, 30);
    let last = frame.lines().last().unwrap_or_default().to_string();
    assert!(last.contains("● REC 1.2M 1:35"), "{last}");
    state.set_recording(Some(RecordingView {
        error: Some("No space left on device (os error 28)".into()),
        ..RecordingView::default()
    }));
    let frame = render(&state, 120, 30);
    assert!(
        frame.contains("REC stopped: No space left on device"),
        "{frame}"
    );
}

#[test]
fn a_finished_replay_shows_it_stopped_not_playing() {
    let (_d, mut state, mut r) = replaying();
    r.advance(&mut state, Duration::from_secs(1));
    let bar = |state: &State| {
        render(state, 100, 30)
            .lines()
            .rev()
            .nth(1)
            .expect("the bar")
            .to_string()
    };
    assert!(bar(&state).contains(" ▶ "), "{}", bar(&state));
    r.advance(&mut state, Duration::from_secs(600));
    let at_end = bar(&state);
    assert!(at_end.contains(" ■ "), "{at_end}");
    assert!(!at_end.contains('▶'), "{at_end}");
}

#[test]
fn node_detail_charts_in_a_replay_show_the_history_up_to_the_position() {
    let (_d, mut state, mut r) = replaying();
    r.advance(&mut state, Duration::from_secs(60));
    let c = state.update(Action::Pause).expect("pause");
    r.apply(&mut state, &c);
    let start = state.replay().expect("replaying").start;
    let at = Timestamp(start.0 + 30_000);
    r.seek(&mut state, at);
    let position = state.replay().expect("replaying").position;
    let history = &state.node("web01").expect("web01").history;
    let newest = history.last().expect("a history after the seek").time;
    assert!(newest <= position, "{newest:?} after {position:?}");
    assert!(
        position.seconds_since(newest) < 2.0,
        "{newest:?} {position:?}"
    );
    assert!(history.len() > 1, "the seek's warm-up is charted");
    state.update(Action::NextPane);
    state.update(Action::Toggle);
    let frame = render(&state, 120, 40);
    assert!(frame.contains(" Load 1m 5m 15m"), "{frame}");
    insta::assert_snapshot!("node_detail_in_a_replay_at_120x40", frame);
}

#[test]
fn service_detail_charts_in_a_replay_end_at_the_position() {
    let (_d, mut state, mut r) = replaying();
    r.advance(&mut state, Duration::from_secs(60));
    let c = state.update(Action::Pause).expect("pause");
    r.apply(&mut state, &c);
    let start = state.replay().expect("replaying").start;
    r.seek(&mut state, Timestamp(start.0 + 30_000));
    let position = state.replay().expect("replaying").position;
    state.update(Action::Down);
    state.update(Action::Detail);
    let Some(lbtop::app::state::ServiceSelection::Service(key)) = state.ui().service_sel else {
        panic!("a service selected: {:?}", state.ui().service_sel);
    };
    let router = state.router().expect("a router");
    let history = router.traffic.service(&key).expect("its history");
    let newest = history.last().expect("points after the seek").time;
    assert!(newest <= position, "{newest:?} after {position:?}");
    assert!(
        position.seconds_since(newest) < 2.0,
        "{newest:?} {position:?}"
    );
    assert!(history.len() > 1, "the seek's warm-up is charted");
    let frame = render(&state, 120, 40);
    assert!(frame.contains(" Connections/s cps"), "{frame}");
    insta::assert_snapshot!("service_detail_in_a_replay_at_120x40", frame);
}
