//! Per-core lines on demand: beyond 4,096 cores in all, Prometheus's nodes come as per-node sums,
//! and per core only for the nodes the screen shows (the node detail, the rows in view), in one
//! more query, within 4,096 cores. A real Prometheus holds a back-filled fleet of 130 nodes × 32
//! cores (4,160 cores; `promtool tsdb create-blocks-from openmetrics`, as tests/prometheus_scale.rs
//! does); the source is started as the live TUI starts it, and told which nodes are on screen
//! as the TUI tells it.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use lbtop::model::sample::{NodeSample, Report, SourceEvent};
use support::prometheus::{backfilled_prometheus, instance};

const NODES: usize = 130;
const CORES: usize = 32;

/// The first sample of each node from one start of the source, with `wanted` on screen.
fn first_samples(url: &str, wanted: Vec<String>) -> BTreeMap<String, NodeSample> {
    let cli = lbtop::cli::Cli::try_parse_from([
        "lbtop",
        "--router",
        "none",
        "--interval",
        "1s",
        "--prometheus",
        url,
        "--nodes",
        "prometheus",
    ])
    .expect("command line");
    let config = lbtop::config::Config {
        interval: Duration::from_secs(1),
        ..Default::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let set = lbtop::runtime::sources_for(&cli.sources, &config).expect("sources");
        let (tx, mut rx) = tokio::sync::mpsc::channel(4096);
        let started = set.remote.start(Duration::from_secs(1), tx, Some(1));
        started.detail.expect("Prometheus's nodes").set(wanted);
        // The channel closes when the one poll's events are all sent.
        drop(started.router_tx);
        let mut samples = BTreeMap::new();
        while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            if let SourceEvent::Node {
                name,
                report: Report::Sample(s),
                ..
            } = ev
            {
                samples.insert(name, s);
            }
        }
        drop(started.handles);
        samples
    })
}

#[test]
fn beyond_4096_cores_only_the_nodes_on_screen_get_per_core_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prom, port) = backfilled_prometheus(dir.path(), NODES, CORES);
    let url = format!("http://127.0.0.1:{port}");

    // The detail of one node open, two rows in view.
    let shown = vec![instance(7), instance(0), instance(1)];
    let samples = first_samples(&url, shown.clone());
    assert_eq!(samples.len(), NODES, "every node");
    for (name, s) in &samples {
        assert_eq!(s.cores(), CORES, "{name}");
        if shown.contains(name) {
            assert_eq!(s.stat.cpus.len(), CORES, "{name} on screen: per core");
            let per_core: u64 = s.stat.cpus.iter().map(|c| c.idle).sum();
            let diff = per_core.abs_diff(s.stat.total.idle);
            assert!(
                diff <= CORES as u64,
                "{name}: cores {per_core} against the sum {}",
                s.stat.total.idle
            );
        } else {
            assert!(!s.has_per_core(), "{name} not on screen: the sums only");
            assert!(s.stat.busy_unsplit, "{name}: idle only");
            // The generated history has each core idle 70 % of the time since its boot.
            let idle = s.stat.total.idle as f64 / s.stat.total.total() as f64;
            assert!((idle - 0.7).abs() < 0.01, "{name}: idle {idle}");
        }
    }

    // Everything asked for: as many as fit in 4,096 cores (128 of 32), in the order asked.
    let all: Vec<String> = (0..NODES).map(instance).collect();
    let samples = first_samples(&url, all.clone());
    let detailed: Vec<&String> = all.iter().filter(|n| samples[*n].has_per_core()).collect();
    assert_eq!(detailed.len(), 4096 / CORES);
    assert_eq!(
        detailed.last().map(|n| n.as_str()),
        Some(instance(127).as_str())
    );

    // A recording keeps what the source could not split: its replay says `busy-only` too.
    let rec = dir.path().join("fleet.lbrec");
    let lbtop = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(args)
            .env("HOME", dir.path())
            .output()
            .expect("lbtop");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let os = |s: &str| std::ffi::OsString::from(s);
    lbtop(&[
        &os("record"),
        rec.as_os_str(),
        &os("--duration"),
        &os("3s"),
        &os("--interval"),
        &os("1s"),
        &os("--router"),
        &os("none"),
        &os("--prometheus"),
        &os(&url),
        &os("--nodes"),
        &os("prometheus"),
    ]);
    let export = lbtop(&[&os("replay"), rec.as_os_str(), &os("--export"), &os("json")]);
    let last: serde_json::Value = String::from_utf8_lossy(&export)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("exported snapshots");
    let nodes = last["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), NODES);
    assert!(
        nodes.iter().all(|n| n["cpu_detail"] == "busy-only"),
        "{}",
        nodes[0]
    );
}

/// The live TUI in a real terminal: the rows in view, and then the node detail opened, get
/// their cores; the list says `busy` (idle sums only) for the rows before they come.
#[test]
fn the_live_tui_asks_per_core_lines_for_the_rows_in_view_and_the_detail() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_prom, port) = backfilled_prometheus(dir.path(), NODES, CORES);
    let tmux = support::tmux::Tmux::new("prometheus-detail");
    tmux.start(&format!(
        "--router none --interval 1s --prometheus http://127.0.0.1:{port} --nodes prometheus"
    ));
    let first = tmux.wait_for(|s| s.contains(" busy"), Duration::from_secs(30));
    assert!(first.contains(" busy"), "the sums first: {first}");
    // The fleet's `up` is written every 20 s: a new sample comes at most that much later.
    let rows = tmux.wait_for(|s| !s.contains(" busy"), Duration::from_secs(60));
    assert!(
        !rows.contains(" busy"),
        "every row in view has its cores: {rows}"
    );
    tmux.keys("Tab");
    tmux.keys("Enter");
    let detail = tmux.wait_for(|s| s.contains(" 31["), Duration::from_secs(10));
    assert!(detail.contains(" 31["), "the detail's 32 cores: {detail}");
    assert!(!detail.contains("busy only"), "{detail}");
    tmux.keys("q");
}
