//! Every remote source, built from the source spec and the config, and started: the hosts
//! watched over SSH, and the nodes Prometheus has.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::discovery::AutoNodes;
use super::drwatch::DrWatch;
use super::nodemap::NodeMap;
use super::task::{RemoteSource, Role};
use crate::model::sample::SourceEvent;
use crate::source::poller::PollHandle;
use crate::source::prometheus::{DetailWanted, PrometheusNodes, PrometheusRouter, answer_budget};
use crate::source::spec::{NodeMapping, NodesSpec, RouterSpec, SourceSpec};
use crate::source::ssh::config::parse_jump_list;
use crate::source::ssh::hosts::{HostSpec, display_names, expand_node_list};
use crate::source::ssh::{SshContext, SshSettings, SshTuning};

/// Every remote source.
#[derive(Debug, Default)]
pub struct RemoteSet {
    pub router: Option<RemoteSource>,
    /// The second director of an HA pair watched over SSH (`--router a,b`).
    pub peer: Option<RemoteSource>,
    pub nodes: Vec<RemoteSource>,
    pub auto: Option<AutoNodes>,
    /// `--nodes prometheus`: one task for every instance.
    pub prometheus: Option<PrometheusNodes>,
    /// `--router 'prometheus:INSTANCE'`: node_exporter's ipvs metrics, read-only.
    pub prometheus_router: Option<PrometheusRouter>,
}

/// What [`RemoteSet::start`] gives back.
pub struct Started {
    /// One per host, and one for the nodes `auto` finds.
    pub handles: Vec<PollHandle>,
    /// Where a router that is not watched over SSH should send its events (through `auto`'s
    /// discovery when it is on).
    pub router_tx: mpsc::Sender<SourceEvent>,
    /// Resolves when Prometheus's task has ended (with `--once`), its events all sent.
    pub fleet_done: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Where the screen says which Prometheus nodes' per-core lines it shows.
    pub detail: Option<DetailWanted>,
}

impl RemoteSet {
    /// The SSH hosts the command line names: `--router HOST`, `--nodes LIST` or `auto`, with
    /// `-F`, `-o` and `--jump`. Errors (a bad host, an unreadable ssh config, a bad `[[node]]`
    /// entry) are for the operator, as they are.
    /// `node_map` is the config file's `[[node]]` list, for `--nodes auto`.
    pub(crate) fn from_spec(
        args: &SourceSpec,
        interval: Duration,
        node_map: &[NodeMapping],
    ) -> Result<RemoteSet, String> {
        let settings = SshSettings::load(&args.ssh).map_err(|e| e.to_string())?;
        let ctx = SshContext::new(settings, SshTuning::for_interval(interval));
        let mut set = RemoteSet::with_context(args, node_map, ctx)?;
        let need_url = |what: &str| {
            format!(
                "{what}: say where Prometheus is with --prometheus URL (or `url` under \
                 [prometheus] in the config file)"
            )
        };
        // The nodes and the router share one budget of answer bytes.
        let prometheus = args.prometheus.as_ref().map(|p| (p, answer_budget(p)));
        if let NodesSpec::Prometheus(selector) = &args.nodes {
            let (spec, budget) = prometheus
                .as_ref()
                .ok_or_else(|| need_url("--nodes prometheus"))?;
            set.prometheus = Some(PrometheusNodes::new(
                spec,
                selector.clone(),
                node_map,
                interval,
                budget.clone(),
                args.forget_after,
            )?);
        }
        if let RouterSpec::Prometheus(instance) = &args.router {
            let (spec, budget) = prometheus
                .as_ref()
                .ok_or_else(|| need_url("--router prometheus:INSTANCE"))?;
            set.prometheus_router = Some(PrometheusRouter::new(
                spec,
                instance,
                interval,
                budget.clone(),
            )?);
        }
        Ok(set)
    }

    /// As [`from_spec`](Self::from_spec) with the SSH settings and tuning given.
    pub fn with_context(
        args: &SourceSpec,
        node_map: &[NodeMapping],
        ctx: Arc<SshContext>,
    ) -> Result<RemoteSet, String> {
        let mut set = RemoteSet::default();
        let jump = match &args.jump {
            Some(j) => {
                Some(parse_jump_list(std::slice::from_ref(j)).map_err(|e| format!("--jump: {e}"))?)
            }
            None => None,
        };
        for d in args.router.directors() {
            let RouterSpec::Remote(text) = d else {
                continue;
            };
            let spec = HostSpec::parse(text).map_err(|e| format!("--router: {e}"))?;
            let resolved = ctx
                .settings
                .resolve(&spec, None)
                .map_err(|e| format!("--router: {e}"))?;
            let source = RemoteSource::new(
                text.clone(),
                text.clone(),
                resolved,
                Role::Router(args.router_sudo),
                ctx.clone(),
            )
            .with_budget(args.router_budget)
            .with_agent(args.router_agent.clone());
            if set.router.is_none() {
                set.router = Some(source);
            } else {
                set.peer = Some(source);
            }
        }
        match &args.nodes {
            NodesSpec::List(entries) => {
                let hosts = expand_node_list(entries, None).map_err(|e| format!("--nodes: {e}"))?;
                for (spec, name) in hosts.iter().zip(display_names(&hosts)) {
                    let resolved = ctx
                        .settings
                        .resolve(spec, jump.as_deref())
                        .map_err(|e| format!("--nodes: {e}"))?;
                    let host = resolved.hostname.clone();
                    set.nodes.push(RemoteSource::new(
                        name,
                        host,
                        resolved,
                        Role::Node,
                        ctx.clone(),
                    ));
                }
            }
            NodesSpec::Auto => {
                if args.router == RouterSpec::None {
                    return Err(
                        "--nodes auto finds the nodes on the router; name one with --router".into(),
                    );
                }
                set.auto = Some(AutoNodes {
                    map: NodeMap::new(node_map)?,
                    jump,
                    ctx: ctx.clone(),
                    forget_after: args.forget_after,
                });
            }
            // Built by `from_spec`, which knows the interval.
            NodesSpec::Local | NodesSpec::None | NodesSpec::Prometheus(_) => {}
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.router.is_none()
            && self.peer.is_none()
            && self.prometheus_router.is_none()
            && self.nodes.is_empty()
            && self.auto.is_none()
            && self.prometheus.is_none()
    }

    /// The router's name, when it is watched over SSH or read from Prometheus.
    pub(crate) fn router_host(&self) -> Option<String> {
        self.router
            .as_ref()
            .map(|r| r.host.clone())
            .or_else(|| self.prometheus_router.as_ref().map(PrometheusRouter::host))
    }

    /// The nodes known before anything runs: `(name, host)`.
    pub(crate) fn node_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.host.as_str()))
    }

    /// Starts every task; see [`RemoteSource::spawn`] for `limit`.
    pub fn start(
        self,
        interval: Duration,
        tx: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
    ) -> Started {
        let mut handles = Vec::new();
        let mut dr = DrWatch::default();
        for n in &self.nodes {
            if let Ok(addr) = n.host.parse() {
                dr.add(addr, n.dr.clone());
            }
        }
        let router_tx = match self.auto {
            Some(auto) => {
                let group = Arc::new(Notify::new());
                handles.push(PollHandle::from_notify(group.clone()));
                auto.tap(interval, tx.clone(), limit, group)
            }
            None if !dr.is_empty() => dr.tap(tx.clone()),
            None => tx.clone(),
        };
        for r in self.router.into_iter().chain(self.peer) {
            handles.push(r.spawn(interval, router_tx.clone(), limit));
        }
        if let Some(r) = self.prometheus_router {
            handles.push(r.spawn(interval, router_tx.clone(), limit));
        }
        for n in self.nodes {
            handles.push(n.spawn(interval, tx.clone(), limit));
        }
        let detail = self.prometheus.as_ref().map(PrometheusNodes::detail);
        let fleet_done = self.prometheus.map(|p| {
            let (handle, done) = p.spawn(interval, tx.clone(), limit);
            handles.push(handle);
            done
        });
        Started {
            handles,
            router_tx,
            fleet_done,
            detail,
        }
    }

    /// How long `--once` waits at most: every host has its own deadlines well inside this.
    pub(crate) fn once_deadline(&self, interval: Duration, rounds: u32) -> Duration {
        let t = self
            .router
            .as_ref()
            .or(self.nodes.first())
            .map(|s| s.ctx.tuning)
            .or_else(|| self.auto.as_ref().map(|a| a.ctx.tuning))
            .unwrap_or_default();
        // Connecting, starting the program (its own deadline), then the polls.
        let one =
            t.connect_timeout + t.router_poll_timeout + (interval + t.router_poll_timeout) * rounds;
        let hops = if self.auto.is_some() { 2 } else { 1 };
        let prometheus = self
            .prometheus
            .as_ref()
            .map(PrometheusNodes::timeout)
            .max(
                self.prometheus_router
                    .as_ref()
                    .map(PrometheusRouter::timeout),
            )
            .map_or(Duration::ZERO, |t| (interval + t) * rounds);
        (one * hops).max(prometheus) + Duration::from_secs(2)
    }
}
