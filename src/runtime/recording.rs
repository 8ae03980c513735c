//! Recording from the live view (`--record FILE`, `R`) and headless (`lbtop record`): every source
//! event and every alert goes to a `record::Recorder`, whose size, duration and errors show on the
//! status line. A write error stops the recording, never the live view.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::app::State;
use crate::app::replay::RecordingView;
use crate::model::alert::AlertEvent;
use crate::model::sample::{SourceEvent, Timestamp};
use crate::record::format::{HeaderInfo, NodeDecl};
use crate::record::writer::{WriterOptions, header_info};
use crate::record::{ActionRecord, Item, RecordError, Recorder, RecorderStatus};
use crate::source::poller::{self, PollHandle};

use super::{RunError, SourceSet};

/// The live view's recorder: off, or recording to one file.
pub(crate) struct LiveRecorder {
    interval: Duration,
    router: Option<String>,
    pair: Option<[String; 2]>,
    nodes: Vec<NodeDecl>,
    active: Option<Recorder>,
    /// The last recording's outcome, kept on screen after a write error.
    failed: Option<RecordingView>,
}

impl LiveRecorder {
    /// A recorder for these sources, not yet recording.
    pub fn new(interval: Duration, set: &SourceSet) -> Self {
        Self {
            interval,
            router: set
                .router
                .as_ref()
                .map(|(h, _)| h.clone())
                .or_else(|| set.remote.router_host()),
            pair: set.pair.clone(),
            nodes: set
                .nodes
                .iter()
                .map(|(name, host, _)| (name.as_str(), host.as_str()))
                .chain(set.remote.node_names())
                .map(|(name, host)| NodeDecl {
                    name: name.to_string(),
                    host: host.to_string(),
                })
                .collect(),
            active: None,
            failed: None,
        }
    }

    fn info(&self, options: &WriterOptions) -> HeaderInfo {
        let mut info = header_info(
            self.interval,
            options,
            self.router.clone(),
            self.nodes.clone(),
        );
        info.pair.clone_from(&self.pair);
        info
    }

    /// Starts recording into `path`, which must not exist yet.
    pub fn start(&mut self, path: &Path) -> Result<(), RecordError> {
        let options = WriterOptions {
            sync: true,
            ..WriterOptions::default()
        };
        let r = Recorder::start(path, self.info(&options), self.interval, options)?;
        tracing::info!("recording to {}", path.display());
        self.active = Some(r);
        self.failed = None;
        Ok(())
    }

    /// Stops recording, writing the index. Returns what was recorded.
    pub fn stop(&mut self) -> Option<RecorderStatus> {
        let status = self.active.take()?.stop();
        tracing::info!(
            "recording stopped: {} ({} bytes)",
            status.path.display(),
            status.bytes
        );
        Some(status)
    }

    /// `R`: stops a recording, or starts one under the default name (see `record::default_path`).
    pub(crate) fn toggle(&mut self, state: &mut State) {
        if let Some(st) = self.stop() {
            state.show_message(format!(
                "recording saved: {} ({}, {})",
                st.path.display(),
                bytesize::ByteSize::b(st.bytes).display().si(),
                humantime::format_duration(st.covered(self.interval))
            ));
        } else {
            let path = crate::record::default_path(Timestamp::now());
            match self.start(&path) {
                Ok(()) => {
                    state.show_message(format!("recording to {}", absolute(&path).display()));
                }
                Err(e) => state.show_error(format!("cannot record: {e}")),
            }
        }
        self.refresh(state);
    }

    pub fn event(&self, e: &SourceEvent) {
        if let Some(r) = &self.active {
            r.send(Item::Event(e.clone()));
        }
    }

    pub fn alerts(&self, alerts: &[AlertEvent]) {
        if let Some(r) = &self.active {
            for a in alerts {
                r.send(Item::Alert(a.clone()));
            }
        }
    }

    /// Records an operator action (drain, weight change) as it was carried out.
    pub fn action(&self, a: ActionRecord) {
        if let Some(r) = &self.active {
            r.send(Item::Action(a));
        }
    }

    /// Brings the status line up to date; a recording stopped by a write error is closed here and
    /// its error stays on screen.
    pub(crate) fn refresh(&mut self, state: &mut State) {
        if let Some(r) = &self.active {
            let st = r.status();
            let view = view_of(&st);
            if st.error.is_some() {
                self.active = None;
                state.show_error(format!(
                    "recording stopped: {}: {}; the live view carries on",
                    st.path.display(),
                    st.error.as_deref().unwrap_or("write error")
                ));
                self.failed = Some(view);
            } else {
                state.set_recording(Some(view));
                return;
            }
        }
        state.set_recording(self.failed.clone());
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn view_of(st: &RecorderStatus) -> RecordingView {
    RecordingView {
        file: st.path.display().to_string(),
        bytes: st.bytes,
        duration: st.duration(),
        error: st.error.clone(),
    }
}

/// `lbtop record FILE`: polls the sources and records until `duration` has passed (or forever
/// when `None`), or until SIGINT/SIGTERM; then closes the file cleanly.
pub async fn record_headless(
    set: SourceSet,
    mut state: State,
    interval: Duration,
    path: &Path,
    duration: Option<Duration>,
) -> Result<RecorderStatus, RunError> {
    super::declare(&mut state, &set);
    let mut recorder = LiveRecorder::new(interval, &set);
    recorder.start(path)?;
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(1024);
    let started = set.remote.start(interval, tx.clone(), None);
    let mut handles: Vec<PollHandle> = started.handles;
    if let Some((_, p)) = set.router {
        handles.push(poller::spawn(p, interval, started.router_tx.clone()));
    }
    drop(started.router_tx);
    for (_, _, p) in set.nodes {
        handles.push(poller::spawn(p, interval, tx.clone()));
    }
    drop(tx);
    let deadline = duration.map(|d| tokio::time::Instant::now() + d);
    let sleep_until = async move {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Terminal)?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(ev) = rx.recv() => {
                recorder.event(&ev);
                let alerts = state.ingest(ev);
                recorder.alerts(&alerts);
            }
            _ = tick.tick() => {
                let alerts = state.tick(Timestamp::now());
                recorder.alerts(&alerts);
                if let Some(r) = &recorder.active
                    && let Some(e) = r.status().error
                {
                    let st = recorder.stop();
                    return Err(RunError::Recording(format!(
                        "recording to {} stopped: {e}{}",
                        path.display(),
                        st.map(|s| format!(" after {} bytes", s.bytes)).unwrap_or_default()
                    )));
                }
            }
            () = &mut sleep_until => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(handles);
    let status = recorder.stop().ok_or_else(|| {
        RunError::Recording(format!("recording to {} did not start", path.display()))
    })?;
    match &status.error {
        Some(e) => Err(RunError::Recording(format!(
            "recording to {} stopped: {e}",
            path.display()
        ))),
        None => Ok(status),
    }
}
