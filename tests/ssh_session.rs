//! The long-lived program lbtop keeps on each host: one connection, one exec, and every poll a
//! request on its stdin, against a real sshd. It survives a thousand polls, starts nothing on the
//! host per poll, and is started again on the same connection when it dies.

mod support;

use std::time::Duration;

use lbtop::model::sample::HostStatus;
use support::sshd::{Cluster, run, wait_for};
use support::watch::{self, Watch};

const SEC: Duration = Duration::from_secs(1);

/// Every process in the host's network namespace: `(pid, command line)`.
fn processes(ns: &str) -> Vec<(u32, String)> {
    run("ip", &["netns", "pids", ns])
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            Some((pid, cmd.trim().to_string()))
        })
        .collect()
}

fn established(ns: &str) -> usize {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "ss",
            "-Htn",
            "state",
            "established",
            "( sport = :22 )",
        ],
    )
    .lines()
    .count()
}

#[test]
fn one_program_answers_a_thousand_polls_on_one_connection() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let host = &cluster.hosts[0];
    let ctx = watch::context(
        &cluster.client.home,
        &cluster.client.config,
        &[],
        watch::fast_tuning(),
    );
    let w = Watch::start(
        vec![watch::node(&ctx, "n1", &host.sshd.spec())],
        Duration::from_millis(10),
    );
    w.wait_samples("n1", 0, 5, 10 * SEC);
    let program = processes(&host.ns.name);
    let shells: Vec<_> = program.iter().filter(|(_, c)| c == "/bin/sh -s").collect();
    assert_eq!(shells.len(), 1, "one program: {program:?}");
    let shell_pid = shells[0].0;
    w.wait_samples("n1", 5, 1000, 60 * SEC);
    assert_eq!(
        w.host("n1").transitions(),
        [HostStatus::Ok],
        "never an error"
    );
    assert_eq!(established(&host.ns.name), 1, "one connection");
    // The same program still, and nothing else started: the host's processes are the same.
    let now = processes(&host.ns.name);
    assert_eq!(now, program, "no process came or went over 1,000 polls");
    assert!(now.iter().any(|(p, _)| *p == shell_pid));
}

#[test]
fn a_killed_program_is_started_again_on_the_same_connection() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let host = &cluster.hosts[0];
    let ctx = watch::context(
        &cluster.client.home,
        &cluster.client.config,
        &[],
        watch::fast_tuning(),
    );
    let w = Watch::start(
        vec![watch::node(&ctx, "n1", &host.sshd.spec())],
        watch::INTERVAL,
    );
    w.wait_samples("n1", 0, 2, 10 * SEC);
    let shell = |procs: &[(u32, String)]| {
        procs
            .iter()
            .find(|(_, c)| c == "/bin/sh -s")
            .map(|(p, _)| *p)
    };
    let first = shell(&processes(&host.ns.name)).expect("the program runs");
    run("kill", &["-KILL", &first.to_string()]);
    let second = wait_for(10 * SEC, || {
        shell(&processes(&host.ns.name)).filter(|p| *p != first)
    })
    .expect("a new program");
    assert_ne!(first, second);
    let before = w.samples("n1");
    w.wait_samples("n1", before, 3, 10 * SEC);
    assert_eq!(established(&host.ns.name), 1, "the same connection");
}
