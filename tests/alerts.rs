//! Alerts worth reading: router data that comes a little late raises one staleness alert, not one
//! every few seconds, and the message agrees with the limit it was judged by.

use std::time::Duration;

use lbtop::app::{State, StateOptions};
use lbtop::model::alert::AlertKind;
use lbtop::model::sample::{SourceEvent, Timestamp};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};

#[test]
fn router_samples_seven_seconds_apart_raise_one_staleness_alert_not_a_flapping_one() {
    // A 2 s interval: stale after 3 intervals (6 s). The router answers every 7 s.
    let mut state = State::new(StateOptions {
        interval: Duration::from_secs(2),
        ..StateOptions::default()
    });
    let shape = ClusterShape {
        nodes: 0,
        cores: 2,
        services: 2,
        reals_per_service: 2,
    };
    let mut cluster = ScriptedCluster::new(shape, 7);
    state.add_router("lvs-router");
    let mut raised = 0;
    let mut messages = Vec::new();
    for second in 0..120 {
        let events = cluster.step();
        if second % 7 == 0 {
            for e in events {
                if matches!(e, SourceEvent::Router { .. }) {
                    state.ingest(e);
                }
            }
        }
        let now = Timestamp(cluster.time().0 + 500);
        for a in state.tick(now) {
            if a.subject == "router" && a.kind == AlertKind::Stale && a.raised {
                raised += 1;
                messages.push(a.message.clone());
            }
        }
    }
    assert_eq!(raised, 1, "{messages:?}");
    // Said as judged: over the limit, with the age to a tenth of a second.
    assert!(messages[0].contains("over the 6.0s limit"), "{messages:?}");
    let active = state
        .alerts()
        .active()
        .find(|(s, k, _)| *s == "router" && *k == AlertKind::Stale)
        .map(|(_, _, a)| a.message.clone());
    assert!(active.is_some(), "still on while samples keep coming late");
}
