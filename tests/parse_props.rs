//! Property tests: no parser panics, whatever it is given, and every error names its input and a
//! line that exists.

use lbtop::model::sample::ConnSummary;
use lbtop::source::parse::{
    ConnReadError, ParseError, ip_vs, ip_vs_stats, ipvsadm_list, loadavg, meminfo, proc_stat,
    sum_ip_vs_conn, uptime,
};
use proptest::prelude::*;

type Parser = fn(&str) -> Result<(), ParseError>;

/// A connection table in memory, summed as its file is: bytes in memory cannot fail to be read,
/// so only parse errors come back.
fn sum_conn(bytes: &[u8], top_n: usize) -> Result<ConnSummary, ParseError> {
    sum_ip_vs_conn(bytes, top_n).map_err(|e| match e {
        ConnReadError::Parse(e) => e,
        other => panic!("reading bytes in memory: {other}"),
    })
}

/// Every text parser, with the input name its errors must carry.
fn parsers() -> Vec<(&'static str, Parser)> {
    vec![
        ("/proc/stat", |t| proc_stat(t).map(drop)),
        ("/proc/loadavg", |t| loadavg(t).map(drop)),
        ("/proc/meminfo", |t| meminfo(t).map(drop)),
        ("/proc/uptime", |t| uptime(t).map(drop)),
        ("/proc/net/ip_vs", |t| ip_vs(t).map(drop)),
        ("/proc/net/ip_vs_stats", |t| ip_vs_stats(t).map(drop)),
        ("/proc/net/ip_vs_conn", |t| {
            sum_conn(t.as_bytes(), 3).map(drop)
        }),
        ("ipvsadm", |t| ipvsadm_list(t).map(drop)),
    ]
}

fn check_error(name: &str, text: &str, r: Result<(), ParseError>) -> Result<(), TestCaseError> {
    if let Err(e) = r {
        let lines = text.lines().count();
        prop_assert!(e.line <= lines, "{name}: line {} of {lines}: {e}", e.line);
        if name == "ipvsadm" {
            prop_assert!(e.input.starts_with("ipvsadm"), "{e}");
        } else {
            prop_assert_eq!(e.input, name);
        }
        prop_assert!(!e.message.is_empty());
    }
    Ok(())
}

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Real captures (tests/fixtures/SOURCES.md), each with the parser meant for it.
fn real_inputs() -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    for (parser, files) in [
        (
            "/proc/stat",
            &["proc/stat", "proc/vm/stat", "proc/vm/sample2/stat"][..],
        ),
        (
            "/proc/loadavg",
            &["proc/loadavg", "proc/vm/loadavg", "proc/vm/sample2/loadavg"],
        ),
        ("/proc/meminfo", &["proc/meminfo", "proc/vm/meminfo"]),
        (
            "/proc/uptime",
            &["proc/uptime", "proc/vm/uptime", "proc/vm/sample2/uptime"],
        ),
        ("/proc/net/ip_vs", &["ipvs/ip_vs", "ipvs/sample2/ip_vs"]),
        (
            "/proc/net/ip_vs_stats",
            &["ipvs/ip_vs_stats", "ipvs/sample2/ip_vs_stats"],
        ),
        ("/proc/net/ip_vs_conn", &["ipvs/ip_vs_conn"]),
        (
            "ipvsadm",
            &[
                "ipvs/ipvsadm-Ln-exact.txt",
                "ipvs/ipvsadm-Ln-exact-stats.txt",
                "ipvs/ipvsadm-Ln-exact-rate.txt",
                "ipvs/ipvsadm-Ln-exact-thresholds.txt",
                "ipvs/ipvsadm-Ln-exact-persistent-conn.txt",
                "ipvs/ipvsadm-Ln-exact-f1.txt",
            ],
        ),
    ] {
        for f in files {
            v.push((parser, fixture(f)));
        }
    }
    // Real files in a format no parser here reads: they must fail cleanly, never panic.
    for f in [
        "ipvs/ip_vs_conn_sync",
        "ipvs/ip_vs_stats_percpu",
        "ipvs/ipvsadm-Lnc.txt",
        "ipvs/ipvsadm-Sn.txt",
    ] {
        v.push(("none", fixture(f)));
    }
    v
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    Truncate(usize),
    DuplicateLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let ch = prop_oneof![
        prop::sample::select(vec![
            ' ', '\n', '\t', ':', '[', ']', '-', '/', '.', '0', '9', 'A', 'F', 'G', 'f', 'x', 'k',
            '\r', '\u{0}', 'é', '→'
        ]),
        any::<char>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Insert(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Truncate),
        any::<usize>().prop_map(Edit::DuplicateLine),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len().max(1);
        match *e {
            Edit::Delete(i) => {
                if !chars.is_empty() {
                    chars.remove(i % n);
                }
            }
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Replace(i, c) => {
                if let Some(slot) = chars.get_mut(i % n) {
                    *slot = c;
                }
            }
            Edit::Truncate(i) => chars.truncate(i % (chars.len() + 1)),
            Edit::DuplicateLine(i) => {
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.split('\n').collect();
                let k = i % lines.len();
                let mut out: Vec<&str> = lines.clone();
                out.insert(k, lines[k]);
                chars = out.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics_on_arbitrary_text(text in any::<String>()) {
        for (name, parse) in parsers() {
            check_error(name, &text, parse(&text))?;
        }
    }

    #[test]
    fn no_parser_panics_on_line_shaped_noise(
        lines in prop::collection::vec("[ 0-9A-Fa-f:\\[\\]>/.a-zA-Z_-]{0,80}", 0..12)
    ) {
        let text = lines.join("\n");
        for (name, parse) in parsers() {
            check_error(name, &text, parse(&text))?;
        }
    }

    #[test]
    fn no_parser_panics_on_mutated_real_captures(
        which in any::<prop::sample::Index>(),
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let inputs = real_inputs();
        let (own, text) = &inputs[which.index(inputs.len())];
        let mutated = apply(text, &edits);
        for (name, parse) in parsers() {
            let r = parse(&mutated);
            check_error(name, &mutated, r)?;
        }
        // The parser meant for the capture still reads it when the edit was a no-op.
        if mutated == *text && *own != "none" {
            let parse = parsers().into_iter().find(|(n, _)| n == own).map(|(_, p)| p);
            prop_assert!(parse.is_some_and(|p| p(&mutated).is_ok()));
        }
    }

    #[test]
    fn conn_summer_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let r = sum_conn(&bytes, 2);
        if let Err(e) = r {
            let lines = bytes.split(|&b| b == b'\n').count();
            prop_assert!(e.line >= 1 && e.line <= lines, "{e}");
        }
    }
}

/// An address as `ip_vs_conn_seq_show` prints it: `%08X` for IPv4, `%pI6` for IPv6.
fn conn_addr(a: (bool, u32)) -> String {
    if a.0 {
        let groups = [
            0x2001u16,
            0x0db8,
            0,
            0,
            0,
            0,
            (a.1 >> 16) as u16,
            a.1 as u16,
        ];
        groups
            .iter()
            .map(|g| format!("{g:04x}"))
            .collect::<Vec<_>>()
            .join(":")
    } else {
        format!("{:08X}", a.1)
    }
}

/// A row as `ip_vs_conn_seq_show` prints it (constructed, not captured).
fn conn_row(
    proto: &str,
    c: ((bool, u32), u16),
    v: ((bool, u32), u16),
    d: ((bool, u32), u16),
    state: &str,
    expires: u32,
) -> String {
    format!(
        "{proto:<3} {} {:04X} {} {:04X} {} {:04X} {state:<11} {expires:7}\n",
        conn_addr(c.0),
        c.1,
        conn_addr(v.0),
        v.1,
        conn_addr(d.0),
        d.1
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The fixed-offset fast paths must count exactly what the general path counts.
    #[test]
    fn conn_fast_path_agrees_with_general_path(
        rows in prop::collection::vec(
            (
                prop::sample::select(vec!["TCP", "UDP", "SCTP", "IP"]),
                ((prop::bool::weighted(0.2), 0u32..6), any::<u16>()),
                ((prop::bool::weighted(0.2), any::<u32>()), any::<u16>()),
                ((prop::bool::weighted(0.2), 0u32..4), 0u16..3),
                prop::sample::select(vec!["ESTABLISHED", "SYN_RECV", "NONE", "UDP", "SHUTDOWN_ACK_SENT", "CLOSE"]),
                any::<u32>(),
            ),
            0..60,
        ),
        top_n in 0usize..5,
    ) {
        let mut text = String::from("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n");
        for (p, c, v, d, s, e) in &rows {
            text += &conn_row(p, *c, *v, *d, s, *e);
        }
        let fast = sum_conn(text.as_bytes(), top_n).expect("well-formed rows parse");
        prop_assert_eq!(fast.total, rows.len() as u64);
        // Doubled separators defeat both fixed-width paths and leave only the general one.
        let general = sum_conn(text.replace(' ', "  ").as_bytes(), top_n)
            .expect("well-formed rows parse");
        prop_assert_eq!(general, fast);
    }
}
