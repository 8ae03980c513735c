//! `lbtop report`: one self-contained HTML page from a recording — inline SVG charts on a shared
//! time axis and inline CSS, no script and no external URL, so it can be mailed or attached to a
//! ticket. The recording plays through the same `State::ingest` path as replay and the exports
//! (`app::playback`), so the page shows what replay showed.
//!
//! Hand-written SVG rather than a chart crate: the charts are a few lines and areas, the page
//! needs CSS classes instead of baked-in colours (one chart for light, dark and print), and the
//! output size of a 24-hour report stays under control.

mod collect;
mod page;
mod svg;

use std::io::{self, Write};

use crate::app::State;
use crate::app::playback::{FrameNotes, Range, Summary, feed, start};
use crate::record::player::{Decoded, Player};

pub(crate) use collect::{Axis, Collected};

/// The most points a chart line has; longer recordings are downsampled to this many time slices.
pub const MAX_POINTS: usize = 600;

/// What the page says about where it came from.
#[derive(Debug, Clone, Default)]
pub struct ReportInfo {
    /// The recording's file name, as the operator named it.
    pub file: String,
}

/// Plays `range` of the recording into `state` (declared, fresh) and writes the report page to
/// `out`. A damaged recording gives a page of what could be read, with the damage stated on it.
pub fn write(
    player: &mut Player,
    state: &mut State,
    range: Range,
    info: &ReportInfo,
    out: &mut impl Write,
) -> io::Result<Summary> {
    // The page charts nodes' totals only: decoding and deriving every core would be nine
    // tenths of the work for a cluster of 32-core nodes.
    player.skip_per_core();
    let (first, last) = frames_in(player, range);
    let header = player.recording.info().clone();
    let axis = Axis::new(first, last, header.interval_ms, MAX_POINTS);
    let mut c = Collected::new(
        axis,
        header.interval_ms,
        state.options().rules.warning_margin,
    );
    play(player, state, range, &mut c)?;
    let damage = player.damage_report();
    let html = page::render(&c, &header, info, damage.as_deref());
    out.write_all(html.as_bytes())?;
    out.flush()?;
    Ok(Summary {
        frames: c.frames,
        rows: 0,
    })
}

/// The times of the first and last frames inside `range` (the recording's ends when none is).
fn frames_in(
    player: &Player,
    range: Range,
) -> (
    crate::model::sample::Timestamp,
    crate::model::sample::Timestamp,
) {
    let rec = &player.recording;
    let mut inside =
        rec.frames.iter().map(|f| f.time).filter(|&t| {
            range.from.is_none_or(|from| t >= from) && range.to.is_none_or(|to| t <= to)
        });
    let first = inside.next();
    let last = inside.next_back().or(first);
    (first.unwrap_or(rec.start()), last.unwrap_or(rec.end()))
}

/// Plays the range: frames are decoded on a thread of their own, in batches, while this one
/// feeds them to the state and gathers what the page shows.
fn play(player: &mut Player, state: &mut State, range: Range, c: &mut Collected) -> io::Result<()> {
    use std::sync::mpsc::sync_channel;
    const FRAMES: usize = 16;
    start(player, state, range);
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Vec<Decoded>>(4);
        let decoder = scope.spawn(move || {
            let mut batch = Vec::with_capacity(FRAMES);
            while let Some(d) = player.next_frame() {
                if range.to.is_some_and(|to| d.time > to) {
                    break;
                }
                batch.push(d);
                if batch.len() == FRAMES
                    && tx
                        .send(std::mem::replace(&mut batch, Vec::with_capacity(FRAMES)))
                        .is_err()
                {
                    return;
                }
            }
            let _ = tx.send(batch);
        });
        for mut d in rx.iter().flatten() {
            let notes = FrameNotes::of(&mut d);
            let time = d.time;
            feed(state, d, |s, fed| c.event(s, fed));
            c.frame(time, &notes);
        }
        decoder
            .join()
            .map_err(|_| io::Error::other("report: the decoding thread panicked"))
    })
}

/// Text from the recording made safe inside HTML (element content and quoted attributes):
/// control and direction-changing characters shown escaped as on the screen, the length
/// bounded, and `& < > " '` as character references.
pub(crate) fn escape(text: &str) -> String {
    const MAX_CHARS: usize = 2000;
    let shown = crate::model::text::printable(text, MAX_CHARS);
    let mut out = String::with_capacity(shown.len() + 8);
    for ch in shown.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn hostile_names_are_escaped_for_html() {
        assert_eq!(
            escape("<script>alert('x')</script>&\"web\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;web&quot;"
        );
        assert_eq!(escape("a\u{1b}[2Jb\u{202e}"), "a\\u{1b}[2Jb\\u{202e}");
        assert_eq!(escape(&"x".repeat(5000)).len(), 2000);
    }
}
