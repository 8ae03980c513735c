//! Crash safety and compatibility of the `.lbrec` format: a cut-off file is readable up to its
//! last whole frame, a damaged frame is skipped and counted, a damaged header is refused with exit
//! status 2, a newer major version is refused clearly, and unknown fields are ignored.

mod support;

use support::bin::lbtop;
use support::bounded;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lbtop::app::{State, StateOptions};
use lbtop::model::sample::{NodeSample, Timestamp};
use lbtop::record::format::{
    Entry, FILE_MAGIC, FRAME_HEADER_LEN, FrameHeader, FrameKind, FramePayload, HostDecl, MAJOR,
    Packed, Part, Role, TAIL_LEN, decode_tail,
};
use lbtop::record::writer::WriterOptions;
use lbtop::record::{Player, RecordError, Recording, Writer};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use lbtop::testing::{record_scripted, scripted_info};

const SHAPE: ClusterShape = ClusterShape {
    nodes: 5,
    cores: 2,
    services: 2,
    reals_per_service: 2,
};

fn options() -> WriterOptions {
    WriterOptions {
        keyframe_every: std::time::Duration::from_secs(10),
        ..WriterOptions::default()
    }
}

/// A clean recording of `steps` polls, as bytes.
fn recording(steps: usize) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), scripted_info(SHAPE, &options()), options()).expect("w");
    let mut c = ScriptedCluster::new(SHAPE, 3);
    let mut s = State::new(StateOptions::default());
    record_scripted(&mut w, &mut c, &mut s, steps).expect("record");
    w.finish().expect("finish")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write");
    p
}

/// Frame offsets, from the index of a clean file.
fn offsets(path: &Path) -> Vec<u64> {
    Recording::open(path)
        .expect("open")
        .frames
        .iter()
        .map(|f| f.offset)
        .collect()
}

fn count_frames(path: &Path) -> (usize, Player) {
    let mut p = Player::open(path).expect("open");
    let mut n = 0;
    while p.next_frame().is_some() {
        n += 1;
    }
    (n, p)
}

#[test]
fn a_file_cut_off_anywhere_is_readable_up_to_its_last_whole_frame() {
    let d = tempfile::tempdir().expect("dir");
    let full = recording(30);
    let clean = write(d.path(), "clean.lbrec", &full);
    let offs = offsets(&clean);
    // Cut inside frame 20 (as SIGKILL or a power cut leaves it): frames 0..20 remain.
    for cut in [
        offs[20] + 5,
        offs[20] + FRAME_HEADER_LEN as u64 + 3,
        offs[21] - 1,
    ] {
        let p = write(d.path(), "cut.lbrec", &full[..cut as usize]);
        let (n, player) = count_frames(&p);
        assert_eq!(n, 20, "cut at {cut}");
        assert!(!player.recording.indexed);
        let report = player.damage_report().expect("a cut is reported");
        assert!(report.contains("cut-off frame"), "{report}");
    }
    // Cut exactly between frames: all whole frames, nothing to report but the missing index.
    let p = write(d.path(), "between.lbrec", &full[..offs[25] as usize]);
    let (n, player) = count_frames(&p);
    assert_eq!(n, 25);
    assert_eq!(player.damage_report(), None);
}

#[test]
fn a_damaged_frame_is_skipped_and_counted_and_the_rest_plays() {
    let d = tempfile::tempdir().expect("dir");
    let full = recording(30);
    let clean = write(d.path(), "clean.lbrec", &full);
    let offs = offsets(&clean);

    // A flipped byte in frame 12's payload: the index still finds every frame; frame 12 fails
    // its CRC, and the deltas after it in its keyframe group (13..19) cannot be rebuilt.
    let mut bad = full.clone();
    bad[offs[12] as usize + FRAME_HEADER_LEN + 4] ^= 0x40;
    let p = write(d.path(), "payload.lbrec", &bad);
    let (n, player) = count_frames(&p);
    assert_eq!(n, 29, "every other frame is read");
    assert_eq!(player.damaged_frames, 1);
    let report = player.damage_report().expect("reported");
    assert!(report.contains("1 damaged frame skipped"), "{report}");
    assert!(
        report.contains(&format!("frame 12 at byte {}", offs[12])),
        "where: {report}"
    );
    assert!(report.contains("dropped"), "{report}");
    // Every frame damaged: an export is an error, not an empty success.
    let mut ruined = full.clone();
    for &o in &offs {
        ruined[o as usize + FRAME_HEADER_LEN + 4] ^= 0x40;
    }
    let p = write(d.path(), "ruined.lbrec", &ruined);
    let out = lbtop(&["replay", p.to_str().expect("utf8"), "--export", "csv"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no frame could be read"), "{err}");

    // A damaged frame header in a file without its index (as after a crash): the scan finds its
    // feet at the next frame's magic and counts the damaged stretch.
    let mut bad = full[..offs[29] as usize].to_vec();
    bad[offs[7] as usize + 9] ^= 0xff;
    let p = write(d.path(), "header.lbrec", &bad);
    let (n, player) = count_frames(&p);
    assert_eq!(n, 28, "frames 0..29 less frame 7");
    assert_eq!(player.recording.damage.damaged_regions, 1);
    assert!(
        player
            .damage_report()
            .is_some_and(|r| r.contains("1 damaged frame skipped"))
    );

    // The export warns on standard error and still exits 0.
    let out = lbtop(&["replay", p.to_str().expect("utf8"), "--export", "json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("1 damaged frame skipped"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 28);
}

#[test]
fn a_damaged_header_is_refused_with_exit_status_2() {
    let d = tempfile::tempdir().expect("dir");
    let mut bad = recording(3);
    bad[25] ^= 0x01; // inside the header's CBOR info: the header CRC fails
    let p = write(d.path(), "bad-header.lbrec", &bad);
    assert!(matches!(
        Recording::open(&p),
        Err(RecordError::DamagedHeader { .. })
    ));
    for args in [vec!["replay", "X", "--export", "json"], vec!["replay", "X"]] {
        let args: Vec<&str> = args
            .into_iter()
            .map(|a| {
                if a == "X" {
                    p.to_str().expect("utf8")
                } else {
                    a
                }
            })
            .collect();
        let out = lbtop(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("header is damaged") && stderr.contains("bad-header.lbrec"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    // Not a recording at all.
    let p = write(d.path(), "notes.txt", b"hello, this is not a recording");
    let out = lbtop(&["replay", p.to_str().expect("utf8"), "--export", "csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an lbtop recording"));
}

#[test]
fn a_newer_major_version_is_refused_clearly() {
    let d = tempfile::tempdir().expect("dir");
    let mut b = recording(3);
    assert_eq!(&b[0..8], FILE_MAGIC);
    b[8..10].copy_from_slice(&(MAJOR + 1).to_le_bytes());
    b[10..12].copy_from_slice(&0u16.to_le_bytes());
    let p = write(d.path(), "future.lbrec", &b);
    let out = lbtop(&["replay", p.to_str().expect("utf8"), "--export", "json"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("newer lbtop")
            && stderr.contains("format 2.0")
            && stderr.contains("upgrade"),
        "{stderr}"
    );
}

use ciborium::Value;

/// Adds `"from-the-future": 1` to a CBOR map (a struct as serde writes it).
fn add_field(v: &mut Value) {
    if let Value::Map(entries) = v {
        entries.push((
            Value::Text("from-the-future".into()),
            Value::Integer(1.into()),
        ));
    }
}

fn field<'a>(v: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    match v {
        Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, x)| x),
        _ => None,
    }
}

fn each(v: Option<&mut Value>, mut f: impl FnMut(&mut Value)) {
    if let Some(Value::Array(items)) = v {
        items.iter_mut().for_each(&mut f);
    }
}

/// An unknown field in every struct of a frame payload: the payload, host declarations, entries,
/// their parts and the sample shapes in them, alerts.
fn add_unknown_fields(payload: &mut Value) {
    each(field(payload, "hosts"), add_field);
    each(field(payload, "alerts"), add_field);
    each(field(payload, "events"), |entry| {
        if let Value::Map(variant) = entry
            && let Some((_, inner)) = variant.first_mut()
        {
            for part in ["sample", "services", "rest"] {
                if let Some(p) = field(inner, part) {
                    match field(p, "shape") {
                        Some(Value::Array(services)) => services.iter_mut().for_each(add_field),
                        Some(shape) => add_field(shape),
                        None => {}
                    }
                    add_field(p);
                }
            }
            add_field(inner);
        }
    });
    add_field(payload);
}

#[test]
fn unknown_fields_and_a_newer_minor_version_are_ignored() {
    let d = tempfile::tempdir().expect("dir");
    let full = recording(12);
    let clean = write(d.path(), "clean.lbrec", &full);
    let rec = Recording::open(&clean).expect("open");
    // Rebuild the file as a later 1.x writer might: minor 9, an extra field in every map of the
    // header and of every frame payload, and no index.
    let mut info = Value::serialized(&rec.header.info).expect("value");
    each(field(&mut info, "nodes"), add_field);
    add_field(&mut info);
    let mut info_bytes = Vec::new();
    ciborium::into_writer(&info, &mut info_bytes).expect("cbor");
    let mut out = Vec::new();
    out.extend_from_slice(FILE_MAGIC);
    out.extend_from_slice(&MAJOR.to_le_bytes());
    out.extend_from_slice(&9u16.to_le_bytes());
    out.extend_from_slice(&(info_bytes.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out);
    h.update(&info_bytes);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&info_bytes);
    for f in &rec.frames {
        let at = f.offset as usize;
        let header = FrameHeader::decode(&full[at..at + FRAME_HEADER_LEN]).expect("header");
        let payload =
            &full[at + FRAME_HEADER_LEN..at + FRAME_HEADER_LEN + header.payload_len as usize];
        let raw = zstd::bulk::decompress(payload, header.raw_len as usize).expect("zstd");
        let mut v: Value = ciborium::from_reader(raw.as_slice()).expect("cbor");
        add_unknown_fields(&mut v);
        let mut raw = Vec::new();
        ciborium::into_writer(&v, &mut raw).expect("cbor");
        let compressed = zstd::bulk::compress(&raw, 3).expect("zstd");
        let header = FrameHeader {
            payload_len: compressed.len() as u32,
            raw_len: raw.len() as u32,
            payload_crc: crc32fast::hash(&compressed),
            ..header
        };
        assert_ne!(header.kind, FrameKind::Index);
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&compressed);
    }
    let future = write(d.path(), "future-minor.lbrec", &out);
    assert!(out.len() > full.len() - TAIL_LEN);

    let (mut a, mut b) = (
        Player::open(&clean).expect("clean"),
        Player::open(&future).expect("a newer minor version opens"),
    );
    assert_eq!(b.recording.header.minor, 9);
    let mut frames = 0;
    while let Some(x) = a.next_frame() {
        let y = b.next_frame().expect("same frame count");
        assert_eq!(x, y, "frame {}", x.index);
        frames += 1;
    }
    assert_eq!(frames, 12);
    assert_eq!(b.damage_report(), None);
}

/// A frame whose numbers part is `zeros` zero bytes for the shape of one node sample (a
/// dozen-odd numbers): one word per byte to a decoder that trusts it. CRCs are valid and zstd
/// squeezes the zeros to a few KB, so a 25 KB file can claim 250 MiB.
fn frame_of_zero_numbers(seq: u32, time: Timestamp, zeros: usize) -> Vec<u8> {
    let payload = FramePayload {
        hosts: vec![HostDecl {
            id: 77,
            role: Role::Node,
            name: "crafted".into(),
            host: "crafted".into(),
        }],
        events: vec![Entry::Node {
            host: 77,
            sample: Part {
                shape: Some(NodeSample::default()),
                nums: Packed(Vec::new()),
            },
        }],
        ..FramePayload::default()
    };
    let mut cbor = Vec::new();
    ciborium::into_writer(&payload, &mut cbor).expect("cbor");
    // `"nums": h''` becomes `"nums": h'00…00'` (a byte string with a 4-byte length).
    let empty = b"\x64nums\x40";
    let at = cbor
        .windows(empty.len())
        .position(|w| w == empty)
        .expect("the numbers")
        + empty.len()
        - 1;
    let mut z = zstd::stream::Encoder::new(Vec::new(), 3).expect("zstd");
    z.write_all(&cbor[..at]).expect("zstd");
    z.write_all(&[0x5a]).expect("zstd");
    z.write_all(&(zeros as u32).to_be_bytes()).expect("zstd");
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len());
        z.write_all(&chunk[..n]).expect("zstd");
        left -= n;
    }
    z.write_all(&cbor[at + 1..]).expect("zstd");
    let compressed = z.finish().expect("zstd");
    let header = FrameHeader {
        kind: FrameKind::Delta,
        flags: 0,
        seq,
        time,
        payload_len: compressed.len() as u32,
        raw_len: (cbor.len() - 1 + 5 + zeros) as u32,
        payload_crc: crc32fast::hash(&compressed),
    };
    let mut frame = header.encode().to_vec();
    frame.extend_from_slice(&compressed);
    frame
}

#[test]
fn a_crafted_frame_claiming_hundreds_of_mib_of_numbers_is_skipped_in_bounded_memory() {
    let d = tempfile::tempdir().expect("dir");
    let full = recording(3);
    let last = Recording::open(&write(d.path(), "clean.lbrec", &full))
        .expect("open")
        .end();
    // Without its index (as after a crash), then two crafted frames: 250 MiB of numbers, far past
    // what its 8 KB could hold; 15 MiB, which decompresses but is far past what its shape holds.
    let index_at = decode_tail(&full[full.len() - TAIL_LEN..]).expect("tail") as usize;
    let mut bytes = full[..index_at].to_vec();
    bytes.extend(frame_of_zero_numbers(
        3,
        Timestamp(last.0 + 1000),
        250 << 20,
    ));
    bytes.extend(frame_of_zero_numbers(4, Timestamp(last.0 + 2000), 15 << 20));
    assert!(bytes.len() < 64 << 10, "{} bytes", bytes.len());
    let p = write(d.path(), "crafted.lbrec", &bytes);

    let run = bounded::lbtop_within(
        &["replay", p.to_str().expect("utf8"), "--export", "json"],
        Duration::from_secs(120),
    );
    assert!(run.finished().success(), "{}", run.stderr);
    assert!(
        run.max_rss_mb() < 200,
        "peak memory {} MB; {}",
        run.max_rss_mb(),
        run.stderr
    );
    assert!(
        run.stderr.contains("1 damaged frame skipped")
            && run
                .stderr
                .contains("1 sample that depended on them dropped"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout.lines().count(),
        4,
        "the three polls and the empty frame"
    );
}

#[test]
fn text_in_a_recording_reaches_nothing_unprintable() {
    use lbtop::model::alert::{AlertEvent, AlertKind, Severity};
    use lbtop::model::sample::{HostFacts, HostStatus, NodeSample, Report, SourceEvent};
    use lbtop::record::Item;
    // A recording is a file from anywhere: names, messages and alerts in it are escaped as they
    // are read, as a live host's are.
    let hostile = "lvs\u{1b}]0;owned\u{7}\u{202e}\u{2028}";
    let mut info = scripted_info(SHAPE, &options());
    info.router = Some(hostile.to_string());
    let t = Timestamp(info.created.0 + 1000);
    let node0 = info.nodes.first().cloned().expect("a node");
    let mut w = Writer::new(Vec::new(), info, options()).expect("writer");
    w.push(Item::Event(SourceEvent::Router {
        host: hostile.to_string(),
        report: Report::Status {
            time: t,
            status: HostStatus::Error,
            message: Some(format!("refused: {hostile}")),
        },
    }));
    w.push(Item::Event(SourceEvent::Node {
        name: node0.name,
        host: node0.host,
        report: Report::Sample(NodeSample {
            time: t,
            facts: Some(HostFacts {
                hostname: Some(hostile.to_string()),
                os: None,
                kernel: None,
            }),
            ..NodeSample::default()
        }),
    }));
    w.push(Item::Alert(AlertEvent {
        time: t,
        severity: Severity::Critical,
        subject: hostile.to_string(),
        kind: AlertKind::Unreachable,
        message: hostile.to_string(),
        raised: true,
    }));
    let bytes = w.finish().expect("finish");
    let dir = tempfile::tempdir().expect("dir");
    let path = write(dir.path(), "hostile.lbrec", &bytes);
    let mut p = Player::open(&path).expect("open");
    // The strings themselves (not their Debug form, which escapes on its own).
    let mut seen: Vec<String> = p.recording.info().router.iter().cloned().collect();
    while let Some(f) = p.next_frame() {
        for e in &f.events {
            if let SourceEvent::Node {
                report: Report::Sample(n),
                ..
            } = e
                && let Some(h) = n.facts.as_ref().and_then(|f| f.hostname.clone())
            {
                seen.push(h);
            }
            if let SourceEvent::Router { host, report } = e {
                seen.push(host.clone());
                if let Report::Status {
                    message: Some(m), ..
                } = report
                {
                    seen.push(m.clone());
                }
            }
        }
        for a in &f.alerts {
            seen.push(a.subject.clone());
            seen.push(a.message.clone());
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    for s in &seen {
        assert!(s.contains("owned"), "{s:?}");
        for c in ['\u{1b}', '\u{7}', '\u{202e}', '\u{2028}'] {
            assert!(!s.contains(c), "{c:?} reached the replay: {s:?}");
        }
    }
}
