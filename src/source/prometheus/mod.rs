//! Nodes from Prometheus (`--nodes prometheus`): where a fleet already runs Prometheus with
//! node_exporter, one task asks its HTTP API for every selected instance at once — one query
//! per metric family, never one per node — and sends each instance's raw `NodeSample`, with the
//! scrape's own time, as an SSH node's would be. Derivation, alerts, history, recording and
//! replay are the same.
//!
//! - `selector`: the instances picked and the PromQL asked;
//! - `client`: HTTP(S), credentials, bounds on size and time;
//! - `api`: the API's answers and errors;
//! - `fleet`: answers to samples and statuses;
//! - `router`: the router from node_exporter's ipvs metrics (`--router 'prometheus:INSTANCE'`).
//!
//! CPU detail: per core while the selected instances have at most [`PER_CORE_LIMIT`] cores in
//! all; beyond, each node's idle time summed over its cores, with the core count
//! (`ProcStat::busy_unsplit`: the rest of its time is busy, of kinds not asked), and per core,
//! every mode, only for the nodes the screen shows ([`DetailWanted`]: the node detail, the rows
//! in view), as many as fit in [`PER_CORE_LIMIT`] cores, in one more query.

mod api;
mod client;
mod fleet;
mod router;
mod selector;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use crate::model::sample::{Report, SourceEvent};
use crate::source::poller::PollHandle;
use crate::source::spec::{NodeMapping, PrometheusSpec};

pub use selector::Selector;

use api::Series;
pub(crate) use client::AnswerBudget;
use client::{Client, QueryError};
use fleet::{Answers, Fleet};
use router::{RouterAnswers, RouterQueries, RouterView};

/// Per-core series are asked for while the selected instances have at most this many cores in
/// all (8 modes each: 32,768 series); beyond it, per-node sums of idle time.
pub const PER_CORE_LIMIT: f64 = 4096.0;

/// The most bytes of answers held at once, by every query in flight (`answer-memory`).
pub(crate) const ANSWER_MEMORY: usize = 64 << 20;

/// How often the scrape intervals (for staleness) are asked again.
const INTERVALS_EVERY: Duration = Duration::from_secs(60);

/// The nodes whose per-core lines are on screen, by name (the node detail first, then the
/// list's rows in view); the UI sets them, the Prometheus task reads them at each poll.
#[derive(Debug, Clone, Default)]
pub struct DetailWanted(Arc<std::sync::Mutex<Vec<String>>>);

impl DetailWanted {
    pub fn set(&self, names: Vec<String>) {
        if let Ok(mut wanted) = self.0.lock()
            && *wanted != names
        {
            *wanted = names;
        }
    }

    pub(crate) fn get(&self) -> Vec<String> {
        self.0.lock().map(|w| w.clone()).unwrap_or_default()
    }
}

/// The nodes Prometheus has, ready to start.
#[derive(Debug, Clone)]
pub struct PrometheusNodes {
    client: Client,
    selector: Selector,
    mappings: Vec<NodeMapping>,
    timeout: Duration,
    detail: DetailWanted,
    /// How long an instance may be missing from the answers before it is forgotten.
    forget_after: Duration,
}

impl PrometheusNodes {
    /// The source for `spec` and `selector`; `mappings` are the config's `[[node]]` entries.
    /// Errors (a bad URL, an unreadable CA file) are for the operator, as they are.
    pub(crate) fn new(
        spec: &PrometheusSpec,
        selector: Selector,
        mappings: &[NodeMapping],
        interval: Duration,
        budget: AnswerBudget,
        forget_after: Duration,
    ) -> Result<PrometheusNodes, String> {
        let timeout = poll_timeout(spec, interval);
        Ok(PrometheusNodes {
            client: Client::new(spec, timeout, budget)?,
            selector,
            mappings: mappings.to_vec(),
            timeout,
            detail: DetailWanted::default(),
            forget_after,
        })
    }

    /// How long one poll may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Where the UI says which nodes' per-core lines it shows.
    pub fn detail(&self) -> DetailWanted {
        self.detail.clone()
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

    /// Every query of one poll, evaluated at one instant. The core count decides which CPU
    /// query the fleet gets, which follows it at once, beside the other queries;
    /// `expect_large` (the last poll's answer, `None` at first) has a large fleet's idle sums
    /// asked beside the core count rather than after it.
    async fn poll(
        &self,
        asked_intervals: bool,
        expect_large: Option<bool>,
        on_screen: &[String],
    ) -> Result<Answers, QueryError> {
        let at = crate::model::sample::Timestamp::now().0 as f64 / 1000.0;
        let q = |promql: String| async move { self.client.query(&promql, at).await };
        let sel = &self.selector;
        let counts = async {
            if asked_intervals {
                q(sel.scrape_count()).await.map(Some)
            } else {
                Ok::<Option<Vec<Series>>, QueryError>(None)
            }
        };
        let cpu = async {
            let idle_sums = async {
                if expect_large == Some(false) {
                    None
                } else {
                    Some(q(sel.cpu_idle_sums()).await)
                }
            };
            let (cores, idle_sums) = tokio::join!(q(sel.cores()), idle_sums);
            let cores = cores?;
            let per_core = cores.iter().map(|s| s.value).sum::<f64>() <= PER_CORE_LIMIT;
            if per_core {
                // A small fleet: a failed idle sum asked in case it was large does not matter.
                let cpu = q(sel.cpu_per_core()).await?;
                return Ok((cores, per_core, cpu, Vec::new()));
            }
            let cpu = match idle_sums {
                Some(sums) => sums?,
                None => q(sel.cpu_idle_sums()).await?,
            };
            let detail = fleet::detail_instances(&cores, on_screen, PER_CORE_LIMIT);
            let cpu_detail = if detail.is_empty() {
                Vec::new()
            } else {
                q(sel.cpu_per_core_of(&detail)).await?
            };
            Ok::<_, QueryError>((cores, per_core, cpu, cpu_detail))
        };
        let (cpu, up, scraped_at, gauges, counts) = tokio::join!(
            cpu,
            q(sel.up()),
            q(sel.scraped_at()),
            q(sel.gauges()),
            counts
        );
        let (cores, per_core, cpu, cpu_detail) = cpu?;
        Ok(Answers {
            at,
            up: up?,
            scraped_at: scraped_at?,
            cores,
            cpu,
            per_core,
            cpu_detail,
            gauges: gauges?,
            scrape_counts: counts?,
        })
    }
}

/// How long one poll may take: the config's `timeout`, else twice the interval, 2 to 10 s.
fn poll_timeout(spec: &PrometheusSpec, interval: Duration) -> Duration {
    spec.timeout
        .unwrap_or_else(|| (interval * 2).clamp(Duration::from_secs(2), Duration::from_secs(10)))
}

/// The budget of answer bytes for `spec` (`answer-memory`), for every source of it to share.
pub(crate) fn answer_budget(spec: &PrometheusSpec) -> AnswerBudget {
    let bytes = spec
        .answer_memory
        .and_then(|b| usize::try_from(b).ok())
        .unwrap_or(ANSWER_MEMORY);
    AnswerBudget::new(bytes)
}

/// The router from Prometheus (`--router 'prometheus:INSTANCE'`), ready to start.
#[derive(Debug, Clone)]
pub struct PrometheusRouter {
    client: Client,
    queries: RouterQueries,
    instance: String,
    timeout: Duration,
}

impl PrometheusRouter {
    /// The router labelled `instance` in the Prometheus of `spec`.
    pub(crate) fn new(
        spec: &PrometheusSpec,
        instance: &str,
        interval: Duration,
        budget: AnswerBudget,
    ) -> Result<PrometheusRouter, String> {
        let timeout = poll_timeout(spec, interval);
        Ok(PrometheusRouter {
            client: Client::new(spec, timeout, budget)?,
            queries: RouterQueries::new(instance),
            instance: instance.to_string(),
            timeout,
        })
    }

    /// The router's name in the state: its instance label, printable.
    pub fn host(&self) -> String {
        RouterView::new(&self.instance, 1.0).host()
    }

    /// How long one poll may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts the task. With `limit`, it stops after that many samples or its first failure
    /// (`--once`); without, when the receiver goes away.
    pub fn spawn(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> PollHandle {
        let refresh = Arc::new(Notify::new());
        let notify = refresh.clone();
        tokio::spawn(run_router(self, interval, tx, notify, limit));
        PollHandle::from_notify(refresh)
    }

    /// Every query of one poll, at one instant, one per metric family; the scrape counts only
    /// when `asked_intervals`.
    async fn poll(&self, asked_intervals: bool) -> Result<RouterAnswers, QueryError> {
        let at = crate::model::sample::Timestamp::now().0 as f64 / 1000.0;
        let q = |promql: String| async move { self.client.query(&promql, at).await };
        let r = &self.queries;
        let (up, scraped_at, scrape_count, collector, weight, active, inactive, global) = tokio::join!(
            q(r.up()),
            q(r.scraped_at()),
            async {
                if asked_intervals {
                    q(r.scrape_count()).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            q(r.collector()),
            q(r.backend("weight")),
            q(r.backend("connections_active")),
            q(r.backend("connections_inactive")),
            q(r.global()),
        );
        Ok(RouterAnswers {
            at,
            up: up?,
            scraped_at: scraped_at?,
            scrape_count: scrape_count?,
            collector: collector?,
            weight: weight?,
            active: active?,
            inactive: inactive?,
            global: global?,
        })
    }
}

/// One poll's answers, or a status saying that `client`'s server did not answer within `timeout`.
async fn within<T>(
    client: &Client,
    timeout: Duration,
    poll: impl Future<Output = Result<T, QueryError>>,
) -> Result<T, QueryError> {
    tokio::time::timeout(timeout, poll)
        .await
        .unwrap_or_else(|_| {
            Err(QueryError::Unreachable(format!(
                "Prometheus at {} did not answer within {}",
                client.server,
                humantime::format_duration(timeout)
            )))
        })
}

/// The router's task: polls on the interval (or at once on a refresh), sends a sample for each
/// new scrape and a status for each change.
async fn run_router(
    src: PrometheusRouter,
    interval: Duration,
    tx: mpsc::Sender<SourceEvent>,
    refresh: Arc<Notify>,
    limit: Option<u32>,
) {
    let interval = interval.max(Duration::from_millis(10));
    let mut view = RouterView::new(&src.instance, interval.as_secs_f64());
    let host = view.host();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut samples = 0u32;
    let mut intervals_asked: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = refresh.notified() => ticker.reset(),
        }
        let ask_intervals = intervals_asked.is_none_or(|t| t.elapsed() >= INTERVALS_EVERY);
        let polled = within(&src.client, src.timeout, src.poll(ask_intervals)).await;
        let now = crate::model::sample::Timestamp::now().0 as f64 / 1000.0;
        let report = match polled {
            Ok(answers) => {
                if answers.scrape_count.is_some() {
                    intervals_asked = Some(Instant::now());
                }
                view.absorb(&answers)
            }
            Err(e) => {
                tracing::warn!(server = %src.client.server, "{e}");
                view.failed(e.status(), &e.to_string(), now)
            }
        };
        let Some(report) = report else { continue };
        let failed = matches!(report, Report::Status { .. });
        samples += u32::from(!failed);
        let event = SourceEvent::Router {
            host: host.clone(),
            report,
        };
        if tx.send(event).await.is_err() {
            return;
        }
        if limit.is_some_and(|l| samples >= l || failed) {
            return;
        }
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
    let mut fleet = Fleet::new(
        &src.mappings,
        interval.as_secs_f64(),
        src.forget_after.as_secs_f64(),
    );
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut intervals_asked: Option<Instant> = None;
    let mut polls = 0u32;
    let mut large = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = refresh.notified() => ticker.reset(),
        }
        let ask_intervals = intervals_asked.is_none_or(|t| t.elapsed() >= INTERVALS_EVERY);
        // The nodes on screen by their instance labels: a name shown with ` (2)` is another
        // instance's label than its own text.
        let on_screen = fleet.instances_of(&src.detail.get());
        let polled = within(
            &src.client,
            src.timeout,
            src.poll(ask_intervals, large, &on_screen),
        )
        .await;
        polls += 1;
        let (events, failed) = match polled {
            Ok(answers) => {
                large = Some(!answers.per_core);
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
