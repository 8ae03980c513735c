//! Recording and replay in a real terminal: the built binary runs in tmux (as in `e2e_tmux.rs`),
//! keys are sent, the screen is read back.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod support;

use lbtop::app::{State, StateOptions};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};
use support::tmux::Tmux;

/// The replay's clock on the position bar: `2026-01-01 00:01:40` → `00:01:40`.
fn bar_clock(screen: &str) -> Option<String> {
    let line = screen
        .lines()
        .find(|l| l.contains(" / ") && l.contains("2026-01-01 "))?;
    let i = line.find("2026-01-01 ")?;
    line.get(i + 11..i + 19).map(str::to_string)
}

#[test]
fn replay_in_a_terminal_pauses_on_space_seeks_on_bracket_and_quits_on_q() {
    let t = Tmux::new("replay");
    let file = t.path().join("cluster.lbrec");
    let shape = ClusterShape {
        nodes: 6,
        cores: 4,
        services: 3,
        reals_per_service: 3,
    };
    let opts = WriterOptions::default();
    let mut w = Writer::new(
        std::fs::File::create(&file).expect("create"),
        scripted_info(shape, &opts),
        opts,
    )
    .expect("writer");
    record_scripted(
        &mut w,
        &mut ScriptedCluster::new(shape, 7),
        &mut State::new(StateOptions::default()),
        600,
    )
    .expect("record");
    w.finish().expect("finish");

    t.start(&format!("replay {}", file.display()));
    let s = t.wait_for(
        |s| s.contains("REPLAY") && s.contains("web06"),
        Duration::from_secs(20),
    );
    assert!(s.contains("▶"), "playing:\n{s}");
    assert!(s.contains("Services") && s.contains("Nodes 6"), "{s}");
    t.keys("Space");
    let s = t.wait_for(|s| s.contains("❚❚"), Duration::from_secs(5));
    assert!(s.contains("❚❚"), "paused:\n{s}");
    let before = bar_clock(&s).expect("a clock on the bar");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        bar_clock(&t.screen()).as_deref(),
        Some(before.as_str()),
        "paused"
    );
    t.keys("]");
    let s = t.wait_for(
        |s| bar_clock(s).is_some_and(|c| c != before),
        Duration::from_secs(5),
    );
    let after = bar_clock(&s).expect("clock");
    let secs = |c: &str| -> i64 {
        let p: Vec<i64> = c.split(':').map(|x| x.parse().expect("digits")).collect();
        p[0] * 3600 + p[1] * 60 + p[2]
    };
    assert_eq!(secs(&after) - secs(&before), 10, "{before} → {after}");
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(10)).as_deref(), Some("0"));
}

#[test]
fn r_in_the_live_view_records_to_a_file_that_replays() {
    let t = Tmux::new("rkey");
    t.start("--interval 200ms --router none");
    t.wait_for(
        |s| s.contains("LIVE") && s.contains("nodes 1/1 ok"),
        Duration::from_secs(20),
    );
    t.keys("R");
    let s = t.wait_for(
        |s| s.contains("● REC") && s.contains("recording to"),
        Duration::from_secs(5),
    );
    assert!(s.contains("recording to"), "{s}");
    std::thread::sleep(Duration::from_millis(1500));
    // The message takes no keys: the next R stops the recording.
    t.keys("R");
    let s = t.wait_for(|s| s.contains("recording saved"), Duration::from_secs(5));
    assert!(!s.contains("● REC"), "{s}");
    // It goes by itself.
    let s = t.wait_for(|s| !s.contains("recording saved"), Duration::from_secs(15));
    assert!(s.contains("LIVE"), "{s}");
    t.keys("R");
    t.wait_for(|s| s.contains("● REC"), Duration::from_secs(5));
    // And q quits at once, the message on screen or not (stopping the recording).
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(10)).as_deref(), Some("0"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(t.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "lbrec"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let name = files[0].file_name().and_then(|n| n.to_str()).unwrap_or("");
    assert!(name.starts_with("lbtop-") && name.len() == "lbtop-20260101-120000.lbrec".len());
    let mut p = Player::open(&files[0]).expect("replayable");
    assert!(p.recording.indexed);
    let mut n = 0;
    while p.next_frame().is_some() {
        n += 1;
    }
    assert!(n >= 4, "{n} frames in ~1.5 s at 200 ms");
}

/// A tiny tmpfs, unmounted on drop. `None` where mounting is not allowed.
struct TinyFs(tempfile::TempDir);

impl TinyFs {
    fn mount(bytes: usize) -> Option<Self> {
        let d = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(d.path())
            .output()
            .ok()?
            .status
            .success();
        ok.then_some(Self(d))
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).output();
    }
}

#[test]
fn a_full_disk_stops_the_recording_visibly_and_the_live_view_carries_on() {
    let Some(fs) = TinyFs::mount(16 * 1024) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let file = fs.0.path().join("full.lbrec");
    let t = Tmux::new("full");
    t.start(&format!(
        "--interval 100ms --router none --record {}",
        file.display()
    ));
    let s = t.wait_for(|s| s.contains("REC stopped"), Duration::from_secs(60));
    assert!(s.contains("REC stopped: No space left on device"), "{s}");
    assert!(
        s.contains("the live view carries on"),
        "a popup says so:\n{s}"
    );
    t.keys("Escape");
    // Still live: the node keeps being polled.
    let s = t.wait_for(
        |s| s.contains("LIVE") && s.contains("nodes 1/1 ok"),
        Duration::from_secs(5),
    );
    assert!(
        s.contains("REC stopped"),
        "the error stays on the status line:\n{s}"
    );
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(10)).as_deref(), Some("0"));
    // What fit on the disk is readable up to the last whole frame.
    let mut p = Player::open(&file).expect("readable");
    let mut n = 0;
    while p.next_frame().is_some() {
        n += 1;
    }
    assert!(n > 0);
}
