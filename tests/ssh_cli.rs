//! `lbtop --once --json` with nodes over SSH, against real sshd in network namespaces: known_hosts
//! strictness and learning, the agent through `SSH_AUTH_SOCK`, an encrypted key without an agent,
//! `~/.ssh/config` and `-F`, host lists, and a bounded run when a host hangs.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::sshd::{Client, Cluster, Host, run};

struct Run {
    json: Value,
    stderr: String,
    log: String,
    took: Duration,
}

/// Runs lbtop with `client`'s HOME; `env` adds variables (SSH_AUTH_SOCK is removed unless given).
fn lbtop(client: &Client, args: &[&str], env: &[(&str, &str)]) -> Run {
    let log = client.dir.path().join(format!(
        "lbtop-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    ));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lbtop"));
    cmd.args([
        "--once",
        "--json",
        "--router",
        "none",
        "--interval",
        "300ms",
    ])
    .args(["--log-file", &log.to_string_lossy()])
    .args(args)
    .env("HOME", &client.home)
    .env("XDG_CONFIG_HOME", client.dir.path().join("xdg-config"))
    .env("XDG_STATE_HOME", client.dir.path().join("xdg-state"))
    .env_remove("SSH_AUTH_SOCK")
    .env("USER", "root");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.stdin(Stdio::null()).output().expect("run lbtop");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    Run {
        json: serde_json::from_slice(&out.stdout).expect("JSON on stdout"),
        stderr,
        log: support::sshd::read(&log),
        took,
    }
}

fn node<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {v}"))
}

fn fingerprint(pubkey: &Path) -> String {
    run("ssh-keygen", &["-l", "-f", &pubkey.to_string_lossy()])
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

#[test]
fn an_unknown_host_key_is_refused_and_logged_then_learned_with_accept_new() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let host = Host::new(&client, 201, None, "");
    let cfg = client.config.to_string_lossy().to_string();
    let fp = fingerprint(&host.sshd.host_key_pub());
    let spec = host.sshd.spec();

    let r = lbtop(&client, &["-F", &cfg, "--nodes", &spec], &[]);
    let n = node(&r.json, &host.addr());
    assert_eq!(n["status"], "host-key-unknown", "{}", r.json);
    let error = n["error"].as_str().expect("error");
    assert!(error.contains(&fp), "{error} lacks {fp}");
    assert!(error.contains("accept-new"), "{error}");
    assert!(r.log.contains(&fp), "the log lacks {fp}: {}", r.log);
    assert_eq!(
        support::sshd::read(&client.known_hosts),
        "",
        "known_hosts was touched"
    );

    // HashKnownHosts as Debian's /etc/ssh/ssh_config sets it: OpenSSH must find what we wrote.
    let r = lbtop(
        &client,
        &[
            "-F",
            &cfg,
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            "HashKnownHosts=yes",
            "--nodes",
            &spec,
        ],
        &[],
    );
    assert_eq!(node(&r.json, &host.addr())["status"], "ok", "{}", r.json);
    let known = support::sshd::read(&client.known_hosts);
    assert!(known.starts_with("|1|"), "not hashed: {known}");
    assert!(!known.contains(&host.addr()));
    let found = run(
        "ssh-keygen",
        &[
            "-F",
            &host.addr(),
            "-f",
            &client.known_hosts.to_string_lossy(),
        ],
    );
    assert!(found.contains("ssh-ed25519"), "ssh-keygen -F: {found}");
    assert!(
        r.log.contains(&fp),
        "learning is logged with the fingerprint: {}",
        r.log
    );

    // Now known: the default (strict) run connects.
    let r = lbtop(&client, &["-F", &cfg, "--nodes", &spec], &[]);
    assert_eq!(node(&r.json, &host.addr())["status"], "ok");
    assert!(
        node(&r.json, &host.addr())["cpu_total_percent"].is_number(),
        "{}",
        r.json
    );
}

#[test]
fn accept_new_without_a_ssh_directory_creates_it_0700_and_known_hosts_0600() {
    use std::os::unix::fs::PermissionsExt;
    if !support::sshd::require() {
        return;
    }
    // The umask a login shell usually sets (lbtop inherits it); the other tests here want it too.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let client = Client::new();
    let host = Host::new(&client, 201, None, "");
    // The key and the config move out of ~/.ssh, and ~/.ssh goes: lbtop must make it.
    let key = client.dir.path().join("id_ed25519");
    std::fs::rename(&client.key, &key).expect("move key");
    let cfg = client.dir.path().join("ssh_config");
    std::fs::write(&cfg, format!("IdentityFile {}\n", key.display())).expect("config");
    let ssh = client.home.join(".ssh");
    std::fs::remove_dir_all(&ssh).expect("rm ~/.ssh");

    let r = lbtop(
        &client,
        &[
            "-F",
            &cfg.to_string_lossy(),
            "-o",
            "StrictHostKeyChecking=accept-new",
            "--nodes",
            &host.sshd.spec(),
        ],
        &[],
    );
    assert_eq!(node(&r.json, &host.addr())["status"], "ok", "{}", r.json);
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&ssh), 0o700, "~/.ssh as OpenSSH makes it");
    assert_eq!(mode(&ssh.join("known_hosts")), 0o600);
    assert!(support::sshd::read(&ssh.join("known_hosts")).contains("ssh-ed25519"));
}

#[test]
fn openssh_written_known_hosts_with_ports_and_hashes_are_understood() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let ns = support::sshd::Netns::new(support::sshd::subnet(201), None, 0);
    let mut sshd = support::sshd::Sshd::new(
        &client.dir.path().join("s"),
        Some(&ns.name),
        &ns.addr.to_string(),
        2222,
        &client,
    );
    sshd.start();
    let addr = ns.addr.to_string();
    let cfg = client.config.to_string_lossy().to_string();
    // A plain [host]:port line, then the file hashed by ssh-keygen -H.
    client.trust(&format!("[{addr}]:2222"), &sshd);
    let r = lbtop(
        &client,
        &["-F", &cfg, "--nodes", &format!("root@{addr}:2222")],
        &[],
    );
    assert_eq!(node(&r.json, &addr)["status"], "ok", "{}", r.json);
    run(
        "ssh-keygen",
        &["-H", "-f", &client.known_hosts.to_string_lossy()],
    );
    assert!(support::sshd::read(&client.known_hosts).starts_with("|1|"));
    let r = lbtop(
        &client,
        &["-F", &cfg, "--nodes", &format!("root@{addr}:2222")],
        &[],
    );
    assert_eq!(node(&r.json, &addr)["status"], "ok", "{}", r.json);
    // The same key under port 22 is not the same host.
    std::fs::write(
        &client.known_hosts,
        format!("{addr} {}", support::sshd::read(&sshd.host_key_pub())),
    )
    .expect("write");
    let r = lbtop(
        &client,
        &["-F", &cfg, "--nodes", &format!("root@{addr}:2222")],
        &[],
    );
    assert_eq!(
        node(&r.json, &addr)["status"],
        "host-key-unknown",
        "{}",
        r.json
    );
}

#[test]
fn an_ipv6_node_with_a_port_is_written_in_brackets() {
    if !support::sshd::require() {
        return;
    }
    let client = Client::new();
    let ns = support::sshd::Netns::new(support::sshd::subnet(201), None, 0);
    let v6 = ns.add_v6();
    let mut sshd = support::sshd::Sshd::new(
        &client.dir.path().join("s6"),
        Some(&ns.name),
        &v6,
        2222,
        &client,
    );
    sshd.start();
    client.trust(&format!("[{v6}]:2222"), &sshd);
    let cfg = client.config.to_string_lossy().to_string();
    let r = lbtop(
        &client,
        &["-F", &cfg, "--nodes", &format!("root@[{v6}]:2222")],
        &[],
    );
    let n = node(&r.json, &v6);
    assert_eq!(n["status"], "ok", "{}", r.json);
    assert_eq!(n["host"], v6.as_str());
}

/// `ssh-agent -D -a SOCK`, killed on drop.
struct Agent {
    child: Child,
    sock: String,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock").to_string_lossy().to_string();
        let child = Command::new("ssh-agent")
            .args(["-D", "-a", &sock])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        support::sshd::wait_for(Duration::from_secs(5), || {
            Path::new(&sock).exists().then_some(())
        })
        .expect("agent socket");
        Agent { child, sock }
    }

    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_encrypted_key_without_an_agent_says_so_at_once_and_the_agent_makes_it_work() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let client = &cluster.client;
    let host = &cluster.hosts[0];
    // Keep a clear copy for the agent; encrypt the one in ~/.ssh.
    let clear = client.dir.path().join("clear_key");
    std::fs::copy(&client.key, &clear).expect("copy");
    run(
        "ssh-keygen",
        &[
            "-p",
            "-q",
            "-N",
            "secret",
            "-P",
            "",
            "-f",
            &client.key.to_string_lossy(),
        ],
    );
    let cfg = client.config.to_string_lossy().to_string();
    let spec = host.sshd.spec();

    let r = lbtop(client, &["-F", &cfg, "--nodes", &spec], &[]);
    let n = node(&r.json, &host.addr());
    assert_eq!(n["status"], "auth-failed", "{}", r.json);
    let error = n["error"].as_str().expect("error");
    assert!(error.contains("~/.ssh/id_ed25519 is encrypted"), "{error}");
    assert!(error.contains("ssh-add"), "{error}");
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);

    let agent = Agent::start(client.dir.path());
    agent.add(&clear);
    let r = lbtop(
        client,
        &["-F", &cfg, "--nodes", &spec],
        &[("SSH_AUTH_SOCK", &agent.sock)],
    );
    assert_eq!(node(&r.json, &host.addr())["status"], "ok", "{}", r.json);
}

#[test]
fn the_agent_alone_authenticates_through_ssh_auth_sock() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let client = &cluster.client;
    let host = &cluster.hosts[0];
    // The only key lives outside ~/.ssh, in the agent.
    let elsewhere = client.dir.path().join("agent_only_key");
    std::fs::rename(&client.key, &elsewhere).expect("move");
    std::fs::remove_file(client.key.with_extension("pub")).expect("rm pub");
    let cfg = client.config.to_string_lossy().to_string();
    let spec = host.sshd.spec();
    let r = lbtop(client, &["-F", &cfg, "--nodes", &spec], &[]);
    let n = node(&r.json, &host.addr());
    assert_eq!(n["status"], "auth-failed", "{}", r.json);
    assert!(
        n["error"]
            .as_str()
            .expect("error")
            .contains("no key to offer"),
        "{n}"
    );

    let agent = Agent::start(client.dir.path());
    agent.add(&elsewhere);
    let r = lbtop(
        client,
        &["-F", &cfg, "--nodes", &spec],
        &[("SSH_AUTH_SOCK", &agent.sock)],
    );
    assert_eq!(node(&r.json, &host.addr())["status"], "ok", "{}", r.json);
    // IdentityAgent none turns it off again.
    let r = lbtop(
        client,
        &["-F", &cfg, "-o", "IdentityAgent=none", "--nodes", &spec],
        &[("SSH_AUTH_SOCK", &agent.sock)],
    );
    assert_eq!(
        node(&r.json, &host.addr())["status"],
        "auth-failed",
        "{}",
        r.json
    );
}

#[test]
fn home_ssh_config_aliases_identity_files_and_host_lists() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let client = &cluster.client;
    // A key that only IdentityFile names; the default one is not authorized on node b.
    let other = client.home.join(".ssh/other_key");
    support::sshd::keygen(&other, "ed25519", "", "other");
    std::fs::write(
        &cluster.hosts[1].sshd.authorized_keys,
        support::sshd::read(&other.with_extension("pub")),
    )
    .expect("write");
    let (a, b) = (cluster.hosts[0].addr(), cluster.hosts[1].addr());
    std::fs::write(
        &client.config,
        format!(
            "Include ~/.ssh/conf.d/*\nHost node-a\n  HostName {a}\n  User root\n\
             Host *\n  ConnectTimeout 3\n"
        ),
    )
    .expect("write");
    std::fs::create_dir_all(client.home.join(".ssh/conf.d")).expect("mkdir");
    std::fs::write(
        client.home.join(".ssh/conf.d/b"),
        format!("Host node-b\n  HostName {b}\n  User root\n  IdentityFile ~/.ssh/other_key\n"),
    )
    .expect("write");
    let list = client.dir.path().join("nodes.txt");
    std::fs::write(&list, "# lab nodes\nnode-a\nnode-b\n").expect("write");
    // No -F: ~/.ssh/config of the (isolated) HOME is read.
    let r = lbtop(client, &["--nodes", &format!("@{}", list.display())], &[]);
    for (name, addr) in [("node-a", &a), ("node-b", &b)] {
        let n = node(&r.json, name);
        assert_eq!(n["status"], "ok", "{name}: {}", r.json);
        assert_eq!(n["host"], addr.as_str());
    }
    // A range that reaches nothing fails per host, not as a whole. (Addresses in the test range
    // that no namespace holds: the test prefixes are unreachable routes here, no DNS involved.)
    let r = lbtop(client, &["--nodes", "node-a,root@10.203.255.[1-2]"], &[]);
    assert_eq!(node(&r.json, "node-a")["status"], "ok");
    for name in ["10.203.255.1", "10.203.255.2"] {
        let n = node(&r.json, name);
        assert_eq!(n["status"], "unreachable", "{n}");
        assert_eq!(n["error"], "no route to host", "{n}");
    }
}

#[test]
fn once_is_bounded_when_a_host_hangs_and_reports_it() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(2);
    let client = &cluster.client;
    cluster.hosts[1].sshd.freeze(true);
    let cfg = client.config.to_string_lossy().to_string();
    let list = format!(
        "{},{}",
        cluster.hosts[0].sshd.spec(),
        cluster.hosts[1].sshd.spec()
    );
    let r = lbtop(
        client,
        &["-F", &cfg, "-o", "ConnectTimeout=2", "--nodes", &list],
        &[],
    );
    assert!(r.took < Duration::from_secs(6), "took {:?}", r.took);
    assert_eq!(node(&r.json, &cluster.hosts[0].addr())["status"], "ok");
    let hung = node(&r.json, &cluster.hosts[1].addr());
    assert_eq!(hung["status"], "unreachable", "{hung}");
    assert!(
        hung["error"].as_str().expect("error").contains("no answer"),
        "{hung}"
    );
    cluster.hosts[1].sshd.freeze(false);
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn bad_host_lists_and_options_are_usage_errors() {
    let home = tempfile::tempdir().expect("tempdir");
    for args in [
        vec!["--nodes", "web;reboot"],
        vec!["--nodes", "web[5-1]"],
        vec!["--nodes", "@/nonexistent/lbtop-nodes"],
        vec!["--nodes", "web1", "-o", "NoSuchOption=1"],
        vec!["--nodes", "web1", "-o", "StrictHostKeyChecking=perhaps"],
        vec!["--nodes", "auto", "--router", "none"],
        vec!["--router", "root@host:http"],
        vec!["--nodes", "web1", "--jump", "a b"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(["--once", "--json"])
            .args(&args)
            .env("HOME", home.path())
            .env("XDG_STATE_HOME", home.path().join("state"))
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn a_headless_recording_of_ssh_nodes_replays_them() {
    if !support::sshd::require() {
        return;
    }
    let cluster = Cluster::new(1);
    let client = &cluster.client;
    let host = &cluster.hosts[0];
    let file = client.dir.path().join("ssh.lbrec");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
            .args(args)
            .env("HOME", &client.home)
            .env("XDG_STATE_HOME", client.dir.path().join("state"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .expect("run lbtop");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cfg = client.config.to_string_lossy().to_string();
    run(&[
        "record",
        &file.to_string_lossy(),
        "--duration",
        "3s",
        "--interval",
        "500ms",
        "--router",
        "none",
        "-F",
        &cfg,
        "--nodes",
        &host.sshd.spec(),
    ]);
    let export = run(&["replay", &file.to_string_lossy(), "--export", "json"]);
    let last: Value = serde_json::from_str(export.lines().last().expect("a frame")).expect("JSON");
    let n = node(&last, &host.addr());
    assert_eq!(n["status"], "ok", "{n}");
    assert!(n["cpu_total_percent"].is_number(), "{n}");
}
