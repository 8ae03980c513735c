//! The alerts pane: the alert log, newest first, with the number of alerts active in its title.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use crate::app::State;
use crate::app::state::Pane;
use crate::config::Theme;
use crate::model::alert::{AlertEvent, Severity};

use super::widgets;

/// Draws the alerts pane into `area` (nothing when it has no height).
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) {
    if area.height == 0 {
        return;
    }
    let focused = state.ui().focus == Pane::Alerts;
    let active = state.alerts().active_count();
    let title = Line::from(vec![
        Span::styled(" Alerts ", theme.title),
        Span::styled(
            format!("{active} active "),
            if active > 0 { theme.warning } else { theme.dim },
        ),
    ]);
    let block = widgets::pane(theme, title, focused);
    let log = state.alerts().log();
    if log.is_empty() {
        frame.render_widget(
            Paragraph::new("no alerts: every node is below its core count")
                .style(theme.dim)
                .block(block),
            area,
        );
        return;
    }
    let items: Vec<ListItem> = log.iter().rev().map(|e| item(theme, e)).collect();
    let mut list_state =
        ListState::default().with_selected(focused.then_some(state.ui().alert_sel));
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(theme.selected),
        area,
        &mut list_state,
    );
}

/// `12:00:01 CRIT web01 load 4.60 on 4 cores …`; a cleared alert is `ok` and dim.
fn item(theme: &Theme, e: &AlertEvent) -> ListItem<'static> {
    let time = e.time.rfc3339();
    let clock = time.get(11..19).unwrap_or(&time).to_string();
    let (tag, style) = match (e.raised, e.severity) {
        (false, _) => ("ok  ", theme.dim),
        (true, Severity::Critical) => ("CRIT", theme.critical),
        (true, Severity::Warning) => ("WARN", theme.warning),
    };
    ListItem::new(Line::from(vec![
        Span::styled(format!("{clock} "), theme.dim),
        Span::styled(format!("{tag} "), style),
        Span::styled(format!("{} ", e.subject), theme.title),
        Span::styled(
            e.message.clone(),
            if e.raised { theme.base } else { theme.dim },
        ),
    ]))
}
