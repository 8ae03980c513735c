//! `lbtop --once --json` against this machine: the schema-1 names, real derived values, failed
//! sources reported rather than fatal, and bad config rejected with exit status 2.

mod support;

use support::bin::lbtop;

use serde_json::Value;

fn once(args: &[&str]) -> Value {
    let mut all = vec!["--once", "--json"];
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

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[test]
fn snapshot_has_the_schema_1_names_and_real_cpu_percentages() {
    let v = once(&["--interval", "300ms"]);
    assert_eq!(v["schema"], 1);
    assert!(
        humantime::parse_rfc3339(v["time"].as_str().expect("time")).is_ok(),
        "time is RFC 3339: {}",
        v["time"]
    );
    assert_eq!(keys(&v), ["alerts", "nodes", "router", "schema", "time"]);
    let node = &v["nodes"][0];
    for k in [
        "name",
        "host",
        "status",
        "error",
        "cores",
        "load",
        "cpu_total_percent",
        "cpus",
        "memory",
        "uptime_s",
        "alert",
    ] {
        assert!(node.get(k).is_some(), "node lacks {k}: {node}");
    }
    assert_eq!(node["status"], "ok", "{node}");
    let cores = node["cores"].as_u64().expect("cores");
    assert!(cores >= 1);
    let cpus = node["cpus"]
        .as_array()
        .expect("cpus derived from two samples");
    assert_eq!(cpus.len() as u64, cores);
    assert_eq!(
        keys(&cpus[0]),
        [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"
        ]
    );
    let total = node["cpu_total_percent"].as_f64().expect("cpu total");
    assert!((0.0..=100.0).contains(&total));
    assert_eq!(node["load"].as_array().map(Vec::len), Some(3));
    assert!(node["memory"]["total_bytes"].as_u64().unwrap_or(0) > 0);
}

#[test]
fn a_failed_router_is_reported_in_the_json_and_the_exit_status_is_still_0() {
    let v = once(&["--interval", "0s", "--nodes", "none"]);
    let router = &v["router"];
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        assert_eq!(router["status"], "ok");
    } else {
        assert_eq!(router["status"], "error", "{router}");
        assert_eq!(router["error"], "IPVS is not available: modprobe ip_vs");
        assert_eq!(router["services"], Value::Array(vec![]));
    }
    assert_eq!(v["nodes"], Value::Array(vec![]));
}

#[test]
fn a_wrong_proc_root_names_the_snapshot_not_a_module_to_load() {
    // Not a directory: a usage error, exit 2, before anything is polled.
    let out = lbtop(&[
        "--once",
        "--json",
        "--proc-root",
        "/nonexistent/lbtop-snapshot",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--proc-root /nonexistent/lbtop-snapshot: not a directory"),
        "{err}"
    );
    // A snapshot without the IPVS table: the file it lacks, not "modprobe ip_vs".
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().to_str().expect("utf8");
    let v = once(&["--interval", "0s", "--nodes", "none", "--proc-root", root]);
    let error = v["router"]["error"].as_str().expect("an error");
    assert!(error.contains(&format!("{root}/net/ip_vs")), "{error}");
    assert!(!error.contains("modprobe"), "{error}");
}

#[test]
fn interval_zero_takes_one_sample_and_derived_values_are_null() {
    let v = once(&["--interval", "0s", "--router", "none"]);
    let node = &v["nodes"][0];
    assert!(node["cpu_total_percent"].is_null(), "{node}");
    assert!(node["cpus"].is_null(), "{node}");
    assert!(
        node["load"].is_array(),
        "raw values are still there: {node}"
    );
    assert!(v["router"].is_null());
}

#[test]
fn an_unknown_config_key_exits_2_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "interval = \"2s\"\nno-such-key = 1\n").expect("write");
    let out = lbtop(&[
        "--config",
        path.to_str().expect("utf-8 path"),
        "--once",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains(":2"), "names line 2: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn ssh_nodes_that_cannot_be_reached_are_reported_and_the_exit_status_is_still_0() {
    // Nothing listens on port 1 of the loopback addresses: refused at once, no network involved.
    let v = once(&[
        "--router",
        "none",
        "--nodes",
        "root@127.0.0.1:1,127.0.0.2:1",
        "--interval",
        "0s",
    ]);
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2, "{v}");
    for n in nodes {
        assert_eq!(n["status"], "unreachable", "{n}");
        assert_eq!(n["error"], "connection refused", "{n}");
    }
}

#[test]
fn local_in_a_node_list_is_this_machine_and_the_rest_go_over_ssh() {
    // Port 1 on loopback: nothing listens, so that node is unreachable at once.
    let v = once(&[
        "--interval",
        "0s",
        "--router",
        "none",
        "--nodes",
        "local,root@127.0.0.1:1",
    ]);
    let nodes = v["nodes"].as_array().expect("nodes");
    let local: Vec<_> = nodes.iter().filter(|n| n["host"] == "local").collect();
    assert_eq!(local.len(), 1, "{nodes:?}");
    assert_eq!(local[0]["status"], "ok");
    assert!(local[0]["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(
        nodes
            .iter()
            .any(|n| n["host"] == "127.0.0.1" && n["status"] == "unreachable"),
        "{nodes:?}"
    );
    assert!(nodes.iter().all(|n| n["name"] != "local"), "{nodes:?}");
}

#[test]
fn the_config_files_router_applies_unless_the_command_line_names_one() {
    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("router.toml");
    let path_s = path.to_str().expect("utf-8 path");
    std::fs::write(&path, "router = \"none\"\n").expect("write");
    let v = once(&["--config", path_s, "--interval", "0s", "--nodes", "none"]);
    assert!(v["router"].is_null(), "{}", v["router"]);
    let v = once(&[
        "--config",
        path_s,
        "--interval",
        "0s",
        "--nodes",
        "none",
        "--router",
        "local",
    ]);
    assert_eq!(v["router"]["host"], "local", "{}", v["router"]);
    std::fs::write(&path, "router = \"lb1,lb1\"\n").expect("write");
    let out = lbtop(&["--config", path_s, "--once", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("router") && err.contains("the same"), "{err}");
}

#[test]
fn a_pair_whose_directors_cannot_be_reached_reports_both_and_the_exit_status_is_still_0() {
    // Port 1 on loopback: nothing listens, so both are refused at once.
    let v = once(&[
        "--interval",
        "0s",
        "--nodes",
        "none",
        "-o",
        "BatchMode=yes",
        "--router",
        "127.0.0.1:1,127.0.0.2:1",
    ]);
    let p = &v["router"]["pair"];
    assert_eq!(p["state"], "unknown", "{p}");
    assert!(p["master"].is_null(), "{p}");
    for (i, host) in ["127.0.0.1:1", "127.0.0.2:1"].into_iter().enumerate() {
        assert_eq!(p["directors"][i]["host"], host, "{p}");
        assert_eq!(p["directors"][i]["host_status"], "unreachable", "{p}");
        assert!(p["directors"][i]["error"].is_string(), "{p}");
    }
}
