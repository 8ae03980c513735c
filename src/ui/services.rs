//! The services pane: virtual services and their real servers as a collapsible tree, like
//! `watch ipvsadm` with rates, shares and the nodes' load beside each real server.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Wrap};

use crate::app::state::{Pane, PaneView, RouterEntry, ServiceRow, ServiceSort, State};
use crate::config::Theme;
use crate::model::sample::{
    HostStatus, IpvsRates, RealServerSample, RouterSourceKind, VirtualServiceSample,
};
use crate::model::snapshot::{RealStats, ServiceStats};

use super::widgets::{self, TableView, cell, draw_table, fit_columns, pane, si};

/// One row of the tree as its cells see it.
struct RowCx<'a> {
    state: &'a State,
    theme: &'a Theme,
    router: &'a RouterEntry,
    subject: Subject<'a>,
    /// The width of the trend column, the last: what the other columns leave.
    trend_width: usize,
}

/// What a row shows: a virtual service, one of its real servers (`last` under its service, in
/// the order shown), or nothing (an index the sample no longer has).
enum Subject<'a> {
    Service {
        svc: &'a VirtualServiceSample,
        st: Option<&'a ServiceStats>,
    },
    Real {
        svc: &'a VirtualServiceSample,
        real: &'a RealServerSample,
        st: RealStats,
        last: bool,
    },
    Missing,
}

type Column = widgets::Column<ServiceSort, fn(&RowCx) -> Cell<'static>>;

/// The services table, left to right. What links a real server to its node (its share of the
/// connections, its node's load per core) outlives the rates when the pane is narrow; the node's
/// name goes before them, as its load per core already ties the row to its node.
const COLUMNS: [Column; 15] = [
    Column::new(
        "Service / real server",
        34,
        100,
        false,
        Some(ServiceSort::Id),
        name_cell,
    ),
    Column::new("Fwd", 6, 74, false, None, forward_cell),
    Column::new("Node", 8, 72, false, None, node_cell),
    Column::new(
        "Weight",
        6,
        95,
        true,
        Some(ServiceSort::Weight),
        weight_cell,
    ),
    Column::new("W%", 4, 76, true, None, weight_share_cell),
    Column::new(
        "Active",
        7,
        90,
        true,
        Some(ServiceSort::Connections),
        active_cell,
    ),
    Column::new("InAct", 7, 85, true, None, inactive_cell),
    Column::new("C%", 4, 78, true, None, conn_share_cell),
    Column::new("CPS", 6, 70, true, Some(ServiceSort::Cps), cps_cell),
    Column::new("InPPS", 6, 40, true, None, in_pps_cell),
    Column::new("OutPPS", 6, 35, true, None, out_pps_cell),
    Column::new(
        "InB/s",
        6,
        50,
        true,
        Some(ServiceSort::Traffic),
        in_bps_cell,
    ),
    Column::new("OutB/s", 6, 45, true, None, out_bps_cell),
    Column::new(
        "Load/c",
        6,
        80,
        true,
        Some(ServiceSort::LoadPerCore),
        load_cell,
    ),
    Column::new("CPS trend", 10, 20, false, None, trend_cell),
];

fn service_label(svc: &VirtualServiceSample) -> String {
    let mut s = crate::control::plan::service_label(&svc.key);
    s.push(' ');
    // "?": the source does not say (Prometheus).
    s.push_str(svc.scheduler.as_deref().unwrap_or("?"));
    if let Some(p) = &svc.persistent {
        s.push_str(&format!(" p:{}s", p.timeout_s));
    }
    if svc.ops {
        s.push_str(" ops");
    }
    s
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// Draws the pane: the title, then the table of `rows_model`, or why there is no table. Returns
/// the rows it showed.
pub fn draw(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    rows_model: &[ServiceRow],
) -> PaneView {
    let focused = state.ui().focus == Pane::Services;
    let block = pane(theme, Line::from(title(state, theme)), focused);
    let Some(r) = state.router() else {
        let p = Paragraph::new("no router watched (--router none)")
            .style(theme.dim)
            .alignment(Alignment::Center)
            .block(block);
        frame.render_widget(p, area);
        return PaneView::default();
    };
    match no_table_reason(r, theme) {
        Some(p) => frame.render_widget(p.block(block), area),
        None if rows_model.is_empty() => {
            frame.render_widget(widgets::no_match(state, theme).block(block), area);
        }
        None => return draw_rows(frame, area, block, state, theme, r, rows_model),
    }
    PaneView::default()
}

/// ` Services lb1 via netlink │ counters … │ conns … │ sort service `.
fn title<'a>(state: &State, theme: &Theme) -> Vec<Span<'a>> {
    let mut title = vec![Span::styled(" Services ", theme.title)];
    let Some(r) = state.router() else {
        return title;
    };
    title.push(Span::styled(format!("{} ", r.host), theme.dim));
    // Of an HA pair: which director is the master, the sync daemons, both connection counts.
    if let Some(p) = state.pair() {
        let style = if p.problems().is_empty() && p.drift.is_empty() {
            theme.dim
        } else {
            theme.warning
        };
        title.push(Span::styled(format!("│ {} │ ", p.summary()), style));
    }
    // Data on screen but the router failing since: say why, beside the last table.
    if r.cur.is_some()
        && r.status != HostStatus::Ok
        && let Some(m) = &r.message
    {
        title.push(Span::styled(format!("│ {m} │ last data: "), theme.warning));
    }
    if let Some(cur) = &r.cur {
        title.push(Span::styled(
            format!("via {} ", cur.source.as_str()),
            theme.dim,
        ));
        // Who else writes the table: a weight changed here may be put back by it.
        if let Some(owners) = cur.owners.as_ref().filter(|o| !o.is_empty()) {
            title.push(Span::styled(
                format!("│ table managed by {} ", owners.join(", ")),
                theme.warning,
            ));
        }
        if cur.source == RouterSourceKind::Prometheus {
            title.push(Span::styled(
                "│ read-only; scheduler, method, thresholds and rates unknown (?) ",
                theme.warning,
            ));
        }
        // A router over SSH reads its costlier parts less often than /proc: say how old.
        let ages = cur.parts.ages(cur.time);
        if ages.counters >= 1.0 || ages.details >= 1.0 {
            title.push(Span::styled(
                format!(
                    "│ counters {} old, details {} old ",
                    whole_seconds(ages.counters),
                    whole_seconds(ages.details)
                ),
                theme.dim,
            ));
        }
        if let Some(c) = &cur.connections {
            let states: Vec<String> = c
                .by_state
                .iter()
                .map(|(k, v)| format!("{k} {}", si(*v as f64)))
                .collect();
            let age = if ages.connections >= 1.0 {
                format!(", {} old", whole_seconds(ages.connections))
            } else {
                String::new()
            };
            title.push(Span::styled(
                format!(
                    "│ conns {} ({}{age}) ",
                    si(c.total as f64),
                    states.join(" ")
                ),
                theme.dim,
            ));
        }
    }
    title.push(Span::styled(
        format!("│ sort {} ", state.ui().service_sort.label()),
        theme.dim,
    ));
    title
}

/// Why the router has no table to show (no data yet, or no services), as a paragraph.
fn no_table_reason(r: &RouterEntry, theme: &Theme) -> Option<Paragraph<'static>> {
    let (text, style) = match (&r.cur, &r.message, r.status) {
        (Some(cur), ..) if !cur.services.is_empty() => return None,
        (Some(_), ..) => (
            "IPVS is loaded, but holds no virtual services (ipvsadm -A to add one)".to_string(),
            theme.dim,
        ),
        (None, Some(m), _) => (m.clone(), theme.warning),
        (None, None, HostStatus::Connecting) => {
            ("waiting for the first poll…".to_string(), theme.dim)
        }
        (None, None, s) => (s.as_str().to_string(), theme.warning),
    };
    Some(
        Paragraph::new(text)
            .style(style)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
    )
}

/// The table: the columns that fit, and the rows in view, each cell made by its column.
fn draw_rows(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    state: &State,
    theme: &Theme,
    r: &RouterEntry,
    rows_model: &[ServiceRow],
) -> PaneView {
    let focused = state.ui().focus == Pane::Services;
    let cols = kept_columns(state, area);
    let sort = state.ui().service_sort;
    let others: u16 = cols
        .iter()
        .take(cols.len().saturating_sub(1))
        .map(|c| widgets::shown_width(c, &sort) + 1)
        .sum();
    let trend_width = usize::from(area.width.saturating_sub(2).saturating_sub(others));
    let selected = state.selected_service_row(rows_model);
    let height = usize::from(area.height.saturating_sub(3));
    let first = state.ui().view.services.first;
    let window = widgets::visible_window(rows_model.len(), selected, height, first);
    let row_style = if r.status == HostStatus::Ok {
        theme.base
    } else {
        theme.dim
    };
    let rows: Vec<Row> = window
        .clone()
        .map(|at| {
            let cx = RowCx {
                state,
                theme,
                router: r,
                subject: subject(r, rows_model, at),
                trend_width,
            };
            Row::new(cols.iter().map(|c| (c.cell)(&cx)).collect::<Vec<_>>()).style(row_style)
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
            sort: state.ui().service_sort,
            ascending: state.ui().service_sort.ascending() != state.ui().reverse,
        },
    );
    PaneView {
        first: window.start,
        rows: height,
    }
}

/// The columns that fit in the pane's `area`, in order.
fn kept_columns(state: &State, area: Rect) -> Vec<&'static Column> {
    let keep = fit_columns(
        &COLUMNS,
        area.width.saturating_sub(2),
        &state.ui().service_sort,
    );
    keep.iter().map(|&i| &COLUMNS[i]).collect()
}

/// Where the table's header cells are in the pane's `area`, and the sort each shows; none when
/// the pane shows no table.
pub(super) fn header_spans(
    state: &State,
    area: Rect,
) -> Vec<(std::ops::Range<u16>, Option<ServiceSort>)> {
    // The table is drawn when the router has services (`no_table_reason`).
    let has_table = state
        .router()
        .and_then(|r| r.cur.as_ref())
        .is_some_and(|c| !c.services.is_empty());
    if has_table {
        widgets::column_spans(&kept_columns(state, area), area)
    } else {
        Vec::new()
    }
}

/// What row `at` of `rows` shows.
fn subject<'a>(r: &'a RouterEntry, rows: &[ServiceRow], at: usize) -> Subject<'a> {
    let services = r.cur.as_ref().map_or(&[][..], |c| &c.services[..]);
    match rows[at] {
        ServiceRow::Service(s) => match services.get(s) {
            Some(svc) => Subject::Service {
                svc,
                st: r.stats.services.get(s),
            },
            None => Subject::Missing,
        },
        ServiceRow::Real(s, i) => match services
            .get(s)
            .and_then(|svc| Some((svc, svc.reals.get(i)?)))
        {
            Some((svc, real)) => Subject::Real {
                svc,
                real,
                st: r
                    .stats
                    .services
                    .get(s)
                    .and_then(|x| x.reals.get(i))
                    .copied()
                    .unwrap_or_default(),
                // The last real server shown under its service, in the order shown.
                last: !matches!(rows.get(at + 1), Some(ServiceRow::Real(..))),
            },
            None => Subject::Missing,
        },
    }
}

fn blank(cx: &RowCx) -> Cell<'static> {
    cell("", false, cx.theme.base)
}

/// `▾ TCP 192.0.2.10:80 wlc` for a service (`▸` when collapsed); `├ 10.0.0.2:80` for a real
/// server, with its guided drain: connections counting down, then `drained`.
fn name_cell(cx: &RowCx) -> Cell<'static> {
    let theme = cx.theme;
    match cx.subject {
        Subject::Service { svc, .. } => {
            let marker = if cx.state.ui().collapsed.contains(&svc.key) {
                "▸ "
            } else {
                "▾ "
            };
            cell(
                format!("{marker}{}", service_label(svc)),
                false,
                theme.title,
            )
        }
        Subject::Real {
            svc, real, last, ..
        } => {
            let branch = if last { "  └ " } else { "  ├ " };
            let key = (svc.key, crate::control::plan::RealKey::of(real));
            let (tag, tag_style) = if real.weight == 0 && cx.state.draining().contains(&key) {
                let left = u64::from(real.active_conns)
                    + u64::from(real.inactive_conns)
                    + u64::from(real.persistent_conns.unwrap_or(0));
                if left == 0 {
                    (" drained".to_string(), theme.ok)
                } else {
                    (format!(" draining {left}"), theme.warning)
                }
            } else {
                (String::new(), theme.base)
            };
            Line::from(vec![
                Span::styled(format!("{branch}{}", real.id()), theme.base),
                Span::styled(tag, tag_style),
            ])
            .into()
        }
        Subject::Missing => blank(cx),
    }
}

/// The number of real servers; a real server's forwarding method.
fn forward_cell(cx: &RowCx) -> Cell<'static> {
    match cx.subject {
        Subject::Service { svc, .. } => {
            cell(format!("{} rs", svc.reals.len()), false, cx.theme.dim)
        }
        Subject::Real { real, .. } => cell(real.forward.as_proc(), false, cx.theme.dim),
        Subject::Missing => blank(cx),
    }
}

/// The service's total weight; a real server's weight, in warning colour at 0.
fn weight_cell(cx: &RowCx) -> Cell<'static> {
    let theme = cx.theme;
    match cx.subject {
        Subject::Service { st, .. } => cell(
            st.map_or("-".into(), |s| s.total_weight.to_string()),
            true,
            theme.base,
        ),
        Subject::Real { real, .. } => cell(
            real.weight.to_string(),
            true,
            if real.weight == 0 {
                theme.warning
            } else {
                theme.base
            },
        ),
        Subject::Missing => blank(cx),
    }
}

/// A real server's value, dim and right-aligned; empty on a service's row.
fn real_only(
    cx: &RowCx,
    text: impl FnOnce(&RealServerSample, &RealStats) -> String,
) -> Cell<'static> {
    match &cx.subject {
        Subject::Service { .. } => cell("", true, cx.theme.base),
        Subject::Real { real, st, .. } => cell(text(real, st), true, cx.theme.dim),
        Subject::Missing => blank(cx),
    }
}

fn weight_share_cell(cx: &RowCx) -> Cell<'static> {
    real_only(cx, |_, st| pct(st.weight_share))
}

fn conn_share_cell(cx: &RowCx) -> Cell<'static> {
    real_only(cx, |_, st| pct(st.conn_share))
}

/// Connections from the service's stats or the real server's sample.
fn conns_cell(
    cx: &RowCx,
    service: fn(&ServiceStats) -> u64,
    real: fn(&RealServerSample) -> u32,
) -> Cell<'static> {
    match cx.subject {
        Subject::Service { st, .. } => cell(
            st.map_or("-".into(), |s| si(service(s) as f64)),
            true,
            cx.theme.base,
        ),
        Subject::Real { real: r, .. } => cell(si(f64::from(real(r))), true, cx.theme.base),
        Subject::Missing => blank(cx),
    }
}

fn active_cell(cx: &RowCx) -> Cell<'static> {
    conns_cell(cx, |s| s.active_conns, |r| r.active_conns)
}

fn inactive_cell(cx: &RowCx) -> Cell<'static> {
    conns_cell(cx, |s| s.inactive_conns, |r| r.inactive_conns)
}

/// One rate of the service or real server, `-` when it has none yet.
fn rate_cell(cx: &RowCx, value: fn(&IpvsRates) -> f64) -> Cell<'static> {
    let rates = match &cx.subject {
        Subject::Service { st, .. } => st.and_then(|s| s.rates),
        Subject::Real { st, .. } => st.rates,
        Subject::Missing => return blank(cx),
    };
    // "?": the source cannot know (Prometheus); "-": none derived yet.
    let none = if unknown_source(cx) { "?" } else { "-" };
    cell(
        rates.as_ref().map_or(none.to_string(), |r| si(value(r))),
        true,
        cx.theme.base,
    )
}

/// Whether the router's rates come from a source that has none (node_exporter's metrics).
fn unknown_source(cx: &RowCx) -> bool {
    cx.state
        .router()
        .and_then(|r| r.cur.as_ref())
        .is_some_and(|c| c.source == RouterSourceKind::Prometheus)
}

fn cps_cell(cx: &RowCx) -> Cell<'static> {
    rate_cell(cx, |r| r.cps)
}

fn in_pps_cell(cx: &RowCx) -> Cell<'static> {
    rate_cell(cx, |r| r.in_pps)
}

fn out_pps_cell(cx: &RowCx) -> Cell<'static> {
    rate_cell(cx, |r| r.out_pps)
}

fn in_bps_cell(cx: &RowCx) -> Cell<'static> {
    rate_cell(cx, |r| r.in_bps)
}

fn out_bps_cell(cx: &RowCx) -> Cell<'static> {
    rate_cell(cx, |r| r.out_bps)
}

/// The name of the node behind a real server, if it is watched.
fn node_cell(cx: &RowCx) -> Cell<'static> {
    match cx.subject {
        Subject::Real { real, .. } => match cx.state.node_for_real(real.address) {
            Some(n) => match widgets::dr_mark(n) {
                // The mark first: the column is narrow, and the node pane has the whole name.
                Some(mark) => cell(format!("{mark} {}", n.name), false, cx.theme.warning),
                None => cell(n.name.clone(), false, cx.theme.base),
            },
            None => cell("", false, cx.theme.dim),
        },
        Subject::Service { .. } | Subject::Missing => blank(cx),
    }
}

/// The load per core of the node behind a real server, if it is watched.
fn load_cell(cx: &RowCx) -> Cell<'static> {
    match cx.subject {
        Subject::Service { .. } => cell("", true, cx.theme.base),
        Subject::Real { real, .. } => {
            let node = cx.state.node_for_real(real.address);
            match node.and_then(|n| n.stats.as_ref().map(|st| (n, st))) {
                Some((n, st)) => cell(
                    format!("{:.2}", st.load_per_core),
                    true,
                    widgets::severity_style(cx.theme, n.level),
                ),
                None => cell("", true, cx.theme.dim),
            }
        }
        Subject::Missing => blank(cx),
    }
}

/// Connections per second of a service or real server, as a sparkline as wide as the column.
fn trend_cell(cx: &RowCx) -> Cell<'static> {
    let history = match cx.subject {
        Subject::Service { svc, .. } => cx.router.traffic.service(&svc.key),
        Subject::Real { svc, real, .. } => cx
            .router
            .traffic
            .real(svc.key, crate::control::plan::RealKey::of(real)),
        Subject::Missing => None,
    };
    let trend = history
        .map(|h| widgets::sparkline(h.iter().map(|p| f64::from(p.cps)), cx.trend_width))
        .unwrap_or_default();
    let style = match cx.subject {
        Subject::Service { .. } => cx.theme.sparkline,
        _ => cx.theme.dim,
    };
    cell(trend, false, style)
}

/// `12s`, `3m04s`: an age for a title.
fn whole_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}
