//! Nodes over SSH against real OpenSSH servers in network namespaces, through faults: each case
//! checks the status the failing node shows, that it comes back by itself, that the other node
//! keeps updating meanwhile, and that frames keep being drawn on the same thread.

mod support;

use std::time::Duration;

use lbtop::model::sample::HostStatus;
use support::sshd::Cluster;
use support::watch::{self, INTERVAL, Watch};

const SEC: Duration = Duration::from_secs(1);

/// Two nodes polled; returns them running with two samples each.
fn two_nodes(cluster: &Cluster, options: &[&str]) -> Watch {
    let c = &cluster.client;
    let ctx = watch::context(&c.home, &c.config, options, watch::fast_tuning());
    let sources = vec![
        watch::node(&ctx, "victim", &cluster.hosts[0].sshd.spec()),
        watch::node(&ctx, "bystander", &cluster.hosts[1].sshd.spec()),
    ];
    let w = Watch::start(sources, INTERVAL);
    w.wait_samples("victim", 0, 2, 10 * SEC);
    w.wait_samples("bystander", 0, 2, 10 * SEC);
    w
}

/// The bystander gained samples and frames kept coming with no long gap.
fn others_kept_going(w: &Watch, bystander_before: u64, frames_before: u64) {
    w.wait_samples("bystander", bystander_before, 3, 5 * SEC);
    let (frames, gap) = w.frames();
    assert!(
        frames > frames_before + 5,
        "frames {frames_before} -> {frames}"
    );
    assert!(gap < Duration::from_millis(400), "a frame gap of {gap:?}");
}

#[test]
fn sshd_killed_then_restarted_goes_unreachable_and_recovers() {
    if !support::sshd::require() {
        return;
    }
    let mut cluster = Cluster::new(2);
    let w = two_nodes(&cluster, &[]);
    let (b0, f0) = (w.samples("bystander"), w.frames().0);
    cluster.hosts[0].sshd.kill_all();
    let log = w.wait_status("victim", HostStatus::Unreachable, 5 * SEC);
    assert!(!log.message().is_empty());
    others_kept_going(&w, b0, f0);
    let before = w.samples("victim");
    cluster.hosts[0].sshd.start();
    w.wait_samples("victim", before, 2, 10 * SEC);
    let t = w.host("victim").transitions();
    assert_eq!(t.first(), Some(&HostStatus::Ok), "{t:?}");
    assert!(
        t.ends_with(&[HostStatus::Unreachable, HostStatus::Ok]),
        "{t:?}"
    );
}

#[test]
fn link_down_then_up_goes_unreachable_and_recovers() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let w = two_nodes(&cluster, &[]);
    let (b0, f0) = (w.samples("bystander"), w.frames().0);
    cluster.hosts[0].ns.link(false);
    let log = w.wait_status("victim", HostStatus::Unreachable, 5 * SEC);
    let m = log.message();
    assert!(
        ["no answer", "no route to host", "keepalive"]
            .iter()
            .any(|w| m.contains(w)),
        "{m}"
    );
    others_kept_going(&w, b0, f0);
    let before = w.samples("victim");
    cluster.hosts[0].ns.link(true);
    w.wait_samples("victim", before, 2, 10 * SEC);
    assert!(
        w.host("victim")
            .transitions()
            .ends_with(&[HostStatus::Unreachable, HostStatus::Ok])
    );
}

#[test]
fn a_hung_sshd_times_out_without_stalling_anything_and_recovers() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let w = two_nodes(&cluster, &[]);
    let (b0, f0) = (w.samples("bystander"), w.frames().0);
    cluster.hosts[0].sshd.freeze(true);
    let log = w.wait_status("victim", HostStatus::Unreachable, 5 * SEC);
    assert!(log.message().contains("no answer"), "{}", log.message());
    others_kept_going(&w, b0, f0);
    // Reconnecting to a stopped sshd: TCP is accepted by the kernel, the SSH handshake never comes.
    support::sshd::wait_for(5 * SEC, || {
        w.host("victim")
            .statuses
            .iter()
            .any(|(_, m)| m.as_deref().is_some_and(|m| m.contains("SSH handshake")))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("no handshake timeout: {:?}", w.host("victim").statuses));
    let before = w.samples("victim");
    cluster.hosts[0].sshd.freeze(false);
    w.wait_samples("victim", before, 2, 10 * SEC);
    let (_, gap) = w.frames();
    assert!(gap < Duration::from_millis(400), "a frame gap of {gap:?}");
}

#[test]
fn a_changed_host_key_is_refused_never_learned_and_accepted_once_fixed() {
    if !support::sshd::require() {
        return;
    }
    let mut cluster = Cluster::new(2);
    let w = two_nodes(&cluster, &["StrictHostKeyChecking=accept-new"]);
    let known_before = support::sshd::read(&cluster.client.known_hosts);
    let (b0, f0) = (w.samples("bystander"), w.frames().0);
    let victim = &mut cluster.hosts[0].sshd;
    victim.kill_all();
    victim.new_host_key();
    victim.start();
    let log = w.wait_status("victim", HostStatus::HostKeyChanged, 10 * SEC);
    let victim_samples = w.samples("victim");
    let fingerprint = support::sshd::run(
        "ssh-keygen",
        &["-l", "-f", &victim.host_key_pub().to_string_lossy()],
    );
    let fingerprint = fingerprint.split_whitespace().nth(1).expect("fingerprint");
    assert!(
        log.message().contains(fingerprint),
        "{} lacks {fingerprint}",
        log.message()
    );
    others_kept_going(&w, b0, f0);
    // It keeps retrying and keeps refusing; the file is never touched, even with accept-new.
    std::thread::sleep(2 * SEC);
    assert_eq!(w.host("victim").status(), Some(HostStatus::HostKeyChanged));
    assert_eq!(
        w.samples("victim"),
        victim_samples,
        "no data with a changed key"
    );
    assert_eq!(
        support::sshd::read(&cluster.client.known_hosts),
        known_before
    );
    // The operator replaces the old key; lbtop picks it up by itself.
    let addr = cluster.hosts[0].addr();
    support::sshd::run(
        "ssh-keygen",
        &[
            "-R",
            &addr,
            "-f",
            &cluster.client.known_hosts.to_string_lossy(),
        ],
    );
    cluster.client.trust(&addr, &cluster.hosts[0].sshd);
    w.wait_samples("victim", victim_samples, 1, 10 * SEC);
}

#[test]
fn refused_authentication_is_auth_failed_until_the_key_is_authorized() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let victim = &cluster.hosts[0].sshd;
    std::fs::write(&victim.authorized_keys, "").expect("revoke");
    let c = &cluster.client;
    let ctx = watch::context(&c.home, &c.config, &[], watch::fast_tuning());
    let w = Watch::start(
        vec![
            watch::node(&ctx, "victim", &victim.spec()),
            watch::node(&ctx, "bystander", &cluster.hosts[1].sshd.spec()),
        ],
        INTERVAL,
    );
    let log = w.wait_status("victim", HostStatus::AuthFailed, 10 * SEC);
    assert!(log.message().contains("root"), "{}", log.message());
    assert!(log.message().contains("id_ed25519"), "{}", log.message());
    w.wait_samples("bystander", 0, 4, 10 * SEC);
    std::fs::write(&victim.authorized_keys, c.public_key()).expect("authorize");
    w.wait_samples("victim", 0, 2, 10 * SEC);
    assert_eq!(
        w.host("victim").transitions(),
        [HostStatus::AuthFailed, HostStatus::Ok]
    );
}

#[test]
fn keepalives_find_an_idle_host_that_was_cut_off_before_its_next_poll() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let c = &cluster.client;
    // Polls 20 s apart: only keepalives (every 1 s, 2 unanswered) can notice the cut in time.
    let ctx = watch::context(&c.home, &c.config, &[], watch::fast_tuning());
    let w = Watch::start(
        vec![watch::node(&ctx, "idle", &cluster.hosts[0].sshd.spec())],
        Duration::from_secs(20),
    );
    w.wait_samples("idle", 0, 1, 10 * SEC);
    let cut = std::time::Instant::now();
    cluster.hosts[0].ns.blackhole(true);
    let log = w.wait_status("idle", HostStatus::Unreachable, 8 * SEC);
    assert!(cut.elapsed() < 8 * SEC);
    assert!(log.message().contains("keepalive"), "{}", log.message());
    cluster.hosts[0].ns.blackhole(false);
    w.wait_samples("idle", 1, 1, 10 * SEC);
}
