//! End to end in a real terminal: the built binary runs in tmux, the screen is read back, `q`
//! quits, and the exit status is 0. tmux is installed by the README's test command.

mod support;

use std::path::Path;
use std::process::Command;
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
    let help = t.wait_for(
        |s| s.contains("Keys") && s.contains("Quit"),
        Duration::from_secs(5),
    );
    assert!(help.contains("Quit"), "help has no quit key:\n{help}");
    t.run(&["send-keys", "-t", "t", "Escape"]);
    // Escape and q sent together read as alt-q; q goes once help has closed.
    t.wait_for(
        |s| !s.contains("Keys") && s.contains("LIVE"),
        Duration::from_secs(5),
    );
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

/// Sends `signal` to lbtop once its first frame is up; checks the exit status and that the
/// terminal left behind is usable: main screen, cursor shown, canonical mode and echo back on.
fn signal_restores_the_terminal(signal: &str, status: &str) {
    let t = Tmux::new(&format!("signal-{}", signal.to_lowercase()));
    t.start_keeping_pane("--interval 300ms");
    let first = t.wait_for(|s| s.contains("LIVE"), Duration::from_secs(20));
    assert!(first.contains("LIVE"), "no first frame:\n{first}");
    let pid = t
        .lbtop_pid(Duration::from_secs(5))
        .expect("lbtop's process id");
    let killed = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -{signal} {pid} failed");
    assert_eq!(
        t.exit_status(Duration::from_secs(10)).as_deref(),
        Some(status),
        "exit status after SIG{signal}"
    );
    let stty = t
        .stty_after_exit(Duration::from_secs(10))
        .expect("stty -a ran in the pane after lbtop");
    let flags: Vec<&str> = stty.split_whitespace().collect();
    for flag in ["icanon", "echo", "isig"] {
        assert!(
            flags.contains(&flag),
            "SIG{signal} left the terminal without {flag}:\n{stty}"
        );
    }
    let modes = t.run(&["display", "-p", "-t", "t", "#{alternate_on} #{cursor_flag}"]);
    assert_eq!(
        modes.trim(),
        "0 1",
        "SIG{signal} left the alternate screen on or the cursor hidden (alternate_on cursor_flag)"
    );
}

#[test]
fn sigterm_restores_the_terminal_and_exits_143() {
    signal_restores_the_terminal("TERM", "143");
}

#[test]
fn sigint_restores_the_terminal_and_exits_130() {
    signal_restores_the_terminal("INT", "130");
}

#[test]
fn sighup_restores_the_terminal_and_exits_129() {
    signal_restores_the_terminal("HUP", "129");
}

/// A captured snapshot is read-only: with `--proc-root`, the drain keys and enter never run
/// ipvsadm on this machine (a stand-in first in PATH records any call) nor write an audit line.
#[test]
fn proc_root_snapshot_never_changes_this_machine() {
    let t = Tmux::new("proc-root");
    let d = t.path().to_path_buf();
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).expect("stand-in dir");
    let calls = d.join("ipvsadm-calls");
    let stand_in = bin.join("ipvsadm");
    std::fs::write(
        &stand_in,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 0\n", calls.display()),
    )
    .expect("write the stand-in ipvsadm");
    let mut perms = std::fs::metadata(&stand_in)
        .expect("stand-in")
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&stand_in, perms).expect("make the stand-in executable");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-root-lab");
    t.start_with_env(
        &format!("PATH={}:$PATH", bin.display()),
        &format!("--interval 300ms --proc-root {root}"),
    );
    let first = t.wait_for(
        |s| s.contains("LIVE") && s.contains("10.77.1.100"),
        Duration::from_secs(20),
    );
    assert!(first.contains("10.77.1.100"), "no services:\n{first}");
    for k in ["j", "j", "d"] {
        t.keys(k);
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = t.wait_for(|s| s.contains("--proc-root"), Duration::from_secs(5));
    t.keys("Enter");
    // Enter again in case a confirmation had come up; then give any change time to run.
    std::thread::sleep(Duration::from_millis(300));
    t.keys("Enter");
    std::thread::sleep(Duration::from_millis(1500));
    let after = t.screen();
    t.keys("q");
    assert_eq!(t.exit_status(Duration::from_secs(10)).as_deref(), Some("0"));
    assert!(
        !calls.exists(),
        "ipvsadm was run on this machine: {:?}\nscreen after enter:\n{after}",
        std::fs::read_to_string(&calls)
    );
    let audit = d.join("state/lbtop/audit.jsonl");
    let lines = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(lines.trim().is_empty(), "audit lines written:\n{lines}");
    assert!(
        refused.contains("read-only: --proc-root shows a captured snapshot"),
        "the drain key does not say why it is disabled:\n{refused}"
    );
}

/// A left click at column `x`, row `y` (1-based) as a terminal reports it with SGR mouse mode:
/// a press, then a release.
fn click(t: &Tmux, x: usize, y: usize) {
    for end in ["M", "m"] {
        t.run(&[
            "send-keys",
            "-t",
            "t",
            "-l",
            &format!("\x1b[<0;{x};{y}{end}"),
        ]);
    }
}

/// Whether lbtop has the terminal report the mouse (tmux's view of the pane's modes).
fn mouse_captured(t: &Tmux) -> bool {
    t.run(&[
        "display",
        "-p",
        "-t",
        "t",
        "#{mouse_any_flag}#{mouse_sgr_flag}",
    ])
    .trim()
        == "11"
}

/// The first row of the services table (line 3 of the screen).
fn first_service(screen: &str) -> String {
    screen.lines().nth(2).unwrap_or_default().to_string()
}

#[test]
fn the_mouse_sorts_by_a_clicked_header_reverses_on_a_second_click_and_focuses_a_clicked_pane() {
    let t = Tmux::new("mouse");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-root-lab");
    t.start_keeping_pane(&format!("--interval 300ms --proc-root {root}"));
    let screen = t.wait_for(
        |s| s.contains("Weight") && s.contains("localhost"),
        Duration::from_secs(20),
    );
    assert!(mouse_captured(&t), "the mouse is captured on start");
    let header = screen.lines().nth(1).expect("a header line");
    let x = header[..header.find("Weight").expect("Weight header")]
        .chars()
        .count()
        + 1;
    click(&t, x, 2);
    let sorted = t.wait_for(|s| s.contains("sort weight"), Duration::from_secs(5));
    assert!(
        sorted.contains("sort weight"),
        "not sorted by weight:\n{sorted}"
    );
    let first = first_service(&sorted);
    assert!(
        first.contains("65536"),
        "the heaviest service is not first:\n{sorted}"
    );
    std::thread::sleep(Duration::from_millis(600)); // not a double-click
    click(&t, x, 2);
    let reversed = t.wait_for(|s| first_service(s) != first, Duration::from_secs(5));
    assert!(
        !first_service(&reversed).contains("65536") && reversed.contains("sort weight"),
        "a second click did not reverse the order:\n{reversed}"
    );
    // Click the node's row: the nodes pane takes the focus (its border turns thick).
    let y = reversed
        .lines()
        .position(|l| l.contains("localhost"))
        .expect("node row")
        + 1;
    click(&t, 10, y);
    let focused = t.wait_for(
        |s| s.contains("┏ Nodes") && s.contains("╭ Services"),
        Duration::from_secs(5),
    );
    assert!(
        focused.contains("┏ Nodes") && focused.contains("╭ Services"),
        "{focused}"
    );
    // M gives the mouse back to the terminal, and takes it again.
    t.keys("M");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!mouse_captured(&t), "M did not turn the mouse off");
    t.keys("M");
    std::thread::sleep(Duration::from_millis(500));
    assert!(mouse_captured(&t), "M did not turn the mouse back on");
    // Quitting gives it back.
    t.keys("q");
    assert!(
        t.stty_after_exit(Duration::from_secs(10)).is_some(),
        "lbtop did not exit"
    );
    assert!(
        !mouse_captured(&t),
        "the mouse is still captured after exit"
    );
}

#[test]
fn sigterm_gives_the_mouse_back_to_the_terminal() {
    let t = Tmux::new("mouse-term");
    t.start_keeping_pane("--interval 300ms --nodes none --router none");
    t.wait_for(|s| s.contains("LIVE"), Duration::from_secs(20));
    assert!(mouse_captured(&t));
    let pid = t.lbtop_pid(Duration::from_secs(5)).expect("lbtop runs");
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(
        t.stty_after_exit(Duration::from_secs(10)).is_some(),
        "lbtop did not exit"
    );
    assert!(
        !mouse_captured(&t),
        "the mouse is still captured after SIGTERM"
    );
}

#[test]
fn i_opens_a_services_detail_and_a_double_click_a_real_servers_in_the_live_tui() {
    let t = Tmux::new("detail");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-root-lab");
    t.start_keeping_pane(&format!("--interval 300ms --proc-root {root}"));
    let screen = t.wait_for(
        |s| s.contains("Weight") && s.contains("10.77.1.100"),
        Duration::from_secs(20),
    );
    assert!(screen.contains("10.77.1.100"), "no services:\n{screen}");
    // The first service: `i` opens its detail, with its three charts.
    t.keys("j");
    std::thread::sleep(Duration::from_millis(200));
    t.keys("i");
    let detail = t.wait_for(
        |s| s.contains("Connections/s") && s.contains("Bytes/s in out"),
        Duration::from_secs(5),
    );
    assert!(
        detail.contains("real servers, total weight") && detail.contains("Connections active"),
        "no service detail:\n{detail}"
    );
    t.keys("Escape");
    let closed = t.wait_for(|s| !s.contains("Connections/s"), Duration::from_secs(5));
    assert!(
        !closed.contains("Connections/s"),
        "esc did not close it:\n{closed}"
    );
    // A double-click on a real server's row opens that real server's detail.
    let (y, line) = closed
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("├ ") || l.contains("└ "))
        .expect("a real server row");
    let x = line[..line.find(['├', '└']).expect("branch")]
        .chars()
        .count()
        + 3;
    click(&t, x, y + 1);
    click(&t, x, y + 1);
    // Wait for the whole popup: a capture can fall between two halves of a frame.
    let real = t.wait_for(
        |s| s.contains(" of TCP ") && s.contains("Connections/s"),
        Duration::from_secs(5),
    );
    assert!(
        real.contains("forwarding") && real.contains("Connections/s"),
        "no real server detail:\n{real}"
    );
    t.keys("q");
    assert!(
        t.stty_after_exit(Duration::from_secs(10)).is_some(),
        "lbtop did not exit"
    );
}
