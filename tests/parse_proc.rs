//! The node parsers against files captured from a real kernel (see tests/fixtures/SOURCES.md).

use lbtop::source::parse::{loadavg, meminfo, proc_stat, uptime};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn captured_proc_stat_gives_aggregate_and_both_cores() {
    let s = proc_stat(&fixture("stat")).expect("parses");
    assert_eq!(s.total.user, 45210);
    assert_eq!(s.total.system, 5520);
    assert_eq!(s.total.idle, 118_368);
    assert_eq!(s.total.iowait, 629);
    assert_eq!(s.total.softirq, 745);
    assert_eq!(s.total.steal, 105);
    assert_eq!(s.cpu_ids, vec![0, 1]);
    assert_eq!(s.cpus[0].user, 21716);
    assert_eq!(s.cpus[1].idle, 57784);
    assert_eq!(s.context_switches, Some(1_413_811));
    assert_eq!(s.boot_time, Some(1_795_561_811));
    assert_eq!(s.processes, Some(22877));
    assert_eq!(s.procs_running, Some(1));
    assert_eq!(s.procs_blocked, Some(0));
}

#[test]
fn captured_proc_stat_per_core_lines_add_up_to_the_aggregate() {
    let s = proc_stat(&fixture("stat")).expect("parses");
    let user: u64 = s.cpus.iter().map(|c| c.user).sum();
    assert_eq!(user, s.total.user);
}

#[test]
fn captured_loadavg() {
    let l = loadavg(&fixture("loadavg")).expect("parses");
    assert_eq!((l.one, l.five, l.fifteen), (0.95, 1.17, 0.63));
    assert_eq!((l.runnable, l.entities, l.last_pid), (1, 91, 22877));
}

#[test]
fn captured_meminfo_in_bytes() {
    let m = meminfo(&fixture("meminfo")).expect("parses");
    assert_eq!(m.total_bytes, 24_683_656 * 1024);
    assert_eq!(m.free_bytes, 19_631_596 * 1024);
    assert_eq!(m.available_bytes, 22_829_836 * 1024);
    assert_eq!(m.buffers_bytes, 14_612 * 1024);
    assert_eq!(m.cached_bytes, 3_321_892 * 1024);
    assert_eq!(m.swap_total_bytes, 0);
    assert_eq!(m.swap_free_bytes, 0);
}

#[test]
fn captured_meminfo_without_mem_available_line_is_estimated() {
    let old_kernel: String = fixture("meminfo")
        .lines()
        .filter(|l| !l.starts_with("MemAvailable:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let m = meminfo(&old_kernel).expect("parses");
    assert_eq!(m.available_bytes, (19_631_596 + 14_612 + 3_321_892) * 1024);
}

#[test]
fn captured_uptime() {
    let u = uptime(&fixture("uptime")).expect("parses");
    assert_eq!((u.uptime_s, u.idle_s), (853.30, 1183.68));
}

#[test]
fn lab_vm_proc_stat_and_its_second_sample() {
    let a = proc_stat(&fixture("vm/stat")).expect("parses");
    assert_eq!(
        (a.total.user, a.total.system, a.total.idle, a.total.softirq),
        (1485, 1826, 10859, 188)
    );
    assert_eq!(a.cpu_ids, vec![0, 1]);
    assert_eq!(a.cpus[1].system, 1012);
    assert_eq!(a.context_switches, Some(57822));
    assert_eq!(a.boot_time, Some(1_795_563_029));
    assert_eq!((a.processes, a.procs_running), (Some(730), Some(3)));
    let b = proc_stat(&fixture("vm/sample2/stat")).expect("parses");
    assert_eq!(b.total.user, 1640);
    assert!(b.total.total() > a.total.total());
}

#[test]
fn lab_vm_loadavg_uptime_and_meminfo() {
    let l = loadavg(&fixture("vm/loadavg")).expect("parses");
    assert_eq!((l.one, l.five, l.fifteen), (0.46, 0.16, 0.05));
    assert_eq!((l.runnable, l.entities, l.last_pid), (3, 115, 730));
    let u = uptime(&fixture("vm/uptime")).expect("parses");
    assert_eq!((u.uptime_s, u.idle_s), (77.45, 108.60));
    let u2 = uptime(&fixture("vm/sample2/uptime")).expect("parses");
    assert_eq!(u2.uptime_s, 82.52);
    let m = meminfo(&fixture("vm/meminfo")).expect("parses");
    assert_eq!(m.total_bytes, 1_496_036 * 1024);
    assert_eq!(m.available_bytes, 1_357_504 * 1024);
    assert_eq!(m.buffers_bytes, 0);
    assert_eq!(m.cached_bytes, 23_980 * 1024);
}
