//! Application state: one place where state changes, driven by actions and source events.

pub mod action;
pub mod event;
pub mod mode;
pub mod mouse;
pub mod playback;
pub mod replay;
pub mod rows;
pub mod state;

pub use action::{Action, Context};
pub use event::{Event, Outcome};
pub use mode::{Mode, Speed};
pub use mouse::{Mouse, MouseKind, SortBy, Target};
pub use state::{Command, PairEntry, PairSide, State, StateOptions, SyncHealth};
