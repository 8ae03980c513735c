//! Drawing: functions of `(&State, &Theme, &Keymap)` into a frame. Layout is decided here, in one
//! place; each pane, the status line and the popups draw themselves into the area they are given.
//! The footer's key hints and the popups' close keys come from the keymap. Nothing here knows
//! tokio or the sources.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::Paragraph;

use crate::app::state::{ScreenView, State};
use crate::config::{Keymap, Theme};

mod alerts;
mod hit;
mod nodes;
mod popup;
mod replay;
mod services;
mod status;
pub mod widgets;

pub use hit::hit;

/// Where the panes go: services above; nodes below, with the alerts beside them on a wide
/// screen or under them on a narrow one. An empty rectangle for a pane not shown.
struct PaneAreas {
    services: Rect,
    nodes: Rect,
    alerts: Rect,
}

/// Where everything is drawn on a screen of `area`: the panes (an empty rectangle for one not
/// shown), the replay's position bar and the status line. `draw` draws into these, and the
/// runtime finds what the mouse points at with them (`hit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenLayout {
    pub services: Rect,
    pub nodes: Rect,
    pub alerts: Rect,
    /// The replay's position bar; none outside a replay or on a very short screen.
    pub bar: Option<Rect>,
    pub status: Rect,
}

/// The layout of a screen of `area` showing `state`.
pub fn layout(area: Rect, state: &State) -> ScreenLayout {
    layout_for(area, state, state.service_rows().len(), &state.node_rows())
}

fn layout_for(area: Rect, state: &State, services: usize, nodes: &[usize]) -> ScreenLayout {
    let bar_h = u16::from(state.replay().is_some() && area.height > 5);
    let [main, bar, status] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(bar_h),
        Constraint::Length(1),
    ])
    .areas(area);
    let needs = Needs::of(state, services, nodes, main);
    let panes = pane_areas(state, main, &needs);
    ScreenLayout {
        services: panes.services,
        nodes: panes.nodes,
        alerts: panes.alerts,
        bar: (bar_h > 0).then_some(bar),
        status,
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &State, theme: &Theme, keymap: &Keymap) {
    draw_screen(frame, state, theme, keymap);
}

/// Draws the whole screen, and says what rows each pane showed: the runtime hands that back to
/// the state (`Event::Drawn`), so that the next frame and the mouse start from the same rows.
pub fn draw_screen(frame: &mut Frame, state: &State, theme: &Theme, keymap: &Keymap) -> ScreenView {
    let area = frame.area();
    frame.render_widget(Paragraph::new("").style(theme.base), area);
    let service_rows = state.service_rows();
    let node_rows = state.node_rows();
    let areas = layout_for(area, state, service_rows.len(), &node_rows);
    let mut view = ScreenView::default();
    if areas.services.height > 0 {
        view.services = services::draw(frame, areas.services, state, theme, &service_rows);
    }
    if areas.nodes.height > 0 && (!state.nodes().is_empty() || state.router().is_none()) {
        view.nodes = nodes::draw(frame, areas.nodes, state, theme, &node_rows);
    }
    view.alerts = alerts::draw(frame, areas.alerts, state, theme);
    if let Some(bar) = areas.bar {
        replay::draw_bar(frame, bar, state, theme);
    }
    status::draw(frame, areas.status, state, theme, keymap);
    popup::draw(frame, area, state, theme, keymap);
    popup::draw_toast(
        frame,
        Rect {
            height: area.height.saturating_sub(1),
            ..area
        },
        state,
        theme,
    );
    view
}

/// What the panes need to show every row: lines of content plus borders and header.
struct Needs {
    services: u16,
    nodes: u16,
    alerts: u16,
    /// The nodes table's width with every column and a strip of a cell per core.
    nodes_width: u16,
}

impl Needs {
    fn of(state: &State, service_count: usize, node_rows: &[usize], area: Rect) -> Needs {
        let height = area.height;
        let lines =
            |n: usize, chrome: u16| u16::try_from(n).unwrap_or(u16::MAX).saturating_add(chrome);
        let alert_lines = state.alerts().lines(usize::from(height)).len();
        let cores = state
            .nodes()
            .iter()
            .filter_map(|n| n.stats.as_ref().map(|s| s.cpus.len()))
            .max()
            .unwrap_or(0);
        Needs {
            services: lines(service_count, 3),
            nodes: lines(node_lines(state, node_rows, area), 3),
            alerts: lines(alert_lines.max(1), 2),
            nodes_width: nodes::full_width(u16::try_from(cores).unwrap_or(u16::MAX)),
        }
    }
}

/// The lines the nodes table wants: with each node's core meters under its row when that takes at
/// most half of `area`'s height, else a line per node.
fn node_lines(state: &State, node_rows: &[usize], area: Rect) -> usize {
    let wanted = nodes::lines_wanted(state, node_rows, area.width);
    if wanted + 3 <= usize::from(area.height / 2) {
        wanted
    } else {
        node_rows.len()
    }
}

/// Splits `main` between the panes. Services get what their rows need, up to about half; nodes
/// what theirs need; the alerts the rest, at least enough for a few lines (or all of them, up to
/// a third of the height). Without a router the nodes and alerts share it all; without nodes
/// the services take it. On a wide screen whose nodes leave too few rows under them, the alerts
/// sit beside the nodes, with the columns the nodes table does not need.
fn pane_areas(state: &State, main: Rect, needs: &Needs) -> PaneAreas {
    let wide = main.width >= 140;
    let floor = if main.height >= 30 { 8 } else { 4 };
    let alerts_min = needs
        .alerts
        .min(floor.max(main.height / 3))
        .max(3.min(needs.alerts));
    let (top, bottom) = if state.router().is_none() {
        (Rect::default(), main)
    } else if state.nodes().is_empty() {
        (main, Rect::default())
    } else {
        let rest = main
            .height
            .saturating_sub(if wide { 0 } else { alerts_min });
        let want_nodes = needs.nodes.min(rest / 2).max(5.min(rest));
        let services_h = needs
            .services
            .max(5)
            .min(rest.saturating_sub(want_nodes))
            .max(3.min(rest));
        let [t, b] =
            Layout::vertical([Constraint::Length(services_h), Constraint::Min(0)]).areas(main);
        (t, b)
    };
    let spare = bottom.height.saturating_sub(needs.nodes.max(3));
    let [nodes, alerts] = if wide && spare < alerts_min {
        let alerts_w = bottom.width.saturating_sub(needs.nodes_width).max(48);
        Layout::horizontal([Constraint::Min(60), Constraint::Length(alerts_w)]).areas(bottom)
    } else {
        let alerts_h = spare.max(alerts_min.min(bottom.height));
        Layout::vertical([Constraint::Min(3), Constraint::Length(alerts_h)]).areas(bottom)
    };
    PaneAreas {
        services: top,
        nodes,
        alerts,
    }
}
