//! `--nodes auto`: the router's real servers become nodes, each watched by a task of its own.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// How long a real server may be missing from the router's table before its node is
    /// stopped and forgotten.
    pub forget_after: Duration,
}

/// A real server found on the router.
struct Found {
    /// The node it shows as.
    name: String,
    /// Its task, unless it could not be watched (or another address took the name).
    task: Option<(PollHandle, tokio::task::JoinHandle<()>)>,
    /// When the router's table last listed it.
    listed: Instant,
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
            let mut found: HashMap<IpAddr, Found> = HashMap::new();
            let mut names: HashSet<String> = HashSet::new();
            let mut dr = DrWatch::default();
            // Real servers past the cap, as last said.
            let mut over_said = 0usize;
            loop {
                tokio::select! {
                    ev = rx.recv() => {
                        let Some(ev) = ev else { break };
                        dr.see(&ev);
                        if let SourceEvent::Router { report: Report::Sample(s), .. } = &ev {
                            let now = Instant::now();
                            // Each address once, in order: the cap counts addresses.
                            let addrs: std::collections::BTreeSet<IpAddr> = s
                                .services
                                .iter()
                                .flat_map(|svc| svc.reals.iter().map(|r| r.address))
                                .collect();
                            let mut over = 0usize;
                            for addr in addrs {
                                if let Some(f) = found.get_mut(&addr) {
                                    f.listed = now;
                                    continue;
                                }
                                if found.len() >= MAX_AUTO_NODES {
                                    over += 1;
                                    continue;
                                }
                                let (name, event) = match self.source_for(addr) {
                                    Ok(src) if names.insert(src.name.clone()) => {
                                        tracing::info!(node = %src.name, %addr, "found on the router");
                                        // Announced before its task starts, so that its first
                                        // status comes after.
                                        let announce = src.event_status(HostStatus::Connecting, None);
                                        if out.send(announce).await.is_err() {
                                            return;
                                        }
                                        let name = src.name.clone();
                                        dr.add(addr, src.dr.clone());
                                        let task = src.spawn_joinable(interval, out.clone(), limit);
                                        found.insert(addr, Found { name, task: Some(task), listed: now });
                                        continue;
                                    }
                                    // Another address took the name: that node is this one too.
                                    Ok(src) => {
                                        found.insert(addr, Found { name: src.name, task: None, listed: now });
                                        continue;
                                    }
                                    Err(failed) => {
                                        let (name, e) = *failed;
                                        let event = SourceEvent::Node {
                                            name: name.clone(),
                                            host: addr.to_string(),
                                            report: Report::Status {
                                                time: Timestamp::now(),
                                                status: e.status(),
                                                message: Some(e.to_string()),
                                            },
                                        };
                                        (name, event)
                                    }
                                };
                                // Said unwatchable, once: found, without a task.
                                found.insert(addr, Found { name, task: None, listed: now });
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
                            if limit.is_none() {
                                for event in forget(&mut found, &mut names, &mut dr, now, self.forget_after).await {
                                    if out.send(event).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                        if out.send(ev).await.is_err() {
                            return;
                        }
                    }
                    () = group.notified() => {
                        found.values().filter_map(|f| f.task.as_ref()).for_each(|(p, _)| p.refresh());
                    }
                }
            }
        });
        tx
    }
}

/// Stops the nodes of the real servers the router's table has not listed for `after` (as of
/// `now`), and says each is gone once its task has ended (so no sample of it can follow); their
/// names and addresses are free again, so a real server that comes back is found afresh. A node
/// that another address still listed shows as (a `[[node]]` entry mapping two addresses to one
/// host) stays.
async fn forget(
    found: &mut HashMap<IpAddr, Found>,
    names: &mut HashSet<String>,
    dr: &mut DrWatch,
    now: Instant,
    after: Duration,
) -> Vec<SourceEvent> {
    let expired = |f: &Found| now.duration_since(f.listed) >= after;
    let listed: HashSet<&str> = found
        .values()
        .filter(|f| !expired(f))
        .map(|f| f.name.as_str())
        .collect();
    let gone: Vec<IpAddr> = found
        .iter()
        .filter(|(_, f)| expired(f) && !listed.contains(f.name.as_str()))
        .map(|(a, _)| *a)
        .collect();
    let mut said: HashSet<String> = HashSet::new();
    let mut events = Vec::new();
    for addr in gone {
        let Some(f) = found.remove(&addr) else {
            continue;
        };
        if let Some((_, join)) = f.task {
            join.abort();
            // Ended, by the abort or before it: nothing of it is sent after this.
            let _ = join.await;
            names.remove(&f.name);
            dr.remove(addr);
            tracing::info!(node = %f.name, %addr, "gone from the router's table: no longer watched");
        }
        if said.insert(f.name.clone()) {
            events.push(gone_event(&f.name, addr, after));
        }
    }
    events
}

fn gone_event(name: &str, addr: IpAddr, after: Duration) -> SourceEvent {
    SourceEvent::Node {
        name: name.to_string(),
        host: addr.to_string(),
        report: Report::Status {
            time: Timestamp::now(),
            status: HostStatus::Gone,
            message: Some(format!(
                "not in the router's table for {}: no longer watched",
                humantime::format_duration(after)
            )),
        },
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
