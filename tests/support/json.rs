//! Reading lbtop's `--once --json` output in tests.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// The router's services keyed by their id (`tcp:10.77.1.100:80`, `fwm:1`).
pub fn services_by_id(router: &Value) -> BTreeMap<String, &Value> {
    router["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| (s["id"].as_str().expect("id").to_string(), s))
        .collect()
}

/// The snapshots `lbtop replay FILE --export json` printed, one per line.
pub fn export_frames(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The names of a snapshot's nodes, in its order.
pub fn node_names(snapshot: &Value) -> Vec<&str> {
    snapshot["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect()
}

/// Whether an alert about `subject` is on in a snapshot.
pub fn alerted(snapshot: &Value, subject: &str) -> bool {
    snapshot["alerts"]
        .as_array()
        .is_some_and(|a| a.iter().any(|a| a["subject"] == subject))
}
