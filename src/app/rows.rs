//! The rows the services and nodes panes show, in order: pure functions of the data and the view
//! state (sort, reverse, filter, collapsed services), with the comparators and the filter match.

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::model::sample::{RealServerSample, VirtualServiceSample};
use crate::model::snapshot::{NodeStats, RealStats, ServiceStats};

use super::state::{NodeEntry, NodeSort, RouterEntry, ServiceRow, ServiceSort, UiState};

/// Whether `text` matches the filter: empty matches everything; otherwise a case-insensitive
/// substring.
pub(crate) fn filter_matches(filter: &str, text: &str) -> bool {
    filter.is_empty() || text.to_lowercase().contains(&filter.to_lowercase())
}

/// The services tree as shown: filtered, sorted, with collapsed services' reals hidden.
/// `node` is the watched node at a real server's address, so that the filter finds real servers
/// by their node's name too, and the load-per-core sort orders them by their node's load.
pub fn service_rows<'a>(
    router: Option<&RouterEntry>,
    ui: &UiState,
    node: impl Fn(IpAddr) -> Option<&'a NodeEntry>,
) -> Vec<ServiceRow> {
    let Some((cur, stats)) = router.and_then(|r| r.cur.as_ref().map(|c| (c, &r.stats))) else {
        return Vec::new();
    };
    let services = &cur.services;
    let node_load = |addr: IpAddr| {
        node(addr)
            .and_then(|n| n.stats.as_ref())
            .map_or(-1.0, |s| s.load_per_core)
    };
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by(|&a, &b| {
        directed(
            compare_services(
                ui.service_sort,
                (&services[a], stats.services.get(a)),
                (&services[b], stats.services.get(b)),
                &node_load,
            ),
            ui.reverse,
        )
    });
    let mut rows = Vec::new();
    for s in order {
        let svc = &services[s];
        let svc_match = filter_matches(
            &ui.filter,
            &format!("{} {}", svc.key, svc.scheduler.as_deref().unwrap_or("")),
        );
        let mut reals: Vec<usize> = (0..svc.reals.len())
            .filter(|&r| svc_match || real_matches(&ui.filter, &svc.reals[r], &node))
            .collect();
        if !svc_match && reals.is_empty() {
            continue;
        }
        rows.push(ServiceRow::Service(s));
        if ui.collapsed.contains(&svc.key) {
            continue;
        }
        let real_stats = |r: usize| stats.services.get(s).and_then(|st| st.reals.get(r));
        reals.sort_by(|&a, &b| {
            directed(
                compare_reals(
                    ui.service_sort,
                    (&svc.reals[a], real_stats(a)),
                    (&svc.reals[b], real_stats(b)),
                    &node_load,
                ),
                ui.reverse,
            )
        });
        rows.extend(reals.into_iter().map(|r| ServiceRow::Real(s, r)));
    }
    rows
}

/// A real server matches the filter by its `address:port` or by its node's name.
fn real_matches<'a>(
    filter: &str,
    real: &RealServerSample,
    node: &impl Fn(IpAddr) -> Option<&'a NodeEntry>,
) -> bool {
    filter_matches(filter, &real.id())
        || node(real.address).is_some_and(|n| filter_matches(filter, &n.name))
}

/// The real servers `on_node` (whose address is a node's) across services, as `(service, real)`
/// indices into the router's current sample, in the sample's order: what a node's detail lists.
pub fn node_reals(
    router: Option<&RouterEntry>,
    on_node: impl Fn(IpAddr) -> bool,
) -> Vec<(usize, usize)> {
    let services = router
        .and_then(|r| r.cur.as_ref())
        .map_or(&[][..], |c| &c.services[..]);
    services
        .iter()
        .enumerate()
        .flat_map(|(s, svc)| {
            svc.reals
                .iter()
                .enumerate()
                .filter(|(_, real)| on_node(real.address))
                .map(move |(r, _)| (s, r))
        })
        .collect()
}

/// Indices into `nodes`, filtered by name or host and sorted as shown.
pub fn node_rows(nodes: &[NodeEntry], ui: &UiState) -> Vec<usize> {
    let mut rows: Vec<usize> = (0..nodes.len())
        .filter(|&i| {
            filter_matches(&ui.filter, &nodes[i].name) || filter_matches(&ui.filter, &nodes[i].host)
        })
        .collect();
    rows.sort_by(|&a, &b| {
        directed(
            compare_nodes(ui.node_sort, &nodes[a], &nodes[b]),
            ui.reverse,
        )
    });
    rows
}

/// `o`, or its reverse when the operator reversed the sort.
fn directed(o: Ordering, reverse: bool) -> Ordering {
    if reverse { o.reverse() } else { o }
}

/// By id; or by the sort's value, biggest first, then by id for a stable order.
fn compare_services(
    sort: ServiceSort,
    (a, sa): (&VirtualServiceSample, Option<&ServiceStats>),
    (b, sb): (&VirtualServiceSample, Option<&ServiceStats>),
    node_load: &impl Fn(IpAddr) -> f64,
) -> Ordering {
    let by_id = a.key.cmp(&b.key);
    if sort == ServiceSort::Id {
        return by_id;
    }
    service_value(sort, b, sb, node_load)
        .total_cmp(&service_value(sort, a, sa, node_load))
        .then(by_id)
}

/// What a service is sorted by; by load per core, its busiest real server's node (-1 for none).
fn service_value(
    sort: ServiceSort,
    svc: &VirtualServiceSample,
    st: Option<&ServiceStats>,
    node_load: &impl Fn(IpAddr) -> f64,
) -> f64 {
    match sort {
        ServiceSort::LoadPerCore => svc
            .reals
            .iter()
            .map(|r| node_load(r.address))
            .fold(-1.0, f64::max),
        ServiceSort::Id => 0.0,
        ServiceSort::Connections => st.map_or(0.0, |s| (s.active_conns + s.inactive_conns) as f64),
        ServiceSort::Cps => st.and_then(|s| s.rates).map_or(0.0, |r| r.cps),
        ServiceSort::Traffic => st
            .and_then(|s| s.rates)
            .map_or(0.0, |r| r.in_bps + r.out_bps),
        ServiceSort::Weight => st.map_or(0.0, |s| s.total_weight as f64),
    }
}

/// Real servers under their service: by address and port; or by the sort's value, biggest first,
/// then by address and port.
fn compare_reals(
    sort: ServiceSort,
    (a, sa): (&RealServerSample, Option<&RealStats>),
    (b, sb): (&RealServerSample, Option<&RealStats>),
    node_load: &impl Fn(IpAddr) -> f64,
) -> Ordering {
    let by_id = (a.address, a.port).cmp(&(b.address, b.port));
    if sort == ServiceSort::Id {
        return by_id;
    }
    real_value(sort, b, sb, node_load)
        .total_cmp(&real_value(sort, a, sa, node_load))
        .then(by_id)
}

/// What a real server is sorted by; by load per core, its node's (-1 when no node is watched).
fn real_value(
    sort: ServiceSort,
    real: &RealServerSample,
    st: Option<&RealStats>,
    node_load: &impl Fn(IpAddr) -> f64,
) -> f64 {
    match sort {
        ServiceSort::LoadPerCore => node_load(real.address),
        ServiceSort::Id => 0.0,
        ServiceSort::Connections => f64::from(real.active_conns) + f64::from(real.inactive_conns),
        ServiceSort::Cps => st.and_then(|s| s.rates).map_or(0.0, |r| r.cps),
        ServiceSort::Traffic => st
            .and_then(|s| s.rates)
            .map_or(0.0, |r| r.in_bps + r.out_bps),
        ServiceSort::Weight => f64::from(real.weight),
    }
}

/// By name (naturally); or by the sort's value, biggest first (nodes without data last), then by
/// name.
fn compare_nodes(sort: NodeSort, a: &NodeEntry, b: &NodeEntry) -> Ordering {
    let by_name = || natural_cmp(&a.name, &b.name);
    if sort == NodeSort::Name {
        return by_name();
    }
    node_value(sort, b.stats.as_ref())
        .total_cmp(&node_value(sort, a.stats.as_ref()))
        .then_with(by_name)
}

/// What a node is sorted by; -1 without data.
fn node_value(sort: NodeSort, st: Option<&NodeStats>) -> f64 {
    match sort {
        NodeSort::Name => 0.0,
        NodeSort::LoadPerCore => st.map_or(-1.0, |s| s.load_per_core),
        NodeSort::Cpu => st.and_then(|s| s.cpu_total).map_or(-1.0, |c| c.busy()),
        NodeSort::Memory => st.and_then(NodeStats::memory_used_fraction).unwrap_or(-1.0),
    }
}

/// Orders `web2` before `web10`: digit runs compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let na = std::str::from_utf8(&a[..da])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let nb = std::str::from_utf8(&b[..db])
                    .unwrap_or("0")
                    .trim_start_matches('0');
                let o = na.len().cmp(&nb.len()).then(na.cmp(nb));
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                let o = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if o != Ordering::Equal {
                    return o;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_puts_web2_before_web10() {
        let mut v = vec!["web10", "web2", "Web1", "db1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["db1", "Web1", "web2", "web10"]);
    }

    #[test]
    fn the_filter_matches_any_case_and_an_empty_filter_matches_everything() {
        assert!(filter_matches("", "anything"));
        assert!(filter_matches("WEB", "rs-web02"));
        assert!(filter_matches("web", "RS-WEB02"));
        assert!(!filter_matches("db", "web02"));
    }

    fn node(name: &str, host: &str) -> NodeEntry {
        NodeEntry::new(name, host, 4)
    }

    fn names(nodes: &[NodeEntry], rows: &[usize]) -> Vec<String> {
        rows.iter().map(|&i| nodes[i].name.clone()).collect()
    }

    #[test]
    fn nodes_sort_by_name_naturally_and_reverse_turns_the_order_around() {
        let nodes = [node("web10", "a"), node("web2", "b"), node("web1", "c")];
        let mut ui = UiState::default();
        assert_eq!(
            names(&nodes, &node_rows(&nodes, &ui)),
            ["web1", "web2", "web10"]
        );
        ui.reverse = true;
        assert_eq!(
            names(&nodes, &node_rows(&nodes, &ui)),
            ["web10", "web2", "web1"]
        );
        // Without data, a value sort falls back to the name, reversed with the rest.
        ui.node_sort = NodeSort::LoadPerCore;
        assert_eq!(
            names(&nodes, &node_rows(&nodes, &ui)),
            ["web10", "web2", "web1"]
        );
    }

    #[test]
    fn the_node_filter_matches_the_name_or_the_host() {
        let nodes = [
            node("web1", "10.0.0.1"),
            node("web2", "10.0.0.2"),
            node("db1", "db.example"),
        ];
        let ui = UiState {
            filter: "EXAMPLE".into(),
            ..UiState::default()
        };
        assert_eq!(names(&nodes, &node_rows(&nodes, &ui)), ["db1"]);
        let ui = UiState {
            filter: "web".into(),
            ..UiState::default()
        };
        assert_eq!(names(&nodes, &node_rows(&nodes, &ui)), ["web1", "web2"]);
    }

    #[test]
    fn without_router_data_there_are_no_service_rows() {
        assert!(service_rows(None, &UiState::default(), |_| None).is_empty());
    }
}
