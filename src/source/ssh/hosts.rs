//! Host lists as the operator types them: `[user@]host[:port]` (IPv6 as `[addr]:port`), ranges such
//! as `web[01-24].example.com`, and `@FILE` lists. Every name is checked against a safe pattern here,
//! at the edge, so nothing odd reaches a socket, a config lookup or a log line.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// The most hosts one range or one list may expand to; a typo such as `[1-100000]` is an error.
pub(crate) const MAX_HOSTS: usize = 10_000;

/// Why a host or a host list was refused. Each message names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsError {
    #[error("empty host")]
    Empty,
    #[error(
        "bad host {0:?}: use letters, digits, '.', '-' and '_' (or an IP address; IPv6 as [addr]:port)"
    )]
    BadHost(String),
    #[error("bad user in {0:?}: use letters, digits, '.', '-' and '_'")]
    BadUser(String),
    #[error("bad port in {0:?}: a number from 1 to 65535")]
    BadPort(String),
    #[error("bad range in {0:?}: write it as [01-24] with the first number not above the last")]
    BadRange(String),
    #[error("{0:?} expands to more than {MAX_HOSTS} hosts")]
    TooMany(String),
    #[error("cannot read host list {}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{}:{line}: {source}", path.display())]
    InFile {
        path: PathBuf,
        line: usize,
        source: Box<HostsError>,
    },
}

/// One host as written: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSpec {
    pub user: Option<String>,
    /// A name (an ssh_config alias or a DNS name) or an IP address literal, without brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl HostSpec {
    /// Parses `[user@]host[:port]`; an IPv6 address is written bare (no port) or as `[addr]:port`.
    pub fn parse(text: &str) -> Result<HostSpec, HostsError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HostsError::Empty);
        }
        let (user, rest) = match text.rsplit_once('@') {
            Some((u, r)) => {
                if !is_safe_user(u) {
                    return Err(HostsError::BadUser(text.to_string()));
                }
                (Some(u.to_string()), r)
            }
            None => (None, text),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let Some((addr, after)) = inner.split_once(']') else {
                return Err(HostsError::BadHost(text.to_string()));
            };
            let port = match after {
                "" => None,
                p => Some(parse_port(p.strip_prefix(':').unwrap_or("x"), text)?),
            };
            // Brackets hold an IPv6 address, or (as OpenSSH allows) any host.
            (addr.to_string(), port)
        } else if rest.parse::<Ipv6Addr>().is_ok() {
            (rest.to_string(), None)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(parse_port(p, text)?)),
                None => (rest.to_string(), None),
            }
        };
        if !is_safe_host(&host) {
            return Err(HostsError::BadHost(text.to_string()));
        }
        Ok(HostSpec { user, host, port })
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for HostSpec {
    /// As it would be typed again: `user@host:port`, IPv6 bracketed when a port follows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        match self.port {
            Some(p) if self.host.contains(':') => write!(f, "[{}]:{p}", self.host),
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn parse_port(p: &str, whole: &str) -> Result<u16, HostsError> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(HostsError::BadPort(whole.to_string())),
    }
}

/// A user name: letters, digits, `.`, `-`, `_`, not starting with `-`.
pub(crate) fn is_safe_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A host name (letters, digits, `.`, `-`, `_`, not starting with `-` or `.`) or an IP address.
pub(crate) fn is_safe_host(s: &str) -> bool {
    if s.parse::<IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// Expands numeric ranges: `web[01-03].example.com` → `web01…`, `web02…`, `web03…` (the width
/// of the first number is kept when it has a leading zero). Several ranges multiply out. Brackets
/// that do not hold `N-M` (an IPv6 address) are left as they are.
pub(crate) fn expand_ranges(text: &str) -> Result<Vec<String>, HostsError> {
    let mut out = vec![String::new()];
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        let Some((a, b)) = inner.split_once('-') else {
            for s in &mut out {
                s.push_str(&rest[..=close]);
            }
            rest = &rest[close + 1..];
            continue;
        };
        let numeric =
            |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|c| c.is_ascii_digit());
        if !numeric(a) || !numeric(b) {
            if inner.contains(':') {
                // An IPv6 address such as [2001:db8::1-2] is not a range; keep it.
                for s in &mut out {
                    s.push_str(&rest[..=close]);
                }
                rest = &rest[close + 1..];
                continue;
            }
            return Err(HostsError::BadRange(text.to_string()));
        }
        let (Ok(lo), Ok(hi)) = (a.parse::<u64>(), b.parse::<u64>()) else {
            return Err(HostsError::BadRange(text.to_string()));
        };
        if lo > hi {
            return Err(HostsError::BadRange(text.to_string()));
        }
        let count = usize::try_from(hi - lo + 1).unwrap_or(usize::MAX);
        if count.saturating_mul(out.len()) > MAX_HOSTS {
            return Err(HostsError::TooMany(text.to_string()));
        }
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        let prefix = &rest[..open];
        let mut next = Vec::with_capacity(out.len() * count);
        for s in &out {
            for n in lo..=hi {
                next.push(format!("{s}{prefix}{n:0width$}"));
            }
        }
        out = next;
        rest = &rest[close + 1..];
    }
    for s in &mut out {
        s.push_str(rest);
    }
    Ok(out)
}

/// Splits a comma list, keeping commas inside brackets (none are valid there, but the error is then
/// about the bracket, not a half host).
fn split_commas(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A `--nodes` list: comma-separated entries, each a host, a range, or `@FILE`. A file holds hosts
/// separated by whitespace or commas; `#` starts a comment. Relative file paths are taken from
/// `base` (the working directory when `None`). Duplicates are dropped, first one kept.
pub(crate) fn expand_node_list(
    entries: &[String],
    base: Option<&Path>,
) -> Result<Vec<HostSpec>, HostsError> {
    let mut out: Vec<HostSpec> = Vec::new();
    for entry in entries {
        for part in split_commas(entry) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if let Some(file) = part.strip_prefix('@') {
                let path = match base {
                    Some(b) if Path::new(file).is_relative() => b.join(file),
                    _ => PathBuf::from(file),
                };
                out.extend(read_host_file(&path)?);
            } else {
                for h in expand_ranges(part)? {
                    out.push(HostSpec::parse(&h)?);
                }
            }
            if out.len() > MAX_HOSTS {
                return Err(HostsError::TooMany(entry.clone()));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|h| seen.insert(h.clone()));
    Ok(out)
}

/// Reads an `@FILE` host list.
pub(crate) fn read_host_file(path: &Path) -> Result<Vec<HostSpec>, HostsError> {
    let text = crate::fsutil::read_text(path, crate::fsutil::SMALL_FILE_BYTES).map_err(|e| {
        HostsError::File {
            path: path.to_path_buf(),
            message: e.problem(),
        }
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            let wrap = |e: HostsError| HostsError::InFile {
                path: path.to_path_buf(),
                line: i + 1,
                source: Box::new(e),
            };
            if word.starts_with('@') {
                return Err(wrap(HostsError::BadHost(word.to_string())));
            }
            for h in expand_ranges(word).map_err(wrap)? {
                out.push(HostSpec::parse(&h).map_err(wrap)?);
            }
            if out.len() > MAX_HOSTS {
                return Err(wrap(HostsError::TooMany(word.to_string())));
            }
        }
    }
    Ok(out)
}

/// Names for a list of hosts as the node pane shows them: the host, or `host:port` where two
/// entries share a host.
pub(crate) fn display_names(hosts: &[HostSpec]) -> Vec<String> {
    let mut count = std::collections::HashMap::new();
    for h in hosts {
        *count.entry(h.host.as_str()).or_insert(0usize) += 1;
    }
    hosts
        .iter()
        .map(|h| {
            if count.get(h.host.as_str()).copied().unwrap_or(0) > 1 {
                HostSpec {
                    user: None,
                    ..h.clone()
                }
                .to_string()
            } else {
                h.host.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(user: Option<&str>, host: &str, port: Option<u16>) -> HostSpec {
        HostSpec {
            user: user.map(String::from),
            host: host.into(),
            port,
        }
    }

    #[test]
    fn user_host_port_and_ipv6_forms_parse() {
        assert_eq!(HostSpec::parse("web1"), Ok(spec(None, "web1", None)));
        assert_eq!(
            HostSpec::parse("root@web1:2222"),
            Ok(spec(Some("root"), "web1", Some(2222)))
        );
        assert_eq!(
            HostSpec::parse("[2001:db8::1]:2222"),
            Ok(spec(None, "2001:db8::1", Some(2222)))
        );
        assert_eq!(
            HostSpec::parse("ops@2001:db8::1"),
            Ok(spec(Some("ops"), "2001:db8::1", None))
        );
        assert_eq!(
            HostSpec::parse("[10.0.0.1]"),
            Ok(spec(None, "10.0.0.1", None))
        );
        assert_eq!(
            HostSpec::parse("root@[fd00::2]:22").map(|h| h.to_string()),
            Ok("root@[fd00::2]:22".to_string())
        );
    }

    #[test]
    fn unsafe_names_ports_and_users_are_refused() {
        for bad in [
            "web1;reboot",
            "-oProxyCommand=x",
            "web 1",
            "$(id)",
            "a@b@c",
            "web1:0",
            "web1:99999",
            "web1:22x",
            "[::1]x",
            "ro ot@web1",
            "",
        ] {
            assert!(HostSpec::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ranges_expand_with_their_width() {
        assert_eq!(
            expand_ranges("web[01-03].example.com"),
            Ok(vec![
                "web01.example.com".into(),
                "web02.example.com".into(),
                "web03.example.com".into()
            ])
        );
        assert_eq!(
            expand_ranges("r[1-2]n[8-9]"),
            Ok(vec![
                "r1n8".into(),
                "r1n9".into(),
                "r2n8".into(),
                "r2n9".into()
            ])
        );
        assert_eq!(expand_ranges("n[9-11]").map(|v| v.len()), Ok(3));
        assert_eq!(
            expand_ranges("[2001:db8::1]:22"),
            Ok(vec!["[2001:db8::1]:22".into()])
        );
        assert!(expand_ranges("web[3-1]").is_err());
        assert!(expand_ranges("web[a-b]").is_err());
        assert!(matches!(
            expand_ranges("web[1-100000]"),
            Err(HostsError::TooMany(_))
        ));
    }

    #[test]
    fn node_lists_mix_hosts_ranges_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("nodes.txt"),
            "# the web tier\nweb[1-2]  db1:2222\n\n10.0.0.9, root@10.0.0.10 # last\n",
        )
        .expect("write");
        let got = expand_node_list(&["a,[::1]:2200,@nodes.txt,a".to_string()], Some(dir.path()))
            .expect("list");
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "a",
                "[::1]:2200",
                "web1",
                "web2",
                "db1:2222",
                "10.0.0.9",
                "root@10.0.0.10"
            ]
        );
        let err = expand_node_list(&["@nodes-missing.txt".into()], Some(dir.path()))
            .expect_err("missing file");
        assert!(err.to_string().contains("nodes-missing.txt"), "{err}");
        std::fs::write(dir.path().join("bad.txt"), "web1\nweb;2\n").expect("write");
        let err = expand_node_list(&["@bad.txt".into()], Some(dir.path())).expect_err("bad");
        assert!(err.to_string().contains("bad.txt:2"), "{err}");
    }

    #[test]
    fn names_gain_a_port_only_where_hosts_repeat() {
        let hosts = [
            spec(None, "127.0.0.1", Some(2201)),
            spec(Some("root"), "127.0.0.1", Some(2202)),
            spec(None, "web1", None),
        ];
        assert_eq!(
            display_names(&hosts),
            ["127.0.0.1:2201", "127.0.0.1:2202", "web1"]
        );
    }
}
