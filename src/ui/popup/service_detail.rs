//! The detail of what the services pane has selected, a virtual service or one of its real
//! servers: its numbers now, and charts over the history held of its connections per second, its
//! active and inactive connections and its bytes in and out per second, time running to the
//! newest sample (a replay's position) on the right. The moving keys go to the next row.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Clear, Dataset, Paragraph};

use crate::app::state::{RouterEntry, ServiceSelection, TrafficPoint};
use crate::app::{Action, State};
use crate::config::{Keymap, Theme};
use crate::control::plan::{RealKey, service_label};
use crate::model::history::Ring;
use crate::model::sample::{IpvsRates, RealServerSample, VirtualServiceSample};
use crate::model::snapshot::{RealStats, ServiceStats};

use super::super::widgets::{pane, si};
use super::keys_or;
use super::node_charts::{chart_block, legend, line, time_axis};

/// What the detail shows: a service, or a real server of it.
enum Subject<'a> {
    Service(&'a VirtualServiceSample, Option<&'a ServiceStats>),
    Real(&'a VirtualServiceSample, &'a RealServerSample, RealStats),
}

/// Draws the detail of the services pane's selection into `area`; nothing when the selection is
/// gone from the router's table.
pub fn draw(frame: &mut Frame, area: Rect, state: &State, theme: &Theme, keymap: &Keymap) {
    let Some(router) = state.router() else {
        return;
    };
    let Some((subject, history)) = state.ui().service_sel.and_then(|sel| find(router, sel)) else {
        return;
    };
    frame.render_widget(Clear, area);
    let close = keys_or(keymap, &[Action::Toggle, Action::Back]);
    let name = match &subject {
        Subject::Service(svc, _) => format!(
            "{} {}",
            service_label(&svc.key),
            svc.scheduler.as_deref().unwrap_or("(scheduler unknown)")
        ),
        Subject::Real(svc, real, _) => {
            format!("{} of {}", real.id(), service_label(&svc.key))
        }
    };
    let title = Line::from(Span::styled(
        format!(" {name} — {close} to close "),
        theme.title,
    ));
    let block = pane(theme, title, true).style(theme.popup);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let header = header_lines(state, theme, keymap, &subject);
    let [head, charts] =
        Layout::vertical([Constraint::Length(header.len() as u16), Constraint::Min(0)])
            .areas(inner);
    frame.render_widget(Paragraph::new(header), head);
    if charts.height >= 5 {
        draw_charts(frame, charts, theme, history);
    }
}

/// The selection's service or real server in the router's current table, and its history.
fn find(
    router: &RouterEntry,
    sel: ServiceSelection,
) -> Option<(Subject<'_>, Option<&Ring<TrafficPoint>>)> {
    let services = &router.cur.as_ref()?.services;
    let key = match sel {
        ServiceSelection::Service(k) | ServiceSelection::Real(k, ..) => k,
    };
    let s = services.iter().position(|svc| svc.key == key)?;
    let svc = &services[s];
    let st = router.stats.services.get(s);
    Some(match sel {
        ServiceSelection::Service(_) => {
            (Subject::Service(svc, st), router.traffic.service(&svc.key))
        }
        ServiceSelection::Real(_, address, port) => {
            let r = svc
                .reals
                .iter()
                .position(|r| r.address == address && r.port == port)?;
            let real = &svc.reals[r];
            let rst = st
                .and_then(|st| st.reals.get(r))
                .copied()
                .unwrap_or_default();
            (
                Subject::Real(svc, real, rst),
                router.traffic.real(svc.key, RealKey::of(real)),
            )
        }
    })
}

/// The numbers now, and the keys that move to the next row.
fn header_lines(
    state: &State,
    theme: &Theme,
    keymap: &Keymap,
    subject: &Subject,
) -> Vec<Line<'static>> {
    let (first, rates, active, inactive) = match subject {
        Subject::Service(svc, st) => (
            format!(
                "{} real servers, total weight {}",
                svc.reals.len(),
                st.map_or("-".into(), |s| s.total_weight.to_string())
            ),
            st.and_then(|s| s.rates),
            st.map_or(0, |s| s.active_conns),
            st.map_or(0, |s| s.inactive_conns),
        ),
        Subject::Real(_, real, st) => {
            let node = state
                .node_for_real(real.address)
                .map_or(String::new(), |n| {
                    let load = n.stats.as_ref().map_or(String::new(), |s| {
                        format!(", load {:.2} per core", s.load_per_core)
                    });
                    format!("   node {}{load}", n.name)
                });
            (
                format!(
                    "weight {} ({:.0}% of the service's), {} forwarding, {:.0}% of its connections{node}",
                    real.weight,
                    st.weight_share * 100.0,
                    real.forward
                        .known_str()
                        .map_or("unknown", |_| real.forward.as_proc()),
                    st.conn_share * 100.0
                ),
                st.rates,
                u64::from(real.active_conns),
                u64::from(real.inactive_conns),
            )
        }
    };
    let now = match rates {
        Some(IpvsRates {
            cps,
            in_bps,
            out_bps,
            ..
        }) => format!(
            "{} conn/s   {} B/s in, {} B/s out",
            si(cps),
            si(in_bps),
            si(out_bps)
        ),
        None => "no rates yet".to_string(),
    };
    let moves = keys_or(keymap, &[Action::Up, Action::Down]);
    vec![
        Line::from(Span::styled(first, theme.base)),
        Line::from(vec![
            Span::styled(
                format!(
                    "active {}, inactive {}   ",
                    si(active as f64),
                    si(inactive as f64)
                ),
                theme.base,
            ),
            Span::styled(now, theme.base),
        ]),
        Line::from(Span::styled(
            format!("{moves}: the row above or below in the services pane"),
            theme.dim,
        )),
    ]
}

/// The charts' lines, as `(seconds before the newest sample, value)` points.
#[derive(Default)]
struct Series {
    cps: Vec<(f64, f64)>,
    active: Vec<(f64, f64)>,
    inactive: Vec<(f64, f64)>,
    in_bps: Vec<(f64, f64)>,
    out_bps: Vec<(f64, f64)>,
    /// How far back the oldest point is, in seconds.
    span: f64,
}

impl Series {
    fn of(history: Option<&Ring<TrafficPoint>>) -> Series {
        let Some((history, newest)) = history.and_then(|h| Some((h, h.last()?))) else {
            return Series::default();
        };
        let n = history.len();
        let mut s = Series {
            cps: Vec::with_capacity(n),
            active: Vec::with_capacity(n),
            inactive: Vec::with_capacity(n),
            in_bps: Vec::with_capacity(n),
            out_bps: Vec::with_capacity(n),
            span: 0.0,
        };
        for p in history.iter() {
            let x = -(newest.time.seconds_since(p.time)).max(0.0);
            s.span = s.span.max(-x);
            s.cps.push((x, f64::from(p.cps)));
            s.active.push((x, f64::from(p.active)));
            s.inactive.push((x, f64::from(p.inactive)));
            s.in_bps.push((x, f64::from(p.in_bps)));
            s.out_bps.push((x, f64::from(p.out_bps)));
        }
        s
    }
}

/// A line of a chart: its name, its style and its points.
type ChartLine<'a> = (&'static str, Style, &'a Vec<(f64, f64)>);

/// Three charts: stacked when the area is tall enough (or narrow), else side by side.
fn draw_charts(frame: &mut Frame, area: Rect, theme: &Theme, history: Option<&Ring<TrafficPoint>>) {
    let s = Series::of(history);
    let areas: [Rect; 3] = if area.height >= 21 || area.width < 90 {
        Layout::vertical([Constraint::Ratio(1, 3); 3]).areas(area)
    } else {
        Layout::horizontal([Constraint::Ratio(1, 3); 3])
            .spacing(2)
            .areas(area)
    };
    let left = -s.span.max(1.0);
    let charts = [
        (" Connections/s ", vec![("cps", theme.sparkline, &s.cps)]),
        (
            " Connections ",
            vec![
                ("active", theme.sparkline, &s.active),
                ("inactive", theme.dim, &s.inactive),
            ],
        ),
        (
            " Bytes/s ",
            vec![
                ("in", theme.sparkline, &s.in_bps),
                ("out", theme.cpu_user, &s.out_bps),
            ],
        ),
    ];
    for (rect, (title, lines)) in areas.into_iter().zip(charts) {
        chart(frame, rect, theme, title, left, &lines);
    }
}

/// One chart of `lines` (name, style, points) from `left` seconds to now, its value axis from
/// 0 to a little over the highest value held.
fn chart(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    title: &'static str,
    left: f64,
    lines: &[ChartLine],
) {
    let high = lines
        .iter()
        .flat_map(|(_, _, data)| data.iter().map(|&(_, y)| y))
        .fold(0.0, f64::max);
    let top = (high * 1.15).max(1.0);
    let names: Vec<&str> = lines.iter().map(|(n, _, _)| *n).collect();
    let styles: Vec<Style> = lines.iter().map(|(_, s, _)| *s).collect();
    let datasets: Vec<Dataset> = lines
        .iter()
        .rev()
        .map(|(name, style, data)| line(name, *style, data))
        .collect();
    let chart = Chart::new(datasets)
        .block(chart_block(theme, legend(theme, title, &names, &styles)))
        .x_axis(time_axis(theme, left))
        .y_axis(Axis::default().style(theme.dim).bounds([0.0, top]).labels([
            "0".to_string(),
            si(top / 2.0),
            si(top),
        ]))
        .legend_position(None);
    frame.render_widget(chart, area);
}
