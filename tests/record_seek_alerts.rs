//! After a seek in replay, the alerts pane shows what playing the recording from the start up to
//! the same moment shows — the alert history up to the pane's limit, the alerts on and since
//! when, the nodes' alert levels — not only what the warm-up before the seek raised. Likewise an
//! export that starts later in the recording.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::playback::{self, Range};
use lbtop::app::replay::SeekTo;
use lbtop::app::{Command, State, StateOptions};
use lbtop::config::Keymap;
use lbtop::model::alert::{AlertEvent, Severity};
use lbtop::model::sample::Timestamp;
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::report;
use lbtop::report::export;
use lbtop::runtime::handle_key;
use lbtop::runtime::replay::Replayer;
use lbtop::testing::scripted::{Bursts, ClusterShape, EPOCH, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const SHAPE: ClusterShape = ClusterShape {
    nodes: 4,
    cores: 2,
    services: 2,
    reals_per_service: 2,
};

/// web02 runs over its 2 cores for 2 s of every 4: an alert raised and one cleared every 4 s,
/// so the recording holds more alert events than the pane keeps (1,000).
const BURSTS: Bursts = Bursts {
    node: 1,
    every: 4,
    length: 2,
};

/// 40 minutes at 1 s; frame `i` is at EPOCH + (i + 1) s.
const SECONDS: usize = 2400;

fn record(dir: &Path) -> PathBuf {
    let path = dir.join("bursts.lbrec");
    let opts = WriterOptions::default();
    let f = std::fs::File::create(&path).expect("create");
    let mut w = Writer::new(f, scripted_info(SHAPE, &opts), opts).expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 9).with_bursts(BURSTS);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, SECONDS).expect("record");
    w.finish().expect("finish");
    path
}

fn at(s: i64) -> Timestamp {
    Timestamp(EPOCH.0 + 1000 * s)
}

fn replayer(path: &Path) -> (State, Replayer) {
    let mut state = State::new(StateOptions::default());
    let r = Replayer::new(
        Player::open(path).expect("open"),
        &mut state,
        "bursts.lbrec",
    );
    (state, r)
}

/// What an operator who watched the replay from the start sees at `t`.
fn played_to(path: &Path, t: Timestamp) -> State {
    let (mut state, mut r) = replayer(path);
    let from = r.position();
    r.advance(
        &mut state,
        Duration::from_millis((t.0 - from.0).max(0) as u64),
    );
    assert_eq!(r.position(), t);
    state
}

fn snapshot(s: &State) -> String {
    let mut line = Vec::new();
    report::write_snapshot(s, &mut line);
    String::from_utf8(line).expect("utf-8")
}

/// The alerts pane (the log it lists and the count of alerts on), the nodes' levels, and the
/// whole JSON snapshot (alerts on, since when, each node's alert) are the same.
fn assert_same_alerts(sought: &State, played: &State, what: &str) {
    let (a, b) = (sought.alerts().log(), played.alerts().log());
    assert_eq!(a.len(), b.len(), "{what}: the pane lists as many alerts");
    assert!(a == b, "{what}: the pane lists the same alerts");
    assert_eq!(
        sought.alerts().active_count(),
        played.alerts().active_count(),
        "{what}"
    );
    let levels =
        |s: &State| -> Vec<Option<Severity>> { s.nodes().iter().map(|n| n.level).collect() };
    assert_eq!(levels(sought), levels(played), "{what}: node levels");
    assert_eq!(
        snapshot(sought),
        snapshot(played),
        "{what}: the JSON snapshot"
    );
}

fn raised_before(log: &[AlertEvent], t: Timestamp) -> usize {
    log.iter().filter(|e| e.raised && e.time < t).count()
}

#[test]
fn after_a_seek_the_alerts_pane_is_what_playing_from_the_start_shows() {
    let d = tempfile::tempdir().expect("dir");
    let path = record(d.path());
    // Inside the first warm-up, a few minutes in, and late: the pane is full (1,000 events) and
    // its oldest entries are long before the keyframe the seek starts from.
    for s in [5, 13, 200, 1234, 2301, SECONDS as i64] {
        let t = at(s);
        let played = played_to(&path, t);
        let (mut sought, mut r) = replayer(&path);
        assert!(r.apply(&mut sought, &Command::Seek(SeekTo::At(t))));
        assert_eq!(r.position(), t);
        assert_same_alerts(&sought, &played, &format!("{s} s in"));
        if s >= 200 {
            let log = sought.alerts().log();
            assert!(
                raised_before(log, at(s - 60)) > 10,
                "{s} s in: alerts from long before the warm-up are listed"
            );
        }
        if s >= 2301 {
            assert_eq!(sought.alerts().log().len(), 1000, "the pane keeps 1,000");
        }
    }
}

fn key(state: &mut State, r: &mut Replayer, code: KeyCode) {
    let cmd = handle_key(
        state,
        &Keymap::defaults(),
        KeyEvent::new(code, KeyModifiers::NONE),
    );
    if let Some(c) = &cmd {
        r.apply(state, c);
    }
}

#[test]
fn seeking_back_and_forth_with_the_keys_keeps_the_alert_history() {
    let d = tempfile::tempdir().expect("dir");
    let path = record(d.path());
    let (mut state, mut r) = replayer(&path);
    // Paused, so that only the keys move the position.
    key(&mut state, &mut r, KeyCode::Char(' '));
    let mut moves: Vec<(&str, Vec<KeyCode>)> = vec![
        ("}", vec![KeyCode::Char('}')]),
        ("} } }", vec![KeyCode::Char('}'); 3]),
        ("]", vec![KeyCode::Char(']')]),
        ("[", vec![KeyCode::Char('[')]),
        ("{", vec![KeyCode::Char('{')]),
    ];
    let goto: Vec<KeyCode> = std::iter::once(KeyCode::Char('g'))
        .chain("00:35:00".chars().map(KeyCode::Char))
        .chain(std::iter::once(KeyCode::Enter))
        .collect();
    moves.push(("g 00:35:00", goto));
    moves.push(("{ after g", vec![KeyCode::Char('{')]));
    for (what, keys) in moves {
        for k in keys {
            key(&mut state, &mut r, k);
        }
        let t = r.position();
        assert_same_alerts(&state, &played_to(&path, t), what);
    }
    assert_eq!(r.position(), at(34 * 60));
}

#[test]
fn an_export_from_a_later_time_has_the_alerts_of_the_full_export() {
    let d = tempfile::tempdir().expect("dir");
    let path = record(d.path());
    let export = |range: Range| -> Vec<String> {
        let mut p = Player::open(&path).expect("open");
        let mut s = State::new(StateOptions::default());
        playback::declare(&mut s, &p.recording.header.info.clone());
        let mut out = Vec::new();
        export::json(&mut p, &mut s, range, &mut out).expect("export");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(str::to_string)
            .collect()
    };
    let all = export(Range::default());
    let from = 1500usize;
    let later = export(Range {
        from: Some(at(from as i64 + 1)),
        to: None,
    });
    assert_eq!(later.len(), SECONDS - from);
    // Alerts on, since when, and each node's alert: every line as the full export has it.
    assert!(later == all[from..], "the lines from 25:01 on are the same");
}
