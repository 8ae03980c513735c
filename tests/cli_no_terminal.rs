//! The dashboard without a terminal (stdin from /dev/null, stdout a pipe, no controlling
//! terminal): a one-line error naming what to use instead, exit status 2, nothing on stdout.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs lbtop under `setsid -w` with no terminal anywhere; kills it after `timeout`.
fn without_terminal(args: &[&str], timeout: Duration) -> (Option<i32>, Vec<u8>, String) {
    let home = tempfile::tempdir().expect("temp home");
    let mut child = Command::new("setsid")
        .arg("-w")
        .arg(env!("CARGO_BIN_EXE_lbtop"))
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setsid (util-linux) runs lbtop");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for lbtop") {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lbtop without a terminal still running after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = Vec::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut out)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    (status.code(), out, err)
}

fn assert_refused(args: &[&str]) {
    let (code, out, err) = without_terminal(args, Duration::from_secs(20));
    assert_eq!(code, Some(2), "exit status for {args:?}; stderr: {err}");
    assert!(
        out.is_empty(),
        "stdout for {args:?} not empty: {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(err.lines().count(), 1, "not one line on stderr: {err}");
    assert!(err.contains("no terminal"), "stderr: {err}");
    assert!(err.contains("--once --json"), "stderr: {err}");
    assert!(err.contains("lbtop record"), "stderr: {err}");
    assert!(!err.contains("panicked"), "stderr: {err}");
}

#[test]
fn live_dashboard_without_a_terminal_says_so_and_exits_2_with_nothing_on_stdout() {
    assert_refused(&[]);
    assert_refused(&["--interval", "300ms", "--router", "none"]);
}

#[test]
fn replay_dashboard_without_a_terminal_says_so_and_exits_2() {
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    assert_refused(&["replay", demo]);
}

#[test]
fn once_json_still_works_without_a_terminal() {
    let (code, out, err) = without_terminal(
        &["--once", "--json", "--interval", "0s"],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(out.starts_with(b"{"), "stdout is not JSON");
}
