//! A share of one core for work that lbtop makes a host do (ipvsadm's views, the connection
//! table), spent as the work is measured: the next reading waits until it fits the share.

use std::time::{Duration, Instant};

/// A share of one core, as credit in CPU seconds: it grows with time at the share's rate (up to
/// one poll interval's worth, so that quiet time is not saved up for a burst), and a reading
/// spends what it cost. A reading may start while the credit is not negative.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    share: f64,
    cap: f64,
    credit: f64,
    at: Option<Instant>,
}

impl Budget {
    pub fn new(share: f64, interval: Duration) -> Budget {
        Budget {
            share,
            cap: share * interval.as_secs_f64().max(1.0),
            credit: 0.0,
            at: None,
        }
    }

    fn accrue(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.credit = (self.credit + dt * self.share).min(self.cap);
        }
        self.at = Some(now);
    }

    /// Whether a reading may start now.
    pub fn allows(&mut self, now: Instant) -> bool {
        self.accrue(now);
        // Not negative, give or take the rounding of the sums.
        self.credit >= -1e-9
    }

    /// Takes note of a reading that cost `cpu_seconds` of the router's CPU.
    pub(crate) fn spend(&mut self, now: Instant, cpu_seconds: f64) {
        self.accrue(now);
        self.credit -= cpu_seconds.max(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_spaces_readings_by_their_cost_over_the_share() {
        let t0 = Instant::now();
        let mut b = Budget::new(0.2, Duration::from_secs(2));
        let mut runs = Vec::new();
        for s in 0..60u64 {
            let now = t0 + Duration::from_secs(2 * s);
            if b.allows(now) {
                runs.push(2 * s);
                b.spend(now, 2.4);
            }
        }
        // 2.4 s at 20 % of a core: one reading every 12 s.
        let gaps: Vec<u64> = runs.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g == 12), "{gaps:?}");
        // A cheap reading runs at every poll.
        let mut cheap = Budget::new(0.2, Duration::from_secs(1));
        for s in 0..10u64 {
            let now = t0 + Duration::from_secs(s);
            assert!(cheap.allows(now));
            cheap.spend(now, 0.01);
        }
    }
}
