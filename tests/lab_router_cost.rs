//! Benchmark (ignored in the suite; run it with `cargo test --release --test lab_router_cost --
//! --ignored --nocapture`, about 20 minutes): what watching a large table costs the router, for
//! lbtop and for `watch -n 2 ipvsadm -Ln --exact --stats`, in the same run.
//!
//! The lab router (qemu TCG, the real kernel's IPVS) gets 1,000 services × 10 real servers. The
//! cost is what the router's sshd reaps from its children (everything a session starts: the
//! login shell, lbtop's program, ipvsadm, awk, `cat`; `watch` and its ipvsadm runs), read from
//! its `/proc/PID/stat` (cutime + cstime) once each session has ended. Each tool runs for a
//! short and a long time; the difference divided by the difference in time is the cost per
//! second of watching, with connection set-up cancelled out.
//!
//! lbtop runs as an operator runs it: `lbtop record --interval 2s --router lab --nodes none`,
//! the real CLI on this machine; its recording then says how fresh each part was.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::lab::{AGENT, Lab, lab};

const SERVICES: usize = 1000;
const REALS: usize = 10;
const SHORT: u64 = 30;
const LONG: u64 = 150;
const WATCH: &str = "ipvsadm -Ln --exact --stats";
const WATCH_ALL: &str = "ipvsadm -Ln --exact --stats | tail -n 20";

/// The CPU the router's sshd and init have reaped from their children, in seconds: a session's
/// processes are reaped by its sshd, or by init when they outlive it (a program that reads its
/// end of input only after the client has gone).
fn reaped(lab: &Lab) -> f64 {
    let out = lab.root(
        "for p in $(cat /run/lab/sshd-router.pid) 1; do read -r l </proc/$p/stat; echo \"${l##*) }\"; done; getconf CLK_TCK",
    );
    let lines: Vec<&str> = out.lines().collect();
    let hz: f64 = lines[2].trim().parse().expect("CLK_TCK");
    lines[..2]
        .iter()
        .map(|line| {
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            // After the command name: state is field 3, so cutime (16) and cstime (17) are 13
            // and 14.
            (fields[13] + fields[14]) as f64 / hz
        })
        .sum()
}

/// The big table, from one `ipvsadm -R` (fast even under emulation). VIPs in 10.78/16 and reals
/// in 10.77.2.0/24 exist only in the VM's IPVS table: no packet is sent to them.
fn big_table(lab: &Lab) {
    let mut rules = String::new();
    for s in 0..SERVICES {
        let vip = format!("10.78.{}.{}:80", s / 250, s % 250 + 1);
        rules.push_str(&format!("-A -t {vip} -s wlc\n"));
        for r in 0..REALS {
            rules.push_str(&format!(
                "-a -t {vip} -r 10.77.2.{}:{} -g -w 1\n",
                r + 1,
                8000 + s
            ));
        }
    }
    lab.root(&format!(
        "ipvsadm -S -n > /tmp/lab-table.before\ncat > /tmp/big.rules <<'EOF'\n{rules}EOF\nipvsadm -R < /tmp/big.rules"
    ));
}

fn restore(lab: &Lab) {
    lab.root("ipvsadm -C; ipvsadm -R < /tmp/lab-table.before");
}

/// The router CPU for `seconds` of `watch -n 2 COMMAND` in one session.
fn watch_ipvsadm(lab: &Lab, seconds: u64, command: &str) -> f64 {
    let before = reaped(lab);
    // Bounded here too: `watch` under a pseudo-terminal must end with its session.
    let status = Command::new("timeout")
        .arg((seconds + 120).to_string())
        .args(["ssh", "-F", &lab.ssh_config, "-tt", "lab"])
        .arg(format!(
            "TERM=xterm timeout --foreground {seconds} watch -n 2 '{command}'"
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("ssh");
    assert!(status.code().is_some(), "{status}");
    std::thread::sleep(Duration::from_secs(1));
    reaped(lab) - before
}

/// The router CPU for `seconds` of `lbtop record`, and the recording's frames as JSON.
/// `budget`: `--router-budget`, or none for its default.
fn lbtop(lab: &Lab, seconds: u64, budget: Option<&str>, agent: &str) -> (f64, Vec<Value>) {
    let home = tempfile::tempdir().expect("home");
    let file = home.path().join("cost.lbrec");
    let before = reaped(lab);
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args([
            "record",
            "--interval",
            "2s",
            "--router",
            "lab",
            "--nodes",
            "none",
        ])
        .args(budget.map(|b| ["--router-budget", b]).into_iter().flatten())
        .args(["-F", &lab.ssh_config])
        .args(["--router-agent", agent])
        .args([
            "-o",
            "ConnectTimeout=60",
            "--duration",
            &format!("{seconds}s"),
        ])
        .arg(&file)
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("lbtop record");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_secs(1));
    let cost = reaped(lab) - before;
    let export = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["replay", "--export", "json"])
        .arg(&file)
        .env("HOME", home.path())
        .output()
        .expect("export");
    let frames = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (cost, frames)
}

fn describe(frames: &[Value]) -> String {
    let ages = |part: &str| -> f64 {
        frames
            .iter()
            .filter_map(|f| f["router"]["ages_s"][part].as_f64())
            .fold(0.0, f64::max)
    };
    let ok = frames
        .iter()
        .filter(|f| f["router"]["host_status"] == "ok")
        .count();
    let source = frames
        .iter()
        .filter_map(|f| f["router"]["source"].as_str())
        .next_back()
        .unwrap_or("none");
    format!(
        "{} frames ({ok} ok, read by {source}), oldest counters {:.0} s, details {:.0} s, connection table {:.0} s",
        frames.len(),
        ages("counters"),
        ages("details"),
        ages("connections")
    )
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn router_cpu_while_watching_a_large_table() {
    let lab = lab();
    big_table(lab);
    let started = Instant::now();
    let one = Instant::now();
    lab.root("ipvsadm -Ln --exact --stats >/dev/null");
    let ipvsadm_wall = one.elapsed();
    // `watch` shows one screen: it stops reading after 24 rows, and ipvsadm dies of SIGPIPE part
    // way through. So the second watch reads the whole table (as lbtop does) and shows its end.
    let w_short = watch_ipvsadm(lab, SHORT, WATCH);
    let w_long = watch_ipvsadm(lab, LONG, WATCH);
    let f_short = watch_ipvsadm(lab, SHORT, WATCH_ALL);
    let f_long = watch_ipvsadm(lab, LONG, WATCH_ALL);
    let (l_short, _) = lbtop(lab, SHORT, None, "never");
    let (l_long, frames) = lbtop(lab, LONG, None, "never");
    // The same session at other ipvsadm budgets: 10 %, the default until 2026-12-03, and 0.1 %,
    // where ipvsadm runs only at the first poll of both runs, so that the difference is what the
    // /proc part alone costs.
    let lower: Vec<(&str, f64, f64, Vec<Value>)> = ["10", "0.1"]
        .into_iter()
        .map(|b| {
            let (short, _) = lbtop(lab, SHORT, Some(b), "never");
            let (long, frames) = lbtop(lab, LONG, Some(b), "never");
            (b, short, long, frames)
        })
        .collect();
    let (a_short, _) = lbtop(lab, SHORT, None, AGENT);
    let (a_long, agent_frames) = lbtop(lab, LONG, None, AGENT);
    restore(lab);
    let span = (LONG - SHORT) as f64;
    let watch = (w_long - w_short) / span;
    let watch_all = (f_long - f_short) / span;
    let ours = (l_long - l_short) / span;
    let agent = (a_long - a_short) / span;
    println!(
        "\n{SERVICES} services × {REALS} reals, --interval 2s, router sshd's reaped CPU per second of watching \
         (({LONG} s − {SHORT} s runs) / {span} s), measured in {:.0} s:",
        started.elapsed().as_secs_f64()
    );
    println!(
        "  one `ipvsadm -Ln --exact --stats` over ssh: {:.2} s wall",
        ipvsadm_wall.as_secs_f64()
    );
    println!(
        "  watch -n 2 ipvsadm -Ln --exact --stats: {watch:.3} cores ({w_short:.1} s / {w_long:.1} s)"
    );
    println!(
        "  lbtop record --interval 2s --router-agent never (the default --router-budget): {ours:.3} cores ({l_short:.1} s / {l_long:.1} s)"
    );
    println!("  watch -n 2 '{WATCH_ALL}': {watch_all:.3} cores ({f_short:.1} s / {f_long:.1} s)");
    println!("  ratio lbtop / watch: {:.2}", ours / watch);
    println!(
        "  ratio lbtop / watch of the whole table: {:.2}",
        ours / watch_all
    );
    println!("  lbtop's {LONG} s recording: {}", describe(&frames));
    for (budget, short, long, frames) in &lower {
        let cost = (long - short) / span;
        println!(
            "  the same at --router-budget {budget}: {cost:.3} cores ({short:.1} s / {long:.1} s), \
             {:.2}× watch; its {LONG} s recording: {}",
            cost / watch,
            describe(frames)
        );
    }
    println!(
        "  lbtop record --interval 2s --router-agent {AGENT}: {agent:.3} cores ({a_short:.1} s / {a_long:.1} s)"
    );
    println!(
        "  ratio lbtop with the agent / watch: {:.3} (goal ≤ 0.15); / the shell session: {:.3}",
        agent / watch,
        agent / ours
    );
    println!(
        "  lbtop's {LONG} s recording with the agent: {}",
        describe(&agent_frames)
    );
}

/// lbtop with `--router-agent agent` (and the default budget) next to the one-screen `watch`, the
/// two interleaved so that a change in the host's load falls on both; prints the ratio against
/// `goal`.
fn next_to_watch(agent: &str, goal: &str) {
    let lab = lab();
    big_table(lab);
    let w_short = watch_ipvsadm(lab, SHORT, WATCH);
    let (l_short, _) = lbtop(lab, SHORT, None, agent);
    let w_long = watch_ipvsadm(lab, LONG, WATCH);
    let (l_long, frames) = lbtop(lab, LONG, None, agent);
    restore(lab);
    let span = (LONG - SHORT) as f64;
    let watch = (w_long - w_short) / span;
    let ours = (l_long - l_short) / span;
    println!(
        "\n{SERVICES} services × {REALS} reals, --interval 2s, router sshd's reaped CPU per second:"
    );
    println!("  watch -n 2 {WATCH}: {watch:.4} cores ({w_short:.2} s / {w_long:.2} s)");
    println!(
        "  lbtop record --router-agent {agent}: {ours:.4} cores ({l_short:.2} s / {l_long:.2} s)"
    );
    println!("  ratio lbtop / watch: {:.3} (goal {goal})", ours / watch);
    println!("  lbtop's {LONG} s recording: {}", describe(&frames));
}

/// The agent next to the one-screen `watch` alone (about 6 minutes): `cargo test --release
/// --test lab_router_cost -- --ignored --nocapture agent_next_to_watch`.
#[test]
#[ignore = "a benchmark of about 6 minutes; run by hand"]
fn agent_next_to_watch() {
    next_to_watch(AGENT, "≤ 0.15");
}

/// The shell session at the default budget next to the one-screen `watch` (about 6 minutes):
/// `cargo test --release --test lab_router_cost -- --ignored --nocapture shell_next_to_watch`.
#[test]
#[ignore = "a benchmark of about 6 minutes; run by hand"]
fn shell_next_to_watch() {
    next_to_watch("never", "≤ 1");
}
