//! Changing a weight with `ipvsadm -e`, locally or as one remote exec. The command always carries
//! the current forwarding flag and both thresholds: `ipvsadm -e` without `-g/-m/-i` silently turns
//! a masquerading or tunnelled real server into direct routing.

use crate::model::sample::{
    AddressFamily, Forward, RealServerSample, ServiceKey, SocketText, TunnelEncap, TunnelKind,
    VirtualServiceSample,
};

/// The argument vector (without the program) that sets `real`'s weight in `svc` and nothing else.
/// Every argument is built from typed values, so it is safe to join into a shell command line.
/// A tunnel real's encapsulation is passed back when it is known (netlink reads it; ipvsadm's
/// listing does not show it, and ipvsadm then edits the real as IPIP).
pub fn edit_args(svc: &VirtualServiceSample, real: &RealServerSample, weight: i32) -> Vec<String> {
    let mut args = vec!["-e".to_string()];
    match svc.key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            args.push(
                match protocol {
                    crate::model::sample::Protocol::Tcp => "-t",
                    crate::model::sample::Protocol::Udp => "-u",
                    crate::model::sample::Protocol::Sctp => "--sctp-service",
                }
                .to_string(),
            );
            args.push(SocketText(address, port).to_string());
        }
        ServiceKey::Fwmark { mark, family } => {
            args.push("-f".into());
            args.push(mark.to_string());
            if family == AddressFamily::Inet6 {
                args.push("-6".into());
            }
        }
    }
    args.push("-r".into());
    args.push(SocketText(real.address, real.port).to_string());
    args.push(
        match real.forward {
            Forward::Route | Forward::Local => "-g",
            Forward::Masq => "-m",
            Forward::Tunnel => "-i",
        }
        .to_string(),
    );
    if real.forward == Forward::Tunnel
        && let Some(t) = &real.tunnel
    {
        args.extend(tunnel_args(t));
    }
    args.push("-w".into());
    args.push(weight.to_string());
    args.push("-x".into());
    args.push(real.upper_threshold.to_string());
    args.push("-y".into());
    args.push(real.lower_threshold.to_string());
    args
}

/// ipvsadm 1.31's tunnel options for an encapsulation. A kind ipvsadm cannot name is passed as
/// its number, which ipvsadm refuses: the edit fails instead of changing the tunnel.
fn tunnel_args(t: &TunnelEncap) -> Vec<String> {
    let kind = match t.kind {
        TunnelKind::Ipip => "ipip".to_string(),
        TunnelKind::Gue => "gue".to_string(),
        TunnelKind::Gre => "gre".to_string(),
        TunnelKind::Other(n) => n.to_string(),
    };
    let mut args = vec!["--tun-type".to_string(), kind];
    if t.kind == TunnelKind::Gue {
        args.push("--tun-port".into());
        args.push(t.port.to_string());
    }
    if t.kind != TunnelKind::Ipip {
        args.push(
            if t.flags & 1 != 0 {
                "--tun-csum"
            } else if t.flags & 2 != 0 {
                "--tun-remcsum"
            } else {
                "--tun-nocsum"
            }
            .to_string(),
        );
    }
    args
}

/// The views `ipvsadm` must be run with to read everything a weight change needs to carry over.
pub const READ_VIEWS: [&[&str]; 3] = [
    &["-L", "-n", "--exact"],
    &["-L", "-n", "--exact", "--thresholds"],
    &["-L", "-n", "--exact", "--persistent-conn"],
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::parse_service;
    use std::net::IpAddr;

    fn real(forward: Forward) -> RealServerSample {
        RealServerSample {
            address: "2001:db8::2".parse::<IpAddr>().expect("addr"),
            port: 80,
            forward,
            weight: 3,
            upper_threshold: 100,
            lower_threshold: 10,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: None,
            totals: None,
            rates: None,
            tunnel: None,
        }
    }

    fn svc(id: &str) -> VirtualServiceSample {
        VirtualServiceSample {
            key: parse_service(id).expect("valid"),
            scheduler: "wlc".into(),
            persistent: None,
            ops: false,
            flags: None,
            pe_name: None,
            totals: None,
            rates: None,
            reals: Vec::new(),
        }
    }

    #[test]
    fn the_edit_keeps_forwarding_method_and_thresholds() {
        assert_eq!(
            edit_args(&svc("tcp:[2001:db8::10]:80"), &real(Forward::Masq), 0).join(" "),
            "-e -t [2001:db8::10]:80 -r [2001:db8::2]:80 -m -w 0 -x 100 -y 10"
        );
        assert_eq!(
            edit_args(&svc("udp:192.0.2.1:53"), &real(Forward::Tunnel), 7).join(" "),
            "-e -u 192.0.2.1:53 -r [2001:db8::2]:80 -i -w 7 -x 100 -y 10"
        );
        assert_eq!(
            edit_args(&svc("fwm:42"), &real(Forward::Route), 1).join(" "),
            "-e -f 42 -r [2001:db8::2]:80 -g -w 1 -x 100 -y 10"
        );
        let mut gue = real(Forward::Tunnel);
        gue.tunnel = Some(TunnelEncap {
            kind: TunnelKind::Gue,
            port: 6080,
            flags: 1,
        });
        assert_eq!(
            edit_args(&svc("tcp:192.0.2.1:80"), &gue, 2).join(" "),
            "-e -t 192.0.2.1:80 -r [2001:db8::2]:80 -i --tun-type gue --tun-port 6080 --tun-csum \
             -w 2 -x 100 -y 10"
        );
        assert!(
            edit_args(&svc("sctp:192.0.2.1:9"), &real(Forward::Route), 1)
                .contains(&"--sctp-service".to_string())
        );
    }
}
