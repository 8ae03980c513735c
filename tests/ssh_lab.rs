//! The router over SSH against the real kernel in the lab VM, as an operator's laptop sees it:
//! lbtop on this machine, the router's sshd through the VM's forwarded port, the real servers
//! through the router as their jump host. `ipvsadm` in the VM is the oracle for the table.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use lbtop::source::parse::{ipvsadm_list, merge_ipvsadm};
use serde_json::Value;
use support::lab::{Lab, lab};

/// One lbtop at a time: the VM is emulated (TCG) and slow enough without company.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs lbtop here with the lab's ssh config and an empty HOME. The interval is long (and with it
/// the poll timeouts) because every exec in the emulated VM takes a second or more.
fn lbtop(lab: &Lab, args: &[&str]) -> Value {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let home = tempfile::tempdir().expect("home");
    let cfg = lab.ssh_config.clone();
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(["--once", "--json", "--interval", "5s", "-F", &cfg])
        // The shell session, on purpose: the agent has its own tests (tests/lab_agent.rs), and
        // `auto` would add its "no lbtop on the router" note to every sample here.
        .args(["--router-agent", "never"])
        .args(["-o", "ConnectTimeout=60"])
        .args(args)
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// service id -> (scheduler, real id -> (forward, weight, upper, lower)), from ipvsadm in the VM.
type Table = BTreeMap<String, (String, BTreeMap<String, (String, i64, u64, u64)>)>;

fn oracle(lab: &Lab) -> Table {
    let out = lab.root("ipvsadm -L -n --exact; echo @@; ipvsadm -L -n --exact --thresholds");
    let views: Vec<_> = out
        .split("@@\n")
        .map(|v| ipvsadm_list(v).expect("ipvsadm output"))
        .collect();
    services_table(&merge_ipvsadm(&views[0], &views[1..]).expect("merge"))
}

fn table(router: &Value) -> Table {
    router["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            let reals = s["reals"]
                .as_array()
                .expect("reals")
                .iter()
                .map(|r| {
                    (
                        r["id"].as_str().expect("id").to_string(),
                        (
                            r["forward"].as_str().expect("forward").to_string(),
                            r["weight"].as_i64().expect("weight"),
                            r["upper_threshold"].as_u64().expect("upper"),
                            r["lower_threshold"].as_u64().expect("lower"),
                        ),
                    )
                })
                .collect();
            (
                s["id"].as_str().expect("id").to_string(),
                (
                    s["scheduler"].as_str().expect("scheduler").to_string(),
                    reals,
                ),
            )
        })
        .collect()
}

#[test]
fn the_router_over_ssh_matches_ipvsadm_and_its_nodes_answer_through_it() {
    let lab = lab();
    let v = lbtop(lab, &["--router", "lab", "--nodes", "rs1,rs2,rs3"]);
    let router = &v["router"];
    assert_eq!(router["source"], "ssh", "{router}");
    assert_eq!(router["host_status"], "ok", "{router}");
    assert_eq!(router["notes"], Value::Array(vec![]), "{router}");
    assert_eq!(table(router), oracle(lab));
    let services = router["services"].as_array().expect("services");
    assert!(
        services.iter().all(|s| s["totals"].is_object()),
        "--stats merged"
    );
    assert!(
        services
            .iter()
            .flat_map(|s| s["reals"].as_array().expect("reals"))
            .all(|r| r["persistent_conns"].is_u64()),
        "--persistent-conn merged"
    );
    assert!(router["connections"]["total"].is_u64(), "{router}");
    assert!(router["totals"].is_object(), "ip_vs_stats read");
    for (i, name) in ["rs1", "rs2", "rs3"].iter().enumerate() {
        let n = v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["name"] == *name)
            .unwrap_or_else(|| panic!("no {name}: {v}"));
        assert_eq!(n["status"], "ok", "{n}");
        assert_eq!(n["host"], format!("10.77.0.1{}", i + 1));
        assert!(n["cpu_total_percent"].is_number(), "{n}");
    }
}

#[test]
fn an_unprivileged_login_uses_sudo_and_without_it_falls_back_to_proc_with_a_note() {
    let lab = lab();
    let with_sudo = lbtop(lab, &["--router", "lab-user", "--nodes", "none"]);
    let router = &with_sudo["router"];
    assert_eq!(router["notes"], Value::Array(vec![]), "{router}");
    assert_eq!(table(router), oracle(lab));

    let without = lbtop(
        lab,
        &[
            "--router",
            "lab-user",
            "--router-sudo",
            "never",
            "--nodes",
            "none",
        ],
    );
    let router = &without["router"];
    assert_eq!(router["host_status"], "ok", "{router}");
    let note = router["notes"][0].as_str().expect("a note");
    assert!(note.contains("ipvsadm failed"), "{note}");
    assert!(note.contains("/proc/net/ip_vs"), "{note}");
    // /proc has the same services and weights, but no thresholds or persistent counts.
    let proc_ids: Vec<String> = table(router).keys().cloned().collect();
    let oracle_ids: Vec<String> = oracle(lab).keys().cloned().collect();
    assert_eq!(proc_ids, oracle_ids);
    assert!(
        router["services"][0]["reals"][0]["persistent_conns"].is_null(),
        "{router}"
    );
}

#[test]
fn auto_discovers_the_real_servers_and_reaches_them_through_the_router() {
    let lab = lab();
    let dir = std::path::Path::new(&lab.ssh_config)
        .parent()
        .expect("lab dir");
    let known = dir.join("known_hosts").to_string_lossy().to_string();
    let key = dir.join("keys/id_ed25519").to_string_lossy().to_string();
    // rs1..rs3 by the ssh config's aliases (HostName 10.77.0.1N); the IPv6 addresses of the same
    // machines as they are, with the lab's key and known_hosts given on the command line.
    let v = lbtop(
        lab,
        &[
            "--router",
            "lab",
            "--nodes",
            "auto",
            "--jump",
            "lab",
            "-o",
            &format!("UserKnownHostsFile={known}"),
            "-o",
            &format!("IdentityFile={key}"),
            "-o",
            "User=root",
        ],
    );
    let nodes = v["nodes"].as_array().expect("nodes");
    let names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
    for want in ["rs1", "rs2", "rs3", "fd77::11", "fd77::12", "fd77::13"] {
        assert!(names.contains(&want), "{want} not among {names:?}");
    }
    for n in nodes {
        assert_eq!(n["status"], "ok", "{n}");
        assert!(n["cpu_total_percent"].is_number(), "{n}");
    }
}

/// service id -> (scheduler, real id -> (forward, weight, upper, lower)), from samples.
fn services_table(services: &[lbtop::model::sample::VirtualServiceSample]) -> Table {
    services
        .iter()
        .map(|v| {
            let reals = v
                .reals
                .iter()
                .map(|r| {
                    (
                        r.id(),
                        (
                            r.forward.as_str().to_string(),
                            i64::from(r.weight),
                            u64::from(r.upper_threshold),
                            u64::from(r.lower_threshold),
                        ),
                    )
                })
                .collect();
            (
                v.key.to_string(),
                (v.scheduler.clone().unwrap_or_default(), reals),
            )
        })
        .collect()
}

fn sample_table(s: &lbtop::model::sample::RouterSample) -> Table {
    services_table(&s.services)
}

/// The session lbtop keeps with the router reads `/proc` at every poll and ipvsadm's details
/// when the table's shape changes: a service added, and a real's weight and thresholds changed,
/// between two polls are in the very next sample, and their thresholds as soon as the details
/// are read again, as ipvsadm says.
#[test]
fn a_service_added_and_a_weight_changed_between_polls_are_read_again() {
    use lbtop::model::sample::{Report, SourceEvent};
    use lbtop::source::remote::{RemoteSource, Role, SudoMode};
    use std::time::Duration;

    let lab = lab();
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (vip_a, vip_b) = ("10.77.1.210:80", "10.77.1.211:80");
    let cleanup =
        format!("ipvsadm -D -t {vip_a} 2>/dev/null; ipvsadm -D -t {vip_b} 2>/dev/null; true");
    lab.root(&cleanup);
    lab.root(&format!(
        "ipvsadm -A -t {vip_a} -s rr && ipvsadm -a -t {vip_a} -r 10.77.0.11:80 -g -w 3 -x 70 -y 7"
    ));
    let home = tempfile::tempdir().expect("home");
    let tuning = lbtop::source::ssh::SshTuning {
        connect_timeout: Duration::from_secs(60),
        poll_timeout: Duration::from_secs(60),
        router_poll_timeout: Duration::from_secs(60),
        ..lbtop::source::ssh::SshTuning::default()
    };
    let ctx = support::watch::context(
        home.path(),
        std::path::Path::new(&lab.ssh_config),
        &[],
        tuning,
    );
    let spec = lbtop::source::ssh::HostSpec::parse("lab").expect("spec");
    let resolved = ctx.settings.resolve(&spec, None).expect("resolve");
    let src = RemoteSource::new(
        "lab".into(),
        "lab".into(),
        resolved,
        Role::Router(SudoMode::Auto),
        ctx,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let _handle = src.spawn(Duration::from_secs(2), tx, None);
        let mut next_sample = async || loop {
            let ev = tokio::time::timeout(Duration::from_secs(120), rx.recv())
                .await
                .expect("a sample within 120 s")
                .expect("the task runs");
            match ev {
                SourceEvent::Router {
                    report: Report::Sample(s),
                    ..
                } => return s,
                SourceEvent::Router {
                    report: Report::Status { status, message, .. },
                    ..
                } => panic!("router {status:?}: {message:?}"),
                SourceEvent::Node { .. } => {}
            }
        };
        let first = next_sample().await;
        assert_eq!(sample_table(&first), oracle(lab), "first sample");
        // Between two polls: a new service with thresholds, and a weight and thresholds changed.
        lab.root(&format!(
            "ipvsadm -A -t {vip_b} -s wlc && ipvsadm -a -t {vip_b} -r 10.77.0.12:80 -g -w 2 -x 40 -y 4 \
             && ipvsadm -e -t {vip_a} -r 10.77.0.11:80 -g -w 5 -x 80 -y 8"
        ));
        let want = oracle(lab);
        let changed_at = lbtop::model::sample::Timestamp::now();
        let mut after = next_sample().await;
        while after.time < changed_at {
            after = next_sample().await;
        }
        // /proc at every poll: the next sample has the new weight and the new service at once.
        let weights = |s: &lbtop::model::sample::RouterSample| -> Vec<(String, i32)> {
            s.services
                .iter()
                .filter(|v| v.key.to_string().starts_with("tcp:10.77.1.21"))
                .flat_map(|v| v.reals.iter().map(move |r| (v.key.to_string(), r.weight)))
                .collect()
        };
        assert_eq!(
            weights(&after),
            [(format!("tcp:{vip_a}"), 5), (format!("tcp:{vip_b}"), 2)]
        );
        // The details (thresholds) are read again for the new shape, on the second program.
        let details = |s: &lbtop::model::sample::RouterSample| s.parts.details.unwrap_or(s.time);
        while details(&after) < changed_at {
            after = next_sample().await;
        }
        assert_eq!(sample_table(&after), want, "the details read after the change");
        let b = after
            .services
            .iter()
            .find(|v| v.key.to_string() == format!("tcp:{vip_b}"))
            .expect("the new service");
        assert!(b.totals.is_some(), "its counters too");
        // Later polls carry what was read, with its time, while the budget spaces readings.
        let later = next_sample().await;
        assert_eq!(sample_table(&later), want);
        // The router reads /proc/net/ip_vs through the reader kept for the session (the VM has
        // this machine's perl): a weight changed in place comes as a patch of its line, and
        // the next sample has it.
        assert!(
            lab.root("ps -eo args").lines().any(|l| l.starts_with("perl -e")),
            "the kept reader runs"
        );
        lab.root(&format!("ipvsadm -e -t {vip_a} -r 10.77.0.11:80 -g -w 4 -x 80 -y 8"));
        let edited_at = lbtop::model::sample::Timestamp::now();
        let mut edited = next_sample().await;
        while edited.time < edited_at {
            edited = next_sample().await;
        }
        assert_eq!(
            weights(&edited),
            [(format!("tcp:{vip_a}"), 4), (format!("tcp:{vip_b}"), 2)]
        );
        let proc_now = lab.root("cat /proc/net/ip_vs");
        let from_proc = lbtop::source::parse::ip_vs(&proc_now).expect("the VM's /proc/net/ip_vs");
        let weights_of = |services: &[lbtop::model::sample::VirtualServiceSample]| {
            services
                .iter()
                .flat_map(|v| v.reals.iter().map(move |r| (v.key.to_string(), r.address, r.port, r.weight)))
                .collect::<Vec<_>>()
        };
        assert_eq!(weights_of(&edited.services), weights_of(&from_proc));
    });
    lab.root(&cleanup);
}
