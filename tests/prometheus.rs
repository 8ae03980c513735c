//! Nodes from a real Prometheus scraping a real node_exporter (Debian's packages, started here on
//! loopback ports with a 1 s scrape interval): `--nodes prometheus` reports this machine as
//! /proc has it, a recording of it replays, and every way Prometheus can fail is a status.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::bin::lbtop;
use support::prometheus::{free_port, node_exporter, prometheus, wait_for_scrapes};

fn once(args: &[&str]) -> Value {
    let mut all = vec!["--once", "--json", "--router", "none"];
    all.extend_from_slice(args);
    let out = lbtop(&all);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// The only node of a snapshot.
fn only_node(v: &Value) -> &Value {
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "one node: {v}");
    &nodes[0]
}

fn proc_field(path: &str, key: &str) -> String {
    let text = std::fs::read_to_string(path).expect("read /proc");
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .expect("field in /proc")
        .split_whitespace()
        .next()
        .expect("value")
        .to_string()
}

/// Prometheus and node_exporter, both running and scraped a few times.
struct Fleet {
    _exporter: support::prometheus::Running,
    _prometheus: support::prometheus::Running,
    _dir: tempfile::TempDir,
    url: String,
    target: String,
}

fn fleet() -> Fleet {
    let (np, pp) = (free_port(), free_port());
    let exporter = node_exporter(np);
    let dir = tempfile::tempdir().expect("temp dir");
    let target = format!("127.0.0.1:{np}");
    let prom = prometheus(pp, dir.path(), std::slice::from_ref(&target), &[]);
    wait_for_scrapes(pp, 1, 3);
    Fleet {
        _exporter: exporter,
        _prometheus: prom,
        _dir: dir,
        url: format!("http://127.0.0.1:{pp}"),
        target,
    }
}

#[test]
fn prometheus_nodes_report_this_machine_as_proc_has_it() {
    let f = fleet();
    let v = once(&[
        "--interval",
        "2s",
        "--prometheus",
        &f.url,
        "--nodes",
        "prometheus",
    ]);
    let node = only_node(&v);
    assert_eq!(node["status"], "ok", "{node}");
    assert_eq!(
        node["name"],
        f.target.as_str(),
        "named by its instance label"
    );
    assert_eq!(
        node["host"], "127.0.0.1",
        "matched to real servers by address"
    );
    let nproc = std::thread::available_parallelism().expect("nproc").get();
    assert_eq!(node["cores"].as_u64(), Some(nproc as u64), "{node}");
    assert_eq!(node["cpu_detail"], "per-core", "{node}");
    let cpus = node["cpus"].as_array().expect("per-core percentages");
    assert_eq!(cpus.len(), nproc);
    for cpu in cpus {
        let sum: f64 = cpu
            .as_object()
            .expect("a core")
            .values()
            .map(|p| p.as_f64().expect("percent"))
            .sum();
        assert!(
            (sum - 100.0).abs() < 0.1,
            "a core's modes sum to {sum}: {cpu}"
        );
    }
    let load: f64 = proc_field("/proc/loadavg", "").parse().expect("load");
    let got = node["load"][0].as_f64().expect("load1");
    assert!(
        (got - load).abs() < 1.0,
        "load {got} against /proc's {load}"
    );
    let kib: u64 = proc_field("/proc/meminfo", "MemTotal:")
        .parse()
        .expect("MemTotal");
    assert_eq!(node["memory"]["total_bytes"].as_u64(), Some(kib * 1024));
    assert!(node["uptime_s"].as_f64().expect("uptime") > 0.0);

    // With the local router (the default) too: --once ends when Prometheus's polls have.
    let started = std::time::Instant::now();
    let out = lbtop(&[
        "--once",
        "--interval",
        "2s",
        "--prometheus",
        &f.url,
        "--nodes",
        "prometheus",
    ]);
    assert!(out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(only_node(&v)["status"], "ok", "{v}");
}

#[test]
fn a_node_whose_exporter_stops_is_unreachable_because_up_is_0() {
    let f = fleet();
    drop(f._exporter);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let node = loop {
        let v = once(&[
            "--interval",
            "0s",
            "--prometheus",
            &f.url,
            "--nodes",
            "prometheus",
        ]);
        let node = only_node(&v).clone();
        if node["status"] != "ok" || std::time::Instant::now() > deadline {
            break node;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(node["name"], f.target.as_str(), "still listed: {node}");
    assert_eq!(node["status"], "unreachable", "{node}");
    assert!(
        node["error"].as_str().unwrap_or("").contains("up is 0"),
        "{node}"
    );
}

#[test]
fn a_selector_picks_instances_and_a_bad_one_is_prometheus_s_error() {
    let f = fleet();
    let picked = once(&[
        "--interval",
        "0s",
        "--prometheus",
        &f.url,
        "--nodes",
        &format!("prometheus:{{job=\"node\",instance=\"{}\"}}", f.target),
    ]);
    assert_eq!(only_node(&picked)["status"], "ok", "{picked}");
    let none = once(&[
        "--interval",
        "0s",
        "--prometheus",
        &f.url,
        "--nodes",
        "prometheus:{job=\"web\"}",
    ]);
    let node = only_node(&none);
    assert_eq!(node["name"], "prometheus");
    assert_eq!(node["status"], "error");
    assert!(
        node["error"]
            .as_str()
            .unwrap_or("")
            .contains("no instance with node_exporter's metrics matches {job=\"web\"}"),
        "{node}"
    );
    let bad = once(&[
        "--interval",
        "0s",
        "--prometheus",
        &f.url,
        "--nodes",
        "prometheus:{job=~\"(\"}",
    ]);
    let error = only_node(&bad)["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.starts_with("Prometheus refused the query (bad_data)"),
        "{error}"
    );
}

#[test]
fn a_recording_of_prometheus_nodes_replays_like_any_other() {
    let f = fleet();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("fleet.lbrec");
    let file = file.to_str().expect("path");
    let out = lbtop(&[
        "record",
        file,
        "--duration",
        "4s",
        "--interval",
        "1s",
        "--router",
        "none",
        "--prometheus",
        &f.url,
        "--nodes",
        "prometheus",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lbtop(&["replay", file, "--export", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last: Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("exported snapshots");
    let node = only_node(&last);
    assert_eq!(node["name"], f.target.as_str());
    let nproc = std::thread::available_parallelism().expect("nproc").get();
    assert_eq!(node["cores"].as_u64(), Some(nproc as u64));
    assert!(
        node["cpu_total_percent"].is_number(),
        "derived on replay: {node}"
    );
}

#[test]
fn an_instance_whose_target_leaves_is_forgotten_with_its_alerts_after_forget_after() {
    let (np1, np2, pp) = (free_port(), free_port(), free_port());
    let _stays = node_exporter(np1);
    let _leaves = node_exporter(np2);
    let dir = tempfile::tempdir().expect("temp dir");
    let (stays, leaves) = (format!("127.0.0.1:{np1}"), format!("127.0.0.1:{np2}"));
    let prom = prometheus(pp, dir.path(), &[stays.clone(), leaves.clone()], &[]);
    wait_for_scrapes(pp, 2, 2);
    let config = dir.path().join("lbtop.toml");
    std::fs::write(&config, "forget-after = \"3s\"\n").expect("config");
    let file = dir.path().join("fleet.lbrec");
    let home = tempfile::tempdir().expect("temp home");
    let record = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["record", file.to_str().expect("path"), "--duration", "24s"])
        .args([
            "--interval",
            "1s",
            "--router",
            "none",
            "--nodes",
            "prometheus",
        ])
        .args(["--prometheus", &format!("http://127.0.0.1:{pp}")])
        .args(["--config", config.to_str().expect("path")])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lbtop record");
    std::thread::sleep(Duration::from_secs(4));
    // The second target leaves Prometheus's configuration: its series go stale once Prometheus
    // has reloaded, which took up to 7 s here; 24 s leave room for that and the 3 s after.
    support::prometheus::write_config(pp, dir.path(), std::slice::from_ref(&stays));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &prom.pid().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());
    let out = record.wait_with_output().expect("record ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lbtop(&["replay", file.to_str().expect("path"), "--export", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = support::json::export_frames(&out.stdout);
    let status = |v: &Value, name: &str| {
        v["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|n| n["name"] == name))
            .map(|n| n["status"].as_str().unwrap_or("").to_string())
    };
    let alerted = support::json::alerted;
    let both_ok = frames.iter().position(|v| {
        status(v, &stays).as_deref() == Some("ok") && status(v, &leaves).as_deref() == Some("ok")
    });
    let left = frames
        .iter()
        .position(|v| status(v, &leaves).as_deref() == Some("unreachable") && alerted(v, &leaves));
    assert!(
        matches!((both_ok, left), (Some(a), Some(b)) if a < b),
        "both watched, then the one that left unreachable and alerted: {both_ok:?} {left:?}"
    );
    let last = frames.last().expect("frames");
    assert_eq!(
        support::json::node_names(last),
        [stays.as_str()],
        "forgotten: {last}"
    );
    assert!(!alerted(last, &leaves), "its alert cleared: {last}");
    assert_eq!(status(last, &stays).as_deref(), Some("ok"));
}

/// A server on loopback that answers every connection with `answer` (none: it reads and never
/// answers), and reports each request's head.
fn fake_server(answer: Option<&'static str>) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                head.push_str(&line);
                line.clear();
            }
            let _ = tx.send(head);
            match answer {
                Some(a) => {
                    let _ = stream.write_all(a.as_bytes());
                }
                None => held.push(stream),
            }
        }
    });
    (port, rx)
}

fn failure(url: &str, extra_env: &[(&str, &str)]) -> Value {
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"));
    cmd.args(["--once", "--json", "--interval", "1s", "--router", "none"])
        .args(["--prometheus", url, "--nodes", "prometheus"])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"));
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let started = std::time::Instant::now();
    let out = cmd.output().expect("run lbtop");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    only_node(&v).clone()
}

#[test]
fn prometheus_failures_are_statuses_that_say_what_went_wrong() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let node = failure(&closed, &[]);
    assert_eq!(node["status"], "unreachable", "{node}");
    assert!(
        node["error"]
            .as_str()
            .unwrap_or("")
            .contains("Connection refused"),
        "{node}"
    );

    let (port, _) = fake_server(Some(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<h1>hello\x1b[2J</h1>",
    ));
    let node = failure(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(node["status"], "error", "{node}");
    let error = node["error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("not a Prometheus API answer: HTTP 200"),
        "{error}"
    );
    assert!(!error.contains('\x1b'), "escaped: {error}");

    let (port, _) = fake_server(Some(
        "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1/\r\nContent-Length: 0\r\n\r\n",
    ));
    let node = failure(&format!("http://127.0.0.1:{port}"), &[]);
    let error = node["error"].as_str().unwrap_or("");
    assert!(
        error.starts_with("not a Prometheus API answer: HTTP 302"),
        "not followed: {error}"
    );

    let (port, _) = fake_server(Some(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{",
    ));
    let node = failure(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(
        node["error"],
        "Prometheus's answers need more than the 64.0 MiB lbtop holds at once \
         (`answer-memory` under [prometheus]): narrow the selector, or raise it",
        "{node}"
    );

    let (port, _) = fake_server(None);
    let node = failure(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(node["status"], "unreachable", "{node}");
    assert!(
        node["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer"),
        "{node}"
    );
}

#[test]
fn credentials_from_the_environment_are_sent_and_a_refusal_is_auth_failed() {
    let (port, heads) = fake_server(Some(
        "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let url = format!("http://127.0.0.1:{port}");
    let node = failure(&url, &[("LBTOP_PROMETHEUS_TOKEN", "s3cret")]);
    assert_eq!(node["status"], "auth-failed", "{node}");
    assert!(
        !node.to_string().contains("s3cret"),
        "the token is never shown"
    );
    let head = heads
        .recv_timeout(Duration::from_secs(5))
        .expect("a request");
    assert!(head.starts_with("GET /api/v1/query?query="), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer s3cret"),
        "{head}"
    );
    let node = failure(
        &url,
        &[
            ("LBTOP_PROMETHEUS_USER", "ops"),
            ("LBTOP_PROMETHEUS_PASSWORD", "pw"),
        ],
    );
    assert_eq!(node["status"], "auth-failed", "{node}");
    let basic = heads
        .try_iter()
        .find(|h| h.to_ascii_lowercase().contains("authorization: basic"))
        .expect("basic auth sent");
    // base64("ops:pw")
    assert!(basic.contains("b3BzOnB3"), "{basic}");
}

/// A CA and a certificate for 127.0.0.1 it signs, made with openssl in `dir`.
fn certificates(dir: &std::path::Path) {
    let run = |args: &str| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cd '{}' && {args}", dir.display()))
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "{args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.crt -subj /CN=lbtop-test-ca -days 2 \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
    ));
    run(&format!(
        "openssl req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
    ));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
         -out server.crt -days 2 -extfile ext.cnf",
    );
    std::fs::write(
        dir.join("web.yml"),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .expect("web config");
}

#[test]
fn https_with_prometheus_ca_is_trusted_and_without_it_is_refused() {
    let np = free_port();
    let _exporter = node_exporter(np);
    let dir = tempfile::tempdir().expect("temp dir");
    certificates(dir.path());
    let pp = free_port();
    let web = format!("--web.config.file={}", dir.path().join("web.yml").display());
    let _prom = prometheus(pp, dir.path(), &[format!("127.0.0.1:{np}")], &[web]);
    let url = format!("https://127.0.0.1:{pp}");
    let ca = dir.path().join("ca.crt");
    let ca = ca.to_str().expect("path");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let node = loop {
        let v = once(&[
            "--interval",
            "0s",
            "--prometheus",
            &url,
            "--prometheus-ca",
            ca,
            "--nodes",
            "prometheus",
        ]);
        let node = only_node(&v).clone();
        if node["status"] == "ok" || std::time::Instant::now() > deadline {
            break node;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(node["status"], "ok", "{node}");
    let refused = once(&[
        "--interval",
        "0s",
        "--prometheus",
        &url,
        "--nodes",
        "prometheus",
    ]);
    let node = only_node(&refused);
    assert_ne!(node["status"], "ok", "{node}");
    let error = node["error"].as_str().unwrap_or("");
    assert!(
        error.contains("certificate") || error.contains("Issuer"),
        "{error}"
    );
    let out = lbtop(&[
        "--once",
        "--router",
        "none",
        "--prometheus",
        &url,
        "--prometheus-ca",
        "/nonexistent.pem",
        "--nodes",
        "prometheus",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing CA file is the operator's error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prometheus-ca"));
}

#[test]
fn a_large_answer_is_parsed_off_the_screens_thread_and_the_timeout_holds() {
    // 600,000 small series (about 30 MB): parsing them takes seconds. The poll's 1 s timeout
    // must still end the poll, which a parse on the runtime's own thread would not let happen.
    let mut body = String::from(r#"{"status":"success","data":{"resultType":"vector","result":["#);
    for i in 0..600_000 {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            r#"{{"metric":{{"instance":"i{i}:9100","job":"node"}},"value":[1,"1"]}}"#
        ));
    }
    body.push_str("]}}");
    let answer: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let (port, _) = fake_server(Some(answer));
    let home = tempfile::tempdir().expect("temp home");
    let config = home.path().join("lbtop.toml");
    std::fs::write(&config, "[prometheus]\ntimeout = \"1s\"\n").expect("write");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["--once", "--json", "--interval", "1s", "--router", "none"])
        .args(["--prometheus", &format!("http://127.0.0.1:{port}")])
        .args(["--nodes", "prometheus", "--config"])
        .arg(&config)
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .output()
        .expect("run lbtop");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let node = only_node(&v);
    assert_eq!(node["status"], "unreachable", "{node}");
    assert!(
        node["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not answer within 1s"),
        "{node}"
    );
    eprintln!("--once took {took:?}");
}
