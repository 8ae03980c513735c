//! Charts as inline SVG, written by hand: lines, bands and stacked areas over the report's shared
//! time axis, with the alerts (▲) and the operator's actions (◆) marked above the plot. Colours
//! come from CSS classes (the page's style sheet), so one chart serves light, dark and print.
//! Every chart is `role="img"` with a `<title>` and a `<desc>`.

use std::fmt::Write as _;

use super::collect::Axis;
use super::escape;
use crate::model::sample::Timestamp;

const W: f64 = 960.0;
const H: f64 = 180.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 22.0;
const X_TICKS: usize = 6;

/// Something drawn in the plot.
pub(crate) enum Shape {
    /// A line through the buckets' values; `None` is no data (two or more in a row break it).
    Line {
        class: String,
        values: Vec<Option<f64>>,
        dashed: bool,
    },
    /// The area between two lines (a band, or one layer of a stack).
    Area {
        class: String,
        lower: Vec<Option<f64>>,
        upper: Vec<Option<f64>>,
    },
}

/// What a marker above the plot stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MarkerKind {
    Warning,
    Critical,
    Action,
}

/// An alert (▲) or an action (◆) at a time, with the text its tooltip shows.
pub(crate) struct Marker {
    pub time: Timestamp,
    pub kind: MarkerKind,
    pub label: String,
}

/// One chart: the plot of `shapes` from 0 to `y_max`, labelled by `y_fmt`.
pub(crate) struct Chart<'a> {
    pub id: String,
    pub title: String,
    pub desc: String,
    pub axis: &'a Axis,
    pub y_max: f64,
    pub y_fmt: fn(f64) -> String,
    pub shapes: Vec<Shape>,
    pub markers: &'a [Marker],
}

fn plot_w() -> f64 {
    W - LEFT - RIGHT
}

fn plot_h() -> f64 {
    H - TOP - BOTTOM
}

/// A round number at or above `v` (1, 2 or 5 × a power of ten), so the axis reads well.
pub(crate) fn nice_ceil(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v * 0.999_999)
        .unwrap_or(10.0 * p)
}

impl Chart<'_> {
    fn x(&self, bucket: usize) -> f64 {
        LEFT + self.axis.center(bucket) * plot_w()
    }

    fn y(&self, v: f64) -> f64 {
        let f = (v / self.y_max).clamp(0.0, 1.05);
        TOP + plot_h() * (1.0 - f)
    }

    /// Appends the chart's `<svg>` to `out`.
    pub fn render(&self, out: &mut String) {
        let _ = write!(
            out,
            "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
             aria-labelledby=\"{id}-t {id}-d\" preserveAspectRatio=\"none\">\
             <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
            escape(&self.title),
            escape(&self.desc),
            id = self.id,
        );
        self.grid(out);
        for s in &self.shapes {
            match s {
                Shape::Area {
                    class,
                    lower,
                    upper,
                } => self.area(out, class, lower, upper),
                Shape::Line {
                    class,
                    values,
                    dashed,
                } => self.line(out, class, values, *dashed),
            }
        }
        self.marks(out);
        out.push_str("</svg>");
    }

    fn grid(&self, out: &mut String) {
        out.push_str("<g class=\"grid\">");
        for i in 0..=2 {
            let v = self.y_max * f64::from(i) / 2.0;
            let y = self.y(v);
            let _ = write!(
                out,
                "<line x1=\"{LEFT}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"ylab\" x=\"{:.0}\" y=\"{:.1}\">{}</text>",
                W - RIGHT,
                LEFT - 4.0,
                y + 4.0,
                escape(&(self.y_fmt)(v)),
            );
        }
        for i in 0..=X_TICKS {
            let f = i as f64 / X_TICKS as f64;
            let x = LEFT + f * plot_w();
            let t = Timestamp(self.axis.start.0 + (f * self.axis.span_ms() as f64) as i64);
            let anchor = match i {
                0 => "start",
                X_TICKS => "end",
                _ => "middle",
            };
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.0}\"/>\
                 <text class=\"xlab\" text-anchor=\"{anchor}\" x=\"{x:.1}\" y=\"{:.0}\">{}</text>",
                H - BOTTOM,
                H - 6.0,
                clock(t),
            );
        }
        out.push_str("</g>");
    }

    fn line(&self, out: &mut String, class: &str, values: &[Option<f64>], dashed: bool) {
        let dash = if dashed { " dash" } else { "" };
        let _ = write!(out, "<path class=\"l {class}{dash}\" d=\"");
        for seg in segments(values, self.axis.gap_buckets()) {
            for (k, (i, v)) in seg.iter().enumerate() {
                let cmd = if k == 0 { 'M' } else { 'L' };
                let _ = write!(out, "{cmd}{:.1} {:.1}", self.x(*i), self.y(*v));
            }
            if seg.len() == 1 {
                // A lone point: a short stroke, so it shows.
                let _ = write!(out, "h1");
            }
        }
        out.push_str("\"/>");
    }

    fn area(&self, out: &mut String, class: &str, lower: &[Option<f64>], upper: &[Option<f64>]) {
        let both: Vec<Option<(f64, f64)>> = lower
            .iter()
            .zip(upper)
            .map(|(l, u)| Some(((*l)?, (*u)?)))
            .collect();
        let _ = write!(out, "<path class=\"a {class}\" d=\"");
        for seg in segments(&both, self.axis.gap_buckets()) {
            for (k, (i, (_, u))) in seg.iter().enumerate() {
                let cmd = if k == 0 { 'M' } else { 'L' };
                let _ = write!(out, "{cmd}{:.1} {:.1}", self.x(*i), self.y(*u));
            }
            for (i, (l, _)) in seg.iter().rev() {
                let _ = write!(out, "L{:.1} {:.1}", self.x(*i), self.y(*l));
            }
            out.push('Z');
        }
        out.push_str("\"/>");
    }

    /// The markers above the plot, one per pixel column at most (the worst there wins), each
    /// with a faint line down the plot and a tooltip.
    fn marks(&self, out: &mut String) {
        if self.markers.is_empty() {
            return;
        }
        let mut columns: Vec<(i64, &Marker, usize)> = Vec::new();
        for m in self.markers {
            let x = (LEFT + self.axis.fraction(m.time) * plot_w()).round() as i64;
            match columns
                .iter_mut()
                .find(|(cx, c, _)| *cx == x && c.kind == m.kind)
            {
                Some(c) => c.2 += 1,
                None => columns.push((x, m, 1)),
            }
        }
        out.push_str("<g class=\"marks\">");
        for (x, m, n) in columns {
            let (class, shape) = match m.kind {
                MarkerKind::Warning => ("mw", "▲"),
                MarkerKind::Critical => ("mc", "▲"),
                MarkerKind::Action => ("ma", "◆"),
            };
            let path = match m.kind {
                MarkerKind::Action => format!("M{x} {}l5 6l-5 6l-5 -6Z", 2),
                _ => format!("M{x} {}l6 11h-12Z", 3),
            };
            let more = if n > 1 {
                format!(" (and {} more here)", n - 1)
            } else {
                String::new()
            };
            let _ = write!(
                out,
                "<g class=\"{class}\"><title>{shape} {} {}{more}</title>\
                 <line x1=\"{x}\" x2=\"{x}\" y1=\"{TOP}\" y2=\"{:.0}\"/><path d=\"{path}\"/></g>",
                clock(m.time),
                escape(&m.label),
                H - BOTTOM,
            );
        }
        out.push_str("</g>");
    }
}

/// Runs of buckets with values: `gap` or more empty buckets in a row break the line (no data
/// there); fewer are bridged (a sample late into the next slice).
fn segments<T: Copy>(values: &[Option<T>], gap: usize) -> Vec<Vec<(usize, T)>> {
    let mut out: Vec<Vec<(usize, T)>> = Vec::new();
    let mut current: Vec<(usize, T)> = Vec::new();
    let mut empty = 0;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                if empty >= gap.max(1) && !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                empty = 0;
                current.push((i, *v));
            }
            None => empty += 1,
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `HH:MM:SS` (UTC) of a time.
pub(crate) fn clock(t: Timestamp) -> String {
    let s = t.rfc3339();
    s.get(11..19).unwrap_or(&s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round_numbers() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(3.2), 5.0);
        assert_eq!(nice_ceil(100.0), 100.0);
        assert_eq!(nice_ceil(101.0), 200.0);
        assert_eq!(nice_ceil(f64::NAN), 1.0);
    }

    #[test]
    fn one_missing_bucket_is_bridged_and_two_break_the_line() {
        let v = [Some(1), None, Some(2), None, None, Some(3)];
        let s = segments(&v, 2);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], vec![(0, 1), (2, 2)]);
        assert_eq!(s[1], vec![(5, 3)]);
    }
}
