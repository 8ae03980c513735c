//! The direct-routing checks against the real kernel in the lab VM: real servers rs1..rs3 in
//! network namespaces with sshd, configured as the tutorial says (the VIPs on lo, arp_ignore=1,
//! arp_announce=2), reached through the router as jump host (`--nodes auto --jump lab`). One test
//! breaks rs3 (no VIP on lo, arp_ignore=0, the IPv6 VIP on eth0) and compares what lbtop says
//! with `ip addr` and `sysctl` in the same namespaces; the other fixes the setting during a
//! recording and finds the alert cleared at the next poll. Every change is undone at the end.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::lab::{Lab, lab};

/// One test at a time: both change rs3.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const VIP: &str = "10.77.1.100";
const VIP6: &str = "fd79::100";

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `script` in real server `rs`'s network namespace.
fn in_rs(lab: &Lab, rs: &str, script: &str) -> String {
    lab.root(&format!("ip netns exec {rs} sh -c '{script}'"))
}

/// Puts rs3 back as the topology made it, also when a test fails.
struct Restore<'a>(&'a Lab);

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(
            "lab",
            &format!(
                "ip netns exec rs3 sh -c 'ip addr replace {VIP}/32 dev lo; \
                 ip addr del {VIP6}/128 dev eth0 2>/dev/null; \
                 ip addr replace {VIP6}/128 dev lo nodad; \
                 sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1'"
            ),
        );
    }
}

/// The options that let lbtop here reach every real server, IPv6 ones included, with the lab's
/// key and known hosts.
fn ssh_args(lab: &Lab) -> Vec<String> {
    let dir = std::path::Path::new(&lab.ssh_config)
        .parent()
        .expect("lab dir");
    let known = dir.join("known_hosts").to_string_lossy().to_string();
    let key = dir.join("keys/id_ed25519").to_string_lossy().to_string();
    [
        "-F",
        &lab.ssh_config,
        "-o",
        "ConnectTimeout=60",
        "-o",
        &format!("UserKnownHostsFile={known}"),
        "-o",
        &format!("IdentityFile={key}"),
        "-o",
        "User=root",
        "--router",
        "lab",
        "--nodes",
        "auto",
        "--jump",
        "lab",
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

fn lbtop(args: &[String], home: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(args)
        .env("HOME", home)
        .env("XDG_STATE_HOME", home.join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run lbtop")
}

fn once(lab: &Lab) -> Value {
    let home = tempfile::tempdir().expect("home");
    let mut args: Vec<String> = ["--once", "--json", "--interval", "5s"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend(ssh_args(lab));
    let out = lbtop(&args, home.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn node<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {v}"))
}

fn problems(n: &Value) -> Vec<String> {
    n["dr_problems"]
        .as_array()
        .unwrap_or_else(|| panic!("dr_problems is not a list: {n}"))
        .iter()
        .map(|p| p.as_str().expect("a sentence").to_string())
        .collect()
}

/// What `ip addr` and `sysctl` say in `rs`'s namespace: whether the IPv4 VIP is on lo, the
/// device holding the IPv6 VIP, and the kernel's arp_ignore and arp_announce on eth0 (the larger
/// of `all`'s and eth0's).
struct Oracle {
    vip_on_lo: bool,
    vip6_device: Option<String>,
    arp_ignore: u32,
    arp_announce: u32,
}

fn oracle(lab: &Lab, rs: &str) -> Oracle {
    let out = in_rs(
        lab,
        rs,
        "ip -o addr show; echo @@; sysctl -n net.ipv4.conf.all.arp_ignore \
         net.ipv4.conf.eth0.arp_ignore net.ipv4.conf.all.arp_announce \
         net.ipv4.conf.eth0.arp_announce",
    );
    let (addrs, sysctl) = out.split_once("@@\n").expect("two parts");
    let n: Vec<u32> = sysctl
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    let device_of = |a: &str| {
        addrs
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .nth(3)
                    .is_some_and(|w| w.starts_with(&format!("{a}/")))
            })
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
    };
    Oracle {
        vip_on_lo: device_of(VIP).as_deref() == Some("lo"),
        vip6_device: device_of(VIP6),
        arp_ignore: n[0].max(n[1]),
        arp_announce: n[2].max(n[3]),
    }
}

/// lbtop's sentences against the oracle, for one real server.
fn agrees(rs: &str, o: &Oracle, v4: &[String], v6: &[String]) {
    let says = |p: &[String], what: &str| p.iter().any(|s| s.contains(what));
    assert_eq!(
        says(v4, &format!("VIP {VIP} is not a local address")),
        !o.vip_on_lo,
        "{rs}: {v4:?}"
    );
    assert_eq!(
        says(v4, "arp_ignore is"),
        !matches!(o.arp_ignore, 1 | 2 | 8),
        "{rs}: {v4:?}"
    );
    assert_eq!(
        says(v4, "arp_announce is"),
        o.arp_announce != 2,
        "{rs}: {v4:?}"
    );
    assert_eq!(
        says(v6, &format!("VIP {VIP6} is on")),
        o.vip6_device.as_deref() != Some("lo"),
        "{rs}: {v6:?}"
    );
}

#[test]
fn a_tutorial_real_server_passes_and_a_broken_one_names_the_vip_and_the_setting() {
    let lab = lab();
    let _serial = serial();
    let _restore = Restore(lab);
    in_rs(
        lab,
        "rs3",
        &format!(
            "ip addr del {VIP}/32 dev lo && ip addr del {VIP6}/128 dev lo && \
             ip addr add {VIP6}/128 dev eth0 nodad && \
             sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0"
        ),
    );
    let v = once(lab);
    for (rs, v6) in [
        ("rs1", "fd77::11"),
        ("rs2", "fd77::12"),
        ("rs3", "fd77::13"),
    ] {
        let o = oracle(lab, rs);
        agrees(rs, &o, &problems(node(&v, rs)), &problems(node(&v, v6)));
    }
    assert_eq!(problems(node(&v, "rs1")), Vec::<String>::new());
    assert_eq!(problems(node(&v, "fd77::11")), Vec::<String>::new());
    let rs3 = problems(node(&v, "rs3"));
    assert!(
        rs3.iter()
            .any(|p| p.contains("arp_ignore is 0 on eth0") && p.contains(VIP)),
        "{rs3:?}"
    );
    let rs3v6 = problems(node(&v, "fd77::13"));
    assert_eq!(rs3v6.len(), 1, "{rs3v6:?}");
    assert!(
        rs3v6[0].contains(&format!("VIP {VIP6} is on eth0")),
        "{rs3v6:?}"
    );
    // A warning alert naming the node and the VIP.
    let alerts = v["alerts"].as_array().expect("alerts");
    assert!(
        alerts.iter().any(|a| a["subject"] == "rs3"
            && a["severity"] == "warning"
            && a["message"].as_str().is_some_and(|m| m.contains(VIP))),
        "{alerts:?}"
    );
    assert!(
        !alerts
            .iter()
            .any(|a| a["subject"] == "rs1"
                && a["message"].as_str().is_some_and(|m| m.contains("VIP"))),
        "{alerts:?}"
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms_of(rfc3339: &str) -> i64 {
    let t = humantime::parse_rfc3339(rfc3339).expect("a time");
    i64::try_from(
        t.duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("ms")
}

#[test]
fn fixing_arp_ignore_live_clears_the_alert_at_the_next_poll() {
    let lab = lab();
    let _serial = serial();
    let _restore = Restore(lab);
    in_rs(
        lab,
        "rs3",
        "sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0",
    );
    let interval = Duration::from_secs(2);
    let home = tempfile::tempdir().expect("home");
    let file = home.path().join("dr.lbrec");
    let mut args: Vec<String> = vec![
        "record".into(),
        file.to_string_lossy().into_owned(),
        "--interval".into(),
        "2s".into(),
    ];
    args.extend(ssh_args(lab));
    // Recording until SIGTERM, while rs3 is watched.
    let recorder = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(&args)
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lbtop record");
    // The emulated VM is slow to connect through: wait for lbtop's program to run in rs3's
    // namespace, then for a few polls.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !lab
        .root("for p in $(ip netns pids rs3); do cat /proc/$p/cmdline 2>/dev/null; echo; done")
        .lines()
        .any(|l| l.trim_end_matches('\0') == "/bin/sh\0-s")
    {
        assert!(
            Instant::now() < deadline,
            "lbtop's program never ran on rs3"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(interval * 3);
    let fix_start = now_ms();
    in_rs(
        lab,
        "rs3",
        "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1",
    );
    let fix_done = now_ms();
    std::thread::sleep(interval * 3);
    let stopped = Command::new("kill")
        .args(["-TERM", &recorder.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let out = recorder.wait_with_output().expect("recorder");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let export = lbtop(
        &[
            "replay".into(),
            file.to_string_lossy().into_owned(),
            "--export".into(),
            "json".into(),
        ],
        home.path(),
    );
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let frames: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let rs3_problems = |f: &Value| {
        f["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["name"] == "rs3"))
            .and_then(|n| n["dr_problems"].as_array().map(Vec::len))
    };
    let before: Vec<usize> = frames
        .iter()
        .filter(|f| f["time"].as_str().is_some_and(|t| ms_of(t) < fix_start))
        .filter_map(rs3_problems)
        .collect();
    assert!(
        before.iter().any(|&n| n > 0),
        "rs3's problem was seen before the fix: {before:?}"
    );
    let cleared: Vec<i64> = frames
        .iter()
        .flat_map(|f| f["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| {
            e["type"] == "alert"
                && e["subject"] == "rs3"
                && e["kind"] == "direct-routing"
                && e["raised"] == false
        })
        .filter_map(|e| e["time"].as_str().map(ms_of))
        .collect();
    assert_eq!(cleared.len(), 1, "one clear: {cleared:?}");
    let limit = fix_done + i64::try_from(interval.as_millis()).expect("ms") + 500;
    assert!(
        cleared[0] > fix_start - 1000 && cleared[0] <= limit,
        "cleared at {} ms, the fix at {fix_start}..{fix_done} ms, the next poll by {limit}",
        cleared[0]
    );
    let after: Vec<usize> = frames
        .iter()
        .filter(|f| f["time"].as_str().is_some_and(|t| ms_of(t) > limit))
        .filter_map(rs3_problems)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|&n| n == 0),
        "{after:?}"
    );
}

/// The router's side: `ip_forward` off while a masquerading service exists is a warning alert on
/// the router, as `sysctl` says; on again, no alert.
#[test]
fn ip_forward_off_with_a_masquerading_service_is_an_alert_on_the_router() {
    let lab = lab();
    let _serial = serial();
    struct Forwarding<'a>(&'a Lab);
    impl Drop for Forwarding<'_> {
        fn drop(&mut self) {
            let _ = self.0.run("lab", "sysctl -qw net.ipv4.ip_forward=1");
        }
    }
    let _restore = Forwarding(lab);
    let home = tempfile::tempdir().expect("home");
    let run = || {
        let args: Vec<String> = [
            "--once",
            "--json",
            "--interval",
            "0s",
            "-F",
            &lab.ssh_config,
            "-o",
            "ConnectTimeout=60",
            "--router",
            "lab",
            "--nodes",
            "none",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let out = lbtop(&args, home.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        v["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .filter(|a| a["subject"] == "router")
            .filter_map(|a| a["message"].as_str().map(str::to_string))
            .find(|m| m.contains("ip_forward"))
    };
    let masq = lab.root("ipvsadm -L -n | grep -c Masq || true");
    assert!(
        masq.trim().parse::<u32>().unwrap_or(0) > 0,
        "the lab has a NAT service"
    );
    lab.root("sysctl -qw net.ipv4.ip_forward=0");
    assert_eq!(lab.root("sysctl -n net.ipv4.ip_forward").trim(), "0");
    let alert = run().expect("an ip_forward alert");
    assert!(alert.contains("tcp:10.77.1.100:8080"), "{alert}");
    lab.root("sysctl -qw net.ipv4.ip_forward=1");
    assert_eq!(run(), None);
}

/// lbtop with the lab router only (`--nodes none`), once, through lbtop's shell program.
fn router_once(lab: &Lab) -> Value {
    router_once_with(lab, "never")
}

/// The same through `--router-agent AGENT` (`never`: the shell program; the agent's path:
/// `lbtop agent` there, reading netlink and its own `/proc`).
fn router_once_with(lab: &Lab, agent: &str) -> Value {
    let home = tempfile::tempdir().expect("home");
    let args: Vec<String> = [
        "--router-agent",
        agent,
        "--once",
        "--json",
        "--interval",
        "0s",
        "-F",
        &lab.ssh_config,
        "-o",
        "ConnectTimeout=60",
        "--router",
        "lab",
        "--nodes",
        "none",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let out = lbtop(&args, home.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The router's side: the settings in `router.sysctl` are what `sysctl` says, each VIP of the
/// table is local as `ip addr` says, and a VIP taken off the router is a problem naming it,
/// gone when it is back.
#[test]
fn the_routers_vips_and_settings_are_what_ip_addr_and_sysctl_say() {
    const ZOO: &str = "10.77.1.110";
    let lab = lab();
    let _serial = serial();
    struct PutBack<'a>(&'a Lab);
    impl Drop for PutBack<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .run("lab", &format!("ip addr replace {ZOO}/32 dev lab-vip0"));
        }
    }
    let _restore = PutBack(lab);
    let sysctl = lab.root(
        "sysctl -n net.ipv4.ip_forward net.ipv4.vs.expire_nodest_conn \
         net.ipv4.vs.expire_quiescent_template",
    );
    let want: Vec<u64> = sysctl
        .split_whitespace()
        .map(|x| x.parse().expect("a number"))
        .collect();
    let table_vips = |v: &Value| -> Vec<(String, bool)> {
        v["router"]["vips"]
            .as_array()
            .unwrap_or_else(|| panic!("no vips: {}", v["router"]))
            .iter()
            .map(|x| {
                (
                    x["address"].as_str().expect("address").to_string(),
                    x["local"].as_bool().expect("local"),
                )
            })
            .collect()
    };
    // `ip addr`'s local addresses against lbtop's, VIP by VIP.
    let agree = |v: &Value| {
        let addrs = lab.root("ip -o addr show | awk '{print $4}' | cut -d/ -f1");
        let vips = table_vips(v);
        assert!(vips.len() >= 5, "{vips:?}");
        for (vip, local) in &vips {
            assert_eq!(
                *local,
                addrs.lines().any(|a| a == vip),
                "{vip}: {vips:?} against `ip addr`: {addrs}"
            );
        }
        vips
    };
    let v = router_once(lab);
    let by_agent = router_once_with(lab, support::lab::AGENT);
    assert_eq!(by_agent["router"]["source"], "agent");
    assert_eq!(by_agent["router"]["vips"], v["router"]["vips"]);
    assert_eq!(by_agent["router"]["sysctl"], v["router"]["sysctl"]);
    let s = &v["router"]["sysctl"];
    assert_eq!(
        [
            s["ip_forward"].as_u64(),
            s["expire_nodest_conn"].as_u64(),
            s["expire_quiescent_template"].as_u64()
        ],
        [Some(want[0]), Some(want[1]), Some(want[2])],
        "{s} against sysctl's {sysctl}"
    );
    assert!(agree(&v).iter().all(|(_, l)| *l));
    assert_eq!(v["router"]["problems"], serde_json::json!([]));

    lab.root(&format!("ip addr del {ZOO}/32 dev lab-vip0"));
    let v = router_once(lab);
    let vips = agree(&v);
    assert!(vips.contains(&(ZOO.to_string(), false)), "{vips:?}");
    let problems = v["router"]["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].as_str().is_some_and(
            |p| p.starts_with(&format!("VIP {ZOO} is not a local address of the router"))
        ),
        "{problems:?}"
    );
    let alerts = v["alerts"].as_array().expect("alerts");
    assert!(
        alerts
            .iter()
            .any(|a| a["subject"] == "router"
                && a["message"].as_str().is_some_and(|m| m.contains(ZOO))),
        "{alerts:?}"
    );
    lab.root(&format!("ip addr add {ZOO}/32 dev lab-vip0"));
    let v = router_once(lab);
    assert!(agree(&v).iter().all(|(_, l)| *l));
    assert_eq!(v["router"]["problems"], serde_json::json!([]));
}

/// A masquerading real server whose default route does not go through the router is named,
/// as `ip route` in its namespace says; rs1, routed through the router, is not.
#[test]
fn a_masquerading_real_server_routed_past_the_router_is_named() {
    let lab = lab();
    let _serial = serial();
    struct Route<'a>(&'a Lab);
    impl Drop for Route<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(
                "lab",
                "ip netns exec rs3 ip route replace default via 10.77.0.1",
            );
        }
    }
    let _restore = Route(lab);
    let masq = lab.root("ipvsadm -L -n | grep -c 'Masq' || true");
    assert!(
        masq.trim().parse::<u32>().unwrap_or(0) > 0,
        "the lab has NAT"
    );
    in_rs(lab, "rs3", "ip route replace default via 10.77.0.99");
    let v = once(lab);
    for rs in ["rs1", "rs2", "rs3"] {
        let gw = in_rs(lab, rs, "ip route show default");
        let via = gw
            .split_whitespace()
            .skip_while(|w| *w != "via")
            .nth(1)
            .expect("a gateway")
            .to_string();
        let routers = lab.root("ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1");
        let through_router = routers.lines().any(|a| a == via);
        let p = problems(node(&v, rs));
        let named = p
            .iter()
            .any(|s| s.starts_with(&format!("the default route goes through {via}")));
        assert_eq!(named, !through_router, "{rs} ({gw}): {p:?}");
    }
    let rs3 = problems(node(&v, "rs3"));
    assert!(
        rs3.iter().any(|p| p.contains("10.77.1.100")
            && p.contains("masquerading")
            && p.ends_with("(ip route replace default via 10.77.0.1)")),
        "{rs3:?}"
    );
}

/// keepalived running on the router is named as the table's owner (`router.owners`), as
/// `pidof` says; stopped, it is not.
#[test]
fn keepalived_on_the_router_is_named_as_the_tables_owner() {
    let lab = lab();
    let _serial = serial();
    struct Stop<'a>(&'a Lab);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.run(
                "lab",
                "[ -f /run/lab/ka-owner.pid ] && kill $(cat /run/lab/ka-owner.pid); \
                 rm -f /run/lab/ka-owner.pid; true",
            );
        }
    }
    let _stop = Stop(lab);
    let owners = |v: &Value| -> Vec<String> {
        v["router"]["owners"]
            .as_array()
            .unwrap_or_else(|| panic!("no owners: {}", v["router"]))
            .iter()
            .map(|o| o.as_str().expect("a name").to_string())
            .collect()
    };
    assert_eq!(lab.root("pidof keepalived || true").trim(), "");
    assert_eq!(owners(&router_once(lab)), Vec::<String>::new());
    // A VRRP instance on the LAN with an address nothing else uses.
    lab.root(
        "printf 'global_defs {\\n router_id lab-owner\\n}\\nvrrp_instance T {\\n state BACKUP\\n \
         interface lab-br0\\n virtual_router_id 250\\n priority 50\\n advert_int 1\\n \
         virtual_ipaddress {\\n  10.77.0.250/32\\n }\\n}\\n' > /run/lab/ka-owner.conf && \
         keepalived -f /run/lab/ka-owner.conf -p /run/lab/ka-owner.pid \
         -r /run/lab/ka-owner-vrrp.pid -l && \
         for i in $(seq 1 50); do [ -s /run/lab/ka-owner.pid ] && break; sleep 0.2; done",
    );
    let pids = lab.root("pidof keepalived || true");
    assert!(!pids.trim().is_empty(), "keepalived runs");
    assert_eq!(owners(&router_once(lab)), ["keepalived"], "pidof: {pids}");
    let by_agent = router_once_with(lab, support::lab::AGENT);
    assert_eq!(by_agent["router"]["source"], "agent");
    assert_eq!(owners(&by_agent), ["keepalived"], "pidof: {pids}");
    lab.root(
        "kill $(cat /run/lab/ka-owner.pid); rm -f /run/lab/ka-owner.pid; \
         for i in $(seq 1 50); do pidof keepalived >/dev/null || break; sleep 0.2; done",
    );
    assert_eq!(lab.root("pidof keepalived || true").trim(), "");
    assert_eq!(owners(&router_once(lab)), Vec::<String>::new());
}
