//! The prompt for a real server's new weight (the reweight action).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::config::Theme;
use crate::control::plan::{RealKey, service_label};
use crate::model::sample::ServiceKey;

use super::super::widgets;
use super::centered_lines;

/// Draws the prompt with the weight typed so far. Enter and esc are the prompt's own keys (as
/// for every prompt), not the keymap's.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    service: &ServiceKey,
    real: &RealKey,
    text: &str,
) {
    let r = centered_lines(area, 64, 5);
    frame.render_widget(Clear, r);
    let block = widgets::pane(theme, Line::from(" Set weight "), true).style(theme.popup);
    let lines = vec![
        Line::from(Span::styled(
            format!("{} → {real}", service_label(service)),
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
