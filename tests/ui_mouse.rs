//! The mouse, without a terminal: a point on a drawn frame is hit-tested with `ui::hit` (the
//! layout `ui::draw` uses), and the app's mouse event goes into `State::handle`. Clicks focus and
//! select, a double-click toggles, a header sorts (again: reversed), the wheel moves the selection
//! of the pane under the pointer, and a click on a replay's position bar seeks there.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lbtop::app::replay::{ReplayView, SeekTo};
use lbtop::app::state::{NodeSort, Pane, ServiceRow, ServiceSort};
use lbtop::app::{Command, Event, Mouse, MouseKind, SortBy, Speed, State, StateOptions, Target};
use lbtop::config::{Keymap, Theme};
use lbtop::model::sample::Timestamp;
use lbtop::runtime::handle_key;
use lbtop::testing::scripted::{ClusterShape, ScriptedCluster};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

const W: u16 = 160;
const H: u16 = 50;

fn small() -> State {
    let mut state = State::new(StateOptions::default());
    let mut cluster = ScriptedCluster::new(
        ClusterShape {
            nodes: 6,
            cores: 4,
            services: 3,
            reals_per_service: 3,
        },
        7,
    );
    for _ in 0..4 {
        for e in cluster.step() {
            state.ingest(e);
        }
    }
    state.tick(cluster.time());
    state
}

/// The frame as lines of text.
fn render(state: &State) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).expect("test backend");
    terminal
        .draw(|f| lbtop::ui::draw(f, state, &Theme::default(), &Keymap::defaults()))
        .expect("draw");
    let buf = terminal.backend().buffer().clone();
    (0..H)
        .map(|y| (0..W).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

/// The cell where `text` first starts on the frame (column counted in cells).
fn find(lines: &[String], text: &str) -> (u16, u16) {
    for (y, line) in lines.iter().enumerate() {
        if let Some(i) = line.find(text) {
            return (line[..i].chars().count() as u16, y as u16);
        }
    }
    panic!("{text:?} is not on the screen:\n{}", lines.join("\n"));
}

/// Like `find`, within the nodes pane (the services pane names nodes too, beside their real
/// servers).
fn find_node(state: &State, name: &str) -> (u16, u16) {
    let nodes = lbtop::ui::layout(Rect::new(0, 0, W, H), state).nodes;
    let lines: Vec<String> = render(state)
        .iter()
        .enumerate()
        .map(|(y, l)| {
            if !(nodes.y..nodes.bottom()).contains(&(y as u16)) {
                return String::new();
            }
            let cells: String = l.chars().take(usize::from(nodes.right())).collect();
            let left = usize::from(nodes.x);
            " ".repeat(left) + &cells.chars().skip(left).collect::<String>()
        })
        .collect();
    find(&lines, name)
}

fn target(state: &State, (x, y): (u16, u16)) -> Target {
    lbtop::ui::hit(Rect::new(0, 0, W, H), state, x, y).expect("something is there")
}

fn mouse(state: &mut State, kind: MouseKind, at: (u16, u16)) -> Option<Command> {
    let target = target(state, at);
    state.handle(Event::Mouse(Mouse { kind, target })).command
}

#[test]
fn clicking_a_node_row_focuses_the_nodes_pane_and_selects_that_node() {
    let mut s = small();
    assert_eq!(s.ui().focus, Pane::Services);
    let name = ScriptedCluster::node_name(3);
    let at = find_node(&s, &name);
    assert_eq!(target(&s, at), Target::Row(Pane::Nodes, 3));
    mouse(&mut s, MouseKind::Click, at);
    assert_eq!(s.ui().focus, Pane::Nodes);
    assert_eq!(s.ui().node_sel.as_deref(), Some(name.as_str()));
}

#[test]
fn clicking_a_pane_border_focuses_it_and_the_status_line_is_nothing() {
    let mut s = small();
    let (_, y) = find(&render(&s), " Alerts ");
    let (x, _) = find(&render(&s), " Alerts ");
    assert_eq!(target(&s, (x, y)), Target::Pane(Pane::Alerts));
    mouse(&mut s, MouseKind::Click, (x, y));
    assert_eq!(s.ui().focus, Pane::Alerts);
    assert_eq!(lbtop::ui::hit(Rect::new(0, 0, W, H), &s, 5, H - 1), None);
}

#[test]
fn clicking_a_header_sorts_by_its_column_and_clicking_it_again_reverses() {
    let mut s = small();
    let cps = find(&render(&s), "CPS ");
    assert_eq!(
        target(&s, cps),
        Target::Header(SortBy::Services(ServiceSort::Cps))
    );
    mouse(&mut s, MouseKind::Click, cps);
    assert_eq!(s.ui().service_sort, ServiceSort::Cps);
    assert!(!s.ui().reverse);
    mouse(&mut s, MouseKind::Click, cps);
    assert_eq!(s.ui().service_sort, ServiceSort::Cps);
    assert!(s.ui().reverse);
    // The nodes' headers sort the nodes, and focus their pane.
    let lines = render(&s);
    let (x, y) = find(&lines, "CPU");
    let header = target(&s, (x, y));
    assert_eq!(header, Target::Header(SortBy::Nodes(NodeSort::Cpu)));
    mouse(&mut s, MouseKind::Click, (x, y));
    assert_eq!(s.ui().node_sort, NodeSort::Cpu);
    assert_eq!(s.ui().focus, Pane::Nodes);
    assert!(!s.ui().reverse, "a new column sorts in its own order");
}

#[test]
fn double_clicking_a_service_row_collapses_it_as_enter_does() {
    let mut s = small();
    let rows = s.service_rows();
    let first = rows.len();
    let at = find(&render(&s), "TCP");
    let Target::Row(Pane::Services, n) = target(&s, at) else {
        panic!("not a service row");
    };
    assert!(matches!(rows[n], ServiceRow::Service(_)));
    mouse(&mut s, MouseKind::Click, at);
    let t = target(&s, at);
    s.handle(Event::Mouse(Mouse {
        kind: MouseKind::DoubleClick,
        target: t,
    }));
    assert!(
        s.service_rows().len() < first,
        "the service's real servers are still shown"
    );
}

#[test]
fn the_wheel_moves_the_selection_of_the_pane_under_the_pointer_without_focusing_it() {
    let mut s = small();
    let at = find_node(&s, &ScriptedCluster::node_name(0));
    mouse(&mut s, MouseKind::WheelDown, at);
    mouse(&mut s, MouseKind::WheelDown, at);
    let second = s.node_rows()[1];
    assert_eq!(
        s.ui().node_sel.as_deref(),
        Some(s.nodes()[second].name.as_str())
    );
    assert_eq!(s.ui().focus, Pane::Services);
    mouse(&mut s, MouseKind::WheelUp, at);
    let first = s.node_rows()[0];
    assert_eq!(
        s.ui().node_sel.as_deref(),
        Some(s.nodes()[first].name.as_str())
    );
}

#[test]
fn the_mouse_does_nothing_while_a_popup_is_open() {
    let mut s = small();
    handle_key(
        &mut s,
        &Keymap::defaults(),
        KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE),
    );
    let target = Target::Row(Pane::Nodes, 2);
    let before = s.ui().node_sel.clone();
    s.handle(Event::Mouse(Mouse {
        kind: MouseKind::Click,
        target,
    }));
    assert_eq!(s.ui().focus, Pane::Services);
    assert_eq!(s.ui().node_sel, before);
}

#[test]
fn shift_m_turns_the_mouse_off_and_on() {
    let mut s = small();
    assert!(s.ui().mouse, "the mouse is on by default");
    let m = KeyEvent::new(KeyCode::Char('M'), KeyModifiers::SHIFT);
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), m),
        Some(Command::SetMouse(false))
    );
    assert!(!s.ui().mouse);
    assert_eq!(
        handle_key(&mut s, &Keymap::defaults(), m),
        Some(Command::SetMouse(true))
    );
}

#[test]
fn in_replay_a_click_on_the_position_bar_seeks_to_that_moment() {
    let mut s = small();
    let start = Timestamp(1_000_000);
    let end = Timestamp(1_000_000 + 600_000);
    s.start_replay(
        ReplayView {
            file: "r.lbrec".into(),
            start,
            end,
            position: start,
            ..ReplayView::default()
        },
        true,
        Speed::NORMAL,
    );
    let lines = render(&s);
    let (cursor_x, y) = find(&lines, "●");
    let last_x = cursor_x
        + lines[y as usize]
            .chars()
            .skip(cursor_x as usize)
            .take_while(|c| matches!(c, '●' | '─'))
            .count() as u16
        - 1;
    let seek = |s: &mut State, x| mouse(s, MouseKind::Click, (x, y));
    assert_eq!(
        seek(&mut s, cursor_x),
        Some(Command::Seek(SeekTo::At(start)))
    );
    assert_eq!(seek(&mut s, last_x), Some(Command::Seek(SeekTo::At(end))));
    let Some(Command::Seek(SeekTo::At(mid))) = seek(&mut s, (cursor_x + last_x) / 2) else {
        panic!("no seek");
    };
    assert!((mid.0 - 1_300_000).abs() < 10_000, "{mid:?} is not mid-way");
    // Beside the track (the clock, the times) is nothing.
    assert_eq!(lbtop::ui::hit(Rect::new(0, 0, W, H), &s, 2, y), None);
}

/// Draws `state` as the runtime does, handing the rows each pane showed back to it.
fn draw_as_the_runtime_does(state: &mut State) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(W, H)).expect("test backend");
    let mut view = None;
    terminal
        .draw(|f| {
            view = Some(lbtop::ui::draw_screen(
                f,
                state,
                &Theme::default(),
                &Keymap::defaults(),
            ));
        })
        .expect("draw");
    state.handle(Event::Drawn(view.expect("a view")));
    let buf = terminal.backend().buffer().clone();
    (0..H)
        .map(|y| (0..W).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

#[test]
fn a_click_past_the_first_page_selects_the_row_clicked_and_the_list_stays_put() {
    let mut s = State::new(StateOptions::default());
    let mut cluster = ScriptedCluster::new(
        ClusterShape {
            nodes: 60,
            cores: 4,
            services: 2,
            reals_per_service: 2,
        },
        7,
    );
    for _ in 0..3 {
        for e in cluster.step() {
            s.ingest(e);
        }
    }
    s.tick(cluster.time());
    handle_key(&mut s, &Keymap::defaults(), key(KeyCode::Tab));
    handle_key(&mut s, &Keymap::defaults(), key(KeyCode::End));
    draw_as_the_runtime_does(&mut s);
    let view = s.ui().view.nodes;
    assert!(view.first > 0 && view.rows > 5, "scrolled: {view:?}");
    // The fourth row shown, well past the first page.
    let row = view.first + 3;
    let name = s.nodes()[s.node_rows()[row]].name.clone();
    let at = find_node(&s, &format!(" {name} "));
    assert_eq!(target(&s, at), Target::Row(Pane::Nodes, row));
    mouse(&mut s, MouseKind::Click, at);
    assert_eq!(s.ui().node_sel.as_deref(), Some(name.as_str()));
    let lines = draw_as_the_runtime_does(&mut s);
    assert_eq!(s.ui().view.nodes, view, "the list did not move");
    assert!(
        lines[usize::from(at.1)].contains(&name),
        "{name} is still where it was clicked"
    );
    // The keys move the selection inside the rows shown before they scroll them.
    handle_key(&mut s, &Keymap::defaults(), key(KeyCode::Up));
    draw_as_the_runtime_does(&mut s);
    assert_eq!(s.ui().view.nodes, view);
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn in_the_node_detail_a_click_selects_a_real_server_and_the_wheel_moves_the_selection() {
    let mut s = small();
    let name = ScriptedCluster::node_name(0);
    s.show_popup(lbtop::app::state::Popup::NodeDetail(name.clone()));
    let reals = s.node_reals(&name);
    assert!(reals.len() >= 2, "{name} serves several services");
    let first = s.selected_real().expect("its first real server");
    let lines = render(&s);
    // The second service's row of the list (the services pane lists it too, further up).
    let (_, header_y) = find(&lines, "Real server (d or w or r)");
    let y = header_y + 2;
    let x = lines[usize::from(y)]
        .find("TCP")
        .map(|i| lines[usize::from(y)][..i].chars().count())
        .expect("a row of the list") as u16;
    assert_eq!(target(&s, (x, y)), Target::Detail(1));
    mouse(&mut s, MouseKind::Click, (x, y));
    let second = s.selected_real().expect("selected");
    assert_ne!(second, first);
    assert_eq!(
        s.ui().popup,
        Some(lbtop::app::state::Popup::NodeDetail(name.clone())),
        "the detail stays open"
    );
    // The wheel anywhere over the detail moves the selection, as the arrow keys do.
    mouse(&mut s, MouseKind::WheelUp, (x, y));
    assert_eq!(s.selected_real(), Some(first));
    mouse(&mut s, MouseKind::WheelDown, (x, y));
    assert_eq!(s.selected_real(), Some(second));
    // Off the list, a click does nothing.
    mouse(&mut s, MouseKind::Click, (x, header_y));
    assert_eq!(s.selected_real(), Some(second));
}

#[test]
fn double_clicking_a_real_server_row_opens_its_detail() {
    let mut s = small();
    let at = find(&render(&s), "├ 10.0.0.3:80");
    let Target::Row(Pane::Services, n) = target(&s, at) else {
        panic!("not a services row");
    };
    assert!(matches!(s.service_rows()[n], ServiceRow::Real(..)));
    mouse(&mut s, MouseKind::Click, at);
    mouse(&mut s, MouseKind::DoubleClick, at);
    assert_eq!(s.ui().popup, Some(lbtop::app::state::Popup::ServiceDetail));
    let frame = render(&s).join("\n");
    assert!(
        frame.contains("10.0.0.3:80 of TCP 192.0.2.10:80"),
        "{frame}"
    );
}
