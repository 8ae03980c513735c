//! `--nodes auto`: the nodes are the router's real servers. Here the router is a `--proc-root`
//! snapshot whose `net/ip_vs` (constructed in the kernel's format, not captured) lists real servers
//! at the addresses of real sshd namespaces; each is mapped to an SSH host by a `[[node]]` entry,
//! by an ssh_config alias, or used as is.

mod support;

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::sshd::Cluster;

fn hex(addr: &str) -> String {
    let a: Ipv4Addr = addr.parse().expect("ipv4");
    format!("{:08X}", u32::from(a))
}

/// Writes `proc_root/net/ip_vs`: one service with `reals` as its real servers, in the kernel's
/// format. Written whole, then renamed over, so lbtop never reads half a table.
fn write_table(proc_root: &std::path::Path, reals: &[String]) {
    let mut ip_vs = String::from(
        "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  0A4D0164:0050 wlc \n",
    );
    for real in reals {
        ip_vs.push_str(&format!(
            "  -> {}:0050      Route   1      0          0         \n",
            hex(real)
        ));
    }
    std::fs::create_dir_all(proc_root.join("net")).expect("mkdir");
    let next = proc_root.join("net/ip_vs.next");
    std::fs::write(&next, ip_vs).expect("write");
    std::fs::rename(&next, proc_root.join("net/ip_vs")).expect("rename");
}

#[test]
fn auto_finds_the_real_servers_and_maps_them_to_ssh_hosts() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let client = &cluster.client;
    let (a, b) = (cluster.hosts[0].addr(), cluster.hosts[1].addr());
    // A third real server that nothing answers for: a loopback address nothing listens on (the
    // tests reach no address outside loopback and their own namespaces).
    let missing = "127.0.0.9";
    let proc_root = client.dir.path().join("proc");
    write_table(&proc_root, &[a.clone(), b.clone(), missing.to_string()]);
    // a: by a [[node]] mapping to an alias; b: by the alias whose HostName is its address.
    std::fs::write(
        &client.config,
        format!(
            "Host web-a\n  HostName {a}\n  User root\nHost web-b\n  HostName {b}\n  User root\n"
        ),
    )
    .expect("write");
    let lbtop_toml = client.dir.path().join("lbtop.toml");
    let block = format!("{}.0/24", a.rsplit_once('.').expect("an IPv4 address").0);
    std::fs::write(
        &lbtop_toml,
        format!("[[node]]\nmatch = \"{block}\"\nhost = \"web-a\"\n"),
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            "300ms",
            "--router",
            "local",
            "--nodes",
            "auto",
        ])
        .args(["--proc-root", &proc_root.to_string_lossy()])
        .args(["--config", &lbtop_toml.to_string_lossy()])
        .args(["-F", &client.config.to_string_lossy()])
        .env("HOME", &client.home)
        .env("XDG_STATE_HOME", client.dir.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let nodes = v["nodes"].as_array().expect("nodes");
    let find = |name: &str| {
        nodes
            .iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no node {name}: {v}"))
    };
    for (name, addr) in [("web-a", &a), ("web-b", &b)] {
        let n = find(name);
        assert_eq!(n["status"], "ok", "{n}");
        assert_eq!(n["host"], addr.as_str());
        assert!(
            n["cpu_total_percent"].is_number(),
            "two samples were taken: {n}"
        );
    }
    let m = find(missing);
    assert_eq!(m["status"], "unreachable", "{m}");
    assert_eq!(nodes.len(), 3);
}

#[test]
fn auto_watches_at_most_its_cap_of_real_servers_and_counts_the_rest() {
    // 520 real servers on loopback addresses nothing listens on: 512 are watched (and found
    // unreachable at once), the other 8 are counted on the entry named `auto`.
    let dir = tempfile::tempdir().expect("dir");
    let proc_root = dir.path().join("proc");
    let reals: Vec<String> = (0..520u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 8, 1)) + i).to_string())
        .collect();
    write_table(&proc_root, &reals);
    let empty = dir.path().join("ssh_config");
    std::fs::write(&empty, "").expect("write");
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            "300ms",
            "--router",
            "local",
        ])
        .args(["--nodes", "auto", "-F", &empty.to_string_lossy()])
        .args(["--proc-root", &proc_root.to_string_lossy()])
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let nodes = v["nodes"].as_array().expect("nodes");
    let auto = nodes
        .iter()
        .find(|n| n["name"] == "auto")
        .unwrap_or_else(|| panic!("no auto entry ({} nodes)", nodes.len()));
    assert_eq!(
        auto["error"],
        "8 more real servers than the 512 watched over SSH are not watched: a fleet this size is \
         for --nodes prometheus",
        "{auto}"
    );
    assert_eq!(nodes.len(), 513, "512 real servers and the auto entry");
    eprintln!("{} nodes in {:?}", nodes.len(), started.elapsed());
}

#[test]
fn a_real_server_gone_from_the_table_is_forgotten_and_its_connection_closed() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let client = &cluster.client;
    let (a, b) = (cluster.hosts[0].addr(), cluster.hosts[1].addr());
    let proc_root = client.dir.path().join("proc");
    let table = |reals: &[&str]| {
        let reals: Vec<String> = reals.iter().map(|r| r.to_string()).collect();
        write_table(&proc_root, &reals);
    };
    // A second address of a's host (a loopback address nothing listens on), mapped to it by a
    // `[[node]]` entry: while it is listed, a's node stays.
    let second = "127.0.0.10";
    table(&[&a, &b, second]);
    std::fs::write(
        &client.config,
        format!("Host {a}\n  User root\nHost {b}\n  User root\n"),
    )
    .expect("write");
    let lbtop_toml = client.dir.path().join("lbtop.toml");
    std::fs::write(
        &lbtop_toml,
        format!(
            "forget-after = \"2s\"\n[[node]]\nmatch = \"{a}\"\nhost = \"{a}\"\n\
             [[node]]\nmatch = \"{second}\"\nhost = \"{a}\"\n"
        ),
    )
    .expect("write");
    let file = client.dir.path().join("auto.lbrec");
    let record = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["record", &file.to_string_lossy(), "--duration", "12s"])
        .args([
            "--interval",
            "300ms",
            "--router",
            "local",
            "--nodes",
            "auto",
        ])
        .args(["--proc-root", &proc_root.to_string_lossy()])
        .args(["--config", &lbtop_toml.to_string_lossy()])
        .args(["-F", &client.config.to_string_lossy()])
        .env("HOME", &client.home)
        .env("XDG_STATE_HOME", client.dir.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lbtop record");
    std::thread::sleep(std::time::Duration::from_secs(3));
    table(&[second]);
    // Within the two seconds and a poll, b's session ends while lbtop runs on; a's does not.
    assert!(
        cluster.hosts[1]
            .sshd
            .wait_idle(std::time::Duration::from_secs(6)),
        "lbtop still holds a connection to the forgotten real server"
    );
    assert!(
        !cluster.hosts[0]
            .sshd
            .wait_idle(std::time::Duration::from_millis(500)),
        "the node still listed at another address is still watched"
    );
    let out = record.wait_with_output().expect("record ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["replay", &file.to_string_lossy(), "--export", "json"])
        .env("HOME", &client.home)
        .env("XDG_STATE_HOME", client.dir.path().join("state"))
        .output()
        .expect("replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = support::json::export_frames(&out.stdout);
    let names = |v: &Value| -> Vec<String> {
        v["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .filter(|n| n["status"] == "ok")
                    .filter_map(|n| n["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        frames.iter().any(|v| names(v).len() == 2),
        "both watched at first"
    );
    let listed = |v: &Value, name: &str| {
        v["nodes"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["name"] == name))
    };
    assert!(
        frames.iter().all(|v| listed(v, &a)),
        "a's node never left while its second address was listed"
    );
    let last = frames.last().expect("frames");
    assert_eq!(
        support::json::node_names(last),
        [a.as_str()],
        "b forgotten: {last}"
    );
    assert!(!support::json::alerted(last, &b), "{last}");
}
