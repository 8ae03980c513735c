//! Keymap: defaults cover every action without duplicates, user bindings replace an action's
//! keys, conflicts are rejected, shifted letters match however the terminal reports them, and key
//! names round-trip.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use lbtop::app::action::Action;
use lbtop::config::keymap::action_name;
use lbtop::config::{KeySpec, Keymap, KeymapError, UserBinding};

fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, modifiers)
}

fn key(text: &str) -> KeySpec {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn every_action_has_a_default_key() {
    let keymap = Keymap::defaults();
    for action in Action::ALL {
        assert!(
            !keymap.keys_for(*action).is_empty(),
            "{} has no default key",
            action_name(*action)
        );
        assert!(keymap.hint(*action).is_some());
    }
    assert_eq!(
        keymap.bindings().len(),
        Action::ALL.len(),
        "one binding per action"
    );
}

#[test]
fn no_default_key_is_bound_twice() {
    // Within one context: the keys of a confirmation (`apply`) may be keys the panes use.
    let keymap = Keymap::defaults();
    let mut seen = std::collections::HashMap::new();
    for binding in keymap.bindings() {
        assert!(!binding.description.trim().is_empty());
        for key in &binding.keys {
            let context = binding.action.in_confirmation();
            if let Some(other) = seen.insert((context, *key), binding.action) {
                panic!("{key} is bound to {other:?} and {:?}", binding.action);
            }
        }
    }
}

#[test]
fn default_keys_as_briefed() {
    let keymap = Keymap::defaults();
    let expect = [
        ("q", Action::Quit),
        ("ctrl-c", Action::Quit),
        ("?", Action::Help),
        ("esc", Action::Back),
        ("tab", Action::NextPane),
        ("shift-tab", Action::PrevPane),
        ("up", Action::Up),
        ("k", Action::Up),
        ("down", Action::Down),
        ("j", Action::Down),
        ("pgup", Action::PageUp),
        ("pgdn", Action::PageDown),
        ("home", Action::Top),
        ("end", Action::Bottom),
        ("enter", Action::Toggle),
        ("e", Action::ExpandAll),
        ("c", Action::CollapseAll),
        ("s", Action::SortNext),
        ("S", Action::SortReverse),
        ("/", Action::Filter),
        ("space", Action::Pause),
        ("ctrl-r", Action::Refresh),
        ("f5", Action::Refresh),
        ("R", Action::ToggleRecord),
        ("d", Action::Drain),
        ("w", Action::Reweight),
        ("r", Action::Restore),
        ("t", Action::StepForward),
        ("T", Action::StepBack),
        ("]", Action::SeekForward),
        ("[", Action::SeekBack),
        ("}", Action::SeekForwardLong),
        ("{", Action::SeekBackLong),
        ("g", Action::GoToTime),
        ("+", Action::SpeedUp),
        ("-", Action::SpeedDown),
    ];
    for (name, action) in expect {
        let spec = key(name);
        let event = press(spec.code, spec.modifiers);
        assert_eq!(keymap.action_for(&event), Some(action), "{name}");
    }
    assert_eq!(keymap.hint(Action::Help).as_deref(), Some("?"));
    assert_eq!(keymap.hint(Action::Quit).as_deref(), Some("q"));
}

#[test]
fn shifted_letters_match_with_or_without_the_shift_modifier() {
    let keymap = Keymap::defaults();
    for (c, action) in [
        ('R', Action::ToggleRecord),
        ('S', Action::SortReverse),
        ('T', Action::StepBack),
    ] {
        assert_eq!(
            keymap.action_for(&press(KeyCode::Char(c), KeyModifiers::NONE)),
            Some(action)
        );
        assert_eq!(
            keymap.action_for(&press(KeyCode::Char(c), KeyModifiers::SHIFT)),
            Some(action)
        );
        // Some terminals (kitty protocol) report the base letter with SHIFT.
        let lower = c.to_ascii_lowercase();
        assert_eq!(
            keymap.action_for(&press(KeyCode::Char(lower), KeyModifiers::SHIFT)),
            Some(action)
        );
    }
    // ...and the lowercase letter without shift is a different action.
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('r'), KeyModifiers::NONE)),
        Some(Action::Restore)
    );
    // Shifted symbols arrive with SHIFT set on some terminals.
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('?'), KeyModifiers::SHIFT)),
        Some(Action::Help)
    );
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('}'), KeyModifiers::SHIFT)),
        Some(Action::SeekForwardLong)
    );
    assert_eq!(key("shift-r"), key("R"));
}

#[test]
fn shift_tab_matches_as_backtab_with_or_without_shift() {
    let keymap = Keymap::defaults();
    for event in [
        press(KeyCode::BackTab, KeyModifiers::SHIFT),
        press(KeyCode::BackTab, KeyModifiers::NONE),
        press(KeyCode::Tab, KeyModifiers::SHIFT),
    ] {
        assert_eq!(
            keymap.action_for(&event),
            Some(Action::PrevPane),
            "{event:?}"
        );
    }
    assert_eq!(key("backtab"), key("shift-tab"));
}

#[test]
fn control_keys_need_control_and_releases_do_nothing() {
    let keymap = Keymap::defaults();
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        Some(Action::Quit)
    );
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)),
        None
    );
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
        None
    );
    let mut release = press(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert_eq!(keymap.action_for(&release), None);
}

#[test]
fn a_user_binding_replaces_the_actions_default_keys() {
    let keymap = Keymap::with_overrides(&[UserBinding {
        keys: vec![key("x")],
        action: Action::Quit,
        description: None,
    }])
    .expect("valid");
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('x'), KeyModifiers::NONE)),
        Some(Action::Quit)
    );
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('q'), KeyModifiers::NONE)),
        None
    );
    assert_eq!(keymap.hint(Action::Quit).as_deref(), Some("x"));
    // The description and the other actions are untouched.
    let defaults = Keymap::defaults();
    let description = |k: &Keymap| {
        k.bindings()
            .iter()
            .find(|b| b.action == Action::Quit)
            .map(|b| b.description.clone())
    };
    assert_eq!(description(&keymap), description(&defaults));
    assert_eq!(
        keymap.keys_for(Action::Help),
        defaults.keys_for(Action::Help)
    );
}

#[test]
fn a_freed_key_can_be_reused_and_an_action_unbound() {
    let keymap = Keymap::with_overrides(&[
        UserBinding {
            keys: vec![key("ctrl-o")],
            action: Action::Restore,
            description: Some("Put the weight back".into()),
        },
        UserBinding {
            keys: vec![key("r")],
            action: Action::Refresh,
            description: None,
        },
        UserBinding {
            keys: vec![],
            action: Action::GoToTime,
            description: None,
        },
    ])
    .expect("valid");
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('r'), KeyModifiers::NONE)),
        Some(Action::Refresh)
    );
    assert_eq!(
        keymap.action_for(&press(KeyCode::F(5), KeyModifiers::NONE)),
        None
    );
    assert_eq!(keymap.hint(Action::GoToTime), None);
    assert_eq!(
        keymap.action_for(&press(KeyCode::Char('g'), KeyModifiers::NONE)),
        None
    );
    let restore = keymap
        .bindings()
        .iter()
        .find(|b| b.action == Action::Restore)
        .expect("restore binding");
    assert_eq!(restore.description, "Put the weight back");
}

#[test]
fn a_key_bound_to_two_actions_is_rejected_naming_both() {
    let error = Keymap::with_overrides(&[UserBinding {
        keys: vec![key("q")],
        action: Action::Help,
        description: None,
    }])
    .expect_err("q is still quit");
    assert_eq!(
        error,
        KeymapError::DuplicateKey {
            key: key("q"),
            first: Action::Quit,
            second: Action::Help
        }
    );
    assert_eq!(
        error.to_string(),
        "key `q` is bound to both `quit` and `help`"
    );
}

#[test]
fn key_names_round_trip_through_display() {
    for name in [
        "q",
        "?",
        "R",
        "T",
        "ctrl-c",
        "ctrl-r",
        "alt-x",
        "ctrl-alt-d",
        "shift-tab",
        "enter",
        "esc",
        "space",
        "tab",
        "up",
        "down",
        "left",
        "right",
        "pgup",
        "pgdn",
        "home",
        "end",
        "f1",
        "f12",
        "+",
        "-",
        "[",
        "]",
        "{",
        "}",
        "/",
        "ctrl--",
        "shift-up",
        "ctrl-shift-tab",
        "backspace",
        "delete",
        "insert",
        "ctrl-space",
    ] {
        let spec = key(name);
        assert_eq!(spec.to_string(), name, "display of {name}");
        assert_eq!(key(&spec.to_string()), spec, "round trip of {name}");
    }
}

#[test]
fn key_names_accept_aliases_and_any_case_for_named_keys() {
    assert_eq!(key("Enter"), key("enter"));
    assert_eq!(key("return"), key("enter"));
    assert_eq!(key("Escape"), key("esc"));
    assert_eq!(key("PageDown"), key("pgdn"));
    assert_eq!(key("F5"), key("f5"));
    assert_eq!(key("Ctrl-c"), key("ctrl-c"));
    assert_ne!(key("ctrl-C"), key("ctrl-c"), "characters keep their case");
    assert_eq!(key("backtab").to_string(), "shift-tab");
    assert_eq!(
        key("ctrl-c"),
        KeySpec {
            code: KeyCode::Char('c'),
            modifiers: KeyModifiers::CONTROL
        }
    );
    assert_eq!(key("space").code, KeyCode::Char(' '));
}

#[test]
fn bad_key_names_are_errors_not_panics() {
    for name in [
        "",
        "ctrl-",
        "enterr",
        "f0",
        "f99",
        " ",
        "shift-1",
        "shift-?",
        "hyper-x",
        "ctrl-€€",
        "é́",
    ] {
        let error = name.parse::<KeySpec>().expect_err(name);
        assert!(
            matches!(error, KeymapError::BadKey { .. }),
            "{name}: {error}"
        );
        assert!(error.to_string().contains("bad key name"), "{error}");
    }
    // A single non-ASCII character is a fine key.
    assert_eq!(key("é").code, KeyCode::Char('é'));
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(256))]

    #[test]
    fn any_key_name_parses_or_errors_and_parsed_keys_round_trip(text in "\\PC{0,12}") {
        if let Ok(spec) = text.parse::<KeySpec>() {
            proptest::prop_assert_eq!(spec.to_string().parse::<KeySpec>(), Ok(spec));
        }
    }

    #[test]
    fn modifier_prefixed_names_round_trip(
        prefix in "(ctrl-|alt-|shift-|ctrl-alt-|)",
        name in "([a-zA-Z0-9]|[-+/?\\[\\]{}.,;:!@#$%^&*()=_]|enter|esc|tab|up|down|pgup|pgdn|home|end|f[1-9]|space)",
    ) {
        let text = format!("{prefix}{name}");
        if let Ok(spec) = text.parse::<KeySpec>() {
            proptest::prop_assert_eq!(spec.to_string().parse::<KeySpec>(), Ok(spec));
        }
    }
}

#[test]
fn quit_cannot_be_left_without_a_key_and_bad_names_are_shown_escaped() {
    let error = Keymap::with_overrides(&[UserBinding {
        keys: vec![],
        action: Action::Quit,
        description: None,
    }])
    .expect_err("quit unbound");
    assert!(matches!(error, KeymapError::Unbound { .. }), "{error}");
    assert!(
        error.to_string().contains("`quit` is left without a key"),
        "{error}"
    );
    // Quit on other keys is fine.
    Keymap::with_overrides(&[UserBinding {
        keys: vec![key("ctrl-x")],
        action: Action::Quit,
        description: None,
    }])
    .expect("quit moved");
    let bad = "\u{1b}[31mzz".parse::<KeySpec>().expect_err("not a key");
    assert!(!bad.to_string().contains('\u{1b}'), "{bad}");
}
