//! `lbtop record` and `lbtop replay --export` on this machine: a headless recording of the local
//! node and router replays and exports; a full disk is an error, not a hang.

mod support;

use support::bin::lbtop;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use lbtop::record::format::HeaderInfo;
use lbtop::record::writer::{Sink, WriterOptions};
use lbtop::record::{Item, Player, Recorder};
use lbtop::report::export::CSV_COLUMNS;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

#[test]
fn a_headless_recording_of_this_machine_replays_and_exports() {
    let d = tempfile::tempdir().expect("dir");
    let file = d.path().join("local.lbrec");
    let out = lbtop(&[
        "record",
        s(&file),
        "--duration",
        "2s",
        "--nodes",
        "local",
        "--router",
        "local",
        "--interval",
        "250ms",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("recorded"), "{said}");
    // Eight frames 250 ms apart cover the 2 s asked for (not the 1.75 s between the first
    // and the last).
    assert!(said.contains(" in 2s, to "), "{said}");

    let mut p = Player::open(&file).expect("a replayable file");
    assert!(p.recording.indexed, "closed cleanly, with its index");
    assert_eq!(p.recording.info().interval_ms, 250);
    assert_eq!(p.recording.info().router.as_deref(), Some("local"));
    assert_eq!(p.recording.info().nodes.len(), 1);
    let mut nodes = 0;
    while let Some(f) = p.next_frame() {
        nodes += f
            .events
            .iter()
            .filter(|e| matches!(e, lbtop::model::sample::SourceEvent::Node { .. }))
            .count();
    }
    assert!(nodes >= 5, "2 s at 250 ms: {nodes} node samples");

    // JSON: one schema-1 snapshot per line, exactly as --once --json names things.
    let out = lbtop(&["replay", s(&file), "--export", "json"]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(lines.len() >= 4, "{} lines", lines.len());
    for v in &lines {
        assert_eq!(v["schema"], 1);
        assert_eq!(v["nodes"][0]["status"], "ok");
        assert_eq!(v["router"]["host"], "local");
    }
    assert!(
        lines.last().expect("a line")["nodes"][0]["cpu_total_percent"].is_number(),
        "CPU percentages derive from consecutive samples"
    );

    // CSV: the documented columns, one row per node sample.
    let out = lbtop(&["replay", s(&file), "--export", "csv"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = text.lines();
    assert_eq!(rows.next(), Some(CSV_COLUMNS.join(",").as_str()));
    let node_rows: Vec<&str> = rows
        .filter(|r| r.split(',').nth(1) == Some("node"))
        .collect();
    assert_eq!(node_rows.len(), nodes);
    for r in &node_rows {
        assert_eq!(r.split(',').count(), CSV_COLUMNS.len(), "{r}");
    }

    // --from/--to narrow the export; --output writes a file.
    let part = d.path().join("part.jsonl");
    let out = lbtop(&[
        "replay",
        s(&file),
        "--export",
        "json",
        "--from",
        "500ms",
        "--to",
        "1s",
        "-o",
        s(&part),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = std::fs::read_to_string(&part)
        .expect("export file")
        .lines()
        .count();
    assert!((1..lines.len()).contains(&n), "{n} of {}", lines.len());

    // Never overwritten.
    let out = lbtop(&["record", s(&file), "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn a_full_disk_at_the_start_is_a_clear_error() {
    let out = lbtop(&[
        "record",
        "/dev/full",
        "--duration",
        "1s",
        "--router",
        "none",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/dev/full: No space left on device"),
        "{stderr}"
    );
}

/// A disk that fills up after `room` bytes.
struct FillsUp {
    room: usize,
}

impl Write for FillsUp {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.len() > self.room {
            self.room = 0;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.room -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for FillsUp {}

#[test]
fn a_disk_filling_up_stops_the_recording_with_the_error_and_nothing_blocks() {
    let shape = ClusterShape {
        nodes: 3,
        cores: 2,
        services: 1,
        reals_per_service: 2,
    };
    let opts = WriterOptions::default();
    let info: HeaderInfo = lbtop::testing::scripted_info(shape, &opts);
    let r = Recorder::start_with(
        FillsUp { room: 4000 },
        Path::new("full.lbrec"),
        info,
        Duration::from_millis(50),
        opts,
    )
    .expect("the header fits");
    let mut c = ScriptedCluster::new(shape, 1);
    let start = std::time::Instant::now();
    while r.status().error.is_none() && start.elapsed() < Duration::from_secs(20) {
        for e in c.step() {
            r.send(Item::Event(e));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = r.status();
    assert!(
        st.error
            .as_deref()
            .is_some_and(|e| e.contains("No space left")),
        "{st:?}"
    );
    assert!(st.finished);
    // Sending after the failure neither blocks nor panics.
    for _ in 0..20_000 {
        r.send(Item::Event(c.step().remove(0)));
    }
    let st = r.stop();
    assert!(st.error.is_some());
}

#[test]
fn a_reversed_or_empty_export_range_exits_2_saying_why() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    for (args, said) in [
        (&["--from", "10m", "--to", "1m"][..], "is after --to"),
        (&["--from", "5h"][..], "no frame between"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(["replay", demo, "--export", "csv"])
            .args(args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: no output");
    }
}

#[test]
fn an_output_that_is_the_recording_itself_is_refused_and_the_recording_kept() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    let dir = tempfile::tempdir().expect("dir");
    let rec = dir.path().join("r.lbrec");
    std::fs::copy(demo, &rec).expect("copy the demo");
    let before = std::fs::read(&rec).expect("read");
    let link = dir.path().join("link.lbrec");
    std::os::unix::fs::symlink(&rec, &link).expect("symlink");
    let hard = dir.path().join("hard.lbrec");
    std::fs::hard_link(&rec, &hard).expect("hard link");
    for out in [&rec, &link, &hard] {
        for args in [
            vec!["replay", s(&rec), "--export", "csv", "-o", s(out)],
            vec!["report", s(&rec), "-o", s(out)],
        ] {
            let run = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
                .args(&args)
                .output()
                .expect("run");
            let err = String::from_utf8_lossy(&run.stderr);
            assert!(!run.status.success(), "{args:?}: {err}");
            assert!(
                err.contains("is the recording being read"),
                "{args:?}: {err}"
            );
            assert_eq!(std::fs::read(&rec).expect("read"), before, "{args:?}");
        }
    }
    // A device is written to as it is.
    for args in [
        vec!["replay", s(&rec), "--export", "csv", "-o", "/dev/null"],
        vec!["report", s(&rec), "-o", "/dev/null"],
    ] {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(&args)
            .output()
            .expect("run");
        assert!(
            run.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // Another file is written, and emptied first.
    let other = dir.path().join("out.csv");
    std::fs::write(&other, "x".repeat(1 << 20)).expect("write");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["replay", s(&rec), "--export", "csv", "-o", s(&other)])
        .output()
        .expect("run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&other).expect("read");
    assert!(
        text.starts_with("time,") && !text.contains("xxx"),
        "{}",
        &text[..80]
    );
}

#[test]
fn exports_carry_the_alerts_and_actions_and_csv_numbers_have_a_fixed_precision() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    let run = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(["replay", demo, "--export", format])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    };
    // JSON lines: every line has `events`; the demo's drain and restore are there as actions.
    let json = run("json");
    let mut actions = Vec::new();
    let mut alerts = 0;
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        for e in v["events"].as_array().expect("events on every line") {
            match e["type"].as_str() {
                Some("action") => actions.push(e["new_weight"].as_i64().expect("weight")),
                Some("alert") => alerts += 1,
                other => panic!("event type {other:?}"),
            }
        }
    }
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0], 0, "the drain first");
    assert!(alerts > 0);
    // CSV: rows of their own, and numbers with the same places in a column.
    let csv = run("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (kind, mem, load1, message) = (
        col("kind"),
        col("memory_used_percent"),
        col("load1"),
        col("message"),
    );
    let mut kinds = std::collections::BTreeSet::new();
    for record in reader.records() {
        let r = record.expect("a row");
        kinds.insert(r[kind].to_string());
        if &r[kind] == "action" {
            assert!(r[message].contains("weight"), "{r:?}");
        }
        for (c, places) in [(mem, 1), (load1, 2)] {
            if let Some((_, frac)) = r[c].split_once('.') {
                assert_eq!(frac.len(), places, "{}: {:?}", &headers[c], &r[c]);
            }
        }
    }
    for k in ["node", "real", "alert", "action"] {
        assert!(kinds.contains(k), "no {k} rows: {kinds:?}");
    }
}

#[test]
fn a_recorded_pair_replays_as_a_pair_with_its_master() {
    use lbtop::model::sample::{LocalAddrs, Report, ServiceKey, SourceEvent};
    let shape = ClusterShape {
        nodes: 1,
        cores: 2,
        services: 2,
        reals_per_service: 2,
    };
    let opts = WriterOptions::default();
    let mut info: HeaderInfo = lbtop::testing::scripted_info(shape, &opts);
    info.pair = Some(["lb1".into(), "lb2".into()]);
    let dir = tempfile::tempdir().expect("temp");
    let file = dir.path().join("pair.lbrec");
    let mut w =
        lbtop::record::Writer::new(std::fs::File::create(&file).expect("create"), info, opts)
            .expect("header");
    let mut c = ScriptedCluster::new(shape, 2);
    for _ in 0..4 {
        for e in c.step() {
            let SourceEvent::Router {
                report: Report::Sample(mut a),
                ..
            } = e
            else {
                w.push(Item::Event(e));
                continue;
            };
            let mut b = a.clone();
            // lb2 holds the VIPs: it is the master.
            b.addrs = Some(LocalAddrs {
                v4: a
                    .services
                    .iter()
                    .filter_map(|s| match s.key {
                        ServiceKey::Addr {
                            address: std::net::IpAddr::V4(v),
                            ..
                        } => Some((v, 32)),
                        _ => None,
                    })
                    .collect(),
                v6: Vec::new(),
            });
            a.addrs = Some(LocalAddrs::default());
            for (host, s) in [("lb1", a), ("lb2", b)] {
                w.push(Item::Event(SourceEvent::Router {
                    host: host.into(),
                    report: Report::Sample(s),
                }));
            }
        }
        w.flush_frame().expect("frame");
    }
    w.finish().expect("finish");
    let out = lbtop(&["replay", s(&file), "--export", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(
        last["router"]["pair"]["master"], "lb2",
        "{}",
        last["router"]
    );
    assert_eq!(last["router"]["host"], "lb2");
    assert_eq!(last["router"]["problems"], serde_json::json!([]));
}
