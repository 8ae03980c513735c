//! The mouse in the app's own terms: a click, double-click or wheel turn on a logical target (a
//! pane, one of its rows, a sortable column header, a time on the replay's position bar). The UI
//! says what is drawn where (`ui::hit`); the runtime turns the terminal's events into these.

use crate::model::sample::Timestamp;

use super::state::{NodeSort, Pane, ServiceSort};

/// What the pointer did, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mouse {
    pub kind: MouseKind,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MouseKind {
    Click,
    /// A second click on the same cell soon after the first (the runtime decides how soon).
    DoubleClick,
    WheelUp,
    WheelDown,
}

/// What is under the pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A pane, but none of its rows or sortable headers (its border, title, an empty part).
    Pane(Pane),
    /// Row `n` of a pane, counted as the pane lists them: `State::service_rows`,
    /// `State::node_rows`, or the alert log newest first.
    Row(Pane, usize),
    /// The header of a column that sorts its pane.
    Header(SortBy),
    /// The replay's position bar, at this moment of the recording.
    Track(Timestamp),
    /// Row `n` of the open node detail's real servers (`State::node_reals`).
    Detail(usize),
}

/// A column's sort, for either table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    Services(ServiceSort),
    Nodes(NodeSort),
}

impl SortBy {
    pub fn pane(self) -> Pane {
        match self {
            SortBy::Services(_) => Pane::Services,
            SortBy::Nodes(_) => Pane::Nodes,
        }
    }
}

impl Target {
    /// The pane the target is in; `None` for the position bar and a detail's row.
    pub fn pane(self) -> Option<Pane> {
        match self {
            Target::Pane(p) | Target::Row(p, _) => Some(p),
            Target::Header(s) => Some(s.pane()),
            Target::Track(_) | Target::Detail(_) => None,
        }
    }
}
