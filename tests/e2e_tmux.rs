//! End to end in a real terminal: the built binary runs in tmux, the screen is read back, `q`
//! quits, and the exit status is 0. tmux is installed by the README's test command.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            socket: format!("lbtop-test-{name}-{}", std::process::id()),
            dir,
        }
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux must be installed (the README's test command installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts lbtop in a 120×40 window; its exit status lands in `status` when it ends.
    fn start(&self, lbtop_args: &str) {
        let bin = env!("CARGO_BIN_EXE_lbtop");
        let d = self.dir.path().display();
        let cmd = format!(
            "env -u NO_COLOR HOME={d} XDG_CONFIG_HOME={d}/config XDG_STATE_HOME={d}/state TERM=xterm-256color \
             {bin} {lbtop_args}; echo $? > {d}/status"
        );
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    fn wait_for(&self, what: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if what(&s) || start.elapsed() > timeout {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn status_file(&self) -> PathBuf {
        self.dir.path().join("status")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn wait_exit(status: &Path, timeout: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Ok(s) = std::fs::read_to_string(status)
            && !s.trim().is_empty()
        {
            return Some(s.trim().to_string());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn live_view_of_this_machine_shows_panes_and_quits_cleanly_on_q() {
    let t = Tmux::new("live");
    t.start("--interval 300ms");
    t.wait_for(
        |s| s.contains("Nodes 1") && s.contains("LIVE"),
        Duration::from_secs(20),
    );
    // CPU percentages need two samples; give it a few intervals.
    std::thread::sleep(Duration::from_millis(1500));
    let screen = t.screen();
    assert!(screen.contains("Services"), "no services pane:\n{screen}");
    assert!(screen.contains("Nodes 1"), "no nodes pane:\n{screen}");
    assert!(screen.contains("Alerts"), "no alerts pane:\n{screen}");
    assert!(screen.contains("LIVE"), "no status line:\n{screen}");
    // This machine's kernel has no IPVS: a clear message, and the node pane keeps working.
    if !Path::new("/proc/net/ip_vs").exists() {
        assert!(
            screen.contains("IPVS is not available: modprobe ip_vs"),
            "no IPVS message:\n{screen}"
        );
    }
    assert!(
        screen.contains("nodes 1/1 ok"),
        "the local node is not ok:\n{screen}"
    );
    // Help opens and closes.
    t.run(&["send-keys", "-t", "t", "?"]);
    let help = t.wait_for(|s| s.contains("Keys"), Duration::from_secs(5));
    assert!(help.contains("Quit"), "help has no quit key:\n{help}");
    t.run(&["send-keys", "-t", "t", "Escape"]);
    t.run(&["send-keys", "-t", "t", "q"]);
    let status = wait_exit(&t.status_file(), Duration::from_secs(10));
    assert_eq!(status.as_deref(), Some("0"), "lbtop did not exit 0 on q");
}

#[test]
fn terminal_is_restored_after_quitting() {
    let t = Tmux::new("restore");
    t.start("--interval 300ms --nodes none --router none");
    t.wait_for(|s| s.contains("LIVE"), Duration::from_secs(20));
    t.run(&["send-keys", "-t", "t", "q"]);
    assert_eq!(
        wait_exit(&t.status_file(), Duration::from_secs(10)).as_deref(),
        Some("0")
    );
    // Back on the normal screen: the pane no longer shows lbtop's alternate screen.
    let after = t.screen();
    assert!(
        !after.contains("LIVE"),
        "alternate screen left behind:\n{after}"
    );
}
