//! Benchmark (ignored in the suite; run it with `cargo test --release --test lab_action_latency --
//! --ignored --nocapture`): the time from the operator's confirmation to ipvsadm on the router
//! showing the new weight, over SSH in the lab, next to the SSH round trip on the same kept
//! connection; as root and through `sudo -n`. Goal (issue 5): under 300 ms beyond the round trip.

mod support;

use std::time::{Duration, Instant};

use lbtop::control::plan::{ActionKind, RealKey, WeightChange, find, parse_service, plan, recheck};
use lbtop::control::{RouterControl, apply};
use lbtop::model::sample::{ServiceKey, VirtualServiceSample};
use lbtop::source::agent::AgentChoice;
use support::lab::lab;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn weight(table: &[VirtualServiceSample], service: &ServiceKey, real: &RealKey) -> Option<i32> {
    let (_, r) = find(table, service, real).ok()?;
    Some(r.weight)
}

/// A reweight of `real` between 7 and 1, whichever it does not have now.
fn next_change(
    table: &[VirtualServiceSample],
    service: &ServiceKey,
    real: &RealKey,
) -> WeightChange {
    let to = if weight(table, service, real) == Some(7) {
        1
    } else {
        7
    };
    plan(table, ActionKind::Reweight, service, real, to).expect("plan")
}

/// Runs the benchmark for one lab login (`lab` is root, `lab-user` goes through `sudo -n`).
fn measure(host: &str) {
    let lab = lab();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ctrl = lab.ssh_control(host);
    let service = parse_service("tcp:10.77.1.100:8080").expect("service");
    let real: RealKey = "10.77.0.12:80".parse().expect("real");
    rt.block_on(async {
        let mut rtts = Vec::new();
        for _ in 0..5 {
            rtts.push(ctrl.round_trip().await.expect("round trip"));
        }
        let mut applies = Vec::new();
        let mut observed = Vec::new();
        for _ in 0..10 {
            let table = ctrl.table().await.expect("table");
            let change = next_change(&table, &service, &real);
            // Confirmation: one exec re-checks, edits, and reads the weight back with ipvsadm;
            // `apply` fails unless ipvsadm shows the new weight.
            let start = Instant::now();
            apply(&mut ctrl, &change, false, None).await.expect("apply");
            applies.push(start.elapsed());
            // An independent look: a fresh exec of ipvsadm's full table.
            let now = ctrl.table().await.expect("table");
            assert_eq!(
                weight(&now, &service, &real),
                Some(change.to),
                "ipvsadm shows the new weight"
            );
            observed.push(start.elapsed());
        }
        // The alternative, in the same run: the re-check as a read of the whole table (three
        // ipvsadm views) and then the edit, in two execs — how lbtop changed weights before.
        let mut two_step = Vec::new();
        for _ in 0..10 {
            let table = ctrl.table().await.expect("table");
            let change = next_change(&table, &service, &real);
            let start = Instant::now();
            let table = ctrl.table().await.expect("re-check read");
            recheck(&table, &change, false).expect("re-check");
            let (svc, r) = find(&table, &change.service, &change.real).expect("find");
            ctrl.set_weight(svc, r, change.to).await.expect("edit");
            two_step.push(start.elapsed());
        }
        let rtt = median(rtts);
        let apply = median(applies.clone());
        let old = median(two_step);
        eprintln!(
            "{host}: ssh round trip (kept connection, `:`): {rtt:?}\n\
             {host}: confirm → ipvsadm shows the new weight (one exec: re-check, edit, read-back): \
             {apply:?} (all: {applies:?})\n\
             {host}: beyond the round trip: {:?}\n\
             {host}: confirm → a second, separate exec of ipvsadm's whole table agrees: {:?}\n\
             {host}: alternative, re-check read then edit in two execs (no read-back): {old:?} \
             ({:.2}× the one exec)",
            apply.saturating_sub(rtt),
            median(observed),
            old.as_secs_f64() / apply.as_secs_f64(),
        );
    });
}

/// The same through `lbtop agent` on the router (started once, through `sudo -n` for
/// `lab-user`), next to the shell session's one exec in the same run.
fn measure_agent(host: &str) {
    let lab = lab();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut ctrl = lab
        .ssh_control(host)
        .with_agent(AgentChoice::Path(support::lab::AGENT.into()));
    let mut script = lab.ssh_control(host);
    let service = parse_service("tcp:10.77.1.100:8080").expect("service");
    let real: RealKey = "10.77.0.12:80".parse().expect("real");
    rt.block_on(async {
        assert!(ctrl.agent_ready().await.expect("agent"), "the agent runs");
        let mut rtts = Vec::new();
        for _ in 0..5 {
            rtts.push(ctrl.round_trip().await.expect("round trip"));
        }
        let (mut agent, mut shell) = (Vec::new(), Vec::new());
        for i in 0..20 {
            let table = ctrl.table().await.expect("table");
            let change = next_change(&table, &service, &real);
            let start = Instant::now();
            if i % 2 == 0 {
                apply(&mut ctrl, &change, false, None).await.expect("apply");
                agent.push(start.elapsed());
            } else {
                apply(&mut script, &change, false, None)
                    .await
                    .expect("apply");
                shell.push(start.elapsed());
            }
            // ipvsadm itself, in a separate exec without the agent.
            let now = script.table().await.expect("table");
            assert_eq!(
                weight(&now, &service, &real),
                Some(change.to),
                "ipvsadm shows it"
            );
        }
        let rtt = median(rtts);
        let (a, s) = (median(agent.clone()), median(shell));
        eprintln!(
            "{host}: ssh round trip: {rtt:?}\n\
             {host}: confirm → applied through the agent (netlink re-check and SET_DEST): {a:?} \
             (all: {agent:?}); beyond the round trip: {:?}\n\
             {host}: the shell session's one exec in the same run: {s:?}; beyond the round trip: \
             {:?} ({:.1}× the agent's)",
            a.saturating_sub(rtt),
            s.saturating_sub(rtt),
            s.as_secs_f64() / a.as_secs_f64(),
        );
    });
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn confirm_to_ipvsadm_over_ssh() {
    measure("lab");
    measure("lab-user");
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn confirm_to_ipvsadm_through_the_agent() {
    measure_agent("lab");
    measure_agent("lab-user");
}
