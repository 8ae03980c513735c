//! The nodes pane, htop-like: per-core activity, load against the core count, memory, uptime and
//! a load trend for every node; and the detail view of one node with a full bar per core.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use crate::app::state::{NodeEntry, NodeSort, Pane, State};
use crate::config::Theme;
use crate::model::sample::HostStatus;

use super::widgets::{
    self, TableView, age, bytes, cell, core_strip, cpu_bar, draw_table, fit_columns, load_gauge,
    pane,
};

/// One node's row as its cells see it.
struct RowCx<'a> {
    state: &'a State,
    theme: &'a Theme,
    n: &'a NodeEntry,
    /// The width left for the per-core strip.
    strip_width: usize,
}

type Column = widgets::Column<NodeSort, fn(&RowCx) -> Cell<'static>>;

/// The status column, which grows while some node shows a status beside its age.
const STATUS: usize = 1;
/// The per-core strip, which takes whatever width is left.
const CORES: usize = 8;

/// The nodes table, left to right.
const COLUMNS: [Column; 9] = [
    Column::new("Node", 16, 100, false, Some(NodeSort::Name), name_cell),
    Column::new("Status", 8, 90, false, None, status_cell),
    Column::new("Load 1/5/15", 17, 95, false, None, load_cell),
    Column::new(
        "vs cores",
        14,
        85,
        false,
        Some(NodeSort::LoadPerCore),
        gauge_cell,
    ),
    Column::new("CPU", 16, 80, false, Some(NodeSort::Cpu), cpu_cell),
    Column::new("Mem", 11, 60, false, Some(NodeSort::Memory), memory_cell),
    Column::new("Up", 6, 30, true, None, uptime_cell),
    Column::new("Load trend", 12, 40, false, None, trend_cell),
    Column::new("Cores", 8, 70, false, None, cores_cell),
];

/// The width the pane takes to show every column, with a strip of one cell per core (`cores`):
/// what it needs before it leaves the rest of a wide screen to the alerts.
pub(crate) fn full_width(cores: u16) -> u16 {
    let fixed: u16 = COLUMNS.iter().map(|c| c.width + 1).sum();
    // Borders, and the sort's arrow in one header.
    fixed + 3 + cores.saturating_sub(COLUMNS[CORES].width)
}

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

/// `ok` while the numbers are fresh (at most two intervals old), else their age, after the
/// status when it is not ok.
fn status_text(state: &State, n: &NodeEntry) -> String {
    let text = host_status_text(state, n);
    match widgets::dr_mark(n) {
        Some(mark) => format!("{text} {mark}"),
        None => text,
    }
}

fn host_status_text(state: &State, n: &NodeEntry) -> String {
    match (n.status, n.last_sample()) {
        (HostStatus::Ok, last) => {
            let fresh = 2.0 * state.options().interval.as_secs_f64();
            match state.age_of(last) {
                Some(a) if a <= fresh => "ok".to_string(),
                a => format!("ok {}", age(a)),
            }
        }
        (other, Some(last)) => format!("{} {}", status_label(other), age(state.age_of(Some(last)))),
        (other, None) => status_label(other).to_string(),
    }
}

/// Draws the pane: the title, then the table of the nodes `rows_model` indexes.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, rows_model: &[usize]) {
    let focused = state.ui().focus == Pane::Nodes;
    let title = title(state, theme);
    let block = pane(theme, title, focused);
    if state.nodes().is_empty() {
        let p = Paragraph::new("no nodes watched (--nodes none)")
            .style(theme.dim)
            .block(block);
        frame.render_widget(p, area);
        return;
    }
    if rows_model.is_empty() {
        frame.render_widget(super::widgets::no_match(state, theme).block(block), area);
        return;
    }
    let inner_width = area.width.saturating_sub(2);
    let columns = sized_columns(state, rows_model);
    let keep = fit_columns(&columns, inner_width, &state.ui().node_sort);
    let fixed: u16 = keep
        .iter()
        .map(|&i| widgets::shown_width(&columns[i], &state.ui().node_sort) + 1)
        .sum();
    let strip_width = usize::from(
        inner_width
            .saturating_sub(fixed)
            .saturating_add(columns[CORES].width),
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
            let cx = RowCx {
                state,
                theme,
                n: &state.nodes()[i],
                strip_width,
            };
            Row::new(cols.iter().map(|c| (c.cell)(&cx)).collect::<Vec<_>>())
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
            sort: state.ui().node_sort,
            ascending: state.ui().node_sort.ascending() != state.ui().reverse,
        },
    );
}

/// Where the table's header cells are in the pane's `area`, and the sort each shows; none when
/// the pane shows no table.
pub(super) fn header_spans(
    state: &State,
    area: Rect,
    rows_model: &[usize],
) -> Vec<(std::ops::Range<u16>, Option<NodeSort>)> {
    if state.nodes().is_empty() {
        return Vec::new();
    }
    let columns = sized_columns(state, rows_model);
    let keep = fit_columns(
        &columns,
        area.width.saturating_sub(2),
        &state.ui().node_sort,
    );
    let cols: Vec<&Column> = keep.iter().map(|&i| &columns[i]).collect();
    widgets::column_spans(&cols, area)
}

/// ` Nodes 6 │ 2 near or over core count │ sort name `.
fn title(state: &State, theme: &Theme) -> Line<'static> {
    let over = state.nodes().iter().filter(|n| n.level.is_some()).count();
    Line::from(vec![
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
    ])
}

/// The columns, the status column widened (up to 16) to the widest status shown beside its age.
fn sized_columns(state: &State, rows_model: &[usize]) -> [Column; 9] {
    let mut columns = COLUMNS;
    let status_width = rows_model
        .iter()
        .filter_map(|&i| state.nodes().get(i))
        .filter(|n| n.status != HostStatus::Ok)
        .map(|n| status_text(state, n).chars().count())
        .max()
        .unwrap_or(0);
    columns[STATUS].width = u16::try_from(status_width)
        .unwrap_or(16)
        .clamp(COLUMNS[STATUS].width, 16);
    columns
}

/// The name, marked `!!` (critical) or `!` (warning) and coloured by its worst alert.
fn name_cell(cx: &RowCx) -> Cell<'static> {
    let level = cx.state.alerts().worst(&cx.n.name);
    let marker = match level {
        Some(crate::model::alert::Severity::Critical) => "!! ",
        Some(crate::model::alert::Severity::Warning) => "!  ",
        None => "   ",
    };
    cell(
        format!("{marker}{}", cx.n.name),
        false,
        widgets::severity_style(cx.theme, level),
    )
}

fn status_cell(cx: &RowCx) -> Cell<'static> {
    let style = if cx.n.status != HostStatus::Ok {
        cx.theme.critical
    } else if widgets::dr_mark(cx.n).is_some() {
        cx.theme.warning
    } else {
        cx.theme.dim
    };
    cell(status_text(cx.state, cx.n), false, style)
}

/// The 1-, 5- and 15-minute load, coloured by the load level.
fn load_cell(cx: &RowCx) -> Cell<'static> {
    cx.n.stats.as_ref().map_or_else(
        || cell("-", false, cx.theme.dim),
        |s| {
            cell(
                format!("{:5.2} {:5.2} {:5.2}", s.load[0], s.load[1], s.load[2]),
                false,
                widgets::severity_style(cx.theme, cx.n.level),
            )
        },
    )
}

/// The load gauge against the core count, and the count.
fn gauge_cell(cx: &RowCx) -> Cell<'static> {
    cx.n.stats.as_ref().map_or_else(
        || cell("", false, cx.theme.dim),
        |s| {
            let mut spans = load_gauge(cx.theme, s.load[0], s.cores, cx.n.level, 9);
            spans.push(Span::styled(format!(" /{:<3}", s.cores), cx.theme.dim));
            Line::from(spans).into()
        },
    )
}

/// The CPU bar of all cores, and the busy percentage.
fn cpu_cell(cx: &RowCx) -> Cell<'static> {
    let st = cx.n.stats.as_ref();
    Line::from(cpu_bar(cx.theme, st.and_then(|s| s.cpu_total.as_ref()), 10))
        .spans
        .into_iter()
        .chain(std::iter::once(Span::styled(
            st.and_then(|s| s.cpu_total)
                .map_or("    -".into(), |c| format!("{:4.0}%", c.busy())),
            cx.theme.base,
        )))
        .collect::<Line>()
        .into()
}

/// Memory used, as a percentage of the total, and the total: ` 4% of 24G`.
fn memory_cell(cx: &RowCx) -> Cell<'static> {
    cx.n.stats
        .as_ref()
        .and_then(|s| s.memory_used_fraction().map(|f| (s, f)))
        .map_or_else(
            || cell("-", false, cx.theme.dim),
            |(s, f)| {
                cell(
                    format!("{:3.0}% of {}", f * 100.0, bytes(s.memory_total_bytes)),
                    false,
                    cx.theme.base,
                )
            },
        )
}

fn uptime_cell(cx: &RowCx) -> Cell<'static> {
    cell(
        cx.n.stats
            .as_ref()
            .map_or("-".into(), |s| widgets::uptime(s.uptime_s)),
        true,
        cx.theme.dim,
    )
}

/// The load trend on the gauge's scale (1.25 × cores).
fn trend_cell(cx: &RowCx) -> Cell<'static> {
    cell(
        widgets::sparkline(
            cx.n.load_history.iter(),
            cx.n.stats.as_ref().map(|s| s.cores as f64 * 1.25),
            12,
        ),
        false,
        cx.theme.sparkline,
    )
}

/// One glyph per core (or group of cores), in the width left.
fn cores_cell(cx: &RowCx) -> Cell<'static> {
    cx.n.stats.as_ref().map_or_else(
        || cell("", false, cx.theme.dim),
        |s| {
            if s.cpus.is_empty() {
                // Per-node sums only (Prometheus for a large fleet): no core to draw.
                let text = if cx.strip_width >= 8 {
                    "per-node"
                } else {
                    "sum"
                };
                cell(text, false, cx.theme.dim)
            } else {
                Line::from(core_strip(cx.theme, &s.cpus, cx.strip_width)).into()
            }
        },
    )
}
