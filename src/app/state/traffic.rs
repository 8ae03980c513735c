//! The traffic history of every virtual service and real server: a point per router sample
//! (connections per second, active and inactive connections, bytes in and out per second), kept
//! as long as the nodes' history, for the sparklines and the service detail's charts.

use std::collections::{HashMap, HashSet};

use crate::control::plan::RealKey;
use crate::model::history::Ring;
use crate::model::sample::{IpvsRates, RouterSample, ServiceKey, Timestamp};
use crate::model::snapshot::RouterStats;

/// One sample of a service or real server as its charts draw it. Single precision: thousands of
/// real servers hold a few hundred of these each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficPoint {
    pub time: Timestamp,
    pub cps: f32,
    pub active: f32,
    pub inactive: f32,
    pub in_bps: f32,
    pub out_bps: f32,
}

impl TrafficPoint {
    fn of(time: Timestamp, rates: &IpvsRates, active: u64, inactive: u64) -> TrafficPoint {
        TrafficPoint {
            time,
            cps: rates.cps as f32,
            active: active as f32,
            inactive: inactive as f32,
            in_bps: rates.in_bps as f32,
            out_bps: rates.out_bps as f32,
        }
    }
}

/// Looked up for every service and real server at every router sample: FxHash, as SipHash
/// was a noticeable part of feeding a long recording (`lbtop report`).
pub type FxMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// The histories, by service and by real server of a service.
#[derive(Debug, Clone, Default)]
pub struct TrafficHistory {
    pub services: FxMap<ServiceKey, Ring<TrafficPoint>>,
    pub reals: FxMap<(ServiceKey, RealKey), Ring<TrafficPoint>>,
}

impl TrafficHistory {
    /// Adds a point for each service and real server of `sample` that has rates (the first
    /// sample has none), and forgets those the router no longer has.
    pub(crate) fn push(&mut self, sample: &RouterSample, stats: &RouterStats, len: usize) {
        let time = sample.time;
        for (svc, st) in sample.services.iter().zip(&stats.services) {
            if let Some(r) = &st.rates {
                let point = TrafficPoint::of(time, r, st.active_conns, st.inactive_conns);
                ring(&mut self.services, svc.key, len).push(point);
            }
            for (real, rst) in svc.reals.iter().zip(&st.reals) {
                if let Some(r) = &rst.rates {
                    let (a, i) = (real.active_conns, real.inactive_conns);
                    let point = TrafficPoint::of(time, r, a.into(), i.into());
                    ring(&mut self.reals, (svc.key, RealKey::of(real)), len).push(point);
                }
            }
        }
        if self.services.len() > sample.services.len() {
            self.services
                .retain(|k, _| sample.services.iter().any(|s| s.key == *k));
        }
        let reals: usize = sample.services.iter().map(|s| s.reals.len()).sum();
        if self.reals.len() > reals {
            let present: HashSet<(ServiceKey, RealKey)> = sample
                .services
                .iter()
                .flat_map(|s| s.reals.iter().map(|r| (s.key, RealKey::of(r))))
                .collect();
            self.reals.retain(|k, _| present.contains(k));
        }
    }

    /// The history of service `key`.
    pub fn service(&self, key: &ServiceKey) -> Option<&Ring<TrafficPoint>> {
        self.services.get(key)
    }

    /// The history of real server `real` of service `key`.
    pub fn real(&self, key: ServiceKey, real: RealKey) -> Option<&Ring<TrafficPoint>> {
        self.reals.get(&(key, real))
    }
}

fn ring<K: std::hash::Hash + Eq>(
    map: &mut FxMap<K, Ring<TrafficPoint>>,
    key: K,
    len: usize,
) -> &mut Ring<TrafficPoint> {
    map.entry(key).or_insert_with(|| Ring::new(len))
}
