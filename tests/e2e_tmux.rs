//! End to end in a real terminal: the built binary runs in tmux, the screen is read back, `q`
//! quits, and the exit status is 0. tmux is installed by the README's test command.

mod support;

use std::path::Path;
use std::time::Duration;

use support::tmux::Tmux;

#[test]
fn live_view_of_this_machine_shows_panes_and_quits_cleanly_on_q() {
    let t = Tmux::new("live");
    t.start("--interval 300ms");
    t.wait_for(
        |s| s.contains("Nodes 1") && s.contains("LIVE"),
        Duration::from_secs(20),
    );
    // CPU percentages need two samples; give it a few intervals.
    std::thread::sleep(Duration::from_millis(1500));
    let screen = t.screen();
    assert!(screen.contains("Services"), "no services pane:\n{screen}");
    assert!(screen.contains("Nodes 1"), "no nodes pane:\n{screen}");
    assert!(screen.contains("Alerts"), "no alerts pane:\n{screen}");
    assert!(screen.contains("LIVE"), "no status line:\n{screen}");
    // This machine's kernel has no IPVS: a clear message, and the node pane keeps working.
    if !Path::new("/proc/net/ip_vs").exists() {
        assert!(
            screen.contains("IPVS is not available: modprobe ip_vs"),
            "no IPVS message:\n{screen}"
        );
    }
    assert!(
        screen.contains("nodes 1/1 ok"),
        "the local node is not ok:\n{screen}"
    );
    // Help opens and closes.
    t.run(&["send-keys", "-t", "t", "?"]);
    let help = t.wait_for(|s| s.contains("Keys"), Duration::from_secs(5));
    assert!(help.contains("Quit"), "help has no quit key:\n{help}");
    t.run(&["send-keys", "-t", "t", "Escape"]);
    t.run(&["send-keys", "-t", "t", "q"]);
    let status = t.exit_status(Duration::from_secs(10));
    assert_eq!(status.as_deref(), Some("0"), "lbtop did not exit 0 on q");
}

#[test]
fn terminal_is_restored_after_quitting() {
    let t = Tmux::new("restore");
    t.start("--interval 300ms --nodes none --router none");
    t.wait_for(|s| s.contains("LIVE"), Duration::from_secs(20));
    t.run(&["send-keys", "-t", "t", "q"]);
    assert_eq!(t.exit_status(Duration::from_secs(10)).as_deref(), Some("0"));
    // Back on the normal screen: the pane no longer shows lbtop's alternate screen.
    let after = t.screen();
    assert!(
        !after.contains("LIVE"),
        "alternate screen left behind:\n{after}"
    );
}
