//! Export without the TUI: the recording is played through the same `State::ingest` path as live,
//! and written out as JSON lines (one `--once --json` schema-1 snapshot per frame) or CSV (one row
//! per node per sample and one per real server per sample; columns in `docs/recording-format.md`).

use std::io::{self, Write};

use crate::app::State;
use crate::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use crate::report;

use super::format::HeaderInfo;
use super::player::{Decoded, Player};

/// Samples of history replayed before the first exported or shown moment, so that rates, CPU
/// percentages, sparklines and alert levels are what they were live.
pub const WARMUP_SAMPLES: i64 = 12;

/// The time window to export; both ends inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
}

/// How much was exported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub rows: u64,
}

/// Names the recording's hosts to a fresh state, as live mode declares its sources.
pub fn declare(state: &mut State, info: &HeaderInfo) {
    if let Some(r) = &info.router {
        state.add_router(r);
    }
    for n in &info.nodes {
        state.add_node(&n.name, &n.host);
    }
}

/// How long the warm-up before a seek is, in this recording.
pub fn warmup_ms(info: &HeaderInfo) -> i64 {
    WARMUP_SAMPLES * info.interval_ms.max(1) as i64
}

/// Feeds one decoded frame to the state, the way the live loop does: every event through
/// `ingest`, then the passing of time up to the frame's time. Calls `each` after every event.
pub fn feed(state: &mut State, frame: Decoded, mut each: impl FnMut(&State, &Fed)) {
    for event in frame.events {
        let fed = Fed::of(&event);
        state.ingest(event);
        each(state, &fed);
    }
    state.tick(frame.time);
}

/// Goes to frame `target` of the recording in `state` (declared, fresh), as replay shows it: the
/// alert history from before the warm-up is restored from the alerts the recording holds
/// (`Player::alerts_before`), then the warm-up frames, from the keyframe `WARMUP_SAMPLES` before
/// `target`, go through `State::ingest` as live. So the alerts pane, the alerts on and the nodes'
/// alert levels are what playing from the start would show, not only the warm-up's. The next
/// frame is then `target + 1`.
pub fn seek(player: &mut Player, state: &mut State, target: usize) {
    let warmup = warmup_ms(player.recording.info());
    let start = player.warmup_start(target, warmup);
    state.restore_alerts(player.alerts_before(start));
    player.seek(target, warmup, |d| feed(state, d, |_, _| {}));
}

/// What an event was, kept after `ingest` took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    NodeSample { name: String, time: Timestamp },
    RouterSample { time: Timestamp },
    Status,
}

impl Fed {
    fn of(e: &SourceEvent) -> Self {
        match e {
            SourceEvent::Node {
                name,
                report: Report::Sample(s),
                ..
            } => Fed::NodeSample {
                name: name.clone(),
                time: s.time,
            },
            SourceEvent::Router {
                report: Report::Sample(s),
                ..
            } => Fed::RouterSample { time: s.time },
            _ => Fed::Status,
        }
    }
}

/// Puts the player where `range` starts: at the beginning, or — for a later `from` — after a
/// warm-up on the frames before it, fed into `state` (declared, fresh) without output.
fn start(player: &mut Player, state: &mut State, range: Range) {
    match range.from {
        Some(from) if from > player.recording.start() => {
            let first = player.recording.frames.partition_point(|f| f.time < from);
            if first > 0 {
                seek(player, state, first - 1);
            } else {
                player.rewind();
            }
        }
        _ => player.rewind(),
    }
}

/// Plays `range` of the recording into `state` (declared, fresh), calling `each` after every
/// event and `frame` after every frame inside the range.
fn play(
    player: &mut Player,
    state: &mut State,
    range: Range,
    mut each: impl FnMut(&State, &Fed) -> io::Result<()>,
    mut frame: impl FnMut(&State) -> io::Result<()>,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    start(player, state, range);
    let mut err = None;
    while let Some(d) = player.next_frame() {
        if range.to.is_some_and(|to| d.time > to) {
            break;
        }
        feed(state, d, |s, fed| {
            if err.is_none()
                && let Err(e) = each(s, fed)
            {
                err = Some(e);
            }
        });
        if let Some(e) = err.take() {
            return Err(e);
        }
        frame(state)?;
        summary.frames += 1;
    }
    Ok(summary)
}

/// JSON lines: one schema-1 snapshot (`--once --json`, compact, `report::write_snapshot`) per
/// frame.
///
/// Three stages, each on its own thread, so that they overlap: decoding frames (zstd, CBOR, the
/// delta-coded numbers); feeding the state and writing the snapshots into a buffer; and, on the
/// calling thread, writing the buffers out, about a megabyte at a time. Buffers go back to be
/// reused, so no line allocates.
pub fn json(
    player: &mut Player,
    state: &mut State,
    range: Range,
    out: &mut impl Write,
) -> io::Result<Summary> {
    use std::sync::mpsc::sync_channel;
    // Frames and lines travel in batches: a hand-over wakes the other thread, and per frame
    // that would be tens of thousands of wake-ups an hour.
    const FRAMES: usize = 8;
    const BYTES: usize = 1 << 20;
    start(player, state, range);
    std::thread::scope(|scope| {
        let (frames_tx, frames) = sync_channel::<Vec<Decoded>>(2);
        let (lines_tx, lines) = sync_channel::<(Vec<u8>, u64)>(2);
        let (spent, spent_rx) = sync_channel::<Vec<u8>>(4);
        let decoder = scope.spawn(move || {
            let mut batch = Vec::with_capacity(FRAMES);
            while let Some(d) = player.next_frame() {
                if range.to.is_some_and(|to| d.time > to) {
                    break;
                }
                batch.push(d);
                if batch.len() == FRAMES {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(FRAMES));
                    if frames_tx.send(full).is_err() {
                        return;
                    }
                }
            }
            let _ = frames_tx.send(batch);
        });
        let formatter = scope.spawn(move || {
            let mut buf = Vec::with_capacity(BYTES + (BYTES >> 1));
            let mut count = 0u64;
            for d in frames.into_iter().flatten() {
                feed(state, d, |_, _| {});
                report::write_snapshot(state, &mut buf);
                buf.push(b'\n');
                count += 1;
                if buf.len() >= BYTES {
                    let mut next = spent_rx.try_recv().unwrap_or_default();
                    next.clear();
                    if lines_tx
                        .send((std::mem::replace(&mut buf, next), count))
                        .is_err()
                    {
                        return;
                    }
                    count = 0;
                }
            }
            if count > 0 {
                let _ = lines_tx.send((buf, count));
            }
        });
        let mut summary = Summary::default();
        let mut written = Ok(());
        for (buf, count) in lines.iter() {
            if let Err(e) = out.write_all(&buf) {
                written = Err(e);
                break;
            }
            summary.frames += count;
            summary.rows += count;
            let _ = spent.try_send(buf);
        }
        // Dropping the receiver stops the formatter, and so the decoder, at their next batch.
        drop(lines);
        let joined = [decoder.join(), formatter.join()];
        if joined.iter().any(Result::is_err) {
            return Err(io::Error::other("export thread panicked"));
        }
        written?;
        out.flush()?;
        Ok(summary)
    })
}

/// JSON lines the way `json` wrote them before `report::write_snapshot`: a serde `Snapshot` value
/// per frame, serialised by serde_json on up to four worker threads (CPU percentages at full
/// precision). Kept as the benchmark's alternative (`benches/record.rs`, `export_1h`).
pub fn json_serde(
    player: &mut Player,
    state: &mut State,
    range: Range,
    out: &mut impl Write,
) -> io::Result<Summary> {
    use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "export stopped");
    std::thread::scope(|scope| {
        let mut to_workers: Vec<SyncSender<report::Snapshot>> = Vec::new();
        let mut from_workers: Vec<Receiver<Vec<u8>>> = Vec::new();
        // Written lines go back to their worker for reuse: no fresh quarter-megabyte per line.
        let mut spent: Vec<SyncSender<Vec<u8>>> = Vec::new();
        for _ in 0..workers {
            let (tx, rx) = sync_channel::<report::Snapshot>(4);
            let (ltx, lrx) = sync_channel::<Vec<u8>>(4);
            let (stx, srx) = sync_channel::<Vec<u8>>(8);
            scope.spawn(move || {
                for snap in rx {
                    let mut line = srx.try_recv().unwrap_or_default();
                    line.clear();
                    if serde_json::to_writer(&mut line, &snap).is_err() {
                        break;
                    }
                    line.push(b'\n');
                    if ltx.send(line).is_err() {
                        break;
                    }
                }
            });
            to_workers.push(tx);
            from_workers.push(lrx);
            spent.push(stx);
        }
        // Lines go round the workers in turn, so reading them in turn keeps the order.
        let producer = scope.spawn(move || {
            let mut n = 0usize;
            play(
                player,
                state,
                range,
                |_, _| Ok(()),
                |state| {
                    to_workers[n % workers]
                        .send(report::snapshot(state))
                        .map_err(|_| gone())?;
                    n += 1;
                    Ok(())
                },
            )
        });
        let mut rows = 0u64;
        let mut written: io::Result<()> = Ok(());
        for i in 0.. {
            let Ok(line) = from_workers[i % workers].recv() else {
                break;
            };
            if let Err(e) = out.write_all(&line) {
                written = Err(e);
                break;
            }
            let _ = spent[i % workers].try_send(line);
            rows += 1;
        }
        drop(from_workers);
        let played = producer
            .join()
            .map_err(|_| io::Error::other("export thread panicked"))?;
        written?;
        let mut s = played?;
        s.rows = rows;
        out.flush()?;
        Ok(s)
    })
}

/// The CSV columns, in order.
pub const CSV_COLUMNS: &[&str] = &[
    "time",
    "kind",
    "node",
    "host",
    "status",
    "cores",
    "load1",
    "load5",
    "load15",
    "load_per_core",
    "cpu_percent",
    "memory_used_percent",
    "alert",
    "service",
    "real",
    "forward",
    "weight",
    "active_conns",
    "inactive_conns",
    "cps",
    "in_pps",
    "out_pps",
    "in_bps",
    "out_bps",
];

/// A text cell as a spreadsheet will show it, not run it. Names, hosts and everything else that
/// comes from outside lbtop are text cells. Control and direction-changing characters are written
/// escaped (`\n`, `\u{1b}`, as the screen shows them), and a cell that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return — a formula to Excel, LibreOffice and Google Sheets — gets a
/// `'` in front (OWASP, "CSV Injection"), which the writer's quoting then puts in quotes.
/// Numbers are not text cells: lbtop writes them itself, and a negative one stays a number.
pub fn csv_text(text: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let shown = if text.chars().any(|c| c.is_control() || c > '\u{7f}') {
        Cow::Owned(crate::model::text::printable(text, usize::MAX))
    } else {
        Cow::Borrowed(text)
    };
    if formula {
        Cow::Owned(format!("'{shown}"))
    } else {
        shown
    }
}

/// One CSV row as it is built: text cells through `csv_text`, numbers as numbers, and no value
/// (not applicable, not known yet, or not a finite number) as an empty cell, as `null` is in the
/// JSON.
#[derive(Default)]
struct Row {
    cells: csv::ByteRecord,
    number: String,
}

impl Row {
    fn text(&mut self, text: &str) {
        self.cells.push_field(csv_text(text).as_bytes());
    }

    fn empty(&mut self, n: usize) {
        for _ in 0..n {
            self.cells.push_field(b"");
        }
    }

    fn value<T: std::fmt::Display>(&mut self, v: Option<T>) {
        use std::fmt::Write as _;
        self.number.clear();
        if let Some(v) = v {
            let _ = write!(self.number, "{v}");
        }
        self.cells.push_field(self.number.as_bytes());
    }

    fn num(&mut self, v: Option<f64>) {
        self.value(v.filter(|x| x.is_finite()));
    }
}

/// The error a CSV writer met, as the I/O error it was (so a closed pipe stays `BrokenPipe`).
fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("CSV: {other:?}")),
    }
}

/// CSV: one row per node per sample, one row per real server per router sample. Quoted as RFC
/// 4180 says (by the `csv` crate), and any cell with a `'` in it too, so that a formula
/// neutralised by `csv_text` is both quoted and prefixed.
pub fn csv(
    player: &mut Player,
    state: &mut State,
    range: Range,
    out: &mut impl Write,
) -> io::Result<Summary> {
    // `comment` makes the writer quote every cell that holds the character: no comments are
    // written, but every neutralised formula is quoted.
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .comment(Some(b'\''))
        .from_writer(out);
    w.write_record(CSV_COLUMNS).map_err(csv_error)?;
    let mut rows = 0u64;
    let mut row = Row::default();
    let mut s = play(
        player,
        state,
        range,
        |state, fed| {
            match fed {
                Fed::NodeSample { name, time } => {
                    let Some(n) = state.node(name) else {
                        return Ok(());
                    };
                    let st = n.stats.as_ref();
                    row.cells.clear();
                    row.text(&time.rfc3339());
                    row.text("node");
                    row.text(&n.name);
                    row.text(&n.host);
                    row.text(n.status.as_str());
                    row.value(st.map(|s| s.cores));
                    row.num(st.map(|s| s.load[0]));
                    row.num(st.map(|s| s.load[1]));
                    row.num(st.map(|s| s.load[2]));
                    row.num(st.map(|s| s.load_per_core));
                    row.num(st.and_then(|s| s.cpu_total).map(|c| c.busy()));
                    row.num(st.and_then(|s| s.memory_used_fraction()).map(|f| f * 100.0));
                    row.text(state.alerts.worst(&n.name).map_or("", |s| s.as_str()));
                    row.empty(CSV_COLUMNS.len() - row.cells.len());
                    w.write_byte_record(&row.cells).map_err(csv_error)?;
                    rows += 1;
                }
                Fed::RouterSample { time } => {
                    let Some(r) = state.router.as_ref() else {
                        return Ok(());
                    };
                    let Some(cur) = r.cur.as_ref() else {
                        return Ok(());
                    };
                    let status = if r.status == HostStatus::Ok {
                        "ok"
                    } else {
                        r.status.as_str()
                    };
                    let t = time.rfc3339();
                    for (si, svc) in cur.services.iter().enumerate() {
                        let svc_id = svc.key.to_string();
                        let sst = r.stats.services.get(si);
                        for (ri, real) in svc.reals.iter().enumerate() {
                            let rates = sst.and_then(|s| s.reals.get(ri)).and_then(|s| s.rates);
                            let node = state.node_for_real(real.address);
                            row.cells.clear();
                            row.text(&t);
                            row.text("real");
                            row.text(node.map_or("", |n| n.name.as_str()));
                            row.text(&r.host);
                            row.text(status);
                            // cores … alert are node columns: empty on a real server's row.
                            row.empty(8);
                            row.text(&svc_id);
                            row.text(&real.id());
                            row.text(real.forward.as_str());
                            row.value(Some(real.weight));
                            row.value(Some(real.active_conns));
                            row.value(Some(real.inactive_conns));
                            row.num(rates.map(|r| r.cps));
                            row.num(rates.map(|r| r.in_pps));
                            row.num(rates.map(|r| r.out_pps));
                            row.num(rates.map(|r| r.in_bps));
                            row.num(rates.map(|r| r.out_bps));
                            w.write_byte_record(&row.cells).map_err(csv_error)?;
                            rows += 1;
                        }
                    }
                }
                Fed::Status => {}
            }
            Ok(())
        },
        |_| Ok(()),
    )?;
    s.rows = rows;
    w.flush()?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::csv_text;

    #[test]
    fn formula_cells_get_a_quote_in_front_and_control_characters_are_escaped() {
        for f in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_text(f).starts_with('\''), "{f:?}: {}", csv_text(f));
        }
        assert_eq!(
            csv_text("=HYPERLINK(\"http://x\",\"x\")"),
            "'=HYPERLINK(\"http://x\",\"x\")"
        );
        assert_eq!(csv_text("\tx"), "'\\tx");
        assert_eq!(csv_text("web1\n=1+1"), "web1\\n=1+1");
        assert_eq!(csv_text("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(csv_text("a\u{202e}b"), "a\\u{202e}b");
        for plain in ["web01", "10.0.0.2", "tcp:192.0.2.10:80", "wéb", "a-b", ""] {
            assert_eq!(csv_text(plain), plain);
        }
    }
}
