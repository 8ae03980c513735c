//! Mutation fuzzing on stable Rust, inside `cargo test`: each parser of outside input gets a fixed
//! number of seeded mutations of real inputs — bit flips, interesting bytes, truncations,
//! deletions, duplications, splices of two inputs, swapped lines — and must neither panic nor
//! return an error that does not name its input. The proc and ipvsadm parsers, the SSH reply
//! reader, the recording reader and the config, theme and key-name parsers are covered.
//!
//! The seed and the case counts are fixed, so a run is the same on every machine and bounded in
//! time (a few seconds in a debug build). `LBTOP_FUZZ_SEED=N` and `LBTOP_FUZZ_SCALE=K` (K times
//! the cases) explore further by hand; a failure prints the seed and case to run again.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use lbtop::app::{State, StateOptions};
use lbtop::config::keymap::KeySpec;
use lbtop::config::theme::Theme;
use lbtop::config::{Config, Overrides};
use lbtop::model::sample::Timestamp;
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, Writer};
use lbtop::source::parse::{
    ConnReadError, ParseError, ip_vs, ip_vs_stats, ipvsadm_daemon, ipvsadm_list, loadavg, meminfo,
    proc_stat, sum_ip_vs_conn, uptime,
};
use lbtop::source::remote::reply::{
    Sections, cpu_ticks, node_greeting, node_reply, router_greeting, with_whole_ip_vs,
};
use lbtop::source::ssh::SshError;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

/// Cases per text parser and for the recording reader, before `LBTOP_FUZZ_SCALE`.
const TEXT_CASES: usize = 4000;
const RECORDING_CASES: usize = 400;
const SEED: u64 = 0x1b70_f022_2026;

fn seed() -> u64 {
    std::env::var("LBTOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED)
}

fn cases(base: usize) -> usize {
    let scale = std::env::var("LBTOP_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    base * scale.max(1)
}

/// SplitMix64: the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes and words that parsers of this kind of text trip on.
const TOKENS: &[&[u8]] = &[
    b"-1",
    b"0",
    b"18446744073709551616",
    b"4294967296",
    b"99999999999999999999999999",
    b"NaN",
    b"inf",
    b"1e308",
    b"0x",
    b"FFFFFFFF",
    b"[",
    b"]",
    b":",
    b"::",
    b" ",
    b"\n",
    b"\r\n",
    b"\t",
    b"\0",
    b"\xff",
    b"\xc3",
    "é".as_bytes(),
    "\u{202e}".as_bytes(),
    b"@@lbtop ",
    b"@@lbtop rc 1\n",
    b"->",
    b"=",
    b"\"",
    b"[[keys]]\n",
];

/// One to four random edits of `base`, some taking pieces of another input of the same kind.
fn mutate(rng: &mut Rng, base: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0u8, 0xff, b'\n', b' ', b'-', b'9', b':', 0x80, b'.', b'x'][rng.below(10)];
            }
            2 => v.truncate(at),
            3 => {
                let end = (at + 1 + rng.below(64)).min(len);
                v.drain(at.min(end)..end);
            }
            4 => {
                let end = (at + 1 + rng.below(256)).min(len);
                let piece = v[at.min(end)..end].to_vec();
                let to = rng.below(len + 1);
                v.splice(to..to, piece);
            }
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
            6 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, token.iter().copied());
            }
            7 => {
                let mut lines: Vec<Vec<u8>> = v
                    .split_inclusive(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                v = lines.concat();
            }
            _ => {
                // A digit run made long, or a number cut in two.
                if let Some(i) = (at..len).find(|&i| v[i].is_ascii_digit()) {
                    let run = b"9".repeat(1 + rng.below(24));
                    v.splice(i..i, run);
                }
            }
        }
    }
    v
}

/// Runs `check` on `cases` mutations of `corpus`. A panic is caught and reported with the seed,
/// the case and the input, escaped; `check` returns what is wrong with a result, if anything.
fn fuzz(
    name: &str,
    corpus: &[Vec<u8>],
    cases: usize,
    mut check: impl FnMut(&[u8]) -> Option<String>,
) {
    assert!(!corpus.is_empty(), "{name}: no inputs");
    let mut rng = Rng(seed()
        ^ name
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b)));
    // The inputs themselves first, as they are.
    for (i, input) in corpus.iter().enumerate() {
        if let Some(wrong) = check(input) {
            panic!("{name}: unmutated input {i}: {wrong}");
        }
    }
    for case in 0..cases {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, corpus);
        let outcome = catch_unwind(AssertUnwindSafe(|| check(&input)));
        let wrong = match outcome {
            Ok(None) => continue,
            Ok(Some(wrong)) => wrong,
            Err(_) => "panicked".to_string(),
        };
        panic!(
            "{name}: case {case} (LBTOP_FUZZ_SEED={}): {wrong}\ninput: {:?}",
            seed(),
            String::from_utf8_lossy(&input)
        );
    }
}

fn fixture(path: &str) -> Vec<u8> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn fixtures(paths: &[&str]) -> Vec<Vec<u8>> {
    paths
        .iter()
        .map(|p| fixture(&format!("tests/fixtures/{p}")))
        .collect()
}

/// What is wrong with a parse error, if anything: it must name `input` (or start with it, for
/// ipvsadm's views), a line that exists, and say what.
fn located(input: &str, text: &str, e: &ParseError) -> Option<String> {
    let lines = text.lines().count();
    if !e.input.starts_with(input) {
        return Some(format!("the error names {:?}, not {input}: {e}", e.input));
    }
    if e.line > lines.max(1) {
        return Some(format!("line {} of {lines}: {e}", e.line));
    }
    if e.message.is_empty() {
        return Some(format!("no message: {e:?}"));
    }
    None
}

fn text_parser<T>(
    input: &'static str,
    corpus: &[&str],
    parse: impl Fn(&str) -> Result<T, ParseError>,
) {
    let corpus = fixtures(corpus);
    fuzz(input, &corpus, cases(TEXT_CASES), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        parse(&text).err().and_then(|e| located(input, &text, &e))
    });
}

#[test]
fn mutations_are_sometimes_read_and_sometimes_refused() {
    // A mutator that always broke its input, or never did, would test little.
    let corpus = fixtures(&["proc/stat", "proc/vm/stat"]);
    let mut rng = Rng(SEED);
    let (mut read, mut refused) = (0, 0);
    for _ in 0..400 {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base, &corpus);
        match proc_stat(&String::from_utf8_lossy(&input)) {
            Ok(_) => read += 1,
            Err(_) => refused += 1,
        }
    }
    assert!(
        read >= 40 && refused >= 40,
        "{read} read, {refused} refused"
    );
}

#[test]
fn proc_files() {
    text_parser(
        "/proc/stat",
        &["proc/stat", "proc/vm/stat", "proc/vm/sample2/stat"],
        proc_stat,
    );
    text_parser(
        "/proc/loadavg",
        &["proc/loadavg", "proc/vm/loadavg", "proc/vm/sample2/loadavg"],
        loadavg,
    );
    text_parser(
        "/proc/meminfo",
        &["proc/meminfo", "proc/vm/meminfo"],
        meminfo,
    );
    text_parser(
        "/proc/uptime",
        &["proc/uptime", "proc/vm/uptime", "proc/vm/sample2/uptime"],
        uptime,
    );
}

#[test]
fn proc_net_ip_vs_files() {
    text_parser(
        "/proc/net/ip_vs",
        &["ipvs/ip_vs", "ipvs/sample2/ip_vs"],
        ip_vs,
    );
    text_parser(
        "/proc/net/ip_vs_stats",
        &["ipvs/ip_vs_stats", "ipvs/sample2/ip_vs_stats"],
        ip_vs_stats,
    );
    // The connection table is read as bytes, not text: no lossy decoding in between.
    let corpus = fixtures(&["ipvs/ip_vs_conn", "ipvs/ip_vs_conn_sync"]);
    fuzz(
        "/proc/net/ip_vs_conn",
        &corpus,
        cases(TEXT_CASES),
        |bytes| match sum_ip_vs_conn(bytes, 3) {
            Ok(_) => None,
            Err(ConnReadError::Parse(e)) => {
                located("/proc/net/ip_vs_conn", &String::from_utf8_lossy(bytes), &e)
            }
            Err(other) => Some(format!("reading bytes in memory failed: {other}")),
        },
    );
}

#[test]
fn ipvsadm_listings() {
    text_parser(
        "ipvsadm",
        &[
            "ipvs/ipvsadm-Ln-exact.txt",
            "ipvs/ipvsadm-Ln-exact-stats.txt",
            "ipvs/ipvsadm-Ln-exact-rate.txt",
            "ipvs/ipvsadm-Ln-exact-thresholds.txt",
            "ipvs/ipvsadm-Ln-exact-persistent-conn.txt",
            "ipvs/ipvsadm-Ln-exact-tun-info.txt",
            "ipvs/ipvsadm-Ln-exact-f1.txt",
            "ipvs/ipvsadm-Ln-exact-t-dr80.txt",
        ],
        ipvsadm_list,
    );
}

#[test]
fn ipvsadm_daemon_listings() {
    text_parser(
        "ipvsadm --daemon",
        &[
            "ipvs/ipvsadm-Ln-daemon-master.txt",
            "ipvs/ipvsadm-Ln-daemon-backup.txt",
            "ipvs/ipvsadm-Ln-daemon-both.txt",
        ],
        |text| {
            let daemons = ipvsadm_daemon(text)?;
            // What is read is bounded and printable, whatever came.
            for d in &daemons {
                assert!(d.mcast_ifn.len() <= 15, "{d:?}");
                assert!(!d.mcast_ifn.chars().any(char::is_control), "{d:?}");
            }
            assert!(daemons.len() <= 2, "{daemons:?}");
            Ok(daemons)
        },
    );
}

/// A node's greeting and a poll's reply, as the node program prints them, from the captured
/// `/proc` files.
fn node_replies() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for dir in ["proc", "proc/vm"] {
        let mut reply = String::new();
        for f in ["stat", "loadavg", "meminfo", "uptime"] {
            reply.push_str(&format!("@@lbtop {f}\n"));
            reply.push_str(&String::from_utf8_lossy(&fixture(&format!(
                "tests/fixtures/{dir}/{f}"
            ))));
        }
        reply.push_str("@@lbtop end\n");
        out.push(reply.into_bytes());
    }
    out.push(b"lbtop-node 2\n@@lbtop hostname\nweb1\n@@lbtop osrelease\n6.1.0-56-amd64\n".to_vec());
    out.push(b"lbtop-router 2\n@@lbtop hz 100\n".to_vec());
    out.push(
        b"@@lbtop cpu 4242 (sh) S 1 4242 4242 0 -1 4194560 120 0 0 0 7 3 11 5 20 0 1 0\n".to_vec(),
    );
    // The kept reader's "same" and patch of /proc/net/ip_vs (laid over the fixture's table).
    out.push(
        b"@@lbtop cpu start x\n@@lbtop ip_vs same\n@@lbtop ip_vs_stats\n@@lbtop end 3\n".to_vec(),
    );
    out.push(
        b"@@lbtop ip_vs patch\n112 3\nTCP\n230 12\n  -> 0A4D000\n@@lbtop sysctl\nip_forward 1\n"
            .to_vec(),
    );
    out
}

#[test]
fn ssh_replies() {
    let corpus = node_replies();
    let table = String::from_utf8_lossy(&fixture("tests/fixtures/ipvs/ip_vs")).into_owned();
    fuzz("ssh reply", &corpus, cases(TEXT_CASES), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        let _ = node_greeting(&text);
        let _ = router_greeting(&text);
        for (name, body) in Sections::split(&text).parts {
            if let Some(line) = name.strip_prefix("cpu ") {
                let _ = cpu_ticks(line);
            }
            let _ = body.len();
        }
        let mut last = Some(table.clone());
        if let Err(e) = with_whole_ip_vs(text.clone().into_owned(), &mut last)
            && !e.to_string().contains("/proc/net/ip_vs")
        {
            return Some(format!("the error names no /proc file: {e}"));
        }
        match node_reply(&text, Timestamp(0), None) {
            Ok(_) => None,
            Err(SshError::Reply(m)) if m.contains("/proc/") => None,
            Err(e) => Some(format!("the error names no /proc file: {e}")),
        }
    });
}

/// A small recording of the scripted cluster: keyframes, deltas, alerts and the index.
fn recording() -> Vec<u8> {
    let shape = ClusterShape {
        nodes: 3,
        cores: 2,
        services: 2,
        reals_per_service: 2,
    };
    let options = WriterOptions {
        keyframe_every: std::time::Duration::from_secs(4),
        ..WriterOptions::default()
    };
    let mut w = Writer::new(Vec::new(), scripted_info(shape, &options), options).expect("writer");
    let mut c = ScriptedCluster::new(shape, 11);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, 12).expect("record");
    w.finish().expect("finish")
}

#[test]
fn recordings() {
    let good = recording();
    // Without its index too, so that the frame scan is fuzzed as well as the index.
    let cut = good[..good.len() * 9 / 10].to_vec();
    let dir = tempfile::tempdir().expect("temp dir");
    let path: PathBuf = dir.path().join("fuzz.lbrec");
    fuzz("recording", &[good, cut], cases(RECORDING_CASES), |bytes| {
        if let Err(e) = std::fs::write(&path, bytes) {
            return Some(format!("writing the case: {e}"));
        }
        match Player::open(&path) {
            Ok(mut p) => {
                let mut frames = 0;
                while p.next_frame().is_some() {
                    frames += 1;
                }
                let _ = p.damage_report();
                if frames == 0 && p.recording.frames.is_empty() {
                    return Some("opened with no frame".into());
                }
                None
            }
            Err(e) if e.to_string().starts_with(&path.display().to_string()) => None,
            Err(e) => Some(format!("the error does not name the file: {e}")),
        }
    });
}

fn files_in(dir: &str) -> Vec<Vec<u8>> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&full)
        .unwrap_or_else(|e| panic!("{}: {e}", full.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

#[test]
fn config_files_and_key_names() {
    let mut corpus = files_in("tests/fixtures/config/valid");
    corpus.extend(files_in("tests/fixtures/config/invalid"));
    corpus.push(fixture("lbtop.example.toml"));
    let origin = Path::new("fuzz.toml");
    fuzz("config", &corpus, cases(TEXT_CASES), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        match Config::from_toml_str(&text, origin, &Overrides::default()) {
            Ok(_) => None,
            Err(e) if e.to_string().starts_with("fuzz.toml:") => None,
            Err(e) => Some(format!("the error does not name the file and line: {e}")),
        }
    });

    let keys: Vec<Vec<u8>> = [
        "q",
        "ctrl-r",
        "shift-tab",
        "f5",
        "alt-enter",
        "space",
        "?",
        "G",
    ]
    .iter()
    .map(|k| k.as_bytes().to_vec())
    .collect();
    fuzz("key name", &keys, cases(TEXT_CASES), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        match KeySpec::from_str(&text) {
            Ok(k) => (KeySpec::from_str(&k.to_string()).ok() != Some(k))
                .then(|| format!("{text:?} parsed as {k}, which does not read back")),
            Err(e) if !e.to_string().is_empty() => None,
            Err(e) => Some(format!("an empty error: {e:?}")),
        }
    });
}

#[test]
fn theme_files() {
    let mut corpus = files_in("themes");
    corpus.extend(files_in("tests/fixtures/config/themes"));
    let origin = Path::new("fuzz-theme.toml");
    fuzz("theme", &corpus, cases(TEXT_CASES), |bytes| {
        let text = String::from_utf8_lossy(bytes);
        match Theme::from_toml_str(&text, origin) {
            Ok(_) => None,
            Err(e) if e.to_string().starts_with("fuzz-theme.toml") => None,
            Err(e) => Some(format!("the error does not name the file: {e}")),
        }
    });
}
