//! IPVS over generic netlink, as `ipvsadm` itself reads it: virtual services, real servers,
//! cumulative counters (STATS64, else STATS), the kernel's rate estimates, thresholds, persistent
//! connections, tunnel encapsulation, version, connection-table size and timeouts.
//!
//! The kernel allows every IPVS command only to root or CAP_NET_ADMIN; `local` falls back to the
//! world-readable `/proc/net/ip_vs` when it gets [`NetlinkError::PermissionDenied`]. The connection
//! table is not in netlink at all: `local` reads `/proc/net/ip_vs_conn` beside it.
//!
//! neli carries the socket and encodes every request (netlink and generic netlink headers, nested
//! attributes, the controller's family lookup). Replies are read here, in place and without
//! copying (neli's decoders copy every attribute, and panic on some malformed error messages),
//! and a dump's last data comes with its NLMSG_DONE in one `recvmmsg` (nix): a poll of 1,000
//! services × 10 real servers is 1,001 dumps, two system calls each, and some 200,000 attributes
//! (BENCHMARKS.md, "IPVS netlink"). Every length and every attribute's size is checked before it
//! is read; a malformed one is an error that names it, never a panic.

use std::fmt;
use std::io::Cursor;
use std::io::IoSliceMut;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use neli::ToBytes;
use neli::consts::genl::{CtrlAttr, CtrlCmd};
use neli::consts::nl::{GenlId, NlmF, Nlmsg};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, GenlmsghdrBuilder, Nlattr, NlattrBuilder};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{Buffer, GenlBuffer};
use neli::utils::Groups;
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};

pub mod ipvs;
mod parse;
mod text;

use text::TextTable;

use parse::{
    ServiceIdentity, af_of, get_u16, get_u32, inet_addr, missing, parse_daemon, parse_dest,
    parse_service, top, version_text,
};

use crate::model::sample::{
    AddressFamily, IpvsCounters, IpvsInfo, IpvsRates, IpvsTimeouts, RealServerSample, ServiceKey,
    SyncDaemon, SyncRole, Timestamp, TunnelKind, VirtualServiceSample,
};

/// Generic netlink controller protocol version (`CTRL_ATTR_VERSION` of nlctrl).
const CTRL_VERSION: u8 = 2;

/// Bytes asked for per receive. The kernel sizes a dump's datagrams by the largest receive it has
/// seen on the socket, at least NLMSG_GOODSIZE (`SKB_WITH_OVERHEAD(min(PAGE_SIZE, 8192))`, 7872
/// bytes at most): asking for exactly that much keeps its buffers at 8 KiB, which in the lab
/// costs clearly less kernel time per dump than the 32 KiB a large receive buffer brings. A
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

fn encode(what: &'static str, e: impl fmt::Display) -> NetlinkError {
    NetlinkError::Encode {
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

// ───────────────────────────── the socket ─────────────────────────────

/// A generic netlink socket bound to the IPVS family. One per router source; polls reuse it.
pub struct IpvsNetlink {
    sock: NlSocket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
    /// Each service's last GET_DEST dump, with its request encoded: services rarely change, and a
    /// poll of a thousand of them then encodes none.
    dests: rustc_hash::FxHashMap<ServiceIdentity, DestDump>,
    /// [`WEIGHT_CHANGES`] at the last read.
    changes_seen: u64,
    /// The last GET_SERVICE dump of a read that may carry ([`DestReads::Changed`]).
    table: Option<Box<ServiceTable>>,
    /// The router's live counters as last noted ([`IpvsNetlink::note_counters`]), and since when
    /// they have read so.
    live: Option<(String, Instant)>,
    /// Changes whenever a read's services may differ from the read before ([`ServicesRead`]).
    generation: u64,
    /// A read is under way: set at its start, cleared at its end (one that failed half way
    /// left the dumps half updated).
    reading: bool,
    /// Reads made, to tell the services gone from the table.
    reads: u64,
    /// The kernel's text table at the last check ([`IpvsNetlink::note_text`]); `None` before the
    /// first, and after one that could not read it.
    text: Option<Box<TextTable>>,
    /// When the text table is checked next.
    text_due: Instant,
    /// A check found a service added, removed or its line changed: the next read dumps the
    /// services.
    services_edited: bool,
    /// Text checks made ([`DestDump::base`]).
    checks: u64,
    /// The next read follows a text check at once.
    check_read: bool,
}

/// How long the router's live counters must have stood still before a GET_SERVICE dump for the
/// numbers it read to be final: the kernel folds its per-CPU counts into the counters and rates it
/// reports on a 2 s timer (`estimation_timer`; since Linux 6.2 kthreads, each estimator once in
/// 2 s), after the count and not at the same moment for every service. The rest is slack for a
/// late timer.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(6);

impl ServiceTable {
    /// Whether this dump still holds at `now`, the live counters having stood still since
    /// `live_since` (`None`: unknown): every rate was zero in it, it is not due, and the counters
    /// had settled [`SETTLE`] before it was read.
    fn holds(&self, live_since: Option<Instant>, now: Instant) -> bool {
        self.idle && now < self.due && live_since.is_some_and(|since| since + SETTLE <= self.read)
    }
}

/// A GET_SERVICE dump kept for the reads after it: its services without their real servers, in
/// the kernel's order.
struct ServiceTable {
    services: Vec<(VirtualServiceSample, ServiceIdentity)>,
    /// When it was read.
    read: Instant,
    stamp: Timestamp,
    /// Whether every service's rate estimates were zero: with no new count, they stay so.
    idle: bool,
    /// When it is dumped again even if nothing moved (another tool's edit shows then).
    due: Instant,
}

/// Weight changes this process made (SET_DEST), on any socket.
static WEIGHT_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Which services' real servers a read dumps (GET_DEST, one dump per service: the kernel has no
/// dump of every real server at once, and on a large table these dumps are most of a poll's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestReads {
    /// Every service's, as `ipvsadm -Ln` does: an action's plan, and a poll after a refresh.
    Every,
    /// Only the services whose real servers may have changed since their last dump (see
    /// [`DestDump::stale`]), and each at least every `at_least`; or, while the kernel's text
    /// table is checked every `at_least` ([`IpvsNetlink::note_text`]), each at least every
    /// `checked_at_least`, for what that table does not show.
    Changed {
        at_least: std::time::Duration,
        checked_at_least: std::time::Duration,
    },
}

/// One service's last GET_DEST dump.
struct DestDump {
    request: Vec<u8>,
    reals: Vec<RealServerSample>,
    /// The service's own counters and rate estimates when its real servers were dumped.
    totals: Option<IpvsCounters>,
    rates: Option<IpvsRates>,
    /// When it was dumped, or last found unchanged in the kernel's text table.
    read: Timestamp,
    /// When it is dumped again even if nothing moved.
    due: Instant,
    /// The read that last found its service ([`IpvsNetlink::reads`]).
    seen: u64,
    /// The first text check that may confirm it ([`check_dumps`]): the check it followed at
    /// once, or for a dump taken between checks, the next one's number plus one (it may show an
    /// edit undone before the next check, which the text would not tell).
    base: u64,
}

impl DestDump {
    /// Whether the real servers may differ from this dump. The kernel counts every connection,
    /// packet and byte on the real server and on its service together (`ip_vs_in_stats`,
    /// `ip_vs_conn_stats`), and estimates their rates from those counts: while a service's
    /// counters and rates stand still, so do its real servers'. What else moves a real server:
    /// - connections ending on a timer (active, inactive and persistent counts): a dump whenever
    ///   any was open at the last one;
    /// - the kernel's estimates, which it folds from per-CPU counters on a timer of its own for
    ///   each real server (since Linux 6.2 not at the same moment as its service's): a dump while
    ///   any real server's rates were not zero, so the last traffic's counts are read too;
    /// - another tool's change of weight, thresholds or real servers, which the kernel shows
    ///   nowhere cheaper: the dump every `at_least`, whose time the sample carries
    ///   ([`crate::model::sample::PartTimes::details`]).
    fn stale(&self, svc: &VirtualServiceSample, now: Instant) -> bool {
        now >= self.due
            || self.totals != svc.totals
            || self.rates != svc.rates
            || self.reals.iter().any(|r| {
                r.active_conns > 0
                    || r.inactive_conns > 0
                    || r.persistent_conns.unwrap_or(0) > 0
                    || r.rates.is_some_and(|x| x != IpvsRates::default())
            })
    }
}

/// At the `checks`-th text check, `table` after `before`: a carried dump whose service's lines
/// are in both reads and the same, and which was taken before `before` was read or at once after
/// it ([`DestDump::base`]), stands confirmed as of `stamp`; every other is due at `now`, as is
/// each whose periodic dump would fall before the next check (`every` from now, which comes at
/// the first poll after it: half of `every` more is allowed for that), so that the periodic dumps
/// too follow a check at once. Returns how many are due.
fn check_dumps(
    dests: &mut rustc_hash::FxHashMap<ServiceIdentity, DestDump>,
    (before, table, checks): (&TextTable, &TextTable, u64),
    (now, stamp): (Instant, Timestamp),
    every: std::time::Duration,
) -> usize {
    let mut due = 0;
    for (id, d) in dests.iter_mut() {
        if d.base < checks && table.unchanged(before, id) {
            d.read = stamp;
            if d.due <= now + every + every / 2 {
                d.due = now;
            }
        } else {
            d.due = now;
        }
        due += usize::from(d.due <= now);
    }
    due
}

/// What [`IpvsNetlink::read_services`] found.
pub struct ServicesRead {
    pub services: Vec<VirtualServiceSample>,
    /// The oldest dump of real servers carried over rather than made in this read.
    pub oldest_reals: Option<Timestamp>,
    /// How many services' real servers this read dumped.
    pub dumped: usize,
    /// Whether the virtual services were dumped (GET_SERVICE), or carried whole from the last
    /// dump because the router's counters have not moved since (see [`IpvsNetlink::note_counters`]).
    pub services_dumped: bool,
    /// The same number as the read before exactly when `services` are equal to that read's (no
    /// service dumped, every real server dumped the same as before): a reader that kept the
    /// last table need not look at this one.
    pub generation: u64,
    /// The connection-sync daemons running here.
    pub sync: Vec<SyncDaemon>,
}

/// Handles one reply message: its command and its top-level attribute bytes.
type Handler<'h> = dyn FnMut(u8, &[u8]) -> Result<(), NetlinkError> + 'h;

/// The attributes of a destination for IPVS_CMD_SET_DEST: `real` as it was read, with `weight`.
fn dest_attrs(
    real: &RealServerSample,
    weight: u32,
) -> Result<Vec<Nlattr<u16, Buffer>>, NetlinkError> {
    use ipvs::*;
    let mut children = vec![
        attr(
            "IPVS_DEST_ATTR_ADDR",
            DEST_ATTR_ADDR,
            inet_addr(real.address),
        )?,
        attr(
            "IPVS_DEST_ATTR_PORT",
            DEST_ATTR_PORT,
            real.port.to_be_bytes(),
        )?,
        attr(
            "IPVS_DEST_ATTR_FWD_METHOD",
            DEST_ATTR_FWD_METHOD,
            real.forward.conn_flags().ok_or(NetlinkError::Encode {
                what: "IPVS_DEST_ATTR_FWD_METHOD",
                message: "the forwarding method is not known".into(),
            })?,
        )?,
        attr("IPVS_DEST_ATTR_WEIGHT", DEST_ATTR_WEIGHT, weight)?,
        attr(
            "IPVS_DEST_ATTR_U_THRESH",
            DEST_ATTR_U_THRESH,
            real.upper_threshold,
        )?,
        attr(
            "IPVS_DEST_ATTR_L_THRESH",
            DEST_ATTR_L_THRESH,
            real.lower_threshold,
        )?,
        attr(
            "IPVS_DEST_ATTR_ADDR_FAMILY",
            DEST_ATTR_ADDR_FAMILY,
            af_of(real.address),
        )?,
    ];
    if let Some(t) = &real.tunnel {
        let kind = match t.kind {
            TunnelKind::Ipip => 0u8,
            TunnelKind::Gue => 1,
            TunnelKind::Gre => 2,
            TunnelKind::Other(n) => n,
        };
        children.push(attr("IPVS_DEST_ATTR_TUN_TYPE", DEST_ATTR_TUN_TYPE, kind)?);
        children.push(attr(
            "IPVS_DEST_ATTR_TUN_PORT",
            DEST_ATTR_TUN_PORT,
            t.port.to_be_bytes(),
        )?);
        children.push(attr(
            "IPVS_DEST_ATTR_TUN_FLAGS",
            DEST_ATTR_TUN_FLAGS,
            t.flags,
        )?);
    }
    Ok(children)
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
                .map_err(|e| encode(what, e))?,
        )
        .nla_payload(payload)
        .build()
        .map_err(|e| encode(what, e))
}

/// A nested top-level attribute holding `children`.
fn nest(
    what: &'static str,
    kind: u16,
    children: &[Nlattr<u16, Buffer>],
) -> Result<Nlattr<u16, Buffer>, NetlinkError> {
    let empty = NlattrBuilder::default()
        .nla_type(
            AttrTypeBuilder::default()
                .nla_type(kind)
                .nla_nested(true)
                .build()
                .map_err(|e| encode(what, e))?,
        )
        .nla_payload(Buffer::new())
        .build()
        .map_err(|e| encode(what, e))?;
    children
        .iter()
        .try_fold(empty, |n, a| n.nest(a))
        .map_err(|e| encode(what, e))
}

/// IPVS_CMD_ATTR_SERVICE with the attributes that identify a service, for GET_DEST and SET_DEST.
fn identity_attr(id: &ServiceIdentity) -> Result<Nlattr<u16, Buffer>, NetlinkError> {
    use ipvs::*;
    const WHAT: &str = "IPVS_CMD_ATTR_SERVICE";
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
    nest(WHAT, CMD_ATTR_SERVICE, &children)
}

impl IpvsNetlink {
    /// Opens a socket and resolves the `IPVS` family. [`NetlinkError::Unavailable`] when the
    /// module is not loaded. Resolving needs no privilege; the first query does.
    ///
    /// The family name is a module alias: asked for while ip_vs is not loaded, the kernel would
    /// load it. A monitor must not load kernel modules, so without `/proc/net/ip_vs` (there
    /// exactly while ip_vs is loaded, per network namespace) this does not ask.
    pub fn connect() -> Result<Self, NetlinkError> {
        if !std::path::Path::new("/proc/net/ip_vs").exists() {
            return Err(NetlinkError::Unavailable);
        }
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
            dests: rustc_hash::FxHashMap::default(),
            changes_seen: WEIGHT_CHANGES.load(Ordering::Relaxed),
            table: None,
            live: None,
            generation: 0,
            reading: false,
            reads: 0,
            text: None,
            text_due: Instant::now(),
            services_edited: false,
            checks: 0,
            check_read: false,
        };
        me.family = me.resolve_family()?;
        Ok(me)
    }

    #[cfg(test)]
    /// The generic netlink id the kernel gave the IPVS family.
    pub(crate) fn family_id(&self) -> u16 {
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
        self.read_services(DestReads::Every).map(|r| r.services)
    }

    /// Every virtual service, and the real servers of those `reads` asks to dump; the others'
    /// are carried from their last dump ([`DestDump::stale`] says when that may differ from the
    /// kernel: only by another tool's change, for at most `at_least`). The services themselves are carried from the last GET_SERVICE dump while
    /// the router counts nothing ([`Self::note_counters`]). A backup
    /// sync daemon makes connections from its master's messages without counting them, so on a
    /// backup director every service is dumped.
    pub fn read_services(&mut self, reads: DestReads) -> Result<ServicesRead, NetlinkError> {
        self.read_services_unless(reads, None)
    }

    /// [`Self::read_services`], but with no services in what it returns when its generation is
    /// `known`: the caller has them already.
    pub fn read_services_unless(
        &mut self,
        reads: DestReads,
        known: Option<u64>,
    ) -> Result<ServicesRead, NetlinkError> {
        // One clock reading for the whole read: where the clock is no vDSO (as under emulation),
        // each is a system call.
        let (now, stamp) = (Instant::now(), Timestamp::now());
        // Whether the last read ended; if not, its dumps are half updated.
        let whole = !std::mem::replace(&mut self.reading, true);
        // A weight this process set shows at once, whatever its service's counters do.
        let changes = WEIGHT_CHANGES.load(Ordering::Relaxed);
        let changed_here = std::mem::replace(&mut self.changes_seen, changes) != changes;
        // How long a dump holds (spread for services seen first), and whether this read may
        // carry any (not after a change here, nor on a backup director).
        // The services are dumped at least every `at_least` (one dump: it also shows another
        // tool's `ipvsadm -Z` of one service, and the flags the text lacks); each service's real
        // servers, while the text is checked, every `checked_at_least`.
        let (spread, table_spread) = match reads {
            DestReads::Changed {
                at_least,
                checked_at_least,
            } => (
                Some(if self.text.is_some() {
                    checked_at_least.max(at_least)
                } else {
                    at_least
                }),
                Some(at_least),
            ),
            DestReads::Every => (None, None),
        };
        let check_read = std::mem::take(&mut self.check_read);
        let sync = self.sync_daemons()?;
        let backup = sync.iter().any(|d| d.role == SyncRole::Backup);
        let carry = spread.is_some() && !changed_here && !backup;
        let carried = match self.table.as_ref() {
            Some(t) if carry && !self.services_edited && self.table_holds(t, now) => {
                Some(std::mem::take(&mut self.table))
            }
            _ => None,
        };
        // The last read's services, when this read dumps them again (this process's reads only
        // keep it when they may carry).
        let previous = if carried.is_none() {
            self.table.take()
        } else {
            None
        };
        let (table, services_dumped) = match carried {
            Some(Some(t)) => (*t, false),
            _ => (self.dump_services(table_spread, (now, stamp))?, true),
        };
        // A dump that found the services as they were is no change: on an idle table, the one
        // every `at_least` then costs its dump, not a whole sample assembled and sent.
        let services_same =
            !services_dumped || previous.is_some_and(|p| p.services == table.services);
        self.services_edited &= !services_dumped;
        let mut read = ServicesRead {
            services: Vec::new(),
            // The services' own settings are as old as their dump.
            oldest_reals: (!services_dumped).then_some(table.stamp),
            dumped: 0,
            services_dumped,
            generation: self.generation,
            sync,
        };
        let base = self.checks + u64::from(!check_read);
        let same = self.read_dests(
            &mut read,
            &table.services,
            (carry, base),
            spread,
            (now, stamp),
        )?;
        if !(same && whole && services_same) {
            self.generation = self.generation.wrapping_add(1);
        }
        read.generation = self.generation;
        if known != Some(self.generation) {
            read.services = self.assemble(&table.services);
        }
        if spread.is_some() {
            self.table = Some(Box::new(table));
        }
        self.reading = false;
        Ok(read)
    }

    /// The services of `table`, each with its real servers as last dumped.
    fn assemble(
        &self,
        table: &[(VirtualServiceSample, ServiceIdentity)],
    ) -> Vec<VirtualServiceSample> {
        table
            .iter()
            .map(|(svc, id)| {
                let mut svc = svc.clone();
                if let Some(d) = self.dests.get(id) {
                    svc.reals.clone_from(&d.reals);
                }
                svc
            })
            .collect()
    }

    /// Notes the router's live counters (`/proc/net/ip_vs_stats_percpu`, which the kernel counts
    /// on every connection and packet of every service, before any estimate; and the totals it
    /// reports, which `ipvsadm -Z` sets back), read just before a read of the services. While
    /// they stand still, and stood still for [`SETTLE`] before the last GET_SERVICE dump, no
    /// service's counters or rates can have moved since that dump, and a read carries the
    /// services from it (every service's rates must have been zero then) instead of dumping
    /// them again; at least every `at_least` it dumps them anyway, for another tool's edit.
    /// `None` (no such file) leaves every read dumping them.
    pub fn note_counters(&mut self, live: Option<String>) {
        self.live = match (live, self.live.take()) {
            (Some(now), Some((last, since))) if now == last => Some((last, since)),
            (Some(now), _) => Some((now, Instant::now())),
            (None, _) => None,
        };
    }

    /// Whether the kernel's text table is due a check ([`Self::note_text`]) before the next read.
    pub fn text_due(&self, now: Instant) -> bool {
        now >= self.text_due
    }

    /// Notes the kernel's text table (`/proc/net/ip_vs`), read just before a read of the services
    /// that may carry ([`DestReads::Changed`]), and checks it again after `every`. It shows each
    /// service's scheduler and persistence and each real server's address, method, weight and
    /// connection counts: the read that follows dumps again every service whose dump the check
    /// cannot vouch for ([`check_dumps`]), and the services too when one came, went or its line
    /// changed; the other dumps stand confirmed as of now. Each is still dumped at least every
    /// `checked_at_least` for what the text does not show (thresholds, tunnel settings). `None`
    /// (it could not be read) goes back to dumping every service every `at_least`.
    pub fn note_text(&mut self, text: Option<&[u8]>, every: std::time::Duration) {
        let (now, stamp) = (Instant::now(), Timestamp::now());
        self.text_due = now + every;
        let Some(text) = text else {
            if self.text.take().is_some() {
                // What was carried on the strength of the checks is due now.
                self.all_due(now);
            }
            return;
        };
        let table = TextTable::read(text, self.text.as_deref());
        self.checks += 1;
        self.check_read = true;
        match self.text.as_ref() {
            Some(before) => {
                let edited = table.services_changed(before);
                self.services_edited |= edited;
                let due = check_dumps(
                    &mut self.dests,
                    (before, &table, self.checks),
                    (now, stamp),
                    every,
                );
                tracing::debug!(
                    due,
                    services = edited,
                    changed = %table
                        .changed_names(before)
                        .iter()
                        .take(64)
                        .map(|id| text::name(id))
                        .collect::<Vec<_>>()
                        .join(" "),
                    "text check"
                );
            }
            // Dumps taken before a first check have no check to confirm them.
            None => {
                self.all_due(now);
                tracing::debug!("text check: first");
            }
        }
        self.text = Some(Box::new(table));
    }

    /// Every dump carried so far is due at `now`.
    fn all_due(&mut self, now: Instant) {
        for d in self.dests.values_mut() {
            d.due = d.due.min(now);
        }
        if let Some(t) = self.table.as_mut() {
            t.due = t.due.min(now);
        }
    }

    /// Whether the last GET_SERVICE dump still holds at `now` (see [`Self::note_counters`]).
    fn table_holds(&self, table: &ServiceTable, now: Instant) -> bool {
        table.holds(self.live.as_ref().map(|(_, since)| *since), now)
    }

    /// Every virtual service (GET_SERVICE), without real servers. Kept for the reads after it
    /// when `spread` is given, until `spread` from now.
    fn dump_services(
        &mut self,
        spread: Option<std::time::Duration>,
        (now, stamp): (Instant, Timestamp),
    ) -> Result<ServiceTable, NetlinkError> {
        use ipvs::*;
        self.table = None;
        let mut services = Vec::new();
        self.transact(
            self.family,
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
        let idle = services
            .iter()
            .all(|(s, _)| s.rates.is_none_or(|r| r == IpvsRates::default()));
        Ok(ServiceTable {
            services,
            read: now,
            stamp,
            idle,
            due: now + spread.unwrap_or_default(),
        })
    }

    /// The real servers of `services`: dumped where [`DestDump::stale`] says, else carried.
    /// Whether every dump found what the last one of its service did.
    fn read_dests(
        &mut self,
        read: &mut ServicesRead,
        services: &[(VirtualServiceSample, ServiceIdentity)],
        (carry, base): (bool, u64),
        spread: Option<std::time::Duration>,
        (now, stamp): (Instant, Timestamp),
    ) -> Result<bool, NetlinkError> {
        self.reads = self.reads.wrapping_add(1);
        let pass = self.reads;
        // recvmmsg's message headers, for all the dumps below (they hold no buffers between them).
        let mut headers = MultiHeaders::preallocate(2, None);
        let firsts = services
            .iter()
            .filter(|(_, id)| !self.dests.contains_key(id))
            .count();
        let mut first = 0;
        let mut same = true;
        for (svc, id) in services {
            match self.dests.get_mut(id) {
                Some(last) if carry && !last.stale(svc, now) => {
                    last.seen = pass;
                    read.oldest_reals =
                        Some(read.oldest_reals.map_or(last.read, |t| t.min(last.read)));
                    continue;
                }
                _ => {}
            }
            let last = self.dests.remove(id);
            // Due again after `at_least`. A service seen for the first time, within it, spread
            // over it, so that a table read at once is not all due at once; and a read that
            // dumps every service keeps each one's time, for the same reason.
            let due = match (spread, &last) {
                (Some(a), None) => {
                    first += 1;
                    now + a.mul_f64(first as f64 / firsts.max(1) as f64)
                }
                (Some(a), Some(_)) if carry => now + a,
                (_, Some(l)) => l.due,
                (None, None) => now,
            };
            let (request, before) = match last {
                Some(l) => (Some(l.request), Some(l.reals)),
                None => (None, None),
            };
            let mut dump = self.dump_dests(&mut headers, svc, id, request, (stamp, due))?;
            same &= before.as_ref() == Some(&dump.reals);
            dump.seen = pass;
            dump.base = base;
            self.dests.insert(id.clone(), dump);
            read.dumped += 1;
        }
        // Services gone from the table.
        self.dests.retain(|_, d| d.seen == pass);
        Ok(same)
    }

    /// One service's real servers (GET_DEST); `request` is the one encoded for it last time, if
    /// any.
    fn dump_dests(
        &mut self,
        headers: &mut MultiHeaders<()>,
        svc: &VirtualServiceSample,
        id: &ServiceIdentity,
        request: Option<Vec<u8>>,
        (read, due): (Timestamp, Instant),
    ) -> Result<DestDump, NetlinkError> {
        use ipvs::*;
        // Real servers without IPVS_DEST_ATTR_ADDR_FAMILY (kernels before 3.18) have the
        // service's family.
        let service_family = match svc.key {
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
        let mut request = match request {
            Some(r) => r,
            None => request_bytes(
                self.family,
                CMD_GET_DEST,
                GENL_VERSION,
                std::iter::once(identity_attr(id)?).collect(),
                true,
                "IPVS_CMD_GET_DEST",
            )?,
        };
        let mut reals = Vec::new();
        self.exchange(
            headers,
            &mut request,
            true,
            "dump the real servers (IPVS_CMD_GET_DEST)",
            &mut |_, attrs| {
                if let Some(p) = top(attrs, CMD_ATTR_DEST, "IPVS_CMD_NEW_DEST")? {
                    reals.push(parse_dest(p, service_family)?);
                }
                Ok(())
            },
        )?;
        Ok(DestDump {
            request,
            reals,
            totals: svc.totals,
            rates: svc.rates,
            read,
            due,
            seen: 0,
            base: 0,
        })
    }

    /// The connection-sync daemons running here (IPVS_CMD_GET_DAEMON): a master, a backup, or
    /// both, each with its interface and sync id.
    pub fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, NetlinkError> {
        use ipvs::*;
        let mut daemons = Vec::new();
        self.transact(
            self.family,
            CMD_GET_DAEMON,
            GENL_VERSION,
            GenlBuffer::new(),
            true,
            "dump the sync daemons (IPVS_CMD_GET_DAEMON)",
            &mut |_, attrs| {
                if let Some(nest) = top(attrs, CMD_ATTR_DAEMON, "IPVS_CMD_NEW_DAEMON")?
                    && let Some(d) = parse_daemon(nest)?
                {
                    daemons.push(d);
                }
                Ok(())
            },
        )?;
        daemons.sort_by_key(|d| d.role);
        Ok(daemons)
    }

    /// Sets one real server's weight with IPVS_CMD_SET_DEST. The kernel replaces every attribute
    /// of a destination on SET_DEST, so everything else is sent back as it was read: forwarding
    /// method, both thresholds, address family and tunnel encapsulation.
    pub fn set_weight(
        &mut self,
        svc: &VirtualServiceSample,
        real: &RealServerSample,
        weight: i32,
    ) -> Result<(), NetlinkError> {
        use ipvs::*;
        const WHAT: &str = "IPVS_CMD_SET_DEST";
        let weight = u32::try_from(weight).map_err(|_| encode(WHAT, "a negative weight"))?;
        let dest = nest(WHAT, CMD_ATTR_DEST, &dest_attrs(real, weight)?)?;
        let attrs: GenlBuffer<u16, Buffer> = [identity_attr(&ServiceIdentity::of(&svc.key))?, dest]
            .into_iter()
            .collect();
        let mut request = request_bytes_with(
            self.family,
            CMD_SET_DEST,
            GENL_VERSION,
            attrs,
            NlmF::REQUEST | NlmF::ACK,
            WHAT,
        )?;
        let mut headers = MultiHeaders::preallocate(2, None);
        let set = self.exchange(
            &mut headers,
            &mut request,
            false,
            "set a real server's weight (IPVS_CMD_SET_DEST)",
            &mut |_, _| Ok(()),
        );
        // Whether or not it took, the next read dumps every service again.
        WEIGHT_CHANGES.fetch_add(1, Ordering::Relaxed);
        set
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
        let mut headers = MultiHeaders::preallocate(2, None);
        self.exchange(&mut headers, &mut request, dump, what, on_msg)
    }

    /// Sends an encoded request (with a fresh sequence number written into it) and reads the
    /// reply. Data messages are read in place; errors and the end of a dump through neli.
    fn exchange(
        &mut self,
        headers: &mut MultiHeaders<()>,
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
        if self.buf.len() != 2 * len {
            self.buf.resize(2 * len, 0);
        }
        loop {
            let got = recv_two(self.sock.as_raw_fd(), headers, &mut self.buf, len)
                .map_err(|source| NetlinkError::Io { what, source })?;
            for (k, &(n, truncated)) in got.iter().flatten().enumerate() {
                if truncated {
                    // The datagram is lost; read with room for the kernel's largest dump message
                    // from the next connection on (the caller reconnects after an error).
                    RECV_LEN.store(MAX_RECV_LEN, Ordering::Relaxed);
                    return Err(malformed(
                        what,
                        format!(
                            "a reply did not fit the {len}-byte buffer; the next poll reads with {MAX_RECV_LEN}"
                        ),
                    ));
                }
                let start = k * len;
                let datagram = &self.buf[start..start + n.min(len)];
                if read_datagram(datagram, seq, dump, what, on_msg)? == Reply::Ended {
                    return Ok(());
                }
            }
        }
    }
}

/// Receives one datagram, and a second one if it is already there: a dump's last data and its
/// NLMSG_DONE (which the kernel queues while the first is read) come in one system call. Each
/// is `(length, truncated)`; they land in `buf[..len]` and `buf[len..2 * len]`.
fn recv_two(
    fd: std::os::fd::RawFd,
    headers: &mut MultiHeaders<()>,
    buf: &mut [u8],
    len: usize,
) -> Result<[Option<(usize, bool)>; 2], std::io::Error> {
    let (a, b) = buf.split_at_mut(len);
    let mut iovs = [[IoSliceMut::new(a)], [IoSliceMut::new(&mut b[..len])]];
    let mut out = [None; 2];
    let received = match recvmmsg(fd, headers, iovs.iter_mut(), MsgFlags::MSG_WAITFORONE, None) {
        Ok(r) => r,
        // Interrupted by a signal before anything came: the caller asks again.
        Err(Errno::EINTR) => return Ok(out),
        Err(e) => return Err(std::io::Error::from(e)),
    };
    for (slot, m) in out.iter_mut().zip(received) {
        *slot = Some((m.bytes, m.flags.contains(MsgFlags::MSG_TRUNC)));
    }
    Ok(out)
}

/// Whether a reply goes on after a datagram.
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    Continues,
    Ended,
}

/// The netlink messages of one datagram: data to `on_msg`, errors as errors, and whether the
/// reply to request `seq` ended (NLMSG_DONE for a dump, the first message otherwise).
fn read_datagram(
    datagram: &[u8],
    seq: u32,
    dump: bool,
    what: &'static str,
    on_msg: &mut Handler<'_>,
) -> Result<Reply, NetlinkError> {
    let mut off = 0;
    while off < datagram.len() {
        let rest = &datagram[off..];
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
            return Ok(Reply::Ended);
        }
        if msg_type == u16::from(Nlmsg::Error) {
            // struct nlmsgerr { int error; struct nlmsghdr msg; ... }: 0 is an ACK. Only the
            // errno is read: neli's decoding of the echoed request panics on a short one.
            let code = msg
                .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| malformed(what, "NLMSG_ERROR without its error code"))?;
            if code < 0 {
                return Err(kernel_error(what, -code));
            }
            return Ok(Reply::Ended);
        }
        if msg_type == u16::from(Nlmsg::Overrun) {
            return Err(malformed(what, "NLMSG_OVERRUN: the kernel dropped data"));
        }
        if msg_type < NLMSG_MIN_TYPE {
            continue; // NLMSG_NOOP and netlink's reserved types
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
            return Ok(Reply::Ended);
        }
    }
    Ok(Reply::Continues)
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
    let flags = if dump {
        NlmF::REQUEST | NlmF::DUMP
    } else {
        NlmF::REQUEST
    };
    request_bytes_with(nl_type, cmd, version, attrs, flags, what)
}

/// Encodes one generic netlink request with the given netlink flags.
fn request_bytes_with(
    nl_type: u16,
    cmd: u8,
    version: u8,
    attrs: GenlBuffer<u16, Buffer>,
    flags: NlmF,
    what: &'static str,
) -> Result<Vec<u8>, NetlinkError> {
    let genl = GenlmsghdrBuilder::<u8, u16>::default()
        .cmd(cmd)
        .version(version)
        .attrs(attrs)
        .build()
        .map_err(|e| encode(what, e))?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(nl_type)
        .nl_flags(flags)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| encode(what, e))?;
    let mut out = Cursor::new(Vec::with_capacity(64));
    msg.to_bytes(&mut out).map_err(|e| encode(what, e))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::ipvs::*;
    use super::parse::*;
    use super::*;
    use crate::model::sample::{Forward, Persistence, TunnelEncap, TunnelKind};
    use std::net::IpAddr;

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
        assert_eq!(svc.scheduler.as_deref(), Some("wlc"));
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

    /// A text check confirms a dump only where its service's lines are in both reads and the
    /// same and the dump was taken before the earlier read or at once after it; every other
    /// dump, and each whose periodic dump falls before the next check, is due.
    #[test]
    fn a_text_check_confirms_only_dumps_it_can_vouch_for() {
        let table = "TCP  0A4E0001:0050 wlc \n  -> 0A4D0201:1F40      Route   1      0          0 \n\
                     TCP  0A4E0002:0050 wlc \n  -> 0A4D0201:1F41      Route   1      0          0 \n\
                     FWM  00000007 rr \n  -> 0A4D0203:0000      Masq    3      0          0 \n";
        let tcp = |last| {
            ServiceIdentity::of(&ServiceKey::Addr {
                protocol: crate::model::sample::Protocol::Tcp,
                address: std::net::Ipv4Addr::new(10, 78, 0, last).into(),
                port: 80,
            })
        };
        let mark = |family| ServiceIdentity::of(&ServiceKey::Fwmark { mark: 7, family });
        let ids = [
            tcp(1),
            tcp(2),
            tcp(3),
            mark(AddressFamily::Inet),
            mark(AddressFamily::Inet6),
        ];
        let now = Instant::now();
        let every = std::time::Duration::from_secs(30);
        let (later, soon) = (now + every * 10, now + every * 5 / 4);
        let dests = |bases: [u64; 5], due: Instant| {
            ids.iter()
                .zip(bases)
                .map(|(id, base)| {
                    let d = DestDump {
                        request: Vec::new(),
                        reals: Vec::new(),
                        totals: None,
                        rates: None,
                        read: Timestamp(0),
                        due,
                        seen: 0,
                        base,
                    };
                    (id.clone(), d)
                })
                .collect::<rustc_hash::FxHashMap<_, _>>()
        };
        let check = |after: &str, bases: [u64; 5], due: Instant| {
            let before = TextTable::read(table.as_bytes(), None);
            let after = TextTable::read(after.as_bytes(), Some(&before));
            let mut d = dests(bases, due);
            let n = check_dumps(&mut d, (&before, &after, 2), (now, Timestamp(5)), every);
            let state: Vec<(bool, bool)> = ids
                .iter()
                .map(|id| (d[id].due == now, d[id].read == Timestamp(5)))
                .collect();
            assert_eq!(n, state.iter().filter(|(due, _)| *due).count());
            state
        };
        const CONFIRMED: (bool, bool) = (false, true);
        const DUE: (bool, bool) = (true, false);
        // Nothing moved: taken at or before the check before, confirmed; tcp(3) is in neither
        // read, and the dumps taken between the checks (base 2) may show an undone edit.
        assert_eq!(
            check(table, [1, 0, 1, 1, 2], later),
            [CONFIRMED, CONFIRMED, DUE, CONFIRMED, DUE]
        );
        // A weight: its service alone; a firewall mark's, both families.
        let weight = table.replace("1F41      Route   1", "1F41      Route   0");
        assert_eq!(
            check(&weight, [1; 5], later),
            [CONFIRMED, DUE, DUE, CONFIRMED, CONFIRMED]
        );
        let fwm = table.replace("Masq    3", "Masq    2");
        assert_eq!(
            check(&fwm, [1; 5], later),
            [CONFIRMED, CONFIRMED, DUE, DUE, DUE]
        );
        // A service gone from the second read (removed, or skipped by a torn read).
        let gone = table.replace(
            "TCP  0A4E0001:0050 wlc \n  -> 0A4D0201:1F40      Route   1      0          0 \n",
            "",
        );
        assert_eq!(
            check(&gone, [1; 5], later),
            [DUE, CONFIRMED, DUE, CONFIRMED, CONFIRMED]
        );
        // Periodic dumps that fall before the next check (which comes at the first poll after
        // `every`) are taken now, after this check.
        assert!(check(table, [1; 5], soon).iter().all(|(due, _)| *due));
    }

    /// The rule that lets a read skip a service's GET_DEST: only when nothing that moves a real
    /// server without another tool has moved, and not past its due time.
    #[test]
    fn real_servers_are_carried_only_while_nothing_of_their_service_moved() {
        let (svc, _) = parse_service(&tcp_persistent_service()).expect("parses");
        let mut idle = parse_dest(&dest(3, 5, None), AddressFamily::Inet).expect("parses");
        (
            idle.active_conns,
            idle.inactive_conns,
            idle.persistent_conns,
        ) = (0, 0, Some(0));
        idle.rates = Some(IpvsRates::default());
        let now = Instant::now();
        let dump = |reals: Vec<RealServerSample>, due| DestDump {
            request: Vec::new(),
            reals,
            totals: svc.totals,
            rates: svc.rates,
            read: Timestamp(0),
            due,
            seen: 0,
            base: 0,
        };
        let later = now + std::time::Duration::from_secs(30);
        assert!(!dump(vec![idle.clone()], later).stale(&svc, now));
        assert!(dump(vec![idle.clone()], now).stale(&svc, now), "due");

        let mut moved = svc.clone();
        if let Some(t) = moved.totals.as_mut() {
            t.in_packets += 1;
        }
        assert!(
            dump(vec![idle.clone()], later).stale(&moved, now),
            "a packet"
        );
        let mut decaying = svc.clone();
        if let Some(r) = decaying.rates.as_mut() {
            r.cps /= 2.0;
        }
        assert!(
            dump(vec![idle.clone()], later).stale(&decaying, now),
            "a rate"
        );
        for open in [(1, 0, 0), (0, 1, 0), (0, 0, 1)] {
            let mut r = idle.clone();
            (r.active_conns, r.inactive_conns, r.persistent_conns) = (open.0, open.1, Some(open.2));
            assert!(
                dump(vec![idle.clone(), r], later).stale(&svc, now),
                "{open:?} may expire"
            );
        }
        let mut estimating = idle.clone();
        estimating.rates = Some(IpvsRates {
            in_bps: 1.0,
            ..IpvsRates::default()
        });
        assert!(
            dump(vec![idle.clone(), estimating], later).stale(&svc, now),
            "a real server's estimate still moving"
        );
    }

    #[test]
    fn services_are_carried_only_from_an_idle_dump_made_after_the_counters_settled() {
        let t0 = Instant::now();
        let read = t0 + SETTLE;
        let table = |idle| ServiceTable {
            services: Vec::new(),
            read,
            stamp: Timestamp(0),
            idle,
            due: read + std::time::Duration::from_secs(30),
        };
        let now = read + std::time::Duration::from_secs(2);
        assert!(table(true).holds(Some(t0), now));
        assert!(!table(false).holds(Some(t0), now), "a rate not zero");
        assert!(!table(true).holds(None, now), "counters unknown");
        assert!(
            !table(true).holds(Some(t0 + std::time::Duration::from_secs(1)), now),
            "counted less than SETTLE before the dump"
        );
        assert!(
            !table(true).holds(Some(read + std::time::Duration::from_secs(1)), now),
            "counted after the dump"
        );
        assert!(
            !table(true).holds(Some(t0), read + std::time::Duration::from_secs(30)),
            "due"
        );
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
    fn a_local_real_server_reads_as_local() {
        // fwd 1 is IP_VS_CONN_F_LOCALNODE, which ipvsadm cannot set (so the lab test cannot).
        let r = parse_dest(&dest(1, 1, None), AddressFamily::Inet).expect("parses");
        assert_eq!(r.forward, Forward::Local);
    }

    /// A netlink message: header (length, type, flags, seq, pid 0) and payload.
    fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(
            &u32::try_from(16 + payload.len())
                .expect("small")
                .to_ne_bytes(),
        );
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(&flags.to_ne_bytes());
        v.extend_from_slice(&seq.to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// What `read_datagram` answered, and the `(cmd, attributes)` it handed on.
    type Read = (Result<Reply, NetlinkError>, Vec<(u8, Vec<u8>)>);

    fn read(datagram: &[u8], dump: bool) -> Read {
        let mut seen = Vec::new();
        let r = read_datagram(datagram, 7, dump, "test", &mut |cmd, attrs| {
            seen.push((cmd, attrs.to_vec()));
            Ok(())
        });
        (r, seen)
    }

    const MULTI: u16 = 0x2;

    #[test]
    fn a_dump_datagram_feeds_its_messages_skips_stale_ones_and_ends_at_done() {
        let data = [
            nlmsg(0x20, MULTI, 6, &[CMD_NEW_DEST, 1, 0, 0, 9, 9, 9, 9]), // an older request's
            nlmsg(0x20, MULTI, 7, &[CMD_NEW_DEST, 1, 0, 0, 1, 2, 3, 4]),
            nlmsg(3, MULTI, 7, &0i32.to_ne_bytes()), // NLMSG_DONE
        ]
        .concat();
        let (r, seen) = read(&data, true);
        assert_eq!(r.expect("ok"), Reply::Ended);
        assert_eq!(seen, vec![(CMD_NEW_DEST, vec![1, 2, 3, 4])]);

        let (r, _) = read(&data[..data.len() - 20], true);
        assert_eq!(r.expect("ok"), Reply::Continues, "no DONE yet");
    }

    #[test]
    fn kernel_errors_become_the_operators_messages() {
        // NLMSG_ERROR: -errno, then the header of the request it answers.
        let error = |errno: i32| {
            let echoed = nlmsg(0x20, 0x1 | 0x300, 7, &[]);
            nlmsg(2, 0, 7, &[(-errno).to_ne_bytes().to_vec(), echoed].concat())
        };
        let msg =
            |e: Result<Reply, NetlinkError>| e.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            msg(read(&error(1), true).0),
            "IPVS netlink needs root or CAP_NET_ADMIN"
        );
        assert_eq!(
            msg(read(&error(2), false).0),
            "IPVS is not available: modprobe ip_vs"
        );
        assert!(
            msg(read(&error(16), true).0).starts_with("IPVS netlink: test: the kernel answered")
        );
        // A dump that ends in an error.
        assert_eq!(
            msg(read(&nlmsg(3, MULTI, 7, &(-1i32).to_ne_bytes()), true).0),
            "IPVS netlink needs root or CAP_NET_ADMIN"
        );
    }

    #[test]
    fn an_error_message_with_a_broken_echo_is_still_no_panic() {
        for echoed_len in [0u32, 4, 15, 16, 17, 1000] {
            let mut echoed = nlmsg(0x20, 1, 7, &[]);
            echoed[..4].copy_from_slice(&echoed_len.to_ne_bytes());
            let data = nlmsg(2, 0, 7, &[(-1i32).to_ne_bytes().to_vec(), echoed].concat());
            let _ = read(&data, true);
            let _ = read(&data[..data.len() - 8], true);
        }
    }

    #[test]
    fn a_message_longer_than_its_datagram_is_an_error_not_a_panic() {
        let mut data = nlmsg(0x20, MULTI, 7, &[CMD_NEW_DEST, 1, 0, 0]);
        data[0] = 200;
        let e = read(&data, true)
            .0
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("message claims 200 bytes, 20 left"), "{e}");
        let e = read(&data[..10], true)
            .0
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("10 bytes after the last message"), "{e}");
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
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]

        #[test]
        fn any_datagram_is_read_or_refused_never_a_panic(
            kind in proptest::prop_oneof![proptest::strategy::Just(2u16), proptest::strategy::Just(3u16), proptest::strategy::Just(0x20u16), proptest::prelude::any::<u16>()],
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let data = [nlmsg(kind, MULTI, 7, &payload), tail].concat();
            let _ = read(&data, true);
            let _ = read(&data, false);
        }


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
