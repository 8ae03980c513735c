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

/// What `ip addr`, `ipvsadm -L -n` and `ipvsadm -L -n --daemon` say in one director's
/// namespace, all read in one ssh call for both.
#[derive(Debug, Default)]
struct Seen {
    holds: bool,
    /// `(role, syncid)`, sorted.
    daemons: Vec<(String, u64)>,
    services: usize,
    /// Active and inactive connections of the whole table.
    conns: (u64, u64),
    /// Real server `addr:port` to weight.
    weights: std::collections::BTreeMap<String, i64>,
}

/// [`Seen`] for lb1 and lb2.
fn seen(lab: &Lab) -> [Seen; 2] {
    let text = lab.root(
        "for lb in lb1 lb2; do echo \"== $lb\"; ip netns exec $lb ip -o -4 addr show dev eth0; \
         ip netns exec $lb ipvsadm -L -n; ip netns exec $lb ipvsadm -L -n --daemon; done",
    );
    let mut out = [Seen::default(), Seen::default()];
    let mut i = None;
    for l in text.lines() {
        match l.strip_prefix("== ") {
            Some("lb1") => i = Some(0),
            Some("lb2") => i = Some(1),
            _ => {}
        }
        let Some(s) = i.map(|i| &mut out[i]) else {
            continue;
        };
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.iter().any(|w| *w == format!("{PAIR_VIP}/32")) {
            s.holds = true;
        } else if l.contains(" sync daemon (") {
            let id = l
                .split("syncid=")
                .nth(1)
                .and_then(|x| x.split([',', ')']).next());
            s.daemons.push((
                f[0].to_string(),
                id.and_then(|x| x.parse().ok()).expect("syncid"),
            ));
        } else if l.starts_with("TCP ") {
            s.services += 1;
        } else if let ["->", addr, _, w, a, i] = f.as_slice()
            && let (Ok(w), Ok(a), Ok(i)) = (w.parse::<i64>(), a.parse::<u64>(), i.parse::<u64>())
        {
            s.conns = (s.conns.0 + a, s.conns.1 + i);
            s.weights.insert(addr.to_string(), w);
        }
    }
    for s in &mut out {
        s.daemons.sort();
    }
    out
}

/// Waits until exactly `lb` of the two holds the VIP, as `ip addr` says.
fn wait_master(lab: &Lab, lb: &str) {
    let i = usize::from(lb == "lb2");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = seen(lab);
        if s[i].holds && !s[1 - i].holds {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{lb} never became the only master"
        );
        std::thread::sleep(Duration::from_millis(300));
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

/// Checks `--router lb1,lb2`'s JSON against `ip addr`, `ipvsadm -L --daemon` and `ipvsadm -L`.
fn check_pair(lab: &Lab, v: &Value, master: &str) {
    let r = &v["router"];
    let p = &r["pair"];
    let seen = seen(lab);
    assert_eq!(p["master"], master, "{p}");
    assert_eq!(r["host"], master, "the master's table is shown: {r}");
    assert_eq!(p["sync"], "ok", "{p}");
    for (i, lb) in ["lb1", "lb2"].into_iter().enumerate() {
        let d = &p["directors"][i];
        assert_eq!(d["host"], lb);
        assert_eq!(d["holds_vips"], seen[i].holds, "{d}");
        let role = if lb == master { "master" } else { "backup" };
        assert_eq!(d["role"], role, "{d}");
        assert_eq!(says_daemons(&d["sync"]), seen[i].daemons, "{lb}: {d}");
        assert_eq!(d["connections"]["active"], seen[i].conns.0, "{lb}: {d}");
        assert_eq!(d["connections"]["inactive"], seen[i].conns.1, "{lb}: {d}");
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
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("{:6.1}s {what}", t0.elapsed().as_secs_f64());
    let _pair = Pair::up(lab);
    let home = tempfile::tempdir().expect("home");
    let config = ssh_config(lab, home.path());
    wait_master(lab, "lb1");
    step("pair up");
    single_directors(lab, &config, home.path());
    step("each director alone");
    // The sync daemons as keepalived set them, read by the shell program (ipvsadm --daemon) and
    // by the agent (netlink IPVS_CMD_GET_DAEMON).
    check_pair(lab, &once(&config, "lb1,lb2", home.path()), "lb1");
    let agent = once_with(&config, "lb1,lb2", home.path(), support::lab::AGENT);
    assert_eq!(agent["router"]["source"], "agent", "{}", agent["router"]);
    check_pair(lab, &agent, "lb1");
    step("the pair, shell program and agent");

    // A weight changed on the backup only is drift, named in the JSON and as an alert.
    let rs1 = "10.77.0.11:80";
    drift_on_the_backup(lab, &config, home.path(), rs1);
    step("drift");
    // The TUI: the title names master, backup and sync; a drain goes to the master, and the
    // confirmation says what the backup holds.
    let t = support::tmux::Tmux::new("ha-pair");
    drain_in_the_tui(lab, &t, &config, rs1);
    step("drained on the master");
    // The master's keepalived ends: once `ip addr` shows the VIP on lb2, the title names lb2
    // the master within two polls (2 s at 1 s), with a second for drawing and the capture.
    lab.root("kill $(cat /run/lab/ha/lb1.pid)");
    wait_master(lab, "lb2");
    let s = t.wait_for(
        |s| s.contains("master lb2, backup lb1"),
        Duration::from_secs(3),
    );
    assert!(s.contains("master lb2, backup lb1"), "{s}");
    step("failover");
    t.keys("q");
    let v = once(&config, "lb1,lb2", home.path());
    assert_eq!(v["router"]["pair"]["master"], "lb2", "{}", v["router"]);
    assert_eq!(v["router"]["host"], "lb2");
    after_failover(lab, &v);
}

/// Weight 5 for `rs1` on lb2 only: drift in the JSON and a warning alert naming it.
fn drift_on_the_backup(lab: &Lab, config: &str, home: &std::path::Path, rs1: &str) {
    lab.root(&format!(
        "ip netns exec lb2 ipvsadm -e -t {PAIR_VIP}:80 -r {rs1} -g -w 5"
    ));
    let now = seen(lab);
    assert_eq!(now[1].weights.get(rs1), Some(&5));
    let v = once(config, "lb1,lb2", home);
    let said = format!(
        "real server {rs1} of tcp:{PAIR_VIP}:80 has weight {} on lb1 and 5 on lb2",
        now[0].weights.get(rs1).expect("rs1 on lb1")
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
}

/// The TUI watching the pair in `t`: the title names master, backup and sync; a drain of `rs1`
/// goes to the master lb1 (as ipvsadm there says), the backup keeps its weight, and the
/// confirmation says what the backup holds.
fn drain_in_the_tui(lab: &Lab, t: &support::tmux::Tmux, config: &str, rs1: &str) {
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
    while seen(lab)[0].weights.get(rs1) != Some(&0) {
        assert!(
            Instant::now() < deadline,
            "the drain never reached lb1: {}",
            t.screen()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        seen(lab)[1].weights.get(rs1),
        Some(&5),
        "the backup is left alone"
    );
}

/// Each director watched alone: lbtop says whether it holds the VIP and that keepalived owns its
/// table, as `ip addr` and `ipvsadm --daemon` say.
fn single_directors(lab: &Lab, config: &str, home: &std::path::Path) {
    let seen = seen(lab);
    for (i, lb) in ["lb1", "lb2"].into_iter().enumerate() {
        let v = once(config, lb, home);
        let holds = seen[i].holds;
        assert_eq!(says_holds(&v), holds, "{lb}: {}", v["router"]);
        assert_eq!(v["router"]["owners"], serde_json::json!(["keepalived"]));
        // The sync daemon: the master runs the master daemon, the backup the backup one.
        let role = if holds { "master" } else { "backup" };
        assert_eq!(seen[i].daemons, [(role.to_string(), 77)], "{lb}");
        assert_eq!(
            says_daemons(&v["router"]["sync"]),
            seen[i].daemons,
            "{lb}: {}",
            v["router"]
        );
        // Watched alone, the backup holding none of the VIPs is told as a problem: lbtop cannot
        // know it is a backup. Watched as a pair it is not (`check_pair`).
        let problems = v["router"]["problems"].to_string();
        assert_eq!(problems.contains(PAIR_VIP), !holds, "{lb}: {problems}");
    }
}

/// After lb1's keepalived ended: it took its services and its sync daemon away as it ended, as
/// ipvsadm says, and nothing runs it; lbtop's pair view (`v`) says so.
fn after_failover(lab: &Lab, v: &Value) {
    let lb1 = &v["router"]["pair"]["directors"][0];
    let seen = seen(lab);
    assert_eq!(
        lb1["services"].as_u64(),
        Some(seen[0].services as u64),
        "{lb1}"
    );
    assert_eq!(lb1["holds_vips"], false, "{lb1}");
    assert_eq!(says_daemons(&lb1["sync"]), seen[0].daemons, "{lb1}");
    assert_eq!(
        lb1["owners"],
        serde_json::json!([]),
        "keepalived is gone on lb1"
    );
    // lb1 lost its table with keepalived: drift, and the pair's sync is wrong without a backup
    // daemon on lb1.
    assert_eq!(
        v["router"]["pair"]["sync"], "wrong",
        "{}",
        v["router"]["pair"]
    );
    assert!(
        v["router"]["pair"]["drift"]
            .to_string()
            .contains("is on lb2 and not on lb1"),
        "{}",
        v["router"]["pair"]
    );
}
