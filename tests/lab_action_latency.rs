//! Benchmark (ignored in the suite; run it with `cargo test --release --test lab_action_latency --
//! --ignored --nocapture`): the time from the operator's confirmation to ipvsadm on the router
//! showing the new weight, over SSH in the lab, next to the SSH round trip on the same kept
//! connection. Goal (issue 5): under 300 ms beyond the round trip.

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

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn confirm_to_ipvsadm_over_ssh() {
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
        &RouterSpec::Remote("lab".into()),
        &ssh,
        SudoMode::Auto,
        Duration::from_secs(1),
    ) else {
        panic!("no SSH control for the lab router");
    };
    let mut ctrl = *ctrl;
    let service = parse_service("tcp:10.77.1.100:8080").expect("service");
    let real = "10.77.0.12:80".parse().expect("real");
    rt.block_on(async {
        let mut rtts = Vec::new();
        for _ in 0..5 {
            rtts.push(ctrl.round_trip().await.expect("round trip"));
        }
        let mut latencies = Vec::new();
        let mut applies = Vec::new();
        for i in 0..10 {
            let table = ctrl.table().await.expect("table");
            let to = if i % 2 == 0 { 7 } else { 1 };
            let change = plan(&table, ActionKind::Reweight, &service, &real, to).expect("plan");
            // Confirmation: the re-check, the change, then ipvsadm until it shows the weight.
            let start = Instant::now();
            apply(&mut ctrl, &change, false, None).await.expect("apply");
            applies.push(start.elapsed());
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let now = ctrl.table().await.expect("table");
                let w = now
                    .iter()
                    .find(|s| s.key == change.service)
                    .and_then(|s| s.reals.iter().find(|r| r.address == real.address))
                    .map(|r| r.weight);
                if w == Some(change.to) || Instant::now() > deadline {
                    break;
                }
            }
            latencies.push(start.elapsed());
        }
        let rtt = median(rtts);
        let latency = median(latencies.clone());
        let apply = median(applies);
        eprintln!(
            "ssh round trip (kept connection, `:`): {rtt:?}\n\
             confirm → apply done (re-check read + ipvsadm -e): {apply:?}\n\
             confirm → ipvsadm shows the weight: {latency:?} (all: {latencies:?})\n\
             beyond the round trip: {:?}",
            latency.saturating_sub(rtt)
        );
    });
}
