//! One tokio task per source: poll on an interval (or at once when asked), send what was read.
//! Polls run on the blocking pool so a slow read never stalls the runtime.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;

use crate::model::sample::{HostStatus, Report, SourceEvent, Timestamp};

use super::SourceError;
use super::local::{LocalNode, LocalRouter};

/// Something that can be polled for one event.
pub trait Poll: Send + 'static {
    fn poll(&mut self) -> SourceEvent;
}

fn status<S>(err: &SourceError) -> Report<S> {
    Report::Status {
        time: Timestamp::now(),
        status: HostStatus::Error,
        message: Some(err.to_string()),
    }
}

/// The local node, named by its hostname.
pub(crate) struct LocalNodePoll {
    pub name: String,
    pub source: LocalNode,
}

impl LocalNodePoll {
    pub fn new(source: LocalNode) -> Self {
        Self {
            name: source.name(),
            source,
        }
    }
}

impl Poll for LocalNodePoll {
    fn poll(&mut self) -> SourceEvent {
        let report = match self.source.sample() {
            Ok(s) => Report::Sample(s),
            Err(e) => status(&e),
        };
        SourceEvent::Node {
            name: self.name.clone(),
            host: "local".into(),
            report,
        }
    }
}

/// The local router.
pub(crate) struct LocalRouterPoll(pub LocalRouter);

impl Poll for LocalRouterPoll {
    fn poll(&mut self) -> SourceEvent {
        let report = match self.0.sample() {
            Ok(s) => Report::Sample(s),
            Err(e) => status(&e),
        };
        SourceEvent::Router {
            host: "local".into(),
            report,
        }
    }
}

/// A running poller; `refresh` makes it poll now.
#[derive(Clone)]
pub struct PollHandle {
    refresh: Arc<Notify>,
}

impl PollHandle {
    /// A handle for a task that waits on `refresh` itself (the SSH hosts' async tasks).
    pub(crate) fn from_notify(refresh: Arc<Notify>) -> Self {
        Self { refresh }
    }

    pub(crate) fn refresh(&self) {
        self.refresh.notify_one();
    }
}

/// Starts polling `source` every `interval` until the receiver is dropped.
pub fn spawn(source: impl Poll, interval: Duration, tx: mpsc::Sender<SourceEvent>) -> PollHandle {
    let refresh = Arc::new(Notify::new());
    let handle = PollHandle {
        refresh: refresh.clone(),
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut source = Some(source);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = refresh.notified() => ticker.reset(),
            }
            let Some(mut s) = source.take() else { break };
            let Ok((s, event)) = tokio::task::spawn_blocking(move || {
                let e = s.poll();
                (s, e)
            })
            .await
            else {
                tracing::error!("a poll task panicked; the source stops");
                break;
            };
            source = Some(s);
            if tx.send(event).await.is_err() {
                break;
            }
        }
    });
    handle
}
