//! Prometheus's query API over HTTP(S) (reqwest on rustls with ring): one instant query per
//! call, every answer bounded in size, the whole poll bounded in time by the task. The bytes of
//! answers held at once are bounded too, by a budget every query in flight shares
//! ([`AnswerBudget`]): the queries of a poll run together, and the router's with the nodes'.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use reqwest::{StatusCode, Url};

use crate::model::sample::HostStatus;
use crate::model::text::printable;
use crate::source::spec::{PrometheusAuth, PrometheusSpec};

use super::api::{self, ApiError, Series};

/// The largest CA file read for `--prometheus-ca`.
const CA_LIMIT: u64 = 1 << 20;

/// Why a query got no series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum QueryError {
    /// No connection, or no answer in time.
    #[error("{0}")]
    Unreachable(String),
    /// 401 or 403: the credentials are missing or wrong.
    #[error("{0}")]
    Auth(String),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "Prometheus's answers need more than the {} lbtop holds at once (`answer-memory` \
         under [prometheus]): narrow the selector, or raise it",
        bytesize::ByteSize::b(*budget as u64).display().iec()
    )]
    TooLarge { budget: usize },
}

/// The bytes of answers every query in flight may hold together: a query takes its share as
/// its answer arrives, and gives it back when the answer has been read into series.
#[derive(Debug, Clone)]
pub(crate) struct AnswerBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

impl AnswerBudget {
    pub(crate) fn new(total: usize) -> AnswerBudget {
        let total = total.clamp(1, u32::MAX as usize);
        AnswerBudget {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// `n` more bytes for `held`, or `None` when the budget has not that many left.
    fn take(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Option<()> {
        let n = u32::try_from(n).ok()?;
        let more = self.bytes.clone().try_acquire_many_owned(n).ok()?;
        Self::add(held, more);
        Some(())
    }

    /// `n` more bytes for `held`, waiting up to [`BUDGET_WAIT`] for other queries in flight to
    /// give theirs back; `None` when `held` and `n` together exceed the whole budget, or when
    /// the bytes did not come free in time (two large answers growing at once: the one that
    /// gives up first lets the other finish).
    async fn take_waiting(&self, held: &mut Option<OwnedSemaphorePermit>, n: usize) -> Option<()> {
        if self.take(held, n).is_some() {
            return Some(());
        }
        let holding = held.as_ref().map_or(0, |h| h.num_permits());
        if holding.saturating_add(n) > self.total {
            return None;
        }
        let n = u32::try_from(n).ok()?;
        let more = tokio::time::timeout(BUDGET_WAIT, self.bytes.clone().acquire_many_owned(n))
            .await
            .ok()?
            .ok()?;
        Self::add(held, more);
        Some(())
    }

    fn add(held: &mut Option<OwnedSemaphorePermit>, more: OwnedSemaphorePermit) {
        match held {
            Some(h) => h.merge(more),
            None => *held = Some(more),
        }
    }
}

/// How long a query waits for the bytes of its answer while other answers hold them.
const BUDGET_WAIT: Duration = Duration::from_secs(1);

impl QueryError {
    /// The status a node shows for this failure.
    pub(crate) fn status(&self) -> HostStatus {
        match self {
            QueryError::Unreachable(_) => HostStatus::Unreachable,
            QueryError::Auth(_) => HostStatus::AuthFailed,
            QueryError::Api(_) | QueryError::TooLarge { .. } => HostStatus::Error,
        }
    }
}

/// A client of one Prometheus server.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    query_url: Url,
    /// `host:port` of the server, for a status before any instance is known.
    pub(crate) server: String,
    auth: PrometheusAuth,
    budget: AnswerBudget,
}

impl Client {
    /// A client for `spec`, each request within `timeout`, the answers of every query in flight
    /// within `budget`.
    pub(crate) fn new(
        spec: &PrometheusSpec,
        timeout: Duration,
        budget: AnswerBudget,
    ) -> Result<Client, String> {
        let base = parse_url(&spec.url)?;
        let query_url = base
            .join("api/v1/query")
            .map_err(|e| format!("--prometheus {:?}: {e}", spec.url))?;
        // ring, the provider russh already uses; a provider installed before stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lbtop/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &spec.ca {
            let pem = crate::fsutil::read_bytes(path, CA_LIMIT)
                .map_err(|e| format!("--prometheus-ca: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("--prometheus-ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "--prometheus-ca {}: no PEM certificate in it",
                    path.display()
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("Prometheus client: {}", chain(&e)))?;
        let server = match (base.host_str(), base.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => base.to_string(),
        };
        Ok(Client {
            http,
            query_url,
            server,
            auth: spec.auth.clone(),
            budget,
        })
    }

    /// The series of `promql` evaluated at `time` (seconds since the epoch).
    pub(crate) async fn query(&self, promql: &str, time: f64) -> Result<Vec<Series>, QueryError> {
        let mut url = self.query_url.clone();
        url.query_pairs_mut()
            .append_pair("query", promql)
            .append_pair("time", &format!("{time:.3}"));
        let mut request = self.http.get(url);
        request = match &self.auth {
            PrometheusAuth::None => request,
            PrometheusAuth::Basic { user, password } => request.basic_auth(user, Some(password)),
            PrometheusAuth::Bearer(token) => request.bearer_auth(token),
        };
        let mut response = request.send().await.map_err(|e| self.failure(&e))?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(QueryError::Auth(format!(
                "Prometheus at {} refused the credentials (HTTP {})",
                self.server,
                status.as_u16()
            )));
        }
        let too_large = || QueryError::TooLarge {
            budget: self.budget.total,
        };
        // The share is taken before the bytes are: for the whole answer when its length is
        // known (the buffer is made that size at once), else as the buffer grows.
        let mut held = None;
        let mut held_bytes = 0usize;
        let mut body = Vec::new();
        if let Some(n) = response.content_length() {
            let n = usize::try_from(n).map_err(|_| too_large())?;
            self.budget
                .take_waiting(&mut held, n)
                .await
                .ok_or_else(too_large)?;
            held_bytes = n;
            body.reserve_exact(n);
        }
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(&e))? {
            let len = body.len() + chunk.len();
            if len > held_bytes {
                // Room to grow into, or near the end of the budget just what is needed.
                let roomy = len.max(held_bytes * 2).max(64 << 10);
                let cap = if self.budget.take(&mut held, roomy - held_bytes).is_some() {
                    roomy
                } else {
                    self.budget
                        .take_waiting(&mut held, len - held_bytes)
                        .await
                        .ok_or_else(too_large)?;
                    len
                };
                held_bytes = cap;
                body.reserve_exact(cap - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        // Parsed off the runtime's thread: a large answer takes seconds to parse, which would
        // stall the screen and every other source, and outlast the poll's deadline (a blocking
        // parse cannot be cut off; awaiting it can). The budget is held until the parse is
        // done, even when the poll gave up waiting for it.
        let code = status.as_u16();
        let parsed = tokio::task::spawn_blocking(move || {
            let series = api::parse_vector(code, &body);
            drop(body);
            drop(held);
            series
        })
        .await
        .map_err(|e| {
            QueryError::Unreachable(format!(
                "Prometheus at {}: reading its answer failed ({e})",
                self.server
            ))
        })?;
        Ok(parsed?)
    }

    fn failure(&self, e: &reqwest::Error) -> QueryError {
        if e.is_timeout() {
            QueryError::Unreachable(format!(
                "Prometheus at {} did not answer in time",
                self.server
            ))
        } else {
            QueryError::Unreachable(format!("Prometheus at {}: {}", self.server, chain(e)))
        }
    }
}

/// `http://` or `https://`, with a host; a path is a prefix the API is under.
fn parse_url(text: &str) -> Result<Url, String> {
    let shown = printable(text, 200);
    let mut url = Url::parse(text.trim())
        .map_err(|e| format!("--prometheus {shown:?}: {e} (write e.g. http://prometheus:9090)"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "--prometheus {shown:?}: use an http:// or https:// URL, e.g. http://prometheus:9090"
        ));
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(format!(
            "--prometheus {shown:?}: no query, fragment or credentials in the URL; \
             credentials go in the config file or the environment"
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// An error and its causes, the innermost last: reqwest's own message names only the URL.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    // The first part repeats the URL with its query; the causes say what went wrong.
    let causes = if parts.len() > 1 {
        &parts[1..]
    } else {
        &parts[..]
    };
    printable(&causes.join(": "), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back_when_an_answer_is_read() {
        let budget = AnswerBudget::new(100);
        let mut first = None;
        assert!(budget.take(&mut first, 60).is_some());
        assert!(budget.take(&mut first, 30).is_some(), "grows in place");
        let mut second = None;
        assert!(budget.take(&mut second, 20).is_none(), "90 of 100 held");
        assert!(budget.take(&mut second, 10).is_some());
        drop(first);
        assert!(budget.take(&mut second, 90).is_some(), "given back");
        let small = AnswerBudget::new(10);
        let mut huge = None;
        assert!(small.take(&mut huge, usize::MAX).is_none());
    }

    #[tokio::test]
    async fn a_query_waits_for_the_bytes_a_sibling_gives_back_and_not_for_more_than_all() {
        let budget = AnswerBudget::new(100);
        let mut big = None;
        assert!(budget.take(&mut big, 80).is_some());
        let waiter = {
            let budget = budget.clone();
            tokio::spawn(async move {
                let mut held = None;
                budget.take_waiting(&mut held, 50).await.is_some()
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(big);
        assert!(waiter.await.expect("join"), "had the bytes once given back");
        // More than the whole budget is refused at once; bytes that never come free, in time.
        let mut held = None;
        assert!(budget.take_waiting(&mut held, 101).await.is_none());
        assert!(budget.take(&mut held, 90).is_some());
        let mut other = None;
        let started = std::time::Instant::now();
        assert!(budget.take_waiting(&mut other, 20).await.is_none());
        assert!(started.elapsed() >= BUDGET_WAIT);
    }

    #[test]
    fn urls_are_http_or_https_with_a_host_and_the_api_under_their_path() {
        let u = parse_url("http://prom:9090").expect("url");
        assert_eq!(
            u.join("api/v1/query").expect("join").as_str(),
            "http://prom:9090/api/v1/query"
        );
        let p = parse_url("https://example.net/prometheus").expect("prefix");
        assert_eq!(
            p.join("api/v1/query").expect("join").as_str(),
            "https://example.net/prometheus/api/v1/query"
        );
        for bad in [
            "prom:9090",
            "ftp://prom",
            "http://user:pw@prom:9090",
            "http://p/?a=1",
            "nonsense",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
        assert!(
            parse_url("http://user:pw@prom")
                .expect_err("creds")
                .contains("config file")
        );
    }
}
