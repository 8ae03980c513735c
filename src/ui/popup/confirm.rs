//! The confirmation of a weight change: the exact change, and for a drain that would cut the
//! service off, the service to type.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::app::Action;
use crate::app::state::PendingAction;
use crate::config::{Keymap, Theme};

use super::super::widgets;
use super::centered_lines;

/// Draws the question and the change; `typed` is the service typed so far when the change
/// needs it typed. Apply and cancel are the keymap's keys, except in the typed prompt, where
/// enter and esc are the prompt's own.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    keymap: &Keymap,
    pending: &PendingAction,
    typed: Option<&str>,
    question: &str,
) {
    let text = pending.change.to_string();
    let widest = pending
        .warnings
        .iter()
        .map(|w| w.chars().count())
        .chain([text.chars().count(), question.chars().count()])
        .max()
        .unwrap_or(0);
    let width = (u16::try_from(widest).unwrap_or(u16::MAX).saturating_add(6)).max(64);
    let extra = u16::try_from(pending.warnings.len()).unwrap_or(0);
    let height = if typed.is_some() { 8 } else { 6 } + extra;
    let r = centered_lines(area, width, height);
    frame.render_widget(Clear, r);
    let block = widgets::pane(theme, Line::from(" Confirm "), true).style(theme.popup);
    let mut lines = vec![
        Line::from(Span::styled(question.to_string(), theme.title)),
        Line::from(Span::styled(text, theme.popup)),
    ];
    for w in &pending.warnings {
        lines.push(Line::from(Span::styled(w.clone(), theme.warning)));
    }
    match typed {
        None => {
            let enter = keymap.hint(Action::Apply).unwrap_or_else(|| "enter".into());
            let back = keymap.hint(Action::Back).unwrap_or_else(|| "esc".into());
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                format!("{enter}: apply · {back}: cancel"),
                theme.key_hint,
            )));
        }
        Some(typed) => {
            lines.push(Line::from(Span::styled(
                "This is the last real server with weight > 0: draining it cuts the service off.",
                theme.critical,
            )));
            lines.push(Line::from(Span::styled(
                format!("Type {} to confirm:", pending.change.service),
                theme.popup,
            )));
            lines.push(Line::from(Span::styled(format!("{typed}▏"), theme.input)));
            lines.push(Line::from(Span::styled(
                "enter: apply · esc: cancel",
                theme.dim,
            )));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block), r);
}
