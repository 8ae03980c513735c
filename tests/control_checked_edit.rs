//! The one-exec re-check and edit that a router over SSH runs (`checked_edit_script`), run by
//! this machine's `/bin/sh` against a stand-in `ipvsadm` that prints ipvsadm 1.31's listing
//! formats from a small table and records every `-e`. The lab tests (`tests/lab_actions.rs`) run
//! the same script against the real ipvsadm and kernel; these cover the cases the lab cannot
//! make on demand: values the script must refuse, and an ipvsadm without `--tun-info`.

use std::io::Write;
use std::process::{Command, Stdio};

use lbtop::control::ipvsadm::{CheckedEdit, checked_edit_script, read_checked_edit};
use lbtop::control::plan::{ActionKind, WeightChange, parse_service};

/// Prints the service's views from `$FAKE/state` (lines `ADDR FORWARD TUNNEL WEIGHT UPPER
/// LOWER`); `-e` appends its arguments to `$FAKE/edits` and sets the weight.
const FAKE_IPVSADM: &str = r#"#!/bin/sh
st=$FAKE/state
svc='TCP  10.77.1.101:80 lc'
case " $* " in *" -f "*) svc='FWM  2 IPv6 wlc' ;; esac
case " $* " in
*" -e "*)
  echo "$*" >> "$FAKE/edits"
  while [ $# -gt 0 ]; do case $1 in -r) r=$2 ;; -w) w=$2 ;; esac; shift; done
  awk -v r="$r" -v w="$w" '$1 == r { $4 = w } 1' "$st" > "$st.new" && mv "$st.new" "$st"
  ;;
*" --tun-info "*)
  if [ -f "$FAKE/old-ipvsadm" ]; then echo "ipvsadm: unrecognized option '--tun-info'" >&2; exit 2; fi
  echo 'Prot LocalAddress:Port Scheduler Flags'
  echo '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn'
  echo "$svc"
  awk '{ printf "  -> %-28s %-7s %-13s %-6s %-10s %-10s\n", $1, $2, $3, $4, 0, 0 }' "$st"
  ;;
*" --thresholds "*)
  echo 'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn '
  echo '  -> RemoteAddress:Port'
  echo "$svc"
  awk '{ printf "  -> %-28s %-10s %-10s %-10s %-10s\n", $1, $5, $6, 0, 0 }' "$st"
  ;;
*)
  echo 'Prot LocalAddress:Port Scheduler Flags'
  echo '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'
  echo "$svc"
  awk '{ printf "  -> %-28s %-7s %-6s %-10s %-10s\n", $1, $2, $4, 0, 0 }' "$st"
  ;;
esac
"#;

struct Router {
    dir: tempfile::TempDir,
}

impl Router {
    fn new(state: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let fake = dir.path().join("ipvsadm");
        std::fs::write(&fake, FAKE_IPVSADM).expect("write the stand-in ipvsadm");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("state"), state).expect("write the table");
        Self { dir }
    }

    fn without_tun_info(self) -> Self {
        std::fs::write(self.dir.path().join("old-ipvsadm"), "").expect("mark");
        self
    }

    /// Runs the script as lbtop sends it (`S=` for root, then the script on stdin), and reads
    /// its output as lbtop does.
    fn run(&self, change: &WeightChange, force: bool) -> (String, CheckedEdit) {
        let stdout = self.output(change, force);
        let read = read_checked_edit(&stdout, change)
            .unwrap_or_else(|e| panic!("output not understood: {e}\n{stdout}"));
        (stdout, read)
    }

    fn output(&self, change: &WeightChange, force: bool) -> String {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut child = Command::new("/bin/sh")
            .arg("-s")
            .env("PATH", path)
            .env("FAKE", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /bin/sh");
        let script = format!("S=\n{}", checked_edit_script(change, force));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("send the script");
        let out = child.wait_with_output().expect("wait for /bin/sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "script failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn edits(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("edits"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn change(service: &str, real: &str, from: i32, to: i32) -> WeightChange {
    WeightChange {
        kind: if to == 0 {
            ActionKind::Drain
        } else {
            ActionKind::Reweight
        },
        service: parse_service(service).expect("service"),
        real: real.parse().expect("real"),
        from,
        to,
    }
}

const TABLE: &str = "10.77.0.11:80 Masq n/a 1 0 0
10.77.0.12:80 Masq n/a 3 40 4
10.77.0.97:80 Tunnel gre:-c 1 0 0
10.77.0.99:80 Tunnel gue:6080:+c 2 20 2
";

fn applied(read: &CheckedEdit) -> Option<i32> {
    match read {
        CheckedEdit::Applied { after, .. } => *after,
        CheckedEdit::Refused { reason, .. } => panic!("refused: {reason}"),
    }
}

fn refused(read: &CheckedEdit) -> &str {
    match read {
        CheckedEdit::Refused { reason, .. } => reason,
        CheckedEdit::Applied { .. } => panic!("applied, but should have been refused"),
    }
}

#[test]
fn the_edit_carries_the_forwarding_method_and_thresholds_it_read() {
    let r = Router::new(TABLE);
    let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 0);
    let (_, read) = r.run(&c, false);
    assert_eq!(
        applied(&read),
        Some(0),
        "the read-back shows the new weight"
    );
    assert_eq!(
        r.edits(),
        ["-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 0 -x 40 -y 4"]
    );
    // What was read before the change is the whole service, thresholds included.
    let CheckedEdit::Applied { before, .. } = read else {
        unreachable!()
    };
    let real = before[0]
        .reals
        .iter()
        .find(|x| x.port == 80 && x.address.to_string() == "10.77.0.12")
        .expect("real");
    assert_eq!(
        (real.weight, real.upper_threshold, real.lower_threshold),
        (3, 40, 4)
    );
}

#[test]
fn tunnel_reals_keep_their_encapsulation() {
    let r = Router::new(TABLE);
    r.run(&change("tcp:10.77.1.101:80", "10.77.0.99:80", 2, 5), false);
    r.run(&change("tcp:10.77.1.101:80", "10.77.0.97:80", 1, 0), false);
    assert_eq!(
        r.edits(),
        [
            "-e -t 10.77.1.101:80 -r 10.77.0.99:80 -i --tun-type gue --tun-port 6080 --tun-csum \
             -w 5 -x 20 -y 2",
            "-e -t 10.77.1.101:80 -r 10.77.0.97:80 -i --tun-type gre --tun-nocsum -w 0 -x 0 -y 0",
        ]
    );
}

#[test]
fn an_ipvsadm_without_tun_info_is_read_through_the_plain_view() {
    let r = Router::new(TABLE).without_tun_info();
    let (_, read) = r.run(&change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 7), false);
    assert_eq!(applied(&read), Some(7));
    assert_eq!(
        r.edits(),
        ["-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 7 -x 40 -y 4"]
    );
}

#[test]
fn a_weight_changed_since_the_operator_looked_is_refused() {
    let r = Router::new(TABLE);
    let (_, read) = r.run(&change("tcp:10.77.1.101:80", "10.77.0.12:80", 2, 0), false);
    assert_eq!(refused(&read), "weight");
    assert!(r.edits().is_empty());
}

#[test]
fn draining_the_last_live_real_is_refused_unless_forced() {
    let r = Router::new("10.77.0.11:80 Route n/a 0 0 0\n10.77.0.12:80 Route n/a 3 0 0\n");
    let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 0);
    assert_eq!(refused(&r.run(&c, false).1), "last-live");
    assert!(r.edits().is_empty());
    assert_eq!(applied(&r.run(&c, true).1), Some(0));
    assert_eq!(r.edits().len(), 1);
    // A reweight is never the last-server guard's business.
    let up = change("tcp:10.77.1.101:80", "10.77.0.11:80", 0, 2);
    assert_eq!(applied(&r.run(&up, false).1), Some(2));
}

#[test]
fn a_missing_real_is_refused() {
    let r = Router::new(TABLE);
    let (_, read) = r.run(&change("tcp:10.77.1.101:80", "10.77.0.50:80", 1, 0), false);
    assert_eq!(refused(&read), "real");
    assert!(r.edits().is_empty());
}

#[test]
fn an_ipv6_firewall_mark_service_is_named_with_its_family() {
    let r = Router::new("[fd77::11]:0 Route n/a 1 0 0\n[fd77::13]:0 Route n/a 1 5 1\n");
    let mut c = change("fwm:2", "[fd77::13]:0", 1, 0);
    c.service = lbtop::model::sample::ServiceKey::Fwmark {
        mark: 2,
        family: lbtop::model::sample::AddressFamily::Inet6,
    };
    assert_eq!(applied(&r.run(&c, false).1), Some(0));
    assert_eq!(r.edits(), ["-e -f 2 -6 -r [fd77::13]:0 -g -w 0 -x 5 -y 1"]);
}

#[test]
fn values_that_do_not_look_like_ipvsadm_output_are_never_used() {
    // Whatever the router prints, the edit only ever gets fixed flags and digits.
    for (state, reason) in [
        ("10.77.0.12:80 Masq;id n/a 3 0 0\n", "forward"),
        ("10.77.0.12:80 Masq n/a 3 4$(id) 0\n", "number"),
        ("10.77.0.12:80 Masq n/a 3 0 -1\n", "number"),
        ("10.77.0.12:80 Tunnel gue:$(id):+c 3 0 0\n", "tunnel"),
        ("10.77.0.12:80 Tunnel gue:80:;id 3 0 0\n", "tunnel"),
        ("10.77.0.12:80 Tunnel vxlan 3 0 0\n", "tunnel"),
    ] {
        let r = Router::new(&format!("10.77.0.11:80 Route n/a 1 0 0\n{state}"));
        let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 1);
        let out = r.output(&c, false);
        assert!(
            out.ends_with(&format!("@@lbtop-refused {reason}\n")),
            "{state}{out}"
        );
        assert!(r.edits().is_empty(), "{state}");
        // lbtop's own parser refuses the same views, naming what it did not understand.
        let e = read_checked_edit(&out, &c).expect_err(state);
        assert!(e.to_string().contains("ipvsadm"), "{e}");
    }
}
