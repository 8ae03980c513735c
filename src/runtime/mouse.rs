//! The terminal's mouse: capture on and off, and its events turned into the app's
//! (`app::Mouse`) with the UI's hit-testing (`ui::hit`). A second press on the same cell soon
//! after the first is a double-click, on what the first one hit.

use std::io::stdout;
use std::time::{Duration, Instant};

use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, MouseButton, MouseEvent, MouseEventKind,
};
use crossterm::execute;
use ratatui::layout::Rect;

use crate::app::{Mouse, MouseKind, State, Target};

/// How soon a second press makes a double-click.
const DOUBLE_CLICK: Duration = Duration::from_millis(500);

/// Where the screen is, and the last press (for double-clicks).
#[derive(Debug, Default)]
pub(crate) struct Pointer {
    /// The screen as last drawn.
    pub area: Rect,
    last: Option<(Instant, u16, u16, Target)>,
}

impl Pointer {
    /// The app's mouse event for the terminal's `event` at `now`, if it is one lbtop acts on.
    pub fn event(&mut self, state: &State, event: MouseEvent, now: Instant) -> Option<Mouse> {
        let (x, y) = (event.column, event.row);
        let kind = match event.kind {
            MouseEventKind::Down(MouseButton::Left) => MouseKind::Click,
            MouseEventKind::ScrollUp => MouseKind::WheelUp,
            MouseEventKind::ScrollDown => MouseKind::WheelDown,
            _ => return None,
        };
        if kind != MouseKind::Click {
            let target = crate::ui::hit(self.area, state, x, y)?;
            return Some(Mouse { kind, target });
        }
        // The first click may have moved what is under the pointer (a row scrolled into view):
        // the second of a double-click means what the first one hit.
        if let Some((at, lx, ly, target)) = self.last.take()
            && (lx, ly) == (x, y)
            && now.duration_since(at) <= DOUBLE_CLICK
        {
            return Some(Mouse {
                kind: MouseKind::DoubleClick,
                target,
            });
        }
        let target = crate::ui::hit(self.area, state, x, y)?;
        self.last = Some((now, x, y, target));
        Some(Mouse { kind, target })
    }
}

/// Captures the mouse (`on`) or gives it back to the terminal, so that it can select text.
pub(crate) fn set_capture(on: bool) -> std::io::Result<()> {
    if on {
        execute!(stdout(), EnableMouseCapture)
    } else {
        execute!(stdout(), DisableMouseCapture)
    }
}

/// `ratatui::init`, with the mouse captured when `mouse`; a panic gives the mouse back too.
pub(crate) fn init_terminal(mouse: bool) -> ratatui::DefaultTerminal {
    let terminal = ratatui::init();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = set_capture(false);
        hook(info);
    }));
    if mouse && let Err(e) = set_capture(true) {
        tracing::warn!("mouse: {e}");
    }
    terminal
}

/// `ratatui::restore`, and the mouse given back to the terminal (which ratatui does not do).
pub(crate) fn restore_terminal() {
    let _ = set_capture(false);
    ratatui::restore();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::StateOptions;
    use crate::app::state::Pane;
    use crossterm::event::KeyModifiers;

    fn press(x: u16, y: u16) -> MouseEvent {
        MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        }
    }

    #[test]
    fn a_second_press_on_the_same_cell_soon_after_is_a_double_click_on_the_first_target() {
        let state = State::new(StateOptions::default());
        let mut p = Pointer {
            area: Rect::new(0, 0, 80, 24),
            last: None,
        };
        let t0 = Instant::now();
        // A cell inside the nodes pane, wherever the layout puts it.
        let nodes = crate::ui::layout(p.area, &state).nodes;
        let (x, y) = (nodes.x + 2, nodes.y + 2);
        let press = |dx: u16, dy: u16| press(x + dx - 5, y + dy - 5);
        let first = p.event(&state, press(5, 5), t0).expect("a pane");
        assert_eq!(first.kind, MouseKind::Click);
        assert_eq!(first.target.pane(), Some(Pane::Nodes));
        let second = p.event(&state, press(5, 5), t0 + Duration::from_millis(200));
        assert_eq!(second.map(|m| m.kind), Some(MouseKind::DoubleClick));
        // A third press starts over; a slow or moved one is a click.
        let third = p.event(&state, press(5, 5), t0 + Duration::from_millis(300));
        assert_eq!(third.map(|m| m.kind), Some(MouseKind::Click));
        let slow = p.event(&state, press(5, 5), t0 + Duration::from_secs(2));
        assert_eq!(slow.map(|m| m.kind), Some(MouseKind::Click));
        let moved = p.event(&state, press(6, 5), t0 + Duration::from_millis(2100));
        assert_eq!(moved.map(|m| m.kind), Some(MouseKind::Click));
    }
}
