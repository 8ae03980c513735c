//! What the operator can ask for. Keys map to these through the keymap; `State::update` acts on them.

use serde::{Deserialize, Serialize};

/// An operator intent, independent of the key that asked for it.
/// Its name in config files (`page-down`) is the same for serde and for strum's `as_str` and
/// `FromStr`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::VariantArray,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
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
    /// Open the selected service's, real server's or node's detail, with charts.
    Detail,
    ExpandAll,
    CollapseAll,
    SortNext,
    SortReverse,
    Filter,
    /// Freeze the live view (sources keep polling) or pause a replay.
    Pause,
    /// Poll every source now.
    Refresh,
    /// Turn mouse capture off (so the terminal can select text) or back on.
    ToggleMouse,
    ToggleRecord,
    Drain,
    Reweight,
    Restore,
    /// Carry out the weight change being confirmed. Its keys count only in a confirmation, so
    /// they may be keys other actions use elsewhere (`enter` also expands a service).
    Apply,
    StepForward,
    StepBack,
    SeekForward,
    SeekBack,
    SeekForwardLong,
    SeekBackLong,
    GoToTime,
    /// Replay: go to the next alert or action mark (▲/◆ on the position bar).
    NextMark,
    /// Replay: go to the previous alert or action mark.
    PrevMark,
    SpeedUp,
    SpeedDown,
}

impl Action {
    /// Actions whose keys are looked up only while a confirmation is open.
    pub fn in_confirmation(self) -> bool {
        self == Action::Apply
    }

    /// The name config files use: `quit`, `page-down`, `seek-back-long`.
    pub fn name(self) -> &'static str {
        self.into()
    }

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
                | Action::NextMark
                | Action::PrevMark
                | Action::SpeedUp
                | Action::SpeedDown
        )
    }

    /// Every action, in declaration order (the help screen's order).
    pub const ALL: &'static [Action] = <Action as strum::VariantArray>::VARIANTS;

    /// Where the action means something: everywhere, in the live view, or in a replay.
    pub fn context(self) -> Context {
        match self {
            Action::Refresh
            | Action::ToggleRecord
            | Action::Drain
            | Action::Reweight
            | Action::Restore
            | Action::Apply => Context::Live,
            a if a.is_replay() => Context::Replay,
            _ => Context::Everywhere,
        }
    }
}

/// Where an action means something; the help screen groups the keys by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Everywhere,
    Live,
    Replay,
}

impl Context {
    /// The help screen's heading for the group.
    pub fn heading(self) -> &'static str {
        match self {
            Context::Everywhere => "Everywhere",
            Context::Live => "Live view",
            Context::Replay => "Replay",
        }
    }

    /// The groups the help screen shows, in order: in a replay the live-only keys (record,
    /// drain, …) mean nothing and are left out, and in the live view the replay keys are.
    pub fn shown(replay: bool) -> [Context; 2] {
        if replay {
            [Context::Everywhere, Context::Replay]
        } else {
            [Context::Everywhere, Context::Live]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_are_serde_names_and_parse_back() {
        assert_eq!(Action::ALL.len(), 37);
        for a in Action::ALL {
            let serde = serde_json::to_value(a).expect("serialises");
            assert_eq!(serde.as_str(), Some(a.name()));
            assert_eq!(a.name().parse::<Action>(), Ok(*a));
        }
        assert_eq!(Action::PageDown.name(), "page-down");
        assert!("PageDown".parse::<Action>().is_err());
    }

    #[test]
    fn the_live_view_hides_the_replay_keys_and_a_replay_the_live_only_ones() {
        assert_eq!(Action::SeekForward.context(), Context::Replay);
        assert_eq!(Action::Drain.context(), Context::Live);
        assert_eq!(Action::ToggleRecord.context(), Context::Live);
        assert_eq!(Action::Quit.context(), Context::Everywhere);
        assert!(!Context::shown(false).contains(&Context::Replay));
        assert!(!Context::shown(true).contains(&Context::Live));
    }
}
