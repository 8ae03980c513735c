//! The direct-routing checks through the state, the JSON, the alerts and the screen, without a
//! terminal: a scripted cluster whose first service is direct routing, one node set up as the
//! tutorial says, one not, one whose settings were not read. (The real-kernel version, with `ip
//! addr` and `sysctl` as the oracle, is `tests/lab_dr_checks.rs`.)

use std::net::Ipv4Addr;

use lbtop::app::{State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::alert::AlertKind;
use lbtop::model::sample::{DeviceConf, NodeNet, Report, Route4, SourceEvent};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn conf(name: &str, arp_ignore: u32, arp_announce: u32) -> DeviceConf {
    DeviceConf {
        name: name.into(),
        arp_ignore: Some(arp_ignore),
        arp_announce: Some(arp_announce),
        rp_filter: Some(0),
        flags: None,
    }
}

/// Node `10.0.0.N` on eth0; `right`: the VIP on lo with arp_ignore 1 and arp_announce 2, else
/// neither.
fn net(n: u8, right: bool) -> NodeNet {
    let mut local_v4 = vec![(Ipv4Addr::new(10, 0, 0, n), 32)];
    if right {
        local_v4.push((VIP, 32));
    }
    let (ignore, announce) = if right { (1, 2) } else { (0, 0) };
    NodeNet {
        local_v4,
        local_v6: Vec::new(),
        routes_v4: vec![Route4 {
            device: "eth0".into(),
            destination: Ipv4Addr::new(10, 0, 0, 0),
            mask: Ipv4Addr::new(255, 255, 255, 0),
            gateway: false,
            via: None,
        }],
        devices: vec![
            conf("all", ignore, announce),
            conf("eth0", 0, 0),
            conf("lo", 0, 0),
        ],
    }
}

/// Feeds one round of the cluster, with web01 right, web02 as `web02_right` says, web03
/// unchecked.
fn round(state: &mut State, cluster: &mut ScriptedCluster, web02_right: bool) {
    for mut e in cluster.step() {
        if let SourceEvent::Node {
            name,
            report: Report::Sample(s),
            ..
        } = &mut e
        {
            s.net = match name.as_str() {
                "web01" => Some(net(2, true)),
                "web02" => Some(net(3, web02_right)),
                _ => None,
            };
        }
        state.ingest(e);
    }
    state.tick(cluster.time());
}

fn json(state: &State) -> Value {
    let mut out = Vec::new();
    lbtop::report::write_snapshot(state, &mut out);
    serde_json::from_slice(&out).expect("JSON")
}

fn problems(v: &Value, name: &str) -> Value {
    v["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["dr_problems"].clone())
        .unwrap_or_else(|| panic!("no {name}"))
}

fn screen(state: &State) -> Vec<String> {
    let (w, h) = (200, 40);
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    let buf = terminal.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

#[test]
fn a_wrong_real_server_is_named_in_the_json_the_alerts_and_both_panes_until_it_is_fixed() {
    let mut state = State::new(StateOptions::default());
    let mut cluster = ScriptedCluster::new(
        ClusterShape {
            nodes: 3,
            cores: 4,
            services: 1,
            reals_per_service: 3,
        },
        7,
    );
    for _ in 0..2 {
        round(&mut state, &mut cluster, false);
    }
    let v = json(&state);
    assert_eq!(problems(&v, "web01"), serde_json::json!([]));
    assert_eq!(problems(&v, "web03"), Value::Null, "not checked");
    let web02 = problems(&v, "web02");
    let sentences: Vec<&str> = web02
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(sentences.len(), 3, "{sentences:?}");
    assert!(sentences[0].starts_with("VIP 192.0.2.10 is not a local address"));
    assert!(
        sentences[1].starts_with("arp_ignore is 0 on eth0") && sentences[1].contains("192.0.2.10")
    );
    assert!(sentences[2].starts_with("arp_announce is 0 on eth0"));
    let alert = state
        .alerts()
        .active()
        .find(|(s, k, _)| *s == "web02" && *k == AlertKind::DirectRouting)
        .map(|(_, _, a)| a.clone())
        .expect("an alert on web02");
    assert_eq!(alert.severity.as_str(), "warning");
    assert!(alert.message.contains("192.0.2.10"), "{}", alert.message);
    assert!(
        !state
            .alerts()
            .active()
            .any(|(s, k, _)| s != "web02" && k == AlertKind::DirectRouting)
    );

    let lines = screen(&state);
    let marked: Vec<&String> = lines.iter().filter(|l| l.contains("DR!")).collect();
    assert!(
        marked.iter().any(|l| l.contains("Route  DR! web0")),
        "the real-server row: {lines:#?}"
    );
    assert!(
        marked
            .iter()
            .any(|l| l.contains("web02") && l.contains("ok DR!")),
        "the node row: {lines:#?}"
    );
    assert!(
        !marked
            .iter()
            .any(|l| l.contains("web01") || l.contains("web03"))
    );

    // Fixed: the next sample clears it all.
    round(&mut state, &mut cluster, true);
    assert_eq!(problems(&json(&state), "web02"), serde_json::json!([]));
    assert!(
        !state
            .alerts()
            .active()
            .any(|(_, k, _)| k == AlertKind::DirectRouting)
    );
    assert!(!screen(&state).iter().any(|l| l.contains("DR!")));
}
