//! The detail view of one node: load, memory, uptime, a load trend, the host's facts, and a
//! full bar per core, as htop draws them.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use crate::app::state::NodeEntry;
use crate::app::{Action, State};
use crate::config::{Keymap, Theme};
use crate::model::sample::HostStatus;
use crate::model::snapshot::NodeStats;

use super::super::widgets::{self, bytes, cpu_bar, pane};
use super::keys_or;

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
    let [head, body] =
        Layout::vertical([Constraint::Length(header.len() as u16), Constraint::Min(1)])
            .areas(inner);
    frame.render_widget(Paragraph::new(header), head);
    frame.render_widget(Paragraph::new(core_bars(theme, n, st, body)), body);
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
            widgets::sparkline(
                n.load_history.iter(),
                Some(st.cores as f64 * 1.25),
                usize::from(width.saturating_sub(12)),
            ),
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

/// A bar per core, `id[|||||   12.5%]`, in as many columns as `body`'s height needs.
fn core_bars(theme: &Theme, n: &NodeEntry, st: &NodeStats, body: Rect) -> Vec<Line<'static>> {
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
        let bar_width = col_width.saturating_sub(12).max(1);
        line.spans
            .push(Span::styled(format!("{id:>3}["), theme.dim));
        line.spans.extend(cpu_bar(theme, cpu.as_ref(), bar_width));
        line.spans.push(Span::styled(
            cpu.map_or("   -%]".into(), |c| format!("{:5.1}%]", c.busy())),
            theme.dim,
        ));
        line.spans.push(Span::raw(" "));
    }
    lines
}
