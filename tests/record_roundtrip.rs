//! Recording round trips: what the scripted cluster produced, recorded and replayed, gives the
//! exact same raw events, and the same state and `--once --json` snapshots as live ingestion.

use std::path::{Path, PathBuf};

use lbtop::app::playback::{self, Range};
use lbtop::app::{State, StateOptions};
use lbtop::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Item, Player, Writer};
use lbtop::report;
use lbtop::report::export;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const SHAPE: ClusterShape = ClusterShape {
    nodes: 8,
    cores: 4,
    services: 4,
    reals_per_service: 3,
};

fn record(path: &Path, steps: usize, options: WriterOptions) {
    let file = std::fs::File::create(path).expect("create");
    let mut w = Writer::new(file, scripted_info(SHAPE, &options), options).expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 7);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, steps).expect("record");
    w.finish().expect("finish");
}

fn small_groups() -> WriterOptions {
    WriterOptions {
        keyframe_every: std::time::Duration::from_secs(5),
        ..WriterOptions::default()
    }
}

fn temp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("temp dir");
    let p = d.path().join(name);
    (d, p)
}

/// Live: the snapshot after each poll, ingested and ticked as the live loop does.
fn live_snapshots(steps: usize) -> (Vec<Vec<SourceEvent>>, Vec<String>) {
    let mut c = ScriptedCluster::new(SHAPE, 7);
    let mut s = State::new(StateOptions::default());
    let info = scripted_info(SHAPE, &WriterOptions::default());
    playback::declare(&mut s, &info);
    let mut events = Vec::new();
    let mut snaps = Vec::new();
    for _ in 0..steps {
        let step = c.step();
        events.push(step.clone());
        for e in step {
            s.ingest(e);
        }
        s.tick(c.time());
        let mut line = Vec::new();
        report::write_snapshot(&s, &mut line);
        snaps.push(String::from_utf8(line).expect("utf-8"));
    }
    (events, snaps)
}

#[test]
fn replayed_events_are_exactly_the_recorded_raw_samples() {
    let (_d, path) = temp("a.lbrec");
    record(&path, 40, small_groups());
    let (live, _) = live_snapshots(40);
    let mut p = Player::open(&path).expect("open");
    assert!(
        p.recording.indexed,
        "a cleanly closed file opens by its index"
    );
    let mut frames = 0;
    while let Some(d) = p.next_frame() {
        assert_eq!(d.events, live[d.index], "frame {}", d.index);
        frames += 1;
    }
    assert_eq!(frames, 40);
    assert_eq!(p.damage_report(), None);
}

#[test]
fn replay_gives_the_same_json_snapshots_as_live_ingestion() {
    let (_d, path) = temp("b.lbrec");
    record(&path, 40, small_groups());
    let (_, live) = live_snapshots(40);
    let mut p = Player::open(&path).expect("open");
    let mut s = State::new(StateOptions::default());
    let mut out = Vec::new();
    let summary = export::json(&mut p, &mut s, Range::default(), &mut out).expect("export");
    assert_eq!(summary.frames, 40);
    let lines: Vec<&str> = std::str::from_utf8(&out).expect("utf8").lines().collect();
    assert_eq!(lines.len(), 40);
    for (i, (a, b)) in lines.iter().zip(&live).enumerate() {
        // The export's one field more, `events`, closes each line (docs/json.md).
        let at = a.rfind(",\"events\":[").expect("events");
        let snapshot = format!("{}}}", &a[..at]);
        assert_eq!(&snapshot, b, "snapshot {i} differs");
    }
}

#[test]
fn seeking_gives_the_same_snapshot_as_playing_through() {
    let (_d, path) = temp("c.lbrec");
    record(&path, 60, small_groups());
    let (_, live) = live_snapshots(60);
    let mut p = Player::open(&path).expect("open");
    for target in [59usize, 20, 13, 33] {
        let mut s = State::new(StateOptions::default());
        playback::declare(&mut s, &p.recording.header.info.clone());
        playback::seek(&mut p, &mut s, target);
        let mut snap = Vec::new();
        report::write_snapshot(&s, &mut snap);
        // Rates, CPU, loads and memory come from the last two samples, the alerts from the
        // recording's history and the warm-up: the whole snapshot is identical after a seek.
        assert_eq!(
            String::from_utf8(snap).expect("utf-8"),
            live[target],
            "frame {target}"
        );
        assert_eq!(p.position(), target + 1);
    }
}

/// The scripted cluster's polls with its last node renamed `extra` (a node the header does not
/// declare, as Prometheus's instances are not), which leaves its source at poll `gone` (a
/// `Gone` status, then nothing) and comes back at poll `back`.
fn steps_with_a_node_that_leaves(steps: usize, gone: usize, back: usize) -> Vec<Vec<SourceEvent>> {
    let mut c = ScriptedCluster::new(SHAPE, 7);
    let last = ScriptedCluster::node_name(SHAPE.nodes - 1);
    (0..steps)
        .map(|i| {
            let mut step: Vec<SourceEvent> = c
                .step()
                .into_iter()
                .filter_map(|e| match e {
                    SourceEvent::Node { name, host, report } if name == last => {
                        (i < gone || i >= back).then(|| SourceEvent::Node {
                            name: "extra".into(),
                            host,
                            report,
                        })
                    }
                    other => Some(other),
                })
                .collect();
            if i == gone {
                step.push(SourceEvent::Node {
                    name: "extra".into(),
                    host: "10.0.9.9".into(),
                    report: Report::Status {
                        time: Timestamp(c.time().0),
                        status: HostStatus::Gone,
                        message: Some("missing for 600 s".into()),
                    },
                });
            }
            step
        })
        .collect()
}

#[test]
fn a_node_that_leaves_and_comes_back_replays_as_it_was_live() {
    let (steps, gone, back) = (30, 8, 17);
    let polls = steps_with_a_node_that_leaves(steps, gone, back);
    let (_d, path) = temp("gone.lbrec");
    let options = small_groups();
    let info = scripted_info(SHAPE, &options);
    // Live, as `record_scripted` records it, keeping each poll's snapshot.
    let mut w = Writer::new(
        std::fs::File::create(&path).expect("create"),
        info.clone(),
        options,
    )
    .expect("writer");
    let mut s = State::new(StateOptions::default());
    playback::declare(&mut s, &info);
    let mut live = Vec::new();
    let mut c = ScriptedCluster::new(SHAPE, 7);
    for step in &polls {
        c.step();
        for e in step {
            w.push(Item::Event(e.clone()));
            for a in s.ingest(e.clone()) {
                w.push(Item::Alert(a));
            }
        }
        for a in s.tick(c.time()) {
            w.push(Item::Alert(a));
        }
        w.flush_frame().expect("frame");
        let mut line = Vec::new();
        report::write_snapshot(&s, &mut line);
        live.push(String::from_utf8(line).expect("utf-8"));
    }
    w.finish().expect("finish");
    assert!(
        !live[gone].contains("\"extra\""),
        "forgotten live: {}",
        live[gone]
    );
    assert!(live[back].contains("\"extra\""), "back live");
    // The same events come back: the writer and the player drop the same delta base at the
    // Gone, so the sample after the return decodes.
    let mut p = Player::open(&path).expect("open");
    while let Some(d) = p.next_frame() {
        assert_eq!(d.events, polls[d.index], "frame {}", d.index);
    }
    assert_eq!(p.damage_report(), None);
    // Seeking to while it is gone, and to after it is back, gives what live showed.
    let mut p = Player::open(&path).expect("open");
    for target in [gone + 2, back + 3, steps - 1] {
        let mut s = State::new(StateOptions::default());
        playback::declare(&mut s, &p.recording.header.info.clone());
        playback::seek(&mut p, &mut s, target);
        let mut snap = Vec::new();
        report::write_snapshot(&s, &mut snap);
        assert_eq!(
            String::from_utf8(snap).expect("utf-8"),
            live[target],
            "frame {target}"
        );
    }
}
