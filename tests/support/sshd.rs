//! Real OpenSSH servers for the SSH tests: each host is a network namespace this test creates
//! (named `lbt<pid>n<k>`), with its own address and its own `sshd -D -e`, host key and
//! authorized_keys, so it can be cut off (link down), killed (every process in it), restarted,
//! hung (SIGSTOP) or given a new host key. The client side is an isolated HOME with generated
//! keys, known_hosts and ssh_config.
//!
//! Only addresses inside namespaces made here (10.201.0.0/16, 10.202.0.0/16, 10.203.0.0/16) and
//! the root-side ends of their veth pairs are ever used. Everything is torn down by `Drop`, also
//! when a test fails; namespaces left by a test process that was killed are removed at the next
//! start.
//!
//! Needs root, `ip` and `ss` (iproute2), `sshd` (openssh-server), `ssh-keygen`, `ssh-agent`,
//! `ssh-add` (openssh-client), `iptables`, `unshare` (util-linux). `require()` says what is missing
//! and the test is skipped (or fails under CI).

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// The only addresses these tests use, all inside namespaces they create.
pub const TEST_PREFIXES: [&str; 4] = [
    "10.201.0.0/16",
    "10.202.0.0/16",
    "10.203.0.0/16",
    "fd7b::/16",
];

/// Runs a command; panics with its output when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn quiet(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the machine can run these tests: root, and the tools. Without them a test returns
/// early with a message, unless `CI` is set, where it fails.
pub fn require() -> bool {
    let mut missing = Vec::new();
    for tool in [
        SSHD,
        "/usr/bin/ssh-keygen",
        "/usr/bin/ssh-agent",
        "/usr/bin/ssh-add",
        "/usr/sbin/iptables",
    ] {
        if !Path::new(tool).exists() {
            missing.push(tool.to_string());
        }
    }
    if !quiet("ip", &["-V"]) {
        missing.push("ip (iproute2)".into());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        missing.push("root (network namespaces)".into());
    }
    if missing.is_empty() {
        cleanup_stale();
        return true;
    }
    let msg = format!("SSH tests need: {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// Removes namespaces of test processes that are gone, and makes sure the test prefixes never
/// leave this machine.
fn cleanup_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = std::fs::create_dir_all("/run/sshd");
        // When a test cuts a link or removes a namespace, its /24 route goes away; without these,
        // a connection still being retried would follow the default route off this machine.
        // They are idempotent and left in place (another test process may be relying on them).
        for prefix in TEST_PREFIXES {
            let _ = quiet("ip", &["route", "replace", "unreachable", prefix]);
        }
        let list = Command::new("ip").args(["netns", "list"]).output();
        let Ok(list) = list else { return };
        for line in String::from_utf8_lossy(&list.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("lbt") else {
                continue;
            };
            let Some(pid) = rest.split('n').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                kill_netns_pids(name, "KILL");
                let _ = quiet("ip", &["netns", "del", name]);
            }
        }
    });
}

fn netns_pids(ns: &str) -> Vec<String> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `signal` to every process in the namespace.
fn kill_netns_pids(ns: &str, signal: &str) -> usize {
    let pids = netns_pids(ns);
    if !pids.is_empty() {
        let script = format!("kill -{signal} {} 2>/dev/null; true", pids.join(" "));
        let _ = quiet("sh", &["-c", &script]);
    }
    pids.len()
}

static NEXT: AtomicU32 = AtomicU32::new(1);
/// `ip` link and address changes of parallel tests are serialised (iproute2 is not always happy
/// with concurrent netlink changes to the same namespace list).
static IP_LOCK: Mutex<()> = Mutex::new(());

fn ip(args: &[&str]) {
    let _g = IP_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    run("ip", args);
}

/// A network namespace with a veth pair to its parent (the root namespace, or another one).
pub struct Netns {
    pub name: String,
    /// The parent's end of the veth pair.
    pub outer_if: String,
    pub outer_ns: Option<String>,
    pub inner_if: String,
    /// The address inside.
    pub addr: Ipv4Addr,
    pub outer_addr: Ipv4Addr,
}

impl Netns {
    /// A namespace whose inner end has `base.2` (and `extra` more addresses `base.10…`), the outer
    /// end `base.1`; `base` is the first three octets. `outer_ns` is `None` for the root namespace.
    pub fn new(base: [u8; 3], outer_ns: Option<&str>, extra: u8) -> Netns {
        let k = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("lbt{pid}n{k}");
        let short = pid % 100_000;
        let outer_if = format!("lb{short}o{k}");
        let inner_if = format!("lb{short}i{k}");
        let addr = Ipv4Addr::new(base[0], base[1], base[2], 2);
        let outer_addr = Ipv4Addr::new(base[0], base[1], base[2], 1);
        let ns = Netns {
            name: name.clone(),
            outer_if: outer_if.clone(),
            outer_ns: outer_ns.map(String::from),
            inner_if: inner_if.clone(),
            addr,
            outer_addr,
        };
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        match outer_ns {
            None => ip(&[
                "link", "add", &outer_if, "type", "veth", "peer", "name", &inner_if, "netns", &name,
            ]),
            Some(o) => ip(&[
                "-n", o, "link", "add", &outer_if, "type", "veth", "peer", "name", &inner_if,
                "netns", &name,
            ]),
        }
        let outer = |args: &[&str]| {
            let mut all: Vec<&str> = Vec::new();
            if let Some(o) = outer_ns {
                all.extend(["-n", o]);
            }
            all.extend_from_slice(args);
            ip(&all);
        };
        outer(&["addr", "add", &format!("{outer_addr}/24"), "dev", &outer_if]);
        outer(&["link", "set", &outer_if, "up"]);
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &inner_if,
        ]);
        for i in 0..extra {
            let a = Ipv4Addr::new(base[0], base[1], base[2], 10 + i);
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{a}/24"),
                "dev",
                &inner_if,
            ]);
        }
        ip(&["-n", &name, "link", "set", &inner_if, "up"]);
        ns
    }

    /// Cuts the link (the parent's end goes down) or restores it.
    pub fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        match &self.outer_ns {
            None => ip(&["link", "set", &self.outer_if, state]),
            Some(o) => ip(&["-n", o, "link", "set", &self.outer_if, state]),
        }
    }

    /// Gives the namespace an IPv6 address too (`fd7b:<2nd>:<3rd>::2/64`, this side `::1`) and
    /// returns it.
    pub fn add_v6(&self) -> String {
        let o = self.addr.octets();
        let net = format!("fd7b:{:x}:{:x}", o[1], o[2]);
        let (inner, outer) = (format!("{net}::2"), format!("{net}::1"));
        let outer_cmd = |args: &[&str]| {
            let mut all: Vec<&str> = Vec::new();
            if let Some(ns) = &self.outer_ns {
                all.extend(["-n", ns.as_str()]);
            }
            all.extend_from_slice(args);
            ip(&all);
        };
        outer_cmd(&[
            "-6",
            "addr",
            "add",
            &format!("{outer}/64"),
            "dev",
            &self.outer_if,
            "nodad",
        ]);
        ip(&[
            "-n",
            &self.name,
            "-6",
            "addr",
            "add",
            &format!("{inner}/64"),
            "dev",
            &self.inner_if,
            "nodad",
        ]);
        inner
    }

    /// Drops every packet that comes in (iptables inside the namespace): a silent cut, no error
    /// reaches the sender. `false` lets them in again.
    pub fn blackhole(&self, on: bool) {
        let op = if on { "-I" } else { "-D" };
        run(
            "ip",
            &[
                "netns", "exec", &self.name, "iptables", op, "INPUT", "-j", "DROP",
            ],
        );
    }

    pub fn signal_all(&self, signal: &str) -> usize {
        kill_netns_pids(&self.name, signal)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        kill_netns_pids(&self.name, "CONT");
        kill_netns_pids(&self.name, "KILL");
        let _g = IP_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let _ = quiet("ip", &["netns", "del", &self.name]);
        if self.outer_ns.is_none() {
            let _ = quiet("ip", &["link", "del", &self.outer_if]);
        }
    }
}

/// Generates a key with ssh-keygen; `passphrase` empty for none.
pub fn keygen(path: &Path, kind: &str, passphrase: &str, comment: &str) {
    let p = path.to_string_lossy().to_string();
    run(
        "ssh-keygen",
        &["-q", "-t", kind, "-N", passphrase, "-C", comment, "-f", &p],
    );
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The client side: an isolated HOME with `~/.ssh/id_ed25519`, an empty known_hosts and config.
pub struct Client {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    pub config: PathBuf,
}

impl Client {
    pub fn new() -> Client {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let ssh = home.join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir");
        let key = ssh.join("id_ed25519");
        keygen(&key, "ed25519", "", "lbtop-test");
        let known_hosts = ssh.join("known_hosts");
        let config = ssh.join("config");
        std::fs::write(&known_hosts, "").expect("write");
        std::fs::write(&config, "").expect("write");
        Client {
            dir,
            home,
            key,
            known_hosts,
            config,
        }
    }

    pub fn public_key(&self) -> String {
        read(&self.key.with_extension("pub"))
    }

    /// Records a server's host key for `name` (`[addr]:port` form when needed), as OpenSSH does.
    pub fn trust(&self, name: &str, server: &Sshd) {
        let key = read(&server.host_key_pub());
        let mut f = read(&self.known_hosts);
        f.push_str(&format!("{name} {}", key.trim()));
        f.push('\n');
        std::fs::write(&self.known_hosts, f).expect("write known_hosts");
    }
}

/// One sshd in a namespace (or on loopback with `ns` = None).
pub struct Sshd {
    pub dir: PathBuf,
    pub ns: Option<String>,
    pub addr: String,
    pub port: u16,
    pub authorized_keys: PathBuf,
    host_key: PathBuf,
    key_generation: u32,
    child: Option<Child>,
    extra: String,
    /// Root logs in to its real home (this machine's `/root`, rc files and all).
    real_home: bool,
    /// sshd is the init of a PID namespace of its own (see [`Sshd::with_accounting`]).
    accounting: bool,
}

impl Sshd {
    /// Prepares (does not start) an sshd for `addr:port` in `ns`, trusting `client`'s key.
    pub fn new(dir: &Path, ns: Option<&str>, addr: &str, port: u16, client: &Client) -> Sshd {
        std::fs::create_dir_all(dir).expect("mkdir");
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, client.public_key()).expect("write");
        let mut s = Sshd {
            dir: dir.to_path_buf(),
            ns: ns.map(String::from),
            addr: addr.to_string(),
            port,
            authorized_keys,
            host_key: PathBuf::new(),
            key_generation: 0,
            child: None,
            extra: String::new(),
            real_home: false,
            accounting: false,
        };
        s.new_host_key();
        s
    }

    /// Extra sshd_config lines (e.g. a ForceCommand), for the next start.
    pub fn with_config(mut self, extra: &str) -> Sshd {
        self.extra = extra.to_string();
        self
    }

    /// A new host key, used from the next start on.
    pub fn new_host_key(&mut self) {
        self.key_generation += 1;
        self.host_key = self.dir.join(format!("host_key_{}", self.key_generation));
        keygen(&self.host_key, "ed25519", "", "host");
    }

    pub fn host_key_pub(&self) -> PathBuf {
        self.host_key.with_extension("pub")
    }

    fn config_text(&self) -> String {
        format!(
            "Port {port}\nListenAddress {addr}\nHostKey {key}\nPidFile none\n\
             AuthorizedKeysFile {ak}\nPermitRootLogin prohibit-password\nUsePAM no\n\
             StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowTcpForwarding yes\nAllowAgentForwarding no\nX11Forwarding no\nPrintMotd no\n\
             MaxStartups 500\nMaxSessions 50\nLogLevel ERROR\nSubsystem sftp internal-sftp\n{extra}\n",
            port = self.port,
            addr = self.addr,
            key = self.host_key.display(),
            ak = self.authorized_keys.display(),
            extra = self.extra,
        )
    }

    /// From the next start on, root logs in to its REAL home: no empty directory is mounted over
    /// /root, so this machine's own `/root/.bashrc` (and whatever it runs) is read by bash for
    /// every SSH command, as on a real node. Only the ssh config's `AuthorizedKeysFile` is the
    /// test's; nothing in /root is written.
    pub fn with_real_home(mut self) -> Sshd {
        self.real_home = true;
        self
    }

    /// From the next start on, sshd runs as the init (PID 1) of a PID namespace of its own, with
    /// a /proc of its own (`unshare --pid --fork --mount-proc`). Every process of every
    /// connection is then reaped into the listener — even a shell that outlives its
    /// per-connection sshd, which is reparented to PID 1 — so [`Sshd::reaped_cpu_ticks`] is the
    /// whole CPU cost of the connections, and [`Sshd::pids_used`] counts every process started.
    pub fn with_accounting(mut self) -> Sshd {
        self.accounting = true;
        self
    }

    /// The home root logs in to when not [`Sshd::with_real_home`] (mounted over /root).
    pub fn server_home(&self) -> PathBuf {
        self.dir.join("server-home")
    }

    /// Writes `.bashrc` into the server home. Debian's bash reads `~/.bashrc` when sshd starts
    /// it for a command (it sees `SSH_CLIENT`), so this runs at every exec, as pyenv, conda or nvm
    /// init lines do on real machines.
    pub fn write_bashrc(&self, text: &str) {
        let home = self.server_home();
        std::fs::create_dir_all(&home).expect("mkdir");
        std::fs::write(home.join(".bashrc"), text).expect("write .bashrc");
    }

    /// Starts sshd and waits until it accepts connections (bounded).
    pub fn start(&mut self) {
        self.reap();
        let cfg = self.dir.join("sshd_config");
        std::fs::write(&cfg, self.config_text()).expect("write sshd_config");
        let cfg = cfg.to_string_lossy().to_string();
        let mut argv: Vec<String> = Vec::new();
        if self.accounting {
            // `--kill-child`: when unshare goes, so does sshd and everything below it.
            argv.extend(
                ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"].map(String::from),
            );
        }
        argv.extend([SSHD, "-D", "-e", "-f", &cfg].map(String::from));
        if !self.real_home {
            // The server side gets its own HOME too: root's home is bind-mounted over by a
            // directory of the test in a private mount namespace, so no login script of this
            // machine runs.
            let home = self.server_home();
            std::fs::create_dir_all(&home).expect("mkdir");
            let script = "mount --bind \"$1\" /root && shift && exec \"$@\"";
            let mut wrapped: Vec<String> = ["sh", "-c", script, "sh"].map(String::from).to_vec();
            wrapped.push(home.to_string_lossy().to_string());
            wrapped.append(&mut argv);
            argv = wrapped;
            if self.ns.is_none() {
                // `ip netns exec` makes a mount namespace; on loopback, unshare does.
                let mut u: Vec<String> = ["unshare", "-m", "--propagation", "private"]
                    .map(String::from)
                    .to_vec();
                u.append(&mut argv);
                argv = u;
            }
        }
        if let Some(ns) = &self.ns {
            let mut n: Vec<String> = ["ip", "netns", "exec", ns.as_str()]
                .map(String::from)
                .to_vec();
            n.append(&mut argv);
            argv = n;
        }
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let log = std::fs::File::create(self.dir.join("sshd.log")).expect("log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        self.child = Some(child);
        self.wait_listening();
    }

    /// The listening sshd's process id (in this machine's PID namespace).
    pub fn listener_pid(&self) -> Option<u32> {
        let started = self.child.as_ref()?.id();
        if !self.accounting {
            // `ip netns exec`, `unshare -m` and `sh -c … exec` all exec: the child is sshd.
            return Some(started);
        }
        // unshare forked: sshd is its child.
        children_of(started)
            .into_iter()
            .find(|&p| proc_comm(p).as_deref() == Some("sshd"))
    }

    /// What the listener has reaped from its children so far: `cutime + cstime` (fields 16
    /// and 17 of `/proc/PID/stat`), in clock ticks. A child's time lands here when it is reaped,
    /// and it includes what that child reaped from its own: the per-connection sshd, its
    /// privilege-separated child and the shell and every process the shell started.
    pub fn reaped_cpu_ticks(&self) -> u64 {
        let pid = self.listener_pid().expect("sshd runs");
        let f = stat_fields(pid).expect("listener's /proc/PID/stat");
        let at = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // Fields counted from 1, the first two (pid, comm) already split off.
        at(16 - 3) + at(17 - 3)
    }

    /// Waits until the listener has no child left (every connection closed and reaped); `false`
    /// after `limit`.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let Some(pid) = self.listener_pid() else {
            return false;
        };
        wait_for(limit, || children_of(pid).is_empty().then_some(())).is_some()
    }

    /// The last process id handed out in sshd's PID namespace (with [`Sshd::with_accounting`]):
    /// the difference between two readings, less one for the reading itself, is how many
    /// processes the node started in between.
    pub fn pids_used(&self) -> u64 {
        assert!(self.accounting, "pids_used needs with_accounting");
        let pid = self.listener_pid().expect("sshd runs").to_string();
        // The reader's own pid in that namespace is the last one handed out.
        run("nsenter", &["-t", &pid, "-p", "--", "sh", "-c", "echo $$"])
            .trim()
            .parse()
            .expect("a pid")
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = format!("exec 3<>/dev/tcp/{}/{}", self.addr, self.port);
        while Instant::now() < deadline {
            let ok = match &self.ns {
                Some(ns) => quiet("ip", &["netns", "exec", ns, "bash", "-c", &probe]),
                None => quiet("bash", &["-c", &probe]),
            };
            if ok {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "sshd exited ({status}): {}",
                    read(&self.dir.join("sshd.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "sshd did not listen on {}:{} within 10s",
            self.addr, self.port
        );
    }

    fn reap(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every sshd process of this host (listener and per-connection ones).
    pub fn kill_all(&mut self) {
        // On loopback only the listener is ours to kill; its connections end with their clients.
        if let Some(ns) = &self.ns {
            kill_netns_pids(ns, "CONT");
            kill_netns_pids(ns, "KILL");
        }
        self.reap();
    }

    /// Stops (SIGSTOP) or resumes (SIGCONT) every process of this host.
    pub fn freeze(&self, stop: bool) {
        if let Some(ns) = &self.ns {
            kill_netns_pids(ns, if stop { "STOP" } else { "CONT" });
        }
    }

    pub fn spec(&self) -> String {
        if self.port == 22 {
            format!("root@{}", self.addr)
        } else {
            format!("root@{}:{}", self.addr, self.port)
        }
    }

    /// The known_hosts name of this server.
    pub fn known_name(&self) -> String {
        if self.port == 22 {
            self.addr.clone()
        } else {
            format!("[{}]:{}", self.addr, self.port)
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Polls `f` every 20 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

static SUBNET: AtomicU32 = AtomicU32::new(0);

/// A /24 under `10.<second>.`, different for each call in this process and (very likely) from
/// other test processes running at the same time.
pub fn subnet(second: u8) -> [u8; 3] {
    let n = SUBNET.fetch_add(1, Ordering::SeqCst);
    let third = (std::process::id().wrapping_mul(37).wrapping_add(n)) % 250 + 1;
    [10, second, third as u8]
}

/// A host: a namespace and its sshd on port 22.
pub struct Host {
    pub sshd: Sshd,
    pub ns: Netns,
}

impl Host {
    /// A namespace under `parent` (the root namespace when `None`) with a started sshd.
    pub fn new(client: &Client, second: u8, parent: Option<&str>, extra_config: &str) -> Host {
        Host::with_sshd(client, second, parent, extra_config, |s| s)
    }

    /// The same, with `prepare` applied to the sshd before it starts (a real home, accounting,
    /// an rc file).
    pub fn with_sshd(
        client: &Client,
        second: u8,
        parent: Option<&str>,
        extra_config: &str,
        prepare: impl FnOnce(Sshd) -> Sshd,
    ) -> Host {
        let ns = Netns::new(subnet(second), parent, 0);
        let dir = client.dir.path().join(&ns.name);
        let mut sshd = prepare(
            Sshd::new(&dir, Some(&ns.name), &ns.addr.to_string(), 22, client)
                .with_config(extra_config),
        );
        sshd.start();
        Host { sshd, ns }
    }

    pub fn addr(&self) -> String {
        self.ns.addr.to_string()
    }
}

/// The client and `n` hosts reachable from the root namespace, their keys known.
pub struct Cluster {
    pub hosts: Vec<Host>,
    pub client: Client,
}

impl Cluster {
    pub fn new(n: usize) -> Cluster {
        let client = Client::new();
        let hosts: Vec<Host> = (0..n).map(|_| Host::new(&client, 201, None, "")).collect();
        for h in &hosts {
            client.trust(&h.addr(), &h.sshd);
        }
        Cluster { hosts, client }
    }
}

/// The fields of `/proc/PID/stat` after the command name (from field 3, the state, on).
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, tail) = stat.rsplit_once(')')?;
    Some(tail.split_whitespace().map(String::from).collect())
}

/// A process's command name.
pub fn proc_comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}

/// The processes (zombies included) whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let ppid = pid.to_string();
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|&p| stat_fields(p).is_some_and(|f| f.get(1) == Some(&ppid)))
        .collect()
}

/// A `.bashrc` that starts `processes` short processes, each a real fork and exec as the init
/// lines of pyenv, conda or nvm are, after appending a line to `marker` (so a test can count
/// how many times bash read it).
pub fn heavy_bashrc(processes: usize, marker: &Path) -> String {
    let mut s = format!(
        "# lbtop test: a login user's heavy rc file\necho rc >>'{}'\n",
        marker.display()
    );
    for _ in 0..processes {
        s.push_str("_lbtop_rc=$(/bin/true)\n");
    }
    s
}
