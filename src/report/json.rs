//! The schema-1 snapshot written straight from the state as compact JSON, into a buffer the caller
//! reuses: keys are constant bytes, numbers are formatted in place, and only strings that come
//! from outside (host names, errors, schedulers, notes, alert messages) go through the RFC 8259
//! escaper. `--once --json` and `replay --export json` both write with this; `report::snapshot`
//! (serde) is the reference it is tested against (`tests/report_json.rs`).
//!
//! Two choices, documented in `docs/json.md`: CPU percentages are rounded to two decimals, and a
//! number that is not finite is written as `null`, as serde_json writes it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::IpAddr;

use crate::app::State;
use crate::app::state::NodeEntry;
use crate::model::alert::Severity;
use crate::model::dr::service_vips;
use crate::model::sample::{
    ConnSummary, HostStatus, IpvsCounters, IpvsInfo, IpvsRates, Persistence, RealServerSample,
    RouterSample, ServiceKey, Timestamp, TunnelEncap, TunnelKind, VirtualServiceSample,
};
use crate::model::snapshot::{CpuPercent, RealStats, ServiceStats};

use super::SCHEMA;

mod pair;

/// Appends the state as one schema-1 snapshot (compact, no newline) to `out`.
pub fn write_snapshot(state: &State, out: &mut Vec<u8>) {
    let mut w = Json::new(out);
    w.raw(b"{\"schema\":");
    w.uint(u64::from(SCHEMA));
    w.raw(b",\"time\":");
    w.time(state.now());
    w.raw(b",\"router\":");
    router(&mut w, state);
    w.raw(b",\"nodes\":[");
    for (i, n) in state.nodes().iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        node(&mut w, state, n);
    }
    w.raw(b"],\"alerts\":[");
    alerts(&mut w, state);
    w.raw(b"]}");
    w.flush();
}

/// One node's object.
#[inline]
fn node(w: &mut Json<'_>, state: &State, n: &NodeEntry) {
    let st = n.stats.as_ref();
    w.raw(b"{\"name\":");
    w.string(&n.name);
    w.raw(b",\"host\":");
    w.string(&n.host);
    w.raw(b",\"status\":");
    w.string(n.status.as_str());
    w.raw(b",\"error\":");
    w.opt_string(n.message.as_deref());
    w.raw(b",\"cores\":");
    match st {
        Some(s) => w.uint(s.cores as u64),
        None => w.null(),
    }
    w.raw(b",\"load\":");
    match st {
        Some(s) => {
            w.raw(b"[");
            w.float(s.load[0]);
            w.raw(b",");
            w.float(s.load[1]);
            w.raw(b",");
            w.float(s.load[2]);
            w.raw(b"]");
        }
        None => w.null(),
    }
    w.raw(b",\"cpu_total_percent\":");
    match st.and_then(|s| s.cpu_total) {
        Some(c) => w.percent(c.busy()),
        None => w.null(),
    }
    w.raw(b",\"cpus\":");
    match st.filter(|s| s.cpus.iter().any(Option::is_some)) {
        Some(s) => {
            w.raw(b"[");
            for (i, c) in s.cpus.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                match c {
                    Some(c) => cpu(w, c),
                    None => w.null(),
                }
            }
            w.raw(b"]");
        }
        None => w.null(),
    }
    w.raw(b",\"cpu_detail\":");
    match st {
        Some(s) => w.string(s.cpu_detail()),
        None => w.null(),
    }
    w.raw(b",\"memory\":");
    match st {
        Some(s) => {
            w.raw(b"{\"total_bytes\":");
            w.uint(s.memory_total_bytes);
            w.raw(b",\"available_bytes\":");
            w.uint(s.memory_available_bytes);
            w.raw(b"}");
        }
        None => w.null(),
    }
    w.raw(b",\"uptime_s\":");
    match st {
        Some(s) => w.float(s.uptime_s),
        None => w.null(),
    }
    w.raw(b",\"dr_problems\":");
    match &n.dr_problems {
        Some(problems) => {
            w.raw(b"[");
            for (i, p) in problems.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.string(p);
            }
            w.raw(b"]");
        }
        None => w.null(),
    }
    w.raw(b",\"alert\":");
    w.severity(state.alerts().worst(&n.name));
    w.raw(b"}");
}

/// The active alerts' objects, newest first.
#[inline]
fn alerts(w: &mut Json<'_>, state: &State) {
    // Newest first; alerts raised at the same moment keep the book's order (subject, kind).
    let mut active: Vec<_> = state.alerts().active().collect();
    active.sort_by_key(|a| std::cmp::Reverse(a.2.since));
    for (i, (subject, _, a)) in active.into_iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.raw(b"{\"time\":");
        w.time(a.since);
        w.raw(b",\"severity\":");
        w.severity(Some(a.severity));
        w.raw(b",\"subject\":");
        w.string(subject);
        w.raw(b",\"message\":");
        w.string(&a.message);
        w.raw(b"}");
    }
}

fn router(w: &mut Json<'_>, state: &State) {
    let Some(r) = state.router() else {
        w.null();
        return;
    };
    let cur = r.cur.as_ref();
    let conns = cur.and_then(|c| c.connections.as_ref());
    w.raw(b"{\"host\":");
    w.string(&r.host);
    w.raw(b",\"source\":");
    w.opt_string(cur.map(|c| c.source.as_str()));
    let thresholds_known = unknown(w, cur);
    w.raw(b",\"status\":");
    w.string(if r.status == HostStatus::Ok {
        "ok"
    } else {
        "error"
    });
    w.raw(b",\"host_status\":");
    w.string(r.status.as_str());
    w.raw(b",\"error\":");
    w.opt_string(r.message.as_deref().filter(|_| r.status != HostStatus::Ok));
    w.raw(b",\"services\":[");
    if let Some(c) = cur {
        let mut id = Vec::with_capacity(48);
        for (i, svc) in c.services.iter().enumerate() {
            if i > 0 {
                w.raw(b",");
            }
            service(
                w,
                svc,
                r.stats.services.get(i),
                conns,
                thresholds_known,
                &mut id,
            );
        }
    }
    w.raw(b"],\"connections\":");
    match conns {
        Some(c) => {
            w.raw(b"{\"total\":");
            w.uint(c.total);
            w.raw(b",\"by_state\":");
            w.counts(&c.by_state);
            w.raw(b"}");
        }
        None => w.null(),
    }
    w.raw(b",\"totals\":");
    w.counters(cur.and_then(|c| c.global.map(|g| g.totals)).as_ref());
    w.raw(b",\"rates\":");
    w.rates(r.stats.global_rates.as_ref());
    w.raw(b",\"notes\":[");
    if let Some(c) = cur {
        for (i, note) in c.notes.iter().enumerate() {
            if i > 0 {
                w.raw(b",");
            }
            w.string(note);
        }
    }
    w.raw(b"],\"ipvs\":");
    ipvs(w, cur.and_then(|c| c.ipvs.as_ref()));
    w.raw(b",\"ages_s\":");
    match cur.map(|c| c.parts.ages(c.time)) {
        Some(a) => w.object(
            &[
                ("counters", a.counters),
                ("details", a.details),
                ("connections", a.connections),
            ],
            Json::float,
        ),
        None => w.null(),
    }
    w.raw(b",\"sysctl\":");
    match cur.and_then(|c| c.sysctl) {
        Some(s) => w.object(
            &[
                ("ip_forward", s.ip_forward),
                ("expire_nodest_conn", s.expire_nodest_conn),
                ("expire_quiescent_template", s.expire_quiescent_template),
            ],
            |w, v| match v {
                Some(v) => w.uint(u64::from(v)),
                None => w.null(),
            },
        ),
        None => w.null(),
    }
    w.raw(b",\"vips\":");
    vips(w, cur);
    w.raw(b",\"problems\":[");
    for (i, p) in r.problems.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.string(p);
    }
    w.raw(b"],\"owners\":");
    match cur.and_then(|c| c.owners.as_ref()) {
        Some(owners) => {
            w.raw(b"[");
            for (i, o) in owners.iter().enumerate() {
                if i > 0 {
                    w.raw(b",");
                }
                w.string(o);
            }
            w.raw(b"]");
        }
        None => w.null(),
    }
    w.raw(b",\"sync\":");
    pair::sync(w, cur.and_then(|c| c.sync.as_ref()));
    w.raw(b",\"pair\":");
    pair::pair(w, state);
    w.raw(b"}");
}

/// Each VIP of the table and whether the router holds it, where its addresses were read.
fn vips(w: &mut Json<'_>, cur: Option<&RouterSample>) {
    let Some((c, addrs)) = cur.and_then(|c| Some((c, c.addrs.as_ref()?))) else {
        w.null();
        return;
    };
    w.raw(b"[");
    for (i, v) in service_vips(c).into_iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.raw(b"{\"address\":");
        w.address(v);
        w.raw(b",\"local\":");
        if addrs.holds(v) {
            w.raw(b"true}");
        } else {
            w.raw(b"false}");
        }
    }
    w.raw(b"]");
}

/// `"unknown"`: the fields the source cannot know, null in every service and real server, never
/// a number. Returns whether the thresholds are known.
fn unknown(w: &mut Json<'_>, cur: Option<&RouterSample>) -> bool {
    let fields = cur.map_or(&[][..], |c| c.source.unknown_fields());
    w.raw(b",\"unknown\":[");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        w.string(field);
    }
    w.raw(b"]");
    !fields.contains(&"upper_threshold")
}

fn ipvs(w: &mut Json<'_>, info: Option<&IpvsInfo>) {
    let Some(info) = info else {
        w.null();
        return;
    };
    w.raw(b"{\"version\":");
    w.string(&info.version);
    w.raw(b",\"conn_table_size\":");
    w.uint(u64::from(info.conn_table_size));
    w.raw(b",\"timeouts\":");
    match &info.timeouts {
        Some(t) => {
            w.raw(b"{\"tcp_s\":");
            w.uint(u64::from(t.tcp_s));
            w.raw(b",\"tcp_fin_s\":");
            w.uint(u64::from(t.tcp_fin_s));
            w.raw(b",\"udp_s\":");
            w.uint(u64::from(t.udp_s));
            w.raw(b"}");
        }
        None => w.null(),
    }
    w.raw(b"}");
}

fn service(
    w: &mut Json<'_>,
    svc: &VirtualServiceSample,
    st: Option<&ServiceStats>,
    conns: Option<&ConnSummary>,
    thresholds_known: bool,
    id: &mut Vec<u8>,
) {
    w.raw(b"{\"id\":\"");
    match svc.key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            w.bytes(protocol.as_str().as_bytes());
            w.raw(b":");
            w.socket(address, port);
        }
        ServiceKey::Fwmark { mark, .. } => {
            w.raw(b"fwm:");
            w.uint(u64::from(mark));
        }
    }
    w.raw(b"\"");
    match svc.key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            w.raw(b",\"protocol\":");
            w.string(protocol.as_str());
            w.raw(b",\"address\":");
            w.address(address);
            w.raw(b",\"port\":");
            w.uint(u64::from(port));
            w.raw(b",\"fwmark\":null");
        }
        ServiceKey::Fwmark { mark, .. } => {
            w.raw(b",\"protocol\":null,\"address\":null,\"port\":null,\"fwmark\":");
            w.uint(u64::from(mark));
        }
    }
    w.raw(b",\"scheduler\":");
    w.opt_string(svc.scheduler.as_deref());
    w.raw(b",\"persistent\":");
    persistence(w, svc.persistent.as_ref());
    if svc.ops {
        w.raw(b",\"ops\":true,\"flags\":");
    } else {
        w.raw(b",\"ops\":false,\"flags\":");
    }
    match svc.flags {
        Some(f) => w.uint(u64::from(f)),
        None => w.null(),
    }
    w.raw(b",\"pe_name\":");
    w.opt_string(svc.pe_name.as_deref());
    w.raw(b",\"totals\":");
    w.counters(svc.totals.as_ref());
    w.raw(b",\"rates\":");
    w.rates(st.and_then(|s| s.rates).as_ref());
    w.raw(b",\"reals\":[");
    for (i, r) in svc.reals.iter().enumerate() {
        if i > 0 {
            w.raw(b",");
        }
        real(
            w,
            r,
            st.and_then(|s| s.reals.get(i)),
            conns,
            thresholds_known,
            id,
        );
    }
    w.raw(b"]}");
}

fn persistence(w: &mut Json<'_>, p: Option<&Persistence>) {
    let Some(p) = p else {
        w.null();
        return;
    };
    w.raw(b"{\"timeout_s\":");
    w.uint(u64::from(p.timeout_s));
    w.raw(b",\"netmask\":");
    w.string(&p.netmask);
    w.raw(b"}");
}

fn real(
    w: &mut Json<'_>,
    r: &RealServerSample,
    st: Option<&RealStats>,
    conns: Option<&ConnSummary>,
    thresholds_known: bool,
    id: &mut Vec<u8>,
) {
    // The id, `addr:port`, is also the key of the real server's connection states.
    id.clear();
    push_socket(id, r.address, r.port);
    w.raw(b"{\"id\":\"");
    w.bytes(id);
    w.raw(b"\",\"address\":");
    w.address(r.address);
    w.raw(b",\"port\":");
    w.uint(u64::from(r.port));
    w.raw(b",\"forward\":");
    w.opt_string(r.forward.known_str());
    w.raw(b",\"weight\":");
    w.int(i64::from(r.weight));
    if thresholds_known {
        w.raw(b",\"upper_threshold\":");
        w.uint(u64::from(r.upper_threshold));
        w.raw(b",\"lower_threshold\":");
        w.uint(u64::from(r.lower_threshold));
    } else {
        w.raw(b",\"upper_threshold\":null,\"lower_threshold\":null");
    }
    w.raw(b",\"active_conns\":");
    w.uint(u64::from(r.active_conns));
    w.raw(b",\"inactive_conns\":");
    w.uint(u64::from(r.inactive_conns));
    w.raw(b",\"persistent_conns\":");
    match r.persistent_conns {
        Some(n) => w.uint(u64::from(n)),
        None => w.null(),
    }
    w.raw(b",\"totals\":");
    w.counters(r.totals.as_ref());
    w.raw(b",\"rates\":");
    w.rates(st.and_then(|s| s.rates).as_ref());
    w.raw(b",\"tunnel\":");
    tunnel(w, r.tunnel.as_ref());
    w.raw(b",\"conn_states\":");
    match conns {
        Some(c) => match std::str::from_utf8(id)
            .ok()
            .and_then(|id| c.by_real_state.get(id))
        {
            Some(states) => w.counts(states),
            None => w.raw(b"{}"),
        },
        None => w.null(),
    }
    w.raw(b"}");
}

fn tunnel(w: &mut Json<'_>, t: Option<&TunnelEncap>) {
    let Some(t) = t else {
        w.null();
        return;
    };
    w.raw(b"{\"kind\":");
    match t.kind {
        TunnelKind::Other(n) => {
            // As serde writes a newtype variant: `{"other":5}`.
            w.raw(b"{\"other\":");
            w.uint(u64::from(n));
            w.raw(b"}");
        }
        kind => w.string(kind.as_str()),
    }
    w.raw(b",\"port\":");
    w.uint(u64::from(t.port));
    w.raw(b",\"flags\":");
    w.uint(u64::from(t.flags));
    w.raw(b"}");
}

/// One CPU's eight percentages: most of a snapshot (a 32-core node has 256 of them).
fn cpu(w: &mut Json<'_>, c: &CpuPercent) {
    // Keys and braces take 73 bytes, a number at most 24 (zmij's longest).
    w.room(73 + 8 * 24);
    let (buf, at) = (&mut w.buf[..], &mut w.at);
    put(buf, at, b"{\"user\":");
    percent_into(buf, at, c.user);
    put(buf, at, b",\"nice\":");
    percent_into(buf, at, c.nice);
    put(buf, at, b",\"system\":");
    percent_into(buf, at, c.system);
    put(buf, at, b",\"iowait\":");
    percent_into(buf, at, c.iowait);
    put(buf, at, b",\"irq\":");
    percent_into(buf, at, c.irq);
    put(buf, at, b",\"softirq\":");
    percent_into(buf, at, c.softirq);
    put(buf, at, b",\"steal\":");
    percent_into(buf, at, c.steal);
    put(buf, at, b",\"idle\":");
    percent_into(buf, at, c.idle);
    put(buf, at, b"}");
}

#[inline(always)]
fn put<const N: usize>(buf: &mut [u8], at: &mut usize, bytes: &[u8; N]) {
    buf[*at..*at + N].copy_from_slice(bytes);
    *at += N;
}

/// A percentage rounded to two decimals, into `buf` at `at`: the number serde_json writes for
/// `round(x × 100) / 100`, written from the integer of hundredths when it is in range, `null`
/// when it is not finite. `buf` must have 24 bytes free.
#[inline(always)]
fn percent_into(buf: &mut [u8], at: &mut usize, x: f64) {
    let y = x * 100.0;
    // Below 999.995 (every percentage there is), from the integer of hundredths.
    if !(x.is_sign_positive() && y < 99_999.5) {
        percent_rare(buf, at, x);
        return;
    }
    // `y.round()` without the libm call: the fraction `y - trunc(y)` is exact here.
    let t = y as u32;
    let n = if y - f64::from(t) >= 0.5 { t + 1 } else { t };
    let (whole, frac) = (n / 100, (n % 100) as usize);
    if whole >= 100 {
        buf[*at] = b'0' + (whole / 100) as u8;
        *at += 1;
    }
    if whole >= 10 {
        buf[*at] = b'0' + (whole / 10 % 10) as u8;
        *at += 1;
    }
    buf[*at] = b'0' + (whole % 10) as u8;
    buf[*at + 1] = b'.';
    buf[*at + 2..*at + 4].copy_from_slice(&PAIRS[frac * 2..frac * 2 + 2]);
    // `.5`, not `.50`; `.0` stays.
    *at += if frac % 10 == 0 { 3 } else { 4 };
}

/// The rest: negative, huge, and not finite.
#[cold]
#[inline(never)]
fn percent_rare(buf: &mut [u8], at: &mut usize, x: f64) {
    let hundredths = (x * 100.0).round();
    if hundredths.is_finite() {
        let mut f = zmij::Buffer::new();
        let d = f.format_finite(hundredths / 100.0).as_bytes();
        buf[*at..*at + d.len()].copy_from_slice(d);
        *at += d.len();
    } else {
        put(buf, at, b"null");
    }
}

/// "00" to "99".
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Bytes in the stack buffer before they go to the output.
const CHUNK: usize = 16 * 1024;

/// JSON values written into a stack buffer, appended to the output a chunk at a time: keys are
/// constant-length copies (plain moves, no `memcpy` call), numbers are formatted in place.
struct Json<'a> {
    out: &'a mut Vec<u8>,
    buf: [u8; CHUNK],
    at: usize,
}

impl<'a> Json<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self {
            out,
            buf: [0; CHUNK],
            at: 0,
        }
    }

    /// Appends what is buffered to the output.
    fn flush(&mut self) {
        self.out.extend_from_slice(&self.buf[..self.at]);
        self.at = 0;
    }

    /// Makes room for `n` more bytes (`n` at most `CHUNK`).
    #[inline(always)]
    fn room(&mut self, n: usize) {
        if self.at + n > CHUNK {
            self.flush();
        }
    }

    /// Constant bytes: a key, punctuation.
    #[inline(always)]
    fn raw<const N: usize>(&mut self, bytes: &[u8; N]) {
        self.room(N);
        put(&mut self.buf, &mut self.at, bytes);
    }

    /// Bytes of any length, written as they are.
    fn bytes(&mut self, bytes: &[u8]) {
        if bytes.len() > CHUNK / 2 {
            self.flush();
            self.out.extend_from_slice(bytes);
        } else {
            self.room(bytes.len());
            self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
            self.at += bytes.len();
        }
    }

    fn null(&mut self) {
        self.raw(b"null");
    }

    fn uint(&mut self, n: u64) {
        self.room(20);
        let len = n.checked_ilog10().map_or(1, |l| l as usize + 1);
        let digits = &mut self.buf[self.at..self.at + len];
        let mut rest = n;
        let mut i = len;
        // Two digits at a time, from the end.
        while i >= 2 {
            let pair = (rest % 100) as usize * 2;
            digits[i - 2..i].copy_from_slice(&PAIRS[pair..pair + 2]);
            rest /= 100;
            i -= 2;
        }
        if i == 1 {
            digits[0] = b'0' + rest as u8;
        }
        self.at += len;
    }

    fn int(&mut self, n: i64) {
        if n < 0 {
            self.raw(b"-");
        }
        self.uint(n.unsigned_abs());
    }

    /// A number at full precision, as serde_json writes it; `null` when not finite.
    fn float(&mut self, x: f64) {
        if !x.is_finite() {
            self.null();
        } else if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
            // Whole numbers (kernel rate estimates, idle loads) as zmij writes them below 10^15,
            // `123.0`, without its general algorithm.
            self.int(x as i64);
            self.raw(b".0");
        } else {
            self.bytes(zmij::Buffer::new().format_finite(x).as_bytes());
        }
    }

    /// A percentage rounded to two decimals (`percent_into`).
    fn percent(&mut self, x: f64) {
        self.room(24);
        percent_into(&mut self.buf, &mut self.at, x);
    }

    fn time(&mut self, t: Timestamp) {
        self.raw(b"\"");
        self.raw(&t.rfc3339_bytes());
        self.raw(b"\"");
    }

    fn address(&mut self, a: IpAddr) {
        let mut text = Vec::with_capacity(48);
        push_address(&mut text, a);
        self.raw(b"\"");
        self.bytes(&text);
        self.raw(b"\"");
    }

    /// `addr:port`, IPv6 bracketed.
    fn socket(&mut self, a: IpAddr, port: u16) {
        let mut text = Vec::with_capacity(56);
        push_socket(&mut text, a, port);
        self.bytes(&text);
    }

    fn severity(&mut self, s: Option<Severity>) {
        match s {
            Some(Severity::Warning) => self.raw(b"\"warning\""),
            Some(Severity::Critical) => self.raw(b"\"critical\""),
            None => self.null(),
        }
    }

    fn opt_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.null(),
        }
    }

    /// A string, escaped per RFC 8259 exactly as serde_json escapes it.
    fn string(&mut self, s: &str) {
        self.raw(b"\"");
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let e = ESCAPE[usize::from(b)];
            if e == 0 {
                continue;
            }
            self.bytes(&bytes[start..i]);
            if e == b'u' {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                self.raw(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xf)],
                ]);
            } else {
                self.raw(&[b'\\', e]);
            }
            start = i + 1;
        }
        self.bytes(&bytes[start..]);
        self.raw(b"\"");
    }

    fn counts(&mut self, map: &BTreeMap<String, u64>) {
        self.raw(b"{");
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.string(k);
            self.raw(b":");
            self.uint(*v);
        }
        self.raw(b"}");
    }

    fn counters(&mut self, c: Option<&IpvsCounters>) {
        let Some(c) = c else {
            self.null();
            return;
        };
        self.object(
            &[
                ("conns", c.conns),
                ("in_packets", c.in_packets),
                ("out_packets", c.out_packets),
                ("in_bytes", c.in_bytes),
                ("out_bytes", c.out_bytes),
            ],
            Self::uint,
        );
    }

    fn rates(&mut self, r: Option<&IpvsRates>) {
        let Some(r) = r else {
            self.null();
            return;
        };
        self.object(
            &[
                ("cps", r.cps),
                ("in_pps", r.in_pps),
                ("out_pps", r.out_pps),
                ("in_bps", r.in_bps),
                ("out_bps", r.out_bps),
            ],
            Self::float,
        );
    }

    /// `{"key":value,…}` from constant keys (nothing in them to escape), each value written by
    /// `value`.
    fn object<T: Copy>(&mut self, fields: &[(&str, T)], value: fn(&mut Self, T)) {
        self.raw(b"{");
        for (i, (key, v)) in fields.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.raw(b"\"");
            self.bytes(key.as_bytes());
            self.raw(b"\":");
            value(self, *v);
        }
        self.raw(b"}");
    }
}

/// An address as `IpAddr`'s `Display` writes it; IPv4 without the formatting machinery.
fn push_address(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `addr:port` as `SocketText` writes it: IPv6 bracketed.
fn push_socket(out: &mut Vec<u8>, a: IpAddr, port: u16) {
    if a.is_ipv6() {
        out.push(b'[');
        push_address(out, a);
        out.push(b']');
    } else {
        push_address(out, a);
    }
    out.push(b':');
    let _ = write!(out, "{port}");
}

/// What a byte becomes inside a JSON string: 0 for itself, `u` for `\u00XX`, else the letter
/// after the backslash. The control characters, `"` and `\` — RFC 8259's must-escape set, as
/// serde_json escapes it.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Json<'_>)) -> String {
        let mut out = Vec::new();
        let mut w = Json::new(&mut out);
        f(&mut w);
        w.flush();
        String::from_utf8(out).unwrap_or_default()
    }

    fn percent(x: f64) -> String {
        written(|w| w.percent(x))
    }

    #[test]
    fn every_percentage_is_the_shortest_form_of_its_two_decimal_rounding() {
        // The fast path writes the integer of hundredths; serde_json (zmij) writes the float.
        for n in 0..=200_000u64 {
            let x = n as f64 / 100.0;
            let want = serde_json::to_string(&x).unwrap_or_default();
            assert_eq!(percent(x), want, "{n} hundredths");
        }
        assert_eq!(percent(33.333_333_333_333_336), "33.33");
        assert_eq!(percent(12.345_678), "12.35");
        assert_eq!(percent(0.004), "0.0");
        assert_eq!(percent(-0.004), "-0.0");
        assert_eq!(percent(-12.345_678), "-12.35");
        for x in [1e300f64, 9_999_999.994, 9_999_999.996, 123_456.789] {
            let rounded = (x * 100.0).round() / 100.0;
            assert_eq!(
                percent(x),
                serde_json::to_string(&rounded).unwrap_or_default()
            );
        }
    }

    #[test]
    fn whole_floats_are_written_as_zmij_writes_them() {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            7.0,
            123.0,
            999_999_999_999_999.0,
            1e15,
            1e16,
        ];
        for k in 0..17 {
            let p = 10f64.powi(k);
            xs.extend([p, p - 1.0, -p, p * 3.0]);
        }
        xs.extend([
            0.5,
            1e-7,
            12.25,
            1.5e300,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
        ]);
        for x in xs {
            let want = serde_json::to_string(&x).unwrap_or_default();
            assert_eq!(written(|w| w.float(x)), want, "{x:e}");
        }
        assert_eq!(written(|w| w.int(i64::MIN)), i64::MIN.to_string());
        assert_eq!(written(|w| w.uint(u64::MAX)), u64::MAX.to_string());
        assert_eq!(written(|w| w.uint(0)), "0");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for a in [
            "0.0.0.0",
            "10.0.0.2",
            "192.168.100.255",
            "::",
            "2001:db8::10",
            "::ffff:1.2.3.4",
        ] {
            let a: IpAddr = a.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
            assert_eq!(written(|w| w.address(a)), format!("\"{a}\""));
            let mut s = Vec::new();
            push_socket(&mut s, a, 443);
            assert_eq!(
                String::from_utf8(s).unwrap_or_default(),
                crate::model::sample::SocketText(a, 443).to_string()
            );
        }
    }

    #[test]
    fn numbers_that_are_not_finite_are_null() {
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(percent(x), "null");
            assert_eq!(written(|w| w.float(x)), "null");
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all: String = (0u8..0x80).map(char::from).collect::<String>() + "é\u{2028}😀";
        let long = "x".repeat(9000) + "\"\n" + &"y".repeat(20_000);
        for s in [all.as_str(), "", "plain", "a\"b\\c\nd\u{7f}", &long] {
            assert_eq!(
                written(|w| w.string(s)),
                serde_json::to_string(s).unwrap_or_default()
            );
        }
    }
}
