//! Reading what the remote programs print: their greetings and their replies, split at the
//! `@@lbtop NAME` marker lines, through the same parsers as the local files. Everything here is
//! text from another host: it is parsed, never trusted, and only shown escaped.

use crate::model::sample::{HostFacts, NodeNet, NodeSample, Timestamp};
use crate::model::text::printable;
use crate::source::parse;
use crate::source::ssh::SshError;

use super::program::{NODE_HELLO, ROUTER_HELLO};

const MARK: &str = "@@lbtop ";

/// A reply split at its marker lines: `(name, body)` in order. A marker's name is the rest of
/// its line (`cpu stats 1234 (sh) S …` for the cost lines).
#[derive(Debug, Default)]
pub struct Sections<'a> {
    pub parts: Vec<(&'a str, &'a str)>,
}

impl<'a> Sections<'a> {
    /// Splits `text`; lines before the first marker are ignored.
    pub fn split(text: &'a str) -> Sections<'a> {
        let mut parts: Vec<(&str, &str)> = Vec::new();
        let mut offset = 0;
        let mut current: Option<(&str, usize)> = None;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let Some(name) = line.trim_end_matches(['\n', '\r']).strip_prefix(MARK) else {
                continue;
            };
            if let Some((n, body_start)) = current.take() {
                parts.push((n, &text[body_start..start]));
            }
            current = Some((name, offset));
        }
        if let Some((n, body_start)) = current {
            parts.push((n, &text[body_start..]));
        }
        Sections { parts }
    }

    /// The body of the first section named `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.parts.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
    }

    /// A section and the exit status in the `rc N` marker right after it.
    pub(crate) fn with_rc(&self, name: &str) -> Option<(&'a str, Option<i32>)> {
        let i = self.parts.iter().position(|(n, _)| *n == name)?;
        let (_, body) = self.parts[i];
        let rc = self
            .parts
            .get(i + 1)
            .and_then(|(n, _)| n.strip_prefix("rc "))
            .and_then(|c| c.trim().parse().ok());
        Some((body, rc))
    }
}

/// The line before each gzip member in a reply.
const GZIP_LINE: &[u8] = b"@@lbtop gzip\n";

/// A reply as text, with each gzip member (after a `@@lbtop gzip` line) replaced by what it
/// holds. The text may grow to `limit` bytes, so that a member cannot expand without bound (a
/// few kilobytes of zeros can say gigabytes). Invalid UTF-8 is replaced, as everywhere else.
pub(crate) fn expand(reply: &[u8], limit: usize) -> Result<String, SshError> {
    let mut out: Vec<u8> = Vec::with_capacity(reply.len());
    let mut rest = reply;
    loop {
        let at = rest
            .windows(GZIP_LINE.len())
            .enumerate()
            .find(|&(i, w)| w == GZIP_LINE && (i == 0 || rest[i - 1] == b'\n'))
            .map(|(i, _)| i);
        let Some(at) = at else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(&rest[..at]);
        let member = &rest[at + GZIP_LINE.len()..];
        let mut decoder = flate2::bufread::GzDecoder::new(member);
        let room = limit.saturating_sub(out.len()) as u64;
        let mut bounded = std::io::Read::take(&mut decoder, room + 1);
        let before = out.len();
        std::io::Read::read_to_end(&mut bounded, &mut out).map_err(|e| {
            SshError::Reply(format!("a compressed part of the reply is corrupt: {e}"))
        })?;
        if (out.len() - before) as u64 > room {
            return Err(SshError::Reply(format!(
                "a compressed part of the reply holds more than {} bytes — not what lbtop asked for",
                limit
            )));
        }
        rest = decoder.into_inner();
    }
    if out.len() > limit {
        return Err(SshError::Reply(format!(
            "reply larger than {limit} bytes — not what lbtop asked for"
        )));
    }
    Ok(match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The marker of a kept reader's `/proc/net/ip_vs` that is what it sent last.
const IP_VS_SAME: &str = "@@lbtop ip_vs same\n";
/// The marker of a kept reader's `/proc/net/ip_vs` sent as the runs of lines that changed.
const IP_VS_PATCH: &str = "@@lbtop ip_vs patch\n";

/// A router poll's reply with its `/proc/net/ip_vs` whole: a `same` or `patch` section from the
/// kept reader (`program::KEPT_READER`) is applied to `last`, the table this program sent last,
/// and the reply carries the table as an `ip_vs` section again. A whole table becomes `last`;
/// `absent` forgets it. An error means the two ends no longer agree on the table: the program
/// must be started again (its reader then sends the table whole).
pub fn with_whole_ip_vs(text: String, last: &mut Option<String>) -> Result<String, SshError> {
    let lost =
        |why: &str| SshError::Reply(format!("router: the kept reader of /proc/net/ip_vs {why}"));
    let sections = Sections::split(&text);
    if sections.get("ip_vs lost").is_some() {
        *last = None;
        return Err(lost("ended in the middle of a reply"));
    }
    let tables = sections
        .parts
        .iter()
        .filter(|(n, _)| matches!(*n, "ip_vs" | "ip_vs same" | "ip_vs patch"))
        .count();
    if tables > 1 {
        *last = None;
        return Err(lost("sent the table more than once in one reply"));
    }
    let offset = |body: &str| body.as_ptr() as usize - text.as_ptr() as usize;
    let (marker, body) = if let Some(body) = sections.get("ip_vs same") {
        (IP_VS_SAME, body)
    } else if let Some(body) = sections.get("ip_vs patch") {
        (IP_VS_PATCH, body)
    } else {
        if sections.get("absent").is_some() {
            *last = None;
        } else if let Some(table) = sections.get("ip_vs") {
            *last = Some(table.to_string());
        }
        return Ok(text);
    };
    let sent_before = last.take();
    let start = offset(body);
    let marker_at = start
        .checked_sub(marker.len())
        .filter(|&at| text.get(at..start) == Some(marker))
        .ok_or_else(|| lost("sent a malformed marker"))?;
    let Some(table) = sent_before else {
        return Err(lost("sent a change, but no table came before it"));
    };
    let table = if marker == IP_VS_SAME {
        if !body.is_empty() {
            return Err(lost("sent text after \"same\""));
        }
        table
    } else {
        patched(table, body).map_err(|why| lost(&why))?
    };
    let mut whole = String::with_capacity(text.len() + table.len());
    whole.push_str(&text[..marker_at]);
    whole.push_str("@@lbtop ip_vs\n");
    whole.push_str(&table);
    whole.push_str(&text[start + body.len()..]);
    *last = Some(table);
    Ok(whole)
}

/// `table` with each `OFFSET LENGTH` line's bytes (the line after it, then a newline) laid over
/// it at that offset: runs in order, inside the table, never changing its length.
fn patched(table: String, mut body: &str) -> Result<String, String> {
    let mut bytes = table.into_bytes();
    let mut end = 0usize;
    while !body.is_empty() {
        let (head, rest) = body
            .split_once('\n')
            .ok_or_else(|| "sent a run with no header line".to_string())?;
        let mut numbers = head.split(' ').map(str::parse::<usize>);
        let (Some(Ok(at)), Some(Ok(len)), None) = (numbers.next(), numbers.next(), numbers.next())
        else {
            return Err(format!("sent a run header \"{}\"", printable(head, 40)));
        };
        let past = at
            .checked_add(len)
            .filter(|&past| at >= end && past <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "sent a run at {at}+{len} outside a {}-byte table",
                    bytes.len()
                )
            })?;
        let run = rest
            .as_bytes()
            .get(..len)
            .filter(|_| rest.as_bytes().get(len) == Some(&b'\n'))
            .ok_or_else(|| "sent a run cut short".to_string())?;
        bytes[at..past].copy_from_slice(run);
        end = past;
        body = &rest[len + 1..];
    }
    String::from_utf8(bytes).map_err(|_| "sent a run that splits a character".to_string())
}

/// What came back instead of lbtop's program, for the message: the start of it, the first line
/// of stderr and how the program ended, all escaped.
pub(crate) fn excerpt(stdout: &[u8], stderr: Option<String>, ended: Option<&str>) -> String {
    let text = String::from_utf8_lossy(stdout);
    let shown = printable(text.trim(), 80);
    let mut m = if shown.is_empty() {
        "an empty reply".to_string()
    } else {
        format!("\"{shown}\"")
    };
    if let Some(e) = stderr {
        m.push_str(&format!(", stderr \"{}\"", printable(&e, 200)));
    }
    if let Some(e) = ended {
        m.push_str(&format!(" ({e})"));
    }
    m
}

/// The error for a greeting that is not lbtop's program's.
pub fn unexpected(
    what: &str,
    stdout: &[u8],
    stderr: Option<String>,
    ended: Option<&str>,
) -> SshError {
    SshError::Reply(format!(
        "unexpected reply to the {what}: {} (is a ForceCommand or a login script in the way?)",
        excerpt(stdout, stderr, ended)
    ))
}

/// The node program's greeting: its host facts. `None` when it is not the node program's.
pub fn node_greeting(text: &str) -> Option<HostFacts> {
    if text.lines().next()?.trim_end() != NODE_HELLO {
        return None;
    }
    let sections = Sections::split(text);
    let fact = |name: &str| {
        sections
            .get(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| printable(s, 120))
    };
    Some(HostFacts {
        hostname: fact("hostname"),
        os: None,
        kernel: fact("osrelease"),
    })
}

/// The router program's greeting: the kernel's clock ticks per second for CPU times.
pub fn router_greeting(text: &str) -> Option<u64> {
    if text.lines().next()?.trim_end() != ROUTER_HELLO {
        return None;
    }
    Sections::split(text)
        .parts
        .iter()
        .find_map(|(n, _)| n.strip_prefix("hz ")?.trim().parse::<u64>().ok())
        .filter(|&hz| hz > 0)
        .or(Some(100))
}

/// A node poll's reply as a sample, through the same parsers as the local node.
pub fn node_reply(
    text: &str,
    time: Timestamp,
    facts: Option<HostFacts>,
) -> Result<NodeSample, SshError> {
    let sections = Sections::split(text);
    let file = |name: &str| -> Result<&str, SshError> {
        match sections.get(name) {
            Some(body) if !body.trim().is_empty() => Ok(body),
            _ => Err(SshError::Reply(format!(
                "/proc/{name} could not be read on the node"
            ))),
        }
    };
    let parse_err = |e: parse::ParseError| SshError::Reply(e.to_string());
    Ok(NodeSample {
        time,
        stat: parse::proc_stat(file("stat")?).map_err(parse_err)?,
        load: parse::loadavg(file("loadavg")?).map_err(parse_err)?,
        memory: parse::meminfo(file("meminfo")?).map_err(parse_err)?,
        uptime: parse::uptime(file("uptime")?).map_err(parse_err)?,
        facts,
        // What the direct-routing checks read: when it does not parse, the node's numbers still
        // count, and the checks say they could not be made (`dr_problems: null`).
        net: node_net(&sections).unwrap_or_else(|e| {
            tracing::warn!("the node's network files: {e}");
            None
        }),
    })
}

/// The direct-routing checks' files, when the poll asked for them (`p SEQ dr`).
fn node_net(sections: &Sections<'_>) -> Result<Option<NodeNet>, parse::ParseError> {
    let Some(netconf) = sections.get("netconf") else {
        return Ok(None);
    };
    // A file longer than the program reads: the checks would see part of it, so none are made.
    if sections.get("truncated").is_some() {
        return Ok(None);
    }
    let part = |name: &str| sections.get(name).unwrap_or("");
    Ok(Some(NodeNet {
        local_v4: parse::fib_trie_local(part("fib_trie"))?,
        local_v6: parse::if_inet6(part("if_inet6"))?,
        routes_v4: parse::net_route(part("route"))?,
        devices: parse::netconf(netconf, part("devflags"))?,
    }))
}

/// The CPU the router program had used (itself and the children it waited for), in clock ticks,
/// from its `/proc/$$/stat` line: utime, stime, cutime and cstime, fields 14 to 17.
pub fn cpu_ticks(stat_line: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat_line[stat_line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let mut sum = 0u64;
    for f in fields.get(11..15)? {
        sum = sum.checked_add(f.parse::<u64>().ok()?)?;
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_readers_same_and_patches_make_the_whole_table_and_bad_ones_are_refused() {
        let table = "IP Virtual Server\nTCP  0A4E0001:0050 wlc \n  -> 0A4D0201:1F40 Route 1 0 0\n";
        let reply = |ip_vs: &str| {
            format!("@@lbtop cpu start x\n{ip_vs}@@lbtop ip_vs_stats\nS\n@@lbtop end 1\n")
        };
        let mut last = None;
        let whole = reply(&format!("@@lbtop ip_vs\n{table}"));
        assert_eq!(
            with_whole_ip_vs(whole.clone(), &mut last).expect("whole"),
            whole
        );
        assert_eq!(last.as_deref(), Some(table));
        assert_eq!(
            with_whole_ip_vs(reply("@@lbtop ip_vs same\n"), &mut last).expect("same"),
            whole
        );
        let at = table.find("  ->").expect("real");
        let run = "  -> 0A4D0201:1F40 Route 0 9 0\n";
        let patch = format!("@@lbtop ip_vs patch\n{at} {}\n{run}\n", run.len());
        let got = with_whole_ip_vs(reply(&patch), &mut last).expect("patch");
        let changed = table.replace("Route 1 0 0", "Route 0 9 0");
        assert_eq!(got, reply(&format!("@@lbtop ip_vs\n{changed}")));
        assert_eq!(last.as_deref(), Some(changed.as_str()));
        // Refused, with the table forgotten so that the program is started again.
        for (bad, why) in [
            ("@@lbtop ip_vs same\nx\n", "text after"),
            ("@@lbtop ip_vs patch\n0 3\nabc", "cut short"),
            ("@@lbtop ip_vs patch\n0 3\nabcd\n", "cut short"),
            ("@@lbtop ip_vs patch\n70 30\n", "outside"),
            (
                "@@lbtop ip_vs patch\n18446744073709551615 2\nab\n",
                "outside",
            ),
            ("@@lbtop ip_vs patch\n5 1\na\n0 1\nb\n", "outside"),
            ("@@lbtop ip_vs patch\n-1 1\na\n", "header"),
            ("@@lbtop ip_vs patch\n1\n", "header"),
            ("@@lbtop ip_vs patch\n0 1 2\n", "header"),
            ("@@lbtop ip_vs patch\n\u{1b}[2J", "header"),
            ("@@lbtop ip_vs patch\n0 1\n\u{e9}\n", "cut short"),
        ] {
            let mut base = Some(table.to_string());
            let e = with_whole_ip_vs(reply(bad), &mut base)
                .expect_err(bad)
                .to_string();
            assert!(
                e.contains(why) && e.contains("/proc/net/ip_vs"),
                "{bad:?}: {e}"
            );
            assert!(!e.contains('\u{1b}'), "{e}");
            assert!(base.is_none(), "{bad:?}");
        }
        let mut base = Some("\u{e9}\n".to_string());
        let e = with_whole_ip_vs(reply("@@lbtop ip_vs patch\n0 1\na\n"), &mut base)
            .expect_err("half a character");
        assert!(e.to_string().contains("splits a character"), "{e}");
        for (bad, why) in [
            (
                "@@lbtop ip_vs\n\n@@lbtop ip_vs lost\n@@lbtop ip_vs\nTCP\n",
                "ended in the middle",
            ),
            ("@@lbtop ip_vs\n@@lbtop ip_vs\nTCP\n", "more than once"),
            (
                "@@lbtop ip_vs patch\n@@lbtop ip_vs same\n",
                "more than once",
            ),
        ] {
            let mut base = Some(table.to_string());
            let e = with_whole_ip_vs(reply(bad), &mut base)
                .expect_err(bad)
                .to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(base.is_none(), "{bad:?}");
        }
        let e = with_whole_ip_vs(reply("@@lbtop ip_vs same\n"), &mut None).expect_err("no table");
        assert!(e.to_string().contains("no table came before"), "{e}");
        // IPVS unloaded: the table is forgotten.
        let mut base = Some(table.to_string());
        let absent = reply("@@lbtop ip_vs\n@@lbtop absent\n");
        assert_eq!(
            with_whole_ip_vs(absent.clone(), &mut base).expect("absent"),
            absent
        );
        assert!(base.is_none());
    }

    #[test]
    fn sections_split_at_markers_and_find_exit_statuses() {
        let s = Sections::split("junk\n@@lbtop a\n1\n2\n@@lbtop ipvsadm stats\nx\n@@lbtop rc 3\n");
        assert_eq!(s.get("a"), Some("1\n2\n"));
        assert_eq!(s.with_rc("ipvsadm stats"), Some(("x\n", Some(3))));
        assert_eq!(s.get("b"), None);
    }

    /// What the router program sends for `text`: this machine's own `gzip -1`, as the program
    /// runs it.
    fn gzip(text: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("gzip")
            .args(["-1", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("gzip");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = text.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("gzip output");
        writer.join().expect("writer").expect("write");
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn gzip_members_expand_in_place_and_the_text_around_them_stays() {
        let table =
            "IP Virtual Server version 1.2.1 (size=4096)\nTCP  0A000001:0050 wlc\n".repeat(500);
        let view = "TCP  10.0.0.1:80 wlc\n  -> 10.0.1.1:80 Route 1 0 0\n@@lbtop rc 0\n";
        let mut reply = b"@@lbtop cpu start 1 (sh) S 0 0\n@@lbtop ip_vs\n@@lbtop gzip\n".to_vec();
        reply.extend(gzip(table.as_bytes()));
        reply.extend(b"@@lbtop ip_vs_stats\nx\n@@lbtop ipvsadm stats\n@@lbtop gzip\n");
        reply.extend(gzip(view.as_bytes()));
        reply.extend(b"@@lbtop cpu stats 1 (sh) S 0 0\n");
        let text = expand(&reply, 1 << 20).expect("expands");
        assert_eq!(
            text,
            format!(
                "@@lbtop cpu start 1 (sh) S 0 0\n@@lbtop ip_vs\n{table}@@lbtop ip_vs_stats\nx\n\
                 @@lbtop ipvsadm stats\n{view}@@lbtop cpu stats 1 (sh) S 0 0\n"
            )
        );
        let sections = Sections::split(&text);
        assert_eq!(sections.get("ip_vs"), Some(table.as_str()));
        assert_eq!(
            sections.with_rc("ipvsadm stats").map(|(_, rc)| rc),
            Some(Some(0))
        );
        // Packed 500 times over, the table travels in a fraction of its size.
        assert!(reply.len() < table.len() / 10, "{} bytes", reply.len());
        // A reply without members is its own text; a marker inside a line is text too.
        let plain = b"@@lbtop ip_vs\nx @@lbtop gzip\n".to_vec();
        assert_eq!(
            expand(&plain, 100).expect("plain"),
            "@@lbtop ip_vs\nx @@lbtop gzip\n"
        );
    }

    #[test]
    fn corrupt_cut_and_bomb_members_are_clear_errors_in_bounded_memory() {
        let packed = gzip(&b"TCP  0A000001:0050 wlc\n".repeat(100));
        let mut corrupt = b"@@lbtop gzip\n".to_vec();
        corrupt.extend(&packed);
        let mid = 13 + packed.len() / 2;
        corrupt[mid] ^= 0xff;
        let cut = {
            let mut c = b"@@lbtop gzip\n".to_vec();
            c.extend(&packed[..packed.len() - 12]);
            c
        };
        for (what, reply) in [
            ("corrupt", corrupt),
            ("cut", cut),
            ("junk", b"@@lbtop gzip\n\x1b[2J".to_vec()),
        ] {
            let e = expand(&reply, 1 << 20).expect_err(what).to_string();
            assert!(e.contains("compressed part of the reply"), "{what}: {e}");
        }
        // 64 MiB of zeros packs into about 64 KB; with room for 1 MiB it stops there.
        let bomb = {
            let mut b = b"@@lbtop gzip\n".to_vec();
            b.extend(gzip(&vec![0u8; 64 << 20]));
            b
        };
        assert!(bomb.len() < 1 << 20);
        let e = expand(&bomb, 1 << 20).expect_err("bomb").to_string();
        assert!(e.contains("more than 1048576 bytes"), "{e}");
    }

    #[test]
    fn cpu_ticks_sum_own_and_children_times_after_the_command_name() {
        let line = "4242 (s h)) S 1 4242 4242 0 -1 4194560 1 2 0 0 7 3 20 10 20 0 1 0 1 1 1";
        assert_eq!(cpu_ticks(line), Some(7 + 3 + 20 + 10));
        assert_eq!(cpu_ticks("4242 (sh) S 1 2"), None);
        assert_eq!(cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn greetings_are_recognised_and_facts_escaped() {
        let g = "lbtop-node 2\n@@lbtop hostname\nweb\x1b[2J1\n@@lbtop osrelease\n6.1.0\n";
        let facts = node_greeting(g).expect("node greeting");
        assert_eq!(facts.hostname.as_deref(), Some("web\\u{1b}[2J1"));
        assert_eq!(facts.kernel.as_deref(), Some("6.1.0"));
        assert!(node_greeting("Welcome\n").is_none());
        assert_eq!(
            router_greeting("lbtop-router 2\n@@lbtop hz 250\n"),
            Some(250)
        );
        assert_eq!(router_greeting("lbtop-router 2\n@@lbtop hz x\n"), Some(100));
        assert_eq!(router_greeting("lbtop-node 2\n"), None);
    }
}

#[cfg(test)]
mod program_tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

    use super::*;
    use crate::source::remote::program::{NODE_PROGRAM, READY, end_line, node_request};

    /// The node program under this machine's `/bin/sh`, started as sshd would (the program on
    /// stdin), its greeting read: `(child, stdin, stdout, greeting)`.
    fn start_node_program() -> (Child, ChildStdin, BufReader<ChildStdout>, String) {
        let mut child = Command::new("/bin/sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        stdin.write_all(NODE_PROGRAM.as_bytes()).expect("program");
        stdin.flush().expect("flush");
        let greeting = read_until(&mut out, READY);
        (child, stdin, out, greeting)
    }

    /// The lines before the line `end`.
    fn read_until(out: &mut BufReader<ChildStdout>, end: &str) -> String {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).expect("read") > 0, "ended: {text}");
            if line.trim_end_matches('\n') == end {
                return text;
            }
            text.push_str(&line);
        }
    }

    /// Asks the node program `polls` times, as lbtop does (a request only after the greeting);
    /// returns the greeting and the replies.
    fn run_node_program(polls: u64) -> (String, Vec<String>) {
        run_node_program_with(polls, false)
    }

    fn run_node_program_with(polls: u64, dr: bool) -> (String, Vec<String>) {
        let (mut child, mut stdin, mut out, greeting) = start_node_program();
        let mut replies = Vec::new();
        for seq in 1..=polls {
            stdin
                .write_all(node_request(seq, dr).as_bytes())
                .expect("request");
            stdin.flush().expect("flush");
            replies.push(read_until(&mut out, &end_line(seq)));
        }
        drop(stdin);
        assert!(child.wait().expect("wait").success());
        (greeting, replies)
    }

    #[test]
    fn the_node_program_answers_many_polls_on_this_machine_like_the_local_files() {
        // 130 polls: past the every-60-polls recount of the CPUs, twice.
        let (greeting, replies) = run_node_program(130);
        let facts = node_greeting(&greeting).expect("greeting");
        assert!(facts.kernel.is_some());
        let local = parse::proc_stat(&std::fs::read_to_string("/proc/stat").expect("stat"))
            .expect("local stat");
        for text in &replies {
            let s = node_reply(text, Timestamp(1), None).expect("reply");
            assert_eq!(s.stat.cpu_ids, local.cpu_ids, "every CPU, no other line");
            assert!(s.memory.total_bytes > 0 && s.memory.available_bytes > 0);
            assert!(s.uptime.uptime_s > 0.0);
        }
    }

    #[test]
    fn a_network_section_cut_short_or_malformed_leaves_the_checks_unmade_and_the_numbers_whole() {
        let (_, replies) = run_node_program_with(1, true);
        let whole = node_reply(&replies[0], Timestamp(1), None).expect("reply");
        assert!(whole.net.is_some());
        let cut = format!("{}@@lbtop truncated\n", replies[0]);
        let s = node_reply(&cut, Timestamp(1), None).expect("the numbers still count");
        assert_eq!((s.net, s.stat), (None, whole.stat.clone()));
        let bad = replies[0].replacen("@@lbtop route\n", "@@lbtop route\nnot a route line\n", 1);
        let s = node_reply(&bad, Timestamp(1), None).expect("the numbers still count");
        assert_eq!((s.net, s.stat), (None, whole.stat));
    }

    #[test]
    fn the_node_programs_direct_routing_part_is_what_this_machines_files_say() {
        let (_, replies) = run_node_program_with(65, true);
        let file = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let local_v4 = parse::fib_trie_local(&file("/proc/net/fib_trie")).expect("fib_trie");
        let local_v6 = parse::if_inet6(&file("/proc/net/if_inet6")).expect("if_inet6");
        let routes = parse::net_route(&file("/proc/net/route")).expect("route");
        let mut names: Vec<String> = std::fs::read_dir("/proc/sys/net/ipv4/conf")
            .expect("conf")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        let setting = |dev: &str, f: &str| {
            file(&format!("/proc/sys/net/ipv4/conf/{dev}/{f}"))
                .trim()
                .parse::<u32>()
                .ok()
        };
        for text in &replies {
            let s = node_reply(text, Timestamp(1), None).expect("reply");
            let net = s.net.expect("the dr part");
            assert_eq!(net.local_v4, local_v4);
            assert!(net.local_v4.contains(&(std::net::Ipv4Addr::LOCALHOST, 32)));
            assert_eq!(net.local_v6, local_v6);
            assert_eq!(net.routes_v4, routes);
            let got: Vec<&str> = net.devices.iter().map(|d| d.name.as_str()).collect();
            assert_eq!(
                got, names,
                "the shell's glob is sorted as read_dir sorted here"
            );
            for d in &net.devices {
                assert_eq!(d.arp_ignore, setting(&d.name, "arp_ignore"), "{}", d.name);
                assert_eq!(d.arp_announce, setting(&d.name, "arp_announce"));
                assert_eq!(d.rp_filter, setting(&d.name, "rp_filter"));
            }
            let lo = net.devices.iter().find(|d| d.name == "lo").expect("lo");
            assert_eq!(lo.flags.map(|f| f & 0x8), Some(0x8), "IFF_LOOPBACK");
        }
        // Without the word, the reply has none of it.
        let (_, plain) = run_node_program(1);
        assert_eq!(
            node_reply(&plain[0], Timestamp(1), None)
                .expect("reply")
                .net,
            None
        );
    }

    #[test]
    fn the_node_program_refuses_a_request_that_is_not_its_own() {
        for bad in [
            "p 1; id\n",
            "x 1\n",
            "p\n",
            "p $(id)\n",
            "id\n",
            "p 1 dr; id\n",
            "p 1 dry\n",
            "p 1 dr x\n",
        ] {
            let (mut child, mut stdin, mut out, _) = start_node_program();
            stdin.write_all(bad.as_bytes()).expect("request");
            // More after it: never run as commands. (The program may have exited already, and
            // the pipe with it.)
            let _ = stdin.write_all(b"id\np 2\n");
            drop(stdin);
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut out, &mut rest).expect("rest");
            assert!(!rest.contains("@@lbtop end"), "{bad:?}: {rest}");
            assert!(!rest.contains("uid="), "{bad:?}: {rest}");
            assert_eq!(child.wait().expect("wait").code(), Some(2), "{bad:?}");
        }
    }

    #[test]
    fn garbage_and_cut_node_replies_are_clear_errors_never_panics() {
        let (_, replies) = run_node_program(1);
        let full = &replies[0];
        for (text, needle) in [
            ("Welcome to junk\n".to_string(), "could not be read"),
            (full.replace("cpu", "cpX"), "/proc/stat"),
            (full.replace("MemTotal", "MemTotaI"), "meminfo"),
        ] {
            let e = node_reply(&text, Timestamp(1), None).expect_err(needle);
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
        for cut in (0..full.len()).step_by(37) {
            let _ = node_reply(&full[..cut], Timestamp(1), None);
        }
    }
}
