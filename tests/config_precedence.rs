//! Which setting wins: command line > config file > defaults, and NO_COLOR.

use std::path::Path;
use std::time::Duration;

use lbtop::config::{Config, ConfigError, Overrides, Theme};

fn from_text(text: &str, overrides: &Overrides) -> Config {
    Config::from_toml_str(text, Path::new("test.toml"), overrides).expect("valid config")
}

#[test]
fn the_file_interval_beats_the_default() {
    let config = from_text("interval = \"250ms\"", &Overrides::default());
    assert_eq!(config.interval, Duration::from_millis(250));
}

#[test]
fn the_cli_interval_beats_the_file() {
    let overrides = Overrides {
        interval: Some(Duration::from_secs(5)),
        ..Overrides::default()
    };
    let config = from_text("interval = \"250ms\"", &overrides);
    assert_eq!(config.interval, Duration::from_secs(5));
    assert_eq!(
        Config::default_with(&overrides).interval,
        Duration::from_secs(5)
    );
}

#[test]
fn a_zero_cli_interval_is_rejected_naming_the_option() {
    let overrides = Overrides {
        interval: Some(Duration::ZERO),
        ..Overrides::default()
    };
    let error = Config::from_toml_str("", Path::new("t.toml"), &overrides).expect_err("zero");
    assert!(matches!(error, ConfigError::Override { .. }));
    assert!(error.to_string().contains("--interval"), "{error}");
}

#[test]
fn no_color_selects_monochrome_over_the_default_and_the_file_theme() {
    let overrides = Overrides {
        no_color: true,
        ..Overrides::default()
    };
    assert_eq!(Config::default_with(&overrides).theme, Theme::monochrome());
    assert_eq!(
        from_text("theme = \"light\"", &overrides).theme,
        Theme::monochrome()
    );
}

#[test]
fn a_cli_theme_beats_no_color_and_the_file() {
    let overrides = Overrides {
        theme: Some("high-contrast".to_string()),
        no_color: true,
        ..Overrides::default()
    };
    let expected = Theme::builtin("high-contrast").expect("builtin");
    assert_eq!(from_text("theme = \"light\"", &overrides).theme, expected);
    assert_eq!(Config::default_with(&overrides).theme, expected);
}

#[test]
fn the_file_theme_beats_the_default() {
    let config = from_text("theme = \"light\"", &Overrides::default());
    assert_eq!(config.theme, Theme::builtin("light").expect("builtin"));
}

#[test]
fn a_cli_theme_can_be_a_file() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/themes/custom.toml");
    let overrides = Overrides {
        theme: Some(path.display().to_string()),
        ..Overrides::default()
    };
    assert_eq!(from_text("", &overrides).theme.name, "custom");
}

#[test]
fn an_unknown_cli_theme_is_an_error_but_defaults_still_resolve() {
    let overrides = Overrides {
        theme: Some("solarised".to_string()),
        ..Overrides::default()
    };
    let error = Config::from_toml_str("", Path::new("t.toml"), &overrides).expect_err("unknown");
    assert!(matches!(error, ConfigError::UnknownTheme { .. }), "{error}");
    assert!(error.to_string().contains("solarised"));
    assert_eq!(Config::default_with(&overrides).theme, Theme::default());
}

#[test]
fn the_file_theme_is_checked_even_when_overridden() {
    let overrides = Overrides {
        no_color: true,
        ..Overrides::default()
    };
    let error = Config::from_toml_str("theme = \"nope\"", Path::new("t.toml"), &overrides)
        .expect_err("unknown theme in file");
    assert!(error.to_string().starts_with("t.toml:1:9:"), "{error}");
}
