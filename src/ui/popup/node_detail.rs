//! The detail view of one node: load, memory, uptime, a load trend, the host's facts, the real
//! servers it is behind (one selected, for the action keys), charts of its load and CPU, and a
//! full bar per core, as htop draws them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table, TableState};

use crate::app::state::NodeEntry;
use crate::app::{Action, State};
use crate::config::{Keymap, Theme};
use crate::model::sample::HostStatus;
use crate::model::snapshot::NodeStats;

use super::super::widgets::{self, bytes, pane};
use super::{keys_or, node_charts};

/// The charts' height at most: they take what the real servers and the bars leave, up to this.
const CHART_HEIGHT: u16 = 20;

/// Draws the node `name` into `area`, its title naming the keys that close it.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    keymap: &Keymap,
    name: &str,
) {
    let Some(n) = state.node(name) else {
        return;
    };
    frame.render_widget(Clear, area);
    let close = keys_or(keymap, &[Action::Toggle, Action::Back]);
    let title = Line::from(Span::styled(
        format!(" {} ({}) — {close} to close ", n.name, n.host),
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
    let header = header_lines(theme, n, st, inner.width);
    debug_assert_eq!(header.len(), header_len(n));
    let reals = state.node_reals(name);
    // Per-node sums only: a bar for them and the line that says so.
    let bar_lines = if st.cpus.is_empty() { 2 } else { st.cpus.len() };
    let [head, list, charts, body] = body_areas(inner, header.len(), reals.len(), bar_lines);
    frame.render_widget(Paragraph::new(header), head);
    reals_table(frame, list, state, theme, keymap, &reals);
    if charts.height > 0 {
        node_charts::draw(frame, charts, theme, n, st.cores);
    }
    frame.render_widget(Paragraph::new(core_bars(theme, n, st, body)), body);
}

/// The row of the real servers' list at `at` in the detail of node `name` drawn in `area`, as an
/// index into [`State::node_reals`]; `None` off the list's rows.
pub fn real_at(area: Rect, state: &State, name: &str, at: Position) -> Option<usize> {
    let n = state.node(name)?;
    let st = n.stats.as_ref()?;
    let inner = pane(&Theme::default(), Line::default(), true).inner(area);
    let reals = state.node_reals(name);
    let [_, list, _, _] = body_areas(inner, header_len(n), reals.len(), st.cpus.len());
    // A header line, then the rows, scrolled as the table scrolls them to the selection.
    if !list.contains(at) || at.y == list.y {
        return None;
    }
    let window = widgets::visible_window(
        reals.len(),
        Some(state.detail_row(&reals)),
        usize::from(list.height - 1),
        0,
    );
    let row = window.start + usize::from(at.y - list.y - 1);
    window.contains(&row).then_some(row)
}

/// How many lines `header_lines` makes for `n`.
fn header_len(n: &NodeEntry) -> usize {
    let facts = n.cur.as_ref().is_some_and(|c| c.facts.is_some());
    usize::from(n.status != HostStatus::Ok) + 3 + usize::from(facts)
}

/// Where the header, the real servers (a header line and one per real server, if any), the
/// charts and the core bars go in `inner`: the charts only when the bars keep a line per core
/// (or half of what is left) beside them, and the bars take what the charts leave.
fn body_areas(inner: Rect, header: usize, reals: usize, cores: usize) -> [Rect; 4] {
    let header = header as u16;
    let list = if reals == 0 {
        0
    } else {
        (reals as u16 + 1).min(inner.height.saturating_sub(header) / 3)
    };
    let left = inner.height.saturating_sub(header + list);
    let bars = (cores.max(1) as u16).min(left / 2);
    let chart = if left >= bars + 8 {
        (left - bars).min(CHART_HEIGHT)
    } else {
        0
    };
    Layout::vertical([
        Constraint::Length(header),
        Constraint::Length(list),
        Constraint::Length(chart),
        Constraint::Min(0),
    ])
    .areas(inner)
}

/// The real servers behind this node across services: service, address, weight, connections
/// and their share of the service's, the selected one highlighted for the action keys.
fn reals_table(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    keymap: &Keymap,
    reals: &[(usize, usize)],
) {
    let Some(router) = state.router() else {
        return;
    };
    if area.height == 0 {
        return;
    }
    let services = router.cur.as_ref().map_or(&[][..], |c| &c.services[..]);
    let rows: Vec<Row> = reals
        .iter()
        .filter_map(|&(s, r)| {
            let svc = services.get(s)?;
            let real = svc.reals.get(r)?;
            let share = router
                .stats
                .services
                .get(s)
                .and_then(|st| st.reals.get(r))
                .map_or(0.0, |st| st.conn_share);
            Some(Row::new([
                Cell::from(crate::control::plan::service_label(&svc.key)),
                Cell::from(real.id()),
                widgets::cell(
                    real.weight.to_string(),
                    true,
                    weight_style(theme, real.weight),
                ),
                widgets::cell(widgets::si(f64::from(real.active_conns)), true, theme.base),
                widgets::cell(
                    widgets::si(f64::from(real.inactive_conns)),
                    true,
                    theme.base,
                ),
                widgets::cell(format!("{:.0}%", share * 100.0), true, theme.dim),
            ]))
        })
        .collect();
    let actions = keys_or(keymap, &[Action::Drain, Action::Reweight, Action::Restore]);
    let header = Row::new([
        widgets::cell("Service", false, theme.header),
        widgets::cell(format!("Real server ({actions})"), false, theme.header),
        widgets::cell("Weight", true, theme.header),
        widgets::cell("Active", true, theme.header),
        widgets::cell("InAct", true, theme.header),
        widgets::cell("C%", true, theme.header),
    ]);
    let widths = [
        Constraint::Length(28),
        Constraint::Length(40),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(4),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .style(theme.base)
        .row_highlight_style(theme.selected);
    let mut sel = TableState::default().with_selected(Some(state.detail_row(reals)));
    frame.render_stateful_widget(table, area, &mut sel);
}

/// A weight in warning colour at 0, as the services pane shows it.
fn weight_style(theme: &Theme, weight: i32) -> ratatui::style::Style {
    if weight == 0 {
        theme.warning
    } else {
        theme.base
    }
}

/// The lines above the bars: the status when it is not ok, load, memory and uptime, the load
/// trend `width` wide, the host's facts, and the legend of the CPU states.
fn header_lines(theme: &Theme, n: &NodeEntry, st: &NodeStats, width: u16) -> Vec<Line<'static>> {
    let mut header = Vec::new();
    if n.status != HostStatus::Ok {
        header.push(Line::from(Span::styled(
            match &n.message {
                Some(m) => format!("{}: {m}", n.status.as_str()),
                None => n.status.as_str().to_string(),
            },
            theme.warning,
        )));
    }
    header.push(Line::from(vec![
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
    ]));
    header.push(Line::from(vec![
        Span::styled("Load ", theme.dim),
        Span::styled(
            widgets::sparkline(n.load_history.iter(), usize::from(width.saturating_sub(12))),
            theme.sparkline,
        ),
    ]));
    if let Some(f) = n.cur.as_ref().and_then(|c| c.facts.as_ref()) {
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
    header
}

/// The source gave the node's sums over its cores only (Prometheus, for a large fleet): one bar
/// for them, and a line that says so.
fn node_sum_bar(theme: &Theme, st: &NodeStats, body: Rect) -> Vec<Line<'static>> {
    let bar_width = usize::from(body.width).saturating_sub(16).max(1);
    let mut bar = vec![Span::styled(format!("all {:>3}[", st.cores), theme.dim)];
    bar.extend(widgets::cpu_bar(theme, st.cpu_total.as_ref(), bar_width));
    bar.push(Span::styled(
        st.cpu_total
            .map_or("   -%]".into(), |c| format!("{:5.1}%]", c.busy())),
        theme.dim,
    ));
    let says = if st.busy_unsplit {
        "busy only: the source gave the node's idle time, not its cores nor the kinds of its \
         busy time (iowait counts as busy)"
    } else {
        "per-node sums: the source gave no per-core detail for this node"
    };
    vec![Line::from(bar), Line::styled(says, theme.dim)]
}

/// A bar per core, `id[|||||   12.5%]`, in as many columns as `body`'s height needs.
fn core_bars(theme: &Theme, n: &NodeEntry, st: &NodeStats, body: Rect) -> Vec<Line<'static>> {
    if st.cpus.is_empty() {
        return node_sum_bar(theme, st, body);
    }
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
        line.spans
            .extend(widgets::core_meter(theme, id, cpu.as_ref(), col_width));
    }
    lines
}
