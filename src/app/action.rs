//! What the operator can ask for. Keys map to these through the keymap; `State::update` acts on them.

use serde::{Deserialize, Serialize};

/// An operator intent, independent of the key that asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Quit,
    Help,
    /// Close a popup, leave the filter prompt, or clear the filter.
    Back,
    NextPane,
    PrevPane,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Expand or collapse the selected service; open the selected node's detail view.
    Toggle,
    ExpandAll,
    CollapseAll,
    SortNext,
    SortReverse,
    Filter,
    /// Freeze the live view (sources keep polling) or pause a replay.
    Pause,
    /// Poll every source now.
    Refresh,
    ToggleRecord,
    Drain,
    Reweight,
    Restore,
    StepForward,
    StepBack,
    SeekForward,
    SeekBack,
    SeekForwardLong,
    SeekBackLong,
    GoToTime,
    SpeedUp,
    SpeedDown,
}

impl Action {
    /// Seek, step, speed and go-to: they act on a replay only.
    pub fn is_replay(self) -> bool {
        matches!(
            self,
            Action::StepForward
                | Action::StepBack
                | Action::SeekForward
                | Action::SeekBack
                | Action::SeekForwardLong
                | Action::SeekBackLong
                | Action::GoToTime
                | Action::SpeedUp
                | Action::SpeedDown
        )
    }

    pub const ALL: &'static [Action] = &[
        Action::Quit,
        Action::Help,
        Action::Back,
        Action::NextPane,
        Action::PrevPane,
        Action::Up,
        Action::Down,
        Action::PageUp,
        Action::PageDown,
        Action::Top,
        Action::Bottom,
        Action::Toggle,
        Action::ExpandAll,
        Action::CollapseAll,
        Action::SortNext,
        Action::SortReverse,
        Action::Filter,
        Action::Pause,
        Action::Refresh,
        Action::ToggleRecord,
        Action::Drain,
        Action::Reweight,
        Action::Restore,
        Action::StepForward,
        Action::StepBack,
        Action::SeekForward,
        Action::SeekBack,
        Action::SeekForwardLong,
        Action::SeekBackLong,
        Action::GoToTime,
        Action::SpeedUp,
        Action::SpeedDown,
    ];
}
