//! Changing a weight with `ipvsadm -e`, locally or as one remote exec. The command always carries
//! the current forwarding flag and both thresholds: `ipvsadm -e` without `-g/-m/-i` silently turns
//! a masquerading or tunnelled real server into direct routing.

use std::net::IpAddr;

use super::plan::{PlanError, WeightChange};
use crate::model::sample::{
    AddressFamily, Forward, Protocol, RealServerSample, ServiceKey, SocketText, TunnelEncap,
    TunnelKind, VirtualServiceSample,
};
use crate::model::text::printable;
use crate::source::parse::{self, ParseError};

/// The argument vector (without the program) that sets `real`'s weight in `svc` and nothing else.
/// Every argument is built from typed values, so it is safe to join into a shell command line.
/// A tunnel real's encapsulation is passed back when it is known (netlink reads it; ipvsadm's
/// listing does not show it, and ipvsadm then edits the real as IPIP).
/// Without the forwarding method (a table read from Prometheus) there is no safe command:
/// `ipvsadm -e` without one resets the method to direct routing.
pub fn edit_args(
    svc: &VirtualServiceSample,
    real: &RealServerSample,
    weight: i32,
) -> Result<Vec<String>, PlanError> {
    let method = match real.forward {
        Forward::Route | Forward::Local => "-g",
        Forward::Masq => "-m",
        Forward::Tunnel => "-i",
        Forward::Unknown => {
            return Err(PlanError::UnknownForward(
                SocketText(real.address, real.port).to_string(),
            ));
        }
    };
    let mut args = vec!["-e".to_string()];
    args.extend(service_args(&svc.key));
    args.push("-r".into());
    args.push(SocketText(real.address, real.port).to_string());
    args.push(method.to_string());
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
    Ok(args)
}

/// The options that name a virtual service to ipvsadm: `-t ADDR:PORT`, `-u …`,
/// `--sctp-service …`, or `-f MARK` (with `-6` for an IPv6 firewall-mark service).
pub(crate) fn service_args(key: &ServiceKey) -> Vec<String> {
    match *key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => vec![
            match protocol {
                Protocol::Tcp => "-t",
                Protocol::Udp => "-u",
                Protocol::Sctp => "--sctp-service",
            }
            .to_string(),
            SocketText(address, port).to_string(),
        ],
        ServiceKey::Fwmark { mark, family } => {
            let mut args = vec!["-f".to_string(), mark.to_string()];
            if family == AddressFamily::Inet6 {
                args.push("-6".into());
            }
            args
        }
    }
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
/// The first is the plain view, which [`TUN_INFO_VIEW`] replaces where ipvsadm has it.
pub(crate) const READ_VIEWS: [&[&str]; 3] = [
    &["-L", "-n", "--exact"],
    &["-L", "-n", "--exact", "--thresholds"],
    &["-L", "-n", "--exact", "--persistent-conn"],
];

/// The plain view with each real's tunnel encapsulation (ipvsadm 1.31 and later; older ones
/// refuse the option, and the plain view is read instead).
pub(crate) const TUN_INFO_VIEW: &[&str] = &["-L", "-n", "--exact", "--tun-info"];

/// Marks the end of one view in a script's output.
pub(crate) const VIEW_END: &str = "@@lbtop-view\n";
/// Printed by the checked edit before the view it reads back after changing the weight.
const APPLIED: &str = "@@lbtop-applied\n";
/// Printed by the checked edit when its checks refused the change, with the reason after it.
const REFUSED: &str = "@@lbtop-refused ";

/// How the kernel names an address and port in `/proc/net/ip_vs`: IPv4 as `%08X:%04X`, IPv6
/// as all eight groups in brackets.
fn proc_socket(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V4(a) => format!("{:08X}:{port:04X}", u32::from(a)),
        IpAddr::V6(a) => {
            let groups: Vec<String> = a.segments().iter().map(|g| format!("{g:04x}")).collect();
            format!("[{}]:{port:04X}", groups.join(":"))
        }
    }
}

/// A service's line in `/proc/net/ip_vs`, up to the scheduler: `TCP 0A4D0164:0050`,
/// `FWM 00000001` (a firewall mark's family is not shown there).
fn proc_service(key: &ServiceKey) -> String {
    match *key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => format!(
            "{} {}",
            protocol.as_str().to_uppercase(),
            proc_socket(address, port)
        ),
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark:08X}"),
    }
}

/// A POSIX sh script (for `/bin/sh -s`, after a line that sets `S` to the sudo prefix) that
/// re-checks and changes a weight in one exec, so that an action costs one round trip and as
/// few processes as it can (each ipvsadm is another `sudo` for a login that is not root):
///
/// 1. reads the real's forwarding method and weight, and whether another real of the service
///    has weight > 0, from `/proc/net/ip_vs` with shell builtins only. For a tunnel real (whose
///    encapsulation only ipvsadm's `--tun-info` shows), a firewall mark that /proc shows twice
///    (once per family), or anything /proc does not show, it reads them from ipvsadm's view of
///    the service instead (which fails, naming why, when the service does not exist);
/// 2. reads the real's thresholds from ipvsadm's `--thresholds` view of the service;
/// 3. refuses, printing `@@lbtop-refused REASON [WEIGHT]`, unless the weight is still the one
///    the operator saw and, for a drain that is not forced, another real still has weight > 0;
/// 4. runs `ipvsadm -e` with the forwarding flag, tunnel options and thresholds it read, then
///    prints ipvsadm's view of the service, read back after the change.
///
/// The script holds only constants and typed values (addresses, ports, numbers), and what it
/// reads from the router is matched against fixed patterns before the edit uses it: nothing
/// from the router or the operator is interpreted by the shell. Each ipvsadm reads `/dev/null`,
/// not the script's input: a `sudo` that logs input would otherwise take the rest of the script.
/// [`read_checked_edit`] reads its output.
pub fn checked_edit_script(change: &WeightChange, force: bool) -> String {
    let svc = service_args(&change.service).join(" ");
    let guard = u8::from(change.to == 0 && !force);
    let (real, from, to) = (change.real, change.from, change.to);
    let proc_real = proc_socket(real.address, real.port);
    let proc_svc = proc_service(&change.service);
    format!(
        r#"R='{real}' RP='{proc_real}' SP='{proc_svc}'
no() {{ echo "@@lbtop-refused $*"; exit 0; }}
f= t=n/a w= live=0 n=0 in=
if [ -r /proc/net/ip_vs ]; then
  while read -r a b c d e; do
    if [ "$a" = '->' ]; then
      [ -n "$in" ] || continue
      case $d in ''|*[!0-9]*) continue ;; esac
      if [ "$b" = "$RP" ]; then f=$c w=$d
      elif [ "$d" != 0 ]; then live=1
      fi
    elif [ "$a $b" = "$SP" ]; then in=1 n=$((n + 1))
    else in=
    fi
  done < /proc/net/ip_vs
fi
if [ "$n" != 1 ] || [ -z "$f" ] || [ "$f" = Tunnel ]; then
  f= w= live=0
  v=$($S ipvsadm -L -n --exact --tun-info {svc} </dev/null 2>/dev/null) || v=$($S ipvsadm -L -n --exact {svc} </dev/null) || exit
  ti=; case $v in *TunnelInfo*) ti=1 ;; esac
  while read -r a r c1 c2 c3 c4; do
    [ "$a" = '->' ] || continue
    [ -n "$ti" ] || {{ c3=$c2; c2=n/a; }}
    case $c3 in ''|*[!0-9]*) continue ;; esac
    if [ "$r" = "$R" ]; then f=$c1 t=$c2 w=$c3
    elif [ "$c3" != 0 ]; then live=1
    fi
  done <<EOF
$v
EOF
fi
[ -n "$f" ] || no real
h=$($S ipvsadm -L -n --exact --thresholds {svc} </dev/null) || exit
u= l=
while read -r a r c1 c2 c3; do
  if [ "$a" = '->' ] && [ "$r" = "$R" ]; then u=$c1 l=$c2; fi
done <<EOF
$h
EOF
case $f in Route|Local) F=-g ;; Masq) F=-m ;; Tunnel) F=-i ;; *) no forward ;; esac
for x in "$w" "$u" "$l"; do case $x in ''|*[!0-9]*) no number ;; esac; done
[ "$w" = {from} ] || no weight "$w"
[ {guard} = 0 ] || [ "$w" = 0 ] || [ $live = 1 ] || no last-live
set --
if [ $F = -i ]; then
  case $t in
    ipip|n/a) ;;
    gre:-c) set -- --tun-type gre --tun-nocsum ;;
    gre:+c) set -- --tun-type gre --tun-csum ;;
    gre:r+c) set -- --tun-type gre --tun-remcsum ;;
    gue:*:*)
      p=${{t#gue:}}; c=${{p#*:}}; p=${{p%%:*}}
      case $p in ''|*[!0-9]*) no tunnel ;; esac
      case $c in -c) c=--tun-nocsum ;; +c) c=--tun-csum ;; r+c) c=--tun-remcsum ;; *) no tunnel ;; esac
      set -- --tun-type gue --tun-port "$p" "$c" ;;
    *) no tunnel ;;
  esac
fi
$S ipvsadm -e {svc} -r "$R" $F "$@" -w {to} -x "$u" -y "$l" </dev/null || exit
echo '@@lbtop-applied'
$S ipvsadm -L -n --exact {svc} </dev/null
"#
    )
}

/// What a checked edit did, read from its output.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckedEdit {
    /// The change was made; `after` is the weight ipvsadm showed for the real just after it
    /// (`None` if the real was gone by then).
    Applied { after: Option<i32> },
    /// The router's checks refused the change, and nothing was changed.
    Refused(Refusal),
}

/// Why the router's checks refused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoReal,
    /// The weight is no longer the one the operator saw; this is the weight now.
    WeightChanged(i32),
    LastLiveServer,
    /// ipvsadm printed something the script does not take into an edit: a forwarding method,
    /// a number or tunnel settings.
    NotUnderstood(String),
}

impl Refusal {
    /// The same error any other router gives for the same refusal.
    pub fn error(&self, change: &WeightChange) -> Result<PlanError, String> {
        let (service, real) = (change.service.to_string(), change.real.to_string());
        Ok(match self {
            Self::NoReal => PlanError::NoSuchReal { service, real },
            Self::WeightChanged(now) => PlanError::WeightChanged {
                real,
                seen: change.from,
                now: *now,
            },
            Self::LastLiveServer => PlanError::LastLiveServer { service, real },
            Self::NotUnderstood(what) => {
                return Err(format!(
                    "the router's ipvsadm printed a {what} lbtop does not pass to ipvsadm -e \
                     for {real}; nothing was changed"
                ));
            }
        })
    }
}

/// Reads the output of [`checked_edit_script`].
pub fn read_checked_edit(out: &str, change: &WeightChange) -> Result<CheckedEdit, ParseError> {
    const WHAT: &str = "the router's checked edit";
    if let Some(reason) = out.strip_prefix(REFUSED) {
        let mut words = reason.split_ascii_whitespace();
        let refusal = match (words.next(), words.next()) {
            (Some("real"), _) => Refusal::NoReal,
            (Some("last-live"), _) => Refusal::LastLiveServer,
            (Some("weight"), Some(now)) => Refusal::WeightChanged(now.parse().map_err(|_| {
                ParseError::new(WHAT, 1, format!("bad weight {}", printable(now, 40)))
            })?),
            (Some("forward"), _) => Refusal::NotUnderstood("forwarding method".into()),
            (Some("number"), _) => Refusal::NotUnderstood("weight or threshold".into()),
            (Some("tunnel"), _) => Refusal::NotUnderstood("tunnel setting".into()),
            _ => {
                return Err(ParseError::new(
                    WHAT,
                    1,
                    format!("unknown refusal {}", printable(reason.trim(), 200)),
                ));
            }
        };
        return Ok(CheckedEdit::Refused(refusal));
    }
    let Some(view) = out.strip_prefix(APPLIED) else {
        return Err(ParseError::new(
            WHAT,
            1,
            "neither the change nor a refusal was printed",
        ));
    };
    let after = parse::ipvsadm_list(view)?
        .services
        .iter()
        .flat_map(|s| &s.reals)
        .find(|r| r.address == change.real.address && r.port == change.real.port)
        .and_then(|r| match r.columns {
            parse::IpvsadmRealColumns::Plain { weight, .. } => Some(weight),
            _ => None,
        });
    Ok(CheckedEdit::Applied { after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::parse_service;
    use std::net::IpAddr;

    const PWNED: &str = "\x1b]0;pwned\x07\x1b[2J";

    fn drain() -> WeightChange {
        WeightChange {
            kind: super::super::plan::ActionKind::Drain,
            service: parse_service("tcp:192.0.2.10:80").expect("service"),
            real: "10.0.0.2:80".parse().expect("real"),
            from: 3,
            to: 0,
        }
    }

    fn refused_message(reason: &str) -> String {
        match read_checked_edit(&format!("{REFUSED}{reason}"), &drain()) {
            Err(e) => e.to_string(),
            Ok(edit) => panic!("not an error: {edit:?}"),
        }
    }

    #[test]
    fn a_bad_weight_from_the_router_is_reported_with_its_escapes_escaped() {
        let m = refused_message(&format!("weight 3{PWNED}"));
        assert!(m.contains("bad weight"), "{m}");
        assert!(!m.contains('\x1b') && !m.contains('\x07'), "{m:?}");
        assert!(m.contains("\\u{1b}]0;pwned\\u{7}"), "{m}");
    }

    #[test]
    fn an_unknown_refusal_from_the_router_is_reported_with_its_escapes_escaped() {
        let m = refused_message(&format!("mystery {PWNED}"));
        assert!(m.contains("unknown refusal"), "{m}");
        assert!(!m.contains('\x1b') && !m.contains('\x07'), "{m:?}");
        assert!(m.contains("\\u{1b}[2J"), "{m}");
    }

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
            scheduler: Some("wlc".into()),
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
            edit_args(&svc("tcp:[2001:db8::10]:80"), &real(Forward::Masq), 0)
                .expect("known method")
                .join(" "),
            "-e -t [2001:db8::10]:80 -r [2001:db8::2]:80 -m -w 0 -x 100 -y 10"
        );
        assert_eq!(
            edit_args(&svc("udp:192.0.2.1:53"), &real(Forward::Tunnel), 7)
                .expect("known method")
                .join(" "),
            "-e -u 192.0.2.1:53 -r [2001:db8::2]:80 -i -w 7 -x 100 -y 10"
        );
        assert_eq!(
            edit_args(&svc("fwm:42"), &real(Forward::Route), 1)
                .expect("known method")
                .join(" "),
            "-e -f 42 -r [2001:db8::2]:80 -g -w 1 -x 100 -y 10"
        );
        let mut gue = real(Forward::Tunnel);
        gue.tunnel = Some(TunnelEncap {
            kind: TunnelKind::Gue,
            port: 6080,
            flags: 1,
        });
        assert_eq!(
            edit_args(&svc("tcp:192.0.2.1:80"), &gue, 2)
                .expect("known method")
                .join(" "),
            "-e -t 192.0.2.1:80 -r [2001:db8::2]:80 -i --tun-type gue --tun-port 6080 --tun-csum \
             -w 2 -x 100 -y 10"
        );
        assert!(
            edit_args(&svc("sctp:192.0.2.1:9"), &real(Forward::Route), 1)
                .expect("known method")
                .contains(&"--sctp-service".to_string())
        );
        let unknown = edit_args(&svc("tcp:192.0.2.1:80"), &real(Forward::Unknown), 1);
        assert!(
            matches!(&unknown, Err(PlanError::UnknownForward(r)) if r == "[2001:db8::2]:80"),
            "{unknown:?}"
        );
    }
}
