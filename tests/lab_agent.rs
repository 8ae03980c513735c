//! `lbtop agent` on the lab router, reached from this machine over SSH (`--router-agent`): through
//! `sudo -n` for a login that is not root, actions on the open session with ipvsadm as the oracle,
//! the fallbacks to the shell program (no agent, another version, not lbtop), garbage after the
//! greeting as a clear error, and the agent gone when its session is cut. The field-by-field
//! comparison with ipvsadm through the agent is in `tests/lab_netlink.rs`.

mod support;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lbtop::control::plan::{ActionKind, RealKey, find, parse_service, plan};
use lbtop::control::{RouterControl, apply};
use lbtop::source::agent::{AgentChoice, Hello, MAGIC, frame};
use serde_json::Value;
use support::lab::{AGENT, Lab, lab};

/// The lab's services are shared: one test changes them at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `lbtop --once --json` on this machine for the lab router as `host`, with `--router-agent`.
fn once(lab: &Lab, host: &str, agent: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["--once", "--json", "--nodes", "none", "--interval", "0s"])
        .args([
            "--router",
            host,
            "-F",
            &lab.ssh_config,
            "--router-agent",
            agent,
        ])
        .output()
        .expect("run lbtop");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "lbtop's JSON: {e}\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A fake agent at `path` in the VM: writes `bytes` (base64 here, decoded there), then reads
/// its stdin to the end.
fn fake_agent(lab: &Lab, path: &str, bytes: &[u8]) {
    let b64 = data_encoding::BASE64.encode(bytes);
    lab.root(&format!(
        "mkdir -p /opt/lbtop-fake && printf '%s' '{b64}' | base64 -d > {path}.out && \
         printf '#!/bin/sh\\ncat {path}.out\\nexec cat >/dev/null\\n' > {path} && chmod 755 {path}"
    ));
}

#[test]
fn through_sudo_the_agent_answers_and_names_itself() {
    let lab = lab();
    let uid = lab
        .run("lab-user", "id -u")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(uid.trim(), "0", "lab-user must not be root");
    let json = once(lab, "lab-user", AGENT);
    let router = &json["router"];
    assert_eq!(router["source"], "agent", "{router}");
    assert_eq!(router["status"], "ok", "{router}");
    assert_eq!(router["notes"], serde_json::json!([]), "{router}");
    let ours = router["services"].as_array().expect("services").len();
    let listed = lab
        .root("ipvsadm -Ln | grep -c -E '^(TCP|UDP|SCTP|FWM)'")
        .trim()
        .parse::<usize>()
        .expect("a count");
    assert_eq!(ours, listed, "services as ipvsadm lists them");
    // Netlink in the agent: GET_INFO's version and table size, which /proc does not have.
    assert!(router["ipvs"]["version"].is_string(), "{router}");
}

#[test]
fn actions_through_the_agent_keep_method_thresholds_and_tunnel() {
    let _one = serial();
    let lab = lab();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let service = parse_service("tcp:10.77.1.100:8080").expect("service");
    let real: RealKey = "10.77.0.12:80".parse().expect("real");
    let mut oracle = lab.ssh_control("lab");
    let mut ctrl = lab
        .ssh_control("lab-user")
        .with_agent(AgentChoice::Path(AGENT.into()));
    rt.block_on(async {
        let before = oracle.table().await.expect("ipvsadm's table");
        let (_, original) = find(&before, &service, &real).expect("the lab's real");
        let original = original.clone();
        assert!(ctrl.agent_ready().await.expect("agent"), "the agent runs");
        for (kind, to) in [
            (ActionKind::Drain, 0),
            (ActionKind::Reweight, 65535),
            (ActionKind::Reweight, original.weight),
        ] {
            let table = ctrl.table().await.expect("the agent's table");
            let change = plan(&table, kind, &service, &real, i64::from(to)).expect("plan");
            apply(&mut ctrl, &change, true, None)
                .await
                .unwrap_or_else(|e| panic!("{kind:?} {to}: {e}"));
            let now = oracle.table().await.expect("ipvsadm's table");
            let (_, r) = find(&now, &service, &real).expect("still there");
            assert_eq!(r.weight, to, "{kind:?}: ipvsadm shows the weight");
            assert_eq!(
                (r.forward, r.tunnel, r.upper_threshold, r.lower_threshold),
                (
                    original.forward,
                    original.tunnel,
                    original.upper_threshold,
                    original.lower_threshold
                ),
                "{kind:?}: method, tunnel and thresholds unchanged"
            );
        }
        // A refusal crosses the wire with its words: the weight is already what is asked.
        let table = ctrl.table().await.expect("table");
        let mut change = plan(&table, ActionKind::Reweight, &service, &real, 3).expect("plan");
        change.from = change.from.wrapping_add(1);
        let e = apply(&mut ctrl, &change, false, None)
            .await
            .expect_err("a weight that moved is refused");
        assert!(
            e.to_string()
                .contains("changed on the router since you looked"),
            "{e}"
        );
    });
}

#[test]
fn a_missing_agent_falls_back_to_the_shell_program_with_a_note() {
    let lab = lab();
    let json = once(lab, "lab", "/opt/lbtop-absent/lbtop");
    let router = &json["router"];
    assert_eq!(router["source"], "ssh", "{router}");
    assert_eq!(router["status"], "ok", "{router}");
    let notes = router["notes"].to_string();
    assert!(notes.contains("no lbtop on the router"), "{notes}");
    assert!(notes.contains("shell program"), "{notes}");
    // auto: no lbtop on the lab router's PATH.
    let json = once(lab, "lab", "auto");
    assert_eq!(json["router"]["source"], "ssh", "{}", json["router"]);
}

#[test]
fn another_version_or_not_lbtop_falls_back_with_a_note() {
    let lab = lab();
    let old = Hello {
        protocol: lbtop::source::agent::PROTOCOL,
        version: "0.0.1".into(),
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend(frame(&old));
    fake_agent(lab, "/opt/lbtop-fake/old", &bytes);
    let json = once(lab, "lab", "/opt/lbtop-fake/old");
    let router = &json["router"];
    assert_eq!(router["source"], "ssh", "{router}");
    let notes = router["notes"].to_string();
    assert!(notes.contains("version 0.0.1"), "{notes}");

    fake_agent(lab, "/opt/lbtop-fake/other", b"HTTP/1.1 200 OK\r\n\x1b[2J");
    let json = once(lab, "lab", "/opt/lbtop-fake/other");
    let router = &json["router"];
    assert_eq!(router["source"], "ssh", "{router}");
    let notes = router["notes"].to_string();
    assert!(notes.contains("did not greet as lbtop's agent"), "{notes}");
    assert!(!notes.contains('\x1b'), "made printable: {notes}");
}

#[test]
fn garbage_after_the_greeting_is_a_clear_error_for_the_router() {
    let lab = lab();
    let mut bytes = MAGIC.to_vec();
    bytes.extend(frame(&Hello::ours()));
    bytes.extend(b"\x10\x00\x00\x00\xff\xfe\xfd garbage \x1b[31m red");
    fake_agent(lab, "/opt/lbtop-fake/garbage", &bytes);
    let json = once(lab, "lab", "/opt/lbtop-fake/garbage");
    let router = &json["router"];
    assert_ne!(router["status"], "ok", "{router}");
    let error = router["error"].as_str().unwrap_or_default();
    assert!(error.contains("does not decode"), "{router}");
    assert!(!error.contains('\x1b'), "{error}");
}

#[test]
fn the_agent_ends_when_its_session_is_cut() {
    let lab = lab();
    // Its own copy, so that the other tests' agents are not counted.
    let agent = "/opt/lbtop-cut/lbtop";
    lab.root(&format!("mkdir -p /opt/lbtop-cut && cp {AGENT} {agent}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("cut.lbrec");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .arg("record")
        .arg(&rec)
        .args(["--duration", "120s", "--nodes", "none", "--router", "lab"])
        .args(["-F", &lab.ssh_config, "--router-agent", agent])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("lbtop record");
    let running = |lab: &Lab| {
        let out = lab.root(&format!("pgrep -f '^{agent} agent' | wc -l"));
        out.trim()
            .parse::<u32>()
            .unwrap_or_else(|e| panic!("pgrep's count {out:?}: {e}"))
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while running(lab) == 0 {
        assert!(Instant::now() < deadline, "the agent never started");
        std::thread::sleep(Duration::from_millis(500));
    }
    // It listens on no port: no socket of lbtop's is listening in the VM.
    let listening = lab.root("ss -Hltnup 2>/dev/null | grep -c lbtop || true");
    assert_eq!(listening.trim(), "0", "the agent listens: {listening}");
    // Cut: lbtop dies without closing anything; the kernel resets its TCP connection.
    child.kill().expect("kill lbtop");
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(30);
    while running(lab) > 0 {
        assert!(
            Instant::now() < deadline,
            "the agent outlived its session by 30 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
