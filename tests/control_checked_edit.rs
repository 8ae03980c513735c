//! The one-exec re-check and edit that a router over SSH runs (`checked_edit_script`), run by
//! this machine's `/bin/sh` against a stand-in `ipvsadm` that prints ipvsadm 1.31's listing
//! formats from a small table and records every `-e`. The lab tests (`tests/lab_actions.rs`) run
//! the same script against the real ipvsadm and kernel; these cover the cases the lab cannot
//! make on demand: values the script must refuse, and an ipvsadm without `--tun-info`.

use std::io::Write;
use std::process::{Command, Stdio};

use lbtop::control::ipvsadm::{CheckedEdit, Refusal, checked_edit_script, read_checked_edit};
use lbtop::control::plan::{ActionKind, WeightChange, parse_service};

/// Prints the service's views from `$FAKE/state` (lines `ADDR PROC_ADDR FORWARD TUNNEL WEIGHT
/// UPPER LOWER`), and writes the kernel's `/proc/net/ip_vs` form of it to `$FAKE/ip_vs`; `-e`
/// appends its arguments to `$FAKE/edits` and sets the weight.
const FAKE_IPVSADM: &str = r#"#!/bin/sh
st=$FAKE/state
# As a sudo that logs input would: whatever is on its stdin is read to the end.
if [ -f "$FAKE/eats-input" ]; then cat >/dev/null; fi
svc='TCP  10.77.1.101:80 lc' psvc='TCP  0A4D0165:0050 lc'
case " $* " in *" -f "*) svc='FWM  2 IPv6 wlc' psvc='FWM  00000002 wlc' ;; esac
proc() {
  { echo 'IP Virtual Server version 1.2.1 (size=4096)'
    echo 'Prot LocalAddress:Port Scheduler Flags'
    echo '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn'
    echo 'TCP  0A4D0164:0050 wlc'
    echo '  -> 0A4D000C:0050      Route   5      0          0'
    echo "$psvc"
    awk '{ printf "  -> %s      %-7s %-6s %-10s %-10s\n", $2, $3, $5, 0, 0 }' "$st"
  } > "$FAKE/ip_vs"
}
case " $* " in *" --write-proc "*) ;; *) echo "$*" >> "$FAKE/calls" ;; esac
case " $* " in
*" --write-proc "*) proc ;;
*" -e "*)
  echo "$*" >> "$FAKE/edits"
  while [ $# -gt 0 ]; do case $1 in -r) r=$2 ;; -w) w=$2 ;; esac; shift; done
  awk -v r="$r" -v w="$w" '$1 == r { $5 = w } 1' "$st" > "$st.new" && mv "$st.new" "$st"
  proc
  ;;
*" --tun-info "*)
  if [ -f "$FAKE/old-ipvsadm" ]; then echo "ipvsadm: unrecognized option '--tun-info'" >&2; exit 2; fi
  echo 'Prot LocalAddress:Port Scheduler Flags'
  echo '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn'
  echo "$svc"
  awk '{ printf "  -> %-28s %-7s %-13s %-6s %-10s %-10s\n", $1, $3, $4, $5, 0, 0 }' "$st"
  ;;
*" --thresholds "*)
  echo 'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn '
  echo '  -> RemoteAddress:Port'
  echo "$svc"
  awk '{ printf "  -> %-28s %-10s %-10s %-10s %-10s\n", $1, $6, $7, 0, 0 }' "$st"
  ;;
*)
  echo 'Prot LocalAddress:Port Scheduler Flags'
  echo '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn'
  echo "$svc"
  awk '{ printf "  -> %-28s %-7s %-6s %-10s %-10s\n", $1, $3, $5, 0, 0 }' "$st"
  ;;
esac
"#;

struct Router {
    dir: tempfile::TempDir,
    /// Whether the script reads the stand-in `/proc/net/ip_vs` (else, as on a machine without
    /// IPVS, it finds none and reads ipvsadm's views only).
    proc: bool,
    /// The shell the script is fed to.
    shell: &'static str,
}

impl Router {
    /// A router whose service holds `state` (lines `ADDR PROC_ADDR FORWARD TUNNEL WEIGHT UPPER
    /// LOWER`).
    fn new(state: &str, proc: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let fake = dir.path().join("ipvsadm");
        std::fs::write(&fake, FAKE_IPVSADM).expect("write the stand-in ipvsadm");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        std::fs::write(dir.path().join("state"), state).expect("write the table");
        let r = Self {
            dir,
            proc,
            shell: "/bin/sh",
        };
        // Through sh, not exec: a child another test thread forks while this one writes the
        // file can hold it open for writing a moment longer, and exec would fail with ETXTBSY.
        let ok = Command::new("/bin/sh")
            .arg(&fake)
            .arg("--write-proc")
            .env("FAKE", r.dir.path())
            .status()
            .expect("run the stand-in");
        assert!(ok.success());
        r
    }

    /// bash as the login's `sh` (it reads a script from a pipe a byte at a time, so what a
    /// command reads from its stdin is the script's rest), and an ipvsadm that reads its stdin.
    fn bash_and_an_ipvsadm_that_reads_input(mut self) -> Self {
        std::fs::write(self.dir.path().join("eats-input"), "").expect("mark");
        self.shell = "/bin/bash";
        self
    }

    fn without_tun_info(self) -> Self {
        std::fs::write(self.dir.path().join("old-ipvsadm"), "").expect("mark");
        self
    }

    /// Runs the script as lbtop sends it (`S=` for root, then the script on stdin), and reads
    /// its output as lbtop does.
    fn run(&self, change: &WeightChange, force: bool) -> CheckedEdit {
        let stdout = self.output(change, force);
        read_checked_edit(&stdout, change)
            .unwrap_or_else(|e| panic!("output not understood: {e}\n{stdout}"))
    }

    fn output(&self, change: &WeightChange, force: bool) -> String {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut script = format!("S=\n{}", checked_edit_script(change, force));
        assert!(script.contains("/proc/net/ip_vs"));
        let ip_vs = if self.proc {
            self.dir.path().join("ip_vs").display().to_string()
        } else {
            self.dir.path().join("no-ipvs-here").display().to_string()
        };
        script = script.replace("/proc/net/ip_vs", &ip_vs);
        let mut child = Command::new(self.shell)
            .arg("-s")
            .env("PATH", path)
            .env("FAKE", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /bin/sh");
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

    /// The lines of one of the stand-in's logs (none when it was never written).
    fn log(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every ipvsadm command line the script ran.
    fn calls(&self) -> Vec<String> {
        self.log("calls")
    }

    /// The `ipvsadm -e` command lines.
    fn edits(&self) -> Vec<String> {
        self.log("edits")
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

const TABLE: &str = "10.77.0.11:80 0A4D000B:0050 Masq n/a 1 0 0
10.77.0.12:80 0A4D000C:0050 Masq n/a 3 40 4
10.77.0.97:80 0A4D0061:0050 Tunnel gre:-c 1 0 0
10.77.0.99:80 0A4D0063:0050 Tunnel gue:6080:+c 2 20 2
";

fn applied(read: &CheckedEdit) -> Option<i32> {
    match read {
        CheckedEdit::Applied { after } => *after,
        CheckedEdit::Refused(r) => panic!("refused: {r:?}"),
    }
}

fn refused(read: &CheckedEdit) -> &Refusal {
    match read {
        CheckedEdit::Refused(r) => r,
        CheckedEdit::Applied { .. } => panic!("applied, but should have been refused"),
    }
}

#[test]
fn ipvsadm_reading_its_input_takes_none_of_the_script() {
    for proc in [true, false] {
        let r = Router::new(TABLE, proc).bash_and_an_ipvsadm_that_reads_input();
        let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 0);
        assert_eq!(applied(&r.run(&c, false)), Some(0), "proc: {proc}");
        assert_eq!(
            r.edits(),
            ["-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 0 -x 40 -y 4"],
            "proc: {proc}"
        );
    }
}

#[test]
fn the_edit_carries_the_forwarding_method_and_thresholds_it_read() {
    for proc in [true, false] {
        let r = Router::new(TABLE, proc);
        let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 0);
        assert_eq!(
            applied(&r.run(&c, false)),
            Some(0),
            "the read-back shows it"
        );
        assert_eq!(
            r.edits(),
            ["-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 0 -x 40 -y 4"],
            "proc: {proc}"
        );
        // With /proc the method and weight cost no process: ipvsadm runs three times (the
        // thresholds, the edit, the read-back); without it, once more for its view.
        let mut expected = vec![
            "-L -n --exact --thresholds -t 10.77.1.101:80",
            "-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 0 -x 40 -y 4",
            "-L -n --exact -t 10.77.1.101:80",
        ];
        if !proc {
            expected.insert(0, "-L -n --exact --tun-info -t 10.77.1.101:80");
        }
        assert_eq!(r.calls(), expected, "proc: {proc}");
    }
}

#[test]
fn tunnel_reals_keep_their_encapsulation() {
    for proc in [true, false] {
        let r = Router::new(TABLE, proc);
        r.run(&change("tcp:10.77.1.101:80", "10.77.0.99:80", 2, 5), false);
        r.run(&change("tcp:10.77.1.101:80", "10.77.0.97:80", 1, 0), false);
        assert_eq!(
            r.edits(),
            [
                "-e -t 10.77.1.101:80 -r 10.77.0.99:80 -i --tun-type gue --tun-port 6080 \
                 --tun-csum -w 5 -x 20 -y 2",
                "-e -t 10.77.1.101:80 -r 10.77.0.97:80 -i --tun-type gre --tun-nocsum -w 0 -x 0 \
                 -y 0",
            ],
            "proc: {proc}"
        );
    }
}

#[test]
fn an_ipvsadm_without_tun_info_is_read_through_the_plain_view() {
    let r = Router::new(TABLE, false).without_tun_info();
    let read = r.run(&change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 7), false);
    assert_eq!(applied(&read), Some(7));
    assert_eq!(
        r.edits(),
        ["-e -t 10.77.1.101:80 -r 10.77.0.12:80 -m -w 7 -x 40 -y 4"]
    );
}

#[test]
fn a_weight_changed_since_the_operator_looked_is_refused() {
    for proc in [true, false] {
        let r = Router::new(TABLE, proc);
        let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 2, 0);
        let read = r.run(&c, false);
        assert_eq!(refused(&read), &Refusal::WeightChanged(3), "proc: {proc}");
        assert!(r.edits().is_empty());
        let e = refused(&read).error(&c).expect("a plan error").to_string();
        assert!(
            e.contains("changed on the router since you looked (2 → 3)"),
            "{e}"
        );
    }
}

#[test]
fn draining_the_last_live_real_is_refused_unless_forced() {
    for proc in [true, false] {
        let r = Router::new(
            "10.77.0.11:80 0A4D000B:0050 Route n/a 0 0 0\n\
             10.77.0.12:80 0A4D000C:0050 Route n/a 3 0 0\n",
            proc,
        );
        // The decoy service in /proc has 10.77.0.12:80 with weight 5: it must not count.
        let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 0);
        assert_eq!(refused(&r.run(&c, false)), &Refusal::LastLiveServer);
        assert!(r.edits().is_empty());
        assert_eq!(applied(&r.run(&c, true)), Some(0));
        assert_eq!(r.edits().len(), 1);
        // A reweight is never the last-server guard's business.
        let up = change("tcp:10.77.1.101:80", "10.77.0.11:80", 0, 2);
        assert_eq!(applied(&r.run(&up, false)), Some(2), "proc: {proc}");
    }
}

#[test]
fn a_missing_real_is_refused() {
    for proc in [true, false] {
        let r = Router::new(TABLE, proc);
        let c = change("tcp:10.77.1.101:80", "10.77.0.50:80", 1, 0);
        assert_eq!(refused(&r.run(&c, false)), &Refusal::NoReal, "proc: {proc}");
        assert!(r.edits().is_empty());
    }
}

#[test]
fn an_ipv6_firewall_mark_service_is_named_with_its_family() {
    for proc in [true, false] {
        let r = Router::new(
            "[fd77::11]:0 [fd77:0000:0000:0000:0000:0000:0000:0011]:0000 Route n/a 1 0 0\n\
             [fd77::13]:0 [fd77:0000:0000:0000:0000:0000:0000:0013]:0000 Route n/a 1 5 1\n",
            proc,
        );
        let mut c = change("fwm:2", "[fd77::13]:0", 1, 0);
        c.service = lbtop::model::sample::ServiceKey::Fwmark {
            mark: 2,
            family: lbtop::model::sample::AddressFamily::Inet6,
        };
        assert_eq!(applied(&r.run(&c, false)), Some(0));
        assert_eq!(
            r.edits(),
            ["-e -f 2 -6 -r [fd77::13]:0 -g -w 0 -x 5 -y 1"],
            "proc: {proc}"
        );
    }
}

#[test]
fn values_that_do_not_look_like_ipvsadm_output_are_never_used() {
    // Whatever the router prints, the edit only ever gets fixed flags and digits.
    for proc in [true, false] {
        for (state, reason) in [
            ("Masq;id n/a 3 0 0", "forward"),
            ("Masq n/a 3 4$(id) 0", "number"),
            ("Masq n/a 3 0 -1", "number"),
            ("Tunnel gue:$(id):+c 3 0 0", "tunnel"),
            ("Tunnel gue:80:;id 3 0 0", "tunnel"),
            ("Tunnel vxlan 3 0 0", "tunnel"),
        ] {
            let r = Router::new(
                &format!(
                    "10.77.0.11:80 0A4D000B:0050 Route n/a 1 0 0\n\
                     10.77.0.12:80 0A4D000C:0050 {state}\n"
                ),
                proc,
            );
            let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 1);
            let out = r.output(&c, false);
            assert_eq!(out, format!("@@lbtop-refused {reason}\n"), "{state}");
            assert!(r.edits().is_empty(), "{state}");
            let read = read_checked_edit(&out, &c).expect("a refusal");
            let e = refused(&read).error(&c).expect_err("not a plan error");
            assert!(e.contains("nothing was changed"), "{e}");
        }
    }
}

#[test]
fn output_that_is_neither_a_change_nor_a_refusal_is_an_error() {
    let c = change("tcp:10.77.1.101:80", "10.77.0.12:80", 3, 1);
    for out in [
        "",
        "garbage\n",
        "@@lbtop-refused weight x\n",
        "@@lbtop-refused why\n",
    ] {
        assert!(read_checked_edit(out, &c).is_err(), "{out:?}");
    }
}
