//! lbtop in a real terminal: the built binary runs in its own tmux server (a socket per test),
//! keys are sent, the screen is read back, and the exit status is collected.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
    dir: tempfile::TempDir,
}

impl Tmux {
    pub fn new(name: &str) -> Self {
        Self {
            socket: format!("lbtop-test-{name}-{}", std::process::id()),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux must be installed (the README's test command installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts lbtop in a 120×40 window, in the temp dir; its exit status lands in `status`.
    pub fn start(&self, lbtop_args: &str) {
        let bin = env!("CARGO_BIN_EXE_lbtop");
        let d = self.dir.path().display();
        let cmd = format!(
            "env -u NO_COLOR HOME={d} XDG_CONFIG_HOME={d}/config XDG_STATE_HOME={d}/state \
             XDG_DATA_HOME={d}/data TERM=xterm-256color {bin} {lbtop_args}; echo $? > {d}/status"
        );
        let dir = d.to_string();
        self.run(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            &dir,
            &cmd,
        ]);
    }

    pub fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", "t", keys]);
    }

    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    pub fn wait_for(&self, what: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if what(&s) || start.elapsed() > timeout {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn exit_status(&self, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(s) = std::fs::read_to_string(self.dir.path().join("status"))
                && !s.trim().is_empty()
            {
                return Some(s.trim().to_string());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
