//! How SSH host problems look on screen: a refused host key names its fingerprint in the status
//! line, a failing node's row keeps its status next to the age of the numbers it shows, and the
//! detail view says why. Fed with scripted samples; the statuses are the ones the SSH sources send.

use lbtop::app::{State, StateOptions};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::{HostStatus, Report, SourceEvent, Timestamp};
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn render(state: &State, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    terminal.backend().to_string()
}

fn state_with_failure(status: HostStatus, message: &str) -> (State, String) {
    let mut state = State::new(StateOptions::default());
    let mut cluster = ScriptedCluster::new(
        ClusterShape {
            nodes: 3,
            cores: 2,
            services: 1,
            reals_per_service: 2,
        },
        3,
    );
    let mut name = String::new();
    for _ in 0..3 {
        for e in cluster.step() {
            if let SourceEvent::Node { name: n, .. } = &e {
                name.clone_from(n);
            }
            state.ingest(e);
        }
    }
    let later = Timestamp(cluster.time().0 + 3_000);
    state.ingest(SourceEvent::Node {
        name: name.clone(),
        host: "10.0.0.3".into(),
        report: Report::Status {
            time: later,
            status,
            message: Some(message.into()),
        },
    });
    state.tick(later);
    (state, name)
}

#[test]
fn a_refused_host_key_shows_its_fingerprint_in_the_status_line() {
    let fp = "SHA256:gIKhFu1vhzXTJcRnE9BrRSfE+HViB4LyGkSL/C4faiw";
    let (state, name) = state_with_failure(
        HostStatus::HostKeyUnknown,
        &format!("host key unknown: ssh-ed25519 key {fp} for 10.0.0.3; not in ~/.ssh/known_hosts"),
    );
    let screen = render(&state, 200, 40);
    let status_line = screen
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert!(
        status_line.contains(&format!("{name}: host key unknown {fp}")),
        "{status_line}"
    );
}

#[test]
fn a_failing_node_row_shows_its_status_and_the_age_of_its_numbers() {
    let (mut state, name) =
        state_with_failure(HostStatus::Unreachable, "no answer to a poll within 5s");
    let screen = render(&state, 160, 40);
    assert!(
        screen
            .lines()
            .any(|l| l.contains(&name) && l.contains("unreachable 3.0s")),
        "no row for {name} with its status and age:\n{screen}"
    );
    state.show_popup(lbtop::app::state::Popup::NodeDetail(name));
    let screen = render(&state, 160, 40);
    assert!(
        screen.contains("unreachable: no answer to a poll within 5s"),
        "{screen}"
    );
}
