//! The shipped sample config and every fixture config: valid ones load, invalid ones fail with an
//! error that names the file and the line (each invalid fixture states both in its header).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lbtop::app::action::Action;
use lbtop::config::{Config, ConfigError, Overrides, Theme};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn header(text: &str, field: &str) -> Option<String> {
    let prefix = format!("# {field}:");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().to_string())
}

#[test]
fn the_example_config_loads_and_sets_what_it_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lbtop.example.toml");
    let config = Config::load(Some(&path), &Overrides::default())
        .unwrap_or_else(|e| panic!("lbtop.example.toml: {e}"));
    assert_eq!(config.interval, Duration::from_secs(1));
    assert_eq!(config.history_len, 300);
    assert!(config.mouse);
    assert_eq!(config.theme.name, "default");
    assert_eq!(config.source.as_deref(), Some(path.as_path()));
    assert_eq!(config.node_map.len(), 2);
    assert_eq!(
        config.prometheus.url.as_deref(),
        Some("http://prometheus.example.net:9090")
    );
    assert_eq!(config.prometheus.timeout, Some(Duration::from_secs(5)));
    assert_eq!(config.keymap.hint(Action::Help).as_deref(), Some("f1"));
}

#[test]
fn every_valid_fixture_loads() {
    for path in fixtures("valid") {
        if let Err(e) = Config::load(Some(&path), &Overrides::default()) {
            panic!("{} should load: {e}", path.display());
        }
    }
}

#[test]
fn every_invalid_fixture_fails_naming_the_file_and_line() {
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let line: usize = header(&text, "expect-line")
            .and_then(|l| l.parse().ok())
            .unwrap_or_else(|| panic!("{} has no `# expect-line: N` header", path.display()));
        let message = header(&text, "expect-message").unwrap_or_default();
        let file = header(&text, "expect-file").unwrap_or_else(|| path.display().to_string());

        let error = match Config::load(Some(&path), &Overrides::default()) {
            Ok(_) => panic!("{} should fail", path.display()),
            Err(error) => error,
        };
        let shown = error.to_string();
        assert!(
            shown.contains(&format!("{file}:{line}:")),
            "{}: error should name {file} line {line}: {shown}",
            path.display()
        );
        assert!(
            shown.contains(&message),
            "{}: error should say {message:?}: {shown}",
            path.display()
        );
        let location = error.location().expect("a file error has a location");
        assert_eq!(location.line, line, "{}: {shown}", path.display());
        assert!(location.column >= 1);
    }
}

#[test]
fn full_fixture_values_reach_the_resolved_config() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let config = Config::load(Some(&path), &Overrides::default()).expect("valid");
    assert_eq!(config.interval, Duration::from_millis(2500));
    assert_eq!(config.history_len, 600);
    assert_eq!(config.forget_after, std::time::Duration::from_secs(3600));
    assert!(!config.mouse, "mouse = false");
    let state = lbtop::app::State::new(lbtop::runtime::state_options(&config, false));
    assert!(
        !state.ui().mouse,
        "the view starts with the mouse left to the terminal"
    );
    assert_eq!(config.theme.name, "light");
    assert!((config.thresholds.warning_margin - 0.5).abs() < f64::EPSILON);
    assert!(config.thresholds.hysteresis.abs() < f64::EPSILON);
    assert_eq!(config.thresholds.stale_intervals, 5);
    assert_eq!(config.node_map[0].match_, "10.0.0.0/24");
    assert_eq!(config.node_map[0].host, "web-bastion");
    assert_eq!(config.keymap.hint(Action::Quit).as_deref(), Some("x"));
    assert_eq!(config.keymap.hint(Action::Help).as_deref(), Some("f1"));
}

#[test]
fn a_relative_theme_path_is_taken_from_the_config_files_directory() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/theme-file.toml");
    let config = Config::load(Some(&path), &Overrides::default()).expect("valid");
    let light = Theme::builtin("light").expect("builtin");
    assert_eq!(config.theme.name, "custom");
    assert_ne!(config.theme.border, light.border);
    assert_eq!(config.theme.header, light.header);
}

#[test]
fn an_explicit_config_file_that_does_not_exist_is_an_error_naming_it() {
    let path = Path::new("/nonexistent/lbtop/config.toml");
    let error = Config::load(Some(path), &Overrides::default()).expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/lbtop/config.toml"));
}

#[test]
fn defaults_without_a_file() {
    let config = Config::default_with(&Overrides::default());
    assert_eq!(config.interval, Duration::from_secs(1));
    assert_eq!(config.history_len, 300);
    assert!(config.mouse, "lbtop takes the mouse unless told not to");
    assert!((config.thresholds.warning_margin - 1.0).abs() < f64::EPSILON);
    assert!((config.thresholds.hysteresis - 0.25).abs() < f64::EPSILON);
    assert_eq!(config.thresholds.stale_intervals, 3);
    assert_eq!(config.theme, Theme::default());
    assert!(config.node_map.is_empty());
    assert!(config.source.is_none());
}

#[test]
fn the_default_config_path_is_lbtop_config_toml() {
    if let Some(path) = lbtop::config::default_config_path() {
        assert!(path.ends_with("lbtop/config.toml"), "{}", path.display());
    }
}

#[test]
fn errors_in_text_name_the_origin_and_column() {
    let text = "interval = \"1s\"\n\n[thresholds]\n  hysteresis = -1\n";
    let error = Config::from_toml_str(text, Path::new("inline.toml"), &Overrides::default())
        .expect_err("negative hysteresis");
    assert!(
        error
            .to_string()
            .starts_with("inline.toml:4:16: `thresholds.hysteresis`"),
        "{error}"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics_and_errors_are_located(text in "\\PC{0,80}") {
        if let Err(error) = Config::from_toml_str(&text, Path::new("fuzz.toml"), &Overrides::default()) {
            let shown = error.to_string();
            proptest::prop_assert!(shown.starts_with("fuzz.toml:"), "{}", shown);
        }
    }

    #[test]
    fn config_shaped_text_never_panics(
        key in "(interval|theme|history|thresholds\\.warning-margin|thresholds\\.hysteresis|thresholds\\.stale-intervals)",
        value in "(\"[a-z0-9 ]{0,6}\"|-?[0-9]{1,20}(\\.[0-9]+)?|nan|inf|-inf|true|\\[\\])",
    ) {
        let text = match key.split_once('.') {
            Some((table, key)) => format!("[{table}]\n{key} = {value}\n"),
            None => format!("{key} = {value}\n"),
        };
        if let Err(error) = Config::from_toml_str(&text, Path::new("fuzz.toml"), &Overrides::default()) {
            proptest::prop_assert!(error.to_string().starts_with("fuzz.toml:"), "{}", error);
        }
    }
}

#[test]
fn prometheus_credentials_load_from_the_file_and_never_show_in_debug_output() {
    use lbtop::source::spec::PrometheusAuth;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/prometheus.toml");
    let config = Config::load(Some(&path), &Overrides::default()).expect("loads");
    assert_eq!(
        config.prometheus.auth,
        PrometheusAuth::Basic {
            user: "lbtop".into(),
            password: "correct horse".into()
        }
    );
    assert_eq!(
        config.prometheus.ca.as_deref(),
        Some(Path::new("/etc/ssl/prometheus-ca.pem"))
    );
    assert_eq!(config.prometheus.answer_memory, Some(128 << 20));
    let shown = format!("{config:?}");
    assert!(
        shown.contains("lbtop") && !shown.contains("correct horse"),
        "{shown}"
    );
}

#[test]
fn a_theme_that_is_no_file_is_said_where_the_config_names_it_and_raw_keys_are_escaped() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "interval = \"1s\"\ntheme = \"/dev/zero\"\n").expect("write");
    let e = Config::load(Some(&path), &Overrides::default()).expect_err("not a theme file");
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}:2:", path.display())),
        "{text}"
    );
    assert!(text.contains("not a regular file"), "{text}");

    std::fs::write(&path, "\"\\u001b[31mkey\" = 1\n").expect("write");
    let e = Config::load(Some(&path), &Overrides::default()).expect_err("unknown key");
    let text = e.to_string();
    assert!(text.contains("unknown field"), "{text}");
    assert!(!text.contains('\u{1b}'), "{text}");
}
