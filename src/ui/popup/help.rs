//! The help screen: every binding of the keymap, in its order, with its description.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Row, Table};

use crate::app::{Action, State};
use crate::config::{Keymap, Theme};

use super::super::widgets;
use super::{centered_lines, keys_or};

/// Actions that change the router, shown as disabled in read-only mode.
fn is_router_action(action: Action) -> bool {
    matches!(action, Action::Drain | Action::Reweight | Action::Restore)
}

/// Draws the keymap as a table, its title naming the keys that close it.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
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
    let close = keys_or(keymap, &[Action::Help, Action::Back]);
    let block = widgets::pane(
        theme,
        Line::from(format!(" Keys — {close} to close ")),
        true,
    )
    .style(theme.popup);
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
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
        .block(block)
        .style(theme.popup);
    frame.render_widget(table, r);
}
