//! Small drawing pieces shared by the panes: number formats, CPU bars, load gauges, sparklines, and
//! the one table component every pane uses.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Cell, Row, Table, TableState};

use crate::config::Theme;
use crate::model::alert::Severity;
use crate::model::snapshot::CpuPercent;

pub use crate::model::text::si;

/// Bytes in binary units: `1.5G`, `512M`.
pub fn bytes(v: u64) -> String {
    let units = ["B", "K", "M", "G", "T", "P"];
    let mut x = v as f64;
    let mut u = 0;
    while x >= 1023.5 && u + 1 < units.len() {
        x /= 1024.0;
        u += 1;
    }
    if u == 0 || x >= 10.0 {
        format!("{x:.0}{}", units[u])
    } else {
        format!("{x:.1}{}", units[u])
    }
}

/// `3d04h`, `5h12m`, `42m`, `12s`.
pub fn uptime(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d{h:02}h")
    } else if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// A data age for the status line: `0.4s`, `12s`, `3m`.
pub fn age(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 10.0 => format!("{s:.1}s"),
        Some(s) if s < 120.0 => format!("{s:.0}s"),
        Some(s) => format!("{:.0}m", s / 60.0),
    }
}

pub(crate) fn severity_style(theme: &Theme, level: Option<Severity>) -> Style {
    match level {
        Some(Severity::Critical) => theme.critical,
        Some(Severity::Warning) => theme.warning,
        None => theme.ok,
    }
}

/// The CPU states in drawing order, with their theme style.
fn cpu_parts(theme: &Theme, c: &CpuPercent) -> [(f64, Style); 7] {
    [
        (c.nice, theme.cpu_nice),
        (c.user, theme.cpu_user),
        (c.system, theme.cpu_system),
        (c.irq, theme.cpu_irq),
        (c.softirq, theme.cpu_softirq),
        (c.steal, theme.cpu_steal),
        (c.iowait, theme.cpu_iowait),
    ]
}

/// A horizontal CPU bar `width` cells wide, coloured by state (iowait last, like htop).
pub(crate) fn cpu_bar(theme: &Theme, cpu: Option<&CpuPercent>, width: usize) -> Vec<Span<'static>> {
    let Some(c) = cpu else {
        return vec![Span::styled("·".repeat(width), theme.gauge_empty)];
    };
    let mut spans = Vec::new();
    let mut used = 0usize;
    let mut acc = 0.0;
    for (pct, style) in cpu_parts(theme, c) {
        acc += pct;
        let upto = ((acc / 100.0) * width as f64)
            .round()
            .clamp(0.0, width as f64) as usize;
        if upto > used {
            spans.push(Span::styled("|".repeat(upto - used), style));
            used = upto;
        }
    }
    if used < width {
        spans.push(Span::styled(" ".repeat(width - used), theme.gauge_empty));
    }
    spans
}

/// One core's meter, as htop draws it, `cell` columns wide: `  3[|||||      12.5%] `.
pub(crate) fn core_meter(
    theme: &Theme,
    id: u32,
    cpu: Option<&CpuPercent>,
    cell: usize,
) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(format!("{id:>3}["), theme.dim)];
    spans.extend(cpu_bar(theme, cpu, cell.saturating_sub(12).max(1)));
    spans.push(Span::styled(
        cpu.map_or("   -%]".into(), |c| format!("{:5.1}%]", c.busy())),
        theme.dim,
    ));
    spans.push(Span::raw(" "));
    spans
}

/// One glyph per core (or per group of cores when they do not fit), its height the busiest core of
/// the group and its colour the state that dominates it.
pub(crate) fn core_strip(
    theme: &Theme,
    cpus: &[Option<CpuPercent>],
    width: usize,
) -> Vec<Span<'static>> {
    const LEVELS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if cpus.is_empty() || width == 0 {
        return Vec::new();
    }
    let cells = cpus.len().min(width);
    let per = cpus.len().div_ceil(cells);
    cpus.chunks(per)
        .map(|group| {
            let busiest = group
                .iter()
                .flatten()
                .max_by(|a, b| a.busy().total_cmp(&b.busy()));
            match busiest {
                None => Span::styled("·", theme.gauge_empty),
                Some(c) => {
                    let level = ((c.busy() / 100.0) * 8.0).round().clamp(0.0, 8.0) as usize;
                    let style = cpu_parts(theme, c)
                        .into_iter()
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .map_or(theme.cpu_user, |(_, s)| s);
                    let glyph = if level == 0 { '▁' } else { LEVELS[level] };
                    Span::styled(
                        glyph.to_string(),
                        if level == 0 { theme.gauge_empty } else { style },
                    )
                }
            }
        })
        .collect()
}

/// A load gauge: filled up to the 1-minute load, on a scale of 1.25 × cores, with a mark at the
/// core count (the critical threshold).
pub(crate) fn load_gauge(
    theme: &Theme,
    load1: f64,
    cores: usize,
    level: Option<Severity>,
    width: usize,
) -> Vec<Span<'static>> {
    if width < 3 || cores == 0 {
        return Vec::new();
    }
    let scale = cores as f64 * 1.25;
    let filled = ((load1 / scale) * width as f64)
        .round()
        .clamp(0.0, width as f64) as usize;
    let mark = ((cores as f64 / scale) * width as f64).round() as usize;
    let mark = mark.min(width - 1);
    let fill_style = severity_style(theme, level);
    (0..width)
        .map(|i| {
            if i == mark {
                Span::styled(
                    "┃",
                    if i < filled {
                        fill_style
                    } else {
                        theme.threshold_mark
                    },
                )
            } else if i < filled {
                Span::styled("■", fill_style)
            } else {
                Span::styled("·", theme.gauge_empty)
            }
        })
        .collect()
}

/// A text sparkline of the newest `width` values, scaled to their own range (min..max), so that it
/// shows movement however high the values sit. A flat series is a flat line: at the bottom when it
/// is zero, in the middle otherwise.
pub(crate) fn sparkline(values: impl Iterator<Item = f64>, width: usize) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let vals: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let vals = &vals[vals.len().saturating_sub(width)..];
    let (lo, hi) = vals
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    // Empty (an infinite span) or flat to within rounding.
    let flat = !span.is_finite() || span <= hi.abs().max(lo.abs()) * 1e-9;
    vals.iter()
        .map(|&v| {
            let level = if flat {
                if v == 0.0 { 0 } else { 3 }
            } else {
                (((v - lo) / span) * 7.0).round().clamp(0.0, 7.0) as usize
            };
            LEVELS[level]
        })
        .collect()
}

/// A bordered block, its border brighter when focused.
pub fn pane<'a>(theme: &Theme, title: Line<'a>, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(if focused {
            theme.border_focused
        } else {
            theme.border
        })
        .title(title)
        .title_style(theme.title)
}

/// A column of a table, as data: its header and width, how readily it is dropped when space is
/// short (higher priority survives longer), the sort it shows (`S`, the pane's sort enum), and
/// how a row's cell is made (`F`, a `fn` from the pane's row context to a cell).
#[derive(Clone, Copy)]
pub(crate) struct Column<S, F> {
    pub header: &'static str,
    pub width: u16,
    pub priority: u8,
    pub right: bool,
    /// The sort whose order this column shows, if any: while the rows are sorted by it, the
    /// column is kept however narrow the pane.
    pub sort: Option<S>,
    pub cell: F,
}

impl<S, F> Column<S, F> {
    /// A column: header, width, priority, right-aligned, sort, cell (the panes' `COLUMNS`).
    pub(crate) const fn new(
        header: &'static str,
        width: u16,
        priority: u8,
        right: bool,
        sort: Option<S>,
        cell: F,
    ) -> Self {
        Column {
            header,
            width,
            priority,
            right,
            sort,
            cell,
        }
    }
}

/// The width a column takes: one more for the sorted column, whose header carries ▲ or ▼.
pub(crate) fn shown_width<S: PartialEq, F>(column: &Column<S, F>, sort: &S) -> u16 {
    column.width + u16::from(column.sort.as_ref() == Some(sort))
}

/// Which columns fit in `width`, keeping the column of the current sort and then those of
/// highest priority, in their original order.
pub(crate) fn fit_columns<S: PartialEq, F>(
    columns: &[Column<S, F>],
    width: u16,
    sort: &S,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| {
        let sorted = columns[i].sort.as_ref() == Some(sort);
        (
            std::cmp::Reverse(sorted),
            std::cmp::Reverse(columns[i].priority),
        )
    });
    let mut used = 0u16;
    let mut keep = Vec::new();
    for i in order {
        let w = shown_width(&columns[i], sort) + 1;
        if used + w <= width {
            used += w;
            keep.push(i);
        }
    }
    keep.sort_unstable();
    keep
}

/// The columns of the shared table drawn in a bordered `area`, left to right: the cells each
/// covers, `x..end`, and the sort its header shows. The last column takes what is left.
pub(crate) fn column_spans<S: Copy, F>(
    columns: &[&Column<S, F>],
    area: Rect,
) -> Vec<(std::ops::Range<u16>, Option<S>)> {
    let right = area.right().saturating_sub(1);
    let mut x = area.x.saturating_add(1);
    let mut spans = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let end = if i + 1 == columns.len() {
            right
        } else {
            x.saturating_add(c.width).min(right)
        };
        spans.push((x..end, c.sort));
        x = end.saturating_add(1);
    }
    spans
}

/// The rows a table of `len` rows shows in `height` lines: from `first` (the first row shown
/// last time), moved as little as keeps `selected` in view. Only these are built, so a pane with
/// thousands of rows costs what its visible rows cost.
pub(crate) fn visible_window(
    len: usize,
    selected: Option<usize>,
    height: usize,
    first: usize,
) -> std::ops::Range<usize> {
    let height = height.max(1);
    let mut start = first.min(len.saturating_sub(height));
    if let Some(sel) = selected {
        if sel < start {
            start = sel;
        } else if sel >= start + height {
            start = sel + 1 - height;
        }
    }
    start.min(len)..(start + height).min(len)
}

/// What a pane puts in the shared table: the kept columns, rows cut to them, the selected row,
/// and the sort, marked in its column's header: ▲ ascending, ▼ descending.
pub(crate) struct TableView<'a, S, F> {
    pub columns: Vec<&'a Column<S, F>>,
    pub rows: Vec<Row<'a>>,
    pub selected: Option<usize>,
    pub focused: bool,
    pub sort: S,
    pub ascending: bool,
}

/// A column's header, with the sort's arrow when the rows are sorted by it.
fn header_cell<S: PartialEq, F>(c: &Column<S, F>, sort: &S, ascending: bool) -> Cell<'static> {
    let arrow = if ascending { "▲" } else { "▼" };
    let sorted = c.sort.as_ref() == Some(sort);
    let text = match (sorted, c.right) {
        (false, _) => c.header.to_string(),
        (true, true) => format!("{arrow}{}", c.header),
        (true, false) => format!("{}{arrow}", c.header),
    };
    Cell::from(if c.right {
        Line::from(text).right_aligned()
    } else {
        Line::from(text)
    })
}

/// The shared table: header, rows, and a selection that scrolls into view.
pub(crate) fn draw_table<S: PartialEq, F>(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    theme: &Theme,
    view: TableView<S, F>,
) {
    let TableView {
        columns,
        rows,
        selected,
        focused,
        sort,
        ascending,
    } = view;
    let header =
        Row::new(columns.iter().map(|c| header_cell(c, &sort, ascending))).style(theme.header);
    let widths: Vec<Constraint> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let width = shown_width(c, &sort);
            if i + 1 == columns.len() {
                Constraint::Min(width)
            } else {
                Constraint::Length(width)
            }
        })
        .collect();
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(if focused { theme.selected } else { theme.dim });
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}

/// What a pane says when the filter hides all its rows.
pub(crate) fn no_match(
    state: &crate::app::State,
    theme: &Theme,
) -> ratatui::widgets::Paragraph<'static> {
    ratatui::widgets::Paragraph::new(format!(
        "nothing matches the filter \"{}\" (esc clears it)",
        state.ui().filter
    ))
    .style(theme.warning)
    .wrap(ratatui::widgets::Wrap { trim: true })
}

/// Text aligned in a cell.
pub fn cell(text: impl Into<String>, right: bool, style: Style) -> Cell<'static> {
    let line = Line::from(Span::styled(text.into(), style));
    Cell::from(if right { line.right_aligned() } else { line })
}

/// The short mark of a node whose direct-routing checks found a problem (`DR!`); the problems
/// themselves are in the alert and the JSON.
pub(crate) fn dr_mark(n: &crate::app::state::NodeEntry) -> Option<&'static str> {
    n.dr_problems
        .as_ref()
        .is_some_and(|p| !p.is_empty())
        .then_some("DR!")
}

#[cfg(test)]
mod tests {
    use super::{sparkline, visible_window};

    #[test]
    fn the_window_stays_put_while_the_selection_is_in_it_and_moves_least_to_follow_it() {
        // Scrolled down to row 29 of 100, ten rows high: 20..30.
        assert_eq!(visible_window(100, Some(29), 10, 0), 20..30);
        // A click on row 25 keeps the rows where they are.
        assert_eq!(visible_window(100, Some(25), 10, 20), 20..30);
        // Above or below it, the window moves just enough.
        assert_eq!(visible_window(100, Some(15), 10, 20), 15..25);
        assert_eq!(visible_window(100, Some(31), 10, 20), 22..32);
        // Rows gone: the window comes back to show a full page.
        assert_eq!(visible_window(12, Some(11), 10, 20), 2..12);
        assert_eq!(visible_window(5, None, 10, 3), 0..5);
    }

    #[test]
    fn a_sparkline_spans_its_own_range_and_a_flat_one_stays_flat() {
        // High values that barely move still fill the height: min..max, not 0..max.
        assert_eq!(sparkline([100.0, 101.0, 102.0].into_iter(), 10), "▁▅█");
        // The newest `width` values.
        assert_eq!(sparkline([5.0, 1.0, 2.0, 3.0].into_iter(), 3), "▁▅█");
        assert_eq!(sparkline([0.0, 0.0].into_iter(), 5), "▁▁");
        assert_eq!(sparkline([7.0, 7.0].into_iter(), 5), "▄▄");
        assert_eq!(sparkline([f64::NAN, 1.0].into_iter(), 5), "▄");
        assert_eq!(sparkline(std::iter::empty(), 5), "");
    }
}
