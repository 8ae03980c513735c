//! Drawing: functions of `(&State, &Theme, &Keymap)` into a frame. Layout is decided here, in one
//! place; each pane, the status line and the popups draw themselves into the area they are given.
//! The footer's key hints and the popups' close keys come from the keymap. Nothing here knows
//! tokio or the sources.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use crate::app::state::State;
use crate::config::{Keymap, Theme};

mod alerts;
mod nodes;
mod popup;
mod replay;
mod services;
mod status;
pub mod widgets;

/// Where the panes go: services above; nodes below, with the alerts beside them on a wide
/// screen or under them on a narrow one. An empty rectangle for a pane not shown.
struct PaneAreas {
    services: Rect,
    nodes: Rect,
    alerts: Rect,
}

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
    let areas = pane_areas(state, main, service_rows.len(), node_rows.len());
    if areas.services.height > 0 {
        services::draw(frame, areas.services, state, theme, &service_rows);
    }
    if areas.nodes.height > 0 && (!state.nodes().is_empty() || state.router().is_none()) {
        nodes::draw(frame, areas.nodes, state, theme, &node_rows);
    }
    alerts::draw(frame, areas.alerts, state, theme);
    if bar_h > 0 {
        replay::draw_bar(frame, bar, state, theme);
    }
    status::draw(frame, status, state, theme, keymap);
    popup::draw(frame, area, state, theme, keymap);
}

/// Splits `main` between the panes. Services get what their rows need, up to about half; nodes
/// the rest. Without a router the nodes take it all; without nodes the services do.
fn pane_areas(state: &State, main: Rect, service_count: usize, node_count: usize) -> PaneAreas {
    let node_count = node_count as u16;
    let service_count = service_count as u16;
    let alerts_height = if main.height >= 30 { 8 } else { 4 };
    let wide = main.width >= 140;
    let (top, bottom) = if state.router().is_none() {
        (Rect::default(), main)
    } else if state.nodes().is_empty() {
        (main, Rect::default())
    } else {
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
    let [nodes, alerts] = if wide {
        Layout::horizontal([Constraint::Min(60), Constraint::Length(48)]).areas(bottom)
    } else {
        Layout::vertical([Constraint::Min(3), Constraint::Length(alerts_height)]).areas(bottom)
    };
    PaneAreas {
        services: top,
        nodes,
        alerts,
    }
}
