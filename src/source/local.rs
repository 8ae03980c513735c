//! This machine as a node and as a router: `/proc` read through the same parsers remote hosts use,
//! with sysinfo for host facts and as the fallback where `/proc` is absent.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::fsutil::{self, FileError};
use crate::model::sample::{
    ConnSummary, CpuTimes, HostFacts, IpvsGlobalStats, LoadAvg, LocalAddrs, MemInfo, NodeSample,
    PartTimes, ProcStat, RouterSample, RouterSourceKind, RouterSysctl, TABLE_OWNERS, Timestamp,
    Uptime, VirtualServiceSample,
};

use super::SourceError;
use super::budget::Budget;
use super::netlink::{DestReads, IpvsNetlink, NetlinkError, ServicesRead};
use super::parse::{self, ConnReadError};
use super::remote::router::{OwnerScan, members_of};

/// How many top clients of the connection table are kept.
pub const TOP_CLIENTS: usize = 10;

/// The most of any other `/proc` file that is read (`net/ip_vs` with thousands of services is a
/// few MB).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// A `/proc` file, or one of a snapshot's: a regular file of at most [`MAX_FILE_BYTES`] (see
/// [`fsutil::open_regular`]: a snapshot may hold a FIFO or a device in a file's place).
fn read(root: &Path, rel: &str) -> Result<String, FileError> {
    fsutil::read_text(&root.join(rel), MAX_FILE_BYTES)
}

/// A `/proc` file read and parsed; a parse error names the path read, which under `--proc-root`
/// is the snapshot's file, not `/proc/...`.
fn read_parsed<T>(
    root: &Path,
    rel: &str,
    parse: fn(&str) -> Result<T, parse::ParseError>,
) -> Result<T, SourceError> {
    parse_text(root, rel, &read(root, rel)?, parse)
}

/// `text`, read from `root/rel`, parsed; an error names the file.
fn parse_text<T>(
    root: &Path,
    rel: &str,
    text: &str,
    parse: fn(&str) -> Result<T, parse::ParseError>,
) -> Result<T, SourceError> {
    parse(text).map_err(|source| SourceError::ParseFile {
        path: root.join(rel),
        source,
    })
}

/// This machine as a node.
pub(crate) struct LocalNode {
    proc_root: PathBuf,
    facts: HostFacts,
    fallback: Option<SysinfoFallback>,
}

impl LocalNode {
    /// Reads `/proc`, or `proc_root` when given (a captured snapshot; then the host facts come from
    /// its `sys/kernel` files, not from this machine).
    pub fn new(proc_root: Option<PathBuf>) -> Self {
        let explicit = proc_root.is_some();
        let proc_root = proc_root.unwrap_or_else(|| PathBuf::from("/proc"));
        let facts = if explicit {
            // A snapshot's text, from any host.
            HostFacts {
                hostname: read(&proc_root, "sys/kernel/hostname")
                    .ok()
                    .map(|s| crate::model::text::printable(s.trim(), 120)),
                os: None,
                kernel: read(&proc_root, "sys/kernel/osrelease")
                    .ok()
                    .map(|s| crate::model::text::printable(s.trim(), 120)),
            }
        } else {
            host_facts()
        };
        let fallback = if !explicit && !proc_root.join("stat").exists() {
            SysinfoFallback::new()
        } else {
            None
        };
        Self {
            proc_root,
            facts,
            fallback,
        }
    }

    /// The hostname to show for this node.
    pub fn name(&self) -> String {
        self.facts
            .hostname
            .clone()
            .unwrap_or_else(|| "localhost".to_string())
    }

    pub fn sample(&mut self) -> Result<NodeSample, SourceError> {
        let time = Timestamp::now();
        if let Some(fb) = &mut self.fallback {
            let mut s = fb.sample(time);
            s.facts = Some(self.facts.clone());
            return Ok(s);
        }
        let root = &self.proc_root;
        Ok(NodeSample {
            time,
            stat: read_parsed(root, "stat", parse::proc_stat)?,
            load: read_parsed(root, "loadavg", parse::loadavg)?,
            memory: read_parsed(root, "meminfo", parse::meminfo)?,
            uptime: read_parsed(root, "uptime", parse::uptime)?,
            facts: Some(self.facts.clone()),
            net: None,
        })
    }
}

fn host_facts() -> HostFacts {
    HostFacts {
        hostname: sysinfo::System::host_name().ok(),
        os: sysinfo::System::long_os_version().ok(),
        kernel: sysinfo::System::kernel_version().ok(),
    }
}

/// Where `/proc` is absent: sysinfo's CPU usage turned into cumulative counters, so the derivation
/// downstream is the same as for `/proc/stat`.
struct SysinfoFallback {
    sys: sysinfo::System,
    last: Instant,
    total: CpuTimes,
    cpus: Vec<CpuTimes>,
}

impl SysinfoFallback {
    fn new() -> Option<Self> {
        let mut sys = sysinfo::System::new().ok()?;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        Some(Self {
            sys,
            last: Instant::now(),
            total: CpuTimes::default(),
            cpus: Vec::new(),
        })
    }

    fn sample(&mut self, time: Timestamp) -> NodeSample {
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        let elapsed_cs = (self.last.elapsed().as_millis() / 10) as u64; // centiseconds, like jiffies
        self.last = Instant::now();
        let add = |t: &mut CpuTimes, usage: f32| {
            let busy = (f64::from(usage.clamp(0.0, 100.0)) / 100.0 * elapsed_cs as f64) as u64;
            t.user += busy;
            t.idle += elapsed_cs.saturating_sub(busy);
        };
        let cpus = self.sys.cpus();
        self.cpus.resize(cpus.len(), CpuTimes::default());
        for (acc, cpu) in self.cpus.iter_mut().zip(cpus) {
            add(acc, cpu.usage());
        }
        add(&mut self.total, self.sys.global_cpu_usage());
        let load = sysinfo::System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });
        NodeSample {
            time,
            stat: ProcStat {
                total: self.total,
                cpus: self.cpus.clone(),
                cpu_ids: (0..self.cpus.len() as u32).collect(),
                ..ProcStat::default()
            },
            load: LoadAvg {
                one: load.one,
                five: load.five,
                fifteen: load.fifteen,
                ..LoadAvg::default()
            },
            memory: MemInfo {
                total_bytes: self.sys.total_memory(),
                free_bytes: self.sys.free_memory(),
                available_bytes: self.sys.available_memory(),
                swap_total_bytes: self.sys.total_swap(),
                swap_free_bytes: self.sys.free_swap(),
                ..MemInfo::default()
            },
            uptime: Uptime {
                uptime_s: sysinfo::System::uptime().unwrap_or(0) as f64,
                idle_s: 0.0,
            },
            facts: None,
            net: None,
        }
    }
}

/// The router's forwarding and IPVS expiry settings from `sys/net` under `root`; `None` when
/// none could be read.
/// The most of `net/ip_vs_stats_percpu` read (a line per possible CPU).
const MAX_PERCPU_BYTES: u64 = 1 << 20;

/// The router's live IPVS counters, as text to compare from one poll to the next: the per-CPU
/// counts (`net/ip_vs_stats_percpu`, counted on every connection and packet as it happens) and
/// the totals as reported (`net/ip_vs_stats`, which `ipvsadm -Z` sets back). `None` when either
/// cannot be read. `stats` is `net/ip_vs_stats` as read for this poll ([`read_ip_vs_stats`]).
fn live_counters(root: &Path, stats: Option<&str>) -> Option<String> {
    let mut live =
        fsutil::read_text(&root.join("net/ip_vs_stats_percpu"), MAX_PERCPU_BYTES).ok()?;
    live.push_str(stats?);
    Some(live)
}

/// `net/ip_vs_stats`, read once a poll: its text is both a live counter and the router's totals.
fn read_ip_vs_stats(root: &Path) -> Result<String, FileError> {
    fsutil::read_text(&root.join("net/ip_vs_stats"), MAX_PERCPU_BYTES)
}

fn router_sysctl(root: &Path) -> Option<RouterSysctl> {
    let get = |rel: &str| {
        fsutil::read_text(&root.join(rel), 64)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    };
    let s = RouterSysctl {
        ip_forward: get("sys/net/ipv4/ip_forward"),
        expire_nodest_conn: get("sys/net/ipv4/vs/expire_nodest_conn"),
        expire_quiescent_template: get("sys/net/ipv4/vs/expire_quiescent_template"),
    };
    (s != RouterSysctl::default()).then_some(s)
}

/// The most of `net/fib_trie` and `net/if_inet6` read for the router's addresses; a router with
/// more (a full routing table) goes without the checks that need them.
const MAX_ADDR_FILE_BYTES: u64 = 1 << 20;

/// The router's local addresses from `net/fib_trie` and `net/if_inet6` under `root`; `None` when
/// they could not be read whole (a missing `if_inet6` is a host without IPv6).
fn router_addrs(root: &Path) -> Option<LocalAddrs> {
    let fib = fsutil::read_text(&root.join("net/fib_trie"), MAX_ADDR_FILE_BYTES).ok()?;
    let v6 = match fsutil::read_text(&root.join("net/if_inet6"), MAX_ADDR_FILE_BYTES) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => String::new(),
        Err(_) => return None,
    };
    parse::local_addrs(&fib, &v6).ok()
}

/// The programs of [`TABLE_OWNERS`] running in this network namespace, by `PID/comm` under
/// `root`, each named once, in the list's order. A process whose namespace cannot be compared
/// (another user's, without the right to look) is counted.
fn table_owners(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ns = |p: &Path| std::fs::metadata(p.join("ns/net")).map(|m| (m.dev(), m.ino()));
    let own = ns(&root.join("self"));
    let mut found = [false; TABLE_OWNERS.len()];
    let Ok(dir) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    for entry in dir.flatten().take(1 << 20) {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(comm) = fsutil::read_text(&entry.path().join("comm"), 64) else {
            continue;
        };
        let Some(i) = TABLE_OWNERS.iter().position(|o| *o == comm.trim_end()) else {
            continue;
        };
        match (ns(&entry.path()), &own) {
            (Ok(theirs), Ok(ours)) if theirs != *ours => continue,
            _ => found[i] = true,
        }
    }
    TABLE_OWNERS
        .iter()
        .zip(found)
        .filter(|(_, f)| *f)
        .map(|(o, _)| (*o).to_string())
        .collect()
}

/// The note a sample carries when netlink was refused and `/proc` stands in.
pub(crate) const NETLINK_DENIED_NOTE: &str =
    "IPVS netlink needs root or CAP_NET_ADMIN; showing /proc/net/ip_vs";

/// How the local router is read.
enum RouterRead {
    /// `--proc-root`: a captured `/proc`, never this kernel's netlink.
    ProcOnly,
    /// Netlink when the IPVS family resolves; tried again each poll until it does (the module may
    /// be loaded later). Meanwhile `/proc`, which says "modprobe ip_vs" when IPVS is absent.
    Netlink(Option<IpvsNetlink>),
    /// The kernel refused netlink: `/proc`, with a note saying so.
    Denied,
}

/// This machine as the IPVS router: generic netlink when permitted (root or CAP_NET_ADMIN), else
/// the world-readable `/proc/net/ip_vs*`. The connection table and the router-wide counters come
/// from `/proc` either way.
pub struct LocalRouter {
    proc_root: PathBuf,
    read: RouterRead,
    /// The connection table is summed within this share of the machine's CPU; between sums the
    /// last one is carried, with its time.
    conn_budget: Budget,
    last_conns: Option<(ConnSummary, Timestamp)>,
    /// Which services' real servers each netlink read dumps.
    dest_reads: DestReads,
    /// The table's managers found in the process table.
    owners: OwnerScan,
    /// The generation of the last netlink read's services ([`ServicesRead::generation`]), when the
    /// last sample came from netlink.
    services_generation: Option<u64>,
    /// Until when the router's addresses are not read again, after they could not be read whole
    /// (a router with a full routing table would otherwise format a megabyte of it every poll).
    addrs_unread_until: Option<Instant>,
}

/// How long a router whose addresses could not be read goes before they are tried again.
const ADDRS_RETRY: std::time::Duration = std::time::Duration::from_secs(300);

/// How long the real servers of a service where nothing moved are carried before they are
/// checked again: in the kernel's text table (`net/ip_vs`, one read for every service), or where
/// that cannot be read, dumped again. A weight, method, connection count or real server changed
/// by another tool on such a service shows within this time, and the sample says how long since
/// they were last read or checked ([`PartTimes::details`]).
pub const REALS_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// How long they are carried while the kernel's text table (`net/ip_vs`), checked every
/// [`REALS_AT_LEAST_EVERY`], shows nothing moved: a threshold or tunnel setting another tool
/// changed (which that table does not show) shows within this time.
pub const REALS_CHECKED_AT_LEAST_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The share of one core that summing the connection table may take, as over SSH.
const CONN_SHARE: f64 = 0.05;

impl LocalRouter {
    /// Netlink first unless `proc_root` is given.
    pub fn new(proc_root: Option<PathBuf>) -> Self {
        let read = if proc_root.is_some() {
            RouterRead::ProcOnly
        } else {
            RouterRead::Netlink(None)
        };
        Self {
            proc_root: proc_root.unwrap_or_else(|| PathBuf::from("/proc")),
            read,
            conn_budget: Budget::new(CONN_SHARE, std::time::Duration::from_secs(1)),
            last_conns: None,
            dest_reads: DestReads::Changed {
                at_least: REALS_AT_LEAST_EVERY,
                checked_at_least: REALS_CHECKED_AT_LEAST_EVERY,
            },
            owners: OwnerScan::default(),
            services_generation: None,
            addrs_unread_until: None,
        }
    }

    /// The generation of the last sample's services when it came from netlink: equal from one
    /// sample to the next exactly when their services are equal.
    pub fn services_generation(&self) -> Option<u64> {
        self.services_generation
    }

    /// The router's addresses, unless they could not be read within the last [`ADDRS_RETRY`].
    fn addrs(&mut self) -> Option<LocalAddrs> {
        let now = Instant::now();
        if self.addrs_unread_until.is_some_and(|t| now < t) {
            return None;
        }
        let addrs = router_addrs(&self.proc_root);
        self.addrs_unread_until = addrs.is_none().then(|| now + ADDRS_RETRY);
        addrs
    }

    pub fn sample(&mut self) -> Result<RouterSample, SourceError> {
        self.sample_read(false)
    }

    /// A sample; `full`: every service's real servers dumped, none carried.
    pub fn sample_read(&mut self, full: bool) -> Result<RouterSample, SourceError> {
        self.sample_unless_known(full, None)
    }

    /// [`Self::sample_read`], with no services in the sample when they are those of generation
    /// `known` ([`Self::services_generation`]): the caller has them already.
    pub fn sample_unless_known(
        &mut self,
        full: bool,
        known: Option<u64>,
    ) -> Result<RouterSample, SourceError> {
        let mut sample = self.read_sample(full, known)?;
        // A `--proc-root` snapshot can come from any host; this machine's own kernel (or the
        // router's, under `lbtop agent`, whose samples lbtop's decoder checks) is not one.
        if self.is_snapshot() {
            sample.make_printable();
        }
        Ok(sample)
    }

    /// Whether this reads a `--proc-root` snapshot rather than this machine's `/proc`.
    fn is_snapshot(&self) -> bool {
        self.proc_root != Path::new("/proc")
    }

    fn read_sample(&mut self, full: bool, known: Option<u64>) -> Result<RouterSample, SourceError> {
        // Set again by a netlink read that succeeds.
        let last_generation = self.services_generation.take();
        let reads = if full {
            DestReads::Every
        } else {
            self.dest_reads
        };
        let nl = match &mut self.read {
            RouterRead::ProcOnly => return self.proc_sample(),
            RouterRead::Denied => return self.denied_sample(),
            RouterRead::Netlink(nl) => nl,
        };
        if nl.is_none() {
            match IpvsNetlink::connect() {
                Ok(c) => *nl = Some(c),
                Err(NetlinkError::Unavailable) => return self.proc_sample(),
                Err(NetlinkError::PermissionDenied) => {
                    self.read = RouterRead::Denied;
                    return self.denied_sample();
                }
                Err(e) => return Err(e.into()),
            }
        }
        let Some(conn) = nl.as_mut() else {
            return self.proc_sample();
        };
        let time = Timestamp::now();
        let stats = read_ip_vs_stats(&self.proc_root);
        conn.note_counters(live_counters(&self.proc_root, stats.as_deref().ok()));
        if matches!(reads, DestReads::Changed { .. }) && conn.text_due(Instant::now()) {
            let text = fsutil::read_bytes(&self.proc_root.join("net/ip_vs"), MAX_FILE_BYTES);
            conn.note_text(text.as_deref().ok(), REALS_AT_LEAST_EVERY);
        }
        let read = conn
            .read_services_unless(reads, known)
            .and_then(|s| Ok((s, conn.info()?)));
        match read {
            Ok((
                ServicesRead {
                    services,
                    oldest_reals,
                    sync,
                    generation,
                    ..
                },
                info,
            )) => {
                let generation = Some(generation);
                let owners = if generation == last_generation {
                    self.owners_of_the_same_table()
                } else {
                    self.owners(&services)
                };
                self.services_generation = generation;
                let (global, connections, mut parts) = self.proc_extras(time, stats)?;
                parts.details = oldest_reals;
                Ok(RouterSample {
                    time,
                    source: RouterSourceKind::Netlink,
                    services,
                    global,
                    connections,
                    notes: Vec::new(),
                    ipvs: Some(info),
                    parts,
                    sysctl: router_sysctl(&self.proc_root),
                    addrs: self.addrs(),
                    owners,
                    sync: Some(sync),
                })
            }
            Err(NetlinkError::PermissionDenied) => {
                self.read = RouterRead::Denied;
                self.denied_sample()
            }
            Err(e) => {
                // Reconnect on the next poll: the module may have gone, or the socket gone bad.
                *nl = None;
                match e {
                    NetlinkError::Unavailable => self.proc_sample(),
                    e => Err(e.into()),
                }
            }
        }
    }

    /// The programs managing the table, read from the process table again only when services or
    /// real servers came or went, or a minute passed ([`OwnerScan`]).
    fn owners(&mut self, services: &[VirtualServiceSample]) -> Option<Vec<String>> {
        let members = members_of(services);
        let now = Instant::now();
        if self.owners.due(Some(members), now) {
            self.owners
                .found(members, now, table_owners(&self.proc_root));
        }
        self.owners.names()
    }

    /// The managers of a table that is what it was at the last read (its services were not
    /// sent again): looked for again only when their minute is up.
    fn owners_of_the_same_table(&mut self) -> Option<Vec<String>> {
        let now = Instant::now();
        if let Some(members) = self.owners.members()
            && self.owners.due(Some(members), now)
        {
            self.owners
                .found(members, now, table_owners(&self.proc_root));
        }
        self.owners.names()
    }

    fn denied_sample(&mut self) -> Result<RouterSample, SourceError> {
        let mut s = self.proc_sample()?;
        s.notes.push(NETLINK_DENIED_NOTE.to_string());
        Ok(s)
    }

    /// Router-wide counters and the connection table, from `/proc` (netlink has neither). The
    /// table is summed again when the last sum's cost fits [`CONN_SHARE`] of a core since; its
    /// cost is taken as its wall time on every core the summer may use (an upper bound).
    /// `stats`: `net/ip_vs_stats` as read for this sample ([`read_ip_vs_stats`]).
    fn proc_extras(
        &mut self,
        time: Timestamp,
        stats: Result<String, FileError>,
    ) -> Result<(Option<IpvsGlobalStats>, Option<ConnSummary>, PartTimes), SourceError> {
        let root = &self.proc_root;
        let global = match stats {
            Ok(text) => Some(parse_text(
                root,
                "net/ip_vs_stats",
                &text,
                parse::ip_vs_stats,
            )?),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let now = std::time::Instant::now();
        if self.last_conns.is_none() || self.conn_budget.allows(now) {
            let connections = sum_conn_file(&root.join("net/ip_vs_conn"))?;
            let cores = parse::cores();
            self.conn_budget
                .spend(now, now.elapsed().as_secs_f64() * cores as f64);
            self.last_conns = connections.map(|c| (c, time));
        }
        let parts = PartTimes {
            connections: self
                .last_conns
                .as_ref()
                .map(|(_, t)| *t)
                .filter(|t| *t != time),
            ..PartTimes::default()
        };
        Ok((
            global,
            self.last_conns.as_ref().map(|(c, _)| c.clone()),
            parts,
        ))
    }

    /// The router from `/proc/net/ip_vs*` alone.
    pub(crate) fn proc_sample(&mut self) -> Result<RouterSample, SourceError> {
        let time = Timestamp::now();
        let root = &self.proc_root;
        let services = match read_parsed(root, "net/ip_vs", parse::ip_vs) {
            Ok(s) => s,
            // A snapshot without the file is not this machine without IPVS: the error names
            // the file, not a module to load.
            Err(SourceError::File(e)) if e.is_not_found() && !self.is_snapshot() => {
                return Err(SourceError::IpvsAbsent);
            }
            Err(e) => return Err(e),
        };
        let stats = read_ip_vs_stats(root);
        let (global, connections, parts) = self.proc_extras(time, stats)?;
        let owners = self.owners(&services);
        Ok(RouterSample {
            time,
            source: RouterSourceKind::Proc,
            services,
            global,
            connections,
            notes: Vec::new(),
            ipvs: None,
            parts,
            sysctl: router_sysctl(&self.proc_root),
            addrs: self.addrs(),
            owners,
            sync: None,
        })
    }
}

/// Sums the connection table, which can hold millions of rows (see [`parse::sum_ip_vs_conn`]);
/// None when there is none.
pub fn sum_conn_file(path: &Path) -> Result<Option<ConnSummary>, SourceError> {
    let file = match fsutil::open_regular(path) {
        Ok(f) => f,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    match parse::sum_ip_vs_conn(file, TOP_CLIENTS) {
        Ok(s) => Ok(Some(s)),
        Err(ConnReadError::Parse(source)) => Err(SourceError::ParseFile {
            path: path.to_path_buf(),
            source,
        }),
        Err(ConnReadError::Io(source)) => Err(SourceError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Err(ConnReadError::TooLarge { limit }) => Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    const HEADER: &str =
        "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n";

    /// Rows in the kernel's format (`ip_vs_conn_seq_show`), constructed, not captured.
    fn row(i: u32) -> String {
        let state = ["ESTABLISHED", "TIME_WAIT", "FIN_WAIT"][(i % 3) as usize];
        format!(
            "TCP {:08X} {:04X} C000020A 0050 {:08X} 0050 {state:<11} {:>7}\n",
            0xC633_6400 + i % 300,
            i % 60_000,
            0x0A00_0002 + i % 5,
            i % 900
        )
    }

    /// `sum_conn_file` on another thread, failing the test rather than hanging if it blocks.
    fn sum_within_a_second(path: &Path) -> Result<Option<ConnSummary>, SourceError> {
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(sum_conn_file(&path));
        });
        rx.recv_timeout(Duration::from_secs(1))
            .expect("summing returned within a second")
    }

    #[test]
    fn a_fifo_directory_or_device_in_place_of_the_table_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        for (path, what) in [
            (fifo, "a FIFO"),
            (dir.path().to_path_buf(), "a directory"),
            (zero, "a character device"),
        ] {
            let e = sum_within_a_second(&path).expect_err("refused");
            assert!(
                matches!(e, SourceError::File(FileError::NotAFile { .. })),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!("{}: not a regular file ({what})", path.display())
            );
        }
    }

    #[test]
    fn other_files_are_refused_too_and_read_only_up_to_their_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("stat");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        let (tx, rx) = mpsc::channel();
        let root = dir.path().to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(read(&root, "stat"));
        });
        let e = rx
            .recv_timeout(Duration::from_secs(1))
            .expect("returned within a second")
            .expect_err("refused");
        assert!(
            matches!(e, FileError::NotAFile { what: "a FIFO", .. }),
            "{e:?}"
        );
        std::fs::write(dir.path().join("uptime"), "12.5 3.1\n").expect("write");
        assert_eq!(read(dir.path(), "uptime").expect("reads"), "12.5 3.1\n");
    }

    #[test]
    fn a_parse_error_under_a_snapshot_names_the_file_read_not_proc() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-root-lab");
        for f in ["loadavg", "meminfo", "uptime"] {
            std::fs::copy(lab.join(f), dir.path().join(f)).expect(f);
        }
        std::fs::write(
            dir.path().join("stat"),
            "cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 5 0 2 50 1 0 0 0 0 0\ncpu0 5 0 2 50 1 0 0 0 0 0\n",
        )
        .expect("stat");
        let e = LocalNode::new(Some(dir.path().to_path_buf()))
            .sample()
            .expect_err("a bad stat");
        assert_eq!(
            e.to_string(),
            format!(
                "{} line 3: cpu0 again (first on line 2)",
                dir.path().join("stat").display()
            )
        );
        std::fs::create_dir(dir.path().join("net")).expect("net");
        std::fs::write(
            dir.path().join("net/ip_vs"),
            "IP Virtual Server version 1.2.1\nbad\n",
        )
        .expect("ip_vs");
        let e = LocalRouter::new(Some(dir.path().to_path_buf()))
            .sample()
            .expect_err("a bad ip_vs");
        let path = dir.path().join("net/ip_vs").display().to_string();
        assert!(e.to_string().starts_with(&format!("{path} line ")), "{e}");
    }

    #[test]
    fn a_missing_table_is_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(matches!(
            sum_conn_file(&dir.path().join("ip_vs_conn")),
            Ok(None)
        ));
    }

    #[test]
    fn a_table_of_many_reads_sums_every_row_and_names_a_late_bad_line() {
        // Rows are 66 bytes; reads are a power of two: many rows lie across two reads.
        let rows = 40_000u32;
        let mut text = HEADER.to_string();
        for i in 0..rows {
            text += &row(i);
        }
        assert!(text.len() > 2 << 20);
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        let s = sum_conn_file(file.path()).expect("sums").expect("a table");
        assert_eq!(s.total, u64::from(rows));
        let per_state = u64::from(rows) / 3;
        assert_eq!(s.by_state["ESTABLISHED"], per_state + 1);
        assert_eq!(s.by_state["TIME_WAIT"], per_state);
        assert_eq!(s.by_state["FIN_WAIT"], per_state);
        assert_eq!(s.top_clients.len(), TOP_CLIENTS);
        assert!(s.top_clients.iter().all(|&(_, n)| n == 134));

        // A bad row far into the table: its line counts every line before it.
        let bad_line = 35_001;
        let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
        let bad = "TCP C0000201 D431 C000020A 0050 ZZZZZZZZ 0050 ESTABLISHED     899\n";
        lines[bad_line - 1] = bad;
        std::fs::write(file.path(), lines.concat()).expect("rewrite");
        match sum_conn_file(file.path()) {
            Err(SourceError::ParseFile { path, source }) => {
                assert_eq!(source.line, bad_line, "{source}");
                assert_eq!(path, file.path());
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn the_connection_table_is_summed_within_its_share_and_carried_between_sums() {
        let dir = tempfile::tempdir().expect("dir");
        let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-root-lab");
        std::fs::create_dir(dir.path().join("net")).expect("net");
        for f in [
            "stat",
            "loadavg",
            "meminfo",
            "uptime",
            "net/ip_vs",
            "net/ip_vs_stats",
        ] {
            std::fs::copy(lab.join(f), dir.path().join(f)).expect(f);
        }
        let mut table = std::fs::File::create(dir.path().join("net/ip_vs_conn")).expect("table");
        for i in 0..50_000 {
            table.write_all(row(i).as_bytes()).expect("row");
        }
        drop(table);
        let mut router = LocalRouter::new(Some(dir.path().to_path_buf()));
        let first = router.proc_sample().expect("first");
        assert_eq!(first.connections.as_ref().map(|c| c.total), Some(50_000));
        assert!(first.parts.is_fresh(), "summed with the sample");
        // Soon after: the sum's cost is not paid back yet, so the last one is carried.
        std::thread::sleep(Duration::from_millis(5));
        let second = router.proc_sample().expect("second");
        assert_eq!(second.connections, first.connections);
        assert_eq!(second.parts.connections, Some(first.time));
    }
}
