//! Keys as data: which key asks for which [`Action`], with the embedded defaults
//! (`keymap-default.toml`) and the user's `[[keys]]` overrides merged and checked for duplicates.
//! The help screen and the footer hints are generated from the same table.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::Deserialize;

use crate::app::action::Action;

/// The keymap shipped with lbtop; every [`Action`] has at least one key here.
const DEFAULT_KEYMAP: &str = include_str!("keymap-default.toml");

/// Why a key name or a set of bindings was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeymapError {
    #[error("bad key name `{text}`: {reason}")]
    BadKey { text: String, reason: String },
    #[error("unknown action `{name}`; expected one of: {}", action_names().join(", "))]
    UnknownAction { name: String },
    #[error(
        "key `{key}` is bound to both `{}` and `{}`",
        action_name(*first),
        action_name(*second)
    )]
    DuplicateKey {
        key: KeySpec,
        first: Action,
        second: Action,
    },
    #[error(
        "`{}` is left without a key: the dashboard could then be stopped only by a signal",
        action_name(*action)
    )]
    Unbound { action: Action },
}

/// One key with its modifiers, normalised so that it compares equal to what crossterm reports:
/// a shifted letter is the uppercase `Char` without `SHIFT`, and shift-tab is `BackTab`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub modifiers: KeyModifiers,
}

impl KeySpec {
    pub fn new(code: KeyCode, modifiers: KeyModifiers) -> KeySpec {
        normalise(code, modifiers)
    }

    /// The key a terminal event stands for, normalised like a parsed key name.
    pub(crate) fn from_event(event: &KeyEvent) -> KeySpec {
        normalise(event.code, event.modifiers)
    }
}

/// SHIFT is part of the character for `Char` codes (`R`, `?`, `{`), and shift-tab arrives as
/// `BackTab` (usually with SHIFT set), so SHIFT is dropped for both.
fn normalise(code: KeyCode, modifiers: KeyModifiers) -> KeySpec {
    match code {
        KeyCode::Char(c) if modifiers.contains(KeyModifiers::SHIFT) => KeySpec {
            code: KeyCode::Char(c.to_ascii_uppercase()),
            modifiers: modifiers - KeyModifiers::SHIFT,
        },
        KeyCode::Tab if modifiers.contains(KeyModifiers::SHIFT) => KeySpec {
            code: KeyCode::BackTab,
            modifiers: modifiers - KeyModifiers::SHIFT,
        },
        KeyCode::BackTab => KeySpec {
            code,
            modifiers: modifiers - KeyModifiers::SHIFT,
        },
        _ => KeySpec { code, modifiers },
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    let rest = &text[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && !rest.is_empty()).then_some(rest)
}

fn named_key(name: &str) -> Option<KeyCode> {
    let lower = name.to_ascii_lowercase();
    let code = match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "space" => KeyCode::Char(' '),
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" | "page-up" => KeyCode::PageUp,
        "pgdn" | "pagedown" | "page-down" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        _ => {
            let number: u8 = lower.strip_prefix('f')?.parse().ok()?;
            if (1..=24).contains(&number) {
                KeyCode::F(number)
            } else {
                return None;
            }
        }
    };
    Some(code)
}

impl FromStr for KeySpec {
    type Err = KeymapError;

    /// Parses `q`, `R`, `?`, `ctrl-c`, `alt-x`, `shift-tab`, `enter`, `pgdn`, `f5`, `-`, `ctrl--` …
    fn from_str(text: &str) -> Result<KeySpec, KeymapError> {
        let bad = |reason: &str| KeymapError::BadKey {
            text: crate::model::text::printable(text, 40),
            reason: reason.to_string(),
        };
        let mut modifiers = KeyModifiers::NONE;
        let mut rest = text;
        loop {
            if let Some(r) = strip_prefix_ignore_case(rest, "ctrl-")
                .or_else(|| strip_prefix_ignore_case(rest, "control-"))
            {
                modifiers |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = strip_prefix_ignore_case(rest, "alt-") {
                modifiers |= KeyModifiers::ALT;
                rest = r;
            } else if let Some(r) = strip_prefix_ignore_case(rest, "shift-") {
                modifiers |= KeyModifiers::SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (None, _) => return Err(bad("empty key name")),
            (Some(c), None) => {
                if c.is_whitespace() {
                    return Err(bad("write `space` for the space bar"));
                }
                if c.is_control() {
                    return Err(bad("control characters are not key names"));
                }
                if modifiers.contains(KeyModifiers::SHIFT) && !c.is_ascii_alphabetic() {
                    return Err(bad(
                        "`shift-` applies to letters and named keys; write the shifted character itself, e.g. `?`",
                    ));
                }
                KeyCode::Char(c)
            }
            (Some(_), Some(_)) => named_key(rest).ok_or_else(|| {
                bad(
                    "expected a single character, a modifier (`ctrl-`, `alt-`, `shift-`), \
                     or one of enter, esc, space, tab, backtab, backspace, delete, insert, \
                     up, down, left, right, pgup, pgdn, home, end, f1..f24",
                )
            })?,
        };
        Ok(normalise(code, modifiers))
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.modifiers.contains(KeyModifiers::CONTROL) {
            f.write_str("ctrl-")?;
        }
        if self.modifiers.contains(KeyModifiers::ALT) {
            f.write_str("alt-")?;
        }
        if self.modifiers.contains(KeyModifiers::SHIFT) {
            f.write_str("shift-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Backspace => f.write_str("backspace"),
            KeyCode::Delete => f.write_str("delete"),
            KeyCode::Insert => f.write_str("insert"),
            KeyCode::Up => f.write_str("up"),
            KeyCode::Down => f.write_str("down"),
            KeyCode::Left => f.write_str("left"),
            KeyCode::Right => f.write_str("right"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{}", format!("{other:?}").to_ascii_lowercase()),
        }
    }
}

impl<'de> Deserialize<'de> for KeySpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<KeySpec, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of an action as written in config files (`quit`, `page-down`, `seek-back-long`).
pub fn action_name(action: Action) -> String {
    action.name().to_string()
}

/// Every action name, in [`Action::ALL`] order.
pub(crate) fn action_names() -> Vec<String> {
    Action::ALL.iter().map(|a| action_name(*a)).collect()
}

/// The action a config file names, if there is one by that name.
pub(crate) fn parse_action(name: &str) -> Result<Action, KeymapError> {
    name.parse().map_err(|_| KeymapError::UnknownAction {
        name: crate::model::text::printable(name, 40),
    })
}

/// Keys for one action, with the line the help screen shows for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<KeySpec>,
    pub action: Action,
    pub description: String,
}

/// A `[[keys]]` entry from the user's config file: its keys replace the action's default keys.
/// An empty `keys` list unbinds the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserBinding {
    pub keys: Vec<KeySpec>,
    pub action: Action,
    /// Replaces the default description when given.
    pub description: Option<String>,
}

/// The resolved keymap: bindings in help-screen order and a lookup from key to action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<Binding>,
    lookup: HashMap<KeySpec, Action>,
    /// Keys of the actions that act in a confirmation ([`Action::in_confirmation`]), looked up
    /// first while one is open; they may share keys with the others.
    confirm_lookup: HashMap<KeySpec, Action>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::defaults()
    }
}

impl Keymap {
    /// Builds a keymap from bindings, rejecting a key bound to two different actions.
    pub fn new(bindings: Vec<Binding>) -> Result<Keymap, KeymapError> {
        let mut main = HashMap::new();
        let mut confirm_lookup = HashMap::new();
        let mut bindings = bindings;
        for binding in &mut bindings {
            let lookup = if binding.action.in_confirmation() {
                &mut confirm_lookup
            } else {
                &mut main
            };
            let mut seen = Vec::with_capacity(binding.keys.len());
            for key in &binding.keys {
                match lookup.get(key) {
                    Some(&first) if first != binding.action => {
                        return Err(KeymapError::DuplicateKey {
                            key: *key,
                            first,
                            second: binding.action,
                        });
                    }
                    _ => {
                        lookup.insert(*key, binding.action);
                    }
                }
                if !seen.contains(key) {
                    seen.push(*key);
                }
            }
            binding.keys = seen;
        }
        Ok(Keymap {
            bindings,
            lookup: main,
            confirm_lookup,
        })
    }

    /// The embedded default keymap.
    pub fn defaults() -> Keymap {
        let bindings = parse_keymap_file(DEFAULT_KEYMAP)
            .expect("the embedded keymap-default.toml parses (tested)");
        Keymap::new(bindings).expect("the embedded keymap-default.toml has no duplicates (tested)")
    }

    /// The defaults with the user's bindings applied: a user binding for an action replaces that
    /// action's default keys (several user entries for one action add up); afterwards a key bound
    /// to two actions is an error naming the key and both actions.
    pub fn with_overrides(file_bindings: &[UserBinding]) -> Result<Keymap, KeymapError> {
        let mut bindings = Keymap::defaults().bindings;
        let mut replaced: Vec<Action> = Vec::new();
        for user in file_bindings {
            let position = bindings.iter().position(|b| b.action == user.action);
            let binding = match position {
                Some(i) => &mut bindings[i],
                None => {
                    bindings.push(Binding {
                        keys: Vec::new(),
                        action: user.action,
                        description: action_name(user.action),
                    });
                    let last = bindings.len() - 1;
                    &mut bindings[last]
                }
            };
            if !replaced.contains(&user.action) {
                binding.keys.clear();
                replaced.push(user.action);
            }
            binding.keys.extend(user.keys.iter().copied());
            if let Some(description) = &user.description {
                binding.description.clone_from(description);
            }
        }
        if bindings
            .iter()
            .any(|b| b.action == Action::Quit && b.keys.is_empty())
        {
            return Err(KeymapError::Unbound {
                action: Action::Quit,
            });
        }
        Keymap::new(bindings)
    }

    /// The action for a key press (key releases map to nothing).
    pub fn action_for(&self, key: &KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        self.lookup.get(&KeySpec::from_event(key)).copied()
    }

    /// The action for a key press while a confirmation is open: its own keys ([`Action::Apply`])
    /// first, then the rest.
    pub(crate) fn confirm_action_for(&self, key: &KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let spec = KeySpec::from_event(key);
        self.confirm_lookup
            .get(&spec)
            .or_else(|| self.lookup.get(&spec))
            .copied()
    }

    /// Every binding in help-screen order.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The keys bound to an action (empty when the user unbound it).
    pub fn keys_for(&self, action: Action) -> &[KeySpec] {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .map_or(&[], |b| b.keys.as_slice())
    }

    /// The first key of an action as text, e.g. `"?"`, for the footer.
    pub fn hint(&self, action: Action) -> Option<String> {
        self.keys_for(action).first().map(ToString::to_string)
    }
}

/// A `[[keys]]` table as written in a file, with spans so that errors can name the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct KeyBindingFile {
    pub(crate) keys: Vec<toml::Spanned<KeySpec>>,
    pub(crate) action: toml::Spanned<String>,
    pub(crate) description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    keys: Vec<KeyBindingFile>,
}

/// Parses the embedded default keymap (errors are for its test, as text).
fn parse_keymap_file(text: &str) -> Result<Vec<Binding>, String> {
    let file: KeymapFile = toml::from_str(text).map_err(|e| e.to_string())?;
    file.keys
        .into_iter()
        .map(|entry| {
            let action = parse_action(entry.action.get_ref()).map_err(|e| e.to_string())?;
            Ok(Binding {
                keys: entry
                    .keys
                    .into_iter()
                    .map(toml::Spanned::into_inner)
                    .collect(),
                action,
                description: entry.description.unwrap_or_else(|| action_name(action)),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_keymap_parses_without_duplicates() {
        let bindings = parse_keymap_file(DEFAULT_KEYMAP).expect("parses");
        Keymap::new(bindings).expect("no duplicates");
    }

    #[test]
    fn every_default_binding_has_a_written_description() {
        let file: KeymapFile = toml::from_str(DEFAULT_KEYMAP).expect("parses");
        for entry in file.keys {
            let description = entry.description.unwrap_or_default();
            assert!(
                !description.trim().is_empty(),
                "{} has no description",
                entry.action.get_ref()
            );
        }
    }
}
