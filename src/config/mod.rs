//! Configuration: the TOML file types (every field optional, unknown keys rejected) and the resolved
//! runtime [`Config`], merged as CLI overrides > config file > defaults, with errors that name the
//! file, line and column.

pub mod keymap;
pub mod theme;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use keymap::{Binding, KeySpec, Keymap, KeymapError, UserBinding};
pub use theme::Theme;

use keymap::KeyBindingFile;

/// The poll interval when neither the CLI nor the file sets one.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The longest poll interval accepted.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// The longest `prometheus.forget-after`: a week.
const MAX_FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
/// Samples kept per series (sparklines, history) when the file does not say.
pub(crate) const DEFAULT_HISTORY: usize = 300;
/// The most samples kept per series.
pub(crate) const MAX_HISTORY: usize = 1_000_000;

/// When a node's load counts as a warning or an alert.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Warn when load1 > cores - margin (alert when load1 > cores).
    pub warning_margin: f64,
    /// An alert clears only once load1 falls this far below the line that raised it.
    pub hysteresis: f64,
    /// A host's numbers are shown as stale after this many poll intervals without an answer.
    pub stale_intervals: u32,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            warning_margin: 1.0,
            hysteresis: 0.25,
            stale_intervals: 3,
        }
    }
}

use crate::source::spec::FORGET_AFTER;
pub use crate::source::spec::NodeMapping;
use crate::source::spec::PrometheusAuth;

/// The config file's `[prometheus]`: where it is and how to sign in. The command line's
/// `--prometheus` and `--prometheus-ca` win; credentials come only from here or the environment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PrometheusConfig {
    pub url: Option<String>,
    pub ca: Option<PathBuf>,
    pub auth: PrometheusAuth,
    pub timeout: Option<Duration>,
    /// `answer-memory`: the most bytes of Prometheus's answers held at once.
    pub answer_memory: Option<u64>,
}

/// The resolved configuration the rest of lbtop runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub interval: Duration,
    pub thresholds: Thresholds,
    pub theme: Theme,
    pub keymap: Keymap,
    pub history_len: usize,
    /// Whether lbtop takes the mouse at start; `M` turns it off and on.
    pub mouse: bool,
    pub node_map: Vec<NodeMapping>,
    /// `router-agent`: whether a router over SSH runs `lbtop agent` (the command line wins).
    pub router_agent: Option<crate::source::agent::AgentChoice>,
    /// `router`: the router to watch where the command line names none (`lb1,lb2` for a pair).
    pub router: Option<crate::source::spec::RouterSpec>,
    /// `forget-after`: how long a node its source no longer lists (an instance whose target left
    /// Prometheus, a real server gone from the router's table under `--nodes auto`) stays shown.
    pub forget_after: Duration,
    pub prometheus: PrometheusConfig,
    /// The file the configuration came from, if any.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Config {
        Config::default_with(&Overrides::default())
    }
}

/// Settings given on the command line (and `NO_COLOR`); they win over the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub interval: Option<Duration>,
    /// A built-in theme name or a theme file path.
    pub theme: Option<String>,
    /// `NO_COLOR` is set and non-empty: use the monochrome theme unless `theme` is given.
    pub no_color: bool,
}

/// A place in a file, for error messages: `path:line:column`, both counted from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// The line and column (in characters) of a byte offset range's start in `text`.
    pub(crate) fn from_span(path: &Path, text: &str, span: Range<usize>) -> Location {
        let mut offset = span.start.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            path: path.to_path_buf(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path.display(), self.line, self.column)
    }
}

/// Why a configuration or theme could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (an explicit `--config` that does not exist lands here), or is
    /// not a regular file, or is too large for a config file.
    #[error("cannot read {source}")]
    Read {
        #[from]
        source: crate::fsutil::FileError,
    },
    /// Not valid TOML, an unknown key, a value of the wrong type, or a bad key name / colour.
    #[error("{location}: {message}")]
    Parse { location: Location, message: String },
    /// A well-formed value that is out of range or otherwise unusable.
    #[error("{location}: `{key}` {message}")]
    Value {
        location: Location,
        key: String,
        message: String,
    },
    /// The `[[keys]]` bindings conflict.
    #[error("{location}: {source}")]
    Keymap {
        location: Location,
        #[source]
        source: KeymapError,
    },
    /// `--theme NAME` where NAME is neither built in nor a file.
    #[error(
        "unknown theme `{name}`: not a built-in theme ({}) and no such file",
        Theme::builtin_names().join(", ")
    )]
    UnknownTheme { name: String },
    /// A command-line value out of range.
    #[error("{option}: {message}")]
    Override {
        option: &'static str,
        message: String,
    },
}

impl ConfigError {
    /// Where in which file the problem is, when it is in a file.
    pub fn location(&self) -> Option<&Location> {
        match self {
            ConfigError::Parse { location, .. }
            | ConfigError::Value { location, .. }
            | ConfigError::Keymap { location, .. } => Some(location),
            _ => None,
        }
    }

    /// A TOML syntax or deserialisation error, located by its span.
    pub(crate) fn from_toml(error: &toml::de::Error, text: &str, path: &Path) -> ConfigError {
        ConfigError::Parse {
            location: Location::from_span(path, text, error.span().unwrap_or(0..0)),
            // The message quotes the file's own text (an unknown key, a bad value), which can
            // be anything.
            message: crate::model::text::printable(
                &error.message().trim().replace('\n', " "),
                2000,
            ),
        }
    }
}

/// `$XDG_CONFIG_HOME/lbtop/config.toml` (or the platform's equivalent).
pub fn default_config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "lbtop")
        .map(|dirs| dirs.config_dir().join("config.toml"))
}

/// The config file as written: every field optional, unknown keys rejected, spans kept for errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ConfigFile {
    interval: Option<Spanned<String>>,
    theme: Option<Spanned<String>>,
    history: Option<Spanned<i64>>,
    mouse: Option<bool>,
    thresholds: Option<ThresholdsFile>,
    keys: Option<Vec<KeyBindingFile>>,
    node: Option<Vec<NodeFile>>,
    router: Option<Spanned<String>>,
    router_agent: Option<Spanned<String>>,
    forget_after: Option<Spanned<String>>,
    prometheus: Option<PrometheusFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct PrometheusFile {
    url: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    user: Option<Spanned<String>>,
    password: Option<Spanned<String>>,
    bearer_token: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    answer_memory: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ThresholdsFile {
    warning_margin: Option<Spanned<f64>>,
    hysteresis: Option<Spanned<f64>>,
    stale_intervals: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct NodeFile {
    #[serde(rename = "match")]
    match_: Spanned<String>,
    host: Spanned<String>,
}

/// Resolves one file's values, producing errors located in that file.
struct Resolver<'a> {
    text: &'a str,
    origin: &'a Path,
}

impl Resolver<'_> {
    fn location(&self, span: Range<usize>) -> Location {
        Location::from_span(self.origin, self.text, span)
    }

    fn value_error<T>(
        &self,
        key: &str,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Value {
            location: self.location(value.span()),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn interval(&self, value: &Spanned<String>) -> Result<Duration, ConfigError> {
        let interval = humantime::parse_duration(value.get_ref()).map_err(|e| {
            self.value_error(
                "interval",
                value,
                format!(
                    "is not a duration: {:?} ({e}); write e.g. \"1s\" or \"500ms\"",
                    value.get_ref()
                ),
            )
        })?;
        check_interval(interval).map_err(|message| self.value_error("interval", value, message))?;
        Ok(interval)
    }

    fn non_negative(
        &self,
        key: &str,
        value: Option<&Spanned<f64>>,
        default: f64,
    ) -> Result<f64, ConfigError> {
        let Some(value) = value else {
            return Ok(default);
        };
        let number = *value.get_ref();
        if number.is_finite() && number >= 0.0 {
            Ok(number)
        } else {
            Err(self.value_error(key, value, format!("must be a number ≥ 0, not {number}")))
        }
    }

    fn thresholds(&self, file: Option<&ThresholdsFile>) -> Result<Thresholds, ConfigError> {
        let defaults = Thresholds::default();
        let Some(file) = file else {
            return Ok(defaults);
        };
        let stale_intervals = match &file.stale_intervals {
            None => defaults.stale_intervals,
            Some(value) => u32::try_from(*value.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    self.value_error(
                        "thresholds.stale-intervals",
                        value,
                        format!("must be a whole number ≥ 1, not {}", value.get_ref()),
                    )
                })?,
        };
        Ok(Thresholds {
            warning_margin: self.non_negative(
                "thresholds.warning-margin",
                file.warning_margin.as_ref(),
                defaults.warning_margin,
            )?,
            hysteresis: self.non_negative(
                "thresholds.hysteresis",
                file.hysteresis.as_ref(),
                defaults.hysteresis,
            )?,
            stale_intervals,
        })
    }

    fn history(&self, value: Option<&Spanned<i64>>) -> Result<usize, ConfigError> {
        let Some(value) = value else {
            return Ok(DEFAULT_HISTORY);
        };
        usize::try_from(*value.get_ref())
            .ok()
            .filter(|n| (2..=MAX_HISTORY).contains(n))
            .ok_or_else(|| {
                self.value_error(
                    "history",
                    value,
                    format!(
                        "must be between 2 and {MAX_HISTORY} samples, not {}",
                        value.get_ref()
                    ),
                )
            })
    }

    fn keymap(&self, entries: &[KeyBindingFile]) -> Result<Keymap, ConfigError> {
        let mut user = Vec::with_capacity(entries.len());
        for entry in entries {
            let action = keymap::parse_action(entry.action.get_ref()).map_err(|source| {
                ConfigError::Keymap {
                    location: self.location(entry.action.span()),
                    source,
                }
            })?;
            user.push(UserBinding {
                keys: entry.keys.iter().map(|k| *k.get_ref()).collect(),
                action,
                description: entry.description.clone(),
            });
        }
        Keymap::with_overrides(&user).map_err(|source| {
            // A conflict always involves a key from the file (the defaults have none): point at
            // the last place the file binds that key.
            let span = match &source {
                KeymapError::DuplicateKey { key, .. } => entries
                    .iter()
                    .flat_map(|e| e.keys.iter())
                    .rfind(|k| k.get_ref() == key)
                    .map(Spanned::span),
                _ => None,
            };
            ConfigError::Keymap {
                location: self.location(span.unwrap_or(0..0)),
                source,
            }
        })
    }

    fn node_map(&self, nodes: &[NodeFile]) -> Result<Vec<NodeMapping>, ConfigError> {
        nodes
            .iter()
            .map(|node| {
                for (key, value) in [("node.match", &node.match_), ("node.host", &node.host)] {
                    if value.get_ref().trim().is_empty() {
                        return Err(self.value_error(key, value, "must not be empty"));
                    }
                }
                Ok(NodeMapping {
                    match_: node.match_.get_ref().trim().to_string(),
                    host: node.host.get_ref().trim().to_string(),
                })
            })
            .collect()
    }

    /// `[prometheus]`: a relative CA path is taken from the config file's directory.
    fn prometheus(&self, file: Option<&PrometheusFile>) -> Result<PrometheusConfig, ConfigError> {
        let Some(file) = file else {
            return Ok(PrometheusConfig::default());
        };
        let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().trim().to_string());
        let auth = match (&file.user, &file.password, &file.bearer_token) {
            (Some(user), Some(password), None) => PrometheusAuth::Basic {
                user: user.get_ref().clone(),
                password: password.get_ref().clone(),
            },
            (None, None, Some(token)) => PrometheusAuth::Bearer(token.get_ref().trim().to_string()),
            (None, None, None) => PrometheusAuth::None,
            (_, _, Some(token)) => {
                return Err(self.value_error(
                    "prometheus.bearer-token",
                    token,
                    "goes alone: basic auth (user, password) or a bearer token, not both",
                ));
            }
            (Some(v), None, None) | (None, Some(v), None) => {
                return Err(self.value_error(
                    "prometheus",
                    v,
                    "basic auth needs both `user` and `password`",
                ));
            }
        };
        let timeout = match &file.timeout {
            None => None,
            Some(v) => Some(
                humantime::parse_duration(v.get_ref())
                    .ok()
                    .filter(|d| !d.is_zero() && *d <= MAX_INTERVAL)
                    .ok_or_else(|| {
                        self.value_error("prometheus.timeout", v, "must be a duration, 1ms to 1h")
                    })?,
            ),
        };
        let answer_memory = match &file.answer_memory {
            None => None,
            Some(v) => Some(
                v.get_ref()
                    .trim()
                    .parse::<bytesize::ByteSize>()
                    .ok()
                    .map(|b| b.as_u64())
                    .filter(|n| (1024..=(4u64 << 30)).contains(n))
                    .ok_or_else(|| {
                        self.value_error(
                            "prometheus.answer-memory",
                            v,
                            "must be a size, 1KiB to 4GiB (e.g. \"64MiB\")",
                        )
                    })?,
            ),
        };
        let ca = text(&file.ca).map(|p| match self.origin.parent() {
            Some(dir) if Path::new(&p).is_relative() => dir.join(p),
            _ => PathBuf::from(p),
        });
        Ok(PrometheusConfig {
            url: text(&file.url),
            ca,
            auth,
            timeout,
            answer_memory,
        })
    }

    /// The file's theme, a relative path taken from the config file's directory.
    fn theme(&self, value: &Spanned<String>) -> Result<Theme, ConfigError> {
        let name = value.get_ref();
        if let Some(theme) = Theme::builtin(name) {
            return Ok(theme);
        }
        let path = Path::new(name);
        let path = match self.origin.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        };
        if path.exists() {
            // A theme file that cannot be read is said where the config names it; one that
            // reads but does not parse is said where in the theme file.
            Theme::from_file(&path).map_err(|e| match e {
                ConfigError::Read { source } => {
                    self.value_error("theme", value, format!("cannot read {source}"))
                }
                other => other,
            })
        } else {
            Err(self.value_error(
                "theme",
                value,
                format!(
                    "names no built-in theme ({}) and no file: {} does not exist",
                    Theme::builtin_names().join(", "),
                    path.display()
                ),
            ))
        }
    }
}

fn check_interval(interval: Duration) -> Result<(), String> {
    if interval.is_zero() {
        Err("must be longer than zero".to_string())
    } else if interval > MAX_INTERVAL {
        Err(format!(
            "must be at most 1h, not {}",
            humantime::format_duration(interval)
        ))
    } else {
        Ok(())
    }
}

/// The theme by precedence: an explicit CLI theme, else monochrome under `NO_COLOR`, else the
/// file's, else the default.
fn choose_theme(overrides: &Overrides, from_file: Option<Theme>) -> Result<Theme, ConfigError> {
    if let Some(name) = &overrides.theme {
        return Theme::load(name);
    }
    if overrides.no_color {
        return Ok(Theme::monochrome());
    }
    Ok(from_file.unwrap_or_default())
}

fn override_interval(overrides: &Overrides) -> Result<Option<Duration>, ConfigError> {
    match overrides.interval {
        None => Ok(None),
        Some(interval) => check_interval(interval)
            .map(|()| Some(interval))
            .map_err(|message| ConfigError::Override {
                option: "--interval",
                message,
            }),
    }
}

impl Config {
    /// `path`: `Some` explicit `--config FILE`, which must exist; `None`: the default path if a
    /// file is there, else the built-in defaults.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let path = match path {
            Some(path) => Some(path.to_path_buf()),
            None => default_config_path().filter(|p| p.is_file()),
        };
        let Some(path) = path else {
            let interval = override_interval(overrides)?;
            return Ok(Config {
                interval: interval.unwrap_or(DEFAULT_INTERVAL),
                theme: choose_theme(overrides, None)?,
                ..Config::default_with(&Overrides::default())
            });
        };
        let text = crate::fsutil::read_text(&path, crate::fsutil::SMALL_FILE_BYTES)?;
        Config::from_toml_str(&text, &path, overrides)
    }

    /// A configuration from the text of a config file; `origin` names it in errors and resolves
    /// a relative theme path.
    pub fn from_toml_str(
        text: &str,
        origin: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|error| ConfigError::from_toml(&error, text, origin))?;
        let resolver = Resolver { text, origin };
        let file_interval = file
            .interval
            .as_ref()
            .map(|v| resolver.interval(v))
            .transpose()?;
        let thresholds = resolver.thresholds(file.thresholds.as_ref())?;
        let history_len = resolver.history(file.history.as_ref())?;
        let keymap = resolver.keymap(file.keys.as_deref().unwrap_or_default())?;
        let node_map = resolver.node_map(file.node.as_deref().unwrap_or_default())?;
        let router_agent = file
            .router_agent
            .as_ref()
            .map(|v| {
                v.get_ref()
                    .parse()
                    .map_err(|e: String| resolver.value_error("router-agent", v, e))
            })
            .transpose()?;
        let router = file
            .router
            .as_ref()
            .map(|v| {
                v.get_ref()
                    .parse()
                    .map_err(|e: String| resolver.value_error("router", v, e))
            })
            .transpose()?;
        let forget_after = file
            .forget_after
            .as_ref()
            .map(|v| {
                humantime::parse_duration(v.get_ref())
                    .ok()
                    .filter(|d| (Duration::from_secs(1)..=MAX_FORGET_AFTER).contains(d))
                    .ok_or_else(|| {
                        resolver.value_error("forget-after", v, "must be a duration, 1s to 7d")
                    })
            })
            .transpose()?
            .unwrap_or(FORGET_AFTER);
        let prometheus = resolver.prometheus(file.prometheus.as_ref())?;
        // The file's theme is checked even when the CLI or NO_COLOR overrides it.
        let file_theme = file.theme.as_ref().map(|v| resolver.theme(v)).transpose()?;
        let interval = override_interval(overrides)?
            .or(file_interval)
            .unwrap_or(DEFAULT_INTERVAL);
        Ok(Config {
            interval,
            thresholds,
            theme: choose_theme(overrides, file_theme)?,
            keymap,
            history_len,
            mouse: file.mouse.unwrap_or(true),
            node_map,
            router_agent,
            router,
            forget_after,
            prometheus,
            source: Some(origin.to_path_buf()),
        })
    }

    /// The built-in defaults with the CLI overrides, without any file. It cannot fail: a CLI theme
    /// that does not load is left out here (use [`Config::load`] to get its error), and the
    /// interval is taken as given.
    pub fn default_with(overrides: &Overrides) -> Config {
        let theme = choose_theme(overrides, None).unwrap_or_else(|_| {
            if overrides.no_color {
                Theme::monochrome()
            } else {
                Theme::default()
            }
        });
        Config {
            interval: overrides.interval.unwrap_or(DEFAULT_INTERVAL),
            thresholds: Thresholds::default(),
            theme,
            keymap: Keymap::defaults(),
            history_len: DEFAULT_HISTORY,
            mouse: true,
            node_map: Vec::new(),
            router_agent: None,
            router: None,
            forget_after: FORGET_AFTER,
            prometheus: PrometheusConfig::default(),
            source: None,
        }
    }
}
