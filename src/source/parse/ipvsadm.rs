//! `ipvsadm -Ln --exact` and its `--tun-info`, `--stats`, `--rate`, `--thresholds`,
//! `--persistent-conn` views.
//!
//! Each view is a separate ipvsadm run with its own column titles (`print_title` in ipvsadm.c);
//! [`ipvsadm_list`] detects which one it was given, and [`merge_ipvsadm`] joins the plain view
//! with any others into full samples, matching services by key and real servers by address and
//! port. Without `--exact`, ipvsadm abbreviates large numbers (`12345K`); those are read back
//! multiplied out, so they are only as precise as printed.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::ParseError;
use super::text::{bracketed_ipv6, dec_u32, dec_u64, excerpt, numbered_lines};
use crate::model::sample::{
    AddressFamily, Forward, IpvsCounters, IpvsRates, Persistence, Protocol, RealServerSample,
    ServiceKey, TunnelEncap, TunnelKind, VirtualServiceSample,
};

const IPVSADM: &str = "ipvsadm";

/// Which ipvsadm listing a text is, told apart by its column titles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpvsadmView {
    /// `ipvsadm -Ln`: scheduler and flags; forward, weight, active and inactive connections.
    Plain,
    /// `--stats`: cumulative connections, packets and bytes.
    Stats,
    /// `--rate`: the kernel's rate estimates.
    Rate,
    /// `--thresholds`: upper and lower connection thresholds.
    Thresholds,
    /// `--persistent-conn`: weight and persistent-connection counts.
    PersistentConn,
    /// `--tun-info` (ipvsadm 1.31): the plain view with each real's tunnel encapsulation.
    TunInfo,
}

impl IpvsadmView {
    /// The command that prints this view, as errors name it.
    pub fn command(self) -> &'static str {
        match self {
            Self::Plain => "ipvsadm -Ln --exact",
            Self::Stats => "ipvsadm -Ln --exact --stats",
            Self::Rate => "ipvsadm -Ln --exact --rate",
            Self::Thresholds => "ipvsadm -Ln --exact --thresholds",
            Self::PersistentConn => "ipvsadm -Ln --exact --persistent-conn",
            Self::TunInfo => "ipvsadm -Ln --exact --tun-info",
        }
    }

    /// Whether the view carries each real's forwarding method and weight, as a merge's first
    /// listing must.
    pub(crate) fn is_primary(self) -> bool {
        matches!(self, Self::Plain | Self::TunInfo)
    }

    /// From the words after `Prot LocalAddress:Port` in the title line (`--tun-info` prints the
    /// plain view's, and is told apart by its real-server title line).
    fn from_title(first_column: &str) -> Option<Self> {
        match first_column {
            "Scheduler" => Some(Self::Plain),
            "Conns" => Some(Self::Stats),
            "CPS" => Some(Self::Rate),
            "Uthreshold" => Some(Self::Thresholds),
            "Weight" => Some(Self::PersistentConn),
            _ => None,
        }
    }
}

/// One ipvsadm run, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsadmListing {
    pub view: IpvsadmView,
    /// `1.2.1` from `IP Virtual Server version 1.2.1 (size=4096)`, when printed.
    pub version: Option<String>,
    /// The connection hash table size from the same line.
    pub conn_table_size: Option<u32>,
    pub services: Vec<IpvsadmService>,
}

/// A virtual service line of a listing and the real-server lines under it.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsadmService {
    pub key: ServiceKey,
    /// 1-based line in the listing.
    pub line: usize,
    pub columns: IpvsadmServiceColumns,
    pub reals: Vec<IpvsadmReal>,
}

/// What a service line carries besides its key, by view (`--thresholds` and
/// `--persistent-conn` print it as the plain view does).
#[derive(Debug, Clone, PartialEq)]
pub enum IpvsadmServiceColumns {
    Plain {
        scheduler: String,
        persistent: Option<Persistence>,
        ops: bool,
    },
    Stats(IpvsCounters),
    Rate(IpvsRates),
}

/// A real-server line of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsadmReal {
    pub address: IpAddr,
    pub port: u16,
    /// 1-based line in the listing.
    pub line: usize,
    pub columns: IpvsadmRealColumns,
}

/// What a real-server line carries besides its address, by view.
#[derive(Debug, Clone, PartialEq)]
pub enum IpvsadmRealColumns {
    /// The plain view's columns; `--tun-info` adds the encapsulation (`None` when ipvsadm
    /// prints `n/a`, and always in the plain view).
    Plain {
        forward: Forward,
        weight: i32,
        active_conns: u32,
        inactive_conns: u32,
        tunnel: Option<TunnelEncap>,
    },
    Stats(IpvsCounters),
    Rate(IpvsRates),
    Thresholds {
        upper: u32,
        lower: u32,
        active_conns: u32,
        inactive_conns: u32,
    },
    PersistentConn {
        weight: i32,
        persistent_conns: u32,
        active_conns: u32,
        inactive_conns: u32,
    },
}

/// Parses one `ipvsadm -Ln [--exact] [--tun-info|--stats|--rate|--thresholds|--persistent-conn]`
/// output.
/// Addresses must be numeric (`-n`). Unknown service flags (scheduler flags such as `flag-1` or
/// `(sh-fallback,sh-port)`, `pe sip`, `synproxy`, …) are skipped.
pub fn ipvsadm_list(text: &str) -> Result<IpvsadmListing, ParseError> {
    let mut view: Option<IpvsadmView> = None;
    let mut version = None;
    let mut conn_table_size = None;
    let mut services: Vec<IpvsadmService> = Vec::new();
    for (line_no, line) in numbered_lines(text) {
        let input = view.map_or(IPVSADM, IpvsadmView::command);
        let err = |msg: String| ParseError::new(input, line_no, msg);
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("IP Virtual Server version ") {
            let (v, size) = version_line(rest)
                .ok_or_else(|| err(format!("bad version line {}", excerpt(line))))?;
            version = Some(v);
            conn_table_size = size;
            continue;
        }
        if let Some(rest) = line.strip_prefix("Prot LocalAddress:Port") {
            let first = rest.split_ascii_whitespace().next().unwrap_or("");
            let v = IpvsadmView::from_title(first)
                .ok_or_else(|| err(format!("unknown column titles {}", excerpt(line))))?;
            if view.is_some_and(|old| old != v) {
                return Err(err("a second, different title line".into()));
            }
            view = Some(v);
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("-> RemoteAddress:Port") {
            if view == Some(IpvsadmView::Plain)
                && rest.split_ascii_whitespace().nth(1) == Some("TunnelInfo")
            {
                view = Some(IpvsadmView::TunInfo);
            }
            continue;
        }
        let Some(v) = view else {
            return Err(err(format!(
                "expected the \"Prot LocalAddress:Port\" title first, got {}",
                excerpt(line)
            )));
        };
        if let Some(rest) = trimmed.strip_prefix("->") {
            let (address, port, columns) = real_line(v, rest).map_err(err)?;
            let svc = services
                .last_mut()
                .ok_or_else(|| err("real server before any virtual service".into()))?;
            svc.reals.push(IpvsadmReal {
                address,
                port,
                line: line_no,
                columns,
            });
        } else {
            let (key, columns) = service_line(v, line).map_err(err)?;
            services.push(IpvsadmService {
                key,
                line: line_no,
                columns,
                reals: Vec::new(),
            });
        }
    }
    let view = view
        .ok_or_else(|| ParseError::new(IPVSADM, 0, "no \"Prot LocalAddress:Port\" title line"))?;
    Ok(IpvsadmListing {
        view,
        version,
        conn_table_size,
        services,
    })
}

/// `1.2.1 (size=4096)`.
fn version_line(rest: &str) -> Option<(String, Option<u32>)> {
    let mut f = rest.split_ascii_whitespace();
    let v = f.next()?;
    let size = f
        .next()
        .and_then(|s| s.strip_prefix("(size=")?.strip_suffix(')'))
        .and_then(dec_u32);
    Some((v.to_string(), size))
}

fn service_line(
    view: IpvsadmView,
    line: &str,
) -> Result<(ServiceKey, IpvsadmServiceColumns), String> {
    let tokens: Vec<&str> = line.split_ascii_whitespace().collect();
    let (key, rest) = match tokens[..] {
        ["FWM", mark, ref rest @ ..] => {
            let mark =
                dec_u32(mark).ok_or_else(|| format!("bad firewall mark {}", excerpt(mark)))?;
            let (family, rest) = match rest {
                ["IPv6", rest @ ..] => (AddressFamily::Inet6, rest),
                _ => (AddressFamily::Inet, rest),
            };
            (ServiceKey::Fwmark { mark, family }, rest)
        }
        [proto, target, ref rest @ ..] => {
            let protocol = Protocol::from_upper(proto)
                .ok_or_else(|| format!("unknown protocol {}", excerpt(proto)))?;
            let (address, port) = socket(target)?;
            (
                ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                },
                rest,
            )
        }
        _ => return Err(format!("expected a virtual service, got {}", excerpt(line))),
    };
    let columns = match view {
        // --thresholds and --persistent-conn print the service line as the plain view does.
        IpvsadmView::Plain
        | IpvsadmView::TunInfo
        | IpvsadmView::Thresholds
        | IpvsadmView::PersistentConn => plain_service(&key, rest)?,
        IpvsadmView::Stats => IpvsadmServiceColumns::Stats(counters(rest)?),
        IpvsadmView::Rate => IpvsadmServiceColumns::Rate(rates(rest)?),
    };
    Ok((key, columns))
}

/// `wlc persistent 300 mask 255.255.255.0 pe sip ops` and scheduler flags in any order.
fn plain_service(key: &ServiceKey, rest: &[&str]) -> Result<IpvsadmServiceColumns, String> {
    let (scheduler, flags) = rest
        .split_first()
        .ok_or_else(|| "missing scheduler".to_string())?;
    let family = match key {
        ServiceKey::Addr { address, .. } if address.is_ipv6() => AddressFamily::Inet6,
        ServiceKey::Addr { .. } => AddressFamily::Inet,
        ServiceKey::Fwmark { family, .. } => *family,
    };
    let mut persistent = None;
    let mut ops = false;
    let mut it = flags.iter();
    while let Some(&flag) = it.next() {
        match flag {
            "ops" => ops = true,
            "persistent" => {
                let t = it.next().ok_or("persistent needs a timeout")?;
                let timeout_s = dec_u32(t).ok_or_else(|| format!("bad timeout {}", excerpt(t)))?;
                persistent = Some(Persistence {
                    timeout_s,
                    netmask: match family {
                        AddressFamily::Inet => Ipv4Addr::BROADCAST.to_string(),
                        AddressFamily::Inet6 => "128".to_string(),
                    },
                });
            }
            "mask" => {
                let m = it.next().ok_or("mask needs a value")?;
                let p = persistent.as_mut().ok_or("mask without persistent")?;
                p.netmask = match family {
                    AddressFamily::Inet => m
                        .parse::<Ipv4Addr>()
                        .map_err(|_| format!("bad netmask {}", excerpt(m)))?
                        .to_string(),
                    AddressFamily::Inet6 => dec_u32(m)
                        .filter(|&n| n <= 128)
                        .ok_or_else(|| format!("bad prefix length {}", excerpt(m)))?
                        .to_string(),
                };
            }
            "pe" => {
                it.next();
            }
            // Scheduler flags, synproxy, expire-quiescent and flags of later ipvsadm versions.
            _ => {}
        }
    }
    Ok(IpvsadmServiceColumns::Plain {
        scheduler: (*scheduler).to_string(),
        persistent,
        ops,
    })
}

fn real_line(view: IpvsadmView, rest: &str) -> Result<(IpAddr, u16, IpvsadmRealColumns), String> {
    let tokens: Vec<&str> = rest.split_ascii_whitespace().collect();
    let (target, cols) = tokens
        .split_first()
        .ok_or_else(|| "real server line without an address".to_string())?;
    let (address, port) = socket(target)?;
    let wrong = |want: &str| format!("expected {want} after {target}, got {}", excerpt(rest));
    let columns = match view {
        IpvsadmView::Plain | IpvsadmView::TunInfo => {
            let (forward, tunnel, weight, active, inactive) = match (view, cols) {
                (IpvsadmView::Plain, &[f, w, a, i]) => (f, None, w, a, i),
                (_, &[f, t, w, a, i]) if view == IpvsadmView::TunInfo => (f, Some(t), w, a, i),
                (IpvsadmView::Plain, _) => return Err(wrong("forward, weight, active, inactive")),
                _ => return Err(wrong("forward, tunnel info, weight, active, inactive")),
            };
            IpvsadmRealColumns::Plain {
                forward: Forward::from_proc(forward)
                    .ok_or_else(|| format!("unknown forwarding method {}", excerpt(forward)))?,
                weight: weight_field(weight)?,
                active_conns: count(active)?,
                inactive_conns: count(inactive)?,
                tunnel: tunnel.map(tunnel_info).transpose()?.flatten(),
            }
        }
        IpvsadmView::Stats => IpvsadmRealColumns::Stats(counters(cols)?),
        IpvsadmView::Rate => IpvsadmRealColumns::Rate(rates(cols)?),
        IpvsadmView::Thresholds => {
            let [upper, lower, active, inactive] = cols[..] else {
                return Err(wrong("upper, lower, active, inactive"));
            };
            IpvsadmRealColumns::Thresholds {
                upper: count(upper)?,
                lower: count(lower)?,
                active_conns: count(active)?,
                inactive_conns: count(inactive)?,
            }
        }
        IpvsadmView::PersistentConn => {
            let [weight, persistent, active, inactive] = cols[..] else {
                return Err(wrong("weight, persistent, active, inactive"));
            };
            IpvsadmRealColumns::PersistentConn {
                weight: weight_field(weight)?,
                persistent_conns: count(persistent)?,
                active_conns: count(active)?,
                inactive_conns: count(inactive)?,
            }
        }
    };
    Ok((address, port, columns))
}

/// ipvsadm's TunnelInfo column: `n/a`, `ipip`, `gue:PORT:CSUM` or `gre:CSUM`, where CSUM is
/// `-c` (none), `+c` (checksum) or `r+c` (remote checksum offload).
fn tunnel_info(s: &str) -> Result<Option<TunnelEncap>, String> {
    let bad = || format!("unknown tunnel info {}", excerpt(s));
    let flags = |c: &str| match c {
        "-c" => Some(0),
        "+c" => Some(1),
        "r+c" => Some(2),
        _ => None,
    };
    let encap = match s.split(':').collect::<Vec<_>>()[..] {
        ["n/a"] => return Ok(None),
        ["ipip"] => TunnelEncap {
            kind: TunnelKind::Ipip,
            port: 0,
            flags: 0,
        },
        ["gue", port, csum] => TunnelEncap {
            kind: TunnelKind::Gue,
            port: port.parse().map_err(|_| bad())?,
            flags: flags(csum).ok_or_else(bad)?,
        },
        ["gre", csum] => TunnelEncap {
            kind: TunnelKind::Gre,
            port: 0,
            flags: flags(csum).ok_or_else(bad)?,
        },
        _ => return Err(bad()),
    };
    Ok(Some(encap))
}

/// `192.0.2.10:80` or `[2001:db8::10]:443`.
fn socket(s: &str) -> Result<(IpAddr, u16), String> {
    let bad = || {
        format!(
            "bad address:port {} (is the listing numeric, -n?)",
            excerpt(s)
        )
    };
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = dec_u32(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(bad)?;
    let addr = if addr.starts_with('[') {
        IpAddr::V6(bracketed_ipv6(addr).ok_or_else(bad)?)
    } else {
        IpAddr::V4(addr.parse().map_err(|_| bad())?)
    };
    Ok((addr, port))
}

fn weight_field(s: &str) -> Result<i32, String> {
    s.parse().map_err(|_| format!("bad weight {}", excerpt(s)))
}

fn count(s: &str) -> Result<u32, String> {
    dec_u32(s).ok_or_else(|| format!("bad count {}", excerpt(s)))
}

/// An exact number, or one ipvsadm abbreviated without `--exact` (`123K`, `45M`, `6G`, `7T`).
fn large_number(s: &str) -> Result<u64, String> {
    let bad = || format!("bad number {}", excerpt(s));
    let (digits, scale) = match s.as_bytes().last() {
        Some(b'K') => (&s[..s.len() - 1], 1_000),
        Some(b'M') => (&s[..s.len() - 1], 1_000_000),
        Some(b'G') => (&s[..s.len() - 1], 1_000_000_000),
        Some(b'T') => (&s[..s.len() - 1], 1_000_000_000_000),
        _ => (s, 1),
    };
    dec_u64(digits)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)
}

fn five_numbers(cols: &[&str]) -> Result<[u64; 5], String> {
    let [a, b, c, d, e] = cols[..] else {
        return Err(format!("expected 5 numbers, found {} fields", cols.len()));
    };
    Ok([
        large_number(a)?,
        large_number(b)?,
        large_number(c)?,
        large_number(d)?,
        large_number(e)?,
    ])
}

fn counters(cols: &[&str]) -> Result<IpvsCounters, String> {
    let [conns, in_packets, out_packets, in_bytes, out_bytes] = five_numbers(cols)?;
    Ok(IpvsCounters {
        conns,
        in_packets,
        out_packets,
        in_bytes,
        out_bytes,
    })
}

fn rates(cols: &[&str]) -> Result<IpvsRates, String> {
    let [cps, in_pps, out_pps, in_bps, out_bps] = five_numbers(cols)?;
    Ok(IpvsRates {
        cps: cps as f64,
        in_pps: in_pps as f64,
        out_pps: out_pps as f64,
        in_bps: in_bps as f64,
        out_bps: out_bps as f64,
    })
}

/// Combines the plain listing with any other views of the same table into full samples.
///
/// Services and real servers come from `plain`, in its order. From the others: totals from
/// `--stats`, the kernel's rate estimates from `--rate`, thresholds from `--thresholds`, and
/// persistent-connection counts from `--persistent-conn`. The runs are not atomic, so a service or
/// real server missing from another view (added or removed in between) just lacks those values.
/// When a view is given twice, the later one wins. `plain` must be the plain or `--tun-info` view
/// (which adds tunnel encapsulations), and `others` must contain neither.
pub fn merge_ipvsadm(
    plain: &IpvsadmListing,
    others: &[IpvsadmListing],
) -> Result<Vec<VirtualServiceSample>, ParseError> {
    if !plain.view.is_primary() {
        return Err(ParseError::new(
            plain.view.command(),
            0,
            "merge needs the plain listing first",
        ));
    }
    if let Some(o) = others.iter().find(|o| o.view.is_primary()) {
        return Err(ParseError::new(
            o.view.command(),
            0,
            "a second plain listing to merge",
        ));
    }
    let mut out = Vec::with_capacity(plain.services.len());
    for svc in &plain.services {
        let IpvsadmServiceColumns::Plain {
            scheduler,
            persistent,
            ops,
        } = &svc.columns
        else {
            return Err(ParseError::new(
                plain.view.command(),
                svc.line,
                "service line without plain columns",
            ));
        };
        let mut sample = VirtualServiceSample {
            flags: None,
            pe_name: None,
            key: svc.key,
            scheduler: Some(scheduler.clone()),
            persistent: persistent.clone(),
            ops: *ops,
            totals: None,
            rates: None,
            reals: Vec::with_capacity(svc.reals.len()),
        };
        for real in &svc.reals {
            let IpvsadmRealColumns::Plain {
                forward,
                weight,
                active_conns,
                inactive_conns,
                tunnel,
            } = real.columns
            else {
                return Err(ParseError::new(
                    plain.view.command(),
                    real.line,
                    "real server line without plain columns",
                ));
            };
            sample.reals.push(RealServerSample {
                tunnel,
                address: real.address,
                port: real.port,
                forward,
                weight,
                upper_threshold: 0,
                lower_threshold: 0,
                active_conns,
                inactive_conns,
                persistent_conns: None,
                totals: None,
                rates: None,
            });
        }
        out.push(sample);
    }
    overlay_views(&mut out, others.iter());
    Ok(out)
}

/// Fills in, on samples read elsewhere (`/proc/net/ip_vs`, or a plain listing), what other
/// ipvsadm views of the same table carry: totals from `--stats`, the kernel's rate estimates from
/// `--rate`, thresholds from `--thresholds`, persistent-connection counts from
/// `--persistent-conn`, and from a plain or `--tun-info` view the persistence timeout (which
/// `/proc` gives in kernel ticks), one-packet scheduling, each real's tunnel encapsulation and the
/// address family of a firewall-mark service (which `/proc` does not say). Services and real
/// servers the views lack (added since they were read) keep what they had.
pub fn overlay_views<'a>(
    samples: &mut [VirtualServiceSample],
    views: impl Iterator<Item = &'a IpvsadmListing>,
) {
    for view in views {
        let index: HashMap<ServiceKey, &IpvsadmService> =
            view.services.iter().map(|s| (s.key, s)).collect();
        for sample in samples.iter_mut() {
            let Some(other) = find_service(&index, view, sample) else {
                continue;
            };
            match &other.columns {
                IpvsadmServiceColumns::Stats(c) => sample.totals = Some(*c),
                IpvsadmServiceColumns::Rate(r) => sample.rates = Some(*r),
                IpvsadmServiceColumns::Plain {
                    persistent, ops, ..
                } if view.view.is_primary() => {
                    sample.key = other.key;
                    sample.persistent.clone_from(persistent);
                    sample.ops = *ops;
                }
                IpvsadmServiceColumns::Plain { .. } => {}
            }
            let reals: HashMap<(IpAddr, u16), &IpvsadmRealColumns> = other
                .reals
                .iter()
                .map(|r| ((r.address, r.port), &r.columns))
                .collect();
            for r in &mut sample.reals {
                let Some(columns) = reals.get(&(r.address, r.port)) else {
                    continue;
                };
                match **columns {
                    IpvsadmRealColumns::Stats(c) => r.totals = Some(c),
                    IpvsadmRealColumns::Rate(x) => r.rates = Some(x),
                    IpvsadmRealColumns::Thresholds { upper, lower, .. } => {
                        r.upper_threshold = upper;
                        r.lower_threshold = lower;
                    }
                    IpvsadmRealColumns::PersistentConn {
                        persistent_conns, ..
                    } => r.persistent_conns = Some(persistent_conns),
                    IpvsadmRealColumns::Plain { tunnel, .. } => {
                        if view.view == IpvsadmView::TunInfo {
                            r.tunnel = tunnel;
                        }
                    }
                }
            }
        }
    }
}

/// The service of `view` that `sample` is: the same key, or for a firewall mark whose family
/// `/proc` had to guess, the one service of that mark in the view with the other family.
fn find_service<'a>(
    index: &HashMap<ServiceKey, &'a IpvsadmService>,
    view: &'a IpvsadmListing,
    sample: &VirtualServiceSample,
) -> Option<&'a IpvsadmService> {
    if let Some(s) = index.get(&sample.key) {
        return Some(s);
    }
    let ServiceKey::Fwmark { mark, .. } = sample.key else {
        return None;
    };
    let mut same_mark = view
        .services
        .iter()
        .filter(|s| matches!(s.key, ServiceKey::Fwmark { mark: m, .. } if m == mark));
    match (same_mark.next(), same_mark.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Listings below are constructed from ipvsadm.c's print_title / print_service_entry printf
    // formats, not captured from ipvsadm; real captures are tested in tests/parse_ipvsadm.rs.
    const VERSION: &str = "IP Virtual Server version 1.2.1 (size=4096)\n";

    fn title(cols: &str) -> String {
        format!(
            "{VERSION}{:<33} {cols}\n  -> RemoteAddress:Port\n",
            "Prot LocalAddress:Port"
        )
    }

    fn plain() -> String {
        let mut t = format!(
            "{VERSION}Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        );
        let real = |addr: &str, fwd: &str, w: i32, a: u32, i: u32| {
            format!("  -> {addr:<28} {fwd:<7} {w:<6} {a:<10} {i:<10}\n")
        };
        t += "TCP  192.0.2.10:80 wlc\n";
        t += &real("198.51.100.1:80", "Route", 3, 12, 40);
        t += &real("198.51.100.2:80", "Masq", 0, 0, 1);
        t += "TCP  [2001:db8::10]:443 rr persistent 300 mask 64\n";
        t += &real("[2001:db8::1]:443", "Tunnel", 1, 0, 0);
        t += "UDP  192.0.2.10:53 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0 ops\n";
        t += &real("198.51.100.1:53", "Route", 1, 0, 5);
        t += "FWM  42 rr\n";
        t += &real("198.51.100.1:0", "Local", -1, 0, 0);
        t += "FWM  43 IPv6 wrr persistent 30 pe sip\n";
        t
    }

    fn num(n: u64) -> String {
        // print_largenum with FMT_EXACT: width 9, or length + 1 when longer than 8 digits.
        let len = n.to_string().len();
        format!("{n:>w$}", w = if len <= 8 { 9 } else { len + 1 })
    }

    fn stats() -> String {
        let mut t = title("   Conns   InPkts  OutPkts  InBytes OutBytes");
        let five = |v: [u64; 5]| v.iter().map(|&n| num(n)).collect::<String>();
        t += &format!(
            "{:<33}{}\n",
            "TCP  192.0.2.10:80",
            five([100, 2000, 0, 160_000, 12_345_678_901])
        );
        t += &format!(
            "  -> {:<28}{}\n",
            "198.51.100.1:80",
            five([60, 1200, 0, 96_000, 0])
        );
        t += &format!(
            "  -> {:<28}{}\n",
            "198.51.100.2:80",
            five([40, 800, 0, 64_000, 0])
        );
        t += &format!("{:<33}{}\n", "FWM  43 IPv6", five([1, 2, 3, 4, 5]));
        t
    }

    fn rate() -> String {
        let mut t = title("     CPS    InPPS   OutPPS    InBPS   OutBPS");
        t += &format!(
            "{:<33}{}{}{}{}{}\n",
            "TCP  192.0.2.10:80",
            num(5),
            num(50),
            num(0),
            num(4000),
            num(0)
        );
        t += &format!(
            "  -> {:<28} {:>8} {:>8} {:>8}{}{}\n",
            "198.51.100.1:80",
            3,
            30,
            0,
            num(2400),
            num(0)
        );
        t
    }

    fn thresholds() -> String {
        let mut t = title("Uthreshold Lthreshold ActiveConn InActConn ");
        t += "TCP  192.0.2.10:80 wlc\n";
        t += &format!(
            "  -> {:<28} {:<10} {:<10} {:<10} {:<10}\n",
            "198.51.100.1:80", 1000, 800, 12, 40
        );
        t
    }

    fn persistent_conn() -> String {
        let mut t = title("Weight    PersistConn ActiveConn InActConn ");
        t += "TCP  [2001:db8::10]:443 rr persistent 300 mask 64\n";
        t += &format!(
            "  -> {:<28} {:<9} {:<11} {:<10} {:<10}\n",
            "[2001:db8::1]:443", 1, 7, 0, 0
        );
        t
    }

    fn addr_key(protocol: Protocol, a: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol,
            address: a.parse().expect("ip"),
            port,
        }
    }

    #[test]
    fn detects_each_view_from_its_title() {
        let views = [
            (plain(), IpvsadmView::Plain),
            (stats(), IpvsadmView::Stats),
            (rate(), IpvsadmView::Rate),
            (thresholds(), IpvsadmView::Thresholds),
            (persistent_conn(), IpvsadmView::PersistentConn),
        ];
        for (text, view) in views {
            let l = ipvsadm_list(&text).expect("parses");
            assert_eq!(l.view, view);
            assert_eq!(l.version.as_deref(), Some("1.2.1"));
            assert_eq!(l.conn_table_size, Some(4096));
        }
    }

    #[test]
    fn plain_view_reads_keys_schedulers_and_flags() {
        let l = ipvsadm_list(&plain()).expect("parses");
        let keys: Vec<ServiceKey> = l.services.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            vec![
                addr_key(Protocol::Tcp, "192.0.2.10", 80),
                addr_key(Protocol::Tcp, "2001:db8::10", 443),
                addr_key(Protocol::Udp, "192.0.2.10", 53),
                ServiceKey::Fwmark {
                    mark: 42,
                    family: AddressFamily::Inet
                },
                ServiceKey::Fwmark {
                    mark: 43,
                    family: AddressFamily::Inet6
                },
            ]
        );
        let cols: Vec<&IpvsadmServiceColumns> = l.services.iter().map(|s| &s.columns).collect();
        assert_eq!(
            *cols[2],
            IpvsadmServiceColumns::Plain {
                scheduler: "sh".into(),
                persistent: Some(Persistence {
                    timeout_s: 60,
                    netmask: "255.255.255.0".into()
                }),
                ops: true,
            }
        );
        let IpvsadmServiceColumns::Plain { persistent, .. } = cols[1] else {
            panic!()
        };
        assert_eq!(persistent.as_ref().map(|p| p.netmask.as_str()), Some("64"));
        let IpvsadmServiceColumns::Plain {
            persistent,
            ops,
            scheduler,
        } = cols[4]
        else {
            panic!()
        };
        assert_eq!((scheduler.as_str(), *ops), ("wrr", false));
        assert_eq!(
            persistent,
            &Some(Persistence {
                timeout_s: 30,
                netmask: "128".into()
            })
        );
        assert_eq!(l.services[0].reals.len(), 2);
        assert_eq!(l.services[0].line, 4);
        assert_eq!(
            l.services[0].reals[0].columns,
            IpvsadmRealColumns::Plain {
                forward: Forward::Route,
                weight: 3,
                active_conns: 12,
                inactive_conns: 40,
                tunnel: None,
            }
        );
        assert_eq!(
            l.services[1].reals[0].address,
            "2001:db8::1".parse::<IpAddr>().expect("ip")
        );
    }

    #[test]
    fn persistent_service_without_mask_gets_the_host_mask() {
        let t = format!(
            "{VERSION}Prot LocalAddress:Port Scheduler Flags\nTCP  192.0.2.10:80 wlc persistent 300\n"
        );
        let l = ipvsadm_list(&t).expect("parses");
        let IpvsadmServiceColumns::Plain { persistent, .. } = &l.services[0].columns else {
            panic!()
        };
        assert_eq!(
            persistent,
            &Some(Persistence {
                timeout_s: 300,
                netmask: "255.255.255.255".into()
            })
        );
    }

    #[test]
    fn unknown_trailing_service_flags_are_ignored() {
        let t = format!(
            "{VERSION}Prot LocalAddress:Port Scheduler Flags\nTCP  192.0.2.10:80 mh flag-1 flag-2 synproxy conn-timeout 30 expire-quiescent ops\n"
        );
        let l = ipvsadm_list(&t).expect("parses");
        let IpvsadmServiceColumns::Plain {
            scheduler,
            ops,
            persistent,
        } = &l.services[0].columns
        else {
            panic!()
        };
        assert_eq!((scheduler.as_str(), *ops, persistent), ("mh", true, &None));
    }

    #[test]
    fn stats_view_reads_exact_counters_of_services_and_reals() {
        let l = ipvsadm_list(&stats()).expect("parses");
        assert_eq!(
            l.services[0].columns,
            IpvsadmServiceColumns::Stats(IpvsCounters {
                conns: 100,
                in_packets: 2000,
                out_packets: 0,
                in_bytes: 160_000,
                out_bytes: 12_345_678_901
            })
        );
        assert_eq!(
            l.services[1].key,
            ServiceKey::Fwmark {
                mark: 43,
                family: AddressFamily::Inet6
            }
        );
    }

    #[test]
    fn abbreviated_numbers_without_exact_are_multiplied_out() {
        let mut t = title("   Conns   InPkts  OutPkts  InBytes OutBytes");
        t += &format!(
            "{:<33}{:>9}{:>9}{:>9}{:>8}M{:>8}G\n",
            "TCP  192.0.2.10:80", 1, 2, 3, 456, 7
        );
        let l = ipvsadm_list(&t).expect("parses");
        let IpvsadmServiceColumns::Stats(c) = l.services[0].columns else {
            panic!()
        };
        assert_eq!((c.in_bytes, c.out_bytes), (456_000_000, 7_000_000_000));
    }

    #[test]
    fn merge_fills_totals_rates_thresholds_and_persistent_conns() {
        let p = ipvsadm_list(&plain()).expect("parses");
        let others: Vec<IpvsadmListing> = [stats(), rate(), thresholds(), persistent_conn()]
            .iter()
            .map(|t| ipvsadm_list(t).expect("parses"))
            .collect();
        let m = merge_ipvsadm(&p, &others).expect("merges");
        assert_eq!(m.len(), 5);
        let web = &m[0];
        assert_eq!(web.scheduler.as_deref(), Some("wlc"));
        assert_eq!(web.totals.map(|t| t.conns), Some(100));
        assert_eq!(web.rates.map(|r| r.in_bps), Some(4000.0));
        let r1 = &web.reals[0];
        assert_eq!(r1.totals.map(|t| t.in_bytes), Some(96_000));
        assert_eq!(
            r1.rates.map(|r| (r.cps, r.in_pps, r.in_bps)),
            Some((3.0, 30.0, 2400.0))
        );
        assert_eq!((r1.upper_threshold, r1.lower_threshold), (1000, 800));
        assert_eq!((r1.weight, r1.active_conns, r1.inactive_conns), (3, 12, 40));
        assert_eq!(r1.persistent_conns, None);
        // A real server missing from the --rate run (the runs are not atomic) just lacks rates.
        assert_eq!(web.reals[1].rates, None);
        assert_eq!(web.reals[1].totals.map(|t| t.conns), Some(40));
        assert_eq!(m[1].reals[0].persistent_conns, Some(7));
        assert_eq!(m[3].reals[0].weight, -1);
        assert_eq!(m[4].totals.map(|t| t.out_bytes), Some(5));
        assert!(m[4].reals.is_empty());
    }

    #[test]
    fn merge_with_no_other_views_keeps_plain_values_only() {
        let p = ipvsadm_list(&plain()).expect("parses");
        let m = merge_ipvsadm(&p, &[]).expect("merges");
        assert!(m.iter().all(|s| s.totals.is_none() && s.rates.is_none()));
        assert_eq!(m[0].reals[0].forward, Forward::Route);
    }

    #[test]
    fn merge_refuses_a_non_plain_first_listing_or_a_second_plain_one() {
        let p = ipvsadm_list(&plain()).expect("parses");
        let s = ipvsadm_list(&stats()).expect("parses");
        assert!(merge_ipvsadm(&s, &[]).is_err());
        assert!(merge_ipvsadm(&p, std::slice::from_ref(&p)).is_err());
    }

    #[test]
    fn errors_name_the_view_and_line() {
        let mut t = stats();
        t += "  -> 198.51.100.3:80 1 2 3\n";
        let e = ipvsadm_list(&t).expect_err("must fail");
        assert_eq!((e.input, e.line), ("ipvsadm -Ln --exact --stats", 8));
        let e = ipvsadm_list("TCP  192.0.2.10:80 wlc\n").expect_err("must fail");
        assert_eq!((e.input, e.line), ("ipvsadm", 1));
        let e = ipvsadm_list(VERSION).expect_err("must fail");
        assert_eq!(e.line, 0);
        let e = ipvsadm_list(&format!(
            "{VERSION}Prot LocalAddress:Port Scheduler Flags\nTCP  web.example:http wlc\n"
        ))
        .expect_err("must fail");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("-n"), "{}", e.message);
    }

    #[test]
    fn empty_table_has_a_title_and_no_services() {
        let t = format!(
            "{VERSION}Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        );
        assert!(ipvsadm_list(&t).expect("parses").services.is_empty());
    }
}
