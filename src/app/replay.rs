//! What the screen shows about a recording being made or replayed. The runtime fills these in; the
//! UI draws them; `State::update` reads the replay's span to resolve a typed time.

use std::time::Duration;

use crate::model::sample::Timestamp;

/// A replay's place in its recording, for the REPLAY status and the position bar.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplayView {
    /// The file, as given.
    pub file: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub position: Timestamp,
    /// Frames with alerts or actions: `(time, record::format::flags)`.
    pub marks: Vec<(Timestamp, u8)>,
    /// Damaged or cut-off frames that were skipped.
    pub warning: Option<String>,
}

/// A recording in progress, for `● REC` on the status line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingView {
    pub file: String,
    pub bytes: u64,
    pub duration: Duration,
    /// The write error that stopped it; the live view carries on.
    pub error: Option<String>,
}

/// Where a replay should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// Milliseconds from the current position, back when negative.
    By(i64),
    At(Timestamp),
}
