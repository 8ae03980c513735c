//! IPVS attributes read in place: a walker over one nest's attributes, typed getters that check
//! each payload's size, and the service, real-server and stats nests as samples. Layouts follow
//! the kernel's `ip_vs_genl_fill_service`, `_fill_dest` and `_fill_stats(64)`
//! (`net/netfilter/ipvs/ip_vs_ctl.c`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::sample::{
    AddressFamily, Forward, IpvsCounters, IpvsRates, Persistence, Protocol, RealServerSample,
    ServiceKey, SyncDaemon, SyncRole, TunnelEncap, TunnelKind, VirtualServiceSample,
};

use super::ipvs;
use super::{NetlinkError, malformed};

/// Address families as the kernel numbers them (`include/linux/socket.h`).
pub(super) const AF_INET: u16 = 2;
pub(super) const AF_INET6: u16 = 10;

/// The attributes of one nest, walked in place: `(type, payload)`, the nested and byte-order bits
/// of the type masked off. A length that runs past the nest ends the walk with [`BadLength`].
pub(super) struct Attrs<'a> {
    data: &'a [u8],
}

/// An attribute whose length does not fit its nest (kept small: it travels through every step).
#[derive(Debug, Clone, Copy)]
pub(super) struct BadLength {
    kind: Option<u16>,
    claimed: usize,
    left: usize,
}

impl BadLength {
    pub(super) fn in_nest(self, nest: &'static str) -> NetlinkError {
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
    pub(super) fn new(data: &'a [u8]) -> Self {
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

pub(super) fn fixed<const N: usize>(name: &'static str, p: &[u8]) -> Result<[u8; N], NetlinkError> {
    p.try_into()
        .map_err(|_| malformed(name, format!("{} bytes, expected {N}", p.len())))
}

pub(super) fn get_u8(name: &'static str, p: &[u8]) -> Result<u8, NetlinkError> {
    Ok(fixed::<1>(name, p)?[0])
}

pub(super) fn get_u16(name: &'static str, p: &[u8]) -> Result<u16, NetlinkError> {
    fixed(name, p).map(u16::from_ne_bytes)
}

pub(super) fn get_be16(name: &'static str, p: &[u8]) -> Result<u16, NetlinkError> {
    fixed(name, p).map(u16::from_be_bytes)
}

pub(super) fn get_u32(name: &'static str, p: &[u8]) -> Result<u32, NetlinkError> {
    fixed(name, p).map(u32::from_ne_bytes)
}

pub(super) fn get_u64(name: &'static str, p: &[u8]) -> Result<u64, NetlinkError> {
    fixed(name, p).map(u64::from_ne_bytes)
}

/// A NUL-terminated string attribute.
pub(super) fn get_string(name: &'static str, p: &[u8]) -> Result<String, NetlinkError> {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end])
        .map(str::to_string)
        .map_err(|_| malformed(name, "not UTF-8"))
}

pub(super) fn get_family(name: &'static str, p: &[u8]) -> Result<AddressFamily, NetlinkError> {
    match get_u16(name, p)? {
        AF_INET => Ok(AddressFamily::Inet),
        AF_INET6 => Ok(AddressFamily::Inet6),
        n => Err(malformed(name, format!("unknown address family {n}"))),
    }
}

/// `union nf_inet_addr`: the first 4 bytes for IPv4, all 16 for IPv6.
pub(super) fn get_addr(
    name: &'static str,
    family: AddressFamily,
    p: &[u8],
) -> Result<IpAddr, NetlinkError> {
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

pub(super) fn missing(attr: &'static str, nest: &'static str) -> NetlinkError {
    malformed(nest, format!("{attr} missing"))
}

/// Counters and the kernel's rate estimates from a STATS or STATS64 nest.
pub(super) fn parse_stats(
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
pub(super) struct ServiceIdentity {
    pub(super) af: u16,
    pub(super) fwmark: Option<u32>,
    pub(super) protocol: u16,
    pub(super) addr: [u8; ipvs::INET_ADDR_LEN],
    pub(super) port: u16,
}

/// `union nf_inet_addr` for an address: IPv4 in the first four bytes.
pub(super) fn inet_addr(ip: std::net::IpAddr) -> [u8; ipvs::INET_ADDR_LEN] {
    let mut out = [0; ipvs::INET_ADDR_LEN];
    match ip {
        std::net::IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => out.copy_from_slice(&a.octets()),
    }
    out
}

pub(super) fn af_of(ip: std::net::IpAddr) -> u16 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

impl ServiceIdentity {
    /// The identity attributes that name `key` to the kernel.
    pub(super) fn of(key: &ServiceKey) -> Self {
        match *key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => Self {
                af: af_of(address),
                fwmark: None,
                protocol: protocol.ipproto(),
                addr: inet_addr(address),
                port,
            },
            ServiceKey::Fwmark { mark, family } => Self {
                af: match family {
                    AddressFamily::Inet => AF_INET,
                    AddressFamily::Inet6 => AF_INET6,
                },
                fwmark: Some(mark),
                protocol: 0,
                addr: [0; ipvs::INET_ADDR_LEN],
                port: 0,
            },
        }
    }
}

/// The attributes of one IPVS_CMD_ATTR_SERVICE nest, as the kernel sent them.
#[derive(Default)]
struct ServiceAttrs<'a> {
    af: Option<(u16, &'a [u8])>,
    protocol: Option<u16>,
    addr: Option<&'a [u8]>,
    port: Option<u16>,
    fwmark: Option<u32>,
    sched: Option<String>,
    flags: Option<u32>,
    timeout: Option<u32>,
    netmask: Option<[u8; 4]>,
    stats: Option<&'a [u8]>,
    stats64: Option<&'a [u8]>,
    pe_name: Option<String>,
}

const SERVICE_NEST: &str = "IPVS_CMD_ATTR_SERVICE";

impl<'a> ServiceAttrs<'a> {
    fn read(data: &'a [u8]) -> Result<ServiceAttrs<'a>, NetlinkError> {
        use ipvs::*;
        let mut s = ServiceAttrs::default();
        for a in Attrs::new(data) {
            let (kind, p) = a.map_err(|e| e.in_nest(SERVICE_NEST))?;
            match kind {
                SVC_ATTR_AF => s.af = Some((get_u16("IPVS_SVC_ATTR_AF", p)?, p)),
                SVC_ATTR_PROTOCOL => s.protocol = Some(get_u16("IPVS_SVC_ATTR_PROTOCOL", p)?),
                SVC_ATTR_ADDR => s.addr = Some(p),
                SVC_ATTR_PORT => s.port = Some(get_be16("IPVS_SVC_ATTR_PORT", p)?),
                SVC_ATTR_FWMARK => s.fwmark = Some(get_u32("IPVS_SVC_ATTR_FWMARK", p)?),
                SVC_ATTR_SCHED_NAME => {
                    s.sched = Some(get_string("IPVS_SVC_ATTR_SCHED_NAME", p)?);
                }
                // struct ip_vs_flags { __u32 flags; __u32 mask; }
                SVC_ATTR_FLAGS => {
                    let b = fixed::<8>("IPVS_SVC_ATTR_FLAGS", p)?;
                    s.flags = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                }
                SVC_ATTR_TIMEOUT => s.timeout = Some(get_u32("IPVS_SVC_ATTR_TIMEOUT", p)?),
                SVC_ATTR_NETMASK => s.netmask = Some(fixed::<4>("IPVS_SVC_ATTR_NETMASK", p)?),
                SVC_ATTR_STATS => s.stats = Some(p),
                SVC_ATTR_STATS64 => s.stats64 = Some(p),
                SVC_ATTR_PE_NAME => s.pe_name = Some(get_string("IPVS_SVC_ATTR_PE_NAME", p)?),
                _ => {}
            }
        }
        Ok(s)
    }

    /// The service's key (a firewall mark, or protocol, address and port), filling in the
    /// identity the kernel knows it by.
    fn key(
        &self,
        family: AddressFamily,
        identity: &mut ServiceIdentity,
    ) -> Result<ServiceKey, NetlinkError> {
        use ipvs::INET_ADDR_LEN;
        if let Some(mark) = self.fwmark
            && mark != 0
        {
            identity.fwmark = Some(mark);
            return Ok(ServiceKey::Fwmark { mark, family });
        }
        let proto = self
            .protocol
            .ok_or_else(|| missing("IPVS_SVC_ATTR_PROTOCOL", SERVICE_NEST))?;
        let raw = self
            .addr
            .ok_or_else(|| missing("IPVS_SVC_ATTR_ADDR", SERVICE_NEST))?;
        let port = self
            .port
            .ok_or_else(|| missing("IPVS_SVC_ATTR_PORT", SERVICE_NEST))?;
        let address = get_addr("IPVS_SVC_ATTR_ADDR", family, raw)?;
        let n = raw.len().min(INET_ADDR_LEN);
        identity.addr[..n].copy_from_slice(&raw[..n]);
        identity.protocol = proto;
        identity.port = port;
        Ok(ServiceKey::Addr {
            protocol: Protocol::from_ipproto(proto).ok_or_else(|| {
                malformed(
                    "IPVS_SVC_ATTR_PROTOCOL",
                    format!("unknown protocol {proto}"),
                )
            })?,
            address,
            port,
        })
    }

    /// Persistence, when the flags say the service has it.
    fn persistence(
        &self,
        bits: u32,
        family: AddressFamily,
    ) -> Result<Option<Persistence>, NetlinkError> {
        if bits & ipvs::SVC_F_PERSISTENT == 0 {
            return Ok(None);
        }
        let timeout_s = self
            .timeout
            .ok_or_else(|| missing("IPVS_SVC_ATTR_TIMEOUT", SERVICE_NEST))?;
        let mask = self
            .netmask
            .ok_or_else(|| missing("IPVS_SVC_ATTR_NETMASK", SERVICE_NEST))?;
        Ok(Some(Persistence {
            timeout_s,
            netmask: match family {
                // An IPv4 mask in network order; an IPv6 prefix length as a host-order number.
                AddressFamily::Inet => Ipv4Addr::from(mask).to_string(),
                AddressFamily::Inet6 => u32::from_ne_bytes(mask).to_string(),
            },
        }))
    }
}

/// The 64-bit counters when the kernel sent them, else the 32-bit ones, else none.
fn either_stats(
    stats64: Option<(&[u8], &'static str)>,
    stats: Option<(&[u8], &'static str)>,
) -> Result<(Option<IpvsCounters>, Option<IpvsRates>), NetlinkError> {
    Ok(match (stats64, stats) {
        (Some((p, name)), _) => parse_stats(p, name, true).map(Some)?,
        (None, Some((p, name))) => parse_stats(p, name, false).map(Some)?,
        (None, None) => None,
    }
    .unzip())
}

/// One IPVS_CMD_ATTR_SERVICE nest as a sample without real servers.
pub(super) fn parse_service(
    data: &[u8],
) -> Result<(VirtualServiceSample, ServiceIdentity), NetlinkError> {
    use ipvs::*;
    let attrs = ServiceAttrs::read(data)?;
    let (af, af_bytes) = attrs
        .af
        .ok_or_else(|| missing("IPVS_SVC_ATTR_AF", SERVICE_NEST))?;
    let family = get_family("IPVS_SVC_ATTR_AF", af_bytes)?;
    let mut identity = ServiceIdentity {
        af,
        fwmark: None,
        protocol: 0,
        addr: [0; INET_ADDR_LEN],
        port: 0,
    };
    let key = attrs.key(family, &mut identity)?;
    let scheduler = attrs
        .sched
        .clone()
        .ok_or_else(|| missing("IPVS_SVC_ATTR_SCHED_NAME", SERVICE_NEST))?;
    let bits = attrs
        .flags
        .ok_or_else(|| missing("IPVS_SVC_ATTR_FLAGS", SERVICE_NEST))?;
    let persistent = attrs.persistence(bits, family)?;
    let (totals, rates) = either_stats(
        attrs.stats64.map(|p| (p, "IPVS_SVC_ATTR_STATS64")),
        attrs.stats.map(|p| (p, "IPVS_SVC_ATTR_STATS")),
    )?;
    Ok((
        VirtualServiceSample {
            key,
            scheduler: Some(scheduler),
            persistent,
            ops: bits & SVC_F_ONEPACKET != 0,
            totals,
            rates,
            flags: Some(bits),
            pe_name: attrs.pe_name,
            reals: Vec::new(),
        },
        identity,
    ))
}

/// The attributes of one IPVS_CMD_ATTR_DEST nest, as the kernel sent them.
#[derive(Default)]
struct DestAttrs<'a> {
    addr: Option<&'a [u8]>,
    port: Option<u16>,
    fwd: Option<u32>,
    weight: Option<i32>,
    u_thresh: u32,
    l_thresh: u32,
    active: Option<u32>,
    inactive: Option<u32>,
    persist: Option<u32>,
    stats: Option<&'a [u8]>,
    stats64: Option<&'a [u8]>,
    family: Option<AddressFamily>,
    tun_type: Option<u8>,
    tun_port: u16,
    tun_flags: u16,
}

const DEST_NEST: &str = "IPVS_CMD_ATTR_DEST";

impl<'a> DestAttrs<'a> {
    fn read(data: &'a [u8]) -> Result<DestAttrs<'a>, NetlinkError> {
        use ipvs::*;
        let mut d = DestAttrs::default();
        for a in Attrs::new(data) {
            let (kind, p) = a.map_err(|e| e.in_nest(DEST_NEST))?;
            match kind {
                DEST_ATTR_ADDR => d.addr = Some(p),
                DEST_ATTR_PORT => d.port = Some(get_be16("IPVS_DEST_ATTR_PORT", p)?),
                DEST_ATTR_FWD_METHOD => d.fwd = Some(get_u32("IPVS_DEST_ATTR_FWD_METHOD", p)?),
                // The kernel keeps the weight as an int and sends it as a u32.
                DEST_ATTR_WEIGHT => {
                    d.weight = Some(i32::from_ne_bytes(fixed("IPVS_DEST_ATTR_WEIGHT", p)?));
                }
                DEST_ATTR_U_THRESH => d.u_thresh = get_u32("IPVS_DEST_ATTR_U_THRESH", p)?,
                DEST_ATTR_L_THRESH => d.l_thresh = get_u32("IPVS_DEST_ATTR_L_THRESH", p)?,
                DEST_ATTR_ACTIVE_CONNS => {
                    d.active = Some(get_u32("IPVS_DEST_ATTR_ACTIVE_CONNS", p)?);
                }
                DEST_ATTR_INACT_CONNS => {
                    d.inactive = Some(get_u32("IPVS_DEST_ATTR_INACT_CONNS", p)?);
                }
                DEST_ATTR_PERSIST_CONNS => {
                    d.persist = Some(get_u32("IPVS_DEST_ATTR_PERSIST_CONNS", p)?);
                }
                DEST_ATTR_STATS => d.stats = Some(p),
                DEST_ATTR_STATS64 => d.stats64 = Some(p),
                DEST_ATTR_ADDR_FAMILY => {
                    d.family = Some(get_family("IPVS_DEST_ATTR_ADDR_FAMILY", p)?);
                }
                DEST_ATTR_TUN_TYPE => d.tun_type = Some(get_u8("IPVS_DEST_ATTR_TUN_TYPE", p)?),
                DEST_ATTR_TUN_PORT => d.tun_port = get_be16("IPVS_DEST_ATTR_TUN_PORT", p)?,
                DEST_ATTR_TUN_FLAGS => d.tun_flags = get_u16("IPVS_DEST_ATTR_TUN_FLAGS", p)?,
                _ => {}
            }
        }
        Ok(d)
    }
}

/// One IPVS_CMD_ATTR_DEST nest. `service_family` stands in for a kernel that does not send
/// IPVS_DEST_ATTR_ADDR_FAMILY (before 3.18, real servers always had the service's family).
pub(super) fn parse_dest(
    data: &[u8],
    service_family: AddressFamily,
) -> Result<RealServerSample, NetlinkError> {
    use ipvs::*;
    let d = DestAttrs::read(data)?;
    let address = get_addr(
        "IPVS_DEST_ATTR_ADDR",
        d.family.unwrap_or(service_family),
        d.addr
            .ok_or_else(|| missing("IPVS_DEST_ATTR_ADDR", DEST_NEST))?,
    )?;
    let fwd = d
        .fwd
        .ok_or_else(|| missing("IPVS_DEST_ATTR_FWD_METHOD", DEST_NEST))?;
    let forward = Forward::from_conn_flags(fwd & CONN_F_FWD_MASK).ok_or_else(|| {
        malformed(
            "IPVS_DEST_ATTR_FWD_METHOD",
            format!("unknown forwarding method {fwd}"),
        )
    })?;
    let (totals, rates) = either_stats(
        d.stats64.map(|p| (p, "IPVS_DEST_ATTR_STATS64")),
        d.stats.map(|p| (p, "IPVS_DEST_ATTR_STATS")),
    )?;
    Ok(RealServerSample {
        address,
        port: d
            .port
            .ok_or_else(|| missing("IPVS_DEST_ATTR_PORT", DEST_NEST))?,
        forward,
        weight: d
            .weight
            .ok_or_else(|| missing("IPVS_DEST_ATTR_WEIGHT", DEST_NEST))?,
        upper_threshold: d.u_thresh,
        lower_threshold: d.l_thresh,
        active_conns: d
            .active
            .ok_or_else(|| missing("IPVS_DEST_ATTR_ACTIVE_CONNS", DEST_NEST))?,
        inactive_conns: d
            .inactive
            .ok_or_else(|| missing("IPVS_DEST_ATTR_INACT_CONNS", DEST_NEST))?,
        persistent_conns: d.persist,
        totals,
        rates,
        tunnel: match (forward, d.tun_type) {
            (Forward::Tunnel, Some(t)) => Some(TunnelEncap {
                kind: TunnelKind::from_kernel(t),
                port: d.tun_port,
                flags: d.tun_flags,
            }),
            _ => None,
        },
    })
}

/// One sync daemon (the IPVS_CMD_ATTR_DAEMON nest): `None` for a state that is neither master
/// nor backup. The interface name is made printable and cut to the kernel's 15 bytes.
pub(super) fn parse_daemon(nest: &[u8]) -> Result<Option<SyncDaemon>, NetlinkError> {
    use super::ipvs::*;
    const WHAT: &str = "IPVS_CMD_ATTR_DAEMON";
    let state = top(nest, DAEMON_ATTR_STATE, WHAT)?
        .ok_or_else(|| missing("IPVS_DAEMON_ATTR_STATE", WHAT))?;
    let role = match get_u32("IPVS_DAEMON_ATTR_STATE", state)? {
        STATE_MASTER => SyncRole::Master,
        STATE_BACKUP => SyncRole::Backup,
        _ => return Ok(None),
    };
    let mcast_ifn = match top(nest, DAEMON_ATTR_MCAST_IFN, WHAT)? {
        Some(p) => crate::model::text::printable(
            &String::from_utf8_lossy(p.split(|&b| b == 0).next().unwrap_or(&[])),
            15,
        ),
        None => String::new(),
    };
    let syncid = match top(nest, DAEMON_ATTR_SYNC_ID, WHAT)? {
        Some(p) => get_u32("IPVS_DAEMON_ATTR_SYNC_ID", p)?,
        None => 0,
    };
    Ok(Some(SyncDaemon {
        role,
        mcast_ifn,
        syncid,
    }))
}

/// `0x010201` as `1.2.1`.
pub(super) fn version_text(v: u32) -> String {
    format!("{}.{}.{}", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff)
}

/// The payload of the first top-level attribute of type `kind` in a message of `what`.
pub(super) fn top<'a>(
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
