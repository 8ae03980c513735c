//! The IPVS generic-netlink source against ipvsadm, on a real kernel: the lab VM (`tests/lab/up`,
//! shared by the lab tests through `tests/support/lab.rs`).
//!
//! Inside the VM, as root, `lbtop --once --json --router local --nodes none` must agree field by
//! field with `ipvsadm -Ln --exact` and its `--stats`, `--thresholds`, `--persistent-conn` and
//! `--tun-info` views, taken just before and just after it (and equal to each other, so nothing
//! moved in between): identity, scheduler, persistence, one-packet scheduling, service flags,
//! persistence engine, and per real server the forwarding method, tunnel encapsulation, weight,
//! thresholds, active, inactive and persistent connections, and the totals of services and real
//! servers; also version, connection-table size and timeouts. The table is the lab's services
//! after real traffic plus 140 more of every kind (164 in all). As a user without CAP_NET_ADMIN,
//! lbtop falls back to `/proc` and says so. The same comparison holds for lbtop on this machine
//! reading the router through `lbtop agent` at the far end of its SSH session (`--router-agent`).
//!
//! Needs root on the host and what `tests/lab/up` installs (`LAB_PACKAGES` in `tests/lab/lib.sh`,
//! and the kernel package it downloads once into `target/lab`).

use std::collections::BTreeMap;

use lbtop::model::sample::{ServiceKey, VirtualServiceSample};
use lbtop::source::parse::{IpvsadmListing, ipvsadm_list, merge_ipvsadm};
use serde_json::Value;

mod support;

use support::json::services_by_id;
use support::lab::{Lab, REPO, lab};

fn lbtop_json(lab: &Lab, host: &str) -> Value {
    let text = lab
        .run(
            host,
            &format!(
                "{} --once --json --router local --nodes none --interval 0s",
                lab.lbtop
            ),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("lbtop's JSON: {e}\n{text}"))
}

// ───────────────────────────── the services ─────────────────────────────

/// 140 services in `ipvsadm -R` form: TCP, UDP and SCTP over IPv4 and IPv6, firewall marks of
/// both families, every scheduler, persistence with and without masks, one-packet scheduling,
/// scheduler flags, the SIP persistence engine, direct routing, NAT and every tunnel type with
/// its checksum options, an IPv6 service with IPv4 tunnel reals, weights 0 and 65535,
/// thresholds, and services without reals. Returns (add rules, delete rules).
fn extra_services() -> (String, String) {
    const SCHEDULERS: [&str; 13] = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    ];
    const WEIGHTS: [u32; 5] = [0, 1, 65535, 7, 100];
    let mut add = String::new();
    let mut del = String::new();
    for i in 0u32..140 {
        let port = 20000 + i;
        let v6 = matches!(i % 7, 3 | 4 | 6);
        let (svc, real_port) = match i % 7 {
            0 => (format!("-t 10.77.9.{}:{port}", i + 1), Some(port)),
            1 => (format!("-u 10.77.9.{}:{port}", i + 1), Some(port)),
            2 => (
                format!("--sctp-service 10.77.9.{}:{port}", i + 1),
                Some(port),
            ),
            3 => (format!("-t [fd79::9:{:x}]:{port}", i + 1), Some(port)),
            4 => (format!("-u [fd79::9:{:x}]:{port}", i + 1), Some(port)),
            5 => (format!("-f {}", 1000 + i), None),
            _ => (format!("-f {} -6", 1000 + i), None),
        };
        let sched = SCHEDULERS[i as usize % SCHEDULERS.len()];
        let mut opts = format!("-s {sched}");
        match sched {
            "sh" => opts += " -b sh-fallback,sh-port",
            "mh" => opts += " -b mh-fallback,mh-port",
            _ => {}
        }
        if i % 3 == 0 {
            opts += &format!(" -p {}", 30 + i);
            if i % 2 == 0 {
                opts += if v6 { " -M 64" } else { " -M 255.255.255.0" };
            }
        }
        if i % 7 == 1 && i % 2 == 1 {
            opts += " -o";
        }
        if i == 1 {
            opts = "-s rr -p 60 --pe sip".into();
        }
        add += &format!("-A {svc} {opts}\n");
        del += &format!("-D {svc}\n");
        let reals = if i % 11 == 0 { 0 } else { 1 + i % 4 };
        for j in 0..reals {
            let n = 20 + (i * 4 + j) % 200;
            // An IPv6 service may have IPv4 reals when it tunnels them.
            let mixed = v6 && i % 5 == 0;
            let addr = if v6 && !mixed {
                format!("[fd77::{n:x}]")
            } else {
                format!("10.77.5.{n}")
            };
            let rport = real_port.map_or(":0".to_string(), |p| format!(":{}", p + j));
            let method = if mixed {
                " -i".to_string()
            } else {
                match (i + j) % 6 {
                    0 | 1 => " -g".to_string(),
                    2 => " -m".to_string(),
                    3 => " -i".to_string(),
                    4 => format!(
                        " -i --tun-type gue --tun-port {} {}",
                        6000 + j,
                        ["--tun-csum", "--tun-nocsum", "--tun-remcsum"][(i % 3) as usize]
                    ),
                    _ => format!(
                        " -i --tun-type gre {}",
                        ["--tun-csum", "--tun-nocsum"][(i % 2) as usize]
                    ),
                }
            };
            let family = if i % 7 == 6 && !mixed { " -6" } else { "" };
            let weight = WEIGHTS[((i + j) % 5) as usize];
            let thresholds = if (i + j) % 4 == 0 {
                " -x 1000 -y 200"
            } else {
                ""
            };
            let svc_only = svc.trim_end_matches(" -6");
            add += &format!(
                "-a {svc_only}{family} -r {addr}{rport}{method} -w {weight}{thresholds}\n"
            );
        }
    }
    (add, del)
}

/// Removes the extra services when the oracle test ends, passed or not.
struct Cleanup<'a>(&'a Lab, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .run("lab", &format!("ipvsadm -R <<'EOF'\n{}EOF\n", self.1));
    }
}

// ───────────────────────────── the oracle ─────────────────────────────

const VIEWS: [&str; 5] = [
    "ipvsadm -Ln --exact",
    "ipvsadm -Ln --exact --stats",
    "ipvsadm -Ln --exact --thresholds",
    "ipvsadm -Ln --exact --persistent-conn",
    "ipvsadm -Ln --exact --tun-info",
];

const SEPARATOR: &str = "=====lbtop-lab-separator=====";

/// Where lbtop reads the table from: in the VM over netlink (`--router local`), or from this
/// machine through `lbtop agent` at the far end of the SSH session (`--router lab`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Path {
    Local,
    Agent,
}

fn round(lab: &Lab, path: Path) -> (Vec<String>, Value, Vec<String>) {
    match path {
        Path::Local => round_local(lab),
        Path::Agent => round_agent(lab),
    }
}

/// The ipvsadm views, split.
fn views(lab: &Lab) -> Vec<String> {
    let script = VIEWS
        .iter()
        .map(|v| format!("{v} && echo {SEPARATOR}"))
        .collect::<Vec<_>>()
        .join("\n");
    let out = lab.root(&format!("set -e\n{script}\n"));
    let parts: Vec<String> = out
        .split(&format!("{SEPARATOR}\n"))
        .map(str::to_string)
        .collect();
    assert_eq!(parts.len(), 6, "unexpected output:\n{out}");
    parts[..5].to_vec()
}

/// The views, lbtop on this machine with the agent in the VM, the views again.
fn round_agent(lab: &Lab) -> (Vec<String>, Value, Vec<String>) {
    let before = views(lab);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["--once", "--json", "--router", "lab", "--nodes", "none"])
        .args(["--interval", "0s", "-F", &lab.ssh_config])
        .args(["--router-agent", &lab.lbtop])
        .output()
        .expect("run lbtop");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "lbtop's JSON: {e}\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (before, json, views(lab))
}

/// One round: the ipvsadm views, lbtop, the views again; all in one ssh call.
fn round_local(lab: &Lab) -> (Vec<String>, Value, Vec<String>) {
    let views = VIEWS
        .iter()
        .map(|v| format!("{v} && echo {SEPARATOR}"))
        .collect::<Vec<_>>()
        .join("\n");
    let script = format!(
        "set -e\n{views}\n{} --once --json --router local --nodes none --interval 0s\necho {SEPARATOR}\n{views}\n",
        lab.lbtop
    );
    let out = lab.root(&script);
    let parts: Vec<&str> = out.split(&format!("{SEPARATOR}\n")).collect();
    assert_eq!(parts.len(), 12, "unexpected output:\n{out}");
    let json: Value = serde_json::from_str(parts[5])
        .unwrap_or_else(|e| panic!("lbtop's JSON: {e}\n{}", parts[5]));
    let before = parts[..5].iter().map(|s| s.to_string()).collect();
    let after = parts[6..11].iter().map(|s| s.to_string()).collect();
    (before, json, after)
}

fn parse(view: &str, text: &str) -> IpvsadmListing {
    ipvsadm_list(text).unwrap_or_else(|e| panic!("{view}: {e}\n{text}"))
}

/// `--tun-info`: the TunnelInfo column per (service line, real address), as printed
/// (`n/a`, `ipip`, `gue:6080:+c`, `gre:-c`, …).
fn tunnel_info(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    let mut service = String::new();
    for line in text.lines().skip(3) {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) = line.strip_prefix("  -> ") {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() >= 3 {
                out.insert((service.clone(), w[0].to_string()), w[2].to_string());
            }
        } else if words.len() >= 2 {
            service = format!("{} {}", words[0], words[1]);
        }
    }
    out
}

/// lbtop's tunnel object in ipvsadm's `--tun-info` notation.
fn tunnel_text(forward: &str, tunnel: &Value) -> String {
    if forward != "tunnel" || tunnel.is_null() {
        return "n/a".into();
    }
    let flags = tunnel["flags"].as_u64().expect("tunnel flags");
    // ipvsadm: checksum "+c", else remote checksum offload "r+c", else none "-c".
    let csum = if flags & 1 != 0 {
        "+c"
    } else if flags & 2 != 0 {
        "r+c"
    } else {
        "-c"
    };
    match tunnel["kind"].as_str() {
        Some("ipip") => "ipip".into(),
        Some("gue") => format!("gue:{}:{csum}", tunnel["port"]),
        Some("gre") => format!("gre:{csum}"),
        _ => format!("{tunnel}"),
    }
}

/// The IP_VS_SVC_F_* bits a service line of `ipvsadm -Ln` shows: hashed (every listed service),
/// `persistent`, `ops`, and scheduler flags 1-3 as `(sh-fallback,sh-port)`, `(mh-…)` or
/// `(flag-1,flag-2,flag-3)`.
fn expected_flags(line: &str) -> u64 {
    let mut bits = 0x0002;
    for word in line.split_whitespace() {
        match word {
            "persistent" => bits |= 0x0001,
            "ops" => bits |= 0x0004,
            _ if word.starts_with('(') => {
                for flag in word.trim_matches(|c| c == '(' || c == ')').split(',') {
                    bits |= match flag {
                        "sh-fallback" | "mh-fallback" | "flag-1" => 0x0008,
                        "sh-port" | "mh-port" | "flag-2" => 0x0010,
                        "flag-3" => 0x0020,
                        other => panic!("unknown scheduler flag {other} in `{line}`"),
                    };
                }
            }
            _ => {}
        }
    }
    bits
}

fn counters(v: &Value) -> [u64; 5] {
    [
        "conns",
        "in_packets",
        "out_packets",
        "in_bytes",
        "out_bytes",
    ]
    .map(|k| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("counter {k} in {v}"))
    })
}

fn compare(views: &[String], json: &Value, path: Path) -> usize {
    let router = &json["router"];
    let source = match path {
        Path::Local => "netlink",
        Path::Agent => "agent",
    };
    assert_eq!(router["source"], source, "{router}");
    assert_eq!(router["status"], "ok", "{router}");
    assert_eq!(
        router["notes"],
        serde_json::json!([]),
        "no fallback note as root"
    );

    let plain = parse(VIEWS[0], &views[0]);
    let others: Vec<IpvsadmListing> = views[1..4]
        .iter()
        .zip(&VIEWS[1..4])
        .map(|(t, v)| parse(v, t))
        .collect();
    let oracle: Vec<VirtualServiceSample> = merge_ipvsadm(&plain, &others).expect("merge");
    let tun = tunnel_info(&views[4]);

    // GET_INFO: `IP Virtual Server version 1.2.1 (size=4096)`.
    assert_eq!(
        router["ipvs"]["version"].as_str(),
        plain.version.as_deref(),
        "IPVS version"
    );
    assert_eq!(
        router["ipvs"]["conn_table_size"].as_u64(),
        plain.conn_table_size.map(u64::from),
        "connection table size"
    );

    let ours = services_by_id(router);
    assert_eq!(ours.len(), oracle.len(), "service count");
    for svc in &oracle {
        let id = svc.key.to_string();
        let s = ours
            .get(&id)
            .unwrap_or_else(|| panic!("lbtop lacks service {id}"));
        match svc.key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => {
                assert_eq!(s["protocol"], protocol.as_str(), "{id} protocol");
                assert_eq!(s["address"], address.to_string(), "{id} address");
                assert_eq!(s["port"], port, "{id} port");
                assert_eq!(s["fwmark"], Value::Null, "{id} fwmark");
            }
            ServiceKey::Fwmark { mark, .. } => {
                assert_eq!(s["fwmark"], mark, "{id} fwmark");
                assert_eq!(s["protocol"], Value::Null, "{id} protocol");
            }
        }
        assert_eq!(
            s["scheduler"],
            svc.scheduler.as_deref().unwrap_or_default(),
            "{id} scheduler"
        );
        assert_eq!(
            s["persistent"],
            serde_json::to_value(&svc.persistent).expect("json"),
            "{id} persistence"
        );
        assert_eq!(s["ops"], svc.ops, "{id} ops");
        let totals = svc
            .totals
            .unwrap_or_else(|| panic!("{id} missing from --stats"));
        assert_eq!(
            counters(&s["totals"]),
            [
                totals.conns,
                totals.in_packets,
                totals.out_packets,
                totals.in_bytes,
                totals.out_bytes
            ],
            "{id} totals (conns, in/out packets, in/out bytes)"
        );
        let line = views[0]
            .lines()
            .find(|l| {
                l.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
                    == lbtop::control::plan::service_label(&svc.key)
            })
            .unwrap_or_else(|| panic!("{id}: no line in ipvsadm -Ln"));
        let pe = line
            .split_whitespace()
            .skip_while(|w| *w != "pe")
            .nth(1)
            .map(str::to_string);
        assert_eq!(s["pe_name"].as_str().map(str::to_string), pe, "{id} pe");
        assert_eq!(
            s["flags"].as_u64(),
            Some(expected_flags(line)),
            "{id} flags, from `{line}`"
        );

        let reals: BTreeMap<&str, &Value> = s["reals"]
            .as_array()
            .expect("reals")
            .iter()
            .map(|r| (r["id"].as_str().expect("id"), r))
            .collect();
        assert_eq!(reals.len(), svc.reals.len(), "{id} real count");
        for real in &svc.reals {
            let rid = real.id();
            let r = reals
                .get(rid.as_str())
                .unwrap_or_else(|| panic!("{id} lacks real {rid}"));
            let what = format!("{id} -> {rid}");
            assert_eq!(r["forward"], real.forward.as_str(), "{what} forward");
            assert_eq!(r["weight"], real.weight, "{what} weight");
            assert_eq!(r["upper_threshold"], real.upper_threshold, "{what} upper");
            assert_eq!(r["lower_threshold"], real.lower_threshold, "{what} lower");
            assert_eq!(r["active_conns"], real.active_conns, "{what} active");
            assert_eq!(r["inactive_conns"], real.inactive_conns, "{what} inactive");
            assert_eq!(
                r["persistent_conns"].as_u64(),
                real.persistent_conns.map(u64::from),
                "{what} persistent conns"
            );
            let t = real
                .totals
                .unwrap_or_else(|| panic!("{what} missing from --stats"));
            assert_eq!(
                counters(&r["totals"]),
                [
                    t.conns,
                    t.in_packets,
                    t.out_packets,
                    t.in_bytes,
                    t.out_bytes
                ],
                "{what} totals"
            );
            let printed = tun
                .get(&(lbtop::control::plan::service_label(&svc.key), rid.clone()))
                .unwrap_or_else(|| panic!("{what} missing from --tun-info"));
            assert_eq!(
                &tunnel_text(r["forward"].as_str().unwrap_or_default(), &r["tunnel"]),
                printed,
                "{what} tunnel"
            );
        }
    }
    oracle.len()
}

/// The tests that change the table take turns.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Adds the extra services (after removing leftovers of an interrupted run); they go again
/// when the guard drops.
fn with_extra_services(lab: &Lab) -> Cleanup<'_> {
    let (add, del) = extra_services();
    // Leftovers of an interrupted run on a reused VM go first (ipvsadm -R stops at the first
    // service that is not there, which is the first one when there are none).
    lab.root(&format!(
        "ipvsadm -R <<'EOF' 2>/dev/null || true\n{del}EOF\nipvsadm -R <<'EOF'\n{add}EOF\n"
    ));
    Cleanup(lab, del)
}

#[test]
fn netlink_and_the_agent_session_agree_with_ipvsadm_field_by_field_on_every_kind_of_service() {
    let _serial = serial();
    let lab = lab();
    let _cleanup = with_extra_services(lab);

    // Real traffic through the lab's services first, so counters, connections and persistence
    // templates are not all zero; bounded, and finished before the comparison.
    let traffic = lab.root(&format!(
        "sh {REPO}/tests/lab/guest/traffic -n 45 -p 3 -t 60 -u 10"
    ));
    eprintln!("lab: {}", traffic.trim());

    for path in [Path::Local, Path::Agent] {
        agrees(lab, path);
    }
}

/// A long-lived agent session dumps the real servers only of services where something moved
/// (`source::netlink::DestReads::Changed`), and carries the others. Every frame it records must
/// still equal ipvsadm's views taken around it: while the table is idle, after real traffic,
/// and once another tool's weight change on an idle service is due (at most 30 s).
#[test]
fn an_agent_session_equals_ipvsadm_at_every_poll_while_it_dumps_only_what_moved() {
    let _serial = serial();
    let lab = lab();
    let _cleanup = with_extra_services(lab);
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = dir.path().join("session.lbrec");
    let recorder = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .arg("record")
        .arg(&rec)
        .args(["--duration", "200s", "--router", "lab", "--nodes", "none"])
        .args(["--interval", "1s", "-F", &lab.ssh_config])
        .args(["--router-agent", &lab.lbtop])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start lbtop record");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let mut windows = vec![quiet_window(lab)];
    let traffic = lab.root(&format!(
        "sh {REPO}/tests/lab/guest/traffic -n 45 -p 3 -t 60 -u 10"
    ));
    eprintln!("lab: {}", traffic.trim());
    windows.push(quiet_window(lab));
    // Another tool changes an idle service's real server (not persistent, no traffic).
    let changed = std::time::Instant::now();
    lab.root("ipvsadm -e -t 10.77.9.8:20007 -r 10.77.5.48:20007 -g -w 42");
    std::thread::sleep(std::time::Duration::from_secs(33).saturating_sub(changed.elapsed()));
    windows.push(quiet_window(lab));
    // Then another idle service's scheduler alone (its real servers unchanged): a services dump
    // that differs from the last must reach the frames, though the agent sends no table while
    // its generation holds.
    let changed = std::time::Instant::now();
    lab.root("ipvsadm -E -u 10.77.9.9:20008 -s nq");
    std::thread::sleep(std::time::Duration::from_secs(33).saturating_sub(changed.elapsed()));
    windows.push(quiet_window(lab));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &recorder.id().to_string()])
        .status();
    let out = recorder.wait_with_output().expect("lbtop record ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let export = std::process::Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .arg("replay")
        .arg(&rec)
        .args(["--export", "json"])
        .output()
        .expect("export");
    let frames: Vec<Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|f: &Value| f["router"]["status"] == "ok")
        .collect();
    assert!(frames.len() >= 30, "{} frames", frames.len());
    let mut carried = 0;
    for f in &frames {
        let age = f["router"]["ages_s"]["details"].as_f64().unwrap_or(0.0);
        assert!(age <= 31.0, "real servers carried {age} s");
        carried += usize::from(age > 0.0);
    }
    assert!(carried > 0, "every poll dumped every service");
    for (i, (from, to, views)) in windows.iter().enumerate() {
        let inside: Vec<&Value> = frames
            .iter()
            .filter(|f| {
                f["time"]
                    .as_str()
                    .is_some_and(|t| t > from.as_str() && t < to.as_str())
            })
            .collect();
        assert!(
            !inside.is_empty(),
            "no frame in window {i} ({from} to {to})"
        );
        for f in inside {
            compare(views, f, Path::Agent);
        }
        eprintln!("lab: window {i}: the agent session's frames agree with ipvsadm");
    }
    let weight = windows[2].2[0]
        .lines()
        .find(|l| l.contains("10.77.5.48:20007"))
        .and_then(|l| l.split_whitespace().nth(3));
    assert_eq!(weight, Some("42"), "{}", windows[2].2[0]);
    let scheduler = windows[3].2[0]
        .lines()
        .find(|l| l.contains("10.77.9.9:20008"))
        .and_then(|l| l.split_whitespace().nth(2));
    assert_eq!(scheduler, Some("nq"), "{}", windows[3].2[0]);
}

/// Idle services are checked against the kernel's text table (`/proc/net/ip_vs`) every 30 s
/// instead of dumped (`source::netlink::text`), and their real servers dumped for everything only
/// every 300 s. Another tool's weight change on idle services of every kind (TCP, UDP and SCTP
/// over IPv4, TCP over IPv6, firewall marks of both families), made after the first check of a
/// `--router local` recording in the VM, must be named by the check that follows, and the frames
/// after it must equal ipvsadm's views.
#[test]
fn a_text_check_finds_another_tools_edits_on_idle_services_of_every_kind() {
    let _serial = serial();
    let lab = lab();
    let _cleanup = with_extra_services(lab);
    let dir = "/tmp/lbtop-text-check";
    let recorder = std::process::Command::new("ssh")
        .args(["-F", &lab.ssh_config, "lab"])
        .arg(format!(
            "rm -rf {dir} && mkdir -p {dir} && cd {dir} && LBTOP_LOG=lbtop=debug {} record \
             --router local --nodes none --interval 1s --duration 90s --log-file {dir}/log \
             {dir}/rec >/dev/null 2>{dir}/err",
            lab.lbtop
        ))
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("start lbtop record in the VM");
    // The checks logged so far, waiting (bounded) until there are `n`.
    let checks = |n: usize| -> Vec<String> {
        for _ in 0..60 {
            std::thread::sleep(std::time::Duration::from_secs(1));
            let log = lab.root(&format!("grep 'text check' {dir}/log 2>/dev/null || true"));
            let lines: Vec<String> = log.lines().map(str::to_string).collect();
            if lines.len() >= n {
                return lines;
            }
        }
        panic!("fewer than {n} text checks logged in 60 s");
    };
    assert!(checks(1)[0].contains("first"), "the first check");
    // Weights only, each real server's method given as it was added (extra_services).
    lab.root(
        "ipvsadm -e -t 10.77.9.8:20007 -r 10.77.5.48:20007 -g -w 43
         ipvsadm -e -u 10.77.9.9:20008 -r 10.77.5.52:20008 -m -w 9
         ipvsadm -e --sctp-service 10.77.9.10:20009 -r 10.77.5.56:20009 -i -w 9
         ipvsadm -e -t [fd79::9:4]:20003 -r [fd77::20]:20003 -i -w 9
         ipvsadm -e -f 1012 -r 10.77.5.68:0 -g -w 9
         ipvsadm -e -f 1013 -6 -r [fd77::48]:0 -g -w 9",
    );
    let second = checks(2)[1].clone();
    for name in [
        "tcp:10.77.9.8:20007",
        "udp:10.77.9.9:20008",
        "sctp:10.77.9.10:20009",
        "tcp:[fd79::9:4]:20003",
        "fwm:1012",
        "fwm:1013",
    ] {
        assert!(
            second
                .split_whitespace()
                .any(|w| w.trim_start_matches("changed=") == name),
            "{name} not named by the check after the edits: {second}"
        );
    }
    let (from, to, views) = quiet_window(lab);
    let recorder = recorder.wait_with_output().expect("lbtop record ends");
    assert!(recorder.status.success(), "{:?}", recorder.status);
    let export = lab.root(&format!("{} replay --export json {dir}/rec", lab.lbtop));
    let frames: Vec<Value> = export
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|f: &Value| {
            f["time"]
                .as_str()
                .is_some_and(|t| t > from.as_str() && t < to.as_str())
        })
        .collect();
    assert!(!frames.is_empty(), "no frame in the quiet window");
    for f in &frames {
        compare(&views, f, Path::Local);
    }
    for edited in ["10.77.5.48:20007", "10.77.5.52:20008", "[fd77::48]:0"] {
        let line = views[0].lines().find(|l| l.contains(edited));
        let weight = line.and_then(|l| l.split_whitespace().nth(3));
        assert!(matches!(weight, Some("43" | "9")), "{edited}: {line:?}");
    }
}

/// ipvsadm's views, unchanged over a few seconds of polls: (from, to, views), the times as the
/// JSON writes them, `to` early enough that a poll asked before it has answered.
fn quiet_window(lab: &Lab) -> (String, String, Vec<String>) {
    for _ in 0..8 {
        let before = views(lab);
        let from = lbtop::model::sample::Timestamp::now();
        std::thread::sleep(std::time::Duration::from_secs(4));
        let to = lbtop::model::sample::Timestamp(lbtop::model::sample::Timestamp::now().0 - 1500);
        if views(lab) == before {
            return (from.rfc3339(), to.rfc3339(), before);
        }
    }
    panic!("ipvsadm's views never held still for 4 s");
}

/// Connections expire on their own; takes the oracle until it held still around lbtop's poll.
fn agrees(lab: &Lab, path: Path) {
    let mut last = String::new();
    for attempt in 1..=8 {
        let (before, json, after) = round(lab, path);
        if before != after {
            last = format!("attempt {attempt}: ipvsadm's views changed during the poll");
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        }
        let n = compare(&before, &json, path);
        assert!(n >= 150, "only {n} services compared");
        let services = json["router"]["services"].as_array().expect("services");
        let nonzero = |f: &dyn Fn(&Value) -> bool| {
            services
                .iter()
                .flat_map(|s| s["reals"].as_array().into_iter().flatten())
                .any(f)
        };
        assert!(
            nonzero(&|r| r["totals"]["conns"].as_u64() > Some(0)),
            "traffic left no counters to compare"
        );
        assert!(
            nonzero(&|r| r["persistent_conns"].as_u64() > Some(0)),
            "no persistent connection to compare"
        );
        eprintln!("lab: {n} services agree with ipvsadm through {path:?} (attempt {attempt})");
        return;
    }
    panic!("ipvsadm's views never held still around lbtop's poll ({last})");
}

#[test]
fn timeouts_agree_with_ipvsadm() {
    let lab = lab();
    let text = lab.root("ipvsadm -L --timeout");
    // `Timeout (tcp tcpfin udp): 900 120 300`
    let numbers: Vec<u64> = text
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let json = lbtop_json(lab, "lab");
    let t = &json["router"]["ipvs"]["timeouts"];
    assert_eq!(
        vec![
            t["tcp_s"].as_u64(),
            t["tcp_fin_s"].as_u64(),
            t["udp_s"].as_u64()
        ],
        numbers.into_iter().map(Some).collect::<Vec<_>>(),
        "{text}"
    );
}

#[test]
fn without_cap_net_admin_local_falls_back_to_proc_and_says_so() {
    let lab = lab();
    let uid = lab
        .run("lab-user", "id -u")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(uid.trim(), "0", "lab-user must not be root");
    let json = lbtop_json(lab, "lab-user");
    let router = &json["router"];
    assert_eq!(router["source"], "proc", "{router}");
    assert_eq!(router["status"], "ok", "{router}");
    assert_eq!(
        router["notes"],
        serde_json::json!(["IPVS netlink needs root or CAP_NET_ADMIN; showing /proc/net/ip_vs"]),
    );
    assert!(
        !router["services"].as_array().expect("services").is_empty(),
        "/proc/net/ip_vs lists the lab's services"
    );
    assert_eq!(router["ipvs"], Value::Null, "/proc has no GET_INFO");
}
