//! Drain, reweight and restore against the real kernel in the lab, with `ipvsadm` as the oracle:
//! the weight changes and the forwarding method and thresholds do not. Also the guards (last live
//! server, read-only, a weight changed by someone else) and the TUI flow driven through tmux.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lbtop::control::ipvsadm::edit_args;
use lbtop::model::sample::{RealServerSample, VirtualServiceSample};
use lbtop::source::parse::{ipvsadm_list, merge_ipvsadm};
use support::lab::{Lab, lab};

/// The lab's services are shared: one test changes them at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The router's table as ipvsadm shows it (plain, thresholds and persistent-conn views).
fn oracle(lab: &Lab) -> Vec<VirtualServiceSample> {
    // One round trip for the three views: every ssh exec is slow under emulation.
    let out = lab.root(
        "ipvsadm -L -n --exact; echo @@; ipvsadm -L -n --exact --thresholds; echo @@; \
         ipvsadm -L -n --exact --persistent-conn",
    );
    let views: Vec<_> = out
        .split("@@\n")
        .map(|v| ipvsadm_list(v).expect("ipvsadm output"))
        .collect();
    merge_ipvsadm(&views[0], &views[1..]).expect("merge")
}

fn find(
    table: &[VirtualServiceSample],
    svc: &str,
    real: &str,
) -> (VirtualServiceSample, RealServerSample) {
    let s = table
        .iter()
        .find(|s| s.key.to_string() == svc)
        .unwrap_or_else(|| panic!("the lab has no service {svc}"));
    let r = s
        .reals
        .iter()
        .find(|r| r.id() == real)
        .unwrap_or_else(|| panic!("{svc} has no real server {real}"));
    (s.clone(), r.clone())
}

/// Puts a real server back exactly as it was.
fn put_back(lab: &Lab, svc: &VirtualServiceSample, real: &RealServerSample) {
    lab.root(&format!(
        "ipvsadm {}",
        edit_args(svc, real, real.weight).join(" ")
    ));
}

/// Puts a real server back as it was when the guard was made, also when the test fails.
struct Restore<'a> {
    lab: &'a Lab,
    svc: VirtualServiceSample,
    real: RealServerSample,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let args = edit_args(&self.svc, &self.real, self.real.weight).join(" ");
        let _ = self.lab.ssh("lab", &format!("ipvsadm {args}"));
    }
}

/// Runs lbtop in the VM as root; returns (exit code, stdout, stderr).
fn lbtop(lab: &Lab, args: &str) -> (i32, String, String) {
    let out = lab.ssh("lab", &format!("{} {args}", lab.lbtop()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Drains, reweights and restores one real server, checking ipvsadm after each step.
fn drain_reweight_restore(svc_id: &str, real_id: &str) {
    let lab = lab();
    let (svc, before) = find(&oracle(lab), svc_id, real_id);
    let _restore = Restore {
        lab,
        svc: svc.clone(),
        real: before.clone(),
    };
    let audit = format!(
        "/tmp/lbtop-audit-{}.jsonl",
        real_id.replace([':', '[', ']'], "_")
    );
    lab.root(&format!("rm -f {audit}"));
    let check = |expect_weight: i32, step: &str| {
        let (_, now) = find(&oracle(lab), svc_id, real_id);
        assert_eq!(now.weight, expect_weight, "{step}: weight");
        assert_eq!(
            now.forward, before.forward,
            "{step}: forwarding method changed"
        );
        assert_eq!(
            now.upper_threshold, before.upper_threshold,
            "{step}: upper threshold"
        );
        assert_eq!(
            now.lower_threshold, before.lower_threshold,
            "{step}: lower threshold"
        );
    };

    let (code, out, err) = lbtop(
        lab,
        &format!("drain --router local --audit-log {audit} --force {svc_id} {real_id}"),
    );
    assert_eq!(code, 0, "drain: {out}{err}");
    assert!(
        out.contains(&format!("weight {} → 0 (drain)", before.weight)),
        "{out}"
    );
    assert!(
        out.contains("(via netlink)"),
        "root changes weights with SET_DEST: {out}"
    );
    check(0, "drain");

    let (code, out, err) = lbtop(
        lab,
        &format!("weight --router local --audit-log {audit} {svc_id} {real_id} 65535"),
    );
    assert_eq!(code, 0, "weight: {out}{err}");
    check(65_535, "weight 65535");

    // Restore brings back the weight before the drain, read from the audit log.
    let (code, out, err) = lbtop(
        lab,
        &format!("restore --router local --audit-log {audit} {svc_id} {real_id}"),
    );
    assert_eq!(code, 0, "restore: {out}{err}");
    check(before.weight, "restore");

    let log = lab.root(&format!("cat {audit}"));
    assert_eq!(log.lines().count(), 3, "one audit line per action:\n{log}");
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("audit line is JSON");
        for k in [
            "time",
            "user",
            "router",
            "service",
            "real",
            "old_weight",
            "new_weight",
            "result",
        ] {
            assert!(v.get(k).is_some(), "audit line lacks {k}: {line}");
        }
        assert_eq!(v["result"], "ok");
        assert_eq!(v["service"], svc_id);
    }
}

#[test]
fn masquerading_real_keeps_masq_and_thresholds() {
    let _g = serial();
    drain_reweight_restore("tcp:10.77.1.100:8080", "10.77.0.12:80");
}

#[test]
fn direct_routing_real_keeps_route() {
    let _g = serial();
    drain_reweight_restore("tcp:10.77.1.100:80", "10.77.0.13:80");
}

#[test]
fn tunnel_real_keeps_tunnel() {
    let _g = serial();
    drain_reweight_restore("tcp:10.77.1.101:80", "10.77.0.12:80");
}

#[test]
fn firewall_mark_service_real_is_drained() {
    let _g = serial();
    drain_reweight_restore("fwm:1", "10.77.0.12:0");
}

#[test]
fn draining_the_last_live_server_is_refused_without_force() {
    let _g = serial();
    let lab = lab();
    lab.root(
        "ipvsadm -D -t 10.77.1.120:80 2>/dev/null; ipvsadm -A -t 10.77.1.120:80 -s rr && \
         ipvsadm -a -t 10.77.1.120:80 -r 10.77.0.11:80 -m -w 2 -x 30 -y 5",
    );
    let (code, _, err) = lbtop(
        lab,
        "drain --router local --audit-log /tmp/a-last.jsonl tcp:10.77.1.120:80 10.77.0.11:80",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("last real server"), "{err}");
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.120:80", "10.77.0.11:80")
            .1
            .weight,
        2
    );
    // The refusal is audited too.
    assert!(lab.root("cat /tmp/a-last.jsonl").contains("error: "));
    let (code, out, err) = lbtop(
        lab,
        "drain --router local --force --audit-log /tmp/a-last.jsonl tcp:10.77.1.120:80 10.77.0.11:80",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, r) = find(&oracle(lab), "tcp:10.77.1.120:80", "10.77.0.11:80");
    assert_eq!((r.weight, r.upper_threshold, r.lower_threshold), (0, 30, 5));
    lab.root("ipvsadm -D -t 10.77.1.120:80");
}

#[test]
fn read_only_mode_changes_nothing() {
    let _g = serial();
    let lab = lab();
    let (_, before) = find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.12:80");
    let (code, _, err) = lbtop(
        lab,
        "--read-only drain --router local --force tcp:10.77.1.100:80 10.77.0.12:80",
    );
    assert_ne!(code, 0);
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.12:80").1,
        before
    );
}

#[test]
fn without_privilege_the_change_fails_with_a_clear_message() {
    let _g = serial();
    let lab = lab();
    let (_, before) = find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.12:80");
    let out = lab.ssh(
        "lab-user",
        &format!(
            "{} drain --router local --audit-log /tmp/u-audit.jsonl tcp:10.77.1.100:80 10.77.0.12:80",
            lab.lbtop()
        ),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("ipvsadm"), "names what failed: {err}");
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.12:80").1,
        before
    );
}

#[test]
fn unknown_service_or_real_exits_non_zero_with_a_clear_message() {
    let _g = serial();
    let lab = lab();
    let (code, _, err) = lbtop(lab, "drain --router local tcp:10.77.1.199:80 10.77.0.11:80");
    assert_eq!(code, 1);
    assert!(
        err.contains("no virtual service tcp:10.77.1.199:80"),
        "{err}"
    );
    let (code, _, err) = lbtop(lab, "drain --router local tcp:10.77.1.100:80 10.77.0.99:80");
    assert_eq!(code, 1);
    assert!(err.contains("has no real server 10.77.0.99:80"), "{err}");
    let (code, _, err) = lbtop(
        lab,
        "weight --router local tcp:10.77.1.100:80 10.77.0.11:80 70000",
    );
    assert_eq!(code, 1);
    assert!(err.contains("0–65535"), "{err}");
}

/// tmux inside the VM, driven over ssh.
struct VmTmux<'a> {
    lab: &'a Lab,
}

impl VmTmux<'_> {
    fn keys(&self, keys: &str) {
        self.lab
            .root(&format!("tmux -L lbtop send-keys -t t {keys}"));
    }

    fn screen(&self) -> String {
        self.lab.root("tmux -L lbtop capture-pane -p -t t")
    }

    fn wait_for(&self, what: &str, secs: u64) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if s.contains(what) || start.elapsed() > Duration::from_secs(secs) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for VmTmux<'_> {
    fn drop(&mut self) {
        let _ = self.lab.ssh("lab", "tmux -L lbtop kill-server");
    }
}

#[test]
fn tui_drain_restore_and_an_abort_when_someone_else_changed_the_weight() {
    let _g = serial();
    let lab = lab();
    let table = oracle(lab);
    // The first row of the tree is the first service by key: TCP 10.77.1.100:80, first real .11.
    let (svc, before) = find(&table, "tcp:10.77.1.100:80", "10.77.0.11:80");
    let _restore = Restore {
        lab,
        svc: svc.clone(),
        real: before.clone(),
    };
    lab.root("rm -f /tmp/tui-audit.jsonl /root/.local/state/lbtop/audit.jsonl; tmux -L lbtop kill-server 2>/dev/null; true");
    lab.root(&format!(
        "tmux -L lbtop new-session -d -s t -x 160 -y 50 'TERM=xterm XDG_STATE_HOME=/tmp/tui-state {} \
         --router local --nodes none --interval 500ms'",
        lab.lbtop()
    ));
    let t = VmTmux { lab };
    let s = t.wait_for("10.77.0.11:80", 30);
    assert!(s.contains("TCP 10.77.1.100:80"), "{s}");
    t.keys("Down Down d");
    let s = t.wait_for("(drain)", 10);
    assert!(
        s.contains(&format!(
            "TCP 10.77.1.100:80 → 10.77.0.11:80  weight {} → 0 (drain)",
            before.weight
        )),
        "{s}"
    );
    t.keys("Enter");
    let s = t.wait_for("done:", 15);
    assert!(s.contains("done:"), "{s}");
    let (_, now) = find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.11:80");
    assert_eq!((now.weight, now.forward), (0, before.forward));

    // Restore offers the weight before the drain.
    t.keys("Escape");
    t.keys("r");
    let s = t.wait_for("(restore)", 10);
    assert!(
        s.contains(&format!("weight 0 → {} (restore)", before.weight)),
        "{s}"
    );
    t.keys("Enter");
    t.wait_for("done:", 15);
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.11:80")
            .1
            .weight,
        before.weight
    );

    // Someone else changes the weight between the confirmation and enter: lbtop aborts.
    t.keys("Escape");
    t.keys("w 7 Enter");
    t.wait_for("(reweight)", 10);
    let mut other = before.clone();
    other.weight = 9;
    put_back(lab, &svc, &other);
    t.keys("Enter");
    let s = t.wait_for("changed on the router", 15);
    assert!(s.contains("changed on the router"), "{s}");
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.11:80")
            .1
            .weight,
        9
    );
    t.keys("Escape");
    t.keys("q");
}

/// Runs this machine's lbtop against the lab router over SSH; returns (exit code, stdout, stderr,
/// seconds taken).
fn lbtop_over_ssh(lab: &Lab, args: &str) -> (i32, String, String, f64) {
    let start = Instant::now();
    let home = tempfile::tempdir().expect("temp home");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(args.split_whitespace())
        .env("HOME", home.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run lbtop");
    let _ = lab;
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        start.elapsed().as_secs_f64(),
    )
}

#[test]
fn drain_and_restore_over_ssh_as_root_and_through_sudo() {
    let _g = serial();
    let lab = lab();
    let (svc, before) = find(&oracle(lab), "tcp:10.77.1.100:8080", "10.77.0.11:80");
    let _restore = Restore {
        lab,
        svc: svc.clone(),
        real: before.clone(),
    };
    let audit = tempfile::tempdir().expect("audit dir");
    let audit = audit.path().join("audit.jsonl");
    for host in ["lab", "lab-user"] {
        let common = format!(
            "-F {} --router {host} --audit-log {}",
            lab.ssh_config,
            audit.display()
        );
        let (code, out, err, secs) = lbtop_over_ssh(
            lab,
            &format!("drain {common} tcp:10.77.1.100:8080 10.77.0.11:80"),
        );
        assert_eq!(code, 0, "{host}: {out}{err}");
        assert!(out.contains("(via ssh)"), "{out}");
        eprintln!("drain over ssh as {host}: {secs:.2}s end to end");
        let (_, now) = find(&oracle(lab), "tcp:10.77.1.100:8080", "10.77.0.11:80");
        assert_eq!(
            (
                now.weight,
                now.forward,
                now.upper_threshold,
                now.lower_threshold
            ),
            (
                0,
                before.forward,
                before.upper_threshold,
                before.lower_threshold
            ),
            "{host}"
        );
        let (code, out, err, _) = lbtop_over_ssh(
            lab,
            &format!("restore {common} tcp:10.77.1.100:8080 10.77.0.11:80"),
        );
        assert_eq!(code, 0, "{host}: {out}{err}");
        assert_eq!(
            find(&oracle(lab), "tcp:10.77.1.100:8080", "10.77.0.11:80")
                .1
                .weight,
            before.weight
        );
    }
    // The guards hold over SSH too: a weight out of range, and a real that is not there.
    let (code, _, err, _) = lbtop_over_ssh(
        lab,
        &format!(
            "weight -F {} --router lab tcp:10.77.1.100:8080 10.77.0.99:80 3",
            lab.ssh_config
        ),
    );
    assert_eq!(code, 1);
    assert!(err.contains("has no real server 10.77.0.99:80"), "{err}");
}
