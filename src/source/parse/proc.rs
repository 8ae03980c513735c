//! `/proc/stat`, `/proc/loadavg`, `/proc/meminfo`, `/proc/uptime`.

use std::collections::HashMap;

use super::ParseError;
use super::text::{dec_u32, dec_u64, excerpt, non_negative_f64, numbered_lines};
use crate::model::sample::{CpuTimes, LoadAvg, MemInfo, ProcStat, Uptime};

const STAT: &str = "/proc/stat";
const LOADAVG: &str = "/proc/loadavg";
const MEMINFO: &str = "/proc/meminfo";
const UPTIME: &str = "/proc/uptime";

/// The aggregate `cpu` line, the `cpuN` lines (N may skip when cores are offline; a line twice is
/// an error naming both lines), and the
/// `ctxt`, `btime`, `processes`, `procs_running`, `procs_blocked` counters. Other lines (`intr`,
/// `softirq`, …) are skipped.
pub fn proc_stat(text: &str) -> Result<ProcStat, ParseError> {
    let mut stat = ProcStat::default();
    let mut seen_total: Option<usize> = None;
    // Each cpu's line, by id: a core listed twice is not two cores (1,000 copies of `cpu0` were
    // counted as 1,000 cores), and which copy is right cannot be told.
    let mut seen_cpus: HashMap<u32, usize> = HashMap::new();
    for (line_no, line) in numbered_lines(text) {
        let mut fields = line.split_ascii_whitespace();
        let Some(name) = fields.next() else { continue };
        let err = |msg: String| ParseError::new(STAT, line_no, msg);
        if name == "cpu" {
            if let Some(first) = seen_total {
                return Err(err(format!(
                    "a second aggregate \"cpu\" line (the first is line {first})"
                )));
            }
            stat.total = cpu_times(fields).map_err(err)?;
            seen_total = Some(line_no);
        } else if let Some(id) = name.strip_prefix("cpu") {
            let id = dec_u32(id).ok_or_else(|| err(format!("bad cpu name {}", excerpt(name))))?;
            if let Some(first) = seen_cpus.insert(id, line_no) {
                return Err(err(format!("cpu{id} again (first on line {first})")));
            }
            stat.cpus.push(cpu_times(fields).map_err(err)?);
            stat.cpu_ids.push(id);
        } else {
            let slot = match name {
                "ctxt" => &mut stat.context_switches,
                "btime" => &mut stat.boot_time,
                "processes" => &mut stat.processes,
                "procs_running" => &mut stat.procs_running,
                "procs_blocked" => &mut stat.procs_blocked,
                _ => continue,
            };
            let value = fields
                .next()
                .and_then(dec_u64)
                .ok_or_else(|| err(format!("{name} needs one number: {}", excerpt(line))))?;
            *slot = Some(value);
        }
    }
    if seen_total.is_none() {
        return Err(ParseError::new(STAT, 0, "no aggregate \"cpu\" line"));
    }
    Ok(stat)
}

/// user nice system idle [iowait irq softirq steal guest guest_nice]: kernels before 2.6.x print
/// only the first four, so the rest default to 0; fields added by future kernels are ignored.
fn cpu_times<'a>(fields: impl Iterator<Item = &'a str>) -> Result<CpuTimes, String> {
    let mut v = [0u64; 10];
    let mut n = 0;
    for f in fields {
        if let Some(slot) = v.get_mut(n) {
            *slot = dec_u64(f).ok_or_else(|| format!("bad jiffies count {}", excerpt(f)))?;
        }
        n += 1;
    }
    if n < 4 {
        return Err(format!("a cpu line needs at least 4 fields, found {n}"));
    }
    let [
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
        guest,
        guest_nice,
    ] = v;
    Ok(CpuTimes {
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
        guest,
        guest_nice,
    })
}

/// `0.52 0.58 0.59 2/1234 5678`.
pub fn loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let (line_no, line) = first_line(LOADAVG, text)?;
    let err = |msg: String| ParseError::new(LOADAVG, line_no, msg);
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let [one, five, fifteen, sched, last_pid] = f[..] else {
        return Err(err(format!("expected 5 fields, found {}", f.len())));
    };
    let load = |s: &str| non_negative_f64(s).ok_or_else(|| err(format!("bad load {}", excerpt(s))));
    let (runnable, entities) = sched
        .split_once('/')
        .and_then(|(r, e)| Some((dec_u32(r)?, dec_u32(e)?)))
        .ok_or_else(|| err(format!("bad runnable/entities {}", excerpt(sched))))?;
    Ok(LoadAvg {
        one: load(one)?,
        five: load(five)?,
        fifteen: load(fifteen)?,
        runnable,
        entities,
        last_pid: dec_u32(last_pid)
            .ok_or_else(|| err(format!("bad last pid {}", excerpt(last_pid))))?,
    })
}

/// `MemTotal:       16318480 kB` lines, converted to bytes. `MemTotal` and `MemFree` are required.
///
/// `MemAvailable` appeared in Linux 3.14. When it is missing it is estimated as
/// `MemFree + Buffers + Cached` (capped at `MemTotal`), the figure `free` showed before 3.14; it
/// overstates what is really available because not all page cache can be dropped.
pub fn meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut total = None;
    let mut free = None;
    let mut available = None;
    let mut buffers = None;
    let mut cached = None;
    let mut swap_total = None;
    let mut swap_free = None;
    for (line_no, line) in numbered_lines(text) {
        if line.trim().is_empty() {
            continue;
        }
        let err = |msg: String| ParseError::new(MEMINFO, line_no, msg);
        let Some((key, rest)) = line.split_once(':') else {
            return Err(err(format!(
                "expected \"Key: value\", got {}",
                excerpt(line)
            )));
        };
        let slot = match key {
            "MemTotal" => &mut total,
            "MemFree" => &mut free,
            "MemAvailable" => &mut available,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        *slot = Some(meminfo_bytes(rest).map_err(err)?);
    }
    let missing = |k: &str| ParseError::new(MEMINFO, 0, format!("no {k} line"));
    let total = total.ok_or_else(|| missing("MemTotal"))?;
    let free = free.ok_or_else(|| missing("MemFree"))?;
    let buffers = buffers.unwrap_or(0);
    let cached = cached.unwrap_or(0);
    let available = available.unwrap_or_else(|| {
        free.saturating_add(buffers)
            .saturating_add(cached)
            .min(total)
    });
    Ok(MemInfo {
        total_bytes: total,
        free_bytes: free,
        available_bytes: available,
        buffers_bytes: buffers,
        cached_bytes: cached,
        swap_total_bytes: swap_total.unwrap_or(0),
        swap_free_bytes: swap_free.unwrap_or(0),
    })
}

/// `    16318480 kB` → bytes. A value without a unit is taken as bytes, as the kernel means it.
fn meminfo_bytes(rest: &str) -> Result<u64, String> {
    let mut f = rest.split_ascii_whitespace();
    let (Some(num), unit, None) = (f.next(), f.next(), f.next()) else {
        return Err(format!("expected \"<number> kB\", got {}", excerpt(rest)));
    };
    let n = dec_u64(num).ok_or_else(|| format!("bad number {}", excerpt(num)))?;
    let scale = match unit {
        None => 1,
        Some("kB") => 1024,
        Some(u) => return Err(format!("unknown unit {}", excerpt(u))),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{n} {} overflows a byte count", unit.unwrap_or("")))
}

/// `320.53 451.92`: seconds since boot, and idle seconds summed over all cores.
pub fn uptime(text: &str) -> Result<Uptime, ParseError> {
    let (line_no, line) = first_line(UPTIME, text)?;
    let err = |msg: String| ParseError::new(UPTIME, line_no, msg);
    let f: Vec<&str> = line.split_ascii_whitespace().collect();
    let [up, idle] = f[..] else {
        return Err(err(format!("expected 2 fields, found {}", f.len())));
    };
    let secs =
        |s: &str| non_negative_f64(s).ok_or_else(|| err(format!("bad seconds {}", excerpt(s))));
    Ok(Uptime {
        uptime_s: secs(up)?,
        idle_s: secs(idle)?,
    })
}

/// The single line of a one-line file; anything after it but blank lines is an error.
fn first_line<'a>(input: &'static str, text: &'a str) -> Result<(usize, &'a str), ParseError> {
    let mut lines = numbered_lines(text).filter(|(_, l)| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| ParseError::new(input, 0, "empty input"))?;
    if let Some((n, l)) = lines.next() {
        return Err(ParseError::new(
            input,
            n,
            format!("unexpected extra line {}", excerpt(l)),
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Inputs below are constructed from the kernel's formats (fs/proc/stat.c, loadavg.c,
    // meminfo.c, uptime.c), not captured; real captures are in tests/fixtures/proc.

    #[test]
    fn a_core_listed_twice_is_an_error_naming_both_lines_not_another_core() {
        let mut text = String::from("cpu  10 0 5 100 1 0 0 0 0 0\n");
        for _ in 0..1000 {
            text += "cpu0 5 0 2 50 1 0 0 0 0 0\n";
        }
        let e = proc_stat(&text).expect_err("duplicate");
        assert_eq!(
            e.to_string(),
            "/proc/stat line 3: cpu0 again (first on line 2)"
        );
        let e = proc_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu 1 2 3 4\n").expect_err("duplicate");
        assert_eq!(
            e.to_string(),
            "/proc/stat line 3: a second aggregate \"cpu\" line (the first is line 1)"
        );
    }

    #[test]
    fn proc_stat_keeps_kernel_core_ids_when_cores_are_offline() {
        let s = proc_stat(
            "cpu  10 0 5 100 1 0 0 0 0 0\n\
             cpu0 5 0 2 50 1 0 0 0 0 0\n\
             cpu2 5 0 3 50 0 0 0 0 0 0\n\
             ctxt 42\nbtime 1700000000\nprocesses 9\nprocs_running 2\nprocs_blocked 0\n",
        )
        .expect("parses");
        assert_eq!(s.cpu_ids, vec![0, 2]);
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(s.cpus[1].system, 3);
        assert_eq!(s.total.idle, 100);
        assert_eq!(s.context_switches, Some(42));
        assert_eq!(s.boot_time, Some(1_700_000_000));
        assert_eq!(s.processes, Some(9));
        assert_eq!(s.procs_running, Some(2));
        assert_eq!(s.procs_blocked, Some(0));
    }

    #[test]
    fn proc_stat_defaults_fields_missing_on_old_kernels_to_zero() {
        let s = proc_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n").expect("parses");
        assert_eq!(s.total.user, 1);
        assert_eq!(s.total.idle, 4);
        assert_eq!(s.total.iowait, 0);
        assert_eq!(s.total.guest_nice, 0);
        assert_eq!(s.context_switches, None);
    }

    #[test]
    fn proc_stat_ignores_fields_added_by_future_kernels() {
        let s = proc_stat("cpu 1 2 3 4 5 6 7 8 9 10 11 12\n").expect("parses");
        assert_eq!(s.total.guest_nice, 10);
    }

    #[test]
    fn proc_stat_reports_the_line_of_a_short_cpu_line() {
        let e = proc_stat("cpu 1 2 3 4\ncpu0 1 2 3\n").expect_err("must fail");
        assert_eq!((e.input, e.line), (STAT, 2));
    }

    #[test]
    fn proc_stat_without_aggregate_line_is_an_error_of_the_whole_input() {
        let e = proc_stat("cpu0 1 2 3 4\n").expect_err("must fail");
        assert_eq!(e.line, 0);
    }

    #[test]
    fn proc_stat_rejects_a_non_numeric_cpu_id() {
        assert_eq!(
            proc_stat("cpu 1 2 3 4\ncpux 1 2 3 4\n")
                .expect_err("must fail")
                .line,
            2
        );
    }

    #[test]
    fn loadavg_reads_loads_and_scheduling_entities() {
        let l = loadavg("0.52 0.58 0.59 2/1234 5678\n").expect("parses");
        assert_eq!((l.one, l.five, l.fifteen), (0.52, 0.58, 0.59));
        assert_eq!((l.runnable, l.entities, l.last_pid), (2, 1234, 5678));
    }

    #[test]
    fn loadavg_rejects_missing_fields_and_nan() {
        assert_eq!(
            loadavg("0.52 0.58 0.59 2/1234\n")
                .expect_err("must fail")
                .line,
            1
        );
        assert!(loadavg("NaN 0.58 0.59 2/1234 1\n").is_err());
        assert!(loadavg("0.5 0.58 0.59 2-1234 1\n").is_err());
        assert_eq!(loadavg("").expect_err("must fail").line, 0);
    }

    #[test]
    fn meminfo_converts_kilobytes_to_bytes() {
        let m = meminfo(
            "MemTotal:       16318480 kB\nMemFree:         1000 kB\nMemAvailable:    8000 kB\n\
             Buffers:           10 kB\nCached:            20 kB\nSwapCached:        0 kB\n\
             SwapTotal:        100 kB\nSwapFree:          50 kB\nHugePages_Total:       0\n",
        )
        .expect("parses");
        assert_eq!(m.total_bytes, 16_318_480 * 1024);
        assert_eq!(m.free_bytes, 1000 * 1024);
        assert_eq!(m.available_bytes, 8000 * 1024);
        assert_eq!(m.buffers_bytes, 10 * 1024);
        assert_eq!(m.cached_bytes, 20 * 1024);
        assert_eq!(m.swap_total_bytes, 100 * 1024);
        assert_eq!(m.swap_free_bytes, 50 * 1024);
    }

    #[test]
    fn meminfo_estimates_available_as_free_buffers_cached_on_kernels_before_3_14() {
        let m = meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n")
            .expect("parses");
        assert_eq!(m.available_bytes, 420 * 1024);
    }

    #[test]
    fn meminfo_estimate_never_exceeds_total() {
        let m = meminfo("MemTotal: 100 kB\nMemFree: 90 kB\nCached: 300 kB\n").expect("parses");
        assert_eq!(m.available_bytes, 100 * 1024);
    }

    #[test]
    fn meminfo_rejects_overflowing_values_and_unknown_units() {
        let e =
            meminfo("MemTotal: 18446744073709551615 kB\nMemFree: 1 kB\n").expect_err("must fail");
        assert_eq!(e.line, 1);
        assert_eq!(
            meminfo("MemTotal: 1 MB\nMemFree: 1 kB\n")
                .expect_err("must fail")
                .line,
            1
        );
        assert_eq!(meminfo("MemFree: 1 kB\n").expect_err("must fail").line, 0);
        assert_eq!(
            meminfo("MemTotal: 1 kB\ngarbage\n")
                .expect_err("must fail")
                .line,
            2
        );
    }

    #[test]
    fn uptime_reads_both_fields() {
        let u = uptime("320.53 451.92\n").expect("parses");
        assert_eq!((u.uptime_s, u.idle_s), (320.53, 451.92));
        assert_eq!(uptime("320.53\n").expect_err("must fail").line, 1);
        assert_eq!(uptime("1 2\n3 4\n").expect_err("must fail").line, 2);
    }
}
