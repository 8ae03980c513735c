//! IPVS over generic netlink, as `ipvsadm` itself reads it: virtual services, real servers,
//! cumulative counters (STATS64, else STATS), the kernel's rate estimates, thresholds, persistent
//! connections, tunnel encapsulation, version, connection-table size and timeouts.
//!
//! The kernel allows every IPVS command only to root or CAP_NET_ADMIN; `local` falls back to the
//! world-readable `/proc/net/ip_vs` when it gets [`NetlinkError::PermissionDenied`]. The connection
//! table is not in netlink at all: `local` reads `/proc/net/ip_vs_conn` beside it.
//!
//! neli carries the socket, the netlink and generic-netlink framing, the controller lookup and the
//! kernel's error messages. The IPVS attributes nested inside (dozens per real server) are walked
//! here in place, without copying, and every one is checked for its size before it is read.

use std::collections::HashMap;
use std::fmt;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use neli::FromBytes;
use neli::ToBytes;
use neli::consts::genl::{CtrlAttr, CtrlCmd};
use neli::consts::nl::{GenlId, NlmF, Nlmsg};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::nl::{NlPayload, Nlmsghdr, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, GenlBuffer};
use neli::utils::Groups;

use crate::model::sample::{
    AddressFamily, Forward, IpvsCounters, IpvsInfo, IpvsRates, IpvsTimeouts, Persistence, Protocol,
    RealServerSample, ServiceKey, TunnelEncap, TunnelKind, VirtualServiceSample,
};

/// Protocol constants of the IPVS generic-netlink family, written from the kernel's
/// `include/uapi/linux/ip_vs.h` (the enums there count from 0 in the order given).
#[allow(dead_code)]
pub mod ipvs {
    /// `IPVS_GENL_NAME`, `IPVS_GENL_VERSION`.
    pub const GENL_NAME: &str = "IPVS";
    pub const GENL_VERSION: u8 = 0x1;

    // enum { IPVS_CMD_UNSPEC = 0, IPVS_CMD_NEW_SERVICE, ... }
    pub const CMD_NEW_SERVICE: u8 = 1;
    pub const CMD_SET_SERVICE: u8 = 2;
    pub const CMD_DEL_SERVICE: u8 = 3;
    pub const CMD_GET_SERVICE: u8 = 4;
    pub const CMD_NEW_DEST: u8 = 5;
    pub const CMD_SET_DEST: u8 = 6;
    pub const CMD_DEL_DEST: u8 = 7;
    pub const CMD_GET_DEST: u8 = 8;
    pub const CMD_NEW_DAEMON: u8 = 9;
    pub const CMD_DEL_DAEMON: u8 = 10;
    pub const CMD_GET_DAEMON: u8 = 11;
    pub const CMD_SET_CONFIG: u8 = 12;
    pub const CMD_GET_CONFIG: u8 = 13;
    pub const CMD_SET_INFO: u8 = 14;
    pub const CMD_GET_INFO: u8 = 15;
    pub const CMD_ZERO: u8 = 16;
    pub const CMD_FLUSH: u8 = 17;

    // enum { IPVS_CMD_ATTR_UNSPEC = 0, ... }: first level of a message.
    pub const CMD_ATTR_SERVICE: u16 = 1;
    pub const CMD_ATTR_DEST: u16 = 2;
    pub const CMD_ATTR_DAEMON: u16 = 3;
    pub const CMD_ATTR_TIMEOUT_TCP: u16 = 4;
    pub const CMD_ATTR_TIMEOUT_TCP_FIN: u16 = 5;
    pub const CMD_ATTR_TIMEOUT_UDP: u16 = 6;

    // enum { IPVS_SVC_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_SERVICE.
    pub const SVC_ATTR_AF: u16 = 1;
    pub const SVC_ATTR_PROTOCOL: u16 = 2;
    pub const SVC_ATTR_ADDR: u16 = 3;
    pub const SVC_ATTR_PORT: u16 = 4;
    pub const SVC_ATTR_FWMARK: u16 = 5;
    pub const SVC_ATTR_SCHED_NAME: u16 = 6;
    pub const SVC_ATTR_FLAGS: u16 = 7;
    pub const SVC_ATTR_TIMEOUT: u16 = 8;
    pub const SVC_ATTR_NETMASK: u16 = 9;
    pub const SVC_ATTR_STATS: u16 = 10;
    pub const SVC_ATTR_PE_NAME: u16 = 11;
    pub const SVC_ATTR_STATS64: u16 = 12;

    // enum { IPVS_DEST_ATTR_UNSPEC = 0, ... }: inside IPVS_CMD_ATTR_DEST.
    pub const DEST_ATTR_ADDR: u16 = 1;
    pub const DEST_ATTR_PORT: u16 = 2;
    pub const DEST_ATTR_FWD_METHOD: u16 = 3;
    pub const DEST_ATTR_WEIGHT: u16 = 4;
    pub const DEST_ATTR_U_THRESH: u16 = 5;
    pub const DEST_ATTR_L_THRESH: u16 = 6;
    pub const DEST_ATTR_ACTIVE_CONNS: u16 = 7;
    pub const DEST_ATTR_INACT_CONNS: u16 = 8;
    pub const DEST_ATTR_PERSIST_CONNS: u16 = 9;
    pub const DEST_ATTR_STATS: u16 = 10;
    pub const DEST_ATTR_ADDR_FAMILY: u16 = 11;
    pub const DEST_ATTR_STATS64: u16 = 12;
    pub const DEST_ATTR_TUN_TYPE: u16 = 13;
    pub const DEST_ATTR_TUN_PORT: u16 = 14;
    pub const DEST_ATTR_TUN_FLAGS: u16 = 15;

    // enum { IPVS_STATS_ATTR_UNSPEC = 0, ... }: inside the STATS and STATS64 nests.
    pub const STATS_ATTR_CONNS: u16 = 1;
    pub const STATS_ATTR_INPKTS: u16 = 2;
    pub const STATS_ATTR_OUTPKTS: u16 = 3;
    pub const STATS_ATTR_INBYTES: u16 = 4;
    pub const STATS_ATTR_OUTBYTES: u16 = 5;
    pub const STATS_ATTR_CPS: u16 = 6;
    pub const STATS_ATTR_INPPS: u16 = 7;
    pub const STATS_ATTR_OUTPPS: u16 = 8;
    pub const STATS_ATTR_INBPS: u16 = 9;
    pub const STATS_ATTR_OUTBPS: u16 = 10;
    pub const STATS_ATTR_PAD: u16 = 11;

    // enum { IPVS_INFO_ATTR_UNSPEC = 0, ... }: the GET_INFO reply.
    pub const INFO_ATTR_VERSION: u16 = 1;
    pub const INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

    // Virtual service flags (IP_VS_SVC_F_*).
    pub const SVC_F_PERSISTENT: u32 = 0x0001;
    pub const SVC_F_HASHED: u32 = 0x0002;
    pub const SVC_F_ONEPACKET: u32 = 0x0004;
    pub const SVC_F_SCHED1: u32 = 0x0008;
    pub const SVC_F_SCHED2: u32 = 0x0010;
    pub const SVC_F_SCHED3: u32 = 0x0020;

    /// `IP_VS_CONN_F_FWD_MASK`: the forwarding method in a real server's connection flags.
    pub const CONN_F_FWD_MASK: u32 = 0x0007;

    /// `union nf_inet_addr`, as IPVS_SVC_ATTR_ADDR and IPVS_DEST_ATTR_ADDR carry it.
    pub const INET_ADDR_LEN: usize = 16;
}

/// Address families as the kernel numbers them (`include/linux/socket.h`).
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Generic netlink controller protocol version (`CTRL_ATTR_VERSION` of nlctrl).
const CTRL_VERSION: u8 = 2;

/// Bytes asked for per receive. The kernel sizes a dump's datagrams by the largest receive it has
/// seen on the socket, at least NLMSG_GOODSIZE (`SKB_WITH_OVERHEAD(min(PAGE_SIZE, 8192))`, 7872
/// bytes at most): asking for exactly that much keeps its buffers at 8 KiB, which in the lab
/// costs a third less kernel time per dump than the 32 KiB a large receive buffer brings. A
/// datagram that does not fit is reported (MSG_TRUNC), never silently cut, and later polls read
/// with [`MAX_RECV_LEN`].
static RECV_LEN: AtomicUsize = AtomicUsize::new(7872);

/// The kernel's largest dump datagram (`SKB_WITH_OVERHEAD(32768)` is below this).
const MAX_RECV_LEN: usize = 32 * 1024;

/// Netlink header: length, type, flags, sequence, port id.
const NLMSG_HDRLEN: usize = 16;

/// Types below this are netlink's own (NOOP, ERROR, DONE, OVERRUN), not a family's.
const NLMSG_MIN_TYPE: u16 = 0x10;

/// Generic netlink header: cmd, version, reserved.
const GENL_HDRLEN: usize = 4;

/// Why IPVS could not be read over netlink. Each message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The `IPVS` generic-netlink family does not exist: the module is not loaded.
    #[error("IPVS is not available: modprobe ip_vs")]
    Unavailable,
    /// The kernel refused an IPVS command (EPERM): it needs root or CAP_NET_ADMIN.
    #[error("IPVS netlink needs root or CAP_NET_ADMIN")]
    PermissionDenied,
    #[error("IPVS netlink: {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("IPVS netlink: {what}: the kernel answered {}", std::io::Error::from_raw_os_error(*errno))]
    Kernel { what: &'static str, errno: i32 },
    #[error("IPVS netlink: cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
    /// The kernel sent something lbtop cannot read; `what` names the message or attribute.
    #[error("IPVS netlink: malformed {what}: {message}")]
    Malformed { what: String, message: String },
}

fn malformed(what: impl Into<String>, message: impl Into<String>) -> NetlinkError {
    NetlinkError::Malformed {
        what: what.into(),
        message: message.into(),
    }
}

fn encode(what: &'static str) -> impl FnOnce(&dyn fmt::Display) -> NetlinkError {
    move |e| NetlinkError::Encode {
        what,
        message: e.to_string(),
    }
}

/// An errno from the kernel, as the error the operator should see.
fn kernel_error(what: &'static str, errno: i32) -> NetlinkError {
    match std::io::Error::from_raw_os_error(errno).kind() {
        std::io::ErrorKind::PermissionDenied => NetlinkError::PermissionDenied,
        // An unknown family id (the module went away) or an unknown family name.
        std::io::ErrorKind::NotFound => NetlinkError::Unavailable,
        _ => NetlinkError::Kernel { what, errno },
    }
}

// ───────────────────────────── attributes, in place ─────────────────────────────

/// The attributes of one nest, walked in place: `(type, payload)`, the nested and byte-order bits
/// of the type masked off. A length that runs past the nest ends the walk with [`BadLength`].
struct Attrs<'a> {
    data: &'a [u8],
}

/// An attribute whose length does not fit its nest (kept small: it travels through every step).
#[derive(Debug, Clone, Copy)]
struct BadLength {
    kind: Option<u16>,
    claimed: usize,
    left: usize,
}

impl BadLength {
    fn in_nest(self, nest: &'static str) -> NetlinkError {
        match self.kind {
            Some(kind) => malformed(
                nest,
                format!(
                    "attribute {kind} claims {} bytes, {} left",
                    self.claimed, self.left
                ),
            ),
            None => malformed(
                nest,
                format!("{} trailing bytes, too short for an attribute", self.left),
            ),
        }
    }
}

impl<'a> Attrs<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), BadLength>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let data = self.data;
        let (header, _) = match data.split_first_chunk::<4>() {
            Some(h) => h,
            None if data.is_empty() => return None,
            None => {
                self.data = &[];
                return Some(Err(BadLength {
                    kind: None,
                    claimed: 0,
                    left: data.len(),
                }));
            }
        };
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let kind = u16::from_ne_bytes([header[2], header[3]]) & 0x3fff;
        let Some(payload) = data.get(4..len) else {
            self.data = &[];
            return Some(Err(BadLength {
                kind: Some(kind),
                claimed: len,
                left: data.len(),
            }));
        };
        self.data = data.get((len + 3) & !3..).unwrap_or(&[]);
        Some(Ok((kind, payload)))
    }
}

fn fixed<const N: usize>(name: &'static str, p: &[u8]) -> Result<[u8; N], NetlinkError> {
    p.try_into()
        .map_err(|_| malformed(name, format!("{} bytes, expected {N}", p.len())))
}

fn get_u8(name: &'static str, p: &[u8]) -> Result<u8, NetlinkError> {
    Ok(fixed::<1>(name, p)?[0])
}

fn get_u16(name: &'static str, p: &[u8]) -> Result<u16, NetlinkError> {
    fixed(name, p).map(u16::from_ne_bytes)
}

fn get_be16(name: &'static str, p: &[u8]) -> Result<u16, NetlinkError> {
    fixed(name, p).map(u16::from_be_bytes)
}

fn get_u32(name: &'static str, p: &[u8]) -> Result<u32, NetlinkError> {
    fixed(name, p).map(u32::from_ne_bytes)
}

fn get_u64(name: &'static str, p: &[u8]) -> Result<u64, NetlinkError> {
    fixed(name, p).map(u64::from_ne_bytes)
}

/// A NUL-terminated string attribute.
fn get_string(name: &'static str, p: &[u8]) -> Result<String, NetlinkError> {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end])
        .map(str::to_string)
        .map_err(|_| malformed(name, "not UTF-8"))
}

fn get_family(name: &'static str, p: &[u8]) -> Result<AddressFamily, NetlinkError> {
    match get_u16(name, p)? {
        AF_INET => Ok(AddressFamily::Inet),
        AF_INET6 => Ok(AddressFamily::Inet6),
        n => Err(malformed(name, format!("unknown address family {n}"))),
    }
}

/// `union nf_inet_addr`: the first 4 bytes for IPv4, all 16 for IPv6.
fn get_addr(name: &'static str, family: AddressFamily, p: &[u8]) -> Result<IpAddr, NetlinkError> {
    match family {
        AddressFamily::Inet => {
            let b: [u8; 4] = p
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed(name, format!("{} bytes for an IPv4 address", p.len())))?;
            Ok(IpAddr::V4(Ipv4Addr::from(b)))
        }
        AddressFamily::Inet6 => {
            let b: [u8; 16] = p
                .get(..16)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| malformed(name, format!("{} bytes for an IPv6 address", p.len())))?;
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
    }
}

fn missing(attr: &'static str, nest: &'static str) -> NetlinkError {
    malformed(nest, format!("{attr} missing"))
}

/// Counters and the kernel's rate estimates from a STATS or STATS64 nest.
fn parse_stats(
    data: &[u8],
    nest: &'static str,
    wide: bool,
) -> Result<(IpvsCounters, IpvsRates), NetlinkError> {
    use ipvs::*;
    // STATS carries 32-bit counts and rates and 64-bit bytes; STATS64 carries everything in 64.
    let num = |name: &'static str, p: &[u8], is_u64: bool| -> Result<u64, NetlinkError> {
        if is_u64 {
            get_u64(name, p)
        } else {
            get_u32(name, p).map(u64::from)
        }
    };
    let mut v: [Option<u64>; 10] = [None; 10];
    const NAMES: [&str; 10] = [
        "IPVS_STATS_ATTR_CONNS",
        "IPVS_STATS_ATTR_INPKTS",
        "IPVS_STATS_ATTR_OUTPKTS",
        "IPVS_STATS_ATTR_INBYTES",
        "IPVS_STATS_ATTR_OUTBYTES",
        "IPVS_STATS_ATTR_CPS",
        "IPVS_STATS_ATTR_INPPS",
        "IPVS_STATS_ATTR_OUTPPS",
        "IPVS_STATS_ATTR_INBPS",
        "IPVS_STATS_ATTR_OUTBPS",
    ];
    for a in Attrs::new(data) {
        let (kind, p) = a.map_err(|e| e.in_nest(nest))?;
        if (STATS_ATTR_CONNS..=STATS_ATTR_OUTBPS).contains(&kind) {
            let i = usize::from(kind - STATS_ATTR_CONNS);
            let is_u64 = wide || kind == STATS_ATTR_INBYTES || kind == STATS_ATTR_OUTBYTES;
            v[i] = Some(num(NAMES[i], p, is_u64)?);
        }
        // IPVS_STATS_ATTR_PAD and attributes of later kernels are skipped.
    }
    let get = |i: usize| v[i].ok_or_else(|| missing(NAMES[i], nest));
    let counters = IpvsCounters {
        conns: get(0)?,
        in_packets: get(1)?,
        out_packets: get(2)?,
        in_bytes: get(3)?,
        out_bytes: get(4)?,
    };
    let rates = IpvsRates {
        cps: get(5)? as f64,
        in_pps: get(6)? as f64,
        out_pps: get(7)? as f64,
        in_bps: get(8)? as f64,
        out_bps: get(9)? as f64,
    };
    Ok((counters, rates))
}

/// Which service a GET_DEST dump is for: its identity attributes as the kernel sent them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ServiceIdentity {
    af: u16,
    fwmark: Option<u32>,
    protocol: u16,
    addr: [u8; ipvs::INET_ADDR_LEN],
    port: u16,
}

/// One IPVS_CMD_ATTR_SERVICE nest as a sample without real servers.
fn parse_service(data: &[u8]) -> Result<(VirtualServiceSample, ServiceIdentity), NetlinkError> {
    use ipvs::*;
    const NEST: &str = "IPVS_CMD_ATTR_SERVICE";
    let mut af = None;
    let mut protocol = None;
    let mut addr: Option<&[u8]> = None;
    let mut port = None;
    let mut fwmark = None;
    let mut sched = None;
    let mut flags = None;
    let mut timeout = None;
    let mut netmask = None;
    let mut stats = None;
    let mut stats64 = None;
    let mut pe_name = None;
    for a in Attrs::new(data) {
        let (kind, p) = a.map_err(|e| e.in_nest(NEST))?;
        match kind {
            SVC_ATTR_AF => af = Some((get_u16("IPVS_SVC_ATTR_AF", p)?, p)),
            SVC_ATTR_PROTOCOL => protocol = Some(get_u16("IPVS_SVC_ATTR_PROTOCOL", p)?),
            SVC_ATTR_ADDR => addr = Some(p),
            SVC_ATTR_PORT => port = Some(get_be16("IPVS_SVC_ATTR_PORT", p)?),
            SVC_ATTR_FWMARK => fwmark = Some(get_u32("IPVS_SVC_ATTR_FWMARK", p)?),
            SVC_ATTR_SCHED_NAME => sched = Some(get_string("IPVS_SVC_ATTR_SCHED_NAME", p)?),
            // struct ip_vs_flags { __u32 flags; __u32 mask; }
            SVC_ATTR_FLAGS => {
                let b = fixed::<8>("IPVS_SVC_ATTR_FLAGS", p)?;
                flags = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
            SVC_ATTR_TIMEOUT => timeout = Some(get_u32("IPVS_SVC_ATTR_TIMEOUT", p)?),
            SVC_ATTR_NETMASK => netmask = Some(fixed::<4>("IPVS_SVC_ATTR_NETMASK", p)?),
            SVC_ATTR_STATS => stats = Some(p),
            SVC_ATTR_STATS64 => stats64 = Some(p),
            SVC_ATTR_PE_NAME => pe_name = Some(get_string("IPVS_SVC_ATTR_PE_NAME", p)?),
            _ => {}
        }
    }
    let (af, af_bytes) = af.ok_or_else(|| missing("IPVS_SVC_ATTR_AF", NEST))?;
    let family = get_family("IPVS_SVC_ATTR_AF", af_bytes)?;
    let mut identity = ServiceIdentity {
        af,
        fwmark: None,
        protocol: 0,
        addr: [0; INET_ADDR_LEN],
        port: 0,
    };
    let key = match fwmark {
        Some(mark) if mark != 0 => {
            identity.fwmark = Some(mark);
            ServiceKey::Fwmark { mark, family }
        }
        _ => {
            let proto = protocol.ok_or_else(|| missing("IPVS_SVC_ATTR_PROTOCOL", NEST))?;
            let raw = addr.ok_or_else(|| missing("IPVS_SVC_ATTR_ADDR", NEST))?;
            let port = port.ok_or_else(|| missing("IPVS_SVC_ATTR_PORT", NEST))?;
            let address = get_addr("IPVS_SVC_ATTR_ADDR", family, raw)?;
            let n = raw.len().min(INET_ADDR_LEN);
            identity.addr[..n].copy_from_slice(&raw[..n]);
            identity.protocol = proto;
            identity.port = port;
            ServiceKey::Addr {
                protocol: Protocol::from_ipproto(proto).ok_or_else(|| {
                    malformed(
                        "IPVS_SVC_ATTR_PROTOCOL",
                        format!("unknown protocol {proto}"),
                    )
                })?,
                address,
                port,
            }
        }
    };
    let scheduler = sched.ok_or_else(|| missing("IPVS_SVC_ATTR_SCHED_NAME", NEST))?;
    let bits = flags.ok_or_else(|| missing("IPVS_SVC_ATTR_FLAGS", NEST))?;
    let persistent = if bits & SVC_F_PERSISTENT != 0 {
        let timeout_s = timeout.ok_or_else(|| missing("IPVS_SVC_ATTR_TIMEOUT", NEST))?;
        let mask = netmask.ok_or_else(|| missing("IPVS_SVC_ATTR_NETMASK", NEST))?;
        Some(Persistence {
            timeout_s,
            netmask: match family {
                // An IPv4 mask in network order; an IPv6 prefix length as a host-order number.
                AddressFamily::Inet => Ipv4Addr::from(mask).to_string(),
                AddressFamily::Inet6 => u32::from_ne_bytes(mask).to_string(),
            },
        })
    } else {
        None
    };
    let (totals, rates) = match (stats64, stats) {
        (Some(p), _) => parse_stats(p, "IPVS_SVC_ATTR_STATS64", true).map(Some)?,
        (None, Some(p)) => parse_stats(p, "IPVS_SVC_ATTR_STATS", false).map(Some)?,
        (None, None) => None,
    }
    .unzip();
    Ok((
        VirtualServiceSample {
            key,
            scheduler,
            persistent,
            ops: bits & SVC_F_ONEPACKET != 0,
            totals,
            rates,
            flags: Some(bits),
            pe_name,
            reals: Vec::new(),
        },
        identity,
    ))
}

/// One IPVS_CMD_ATTR_DEST nest. `service_family` stands in for a kernel that does not send
/// IPVS_DEST_ATTR_ADDR_FAMILY (before 3.18, real servers always had the service's family).
fn parse_dest(
    data: &[u8],
    service_family: AddressFamily,
) -> Result<RealServerSample, NetlinkError> {
    use ipvs::*;
    const NEST: &str = "IPVS_CMD_ATTR_DEST";
    let mut addr: Option<&[u8]> = None;
    let mut port = None;
    let mut fwd = None;
    let mut weight = None;
    let mut u_thresh = 0;
    let mut l_thresh = 0;
    let mut active = None;
    let mut inactive = None;
    let mut persist = None;
    let mut stats = None;
    let mut stats64 = None;
    let mut family = service_family;
    let mut tun_type = None;
    let mut tun_port = 0;
    let mut tun_flags = 0;
    for a in Attrs::new(data) {
        let (kind, p) = a.map_err(|e| e.in_nest(NEST))?;
        match kind {
            DEST_ATTR_ADDR => addr = Some(p),
            DEST_ATTR_PORT => port = Some(get_be16("IPVS_DEST_ATTR_PORT", p)?),
            DEST_ATTR_FWD_METHOD => fwd = Some(get_u32("IPVS_DEST_ATTR_FWD_METHOD", p)?),
            // The kernel keeps the weight as an int and sends it as a u32.
            DEST_ATTR_WEIGHT => {
                weight = Some(i32::from_ne_bytes(fixed("IPVS_DEST_ATTR_WEIGHT", p)?));
            }
            DEST_ATTR_U_THRESH => u_thresh = get_u32("IPVS_DEST_ATTR_U_THRESH", p)?,
            DEST_ATTR_L_THRESH => l_thresh = get_u32("IPVS_DEST_ATTR_L_THRESH", p)?,
            DEST_ATTR_ACTIVE_CONNS => active = Some(get_u32("IPVS_DEST_ATTR_ACTIVE_CONNS", p)?),
            DEST_ATTR_INACT_CONNS => inactive = Some(get_u32("IPVS_DEST_ATTR_INACT_CONNS", p)?),
            DEST_ATTR_PERSIST_CONNS => {
                persist = Some(get_u32("IPVS_DEST_ATTR_PERSIST_CONNS", p)?);
            }
            DEST_ATTR_STATS => stats = Some(p),
            DEST_ATTR_STATS64 => stats64 = Some(p),
            DEST_ATTR_ADDR_FAMILY => family = get_family("IPVS_DEST_ATTR_ADDR_FAMILY", p)?,
            DEST_ATTR_TUN_TYPE => tun_type = Some(get_u8("IPVS_DEST_ATTR_TUN_TYPE", p)?),
            DEST_ATTR_TUN_PORT => tun_port = get_be16("IPVS_DEST_ATTR_TUN_PORT", p)?,
            DEST_ATTR_TUN_FLAGS => tun_flags = get_u16("IPVS_DEST_ATTR_TUN_FLAGS", p)?,
            _ => {}
        }
    }
    let address = get_addr(
        "IPVS_DEST_ATTR_ADDR",
        family,
        addr.ok_or_else(|| missing("IPVS_DEST_ATTR_ADDR", NEST))?,
    )?;
    let fwd = fwd.ok_or_else(|| missing("IPVS_DEST_ATTR_FWD_METHOD", NEST))?;
    let forward = Forward::from_conn_flags(fwd & CONN_F_FWD_MASK).ok_or_else(|| {
        malformed(
            "IPVS_DEST_ATTR_FWD_METHOD",
            format!("unknown forwarding method {fwd}"),
        )
    })?;
    let (totals, rates) = match (stats64, stats) {
        (Some(p), _) => parse_stats(p, "IPVS_DEST_ATTR_STATS64", true).map(Some)?,
        (None, Some(p)) => parse_stats(p, "IPVS_DEST_ATTR_STATS", false).map(Some)?,
        (None, None) => None,
    }
    .unzip();
    Ok(RealServerSample {
        address,
        port: port.ok_or_else(|| missing("IPVS_DEST_ATTR_PORT", NEST))?,
        forward,
        weight: weight.ok_or_else(|| missing("IPVS_DEST_ATTR_WEIGHT", NEST))?,
        upper_threshold: u_thresh,
        lower_threshold: l_thresh,
        active_conns: active.ok_or_else(|| missing("IPVS_DEST_ATTR_ACTIVE_CONNS", NEST))?,
        inactive_conns: inactive.ok_or_else(|| missing("IPVS_DEST_ATTR_INACT_CONNS", NEST))?,
        persistent_conns: persist,
        totals,
        rates,
        tunnel: match (forward, tun_type) {
            (Forward::Tunnel, Some(t)) => Some(TunnelEncap {
                kind: TunnelKind::from_kernel(t),
                port: tun_port,
                flags: tun_flags,
            }),
            _ => None,
        },
    })
}

/// `0x010201` as `1.2.1`.
fn version_text(v: u32) -> String {
    format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
}

// ───────────────────────────── the socket ─────────────────────────────

/// A generic netlink socket bound to the IPVS family. One per router source; polls reuse it.
pub struct IpvsNetlink {
    sock: NlSocket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
    /// The GET_DEST request of each service of the last poll, encoded: services rarely change,
    /// and a poll of a thousand of them then encodes none.
    dest_requests: HashMap<ServiceIdentity, Vec<u8>>,
}

/// Handles one reply message: its command and its top-level attribute bytes.
type Handler<'h> = dyn FnMut(u8, &[u8]) -> Result<(), NetlinkError> + 'h;

/// The payload of the first top-level attribute of type `kind` in a message of `what`.
fn top<'a>(
    attrs: &'a [u8],
    kind: u16,
    what: &'static str,
) -> Result<Option<&'a [u8]>, NetlinkError> {
    for a in Attrs::new(attrs) {
        let (k, p) = a.map_err(|e| e.in_nest(what))?;
        if k == kind {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// A top-level attribute for a request.
fn attr<P: neli::Size + ToBytes>(
    what: &'static str,
    kind: u16,
    payload: P,
) -> Result<Nlattr<u16, Buffer>, NetlinkError> {
    NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(kind)
                .build()
                .map_err(|e| encode(what)(&e))?,
        )
        .nla_payload(payload)
        .build()
        .map_err(|e| encode(what)(&e))
}

/// IPVS_CMD_ATTR_SERVICE with the attributes that identify a service, for GET_DEST.
fn identity_attr(id: &ServiceIdentity) -> Result<Nlattr<u16, Buffer>, NetlinkError> {
    use ipvs::*;
    const WHAT: &str = "IPVS_CMD_ATTR_SERVICE";
    let nest = NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(CMD_ATTR_SERVICE)
                .nla_nested(true)
                .build()
                .map_err(|e| encode(WHAT)(&e))?,
        )
        .nla_payload(Buffer::new())
        .build()
        .map_err(|e| encode(WHAT)(&e))?;
    let mut children = vec![attr("IPVS_SVC_ATTR_AF", SVC_ATTR_AF, id.af)?];
    match id.fwmark {
        Some(mark) => children.push(attr("IPVS_SVC_ATTR_FWMARK", SVC_ATTR_FWMARK, mark)?),
        None => {
            children.push(attr(
                "IPVS_SVC_ATTR_PROTOCOL",
                SVC_ATTR_PROTOCOL,
                id.protocol,
            )?);
            children.push(attr("IPVS_SVC_ATTR_ADDR", SVC_ATTR_ADDR, id.addr)?);
            children.push(attr(
                "IPVS_SVC_ATTR_PORT",
                SVC_ATTR_PORT,
                id.port.to_be_bytes(),
            )?);
        }
    }
    children
        .iter()
        .try_fold(nest, |n, a| n.nest(a))
        .map_err(|e| encode(WHAT)(&e))
}

impl IpvsNetlink {
    /// Opens a socket and resolves the `IPVS` family. [`NetlinkError::Unavailable`] when the
    /// module is not loaded. Resolving needs no privilege; the first query does.
    pub fn connect() -> Result<Self, NetlinkError> {
        let sock =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty()).map_err(|source| {
                NetlinkError::Io {
                    what: "open a generic netlink socket",
                    source,
                }
            })?;
        let mut me = Self {
            sock,
            family: u16::from(GenlId::Ctrl),
            seq: 0,
            buf: Vec::new(),
            dest_requests: HashMap::new(),
        };
        me.family = me.resolve_family()?;
        Ok(me)
    }

    /// The generic netlink id the kernel gave the IPVS family.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    fn resolve_family(&mut self) -> Result<u16, NetlinkError> {
        let name = attr(
            "CTRL_ATTR_FAMILY_NAME",
            u16::from(CtrlAttr::FamilyName),
            ipvs::GENL_NAME,
        )?;
        let attrs: GenlBuffer<u16, Buffer> = std::iter::once(name).collect();
        let mut id = None;
        self.transact(
            u16::from(GenlId::Ctrl),
            u8::from(CtrlCmd::Getfamily),
            CTRL_VERSION,
            attrs,
            false,
            "resolve the IPVS family",
            &mut |_, attrs| {
                if let Some(p) = top(attrs, u16::from(CtrlAttr::FamilyId), "CTRL_CMD_NEWFAMILY")? {
                    id = Some(get_u16("CTRL_ATTR_FAMILY_ID", p)?);
                }
                Ok(())
            },
        )?;
        id.ok_or_else(|| missing("CTRL_ATTR_FAMILY_ID", "CTRL_CMD_NEWFAMILY"))
    }

    /// Every virtual service with its real servers: one GET_SERVICE dump, then one GET_DEST dump
    /// per service (the kernel has no dump of all real servers at once).
    pub fn services(&mut self) -> Result<Vec<VirtualServiceSample>, NetlinkError> {
        use ipvs::*;
        let family = self.family;
        let mut services = Vec::new();
        self.transact(
            family,
            CMD_GET_SERVICE,
            GENL_VERSION,
            GenlBuffer::new(),
            true,
            "dump the virtual services (IPVS_CMD_GET_SERVICE)",
            &mut |_, attrs| {
                if let Some(p) = top(attrs, CMD_ATTR_SERVICE, "IPVS_CMD_NEW_SERVICE")? {
                    services.push(parse_service(p)?);
                }
                Ok(())
            },
        )?;
        let mut out = Vec::with_capacity(services.len());
        let mut previous = std::mem::take(&mut self.dest_requests);
        for (mut svc, id) in services {
            let family = match svc.key {
                ServiceKey::Addr {
                    address: IpAddr::V6(_),
                    ..
                }
                | ServiceKey::Fwmark {
                    family: AddressFamily::Inet6,
                    ..
                } => AddressFamily::Inet6,
                _ => AddressFamily::Inet,
            };
            let mut request = match previous.remove(&id) {
                Some(r) => r,
                None => request_bytes(
                    self.family,
                    CMD_GET_DEST,
                    GENL_VERSION,
                    std::iter::once(identity_attr(&id)?).collect(),
                    true,
                    "IPVS_CMD_GET_DEST",
                )?,
            };
            let reals = &mut svc.reals;
            self.exchange(
                &mut request,
                true,
                "dump the real servers (IPVS_CMD_GET_DEST)",
                &mut |_, attrs| {
                    if let Some(p) = top(attrs, CMD_ATTR_DEST, "IPVS_CMD_NEW_DEST")? {
                        reals.push(parse_dest(p, family)?);
                    }
                    Ok(())
                },
            )?;
            self.dest_requests.insert(id, request);
            out.push(svc);
        }
        Ok(out)
    }

    /// Version and connection-table size (GET_INFO) and the timeouts (GET_CONFIG).
    pub fn info(&mut self) -> Result<IpvsInfo, NetlinkError> {
        use ipvs::*;
        let mut version = None;
        let mut size = None;
        self.transact(
            self.family,
            CMD_GET_INFO,
            GENL_VERSION,
            GenlBuffer::new(),
            false,
            "read IPVS_CMD_GET_INFO",
            &mut |_, attrs| {
                if let Some(p) = top(attrs, INFO_ATTR_VERSION, "IPVS_CMD_SET_INFO")? {
                    version = Some(get_u32("IPVS_INFO_ATTR_VERSION", p)?);
                }
                if let Some(p) = top(attrs, INFO_ATTR_CONN_TAB_SIZE, "IPVS_CMD_SET_INFO")? {
                    size = Some(get_u32("IPVS_INFO_ATTR_CONN_TAB_SIZE", p)?);
                }
                Ok(())
            },
        )?;
        let mut timeouts = [None; 3];
        self.transact(
            self.family,
            CMD_GET_CONFIG,
            GENL_VERSION,
            GenlBuffer::new(),
            false,
            "read IPVS_CMD_GET_CONFIG",
            &mut |_, attrs| {
                for (i, (kind, name)) in [
                    (CMD_ATTR_TIMEOUT_TCP, "IPVS_CMD_ATTR_TIMEOUT_TCP"),
                    (CMD_ATTR_TIMEOUT_TCP_FIN, "IPVS_CMD_ATTR_TIMEOUT_TCP_FIN"),
                    (CMD_ATTR_TIMEOUT_UDP, "IPVS_CMD_ATTR_TIMEOUT_UDP"),
                ]
                .into_iter()
                .enumerate()
                {
                    if let Some(p) = top(attrs, kind, "IPVS_CMD_SET_CONFIG")? {
                        timeouts[i] = Some(get_u32(name, p)?);
                    }
                }
                Ok(())
            },
        )?;
        const NEST: &str = "IPVS_CMD_SET_INFO";
        Ok(IpvsInfo {
            version: version_text(version.ok_or_else(|| missing("IPVS_INFO_ATTR_VERSION", NEST))?),
            conn_table_size: size.ok_or_else(|| missing("IPVS_INFO_ATTR_CONN_TAB_SIZE", NEST))?,
            timeouts: match timeouts {
                [Some(tcp_s), Some(tcp_fin_s), Some(udp_s)] => Some(IpvsTimeouts {
                    tcp_s,
                    tcp_fin_s,
                    udp_s,
                }),
                _ => None,
            },
        })
    }

    /// Sends one request and feeds every reply message to `on_msg` until the reply ends: after
    /// NLMSG_DONE for a dump, after the first message otherwise.
    #[allow(clippy::too_many_arguments)]
    fn transact(
        &mut self,
        nl_type: u16,
        cmd: u8,
        version: u8,
        attrs: GenlBuffer<u16, Buffer>,
        dump: bool,
        what: &'static str,
        on_msg: &mut Handler<'_>,
    ) -> Result<(), NetlinkError> {
        let mut request = request_bytes(nl_type, cmd, version, attrs, dump, what)?;
        self.exchange(&mut request, dump, what, on_msg)
    }

    /// Sends an encoded request (with a fresh sequence number written into it) and reads the
    /// reply. Data messages are read in place; errors and the end of a dump through neli.
    fn exchange(
        &mut self,
        request: &mut [u8],
        dump: bool,
        what: &'static str,
        on_msg: &mut Handler<'_>,
    ) -> Result<(), NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        request
            .get_mut(8..12)
            .ok_or_else(|| malformed(what, "request shorter than a netlink header"))?
            .copy_from_slice(&seq.to_ne_bytes());
        self.sock
            .send(&*request, Msg::empty())
            .map_err(|source| NetlinkError::Io { what, source })?;

        let len = RECV_LEN.load(Ordering::Relaxed);
        if self.buf.len() != len {
            self.buf.resize(len, 0);
        }
        loop {
            let (n, _) = self
                .sock
                .recv(&mut self.buf[..], Msg::TRUNC)
                .map_err(|source| NetlinkError::Io { what, source })?;
            if n > self.buf.len() {
                // The datagram is lost; read with room for the kernel's largest dump message
                // from the next connection on (the caller reconnects after an error).
                RECV_LEN.store(MAX_RECV_LEN, Ordering::Relaxed);
                return Err(malformed(
                    what,
                    format!(
                        "a {n}-byte reply did not fit the {}-byte buffer; the next poll reads with {MAX_RECV_LEN}",
                        self.buf.len()
                    ),
                ));
            }
            let mut off = 0;
            while off < n {
                let rest = &self.buf[off..n];
                if rest.len() < NLMSG_HDRLEN {
                    return Err(malformed(
                        what,
                        format!("{} bytes after the last message", rest.len()),
                    ));
                }
                let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(malformed(
                        what,
                        format!("message claims {len} bytes, {} left", rest.len()),
                    ));
                }
                off += (len + 3) & !3;
                let msg = &rest[..len];
                let msg_type = u16::from_ne_bytes([msg[4], msg[5]]);
                let flags = NlmF::from_bits_truncate(u16::from_ne_bytes([msg[6], msg[7]]));
                let msg_seq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
                if msg_seq != seq {
                    continue; // a late reply to an earlier, abandoned request
                }
                if msg_type == u16::from(Nlmsg::Done) {
                    // The end of a dump: its int payload is 0 or the dump's -errno.
                    let code = msg
                        .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if code < 0 {
                        return Err(kernel_error(what, -code));
                    }
                    return Ok(());
                }
                if msg_type < NLMSG_MIN_TYPE {
                    // NLMSG_ERROR (an errno or an ACK), NLMSG_DONE, NLMSG_NOOP, NLMSG_OVERRUN.
                    let parsed = Nlmsghdr::<u16, Buffer>::from_bytes(&mut Cursor::new(msg))
                        .map_err(|e| malformed(what, e.to_string()))?;
                    match parsed.nl_payload() {
                        NlPayload::Err(e) => return Err(kernel_error(what, -*e.error())),
                        NlPayload::DumpExtAck(e) if *e.error() != 0 => {
                            return Err(kernel_error(what, -*e.error()));
                        }
                        _ if msg_type == u16::from(Nlmsg::Noop) => continue,
                        _ if msg_type == u16::from(Nlmsg::Overrun) => {
                            return Err(malformed(what, "NLMSG_OVERRUN: the kernel dropped data"));
                        }
                        _ => return Ok(()),
                    }
                }
                // struct genlmsghdr { __u8 cmd; __u8 version; __u16 reserved; }, then attributes.
                let body = &msg[NLMSG_HDRLEN..];
                if body.len() < GENL_HDRLEN {
                    return Err(malformed(
                        what,
                        "a message without its generic netlink header",
                    ));
                }
                on_msg(body[0], &body[GENL_HDRLEN..])?;
                if !dump && !flags.contains(NlmF::MULTI) {
                    return Ok(());
                }
            }
        }
    }
}

/// Encodes one generic netlink request with neli; the sequence number is written by `exchange`.
fn request_bytes(
    nl_type: u16,
    cmd: u8,
    version: u8,
    attrs: GenlBuffer<u16, Buffer>,
    dump: bool,
    what: &'static str,
) -> Result<Vec<u8>, NetlinkError> {
    let genl = GenlmsghdrBuilder::<u8, u16>::default()
        .cmd(cmd)
        .version(version)
        .attrs(attrs)
        .build()
        .map_err(|e| encode(what)(&e))?;
    let flags = if dump {
        NlmF::REQUEST | NlmF::DUMP
    } else {
        NlmF::REQUEST
    };
    let msg = NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(flags)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| encode(what)(&e))?;
    let mut out = Cursor::new(Vec::with_capacity(64));
    msg.to_bytes(&mut out).map_err(|e| encode(what)(&e))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::ipvs::*;
    use super::*;

    // Attribute layouts below follow the kernel's ip_vs_genl_fill_service / _fill_dest /
    // _fill_stats64 in net/netfilter/ipvs/ip_vs_ctl.c (constructed, not captured: the lab test
    // tests/lab_netlink.rs checks the real kernel against ipvsadm).

    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(
            &u16::try_from(payload.len() + 4)
                .expect("small")
                .to_ne_bytes(),
        );
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn nest(kind: u16, children: &[Vec<u8>]) -> Vec<u8> {
        nla(kind | 0x8000, &children.concat())
    }

    fn stats(wide: bool, base: u64) -> Vec<u8> {
        let mut v = Vec::new();
        for kind in STATS_ATTR_CONNS..=STATS_ATTR_OUTBPS {
            let n = base + u64::from(kind);
            if wide || kind == STATS_ATTR_INBYTES || kind == STATS_ATTR_OUTBYTES {
                // nla_put_u64_64bit pads with an IPVS_STATS_ATTR_PAD where needed.
                v.extend(nla(STATS_ATTR_PAD, &[]));
                v.extend(nla(kind, &n.to_ne_bytes()));
            } else {
                v.extend(nla(kind, &u32::try_from(n).expect("small").to_ne_bytes()));
            }
        }
        v
    }

    fn flags(bits: u32) -> Vec<u8> {
        [bits.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat()
    }

    fn addr16(ip: IpAddr) -> Vec<u8> {
        match ip {
            IpAddr::V4(a) => [&a.octets()[..], &[0; 12]].concat(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    fn tcp_persistent_service() -> Vec<u8> {
        [
            nla(SVC_ATTR_AF, &AF_INET.to_ne_bytes()),
            nla(SVC_ATTR_PROTOCOL, &6u16.to_ne_bytes()),
            nla(SVC_ATTR_ADDR, &addr16("192.0.2.10".parse().expect("ip"))),
            nla(SVC_ATTR_PORT, &80u16.to_be_bytes()),
            nla(SVC_ATTR_SCHED_NAME, b"wlc\0"),
            nla(
                SVC_ATTR_FLAGS,
                &flags(SVC_F_PERSISTENT | SVC_F_HASHED | SVC_F_SCHED1),
            ),
            nla(SVC_ATTR_TIMEOUT, &300u32.to_ne_bytes()),
            nla(SVC_ATTR_NETMASK, &[255, 255, 255, 0]),
            nest(SVC_ATTR_STATS, &[stats(false, 100)]),
            nest(SVC_ATTR_STATS64, &[stats(true, 5_000_000_000)]),
        ]
        .concat()
    }

    #[test]
    fn a_persistent_tcp_service_reads_with_its_mask_flags_and_64_bit_counters() {
        let (svc, id) = parse_service(&tcp_persistent_service()).expect("parses");
        assert_eq!(svc.key.to_string(), "tcp:192.0.2.10:80");
        assert_eq!(svc.scheduler, "wlc");
        assert_eq!(
            svc.persistent,
            Some(Persistence {
                timeout_s: 300,
                netmask: "255.255.255.0".into()
            })
        );
        assert!(!svc.ops);
        assert_eq!(
            svc.flags,
            Some(SVC_F_PERSISTENT | SVC_F_HASHED | SVC_F_SCHED1)
        );
        assert_eq!(svc.pe_name, None);
        let t = svc.totals.expect("totals");
        assert_eq!(t.conns, 5_000_000_001, "STATS64 wins over STATS");
        assert_eq!(t.out_bytes, 5_000_000_005);
        assert_eq!(svc.rates.expect("rates").out_bps, 5_000_000_010.0);
        assert_eq!(id.af, AF_INET);
        assert_eq!(id.port, 80);
        assert_eq!(id.fwmark, None);
    }

    #[test]
    fn an_ipv6_fwmark_service_falls_back_to_32_bit_stats_and_keeps_its_prefix_length() {
        let data = [
            nla(SVC_ATTR_AF, &AF_INET6.to_ne_bytes()),
            nla(SVC_ATTR_FWMARK, &42u32.to_ne_bytes()),
            nla(SVC_ATTR_SCHED_NAME, b"rr\0"),
            nla(SVC_ATTR_PE_NAME, b"sip\0"),
            nla(SVC_ATTR_FLAGS, &flags(SVC_F_PERSISTENT | SVC_F_ONEPACKET)),
            nla(SVC_ATTR_TIMEOUT, &30u32.to_ne_bytes()),
            nla(SVC_ATTR_NETMASK, &64u32.to_ne_bytes()),
            nest(SVC_ATTR_STATS, &[stats(false, 7)]),
        ]
        .concat();
        let (svc, id) = parse_service(&data).expect("parses");
        assert_eq!(
            svc.key,
            ServiceKey::Fwmark {
                mark: 42,
                family: AddressFamily::Inet6
            }
        );
        assert_eq!(svc.persistent.expect("persistent").netmask, "64");
        assert!(svc.ops);
        assert_eq!(svc.pe_name.as_deref(), Some("sip"));
        assert_eq!(svc.totals.expect("totals").conns, 8);
        assert_eq!(id.fwmark, Some(42));
    }

    fn dest(fwd: u32, weight: i32, tun: Option<(u8, u16, u16)>) -> Vec<u8> {
        let mut v = vec![
            nla(DEST_ATTR_ADDR, &addr16("198.51.100.1".parse().expect("ip"))),
            nla(DEST_ATTR_PORT, &8080u16.to_be_bytes()),
            nla(DEST_ATTR_FWD_METHOD, &fwd.to_ne_bytes()),
            nla(DEST_ATTR_WEIGHT, &weight.to_ne_bytes()),
        ];
        let (t, p, f) = tun.unwrap_or((0, 0, 0));
        v.push(nla(DEST_ATTR_TUN_TYPE, &[t]));
        v.push(nla(DEST_ATTR_TUN_PORT, &p.to_be_bytes()));
        v.push(nla(DEST_ATTR_TUN_FLAGS, &f.to_ne_bytes()));
        v.extend([
            nla(DEST_ATTR_U_THRESH, &1000u32.to_ne_bytes()),
            nla(DEST_ATTR_L_THRESH, &800u32.to_ne_bytes()),
            nla(DEST_ATTR_ACTIVE_CONNS, &12u32.to_ne_bytes()),
            nla(DEST_ATTR_INACT_CONNS, &40u32.to_ne_bytes()),
            nla(DEST_ATTR_PERSIST_CONNS, &3u32.to_ne_bytes()),
            nla(DEST_ATTR_ADDR_FAMILY, &AF_INET.to_ne_bytes()),
            nest(DEST_ATTR_STATS, &[stats(false, 1)]),
            nest(DEST_ATTR_STATS64, &[stats(true, 1)]),
        ]);
        v.concat()
    }

    #[test]
    fn a_real_server_reads_every_column_ipvsadm_shows() {
        let r = parse_dest(&dest(3, 65535, None), AddressFamily::Inet6).expect("parses");
        assert_eq!(
            r.id(),
            "198.51.100.1:8080",
            "its own family wins over the service's"
        );
        assert_eq!(r.forward, Forward::Route);
        assert_eq!(r.weight, 65535);
        assert_eq!((r.upper_threshold, r.lower_threshold), (1000, 800));
        assert_eq!((r.active_conns, r.inactive_conns), (12, 40));
        assert_eq!(r.persistent_conns, Some(3));
        assert_eq!(r.totals.expect("totals").in_packets, 3);
        assert_eq!(r.tunnel, None, "only tunnel reals carry an encapsulation");
    }

    #[test]
    fn a_tunnel_real_server_keeps_its_encapsulation() {
        let r = parse_dest(&dest(2, 0, Some((1, 6080, 1))), AddressFamily::Inet).expect("parses");
        assert_eq!(r.forward, Forward::Tunnel);
        assert_eq!(r.weight, 0);
        assert_eq!(
            r.tunnel,
            Some(TunnelEncap {
                kind: TunnelKind::Gue,
                port: 6080,
                flags: 1
            })
        );
    }

    #[test]
    fn malformed_attributes_are_errors_that_name_the_attribute() {
        let err = |data: &[u8]| {
            parse_service(data)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let mut short_port = tcp_persistent_service();
        let i = short_port
            .windows(4)
            .position(|w| w == [6, 0, 4, 0])
            .expect("port attribute");
        short_port[i] = 5; // a 1-byte port
        assert!(
            err(&short_port).contains("IPVS_SVC_ATTR_PORT: 1 bytes, expected 2"),
            "{}",
            err(&short_port)
        );

        let mut cut = tcp_persistent_service();
        cut.truncate(cut.len() - 6);
        assert!(
            err(&cut).contains("malformed IPVS_CMD_ATTR_SERVICE"),
            "{}",
            err(&cut)
        );

        let no_sched: Vec<u8> = [
            nla(SVC_ATTR_AF, &AF_INET.to_ne_bytes()),
            nla(SVC_ATTR_FWMARK, &1u32.to_ne_bytes()),
            nla(SVC_ATTR_FLAGS, &flags(0)),
        ]
        .concat();
        assert!(
            err(&no_sched).contains("IPVS_SVC_ATTR_SCHED_NAME missing"),
            "{}",
            err(&no_sched)
        );

        let bad_fwd = dest(7, 1, None);
        let e = parse_dest(&bad_fwd, AddressFamily::Inet)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("IPVS_DEST_ATTR_FWD_METHOD: unknown forwarding method 7"),
            "{e}"
        );

        let no_counter = [
            nla(SVC_ATTR_AF, &AF_INET.to_ne_bytes()),
            nla(SVC_ATTR_FWMARK, &1u32.to_ne_bytes()),
            nla(SVC_ATTR_SCHED_NAME, b"rr\0"),
            nla(SVC_ATTR_FLAGS, &flags(0)),
            nest(
                SVC_ATTR_STATS64,
                &[nla(STATS_ATTR_CONNS, &1u64.to_ne_bytes())],
            ),
        ]
        .concat();
        assert!(
            err(&no_counter).contains("IPVS_SVC_ATTR_STATS64: IPVS_STATS_ATTR_INPKTS missing"),
            "{}",
            err(&no_counter)
        );
    }

    #[test]
    fn a_get_dest_request_names_the_service_as_the_kernel_sent_it() {
        let (_, id) = parse_service(&tcp_persistent_service()).expect("parses");
        let nest = identity_attr(&id).expect("encodes");
        let mut got = Vec::new();
        for a in Attrs::new(nest.nla_payload().as_ref()) {
            let (kind, p) = a.expect("well formed");
            got.push((kind, p.to_vec()));
        }
        assert_eq!(
            got,
            vec![
                (SVC_ATTR_AF, AF_INET.to_ne_bytes().to_vec()),
                (SVC_ATTR_PROTOCOL, 6u16.to_ne_bytes().to_vec()),
                (SVC_ATTR_ADDR, addr16("192.0.2.10".parse().expect("ip"))),
                (SVC_ATTR_PORT, 80u16.to_be_bytes().to_vec()),
            ]
        );
        assert!(*nest.nla_type().nla_nested());
    }

    #[test]
    fn version_numbers_print_as_ipvsadm_prints_them() {
        assert_eq!(version_text(0x010201), "1.2.1");
    }

    #[test]
    fn connecting_without_the_module_says_to_load_it() {
        // This host's kernel (CI's too) has no IPVS; where it has, connecting simply works.
        match IpvsNetlink::connect() {
            Ok(nl) => assert_ne!(nl.family_id(), 0),
            Err(e @ NetlinkError::Unavailable) => {
                assert_eq!(e.to_string(), "IPVS is not available: modprobe ip_vs");
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let _ = parse_service(&data);
            let _ = parse_dest(&data, AddressFamily::Inet);
            let _ = parse_stats(&data, "test", true);
        }

        #[test]
        fn a_valid_service_with_any_bytes_after_never_panics(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let data = [tcp_persistent_service(), tail].concat();
            let _ = parse_service(&data);
        }
    }
}
