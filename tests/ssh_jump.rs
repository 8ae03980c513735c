//! Nodes behind jump hosts, against real sshd: the nodes' namespaces hang off the jump host's
//! namespace (10.202.x.y), which this machine has no route to, so every byte goes through the jump
//! host. ProxyJump from the ssh config and chains of two, `--jump`, one shared connection to the
//! jump host, and recovery when a node or the jump host itself goes away.

mod support;

use std::time::Duration;

use lbtop::model::sample::HostStatus;
use lbtop::source::remote::{RemoteSource, Role};
use lbtop::source::ssh::HostSpec;
use support::sshd::{Client, Host};
use support::watch::{self, INTERVAL, Watch};

const SEC: Duration = Duration::from_secs(1);

/// Established TCP connections to port 22 inside `ns`.
fn ssh_connections(ns: &str) -> usize {
    support::sshd::run(
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
    .filter(|l| !l.trim().is_empty())
    .count()
}

#[test]
fn nodes_behind_a_jump_host_share_one_connection_and_recover() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let mut jump = Host::new(&client, 201, None, "");
    let mut n1 = Host::new(&client, 202, Some(&jump.ns.name), "");
    let n2 = Host::new(&client, 202, Some(&jump.ns.name), "");
    for h in [&jump, &n1, &n2] {
        client.trust(&h.addr(), &h.sshd);
    }
    // n1 through ProxyJump in the config; n2 through --jump (the resolver's jump argument).
    std::fs::write(
        &client.config,
        format!(
            "Host n1\n  HostName {}\n  User root\n  ProxyJump root@{}\n",
            n1.addr(),
            jump.addr()
        ),
    )
    .expect("write");
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let jump_spec = [HostSpec::parse(&jump.sshd.spec()).expect("spec")];
    let n2_resolved = ctx
        .settings
        .resolve(
            &HostSpec::parse(&n2.sshd.spec()).expect("spec"),
            Some(&jump_spec),
        )
        .expect("resolve");
    let w = Watch::start(
        vec![
            watch::node(&ctx, "n1", "n1"),
            RemoteSource::new("n2".into(), n2.addr(), n2_resolved, Role::Node, ctx.clone()),
        ],
        INTERVAL,
    );
    w.wait_samples("n1", 0, 2, 10 * SEC);
    w.wait_samples("n2", 0, 2, 10 * SEC);
    assert_eq!(
        ssh_connections(&jump.ns.name),
        1,
        "one connection to the jump host"
    );

    // A node behind the jump goes away: only it fails, with the jump host named.
    n1.sshd.kill_all();
    w.wait_status("n1", HostStatus::Unreachable, 5 * SEC);
    // Reconnecting, the jump host answers and says it cannot reach the node.
    support::sshd::wait_for(5 * SEC, || {
        let m = w.host("n1").message();
        (m.contains(&format!("via jump host root@{}", jump.addr())) && m.contains("cannot reach"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{:?}", w.host("n1").statuses));
    let b = w.samples("n2");
    w.wait_samples("n2", b, 3, 5 * SEC);
    let before = w.samples("n1");
    n1.sshd.start();
    w.wait_samples("n1", before, 2, 10 * SEC);

    // The jump host itself goes away: both fail, then both come back over a new connection.
    jump.sshd.kill_all();
    w.wait_status("n1", HostStatus::Unreachable, 5 * SEC);
    w.wait_status("n2", HostStatus::Unreachable, 5 * SEC);
    let (b1, b2) = (w.samples("n1"), w.samples("n2"));
    jump.sshd.start();
    w.wait_samples("n1", b1, 2, 10 * SEC);
    w.wait_samples("n2", b2, 2, 10 * SEC);
    assert_eq!(ssh_connections(&jump.ns.name), 1);
    let (_, gap) = w.frames();
    assert!(gap < Duration::from_millis(400), "a frame gap of {gap:?}");
}

#[test]
fn a_chain_of_two_jump_hosts_reaches_the_node() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let j1 = Host::new(&client, 201, None, "");
    let j2 = Host::new(&client, 202, Some(&j1.ns.name), "");
    let node = Host::new(&client, 202, Some(&j2.ns.name), "");
    for h in [&j1, &j2, &node] {
        client.trust(&h.addr(), &h.sshd);
    }
    std::fs::write(
        &client.config,
        format!(
            "Host deep\n  HostName {}\n  ProxyJump root@{},j2\nHost j2\n  HostName {}\n\
             Host *\n  User root\n",
            node.addr(),
            j1.addr(),
            j2.addr()
        ),
    )
    .expect("write");
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let w = Watch::start(vec![watch::node(&ctx, "deep", "deep")], INTERVAL);
    w.wait_samples("deep", 0, 2, 10 * SEC);
    // Each hop was connected once: j1 from here, j2 from j1, the node from j2.
    assert_eq!(ssh_connections(&j1.ns.name), 1);
    assert_eq!(ssh_connections(&j2.ns.name), 1);
    assert_eq!(ssh_connections(&node.ns.name), 1);
}

#[test]
fn an_unknown_jump_host_key_is_reported_for_the_node_behind_it() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let jump = Host::new(&client, 201, None, "");
    let node = Host::new(&client, 202, Some(&jump.ns.name), "");
    client.trust(&node.addr(), &node.sshd);
    let ctx = watch::context(&client.home, &client.config, &[], watch::fast_tuning());
    let hops = [HostSpec::parse(&jump.sshd.spec()).expect("spec")];
    let resolved = ctx
        .settings
        .resolve(
            &HostSpec::parse(&node.sshd.spec()).expect("spec"),
            Some(&hops),
        )
        .expect("resolve");
    let w = Watch::start(
        vec![RemoteSource::new(
            "n".into(),
            node.addr(),
            resolved,
            Role::Node,
            ctx.clone(),
        )],
        INTERVAL,
    );
    let log = w.wait_status("n", HostStatus::HostKeyUnknown, 10 * SEC);
    assert!(
        log.message()
            .starts_with(&format!("via jump host {}", jump.sshd.spec())),
        "{}",
        log.message()
    );
    assert!(log.message().contains(&jump.addr()), "{}", log.message());
}
