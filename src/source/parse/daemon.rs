//! `ipvsadm -L -n --daemon`: the connection-sync daemons running on a router, one line each,
//!
//! ```text
//! master sync daemon (mcast=eth0, syncid=77)
//! backup sync daemon (mcast=eth0, syncid=77, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)
//! ```
//!
//! (ipvsadm 1.31 adds the fields after `syncid` where the kernel has them). The text comes from
//! another host: at most [`MAX_LINES`] lines of at most [`MAX_LINE`] bytes are looked at, a line
//! that is not a daemon's is an error (sudo's or ipvsadm's complaint, not an empty list), and the
//! interface name is kept only when it is one the kernel could have (15 bytes of a name's
//! characters).

use crate::model::sample::{SyncDaemon, SyncRole};

use super::ParseError;

const INPUT: &str = "ipvsadm --daemon";
/// The most lines read: the kernel runs at most one master and one backup.
pub const MAX_LINES: usize = 4;
/// The longest line taken.
pub const MAX_LINE: usize = 256;

/// The daemons `text` lists, master first; empty when none runs.
pub fn ipvsadm_daemon(text: &str) -> Result<Vec<SyncDaemon>, ParseError> {
    let mut out: Vec<SyncDaemon> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if n > MAX_LINES {
            return Err(ParseError::new(INPUT, n, "more lines than sync daemons"));
        }
        if line.len() > MAX_LINE {
            return Err(ParseError::new(INPUT, n, "line too long"));
        }
        let d = daemon_line(line).ok_or_else(|| {
            ParseError::new(
                INPUT,
                n,
                format!(
                    "not a sync daemon: {:?}",
                    crate::model::text::printable(line, 60)
                ),
            )
        })?;
        if out.iter().any(|o| o.role == d.role) {
            return Err(ParseError::new(
                INPUT,
                n,
                "a second daemon of the same role",
            ));
        }
        out.push(d);
    }
    out.sort_by_key(|d| d.role);
    Ok(out)
}

/// One `ROLE sync daemon (mcast=IF, syncid=N, ...)` line.
fn daemon_line(line: &str) -> Option<SyncDaemon> {
    let (role, rest) = if let Some(r) = line.strip_prefix("master sync daemon (") {
        (SyncRole::Master, r)
    } else if let Some(r) = line.strip_prefix("backup sync daemon (") {
        (SyncRole::Backup, r)
    } else {
        return None;
    };
    let inner = rest.strip_suffix(')')?;
    let mut mcast_ifn = None;
    let mut syncid = None;
    for field in inner.split(", ") {
        let (k, v) = field.split_once('=')?;
        match k {
            "mcast" if mcast_ifn.is_none() && ifname(v) => mcast_ifn = Some(v.to_string()),
            "syncid" if syncid.is_none() => syncid = Some(v.parse::<u32>().ok()?),
            "mcast" | "syncid" => return None,
            // maxlen, group, port, ttl: not used.
            _ => {}
        }
    }
    Some(SyncDaemon {
        role,
        mcast_ifn: mcast_ifn?,
        syncid: syncid?,
    })
}

/// A name the kernel accepts for an interface: 1 to 15 bytes, no `/`, `:`, space or control.
fn ifname(v: &str) -> bool {
    (1..=15).contains(&v.len())
        && v.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':' && c != ',' && c != ')')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(role: SyncRole, ifn: &str, id: u32) -> SyncDaemon {
        SyncDaemon {
            role,
            mcast_ifn: ifn.into(),
            syncid: id,
        }
    }

    #[test]
    fn both_forms_of_the_daemon_lines_are_read_master_first() {
        // ipvsadm 1.31 on a 6.x kernel (the lab's keepalived sets the daemons).
        let text = "backup sync daemon (mcast=eth0, syncid=77, maxlen=1472, group=224.0.0.81, \
                    port=8848, ttl=1)\nmaster sync daemon (mcast=eth0, syncid=77)\n";
        assert_eq!(
            ipvsadm_daemon(text),
            Ok(vec![
                d(SyncRole::Master, "eth0", 77),
                d(SyncRole::Backup, "eth0", 77)
            ])
        );
        assert_eq!(ipvsadm_daemon(""), Ok(Vec::new()));
        assert_eq!(ipvsadm_daemon("\n\n"), Ok(Vec::new()));
    }

    #[test]
    fn the_lab_keepalived_pairs_daemons_are_read() {
        let fixture = |name: &str| {
            let path = format!(
                "{}/tests/fixtures/ipvs/ipvsadm-Ln-daemon-{name}.txt",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        assert_eq!(
            ipvsadm_daemon(&fixture("master")),
            Ok(vec![d(SyncRole::Master, "eth0", 77)])
        );
        assert_eq!(
            ipvsadm_daemon(&fixture("backup")),
            Ok(vec![d(SyncRole::Backup, "eth0", 77)])
        );
        assert_eq!(
            ipvsadm_daemon(&fixture("both")),
            Ok(vec![
                d(SyncRole::Master, "eth0", 77),
                d(SyncRole::Backup, "eth0", 78)
            ])
        );
    }

    #[test]
    fn garbage_is_an_error_naming_the_line_never_a_daemon() {
        for bad in [
            "sudo: a password is required\n",
            "master sync daemon (mcast=eth0, syncid=77",
            "master sync daemon (mcast=eth0)\n",
            "master sync daemon (syncid=77)\n",
            "master sync daemon (mcast=eth0, syncid=-1)\n",
            "master sync daemon (mcast=eth0, syncid=99999999999)\n",
            "master sync daemon (mcast=eth0, syncid=1, syncid=2)\n",
            "master sync daemon (mcast=\x1b[2Jeth0, syncid=1)\n",
            "master sync daemon (mcast=averyveryverylongname, syncid=1)\n",
            "master sync daemon (mcast=, syncid=1)\n",
            "master sync daemon (mcast=eth0,syncid=1)\n",
            "master sync daemon (mcast=eth0, syncid=1)\nmaster sync daemon (mcast=eth1, syncid=2)\n",
            "\u{0}\u{1}\u{ff}",
        ] {
            let e = ipvsadm_daemon(bad).expect_err(bad);
            assert!(e.line >= 1, "{e}");
            assert!(!e.to_string().chars().any(char::is_control), "{bad:?}: {e}");
        }
        let long = format!("master sync daemon (mcast=eth0, syncid=1{})", " ".repeat(0))
            + &", x=1".repeat(60);
        assert!(ipvsadm_daemon(&format!("{long})")).is_err());
        let many = "\nmaster sync daemon (mcast=eth0, syncid=1)".repeat(3);
        assert!(ipvsadm_daemon(&format!("x\n{many}\nmore\n")).is_err());
    }
}
