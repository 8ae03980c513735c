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
        self.start_then("", lbtop_args, "");
    }

    /// Like `start`, with more `NAME=value` settings (the shell expands them: `PATH=x:$PATH`).
    pub fn start_with_env(&self, env: &str, lbtop_args: &str) {
        self.start_then(env, lbtop_args, "");
    }

    /// Like `start`, and once lbtop has exited the pane stays open: `stty -a` run in it lands in
    /// `stty` (read it with `stty_after_exit`), so the terminal lbtop left behind can be checked.
    pub fn start_keeping_pane(&self, lbtop_args: &str) {
        let d = self.dir.path().display();
        self.start_then(
            "",
            lbtop_args,
            &format!("; stty -a > {d}/stty.tmp 2>&1; mv {d}/stty.tmp {d}/stty; exec sleep 600"),
        );
    }

    fn start_then(&self, env: &str, lbtop_args: &str, then: &str) {
        let bin = env!("CARGO_BIN_EXE_lbtop");
        let d = self.dir.path().display();
        let cmd = format!(
            "env -u NO_COLOR HOME={d} XDG_CONFIG_HOME={d}/config XDG_STATE_HOME={d}/state \
             XDG_DATA_HOME={d}/data TERM=xterm-256color {env} {bin} {lbtop_args}; \
             echo $? > {d}/status{then}"
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

    /// The process id of lbtop, a child of the pane's shell; waits up to `timeout` for it.
    pub fn lbtop_pid(&self, timeout: Duration) -> Option<u32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let shell: Option<u32> = self
                .run(&["display", "-p", "-t", "t", "#{pane_pid}"])
                .trim()
                .parse()
                .ok();
            if let Some(shell) = shell
                && let Some(pid) = child_named(shell, "lbtop")
            {
                return Some(pid);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// `stty -a` as run in the pane after lbtop exited (`start_keeping_pane`), waited for.
    pub fn stty_after_exit(&self, timeout: Duration) -> Option<String> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(s) = std::fs::read_to_string(self.dir.path().join("stty")) {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
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

/// A child of `parent` whose command name is `name`, from /proc.
fn child_named(parent: u32, name: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if comm == name && ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            return Some(pid);
        }
    }
    None
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
