//! `lbtop replay FILE`: the live UI fed by a `record::Player` instead of the sources. `Replayer`
//! owns the player and the replay clock and carries out the state's replay commands; it is
//! synchronous, so tests drive it without a terminal. `run` is the select loop around it.

use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

use crate::app::playback::{self, declare, feed};
use crate::app::replay::{ReplayView, SeekTo};
use crate::app::{Command, Mode, Speed, State};
use crate::config::Config;
use crate::model::sample::Timestamp;
use crate::record::Player;

use super::RunError;
use super::event_loop::{self, Feed};
use super::signals::StopSignals;

/// A replay in progress: the player, and where the clock is.
pub struct Replayer {
    pub player: Player,
    /// Recording time the clock has reached, in milliseconds.
    position: f64,
}

impl Replayer {
    /// Puts `state` in REPLAY mode at the start of the recording, playing at 1×.
    pub fn new(player: Player, state: &mut State, file: &str) -> Self {
        let info = player.recording.info().clone();
        state.clear_data();
        declare(state, &info);
        let start = player.recording.start();
        state.start_replay(
            ReplayView {
                file: file.to_string(),
                start,
                end: player.recording.end(),
                position: start,
                marks: player.recording.marks(),
                warning: None,
            },
            false,
            Speed::NORMAL,
        );
        let mut r = Self {
            player,
            position: start.0 as f64,
        };
        r.player.rewind();
        r.catch_up(state);
        r
    }

    pub fn position(&self) -> Timestamp {
        Timestamp(self.position as i64)
    }

    fn start(&self) -> Timestamp {
        self.player.recording.start()
    }

    fn end(&self) -> Timestamp {
        self.player.recording.end()
    }

    /// Feeds every frame up to the clock, and shows the position.
    fn catch_up(&mut self, state: &mut State) {
        while let Some(t) = self.player.next_time() {
            if t.0 as f64 > self.position {
                break;
            }
            match self.player.next_frame() {
                Some(d) => feed(state, d, |_, _| {}),
                None => break,
            }
        }
        self.show(state);
    }

    fn show(&self, state: &mut State) {
        state.set_replay_position(self.position(), self.player.damage_report());
    }

    /// Lets `elapsed` wall-clock time pass at the state's speed; pauses at the end.
    pub fn advance(&mut self, state: &mut State, elapsed: Duration) {
        let Mode::Replay { paused, speed } = state.mode() else {
            return;
        };
        if paused {
            return;
        }
        let end = self.end().0 as f64;
        self.position = (self.position + elapsed.as_secs_f64() * 1000.0 * speed.factor()).min(end);
        self.catch_up(state);
        if self.position >= end && self.player.at_end() {
            state.set_replay_play(true, speed);
        }
    }

    /// Goes to `t` (clamped to the recording): a fresh state with the recording's alert history,
    /// fed from the keyframe before it (`app::playback::seek`).
    pub fn seek(&mut self, state: &mut State, t: Timestamp) {
        let t = t.clamp(self.start(), self.end());
        let target = self.player.recording.frame_at(t);
        let info = self.player.recording.info().clone();
        state.clear_data();
        declare(state, &info);
        playback::seek(&mut self.player, state, target);
        self.position = t.0 as f64;
        self.catch_up(state);
    }

    /// One frame forward or back.
    pub fn step(&mut self, state: &mut State, forward: bool) {
        if forward {
            if let Some(d) = self.player.next_frame() {
                self.position = self.position.max(d.time.0 as f64);
                feed(state, d, |_, _| {});
            }
            self.show(state);
        } else {
            // The frame shown is `position() - 1`; go to the one before it.
            let shown = self.player.position().saturating_sub(1);
            let target = shown.saturating_sub(1);
            let t = self.player.recording.frames[target].time;
            self.seek(state, t);
        }
    }

    /// Carries out a command of the state's; `false` for commands that are not the replay's.
    pub fn apply(&mut self, state: &mut State, command: &Command) -> bool {
        match *command {
            Command::Seek(SeekTo::By(ms)) => {
                let t = Timestamp(self.position().0.saturating_add(ms));
                self.seek(state, t);
            }
            Command::Seek(SeekTo::At(t)) => self.seek(state, t),
            Command::Step(n) => self.step(state, n > 0),
            Command::SetSpeed(_) | Command::SetPaused(_) => {
                // The clock reads both from the mode; at the end, play starts again from the top.
                if let Mode::Replay { paused: false, .. } = state.mode()
                    && self.player.at_end()
                    && self.position >= self.end().0 as f64
                {
                    self.seek(state, self.start());
                }
                self.show(state);
            }
            _ => return false,
        }
        true
    }
}

/// Runs the replay TUI until the operator quits.
pub async fn run(
    player: Player,
    mut state: State,
    config: &Config,
    file: &str,
) -> Result<(), RunError> {
    let mut replayer = Replayer::new(player, &mut state, file);
    let mut signals = StopSignals::listen().map_err(RunError::Terminal)?;
    let mut clock = tokio::time::interval(Duration::from_millis(50));
    clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut feed = ReplayFeed {
        replayer: &mut replayer,
        clock,
        last: Instant::now(),
    };
    let mut terminal = super::mouse::init_terminal(state.ui().mouse);
    let result = event_loop::run(&mut terminal, &mut state, config, &mut signals, &mut feed).await;
    super::mouse::restore_terminal();
    result
}

/// A replay's clock as the loop's feed: every 50 ms the position moves on by the time passed at
/// the replay's speed; seek, step, speed and pause are carried out on the player.
struct ReplayFeed<'a> {
    replayer: &'a mut Replayer,
    clock: tokio::time::Interval,
    last: Instant,
}

impl Feed for ReplayFeed<'_> {
    type Item = Instant;

    async fn next(&mut self) -> Instant {
        self.clock.tick().await;
        Instant::now()
    }

    fn take(&mut self, state: &mut State, now: Instant) -> Option<Command> {
        // A message on screen goes after a few seconds of wall-clock time, whatever the replay does.
        state.age_toast(Timestamp::now());
        self.replayer.advance(state, now - self.last);
        self.last = now;
        None
    }

    fn carry_out(&mut self, state: &mut State, command: Command) {
        if self.replayer.apply(state, &command) {
            self.last = Instant::now();
        }
    }
}
