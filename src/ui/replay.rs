//! Recording and replay on screen: `● REC` with size and duration on the status line, and in
//! replay the position bar (play state, speed, time, alerts and actions as marks) above it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::replay::ReplayView;
use crate::app::{Mode, State};
use crate::config::Theme;
use crate::model::sample::Timestamp;
use crate::record::format::flags;

/// `2026-01-01 12:34:56` (UTC).
fn clock(t: Timestamp) -> String {
    let s = t.rfc3339();
    format!(
        "{} {}",
        s.get(0..10).unwrap_or(""),
        s.get(11..19).unwrap_or("")
    )
}

/// `1:02:03` or `2:03`.
fn span_text(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Status-line spans: `● REC size duration`, or the error that stopped the recording. (A replay's
/// play state and speed are on its position bar.)
pub(crate) fn status_spans(state: &State, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if let Some(r) = &state.recording() {
        match &r.error {
            None => {
                spans.push(Span::styled("● REC ", theme.critical));
                spans.push(Span::styled(
                    format!(
                        "{} {} ",
                        bytesize::ByteSize::b(r.bytes).display().si_short(),
                        span_text(r.duration.as_millis() as i64)
                    ),
                    theme.status_bar,
                ));
            }
            Some(e) => spans.push(Span::styled(format!("REC stopped: {e} "), theme.critical)),
        }
    }
    spans
}

/// The go-to-time prompt, drawn over the status line.
pub(crate) fn draw_goto(frame: &mut Frame, area: Rect, text: &str, theme: &Theme) {
    let line = Line::from(vec![
        Span::styled(" go to: ", theme.key_hint),
        Span::styled(format!("{text}▏"), theme.input),
        Span::styled(
            "  +30s/-5m from here · 90s from the start · 14:05:30 UTC · enter go · esc cancel",
            theme.dim,
        ),
    ]);
    frame.render_widget(Paragraph::new(line).style(theme.status_bar), area);
}

/// The position bar (`▶` playing, `❚❚` paused, `■` at the end): `▶ 4×  2026-01-01 00:12:34  ━━━━●──▲──◆───  12:34 / 1:00:00`.
pub(crate) fn draw_bar(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    let Some(r) = &state.replay() else {
        return;
    };
    let parts = bar_parts(r, state.mode(), area.width);
    let mut spans = vec![Span::styled(parts.left, theme.status_bar)];
    spans.extend(track(r, parts.total, parts.width, theme));
    spans.push(Span::styled(
        parts.right,
        if r.warning.is_some() {
            theme.warning
        } else {
            theme.status_bar
        },
    ));
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.status_bar),
        area,
    );
}

/// The bar's text either side of the track, and the track's width and span.
struct BarParts {
    left: String,
    right: String,
    /// The track's width in cells (at least 10).
    width: usize,
    /// The recording's length in milliseconds.
    total: i64,
}

fn bar_parts(r: &ReplayView, mode: Mode, area_width: u16) -> BarParts {
    let (paused, speed) = match mode {
        Mode::Replay { paused, speed } => (paused, speed),
        _ => (true, crate::app::Speed::NORMAL),
    };
    // Saturating: a recording's times are whatever its file says, and may span the whole i64
    // range (a damaged or crafted file), where a plain difference overflows.
    let total = r.end.0.saturating_sub(r.start.0).max(0);
    let at = r.position.0.saturating_sub(r.start.0).clamp(0, total);
    // At the end nothing plays, whatever the mode says.
    let glyph = if r.position >= r.end {
        "■"
    } else if paused {
        "❚❚"
    } else {
        "▶"
    };
    let left = format!(" {} {:>5}  {}  ", glyph, speed.label(), clock(r.position));
    let mut right = format!("  {} / {} ", span_text(at), span_text(total));
    if let Some(w) = &r.warning {
        right.push_str(&format!("⚠ {w} "));
    }
    let fixed = left.chars().count() + right.chars().count();
    let width = (area_width as usize).saturating_sub(fixed).max(10);
    BarParts {
        left,
        right,
        width,
        total,
    }
}

/// The moment of the recording drawn at column `x` of the bar in `area`, if `x` is on the track.
pub(super) fn time_at(area: Rect, state: &State, x: u16) -> Option<Timestamp> {
    let r = state.replay()?;
    let parts = bar_parts(r, state.mode(), area.width);
    let col = usize::from(x.checked_sub(area.x)?).checked_sub(parts.left.chars().count())?;
    if col >= parts.width {
        return None;
    }
    // The inverse of `track`'s column of a time.
    let frac = col as f64 / (parts.width - 1) as f64;
    Some(Timestamp(
        r.start
            .0
            .saturating_add((frac * parts.total as f64).round() as i64),
    ))
}

/// The track `width` cells wide: played `━`, to come `─`, the cursor `●`, and per cell the most
/// important mark in it. An operator's action outranks alerts: actions are few and deliberate,
/// and alerts cluster around them (often in the same cell).
fn track(r: &ReplayView, total: i64, width: usize, theme: &Theme) -> Vec<Span<'static>> {
    let col = |t: i64| -> usize {
        if total == 0 {
            0
        } else {
            (t.saturating_sub(r.start.0).clamp(0, total) as f64 / total as f64 * (width - 1) as f64)
                .round() as usize
        }
    };
    let mut marks: Vec<u8> = vec![0; width];
    for &(t, f) in &r.marks {
        marks[col(t.0).min(width - 1)] |= f;
    }
    let cursor = col(r.position.0);
    let mut spans = Vec::new();
    let mut run = String::new();
    let mut run_style = Style::default();
    for (i, &m) in marks.iter().enumerate() {
        let (ch, style) = if i == cursor {
            ('●', theme.title)
        } else if m & flags::ACTION != 0 {
            ('◆', theme.key_hint)
        } else if m & flags::CRITICAL != 0 {
            ('▲', theme.critical)
        } else if m & flags::WARNING != 0 {
            ('▲', theme.warning)
        } else if i < cursor {
            ('━', theme.ok)
        } else {
            ('─', theme.dim)
        };
        if style != run_style && !run.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut run), run_style));
        }
        run_style = style;
        run.push(ch);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, run_style));
    }
    spans
}
