//! Benchmark (ignored in the suite; run it with `cargo test --release --test prometheus_scale --
//! --ignored --nocapture`): one poll of a 2,000-node fleet from a real Prometheus, against the
//! same queries made with curl in the same run; and what lbtop polling it every 5 s costs.
//!
//! The fleet is history written here as OpenMetrics text (2,000 nodes × 32 cores × 8 modes of
//! `node_cpu_seconds_total`, and each node's `up`, load, memory, boot time and clock) and
//! back-filled into an empty Prometheus with `promtool tsdb create-blocks-from openmetrics`.
//! `LBTOP_BENCH_NODES` and `LBTOP_BENCH_CORES` change the size.
//!
//! The history reaches into the future, so that "now" stays inside it while the bench runs:
//! `up` every 20 s (the scrape interval lbtop finds, so nodes stay fresh), everything else every
//! 240 s (within Prometheus's 5-minute lookback), from 8 minutes ago to 12 minutes ahead.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::prometheus::{GAUGES, free_port, http_get, prometheus, write_history};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The queries one lbtop poll makes (src/source/prometheus/selector.rs), for curl.
fn queries() -> Vec<String> {
    let jobs = "on (job, instance) last_over_time(node_boot_time_seconds{}[10m])";
    let gauges: Vec<&str> = GAUGES
        .iter()
        .map(|(n, _)| *n)
        .chain(["node_time_seconds"])
        .collect();
    vec![
        "count by (instance) (node_cpu_seconds_total{mode=\"idle\"})".into(),
        format!("up{{}} and {jobs}"),
        format!("timestamp(up{{}}) and {jobs}"),
        "sum by (instance, mode) (node_cpu_seconds_total{mode=\"idle\"})".into(),
        format!("{{__name__=~\"{}\"}}", gauges.join("|")),
        format!("count_over_time(up{{}}[120s]) and {jobs}"),
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `curl` for each query of a poll, one after the other as a script would: seconds in all.
fn curl_poll(url: &str) -> f64 {
    let started = Instant::now();
    for q in queries() {
        let t = Instant::now();
        let out = Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--data-urlencode"])
            .arg(format!("query={q}"))
            .arg(format!("{url}/api/v1/query"))
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl failed for {q}");
        println!("  curl {:.3} s: {q}", t.elapsed().as_secs_f64());
    }
    started.elapsed().as_secs_f64()
}

/// `lbtop --once --interval 0s`: one poll of every node; seconds and the snapshot.
fn lbtop_poll(url: &str, home: &std::path::Path) -> (f64, Value) {
    // A poll's own timeout (by default 2 s at this interval) out of the way: this measures it.
    let config = home.join("lbtop.toml");
    std::fs::write(&config, "[prometheus]\ntimeout = \"60s\"\n").expect("config");
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .arg("--config")
        .arg(&config)
        .args(["--once", "--json", "--interval", "0s", "--router", "none"])
        .args(["--prometheus", url, "--nodes", "prometheus"])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .output()
        .expect("run lbtop");
    let took = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, serde_json::from_slice(&out.stdout).expect("JSON"))
}

/// CPU seconds (user + system) and peak RSS in MB of a live process.
fn cost(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = stat.rsplit_once(") ").expect("stat").1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let hwm_kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmHWM");
    (ticks / 100.0, hwm_kb / 1024.0)
}

#[test]
#[ignore = "a benchmark: minutes, and a few GB of disk"]
fn one_poll_of_a_2000_node_fleet_from_prometheus_against_curl() {
    let nodes = env_or("LBTOP_BENCH_NODES", 2000);
    let cores = env_or("LBTOP_BENCH_CORES", 32);
    let dir = tempfile::tempdir().expect("temp dir");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let history = dir.path().join("history.om");
    let t = Instant::now();
    let samples = write_history(&history, nodes, cores, now);
    println!(
        "history: {nodes} nodes × {cores} cores, {samples} samples, written in {:.1?}",
        t.elapsed()
    );
    let t = Instant::now();
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("backfill (promtool): {:.1?}", t.elapsed());
    std::fs::remove_file(&history).expect("remove history");

    let port = free_port();
    let _prom = prometheus(
        port,
        dir.path(),
        &[],
        &["--storage.tsdb.retention.time=10y".into()],
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while http_get(port, "/-/ready").is_none_or(|b| !b.contains("Ready")) {
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Warm up: the first queries read the blocks from disk.
    let home = tempfile::tempdir().expect("home");
    let (first, _) = lbtop_poll(&url, home.path());
    curl_poll(&url);
    println!("first poll (cold): lbtop {first:.3} s");

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut snapshot = Value::Null;
    for _ in 0..5 {
        let (took, v) = lbtop_poll(&url, home.path());
        ours.push(took);
        snapshot = v;
        theirs.push(curl_poll(&url));
    }
    let list = snapshot["nodes"].as_array().expect("nodes");
    assert_eq!(list.len(), nodes, "every node: {}", list[0]);
    let ok = list.iter().filter(|n| n["status"] == "ok").count();
    assert_eq!(ok, nodes, "all fresh: {}", list[0]);
    assert_eq!(list[0]["cores"].as_u64(), Some(cores as u64));
    println!("cpu detail: {}", list[0]["cpu_detail"]);
    if nodes * cores > 4096 {
        assert_eq!(list[0]["cpu_detail"], "busy-only", "{}", list[0]);
    }
    let (l, c) = (median(ours), median(theirs));
    println!(
        "one poll of {nodes} nodes: lbtop --once {l:.3} s (median of 5, process start to JSON \
         written); curl, the same 6 queries one after another, {c:.3} s; ratio {:.2}",
        l / c
    );
    live_cost(&url, home.path(), dir.path());
}

/// lbtop polling every 5 s for a minute (`lbtop record`, headless): its CPU and peak memory.
fn live_cost(url: &str, home: &std::path::Path, dir: &std::path::Path) {
    let file = dir.join("fleet.lbrec");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .arg("record")
        .arg(&file)
        .arg("--config")
        .arg(home.join("lbtop.toml"))
        .args(["--duration", "62s", "--interval", "5s", "--router", "none"])
        .args(["--prometheus", url, "--nodes", "prometheus"])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_STATE_HOME", home.join("state"))
        .stderr(Stdio::null())
        .spawn()
        .expect("lbtop record");
    std::thread::sleep(Duration::from_secs(60));
    let (cpu, rss) = cost(child.id());
    let _ = child.wait();
    println!(
        "lbtop record --interval 5s, 60 s: {cpu:.2} CPU s = {:.2} % of a core, peak RSS {rss:.0} MB",
        cpu / 60.0 * 100.0
    );
}
