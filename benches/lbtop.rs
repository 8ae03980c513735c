//! Criterion benchmarks for lbtop's hot paths, each next to a named alternative measured in the same
//! run. Results and ratios go to BENCHMARKS.md.
//!
//! - conn_table: a 1,000,000-row IPv4 `/proc/net/ip_vs_conn`, summed by the real CLI
//!   (`lbtop --once --json --router local --proc-root DIR`, a process per iteration) and in
//!   process by `sum_conn_file`, the function `--router local` calls; vs `awk` counting the same
//!   file, as a process too: the same counts (per state, per real server, per client), and the
//!   states alone.
//! - derive: one poll's derivation (CPU %, rates, alerts, history) for 200 nodes × 32 cores plus
//!   100 services × 10 real servers, vs only cloning the same raw samples (the floor).
//! - draw: one full 250×70 frame of that cluster vs ratatui drawing a same-size Paragraph of text.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use lbtop::app::state::Popup;
use lbtop::app::{State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::SourceEvent;
use lbtop::source::local::{TOP_CLIENTS, sum_conn_file};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::widgets::Paragraph;

const CONN_ROWS: usize = 1_000_000;

/// A connection table in the kernel's exact row format, `%-3s %08X %04X %08X %04X %08X %04X
/// %-11s %7u`, with a realistic mix of states, 50 real servers and ~60,000 clients.
fn conn_table(rows: usize) -> String {
    const STATES: [&str; 6] = [
        "ESTABLISHED",
        "FIN_WAIT",
        "TIME_WAIT",
        "SYN_RECV",
        "CLOSE_WAIT",
        "NONE",
    ];
    let mut out = String::with_capacity(rows * 70 + 100);
    out.push_str(
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n",
    );
    let mut x: u64 = 0x1234_5678;
    for _ in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let client = 0xC633_6400u32 + (x % 60_000) as u32;
        let cport = 1024 + (x >> 20) as u16 % 60_000;
        let real = 0x0A00_0002u32 + ((x >> 40) % 50) as u32;
        let state = STATES[((x >> 8) % 100).min(99) as usize % STATES.len()];
        let expires = (x >> 32) % 900;
        out.push_str(&format!(
            "TCP {client:08X} {cport:04X} C000020A 0050 {real:08X} 0050 {state:<11} {expires:>7}\n"
        ));
    }
    out
}

/// A `--proc-root` snapshot: the lab router's captured files (`tests/fixtures/proc-root-lab`) with
/// `net/ip_vs_conn` replaced by `table`.
fn proc_root_with(table: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-root-lab");
    for rel in [
        "stat",
        "loadavg",
        "meminfo",
        "uptime",
        "net/ip_vs",
        "net/ip_vs_stats",
    ] {
        let to = root.path().join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::copy(lab.join(rel), to).expect("copy the lab snapshot");
    }
    std::fs::write(root.path().join("net/ip_vs_conn"), table).expect("write the table");
    root
}

/// `lbtop --once --json` reading the router from `root`; its standard output.
fn cli_once(root: &Path, home: &Path) -> Vec<u8> {
    // Cargo builds the binary for this bench (the bench profile: release, with line tables).
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            "0s",
            "--router",
            "local",
            "--nodes",
            "none",
            "--proc-root",
        ])
        .arg(root)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_STATE_HOME", home)
        .output()
        .expect("lbtop runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn awk(program: &str, path: &Path) -> usize {
    let out = Command::new("awk")
        .arg(program)
        .arg(path)
        .output()
        .expect("awk runs");
    assert!(out.status.success());
    out.stdout.len()
}

/// awk counting what lbtop counts: rows per state, per real server and state, per client.
const AWK_SAME_COUNTS: &str = "NR>1 { s[$8]++; d[$6\":\"$7\" \"$8]++; c[$2]++ } \
     END { for (k in s) print k, s[k]; for (k in d) n++; for (k in c) m++; print n, m }";
/// awk counting the states alone, the least a summary can be.
const AWK_STATES: &str = "{ n[$8]++ } END { for (s in n) print s, n[s] }";

fn bench_conn_table(c: &mut Criterion) {
    let root = proc_root_with(&conn_table(CONN_ROWS));
    let home = tempfile::tempdir().expect("temp home");
    let table = root.path().join("net/ip_vs_conn");
    // What is timed must be a whole, correct answer.
    let json: serde_json::Value =
        serde_json::from_slice(&cli_once(root.path(), home.path())).expect("JSON");
    assert_eq!(json["router"]["status"], "ok", "{}", json["router"]);
    assert_eq!(
        json["router"]["connections"]["total"], CONN_ROWS as u64,
        "{}",
        json["router"]["connections"]
    );
    let summed = sum_conn_file(&table).expect("sums").expect("a table");
    assert_eq!(summed.total, CONN_ROWS as u64);
    assert_eq!(summed.top_clients.len(), TOP_CLIENTS);

    let mut g = c.benchmark_group("conn_table_1M");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("lbtop_cli_once_json", |b| {
        b.iter(|| black_box(cli_once(root.path(), home.path()).len()));
    });
    g.bench_function("awk_same_counts", |b| {
        b.iter(|| black_box(awk(AWK_SAME_COUNTS, &table)));
    });
    g.bench_function("awk_states_only", |b| {
        b.iter(|| black_box(awk(AWK_STATES, &table)));
    });
    g.bench_function("lbtop_sum_conn_file", |b| {
        b.iter(|| black_box(sum_conn_file(black_box(&table))));
    });
    g.finish();
}

fn big_cluster() -> (ScriptedCluster, Vec<SourceEvent>) {
    let mut cluster = ScriptedCluster::new(
        ClusterShape {
            nodes: 200,
            cores: 32,
            services: 100,
            reals_per_service: 10,
        },
        42,
    );
    let _ = cluster.step();
    let events = cluster.step();
    (cluster, events)
}

fn bench_derive(c: &mut Criterion) {
    let (mut cluster, _) = big_cluster();
    let mut state = State::new(StateOptions::default());
    for e in cluster.step() {
        state.ingest(e);
    }
    let next = cluster.step();
    let mut g = c.benchmark_group("derive_200x32_100x10");
    g.bench_function("lbtop_ingest_one_poll", |b| {
        b.iter_batched(
            || (state.clone(), next.clone()),
            |(mut s, events)| {
                for e in events {
                    black_box(s.ingest(e));
                }
                s
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.bench_function("clone_raw_samples_only", |b| {
        b.iter_batched(
            || next.clone(),
            |events| black_box(events.clone()),
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn bench_draw(c: &mut Criterion) {
    let (mut cluster, _) = big_cluster();
    let mut state = State::new(StateOptions::default());
    for _ in 0..3 {
        for e in cluster.step() {
            state.ingest(e);
        }
    }
    state.tick(cluster.time());
    let theme = Theme::default();
    let keymap = Keymap::defaults();
    let mut terminal = Terminal::new(TestBackend::new(250, 70)).expect("backend");
    let text: String = (0..70)
        .map(|i| format!("{i:>3} {}\n", "lorem ipsum dolor sit amet ".repeat(9)))
        .collect();
    let mut g = c.benchmark_group("draw_250x70");
    g.bench_function("lbtop_full_frame", |b| {
        b.iter(|| {
            terminal
                .draw(|f| lbtop::ui::draw(f, &state, &theme, &keymap))
                .expect("draw");
        });
    });
    // The node detail open over it, with its charts (load against the core count, CPU % by
    // kind) drawn from 60 samples of history, and the node's real servers listed.
    let mut detail = state.clone();
    for _ in 0..60 {
        for e in cluster.step() {
            detail.ingest(e);
        }
    }
    detail.tick(cluster.time());
    detail.show_popup(Popup::NodeDetail(ScriptedCluster::node_name(0)));
    g.bench_function("lbtop_full_frame_node_detail_charts", |b| {
        b.iter(|| {
            terminal
                .draw(|f| lbtop::ui::draw(f, &detail, &theme, &keymap))
                .expect("draw");
        });
    });
    // The service detail open instead: a real server's CPS, connections and bytes charts from
    // the same 60 samples.
    let mut service = detail.clone();
    service.update(lbtop::app::Action::Back);
    service.update(lbtop::app::Action::Down);
    service.update(lbtop::app::Action::Down);
    service.update(lbtop::app::Action::Toggle);
    assert_eq!(service.ui().popup, Some(Popup::ServiceDetail));
    g.bench_function("lbtop_full_frame_service_detail_charts", |b| {
        b.iter(|| {
            terminal
                .draw(|f| lbtop::ui::draw(f, &service, &theme, &keymap))
                .expect("draw");
        });
    });
    g.bench_function("ratatui_paragraph_same_size", |b| {
        b.iter(|| {
            terminal
                .draw(|f| f.render_widget(Paragraph::new(text.as_str()), f.area()))
                .expect("draw");
        });
    });
    g.finish();
}

criterion_group!(benches, bench_conn_table, bench_derive, bench_draw);
criterion_main!(benches);
