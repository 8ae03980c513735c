//! The real-kernel lab for integration tests: `tests/lab/up` boots it on first use, and every
//! later test binary reuses it; `scripts/test` stops it when the suite ends (`tests/lab/down` by
//! hand). The VM
//! shares this machine's root read-only; each test binary runs its own copy of the `lbtop` cargo
//! built, in the VM's tmpfs (a binary rebuilt on the host while the VM has it mapped through 9p can
//! run stale pages and crash).
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

/// Where the tests install lbtop on the lab router for `--router-agent` (the lab user may run
/// `AGENT agent` through `sudo -n`, as the README's sudoers line allows).
pub const AGENT: &str = "/opt/lbtop/lbtop";

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
    // The VM stays up for the next test binary (they run one after another); `scripts/test`
    // stops it when the suite ends, and `tests/lab/down` stops it by hand. A per-binary stop would
    // race the next binary's `tests/lab/up`, which reuses a running lab.
    let lbtop = format!("/tmp/lbtop-lab-{}", std::process::id());
    let lab = Lab { ssh_config, lbtop };
    let bin = env!("CARGO_BIN_EXE_lbtop");
    lab.run(
        "lab",
        // Test binaries run one after another: earlier copies are done with, and the VM's tmpfs
        // is small, so they go first.
        &format!(
            "rm -f /tmp/lbtop-lab-* /tmp/lbtop-test-*; cp '{bin}' {0} && chmod 755 {0} && \
             mkdir -p /opt/lbtop && cp {0} {AGENT}.new && mv -f {AGENT}.new {AGENT}",
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

    /// lbtop's control of the lab router over SSH from this machine, as `--router HOST -F` the
    /// lab's ssh config makes it (`lab` logs in as root, `lab-user` goes through `sudo -n`).
    pub fn ssh_control(&self, host: &str) -> lbtop::control::ssh::SshControl {
        let ssh = lbtop::source::ssh::SshArgs {
            config_file: Some(self.ssh_config.clone().into()),
            options: Vec::new(),
        };
        match lbtop::control::AnyControl::for_router(
            &lbtop::cli::RouterSpec::Remote(host.into()),
            &ssh,
            lbtop::source::remote::SudoMode::Auto,
            std::time::Duration::from_secs(1),
        ) {
            Ok(Some(lbtop::control::AnyControl::Ssh(c))) => *c,
            other => panic!("no SSH control for the lab's {host}: {other:?}"),
        }
    }

    /// The path of this test binary's copy of lbtop in the VM.
    pub fn lbtop(&self) -> &str {
        &self.lbtop
    }
}
