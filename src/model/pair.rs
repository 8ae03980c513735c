//! The HA pair of directors, from one sample of each: which one is the VRRP master (it holds the
//! VIPs as local addresses), their connection counts side by side (the backup's come from the
//! sync daemon, so the difference is the sync lag), and the drift between their tables: a
//! service, a real server or a weight on one and not on the other.

use std::fmt;
use std::net::IpAddr;

use super::dr::service_vips;
use super::sample::{RouterSample, ServiceKey};

/// Which of the two holds the VIPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Master {
    /// The first (`0`) or the second (`1`) director holds every VIP and the other none.
    One(usize),
    /// Both hold some VIP: a split brain (VRRP adverts lost between them).
    Both,
    /// Neither holds any VIP: nothing answers for the services.
    Neither,
    /// The VIPs are split between them, or a director's addresses are not known.
    Unknown,
}

/// How much of the table's VIPs a director holds.
fn holding(s: &RouterSample) -> Option<(usize, usize)> {
    let addrs = s.addrs.as_ref()?;
    let vips = service_vips(s);
    Some((vips.iter().filter(|v| addrs.holds(**v)).count(), vips.len()))
}

/// Which director is the master, from what each holds of its own table's VIPs.
pub fn master(a: &RouterSample, b: &RouterSample) -> Master {
    match (holding(a), holding(b)) {
        (Some((0, _)), Some((0, _))) => Master::Neither,
        (Some((ha, na)), Some((0, _))) if ha == na => Master::One(0),
        (Some((0, _)), Some((hb, nb))) if hb == nb => Master::One(1),
        (Some((ha, _)), Some((hb, _))) if ha > 0 && hb > 0 => Master::Both,
        _ => Master::Unknown,
    }
}

/// One difference between the two tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// A service only director `on` has.
    Service { service: ServiceKey, on: usize },
    /// A real server of a service both have, only on director `on`.
    Real {
        service: ServiceKey,
        real: (IpAddr, u16),
        on: usize,
    },
    /// A real server on both with different weights (first's, second's).
    Weight {
        service: ServiceKey,
        real: (IpAddr, u16),
        weights: (i32, i32),
    },
}

impl Drift {
    /// The sentence naming the directors by `names`.
    pub fn describe(&self, names: [&str; 2]) -> String {
        let real = |(a, p): &(IpAddr, u16)| match a {
            IpAddr::V4(_) => format!("{a}:{p}"),
            IpAddr::V6(_) => format!("[{a}]:{p}"),
        };
        match self {
            Drift::Service { service, on } => format!(
                "service {service} is on {} and not on {}",
                names[*on],
                names[1 - on]
            ),
            Drift::Real {
                service,
                real: r,
                on,
            } => format!(
                "real server {} of {service} is on {} and not on {}",
                real(r),
                names[*on],
                names[1 - on]
            ),
            Drift::Weight {
                service,
                real: r,
                weights,
            } => format!(
                "real server {} of {service} has weight {} on {} and {} on {}",
                real(r),
                weights.0,
                names[0],
                weights.1,
                names[1]
            ),
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(["the first", "the second"]))
    }
}

/// Every difference between the tables of `a` and `b`, in `a`'s order then `b`'s.
pub fn drift(a: &RouterSample, b: &RouterSample) -> Vec<Drift> {
    let mut out = Vec::new();
    for (on, (x, y)) in [(a, b), (b, a)].into_iter().enumerate() {
        for s in &x.services {
            let Some(other) = y.services.iter().find(|o| o.key == s.key) else {
                out.push(Drift::Service { service: s.key, on });
                continue;
            };
            for r in &s.reals {
                let key = (r.address, r.port);
                match other.reals.iter().find(|o| (o.address, o.port) == key) {
                    None => out.push(Drift::Real {
                        service: s.key,
                        real: key,
                        on,
                    }),
                    Some(o) if on == 0 && o.weight != r.weight => out.push(Drift::Weight {
                        service: s.key,
                        real: key,
                        weights: (r.weight, o.weight),
                    }),
                    Some(_) => {}
                }
            }
        }
    }
    out
}

/// The active and inactive connections of a director's whole table.
pub fn connections(s: &RouterSample) -> (u64, u64) {
    s.services
        .iter()
        .flat_map(|v| &v.reals)
        .fold((0, 0), |(a, i), r| {
            (
                a + u64::from(r.active_conns),
                i + u64::from(r.inactive_conns),
            )
        })
}

/// The weight real server `real` of `service` has on a director, if it is there.
pub fn weight_on(s: &RouterSample, service: &ServiceKey, real: (IpAddr, u16)) -> Option<i32> {
    s.services
        .iter()
        .find(|v| v.key == *service)?
        .reals
        .iter()
        .find(|r| (r.address, r.port) == real)
        .map(|r| r.weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{
        Forward, LocalAddrs, Protocol, RealServerSample, RouterSourceKind, Timestamp,
        VirtualServiceSample,
    };
    use std::net::Ipv4Addr;

    fn real(last: u8, weight: i32, active: u32) -> RealServerSample {
        RealServerSample {
            address: IpAddr::V4(Ipv4Addr::new(10, 0, 1, last)),
            port: 80,
            forward: Forward::Route,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: active,
            inactive_conns: 1,
            persistent_conns: None,
            totals: None,
            rates: None,
            tunnel: None,
        }
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            protocol: Protocol::Tcp,
            address: "10.0.0.100".parse().expect("test value"),
            port,
        }
    }

    fn director(holds: bool, services: Vec<(u16, Vec<RealServerSample>)>) -> RouterSample {
        let mut v4 = vec![(Ipv4Addr::new(10, 0, 1, 1), 32)];
        if holds {
            v4.push((Ipv4Addr::new(10, 0, 0, 100), 32));
        }
        RouterSample {
            time: Timestamp(0),
            source: RouterSourceKind::Proc,
            services: services
                .into_iter()
                .map(|(port, reals)| VirtualServiceSample {
                    key: key(port),
                    scheduler: Some("wlc".into()),
                    persistent: None,
                    ops: false,
                    totals: None,
                    rates: None,
                    flags: None,
                    pe_name: None,
                    reals,
                })
                .collect(),
            global: None,
            connections: None,
            notes: Vec::new(),
            ipvs: None,
            parts: Default::default(),
            sysctl: None,
            addrs: Some(LocalAddrs { v4, v6: Vec::new() }),
            owners: None,
            sync: None,
        }
    }

    #[test]
    fn the_master_is_the_one_holding_the_vips() {
        let t = || vec![(80, vec![real(2, 1, 5)])];
        assert_eq!(
            master(&director(true, t()), &director(false, t())),
            Master::One(0)
        );
        assert_eq!(
            master(&director(false, t()), &director(true, t())),
            Master::One(1)
        );
        assert_eq!(
            master(&director(true, t()), &director(true, t())),
            Master::Both
        );
        assert_eq!(
            master(&director(false, t()), &director(false, t())),
            Master::Neither
        );
        let mut unknown = director(true, t());
        unknown.addrs = None;
        assert_eq!(master(&unknown, &director(false, t())), Master::Unknown);
    }

    #[test]
    fn drift_names_a_service_a_real_server_and_a_weight_on_one_side_only() {
        let a = director(
            true,
            vec![
                (80, vec![real(2, 1, 5), real(3, 2, 0)]),
                (443, vec![real(2, 1, 0)]),
            ],
        );
        let b = director(false, vec![(80, vec![real(2, 0, 4), real(4, 1, 0)])]);
        let d = drift(&a, &b);
        let said: Vec<String> = d.iter().map(|x| x.describe(["lb1", "lb2"])).collect();
        assert_eq!(
            said,
            [
                "real server 10.0.1.2:80 of tcp:10.0.0.100:80 has weight 1 on lb1 and 0 on lb2",
                "real server 10.0.1.3:80 of tcp:10.0.0.100:80 is on lb1 and not on lb2",
                "service tcp:10.0.0.100:443 is on lb1 and not on lb2",
                "real server 10.0.1.4:80 of tcp:10.0.0.100:80 is on lb2 and not on lb1",
            ]
        );
        assert!(drift(&a, &a.clone()).is_empty());
        assert_eq!(connections(&a), (5, 3));
        assert_eq!(connections(&b), (4, 2));
        let r = (IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2)), 80);
        assert_eq!(weight_on(&b, &key(80), r), Some(0));
        assert_eq!(weight_on(&b, &key(443), r), None);
    }
}
