//! Raw samples: what a source read, exactly as the kernel reported it.
//!
//! Counters here are cumulative. Nothing in this module computes a rate or a percentage; that is
//! `snapshot`'s job, so live and replay share one derivation.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Wall-clock time of a sample, in milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_system(SystemTime::now())
    }

    pub(crate) fn from_system(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    #[cfg(test)]
    pub(crate) fn to_system(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        }
    }

    /// Seconds from `earlier` to `self`; negative when the clock went backwards. Exact for any
    /// two times (a recording's may be anything), where an `i64` difference could overflow.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (i128::from(self.0) - i128::from(earlier.0)) as f64 / 1000.0
    }

    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// RFC 3339 in UTC with millisecond precision, as the JSON output uses.
    pub fn rfc3339(self) -> String {
        String::from_utf8_lossy(&self.rfc3339_bytes()).into_owned()
    }

    /// RFC 3339 in UTC with millisecond precision (`2026-01-01T12:34:56.789Z`), without
    /// allocating. RFC 3339 has four-digit years only, so a time outside years 0000–9999 (a damaged
    /// or hand-made recording) is written as the nearest end of that range rather than failing.
    pub(crate) fn rfc3339_bytes(self) -> [u8; 24] {
        const MIN_MS: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
        const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
        let ms = self.0.clamp(MIN_MS, MAX_MS);
        let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
        let in_day = ms.rem_euclid(86_400_000);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, value: i64, width: usize| {
            let mut v = value;
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, in_day / 3_600_000, 2);
        put(14, in_day / 60_000 % 60, 2);
        put(17, in_day / 1000 % 60, 2);
        put(20, in_day % 1000, 3);
        out
    }
}

/// Year, month (1–12) and day (1–31) of a day counted from 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

// ───────────────────────────── node ─────────────────────────────

/// Jiffies a CPU spent in each state, one line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
    /// Already included in `user` by the kernel; kept for completeness, never added twice.
    pub guest: u64,
    /// Already included in `nice` by the kernel.
    pub guest_nice: u64,
}

impl CpuTimes {
    /// All jiffies of the line, without double-counting guest time.
    pub fn total(&self) -> u64 {
        self.user
            .wrapping_add(self.nice)
            .wrapping_add(self.system)
            .wrapping_add(self.idle)
            .wrapping_add(self.iowait)
            .wrapping_add(self.irq)
            .wrapping_add(self.softirq)
            .wrapping_add(self.steal)
    }
}

/// `/proc/stat`: the aggregate `cpu` line and one `cpuN` line per online core.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcStat {
    pub total: CpuTimes,
    /// Indexed by position in the file; `cpu_ids` gives the kernel's core number.
    pub cpus: Vec<CpuTimes>,
    pub cpu_ids: Vec<u32>,
    pub context_switches: Option<u64>,
    pub boot_time: Option<u64>,
    pub processes: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
    /// Online cores, from a source that gives the per-node sums without the per-core lines
    /// (`cpus` empty): Prometheus for a fleet too large to ask for every core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_cores: Option<u32>,
    /// The busy time is not split by kind: `total.user` holds all of it (everything but idle,
    /// iowait included), the other kinds are zero. From Prometheus for a fleet too large to
    /// ask for every mode: the per-node sums of idle time, the rest being the cores' time since
    /// boot. Derived percentages then say only busy and idle.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub busy_unsplit: bool,
}

/// `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
    pub runnable: u32,
    pub entities: u32,
    pub last_pid: u32,
}

/// The parts of `/proc/meminfo` lbtop shows, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemInfo {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// `MemAvailable`; absent on kernels before 3.14, then estimated by the parser.
    pub available_bytes: u64,
    pub buffers_bytes: u64,
    pub cached_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_free_bytes: u64,
}

/// `/proc/uptime`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Uptime {
    pub uptime_s: f64,
    pub idle_s: f64,
}

/// Facts about a host that do not change between polls.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
}

/// One poll of a node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeSample {
    pub time: Timestamp,
    pub stat: ProcStat,
    pub load: LoadAvg,
    pub memory: MemInfo,
    pub uptime: Uptime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<HostFacts>,
    /// The node's addresses and ARP settings, read only while the node is a direct-routing or
    /// tunnel real server (`model::dr` checks them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NodeNet>,
}

/// What a node's kernel says about its addresses, routes and per-device settings: what the
/// direct-routing checks need, from `/proc` and `/sys` files only.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeNet {
    /// IPv4 local addresses: the `LOCAL` entries of `/proc/net/fib_trie` (address, prefix
    /// length). `/proc` does not say which device holds an IPv4 address.
    pub local_v4: Vec<(std::net::Ipv4Addr, u8)>,
    /// IPv6 addresses and the device holding each, from `/proc/net/if_inet6`.
    pub local_v6: Vec<(std::net::Ipv6Addr, String)>,
    /// The IPv4 main routing table, from `/proc/net/route`.
    pub routes_v4: Vec<Route4>,
    /// `all`, `default` and each device of `/proc/sys/net/ipv4/conf`.
    pub devices: Vec<DeviceConf>,
}

/// One line of `/proc/net/route`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route4 {
    pub device: String,
    pub destination: std::net::Ipv4Addr,
    pub mask: std::net::Ipv4Addr,
    /// RTF_GATEWAY: reached through a gateway, not on the device's link.
    pub gateway: bool,
    /// The gateway's address, for a route through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<std::net::Ipv4Addr>,
}

/// One device's settings from `/proc/sys/net/ipv4/conf/DEV/` and `/sys/class/net/DEV/flags`;
/// `None` where a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceConf {
    pub name: String,
    pub arp_ignore: Option<u32>,
    pub arp_announce: Option<u32>,
    pub rp_filter: Option<u32>,
    /// The device's IFF_* flags (`all` and `default` have none).
    pub flags: Option<u32>,
}

impl NodeSample {
    /// The node's strings (host facts, device names) made printable and bounded, where a
    /// sample comes from a file (a recording) rather than a live poll, which reads them through
    /// parsers that already do; clean strings are not copied.
    pub(crate) fn make_printable(&mut self) {
        use crate::model::text::make_printable;
        if let Some(f) = &mut self.facts {
            for s in [&mut f.hostname, &mut f.os, &mut f.kernel]
                .into_iter()
                .flatten()
            {
                make_printable(s, 255);
            }
        }
        if let Some(net) = &mut self.net {
            for (_, dev) in &mut net.local_v6 {
                make_printable(dev, 32);
            }
            for r in &mut net.routes_v4 {
                make_printable(&mut r.device, 32);
            }
            for d in &mut net.devices {
                make_printable(&mut d.name, 32);
            }
        }
    }

    /// Online cores: the per-core lines of `/proc/stat`, or the count a source gave without them.
    pub fn cores(&self) -> usize {
        if self.stat.cpus.is_empty() {
            self.stat.online_cores.map_or(1, |n| n as usize).max(1)
        } else {
            self.stat.cpus.len()
        }
    }

    /// Whether the sample has the per-core lines, or only the node's sum over its cores.
    pub fn has_per_core(&self) -> bool {
        !self.stat.cpus.is_empty()
    }
}

// ───────────────────────────── IPVS ─────────────────────────────

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }

    /// The kernel's IPPROTO_* number.
    pub(crate) fn ipproto(self) -> u16 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
            Self::Sctp => 132,
        }
    }

    pub(crate) fn from_ipproto(n: u16) -> Option<Self> {
        match n {
            6 => Some(Self::Tcp),
            17 => Some(Self::Udp),
            132 => Some(Self::Sctp),
            _ => None,
        }
    }

    /// As `/proc/net/ip_vs` and `ipvsadm` print it: `TCP`, `UDP`, `SCTP`.
    pub(crate) fn from_upper(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AddressFamily {
    Inet,
    Inet6,
}

/// What identifies a virtual service to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        address: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: AddressFamily,
    },
}

impl ServiceKey {
    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            Self::Addr { protocol, .. } => Some(*protocol),
            Self::Fwmark { .. } => None,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// The stable id: `tcp:192.0.2.10:80`, `tcp:[2001:db8::10]:443`, `fwm:42`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr {
                protocol,
                address,
                port,
            } => write!(f, "{}:{}", protocol.as_str(), SocketText(*address, *port)),
            Self::Fwmark { mark, .. } => write!(f, "fwm:{mark}"),
        }
    }
}

/// `addr:port`, with IPv6 bracketed.
#[derive(Debug, Clone, Copy)]
pub struct SocketText(pub IpAddr, pub u16);

impl fmt::Display for SocketText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// How the router forwards packets to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// Direct routing (`-g`, "Route").
    Route,
    /// NAT (`-m`, "Masq").
    Masq,
    /// IP-in-IP tunnelling (`-i`, "Tunnel").
    Tunnel,
    /// The router itself serves ("Local").
    Local,
    /// The source does not say: node_exporter's ipvs metrics (`--router prometheus:…`) carry
    /// no forwarding method. Never sent to the kernel: a change is refused without the method.
    Unknown,
}

impl Forward {
    /// As `/proc/net/ip_vs` and `ipvsadm -L` print it.
    pub fn from_proc(s: &str) -> Option<Self> {
        match s {
            "Route" => Some(Self::Route),
            "Masq" => Some(Self::Masq),
            "Tunnel" => Some(Self::Tunnel),
            "Local" => Some(Self::Local),
            _ => None,
        }
    }

    /// As `/proc/net/ip_vs` prints it; `?` when the source does not say.
    pub fn as_proc(self) -> &'static str {
        match self {
            Self::Route => "Route",
            Self::Masq => "Masq",
            Self::Tunnel => "Tunnel",
            Self::Local => "Local",
            Self::Unknown => "?",
        }
    }

    /// The JSON's name; `None` when the source does not say (written as null).
    pub fn known_str(self) -> Option<&'static str> {
        match self {
            Self::Route => Some("route"),
            Self::Masq => Some("masq"),
            Self::Tunnel => Some("tunnel"),
            Self::Local => Some("local"),
            Self::Unknown => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.known_str().unwrap_or("unknown")
    }

    /// The kernel's IP_VS_CONN_F_* forwarding value.
    pub(crate) fn from_conn_flags(flags: u32) -> Option<Self> {
        match flags & 0x0007 {
            0 => Some(Self::Masq),
            1 => Some(Self::Local),
            2 => Some(Self::Tunnel),
            3 => Some(Self::Route),
            _ => None,
        }
    }

    /// `None` for [`Forward::Unknown`], which no change may send.
    pub(crate) fn conn_flags(self) -> Option<u32> {
        match self {
            Self::Masq => Some(0),
            Self::Local => Some(1),
            Self::Tunnel => Some(2),
            Self::Route => Some(3),
            Self::Unknown => None,
        }
    }
}

/// Cumulative IPVS counters, as `ipvsadm --stats` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpvsCounters {
    pub conns: u64,
    pub in_packets: u64,
    pub out_packets: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// Per-second rates. The kernel's own estimates (`ipvsadm --rate`) use this type, and so do rates
/// lbtop derives from counter deltas.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct IpvsRates {
    pub cps: f64,
    pub in_pps: f64,
    pub out_pps: f64,
    pub in_bps: f64,
    pub out_bps: f64,
}

/// How a tunnelling real server encapsulates (`ipvsadm --tun-type`, kernel 5.3+): known from netlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelKind {
    Ipip,
    Gue,
    Gre,
    /// A type this version of lbtop does not know, as the kernel numbered it.
    Other(u8),
}

impl TunnelKind {
    /// The kernel's IP_VS_CONN_F_TUNNEL_TYPE_* number.
    pub fn from_kernel(n: u8) -> Self {
        match n {
            0 => Self::Ipip,
            1 => Self::Gue,
            2 => Self::Gre,
            n => Self::Other(n),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipip => "ipip",
            Self::Gue => "gue",
            Self::Gre => "gre",
            Self::Other(_) => "other",
        }
    }
}

/// The encapsulation of a `Tunnel` real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelEncap {
    pub kind: TunnelKind,
    /// The destination UDP port for GUE; 0 otherwise.
    pub port: u16,
    /// IP_VS_TUNNEL_ENCAP_FLAG_*: bit 0 checksum, bit 1 remote checksum offload.
    pub flags: u16,
}

/// IPVS-wide facts from netlink GET_INFO and GET_CONFIG (`ipvsadm -L --timeout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsInfo {
    /// `1.2.1`, as `ipvsadm` prints it in `IP Virtual Server version 1.2.1 (size=4096)`.
    pub version: String,
    /// Buckets of the connection hash table (`size=` above).
    pub conn_table_size: u32,
    #[serde(default)]
    pub timeouts: Option<IpvsTimeouts>,
}

/// Connection timeouts in seconds (`ipvsadm -L --timeout`: tcp tcpfin udp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpvsTimeouts {
    pub tcp_s: u32,
    pub tcp_fin_s: u32,
    pub udp_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persistence {
    pub timeout_s: u32,
    /// `255.255.255.255` for IPv4, a prefix length such as `128` for IPv6.
    pub netmask: String,
}

/// A real server as the router reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RealServerSample {
    pub address: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: i32,
    #[serde(default)]
    pub upper_threshold: u32,
    #[serde(default)]
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    /// Known from netlink and `ipvsadm --persistent-conn`; `/proc/net/ip_vs` lacks it.
    #[serde(default)]
    pub persistent_conns: Option<u32>,
    #[serde(default)]
    pub totals: Option<IpvsCounters>,
    #[serde(default)]
    pub rates: Option<IpvsRates>,
    /// Encapsulation of a `Tunnel` real server; from netlink only, `None` for other methods.
    #[serde(default)]
    pub tunnel: Option<TunnelEncap>,
}

impl RealServerSample {
    pub fn id(&self) -> String {
        SocketText(self.address, self.port).to_string()
    }
}

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VirtualServiceSample {
    pub key: ServiceKey,
    /// `None` where the source does not say (node_exporter's ipvs metrics).
    pub scheduler: Option<String>,
    #[serde(default)]
    pub persistent: Option<Persistence>,
    /// One-packet scheduling (UDP).
    #[serde(default)]
    pub ops: bool,
    #[serde(default)]
    pub totals: Option<IpvsCounters>,
    #[serde(default)]
    pub rates: Option<IpvsRates>,
    /// The kernel's IP_VS_SVC_F_* bits (persistent, hashed, one-packet, scheduler flags 1-3);
    /// from netlink only.
    #[serde(default)]
    pub flags: Option<u32>,
    /// The persistence engine (`--pe sip`), when one is set; from netlink only.
    #[serde(default)]
    pub pe_name: Option<String>,
    pub reals: Vec<RealServerSample>,
}

/// `/proc/net/ip_vs_conn` summed up; the table itself can hold millions of rows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConnSummary {
    pub total: u64,
    pub by_state: BTreeMap<String, u64>,
    /// Keyed by real server `addr:port` (IPv6 bracketed), then state.
    pub by_real_state: BTreeMap<String, BTreeMap<String, u64>>,
    /// Clients with the most entries, most first.
    pub top_clients: Vec<(IpAddr, u64)>,
}

/// Router-wide counters and rates, from `/proc/net/ip_vs_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct IpvsGlobalStats {
    pub totals: IpvsCounters,
    /// The kernel's estimates; `None` where the source gives the counters only (Prometheus),
    /// and the rates are derived from two samples' counters.
    pub rates: Option<IpvsRates>,
}

/// Where the router data came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouterSourceKind {
    Netlink,
    Proc,
    Ssh,
    /// `lbtop agent` on the router, over SSH: netlink there.
    Agent,
    /// node_exporter's ipvs metrics, from Prometheus (`--router prometheus:INSTANCE`):
    /// read-only, and without what [`RouterSourceKind::unknown_fields`] lists.
    Prometheus,
}

impl RouterSourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Netlink => "netlink",
            Self::Proc => "proc",
            Self::Ssh => "ssh",
            Self::Agent => "agent",
            Self::Prometheus => "prometheus",
        }
    }

    /// The fields of services and real servers this source cannot know, by their JSON names:
    /// shown as null or "?", never as a number it did not give.
    pub fn unknown_fields(self) -> &'static [&'static str] {
        match self {
            Self::Prometheus => &[
                "scheduler",
                "persistent",
                "forward",
                "upper_threshold",
                "lower_threshold",
                "persistent_conns",
                "totals",
                "rates",
            ],
            Self::Netlink | Self::Proc | Self::Ssh | Self::Agent => &[],
        }
    }
}

/// One poll of the router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterSample {
    pub time: Timestamp,
    pub source: RouterSourceKind,
    pub services: Vec<VirtualServiceSample>,
    #[serde(default)]
    pub global: Option<IpvsGlobalStats>,
    #[serde(default)]
    pub connections: Option<ConnSummary>,
    /// Things the operator should know about this sample, such as a fallback that was taken.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Version, connection-table size and timeouts; from netlink only.
    #[serde(default)]
    pub ipvs: Option<IpvsInfo>,
    /// When the parts that are not read at every poll were read, where that was before this
    /// sample's own time.
    #[serde(default, skip_serializing_if = "PartTimes::is_fresh")]
    pub parts: PartTimes,
    /// The router's forwarding and IPVS expiry settings, where they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctl: Option<RouterSysctl>,
    /// The router's own addresses, where they were read: whether it holds each VIP (and so is
    /// the VRRP master of a pair), and which addresses masquerading real servers must route
    /// back through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addrs: Option<LocalAddrs>,
    /// The programs running on the router that manage the IPVS table (keepalived, ldirectord,
    /// pulse), from its process table, read when the table's shape changes; `None` where not
    /// read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
    /// The connection-sync daemons running on the router (IPVS_CMD_GET_DAEMON, `ipvsadm -L
    /// --daemon`): none, a master, a backup, or both; `None` where not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<Vec<SyncDaemon>>,
}

/// One IPVS connection-sync daemon: a master sends the director's connections to its backups,
/// a backup makes them from what it receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDaemon {
    pub role: SyncRole,
    /// The interface it sends or listens on (`IPVS_DAEMON_ATTR_MCAST_IFN`), at most 15 bytes.
    pub mcast_ifn: String,
    /// The sync id (`IPVS_DAEMON_ATTR_SYNC_ID`): a master's messages are taken only by backups
    /// with the same id.
    pub syncid: u32,
}

/// Which of the two sync daemons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    Master,
    Backup,
}

impl SyncRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
    }
}

/// The names in a process table (`/proc/PID/comm`) of the programs that manage an IPVS table.
pub const TABLE_OWNERS: [&str; 4] = ["keepalived", "ldirectord", "pulse", "nanny"];

/// A host's local addresses: the IPv4 `LOCAL` entries of `/proc/net/fib_trie` (address, prefix
/// length) and the IPv6 addresses of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct LocalAddrs {
    pub v4: Vec<(std::net::Ipv4Addr, u8)>,
    pub v6: Vec<std::net::Ipv6Addr>,
}

impl LocalAddrs {
    /// Whether `a` is one of these addresses (for IPv4, inside a `LOCAL` prefix).
    pub fn holds(&self, a: IpAddr) -> bool {
        match a {
            IpAddr::V4(a) => self.v4.iter().any(|&(p, len)| {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len.min(32)))
                };
                u32::from(p) & mask == u32::from(a) & mask
            }),
            IpAddr::V6(a) => self.v6.contains(&a),
        }
    }
}

/// The router's settings the direct-routing checks and the drain confirmation look at, from
/// `/proc/sys/net`; `None` where a file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RouterSysctl {
    /// `net.ipv4.ip_forward`: a masquerading service needs it on.
    pub ip_forward: Option<u32>,
    /// `net.ipv4.vs.expire_nodest_conn`.
    pub expire_nodest_conn: Option<u32>,
    /// `net.ipv4.vs.expire_quiescent_template`: at 0, persistence templates keep sending
    /// clients to a drained server.
    pub expire_quiescent_template: Option<u32>,
}

impl RouterSample {
    /// When the per-service and per-real counters were read.
    pub(crate) fn counters_time(&self) -> Timestamp {
        self.parts.counters.unwrap_or(self.time)
    }

    /// The strings that came from the router made printable and bounded, once, where a sample
    /// enters lbtop (the shell program's replies, the agent's, a `--proc-root` snapshot, a
    /// recording): they reach the screen, the log, the JSON and the report. Clean strings are
    /// left as they are, without a copy.
    pub(crate) fn make_printable(&mut self) {
        use crate::model::text::{is_printable, make_printable};
        printable_services(&mut self.services);
        // Notes lbtop writes quote the router's own words (an ipvsadm error, a stderr line).
        for n in &mut self.notes {
            make_printable(n, 2000);
        }
        if let Some(info) = &mut self.ipvs {
            make_printable(&mut info.version, 40);
        }
        if let Some(c) = &mut self.connections {
            printable_keys(&mut c.by_state, 24);
            if c.by_real_state.keys().any(|k| !is_printable(k, 64))
                || c.by_real_state
                    .values()
                    .any(|states| states.keys().any(|k| !is_printable(k, 24)))
            {
                let mut clean: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
                for (mut real, mut states) in std::mem::take(&mut c.by_real_state) {
                    make_printable(&mut real, 64);
                    printable_keys(&mut states, 24);
                    let into = clean.entry(real).or_default();
                    for (state, n) in states {
                        let m = into.entry(state).or_default();
                        *m = m.saturating_add(n);
                    }
                }
                c.by_real_state = clean;
            }
        }
        // Only the names lbtop looks for, each once: anything else from the router is not shown.
        if let Some(owners) = &mut self.owners {
            let mut known: Vec<String> = TABLE_OWNERS
                .iter()
                .filter(|o| owners.iter().any(|n| n == *o))
                .map(|o| o.to_string())
                .collect();
            std::mem::swap(owners, &mut known);
        }
        if let Some(sync) = &mut self.sync {
            sync.truncate(2);
            for d in sync {
                make_printable(&mut d.mcast_ifn, 15);
            }
        }
    }
}

/// The services' strings from the router made printable (see [`RouterSample::make_printable`]).
pub(crate) fn printable_services(services: &mut [VirtualServiceSample]) {
    use crate::model::text::make_printable;
    for s in services {
        if let Some(sched) = &mut s.scheduler {
            make_printable(sched, 32);
        }
        if let Some(pe) = &mut s.pe_name {
            make_printable(pe, 32);
        }
        if let Some(p) = &mut s.persistent {
            make_printable(&mut p.netmask, 64);
        }
    }
}

/// The map with its keys made printable; counts of keys that become equal are added.
fn printable_keys(map: &mut BTreeMap<String, u64>, max_chars: usize) {
    if map
        .keys()
        .all(|k| crate::model::text::is_printable(k, max_chars))
    {
        return;
    }
    let mut clean = BTreeMap::new();
    for (mut k, v) in std::mem::take(map) {
        crate::model::text::make_printable(&mut k, max_chars);
        let n: &mut u64 = clean.entry(k).or_default();
        *n = n.saturating_add(v);
    }
    *map = clean;
}

/// When a router sample's costlier parts were read. A router over SSH reads `/proc/net/ip_vs`
/// at every poll, and the rest (ipvsadm's counters, thresholds and persistent-connection counts,
/// the connection table) as often as a CPU budget on the router allows; a sample carries the
/// latest of each, with the time it was read. `None`: read with the sample itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PartTimes {
    /// Per-service and per-real counters (`ipvsadm --stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<Timestamp>,
    /// Thresholds, persistent-connection counts, persistence timeouts and tunnel settings. Over
    /// netlink, the oldest real servers carried from an earlier dump: those of services where no
    /// counter, rate or connection moved, whose weights and thresholds only another tool can
    /// have changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Timestamp>,
    /// The connection table summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<Timestamp>,
}

impl PartTimes {
    pub(crate) fn is_fresh(&self) -> bool {
        *self == PartTimes::default()
    }

    /// How much older than `sample_time` each part is, in seconds: counters, details and the
    /// connection table (0 for a part read with the sample).
    pub fn ages(&self, sample_time: Timestamp) -> PartAges {
        let age = |t: Option<Timestamp>| t.map_or(0.0, |t| sample_time.seconds_since(t).max(0.0));
        PartAges {
            counters: age(self.counters),
            details: age(self.details),
            connections: age(self.connections),
        }
    }
}

/// [`PartTimes`] as ages in seconds, as the JSON gives them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct PartAges {
    pub counters: f64,
    pub details: f64,
    pub connections: f64,
}

// ───────────────────────────── source events ─────────────────────────────

/// A host's connection state as the operator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostStatus {
    Connecting,
    Ok,
    Unreachable,
    AuthFailed,
    HostKeyUnknown,
    HostKeyChanged,
    Error,
    /// The source no longer lists the host (an instance gone from Prometheus's targets, a real
    /// server gone from the router's table) and has stopped watching it: the state forgets it.
    Gone,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Ok => "ok",
            Self::Unreachable => "unreachable",
            Self::AuthFailed => "auth-failed",
            Self::HostKeyUnknown => "host-key-unknown",
            Self::HostKeyChanged => "host-key-changed",
            Self::Error => "error",
            Self::Gone => "gone",
        }
    }
}

/// What one source reports: a sample, or a change of its status (with a message on failure).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Report<S> {
    Sample(S),
    Status {
        time: Timestamp,
        status: HostStatus,
        message: Option<String>,
    },
}

/// Everything the sources send to the state; the recorder stores exactly these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SourceEvent {
    Router {
        host: String,
        report: Report<RouterSample>,
    },
    Node {
        name: String,
        host: String,
        report: Report<NodeSample>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seconds_between_any_two_times_do_not_overflow() {
        let (a, b) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert!((b.seconds_since(a) - 18_446_744_073_709_551.615).abs() < 1e3);
        assert!(a.seconds_since(b) < -1.8e16);
        assert!((Timestamp(1500).seconds_since(Timestamp(500)) - 1.0).abs() < f64::EPSILON);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn rfc3339_is_humantimes_format_for_every_time_it_can_write(
            ms in 0i64..=253_402_300_799_999,
        ) {
            let t = Timestamp(ms);
            let want = humantime::format_rfc3339_millis(t.to_system()).to_string();
            prop_assert_eq!(t.rfc3339(), want);
        }
    }

    #[test]
    fn rfc3339_writes_times_before_1970_and_clamps_beyond_its_four_digit_years() {
        assert_eq!(Timestamp(-1).rfc3339(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            Timestamp(951_782_400_000).rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(Timestamp(i64::MIN).rfc3339(), "0000-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(i64::MAX).rfc3339(), "9999-12-31T23:59:59.999Z");
    }
}
