//! Drawing: functions of `(&State, &Theme, &Keymap)` into a frame. Layout is decided here, in one
//! place; each pane draws itself into the area it is given. Nothing here knows tokio or the sources.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, List, ListItem, ListState, Paragraph, Row, Wrap};

use crate::app::Action;
use crate::app::state::{Pane, Popup, Prompt, PromptKind, State};
use crate::config::{Keymap, Theme};

mod nodes;
mod replay;
mod services;
pub mod widgets;

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State, theme: &Theme, keymap: &Keymap) {
    let area = frame.area();
    frame.render_widget(Paragraph::new("").style(theme.base), area);
    let bar_h = u16::from(state.replay().is_some() && area.height > 5);
    let [main, bar, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(bar_h),
        Constraint::Length(1),
    ])
    .areas(area);

    let service_rows = state.service_rows();
    let node_rows = state.node_rows();
    let node_count = node_rows.len() as u16;
    let service_count = service_rows.len() as u16;
    let alerts_height = if main.height >= 30 { 8 } else { 4 };
    let wide = main.width >= 140;
    let (top, bottom) = if state.router().is_none() {
        (Rect::default(), main)
    } else if state.nodes().is_empty() {
        (main, Rect::default())
    } else {
        // Services get what their rows need, up to about half; nodes the rest.
        let rest = main
            .height
            .saturating_sub(if wide { 0 } else { alerts_height });
        let want_nodes = (node_count + 3).min(rest / 2).max(5.min(rest));
        let want_services = (service_count + 3).max(5);
        let services_h = want_services
            .min(rest.saturating_sub(want_nodes))
            .max(3.min(rest));
        let [t, b] =
            Layout::vertical([Constraint::Length(services_h), Constraint::Min(0)]).areas(main);
        (t, b)
    };
    if top.height > 0 {
        services::draw(frame, top, state, theme, &service_rows);
    }
    let (nodes_area, alerts_area) = if wide {
        let [n, a] =
            Layout::horizontal([Constraint::Min(60), Constraint::Length(48)]).areas(bottom);
        (n, a)
    } else {
        let [n, a] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(alerts_height)]).areas(bottom);
        (n, a)
    };
    if nodes_area.height > 0 && (!state.nodes().is_empty() || state.router().is_none()) {
        nodes::draw(frame, nodes_area, state, theme, &node_rows);
    }
    draw_alerts(frame, alerts_area, state, theme);
    if bar_h > 0 {
        replay::draw_bar(frame, bar, state, theme);
    }
    draw_status(frame, status, state, theme, keymap);

    match &state.ui().popup {
        Some(Popup::Help) => draw_help(frame, area, state, theme, keymap),
        Some(Popup::NodeDetail(name)) => {
            let r = centered(area, 90, 80);
            nodes::draw_detail(frame, r, state, theme, name);
        }
        Some(Popup::Message(text)) => {
            let width = (text.chars().count() as u16 + 4).clamp(30, 76);
            let lines = (text.chars().count() as u16).div_ceil(width.saturating_sub(4).max(1)) + 2;
            let r = centered_lines(area, width, lines + 1);
            frame.render_widget(Clear, r);
            let block = widgets::pane(theme, Line::from(" lbtop "), true).style(theme.popup);
            frame.render_widget(
                Paragraph::new(text.as_str())
                    .style(theme.popup)
                    .wrap(Wrap { trim: true })
                    .block(block),
                r,
            );
        }
        Some(Popup::Confirm(pending)) => {
            let question = state.confirm_question(&pending.change);
            let typed = match state.ui().prompt() {
                Some(Prompt {
                    kind: PromptKind::Confirm(_),
                    text,
                }) => Some(text.as_str()),
                _ => None,
            };
            draw_confirm(frame, area, theme, keymap, pending, typed, &question);
        }
        None => {}
    }
    if let Some(Prompt {
        kind: PromptKind::Weight { service, real },
        text,
    }) = state.ui().prompt()
    {
        {
            let r = centered_lines(area, 64, 5);
            frame.render_widget(Clear, r);
            let block = widgets::pane(theme, Line::from(" Set weight "), true).style(theme.popup);
            let lines = vec![
                Line::from(Span::styled(
                    format!("{} → {real}", crate::control::plan::service_label(service)),
                    theme.popup,
                )),
                Line::from(vec![
                    Span::styled("new weight (0–65535): ", theme.popup),
                    Span::styled(format!("{text}▏"), theme.input),
                ]),
                Line::from(Span::styled("enter: continue · esc: cancel", theme.dim)),
            ];
            frame.render_widget(Paragraph::new(lines).block(block), r);
        }
    }
}

/// The confirmation of a weight change: the exact change, and for a drain that would cut the
/// service off, the service to type.
fn draw_confirm(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    keymap: &Keymap,
    pending: &crate::app::state::PendingAction,
    typed: Option<&str>,
    question: &str,
) {
    let text = pending.change.to_string();
    let widest = text.chars().count().max(question.chars().count());
    let width = (u16::try_from(widest).unwrap_or(u16::MAX).saturating_add(6)).max(64);
    let height = if typed.is_some() { 8 } else { 6 };
    let r = centered_lines(area, width, height);
    frame.render_widget(Clear, r);
    let block = widgets::pane(theme, Line::from(" Confirm "), true).style(theme.popup);
    let mut lines = vec![
        Line::from(Span::styled(question.to_string(), theme.title)),
        Line::from(Span::styled(text, theme.popup)),
    ];
    match typed {
        None => {
            let enter = keymap.hint(Action::Apply).unwrap_or_else(|| "enter".into());
            let back = keymap.hint(Action::Back).unwrap_or_else(|| "esc".into());
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                format!("{enter}: apply · {back}: cancel"),
                theme.key_hint,
            )));
        }
        Some(typed) => {
            lines.push(Line::from(Span::styled(
                "This is the last real server with weight > 0: draining it cuts the service off.",
                theme.critical,
            )));
            lines.push(Line::from(Span::styled(
                format!("Type {} to confirm:", pending.change.service),
                theme.popup,
            )));
            lines.push(Line::from(Span::styled(format!("{typed}▏"), theme.input)));
            lines.push(Line::from(Span::styled(
                "enter: apply · esc: cancel",
                theme.dim,
            )));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

fn draw_alerts(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    let focused = state.ui().focus == Pane::Alerts;
    let active = state.alerts().active_count();
    let title = Line::from(vec![
        Span::styled(" Alerts ", theme.title),
        Span::styled(
            format!("{active} active "),
            if active > 0 { theme.warning } else { theme.dim },
        ),
    ]);
    let block = widgets::pane(theme, title, focused);
    let log = state.alerts().log();
    if log.is_empty() {
        frame.render_widget(
            Paragraph::new("no alerts: every node is below its core count")
                .style(theme.dim)
                .block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = log
        .iter()
        .rev()
        .map(|e| {
            let time = e.time.rfc3339();
            let clock = time.get(11..19).unwrap_or(&time).to_string();
            let (tag, style) = match (e.raised, e.severity) {
                (false, _) => ("ok  ", theme.dim),
                (true, crate::model::alert::Severity::Critical) => ("CRIT", theme.critical),
                (true, crate::model::alert::Severity::Warning) => ("WARN", theme.warning),
            };
            ListItem::new(Line::from(vec![
                Span::styled(format!("{clock} "), theme.dim),
                Span::styled(format!("{tag} "), style),
                Span::styled(format!("{} ", e.subject), theme.title),
                Span::styled(
                    e.message.clone(),
                    if e.raised { theme.base } else { theme.dim },
                ),
            ]))
        })
        .collect();
    let mut list_state =
        ListState::default().with_selected(focused.then_some(state.ui().alert_sel));
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(theme.selected),
        area,
        &mut list_state,
    );
}

fn draw_status(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
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
    let mode_style = match state.mode() {
        crate::app::Mode::Live => theme.ok,
        crate::app::Mode::Paused => theme.warning,
        crate::app::Mode::Replay { .. } => theme.key_hint,
    };
    let mut spans = vec![Span::styled(
        format!(" {} ", state.mode().label()),
        mode_style,
    )];
    spans.extend(replay::status_spans(state, theme));
    spans.extend([Span::styled(
        format!(
            "every {} ",
            humantime::format_duration(state.options().interval)
        ),
        theme.status_bar,
    )]);
    if let Some(r) = &state.router() {
        // The source while the router answers; its status (error, unreachable, …) when it does not,
        // with the age of the last data still on screen.
        let ok = r.status == crate::model::sample::HostStatus::Ok;
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
    if !state.nodes().is_empty() {
        let ok = state
            .nodes()
            .iter()
            .filter(|n| n.status == crate::model::sample::HostStatus::Ok)
            .count();
        let oldest = state
            .nodes()
            .iter()
            .filter_map(|n| state.age_of(n.last_sample()))
            .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.max(a))));
        spans.push(Span::styled(
            format!(
                "│ nodes {ok}/{} ok {} ",
                state.nodes().len(),
                widgets::age(oldest)
            ),
            if ok == state.nodes().len() {
                theme.status_bar
            } else {
                theme.warning
            },
        ));
    }
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
    spans.push(Span::styled("│ ", theme.status_bar));
    if state.selected_real().is_some() {
        let style = if state.options().is_read_only() {
            theme.dim
        } else {
            theme.key_hint
        };
        for action in [Action::Drain, Action::Reweight, Action::Restore] {
            if let Some(key) = keymap.hint(action) {
                spans.push(Span::styled(key, style));
                spans.push(Span::styled(
                    format!(":{} ", hint_word(action)),
                    theme.status_bar,
                ));
            }
        }
    }
    for action in [
        Action::Help,
        Action::NextPane,
        Action::Filter,
        Action::SortNext,
        Action::Pause,
        Action::Quit,
    ] {
        if let Some(key) = keymap.hint(action) {
            spans.push(Span::styled(key, theme.key_hint));
            spans.push(Span::styled(
                format!(":{} ", hint_word(action)),
                theme.status_bar,
            ));
        }
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(theme.status_bar),
        area,
    );
}

/// The first host whose key was refused, with the fingerprint it offered: the operator must
/// check it before anything else can happen for that host.
fn host_key_problem(state: &State) -> Option<String> {
    use crate::model::sample::HostStatus;
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

/// Actions that change the router, shown as disabled in read-only mode.
fn is_router_action(action: Action) -> bool {
    matches!(action, Action::Drain | Action::Reweight | Action::Restore)
}

fn draw_help(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
    let bindings = keymap.bindings();
    let height = (bindings.len() as u16 + 4).min(area.height);
    // Wide enough for the longest description, with room for the read-only note.
    let longest = bindings
        .iter()
        .map(|b| b.description.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let r = centered_lines(area, longest + 16 + 25, height);
    frame.render_widget(Clear, r);
    let block =
        widgets::pane(theme, Line::from(" Keys — ? or esc to close "), true).style(theme.popup);
    let rows: Vec<Row> = bindings
        .iter()
        .map(|b| {
            let keys: Vec<String> = b.keys.iter().map(ToString::to_string).collect();
            let disabled = state.options().is_read_only() && is_router_action(b.action);
            let style = if disabled { theme.dim } else { theme.popup };
            let desc = if disabled {
                format!("{} (disabled: read-only)", b.description)
            } else {
                b.description.clone()
            };
            Row::new(vec![
                widgets::cell(keys.join(" "), false, theme.key_hint),
                widgets::cell(desc, false, style),
            ])
        })
        .collect();
    let table = ratatui::widgets::Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
        .block(block)
        .style(theme.popup);
    frame.render_widget(table, r);
}

fn centered(area: Rect, pct_x: u16, pct_y: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Percentage(pct_y)])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Percentage(pct_x)])
        .flex(Flex::Center)
        .areas(v);
    h
}

fn centered_lines(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}
