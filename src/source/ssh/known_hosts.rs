//! `known_hosts` as OpenSSH reads and writes it (sshd(8), "SSH_KNOWN_HOSTS FILE FORMAT"):
//! comma-separated host patterns with `*`/`?` wildcards and `!` negation, `[host]:port` for ports
//! other than 22, hashed `|1|salt|hash` names (HMAC-SHA1), and the `@revoked` marker.
//! `@cert-authority` lines are skipped: lbtop does not take host certificates.
//!
//! A line that does not parse is skipped (and logged), as OpenSSH does, so one bad line never
//! hides the rest of the file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// What the files say about a host's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds exactly this key.
    Known,
    /// No line for this host holds a key of this type. `other_types` lists key types that are
    /// recorded for the host (OpenSSH treats such a host as new too).
    Unknown { other_types: Vec<String> },
    /// A line for this host holds a different key of the same type.
    Changed { path: PathBuf, line: usize },
    /// The key is marked `@revoked`.
    Revoked { path: PathBuf, line: usize },
}

/// The name a host is recorded under: the host (or its `HostKeyAlias`), as `[host]:port` when the
/// port is not 22, in lower case.
pub(crate) fn lookup_name(host: &str, port: u16, alias: Option<&str>) -> String {
    match alias {
        Some(a) => a.to_ascii_lowercase(),
        None if port == 22 => host.to_ascii_lowercase(),
        None => format!("[{}]:{port}", host.to_ascii_lowercase()),
    }
}

/// One usable line of a file.
struct Entry<'a> {
    revoked: bool,
    patterns: &'a str,
    key: PublicKey,
}

/// Splits a line into its marker, host patterns and key; `None` for comments, blank lines,
/// `@cert-authority` lines and lines that do not parse.
fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let mut revoked = false;
    if let Some(marker) = first.strip_prefix('@') {
        match marker {
            "revoked" => revoked = true,
            _ => return None,
        }
        first = fields.next()?;
    }
    let key_type = fields.next()?;
    let key_data = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{key_type} {key_data}")).ok()?;
    Some(Entry {
        revoked,
        patterns: first,
        key,
    })
}

/// Whether `name` (already lower case) matches a comma-separated pattern list: some positive
/// pattern matches and no negated one does.
pub(crate) fn host_matches(name: &str, patterns: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            if hashed_matches(name, hashed) {
                matched = true;
            }
            continue;
        }
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob(&pattern.to_ascii_lowercase(), name) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `salt|hash` (both base64) of an `|1|` entry.
fn hashed_matches(name: &str, salt_and_hash: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (
        BASE64.decode(salt.as_bytes()),
        BASE64.decode(hash.as_bytes()),
    ) else {
        return false;
    };
    let Ok(mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// `*` and `?` wildcards, as OpenSSH's `match_pattern`.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn read(path: &Path) -> String {
    match crate::fsutil::read_bytes(path, crate::fsutil::KNOWN_HOSTS_BYTES) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.is_not_found() => String::new(),
        Err(e) => {
            tracing::warn!("cannot read {e}");
            String::new()
        }
    }
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// Checks `key` for the host recorded as `name` (from [`lookup_name`]) in `files`, in order.
pub fn check(files: &[PathBuf], name: &str, key: &PublicKey) -> Verdict {
    let mut known = false;
    let mut changed: Option<(PathBuf, usize)> = None;
    let mut other_types: Vec<String> = Vec::new();
    for path in files {
        let text = read(path);
        for (i, line) in text.lines().enumerate() {
            let Some(entry) = parse_line(line) else {
                continue;
            };
            if entry.revoked {
                if same_key(&entry.key, key) {
                    return Verdict::Revoked {
                        path: path.clone(),
                        line: i + 1,
                    };
                }
                continue;
            }
            if !host_matches(name, entry.patterns) {
                continue;
            }
            if same_key(&entry.key, key) {
                known = true;
            } else if entry.key.algorithm() == key.algorithm() {
                changed.get_or_insert((path.clone(), i + 1));
            } else {
                let t = entry.key.algorithm().to_string();
                if !other_types.contains(&t) {
                    other_types.push(t);
                }
            }
        }
    }
    // OpenSSH accepts a key that any line holds, even when another line has an older one.
    if known {
        Verdict::Known
    } else if let Some((path, line)) = changed {
        Verdict::Changed { path, line }
    } else {
        Verdict::Unknown { other_types }
    }
}

/// The key types recorded for a host, first seen first, so that the connection can ask the
/// server for a key it can check (as OpenSSH orders its host key algorithms).
pub(crate) fn known_algorithms(files: &[PathBuf], name: &str) -> Vec<Algorithm> {
    let mut out: Vec<Algorithm> = Vec::new();
    for path in files {
        for line in read(path).lines() {
            if let Some(entry) = parse_line(line)
                && !entry.revoked
                && host_matches(name, entry.patterns)
            {
                let a = entry.key.algorithm();
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// `|1|salt|hash` for `name`, with a fresh random salt.
pub(crate) fn hashed_name(name: &str) -> std::io::Result<String> {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let hash = mac.chain_update(name.as_bytes()).finalize().into_bytes();
    Ok(format!(
        "|1|{}|{}",
        BASE64.encode(&salt),
        BASE64.encode(&hash)
    ))
}

/// Appends `name key` to `path` (creating it and its directory), hashed when `hash` is set, as one
/// write so that hosts learned at the same time do not interleave.
pub fn learn(path: &Path, name: &str, key: &PublicKey, hash: bool) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::owner_only::create_dir_all(dir)?;
    }
    // Never waits on what is there (a FIFO), and writes only into a regular file.
    let mut file = crate::owner_only::options()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(std::io::Error::other(format!(
            "{}: not a regular file ({})",
            path.display(),
            crate::fsutil::kind_name(kind)
        )));
    }
    let mut needs_newline = false;
    if file.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        file.read_exact(&mut last)?;
        needs_newline = last[0] != b'\n';
    }
    let host = if hash {
        hashed_name(name)?
    } else {
        name.to_string()
    };
    let key_text = PublicKey::new(key.key_data().clone(), "")
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let line = format!(
        "{}{host} {}\n",
        if needs_newline { "\n" } else { "" },
        key_text.trim()
    );
    file.write_all(line.as_bytes())
}

/// `SHA256:…`, as OpenSSH shows a key's fingerprint.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).expect("key")
    }

    #[test]
    fn a_host_key_is_never_learned_into_a_fifo() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("known_hosts");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let e = learn(&fifo, "host", &key(ED_A), false).expect_err("refused");
        assert_eq!(
            e.to_string(),
            format!("{}: not a regular file (a FIFO)", fifo.display())
        );
    }

    #[test]
    fn a_fifo_as_known_hosts_is_skipped_at_once_as_an_unreadable_file() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("known_hosts");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let files = vec![fifo];
        std::thread::spawn(move || {
            let _ = tx.send(check(&files, "host", &key(ED_A)));
        });
        let verdict = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("answered within five seconds");
        assert!(matches!(verdict, Verdict::Unknown { .. }), "{verdict:?}");
    }

    fn file(text: &str) -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).expect("write");
        (dir, vec![path])
    }

    #[test]
    fn patterns_follow_openssh_wildcards_negation_and_ports() {
        assert!(host_matches("web1", "web1"));
        assert!(host_matches("web1", "db,web?"));
        assert!(host_matches("web12.example.com", "*.example.com"));
        assert!(!host_matches(
            "web1.example.com",
            "*.example.com,!web1.example.com"
        ));
        assert!(!host_matches("[web1]:2222", "web1"));
        assert!(host_matches("[web1]:2222", "[web1]:2222"));
        assert!(host_matches("[web1]:2222", "[web*]:2222"));
        assert!(host_matches("web1", "WEB1"));
        assert!(!host_matches("web1", "!web1"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn hashed_names_match_what_was_hashed() {
        let h = hashed_name("[10.0.0.1]:2222").expect("hash");
        assert!(h.starts_with("|1|"));
        assert!(host_matches("[10.0.0.1]:2222", &h));
        assert!(!host_matches("[10.0.0.1]:22", &h));
        // From russh's test file, hashed by OpenSSH for "example.com".
        assert!(host_matches(
            "example.com",
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak="
        ));
    }

    #[test]
    fn verdicts_known_unknown_changed_and_revoked() {
        let (_d, files) = file(&format!(
            "# comment\n\nnot a valid line at all\nweb1,10.0.0.1 {ED_A}\n[web2]:2222\t{ED_A} c\n"
        ));
        assert_eq!(check(&files, "web1", &key(ED_A)), Verdict::Known);
        assert_eq!(check(&files, "[web2]:2222", &key(ED_A)), Verdict::Known);
        assert_eq!(
            check(&files, "web3", &key(ED_A)),
            Verdict::Unknown {
                other_types: vec![]
            }
        );
        assert_eq!(
            check(&files, "10.0.0.1", &key(ED_B)),
            Verdict::Changed {
                path: files[0].clone(),
                line: 4
            }
        );
        let (_d2, revoked) = file(&format!("@revoked * {ED_B}\nweb1 {ED_B}\n"));
        assert!(matches!(
            check(&revoked, "web1", &key(ED_B)),
            Verdict::Revoked { line: 1, .. }
        ));
    }

    #[test]
    fn learning_appends_one_line_that_then_checks_known() {
        let (_d, files) = file(
            "web1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ",
        );
        learn(&files[0], "[web2]:2222", &key(ED_B), false).expect("learn");
        learn(&files[0], "web3", &key(ED_B), true).expect("learn hashed");
        let text = std::fs::read_to_string(&files[0]).expect("read");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.contains(&format!("\n[web2]:2222 {ED_B}\n")), "{text}");
        assert!(!text.contains("web3"), "{text}");
        assert_eq!(check(&files, "web3", &key(ED_B)), Verdict::Known);
        assert_eq!(check(&files, "[web2]:2222", &key(ED_B)), Verdict::Known);
        assert_eq!(known_algorithms(&files, "web1"), vec![Algorithm::Ed25519]);
    }
}
