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

/// The router's table as ipvsadm shows it (tun-info, thresholds and persistent-conn views).
fn oracle(lab: &Lab) -> Vec<VirtualServiceSample> {
    // One round trip for the three views: every ssh exec is slow under emulation.
    let out = lab.root(
        "ipvsadm -L -n --exact --tun-info; echo @@; ipvsadm -L -n --exact --thresholds; echo @@; \
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
        edit_args(svc, real, real.weight)
            .expect("a method read from the lab")
            .join(" ")
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
        let Ok(args) = edit_args(&self.svc, &self.real, self.real.weight) else {
            return;
        };
        let args = args.join(" ");
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

/// How an action reaches the lab router.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// lbtop in the VM as root, `--router local`: netlink SET_DEST.
    Netlink,
    /// lbtop on this machine, `--router lab --router-agent never`: ipvsadm over SSH.
    Ssh,
    /// lbtop on this machine, `--router lab-user`: `lbtop agent` on the router through sudo.
    Agent,
}

/// Runs one lbtop action on the lab router; returns (exit code, stdout, stderr).
fn act(lab: &Lab, via: Via, audit: &str, args: &str) -> (i32, String, String) {
    match via {
        Via::Netlink => lbtop(
            lab,
            &format!(
                "{} --router local --audit-log {audit} {}",
                verb(args),
                rest(args)
            ),
        ),
        Via::Ssh => {
            let (code, out, err, _) = lbtop_over_ssh(
                lab,
                &format!(
                    "{} -F {} --router lab --router-agent never --audit-log {audit} {}",
                    verb(args),
                    lab.ssh_config,
                    rest(args)
                ),
            );
            (code, out, err)
        }
        Via::Agent => {
            let (code, out, err, _) = lbtop_over_ssh(
                lab,
                &format!(
                    "{} -F {} --router lab-user --router-agent {} --audit-log {audit} {}",
                    verb(args),
                    lab.ssh_config,
                    support::lab::AGENT,
                    rest(args)
                ),
            );
            (code, out, err)
        }
    }
}

fn verb(args: &str) -> &str {
    args.split_once(' ').map_or(args, |(v, _)| v)
}

fn rest(args: &str) -> &str {
    args.split_once(' ').map_or("", |(_, r)| r)
}

/// Drains, reweights and restores one real server over netlink and then over SSH, checking
/// ipvsadm after each step: the weight changed, and the forwarding method, thresholds and
/// tunnel settings did not. The real gets thresholds for the test so that losing them shows.
fn drain_reweight_restore(svc_id: &str, real_id: &str) {
    let lab = lab();
    let (svc, original) = find(&oracle(lab), svc_id, real_id);
    let _restore = Restore {
        lab,
        svc: svc.clone(),
        real: original.clone(),
    };
    let mut with_thresholds = original.clone();
    (
        with_thresholds.upper_threshold,
        with_thresholds.lower_threshold,
    ) = (40, 4);
    put_back(lab, &svc, &with_thresholds);
    let (_, before) = find(&oracle(lab), svc_id, real_id);
    assert_eq!((before.upper_threshold, before.lower_threshold), (40, 4));
    for via in [Via::Netlink, Via::Ssh, Via::Agent] {
        let check = |expect_weight: i32, step: &str| {
            let (_, now) = find(&oracle(lab), svc_id, real_id);
            assert_eq!(now.weight, expect_weight, "{via:?} {step}: weight");
            assert_eq!(
                (now.forward, now.tunnel),
                (before.forward, before.tunnel),
                "{via:?} {step}: forwarding method or tunnel changed"
            );
            assert_eq!(
                (now.upper_threshold, now.lower_threshold),
                (before.upper_threshold, before.lower_threshold),
                "{via:?} {step}: thresholds"
            );
        };
        let audit_dir = tempfile::tempdir().expect("audit dir");
        let audit = match via {
            Via::Netlink => {
                let a = format!(
                    "/tmp/lbtop-audit-{}.jsonl",
                    real_id.replace([':', '[', ']'], "_")
                );
                lab.root(&format!("rm -f {a}"));
                a
            }
            Via::Ssh | Via::Agent => audit_dir.path().join("audit.jsonl").display().to_string(),
        };
        let method = match via {
            Via::Netlink => "(via netlink)",
            Via::Ssh => "(via ssh)",
            Via::Agent => "(via agent)",
        };

        let (code, out, err) = act(
            lab,
            via,
            &audit,
            &format!("drain --force {svc_id} {real_id}"),
        );
        assert_eq!(code, 0, "{via:?} drain: {out}{err}");
        assert!(
            out.contains(&format!("weight {} → 0 (drain)", before.weight)),
            "{out}"
        );
        assert!(out.contains(method), "{via:?}: {out}");
        check(0, "drain");

        let (code, out, err) = act(
            lab,
            via,
            &audit,
            &format!("weight {svc_id} {real_id} 65535"),
        );
        assert_eq!(code, 0, "{via:?} weight: {out}{err}");
        check(65_535, "weight 65535");

        // Restore brings back the weight before the drain, read from the audit log.
        let (code, out, err) = act(lab, via, &audit, &format!("restore {svc_id} {real_id}"));
        assert_eq!(code, 0, "{via:?} restore: {out}{err}");
        check(before.weight, "restore");

        let log = match via {
            Via::Netlink => lab.root(&format!("cat {audit}")),
            Via::Ssh | Via::Agent => std::fs::read_to_string(&audit).expect("audit log"),
        };
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
fn ipv6_firewall_mark_service_real_is_drained() {
    let _g = serial();
    drain_reweight_restore("fwm:2", "[fd77::13]:0");
}

/// GUE and GRE reals (kernel 5.3+, ipvsadm 1.31): the encapsulation, its port and checksum
/// setting survive every change, over netlink and over SSH.
#[test]
fn gue_and_gre_tunnel_reals_keep_their_encapsulation() {
    let _g = serial();
    let lab = lab();
    let add = "ipvsadm -a -t 10.77.1.101:80 -r 10.77.0.99:80 -i --tun-type gue --tun-port 6080 \
               --tun-csum -w 2 && ipvsadm -a -t 10.77.1.101:80 -r 10.77.0.98:80 -i --tun-type gre \
               --tun-nocsum -w 3";
    let remove = "ipvsadm -d -t 10.77.1.101:80 -r 10.77.0.99:80 2>/dev/null; \
                  ipvsadm -d -t 10.77.1.101:80 -r 10.77.0.98:80 2>/dev/null; true";
    lab.root(&format!("{remove}; {add}"));
    struct Remove<'a>(&'a Lab, &'a str);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = self.0.ssh("lab", self.1);
        }
    }
    let _remove = Remove(lab, remove);
    drain_reweight_restore("tcp:10.77.1.101:80", "10.77.0.99:80");
    drain_reweight_restore("tcp:10.77.1.101:80", "10.77.0.98:80");
}

#[test]
fn draining_the_last_live_server_is_refused_without_force() {
    let _g = serial();
    let lab = lab();
    lab.root(
        "rm -f /tmp/a-last.jsonl; ipvsadm -D -t 10.77.1.120:80 2>/dev/null; \
         ipvsadm -A -t 10.77.1.120:80 -s rr && \
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
    assert!(lab.root("cat /tmp/a-last.jsonl").contains("refused: "));
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
    // A weight out of range is a usage error, found before the router is contacted.
    let (code, _, err) = lbtop(
        lab,
        "weight --router local tcp:10.77.1.100:80 10.77.0.11:80 70000",
    );
    assert_eq!(code, 2);
    assert!(err.contains("70000 is not in 0..=65535"), "{err}");
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

/// The guards over SSH, where the re-check runs on the router in the same exec as the change:
/// the last live server, and a weight changed by someone else between look and confirm.
#[test]
fn guards_hold_over_ssh() {
    use lbtop::control::plan::{ActionKind, parse_service, plan};
    use lbtop::control::{RouterControl, apply};

    let _g = serial();
    let lab = lab();
    lab.root(
        "ipvsadm -D -t 10.77.1.121:80 2>/dev/null; ipvsadm -A -t 10.77.1.121:80 -s rr && \
         ipvsadm -a -t 10.77.1.121:80 -r 10.77.0.11:80 -m -w 2 -x 30 -y 5 && \
         ipvsadm -a -t 10.77.1.121:80 -r 10.77.0.12:80 -m -w 0",
    );
    let audit = tempfile::tempdir().expect("audit dir");
    let audit = audit.path().join("audit.jsonl").display().to_string();
    let drain = "drain tcp:10.77.1.121:80 10.77.0.11:80";
    let (code, _, err) = act(lab, Via::Ssh, &audit, drain);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("last real server"), "{err}");
    let (_, r) = find(&oracle(lab), "tcp:10.77.1.121:80", "10.77.0.11:80");
    assert_eq!(r.weight, 2);
    let (code, out, err) = act(
        lab,
        Via::Ssh,
        &audit,
        "drain --force tcp:10.77.1.121:80 10.77.0.11:80",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (_, r) = find(&oracle(lab), "tcp:10.77.1.121:80", "10.77.0.11:80");
    assert_eq!((r.weight, r.upper_threshold, r.lower_threshold), (0, 30, 5));

    // Someone else changes the weight after the operator looked: nothing is changed.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ctrl = lab.ssh_control("lab");
    let service = parse_service("tcp:10.77.1.121:80").expect("service");
    let real = "10.77.0.12:80".parse().expect("real");
    let result = rt.block_on(async {
        let table = ctrl.table().await.expect("table");
        let change = plan(&table, ActionKind::Reweight, &service, &real, 5).expect("plan");
        lab.root("ipvsadm -e -t 10.77.1.121:80 -r 10.77.0.12:80 -m -w 9");
        apply(&mut ctrl, &change, false, None).await
    });
    let err = result.expect_err("the weight moved").to_string();
    assert!(
        err.contains("changed on the router since you looked (0 → 9)"),
        "{err}"
    );
    assert_eq!(
        find(&oracle(lab), "tcp:10.77.1.121:80", "10.77.0.12:80")
            .1
            .weight,
        9
    );
    lab.root("ipvsadm -D -t 10.77.1.121:80");
}

/// The Weight cell of the first row naming `real` after the row of `service`, by the header's
/// column (tmux's screen; the borders are wide characters, so by characters, not bytes).
fn weight_cell(screen: &str, service: &str, real: &str) -> Option<String> {
    let lines: Vec<&str> = screen.lines().collect();
    let header = lines.iter().find(|l| l.contains("Weight"))?;
    let at = header[..header.find("Weight")?].chars().count();
    let from = lines.iter().position(|l| l.contains(service))?;
    let row = lines[from..].iter().find(|l| l.contains(real))?;
    Some(
        row.chars()
            .skip(at)
            .take(6)
            .collect::<String>()
            .trim()
            .to_string(),
    )
}

/// Over SSH the action goes through an agent of its own on the router, not the one that answers
/// the polls: the poll after it asks for every service's real servers (`Request::Poll { full }`),
/// so the pane shows the drain at once, not when the idle service is next due (up to 30 s).
#[test]
fn through_the_agent_the_pane_shows_a_drain_at_the_next_poll() {
    let _g = serial();
    let lab = lab();
    let (svc, before) = find(&oracle(lab), "tcp:10.77.1.100:80", "10.77.0.11:80");
    assert_ne!(
        before.weight, 0,
        "the lab's real server starts with a weight"
    );
    let _restore = Restore {
        lab,
        svc: svc.clone(),
        real: before.clone(),
    };
    let t = support::tmux::Tmux::new("agent-drain");
    t.start(&format!(
        "--router lab -F {} --router-agent {} --nodes none --interval 1s",
        lab.ssh_config,
        support::lab::AGENT
    ));
    let weight = |s: &str| weight_cell(s, "TCP 10.77.1.100:80", "10.77.0.11:80");
    let s = t.wait_for(
        |s| s.contains("via agent") && weight(s).is_some(),
        Duration::from_secs(60),
    );
    assert_eq!(weight(&s), Some(before.weight.to_string()), "{s}");
    // A few polls: the idle services' real servers are carried by now.
    std::thread::sleep(Duration::from_secs(4));
    for key in ["Down", "Down", "d"] {
        t.keys(key);
    }
    // The plan is read through a second session to the router, started now.
    let s = t.wait_for(
        |s| s.contains("(drain)") && s.contains("10.77.0.11:80  weight"),
        Duration::from_secs(60),
    );
    assert!(s.contains("10.77.0.11:80  weight"), "{s}");
    t.keys("Enter");
    let s = t.wait_for(|s| s.contains("done:"), Duration::from_secs(20));
    assert!(s.contains("done:"), "{s}");
    let s = t.wait_for(
        |s| weight(s).as_deref() == Some("0"),
        Duration::from_secs(6),
    );
    assert_eq!(
        weight(&s).as_deref(),
        Some("0"),
        "the pane after the drain:\n{s}"
    );
    t.keys("Escape");
    t.keys("q");
}
