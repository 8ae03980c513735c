//! The router from Prometheus against real IPVS: Debian's node_exporter runs inside the lab VM
//! (the VM shares this machine's root, so the package's binary is there), listening on the
//! VM's loopback only, with its ipvs collector reading the VM kernel's /proc/net/ip_vs. This
//! machine's Prometheus scrapes it through an SSH port-forward, and
//! `lbtop --router prometheus:INSTANCE` must show what `ipvsadm -Ln --exact` shows in the VM at
//! the same moment, weight for weight and connection for connection (but for node_exporter's
//! own misreading of SCTP services, see `support::prometheus::assert_agrees_with_ipvsadm`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::bin::lbtop;
use support::lab::{REPO, lab};
use support::prometheus::{
    assert_agrees_with_ipvsadm, free_port, prometheus, table_from_ipvsadm, table_from_json,
    wait_for_scrapes,
};

/// node_exporter's port on the VM's loopback.
const VM_PORT: u16 = 19100;

/// A process on this machine, stopped on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stops the VM's node_exporter (by the pid it wrote) on drop.
struct VmExporter;

impl Drop for VmExporter {
    fn drop(&mut self) {
        let _ = lab().ssh(
            "lab",
            "[ -f /run/lbtop-test-ne.pid ] && kill $(cat /run/lbtop-test-ne.pid); \
             rm -f /run/lbtop-test-ne.pid",
        );
    }
}

fn start_vm_exporter() -> VmExporter {
    lab().root(&format!(
        "[ -f /run/lbtop-test-ne.pid ] && kill $(cat /run/lbtop-test-ne.pid) 2>/dev/null
         nohup prometheus-node-exporter --web.listen-address=127.0.0.1:{VM_PORT} \
           --collector.disable-defaults --collector.ipvs </dev/null >/tmp/lbtop-test-ne.log 2>&1 &
         echo $! > /run/lbtop-test-ne.pid
         i=0
         until ss -ltn | grep -q '127.0.0.1:{VM_PORT} '; do
           i=$((i + 1)); [ $i -lt 100 ] || {{ cat /tmp/lbtop-test-ne.log; exit 1; }}; sleep 0.1
         done"
    ));
    VmExporter
}

/// `127.0.0.1:port` on this machine forwarded to node_exporter on the VM's loopback.
fn forward(port: u16) -> Guard {
    let child = Command::new("ssh")
        .args([
            "-F",
            &lab().ssh_config,
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
        ])
        .arg("-L")
        .arg(format!("127.0.0.1:{port}:127.0.0.1:{VM_PORT}"))
        .arg("lab")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh -L");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the port-forward did not open");
        std::thread::sleep(Duration::from_millis(100));
    }
    Guard(child)
}

fn ipvsadm() -> String {
    lab().root("ipvsadm -Ln --exact")
}

#[test]
fn lab_router_from_prometheus_agrees_with_ipvsadm_on_weights_and_connections() {
    let lab = lab();
    // Connections to count: held ones (active) and finished ones (inactive).
    let traffic = lab.root(&format!(
        "sh {REPO}/tests/lab/guest/traffic -n 40 -p 2 -t 60 -u 5 -k 6 -s 90"
    ));
    eprintln!("lab: {}", traffic.trim());
    let _exporter = start_vm_exporter();
    let host_port = free_port();
    let _forward = forward(host_port);
    let dir = tempfile::tempdir().expect("temp dir");
    let instance = format!("127.0.0.1:{host_port}");
    let pp = free_port();
    let _prom = prometheus(pp, dir.path(), std::slice::from_ref(&instance), &[]);
    wait_for_scrapes(pp, 1, 3);
    let url = format!("http://127.0.0.1:{pp}");
    let router = format!("prometheus:{instance}");
    // Inactive connections expire as they will: compare when ipvsadm shows the same table
    // before and after lbtop's read (and a scrape after the first).
    for attempt in 1..=6 {
        let before = ipvsadm();
        std::thread::sleep(Duration::from_millis(1500));
        let out = lbtop(&[
            "--once",
            "--json",
            "--interval",
            "0s",
            "--nodes",
            "none",
            "--prometheus",
            &url,
            "--router",
            &router,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = ipvsadm();
        if before != after {
            eprintln!("lab: the table changed during attempt {attempt}; again");
            continue;
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let shown = &v["router"];
        assert_eq!(shown["status"], "ok", "{shown}");
        assert_eq!(shown["source"], "prometheus");
        let oracle = table_from_ipvsadm(&after);
        let agreed = assert_agrees_with_ipvsadm(&table_from_json(shown), &oracle);
        let busy = oracle.values().filter(|(_, a, i)| a + i > 0).count();
        eprintln!("lab: {agreed} real servers agree with ipvsadm, {busy} with connections");
        assert!(
            agreed >= 40 && busy > 0,
            "{agreed} compared, {busy} with connections"
        );
        return;
    }
    panic!("ipvsadm's table never held still for a comparison");
}
