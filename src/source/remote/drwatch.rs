//! Which nodes read the direct-routing checks' files at their polls: those whose address is a
//! direct-routing (`Route`), tunnel or masquerading real server in the router's latest sample
//! (a masquerading one for its routes back through the router). The router's
//! samples pass through on their way to the state; each updates the nodes' switches.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use crate::model::sample::{Forward, Report, RouterSample, SourceEvent};

/// The nodes' switches, by the node's address.
#[derive(Debug, Default)]
pub(super) struct DrWatch {
    nodes: Vec<(IpAddr, Arc<AtomicBool>)>,
    /// The addresses switched on at the last update.
    on: HashSet<IpAddr>,
}

impl DrWatch {
    /// Watches a node at `addr`, switched on at once when the last sample says so.
    pub(super) fn add(&mut self, addr: IpAddr, switch: Arc<AtomicBool>) {
        switch.store(self.on.contains(&addr), Ordering::Relaxed);
        self.nodes.push((addr, switch));
    }

    /// Stops switching the checks of the node at `addr`.
    pub(super) fn remove(&mut self, addr: IpAddr) {
        self.nodes.retain(|(a, _)| *a != addr);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Switches each node on while it is a direct-routing, tunnel or masquerading real server
    /// of `sample`.
    pub(super) fn update(&mut self, sample: &RouterSample) {
        self.on = sample
            .services
            .iter()
            .flat_map(|s| &s.reals)
            .filter(|r| matches!(r.forward, Forward::Route | Forward::Tunnel | Forward::Masq))
            .map(|r| r.address)
            .collect();
        for (addr, switch) in &self.nodes {
            switch.store(self.on.contains(addr), Ordering::Relaxed);
        }
    }

    /// Takes in a source event, if it is a router sample.
    pub(super) fn see(&mut self, event: &SourceEvent) {
        if let SourceEvent::Router {
            report: Report::Sample(s),
            ..
        } = event
        {
            self.update(s);
        }
    }

    /// A channel for the router's events that updates the switches and passes them on to `out`.
    pub(super) fn tap(mut self, out: mpsc::Sender<SourceEvent>) -> mpsc::Sender<SourceEvent> {
        let (tx, mut rx) = mpsc::channel::<SourceEvent>(64);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                self.see(&ev);
                if out.send(ev).await.is_err() {
                    return;
                }
            }
        });
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sample::{
        Protocol, RealServerSample, RouterSourceKind, ServiceKey, Timestamp, VirtualServiceSample,
    };

    fn real(addr: &str, forward: Forward) -> RealServerSample {
        RealServerSample {
            address: addr.parse().expect("test value"),
            port: 80,
            forward,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            active_conns: 0,
            inactive_conns: 0,
            persistent_conns: None,
            totals: None,
            rates: None,
            tunnel: None,
        }
    }

    fn sample(reals: Vec<RealServerSample>) -> RouterSample {
        RouterSample {
            time: Timestamp(0),
            source: RouterSourceKind::Proc,
            services: vec![VirtualServiceSample {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    address: "10.0.0.100".parse().expect("test value"),
                    port: 80,
                },
                scheduler: Some("wlc".into()),
                persistent: None,
                ops: false,
                totals: None,
                rates: None,
                flags: None,
                pe_name: None,
                reals,
            }],
            global: None,
            connections: None,
            notes: Vec::new(),
            ipvs: None,
            parts: Default::default(),
            sysctl: None,
            addrs: None,
            owners: None,
            sync: None,
        }
    }

    #[test]
    fn only_real_servers_are_switched_on() {
        let mut w = DrWatch::default();
        let (a, b, c) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(true)),
            Arc::new(AtomicBool::new(false)),
        );
        w.add("10.0.1.2".parse().expect("test value"), a.clone());
        w.add("10.0.1.3".parse().expect("test value"), b.clone());
        assert!(!b.load(Ordering::Relaxed), "off until a sample says so");
        w.update(&sample(vec![
            real("10.0.1.2", Forward::Route),
            real("10.0.1.3", Forward::Local),
        ]));
        assert!(a.load(Ordering::Relaxed));
        assert!(!b.load(Ordering::Relaxed));
        // A node found later starts as the last sample says.
        w.add("10.0.1.2".parse().expect("test value"), c.clone());
        assert!(c.load(Ordering::Relaxed));
        w.update(&sample(vec![real("10.0.1.3", Forward::Tunnel)]));
        assert!(!a.load(Ordering::Relaxed) && !c.load(Ordering::Relaxed));
        assert!(b.load(Ordering::Relaxed));
        w.update(&sample(vec![real("10.0.1.2", Forward::Masq)]));
        assert!(a.load(Ordering::Relaxed) && !b.load(Ordering::Relaxed));
    }
}
