//! `--proc-root` on a real `/proc` captured in the lab VM: the router is read from the captured
//! `net/ip_vs*` files (never netlink), and what lbtop reports agrees with `ipvsadm -Ln --exact`
//! captured at the same moment — identity, scheduler, persistence, forwarding method and weight.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use lbtop::source::parse::{ipvsadm_list, merge_ipvsadm};
use serde_json::Value;
use support::json::services_by_id;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-root-lab");

fn once(interval: &str) -> Value {
    let home = tempfile::tempdir().expect("temp home");
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            interval,
            "--proc-root",
            ROOT,
        ])
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn captured_router_matches_ipvsadm_of_the_same_moment() {
    let v = once("0s");
    let router = &v["router"];
    assert_eq!(router["source"], "proc");
    assert_eq!(router["status"], "ok", "{router}");

    let text =
        std::fs::read_to_string(Path::new(ROOT).join("ipvsadm-Ln-exact.txt")).expect("oracle");
    let plain = ipvsadm_list(&text).expect("ipvsadm output parses");
    let oracle = merge_ipvsadm(&plain, &[]).expect("merge");

    let ours = services_by_id(router);
    assert_eq!(ours.len(), oracle.len(), "service count");
    for svc in &oracle {
        let id = svc.key.to_string();
        let s = ours
            .get(&id)
            .unwrap_or_else(|| panic!("lbtop lacks service {id}"));
        assert_eq!(
            s["scheduler"],
            svc.scheduler.as_deref().unwrap_or_default(),
            "{id} scheduler"
        );
        assert_eq!(
            s["persistent"]["timeout_s"].as_u64(),
            svc.persistent.as_ref().map(|p| u64::from(p.timeout_s)),
            "{id} persistence"
        );
        assert_eq!(s["ops"], svc.ops, "{id} ops");
        let reals: BTreeMap<&str, &Value> = s["reals"]
            .as_array()
            .expect("reals")
            .iter()
            .map(|r| (r["id"].as_str().expect("id"), r))
            .collect();
        assert_eq!(reals.len(), svc.reals.len(), "{id} real count");
        for real in &svc.reals {
            let rid = real.id();
            let r = reals
                .get(rid.as_str())
                .unwrap_or_else(|| panic!("{id} lacks {rid}"));
            assert_eq!(r["forward"], real.forward.as_str(), "{id} {rid} forward");
            assert_eq!(r["weight"], real.weight, "{id} {rid} weight");
        }
    }
}

#[test]
fn connection_table_is_summed_and_node_comes_from_the_captured_files() {
    let v = once("0s");
    let conn_rows = std::fs::read_to_string(Path::new(ROOT).join("net/ip_vs_conn"))
        .expect("conn")
        .lines()
        .count()
        - 1;
    assert_eq!(v["router"]["connections"]["total"], conn_rows as u64);
    let states: u64 = v["router"]["connections"]["by_state"]
        .as_object()
        .expect("by_state")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(states, conn_rows as u64);
    let stat = std::fs::read_to_string(Path::new(ROOT).join("stat")).expect("stat");
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(v["nodes"][0]["cores"], cores as u64);
    assert_eq!(v["nodes"][0]["status"], "ok");
}

#[test]
fn same_files_twice_give_zero_rates_not_errors() {
    let v = once("100ms");
    let node = &v["nodes"][0];
    // Counters did not move: no time passed in the jiffies, so no percentage can be derived.
    assert!(node["cpu_total_percent"].is_null(), "{node}");
    assert_eq!(v["router"]["status"], "ok");
}

/// The lab snapshot copied to a temporary directory, for a test to put something else in place
/// of one of its files.
fn copy_of_the_lab() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for rel in [
        "stat",
        "loadavg",
        "meminfo",
        "uptime",
        "net/ip_vs",
        "net/ip_vs_stats",
        "net/ip_vs_conn",
    ] {
        let to = dir.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(Path::new(ROOT).join(rel), to).expect("copy");
    }
    dir
}

/// `lbtop --once --json --router local --proc-root root`, killed and failed if it takes more than
/// ten seconds (a FIFO opened for reading waits for a writer forever).
fn once_within_ten_seconds(root: &Path) -> Value {
    let home = tempfile::tempdir().expect("temp home");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbtop"))
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
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lbtop");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lbtop --once did not finish within 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn a_fifo_or_directory_in_place_of_the_connection_table_is_an_error_naming_it_not_a_hang() {
    for (file, what) in [
        ("net/ip_vs_conn", "a FIFO"),
        ("net/ip_vs_conn", "a directory"),
        ("net/ip_vs", "a FIFO"),
    ] {
        let root = copy_of_the_lab();
        let path = root.path().join(file);
        std::fs::remove_file(&path).expect("rm");
        if what == "a FIFO" {
            nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        } else {
            std::fs::create_dir(&path).expect("mkdir");
        }
        let v = once_within_ten_seconds(root.path());
        let router = &v["router"];
        assert_eq!(router["status"], "error", "{router}");
        assert_eq!(
            router["error"],
            format!("{}: not a regular file ({what})", path.display()),
        );
    }
}

/// The nine files lbtop reads under `--proc-root`.
const SNAPSHOT_FILES: [&str; 9] = [
    "stat",
    "loadavg",
    "meminfo",
    "uptime",
    "net/ip_vs",
    "net/ip_vs_stats",
    "net/ip_vs_conn",
    "sys/kernel/hostname",
    "sys/kernel/osrelease",
];

#[test]
fn any_snapshot_file_as_a_fifo_or_an_endless_device_is_answered_in_bounded_time_and_memory() {
    for file in SNAPSHOT_FILES {
        for what in ["a FIFO", "/dev/zero", "/dev/urandom"] {
            let root = copy_of_the_lab();
            let kernel = root.path().join("sys/kernel");
            std::fs::create_dir_all(&kernel).expect("sys/kernel");
            std::fs::write(kernel.join("hostname"), "lab\n").expect("hostname");
            std::fs::write(kernel.join("osrelease"), "6.1.0\n").expect("osrelease");
            let path = root.path().join(file);
            std::fs::remove_file(&path).expect("rm");
            if what == "a FIFO" {
                nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
            } else {
                std::os::unix::fs::symlink(what, &path).expect("symlink");
            }
            let run = support::bounded::lbtop_within(
                &[
                    "--once",
                    "--json",
                    "--router",
                    "local",
                    "--nodes",
                    "local",
                    "--proc-root",
                    root.path().to_str().expect("utf8"),
                ],
                std::time::Duration::from_secs(20),
            );
            assert!(run.finished().success(), "{file} {what}: {}", run.stderr);
            assert!(
                run.max_rss_mb() < 200,
                "{file} {what}: {} MB",
                run.max_rss_mb()
            );
            let v: Value = serde_json::from_str(&run.stdout).expect("JSON");
            let kind = if what == "a FIFO" {
                what
            } else {
                "a character device"
            };
            let said = format!("{}: not a regular file ({kind})", path.display());
            // The host facts are optional: without them the node is still shown.
            if !file.starts_with("sys/") {
                let error = if file.starts_with("net/") {
                    &v["router"]["error"]
                } else {
                    &v["nodes"][0]["error"]
                };
                assert_eq!(error.as_str(), Some(said.as_str()), "{file} {what}: {v}");
            }
        }
    }
}
