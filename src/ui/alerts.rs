//! The alerts pane: the alert log, newest first, one line per run of repeats (`×21`), with the
//! number of alerts active in its title.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState, Paragraph};

use crate::app::State;
use crate::app::state::{Pane, PaneView};
use crate::config::Theme;
use crate::model::alert::{AlertLine, Severity};
use crate::model::sample::Timestamp;

use super::widgets;

/// Draws the alerts pane into `area` (nothing when it has no height). Returns the lines it
/// showed.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme) -> PaneView {
    if area.height == 0 {
        return PaneView::default();
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
    let height = usize::from(area.height.saturating_sub(2));
    let first = state.ui().view.alerts.first;
    let limit = usize::from(area.height)
        .max(state.ui().alert_sel + 1)
        .max(first + height);
    let lines = state.alerts().lines(limit);
    if lines.is_empty() {
        frame.render_widget(
            Paragraph::new("no alerts: every node is below its core count")
                .style(theme.dim)
                .block(block),
            area,
        );
        return PaneView::default();
    }
    let selected = focused.then_some(state.ui().alert_sel);
    let window = widgets::visible_window(lines.len(), selected, height, first);
    let items: Vec<ListItem> = lines.iter().map(|l| item(theme, l)).collect();
    let mut list_state = ListState::default()
        .with_selected(selected)
        .with_offset(window.start);
    frame.render_stateful_widget(
        List::new(items)
            .block(block)
            .highlight_style(theme.selected),
        area,
        &mut list_state,
    );
    PaneView {
        first: window.start,
        rows: height,
    }
}

/// `12:00:01`: the time of day of `t` (UTC).
fn clock(t: Timestamp) -> String {
    let time = t.rfc3339();
    time.get(11..19).unwrap_or(&time).to_string()
}

/// `12:00:01 CRIT ×21 web01 load 4.60 on 4 cores … since 11:58:02`: the latest event of the
/// line, how many it stands for and since when; a cleared alert is `ok` and dim.
fn item(theme: &Theme, line: &AlertLine) -> ListItem<'static> {
    let e = line.event;
    let (tag, style) = match (e.raised, e.severity) {
        (false, _) => ("ok  ", theme.dim),
        (true, Severity::Critical) => ("CRIT", theme.critical),
        (true, Severity::Warning) => ("WARN", theme.warning),
    };
    let mut spans = vec![
        Span::styled(format!("{} ", clock(e.time)), theme.dim),
        Span::styled(format!("{tag} "), style),
    ];
    if line.repeats > 1 {
        spans.push(Span::styled(format!("×{} ", line.repeats), theme.warning));
    }
    spans.push(Span::styled(format!("{} ", e.subject), theme.title));
    spans.push(Span::styled(
        e.message.clone(),
        if e.raised { theme.base } else { theme.dim },
    ));
    if line.repeats > 1 {
        spans.push(Span::styled(
            format!(" · since {}", clock(line.first)),
            theme.dim,
        ));
    }
    ListItem::new(Line::from(spans))
}
