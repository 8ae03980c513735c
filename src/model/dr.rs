//! Direct-routing and tunnel sanity of a real server, from what its kernel says ([`NodeNet`]):
//! the VIP must be a local address that the node never announces or answers ARP for, or
//! decapsulated packets for it must be let in. Each problem is one plain sentence naming the VIP
//! and the setting.
//!
//! `/proc` does not say which device holds an IPv4 address, so for an IPv4 VIP the check is that
//! it is local at all and that ARP settings keep the node quiet about it; for IPv6 the device is
//! known and must be a loopback or NOARP device (or an `ip6tnl` device for a tunnel).

use std::net::{IpAddr, Ipv4Addr};

use super::sample::{DeviceConf, Forward, LocalAddrs, NodeNet, RouterSample, ServiceKey};

/// IFF_LOOPBACK and IFF_NOARP.
const IFF_LOOPBACK: u32 = 0x8;
const IFF_NOARP: u32 = 0x80;

/// A real server of the router as the checks see it: the service's VIP, how packets reach the
/// node, and the node's own address in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrRole {
    pub vip: IpAddr,
    pub forward: Forward,
    pub real: IpAddr,
}

/// The problems of a node that is a real server in `roles`: `None` when none of the roles is
/// direct routing or tunnelling, or the node's settings are not known (`net`); else one sentence
/// per problem, `[]` when all is right.
///
/// A masquerading real server's replies must go back through the router, which translates them:
/// its default route must go through one of the router's addresses (`router`; not checked where
/// they are not known).
pub fn dr_problems(
    net: Option<&NodeNet>,
    roles: &[DrRole],
    router: Option<&LocalAddrs>,
) -> Option<Vec<String>> {
    let mut checked: Vec<DrRole> = roles
        .iter()
        .filter(|r| matches!(r.forward, Forward::Route | Forward::Tunnel | Forward::Masq))
        .copied()
        .collect();
    if checked.is_empty() {
        return None;
    }
    let net = net?;
    checked.sort_by_key(|r| (r.vip, r.forward as u8, r.real));
    checked.dedup();
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    // The IPv4 direct-routing VIPs by the device carrying the node's own address, for one ARP
    // sentence per device and setting.
    let mut arp: Vec<(Option<&str>, Vec<IpAddr>)> = Vec::new();
    for r in &checked {
        if r.forward == Forward::Masq {
            continue;
        }
        if let Some(p) = vip_problem(net, r) {
            push(p);
        }
        if r.forward == Forward::Route
            && let (IpAddr::V4(_), IpAddr::V4(real)) = (r.vip, r.real)
        {
            let dev = device_toward(net, real);
            match arp.iter_mut().find(|(d, _)| *d == dev) {
                Some((_, vips)) if vips.contains(&r.vip) => {}
                Some((_, vips)) => vips.push(r.vip),
                None => arp.push((dev, vec![r.vip])),
            }
        }
        if r.forward == Forward::Tunnel {
            for p in tunnel_problems(net, r.vip) {
                push(p);
            }
        }
    }
    let masq: Vec<IpAddr> = checked
        .iter()
        .filter(|r| r.forward == Forward::Masq && r.vip.is_ipv4())
        .map(|r| r.vip)
        .fold(Vec::new(), |mut v, a| {
            if !v.contains(&a) {
                v.push(a);
            }
            v
        });
    if !masq.is_empty()
        && let Some(p) = route_back_problem(net, &masq, router)
    {
        push(p);
    }
    for (dev, vips) in &arp {
        for p in arp_problems(net, *dev, vips) {
            push(p);
        }
    }
    Some(out)
}

/// Whether the node's replies to clients go back through the router: its default route must
/// go through one of the router's addresses. The fix names the router's address on the node's
/// own link, where there is one.
fn route_back_problem(
    net: &NodeNet,
    vips: &[IpAddr],
    router: Option<&LocalAddrs>,
) -> Option<String> {
    let vip = vip_list(vips);
    let default = net
        .routes_v4
        .iter()
        .find(|r| u32::from(r.mask) == 0 && u32::from(r.destination) == 0);
    let router_on_link = router.and_then(|a| {
        a.v4.iter()
            .filter(|(_, len)| *len == 32)
            .map(|(p, _)| *p)
            .find(|p| {
                net.routes_v4.iter().any(|r| {
                    !r.gateway
                        && u32::from(r.mask) != 0
                        && u32::from(*p) & u32::from(r.mask) == u32::from(r.destination)
                })
            })
    });
    let fix = router_on_link.map_or_else(
        || "ip route replace default via the router's address".to_string(),
        |a| format!("ip route replace default via {a}"),
    );
    match default {
        None => Some(format!(
            "there is no default route, so replies of the masquerading real server of {vip} \
             do not go back through the router ({fix})"
        )),
        Some(r) => {
            let router = router?;
            match r.via {
                Some(g) if router.holds(IpAddr::V4(g)) => None,
                Some(g) => Some(format!(
                    "the default route goes through {g}, which is not the router's, so replies \
                     of the masquerading real server of {vip} are not translated back ({fix})"
                )),
                None => Some(format!(
                    "the default route is on {} without a gateway, so replies of the \
                     masquerading real server of {vip} do not go back through the router ({fix})",
                    r.device
                )),
            }
        }
    }
}

/// The router's own set-up, as sentences: a masquerading service needs `ip_forward` on, and the
/// router must hold every VIP (`must_hold` false for a router of a pair, where the backup
/// holding none is right).
pub fn router_problems(sample: &RouterSample, must_hold: bool) -> Vec<String> {
    let mut out = Vec::new();
    let masq: Vec<String> = sample
        .services
        .iter()
        .filter(|s| s.reals.iter().any(|r| r.forward == Forward::Masq))
        .map(|s| s.key.to_string())
        .collect();
    if !masq.is_empty() && sample.sysctl.and_then(|s| s.ip_forward) == Some(0) {
        out.push(format!(
            "ip_forward is 0 on the router, so replies from the masquerading real servers of {} \
             are not forwarded back to the clients (net.ipv4.ip_forward=1)",
            masq.join(", ")
        ));
    }
    if must_hold && let Some(addrs) = &sample.addrs {
        let missing: Vec<IpAddr> = service_vips(sample)
            .into_iter()
            .filter(|v| !addrs.holds(*v))
            .collect();
        if !missing.is_empty() {
            out.push(format!(
                "{} {} not a local address of the router, so packets for {} do not reach IPVS \
                 (ip addr add VIP dev DEVICE, or the VRRP instance that holds it)",
                vip_list(&missing),
                if missing.len() == 1 { "is" } else { "are" },
                if missing.len() == 1 { "it" } else { "them" },
            ));
        }
    }
    out
}

/// The distinct VIPs of the address services of `sample`, in the table's order.
pub fn service_vips(sample: &RouterSample) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for s in &sample.services {
        if let ServiceKey::Addr { address, .. } = s.key
            && !out.contains(&address)
        {
            out.push(address);
        }
    }
    out
}

/// `VIP 10.0.0.1` or `VIPs 10.0.0.1, 10.0.0.2`.
fn vip_list(vips: &[IpAddr]) -> String {
    let list: Vec<String> = vips.iter().map(ToString::to_string).collect();
    match list.len() {
        1 => format!("VIP {}", list[0]),
        _ => format!("VIPs {}", list.join(", ")),
    }
}

/// Whether the VIP is local, and for IPv6 on a device that does not answer for it.
fn vip_problem(net: &NodeNet, r: &DrRole) -> Option<String> {
    let how = match r.forward {
        Forward::Tunnel => "tunnel",
        _ => "direct-routing",
    };
    match r.vip {
        IpAddr::V4(vip) => (!is_local_v4(net, vip)).then(|| {
            let dev = if r.forward == Forward::Tunnel {
                "tunl0"
            } else {
                "lo"
            };
            format!(
                "VIP {vip} is not a local address, so {how} packets for it are dropped \
                 (ip addr add {vip}/32 dev {dev})"
            )
        }),
        IpAddr::V6(vip) => {
            let devices: Vec<&str> = net
                .local_v6
                .iter()
                .filter(|(a, _)| *a == vip)
                .map(|(_, d)| d.as_str())
                .collect();
            if devices.is_empty() {
                return Some(format!(
                    "VIP {vip} is not a local address, so {how} packets for it are dropped \
                     (ip addr add {vip}/128 dev lo)"
                ));
            }
            let quiet = |d: &str| {
                d == "lo"
                    || (r.forward == Forward::Tunnel && d.starts_with("ip6tnl"))
                    || device(net, d)
                        .and_then(|c| c.flags)
                        .is_some_and(|f| f & (IFF_LOOPBACK | IFF_NOARP) != 0)
            };
            devices.iter().find(|d| !quiet(d)).map(|d| {
                format!(
                    "VIP {vip} is on {d}, which answers neighbour solicitations for it: \
                     move it to lo or a dummy device"
                )
            })
        }
    }
}

/// Whether an IPv4 address is one of the node's own: a `LOCAL` entry that holds it.
fn is_local_v4(net: &NodeNet, a: Ipv4Addr) -> bool {
    net.local_v4.iter().any(|&(p, len)| {
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len.min(32)))
        };
        u32::from(p) & mask == u32::from(a) & mask
    })
}

fn device<'a>(net: &'a NodeNet, name: &str) -> Option<&'a DeviceConf> {
    net.devices.iter().find(|d| d.name == name)
}

/// The device the node reaches `addr` on: the longest prefix of the main table's link routes
/// that holds it, else the device of the default route.
fn device_toward(net: &NodeNet, addr: Ipv4Addr) -> Option<&str> {
    let a = u32::from(addr);
    net.routes_v4
        .iter()
        .filter(|r| !r.gateway && a & u32::from(r.mask) == u32::from(r.destination))
        .max_by_key(|r| u32::from(r.mask).count_ones())
        .or_else(|| net.routes_v4.iter().find(|r| u32::from(r.mask) == 0))
        .map(|r| r.device.as_str())
}

/// The kernel's value of a setting for a device: the larger of `all`'s and the device's.
fn effective(net: &NodeNet, dev: Option<&str>, get: fn(&DeviceConf) -> Option<u32>) -> Option<u32> {
    let all = device(net, "all").and_then(get);
    let own = dev.and_then(|d| device(net, d)).and_then(get);
    match (all, own) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// `arp_ignore` and `arp_announce` on `dev`, the device carrying the node's own address: the
/// node must not answer ARP requests for the VIPs (1, 2 or 8) and must not announce them as a
/// source (2).
fn arp_problems(net: &NodeNet, dev: Option<&str>, vips: &[IpAddr]) -> Vec<String> {
    let on = dev.unwrap_or("all");
    let vip = vip_list(vips);
    let mut out = Vec::new();
    match effective(net, dev, |c| c.arp_ignore) {
        Some(1 | 2 | 8) => {}
        Some(v) => out.push(format!(
            "arp_ignore is {v} on {on}, so this node answers ARP requests for {vip} and can \
             take the router's traffic (net.ipv4.conf.all.arp_ignore=1)"
        )),
        None => out.push(format!(
            "arp_ignore on {on} could not be read, so whether this node answers ARP for {vip} \
             is unknown"
        )),
    }
    match effective(net, dev, |c| c.arp_announce) {
        Some(2) => {}
        Some(v) => out.push(format!(
            "arp_announce is {v} on {on}, so this node may announce {vip} in its own ARP \
             requests (net.ipv4.conf.all.arp_announce=2)"
        )),
        None => out.push(format!(
            "arp_announce on {on} could not be read, so whether this node announces {vip} is \
             unknown"
        )),
    }
    out
}

/// A tunnel's decapsulating device must exist and let the VIP's packets in (`rp_filter` 0).
fn tunnel_problems(net: &NodeNet, vip: IpAddr) -> Vec<String> {
    let dev = if vip.is_ipv4() { "tunl0" } else { "ip6tnl0" };
    if device(net, dev).is_none() {
        return vec![format!(
            "there is no {dev} device (is the {} module loaded?), so tunnelled packets for VIP \
             {vip} are not unpacked",
            if vip.is_ipv4() { "ipip" } else { "ip6_tunnel" }
        )];
    }
    // rp_filter is IPv4's; the kernel takes the larger of `all`'s and the device's.
    match effective(net, Some(dev), |c| c.rp_filter) {
        Some(v) if v != 0 && vip.is_ipv4() => vec![format!(
            "rp_filter is {v} on {dev}, so unpacked packets for VIP {vip} are dropped \
             (net.ipv4.conf.{dev}.rp_filter=0 and net.ipv4.conf.all.rp_filter=0)"
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::Route4;

    /// The checks without the router's addresses.
    fn dr_problems(net: Option<&NodeNet>, roles: &[DrRole]) -> Option<Vec<String>> {
        super::dr_problems(net, roles, None)
    }

    fn conf(name: &str, ignore: u32, announce: u32, rp: u32, flags: Option<u32>) -> DeviceConf {
        DeviceConf {
            name: name.into(),
            arp_ignore: Some(ignore),
            arp_announce: Some(announce),
            rp_filter: Some(rp),
            flags,
        }
    }

    /// A real server 10.0.1.2 on eth0 configured as the tutorial says: the VIP on lo,
    /// arp_ignore 1 and arp_announce 2 on `all`.
    fn tutorial() -> NodeNet {
        NodeNet {
            local_v4: vec![
                (Ipv4Addr::new(10, 0, 1, 2), 32),
                (Ipv4Addr::new(10, 0, 0, 100), 32),
                (Ipv4Addr::new(127, 0, 0, 0), 8),
            ],
            local_v6: vec![("2001:db8::64".parse().expect("test value"), "lo".into())],
            routes_v4: vec![
                Route4 {
                    device: "eth0".into(),
                    destination: Ipv4Addr::UNSPECIFIED,
                    mask: Ipv4Addr::UNSPECIFIED,
                    gateway: true,
                    via: Some(Ipv4Addr::new(10, 0, 1, 1)),
                },
                Route4 {
                    device: "eth0".into(),
                    destination: Ipv4Addr::new(10, 0, 1, 0),
                    mask: Ipv4Addr::new(255, 255, 255, 0),
                    gateway: false,
                    via: None,
                },
            ],
            devices: vec![
                conf("all", 1, 2, 0, None),
                conf("default", 0, 0, 1, None),
                conf("eth0", 0, 0, 1, Some(0x1003)),
                conf("lo", 0, 0, 0, Some(0x9)),
            ],
        }
    }

    fn role(vip: &str, forward: Forward) -> DrRole {
        DrRole {
            vip: vip.parse().expect("test value"),
            forward,
            real: "10.0.1.2".parse().expect("test value"),
        }
    }

    #[test]
    fn the_tutorials_real_server_has_no_problem() {
        let r = [
            role("10.0.0.100", Forward::Route),
            role("2001:db8::64", Forward::Route),
        ];
        assert_eq!(dr_problems(Some(&tutorial()), &r), Some(vec![]));
    }

    /// The router of [`tutorial`]'s node: 10.0.1.1 on the node's link, the VIP.
    fn router() -> LocalAddrs {
        LocalAddrs {
            v4: vec![
                (Ipv4Addr::new(10, 0, 1, 1), 32),
                (Ipv4Addr::new(10, 0, 0, 100), 32),
                (Ipv4Addr::new(127, 0, 0, 0), 8),
            ],
            v6: Vec::new(),
        }
    }

    #[test]
    fn a_masquerading_real_server_must_route_back_through_the_router() {
        let r = [role("10.0.0.100", Forward::Masq)];
        let net = tutorial();
        assert_eq!(
            super::dr_problems(Some(&net), &r, Some(&router())),
            Some(vec![])
        );
        // Not known where the router's addresses are not.
        assert_eq!(dr_problems(Some(&net), &r), Some(vec![]));
        let mut other = net.clone();
        other.routes_v4[0].via = Some(Ipv4Addr::new(10, 0, 1, 254));
        let p = super::dr_problems(Some(&other), &r, Some(&router())).expect("checked");
        assert_eq!(
            p,
            [
                "the default route goes through 10.0.1.254, which is not the router's, so replies \
              of the masquerading real server of VIP 10.0.0.100 are not translated back (ip \
              route replace default via 10.0.1.1)"
            ]
        );
        other.routes_v4.remove(0);
        let p = dr_problems(Some(&other), &r).expect("checked");
        assert!(p[0].starts_with("there is no default route"), "{p:?}");
    }

    #[test]
    fn the_router_must_hold_every_vip_and_forward_for_masquerading() {
        use crate::model::sample::{
            Protocol, RealServerSample, RouterSourceKind, RouterSysctl, Timestamp,
            VirtualServiceSample,
        };
        let svc = |vip: &str, forward| VirtualServiceSample {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: vip.parse().expect("test value"),
                port: 80,
            },
            scheduler: Some("wlc".into()),
            persistent: None,
            ops: false,
            totals: None,
            rates: None,
            flags: None,
            pe_name: None,
            reals: vec![RealServerSample {
                address: "10.0.1.2".parse().expect("test value"),
                port: 80,
                forward,
                weight: 1,
                upper_threshold: 0,
                lower_threshold: 0,
                active_conns: 0,
                inactive_conns: 0,
                persistent_conns: None,
                totals: None,
                rates: None,
                tunnel: None,
            }],
        };
        let mut sample = RouterSample {
            time: Timestamp(0),
            source: RouterSourceKind::Proc,
            services: vec![
                svc("10.0.0.100", Forward::Route),
                svc("10.0.0.101", Forward::Masq),
            ],
            global: None,
            connections: None,
            notes: Vec::new(),
            ipvs: None,
            parts: Default::default(),
            sysctl: Some(RouterSysctl {
                ip_forward: Some(1),
                ..Default::default()
            }),
            addrs: Some(router()),
            owners: None,
            sync: None,
        };
        assert_eq!(
            router_problems(&sample, true),
            [
                "VIP 10.0.0.101 is not a local address of the router, so packets for it do not \
              reach IPVS (ip addr add VIP dev DEVICE, or the VRRP instance that holds it)"
            ]
        );
        assert!(
            router_problems(&sample, false).is_empty(),
            "a pair's backup"
        );
        sample.sysctl = Some(RouterSysctl {
            ip_forward: Some(0),
            ..Default::default()
        });
        sample.addrs = None;
        let p = router_problems(&sample, true);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("ip_forward is 0") && p[0].contains("10.0.0.101:80"));
    }

    #[test]
    fn no_real_server_role_or_no_settings_is_not_checked() {
        assert_eq!(dr_problems(Some(&tutorial()), &[]), None);
        assert_eq!(
            dr_problems(None, &[role("10.0.0.100", Forward::Route)]),
            None
        );
    }

    #[test]
    fn a_missing_vip_and_arp_settings_are_named_with_the_vip() {
        let mut net = tutorial();
        net.local_v4
            .retain(|(a, _)| *a != Ipv4Addr::new(10, 0, 0, 100));
        net.devices[0] = conf("all", 0, 0, 0, None);
        let p = dr_problems(Some(&net), &[role("10.0.0.100", Forward::Route)]).expect("test value");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("VIP 10.0.0.100 is not a local address"),
            "{p:?}"
        );
        assert!(p[1].starts_with("arp_ignore is 0 on eth0") && p[1].contains("10.0.0.100"));
        assert!(p[2].starts_with("arp_announce is 0 on eth0") && p[2].contains("10.0.0.100"));
    }

    #[test]
    fn one_arp_sentence_names_every_vip_on_the_device() {
        let mut net = tutorial();
        net.devices[0] = conf("all", 0, 2, 0, None);
        net.local_v4.push((Ipv4Addr::new(10, 0, 0, 101), 32));
        let r = [
            role("10.0.0.101", Forward::Route),
            role("10.0.0.100", Forward::Route),
            role("10.0.0.100", Forward::Route),
        ];
        let p = dr_problems(Some(&net), &r).expect("checked");
        assert_eq!(
            p,
            [
                "arp_ignore is 0 on eth0, so this node answers ARP requests for VIPs 10.0.0.100, \
              10.0.0.101 and can take the router's traffic (net.ipv4.conf.all.arp_ignore=1)"
            ]
        );
    }

    #[test]
    fn the_kernel_takes_the_larger_of_all_and_the_device() {
        let mut net = tutorial();
        net.devices[0] = conf("all", 0, 0, 0, None);
        net.devices[2] = conf("eth0", 1, 2, 0, Some(0x1003));
        assert_eq!(
            dr_problems(Some(&net), &[role("10.0.0.100", Forward::Route)]),
            Some(vec![])
        );
        // arp_ignore 3 answers for global addresses on any device; 8 answers nothing.
        net.devices[2] = conf("eth0", 3, 2, 0, Some(0x1003));
        let p = dr_problems(Some(&net), &[role("10.0.0.100", Forward::Route)]).expect("test value");
        assert!(p[0].starts_with("arp_ignore is 3 on eth0"), "{p:?}");
        net.devices[2] = conf("eth0", 8, 2, 0, Some(0x1003));
        assert_eq!(
            dr_problems(Some(&net), &[role("10.0.0.100", Forward::Route)]),
            Some(vec![])
        );
    }

    #[test]
    fn an_ipv6_vip_on_an_arp_device_is_a_problem() {
        let mut net = tutorial();
        net.local_v6 = vec![("2001:db8::64".parse().expect("test value"), "eth0".into())];
        let p =
            dr_problems(Some(&net), &[role("2001:db8::64", Forward::Route)]).expect("test value");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("2001:db8::64 is on eth0"), "{p:?}");
        net.devices.push(conf("dummy0", 0, 0, 0, Some(0xc3)));
        net.local_v6 = vec![("2001:db8::64".parse().expect("test value"), "dummy0".into())];
        assert_eq!(
            dr_problems(Some(&net), &[role("2001:db8::64", Forward::Route)]),
            Some(vec![])
        );
    }

    #[test]
    fn a_tunnel_needs_tunl0_and_rp_filter_off() {
        let mut net = tutorial();
        let r = [role("10.0.0.100", Forward::Tunnel)];
        let p = dr_problems(Some(&net), &r).expect("test value");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("no tunl0") && p[0].contains("10.0.0.100"),
            "{p:?}"
        );
        net.devices.push(conf("tunl0", 0, 0, 1, Some(0xc1)));
        let p = dr_problems(Some(&net), &r).expect("test value");
        assert!(p[0].starts_with("rp_filter is 1 on tunl0"), "{p:?}");
        net.devices.last_mut().expect("test value").rp_filter = Some(0);
        assert_eq!(dr_problems(Some(&net), &r), Some(vec![]));
    }

    #[test]
    fn unreadable_settings_are_said_not_passed() {
        let mut net = tutorial();
        for d in &mut net.devices {
            d.arp_ignore = None;
        }
        let p = dr_problems(Some(&net), &[role("10.0.0.100", Forward::Route)]).expect("test value");
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("could not be read"), "{p:?}");
    }
}
