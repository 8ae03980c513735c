//! The direct-routing checks of the nodes that are real servers ([`crate::model::dr`]): run when
//! a node's sample or the router's comes in, kept on the node, raised as a warning alert naming
//! the VIP and the setting.

use std::collections::HashMap;

use crate::model::alert::{AlertEvent, AlertKind, Severity};
use crate::model::dr::{DrRole, dr_problems};
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
        let mut events = Vec::new();
        for i in range {
            let node = &mut self.nodes[i];
            let net = node.cur.as_ref().and_then(|s| s.net.as_ref());
            if net.is_none() && node.dr_problems.is_none() {
                continue;
            }
            let problems = dr_problems(net, roles.get(&i).map_or(&[], Vec::as_slice));
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
}
