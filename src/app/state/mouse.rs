//! The mouse on the state: a click focuses a pane and selects a row, a double-click on a row
//! toggles it (as `enter` does), a click on a column header sorts by it (again: reversed), the
//! wheel moves the selection of the pane under the pointer, and in a replay a click on the
//! position bar seeks there. In the node detail a click selects a real server and the wheel moves
//! the selection; while any other popup or a prompt is open the mouse does nothing.

use crate::app::mouse::{Mouse, MouseKind, SortBy, Target};
use crate::app::replay::SeekTo;

use crate::app::Action;

use super::{Command, Pane, Popup, State};

impl State {
    /// `handle(Event::Mouse(mouse))`.
    pub(super) fn pointer(&mut self, mouse: Mouse) -> Option<Command> {
        if self.ui.prompt.is_some() {
            return None;
        }
        if let Some(Popup::NodeDetail(name)) = &self.ui.popup {
            let name = name.clone();
            self.touch();
            return self.pointer_in_detail(&name, mouse);
        }
        if self.ui.popup.is_some() {
            return None;
        }
        self.touch();
        match (mouse.kind, mouse.target) {
            (MouseKind::WheelUp | MouseKind::WheelDown, target) => {
                if let Some(pane) = target.pane() {
                    let delta = if mouse.kind == MouseKind::WheelUp {
                        -1
                    } else {
                        1
                    };
                    self.move_selection_in(pane, delta);
                }
                None
            }
            (_, Target::Track(t)) => self
                .mode
                .is_replay()
                .then_some(Command::Seek(SeekTo::At(t))),
            (_, Target::Header(sort)) => {
                self.ui.focus = sort.pane();
                self.sort_by(sort);
                None
            }
            (_, Target::Pane(pane)) => {
                self.ui.focus = pane;
                None
            }
            (_, Target::Detail(_)) => None,
            (kind, Target::Row(pane, n)) => {
                self.ui.focus = pane;
                self.select_row(pane, n);
                if kind == MouseKind::DoubleClick {
                    self.toggle();
                }
                None
            }
        }
    }

    /// The mouse over the node detail of `name`: a click on a real server selects it, the wheel
    /// moves the selection as the arrow keys do.
    fn pointer_in_detail(&mut self, name: &str, mouse: Mouse) -> Option<Command> {
        match (mouse.kind, mouse.target) {
            (MouseKind::WheelUp, _) => self.popup_action(Action::Up).flatten(),
            (MouseKind::WheelDown, _) => self.popup_action(Action::Down).flatten(),
            (_, Target::Detail(n)) => {
                let reals = self.node_reals(name);
                if let Some(&(s, r)) = reals.get(n) {
                    self.ui.detail_sel = self.real_key(s, r);
                }
                None
            }
            _ => None,
        }
    }

    /// Sorts by `sort`; when the pane already is, reverses the order instead.
    fn sort_by(&mut self, sort: SortBy) {
        let same = match sort {
            SortBy::Services(s) => std::mem::replace(&mut self.ui.service_sort, s) == s,
            SortBy::Nodes(s) => std::mem::replace(&mut self.ui.node_sort, s) == s,
        };
        self.ui.reverse = same && !self.ui.reverse;
    }

    /// Selects row `n` of `pane` as the pane lists it; nothing when it has no such row.
    fn select_row(&mut self, pane: Pane, n: usize) {
        match pane {
            Pane::Services => {
                if let Some(&row) = self.service_rows().get(n) {
                    self.ui.service_sel = self.row_identity(row);
                }
            }
            Pane::Nodes => {
                if let Some(&i) = self.node_rows().get(n) {
                    self.ui.node_sel = Some(self.nodes[i].name.clone());
                }
            }
            Pane::Alerts => {
                if n < self.alerts.log().len() {
                    self.ui.alert_sel = n;
                }
            }
        }
    }
}
