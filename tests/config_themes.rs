//! Shipped themes: every file in `themes/` loads, every built-in name resolves, monochrome has no
//! colour, and theme file errors name the file and line.

use std::path::{Path, PathBuf};

use lbtop::config::theme::SLOT_NAMES;
use lbtop::config::{ConfigError, Theme};
use ratatui::style::{Color, Modifier};

fn shipped_theme_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("themes/ exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_theme_file_loads_and_is_built_in() {
    let files = shipped_theme_files();
    assert!(files.len() >= 4);
    for path in files {
        let theme = Theme::load(&path.display().to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let stem = path.file_stem().expect("file name").to_string_lossy();
        assert_eq!(
            theme.name,
            stem,
            "{}: `name` should match the file",
            path.display()
        );
        assert!(
            Theme::builtin_names().contains(&theme.name.as_str()),
            "{} is not embedded: add it to the built-ins in src/config/theme.rs",
            path.display()
        );
        assert_eq!(Theme::builtin(&theme.name), Some(theme));
    }
}

#[test]
fn every_builtin_name_resolves() {
    for name in Theme::builtin_names() {
        let theme = Theme::builtin(name).unwrap_or_else(|| panic!("{name} does not load"));
        assert_eq!(theme.name, *name);
        assert_eq!(Theme::load(name).expect("loads by name"), theme);
    }
    assert_eq!(Theme::builtin("nope"), None);
}

#[test]
fn builtin_themes_differ_from_each_other() {
    let themes: Vec<Theme> = Theme::builtin_names()
        .iter()
        .map(|n| Theme::builtin(n).expect("builtin"))
        .collect();
    for (i, a) in themes.iter().enumerate() {
        for b in &themes[i + 1..] {
            assert_ne!(
                a.slots(),
                b.slots(),
                "{} and {} are identical",
                a.name,
                b.name
            );
        }
    }
}

#[test]
fn monochrome_has_no_colours_only_modifiers() {
    let theme = Theme::monochrome();
    assert_eq!(theme.name, "monochrome");
    for (slot, style) in theme.slots() {
        assert_eq!(style.fg, None, "monochrome {slot} has a foreground colour");
        assert_eq!(style.bg, None, "monochrome {slot} has a background colour");
        assert_eq!(
            style.underline_color, None,
            "monochrome {slot} has an underline colour"
        );
    }
    assert!(theme.selected.add_modifier.contains(Modifier::REVERSED));
}

#[test]
fn the_default_theme_uses_htop_cpu_colours() {
    let theme = Theme::default();
    assert_eq!(theme.name, "default");
    assert_eq!(theme.cpu_user.fg, Some(Color::Green));
    assert_eq!(theme.cpu_nice.fg, Some(Color::Blue));
    assert_eq!(theme.cpu_system.fg, Some(Color::Red));
    assert_eq!(theme.cpu_iowait.fg, Some(Color::DarkGray));
    assert_eq!(theme.cpu_irq.fg, Some(Color::Magenta));
    assert_eq!(theme.cpu_softirq.fg, Some(Color::Yellow));
    assert_eq!(theme.cpu_steal.fg, Some(Color::Cyan));
}

#[test]
fn slot_names_cover_every_style() {
    assert_eq!(Theme::default().slots().len(), SLOT_NAMES.len());
}

#[test]
fn an_unknown_theme_name_is_an_error_naming_it() {
    let error = Theme::load("solarised").expect_err("unknown");
    assert!(matches!(error, ConfigError::UnknownTheme { .. }));
    assert!(error.to_string().contains("solarised"));
    assert!(
        error.to_string().contains("high-contrast"),
        "lists the built-ins: {error}"
    );
}

#[test]
fn a_missing_theme_file_is_an_error_naming_it() {
    let error = Theme::load("/nonexistent/mine.toml").expect_err("missing");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/mine.toml"));
}

#[test]
fn theme_file_errors_name_the_file_and_line() {
    let cases = [
        (
            "[styles]\nborder = { fg = \"blu\" }\n",
            2,
            "unknown colour `blu`",
        ),
        ("[styles]\n\nborder = { fg = 300 }\n", 3, "not in 0-255"),
        (
            "[styles]\nborder = { fg = \"#12345\" }\n",
            2,
            "unknown colour",
        ),
        (
            "[styles]\nborder = { modifiers = [\"blink\"] }\n",
            2,
            "blink",
        ),
        ("[styles]\nborders = { fg = \"red\" }\n", 2, "unknown field"),
        (
            "[styles]\nborder = { fg = \"red\", colour = \"red\" }\n",
            2,
            "unknown field",
        ),
        ("colours = 1\n", 1, "unknown field"),
        (
            "name = \"x\"\ninherits = \"solarised\"\n",
            2,
            "not a built-in theme",
        ),
        ("[styles\n", 1, ""),
    ];
    for (text, line, message) in cases {
        let error = Theme::from_toml_str(text, Path::new("mine.toml")).expect_err(text);
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("mine.toml:{line}:")),
            "{text:?}: {shown}"
        );
        assert!(shown.contains(message), "{text:?}: {shown}");
    }
}
