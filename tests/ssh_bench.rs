//! Benchmark, run by hand (ignored in the suite; needs root, sshd, tmux, about 90 s):
//!
//! ```sh
//! cargo test --release --test ssh_bench -- --ignored --nocapture
//! ```
//!
//! 100 nodes — 100 addresses of one network namespace, served by one real sshd — polled every
//! second for 60 s by lbtop (the real TUI, in tmux) and, at the same time, by OpenSSH's client the
//! way a script would do it: one ControlMaster per node, and one `ssh host cat /proc/...` per node
//! per second through it. Both read the same four files from the same nodes.
//!
//! CPU is user + system time of lbtop's process, and of every ssh process of the baseline (bash's
//! `times` for its waited-for children: the masters and every poll). Memory is lbtop's peak RSS
//! (VmHWM), and for the baseline the largest sum of the RSS of its ssh processes seen in samples
//! taken every 250 ms (lbtop's RSS is sampled the same way too).

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::sshd::{Client, Netns, Sshd, require, run, subnet};

const NODES: u8 = 100;
const SECONDS: u64 = 60;

const BASELINE: &str = r#"#!/bin/bash
# OpenSSH ControlMaster polling: $1 ssh config, $2 host list, $3 control dir, $4 seconds.
set -u
cfg=$1; list=$2; dir=$3; secs=$4
mapfile -t hosts < "$list"
masters=()
for h in "${hosts[@]}"; do
  ssh -F "$cfg" -o ControlMaster=yes -o ControlPersist=no -o ControlPath="$dir/%h" -N "$h" &
  masters+=($!)
done
for h in "${hosts[@]}"; do
  for ((i = 0; i < 600; i++)); do [ -S "$dir/${h#*@}" ] && break; sleep 0.05; done
done
failed=0
start=$(date +%s%N)
for ((s = 0; s < secs; s++)); do
  polls=()
  for h in "${hosts[@]}"; do
    ssh -F "$cfg" -o ControlMaster=no -o ControlPath="$dir/%h" "$h" \
      cat /proc/stat /proc/loadavg /proc/meminfo /proc/uptime >/dev/null &
    polls+=($!)
  done
  for p in "${polls[@]}"; do wait "$p" || failed=$((failed + 1)); done
  next=$((start + (s + 1) * 1000000000)); now=$(date +%s%N)
  if ((next > now)); then sleep "$(printf '%d.%09d' $(((next - now) / 1000000000)) $(((next - now) % 1000000000)))"; fi
done
kill "${masters[@]}" 2>/dev/null
wait
echo "failed $failed"
times
"#;

/// `(pid, ppid, comm, rss kB, utime+stime ticks)` of every process.
fn processes() -> Vec<(u32, u32, String, u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c).to_string();
        let f: Vec<&str> = tail.split_whitespace().collect();
        let ppid = f.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let ticks = f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let rss = f.get(21).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) * 4;
        out.push((pid, ppid, comm, rss, ticks));
    }
    out
}

/// Proportional set size (kB): shared pages divided among the processes sharing them.
fn pss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The `ssh` processes below `root`.
fn ssh_below(procs: &[(u32, u32, String, u64, u64)], root: u32) -> Vec<u32> {
    let parent: HashMap<u32, u32> = procs.iter().map(|p| (p.0, p.1)).collect();
    let below = |mut pid: u32| {
        for _ in 0..64 {
            match parent.get(&pid) {
                Some(&pp) if pp == root => return true,
                Some(&pp) if pp > 1 => pid = pp,
                _ => return false,
            }
        }
        false
    };
    procs
        .iter()
        .filter(|p| p.2 == "ssh" && below(p.0))
        .map(|p| p.0)
        .collect()
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// `1m2.345s` → seconds.
fn times_seconds(s: &str) -> f64 {
    let (m, rest) = s.split_once('m').unwrap_or(("0", s));
    m.parse::<f64>().unwrap_or(0.0) * 60.0
        + rest.trim_end_matches('s').parse::<f64>().unwrap_or(0.0)
}

#[test]
#[ignore = "a 60 s benchmark; run by hand, see the top of the file"]
fn ssh_polling_100_nodes_lbtop_against_openssh_controlmaster() {
    if !require() {
        return;
    }
    let client = Client::new();
    let ns = Netns::new(subnet(203), None, NODES);
    let base = ns.addr.octets();
    let addrs: Vec<String> = (0..NODES)
        .map(|i| format!("{}.{}.{}.{}", base[0], base[1], base[2], 10 + i))
        .collect();
    let mut sshd = Sshd::new(
        &client.dir.path().join("sshd"),
        Some(&ns.name),
        "0.0.0.0",
        22,
        &client,
    );
    sshd.start();
    client.trust(&addrs.join(","), &sshd);
    let hosts: Vec<String> = addrs.iter().map(|a| format!("root@{a}")).collect();
    let list = client.dir.path().join("nodes.txt");
    std::fs::write(&list, hosts.join("\n") + "\n").expect("write");
    // OpenSSH reads the same config; BatchMode so nothing ever prompts.
    std::fs::write(
        &client.config,
        format!(
            "Host *\n  BatchMode yes\n  UserKnownHostsFile {}\n  IdentityFile {}\n  LogLevel ERROR\n",
            client.known_hosts.display(),
            client.key.display()
        ),
    )
    .expect("write");
    let clk_tck: f64 = run("getconf", &["CLK_TCK"]).trim().parse().unwrap_or(100.0);

    // lbtop, the real TUI, in tmux.
    let session = format!("lbtop-bench-{}", std::process::id());
    let lbtop_cmd = format!(
        "exec env HOME={home} TERM=xterm-256color {bin} --router none --interval 1s -F {cfg} \
         --nodes @{list} --log-file {log}",
        home = client.home.display(),
        bin = env!("CARGO_BIN_EXE_lbtop"),
        cfg = client.config.display(),
        list = list.display(),
        log = client.dir.path().join("lbtop.log").display(),
    );
    // The baseline, started at the same moment.
    let script = client.dir.path().join("baseline.sh");
    std::fs::write(&script, BASELINE).expect("write");
    let control = client.dir.path().join("cm");
    std::fs::create_dir_all(&control).expect("mkdir");

    let started = Instant::now();
    run(
        "tmux",
        &[
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "200",
            "-y",
            "60",
            &lbtop_cmd,
        ],
    );
    let lbtop_pid: u32 = run("tmux", &["display", "-p", "-t", &session, "#{pane_pid}"])
        .trim()
        .parse()
        .expect("pane pid");
    let baseline = Command::new("bash")
        .arg(&script)
        .arg(&client.config)
        .arg(&list)
        .arg(&control)
        .arg(SECONDS.to_string())
        .env("HOME", &client.home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("baseline");
    let baseline_pid = baseline.id();

    let mut lbtop_rss_max = 0u64;
    let mut lbtop_pss_max = 0u64;
    let mut baseline_rss_max = 0u64;
    let mut baseline_pss_max = 0u64;
    let mut lbtop_ticks = 0u64;
    // lbtop's CPU after its connections are made: from 10 s on.
    let mut lbtop_ticks_at_10s: Option<(u64, Instant)> = None;
    while started.elapsed() < Duration::from_secs(SECONDS) {
        let procs = processes();
        if let Some(p) = procs.iter().find(|p| p.0 == lbtop_pid) {
            lbtop_rss_max = lbtop_rss_max.max(p.3);
            lbtop_pss_max = lbtop_pss_max.max(pss_kb(lbtop_pid));
            lbtop_ticks = p.4;
            if lbtop_ticks_at_10s.is_none() && started.elapsed() >= Duration::from_secs(10) {
                lbtop_ticks_at_10s = Some((p.4, Instant::now()));
            }
        }
        let ssh = ssh_below(&procs, baseline_pid);
        let rss: u64 = procs
            .iter()
            .filter(|p| ssh.contains(&p.0))
            .map(|p| p.3)
            .sum();
        baseline_rss_max = baseline_rss_max.max(rss);
        baseline_pss_max = baseline_pss_max.max(ssh.iter().map(|&p| pss_kb(p)).sum());
        std::thread::sleep(Duration::from_millis(250));
    }
    let screen = run("tmux", &["capture-pane", "-p", "-t", &session]);
    if let Some(p) = processes().iter().find(|p| p.0 == lbtop_pid) {
        lbtop_ticks = p.4;
    }
    let lbtop_hwm = vm_hwm_kb(lbtop_pid);
    let lbtop_wall = started.elapsed();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    let out = baseline.wait_with_output().expect("baseline output");
    let text = String::from_utf8_lossy(&out.stdout);
    let failed: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("failed "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(u64::MAX);
    // `times`: the shell's own line, then its children's (every ssh process).
    let children = text.lines().last().unwrap_or("");
    let mut it = children.split_whitespace();
    let (cu, cs) = (
        times_seconds(it.next().unwrap_or("0m0s")),
        times_seconds(it.next().unwrap_or("0m0s")),
    );
    let lbtop_cpu = lbtop_ticks as f64 / clk_tck;
    let lbtop_pct = lbtop_cpu / lbtop_wall.as_secs_f64() * 100.0;
    let base_cpu = cu + cs;
    let base_pct = base_cpu / SECONDS as f64 * 100.0;
    println!(
        "status line: {}",
        screen
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    );
    let steady = lbtop_ticks_at_10s.map(|(t, at)| {
        (lbtop_ticks.saturating_sub(t) as f64 / clk_tck) / at.elapsed().as_secs_f64() * 100.0
    });
    println!(
        "lbtop:    cpu {lbtop_cpu:.2} s over {:.1} s = {lbtop_pct:.2} % of one core ({:.2} % from 10 s on); \
         peak RSS {:.1} MiB (VmHWM), sampled max RSS {:.1} MiB, PSS {:.1} MiB",
        lbtop_wall.as_secs_f64(),
        steady.unwrap_or(f64::NAN),
        lbtop_hwm as f64 / 1024.0,
        lbtop_rss_max as f64 / 1024.0,
        lbtop_pss_max as f64 / 1024.0
    );
    println!(
        "openssh:  cpu {base_cpu:.2} s (user {cu:.2}, sys {cs:.2}) over {SECONDS} s = {base_pct:.2} % of one core; \
         peak sum over its ssh processes: RSS {:.1} MiB, PSS {:.1} MiB; failed polls {failed}",
        baseline_rss_max as f64 / 1024.0,
        baseline_pss_max as f64 / 1024.0
    );
    println!(
        "ratio:    lbtop uses {:.1}x less CPU, {:.1}x less RSS, {:.1}x less PSS",
        base_cpu / lbtop_cpu.max(0.001),
        baseline_rss_max as f64 / (lbtop_hwm.max(1)) as f64,
        baseline_pss_max as f64 / (lbtop_pss_max.max(1)) as f64
    );
    println!(
        "stderr of the baseline: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        screen.contains(&format!("nodes {NODES}/{NODES} ok")),
        "not every node was ok at the end:\n{screen}"
    );
    assert_eq!(failed, 0, "OpenSSH polls failed");
}
