//! A message for the operator, such as why an action is unavailable; any key closes it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use crate::config::Theme;

use super::super::widgets;
use super::centered_lines;

/// Draws `text` wrapped in a box just big enough for it.
pub fn draw(frame: &mut Frame, area: Rect, theme: &Theme, text: &str) {
    let width = (text.chars().count() as u16 + 4).clamp(30, 76);
    let lines = (text.chars().count() as u16).div_ceil(width.saturating_sub(4).max(1)) + 2;
    let r = centered_lines(area, width, lines + 1);
    frame.render_widget(Clear, r);
    let block = widgets::pane(theme, Line::from(" lbtop "), true).style(theme.popup);
    frame.render_widget(
        Paragraph::new(text)
            .style(theme.popup)
            .wrap(Wrap { trim: true })
            .block(block),
        r,
    );
}
