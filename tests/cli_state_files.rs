//! What lbtop writes for itself — the audit log, the log, recordings, exports, known_hosts and
//! their directories — is its owner's alone (0600, 0700) under the usual umask 022; a refused
//! command-line action is in the audit log; a weight out of range is a usage error before the
//! router is contacted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A HOME of its own, with XDG directories that do not exist yet (lbtop creates them), and a
/// stand-in `ipvsadm` first on PATH that prints the lab's captured listings and changes nothing.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().expect("temp home");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ipvs");
        let script = format!(
            "#!/bin/sh\nf={fixtures}\ncase \" $* \" in\n\
             *' -e '*) echo 'stand-in ipvsadm changes nothing' >&2; exit 1 ;;\n\
             *' --tun-info '*) cat \"$f/ipvsadm-Ln-exact-tun-info.txt\" ;;\n\
             *' --thresholds '*) cat \"$f/ipvsadm-Ln-exact-thresholds.txt\" ;;\n\
             *' --persistent-conn '*) cat \"$f/ipvsadm-Ln-exact-persistent-conn.txt\" ;;\n\
             *) cat \"$f/ipvsadm-Ln-exact.txt\" ;;\nesac\n",
            fixtures = fixtures.display()
        );
        let ipvsadm = bin.join("ipvsadm");
        std::fs::write(&ipvsadm, script).expect("write ipvsadm");
        std::fs::set_permissions(&ipvsadm, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        Home { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs lbtop under `umask 022`, as a login shell usually sets it.
    fn lbtop(&self, args: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg("-c")
            .arg("umask 022; exec \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_lbtop"))
            .args(args)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("PATH", path)
            .env_remove("LBTOP_ROUTER")
            .stdin(Stdio::null())
            .output()
            .expect("run lbtop")
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_refused_drain_is_audited_and_the_state_files_are_the_owners_alone() {
    let home = Home::new();
    let out = home.lbtop(&[
        "drain",
        "--router",
        "local",
        "tcp:10.77.1.100:80",
        "10.77.0.99:80",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("10.77.0.99:80"), "{stderr}");

    let audit = home.path("state/lbtop/audit.jsonl");
    let log = std::fs::read_to_string(&audit).expect("the refusal is in the audit log");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let r = &lines[0];
    assert_eq!(r["action"], "drain");
    assert_eq!(r["service"], "tcp:10.77.1.100:80");
    assert_eq!(r["real"], "10.77.0.99:80");
    assert_eq!(r["new_weight"], 0);
    assert!(r["old_weight"].is_null(), "{r}");
    let result = r["result"].as_str().expect("result");
    // "no real server" from the stand-in's table; "no virtual service" where this machine's own
    // IPVS answers over netlink instead. A refusal either way, and nothing changed.
    assert!(result.starts_with("refused: "), "{result}");
    assert!(result.contains("10.77.0.99:80") || result.contains("no virtual service"));

    assert_eq!(mode(&home.path("state")), 0o700);
    assert_eq!(mode(&home.path("state/lbtop")), 0o700);
    assert_eq!(mode(&audit), 0o600);
    assert_eq!(mode(&home.path("state/lbtop/lbtop.log")), 0o600);
}

#[test]
fn a_weight_out_of_range_is_a_usage_error_before_the_router_is_contacted() {
    let home = Home::new();
    // Port 1 on loopback: nobody listens, so a connection attempt would fail with exit 1.
    let out = home.lbtop(&[
        "weight",
        "--router",
        "root@127.0.0.1:1",
        "tcp:10.77.1.100:80",
        "10.77.0.11:80",
        "70000",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("70000") && stderr.contains("0..=65535"),
        "{stderr}"
    );
    assert!(
        stderr.contains("invalid value"),
        "clap's usage error: {stderr}"
    );
    for word in ["connect", "refused", "127.0.0.1"] {
        assert!(!stderr.contains(word), "no connection attempt: {stderr}");
    }
    assert!(
        !home.path("state/lbtop/audit.jsonl").exists(),
        "bad arguments are not an action"
    );
}

#[test]
fn recordings_and_exports_are_the_owners_alone() {
    let home = Home::new();
    let rec = home.path("local.lbrec");
    let rec_s = rec.to_str().expect("utf8");
    let out = home.lbtop(&[
        "record",
        rec_s,
        "--duration",
        "600ms",
        "--nodes",
        "local",
        "--router",
        "none",
        "--interval",
        "200ms",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&rec), 0o600);

    let csv = home.path("out.csv");
    let out = home.lbtop(&[
        "replay",
        rec_s,
        "--export",
        "csv",
        "-o",
        csv.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(mode(&csv), 0o600);
}

#[test]
fn a_learned_host_key_creates_ssh_dir_0700_and_known_hosts_0600() {
    use lbtop::source::ssh::known_hosts;
    // The umask a login shell usually sets; every test in this file wants the same.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let home = Home::new();
    let path = home.path(".ssh/known_hosts");
    let key = russh::keys::PublicKey::from_openssh(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
    )
    .expect("key");
    known_hosts::learn(&path, "web1", &key, true).expect("learn");
    assert_eq!(mode(&home.path(".ssh")), 0o700, "as OpenSSH creates ~/.ssh");
    assert_eq!(mode(&path), 0o600);
}
