//! Benchmark (ignored in the suite; run it with `cargo test --release --test lab_action_latency --
//! --ignored --nocapture`): the time from the operator's confirmation to ipvsadm on the router
//! showing the new weight, over SSH in the lab, next to the SSH round trip on the same kept
//! connection; as root and through `sudo -n`. Goal (issue 5): under 300 ms beyond the round trip.

mod support;

use std::time::{Duration, Instant};

use lbtop::cli::RouterSpec;
use lbtop::control::plan::{ActionKind, parse_service, plan};
use lbtop::control::{AnyControl, RouterControl, apply};
use lbtop::source::remote::SudoMode;
use lbtop::source::ssh::SshArgs;
use support::lab::lab;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs the benchmark for one lab login (`lab` is root, `lab-user` goes through `sudo -n`).
fn measure(host: &str) {
    let lab = lab();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ssh = SshArgs {
        config_file: Some(lab.ssh_config.clone().into()),
        options: Vec::new(),
    };
    let Ok(Some(AnyControl::Ssh(ctrl))) = AnyControl::for_router(
        &RouterSpec::Remote(host.into()),
        &ssh,
        SudoMode::Auto,
        Duration::from_secs(1),
    ) else {
        panic!("no SSH control for the lab router");
    };
    let mut ctrl = *ctrl;
    let service = parse_service("tcp:10.77.1.100:8080").expect("service");
    let real: lbtop::control::plan::RealKey = "10.77.0.12:80".parse().expect("real");
    rt.block_on(async {
        let mut rtts = Vec::new();
        for _ in 0..5 {
            rtts.push(ctrl.round_trip().await.expect("round trip"));
        }
        let mut applies = Vec::new();
        let mut observed = Vec::new();
        for _ in 0..10 {
            let table = ctrl.table().await.expect("table");
            let now = table
                .iter()
                .find(|s| s.key == service)
                .and_then(|s| s.reals.iter().find(|r| r.address == real.address))
                .map(|r| r.weight);
            let to = if now == Some(7) { 1 } else { 7 };
            let change = plan(&table, ActionKind::Reweight, &service, &real, to).expect("plan");
            // Confirmation: one exec re-checks, edits, and reads the weight back with ipvsadm;
            // `apply` fails unless ipvsadm shows the new weight.
            let start = Instant::now();
            apply(&mut ctrl, &change, false, None).await.expect("apply");
            applies.push(start.elapsed());
            // An independent look: a fresh exec of ipvsadm's full table.
            let now = ctrl.table().await.expect("table");
            let w = now
                .iter()
                .find(|s| s.key == change.service)
                .and_then(|s| s.reals.iter().find(|r| r.address == real.address))
                .map(|r| r.weight);
            assert_eq!(w, Some(change.to), "ipvsadm shows the new weight");
            observed.push(start.elapsed());
        }
        let rtt = median(rtts);
        let apply = median(applies.clone());
        eprintln!(
            "{host}: ssh round trip (kept connection, `:`): {rtt:?}\n\
             {host}: confirm → ipvsadm shows the new weight (one exec: re-check, edit, read-back): \
             {apply:?} (all: {applies:?})\n\
             {host}: beyond the round trip: {:?}\n\
             {host}: confirm → a second, separate exec of ipvsadm's whole table agrees: {:?}",
            apply.saturating_sub(rtt),
            median(observed),
        );
    });
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn confirm_to_ipvsadm_over_ssh() {
    measure("lab");
    measure("lab-user");
}
