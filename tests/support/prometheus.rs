//! Real Prometheus and node_exporter (Debian's `prometheus` and `prometheus-node-exporter`),
//! started on free loopback ports with a temporary storage directory and a 1 s scrape interval.
//! Each is stopped when its handle drops.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A process stopped (killed and reaped) on drop.
pub struct Running(Child);

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

/// Prometheus on `127.0.0.1:port`, storing into `dir`, scraping `targets` (job `node`) every
/// second; `extra` is added to the command line (e.g. `--web.config.file=…`).
pub fn prometheus(port: u16, dir: &Path, targets: &[String], extra: &[String]) -> Running {
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [{}]\n\
         \x20 - job_name: prometheus\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        list.join(", ")
    );
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("write prometheus.yml");
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
