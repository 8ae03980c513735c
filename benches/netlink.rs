//! lbtop's IPVS netlink poll against `ipvsadm -Ln --exact --stats`, on 1,000 virtual services ×
//! 10 real servers, both timed in the same run on the same kernel table.
//!
//!     cargo bench --bench netlink                 # boots the lab VM when this kernel has no IPVS
//!     cargo bench --bench netlink -- --polls 30   # more rounds
//!
//! The table is built in a network namespace of its own (`ip netns add`), so a real router's
//! services are never touched. Where this kernel has no IPVS (this machine, CI), the bench runs
//! itself inside the lab VM (`tests/lab/up`; a VM it booted is stopped afterwards). Rounds
//! alternate the two, so both see the same load; results are medians. Not criterion: criterion
//! cannot drive a run inside the VM, and one poll here takes milliseconds, not nanoseconds.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lbtop::source::local::LocalRouter;
use lbtop::source::netlink::IpvsNetlink;

const SERVICES: usize = 1000;
/// Real servers per service; `--reals N` changes it (0 shows what a dump costs by itself).
const REALS: usize = 10;
const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let number = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(default)
    };
    let polls = number("--polls", 15);
    let reals = number("--reals", REALS);
    if args.iter().any(|a| a == "--in-netns") {
        if let Err(e) = bench(polls, reals) {
            eprintln!("netlink bench: {e}");
            std::process::exit(1);
        }
        return;
    }
    let result = if Path::new("/proc/net/ip_vs").exists() {
        run_here(&format!("--polls {polls} --reals {reals}"))
    } else {
        run_in_lab(&format!("--polls {polls} --reals {reals}"))
    };
    if let Err(e) = result {
        eprintln!("netlink bench: {e}");
        std::process::exit(1);
    }
}

/// This kernel has IPVS: run in a namespace of our own.
fn run_here(args: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let ns = format!("lbtop-bench-{}", std::process::id());
    sh(&format!(
        "ip netns add {ns} && ip netns exec {ns} '{}' --in-netns {args}; rc=$?; ip netns del {ns}; exit $rc",
        exe.display()
    ))
}

/// No IPVS here: the same, inside the lab VM.
fn run_in_lab(args: &str) -> Result<(), String> {
    let up = Command::new(Path::new(REPO).join("tests/lab/up"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("tests/lab/up: {e}"))?;
    let stderr = String::from_utf8_lossy(&up.stderr).into_owned();
    if !up.status.success() {
        return Err(format!("the lab VM did not come up:\n{stderr}"));
    }
    let booted = !stderr.contains("reusing the running lab");
    let config = String::from_utf8_lossy(&up.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("LAB_SSH_CONFIG=").map(str::to_string))
        .ok_or("tests/lab/up printed no LAB_SSH_CONFIG")?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // Copied into the VM's /tmp: a binary rebuilt while the VM maps it over 9p can run stale pages.
    let copy = format!("/tmp/lbtop-bench-netlink-{}", std::process::id());
    let ns = format!("lbtop-bench-{}", std::process::id());
    let script = format!(
        "cp '{exe}' {copy} && ip netns add {ns} && ip netns exec {ns} {copy} --in-netns {args}; rc=$?; ip netns del {ns}; rm -f {copy}; exit $rc",
        exe = exe.display()
    );
    let status = Command::new("ssh")
        .args(["-F", &config, "lab", &script])
        .status()
        .map_err(|e| format!("ssh: {e}"));
    if booted {
        let _ = Command::new(Path::new(REPO).join("tests/lab/down"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    match status? {
        s if s.success() => Ok(()),
        s => Err(format!("the run in the lab VM failed ({s})")),
    }
}

fn sh(script: &str) -> Result<(), String> {
    let s = Command::new("sh")
        .args(["-c", script])
        .status()
        .map_err(|e| e.to_string())?;
    if s.success() {
        Ok(())
    } else {
        Err(format!("`{script}` failed ({s})"))
    }
}

/// 1,000 TCP services × 10 direct-routing reals, in `ipvsadm -R` form.
fn table(reals: usize) -> String {
    let mut rules = String::with_capacity(SERVICES * (reals + 1) * 48);
    for i in 0..SERVICES {
        let vip = format!("10.88.{}.{}:80", i / 250, i % 250 + 1);
        rules += &format!("-A -t {vip} -s wlc\n");
        for j in 0..reals {
            rules += &format!(
                "-a -t {vip} -r 10.89.{j}.{}:80 -g -w {}\n",
                i % 250 + 1,
                j + 1
            );
        }
    }
    rules
}

/// CPU seconds from `/proc/self/stat` (USER_HZ = 100): this process's user and system time,
/// and those of its waited-for children (the ipvsadm runs).
fn cpu_times() -> [f64; 4] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|w| w.parse::<f64>().ok())
        .map(|t| t / 100.0)
        .collect();
    match f[..] {
        [u, s, cu, cs] => [u, s, cu, cs],
        _ => [0.0; 4],
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn bench(polls: usize, per_service: usize) -> Result<(), String> {
    // The kernel takes a direct-routing real server only at a unicast address: give this
    // namespace a route to the reals' network.
    sh(
        "ip link set lo up && ip link add lbtop-d0 type dummy && ip link set lbtop-d0 up \
        && ip addr add 10.89.255.254/16 dev lbtop-d0",
    )?;
    let mut load = Command::new("ipvsadm")
        .arg("-R")
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ipvsadm -R: {e}"))?;
    load.stdin
        .take()
        .ok_or("ipvsadm stdin")?
        .write_all(table(per_service).as_bytes())
        .map_err(|e| e.to_string())?;
    if !load.wait().map_err(|e| e.to_string())?.success() {
        return Err("ipvsadm -R could not load the table".into());
    }

    let mut nl = IpvsNetlink::connect().map_err(|e| e.to_string())?;
    let mut router = LocalRouter::new(None);
    let first = nl.services().map_err(|e| e.to_string())?;
    let reals: usize = first.iter().map(|s| s.reals.len()).sum();
    if first.len() != SERVICES || reals != SERVICES * per_service {
        return Err(format!(
            "netlink read {} services and {reals} reals",
            first.len()
        ));
    }
    let sample = router.sample().map_err(|e| e.to_string())?;
    if sample.source.as_str() != "netlink" {
        return Err(format!("LocalRouter read {}", sample.source.as_str()));
    }

    let ipvsadm = || -> Result<Duration, String> {
        let t = Instant::now();
        let out = Command::new("ipvsadm")
            .args(["-Ln", "--exact", "--stats"])
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("ipvsadm: {e}"))?;
        let d = t.elapsed();
        if !out.status.success() || out.stdout.len() < SERVICES * (per_service + 1) * 40 {
            return Err(format!(
                "ipvsadm -Ln --exact --stats failed ({})",
                out.status
            ));
        }
        Ok(d)
    };
    ipvsadm()?; // warm: page cache, scheduler modules

    let (mut dumps, mut samples, mut runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut infos, mut procs) = (Vec::new(), Vec::new());
    let (mut user, mut system, mut child_user, mut child_system) = (0.0, 0.0, 0.0, 0.0);
    for _ in 0..polls {
        let [u0, s0, ..] = cpu_times();
        let t = Instant::now();
        let s = nl.services().map_err(|e| e.to_string())?;
        dumps.push(t.elapsed());
        let [u1, s1, ..] = cpu_times();
        (user, system) = (user + u1 - u0, system + s1 - s0);
        std::hint::black_box(s);
        let t = Instant::now();
        let s = router.sample().map_err(|e| e.to_string())?;
        samples.push(t.elapsed());
        std::hint::black_box(s);
        let t = Instant::now();
        std::hint::black_box(nl.info().map_err(|e| e.to_string())?);
        infos.push(t.elapsed());
        let t = Instant::now();
        for f in ["/proc/net/ip_vs_stats", "/proc/net/ip_vs_conn"] {
            std::hint::black_box(std::fs::read(f).map_err(|e| format!("{f}: {e}"))?);
        }
        procs.push(t.elapsed());
        let [.., cu0, cs0] = cpu_times();
        runs.push(ipvsadm()?);
        let [.., cu1, cs1] = cpu_times();
        (child_user, child_system) = (child_user + cu1 - cu0, child_system + cs1 - cs0);
    }
    let (dump, sample, run) = (median(dumps), median(samples), median(runs));
    println!(
        "IPVS netlink bench: {SERVICES} services x {per_service} real servers, {polls} rounds, medians"
    );
    println!(
        "  lbtop netlink dump (IpvsNetlink::services):        {}",
        ms(dump)
    );
    println!(
        "  lbtop full poll (LocalRouter::sample, +info, /proc): {}",
        ms(sample)
    );
    println!("    of which GET_INFO + GET_CONFIG: {}", ms(median(infos)));
    println!(
        "    of which reading /proc/net/ip_vs_stats and ip_vs_conn: {}",
        ms(median(procs))
    );
    println!(
        "    of which CPU in lbtop (mean): user {:.1} ms, kernel {:.1} ms",
        user * 1000.0 / polls as f64,
        system * 1000.0 / polls as f64
    );
    println!(
        "  ipvsadm -Ln --exact --stats (process, output read): {}",
        ms(run)
    );
    println!(
        "    of which CPU in ipvsadm (mean): user {:.1} ms, kernel {:.1} ms",
        child_user * 1000.0 / polls as f64,
        child_system * 1000.0 / polls as f64
    );
    println!(
        "  ratio full poll / ipvsadm: {:.3}   dump / ipvsadm: {:.3}   CPU of the dump / ipvsadm: {:.3}",
        sample.as_secs_f64() / run.as_secs_f64(),
        dump.as_secs_f64() / run.as_secs_f64(),
        (user + system) / (child_user + child_system)
    );
    Ok(())
}
