//! The page: a header saying what was recorded (and what was damaged or downsampled), then the
//! nodes (table, load and CPU charts), the virtual services (table, rate, connection, byte and
//! share charts), the alert log and the operator's actions. Every string from the recording goes
//! through `escape`.

use std::fmt::Write as _;
use std::time::Duration;

use super::collect::{CPU_KINDS, Collected, NodeTrack, ServiceTrack};
use super::svg::{Chart, Marker, MarkerKind, Shape, clock, nice_ceil};
use super::{ReportInfo, escape};
use crate::control::plan::service_label;
use crate::model::alert::{AlertEvent, AlertKind, Severity};
use crate::model::sample::Timestamp;
use crate::model::text::si;
use crate::model::time::round_to_seconds;
use crate::record::format::HeaderInfo;
use crate::record::{ActionOutcome, ActionRecord};

const STYLE: &str = include_str!("style.css");

/// Real servers' colours cycle through this many classes (`c0`…).
const PALETTE: usize = 10;

/// The whole page.
pub(crate) fn render(
    c: &Collected,
    header: &HeaderInfo,
    info: &ReportInfo,
    damage: Option<&str>,
) -> String {
    let mut out = String::with_capacity(1 << 20);
    let title = format!("lbtop report: {}", info.file);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    intro(&mut out, c, header, info, damage);
    let mut ids = 0usize;
    nodes(&mut out, c, &mut ids);
    services(&mut out, c, &mut ids);
    alert_log(&mut out, c);
    action_log(&mut out, c);
    out.push_str("<footer>Made by lbtop ");
    out.push_str(&escape(env!("CARGO_PKG_VERSION")));
    out.push_str(
        " from the recording alone; the page loads nothing else.</footer></body></html>\n",
    );
    out
}

fn intro(
    out: &mut String,
    c: &Collected,
    header: &HeaderInfo,
    info: &ReportInfo,
    damage: Option<&str>,
) {
    let (first, last) = (
        c.first.unwrap_or(c.axis.start),
        c.last.unwrap_or(c.axis.end),
    );
    let _ = write!(
        out,
        "<header><h1>lbtop report</h1><dl class=\"meta\">\
         <dt>Recording</dt><dd>{}</dd><dt>Router</dt><dd>{}</dd>\
         <dt>Nodes</dt><dd>{}</dd><dt>From</dt><dd>{}</dd><dt>To</dt><dd>{}</dd>\
         <dt>Covered</dt><dd>{}</dd><dt>Frames</dt><dd>{} at {} intervals</dd>\
         <dt>Recorded by</dt><dd>lbtop {}</dd></dl>",
        escape(&info.file),
        header.router.as_deref().map_or("none".into(), escape),
        c.nodes.len().max(header.nodes.len()),
        escape(&first.rfc3339()),
        escape(&last.rfc3339()),
        // n frames an interval apart cover n intervals, as `lbtop record` counts them.
        duration_ms(
            last.0
                .saturating_sub(first.0)
                .max(0)
                .saturating_add(i64::try_from(header.interval_ms).unwrap_or(i64::MAX))
        ),
        c.frames,
        humantime::format_duration(Duration::from_millis(header.interval_ms)),
        escape(&header.lbtop_version),
    );
    if let Some(d) = damage {
        let _ = write!(
            out,
            "<p class=\"damage\" role=\"alert\"><strong>Damaged recording:</strong> {}. \
             This report shows what could be read; the charts have gaps where frames are missing.</p>",
            escape(d)
        );
    }
    if c.frames == 0 {
        out.push_str(
            "<p class=\"damage\" role=\"alert\">No frame could be read in this range.</p>",
        );
    }
    if c.axis.downsampled() {
        let slice = Duration::from_millis((c.axis.span_ms() / c.axis.buckets as i64).max(1) as u64);
        let _ = write!(
            out,
            "<p class=\"note\">Charts are downsampled: each point stands for one of {} time slices \
             of about {} (up to {} samples of a host). Lines show a slice's mean; load and \
             connections per second show its maximum, so peaks stay visible. The tables use every \
             sample.</p>",
            c.axis.buckets,
            humantime::format_duration(round_to_seconds(slice)),
            c.axis.per_bucket,
        );
    }
    if c.uncharted > 0 {
        let _ = write!(
            out,
            "<p class=\"note\">{} nodes and services came after the charts' memory was spent \
             (lines of {} points over this many tracks) and have no charts, whatever their \
             traffic; they are in the tables.</p>",
            c.uncharted, c.axis.buckets,
        );
    }
    let _ = write!(
        out,
        "<p class=\"legend\">Markers: <span class=\"k mw\">▲</span> warning and \
         <span class=\"k mc\">▲</span> critical alert raised, <span class=\"k ma\">◆</span> \
         operator action. Times are UTC.</p>\
         <nav><a href=\"#nodes\">Nodes</a> · <a href=\"#services\">Services</a> · \
         <a href=\"#alerts\">Alert log</a> · <a href=\"#actions\">Actions</a></nav></header>"
    );
}

fn duration_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    humantime::format_duration(round_to_seconds(Duration::from_millis(ms as u64))).to_string()
}

fn load(v: f64) -> String {
    format!("{v:.2}")
}

fn percent(v: f64) -> String {
    format!("{v:.0}%")
}

fn bytes_per_s(v: f64) -> String {
    format!("{}B/s", si(v))
}

fn bytes(n: u64) -> String {
    bytesize::ByteSize::b(n).display().si().to_string()
}

/// The alerts raised on `subject`, as markers.
fn alert_marks<'a>(alerts: impl Iterator<Item = &'a AlertEvent>) -> Vec<Marker> {
    alerts
        .filter(|a| a.raised)
        .map(|a| Marker {
            time: a.time,
            kind: match a.severity {
                Severity::Warning => MarkerKind::Warning,
                Severity::Critical => MarkerKind::Critical,
            },
            label: format!("{} {}: {}", a.severity.as_str(), a.subject, a.message),
        })
        .collect()
}

fn action_marks<'a>(actions: impl Iterator<Item = &'a ActionRecord>) -> Vec<Marker> {
    actions
        .map(|a| Marker {
            time: a.time,
            kind: MarkerKind::Action,
            label: action_text(a),
        })
        .collect()
}

/// `drain 10.0.0.2:80 of tcp:…:80 (weight 100 → 0) by alice: done`.
fn action_text(a: &ActionRecord) -> String {
    format!(
        "{} {} of {} (weight {} → {}) by {}: {}",
        action_name(a),
        a.real,
        a.service,
        a.old_weight,
        a.new_weight,
        a.user,
        outcome(&a.result)
    )
}

fn action_name(a: &ActionRecord) -> &'static str {
    match (a.old_weight, a.new_weight) {
        (_, 0) => "drain",
        (0, _) => "restore",
        _ => "reweight",
    }
}

fn outcome(r: &ActionOutcome) -> String {
    match r {
        ActionOutcome::Done => "done".into(),
        ActionOutcome::Failed(e) => format!("failed: {e}"),
    }
}

fn next_id(ids: &mut usize) -> String {
    *ids += 1;
    format!("g{ids}")
}

fn nodes(out: &mut String, c: &Collected, ids: &mut usize) {
    out.push_str("<section id=\"nodes\"><h2>Nodes</h2>");
    if c.nodes.is_empty() {
        out.push_str("<p>No node samples in this range.</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Node</th><th>Host</th><th>Cores</th><th>Peak 1-min load</th>\
         <th>At</th><th>Above cores</th><th>In warning</th><th>Critical</th><th>Samples</th>\
         </tr></thead><tbody>",
    );
    for n in &c.nodes {
        let (peak, at, cores) = n
            .peak_load
            .map_or(("–".into(), "–".into(), "–".into()), |(p, t, k)| {
                (load(p), clock(t), k.to_string())
            });
        let over = if n.above_cores_ms > 0 {
            " class=\"over\""
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr{over}><td>{}</td><td>{}</td><td class=\"n\">{cores}</td><td class=\"n\">{peak}</td>\
             <td>{at}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape(&n.name),
            escape(&n.host),
            duration_ms(n.above_cores_ms),
            duration_ms(n.warning_ms),
            duration_ms(n.critical_ms),
            n.samples,
        );
    }
    out.push_str("</tbody></table>");
    // The hottest nodes by peak load per core, in the table's order.
    let per_core = |n: &NodeTrack| n.peak_load.map_or(0.0, |(p, _, k)| p / k.max(1) as f64);
    let charted: Vec<&NodeTrack> = c.nodes.iter().filter(|n| n.load.charted()).collect();
    let shown = first_ranked(&charted, MAX_CHARTED, |a, b| {
        per_core(b).total_cmp(&per_core(a))
    });
    if shown.len() < c.nodes.len() {
        let _ = write!(
            out,
            "<p class=\"note\">Charts for the {} of {} nodes with the highest peak load per \
             core; every node is in the table.</p>",
            shown.len(),
            c.nodes.len()
        );
    }
    for n in shown {
        node_charts(out, c, n, ids);
    }
    out.push_str("</section>");
}

/// The charts a section draws, at most: a page of thousands would not open.
const MAX_CHARTED: usize = 50;

/// The first `n` of `tracks` by `order`, kept in their own order.
fn first_ranked<'a, T>(
    tracks: &[&'a T],
    n: usize,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<&'a T> {
    let mut ranked: Vec<usize> = (0..tracks.len()).collect();
    ranked.sort_by(|&a, &b| order(tracks[a], tracks[b]).then(a.cmp(&b)));
    ranked.truncate(n);
    ranked.sort_unstable();
    ranked.into_iter().map(|i| tracks[i]).collect()
}

fn node_charts(out: &mut String, c: &Collected, n: &NodeTrack, ids: &mut usize) {
    let mut marks = alert_marks(c.alerts.iter().filter(|a| a.subject == n.name));
    let behind = |a: &&ActionRecord| {
        c.services.iter().any(|s| {
            s.reals
                .iter()
                .any(|r| r.id == a.real && r.node.as_deref() == Some(n.name.as_str()))
        })
    };
    marks.extend(action_marks(c.actions.iter().filter(behind)));
    let cores = n.cores.max();
    let load_line = n.load.max();
    let band_low: Vec<Option<f64>> = cores
        .iter()
        .map(|k| k.map(|k| (k - c.warning_margin).max(0.0)))
        .collect();
    let y_max = nice_ceil(n.load.peak().max(n.cores.peak()) * 1.1);
    let desc = match n.peak_load {
        Some((p, t, k)) => format!(
            "1-minute load of {} against its {k} cores: peak {} at {}; above its cores for {}, in \
             warning for {}, critical for {}.",
            n.name,
            load(p),
            clock(t),
            duration_ms(n.above_cores_ms),
            duration_ms(n.warning_ms),
            duration_ms(n.critical_ms)
        ),
        None => format!("No load samples of {}.", n.name),
    };
    let _ = write!(
        out,
        "<article class=\"host\"><h3>{} <small>{}</small></h3><div class=\"pair\"><figure>",
        escape(&n.name),
        escape(&n.host)
    );
    Chart {
        id: next_id(ids),
        title: format!("{}: 1-minute load and cores", n.name),
        desc,
        axis: &c.axis,
        y_max,
        y_fmt: load,
        shapes: vec![
            Shape::Area {
                class: "band".into(),
                lower: band_low,
                upper: cores.clone(),
            },
            Shape::Line {
                class: "cores".into(),
                values: cores,
                dashed: true,
            },
            Shape::Line {
                class: "load".into(),
                values: load_line,
                dashed: false,
            },
        ],
        markers: &marks,
    }
    .render(out);
    out.push_str(
        "<figcaption><span class=\"k load\">━</span> 1-min load \
         <span class=\"k cores\">┅</span> cores <span class=\"k band\">■</span> warning band\
         </figcaption></figure><figure>",
    );
    cpu_chart(out, c, n, &marks, ids);
    out.push_str("</figure></div></article>");
}

fn cpu_chart(out: &mut String, c: &Collected, n: &NodeTrack, marks: &[Marker], ids: &mut usize) {
    let mut lower: Vec<Option<f64>> = vec![Some(0.0); c.axis.buckets];
    let mut shapes = Vec::new();
    let mut means = Vec::new();
    for (kind, series) in CPU_KINDS.iter().zip(&n.cpu) {
        let v = series.mean();
        let upper: Vec<Option<f64>> = lower
            .iter()
            .zip(&v)
            .map(|(l, v)| Some((*l)? + (*v)?))
            .collect();
        // A kind no bucket has (a busy-only source) is not described as 0 %.
        if let Some(avg) = mean_of(&v) {
            means.push(format!("{kind} {}", percent(avg)));
        }
        shapes.push(Shape::Area {
            class: (*kind).into(),
            lower: lower.clone(),
            upper: upper.clone(),
        });
        lower = upper;
    }
    let busy_only = n.busy_only.mean();
    let unsplit = busy_only.iter().any(Option::is_some);
    if let Some(avg) = mean_of(&busy_only) {
        means.push(format!(
            "busy with its kinds not given by the source (busy-only) {}",
            percent(avg)
        ));
    }
    if unsplit {
        shapes.push(Shape::Line {
            class: "load".into(),
            values: busy_only,
            dashed: false,
        });
    }
    Chart {
        id: next_id(ids),
        title: format!("{}: CPU by kind", n.name),
        desc: format!(
            "CPU time of {} by kind (user with nice, system with irq), stacked, in percent of all \
             its cores; means over the range: {}.",
            n.name,
            if means.is_empty() {
                "none".to_string()
            } else {
                means.join(", ")
            }
        ),
        axis: &c.axis,
        y_max: 100.0,
        y_fmt: percent,
        shapes,
        markers: marks,
    }
    .render(out);
    out.push_str("<figcaption>");
    for kind in CPU_KINDS {
        let _ = write!(out, "<span class=\"k {kind}\">■</span> {kind} ");
    }
    if unsplit {
        out.push_str(
            "<span class=\"k load\">━</span> busy, kinds not given by the source (busy-only) ",
        );
    }
    out.push_str("</figcaption>");
}

/// The mean of the buckets that have a value.
fn mean_of(v: &[Option<f64>]) -> Option<f64> {
    let vals: Vec<f64> = v.iter().flatten().copied().collect();
    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
}

fn services(out: &mut String, c: &Collected, ids: &mut usize) {
    out.push_str("<section id=\"services\"><h2>Virtual services</h2>");
    if c.services.is_empty() {
        out.push_str("<p>No router samples in this range.</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Service / real server</th><th>Node</th><th>Peak conn/s</th>\
         <th>At</th><th>Bytes in</th><th>Bytes out</th><th>Weight changes</th></tr></thead><tbody>",
    );
    for s in &c.services {
        service_rows(out, s);
    }
    out.push_str("</tbody></table>");
    let (busy, idle): (Vec<_>, Vec<_>) = c.services.iter().partition(|s| carried_traffic(s));
    if !idle.is_empty() {
        let _ = write!(
            out,
            "<p class=\"note\">{} of {} services had no connection and no byte in this range: \
             they are in the table, without charts.</p>",
            idle.len(),
            c.services.len()
        );
    }
    // The busiest by bytes, then by peak connections per second, in the table's order.
    let bytes = |s: &ServiceTrack| s.bytes.inbound.saturating_add(s.bytes.outbound);
    let cps = |s: &ServiceTrack| s.peak_cps.map_or(0.0, |(v, _)| v);
    let charted: Vec<&ServiceTrack> = busy.into_iter().filter(|s| s.cps.charted()).collect();
    let busy_count = c.services.len() - idle.len();
    let shown = first_ranked(&charted, MAX_CHARTED, |a, b| {
        bytes(b).cmp(&bytes(a)).then(cps(b).total_cmp(&cps(a)))
    });
    if shown.len() < busy_count {
        let _ = write!(
            out,
            "<p class=\"note\">Charts for the {} busiest of the {} services that carried traffic \
             (by bytes, then peak connections per second); every service is in the table.</p>",
            shown.len(),
            busy_count
        );
    }
    for s in shown {
        service_charts(out, c, s, ids);
    }
    out.push_str("</section>");
}

/// Whether a service saw any connection or byte in the range (else its charts would be flat).
fn carried_traffic(s: &ServiceTrack) -> bool {
    s.bytes.inbound > 0
        || s.bytes.outbound > 0
        || s.peak_cps.is_some_and(|(v, _)| v > 0.0)
        || s.had_conns
}

fn peak(p: Option<(f64, Timestamp)>) -> (String, String) {
    match p {
        Some((v, t)) if v > 0.0 => (si(v), clock(t)),
        Some((v, _)) => (si(v), "–".into()),
        None => ("–".into(), "–".into()),
    }
}

fn service_rows(out: &mut String, s: &ServiceTrack) {
    let (cps, at) = peak(s.peak_cps);
    let changes: usize = s.reals.iter().map(|r| r.weight_changes.len()).sum();
    let _ = write!(
        out,
        "<tr class=\"svc\"><td>{}</td><td></td><td class=\"n\">{cps}</td><td>{at}</td>\
         <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{changes}</td></tr>",
        escape(&service_label(&s.key)),
        bytes(s.bytes.inbound),
        bytes(s.bytes.outbound),
    );
    for r in &s.reals {
        let (cps, at) = peak(r.peak_cps);
        let mut changes = String::new();
        for (t, old, new) in &r.weight_changes {
            let _ = write!(changes, "{} {old} → {new}<br>", clock(*t));
        }
        if changes.is_empty() {
            changes.push_str("none");
        }
        let _ = write!(
            out,
            "<tr><td class=\"real\">{}</td><td>{}</td><td class=\"n\">{cps}</td><td>{at}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td>{changes}</td></tr>",
            escape(&r.id),
            escape(r.node.as_deref().unwrap_or("–")),
            bytes(r.bytes.inbound),
            bytes(r.bytes.outbound),
        );
    }
}

/// The markers of a service's charts: its actions, and the alerts of the nodes behind it and of
/// anything that is not a node (the router).
fn service_marks(c: &Collected, s: &ServiceTrack) -> Vec<Marker> {
    let id = s.key.to_string();
    let mut marks = action_marks(c.actions.iter().filter(|a| a.service == id));
    let behind = |a: &&AlertEvent| {
        s.reals
            .iter()
            .any(|r| r.node.as_deref() == Some(a.subject.as_str()))
            || !c.nodes.iter().any(|n| n.name == a.subject)
    };
    marks.extend(alert_marks(c.alerts.iter().filter(behind)));
    marks
}

fn line(class: &str, values: Vec<Option<f64>>, dashed: bool) -> Shape {
    Shape::Line {
        class: class.into(),
        values,
        dashed,
    }
}

fn service_charts(out: &mut String, c: &Collected, s: &ServiceTrack, ids: &mut usize) {
    let label = service_label(&s.key);
    let marks = service_marks(c, s);
    let _ = write!(
        out,
        "<article class=\"host\"><h3>{}</h3><div class=\"quad\"><figure>",
        escape(&label)
    );
    let (cps, at) = peak(s.peak_cps);
    Chart {
        id: next_id(ids),
        title: format!("{label}: new connections per second"),
        desc: format!("New connections per second of {label}; peak {cps} at {at}."),
        axis: &c.axis,
        y_max: nice_ceil(s.cps.peak() * 1.1),
        y_fmt: si,
        shapes: vec![line("cps", s.cps.max(), false)],
        markers: &marks,
    }
    .render(out);
    out.push_str(
        "<figcaption><span class=\"k cps\">━</span> connections/s</figcaption></figure><figure>",
    );
    Chart {
        id: next_id(ids),
        title: format!("{label}: active and inactive connections"),
        desc: format!(
            "Active and inactive connections of {label}; at most {} active and {} inactive.",
            si(s.active.peak()),
            si(s.inactive.peak())
        ),
        axis: &c.axis,
        y_max: nice_ceil(s.active.peak().max(s.inactive.peak()) * 1.1),
        y_fmt: si,
        shapes: vec![
            line("inactive", s.inactive.mean(), false),
            line("active", s.active.mean(), false),
        ],
        markers: &marks,
    }
    .render(out);
    out.push_str(
        "<figcaption><span class=\"k active\">━</span> active \
         <span class=\"k inactive\">━</span> inactive</figcaption></figure><figure>",
    );
    Chart {
        id: next_id(ids),
        title: format!("{label}: bytes per second in and out"),
        desc: format!(
            "Bytes per second through {label}; {} in and {} out over the range.",
            bytes(s.bytes.inbound),
            bytes(s.bytes.outbound)
        ),
        axis: &c.axis,
        y_max: nice_ceil(s.in_bps.peak().max(s.out_bps.peak()) * 1.1),
        y_fmt: bytes_per_s,
        shapes: vec![
            line("in", s.in_bps.mean(), false),
            line("out", s.out_bps.mean(), false),
        ],
        markers: &marks,
    }
    .render(out);
    out.push_str(
        "<figcaption><span class=\"k in\">━</span> in <span class=\"k out\">━</span> out\
         </figcaption></figure><figure>",
    );
    share_chart(out, c, s, &label, &marks, ids);
    out.push_str("</figure></div></article>");
}

fn share_chart(
    out: &mut String,
    c: &Collected,
    s: &ServiceTrack,
    label: &str,
    marks: &[Marker],
    ids: &mut usize,
) {
    let mut shapes = Vec::new();
    let mut desc = Vec::new();
    for (i, r) in s.reals.iter().enumerate() {
        let class = format!("c{}", i % PALETTE);
        shapes.push(line(&class, r.weight_share.mean(), true));
        shapes.push(line(&class, r.conn_share.mean(), false));
        desc.push(format!(
            "{} up to {} of connections (weight share up to {})",
            r.id,
            percent(r.conn_share.peak()),
            percent(r.weight_share.peak())
        ));
    }
    Chart {
        id: next_id(ids),
        title: format!("{label}: each real server's share of connections and of weight"),
        desc: format!("Per real server of {label}, solid its share of the connections, dashed its share of the weight: {}.", desc.join("; ")),
        axis: &c.axis,
        y_max: 100.0,
        y_fmt: percent,
        shapes,
        markers: marks,
    }
    .render(out);
    out.push_str("<figcaption>");
    for (i, r) in s.reals.iter().enumerate() {
        let _ = write!(
            out,
            "<span class=\"k c{}\">━</span> {} ",
            i % PALETTE,
            escape(&r.id)
        );
    }
    out.push_str("(solid: share of connections, dashed: share of weight)</figcaption>");
}

fn kind_name(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Load => "load",
        AlertKind::Unreachable => "unreachable",
        AlertKind::Stale => "stale",
        AlertKind::Source => "source",
        AlertKind::DirectRouting => "direct routing",
        AlertKind::Pair => "pair",
    }
}

fn more(out: &mut String, shown: usize, total: u64) {
    if total > shown as u64 {
        let _ = write!(
            out,
            "<p class=\"note\">The first {shown} of {total} are listed.</p>"
        );
    }
}

fn alert_log(out: &mut String, c: &Collected) {
    out.push_str("<section id=\"alerts\"><h2>Alert log</h2>");
    if c.alerts.is_empty() {
        out.push_str("<p>No alert was raised or cleared in this range.</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Time</th><th>Subject</th><th>Kind</th><th>Level</th>\
         <th>Message</th></tr></thead><tbody>",
    );
    for a in &c.alerts {
        let (class, level) = match (a.raised, a.severity) {
            (false, _) => ("cleared", "cleared"),
            (true, Severity::Warning) => ("warning", "▲ warning"),
            (true, Severity::Critical) => ("critical", "▲ critical"),
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td><td>{level}</td><td>{}</td></tr>",
            clock(a.time),
            escape(&a.subject),
            kind_name(a.kind),
            escape(&a.message),
        );
    }
    out.push_str("</tbody></table>");
    more(out, c.alerts.len(), c.alerts_total);
    out.push_str("</section>");
}

/// A service as the services pane shows it (`TCP 10.0.0.1:80`), from the id an action records.
fn shown_service(id: &str) -> String {
    crate::control::plan::parse_service(id).map_or_else(|_| id.to_string(), |k| service_label(&k))
}

/// A real server with the node behind it, as the services table names it.
fn shown_real(c: &Collected, a: &ActionRecord) -> String {
    let node = c
        .services
        .iter()
        .filter(|s| s.key.to_string() == a.service)
        .flat_map(|s| &s.reals)
        .find(|r| r.id == a.real)
        .and_then(|r| r.node.as_deref());
    match node {
        Some(n) => format!("{} ({n})", a.real),
        None => a.real.clone(),
    }
}

fn action_log(out: &mut String, c: &Collected) {
    out.push_str("<section id=\"actions\"><h2>Operator actions</h2>");
    if c.actions.is_empty() {
        out.push_str("<p>No drain, weight change or restore in this range.</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Time</th><th>Action</th><th>Service</th><th>Real server</th>\
         <th>Weight</th><th>By</th><th>Router</th><th>Result</th></tr></thead><tbody>",
    );
    for a in &c.actions {
        let class = match a.result {
            ActionOutcome::Done => "done",
            ActionOutcome::Failed(_) => "failed",
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td>{}</td><td>◆ {}</td><td>{}</td><td>{}</td>\
             <td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            clock(a.time),
            action_name(a),
            escape(&shown_service(&a.service)),
            escape(&shown_real(c, a)),
            a.old_weight,
            a.new_weight,
            escape(&a.user),
            escape(&a.router),
            escape(&outcome(&a.result)),
        );
    }
    out.push_str("</tbody></table>");
    more(out, c.actions.len(), c.actions_total);
    out.push_str("</section>");
}
