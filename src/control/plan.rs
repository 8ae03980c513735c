//! What a drain, reweight or restore would change, checked against the router's table before
//! anything is sent. Pure: the same checks serve the keys, the command line and the re-check just
//! before applying.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::sample::{
    AddressFamily, Protocol, RealServerSample, ServiceKey, SocketText, VirtualServiceSample,
};

/// The kernel's limit for a real server's weight (ipvsadm accepts 0–65535).
pub(crate) const MAX_WEIGHT: i32 = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Drain,
    Reweight,
    Restore,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drain => "drain",
            Self::Reweight => "reweight",
            Self::Restore => "restore",
        }
    }
}

/// A real server by address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RealKey {
    pub address: IpAddr,
    pub port: u16,
}

impl RealKey {
    pub fn of(r: &RealServerSample) -> Self {
        Self {
            address: r.address,
            port: r.port,
        }
    }
}

impl fmt::Display for RealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        SocketText(self.address, self.port).fmt(f)
    }
}

fn parse_addr_port(s: &str) -> Option<(IpAddr, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:")?;
        Some((addr.parse().ok()?, port.parse().ok()?))
    } else {
        let (addr, port) = s.rsplit_once(':')?;
        if addr.contains(':') {
            return None; // IPv6 must be bracketed
        }
        Some((addr.parse().ok()?, port.parse().ok()?))
    }
}

impl FromStr for RealKey {
    type Err = String;
    /// `ADDR:PORT`, IPv6 as `[ADDR]:PORT`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_addr_port(s.trim())
            .map(|(address, port)| Self { address, port })
            .ok_or_else(|| {
                format!("`{s}` is not a real server: use ADDR:PORT, with IPv6 as [ADDR]:PORT")
            })
    }
}

/// Parses a service as the command line and the JSON name it: `tcp:ADDR:PORT`, `udp:…`, `sctp:…`
/// (IPv6 bracketed) or `fwm:MARK`.
pub fn parse_service(s: &str) -> Result<ServiceKey, String> {
    let bad = || {
        format!(
            "`{s}` is not a service: use tcp:ADDR:PORT, udp:ADDR:PORT, sctp:ADDR:PORT or fwm:MARK \
             (IPv6 as [ADDR])"
        )
    };
    let (kind, rest) = s.trim().split_once(':').ok_or_else(bad)?;
    let protocol = match kind.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        "fwm" => {
            let mark = rest
                .strip_prefix("0x")
                .map_or_else(
                    || rest.parse::<u32>().ok(),
                    |h| u32::from_str_radix(h, 16).ok(),
                )
                .ok_or_else(bad)?;
            return Ok(ServiceKey::Fwmark {
                mark,
                family: AddressFamily::Inet,
            });
        }
        _ => return Err(bad()),
    };
    let (address, port) = parse_addr_port(rest).ok_or_else(bad)?;
    Ok(ServiceKey::Addr {
        protocol,
        address,
        port,
    })
}

/// The service `key` names in `table` for an action on `real`. `fwm:N` names no family: a
/// mark held in one family names that service; held in both (an IPv4 and an IPv6 service on one
/// mark), the one of them whose real servers include `real` (the families of real servers tell
/// them apart), and where that does not decide, the exact key. Anything else is refused as
/// ambiguous rather than guessed.
fn find_service<'a>(
    table: &'a [VirtualServiceSample],
    key: &ServiceKey,
    real: &RealKey,
) -> Result<&'a VirtualServiceSample, PlanError> {
    let ServiceKey::Fwmark { mark, .. } = key else {
        return table
            .iter()
            .find(|s| s.key == *key)
            .ok_or_else(|| PlanError::NoSuchService(key.to_string()));
    };
    let same_mark: Vec<&VirtualServiceSample> = table
        .iter()
        .filter(|s| matches!(s.key, ServiceKey::Fwmark { mark: m, .. } if m == *mark))
        .collect();
    let exact = same_mark.iter().copied().find(|s| s.key == *key);
    let holding: Vec<&VirtualServiceSample> = same_mark
        .iter()
        .copied()
        .filter(|s| {
            s.reals
                .iter()
                .any(|r| r.address == real.address && r.port == real.port)
        })
        .collect();
    match (same_mark.as_slice(), holding.as_slice()) {
        ([], _) => Err(PlanError::NoSuchService(key.to_string())),
        ([one], _) | (_, [one]) => Ok(one),
        // Neither holds the real server: the exact key's says so (no such real server).
        (_, []) => exact.ok_or(PlanError::AmbiguousMark(*mark)),
        _ => exact
            .filter(|e| holding.iter().any(|h| std::ptr::eq(*h, *e)))
            .ok_or(PlanError::AmbiguousMark(*mark)),
    }
}

/// `TCP 192.0.2.10:80`, `FWM 42`: as ipvsadm shows a service.
pub fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => format!(
            "{} {}",
            protocol.as_str().to_uppercase(),
            SocketText(*address, *port)
        ),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

/// One weight change, as confirmed by the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightChange {
    pub kind: ActionKind,
    pub service: ServiceKey,
    pub real: RealKey,
    /// The weight the operator saw; if the router holds another, the change is aborted.
    pub from: i32,
    pub to: i32,
}

impl fmt::Display for WeightChange {
    /// `TCP 192.0.2.10:80 → 10.0.0.2:80  weight 3 → 0 (drain)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} → {}  weight {} → {} ({})",
            service_label(&self.service),
            self.real,
            self.from,
            self.to,
            self.kind.as_str()
        )
    }
}

/// Why a change cannot go ahead. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum PlanError {
    #[error("no virtual service {0} on the router")]
    NoSuchService(String),
    #[error(
        "firewall mark {0} has a service in both IPv4 and IPv6 on the router; lbtop will not \
         guess which one to change"
    )]
    AmbiguousMark(u32),
    #[error("{service} has no real server {real}")]
    NoSuchReal { service: String, real: String },
    #[error("weight must be 0–{MAX_WEIGHT}, not {0}")]
    OutOfRange(i64),
    #[error(
        "the weight of {real} changed on the router since you looked ({seen} → {now}); nothing was \
         changed — look again and retry"
    )]
    WeightChanged { real: String, seen: i32, now: i32 },
    #[error(
        "{real} is the last real server of {service} with weight > 0: draining it cuts the service \
         off. Confirm by typing the service, or pass --force"
    )]
    LastLiveServer { service: String, real: String },
    #[error(
        "no earlier drain of {real} in {service} is in the audit log, so there is no weight to restore; use weight N"
    )]
    NothingToRestore { service: String, real: String },
    #[error("{real} already has weight {weight}; nothing to change")]
    Unchanged { real: String, weight: i32 },
    #[error("read-only mode: lbtop changes nothing on the router")]
    ReadOnly,
    #[error("read-only: --proc-root shows a captured snapshot, not a router lbtop could change")]
    Snapshot,
    #[error(
        "read-only: this router is read from Prometheus (node_exporter's ipvs metrics); drain, \
         weight and restore go to the router itself: --router HOST (SSH) or lbtop on the router \
         (netlink)"
    )]
    Prometheus,
    #[error(
        "the forwarding method of {0} is not known here, and a weight change must send it back \
         unchanged; change it over SSH (--router HOST) or on the router"
    )]
    UnknownForward(String),
}

/// Finds a service and a real server in the router's table.
pub fn find<'a>(
    table: &'a [VirtualServiceSample],
    service: &ServiceKey,
    real: &RealKey,
) -> Result<(&'a VirtualServiceSample, &'a RealServerSample), PlanError> {
    let svc = find_service(table, service, real)?;
    let r = svc
        .reals
        .iter()
        .find(|r| r.address == real.address && r.port == real.port)
        .ok_or_else(|| PlanError::NoSuchReal {
            service: service.to_string(),
            real: real.to_string(),
        })?;
    Ok((svc, r))
}

/// Plans a change of `real` in `service` to `to` (for a drain, 0), from what the table holds now.
pub fn plan(
    table: &[VirtualServiceSample],
    kind: ActionKind,
    service: &ServiceKey,
    real: &RealKey,
    to: i64,
) -> Result<WeightChange, PlanError> {
    if !(0..=i64::from(MAX_WEIGHT)).contains(&to) {
        return Err(PlanError::OutOfRange(to));
    }
    let (svc, r) = find(table, service, real)?;
    let to = i32::try_from(to).map_err(|_| PlanError::OutOfRange(to))?;
    if r.weight == to {
        return Err(PlanError::Unchanged {
            real: real.to_string(),
            weight: to,
        });
    }
    Ok(WeightChange {
        kind,
        service: svc.key,
        real: *real,
        from: r.weight,
        to,
    })
}

/// The checks made against the router's table just before the change is sent: the weight is
/// still what the operator saw, and a drain does not cut the service off unless forced.
pub fn recheck(
    table: &[VirtualServiceSample],
    change: &WeightChange,
    force: bool,
) -> Result<(), PlanError> {
    let (svc, r) = find(table, &change.service, &change.real)?;
    if r.weight != change.from {
        return Err(PlanError::WeightChanged {
            real: change.real.to_string(),
            seen: change.from,
            now: r.weight,
        });
    }
    if change.to == 0 && !force && cuts_off(svc, &change.real) {
        return Err(PlanError::LastLiveServer {
            service: change.service.to_string(),
            real: change.real.to_string(),
        });
    }
    Ok(())
}

/// Whether setting `real`'s weight to 0 leaves `svc` with no real server of weight > 0.
pub(crate) fn cuts_off(svc: &VirtualServiceSample, real: &RealKey) -> bool {
    let live_others = svc
        .reals
        .iter()
        .filter(|r| !(r.address == real.address && r.port == real.port))
        .any(|r| r.weight > 0);
    let this_live = svc
        .reals
        .iter()
        .any(|r| r.address == real.address && r.port == real.port && r.weight > 0);
    this_live && !live_others
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::sample::Forward;

    fn real(last: u8, weight: i32) -> RealServerSample {
        RealServerSample {
            address: IpAddr::from([10, 0, 0, last]),
            port: 80,
            forward: Forward::Masq,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: None,
            totals: None,
            rates: None,
            tunnel: None,
        }
    }

    /// `tcp:192.0.2.10:80` with real servers 10.0.0.2:80, 10.0.0.3:80… of these weights.
    pub(crate) fn table(weights: &[i32]) -> Vec<VirtualServiceSample> {
        vec![VirtualServiceSample {
            key: parse_service("tcp:192.0.2.10:80").expect("valid"),
            scheduler: Some("wlc".into()),
            persistent: None,
            ops: false,
            flags: None,
            pe_name: None,
            totals: None,
            rates: None,
            reals: weights
                .iter()
                .enumerate()
                .map(|(i, &w)| real(2 + i as u8, w))
                .collect(),
        }]
    }

    fn r(last: u8) -> RealKey {
        RealKey {
            address: IpAddr::from([10, 0, 0, last]),
            port: 80,
        }
    }

    #[test]
    fn services_and_reals_parse_as_operators_write_them() {
        assert_eq!(
            parse_service("tcp:[2001:db8::10]:443").map(|k| k.to_string()),
            Ok("tcp:[2001:db8::10]:443".into())
        );
        assert_eq!(
            parse_service("fwm:42").map(|k| k.to_string()),
            Ok("fwm:42".into())
        );
        assert_eq!(
            parse_service("FWM:0x2a").map(|k| k.to_string()),
            Ok("fwm:42".into())
        );
        assert!(
            parse_service("tcp:2001:db8::10:443").is_err(),
            "IPv6 must be bracketed"
        );
        assert!(parse_service("icmp:1.2.3.4:1").is_err());
        assert!(parse_service("tcp:1.2.3.4:99999").is_err());
        assert_eq!(
            "[2001:db8::2]:80".parse::<RealKey>().map(|k| k.port),
            Ok(80)
        );
        assert!("10.0.0.2".parse::<RealKey>().is_err());
    }

    #[test]
    fn the_confirmation_states_the_exact_change() {
        let c = plan(
            &table(&[3, 1]),
            ActionKind::Drain,
            &table(&[3])[0].key,
            &r(2),
            0,
        )
        .expect("plan");
        assert_eq!(
            c.to_string(),
            "TCP 192.0.2.10:80 → 10.0.0.2:80  weight 3 → 0 (drain)"
        );
    }

    #[test]
    fn weights_outside_0_to_65535_are_refused() {
        let t = table(&[3]);
        assert_eq!(
            plan(&t, ActionKind::Reweight, &t[0].key, &r(2), 65_536),
            Err(PlanError::OutOfRange(65_536))
        );
        assert!(plan(&t, ActionKind::Reweight, &t[0].key, &r(2), 65_535).is_ok());
        assert_eq!(
            plan(&t, ActionKind::Reweight, &t[0].key, &r(2), -1),
            Err(PlanError::OutOfRange(-1))
        );
    }

    #[test]
    fn a_missing_service_or_real_is_named() {
        let t = table(&[3]);
        let other = parse_service("udp:192.0.2.10:53").expect("valid");
        assert!(matches!(
            plan(&t, ActionKind::Drain, &other, &r(2), 0),
            Err(PlanError::NoSuchService(s)) if s == "udp:192.0.2.10:53"
        ));
        assert!(matches!(
            plan(&t, ActionKind::Drain, &t[0].key, &r(9), 0),
            Err(PlanError::NoSuchReal { .. })
        ));
    }

    #[test]
    fn a_firewall_mark_held_in_both_families_is_told_apart_by_the_real_server() {
        use crate::model::sample::AddressFamily;
        let fwm7 = parse_service("fwm:7").expect("valid");
        assert_eq!(
            fwm7,
            ServiceKey::Fwmark {
                mark: 7,
                family: AddressFamily::Inet
            }
        );
        // An IPv4 service on mark 7 with 10.0.0.2 and .3; an IPv6 one with fd00::2 and ::3.
        let mut v4 = table(&[3, 1]);
        v4[0].key = fwm7;
        let mut v6 = table(&[5, 1]);
        v6[0].key = ServiceKey::Fwmark {
            mark: 7,
            family: AddressFamily::Inet6,
        };
        for (i, r) in v6[0].reals.iter_mut().enumerate() {
            r.address = IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 2 + i as u16]);
        }
        let v6_real = RealKey {
            address: IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, 2]),
            port: 80,
        };
        // Held in IPv6 alone: `fwm:7` names it.
        let c = plan(&v6, ActionKind::Drain, &fwm7, &v6_real, 0).expect("the IPv6 one");
        assert_eq!(c.from, 5);
        // Held in both: each real server's family picks its service.
        let both: Vec<VirtualServiceSample> = v4.iter().chain(&v6).cloned().collect();
        let c = plan(&both, ActionKind::Drain, &fwm7, &v6_real, 0).expect("the IPv6 one");
        assert_eq!((c.from, &c.service), (5, &v6[0].key));
        let c = plan(&both, ActionKind::Drain, &fwm7, &r(2), 0).expect("the IPv4 one");
        assert_eq!((c.from, &c.service), (3, &v4[0].key));
        // A real server in neither: the exact key's service says it has no such real server.
        assert!(matches!(
            plan(&both, ActionKind::Drain, &fwm7, &r(9), 0),
            Err(PlanError::NoSuchReal { .. })
        ));
        // One real server in both services (tunnelled across families) and no exact key: refused.
        let mut shared = v6.clone();
        shared[0].reals.push(real(2, 4));
        let mut other = shared.clone();
        other[0].key = ServiceKey::Fwmark {
            mark: 7,
            family: AddressFamily::Inet6,
        };
        let twice: Vec<VirtualServiceSample> = shared.into_iter().chain(other).collect();
        assert!(matches!(
            plan(&twice, ActionKind::Drain, &fwm7, &r(2), 0),
            Err(PlanError::AmbiguousMark(7))
        ));
    }

    #[test]
    fn draining_the_last_live_server_is_refused_unless_forced() {
        let t = table(&[3, 0]);
        let c = plan(&t, ActionKind::Drain, &t[0].key, &r(2), 0).expect("plan");
        assert!(matches!(
            recheck(&t, &c, false),
            Err(PlanError::LastLiveServer { .. })
        ));
        assert_eq!(recheck(&t, &c, true), Ok(()));
        // With another live server it is fine.
        let t2 = table(&[3, 1]);
        assert_eq!(recheck(&t2, &c, false), Ok(()));
    }

    #[test]
    fn a_weight_changed_by_someone_else_aborts() {
        let seen = table(&[3, 1]);
        let c = plan(&seen, ActionKind::Drain, &seen[0].key, &r(2), 0).expect("plan");
        let now = table(&[5, 1]);
        assert_eq!(
            recheck(&now, &c, false),
            Err(PlanError::WeightChanged {
                real: "10.0.0.2:80".into(),
                seen: 3,
                now: 5
            })
        );
    }
}
