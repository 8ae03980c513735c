//! Nodes from Prometheus (`--nodes prometheus`): where a fleet already runs Prometheus with
//! node_exporter, one task asks its HTTP API for every selected instance at once — one query
//! per metric family, never one per node — and sends each instance's raw `NodeSample`, with the
//! scrape's own time, as an SSH node's would be. Derivation, alerts, history, recording and
//! replay are the same.
//!
//! - `selector`: the instances picked and the PromQL asked;
//! - `client`: HTTP(S), credentials, bounds on size and time;
//! - `api`: the API's answers and errors;
//! - `fleet`: answers to samples and statuses.
//!
//! CPU detail: per core while the selected instances have at most [`PER_CORE_LIMIT`] cores in
//! all; beyond, the per-node sums by mode and the core count (`NodeSample::has_per_core`).

mod api;
mod client;
mod fleet;
mod selector;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::model::sample::SourceEvent;
use crate::source::poller::PollHandle;
use crate::source::spec::{NodeMapping, PrometheusSpec};

pub use selector::Selector;

use api::Series;
use client::{Client, QueryError};
use fleet::{Answers, Fleet};

/// Per-core series are asked for while the selected instances have at most this many cores in
/// all (8 modes each: 32,768 series); beyond it, per-node sums.
pub const PER_CORE_LIMIT: f64 = 4096.0;

/// The largest answer read for one query.
const ANSWER_LIMIT: usize = 64 << 20;

/// How often the scrape intervals (for staleness) are asked again.
const INTERVALS_EVERY: Duration = Duration::from_secs(60);

/// The nodes Prometheus has, ready to start.
#[derive(Debug, Clone)]
pub struct PrometheusNodes {
    client: Client,
    selector: Selector,
    mappings: Vec<NodeMapping>,
    timeout: Duration,
}

impl PrometheusNodes {
    /// The source for `spec` and `selector`; `mappings` are the config's `[[node]]` entries.
    /// Errors (a bad URL, an unreadable CA file) are for the operator, as they are.
    pub fn new(
        spec: &PrometheusSpec,
        selector: Selector,
        mappings: &[NodeMapping],
        interval: Duration,
    ) -> Result<PrometheusNodes, String> {
        let timeout = spec.timeout.unwrap_or_else(|| {
            (interval * 2).clamp(Duration::from_secs(2), Duration::from_secs(10))
        });
        Ok(PrometheusNodes {
            client: Client::new(spec, timeout, ANSWER_LIMIT)?,
            selector,
            mappings: mappings.to_vec(),
            timeout,
        })
    }

    /// How long one poll may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts the task. With `limit`, it polls that many times and stops (`--once`), a failure
    /// being final; without, until the receiver goes away. The receiver given back resolves
    /// when the task has ended, every event of it sent.
    pub fn spawn(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> (PollHandle, oneshot::Receiver<()>) {
        let refresh = Arc::new(Notify::new());
        let (done_tx, done) = oneshot::channel();
        let notify = refresh.clone();
        tokio::spawn(async move {
            run(self, interval, tx, notify, limit).await;
            let _ = done_tx.send(());
        });
        (PollHandle::from_notify(refresh), done)
    }

    /// Every query of one poll, evaluated at one instant.
    async fn poll(&self, asked_intervals: bool) -> Result<Answers, QueryError> {
        let at = crate::model::sample::Timestamp::now().0 as f64 / 1000.0;
        let q = |promql: String| async move { self.client.query(&promql, at).await };
        let sel = &self.selector;
        let cores = q(sel.cores()).await?;
        let per_core = cores.iter().map(|s| s.value).sum::<f64>() <= PER_CORE_LIMIT;
        let cpu_query = if per_core {
            sel.cpu_per_core()
        } else {
            sel.cpu_sums()
        };
        let counts = async {
            if asked_intervals {
                q(sel.scrape_count()).await.map(Some)
            } else {
                Ok::<Option<Vec<Series>>, QueryError>(None)
            }
        };
        let (up, scraped_at, cpu, gauges, counts) = tokio::join!(
            q(sel.up()),
            q(sel.scraped_at()),
            q(cpu_query),
            q(sel.gauges()),
            counts
        );
        Ok(Answers {
            at,
            up: up?,
            scraped_at: scraped_at?,
            cores,
            cpu: cpu?,
            per_core,
            gauges: gauges?,
            scrape_counts: counts?,
        })
    }
}

/// The task: polls on the interval (or at once on a refresh), sends each instance's events.
async fn run(
    src: PrometheusNodes,
    interval: Duration,
    tx: mpsc::Sender<SourceEvent>,
    refresh: Arc<Notify>,
    limit: Option<u32>,
) {
    let interval = interval.max(Duration::from_millis(10));
    let mut fleet = Fleet::new(&src.mappings, interval.as_secs_f64());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut intervals_asked: Option<Instant> = None;
    let mut polls = 0u32;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = refresh.notified() => ticker.reset(),
        }
        let ask_intervals = intervals_asked.is_none_or(|t| t.elapsed() >= INTERVALS_EVERY);
        let polled = tokio::time::timeout(src.timeout, src.poll(ask_intervals))
            .await
            .unwrap_or_else(|_| {
                Err(QueryError::Unreachable(format!(
                    "Prometheus at {} did not answer within {}",
                    src.client.server,
                    humantime::format_duration(src.timeout)
                )))
            });
        polls += 1;
        let (events, failed) = match polled {
            Ok(answers) => {
                if answers.scrape_counts.is_some() {
                    intervals_asked = Some(Instant::now());
                }
                let none_found = answers.up.is_empty() && fleet.is_empty();
                let events = fleet.absorb(answers);
                if none_found {
                    let why = format!(
                        "no instance with node_exporter's metrics matches {}",
                        src.selector
                    );
                    tracing::warn!("{why}");
                    let status = crate::model::sample::HostStatus::Error;
                    (fleet.failed(status, &why, &src.client.server), true)
                } else {
                    (events, false)
                }
            }
            Err(e) => {
                tracing::warn!(server = %src.client.server, "{e}");
                (
                    fleet.failed(e.status(), &e.to_string(), &src.client.server),
                    true,
                )
            }
        };
        for event in events {
            if tx.send(event).await.is_err() {
                return;
            }
        }
        if limit.is_some_and(|l| polls >= l || failed) {
            return;
        }
    }
}
