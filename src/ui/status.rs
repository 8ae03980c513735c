//! The status line at the bottom: mode, recording, poll interval, how the router and nodes
//! answer, what limits the view (filter, read-only), and the key hints, built from the keymap.
//! While the filter or the go-to time is typed, the line is that prompt.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::app::{Action, Mode, State};
use crate::config::{Keymap, Theme};
use crate::model::sample::HostStatus;

use super::{replay, widgets};

/// The actions on the selected real server, hinted while one is selected.
const REAL_SERVER_HINTS: [Action; 3] = [Action::Drain, Action::Reweight, Action::Restore];

/// The actions the footer always hints, with the key the keymap binds first to each.
const FOOTER_HINTS: [Action; 6] = [
    Action::Help,
    Action::NextPane,
    Action::Filter,
    Action::SortNext,
    Action::Pause,
    Action::Quit,
];

/// Draws the status line, or the prompt being typed in its place.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
    if let Some(text) = state.ui().goto() {
        replay::draw_goto(frame, area, text, theme);
        return;
    }
    if state.ui().filter_editing() {
        let line = Line::from(vec![
            Span::styled(" filter: ", theme.key_hint),
            Span::styled(format!("{}▏", state.ui().filter), theme.input),
            Span::styled("  enter keep · esc clear", theme.dim),
        ]);
        frame.render_widget(Paragraph::new(line).style(theme.status_bar), area);
        return;
    }
    let mut spans = mode_spans(state, theme);
    spans.extend(source_spans(state, theme));
    spans.extend(condition_spans(state, theme));
    spans.push(Span::styled("│ ", theme.status_bar));
    spans.extend(hint_spans(state, theme, keymap));
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.status_bar),
        area,
    );
}

/// `LIVE`, `PAUSED` or `REPLAY`, the recording, and the poll interval.
fn mode_spans(state: &State, theme: &Theme) -> Vec<Span<'static>> {
    let mode_style = match state.mode() {
        Mode::Live => theme.ok,
        Mode::Paused => theme.warning,
        Mode::Replay { .. } => theme.key_hint,
    };
    let mut spans = vec![Span::styled(
        format!(" {} ", state.mode().label()),
        mode_style,
    )];
    spans.extend(replay::status_spans(state, theme));
    spans.push(Span::styled(
        format!(
            "every {} ",
            humantime::format_duration(state.options().interval)
        ),
        theme.status_bar,
    ));
    spans
}

/// How the router and the nodes answer, with the age of the data on screen.
fn source_spans(state: &State, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if let Some(r) = &state.router() {
        // The source while the router answers; its status (error, unreachable, …) when it does not,
        // with the age of the last data still on screen.
        let ok = r.status == HostStatus::Ok;
        let src = match &r.cur {
            Some(c) if ok => c.source.as_str(),
            _ => r.status.as_str(),
        };
        spans.push(Span::styled(
            format!(
                "│ router {} {} ",
                src,
                widgets::age(state.age_of(r.last_sample()))
            ),
            if ok || r.cur.is_none() {
                theme.status_bar
            } else {
                theme.warning
            },
        ));
    }
    let nodes = state.nodes();
    if !nodes.is_empty() {
        let ok = nodes.iter().filter(|n| n.status == HostStatus::Ok).count();
        let oldest = nodes
            .iter()
            .filter_map(|n| state.age_of(n.last_sample()))
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        spans.push(Span::styled(
            format!("│ nodes {ok}/{} ok {} ", nodes.len(), widgets::age(oldest)),
            if ok == nodes.len() {
                theme.status_bar
            } else {
                theme.warning
            },
        ));
    }
    spans
}

/// What the operator must know about the view: a refused host key, the filter, read-only, a
/// change being applied.
fn condition_spans(state: &State, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    if let Some(problem) = host_key_problem(state) {
        spans.push(Span::styled(format!("│ {problem} "), theme.critical));
    }
    if !state.ui().filter.is_empty() {
        spans.push(Span::styled(
            format!("│ filter \"{}\" ", state.ui().filter),
            theme.warning,
        ));
    }
    if state.options().snapshot {
        spans.push(Span::styled("│ snapshot, read-only ", theme.dim));
    } else if state.options().read_only {
        spans.push(Span::styled("│ read-only ", theme.dim));
    }
    if let Some(change) = &state.applying() {
        spans.push(Span::styled(format!("│ applying {change} "), theme.warning));
    }
    spans
}

/// `key:word` for the real-server actions (while a real server is selected; dim when
/// read-only) and for [`FOOTER_HINTS`], each key as the keymap binds it. An unbound action is
/// left out.
fn hint_spans(state: &State, theme: &Theme, keymap: &Keymap) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut hint = |action: Action, key_style| {
        if let Some(key) = keymap.hint(action) {
            spans.push(Span::styled(key, key_style));
            spans.push(Span::styled(
                format!(":{} ", hint_word(action)),
                theme.status_bar,
            ));
        }
    };
    if state.selected_real().is_some() {
        let style = if state.options().is_read_only() {
            theme.dim
        } else {
            theme.key_hint
        };
        for action in REAL_SERVER_HINTS {
            hint(action, style);
        }
    }
    for action in FOOTER_HINTS {
        hint(action, theme.key_hint);
    }
    spans
}

/// The first host whose key was refused, with the fingerprint it offered: the operator must
/// check it before anything else can happen for that host.
fn host_key_problem(state: &State) -> Option<String> {
    let router = state
        .router()
        .as_ref()
        .map(|r| (r.host.as_str(), r.status, r.message.as_deref()));
    let nodes = state
        .nodes()
        .iter()
        .map(|n| (n.name.as_str(), n.status, n.message.as_deref()));
    router
        .into_iter()
        .chain(nodes)
        .find_map(|(name, status, message)| {
            let what = match status {
                HostStatus::HostKeyUnknown => "host key unknown",
                HostStatus::HostKeyChanged => "HOST KEY CHANGED",
                _ => return None,
            };
            let fingerprint = message
                .and_then(|m| m.split_whitespace().find(|w| w.starts_with("SHA256:")))
                .unwrap_or("");
            Some(
                format!("{name}: {what} {fingerprint}")
                    .trim_end()
                    .to_string(),
            )
        })
}

/// The footer's word for an action: short, beside its key.
fn hint_word(action: Action) -> &'static str {
    match action {
        Action::Help => "help",
        Action::NextPane => "pane",
        Action::Filter => "filter",
        Action::SortNext => "sort",
        Action::Pause => "pause",
        Action::Quit => "quit",
        Action::Drain => "drain",
        Action::Reweight => "weight",
        Action::Restore => "restore",
        _ => "",
    }
}
