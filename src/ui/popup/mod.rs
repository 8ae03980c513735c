//! Popups over the panes: help, a node's or a service's detail, the confirmation of a weight change, the weight
//! prompt, and the message that takes no keys (a toast). Each draws itself centred in the area
//! it is given, the toast in its corner.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};

use crate::app::State;
use crate::app::state::{Popup, Prompt, PromptKind};
use crate::config::{Keymap, Theme};

mod confirm;
mod help;
mod message;
mod node_charts;
mod node_detail;
mod service_detail;
mod weight;

/// Draws the open popup, if any, and the weight prompt over it when one is open.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
    match &state.ui().popup {
        Some(Popup::Help) => help::draw(frame, area, state, theme, keymap),
        Some(Popup::NodeDetail(name)) => {
            node_detail::draw(frame, detail_area(area), state, theme, keymap, name);
        }
        Some(Popup::ServiceDetail) => {
            service_detail::draw(frame, detail_area(area), state, theme, keymap);
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
            confirm::draw(frame, area, theme, keymap, pending, typed, &question);
        }
        None => {}
    }
    if let Some(Prompt {
        kind: PromptKind::Weight { service, real },
        text,
    }) = state.ui().prompt()
    {
        weight::draw(frame, area, theme, service, real, text);
    }
}

/// Where a detail (a node's, a service's) is drawn on a screen of `area`.
fn detail_area(area: Rect) -> Rect {
    centered(area, 90, 80)
}

/// The real server of the open node detail at `at` on a screen of `area`, as an index into the
/// node's real servers (`State::node_reals`); `None` when no node detail is open or `at` is off
/// its list.
pub(crate) fn detail_real_at(
    area: Rect,
    state: &State,
    at: ratatui::layout::Position,
) -> Option<usize> {
    match &state.ui().popup {
        Some(Popup::NodeDetail(name)) => node_detail::real_at(detail_area(area), state, name, at),
        _ => None,
    }
}

/// Draws the message on screen, if any, over everything but the status line.
pub(crate) fn draw_toast(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if let Some(toast) = &state.ui().toast {
        message::draw(frame, area, theme, toast);
    }
}

/// `keys[0] or keys[1] …`: the first key of each action, as the keymap binds them (an unbound
/// action is left out).
fn keys_or(keymap: &Keymap, actions: &[crate::app::Action]) -> String {
    actions
        .iter()
        .filter_map(|&a| keymap.hint(a))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A rectangle of a percentage of `area`, in its centre.
fn centered(area: Rect, pct_x: u16, pct_y: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Percentage(pct_y)])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Percentage(pct_x)])
        .flex(Flex::Center)
        .areas(v);
    h
}

/// A rectangle of `width` × `height` cells (at most `area`), in its centre.
fn centered_lines(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}
