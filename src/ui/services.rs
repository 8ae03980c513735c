//! The services pane: virtual services and their real servers as a collapsible tree, like
//! `watch ipvsadm` with rates, shares and the nodes' load beside each real server.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Wrap};

use crate::app::state::{Pane, ServiceRow, State};
use crate::config::Theme;
use crate::model::sample::{HostStatus, VirtualServiceSample};
use crate::model::snapshot::RealStats;

use super::widgets::{self, Column, TableView, cell, draw_table, fit_columns, pane, si};

const COLUMNS: [Column; 14] = [
    Column {
        header: "Service / real server",
        width: 34,
        priority: 100,
        right: false,
    },
    Column {
        header: "Fwd",
        width: 6,
        priority: 80,
        right: false,
    },
    Column {
        header: "Weight",
        width: 6,
        priority: 95,
        right: true,
    },
    Column {
        header: "W%",
        width: 4,
        priority: 60,
        right: true,
    },
    Column {
        header: "Active",
        width: 7,
        priority: 90,
        right: true,
    },
    Column {
        header: "InAct",
        width: 7,
        priority: 85,
        right: true,
    },
    Column {
        header: "C%",
        width: 4,
        priority: 55,
        right: true,
    },
    Column {
        header: "CPS",
        width: 6,
        priority: 75,
        right: true,
    },
    Column {
        header: "InPPS",
        width: 6,
        priority: 40,
        right: true,
    },
    Column {
        header: "OutPPS",
        width: 6,
        priority: 35,
        right: true,
    },
    Column {
        header: "InB/s",
        width: 6,
        priority: 50,
        right: true,
    },
    Column {
        header: "OutB/s",
        width: 6,
        priority: 45,
        right: true,
    },
    Column {
        header: "Load/c",
        width: 6,
        priority: 70,
        right: true,
    },
    Column {
        header: "CPS trend",
        width: 10,
        priority: 20,
        right: false,
    },
];

fn service_label(svc: &VirtualServiceSample) -> String {
    let mut s = crate::control::plan::service_label(&svc.key);
    s.push(' ');
    s.push_str(&svc.scheduler);
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

pub fn draw(
    frame: &mut Frame,
    area: Rect,
    state: &State,
    theme: &Theme,
    rows_model: &[ServiceRow],
) {
    let focused = state.ui().focus == Pane::Services;
    let router = state.router();
    let mut title = vec![Span::styled(" Services ", theme.title)];
    if let Some(r) = router {
        title.push(Span::styled(format!("{} ", r.host), theme.dim));
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
    }
    let block = pane(theme, Line::from(title), focused);

    let Some(r) = router else {
        let p = Paragraph::new("no router watched (--router none)")
            .style(theme.dim)
            .alignment(Alignment::Center)
            .block(block);
        frame.render_widget(p, area);
        return;
    };
    let Some(cur) = r.cur.as_ref() else {
        let (text, style) = match (&r.message, r.status) {
            (Some(m), _) => (m.clone(), theme.warning),
            (None, HostStatus::Connecting) => {
                ("waiting for the first poll…".to_string(), theme.dim)
            }
            (None, s) => (s.as_str().to_string(), theme.warning),
        };
        let p = Paragraph::new(text)
            .style(style)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true })
            .block(block);
        frame.render_widget(p, area);
        return;
    };
    if cur.services.is_empty() {
        let p =
            Paragraph::new("IPVS is loaded, but holds no virtual services (ipvsadm -A to add one)")
                .style(theme.dim)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true })
                .block(block);
        frame.render_widget(p, area);
        return;
    }

    let keep = fit_columns(&COLUMNS, area.width.saturating_sub(2));
    let cols: Vec<&Column> = keep.iter().map(|&i| &COLUMNS[i]).collect();
    let selected = state.selected_service_row(rows_model);
    let window = widgets::visible_window(
        rows_model.len(),
        selected,
        usize::from(area.height.saturating_sub(3)),
    );
    let stale = r.status != HostStatus::Ok;
    let rows: Vec<Row> = rows_model[window.clone()]
        .iter()
        .enumerate()
        .map(|(i, row)| (i + window.start, row))
        .map(|(at, row)| {
            let cells = match *row {
                ServiceRow::Service(s) => service_cells(state, theme, s),
                ServiceRow::Real(s, i) => {
                    // The last real server shown under its service, in the order shown.
                    let last = !matches!(rows_model.get(at + 1), Some(ServiceRow::Real(..)));
                    real_cells(state, theme, s, i, last)
                }
            };
            let row_style = if stale { theme.dim } else { theme.base };
            Row::new(keep.iter().map(|&i| cells[i].clone()).collect::<Vec<_>>()).style(row_style)
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

fn rates_cells(
    theme: &Theme,
    rates: Option<crate::model::sample::IpvsRates>,
) -> [ratatui::widgets::Cell<'static>; 5] {
    let f = |v: Option<f64>| v.map_or("-".to_string(), si);
    [
        cell(f(rates.map(|r| r.cps)), true, theme.base),
        cell(f(rates.map(|r| r.in_pps)), true, theme.base),
        cell(f(rates.map(|r| r.out_pps)), true, theme.base),
        cell(f(rates.map(|r| r.in_bps)), true, theme.base),
        cell(f(rates.map(|r| r.out_bps)), true, theme.base),
    ]
}

fn service_cells(state: &State, theme: &Theme, s: usize) -> Vec<ratatui::widgets::Cell<'static>> {
    let Some(r) = state.router() else {
        return Vec::new();
    };
    let Some(svc) = r.cur.as_ref().and_then(|c| c.services.get(s)) else {
        return vec![cell("", false, theme.base); COLUMNS.len()];
    };
    let st = r.stats.services.get(s);
    let marker = if state.ui().collapsed.contains(&svc.key) {
        "▸ "
    } else {
        "▾ "
    };
    let trend = r
        .cps_history
        .get(&svc.key)
        .map(|h| widgets::sparkline(h.iter(), None, 10))
        .unwrap_or_default();
    let [cps, inpps, outpps, inbps, outbps] = rates_cells(theme, st.and_then(|s| s.rates));
    vec![
        cell(
            format!("{marker}{}", service_label(svc)),
            false,
            theme.title,
        ),
        cell(format!("{} rs", svc.reals.len()), false, theme.dim),
        cell(
            st.map_or("-".into(), |s| s.total_weight.to_string()),
            true,
            theme.base,
        ),
        cell("", true, theme.base),
        cell(
            st.map_or("-".into(), |s| si(s.active_conns as f64)),
            true,
            theme.base,
        ),
        cell(
            st.map_or("-".into(), |s| si(s.inactive_conns as f64)),
            true,
            theme.base,
        ),
        cell("", true, theme.base),
        cps,
        inpps,
        outpps,
        inbps,
        outbps,
        cell("", true, theme.base),
        cell(trend, false, theme.sparkline),
    ]
}

fn real_cells(
    state: &State,
    theme: &Theme,
    s: usize,
    i: usize,
    last: bool,
) -> Vec<ratatui::widgets::Cell<'static>> {
    let Some(r) = state.router() else {
        return Vec::new();
    };
    let Some(svc) = r.cur.as_ref().and_then(|c| c.services.get(s)) else {
        return vec![cell("", false, theme.base); COLUMNS.len()];
    };
    let Some(real) = svc.reals.get(i) else {
        return vec![cell("", false, theme.base); COLUMNS.len()];
    };
    let st: RealStats = r
        .stats
        .services
        .get(s)
        .and_then(|x| x.reals.get(i))
        .copied()
        .unwrap_or_default();
    let branch = if last { "  └ " } else { "  ├ " };
    let weight_style = if real.weight == 0 {
        theme.warning
    } else {
        theme.base
    };
    let node = state.node_for_real(real.address);
    let load_cell = match node.and_then(|n| n.stats.as_ref().map(|st| (n, st))) {
        Some((n, st)) => cell(
            format!("{:.2}", st.load_per_core),
            true,
            widgets::severity_style(theme, n.level),
        ),
        None => cell("", true, theme.dim),
    };
    let [cps, inpps, outpps, inbps, outbps] = rates_cells(theme, st.rates);
    // Guided drain: a server lbtop drained counts its connections down, then shows drained.
    let key = (svc.key, crate::control::plan::RealKey::of(real));
    let (tag, tag_style) = if real.weight == 0 && state.draining().contains(&key) {
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
    vec![
        Line::from(vec![
            Span::styled(format!("{branch}{}", real.id()), theme.base),
            Span::styled(tag, tag_style),
        ])
        .into(),
        cell(real.forward.as_proc(), false, theme.dim),
        cell(real.weight.to_string(), true, weight_style),
        cell(pct(st.weight_share), true, theme.dim),
        cell(si(f64::from(real.active_conns)), true, theme.base),
        cell(si(f64::from(real.inactive_conns)), true, theme.base),
        cell(pct(st.conn_share), true, theme.dim),
        cps,
        inpps,
        outpps,
        inbps,
        outbps,
        load_cell,
        cell("", false, theme.base),
    ]
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
