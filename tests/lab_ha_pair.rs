//! The HA pair in the lab VM (`tests/lab/guest/ha-pair`): directors lb1 and lb2 in network
//! namespaces, each with its own IPVS table, running Debian's keepalived with VRRP for VIP
//! 10.77.2.100 and the IPVS sync daemon. lbtop reads each director through the router as jump
//! host and says which holds the VIP (the master) and that keepalived owns its table, as
//! `ip addr`, `ipvsadm -L --daemon` and `pidof` say; killing the master's keepalived moves the
//! VIP, and lbtop says so.
//!
//! Not yet here: `--router lb1,lb2` watching both in one lbtop (the pair's view, drift and sync
//! counts are `lbtop::model::pair`, unit-tested, and not wired to the command line).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lab::{Lab, lab};

const PAIR_VIP: &str = "10.77.2.100";

fn guest() -> String {
    format!("{}/tests/lab/guest", support::lab::REPO)
}

/// Takes the pair down at the end, also when a test fails.
struct Pair<'a>(&'a Lab);

impl<'a> Pair<'a> {
    fn up(lab: &'a Lab) -> Self {
        let g = guest();
        lab.root(&format!(
            "GUEST={g} sh {g}/ha-pair down; GUEST={g} sh {g}/ha-pair up"
        ));
        Pair(lab)
    }
}

impl Drop for Pair<'_> {
    fn drop(&mut self) {
        let g = guest();
        let _ = self.0.run("lab", &format!("GUEST={g} sh {g}/ha-pair down"));
    }
}

/// `ip addr` in director `lb`'s namespace: whether it holds the VIP.
fn holds(lab: &Lab, lb: &str) -> bool {
    lab.root(&format!("ip netns exec {lb} ip -o -4 addr show dev eth0"))
        .split_whitespace()
        .any(|w| w == format!("{PAIR_VIP}/32"))
}

/// Waits until exactly `lb` of the two holds the VIP, as `ip addr` says.
fn wait_master(lab: &Lab, lb: &str) {
    let other = if lb == "lb1" { "lb2" } else { "lb1" };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !holds(lab, lb) || holds(lab, other) {
        assert!(
            Instant::now() < deadline,
            "{lb} never became the only master"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The lab's ssh config with lb1 and lb2 added, reached through the router.
fn ssh_config(lab: &Lab, dir: &std::path::Path) -> String {
    let base = std::fs::read_to_string(&lab.ssh_config).expect("lab ssh config");
    let lab_dir = std::path::Path::new(&lab.ssh_config)
        .parent()
        .expect("lab dir");
    let mut text = base;
    for (lb, addr) in [("lb1", "10.77.0.21"), ("lb2", "10.77.0.22")] {
        text.push_str(&format!(
            "Host {lb}\n    HostName {addr}\n    Port 22\n    User root\n    ProxyJump lab\n    \
             HostKeyAlias lab-router\n    IdentityFile {key}\n    IdentitiesOnly yes\n    \
             UserKnownHostsFile {known}\n    GlobalKnownHostsFile /dev/null\n    \
             StrictHostKeyChecking yes\n    BatchMode yes\n    ConnectTimeout 60\n    \
             LogLevel ERROR\n",
            key = lab_dir.join("keys/id_ed25519").display(),
            known = lab_dir.join("known_hosts").display(),
        ));
    }
    let path = dir.join("ssh_config");
    std::fs::write(&path, text).expect("write ssh config");
    path.to_string_lossy().into_owned()
}

/// `lbtop --once --json` of director `lb` alone.
fn once(config: &str, lb: &str, home: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            "0s",
            "-F",
            config,
            "--router-agent",
            "never",
            "--router",
            lb,
            "--nodes",
            "none",
        ])
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{lb}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// What lbtop says of the VIP on a director: local or not.
fn says_holds(v: &Value) -> bool {
    v["router"]["vips"]
        .as_array()
        .unwrap_or_else(|| panic!("no vips: {}", v["router"]))
        .iter()
        .find(|x| x["address"] == PAIR_VIP)
        .and_then(|x| x["local"].as_bool())
        .unwrap_or_else(|| panic!("no {PAIR_VIP} in {}", v["router"]))
}

#[test]
fn lbtop_names_the_master_and_keepalived_and_follows_a_failover() {
    let lab = lab();
    let _pair = Pair::up(lab);
    let home = tempfile::tempdir().expect("home");
    let config = ssh_config(lab, home.path());
    wait_master(lab, "lb1");
    for lb in ["lb1", "lb2"] {
        let v = once(&config, lb, home.path());
        assert_eq!(says_holds(&v), holds(lab, lb), "{lb}: {}", v["router"]);
        assert_eq!(v["router"]["owners"], serde_json::json!(["keepalived"]));
        // The sync daemon: the master runs the master daemon, the backup the backup one.
        let daemon = lab.root(&format!("ip netns exec {lb} ipvsadm -L -n --daemon"));
        let role = if holds(lab, lb) { "master" } else { "backup" };
        assert!(
            daemon.contains(&format!("{role} sync daemon")),
            "{lb}: {daemon}"
        );
        // The backup holding none of the VIPs is told as a problem; the pair's view, which
        // knows it is the backup, is not built yet.
        let problems = v["router"]["problems"].to_string();
        assert_eq!(
            problems.contains(PAIR_VIP),
            !holds(lab, lb),
            "{lb}: {problems}"
        );
    }
    // The master's keepalived ends: VRRP moves the VIP to lb2.
    lab.root("kill $(cat /run/lab/ha/lb1.pid)");
    wait_master(lab, "lb2");
    let v2 = once(&config, "lb2", home.path());
    let v1 = once(&config, "lb1", home.path());
    assert!(says_holds(&v2), "{}", v2["router"]);
    // keepalived took its services away as it ended, as ipvsadm says: nothing is held on lb1.
    let left = lab.root("ip netns exec lb1 ipvsadm -L -n | grep -c '^TCP' || true");
    assert_eq!(
        v1["router"]["services"].as_array().map(Vec::len),
        Some(left.trim().parse::<usize>().expect("a count")),
        "{}",
        v1["router"]
    );
    assert!(
        !v1["router"]["vips"]
            .as_array()
            .expect("vips")
            .iter()
            .any(|x| x["local"] == true),
        "{}",
        v1["router"]
    );
    assert_eq!(
        v1["router"]["owners"],
        serde_json::json!([]),
        "keepalived is gone on lb1"
    );
}
