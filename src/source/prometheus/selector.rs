//! Which instances `--nodes 'prometheus:{job="web"}'` selects, and the PromQL lbtop asks with it.
//! One query per metric family for every selected instance at once, never one per node.

use std::fmt;

/// The label matchers of a selector (`job="web",env!="dev"`), without braces; empty for all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector(String);

/// The gauges of a node, asked for in one query.
pub(crate) const GAUGES: [&str; 11] = [
    "node_load1",
    "node_load5",
    "node_load15",
    "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_Buffers_bytes",
    "node_memory_Cached_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_boot_time_seconds",
];

/// node_exporter's clock at the scrape, for the uptime (`node_time_seconds - boot time`).
pub(crate) const NODE_TIME: &str = "node_time_seconds";

/// How long a node_exporter instance that stopped answering is still listed (its `up` is 0).
pub(crate) const NODE_WINDOW: &str = "10m";

/// How far back `count_over_time(up[…])` looks to find an instance's scrape interval.
pub(crate) const INTERVAL_WINDOW_S: u32 = 120;

impl Selector {
    /// `{job="web"}` or `job="web"`; empty for every instance. Prometheus checks the matchers
    /// themselves; here only the shape: no metric name, balanced braces and quotes.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let t = s.trim();
        let inner = match (t.strip_prefix('{'), t.ends_with('}')) {
            (Some(rest), true) => &rest[..rest.len() - 1],
            (None, false) => t,
            _ => return Err(format!("{s:?}: a selector is {{label=\"value\",…}}")),
        };
        let mut quoted = false;
        let mut escaped = false;
        for c in inner.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '{' | '}' | '[' | ']' | '(' | ')' if !quoted => {
                    return Err(format!(
                        "{s:?}: only label matchers go in a selector, like {{job=\"web\"}}"
                    ));
                }
                c if c.is_control() => {
                    return Err(format!("{s:?}: a control character in the selector"));
                }
                _ => {}
            }
        }
        if quoted {
            return Err(format!("{s:?}: a quote is not closed"));
        }
        let inner = inner.trim().trim_end_matches(',').trim();
        if !inner.is_empty() && !inner.contains(['=', '~']) {
            return Err(format!(
                "{s:?}: label matchers look like {{job=\"web\"}}, not a metric name"
            ));
        }
        Ok(Selector(inner.to_string()))
    }

    /// `metric{SELECTOR,extra}`.
    fn on(&self, metric: &str, extra: &str) -> String {
        let parts: Vec<&str> = [self.0.as_str(), extra]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect();
        format!("{metric}{{{}}}", parts.join(","))
    }

    /// The selected node_exporter instances: those with a boot time in the last
    /// [`NODE_WINDOW`]. `up` is kept for them, so Prometheus's own target and other exporters
    /// are not taken for nodes, while a node that went down (whose series are stale now) still
    /// is, for that long.
    fn node_instances(&self) -> String {
        format!(
            "on (job, instance) last_over_time({}[{NODE_WINDOW}])",
            self.on("node_boot_time_seconds", "")
        )
    }

    /// `up` of every selected instance: 1 scraped, 0 failed.
    pub(crate) fn up(&self) -> String {
        format!("{} and {}", self.on("up", ""), self.node_instances())
    }

    /// When each selected instance was last scraped.
    pub(crate) fn scraped_at(&self) -> String {
        format!(
            "timestamp({}) and {}",
            self.on("up", ""),
            self.node_instances()
        )
    }

    /// Scrapes in the last [`INTERVAL_WINDOW_S`] seconds: the scrape interval, per instance.
    pub(crate) fn scrape_count(&self) -> String {
        format!(
            "count_over_time({}[{INTERVAL_WINDOW_S}s]) and {}",
            self.on("up", ""),
            self.node_instances()
        )
    }

    /// Online cores per instance.
    pub(crate) fn cores(&self) -> String {
        format!(
            "count by (instance) ({})",
            self.on("node_cpu_seconds_total", "mode=\"idle\"")
        )
    }

    /// Idle seconds summed over each instance's cores: an eighth of the series of every
    /// mode's sums (at 2,000 × 32 cores those cost Prometheus 1.3–2.2 s here, idle and iowait
    /// 0.3–0.6 s, idle alone 0.2–0.3 s; BENCHMARKS.md). The rest of a node's time is busy, of
    /// kinds not asked, iowait included.
    pub(crate) fn cpu_idle_sums(&self) -> String {
        format!(
            "sum by (instance, mode) ({})",
            self.on("node_cpu_seconds_total", "mode=\"idle\"")
        )
    }

    /// Seconds per mode of every core.
    pub(crate) fn cpu_per_core(&self) -> String {
        self.on("node_cpu_seconds_total", "")
    }

    /// Seconds per mode of every core of `instances` (a bounded few, by their labels).
    pub(crate) fn cpu_per_core_of(&self, instances: &[String]) -> String {
        let alternatives: Vec<String> = instances.iter().map(|i| regex_literal(i)).collect();
        self.on(
            "node_cpu_seconds_total",
            &format!("instance=~\"{}\"", alternatives.join("|")),
        )
    }

    /// The load, memory, boot time and clock of every instance, in one query.
    pub(crate) fn gauges(&self) -> String {
        let names: Vec<&str> = GAUGES.iter().copied().chain([NODE_TIME]).collect();
        self.on("", &format!("__name__=~\"{}\"", names.join("|")))
    }
}

/// `text` as a regular expression matching only itself, inside a PromQL string: RE2's special
/// characters escaped for the regex, then backslashes and quotes for the string.
fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match c {
            // `\\` to the regex, each backslash doubled for the string.
            '\\' => out.push_str(r"\\\\"),
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                out.push_str(r"\\");
                out.push(c);
            }
            '"' => out.push_str(r#"\""#),
            // A raw newline (or any control character) would end or break the PromQL string:
            // the string's own `\uXXXX` escape gives the regex the character itself.
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_take_label_matchers_with_or_without_braces() {
        let s = Selector::parse(r#"{job="web", env=~"prod|stage"}"#).expect("selector");
        assert_eq!(
            s.cores(),
            r#"count by (instance) (node_cpu_seconds_total{job="web", env=~"prod|stage",mode="idle"})"#
        );
        assert_eq!(
            Selector::parse(r#"job="web","#).expect("bare"),
            Selector(r#"job="web""#.into())
        );
        let all = Selector::parse("").expect("empty");
        assert_eq!(all.cpu_per_core(), "node_cpu_seconds_total{}");
        assert_eq!(
            s.cpu_idle_sums(),
            r#"sum by (instance, mode) (node_cpu_seconds_total{job="web", env=~"prod|stage",mode="idle"})"#
        );
        assert_eq!(
            all.up(),
            r#"up{} and on (job, instance) last_over_time(node_boot_time_seconds{}[10m])"#
        );
        assert!(
            all.gauges()
                .starts_with(r#"{__name__=~"node_load1|node_load5|"#)
        );
        // Braces and brackets inside quotes are values, not syntax.
        assert!(Selector::parse(r#"{path="/a{b}[c]"}"#).is_ok());
        assert_eq!(
            all.cpu_per_core_of(&["10.0.0.1:9100".into(), r#"we"b(1)"#.into()]),
            r#"node_cpu_seconds_total{instance=~"10\\.0\\.0\\.1:9100|we\"b\\(1\\)"}"#
        );
    }

    #[test]
    fn instance_labels_become_regex_literals_inside_a_promql_string() {
        assert_eq!(regex_literal("10.0.0.1:9100"), r"10\\.0\\.0\\.1:9100");
        assert_eq!(regex_literal(r#"a"b\c"#), r#"a\"b\\\\c"#);
        // A newline would end the string: PromQL's own escape carries it.
        assert_eq!(regex_literal("web\n1\u{1b}"), r"web\u000a1\u001b");
    }

    #[test]
    fn selectors_that_are_not_label_matchers_are_refused() {
        for bad in [
            "{job=\"web\"",
            "node_load1",
            "{job=\"web\"} or vector(1)",
            "{job=\"web}",
            "{job=\"a\"}[5m]",
            "up{job=\"a\"}",
            "{job=\"a\x1b\"}",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
