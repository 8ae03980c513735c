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
