//! The router from Prometheus (`--router 'prometheus:INSTANCE'`): a real Prometheus scraping a
//! real node_exporter (Debian's packages, on loopback, 1 s scrapes) whose ipvs collector reads
//! `/proc/net/ip_vs` and `ip_vs_stats` as the lab VM's kernel wrote them (this machine's kernel
//! has no IPVS): `tests/fixtures/ipvs/ip_vs` and `ip_vs_stats`, captured in the lab VM
//! (tests/fixtures/SOURCES.md). node_exporter is given a directory holding them as its
//! `--path.procfs`. The oracle is the same file as lbtop's own `/proc/net/ip_vs` parser reads it
//! (itself tested against ipvsadm in tests/parse_ipvs.rs): `ipvsadm-Ln-exact.txt`, captured
//! just after, differs by one inactive connection that ended in between.
//! `tests/lab_prometheus.rs` compares with `ipvsadm -Ln` against the VM's live kernel.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::bin::lbtop;
use support::prometheus::{
    Running, assert_agrees_with_ipvsadm, free_port, node_exporter_ipvs, prometheus,
    table_from_json, table_from_proc, wait_for_scrapes,
};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ipvs")
        .join(name)
}

/// node_exporter reading the lab kernel's captured files, and Prometheus scraping it.
struct Router {
    _exporter: Running,
    _prometheus: Running,
    _dir: tempfile::TempDir,
    url: String,
    instance: String,
}

fn router() -> Router {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = dir.path().join("procfs/net");
    std::fs::create_dir_all(&net).expect("procfs dir");
    for f in ["ip_vs", "ip_vs_stats"] {
        std::fs::copy(fixture(f), net.join(f)).expect("copy the lab kernel's file");
    }
    let (np, pp) = (free_port(), free_port());
    let exporter = node_exporter_ipvs(np, &dir.path().join("procfs"));
    let instance = format!("127.0.0.1:{np}");
    let prom = prometheus(pp, dir.path(), std::slice::from_ref(&instance), &[]);
    wait_for_scrapes(pp, 1, 3);
    Router {
        _exporter: exporter,
        _prometheus: prom,
        _dir: dir,
        url: format!("http://127.0.0.1:{pp}"),
        instance,
    }
}

fn once(r: &Router, extra: &[&str]) -> Value {
    let router = format!("prometheus:{}", r.instance);
    let mut args = vec![
        "--once",
        "--json",
        "--interval",
        "2s",
        "--nodes",
        "none",
        "--prometheus",
        &r.url,
        "--router",
        &router,
    ];
    args.extend_from_slice(extra);
    let out = lbtop(&args);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn a_router_from_prometheus_has_ipvsadm_s_weights_and_connections_and_says_what_it_cannot_know() {
    let r = router();
    let v = once(&r, &[]);
    let router = &v["router"];
    assert_eq!(router["status"], "ok", "{router}");
    assert_eq!(router["source"], "prometheus");
    assert_eq!(router["host"], r.instance.as_str());
    let proc = std::fs::read_to_string(fixture("ip_vs")).expect("fixture");
    let agreed = assert_agrees_with_ipvsadm(&table_from_json(router), &table_from_proc(&proc));
    assert!(agreed >= 50, "only {agreed} entries compared");
    // The known misreading: the SCTP service's real under the TCP service before it.
    assert!(
        table_from_json(router).contains_key(&(
            "tcp:10.77.1.110:8008".to_string(),
            "10.77.0.11:9999".to_string()
        )),
        "node_exporter 1.5's procfs no longer misreads SCTP: drop the exception"
    );
    // What node_exporter does not export is null, and the router says which fields.
    let unknown: Vec<&str> = router["unknown"]
        .as_array()
        .expect("unknown")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for field in ["scheduler", "forward", "upper_threshold", "totals", "rates"] {
        assert!(unknown.contains(&field), "{field} not in {unknown:?}");
    }
    for s in router["services"].as_array().expect("services") {
        assert_eq!(s["scheduler"], Value::Null, "{s}");
        assert_eq!(s["totals"], Value::Null, "{s}");
        assert_eq!(s["rates"], Value::Null, "{s}");
        for real in s["reals"].as_array().expect("reals") {
            for field in [
                "forward",
                "upper_threshold",
                "lower_threshold",
                "rates",
                "totals",
            ] {
                assert_eq!(real[field], Value::Null, "{field} of {real}");
            }
        }
    }
    // The router-wide counters are ip_vs_stats's (hex there): 0x55 connections, 0x1D3 packets
    // in, 0x187 out, 0x7E3C bytes in, 0x8F4D out. Rates are derived from two scrapes.
    assert_eq!(
        router["totals"],
        serde_json::json!({"conns": 0x55, "in_packets": 0x1D3, "out_packets": 0x187,
            "in_bytes": 0x7E3C, "out_bytes": 0x8F4D}),
        "{router}"
    );
    assert_eq!(router["rates"]["cps"], 0.0, "{router}");
}

#[test]
fn a_weight_change_through_a_prometheus_router_is_refused_with_the_reason() {
    let out = lbtop(&[
        "drain",
        "--router",
        "prometheus:10.0.0.1:9100",
        "tcp:10.77.1.100:80",
        "10.77.0.11:80",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("read from Prometheus") && stderr.contains("--router HOST"),
        "{stderr}"
    );
}

#[test]
fn a_recording_of_a_prometheus_router_replays_with_the_same_table() {
    let r = router();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("router.lbrec");
    let file = file.to_str().expect("path");
    let router = format!("prometheus:{}", r.instance);
    let out = lbtop(&[
        "record",
        file,
        "--duration",
        "4s",
        "--interval",
        "1s",
        "--nodes",
        "none",
        "--prometheus",
        &r.url,
        "--router",
        &router,
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
    let replayed = &last["router"];
    assert_eq!(replayed["source"], "prometheus", "{replayed}");
    assert_eq!(replayed["services"][0]["reals"][0]["forward"], Value::Null);
    let proc = std::fs::read_to_string(fixture("ip_vs")).expect("fixture");
    assert_agrees_with_ipvsadm(&table_from_json(replayed), &table_from_proc(&proc));
    assert_eq!(
        replayed["rates"]["cps"], 0.0,
        "derived on replay: {replayed}"
    );
}

#[test]
fn answers_beyond_the_memory_budget_give_a_status_that_says_so() {
    let r = router();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("lbtop.toml");
    // Each backend family's answer is some 14 kB here; 4 KiB is all lbtop may hold.
    std::fs::write(&config, "[prometheus]\nanswer-memory = \"4KiB\"\n").expect("config");
    let v = once(&r, &["--config", config.to_str().expect("path")]);
    let router = &v["router"];
    assert_eq!(router["host_status"], "error", "{router}");
    let error = router["error"].as_str().unwrap_or("");
    assert!(
        error.contains("more than the 4.0 KiB lbtop holds at once")
            && error.contains("answer-memory"),
        "{error}"
    );
    // With the default budget the same answers are read.
    assert_eq!(once(&r, &[])["router"]["status"], "ok");
}
