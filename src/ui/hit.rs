//! What is drawn at a cell, in the app's terms (`app::mouse::Target`): found with the same
//! layout, columns and visible rows that `draw` uses, so a click lands on what the operator sees.

use ratatui::layout::{Position, Rect};

use crate::app::State;
use crate::app::mouse::{SortBy, Target};
use crate::app::state::Pane;

use super::{layout, nodes, replay, services, widgets};

/// What is at column `x`, row `y` (0-based) of a screen of `area` showing `state`: a pane's row
/// or sortable header, the pane itself, or a moment on the replay's position bar. `None` for the
/// status line and the parts of the bar beside its track.
pub fn hit(area: Rect, state: &State, x: u16, y: u16) -> Option<Target> {
    let at = Position { x, y };
    if let Some(row) = super::popup::detail_real_at(area, state, at) {
        return Some(Target::Detail(row));
    }
    let screen = layout(area, state);
    if let Some(bar) = screen.bar
        && bar.contains(at)
    {
        return replay::time_at(bar, state, x).map(Target::Track);
    }
    let panes = [
        (Pane::Services, screen.services),
        (Pane::Nodes, screen.nodes),
        (Pane::Alerts, screen.alerts),
    ];
    let (pane, rect) = panes.into_iter().find(|(_, r)| r.contains(at))?;
    Some(in_pane(state, pane, rect, at).unwrap_or(Target::Pane(pane)))
}

/// A row or sortable header of `pane` (drawn in `rect`) at `at`, if there is one there.
fn in_pane(state: &State, pane: Pane, rect: Rect, at: Position) -> Option<Target> {
    let inner_x = rect.x.saturating_add(1)..rect.right().saturating_sub(1);
    if !inner_x.contains(&at.x) || at.y == rect.y || at.y + 1 >= rect.bottom() {
        return None;
    }
    let line = usize::from(at.y - rect.y - 1);
    // Tables: a header line, then the rows; the alert list has rows only.
    let (len, selected, height, first) = match pane {
        Pane::Services => {
            let rows = state.service_rows();
            if line == 0 {
                return header(services::header_spans(state, rect), at.x, SortBy::Services);
            }
            (rows.len(), state.selected_service_row(&rows), 3, 1)
        }
        Pane::Nodes => {
            let rows = state.node_rows();
            if line == 0 {
                let spans = nodes::header_spans(state, rect, &rows);
                return header(spans, at.x, SortBy::Nodes);
            }
            // Rows with their core meters under them: every row is in view, each its height.
            if let Some(heights) = nodes::row_heights(state, rect, &rows) {
                let mut top = 1;
                for (n, h) in heights.into_iter().enumerate() {
                    if (top..top + h).contains(&line) {
                        return Some(Target::Row(pane, n));
                    }
                    top += h;
                }
                return None;
            }
            (rows.len(), state.selected_node_row(&rows), 3, 1)
        }
        Pane::Alerts => {
            let focused = state.ui().focus == Pane::Alerts;
            let selected = focused.then_some(state.ui().alert_sel);
            (state.alerts().log().len(), selected, 2, 0)
        }
    };
    let window = widgets::visible_window(
        len,
        selected,
        usize::from(rect.height.saturating_sub(height)),
        state.ui().view.pane(pane).first,
    );
    let n = window.start + line - first;
    window.contains(&n).then_some(Target::Row(pane, n))
}

/// The sortable header at `x` among `spans`, if any.
fn header<S: Copy>(
    spans: Vec<(std::ops::Range<u16>, Option<S>)>,
    x: u16,
    sort_by: fn(S) -> SortBy,
) -> Option<Target> {
    spans
        .into_iter()
        .find(|(cells, _)| cells.contains(&x))
        .and_then(|(_, sort)| sort)
        .map(|s| Target::Header(sort_by(s)))
}
