//! Export without the TUI: the recording is played through the same `State::ingest` path as live
//! (`app::playback`), and written out as JSON lines (one `--once --json` schema-1 snapshot per
//! frame) or CSV (one row per node per sample and one per real server per sample; columns in
//! `docs/recording-format.md`).

use std::io::{self, Write};

use crate::app::State;
use crate::app::playback::{Fed, FrameNotes, Range, Summary, feed, play, start};
use crate::model::alert::AlertEvent;
use crate::model::sample::{HostStatus, Timestamp};
use crate::record::player::{Decoded, Player};
use crate::record::{ActionOutcome, ActionRecord};

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
            for mut d in frames.into_iter().flatten() {
                let notes = FrameNotes::of(&mut d);
                feed(state, d, |_, _| {});
                super::write_snapshot(state, &mut buf);
                write_events(&notes, &mut buf);
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

/// Closes a snapshot just written with the frame's `events`: the alerts raised or cleared and
/// the operator's actions recorded in it, oldest first (`[]` when none; docs/json.md).
fn write_events(notes: &FrameNotes, buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'}') {
        buf.pop();
    }
    buf.extend_from_slice(b",\"events\":[");
    let mut first = true;
    let mut sep = |buf: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            buf.push(b',');
        }
    };
    for a in &notes.alerts {
        sep(buf);
        let _ = serde_json::to_writer(&mut *buf, &alert_event(a));
    }
    for a in &notes.actions {
        sep(buf);
        let _ = serde_json::to_writer(&mut *buf, &action_event(a));
    }
    buf.extend_from_slice(b"]}");
}

fn alert_event(a: &AlertEvent) -> serde_json::Value {
    serde_json::json!({
        "type": "alert",
        "time": a.time.rfc3339(),
        "subject": a.subject,
        "kind": a.kind,
        "severity": a.severity,
        "raised": a.raised,
        "message": a.message,
    })
}

fn action_event(a: &ActionRecord) -> serde_json::Value {
    serde_json::json!({
        "type": "action",
        "time": a.time.rfc3339(),
        "user": a.user,
        "router": a.router,
        "service": a.service,
        "real": a.real,
        "old_weight": a.old_weight,
        "new_weight": a.new_weight,
        "result": outcome(&a.result),
    })
}

fn outcome(result: &ActionOutcome) -> String {
    match result {
        ActionOutcome::Done => "done".into(),
        ActionOutcome::Failed(e) => format!("failed: {e}"),
    }
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
    "message",
];

/// A text cell as a spreadsheet will show it, not run it. Names, hosts and everything else that
/// comes from outside lbtop are text cells. Control and direction-changing characters are written
/// escaped (`\n`, `\u{1b}`, as the screen shows them), and a cell that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return — a formula to Excel, LibreOffice and Google Sheets — gets a
/// `'` in front (OWASP, "CSV Injection"), which the writer's quoting then puts in quotes.
/// Numbers are not text cells: lbtop writes them itself, and a negative one stays a number.
pub(crate) fn csv_text(text: &str) -> std::borrow::Cow<'_, str> {
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

    /// A number with `decimals` places, always the same for a column (loads 2, percentages and
    /// rates 1); not finite is an empty cell, as JSON's `null`.
    fn num(&mut self, v: Option<f64>, decimals: usize) {
        use std::fmt::Write as _;
        self.number.clear();
        if let Some(v) = v.filter(|x| x.is_finite()) {
            let _ = write!(self.number, "{v:.decimals$}");
        }
        self.cells.push_field(self.number.as_bytes());
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
    // Both callbacks write rows: the samples' after each event, the notes' after each frame.
    let out = std::cell::RefCell::new((0u64, Row::default(), w));
    let mut s = play(
        player,
        state,
        range,
        |state, fed| {
            let (rows, row, w) = &mut *out.borrow_mut();
            *rows += match fed {
                Fed::NodeSample { name, time } => csv_node(state, name, *time, row, w)?,
                Fed::RouterSample { time } => csv_reals(state, *time, row, w)?,
                Fed::Status => 0,
            };
            Ok(())
        },
        |_, notes| {
            let (rows, row, w) = &mut *out.borrow_mut();
            *rows += csv_notes(notes, row, w)?;
            Ok(())
        },
    )?;
    let (rows, _, mut w) = out.into_inner();
    s.rows = rows;
    w.flush()?;
    Ok(s)
}

/// A row per alert raised or cleared and per operator action in a frame: `kind` is `alert` or
/// `action`; an alert names its subject in `node` and its level (or `cleared`) in `alert`; an
/// action names the router in `host`, its service, real server and new weight; both say the rest
/// in `message`.
fn csv_notes<W: Write>(
    notes: &FrameNotes,
    row: &mut Row,
    w: &mut csv::Writer<W>,
) -> io::Result<u64> {
    let width = CSV_COLUMNS.len();
    for a in &notes.alerts {
        row.cells.clear();
        row.text(&a.time.rfc3339());
        row.text("alert");
        row.text(&a.subject);
        row.empty(9);
        row.text(if a.raised {
            a.severity.as_str()
        } else {
            "cleared"
        });
        row.empty(width - 1 - row.cells.len());
        row.text(&a.message);
        w.write_byte_record(&row.cells).map_err(csv_error)?;
    }
    for a in &notes.actions {
        row.cells.clear();
        row.text(&a.time.rfc3339());
        row.text("action");
        row.empty(1);
        row.text(&a.router);
        row.empty(9);
        row.text(&a.service);
        row.text(&a.real);
        row.empty(1);
        row.value(Some(a.new_weight));
        row.empty(width - 1 - row.cells.len());
        row.text(&format!(
            "weight {} → {} by {}: {}",
            a.old_weight,
            a.new_weight,
            a.user,
            outcome(&a.result)
        ));
        w.write_byte_record(&row.cells).map_err(csv_error)?;
    }
    Ok((notes.alerts.len() + notes.actions.len()) as u64)
}

/// The row of the node `name` as its sample at `time` left it; the number of rows written.
#[inline]
fn csv_node<W: Write>(
    state: &State,
    name: &str,
    time: Timestamp,
    row: &mut Row,
    w: &mut csv::Writer<W>,
) -> io::Result<u64> {
    let Some(n) = state.node(name) else {
        return Ok(0);
    };
    let st = n.stats.as_ref();
    row.cells.clear();
    row.text(&time.rfc3339());
    row.text("node");
    row.text(&n.name);
    row.text(&n.host);
    row.text(n.status.as_str());
    row.value(st.map(|s| s.cores));
    row.num(st.map(|s| s.load[0]), 2);
    row.num(st.map(|s| s.load[1]), 2);
    row.num(st.map(|s| s.load[2]), 2);
    row.num(st.map(|s| s.load_per_core), 2);
    row.num(st.and_then(|s| s.cpu_total).map(|c| c.busy()), 1);
    row.num(
        st.and_then(|s| s.memory_used_fraction()).map(|f| f * 100.0),
        1,
    );
    row.text(state.alerts().worst(&n.name).map_or("", |s| s.as_str()));
    row.empty(CSV_COLUMNS.len() - row.cells.len());
    w.write_byte_record(&row.cells).map_err(csv_error)?;
    Ok(1)
}

/// One row per real server of the router's sample at `time`; the number of rows written.
#[inline]
fn csv_reals<W: Write>(
    state: &State,
    time: Timestamp,
    row: &mut Row,
    w: &mut csv::Writer<W>,
) -> io::Result<u64> {
    let Some(r) = state.router() else {
        return Ok(0);
    };
    let Some(cur) = r.cur.as_ref() else {
        return Ok(0);
    };
    let status = if r.status == HostStatus::Ok {
        "ok"
    } else {
        r.status.as_str()
    };
    let t = time.rfc3339();
    let mut rows = 0;
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
            // Empty where the source does not say (Prometheus), as a missing number is.
            row.text(real.forward.known_str().unwrap_or(""));
            row.value(Some(real.weight));
            row.value(Some(real.active_conns));
            row.value(Some(real.inactive_conns));
            row.num(rates.map(|r| r.cps), 1);
            row.num(rates.map(|r| r.in_pps), 1);
            row.num(rates.map(|r| r.out_pps), 1);
            row.num(rates.map(|r| r.in_bps), 1);
            row.num(rates.map(|r| r.out_bps), 1);
            row.empty(1);
            w.write_byte_record(&row.cells).map_err(csv_error)?;
            rows += 1;
        }
    }
    Ok(rows)
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
