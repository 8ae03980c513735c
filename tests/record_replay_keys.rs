//! The replay keys, end to end without a terminal: keys go through the keymap and
//! `State::update`, the commands through `runtime::replay::Replayer`, and the state shows the
//! moment the operator asked for.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::{Command, Mode, Speed, State, StateOptions};
use lbtop::config::Keymap;
use lbtop::model::sample::Timestamp;
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::runtime::handle_key;
use lbtop::runtime::replay::Replayer;
use lbtop::testing::scripted::{ClusterShape, EPOCH, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const SHAPE: ClusterShape = ClusterShape {
    nodes: 4,
    cores: 2,
    services: 2,
    reals_per_service: 2,
};

/// A 5-minute recording at 1 s; frame `i` is at EPOCH + (i + 1) s.
fn replay() -> (tempfile::TempDir, State, Replayer) {
    let d = tempfile::tempdir().expect("dir");
    let path = d.path().join("r.lbrec");
    let opts = WriterOptions::default();
    let f = std::fs::File::create(&path).expect("create");
    let mut w = Writer::new(f, scripted_info(SHAPE, &opts), opts).expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 9);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, 300).expect("record");
    w.finish().expect("finish");
    let mut state = State::new(StateOptions::default());
    let r = Replayer::new(Player::open(&path).expect("open"), &mut state, "r.lbrec");
    (d, state, r)
}

fn at(s: u64) -> Timestamp {
    Timestamp(EPOCH.0 + 1000 * s as i64)
}

/// The time of the newest sample the state has taken in.
fn shown(state: &State) -> Option<Timestamp> {
    state
        .node("web01")
        .and_then(|n| n.cur.as_ref())
        .map(|s| s.time)
}

fn press(state: &mut State, r: &mut Replayer, c: char) -> Option<Command> {
    let cmd = handle_key(
        state,
        &Keymap::defaults(),
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
    );
    if let Some(c) = &cmd {
        r.apply(state, c);
    }
    cmd
}

fn mode(state: &State) -> (bool, Speed) {
    match state.mode() {
        Mode::Replay { paused, speed } => (paused, speed),
        other => panic!("not replay: {other:?}"),
    }
}

#[test]
fn replay_starts_at_the_first_sample_and_plays_at_the_chosen_speed() {
    let (_d, mut state, mut r) = replay();
    assert_eq!(mode(&state), (false, Speed::NORMAL));
    assert_eq!(shown(&state), Some(at(1)));
    assert_eq!(
        state.replay().map(|v| (v.start, v.end)),
        Some((at(1), at(300)))
    );
    r.advance(&mut state, Duration::from_secs(3));
    assert_eq!(shown(&state), Some(at(4)));
    // + twice: 4×; 2 s of wall clock is 8 s of recording.
    assert_eq!(
        press(&mut state, &mut r, '+'),
        Some(Command::SetSpeed(Speed::NORMAL.faster()))
    );
    press(&mut state, &mut r, '+');
    assert_eq!(mode(&state).1.label(), "4×");
    r.advance(&mut state, Duration::from_secs(2));
    assert_eq!(shown(&state), Some(at(12)));
    // - down to a quarter: 4 s of wall clock is 1 s of recording.
    for _ in 0..6 {
        press(&mut state, &mut r, '-');
    }
    assert_eq!(mode(&state).1.label(), "0.25×");
    r.advance(&mut state, Duration::from_secs(4));
    assert_eq!(shown(&state), Some(at(13)));
    // Rates and CPU percentages are there, as in live.
    let web01 = state.node("web01").expect("web01");
    assert!(web01.stats.as_ref().and_then(|s| s.cpu_total).is_some());
}

#[test]
fn space_pauses_and_resumes_the_clock() {
    let (_d, mut state, mut r) = replay();
    assert_eq!(
        press(&mut state, &mut r, ' '),
        Some(Command::SetPaused(true))
    );
    r.advance(&mut state, Duration::from_secs(10));
    assert_eq!(shown(&state), Some(at(1)), "paused: the clock stands still");
    assert_eq!(
        press(&mut state, &mut r, ' '),
        Some(Command::SetPaused(false))
    );
    r.advance(&mut state, Duration::from_secs(2));
    assert_eq!(shown(&state), Some(at(3)));
}

#[test]
fn brackets_and_braces_seek_by_10_s_and_1_min_with_history_rebuilt() {
    let (_d, mut state, mut r) = replay();
    press(&mut state, &mut r, ' ');
    press(&mut state, &mut r, ']');
    assert_eq!(shown(&state), Some(at(11)));
    press(&mut state, &mut r, '}');
    assert_eq!(shown(&state), Some(at(71)));
    press(&mut state, &mut r, '[');
    assert_eq!(shown(&state), Some(at(61)));
    press(&mut state, &mut r, '{');
    assert_eq!(shown(&state), Some(at(1)));
    press(&mut state, &mut r, '{');
    assert_eq!(shown(&state), Some(at(1)), "clamped to the start");
    for _ in 0..10 {
        press(&mut state, &mut r, '}');
    }
    assert_eq!(shown(&state), Some(at(300)), "clamped to the end");
    // After a seek the sparklines have their warm-up history and the CPU its previous sample.
    let web01 = state.node("web01").expect("web01");
    assert!(
        web01.load_history.len() >= 12,
        "{}",
        web01.load_history.len()
    );
    assert!(web01.stats.as_ref().and_then(|s| s.cpu_total).is_some());
    // The view (sort, selection) survives seeking.
    press(&mut state, &mut r, 's');
    let sort = state.ui().service_sort;
    press(&mut state, &mut r, '[');
    assert_eq!(state.ui().service_sort, sort);
}

#[test]
fn t_and_shift_t_step_one_sample_and_pause() {
    let (_d, mut state, mut r) = replay();
    r.advance(&mut state, Duration::from_secs(5));
    assert_eq!(shown(&state), Some(at(6)));
    assert_eq!(press(&mut state, &mut r, 't'), Some(Command::Step(1)));
    assert!(mode(&state).0, "stepping pauses");
    assert_eq!(shown(&state), Some(at(7)));
    press(&mut state, &mut r, 'T');
    assert_eq!(shown(&state), Some(at(6)));
    press(&mut state, &mut r, 'T');
    assert_eq!(shown(&state), Some(at(5)));
    r.advance(&mut state, Duration::from_secs(5));
    assert_eq!(shown(&state), Some(at(5)), "still paused");
}

#[test]
fn g_goes_to_a_typed_time() {
    let (_d, mut state, mut r) = replay();
    press(&mut state, &mut r, 'g');
    assert_eq!(state.ui().goto(), Some(""));
    for c in "2m".chars() {
        press(&mut state, &mut r, c);
    }
    let cmd = handle_key(
        &mut state,
        &Keymap::defaults(),
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
    );
    let cmd = cmd.expect("a seek");
    r.apply(&mut state, &cmd);
    // 2 min from the start (the first frame, at 1 s).
    assert_eq!(shown(&state), Some(at(121)));
    assert_eq!(state.ui().goto(), None);
    // A clock time, UTC: 00:04:00 on the recording's day.
    press(&mut state, &mut r, 'g');
    for c in "00:04:00".chars() {
        press(&mut state, &mut r, c);
    }
    let cmd = handle_key(
        &mut state,
        &Keymap::defaults(),
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
    );
    r.apply(&mut state, &cmd.expect("a seek"));
    assert_eq!(shown(&state), Some(at(240)));
    // Nonsense: a message, no seek.
    press(&mut state, &mut r, 'g');
    press(&mut state, &mut r, 'x');
    let cmd = handle_key(
        &mut state,
        &Keymap::defaults(),
        KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
    );
    assert_eq!(cmd, None);
    assert!(state.ui().toast.as_ref().is_some_and(|t| t.error));
}

#[test]
fn the_replay_stops_at_the_end_and_space_plays_it_again() {
    let (_d, mut state, mut r) = replay();
    for _ in 0..6 {
        press(&mut state, &mut r, '+');
    }
    r.advance(&mut state, Duration::from_secs(10));
    assert_eq!(shown(&state), Some(at(300)));
    assert!(mode(&state).0, "paused at the end");
    press(&mut state, &mut r, ' ');
    assert_eq!(shown(&state), Some(at(1)), "from the top");
}

#[test]
fn live_mode_keeps_the_replay_keys_harmless() {
    let mut s = State::new(StateOptions::default());
    assert_eq!(s.update(lbtop::app::Action::SeekForward), None);
    assert!(s.ui().toast.as_ref().is_some_and(|t| t.error), "says why");
    assert_eq!(s.ui().popup, None, "and takes no keys");
    assert_eq!(
        s.update(lbtop::app::Action::ToggleRecord),
        Some(Command::ToggleRecord),
        "the next key acts"
    );
}

/// `n` and `N` on the demo recording (it has alerts ▲ and actions ◆): each goes to the next or
/// previous marked moment, in order, and says so at either end.
#[test]
fn n_and_shift_n_go_to_the_next_and_previous_alert_or_action_of_the_demo() {
    use lbtop::app::replay::SeekTo;
    use lbtop::record::format::flags;
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    let mut state = State::new(StateOptions::default());
    let mut r = Replayer::new(
        Player::open(std::path::Path::new(demo)).expect("open"),
        &mut state,
        "demo.lbrec",
    );
    press(&mut state, &mut r, ' ');
    let view = state.replay().expect("replay").clone();
    let mut times: Vec<Timestamp> = view
        .marks
        .iter()
        .map(|&(t, _)| t)
        .filter(|&t| t > view.position)
        .collect();
    times.sort();
    times.dedup();
    assert!(view.marks.iter().any(|&(_, f)| f & flags::ACTION != 0));
    assert!(
        view.marks
            .iter()
            .any(|&(_, f)| f & (flags::WARNING | flags::CRITICAL) != 0)
    );
    for &t in &times {
        assert_eq!(
            press(&mut state, &mut r, 'n'),
            Some(Command::Seek(SeekTo::At(t)))
        );
        assert_eq!(state.replay().map(|v| v.position), Some(t));
    }
    assert_eq!(
        press(&mut state, &mut r, 'n'),
        None,
        "no mark after the last"
    );
    assert!(state.ui().toast.is_some(), "and it says so");
    for &t in times.iter().rev().skip(1) {
        assert_eq!(
            press(&mut state, &mut r, 'N'),
            Some(Command::Seek(SeekTo::At(t)))
        );
        assert_eq!(state.replay().map(|v| v.position), Some(t));
    }
}
