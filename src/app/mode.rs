//! Whether the view follows the sources, stands still, or replays a recording.

/// Live follows the sources; Paused holds their events until resumed; Replay plays a recording,
/// paused or at a speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Paused,
    Replay { paused: bool, speed: Speed },
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "LIVE",
            Self::Paused => "PAUSED",
            Self::Replay { .. } => "REPLAY",
        }
    }

    pub fn is_replay(self) -> bool {
        matches!(self, Self::Replay { .. })
    }
}

/// Replay speed: a power of two from 0.25× to 64×.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Speed(i8);

impl Speed {
    pub const NORMAL: Speed = Speed(0);
    pub(crate) const SLOWEST: Speed = Speed(-2);
    pub(crate) const FASTEST: Speed = Speed(6);

    /// Recording time per wall-clock time.
    pub(crate) fn factor(self) -> f64 {
        2f64.powi(i32::from(self.0))
    }

    pub fn faster(self) -> Speed {
        Speed((self.0 + 1).min(Self::FASTEST.0))
    }

    pub(crate) fn slower(self) -> Speed {
        Speed((self.0 - 1).max(Self::SLOWEST.0))
    }

    /// `0.25×`, `1×`, `64×`.
    pub fn label(self) -> String {
        format!("{}×", self.factor())
    }
}

impl Default for Speed {
    fn default() -> Self {
        Self::NORMAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_steps_by_doubling_between_a_quarter_and_64() {
        let mut s = Speed::NORMAL;
        for _ in 0..10 {
            s = s.slower();
        }
        assert_eq!(s.label(), "0.25×");
        for _ in 0..20 {
            s = s.faster();
        }
        assert_eq!(s.label(), "64×");
        assert_eq!(Speed::NORMAL.faster().factor(), 2.0);
    }
}
