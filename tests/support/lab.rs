//! The real-kernel lab for integration tests: `tests/lab/up` boots it once (or reuses the one
//! running), commands run in the VM over its ssh config. The VM shares this machine's root, so the
//! `lbtop` that cargo built runs inside it as is. `scripts/test` stops the lab when the suite ends.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

pub struct Lab {
    pub ssh_config: PathBuf,
    pub boot_seconds: String,
}

static LAB: OnceLock<Result<Lab, String>> = OnceLock::new();

fn boot() -> Result<Lab, String> {
    let repo = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{repo}/tests/lab/up"))
        .current_dir(repo)
        .output()
        .map_err(|e| format!("cannot run tests/lab/up: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "tests/lab/up failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_string)
    };
    Ok(Lab {
        ssh_config: PathBuf::from(
            value("LAB_SSH_CONFIG=").ok_or("tests/lab/up printed no LAB_SSH_CONFIG")?,
        ),
        boot_seconds: value("LAB_BOOT_SECONDS=").unwrap_or_else(|| "unknown".into()),
    })
}

/// The lab, booted on first use. Panics with `up`'s output when it cannot boot.
pub fn lab() -> &'static Lab {
    match LAB.get_or_init(boot) {
        Ok(lab) => lab,
        Err(e) => panic!("the real-kernel lab did not come up: {e}"),
    }
}

impl Lab {
    /// Runs `cmd` with /bin/sh on `host` (`lab` is root on the router; `lab-user` the unprivileged
    /// user; `rs1`..`rs3` the real servers, through the router).
    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg(&self.ssh_config)
            .arg(host)
            .arg(cmd)
            .output()
            .expect("ssh runs")
    }

    /// Runs `cmd` as root on the router; panics with its output unless it succeeds.
    pub fn root(&self, cmd: &str) -> String {
        let out = self.ssh("lab", cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed in the lab ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The lbtop binary cargo built for this test run (the VM sees the same path).
    pub fn lbtop(&self) -> &'static str {
        env!("CARGO_BIN_EXE_lbtop")
    }
}
