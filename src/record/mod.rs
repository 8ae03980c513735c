//! Recording and replay: raw source events, alerts and operator actions go into an append-only
//! `.lbrec` file (`writer`), and come back out exactly (`player`) to be fed through the same
//! `State::ingest` path as live (`app::playback`), or exported (`report::export`). The format is in `format` and
//! `docs/recording-format.md`. Nothing here knows the terminal.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::alert::AlertEvent;
use crate::model::sample::{SourceEvent, Timestamp};

pub mod format;
pub mod player;
mod scan;
pub mod writer;

pub use player::{Decoded, Player, Recording};
pub use writer::{Recorder, RecorderStatus, Writer};

/// An operator action on the router (drain, reweight, restore), as it was carried out.
/// The control feature fills these; the recorder stores them and replay marks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub time: Timestamp,
    /// Who did it: `user@host` of the operator's machine.
    pub user: String,
    /// The router it was done on.
    pub router: String,
    /// The virtual service id, e.g. `tcp:192.0.2.10:80`.
    pub service: String,
    /// The real server, `addr:port`.
    pub real: String,
    pub old_weight: i32,
    pub new_weight: i32,
    pub result: ActionOutcome,
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionOutcome {
    Done,
    Failed(String),
}

/// Something to record.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // moved once, into the recorder's queue, boxed there
pub enum Item {
    Event(SourceEvent),
    Alert(AlertEvent),
    Action(ActionRecord),
}

impl Item {
    pub fn time(&self) -> Option<Timestamp> {
        match self {
            Item::Event(e) => Some(event_time(e)),
            Item::Alert(a) => Some(a.time),
            Item::Action(a) => Some(a.time),
        }
    }
}

/// When a source event happened.
pub(crate) fn event_time(e: &SourceEvent) -> Timestamp {
    use crate::model::sample::Report;
    match e {
        SourceEvent::Router { report, .. } => match report {
            Report::Sample(s) => s.time,
            Report::Status { time, .. } => *time,
        },
        SourceEvent::Node { report, .. } => match report {
            Report::Sample(s) => s.time,
            Report::Status { time, .. } => *time,
        },
    }
}

/// Why a recording could not be opened or written. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not an lbtop recording (no LBTOPREC magic at the start)", path.display())]
    NotARecording { path: PathBuf },
    #[error(
        "{}: recorded by a newer lbtop (format {major}.{minor}); this lbtop {} reads format {}.x — upgrade lbtop to replay it",
        path.display(), env!("CARGO_PKG_VERSION"), format::MAJOR
    )]
    NewerMajor {
        path: PathBuf,
        major: u16,
        minor: u16,
    },
    #[error("{}: the recording's header is damaged ({what}); the file cannot be replayed", path.display())]
    DamagedHeader { path: PathBuf, what: String },
    #[error("{}: already exists; recordings are never overwritten — choose another name", path.display())]
    Exists { path: PathBuf },
    #[error("{}: the recording holds no complete frame", path.display())]
    Empty { path: PathBuf },
    /// Not a regular file (a FIFO to replay or to record into would wait forever), or unreadable.
    #[error(transparent)]
    File(#[from] crate::fsutil::FileError),
}

impl RecordError {
    pub(crate) fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// Bad input rather than a failure of this machine: the file is not something lbtop can read.
    pub fn is_bad_file(&self) -> bool {
        !matches!(
            self,
            Self::Io { .. } | Self::File(crate::fsutil::FileError::Io { .. })
        )
    }
}

/// The name `R` gives a new recording: `lbtop-YYYYmmdd-HHMMSS.lbrec`, in UTC.
pub fn default_file_name(now: Timestamp) -> String {
    let t = now.rfc3339(); // 2026-01-01T12:34:56.789Z
    let digits: String = t.chars().take(19).filter(char::is_ascii_digit).collect();
    format!(
        "lbtop-{}-{}.lbrec",
        digits.get(0..8).unwrap_or("00000000"),
        digits.get(8..14).unwrap_or("000000")
    )
}

/// Where `R` puts a new recording: the current directory when it is writable, else
/// `$XDG_DATA_HOME/lbtop/recordings`.
pub fn default_path(now: Timestamp) -> PathBuf {
    let name = default_file_name(now);
    let cwd_ok = std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::metadata(&d).ok().map(|m| (d, m)))
        .is_some_and(|(d, m)| !m.permissions().readonly() && is_writable(&d));
    if cwd_ok {
        return PathBuf::from(name);
    }
    match directories::ProjectDirs::from("", "", "lbtop") {
        Some(dirs) => {
            let dir = dirs.data_dir().join("recordings");
            let _ = crate::owner_only::create_dir_all(&dir);
            dir.join(name)
        }
        None => PathBuf::from(name),
    }
}

fn is_writable(dir: &Path) -> bool {
    let probe = dir.join(format!(".lbtop-probe-{}", std::process::id()));
    match crate::owner_only::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_carry_the_utc_time() {
        assert_eq!(
            default_file_name(Timestamp(1_767_225_600_000 + 3_723_000)),
            "lbtop-20260101-010203.lbrec"
        );
    }
}
