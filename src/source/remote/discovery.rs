//! `--nodes auto`: the router's real servers become nodes, each watched by a task of its own.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use super::drwatch::DrWatch;
use super::nodemap::NodeMap;
use super::task::{RemoteSource, Role};
use crate::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use crate::source::poller::PollHandle;
use crate::source::ssh::{HostSpec, SshContext, SshError};

/// The most real servers `--nodes auto` watches, each over its own SSH connection. A router
/// whose table names more (or one that makes addresses up) has the rest counted on an entry
/// named `auto`: a fleet that size is for `--nodes prometheus`.
pub(crate) const MAX_AUTO_NODES: usize = 512;

/// `--nodes auto`: nodes are the router's real servers, each mapped to an SSH host by a
/// `[[node]]` entry, else by an ssh_config alias whose HostName is the address, else the address.
#[derive(Debug, Clone)]
pub struct AutoNodes {
    pub map: NodeMap,
    pub jump: Option<Vec<HostSpec>>,
    pub ctx: Arc<SshContext>,
}

impl AutoNodes {
    /// The source for a real server's address, or the reason it cannot be watched.
    pub(crate) fn source_for(&self, addr: IpAddr) -> Result<RemoteSource, Box<(String, SshError)>> {
        let spec = match self.map.lookup(addr) {
            Some(s) => s.clone(),
            None => HostSpec {
                user: None,
                host: self
                    .ctx
                    .settings
                    .alias_for_address(addr)
                    .unwrap_or_else(|| addr.to_string()),
                port: None,
            },
        };
        let name = spec.host.clone();
        let resolved = self
            .ctx
            .settings
            .resolve(&spec, self.jump.as_deref())
            .map_err(|e| Box::new((name.clone(), SshError::from(e))))?;
        Ok(RemoteSource::new(
            name,
            addr.to_string(),
            resolved,
            Role::Node,
            self.ctx.clone(),
        ))
    }

    /// A channel for the router's events: they pass on to `out`, and each real server not seen
    /// before becomes a node task (announced as connecting first). Refreshing `group` refreshes
    /// every node found.
    pub(super) fn tap(
        self,
        interval: Duration,
        out: mpsc::Sender<SourceEvent>,
        limit: Option<u32>,
        group: Arc<Notify>,
    ) -> mpsc::Sender<SourceEvent> {
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(64);
        tokio::spawn(async move {
            let mut seen: HashSet<IpAddr> = HashSet::new();
            let mut names: HashSet<String> = HashSet::new();
            let mut children: Vec<PollHandle> = Vec::new();
            let mut dr = DrWatch::default();
            // Real servers past the cap, as last said.
            let mut over_said = 0usize;
            loop {
                tokio::select! {
                    ev = rx.recv() => {
                        let Some(ev) = ev else { break };
                        dr.see(&ev);
                        if let SourceEvent::Router { report: Report::Sample(s), .. } = &ev {
                            // Each address once, in order: the cap counts addresses.
                            let addrs: std::collections::BTreeSet<IpAddr> = s
                                .services
                                .iter()
                                .flat_map(|svc| svc.reals.iter().map(|r| r.address))
                                .collect();
                            let mut over = 0usize;
                            for addr in addrs {
                                if seen.contains(&addr) {
                                    continue;
                                }
                                if seen.len() >= MAX_AUTO_NODES {
                                    over += 1;
                                    continue;
                                }
                                seen.insert(addr);
                                let event = match self.source_for(addr) {
                                    Ok(src) if names.insert(src.name.clone()) => {
                                        tracing::info!(node = %src.name, %addr, "found on the router");
                                        let announce = src.event_status(HostStatus::Connecting, None);
                                        if out.send(announce).await.is_err() {
                                            return;
                                        }
                                        dr.add(addr, src.dr.clone());
                                        children.push(src.spawn(interval, out.clone(), limit));
                                        continue;
                                    }
                                    Ok(_) => continue,
                                    Err(failed) => {
                                        let (name, e) = *failed;
                                        SourceEvent::Node {
                                        name,
                                        host: addr.to_string(),
                                        report: Report::Status {
                                            time: Timestamp::now(),
                                            status: e.status(),
                                            message: Some(e.to_string()),
                                        },
                                    }
                                    }
                                };
                                if out.send(event).await.is_err() {
                                    return;
                                }
                            }
                            if over != over_said {
                                over_said = over;
                                if out.send(over_cap(over)).await.is_err() {
                                    return;
                                }
                            }
                        }
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                    () = group.notified() => children.iter().for_each(PollHandle::refresh),
                }
            }
        });
        tx
    }
}

/// What the entry named `auto` says about real servers past [`MAX_AUTO_NODES`].
fn over_cap(over: usize) -> SourceEvent {
    let (status, message) = if over == 0 {
        (
            HostStatus::Ok,
            format!("every real server is watched (at most {MAX_AUTO_NODES})"),
        )
    } else {
        (
            HostStatus::Error,
            format!(
                "{over} more real servers than the {MAX_AUTO_NODES} watched over SSH are not \
                 watched: a fleet this size is for --nodes prometheus"
            ),
        )
    };
    SourceEvent::Node {
        name: "auto".into(),
        host: "auto".into(),
        report: Report::Status {
            time: Timestamp::now(),
            status,
            message: Some(message),
        },
    }
}
