//! The nodes pane, htop-like: per-core activity, load against the core count, memory, uptime and
//! a load trend for every node; and the detail view of one node with a full bar per core.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};

use crate::app::state::{NodeEntry, NodeSort, Pane, PaneView, State};
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
    /// The load trend's width.
    trend_width: usize,
}

type Column = widgets::Column<NodeSort, fn(&RowCx) -> Cell<'static>>;

/// The status column, which grows while some node shows a status beside its age.
const STATUS: usize = 1;
/// The load trend, which widens with the space.
const TREND: usize = 7;
/// The per-core strip, which takes a cell per core of the width left.
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
        HostStatus::Gone => "gone",
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

/// Draws the pane: the title, then the table of the nodes `rows_model` indexes, with each node's
/// core bars under its row when they all fit. Returns the rows it showed.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    rows_model: &[usize],
) -> PaneView {
    let focused = state.ui().focus == Pane::Nodes;
    let title = title(state, theme);
    let block = pane(theme, title, focused);
    if state.nodes().is_empty() {
        let p = Paragraph::new("no nodes watched (--nodes none)")
            .style(theme.dim)
            .block(block);
        frame.render_widget(p, area);
        return PaneView::default();
    }
    if rows_model.is_empty() {
        frame.render_widget(super::widgets::no_match(state, theme).block(block), area);
        return PaneView::default();
    }
    let fit = fit(state, area, rows_model);
    let cols: Vec<&Column> = fit.columns.iter().collect();
    let selected = state.selected_node_row(rows_model);
    let height = usize::from(area.height.saturating_sub(3));
    let window = match &fit.meters {
        Some(_) => 0..rows_model.len(),
        None => widgets::visible_window(
            rows_model.len(),
            selected,
            height,
            state.ui().view.nodes.first,
        ),
    };
    let rows: Vec<Row> = window
        .clone()
        .map(|at| {
            let cx = RowCx {
                state,
                theme,
                n: &state.nodes()[rows_model[at]],
                strip_width: fit.strip_width,
                trend_width: fit.trend_width,
            };
            let lines = fit.meters.as_ref().map_or(0, |m| m[at].lines);
            Row::new(cols.iter().map(|c| (c.cell)(&cx)).collect::<Vec<_>>())
                .height(1 + u16::try_from(lines).unwrap_or(0))
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
    if let Some(meters) = &fit.meters {
        draw_meters(frame, area, state, theme, rows_model, meters);
    }
    PaneView {
        first: window.start,
        rows: if fit.meters.is_some() {
            rows_model.len()
        } else {
            height
        },
    }
}

/// Lines of core meters left of the pane's inner edge, under the node's name.
const METER_INDENT: u16 = 3;
/// The narrowest core meter: `  3[` , a bar of 8 and `100.0%] `.
const METER_MIN: usize = 20;

/// How a node's core meters are laid out under its row: in `lines` lines of `per_line` each.
#[derive(Debug, Clone, Copy)]
struct Meter {
    lines: usize,
    per_line: usize,
}

/// The nodes table as it fits a pane: its columns (the status widened to the longest status,
/// the load trend to the space the others leave), the widths of the per-core strip and of the
/// trend, and, when every node's core meters fit under its row, their layout.
struct Fit {
    columns: Vec<Column>,
    strip_width: usize,
    trend_width: usize,
    meters: Option<Vec<Meter>>,
}

/// The table for a pane of `area`. With meters the strip is left out (the meters show more) and
/// the trend takes the space; without, the strip takes a cell per core and the trend the rest.
fn fit(state: &State, area: Rect, rows_model: &[usize]) -> Fit {
    let inner = area.width.saturating_sub(2);
    let meters = meter_plan(state, rows_model, inner, area.height.saturating_sub(3));
    let mut columns: Vec<Column> = sized_columns(state, rows_model).to_vec();
    if meters.is_some() {
        columns.truncate(CORES);
    }
    let sort = state.ui().node_sort;
    let keep = fit_columns(&columns, inner, &sort);
    let used: u16 = keep
        .iter()
        .map(|&i| widgets::shown_width(&columns[i], &sort) + 1)
        .sum();
    let extra = inner.saturating_sub(used);
    let cores = state
        .nodes()
        .iter()
        .filter_map(|n| n.stats.as_ref().map(|s| s.cpus.len()))
        .max()
        .unwrap_or(0);
    let strip_extra = if keep.contains(&CORES) {
        let want = u16::try_from(cores)
            .unwrap_or(u16::MAX)
            .saturating_sub(COLUMNS[CORES].width);
        want.min(extra)
    } else {
        0
    };
    let trend_extra = if keep.contains(&TREND) {
        extra - strip_extra
    } else {
        0
    };
    columns[TREND].width += trend_extra;
    let strip_width = usize::from(COLUMNS[CORES].width + strip_extra);
    Fit {
        trend_width: usize::from(columns[TREND].width),
        columns: keep.iter().map(|&i| columns[i]).collect(),
        strip_width,
        meters,
    }
}

/// Each row's core meters, when all of them fit in `body` lines of a table `inner` wide (each
/// node's row and its meter lines); `None` when they do not, or no node has CPU figures yet.
fn meter_plan(state: &State, rows_model: &[usize], inner: u16, body: u16) -> Option<Vec<Meter>> {
    let width = usize::from(inner.saturating_sub(METER_INDENT));
    let most = (width / METER_MIN).max(1);
    let meters: Vec<Meter> = rows_model
        .iter()
        .map(|&i| {
            let cores = state.nodes()[i].stats.as_ref().map_or(0, |s| s.cpus.len());
            let lines = cores.div_ceil(most);
            Meter {
                lines,
                per_line: if lines == 0 { 0 } else { cores.div_ceil(lines) },
            }
        })
        .collect();
    let total: usize = meters.iter().map(|m| 1 + m.lines).sum();
    (total <= usize::from(body) && meters.iter().any(|m| m.lines > 0)).then_some(meters)
}

/// The lines the pane's table wants for `rows_model` in a pane `width` wide: a row per node, and
/// its meter lines under it. The layout gives them when it has room; the pane then shows meters.
pub(crate) fn lines_wanted(state: &State, rows_model: &[usize], width: u16) -> usize {
    meter_plan(state, rows_model, width.saturating_sub(2), u16::MAX)
        .map_or(rows_model.len(), |m| m.iter().map(|m| 1 + m.lines).sum())
}

/// The height of each row in a pane of `area`, when it shows meters (every row is then in view).
pub(super) fn row_heights(state: &State, area: Rect, rows_model: &[usize]) -> Option<Vec<usize>> {
    meter_plan(
        state,
        rows_model,
        area.width.saturating_sub(2),
        area.height.saturating_sub(3),
    )
    .map(|m| m.iter().map(|m| 1 + m.lines).collect())
}

/// Each node's core meters under its row, a line per `Meter::lines`, cores in columns.
fn draw_meters(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    rows_model: &[usize],
    meters: &[Meter],
) {
    let x = area.x + 1 + METER_INDENT;
    let width = area.width.saturating_sub(2 + METER_INDENT);
    let bottom = area.bottom().saturating_sub(1);
    let mut y = area.y + 2;
    for (&i, m) in rows_model.iter().zip(meters) {
        let n = &state.nodes()[i];
        y += 1;
        let Some(st) = n.stats.as_ref() else {
            continue;
        };
        let ids = n.cur.as_ref().map(|c| &c.stat.cpu_ids[..]).unwrap_or(&[]);
        let cell = usize::from(width) / m.per_line.max(1);
        for line in 0..m.lines {
            if y >= bottom {
                return;
            }
            let mut spans = Vec::new();
            for j in (line..st.cpus.len()).step_by(m.lines) {
                let id = ids.get(j).copied().unwrap_or(j as u32);
                let cpu = st.cpus.get(j).and_then(Option::as_ref);
                spans.extend(widgets::core_meter(theme, id, cpu, cell));
            }
            let rect = Rect::new(x, y, width, 1);
            frame.render_widget(Paragraph::new(Line::from(spans)), rect);
            y += 1;
        }
    }
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
    let fit = fit(state, area, rows_model);
    let cols: Vec<&Column> = fit.columns.iter().collect();
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

/// The 1-minute load's trend, as wide as its column, scaled to its own range.
fn trend_cell(cx: &RowCx) -> Cell<'static> {
    cell(
        widgets::sparkline(cx.n.load_history.iter(), cx.trend_width),
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
                let detail = s.cpu_detail();
                let text = if detail.len() <= cx.strip_width {
                    detail
                } else if s.busy_unsplit {
                    "busy"
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
