//! A message for the operator (what an action did, why it could not be done) as a toast: a box
//! in the bottom-right corner over the panes that takes no keys and goes by itself.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::app::state::Toast;
use crate::config::Theme;

use super::super::widgets;

/// Draws `toast` wrapped in a box just big enough for it, at the bottom right of `area` (the
/// screen without its status line).
pub fn draw(frame: &mut Frame, area: Rect, theme: &Theme, toast: &Toast) {
    let len = toast.text.chars().count() as u16;
    let width = (len + 4).clamp(24, 80).min(area.width.saturating_sub(2));
    let inner = width.saturating_sub(4).max(1);
    let height = (len.div_ceil(inner) + 2).min(area.height);
    let r = Rect {
        x: area.right().saturating_sub(width + 1),
        y: area.bottom().saturating_sub(height),
        width,
        height,
    };
    let style = if toast.error {
        theme.warning
    } else {
        theme.popup
    };
    frame.render_widget(Clear, r);
    let block = widgets::pane(theme, Line::from(" lbtop "), false)
        .style(theme.popup)
        .border_style(style);
    frame.render_widget(
        Paragraph::new(toast.text.as_str())
            .style(theme.popup)
            .wrap(Wrap { trim: true })
            .block(block.padding(ratatui::widgets::Padding::horizontal(1))),
        r,
    );
}
