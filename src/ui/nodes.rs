//! The nodes pane, htop-like: per-core activity, load against the core count, memory, uptime and
//! a load trend for every node; and the detail view of one node with a full bar per core.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row};

use crate::app::state::{NodeEntry, Pane, State};
use crate::config::Theme;
use crate::model::sample::HostStatus;

use super::widgets::{
    self, Column, TableView, age, bytes, cell, core_strip, cpu_bar, draw_table, fit_columns,
    load_gauge, pane,
};

const COLUMNS: [Column; 9] = [
    Column {
        header: "Node",
        width: 16,
        priority: 100,
        right: false,
    },
    Column {
        header: "Status",
        width: 8,
        priority: 90,
        right: false,
    },
    Column {
        header: "Load 1/5/15",
        width: 17,
        priority: 95,
        right: false,
    },
    Column {
        header: "vs cores",
        width: 14,
        priority: 85,
        right: false,
    },
    Column {
        header: "CPU",
        width: 16,
        priority: 80,
        right: false,
    },
    Column {
        header: "Mem",
        width: 10,
        priority: 60,
        right: false,
    },
    Column {
        header: "Up",
        width: 6,
        priority: 30,
        right: true,
    },
    Column {
        header: "Load trend",
        width: 12,
        priority: 40,
        right: false,
    },
    Column {
        header: "Cores",
        width: 8,
        priority: 70,
        right: false,
    },
];

/// The status, at most 11 wide so that the age of the numbers still fits beside it.
fn status_label(status: HostStatus) -> &'static str {
    match status {
        HostStatus::Ok => "ok",
        HostStatus::Connecting => "connecting",
        HostStatus::Unreachable => "unreachable",
        HostStatus::AuthFailed => "auth-failed",
        HostStatus::HostKeyUnknown => "key unknown",
        HostStatus::HostKeyChanged => "KEY CHANGED",
        HostStatus::Error => "error",
    }
}

/// The age of the numbers shown, after the status when it is not ok.
fn status_text(state: &State, n: &NodeEntry) -> String {
    match (n.status, n.last_sample()) {
        (HostStatus::Ok, last) => age(state.age_of(last)),
        (other, Some(last)) => format!("{} {}", status_label(other), age(state.age_of(Some(last)))),
        (other, None) => status_label(other).to_string(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, rows_model: &[usize]) {
    let focused = state.ui().focus == Pane::Nodes;
    let over = state.nodes().iter().filter(|n| n.level.is_some()).count();
    let title = Line::from(vec![
        Span::styled(format!(" Nodes {} ", state.nodes().len()), theme.title),
        Span::styled(
            if over > 0 {
                format!("│ {over} near or over core count ")
            } else {
                String::new()
            },
            theme.warning,
        ),
        Span::styled(
            format!("│ sort {} ", state.ui().node_sort.label()),
            theme.dim,
        ),
    ]);
    let block = pane(theme, title, focused);
    if state.nodes().is_empty() {
        let p = Paragraph::new("no nodes watched (--nodes none)")
            .style(theme.dim)
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    let inner_width = area.width.saturating_sub(2);
    // The status column grows (up to 16) only while some node shows a status beside its age.
    let mut columns = COLUMNS;
    let status_width = rows_model
        .iter()
        .filter_map(|&i| state.nodes().get(i))
        .filter(|n| n.status != HostStatus::Ok)
        .map(|n| status_text(state, n).chars().count())
        .max()
        .unwrap_or(0);
    columns[1].width = u16::try_from(status_width)
        .unwrap_or(16)
        .clamp(COLUMNS[1].width, 16);
    let columns = columns;
    let keep = fit_columns(&columns, inner_width);
    let fixed: u16 = keep.iter().map(|&i| columns[i].width + 1).sum();
    // The per-core strip takes whatever width is left.
    let strip_width = usize::from(
        inner_width
            .saturating_sub(fixed)
            .saturating_add(columns[8].width),
    );
    let cols: Vec<&Column> = keep.iter().map(|&i| &columns[i]).collect();
    let selected = state.selected_node_row(rows_model);
    let window = widgets::visible_window(
        rows_model.len(),
        selected,
        usize::from(area.height.saturating_sub(3)),
    );
    let rows: Vec<Row> = rows_model[window.clone()]
        .iter()
        .map(|&i| {
            let n = &state.nodes()[i];
            let level = state.alerts().worst(&n.name);
            let name_style = widgets::severity_style(theme, level);
            let marker = match level {
                Some(crate::model::alert::Severity::Critical) => "!! ",
                Some(crate::model::alert::Severity::Warning) => "!  ",
                None => "   ",
            };
            let st = n.stats.as_ref();
            let status_style = if n.status == HostStatus::Ok {
                theme.dim
            } else {
                theme.critical
            };
            let cells: Vec<ratatui::widgets::Cell> = vec![
                cell(format!("{marker}{}", n.name), false, name_style),
                cell(status_text(state, n), false, status_style),
                st.map_or_else(
                    || cell("-", false, theme.dim),
                    |s| {
                        cell(
                            format!("{:5.2} {:5.2} {:5.2}", s.load[0], s.load[1], s.load[2]),
                            false,
                            widgets::severity_style(theme, n.level),
                        )
                    },
                ),
                st.map_or_else(
                    || cell("", false, theme.dim),
                    |s| {
                        let mut spans = load_gauge(theme, s.load[0], s.cores, n.level, 9);
                        spans.push(Span::styled(format!(" /{:<3}", s.cores), theme.dim));
                        Line::from(spans).into()
                    },
                ),
                Line::from(cpu_bar(theme, st.and_then(|s| s.cpu_total.as_ref()), 10))
                    .spans
                    .into_iter()
                    .chain(std::iter::once(Span::styled(
                        st.and_then(|s| s.cpu_total)
                            .map_or("    -".into(), |c| format!("{:4.0}%", c.busy())),
                        theme.base,
                    )))
                    .collect::<Line>()
                    .into(),
                st.and_then(|s| s.memory_used_fraction().map(|f| (s, f)))
                    .map_or_else(
                        || cell("-", false, theme.dim),
                        |(s, f)| {
                            cell(
                                format!("{:3.0}% {}", f * 100.0, bytes(s.memory_total_bytes)),
                                false,
                                theme.base,
                            )
                        },
                    ),
                cell(
                    st.map_or("-".into(), |s| widgets::uptime(s.uptime_s)),
                    true,
                    theme.dim,
                ),
                cell(
                    widgets::sparkline(
                        n.load_history.iter(),
                        st.map(|s| s.cores as f64 * 1.25),
                        12,
                    ),
                    false,
                    theme.sparkline,
                ),
                st.map_or_else(
                    || cell("", false, theme.dim),
                    |s| Line::from(core_strip(theme, &s.cpus, strip_width)).into(),
                ),
            ];
            Row::new(keep.iter().map(|&i| cells[i].clone()).collect::<Vec<_>>())
        })
        .collect();
    draw_table(
        frame,
        area,
        block,
        theme,
        TableView {
            columns: cols,
            rows,
            selected: selected.map(|s| s - window.start),
            focused,
        },
    );
}
