//! The node detail's charts over the history held: load 1/5/15 against the core count, and CPU
//! busy with its main kinds, time running to the newest sample (a replay's position) on the right.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType};

use crate::app::state::{NodeEntry, NodePoint};
use crate::config::Theme;

use super::super::widgets;

/// The series of both charts, as `(seconds before the newest sample, value)` points.
#[derive(Default)]
struct Series {
    load: [Vec<(f64, f64)>; 3],
    busy: Vec<(f64, f64)>,
    user: Vec<(f64, f64)>,
    system: Vec<(f64, f64)>,
    softirq: Vec<(f64, f64)>,
    iowait: Vec<(f64, f64)>,
    /// How far back the oldest sample is, in seconds.
    span: f64,
    /// The highest load average held.
    load_max: f64,
}

impl Series {
    /// One pass over the ring: a vector per line, sized once, nothing else. `user` counts nice
    /// too, and `softirq` the hardware interrupts (as `irq`).
    fn of(history: &crate::model::history::Ring<NodePoint>) -> Series {
        let Some(newest) = history.last() else {
            return Series::default();
        };
        let n = history.len();
        let line = || Vec::with_capacity(n);
        let mut s = Series {
            load: [line(), line(), line()],
            busy: line(),
            user: line(),
            system: line(),
            softirq: line(),
            iowait: line(),
            span: 0.0,
            load_max: 0.0,
        };
        for p in history.iter() {
            let x = -(newest.time.seconds_since(p.time)).max(0.0);
            s.span = s.span.max(-x);
            for (line, v) in s.load.iter_mut().zip(p.load) {
                line.push((x, v));
                s.load_max = s.load_max.max(v);
            }
            if let Some(c) = p.cpu {
                s.busy.push((x, c.busy()));
                // A busy-only point has no kinds: its busy time is not all user time.
                if !p.kinds {
                    continue;
                }
                s.user.push((x, c.user + c.nice));
                s.system.push((x, c.system));
                s.softirq.push((x, c.irq + c.softirq));
                s.iowait.push((x, c.iowait));
            }
        }
        s
    }
}

/// Draws the load chart and, when the area is wide enough, the CPU chart beside it.
pub fn draw(frame: &mut Frame, area: Rect, theme: &Theme, node: &NodeEntry, cores: usize) {
    let series = Series::of(&node.history);
    if area.width >= 60 {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .spacing(2)
                .areas(area);
        load_chart(frame, left, theme, &series, cores);
        cpu_chart(frame, right, theme, &series);
    } else {
        load_chart(frame, area, theme, &series, cores);
    }
}

fn load_chart(frame: &mut Frame, area: Rect, theme: &Theme, s: &Series, cores: usize) {
    let cores = cores as f64;
    let top = (s.load_max.max(cores) * 1.15).max(1.0);
    let left = -s.span.max(1.0);
    let threshold = [(left, cores), (0.0, cores)];
    let styles = [theme.sparkline, theme.cpu_user, theme.dim];
    let names = ["1m", "5m", "15m"];
    let mut datasets: Vec<Dataset> = s
        .load
        .iter()
        .zip(styles.into_iter().zip(names))
        .map(|(data, (style, name))| line(name, style, data))
        .collect();
    datasets.insert(0, line("cores", theme.threshold_mark, &threshold));
    let mut title = legend(theme, " Load ", &names, &styles);
    title.push(Span::styled(
        format!("── {cores} cores "),
        theme.threshold_mark,
    ));
    let chart = Chart::new(datasets)
        .block(chart_block(theme, title))
        .x_axis(time_axis(theme, left))
        .y_axis(Axis::default().style(theme.dim).bounds([0.0, top]).labels([
            "0".to_string(),
            format!("{:.1}", top / 2.0),
            format!("{top:.1}"),
        ]))
        .legend_position(None);
    frame.render_widget(chart, area);
}

fn cpu_chart(frame: &mut Frame, area: Rect, theme: &Theme, s: &Series) {
    let left = -s.span.max(1.0);
    let names = ["busy", "user", "system", "irq", "iowait"];
    let styles = [
        theme.sparkline,
        theme.cpu_user,
        theme.cpu_system,
        theme.cpu_softirq,
        theme.cpu_iowait,
    ];
    let data = [&s.busy, &s.user, &s.system, &s.softirq, &s.iowait];
    // Busy last, so that it is drawn over its parts.
    let datasets: Vec<Dataset> = (0..names.len())
        .rev()
        .map(|i| line(names[i], styles[i], data[i]))
        .collect();
    let chart = Chart::new(datasets)
        .block(chart_block(
            theme,
            legend(theme, " CPU % ", &names, &styles),
        ))
        .x_axis(time_axis(theme, left))
        .y_axis(
            Axis::default()
                .style(theme.dim)
                .bounds([0.0, 100.0])
                .labels(["0", "50", "100"]),
        )
        .legend_position(None);
    frame.render_widget(chart, area);
}

/// A line of braille dots through `data`.
pub(super) fn line<'a>(name: &'a str, style: Style, data: &'a [(f64, f64)]) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(style)
        .data(data)
}

/// The chart's title, naming each line in its colour: it stands for the legend, which would
/// cover the lines.
pub(super) fn legend(
    theme: &Theme,
    title: &'static str,
    names: &[&str],
    styles: &[Style],
) -> Vec<Span<'static>> {
    let mut spans = vec![Span::styled(title, theme.title)];
    for (name, style) in names.iter().zip(styles) {
        spans.push(Span::styled(format!("{name} "), *style));
    }
    spans
}

pub(super) fn chart_block(theme: &Theme, title: Vec<Span<'static>>) -> Block<'static> {
    Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border)
        .title(Line::from(title))
}

/// Time from `left` seconds before the newest sample up to it (0: now, or the replay's position).
pub(super) fn time_axis(theme: &Theme, left: f64) -> Axis<'static> {
    Axis::default()
        .style(theme.dim)
        .bounds([left, 0.0])
        .labels([
            format!("-{}", widgets::uptime(-left)),
            format!("-{}", widgets::uptime(-left / 2.0)),
            "0".to_string(),
        ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::history::Ring;
    use crate::model::sample::Timestamp;
    use crate::model::snapshot::CpuPercent;

    #[test]
    fn busy_only_points_chart_busy_and_no_kinds() {
        let mut ring = Ring::new(8);
        let cpu = CpuPercent {
            user: 40.0,
            idle: 60.0,
            ..CpuPercent::default()
        };
        for (t, kinds) in [(1_000, false), (2_000, false), (3_000, true)] {
            ring.push(NodePoint {
                time: Timestamp(t),
                load: [1.0; 3],
                cpu: Some(cpu),
                kinds,
            });
        }
        let s = Series::of(&ring);
        assert_eq!(s.busy.len(), 3, "busy at every point");
        assert_eq!(
            s.user,
            vec![(0.0, 40.0)],
            "user only where the kinds are known"
        );
        assert_eq!(s.system.len(), 1);
    }
}
