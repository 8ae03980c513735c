//! Files that are not files: a FIFO (which a reader waits on forever) or an endless device given
//! where lbtop reads or writes a file is refused at once with the path and what it is, and `q`
//! quits whatever a file turned out to be.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lbtop::model::sample::Timestamp;
use support::bounded::lbtop_within;
use support::tmux::Tmux;

const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-root-lab");

fn fifo(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    path
}

/// `lbtop args` exits 2 within 20 s and says `{path}: not a regular file ({what})`.
fn refused(args: &[&str], path: &Path, what: &str) {
    let run = lbtop_within(args, Duration::from_secs(20));
    let status = run.finished();
    assert_eq!(status.code(), Some(2), "{args:?}: {}", run.stderr);
    let said = format!("{}: not a regular file ({what})", path.display());
    assert!(run.stderr.contains(&said), "{args:?}: {}", run.stderr);
}

#[test]
fn a_fifo_or_a_device_as_the_theme_or_the_config_is_refused_naming_it() {
    let d = tempfile::tempdir().expect("dir");
    let f = fifo(d.path(), "theme.toml");
    let fs = f.to_str().expect("utf8");
    let once = ["--once", "--json", "--router", "none", "--nodes", "none"];
    refused(&[&["--theme", fs][..], &once].concat(), &f, "a FIFO");
    refused(&[&["--config", fs][..], &once].concat(), &f, "a FIFO");
    let zero = Path::new("/dev/zero");
    refused(
        &[&["--config", "/dev/zero"][..], &once].concat(),
        zero,
        "a character device",
    );
    // A config file naming a FIFO as its theme.
    let config = d.path().join("config.toml");
    std::fs::write(&config, format!("theme = {fs:?}\n")).expect("config");
    refused(
        &[&["--config", config.to_str().expect("utf8")][..], &once].concat(),
        &f,
        "a FIFO",
    );
}

#[test]
fn a_fifo_as_a_host_list_or_an_ssh_config_is_refused_naming_it() {
    let d = tempfile::tempdir().expect("dir");
    let f = fifo(d.path(), "hosts");
    let fs = f.to_str().expect("utf8");
    let at = format!("@{fs}");
    refused(
        &["--once", "--json", "--router", "none", "--nodes", &at],
        &f,
        "a FIFO",
    );
    // Loopback port 1: nothing is contacted if the config were read.
    let run = lbtop_within(
        &[
            "--once",
            "--json",
            "--router",
            "none",
            "-F",
            fs,
            "--nodes",
            "root@127.0.0.1:1",
        ],
        Duration::from_secs(20),
    );
    assert_eq!(run.finished().code(), Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("ssh config {fs}: not a regular file (a FIFO)")),
        "{}",
        run.stderr
    );
}

#[test]
fn replaying_a_fifo_or_recording_into_one_is_refused_naming_it() {
    let d = tempfile::tempdir().expect("dir");
    let f = fifo(d.path(), "session.lbrec");
    let fs = f.to_str().expect("utf8");
    refused(&["replay", fs, "--export", "json"], &f, "a FIFO");
    refused(
        &["replay", "/dev/zero", "--export", "json"],
        Path::new("/dev/zero"),
        "a character device",
    );
    refused(
        &[
            "record",
            fs,
            "--duration",
            "1s",
            "--router",
            "none",
            "--nodes",
            "none",
        ],
        &f,
        "a FIFO",
    );
}

/// The lab snapshot in `dir`, with `stat` a FIFO.
fn lab_with_a_fifo_stat(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for rel in [
        "loadavg",
        "meminfo",
        "uptime",
        "net/ip_vs",
        "net/ip_vs_stats",
    ] {
        let to = root.join(rel);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(Path::new(LAB).join(rel), to).expect("copy");
    }
    fifo(&root, "stat");
    root
}

#[test]
fn q_quits_the_live_view_while_a_snapshot_file_is_a_fifo() {
    let t = Tmux::new("fifo-stat");
    let root = lab_with_a_fifo_stat(t.path());
    t.start(&format!(
        "--interval 300ms --router local --nodes local --proc-root {}",
        root.display()
    ));
    let s = t.wait_for(
        |s| s.contains("not a regular file"),
        Duration::from_secs(20),
    );
    assert!(s.contains("not a regular file (a FIFO)"), "{s}");
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(20)).as_deref(), Some("0"));
}

/// FIFOs under the names `R` would give a recording over the next `seconds`, released on drop
/// (a writer waiting on one is let go) whatever the test's outcome.
struct FifoNames(Vec<PathBuf>);

impl FifoNames {
    fn ahead(dir: &Path, seconds: i64) -> Self {
        let now = Timestamp::now().0;
        let names: std::collections::BTreeSet<String> = (-2..=seconds)
            .map(|s| lbtop::record::default_file_name(Timestamp(now + s * 1000)))
            .collect();
        Self(names.iter().map(|n| fifo(dir, n)).collect())
    }
}

impl Drop for FifoNames {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        for p in &self.0 {
            let _ = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(p);
        }
    }
}

#[test]
fn r_refuses_a_fifo_under_the_recordings_name_and_q_still_quits() {
    let t = Tmux::new("fifo-rec");
    let _fifos = FifoNames::ahead(t.path(), 90);
    t.start("--interval 300ms --router none");
    t.wait_for(|s| s.contains("LIVE"), Duration::from_secs(20));
    t.keys("R");
    let s = t.wait_for(
        |s| s.contains("cannot record") && s.contains("not a regular file"),
        Duration::from_secs(10),
    );
    assert!(s.contains("not a regular file (a FIFO)"), "{s}");
    t.keys("Escape");
    std::thread::sleep(Duration::from_millis(300));
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(20)).as_deref(), Some("0"));
}

#[test]
fn a_fifo_as_the_log_or_the_export_file_never_freezes_lbtop() {
    let d = tempfile::tempdir().expect("dir");
    let log = fifo(d.path(), "lbtop.log");
    let out = fifo(d.path(), "out.json");
    // The log is not essential: lbtop runs without it, at once.
    let run = lbtop_within(
        &[
            "--log-file",
            log.to_str().expect("utf8"),
            "--once",
            "--json",
            "--router",
            "none",
            "--nodes",
            "local",
        ],
        Duration::from_secs(20),
    );
    assert!(run.finished().success(), "{}", run.stderr);
    assert!(run.stdout.contains("\"schema\":1"), "{}", run.stdout);
    // An export into a FIFO that nothing reads is an error naming it.
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.lbrec");
    let run = lbtop_within(
        &[
            "replay",
            demo,
            "--export",
            "json",
            "-o",
            out.to_str().expect("utf8"),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(run.finished().code(), Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("{}", out.display()))
            && run.stderr.contains("a FIFO that nothing reads"),
        "{}",
        run.stderr
    );
}
