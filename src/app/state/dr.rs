//! The direct-routing checks of the nodes that are real servers ([`crate::model::dr`]): run when
//! a node's sample or the router's comes in, kept on the node, raised as a warning alert naming
//! the VIP and the setting.

use std::collections::HashMap;

use crate::control::plan::WeightChange;
use crate::model::alert::{AlertEvent, AlertKind, Severity};
use crate::model::dr::{DrRole, dr_problems, router_problems};
use crate::model::sample::{ServiceKey, Timestamp};

use super::State;

impl State {
    /// Checks node `only` (or every node) against the router's latest sample, after a sample
    /// that came in at `time`.
    pub(super) fn check_direct_routing(
        &mut self,
        only: Option<usize>,
        time: Timestamp,
    ) -> Vec<AlertEvent> {
        // One node without addresses and without problems shown has nothing to check: skip
        // gathering every real server's role (a node sample each, 50 × 200 look-ups a second).
        if let Some(i) = only
            && self.nodes.get(i).is_none_or(|n| {
                n.cur.as_ref().and_then(|s| s.net.as_ref()).is_none() && n.dr_problems.is_none()
            })
        {
            return Vec::new();
        }
        let mut roles: HashMap<usize, Vec<DrRole>> = HashMap::new();
        if let Some(sample) = self.router.as_ref().and_then(|r| r.cur.as_ref()) {
            for svc in &sample.services {
                // A firewall-mark service has no one VIP to look for.
                let ServiceKey::Addr { address: vip, .. } = svc.key else {
                    continue;
                };
                for r in &svc.reals {
                    let Some(&i) = self.node_by_addr.get(&r.address) else {
                        continue;
                    };
                    if only.is_none_or(|o| o == i) {
                        roles.entry(i).or_default().push(DrRole {
                            vip,
                            forward: r.forward,
                            real: r.address,
                        });
                    }
                }
            }
        }
        let range = match only {
            Some(i) => i..i.saturating_add(1).min(self.nodes.len()),
            None => 0..self.nodes.len(),
        };
        let mut events = match only {
            None => self.check_router(time),
            Some(_) => Vec::new(),
        };
        let router_addrs = self
            .router
            .as_ref()
            .and_then(|r| r.cur.as_ref())
            .and_then(|s| s.addrs.clone());
        for i in range {
            let node = &mut self.nodes[i];
            let net = node.cur.as_ref().and_then(|s| s.net.as_ref());
            if net.is_none() && node.dr_problems.is_none() {
                continue;
            }
            let problems = dr_problems(
                net,
                roles.get(&i).map_or(&[], Vec::as_slice),
                router_addrs.as_ref(),
            );
            let level = problems
                .as_ref()
                .filter(|p| !p.is_empty())
                .map(|p| (Severity::Warning, p.join("; ")));
            node.dr_problems = problems;
            let name = node.name.clone();
            events.extend(
                self.alerts
                    .set(time, &name, AlertKind::DirectRouting, level),
            );
        }
        events
    }

    /// The router's own set-up: a masquerading service needs `ip_forward` on, and the router
    /// holds every VIP.
    fn check_router(&mut self, time: Timestamp) -> Vec<AlertEvent> {
        let Some(router) = self.router.as_mut() else {
            return Vec::new();
        };
        let Some(sample) = router.cur.as_ref() else {
            return Vec::new();
        };
        // Of a pair, the backup not holding the VIPs is normal: the pair says when neither or
        // both do.
        let pair = self.pair.as_ref();
        router.problems = router_problems(sample, pair.is_none());
        if let Some(p) = pair {
            router.problems.extend(p.problems());
        }
        let level =
            (!router.problems.is_empty()).then(|| (Severity::Warning, router.problems.join("; ")));
        self.alerts
            .set(time, "router", AlertKind::DirectRouting, level)
            .into_iter()
            .collect()
    }

    /// What the confirmation of `change` should warn about: a drain of a persistent service
    /// while `expire_quiescent_template` is 0 on the router; a program on the router that
    /// manages the table (keepalived, ldirectord, pulse) and may restore the weight.
    pub(super) fn change_warnings(&self, change: &WeightChange) -> Vec<String> {
        let Some(sample) = self.router.as_ref().and_then(|r| r.cur.as_ref()) else {
            return Vec::new();
        };
        let backup = self.backup_weight_note(change);
        let persistent = sample
            .services
            .iter()
            .any(|s| s.key == change.service && s.persistent.is_some());
        let quiescent = sample.sysctl.and_then(|s| s.expire_quiescent_template);
        let mut out = Vec::new();
        if change.to == 0 && persistent && quiescent == Some(0) {
            out.push(
                "expire_quiescent_template is 0 on the router: persistence templates keep \
                 sending returning clients to the drained server until they expire"
                    .to_string(),
            );
        }
        if let Some(owners) = sample.owners.as_ref().filter(|o| !o.is_empty()) {
            out.push(format!(
                "{} manages this table on the router and may put the weight back (as \
                 keepalived does on a reload or a health check): change it in its \
                 configuration too",
                owners.join(" and ")
            ));
        }
        out.extend(backup);
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::app::{State, StateOptions};
    use crate::control::plan::{ActionKind, RealKey, WeightChange};
    use crate::model::alert::AlertKind;
    use crate::model::sample::{
        Forward, Persistence, Protocol, RealServerSample, Report, RouterSample, RouterSourceKind,
        RouterSysctl, ServiceKey, SourceEvent, Timestamp, VirtualServiceSample,
    };

    fn service(port: u16, forward: Forward, persistent: bool) -> VirtualServiceSample {
        VirtualServiceSample {
            key: ServiceKey::Addr {
                protocol: Protocol::Tcp,
                address: "10.0.0.100".parse().expect("vip"),
                port,
            },
            scheduler: Some("wlc".into()),
            persistent: persistent.then(|| Persistence {
                timeout_s: 300,
                netmask: "255.255.255.255".into(),
            }),
            ops: false,
            totals: None,
            rates: None,
            flags: None,
            pe_name: None,
            reals: vec![RealServerSample {
                address: "10.0.1.2".parse().expect("rip"),
                port,
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
            }],
        }
    }

    fn state(ip_forward: u32, quiescent: u32) -> State {
        state_owned(ip_forward, quiescent, None)
    }

    fn state_owned(ip_forward: u32, quiescent: u32, owners: Option<Vec<String>>) -> State {
        let mut state = State::new(StateOptions::default());
        state.ingest(SourceEvent::Router {
            host: "lb".into(),
            report: Report::Sample(RouterSample {
                time: Timestamp(1000),
                source: RouterSourceKind::Proc,
                services: vec![
                    service(80, Forward::Route, true),
                    service(8080, Forward::Masq, false),
                ],
                global: None,
                connections: None,
                notes: Vec::new(),
                ipvs: None,
                parts: Default::default(),
                sysctl: Some(RouterSysctl {
                    ip_forward: Some(ip_forward),
                    expire_nodest_conn: Some(0),
                    expire_quiescent_template: Some(quiescent),
                }),
                addrs: None,
                owners,
                sync: None,
            }),
        });
        state
    }

    fn drain(port: u16) -> WeightChange {
        WeightChange {
            kind: ActionKind::Drain,
            service: service(port, Forward::Route, false).key,
            real: RealKey {
                address: "10.0.1.2".parse().expect("rip"),
                port,
            },
            from: 1,
            to: 0,
        }
    }

    #[test]
    fn ip_forward_off_with_a_masquerading_service_alerts_on_the_router() {
        let on = |s: &State| {
            s.alerts()
                .level("router", AlertKind::DirectRouting)
                .is_some()
        };
        assert!(on(&state(0, 1)));
        assert!(!on(&state(1, 1)));
    }

    #[test]
    fn a_drain_of_a_persistent_service_warns_of_quiescent_templates() {
        let s = state(1, 0);
        let w = s.change_warnings(&drain(80));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("expire_quiescent_template is 0"), "{w:?}");
        assert!(s.change_warnings(&drain(8080)).is_empty(), "not persistent");
        assert!(state(1, 1).change_warnings(&drain(80)).is_empty());
    }

    #[test]
    fn a_change_on_a_table_keepalived_manages_warns_that_it_may_put_the_weight_back() {
        let s = state_owned(1, 1, Some(vec!["keepalived".into()]));
        let w = s.change_warnings(&drain(8080));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("keepalived manages this table") && w[0].contains("weight back"),
            "{w:?}"
        );
        assert!(
            state_owned(1, 1, Some(vec![]))
                .change_warnings(&drain(8080))
                .is_empty()
        );
    }
}
