//! Everything that changes the state, as one type. `State::handle(event)` is the one way in; the
//! runtime turns keys, source reports, timers and finished weight changes into these.

use crate::control::plan::WeightChange;
use crate::model::alert::AlertEvent;
use crate::model::sample::{SourceEvent, Timestamp};
use crate::record::ActionRecord;

use super::action::Action;
use super::mouse::Mouse;
use super::state::{Command, ScreenView, TextInput};

/// Something that happened, for `State::handle`.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // one at a time, straight into `handle`
pub enum Event {
    /// An operator intent (a key, through the keymap).
    Action(Action),
    /// A click, double-click or wheel turn on something drawn (`app::mouse`).
    Mouse(Mouse),
    /// A key while a prompt takes text: the filter, a go-to time, a weight, a typed confirmation.
    Text(TextInput),
    /// A source's sample or status.
    Source(SourceEvent),
    /// Time passed: ages grow, stale data becomes an alert.
    Tick(Timestamp),
    /// A weight change ended.
    Applied {
        change: WeightChange,
        result: Result<(), String>,
    },
    /// Replay: an operator action the recording holds, as it was carried out then.
    Recorded(ActionRecord),
    /// A frame was drawn, its panes showing these rows (`ui::draw_screen`).
    Drawn(ScreenView),
}

/// What handling an event asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// What the runtime must do, if anything.
    pub command: Option<Command>,
    /// Alerts raised or cleared, for the recorder and the log.
    pub alerts: Vec<AlertEvent>,
}

impl Outcome {
    pub fn command(command: Option<Command>) -> Outcome {
        Outcome {
            command,
            alerts: Vec::new(),
        }
    }

    pub fn alerts(alerts: Vec<AlertEvent>) -> Outcome {
        Outcome {
            command: None,
            alerts,
        }
    }
}
