//! The nodes pane, htop-like: per-core activity, load against the core count, memory, uptime and
//! a load trend for every node; and the detail view of one node with a full bar per core.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Row};

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

/// The detail view of one node: a full bar per core, as htop draws them.
pub fn draw_detail(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, name: &str) {
    let Some(n) = state.node(name) else {
        return;
    };
    frame.render_widget(Clear, area);
    let title = Line::from(Span::styled(
        format!(" {} ({}) — enter or esc to close ", n.name, n.host),
        theme.title,
    ));
    let block = pane(theme, title, true).style(theme.popup);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(st) = n.stats.as_ref() else {
        let msg = n
            .message
            .clone()
            .unwrap_or_else(|| n.status.as_str().to_string());
        frame.render_widget(Paragraph::new(msg).style(theme.warning), inner);
        return;
    };
    let facts = n.cur.as_ref().and_then(|c| c.facts.as_ref());
    let mut header = vec![
        Line::from(vec![
            Span::styled("Load ", theme.dim),
            Span::styled(
                format!("{:.2} {:.2} {:.2}", st.load[0], st.load[1], st.load[2]),
                widgets::severity_style(theme, n.level),
            ),
            Span::styled(
                format!(
                    "  on {} cores ({:.2} per core)   Mem {} of {}   Up {}",
                    st.cores,
                    st.load_per_core,
                    bytes(
                        st.memory_total_bytes
                            .saturating_sub(st.memory_available_bytes)
                    ),
                    bytes(st.memory_total_bytes),
                    widgets::uptime(st.uptime_s)
                ),
                theme.base,
            ),
        ]),
        Line::from(vec![
            Span::styled("Load ", theme.dim),
            Span::styled(
                widgets::sparkline(
                    n.load_history.iter(),
                    Some(st.cores as f64 * 1.25),
                    usize::from(inner.width.saturating_sub(12)),
                ),
                theme.sparkline,
            ),
        ]),
    ];
    if n.status != HostStatus::Ok {
        header.insert(
            0,
            Line::from(Span::styled(
                match &n.message {
                    Some(m) => format!("{}: {m}", n.status.as_str()),
                    None => n.status.as_str().to_string(),
                },
                theme.warning,
            )),
        );
    }
    if let Some(f) = facts {
        header.push(Line::from(Span::styled(
            format!(
                "{}  {}  kernel {}",
                f.hostname.as_deref().unwrap_or("?"),
                f.os.as_deref().unwrap_or(""),
                f.kernel.as_deref().unwrap_or("?")
            ),
            theme.dim,
        )));
    }
    header.push(Line::from(vec![
        Span::styled("user ", theme.cpu_user),
        Span::styled("nice ", theme.cpu_nice),
        Span::styled("system ", theme.cpu_system),
        Span::styled("irq ", theme.cpu_irq),
        Span::styled("softirq ", theme.cpu_softirq),
        Span::styled("steal ", theme.cpu_steal),
        Span::styled("iowait", theme.cpu_iowait),
    ]));
    let [head, body] =
        Layout::vertical([Constraint::Length(header.len() as u16), Constraint::Min(1)])
            .areas(inner);
    frame.render_widget(Paragraph::new(header), head);

    // As many columns of core bars as the height needs.
    let ncpu = st.cpus.len().max(1);
    let rows_avail = usize::from(body.height.max(1));
    let ncols = ncpu.div_ceil(rows_avail).max(1);
    let col_width = usize::from(body.width) / ncols;
    let ids = n
        .cur
        .as_ref()
        .map(|c| c.stat.cpu_ids.clone())
        .unwrap_or_default();
    let mut lines: Vec<Line> = vec![Line::default(); ncpu.min(rows_avail)];
    for (i, cpu) in st.cpus.iter().enumerate() {
        let line = &mut lines[i % rows_avail.min(ncpu)];
        let id = ids.get(i).copied().unwrap_or(i as u32);
        let bar_width = col_width.saturating_sub(12).max(1);
        line.spans
            .push(Span::styled(format!("{id:>3}["), theme.dim));
        line.spans.extend(cpu_bar(theme, cpu.as_ref(), bar_width));
        line.spans.push(Span::styled(
            cpu.map_or("   -%]".into(), |c| format!("{:5.1}%]", c.busy())),
            theme.dim,
        ));
        line.spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(lines), body);
}
