//! Alert rules with hysteresis, and the book of raised and cleared alerts.
//!
//! A node is critical when its 1-minute load is above its core count, a warning when it is within
//! `warning_margin` below that. To leave a level the load must fall `hysteresis` below the level's
//! threshold, so a load hovering at the threshold does not flap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::sample::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// The thresholds alerts are judged by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertRules {
    /// Warn when the 1-minute load is above `cores - warning_margin`.
    pub warning_margin: f64,
    /// How far below a threshold the load must fall before the alert clears or steps down.
    pub hysteresis: f64,
    /// Router data older than this many intervals is an alert.
    pub stale_intervals: u32,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            warning_margin: 1.0,
            hysteresis: 0.25,
            stale_intervals: 3,
        }
    }
}

impl AlertRules {
    /// The load level of a node, given the level it is at now.
    pub(crate) fn load_level(
        &self,
        load1: f64,
        cores: usize,
        current: Option<Severity>,
    ) -> Option<Severity> {
        let critical = cores as f64;
        let warning = critical - self.warning_margin.max(0.0);
        let h = self.hysteresis.max(0.0);
        let enters = |threshold: f64| load1 > threshold;
        let stays = |threshold: f64| load1 > threshold - h;
        let warns = warning < critical;
        match current {
            Some(Severity::Critical) if stays(critical) => Some(Severity::Critical),
            Some(Severity::Critical) | Some(Severity::Warning) if warns && stays(warning) => {
                if enters(critical) {
                    Some(Severity::Critical)
                } else {
                    Some(Severity::Warning)
                }
            }
            _ if enters(critical) => Some(Severity::Critical),
            _ if warns && enters(warning) => Some(Severity::Warning),
            _ => None,
        }
    }
}

impl AlertRules {
    /// Whether router data `age` seconds old is stale against `limit`. It becomes stale once
    /// older than the limit; once stale it clears only after the data has stayed within the limit
    /// for a whole `limit` (`fresh_for`), so a router whose samples come a little late does not
    /// raise and clear an alert at every sample.
    pub(crate) fn is_stale(age: f64, limit: f64, stale_now: bool, fresh_for: f64) -> bool {
        if age > limit {
            return true;
        }
        stale_now && fresh_for < limit
    }
}

/// What an alert is about, so that one subject can carry several independent alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    Load,
    Unreachable,
    Stale,
    /// A direct-routing or tunnel real server set up wrong (`model::dr`).
    DirectRouting,
    /// The two directors of an HA pair differ (`model::pair`).
    Pair,
    Source,
}

/// An alert raised or cleared at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub time: Timestamp,
    pub severity: Severity,
    pub subject: String,
    pub kind: AlertKind,
    pub message: String,
    /// `false` when this event clears the alert.
    pub raised: bool,
}

/// An alert that is on now.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub since: Timestamp,
    pub severity: Severity,
    pub message: String,
}

/// One line of the alert log: its latest event, and how many events of the same subject, kind
/// and severity it stands for (raises and clears), since `first`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertLine<'a> {
    pub event: &'a AlertEvent,
    pub repeats: usize,
    pub first: Timestamp,
}

/// The alerts that are on, and the log of every raise and clear, newest last.
#[derive(Debug, Clone, Default)]
pub struct AlertBook {
    active: BTreeMap<(String, AlertKind), ActiveAlert>,
    log: Vec<AlertEvent>,
    log_limit: usize,
}

impl AlertBook {
    pub fn new(log_limit: usize) -> Self {
        Self {
            active: BTreeMap::new(),
            log: Vec::new(),
            log_limit: log_limit.max(1),
        }
    }

    /// Sets the alert of `kind` on `subject` to `level` (`None` clears it). Returns the event when
    /// something changed: raised, cleared, or a change of severity.
    pub fn set(
        &mut self,
        time: Timestamp,
        subject: &str,
        kind: AlertKind,
        level: Option<(Severity, String)>,
    ) -> Option<AlertEvent> {
        let key = (subject.to_string(), kind);
        let event = match (self.active.get_mut(&key), level) {
            (None, None) => return None,
            (Some(active), Some((severity, message))) => {
                if active.severity == severity {
                    active.message = message;
                    return None;
                }
                active.severity = severity;
                active.message.clone_from(&message);
                AlertEvent {
                    time,
                    severity,
                    subject: key.0.clone(),
                    kind,
                    message,
                    raised: true,
                }
            }
            (None, Some((severity, message))) => {
                self.active.insert(
                    key.clone(),
                    ActiveAlert {
                        since: time,
                        severity,
                        message: message.clone(),
                    },
                );
                AlertEvent {
                    time,
                    severity,
                    subject: key.0.clone(),
                    kind,
                    message,
                    raised: true,
                }
            }
            (Some(_), None) => {
                let was = self.active.remove(&key)?;
                AlertEvent {
                    time,
                    severity: was.severity,
                    subject: key.0.clone(),
                    kind,
                    message: format!("cleared: {}", was.message),
                    raised: false,
                }
            }
        };
        self.push(event.clone());
        Some(event)
    }

    /// Takes in events `set` made earlier (a recording's, oldest first), so that the book ends as
    /// it was after them: the alerts on, since when, and the log up to its limit. Replay rebuilds
    /// the history before a seek's warm-up this way.
    pub fn restore(&mut self, events: impl IntoIterator<Item = AlertEvent>) {
        for e in events {
            let key = (e.subject.clone(), e.kind);
            if e.raised {
                match self.active.get_mut(&key) {
                    // A change of severity: `since` stays when the alert was first raised.
                    Some(a) => {
                        a.severity = e.severity;
                        a.message.clone_from(&e.message);
                    }
                    None => {
                        self.active.insert(
                            key,
                            ActiveAlert {
                                since: e.time,
                                severity: e.severity,
                                message: e.message.clone(),
                            },
                        );
                    }
                }
            } else {
                self.active.remove(&key);
            }
            self.push(e);
        }
    }

    /// The current severity of one alert.
    pub fn level(&self, subject: &str, kind: AlertKind) -> Option<Severity> {
        self.active
            .get(&(subject.to_string(), kind))
            .map(|a| a.severity)
    }

    /// The worst alert on a subject.
    pub fn worst(&self, subject: &str) -> Option<Severity> {
        self.active
            .range(
                (subject.to_string(), AlertKind::Load)..=(subject.to_string(), AlertKind::Source),
            )
            .map(|(_, a)| a.severity)
            .max()
    }

    pub fn active(&self) -> impl Iterator<Item = (&str, AlertKind, &ActiveAlert)> {
        self.active.iter().map(|((s, k), a)| (s.as_str(), *k, a))
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// Every event, oldest first.
    pub fn log(&self) -> &[AlertEvent] {
        &self.log
    }

    /// Adds to the log in time order: an event that comes in after a later one (a node's sample
    /// time against the router's tick) goes before it.
    fn push(&mut self, event: AlertEvent) {
        if self.log.len() >= self.log_limit {
            let excess = self.log.len() + 1 - self.log_limit;
            self.log.drain(..excess);
        }
        let at = self.log.partition_point(|e| e.time <= event.time);
        self.log.insert(at, event);
    }

    /// The log as lines to show, newest first, at most `limit`: an event that repeats the one
    /// before it on the same subject and kind (raised, cleared, raised again at one severity) is
    /// folded into one line with a count, so a flapping alert takes one line, not dozens.
    pub fn lines(&self, limit: usize) -> Vec<AlertLine<'_>> {
        let mut lines: Vec<AlertLine<'_>> = Vec::new();
        // Where each (subject, kind)'s line is, while its events keep repeating.
        let mut open: BTreeMap<(&str, AlertKind), usize> = BTreeMap::new();
        for e in self.log.iter().rev() {
            let key = (e.subject.as_str(), e.kind);
            if let Some(&i) = open.get(&key)
                && lines[i].event.severity == e.severity
            {
                lines[i].repeats += 1;
                lines[i].first = e.time;
                continue;
            }
            if lines.len() == limit {
                break;
            }
            open.insert(key, lines.len());
            lines.push(AlertLine {
                event: e,
                repeats: 1,
                first: e.time,
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: AlertRules = AlertRules {
        warning_margin: 1.0,
        hysteresis: 0.25,
        stale_intervals: 3,
    };

    fn walk(loads: &[f64], cores: usize) -> Vec<Option<Severity>> {
        let mut level = None;
        loads
            .iter()
            .map(|&l| {
                level = RULES.load_level(l, cores, level);
                level
            })
            .collect()
    }

    #[test]
    fn load_above_core_count_is_critical_and_within_margin_is_warning() {
        assert_eq!(RULES.load_level(24.5, 24, None), Some(Severity::Critical));
        assert_eq!(RULES.load_level(23.5, 24, None), Some(Severity::Warning));
        assert_eq!(RULES.load_level(23.0, 24, None), None);
        assert_eq!(RULES.load_level(24.0, 24, None), Some(Severity::Warning));
    }

    #[test]
    fn stale_data_clears_only_after_a_whole_limit_of_fresh_data() {
        let limit = 6.0;
        assert!(
            !AlertRules::is_stale(6.0, limit, false, 0.0),
            "at the limit is not over it"
        );
        assert!(AlertRules::is_stale(6.4, limit, false, 0.0));
        // Samples that come every 7 s: fresh for a moment, then stale again; the alert stays.
        assert!(AlertRules::is_stale(0.1, limit, true, 0.0));
        assert!(AlertRules::is_stale(5.0, limit, true, 5.0));
        assert!(!AlertRules::is_stale(0.5, limit, true, 6.0));
    }

    #[test]
    fn the_log_is_in_time_order_and_repeats_fold_into_one_line() {
        let mut book = AlertBook::new(100);
        let stale = || Some((Severity::Warning, "router data is old".to_string()));
        for i in 0..10 {
            book.set(Timestamp(i * 6_000), "router", AlertKind::Stale, stale());
            book.set(
                Timestamp(i * 6_000 + 3_000),
                "router",
                AlertKind::Stale,
                None,
            );
        }
        let load = Some((Severity::Critical, "load 3.2 > 2 cores".to_string()));
        book.set(Timestamp(20_000), "web1", AlertKind::Load, load);
        // An event that comes in late (a node sample's time) goes where its time says.
        book.set(Timestamp(4_000), "web2", AlertKind::Unreachable, stale());
        let times: Vec<i64> = book.log().iter().map(|e| e.time.0).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        let lines = book.lines(10);
        let summary: Vec<(&str, usize)> = lines
            .iter()
            .map(|l| (l.event.subject.as_str(), l.repeats))
            .collect();
        assert_eq!(summary, [("router", 20), ("web1", 1), ("web2", 1)]);
        assert_eq!(lines[0].first, Timestamp(0));
        assert_eq!(lines[0].event.time, Timestamp(57_000));
        assert!(!lines[0].event.raised);
        assert_eq!(book.lines(1).len(), 1);
    }

    #[test]
    fn load_hovering_at_the_threshold_does_not_flap() {
        let levels = walk(&[4.1, 3.95, 4.05, 3.9, 4.02, 3.8, 3.7], 4);
        let c = Some(Severity::Critical);
        let w = Some(Severity::Warning);
        // 3.8 is still inside the 0.25 band below 4 cores; 3.7 is not.
        assert_eq!(levels, vec![c, c, c, c, c, c, w]);
    }

    #[test]
    fn warning_clears_only_below_the_hysteresis_band() {
        let w = Some(Severity::Warning);
        assert_eq!(walk(&[3.1, 2.9, 2.76, 2.74], 4), vec![w, w, w, None]);
    }

    #[test]
    fn critical_falls_straight_to_clear_when_load_drops_far() {
        assert_eq!(walk(&[9.0, 1.0], 4), vec![Some(Severity::Critical), None]);
    }

    #[test]
    fn zero_margin_means_no_warning_level() {
        let rules = AlertRules {
            warning_margin: 0.0,
            ..RULES
        };
        assert_eq!(rules.load_level(3.99, 4, None), None);
        assert_eq!(rules.load_level(4.01, 4, None), Some(Severity::Critical));
    }

    #[test]
    fn the_book_records_raise_change_and_clear_with_times() {
        let mut book = AlertBook::new(100);
        let raised = book.set(
            Timestamp(1),
            "web1",
            AlertKind::Load,
            Some((Severity::Warning, "load 3.5 on 4 cores".into())),
        );
        assert!(raised.is_some_and(|e| e.raised && e.time == Timestamp(1)));
        assert!(
            book.set(
                Timestamp(2),
                "web1",
                AlertKind::Load,
                Some((Severity::Warning, "load 3.6 on 4 cores".into()))
            )
            .is_none(),
            "same severity is no new event"
        );
        let up = book.set(
            Timestamp(3),
            "web1",
            AlertKind::Load,
            Some((Severity::Critical, "load 4.2 on 4 cores".into())),
        );
        assert_eq!(up.map(|e| e.severity), Some(Severity::Critical));
        let cleared = book.set(Timestamp(4), "web1", AlertKind::Load, None);
        assert!(cleared.is_some_and(|e| !e.raised && e.time == Timestamp(4)));
        assert_eq!(book.log().len(), 3);
        assert_eq!(book.active_count(), 0);
    }

    #[test]
    fn restoring_the_events_of_a_book_gives_the_same_book() {
        let mut book = AlertBook::new(3);
        let mut events = Vec::new();
        let warn = || Some((Severity::Warning, "load 3.5 on 4 cores".to_string()));
        let crit = || Some((Severity::Critical, "load 4.5 on 4 cores".to_string()));
        for (t, subject, kind, level) in [
            (1, "web1", AlertKind::Load, warn()),
            (2, "web1", AlertKind::Load, crit()),
            (3, "web2", AlertKind::Load, crit()),
            (4, "router", AlertKind::Stale, warn()),
            (5, "web2", AlertKind::Load, None),
            (6, "web3", AlertKind::Unreachable, crit()),
        ] {
            events.extend(book.set(Timestamp(t), subject, kind, level));
        }
        let mut restored = AlertBook::new(3);
        restored.restore(events);
        assert_eq!(restored.log(), book.log());
        assert_eq!(
            restored.active().collect::<Vec<_>>(),
            book.active().collect::<Vec<_>>()
        );
        assert_eq!(
            restored.active().find(|a| a.0 == "web1").map(|a| a.2.since),
            Some(Timestamp(1)),
            "a change of severity keeps when the alert was raised"
        );
    }

    #[test]
    fn the_log_keeps_only_the_newest_events() {
        let mut book = AlertBook::new(2);
        for i in 0..5 {
            let level = (i % 2 == 0).then(|| (Severity::Warning, "x".to_string()));
            book.set(Timestamp(i), "n", AlertKind::Load, level);
        }
        assert_eq!(book.log().len(), 2);
        assert_eq!(book.log()[1].time, Timestamp(4));
    }
}
