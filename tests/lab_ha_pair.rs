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

/// The tests of this file take turns with the pair (they run on threads of one process).
static PAIR_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the pair down at the end, also when a test fails.
struct Pair<'a>(
    &'a Lab,
    #[allow(dead_code)] std::sync::MutexGuard<'static, ()>,
);

impl<'a> Pair<'a> {
    fn up(lab: &'a Lab) -> Self {
        let turn = PAIR_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let g = guest();
        lab.root(&format!(
            "GUEST={g} sh {g}/ha-pair down; GUEST={g} sh {g}/ha-pair up"
        ));
        Pair(lab, turn)
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

/// `lbtop --once --json` of director `lb` alone (or of a pair, `lb1,lb2`).
fn once(config: &str, lb: &str, home: &std::path::Path) -> Value {
    once_with(config, lb, home, "never")
}

/// As [`once`], with `--router-agent agent`.
fn once_with(config: &str, lb: &str, home: &std::path::Path, agent: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "--once",
            "--json",
            "--interval",
            "0s",
            "-F",
            config,
            "--router-agent",
            agent,
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
        // Watched alone, the backup holding none of the VIPs is told as a problem: lbtop cannot
        // know it is a backup. Watched as a pair it is not (below).
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

/// `ipvsadm -L -n --daemon` in `lb`'s namespace, as `(role, syncid)` pairs, master first.
fn daemons(lab: &Lab, lb: &str) -> Vec<(String, u64)> {
    let text = lab.root(&format!("ip netns exec {lb} ipvsadm -L -n --daemon"));
    let mut out: Vec<(String, u64)> = text
        .lines()
        .filter_map(|l| {
            let role = l.split_whitespace().next()?.to_string();
            let id = l.split("syncid=").nth(1)?.split([',', ')']).next()?;
            Some((role, id.parse().ok()?))
        })
        .collect();
    out.sort();
    out
}

/// What lbtop says of a director's sync daemons, as [`daemons`] gives them.
fn says_daemons(v: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = v
        .as_array()
        .unwrap_or_else(|| panic!("no sync daemons: {v}"))
        .iter()
        .map(|d| {
            (
                d["role"].as_str().expect("role").to_string(),
                d["syncid"].as_u64().expect("syncid"),
            )
        })
        .collect();
    out.sort();
    out
}

/// `ipvsadm -L -n` in `lb`'s namespace: the active and inactive connections of the whole table,
/// and the weight of real server `real`.
fn table(lab: &Lab, lb: &str, real: &str) -> ((u64, u64), Option<i64>) {
    let text = lab.root(&format!("ip netns exec {lb} ipvsadm -L -n"));
    let mut conns = (0, 0);
    let mut weight = None;
    for l in text.lines().filter(|l| l.trim_start().starts_with("->")) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if let [_, addr, _, w, a, i] = f.as_slice()
            && let (Ok(w), Ok(a), Ok(i)) = (w.parse::<i64>(), a.parse::<u64>(), i.parse::<u64>())
        {
            conns = (conns.0 + a, conns.1 + i);
            if *addr == real {
                weight = Some(w);
            }
        }
    }
    (conns, weight)
}

/// Checks `--router lb1,lb2`'s JSON against `ip addr`, `ipvsadm -L --daemon` and `ipvsadm -L`.
fn check_pair(lab: &Lab, v: &Value, master: &str) {
    let r = &v["router"];
    let p = &r["pair"];
    assert_eq!(p["master"], master, "{p}");
    assert_eq!(r["host"], master, "the master's table is shown: {r}");
    assert_eq!(p["sync"], "ok", "{p}");
    for (i, lb) in ["lb1", "lb2"].into_iter().enumerate() {
        let d = &p["directors"][i];
        assert_eq!(d["host"], lb);
        assert_eq!(d["holds_vips"], holds(lab, lb), "{d}");
        let role = if lb == master { "master" } else { "backup" };
        assert_eq!(d["role"], role, "{d}");
        assert_eq!(says_daemons(&d["sync"]), daemons(lab, lb), "{lb}: {d}");
        let ((active, inactive), _) = table(lab, lb, "");
        assert_eq!(d["connections"]["active"], active, "{lb}: {d}");
        assert_eq!(d["connections"]["inactive"], inactive, "{lb}: {d}");
    }
    // The backup not holding the VIP is how a pair is: no problem, no alert.
    assert_eq!(r["problems"], serde_json::json!([]), "{r}");
    assert_eq!(p["drift"], serde_json::json!([]), "{p}");
    assert_eq!(v["alerts"], serde_json::json!([]), "{}", v["alerts"]);
}

#[test]
fn the_pair_shows_master_backup_sync_and_drift_sends_a_drain_to_the_master_and_follows_a_failover()
{
    let lab = lab();
    let _pair = Pair::up(lab);
    let home = tempfile::tempdir().expect("home");
    let config = ssh_config(lab, home.path());
    wait_master(lab, "lb1");
    // The sync daemons as keepalived set them, read by the shell program (ipvsadm --daemon) and
    // by the agent (netlink IPVS_CMD_GET_DAEMON).
    check_pair(lab, &once(&config, "lb1,lb2", home.path()), "lb1");
    let agent = once_with(&config, "lb1,lb2", home.path(), support::lab::AGENT);
    assert_eq!(agent["router"]["source"], "agent", "{}", agent["router"]);
    check_pair(lab, &agent, "lb1");

    // A weight changed on the backup only is drift, named in the JSON and as an alert.
    let rs1 = "10.77.0.11:80";
    lab.root(&format!(
        "ip netns exec lb2 ipvsadm -e -t {PAIR_VIP}:80 -r {rs1} -g -w 5"
    ));
    assert_eq!(table(lab, "lb2", rs1).1, Some(5));
    let v = once(&config, "lb1,lb2", home.path());
    let said = format!(
        "real server {rs1} of tcp:{PAIR_VIP}:80 has weight {} on lb1 and 5 on lb2",
        table(lab, "lb1", rs1).1.expect("rs1 on lb1")
    );
    assert_eq!(v["router"]["pair"]["drift"], serde_json::json!([said]));
    let alert = v["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["subject"] == "pair")
        .unwrap_or_else(|| panic!("no pair alert: {}", v["alerts"]));
    assert!(
        alert["message"].as_str().is_some_and(|m| m.contains(&said)),
        "{alert}"
    );

    // The TUI: the title names master, backup and sync; a drain goes to the master, and the
    // confirmation says what the backup holds.
    let t = support::tmux::Tmux::new("ha-pair");
    t.start_with_env(
        "SSH_AUTH_SOCK=",
        &format!("-F {config} --router-agent never --router lb1,lb2 --nodes none --interval 1s"),
    );
    let s = t.wait_for(
        |s| s.contains("master lb1, backup lb2, sync ok"),
        Duration::from_secs(60),
    );
    assert!(s.contains("master lb1, backup lb2, sync ok"), "{s}");
    t.keys("Down");
    t.keys("Down");
    t.keys("d");
    let s = t.wait_for(|s| s.contains("enter: apply"), Duration::from_secs(10));
    assert!(
        s.contains(&format!(
            "drain {rs1} of tcp:{PAIR_VIP}:80 on lb1, the master?"
        )),
        "{s}"
    );
    assert!(
        s.contains("the backup lb2 holds weight 5, not 1; the change is made on the master lb1"),
        "{s}"
    );
    t.keys("Enter");
    let deadline = Instant::now() + Duration::from_secs(40);
    while table(lab, "lb1", rs1).1 != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the drain never reached lb1: {}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        table(lab, "lb2", rs1).1,
        Some(5),
        "the backup is left alone"
    );

    // The master's keepalived ends: once `ip addr` shows the VIP on lb2, the title names lb2
    // the master within two polls (2 s at 1 s), with a second for drawing and the capture.
    lab.root("kill $(cat /run/lab/ha/lb1.pid)");
    wait_master(lab, "lb2");
    let s = t.wait_for(
        |s| s.contains("master lb2, backup lb1"),
        Duration::from_secs(3),
    );
    assert!(s.contains("master lb2, backup lb1"), "{s}");
    t.keys("q");
    let v = once(&config, "lb1,lb2", home.path());
    assert_eq!(v["router"]["pair"]["master"], "lb2", "{}", v["router"]);
    assert_eq!(v["router"]["host"], "lb2");
}
