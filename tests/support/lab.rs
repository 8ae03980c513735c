//! The real-kernel lab for integration tests: `tests/lab/up` boots it once per test binary (or
//! reuses a running one) and a watcher stops it when the binary exits, however it exits. The VM
//! shares this machine's root read-only; each test binary runs its own copy of the `lbtop` cargo
//! built, in the VM's tmpfs (a binary rebuilt on the host while the VM has it mapped through 9p can
//! run stale pages and crash). `LAB_KEEP=1` leaves the VM running afterwards.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub struct Lab {
    pub ssh_config: String,
    /// This build's lbtop, copied into the VM's /tmp: a binary rebuilt on the host while the VM
    /// has it mapped through 9p can run stale pages and crash.
    pub lbtop: String,
}

static LAB: OnceLock<Result<Lab, String>> = OnceLock::new();

pub fn lab() -> &'static Lab {
    match LAB.get_or_init(boot) {
        Ok(lab) => lab,
        Err(e) => panic!("{e}"),
    }
}

fn boot() -> Result<Lab, String> {
    let up = Path::new(REPO).join("tests/lab/up");
    let out = Command::new(&up)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", up.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "the IPVS lab VM did not come up ({} exited with {}). It needs root and the packages \
             in LAB_PACKAGES of tests/lab/lib.sh (it installs them itself). Its output:\n{stderr}",
            up.display(),
            out.status
        ));
    }
    let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ssh_config = env
        .get("LAB_SSH_CONFIG")
        .cloned()
        .ok_or_else(|| format!("tests/lab/up printed no LAB_SSH_CONFIG:\n{stderr}"))?;
    eprintln!(
        "lab: up (boot {}s)",
        env.get("LAB_BOOT_SECONDS").map_or("?", String::as_str)
    );
    // Stop the VM when this test binary exits, even if a test panics or the binary is killed: a
    // watcher in its own session waits for this process to go away, then runs tests/lab/down.
    // A lab that was already running (reused) is left as it was.
    let reused = stderr.contains("reusing the running lab");
    if !reused && std::env::var("LAB_KEEP").as_deref() != Ok("1") {
        let down = Path::new(REPO).join("tests/lab/down");
        let watcher = format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; exec '{}' >/dev/null 2>&1",
            std::process::id(),
            down.display()
        );
        Command::new("setsid")
            .args(["sh", "-c", &watcher])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the lab watcher (setsid): {e}"))?;
    }
    let lbtop = format!("/tmp/lbtop-lab-{}", std::process::id());
    let lab = Lab { ssh_config, lbtop };
    let bin = env!("CARGO_BIN_EXE_lbtop");
    lab.run(
        "lab",
        // Test binaries run one after another: earlier copies are done with, and the VM's tmpfs
        // is small, so they go first.
        &format!(
            "rm -f /tmp/lbtop-lab-* /tmp/lbtop-test-*; cp '{bin}' {0} && chmod 755 {0}",
            lab.lbtop
        ),
    )
    .map_err(|e| format!("cannot copy lbtop into the VM: {e}"))?;
    Ok(lab)
}

impl Lab {
    /// Runs `script` with /bin/sh on `host` (`lab` is root on the router, `lab-user` an
    /// unprivileged user there).
    pub fn exec(&self, host: &str, script: &str) -> Output {
        let mut child = Command::new("timeout")
            .args(["300", "ssh", "-F", &self.ssh_config, host, "sh", "-s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("send the script");
        child.wait_with_output().expect("ssh output")
    }

    pub fn run(&self, host: &str, script: &str) -> Result<String, String> {
        let out = self.exec(host, script);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "in the lab VM ({host}) `{}` failed ({}): {}",
                script.lines().next().unwrap_or_default(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    pub fn root(&self, script: &str) -> String {
        self.run("lab", script).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `cmd` on `host` (`lab` is root on the router; `lab-user` the unprivileged user;
    /// `rs1`..`rs3` the real servers, through the router).
    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        self.exec(host, cmd)
    }

    /// The path of this test binary's copy of lbtop in the VM.
    pub fn lbtop(&self) -> &str {
        &self.lbtop
    }
}
