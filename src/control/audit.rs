//! The audit log: one JSON line per action — done, refused or failed — appended to
//! `$XDG_STATE_HOME/lbtop/audit.jsonl`. `restore` reads the weight a real server had before lbtop
//! last drained it from here.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ControlError;
use super::plan::{ActionKind, RealKey, WeightChange};
use crate::model::sample::{ServiceKey, Timestamp};

/// The most of the audit log read back (for restore points): years of an operator's actions.
const AUDIT_BYTES: u64 = 256 << 20;

/// One action as the audit log holds it. Unknown fields are ignored when reading, so the log can
/// grow new fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: String,
    /// `user@host` of the operator.
    pub user: String,
    pub router: String,
    pub service: String,
    pub real: String,
    pub action: ActionKind,
    /// The weight on the router before; `null` when the action ended before lbtop knew it (no
    /// such real server, the router unreachable, read-only).
    pub old_weight: Option<i32>,
    /// The weight asked for; `null` when there was none (nothing to restore).
    pub new_weight: Option<i32>,
    /// `ok`; `refused: …` with the reason lbtop would not make the change (no such service or
    /// real server, the weight moved, the last live server, read-only); or `error: …` with the
    /// reason it could not (the router unreachable, permission).
    pub result: String,
    /// The warnings the confirmation showed before the operator applied it (a controller that
    /// may put the weight back, persistence templates), where there were any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AuditRecord {
    /// A planned change, after it was applied or refused at the re-check.
    pub fn new(router: &str, change: &WeightChange, result: Result<(), &ControlError>) -> Self {
        Self::of(
            router,
            Attempt {
                service: change.service,
                real: change.real,
                kind: change.kind,
                old_weight: Some(change.from),
                new_weight: Some(change.to),
            },
            result,
        )
    }

    /// Any attempt, planned or not.
    pub fn of(router: &str, attempt: Attempt, result: Result<(), &ControlError>) -> Self {
        Self {
            time: Timestamp::now().rfc3339(),
            user: operator(),
            router: router.to_string(),
            service: attempt.service.to_string(),
            real: attempt.real.to_string(),
            action: attempt.kind,
            old_weight: attempt.old_weight,
            new_weight: attempt.new_weight,
            result: match result {
                Ok(()) => "ok".into(),
                Err(e @ ControlError::Plan(_)) => format!("refused: {e}"),
                Err(e) => format!("error: {e}"),
            },
            warnings: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        self.result == "ok"
    }
}

/// What an action was about, as far as lbtop got before it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub service: ServiceKey,
    pub real: RealKey,
    pub kind: ActionKind,
    pub old_weight: Option<i32>,
    pub new_weight: Option<i32>,
}

/// `user@host` of whoever runs lbtop.
pub fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = sysinfo::System::host_name().unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

#[derive(Debug, thiserror::Error)]
#[error("audit log {}: {source}", path.display())]
pub struct AuditError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// The append-only audit log file.
#[derive(Debug, Clone)]
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `$XDG_STATE_HOME/lbtop/audit.jsonl` (or the local data directory where there is no state
    /// directory).
    pub fn default_path() -> Option<PathBuf> {
        let dirs = directories::ProjectDirs::from("", "", "lbtop")?;
        let dir = dirs
            .state_dir()
            .map_or_else(|| dirs.data_local_dir().to_path_buf(), Path::to_path_buf);
        Some(dir.join("audit.jsonl"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record as one line, in one write, so concurrent lbtops do not interleave.
    pub fn append(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let err = |source| AuditError {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            crate::owner_only::create_dir_all(dir).map_err(err)?;
        }
        let mut line = serde_json::to_string(record).map_err(|e| err(std::io::Error::other(e)))?;
        line.push('\n');
        let mut options = crate::owner_only::options();
        options.create(true).append(true);
        let mut f = crate::fsutil::open_to_write(&self.path, options)
            .map_err(|e| err(std::io::Error::other(e.problem())))?;
        f.write_all(line.as_bytes()).map_err(err)?;
        f.sync_data().map_err(err)
    }

    /// Every readable record, oldest first, and how many lines could not be read.
    pub fn records(&self) -> Result<(Vec<AuditRecord>, usize), AuditError> {
        let file = match crate::fsutil::open_regular(&self.path) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok((Vec::new(), 0)),
            Err(e) => {
                return Err(AuditError {
                    path: self.path.clone(),
                    source: std::io::Error::other(e.problem()),
                });
            }
        };
        let mut records = Vec::new();
        let mut bad = 0;
        // Bounded: a line longer than any record is junk, and so is a log past AUDIT_BYTES.
        for line in BufReader::new(file.take(AUDIT_BYTES)).lines() {
            match line {
                Ok(l) if l.trim().is_empty() => {}
                Ok(l) => match serde_json::from_str::<AuditRecord>(&l) {
                    Ok(r) => records.push(r),
                    Err(_) => bad += 1,
                },
                Err(_) => bad += 1,
            }
        }
        Ok((records, bad))
    }

    /// For every real server lbtop drained on `router`, the weight it had before its last drain.
    pub fn restore_points(
        &self,
        router: &str,
    ) -> Result<std::collections::HashMap<(ServiceKey, RealKey), i32>, AuditError> {
        let (records, _) = self.records()?;
        let mut points = std::collections::HashMap::new();
        for r in records
            .iter()
            .filter(|r| r.ok() && r.action == ActionKind::Drain && r.router == router)
        {
            if let (Ok(svc), Ok(real), Some(weight)) = (
                super::plan::parse_service(&r.service),
                r.real.parse::<RealKey>(),
                r.old_weight,
            ) {
                points.insert((svc, real), weight);
            }
        }
        Ok(points)
    }

    /// The weight `real` had before lbtop last drained it on `router`, if a drain is on record.
    pub(crate) fn restore_weight(
        &self,
        router: &str,
        service: &ServiceKey,
        real: &RealKey,
    ) -> Result<Option<i32>, AuditError> {
        let (records, bad) = self.records()?;
        if bad > 0 {
            tracing::warn!(path = %self.path.display(), bad, "unreadable audit log lines skipped");
        }
        let (service, real) = (service.to_string(), real.to_string());
        Ok(records
            .iter()
            .rev()
            .find(|r| {
                r.ok()
                    && r.action == ActionKind::Drain
                    && r.router == router
                    && r.service == service
                    && r.real == real
                    && r.old_weight.is_some()
            })
            .and_then(|r| r.old_weight))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::plan::parse_service;

    fn change(kind: ActionKind, from: i32, to: i32) -> WeightChange {
        WeightChange {
            kind,
            service: parse_service("tcp:192.0.2.10:80").expect("valid"),
            real: "10.0.0.2:80".parse().expect("valid"),
            from,
            to,
        }
    }

    #[test]
    fn restore_finds_the_weight_before_the_last_successful_drain() {
        let dir = tempfile::tempdir().expect("temp");
        let log = AuditLog::at(dir.path().join("a/audit.jsonl"));
        log.append(&AuditRecord::new(
            "r1",
            &change(ActionKind::Drain, 3, 0),
            Ok(()),
        ))
        .expect("append");
        log.append(&AuditRecord::new(
            "r1",
            &change(ActionKind::Restore, 0, 3),
            Ok(()),
        ))
        .expect("append");
        log.append(&AuditRecord::new(
            "r1",
            &change(ActionKind::Drain, 7, 0),
            Ok(()),
        ))
        .expect("append");
        log.append(&AuditRecord::new(
            "r1",
            &change(ActionKind::Drain, 9, 0),
            Err(&ControlError::Backend("refused".into())),
        ))
        .expect("append");
        let svc = parse_service("tcp:192.0.2.10:80").expect("valid");
        let real = "10.0.0.2:80".parse().expect("valid");
        assert_eq!(
            log.restore_weight("r1", &svc, &real).expect("read"),
            Some(7)
        );
        assert_eq!(log.restore_weight("r2", &svc, &real).expect("read"), None);
    }

    #[test]
    fn a_damaged_line_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::at(&path);
        log.append(&AuditRecord::new(
            "r",
            &change(ActionKind::Drain, 2, 0),
            Ok(()),
        ))
        .expect("append");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(b"{\"time\": garbage\n").expect("write");
        let (records, bad) = log.records().expect("read");
        assert_eq!((records.len(), bad), (1, 1));
        assert_eq!(records[0].user, operator());
    }

    #[test]
    fn the_warnings_shown_are_in_the_line_and_absent_when_there_were_none() {
        let c = change(ActionKind::Drain, 3, 0);
        let mut r = AuditRecord::new("lb", &c, Ok(()));
        let plain = serde_json::to_string(&r).expect("json");
        assert!(!plain.contains("warnings"), "{plain}");
        r.warnings = vec!["keepalived manages this table".into()];
        let line = serde_json::to_string(&r).expect("json");
        assert!(
            line.contains(r#""warnings":["keepalived manages this table"]"#),
            "{line}"
        );
        let back: AuditRecord = serde_json::from_str(&line).expect("reads back");
        assert_eq!(back, r);
        let old: AuditRecord = serde_json::from_str(&plain).expect("reads back");
        assert!(old.warnings.is_empty());
    }
}
