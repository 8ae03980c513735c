//! Driving a replay: a recording's frames played into a `State` through the same
//! `State::ingest` path as live — naming its hosts, feeding frames, seeking with a warm-up. The
//! replay screen and the exports (`report::export`) both play through here; `record` only turns
//! the file's bytes into frames.

use std::io;

use crate::app::{Event, State};
use crate::model::alert::AlertEvent;
use crate::model::sample::{Report, SourceEvent, Timestamp};
use crate::record::ActionRecord;
use crate::record::format::HeaderInfo;
use crate::record::player::{Decoded, Player};

/// Samples of history replayed before the first exported or shown moment, so that rates, CPU
/// percentages, sparklines and alert levels are what they were live.
pub(crate) const WARMUP_SAMPLES: i64 = 12;

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
    if let Some([a, b]) = &info.pair {
        state.add_pair(a, b);
    } else if let Some(r) = &info.router {
        state.add_router(r);
    }
    for n in &info.nodes {
        state.add_node(&n.name, &n.host);
    }
}

/// How long the warm-up before a seek is, in this recording.
pub(crate) fn warmup_ms(info: &HeaderInfo) -> i64 {
    // The interval is the file's word: saturating, whatever it says.
    WARMUP_SAMPLES.saturating_mul(i64::try_from(info.interval_ms.max(1)).unwrap_or(i64::MAX))
}

/// Feeds one decoded frame to the state, the way the live loop does: every event through
/// `ingest`, then the passing of time up to the frame's time. Calls `each` after every event.
pub fn feed(state: &mut State, frame: Decoded, mut each: impl FnMut(&State, &Fed)) {
    for event in frame.events {
        let fed = Fed::of(&event);
        state.ingest(event);
        each(state, &fed);
    }
    // The operator's drains and weight changes, so the services pane shows them as live did.
    for action in frame.actions {
        state.handle(Event::Recorded(action));
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
    for action in player.actions_before(start) {
        state.handle(Event::Recorded(action));
    }
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
pub fn start(player: &mut Player, state: &mut State, range: Range) {
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

/// What a frame holds besides samples: the alerts raised or cleared and the operator's actions
/// recorded in it, as live recorded them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameNotes {
    pub alerts: Vec<AlertEvent>,
    pub actions: Vec<ActionRecord>,
}

impl FrameNotes {
    /// Takes the notes out of a decoded frame (the actions stay: `feed` marks drains with them).
    pub fn of(frame: &mut Decoded) -> FrameNotes {
        FrameNotes {
            alerts: std::mem::take(&mut frame.alerts),
            actions: frame.actions.clone(),
        }
    }
}

/// Plays `range` of the recording into `state` (declared, fresh), calling `each` after every
/// event and `frame` after every frame inside the range, with the frame's notes.
pub fn play(
    player: &mut Player,
    state: &mut State,
    range: Range,
    mut each: impl FnMut(&State, &Fed) -> io::Result<()>,
    mut frame: impl FnMut(&State, &FrameNotes) -> io::Result<()>,
) -> io::Result<Summary> {
    let mut summary = Summary::default();
    start(player, state, range);
    let mut err = None;
    while let Some(mut d) = player.next_frame() {
        if range.to.is_some_and(|to| d.time > to) {
            break;
        }
        let notes = FrameNotes::of(&mut d);
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
        frame(state, &notes)?;
        summary.frames += 1;
    }
    Ok(summary)
}
