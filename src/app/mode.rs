//! Whether the view follows the sources or stands still.

/// Live follows the sources; Paused holds their events until resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Paused,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Self::Live => "LIVE",
            Self::Paused => "PAUSED",
        }
    }
}
