//! What a poll costs the NODE, measured on this machine: real OpenSSH sshd in network namespaces
//! of the test, each sshd the init of a PID namespace of its own, so that everything a connection
//! runs is reaped into the listening sshd. Run by hand (ignored in the suite; root, sshd):
//!
//! ```sh
//! cargo test --release --test node_cost -- --ignored --nocapture node_cpu_per_poll
//! cargo test --release --test node_cost -- --ignored --nocapture twenty_nodes
//! ```
//!
//! `node_cpu_per_poll` (about 3 minutes): the shipping path — a `RemoteSource` with `Role::Node`,
//! one long-lived `exec /bin/sh -s` per connection, a poll is a request on its stdin — next to
//! the path it replaced, one `exec head … /proc/…` per poll on one kept connection, for a login
//! user whose `.bashrc` starts 40 short processes and for root with this machine's own
//! `/root/.bashrc`. The cost is the listener's `cutime + cstime` after every connection closed:
//! the per-connection sshd, its privilege-separated child, the login shell, its rc file and the
//! program. Polls are counted N_SHORT and N_LONG times on one connection each, and the
//! per-poll cost is the difference over the difference, so connecting cancels out.
//!
//! `twenty_nodes` (about 35 s): twenty sshd, each in its own namespace, root logging in with
//! root's own `.bashrc`, recorded for 30 s at 1 s by the real CLI (`lbtop record`).
//!
//! The quick test, `bash_reads_the_rc_file_for_ssh_commands`, runs in the suite.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lbtop::model::sample::{Report, SourceEvent};
use lbtop::source::ssh::{Connection, SshContext, SshTuning};
use support::sshd::{
    Client, Host, children_of, heavy_bashrc, proc_comm, require, run, stat_fields,
};
use support::watch::{context, node};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

/// How lbtop polled a node before: one exec per poll (and so one login shell and its rc file).
const OLD_NODE_COMMAND: &str = "exec head -n 1000000 /proc/sys/kernel/hostname \
/proc/sys/kernel/osrelease /proc/stat /proc/loadavg /proc/meminfo /proc/uptime";

const INTERVAL: Duration = Duration::from_millis(100);
const N_SHORT: u32 = 20;
const N_LONG: u32 = 220;
/// Processes the heavy `.bashrc` starts.
const RC_PROCESSES: usize = 40;

fn tuning() -> SshTuning {
    SshTuning {
        // The first poll starts the program, and so the login shell and its rc file, on a
        // machine shared with other work.
        poll_timeout: Duration::from_secs(10),
        ..SshTuning::for_interval(INTERVAL)
    }
}

fn clk_tck() -> f64 {
    run("getconf", &["CLK_TCK"]).trim().parse().unwrap_or(100.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The shipping path: a node source that stops after `n` samples, reading what the
/// direct-routing checks need when `dr` (as for a direct-routing real server). Panics on a
/// failure.
fn polls_by_program(ctx: &Arc<SshContext>, spec: &str, n: u32, dr: bool) {
    let source = node(ctx, "node", spec);
    source.check_direct_routing(dr);
    let limit = INTERVAL * n + Duration::from_secs(60);
    runtime().block_on(async move {
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(64);
        let _handle = source.spawn(INTERVAL, tx, Some(n));
        let deadline = tokio::time::Instant::now() + limit;
        let mut samples = 0u32;
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(SourceEvent::Node { report, .. })) => match report {
                    Report::Sample(s) => {
                        assert_eq!(s.net.is_some(), dr, "the checks' files read iff asked");
                        samples += 1;
                    }
                    Report::Status {
                        status, message, ..
                    } => panic!("node poll failed: {status:?} {message:?}"),
                },
                Ok(Some(other)) => panic!("not a node event: {other:?}"),
                // The task ended (it closed its program and connection first).
                Ok(None) => break,
                Err(_) => panic!("{samples} of {n} samples within {limit:?}"),
            }
        }
        assert_eq!(samples, n);
    });
}

/// The old path: one connection, one exec of the old command per poll on the same interval.
fn polls_by_exec(ctx: &Arc<SshContext>, spec: &str, n: u32) {
    let resolved = node(ctx, "node", spec).resolved;
    runtime().block_on(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let conn = Connection::connect(ctx, &resolved, deadline)
            .await
            .expect("connect");
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        for i in 0..n {
            ticker.tick().await;
            let Ok(out) = tokio::time::timeout(
                Duration::from_secs(20),
                conn.exec(OLD_NODE_COMMAND, None, 1 << 20),
            )
            .await
            else {
                panic!("exec {i} took over 20 s");
            };
            let out = out.expect("exec");
            assert_eq!(out.exit_status, Some(0), "{:?}", out.stderr_line());
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("==> /proc/uptime <=="),
                "a whole reply"
            );
        }
        conn.close().await;
    });
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Way {
    /// One program per connection, a request per poll (what lbtop ships).
    Program,
    /// One exec per poll (what lbtop did before).
    ExecPerPoll,
    /// The program, each poll also reading the direct-routing checks' files (`p SEQ dr`).
    ProgramDr,
}

#[derive(Debug, Clone, Copy)]
struct Cost {
    /// CPU reaped by the listener, in clock ticks.
    ticks: u64,
    /// Processes started on the node (pids handed out in sshd's namespace).
    processes: u64,
    /// Times the rc file was read, where it leaves a mark.
    rc_runs: Option<u64>,
    /// Of `ticks`, what the program's shell took (sampled while it ran; 0 for one exec per poll).
    shell: u64,
}

/// One connection polled `n` times, from an idle sshd back to an idle sshd.
fn measure(host: &Host, ctx: &Arc<SshContext>, way: Way, n: u32, marker: Option<&Path>) -> Cost {
    let lines = |m: &Path| support::sshd::read(m).lines().count() as u64;
    assert!(host.sshd.wait_idle(Duration::from_secs(15)), "sshd idle");
    let ticks = host.sshd.reaped_cpu_ticks();
    let pids = host.sshd.pids_used();
    let rc = marker.map(lines);
    let spec = host.sshd.spec();
    let listener = host.sshd.listener_pid().expect("sshd runs");
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || shell_ticks(listener, &stop))
    };
    match way {
        Way::Program => polls_by_program(ctx, &spec, n, false),
        Way::ProgramDr => polls_by_program(ctx, &spec, n, true),
        Way::ExecPerPoll => polls_by_exec(ctx, &spec, n),
    }
    stop.store(true, Ordering::SeqCst);
    let shell = sampler.join().expect("sampler");
    assert!(
        host.sshd.wait_idle(Duration::from_secs(15)),
        "every process of the connection reaped"
    );
    Cost {
        ticks: host.sshd.reaped_cpu_ticks() - ticks,
        // Less one: the reading itself.
        processes: host.sshd.pids_used() - pids - 1,
        rc_runs: marker.map(lines).zip(rc).map(|(a, b)| a - b),
        shell,
    }
}

/// The CPU time (utime + stime, ticks) of lbtop's program — the `/bin/sh` processes below the
/// listener — as last seen while it ran, sampled every 50 ms until `stop` (at most 15 minutes).
fn shell_ticks(listener: u32, stop: &AtomicBool) -> u64 {
    let mut last = 0;
    let deadline = Instant::now() + Duration::from_secs(900);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut below = vec![listener];
        let mut sum = 0;
        for _ in 0..8 {
            let next: Vec<u32> = below.iter().flat_map(|&p| children_of(p)).collect();
            for &p in &next {
                if proc_comm(p).as_deref() == Some("sh") {
                    sum += cpu_ticks(p).unwrap_or(0);
                }
            }
            if next.is_empty() {
                break;
            }
            below = next;
        }
        if sum > 0 {
            last = sum;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    last
}

/// Per poll, from the difference of the long and the short run: (ms of node CPU, processes
/// started, ms of it in the program's shell).
fn per_poll(short: Cost, long: Cost, hz: f64) -> (f64, f64, f64) {
    let dn = f64::from(N_LONG - N_SHORT);
    let ms = |a: u64, b: u64| (a as f64 - b as f64) * 1000.0 / hz / dn;
    let procs = (long.processes as f64 - short.processes as f64) / dn;
    (
        ms(long.ticks, short.ticks),
        procs,
        ms(long.shell, short.shell),
    )
}

fn accounted_host(client: &Client, real_home: bool) -> Host {
    Host::with_sshd(client, 201, None, "", |s| {
        let s = s.with_accounting();
        if real_home { s.with_real_home() } else { s }
    })
}

#[test]
fn bash_reads_the_rc_file_for_ssh_commands() {
    if !require() {
        return;
    }
    let client = Client::new();
    let heavy = accounted_host(&client, false);
    let marker = client.dir.path().join("rc-runs");
    heavy
        .sshd
        .write_bashrc(&heavy_bashrc(RC_PROCESSES, &marker));
    let real = accounted_host(&client, true);
    client.trust(&heavy.addr(), &heavy.sshd);
    client.trust(&real.addr(), &real.sshd);
    let ctx = context(&client.home, &client.config, &[], tuning());

    // The old path reads the rc file at every poll and runs its processes; the program once per
    // connection.
    let old = measure(&heavy, &ctx, Way::ExecPerPoll, 3, Some(&marker));
    assert_eq!(old.rc_runs, Some(3), "bash read .bashrc for each exec");
    assert!(
        old.processes >= 3 * RC_PROCESSES as u64,
        "the rc file's processes ran: {old:?}"
    );
    let new = measure(&heavy, &ctx, Way::Program, 3, Some(&marker));
    assert_eq!(new.rc_runs, Some(1), "once for the program");
    assert!(
        new.processes <= RC_PROCESSES as u64 + 8,
        "no process per poll: {new:?}"
    );

    // Root's real home: this machine's own /root/.bashrc is read.
    let rc = std::fs::read_to_string("/root/.bashrc").unwrap_or_default();
    let resolved = node(&ctx, "real", &real.sshd.spec()).resolved;
    let out = runtime().block_on(async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let conn = Connection::connect(&ctx, &resolved, deadline)
            .await
            .expect("connect");
        let out = conn
            .exec("echo \"$HOME:$PYENV_ROOT\"", None, 4096)
            .await
            .expect("exec");
        conn.close().await;
        out
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("/root:"), "{text}");
    if rc.contains("PYENV_ROOT=") {
        assert!(
            text.trim_end().len() > "/root:".len(),
            "root's .bashrc sets PYENV_ROOT: {text}"
        );
    }
}

#[test]
#[ignore = "a 3-minute measurement; run by hand, see the top of the file"]
fn node_cpu_per_poll_program_against_exec_per_poll() {
    if !require() {
        return;
    }
    let hz = clk_tck();
    let client = Client::new();
    let marker = client.dir.path().join("rc-runs");
    let heavy = accounted_host(&client, false);
    heavy
        .sshd
        .write_bashrc(&heavy_bashrc(RC_PROCESSES, &marker));
    let real = accounted_host(&client, true);
    client.trust(&heavy.addr(), &heavy.sshd);
    client.trust(&real.addr(), &real.sshd);
    let ctx = context(&client.home, &client.config, &[], tuning());
    println!(
        "load average at the start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    let cases: [(&str, &Host, Option<&Path>); 2] = [
        (
            "login user, .bashrc starts 40 processes",
            &heavy,
            Some(&marker),
        ),
        ("root, this machine's /root/.bashrc", &real, None),
    ];
    let mut rows = Vec::new();
    for (name, host, mark) in cases {
        let started = Instant::now();
        // Interleaved, so that a change in the machine's load touches both ways alike.
        let mut costs: HashMap<(Way, u32), Cost> = HashMap::new();
        for n in [N_SHORT, N_LONG] {
            for way in [Way::Program, Way::ExecPerPoll] {
                let c = measure(host, &ctx, way, n, mark);
                println!("  {name}: {way:?} × {n}: {c:?}");
                costs.insert((way, n), c);
            }
        }
        let new = per_poll(
            costs[&(Way::Program, N_SHORT)],
            costs[&(Way::Program, N_LONG)],
            hz,
        );
        let old = per_poll(
            costs[&(Way::ExecPerPoll, N_SHORT)],
            costs[&(Way::ExecPerPoll, N_LONG)],
            hz,
        );
        // What connecting and starting cost, by the short run less its polls.
        let setup =
            costs[&(Way::Program, N_SHORT)].ticks as f64 * 1000.0 / hz - new.0 * f64::from(N_SHORT);
        let rc = |w: Way| {
            let (s, l) = (costs[&(w, N_SHORT)].rc_runs, costs[&(w, N_LONG)].rc_runs);
            s.zip(l)
                .map(|(s, l)| format!("{:.2}", (l as f64 - s as f64) / f64::from(N_LONG - N_SHORT)))
                .unwrap_or_else(|| "-".into())
        };
        rows.push((
            name,
            new,
            old,
            setup,
            rc(Way::Program),
            rc(Way::ExecPerPoll),
        ));
        println!("  {name}: {:.0} s", started.elapsed().as_secs_f64());
    }
    println!(
        "load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!(
        "\nnode CPU per poll (listener's cutime+cstime, ({N_LONG} − {N_SHORT} polls) at {} ms, CLK_TCK {hz}):",
        INTERVAL.as_millis()
    );
    println!(
        "{:<42} {:>12} {:>14} {:>12} {:>9} {:>15} {:>15} {:>13}",
        "case",
        "program ms",
        "of which sh",
        "exec ms",
        "ratio",
        "processes/poll",
        "rc reads/poll",
        "program set-up"
    );
    for (name, new, old, setup, rc_new, rc_old) in &rows {
        let ratio = if new.0 > 0.0 {
            format!("{:.0}×", old.0 / new.0)
        } else {
            "n/a".into()
        };
        println!(
            "{name:<42} {:>12.3} {:>14.3} {:>12.2} {ratio:>9} {:>15} {:>15} {:>10.0} ms",
            new.0,
            new.2,
            old.0,
            format!("{:.2} / {:.1}", new.1, old.1),
            format!("{rc_new} / {rc_old}"),
            setup
        );
    }
    let heavy_new = rows[0].1.0;
    assert!(
        heavy_new <= 5.0,
        "node CPU per poll with the heavy .bashrc: {heavy_new:.3} ms, target ≤ 5 ms"
    );
}

/// What the direct-routing checks add to a node poll: the program with and without `dr`, on
/// the same sshd (root with this machine's own `.bashrc`), interleaved. Run by hand (about a
/// minute):
///
/// ```sh
/// cargo test --release --test node_cost -- --ignored --nocapture direct_routing
/// ```
#[test]
#[ignore = "a 1-minute measurement; run by hand"]
fn node_cpu_per_poll_with_the_direct_routing_checks() {
    if !require() {
        return;
    }
    let hz = clk_tck();
    let client = Client::new();
    let real = accounted_host(&client, true);
    client.trust(&real.addr(), &real.sshd);
    let ctx = context(&client.home, &client.config, &[], tuning());
    let mut costs: HashMap<(Way, u32), Cost> = HashMap::new();
    for n in [N_SHORT, N_LONG] {
        for way in [Way::Program, Way::ProgramDr] {
            let c = measure(&real, &ctx, way, n, None);
            println!("  {way:?} × {n}: {c:?}");
            costs.insert((way, n), c);
        }
    }
    let per = |w: Way| per_poll(costs[&(w, N_SHORT)], costs[&(w, N_LONG)], hz);
    let (plain, dr) = (per(Way::Program), per(Way::ProgramDr));
    println!(
        "\nnode CPU per poll (listener's cutime+cstime, ({N_LONG} − {N_SHORT} polls) at {} ms, CLK_TCK {hz}):",
        INTERVAL.as_millis()
    );
    for (name, c) in [("plain poll", plain), ("poll with the DR checks", dr)] {
        println!(
            "{name:<26} {:>8.3} ms (sh {:.3} ms), {:.2} processes per poll",
            c.0, c.2, c.1
        );
    }
    assert!(dr.1 < 0.01, "the checks start no process: {dr:?}");
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    let at = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime, stime: fields 14 and 15.
    Some(at(14 - 3) + at(15 - 3))
}

const NODES: usize = 20;
const SECONDS: u64 = 30;

#[test]
#[ignore = "a 35-second measurement; run by hand, see the top of the file"]
fn twenty_nodes_with_roots_own_bashrc_recorded_by_the_cli() {
    if !require() {
        return;
    }
    assert!(
        Path::new("/usr/bin/time").exists(),
        "needs /usr/bin/time (GNU time)"
    );
    let hz = clk_tck();
    let client = Client::new();
    let hosts: Vec<Host> = (0..NODES).map(|_| accounted_host(&client, true)).collect();
    for h in &hosts {
        client.trust(&h.addr(), &h.sshd);
    }
    std::fs::write(
        &client.config,
        format!(
            "Host *\n  BatchMode yes\n  UserKnownHostsFile {}\n  IdentityFile {}\n  LogLevel ERROR\n",
            client.known_hosts.display(),
            client.key.display()
        ),
    )
    .expect("write ssh config");
    let nodes: Vec<String> = hosts.iter().map(|h| h.sshd.spec()).collect();
    let dir = client.dir.path();
    let file = dir.join("twenty.lbrec");
    let timing = dir.join("time.txt");
    let load_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let node_ticks: Vec<u64> = hosts.iter().map(|h| h.sshd.reaped_cpu_ticks()).collect();

    let duration = format!("{SECONDS}s");
    let mut child = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&timing)
        .args(["-f", "%U %S %M %e", env!("CARGO_BIN_EXE_lbtop"), "record"])
        .arg(&file)
        .args([
            "--duration",
            &duration,
            "--interval",
            "1s",
            "--router",
            "none",
        ])
        .args(["--nodes", &nodes.join(",")])
        .arg("-F")
        .arg(&client.config)
        .arg("--log-file")
        .arg(dir.join("lbtop.log"))
        .env("HOME", &client.home)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_STATE_HOME", dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lbtop record");
    let time_pid = child.id();
    let started = Instant::now();
    let mut lbtop_pid = None;
    let mut hwm = 0u64;
    let mut ticks = 0u64;
    let mut ticks_at_5s: Option<(u64, Instant)> = None;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(SECONDS + 60) {
            let _ = child.kill();
            panic!("lbtop record did not end within {} s", SECONDS + 60);
        }
        if lbtop_pid.is_none() {
            lbtop_pid = children_of(time_pid).into_iter().next();
        }
        if let Some(pid) = lbtop_pid {
            hwm = hwm.max(vm_hwm_kb(pid).unwrap_or(0));
            if let Some(t) = cpu_ticks(pid) {
                ticks = t;
                if ticks_at_5s.is_none() && started.elapsed() >= Duration::from_secs(5) {
                    ticks_at_5s = Some((t, Instant::now()));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "lbtop record: {status}: {stderr}");
    // GNU time: user s, system s, max RSS kB, elapsed s (its last line; lbtop's own output
    // goes to the pipe).
    let t = support::sshd::read(&timing);
    let v: Vec<f64> = t
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    assert_eq!(v.len(), 4, "time's output: {t}");
    let (user, sys, max_rss_kb, wall) = (v[0], v[1], v[2], v[3]);
    let cpu_pct = (user + sys) / wall * 100.0;
    let steady = ticks_at_5s.map(|(t0, at)| {
        (ticks.saturating_sub(t0) as f64 / hz) / at.elapsed().as_secs_f64().max(0.1) * 100.0
    });

    // What was recorded, per node.
    let mut player = lbtop::record::Player::open(&file).expect("a replayable recording");
    let mut samples: HashMap<String, u64> = HashMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut last_ok: HashMap<String, bool> = HashMap::new();
    while let Some(f) = player.next_frame() {
        for e in &f.events {
            if let SourceEvent::Node { name, report, .. } = e {
                match report {
                    Report::Sample(_) => {
                        *samples.entry(name.clone()).or_default() += 1;
                        last_ok.insert(name.clone(), true);
                    }
                    Report::Status {
                        status, message, ..
                    } => {
                        failures.push(format!("{name}: {status:?} {message:?}"));
                        last_ok.insert(name.clone(), false);
                    }
                }
            }
        }
    }
    let ok = last_ok.values().filter(|&&v| v).count();
    let fewest = samples.values().copied().min().unwrap_or(0);
    let most = samples.values().copied().max().unwrap_or(0);

    // The nodes' side, once lbtop's connections are closed and reaped.
    let mut node_ms = Vec::new();
    for (h, before) in hosts.iter().zip(&node_ticks) {
        assert!(h.sshd.wait_idle(Duration::from_secs(15)), "node idle");
        node_ms.push((h.sshd.reaped_cpu_ticks() - before) as f64 * 1000.0 / hz);
    }
    let node_total: f64 = node_ms.iter().sum();

    println!("load average at the start: {}", load_start.trim());
    println!(
        "load average at the end:   {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("lbtop: {}", stderr.trim());
    println!(
        "nodes ok at the end: {ok}/{NODES}; samples per node {fewest}–{most}; failures reported: {}",
        failures.len()
    );
    println!(
        "lbtop record CPU: user {user:.2} s + system {sys:.2} s over {wall:.1} s = {cpu_pct:.2} % of one core \
         ({:.2} % from 5 s on, once connected); peak RSS {:.1} MiB (ru_maxrss), VmHWM sampled {:.1} MiB",
        steady.unwrap_or(f64::NAN),
        max_rss_kb / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "nodes' CPU (their sshd's reaped time, connecting and root's .bashrc once included): \
         {:.0} ms each on average over {wall:.0} s = {:.2} ms per node per poll",
        node_total / NODES as f64,
        node_total / NODES as f64 / (fewest.max(1) as f64)
    );
    for f in failures.iter().take(5) {
        println!("  {f}");
    }
    assert_eq!(ok, NODES, "every node ok at the end: {failures:?}");
    assert_eq!(samples.len(), NODES);
    assert!(
        fewest >= 27,
        "at least 27 samples per node, fewest {fewest}"
    );
    assert!(cpu_pct < 2.0, "lbtop's CPU {cpu_pct:.2} % of a core");
    assert!(
        max_rss_kb.max(hwm as f64) * 1024.0 < 100e6,
        "peak RSS {max_rss_kb} kB, VmHWM {hwm} kB: target < 100 MB"
    );
}
