//! SIGTERM, SIGINT and SIGHUP while the TUI owns the terminal: caught so the loop ends, the
//! terminal is restored and a recording closed, and lbtop then exits 128 + the signal's number.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals that stop the TUI, listened to from before the terminal is set up.
pub(crate) struct StopSignals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl StopSignals {
    /// Listens for SIGTERM, SIGINT and SIGHUP from now on (inside a tokio runtime).
    pub fn listen() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Waits for one of them; returns its number (15, 2 or 1).
    pub async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => SignalKind::terminate().as_raw_value(),
            _ = self.int.recv() => SignalKind::interrupt().as_raw_value(),
            _ = self.hup.recv() => SignalKind::hangup().as_raw_value(),
        }
    }
}

/// The exit status of a program stopped by signal `number`: 128 + the number, as a shell reports it.
pub fn exit_status(number: i32) -> u8 {
    u8::try_from(128 + number).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_is_128_plus_the_signal_number() {
        assert_eq!(exit_status(15), 143);
        assert_eq!(exit_status(2), 130);
        assert_eq!(exit_status(1), 129);
    }
}
