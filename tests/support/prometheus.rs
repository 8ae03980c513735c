//! Real Prometheus and node_exporter (Debian's `prometheus` and `prometheus-node-exporter`),
//! started on free loopback ports with a temporary storage directory and a 1 s scrape interval.
//! Each is stopped when its handle drops.
#![allow(dead_code)]

use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process stopped (killed and reaped) on drop.
pub struct Running(Child);

impl Running {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// node_exporter on `127.0.0.1:port`.
pub fn node_exporter(port: u16) -> Running {
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-node-exporter (Debian package prometheus-node-exporter)");
    Running(child)
}

/// node_exporter on `127.0.0.1:port` with only its ipvs collector, reading `procfs` instead of
/// /proc (a directory holding `net/ip_vs` and `net/ip_vs_stats`).
pub fn node_exporter_ipvs(port: u16, procfs: &Path) -> Running {
    let child = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--path.procfs={}", procfs.display()))
        .args(["--collector.disable-defaults", "--collector.ipvs"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus-node-exporter (Debian package prometheus-node-exporter)");
    Running(child)
}

/// Prometheus on `127.0.0.1:port`, storing into `dir`, scraping `targets` (job `node`) every
/// second; `extra` is added to the command line (e.g. `--web.config.file=…`).
pub fn prometheus(port: u16, dir: &Path, targets: &[String], extra: &[String]) -> Running {
    let file = write_config(port, dir, targets);
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus (Debian package prometheus)");
    Running(child)
}

/// Writes `dir/prometheus.yml`: node_exporter at `targets` (job `node`) and Prometheus itself,
/// scraped every second. A running Prometheus reads it again on SIGHUP.
pub fn write_config(port: u16, dir: &Path, targets: &[String]) -> std::path::PathBuf {
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [{}]\n\
         \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        list.join(", ")
    );
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("write prometheus.yml");
    file
}

/// The body of `GET path` from `127.0.0.1:port` (HTTP/1.0, so the server closes after it).
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}

/// `query`, URL-encoded for a GET.
pub fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of an instant query's answer, if there is one.
pub fn query_value(port: u16, query: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={}", encode(query)))?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Waits until Prometheus has scraped the `node` job's targets at least `scrapes` times each.
pub fn wait_for_scrapes(port: u16, targets: usize, scrapes: u32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let query = format!("count(count_over_time(up{{job=\"node\"}}[1m]) >= {scrapes})");
    loop {
        if query_value(port, &query).is_some_and(|n| n as usize >= targets) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus on port {port} did not scrape its {targets} targets {scrapes} times in 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A router table: (service id, real id) → (weight, active, inactive connections).
pub type Table = std::collections::BTreeMap<(String, String), (i64, u64, u64)>;

/// The table of the router in lbtop's JSON snapshot.
pub fn table_from_json(router: &serde_json::Value) -> Table {
    let mut t = Table::new();
    for s in router["services"].as_array().expect("services") {
        for r in s["reals"].as_array().expect("reals") {
            t.insert(
                (
                    s["id"].as_str().expect("id").to_string(),
                    r["id"].as_str().expect("id").to_string(),
                ),
                (
                    r["weight"].as_i64().expect("weight"),
                    r["active_conns"].as_u64().expect("active"),
                    r["inactive_conns"].as_u64().expect("inactive"),
                ),
            );
        }
    }
    t
}

/// The table `ipvsadm -Ln --exact` printed, read by lbtop's parser of it.
pub fn table_from_ipvsadm(text: &str) -> Table {
    use lbtop::source::parse::{ipvsadm_list, merge_ipvsadm};
    let listing = ipvsadm_list(text).expect("ipvsadm -Ln output");
    table_of(&merge_ipvsadm(&listing, &[]).expect("one listing"))
}

/// The table of a `/proc/net/ip_vs` file, read by lbtop's parser of it.
pub fn table_from_proc(text: &str) -> Table {
    table_of(&lbtop::source::parse::ip_vs(text).expect("/proc/net/ip_vs"))
}

fn table_of(services: &[lbtop::model::sample::VirtualServiceSample]) -> Table {
    let mut t = Table::new();
    for s in services {
        for r in &s.reals {
            t.insert(
                (s.key.to_string(), r.id()),
                (
                    i64::from(r.weight),
                    u64::from(r.active_conns),
                    u64::from(r.inactive_conns),
                ),
            );
        }
    }
    t
}

/// Asserts that lbtop's router from Prometheus agrees with ipvsadm on every weight and
/// connection count, but for what node_exporter 1.5 itself gets wrong: its /proc/net/ip_vs
/// reader (procfs) knows no `SCTP` service line, so an SCTP service is missing and its real
/// servers are counted under the service listed before it. Returns how many entries agree.
pub fn assert_agrees_with_ipvsadm(lbtop: &Table, ipvsadm: &Table) -> usize {
    let (sctp, expected): (Table, Table) = ipvsadm
        .clone()
        .into_iter()
        .partition(|((s, _), _)| s.starts_with("sctp:"));
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| lbtop.get(*k) != Some(*v))
        .collect();
    assert!(
        missing.is_empty(),
        "ipvsadm's entries lbtop shows otherwise or not at all: {missing:?}\nlbtop: {lbtop:?}"
    );
    for (k, v) in lbtop {
        if expected.contains_key(k) {
            continue;
        }
        // Only an SCTP service's real, with its numbers, may be extra.
        assert!(
            sctp.iter().any(|((_, real), sv)| *real == k.1 && sv == v),
            "lbtop shows {k:?} {v:?}, which ipvsadm does not list"
        );
    }
    expected.len()
}

// ───────────── a back-filled fleet (tests/prometheus_scale.rs, tests/prometheus_detail.rs)

pub const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
pub const GAUGES: [(&str, f64); 9] = [
    ("node_load1", 3.5),
    ("node_load5", 3.0),
    ("node_load15", 2.5),
    ("node_memory_MemTotal_bytes", 68_719_476_736.0),
    ("node_memory_MemAvailable_bytes", 34_359_738_368.0),
    ("node_memory_MemFree_bytes", 17_179_869_184.0),
    ("node_memory_Buffers_bytes", 1_073_741_824.0),
    ("node_memory_Cached_bytes", 8_589_934_592.0),
    ("node_boot_time_seconds", 1_700_000_000.0),
];
const BEFORE_S: i64 = 480;
const AFTER_S: i64 = 720;
const UP_EVERY_S: i64 = 20;
const REST_EVERY_S: i64 = 240;

pub fn instance(n: usize) -> String {
    format!("10.{}.{}.{}:9100", n / 65536, (n / 256) % 256, n % 256)
}

/// Writes a fleet's history as OpenMetrics text for `promtool tsdb create-blocks-from
/// openmetrics` (see tests/prometheus_scale.rs): `up` every 20 s, the rest every 240 s, from 8
/// minutes before `now` to 12 minutes after.
/// Writes the fleet's history as OpenMetrics text; returns the number of samples.
pub fn write_history(path: &std::path::Path, nodes: usize, cores: usize, now: i64) -> u64 {
    let file = std::fs::File::create(path).expect("create history");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut samples = 0u64;
    let times = |every: i64| (now - BEFORE_S..=now + AFTER_S).step_by(every as usize);
    writeln!(w, "# TYPE up gauge").expect("write");
    for n in 0..nodes {
        let i = instance(n);
        for t in times(UP_EVERY_S) {
            writeln!(w, "up{{instance=\"{i}\",job=\"node\"}} 1 {t}").expect("write");
            samples += 1;
        }
    }
    writeln!(w, "# TYPE node_cpu_seconds_total gauge").expect("write");
    for n in 0..nodes {
        let i = instance(n);
        for c in 0..cores {
            for (m, mode) in MODES.iter().enumerate() {
                for t in times(REST_EVERY_S) {
                    let busy = if *mode == "idle" { 0.7 } else { 0.3 / 7.0 };
                    let v = ((t - 1_700_000_000) as f64 * busy + (m * c) as f64).max(0.0);
                    writeln!(
                        w,
                        "node_cpu_seconds_total{{cpu=\"{c}\",instance=\"{i}\",job=\"node\",mode=\"{mode}\"}} {v:.2} {t}"
                    )
                    .expect("write");
                    samples += 1;
                }
            }
        }
    }
    for (name, value) in GAUGES.iter().copied().chain([("node_time_seconds", 0.0)]) {
        writeln!(w, "# TYPE {name} gauge").expect("write");
        for n in 0..nodes {
            let i = instance(n);
            for t in times(REST_EVERY_S) {
                let v = if name == "node_time_seconds" {
                    t as f64
                } else {
                    value
                };
                writeln!(w, "{name}{{instance=\"{i}\",job=\"node\"}} {v} {t}").expect("write");
                samples += 1;
            }
        }
    }
    writeln!(w, "# EOF").expect("write");
    w.flush().expect("flush");
    samples
}

/// Prometheus on a free port, holding a fleet of `nodes` × `cores` back-filled into `dir` with
/// `promtool tsdb create-blocks-from openmetrics`, ready to answer; and its port.
pub fn backfilled_prometheus(dir: &Path, nodes: usize, cores: usize) -> (Running, u16) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let history = dir.join("history.om");
    write_history(&history, nodes, cores, now);
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&history)
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .output()
        .expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&history).expect("remove history");
    let port = free_port();
    let prom = prometheus(
        port,
        dir,
        &[],
        &["--storage.tsdb.retention.time=10y".into()],
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    while http_get(port, "/-/ready").is_none_or(|b| !b.contains("Ready")) {
        assert!(
            Instant::now() < deadline,
            "Prometheus not ready in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    (prom, port)
}
