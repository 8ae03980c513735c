//! The help screen: the keymap's bindings grouped by where they act (everywhere, the live view,
//! a replay: only the groups of the current mode), each with its description. It scrolls with
//! the moving keys; the title says which keys close it and where the selection is.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Row, Table, TableState};

use crate::app::{Action, Context, State};
use crate::config::{Keymap, Theme};

use super::super::widgets;
use super::{centered_lines, keys_or};

/// Actions that change the router, shown as disabled in read-only mode.
fn is_router_action(action: Action) -> bool {
    matches!(action, Action::Drain | Action::Reweight | Action::Restore)
}

/// Draws the keymap as a table, grouped, its title naming the keys that close it.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
    let actions = state.help_actions();
    let (rows, selected) = rows(state, theme, keymap, &actions);
    let height = (rows.len() as u16 + 2).min(area.height);
    // Wide enough for the longest description, with room for the read-only note.
    let longest = keymap
        .bindings()
        .iter()
        .map(|b| b.description.chars().count())
        .max()
        .unwrap_or(0) as u16;
    let r = centered_lines(area, longest + 16 + 25, height);
    frame.render_widget(Clear, r);
    let close = keys_or(keymap, &[Action::Help, Action::Back]);
    let at = state.ui().help_line.min(actions.len().saturating_sub(1)) + 1;
    let block = widgets::pane(
        theme,
        Line::from(format!(
            " Keys {at}/{} — ↑↓ pgup pgdn scroll, {close} to close ",
            actions.len()
        )),
        true,
    )
    .style(theme.popup);
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
        .block(block)
        .style(theme.popup)
        .row_highlight_style(theme.selected);
    let mut table_state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, r, &mut table_state);
}

/// A heading row per group and a row per binding, and the row of the selected binding.
fn rows<'a>(
    state: &State,
    theme: &Theme,
    keymap: &Keymap,
    actions: &[Action],
) -> (Vec<Row<'a>>, Option<usize>) {
    let mut rows = Vec::new();
    let mut selected = None;
    let mut index = 0;
    for context in Context::shown(state.mode().is_replay()) {
        if !rows.is_empty() {
            rows.push(Row::new(vec![""]));
        }
        rows.push(Row::new(vec![widgets::cell(
            context.heading(),
            false,
            theme.title,
        )]));
        for &action in actions.iter().filter(|a| a.context() == context) {
            if index == state.ui().help_line {
                selected = Some(rows.len());
            }
            index += 1;
            rows.push(binding_row(state, theme, keymap, action));
        }
    }
    (rows, selected)
}

/// `keys  description`, dim with a note when read-only disables the action.
fn binding_row<'a>(state: &State, theme: &Theme, keymap: &Keymap, action: Action) -> Row<'a> {
    let keys: Vec<String> = keymap
        .keys_for(action)
        .iter()
        .map(ToString::to_string)
        .collect();
    let description = keymap
        .bindings()
        .iter()
        .find(|b| b.action == action)
        .map_or_else(|| action.name().to_string(), |b| b.description.clone());
    let disabled = state.options().is_read_only() && is_router_action(action);
    let style = if disabled { theme.dim } else { theme.popup };
    let desc = if disabled {
        format!("{description} (disabled: read-only)")
    } else {
        description
    };
    Row::new(vec![
        widgets::cell(keys.join(" "), false, theme.key_hint),
        widgets::cell(desc, false, style),
    ])
}
