//! The one event loop, for live and replay alike: keys, the mouse, stop signals and redraws here, and
//! everything else from a [`Feed`] — the live sources (`LiveFeed`) or a replay's clock
//! (`replay::ReplayFeed`). The two differ only in their feed, as the state differs only in its
//! mode.

use std::time::Duration;

use crossterm::event::EventStream;
use futures_util::StreamExt;
use tokio::time::MissedTickBehavior;

use crate::app::{Command, State};
use crate::config::Config;

use super::mouse::{Pointer, set_capture};
use super::signals::StopSignals;
use super::{RunError, redraw_if_changed, terminal_event};

/// What drives the state besides the operator's keys.
pub(crate) trait Feed {
    /// What the feed waits for (a batch of source events, a timer, a finished weight change).
    type Item;

    /// Waits for the feed's next item. Must be cancel-safe: the loop drops it when a key comes
    /// first.
    async fn next(&mut self) -> Self::Item;

    /// Hands an item to the state (`State::handle`); returns what the state asks for.
    fn take(&mut self, state: &mut State, item: Self::Item) -> Option<Command>;

    /// Carries out a command the state returned (other than quitting).
    fn carry_out(&mut self, state: &mut State, command: Command);
}

/// Runs until the operator quits, a stop signal comes, or the terminal fails.
pub(crate) async fn run<F: Feed>(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut State,
    config: &Config,
    signals: &mut StopSignals,
    feed: &mut F,
) -> Result<(), RunError> {
    let mut keys = EventStream::new();
    let mut render = tokio::time::interval(Duration::from_millis(33));
    render.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut drawn: Option<u64> = None;
    let mut pointer = Pointer::default();
    loop {
        let command = tokio::select! {
            ev = keys.next() => terminal_event(state, &config.keymap, ev, &mut drawn, &mut pointer)?,
            number = signals.recv() => return Err(RunError::Signal(number)),
            item = feed.next() => feed.take(state, item),
            // The render timer runs only while there is something new to draw: an idle screen
            // costs no wake-ups, and a burst of changes is drawn once a frame.
            _ = render.tick(), if drawn != Some(state.generation()) => {
                redraw_if_changed(terminal, state, config, &mut drawn)?;
                pointer.area = terminal.get_frame().area();
                None
            }
        };
        match command {
            Some(Command::Quit) => return Ok(()),
            Some(Command::SetMouse(on)) => set_capture(on)?,
            Some(command) => feed.carry_out(state, command),
            None => {}
        }
    }
}
