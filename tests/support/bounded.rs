//! The built lbtop run under bounds a test can assert on: killed after a timeout (so a hang fails
//! the test instead of hanging it), and its peak memory measured by GNU time (`%M`, the maximum
//! resident set in KB).
#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a bounded run ended.
#[derive(Debug)]
pub struct Run {
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// Peak resident memory in bytes (`None` when killed or not measured).
    pub max_rss: Option<u64>,
}

impl Run {
    /// Fails with what is known when the process had to be killed.
    pub fn finished(&self) -> ExitStatus {
        match self.status {
            Some(s) => s,
            None => panic!("lbtop did not finish in time; stderr: {}", self.stderr),
        }
    }

    pub fn max_rss_mb(&self) -> u64 {
        self.max_rss.expect("peak memory measured") >> 20
    }
}

/// Runs `lbtop args` with a HOME of its own, under `/usr/bin/time`, for at most `timeout`.
pub fn lbtop_within(args: &[&str], timeout: Duration) -> Run {
    let home = tempfile::tempdir().expect("temp home");
    let out = home.path().join("stdout");
    let err = home.path().join("stderr");
    let rss = home.path().join("rss");
    let mut child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(env!("CARGO_BIN_EXE_lbtop"))
        .args(args)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .process_group(0)
        .spawn()
        .expect("run /usr/bin/time lbtop");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            // The whole group this test started: time and lbtop under it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into();
    let rss_text: String = read(&rss);
    Run {
        status,
        stdout: read(&out),
        stderr: read(&err),
        max_rss: status
            .and_then(|_| rss_text.lines().last()?.trim().parse::<u64>().ok())
            .map(|kb| kb << 10),
    }
}
