//! Criterion benchmarks for recording and replay, each next to a named alternative measured in the
//! same run. Results go to BENCHMARKS.md, section "Recording".
//!
//! The cluster is the issue's: 50 nodes × 32 cores plus 20 services × 10 real servers, polled at
//! 1 s, from the scripted source. The 1-hour and 24-hour recordings are made once and kept in
//! `target/lbrec-bench/`.
//!
//! - size (printed, not timed): lbtop's format vs the same events as CBOR without delta coding
//!   and as JSON lines, both zstd-compressed per frame.
//! - seek_24h: open the 24-hour file and go to a time (the alert history, keyframe + warm-up), vs
//!   playing from the start up to the first hour (what seeking costs without keyframes, for only
//!   1 h of 24); also in a 24-hour file with an alert raised and cleared every 2 minutes.
//! - export_1h: JSON lines (the hand-written writer, and the serde_json path it replaced) and CSV
//!   of one hour, vs decoding the hour without the state or output.
//! - write_one_poll: encoding and writing one poll, vs serialising it as JSON and zstd.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../tests/support/serde_snapshot.rs"]
mod serde_snapshot;

use criterion::{Criterion, criterion_group, criterion_main};
use lbtop::app::playback::{self, Range, declare, feed};
use lbtop::app::{State, StateOptions};
use lbtop::model::sample::{SourceEvent, Timestamp};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Item, Player, Writer};
use lbtop::report::export;
use lbtop::testing::scripted::{Bursts, ClusterShape, EPOCH, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const SHAPE: ClusterShape = ClusterShape {
    nodes: 50,
    cores: 32,
    services: 20,
    reals_per_service: 10,
};

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lbrec-bench");
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

/// web02 over its core count for a minute of every two, all day: 1,440 alerts raised and 1,440
/// cleared in 24 h, in 2,880 frames, for the seek's alert history to read.
const BURSTS: Bursts = Bursts {
    node: 1,
    every: 120,
    length: 60,
};

/// A recording of `seconds` polls, made once.
fn recording(seconds: usize) -> PathBuf {
    recording_with(seconds, None)
}

fn recording_with(seconds: usize, bursts: Option<Bursts>) -> PathBuf {
    let name = match bursts {
        Some(b) => format!("cluster-{seconds}s-bursts-{}-{}.lbrec", b.every, b.length),
        None => format!("cluster-{seconds}s.lbrec"),
    };
    let path = dir().join(name);
    if Player::open(&path).is_ok_and(|p| p.len() == seconds) {
        return path;
    }
    let _ = std::fs::remove_file(&path);
    let t = Instant::now();
    let opts = WriterOptions::default();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = Writer::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        scripted_info(SHAPE, &opts),
        opts,
    )
    .expect("writer");
    let mut c = ScriptedCluster::new(SHAPE, 42);
    if let Some(b) = bursts {
        c = c.with_bursts(b);
    }
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, seconds).expect("record");
    w.finish().expect("finish");
    eprintln!(
        "made {} ({} MB) in {:.1?}",
        path.display(),
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) / 1_000_000,
        t.elapsed()
    );
    path
}

/// Bytes per hour of the alternatives: every poll's events as one frame, CBOR or JSON lines,
/// zstd at the same level, no delta coding.
fn alternative_sizes(seconds: usize) -> (u64, u64) {
    let mut c = ScriptedCluster::new(SHAPE, 42);
    let (mut cbor_total, mut json_total) = (0u64, 0u64);
    let level = WriterOptions::default().level;
    for _ in 0..seconds {
        let events = c.step();
        let mut cbor = Vec::new();
        ciborium::into_writer(&events, &mut cbor).expect("cbor");
        cbor_total += zstd::bulk::compress(&cbor, level).expect("zstd").len() as u64 + 36;
        let mut json = Vec::new();
        for e in &events {
            serde_json::to_writer(&mut json, e).expect("json");
            json.push(b'\n');
        }
        json_total += zstd::bulk::compress(&json, level).expect("zstd").len() as u64 + 36;
    }
    let per_hour = |n: u64| n * 3600 / seconds as u64;
    (per_hour(cbor_total), per_hour(json_total))
}

fn report_sizes() {
    let hour = recording(3600);
    let bytes = std::fs::metadata(&hour).map(|m| m.len()).unwrap_or(0);
    let (cbor, json) = alternative_sizes(600);
    eprintln!(
        "size per hour, 50×32 + 20×10 at 1 s: lbtop {:.1} MB; CBOR without delta + zstd {:.1} MB; \
         JSON lines + zstd {:.1} MB",
        bytes as f64 / 1e6,
        cbor as f64 / 1e6,
        json as f64 / 1e6
    );
}

fn bench_seek(c: &mut Criterion) {
    report_sizes();
    let day = recording(86_400);
    let bursts = recording_with(86_400, Some(BURSTS));
    let mut g = c.benchmark_group("seek_24h");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(20));
    // Open, and seek as replay does (`export::seek`): the alert history before the warm-up from
    // the recording's alerts, then the warm-up from the keyframe before the target.
    let open_and_seek = |file: &Path, k: u64| {
        let mut p = Player::open(file).expect("open");
        let mut state = State::new(StateOptions::default());
        declare(&mut state, &p.recording.header.info.clone());
        let target = p.recording.frame_at(Timestamp(EPOCH.0 + k as i64 * 1000));
        playback::seek(&mut p, &mut state, target);
        black_box(state.generation())
    };
    let mut k = 0u64;
    g.bench_function("lbtop_open_and_seek_anywhere", |b| {
        b.iter(|| {
            // A different time each iteration, spread over the day.
            k = (k + 7919) % 86_400;
            open_and_seek(&day, k)
        });
    });
    let mut k = 0u64;
    g.bench_function("lbtop_open_and_seek_anywhere_alerts_every_2_min", |b| {
        b.iter(|| {
            k = (k + 7919) % 86_400;
            open_and_seek(&bursts, k)
        });
    });
    g.bench_function("lbtop_open_and_seek_to_the_end_alerts_every_2_min", |b| {
        b.iter(|| open_and_seek(&bursts, 86_400));
    });
    g.bench_function("play_from_start_to_1h_no_keyframes", |b| {
        b.iter(|| {
            let mut p = Player::open(&day).expect("open");
            let mut state = State::new(StateOptions::default());
            declare(&mut state, &p.recording.header.info.clone());
            for _ in 0..3600 {
                match p.next_frame() {
                    Some(d) => feed(&mut state, d, |_, _| {}),
                    None => break,
                }
            }
            black_box(state.generation())
        });
    });
    g.finish();
}

/// Plays the hour into a fresh state and exports it with `export` into the file `name`, which
/// is removed before each iteration, outside the timing (truncating the last iteration's
/// gigabyte is the file system's work, not the export's).
fn bench_export_to(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    hour: &Path,
    name: &str,
    export: impl Fn(
        &mut Player,
        &mut State,
        &mut std::io::BufWriter<std::fs::File>,
    ) -> std::io::Result<playback::Summary>,
) {
    let path = dir().join(name);
    g.bench_function(id, |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&path);
            },
            |()| {
                let mut p = Player::open(hour).expect("open");
                let mut state = State::new(StateOptions::default());
                declare(&mut state, &p.recording.header.info.clone());
                let f = std::fs::File::create(&path).expect("out");
                let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
                black_box(export(&mut p, &mut state, &mut out).expect("export"))
            },
            criterion::BatchSize::PerIteration,
        );
    });
    let _ = std::fs::remove_file(&path);
}

fn bench_export(c: &mut Criterion) {
    let hour = recording(3600);
    let mut g = c.benchmark_group("export_1h");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    let all = Range::default();
    bench_export_to(
        &mut g,
        "lbtop_json_lines",
        &hour,
        "export.jsonl",
        |p, s, out| export::json(p, s, all, out),
    );
    // The path `lbtop_json_lines` replaced: a serde `Snapshot` per frame, serde_json on worker
    // threads, CPU percentages at full precision.
    bench_export_to(
        &mut g,
        "serde_json_lines_before",
        &hour,
        "export-serde.jsonl",
        |p, s, out| serde_snapshot::json_serde(p, s, all, out),
    );
    bench_export_to(&mut g, "lbtop_csv", &hour, "export.csv", |p, s, out| {
        export::csv(p, s, all, out)
    });
    g.bench_function("decode_only_floor", |b| {
        b.iter(|| {
            let mut p = Player::open(&hour).expect("open");
            let mut n = 0usize;
            while let Some(d) = p.next_frame() {
                n += d.events.len();
            }
            black_box(n)
        });
    });
    g.finish();
}

fn bench_write(c: &mut Criterion) {
    let mut cluster = ScriptedCluster::new(SHAPE, 42);
    let polls: Vec<Vec<SourceEvent>> = (0..64).map(|_| cluster.step()).collect();
    let opts = WriterOptions::default();
    let mut g = c.benchmark_group("write_one_poll");
    let mut w = Writer::new(Vec::new(), scripted_info(SHAPE, &opts), opts).expect("writer");
    let mut i = 0;
    g.bench_function("lbtop_delta_cbor_zstd", |b| {
        b.iter(|| {
            for e in &polls[i % polls.len()] {
                w.push(Item::Event(e.clone()));
            }
            i += 1;
            w.flush_frame().expect("frame");
        });
    });
    let mut j = 0;
    g.bench_function("json_lines_zstd", |b| {
        b.iter(|| {
            let mut json = Vec::new();
            for e in &polls[j % polls.len()] {
                serde_json::to_writer(&mut json, e).expect("json");
                json.push(b'\n');
            }
            j += 1;
            black_box(zstd::bulk::compress(&json, opts.level).expect("zstd").len())
        });
    });
    g.finish();
}

criterion_group!(benches, bench_write, bench_export, bench_seek);
criterion_main!(benches);
