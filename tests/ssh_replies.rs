//! Hosts that answer with something other than what lbtop asked for — a ForceCommand printing
//! junk, a truncated reply, an endless one, a router without IPVS — give a clear per-host error,
//! never a panic and never a hang, and the host's connection and the other hosts go on.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use lbtop::model::sample::HostStatus;
use lbtop::source::agent::AgentChoice;
use lbtop::source::remote::{RemoteSource, Role, SudoMode};
use lbtop::source::ssh::HostSpec;
use support::sshd::{Client, Host};
use support::watch::{self, INTERVAL, Watch};

const SEC: Duration = Duration::from_secs(1);

fn forced(client: &Client, command: &str) -> Host {
    let h = Host::new(client, 201, None, &format!("ForceCommand {command}"));
    client.trust(&h.addr(), &h.sshd);
    h
}

#[test]
fn junk_truncated_and_endless_replies_are_per_host_errors() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let junk = forced(&client, "echo 'Welcome to the machine!'");
    let truncated = forced(
        &client,
        // lbtop's greeting, then a reply cut off before its end marker.
        r"printf 'lbtop-node 2\n@@lbtop ready\n@@lbtop stat\ncpu  1 2 3\n@@lbtop uptime\n12'",
    );
    let endless = forced(&client, "yes lbtop");
    let fine = Host::new(&client, 201, None, "");
    client.trust(&fine.addr(), &fine.sshd);
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let w = Watch::start(
        vec![
            watch::node(&ctx, "junk", &junk.sshd.spec()),
            watch::node(&ctx, "truncated", &truncated.sshd.spec()),
            watch::node(&ctx, "endless", &endless.sshd.spec()),
            watch::node(&ctx, "fine", &fine.sshd.spec()),
        ],
        INTERVAL,
    );
    for (name, needle) in [
        (
            "junk",
            "unexpected reply to the node poll: \"Welcome to the machine!\"",
        ),
        ("truncated", "truncated reply"),
        ("endless", "reply larger than 1 MiB"),
    ] {
        let log = w.wait_status(name, HostStatus::Error, 10 * SEC);
        assert!(log.message().contains(needle), "{name}: {}", log.message());
    }
    w.wait_samples("fine", 0, 6, 10 * SEC);
    // Errors in the reply keep the connection: one per host the whole time.
    std::thread::sleep(SEC);
    for (name, h) in [("junk", &junk), ("endless", &endless)] {
        let conns = support::sshd::run(
            "ip",
            &[
                "netns",
                "exec",
                &h.ns.name,
                "ss",
                "-Htn",
                "state",
                "established",
                "( sport = :22 )",
            ],
        );
        assert_eq!(conns.lines().count(), 1, "{name}: {conns}");
        assert_eq!(w.host(name).transitions(), [HostStatus::Error], "{name}");
    }
    // The endless command's channels were closed, not left running.
    let yes = support::sshd::run("ip", &["netns", "pids", &endless.ns.name]);
    assert!(yes.split_whitespace().count() <= 4, "processes left: {yes}");
}

#[test]
fn a_router_without_ipvs_says_so() {
    if !support::sshd::require() {
        return;
    }
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("skipped: this kernel has IPVS loaded");
        return;
    }
    let client = Client::new();
    let router = Host::new(&client, 201, None, "");
    client.trust(&router.addr(), &router.sshd);
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let spec = HostSpec::parse(&router.sshd.spec()).expect("spec");
    let resolved = ctx.settings.resolve(&spec, None).expect("resolve");
    let src = RemoteSource::new(
        "router".into(),
        "router".into(),
        resolved,
        Role::Router(SudoMode::Auto),
        ctx.clone(),
    );
    let w = Watch::start(vec![src], INTERVAL);
    let log = w.wait_status("router", HostStatus::Error, 10 * SEC);
    assert!(
        log.message().contains("IPVS not loaded on the router"),
        "{}",
        log.message()
    );
}

#[test]
fn an_agent_that_never_greets_is_given_up_once_and_the_shell_program_serves() {
    if !support::sshd::require() {
        return;
    }
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        eprintln!("skipped: this kernel has IPVS loaded");
        return;
    }
    // An "agent" that notes each start and then says nothing, as one stuck behind a hung sudo
    // or a hung disk would.
    let dir = tempfile::tempdir().expect("temp dir");
    let started = dir.path().join("started");
    let agent = dir.path().join("hung-agent");
    std::fs::write(
        &agent,
        format!(
            "#!/bin/sh\necho $$ >> '{}'\nexec sleep 30\n",
            started.display()
        ),
    )
    .expect("write the agent");
    std::fs::set_permissions(&agent, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let client = Client::new();
    let router = Host::new(&client, 201, None, "");
    client.trust(&router.addr(), &router.sshd);
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let spec = HostSpec::parse(&router.sshd.spec()).expect("spec");
    let resolved = ctx.settings.resolve(&spec, None).expect("resolve");
    let mut src = RemoteSource::new(
        "router".into(),
        "router".into(),
        resolved,
        Role::Router(SudoMode::Never),
        ctx.clone(),
    );
    src.agent = AgentChoice::Path(agent.display().to_string());
    let w = Watch::start(vec![src], INTERVAL);
    // The shell program answered (this kernel has no IPVS, which it says): the agent was given
    // up within the start's time, not tried until the start timed out.
    let log = w.wait_status("router", HostStatus::Error, 10 * SEC);
    assert!(
        log.message().contains("IPVS not loaded on the router"),
        "{:?}",
        log.statuses
    );
    // Several poll deadlines later (3 s each here) the agent was still started only once: the
    // fallback is kept, and the connection was never dropped for it.
    std::thread::sleep(7 * SEC);
    let starts = std::fs::read_to_string(&started).unwrap_or_default();
    assert_eq!(starts.lines().count(), 1, "agent starts: {starts:?}");
    assert!(
        !w.host("router")
            .statuses
            .iter()
            .any(|(s, _)| *s == HostStatus::Unreachable),
        "{:?}",
        w.host("router").statuses
    );
}
