//! The HTML report (`lbtop report`), next to the JSON-lines export of the same recording, in the
//! same run. Results go to BENCHMARKS.md, section "The report".
//!
//! - report_demo (criterion): the report of `assets/demo.lbrec` (4 minutes, 3 nodes, 24
//!   services), vs `replay --export json` of it. Goal: under a second.
//! - report_1h (criterion, 10 samples): one hour of the cluster (50 nodes × 32 cores plus
//!   20 services × 10 real servers at 1 s, `benches/record.rs`'s recording), vs the export.
//! - report_24h (timed once, not criterion: a run takes tens of seconds, and criterion's
//!   minimum of 10 samples of each side would take over ten minutes on this machine): the report
//!   of 24 hours of that cluster, its size, vs the export to a sink and vs decoding alone (every
//!   number, and only what the report reads: the floor). Goals: under 10 s and under 20 MB.
//!
//! `cargo bench --bench report -- make-24h` only makes the 24-hour recording (for timing the CLI
//! on it, as BENCHMARKS.md does); `make-wide` only makes the wide one: a large table (5,000
//! services × 3 real servers, 10 nodes) for 700 s, which BENCHMARKS.md times the CLI's report of.
//!
//! Outputs go to a sink (`io::sink` or a reused buffer), so the disk is not measured.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::Criterion;
use lbtop::app::playback::{Range, declare};
use lbtop::app::{State, StateOptions};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::report::export;
use lbtop::report::html::{self, ReportInfo};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");

const SHAPE: ClusterShape = ClusterShape {
    nodes: 50,
    cores: 32,
    services: 20,
    reals_per_service: 10,
};

/// A large table, as a cluster behind kube-proxy's IPVS has.
const WIDE: ClusterShape = ClusterShape {
    nodes: 10,
    cores: 2,
    services: 5000,
    reals_per_service: 3,
};

/// `benches/record.rs`'s recording of `seconds` polls (same file, same seed), made once.
fn recording(seconds: usize) -> PathBuf {
    recording_of(SHAPE, &format!("cluster-{seconds}s"), seconds, 42)
}

/// The recording of `seconds` polls of `shape`, in `target/lbrec-bench/NAME.lbrec`, made once.
fn recording_of(shape: ClusterShape, name: &str, seconds: usize, seed: u64) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lbrec-bench");
    std::fs::create_dir_all(&d).expect("bench dir");
    let path = d.join(format!("{name}.lbrec"));
    if Player::open(&path).is_ok_and(|p| p.len() == seconds) {
        return path;
    }
    let _ = std::fs::remove_file(&path);
    let t = Instant::now();
    let opts = WriterOptions::default();
    let file = std::fs::File::create(&path).expect("create");
    let mut w = Writer::new(
        std::io::BufWriter::with_capacity(1 << 20, file),
        scripted_info(shape, &opts),
        opts,
    )
    .expect("writer");
    let mut c = ScriptedCluster::new(shape, seed);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, seconds).expect("record");
    w.finish().expect("finish");
    eprintln!("made {} in {:.1?}", path.display(), t.elapsed());
    path
}

/// A player and a declared state, as `lbtop report` and `replay --export` make them.
fn open(file: &Path) -> (Player, State) {
    let p = Player::open(file).expect("open");
    let info = p.recording.info().clone();
    let mut state = State::new(StateOptions {
        interval: Duration::from_millis(info.interval_ms.max(1)),
        read_only: true,
        ..StateOptions::default()
    });
    declare(&mut state, &info);
    (p, state)
}

/// The report of the whole recording into `out`; its size.
fn report(file: &Path, out: &mut Vec<u8>) -> usize {
    out.clear();
    let (mut p, mut s) = open(file);
    let info = ReportInfo {
        file: "bench.lbrec".into(),
    };
    html::write(&mut p, &mut s, Range::default(), &info, out).expect("report");
    out.len()
}

/// `replay --export json` of the whole recording into a sink; the frames written.
fn export_json(file: &Path) -> u64 {
    let (mut p, mut s) = open(file);
    let mut sink = std::io::sink();
    export::json(&mut p, &mut s, Range::default(), &mut sink)
        .expect("export")
        .frames
}

fn bench_demo(c: &mut Criterion) {
    let demo = Path::new(DEMO);
    let mut out = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("report_demo");
    g.sample_size(20);
    g.bench_function("lbtop_report", |b| {
        b.iter(|| black_box(report(demo, &mut out)))
    });
    g.bench_function("export_json", |b| b.iter(|| black_box(export_json(demo))));
    g.finish();
    eprintln!("report_demo: {} bytes of HTML", report(demo, &mut out));
}

fn bench_hour(c: &mut Criterion) {
    let hour = recording(3600);
    let mut out = Vec::with_capacity(8 << 20);
    let mut g = c.benchmark_group("report_1h");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("lbtop_report", |b| {
        b.iter(|| black_box(report(&hour, &mut out)))
    });
    g.bench_function("export_json", |b| b.iter(|| black_box(export_json(&hour))));
    g.finish();
    eprintln!("report_1h: {} bytes of HTML", report(&hour, &mut out));
}

/// Decoding every frame and nothing else: what a reader of every number pays (`per_core`), or
/// one of the nodes' totals only, as the report reads them.
fn decode_only(file: &Path, per_core: bool) -> usize {
    let mut p = Player::open(file).expect("open");
    if !per_core {
        p.skip_per_core();
    }
    let mut n = 0;
    while let Some(d) = p.next_frame() {
        n += d.events.len();
    }
    n
}

/// The 24-hour report, timed once next to the export and the decode floor.
fn day() {
    let day = recording(86_400);
    let mut out = Vec::with_capacity(32 << 20);
    let t = Instant::now();
    let size = report(&day, &mut out);
    let report_s = t.elapsed().as_secs_f64();
    let html_path = day.with_extension("html");
    if let Ok(mut f) = std::fs::File::create(&html_path) {
        let _ = f.write_all(&out);
    }
    let t = Instant::now();
    let frames = export_json(&day);
    let export_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    black_box(decode_only(&day, true));
    let decode_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    black_box(decode_only(&day, false));
    let totals_s = t.elapsed().as_secs_f64();
    eprintln!(
        "report_24h: report {report_s:.2} s, {:.2} MB of HTML (kept in {}); export json of the \
         same {frames} frames to a sink {export_s:.2} s (the report is {:.2}× the export); \
         decoding every number alone {decode_s:.2} s; decoding what the report reads (nodes' \
         totals) alone {totals_s:.2} s (the report is {:.2}× that floor)",
        size as f64 / 1e6,
        html_path.display(),
        report_s / export_s,
        report_s / totals_s,
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    // A name filter as criterion takes it: the first argument that is not an option.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    if filter == "make-24h" {
        // Only make (or find) the 24-hour recording, for measuring the CLI on it.
        eprintln!("{}", recording(86_400).display());
        return;
    }
    if filter == "make-wide" {
        eprintln!(
            "{}",
            recording_of(WIDE, "wide-5000x3-700s", 700, 7).display()
        );
        return;
    }
    if filter.is_empty() || "report_demo".contains(&filter) || filter.contains("demo") {
        bench_demo(&mut c);
    }
    if filter.is_empty() || filter.contains("1h") {
        bench_hour(&mut c);
    }
    c.final_summary();
    if filter.is_empty() || filter.contains("24h") {
        day();
    }
}
