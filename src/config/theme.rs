//! Themes: one ratatui [`Style`] per thing the UI draws, read from TOML. The built-in themes are the
//! files in `themes/`, embedded at build time; a user theme is a file in the same format.
//!
//! ```toml
//! name = "solarized"        # optional, defaults to the file name
//! inherits = "light"        # optional built-in theme for the slots left out; default "default"
//!
//! [styles]
//! border = { fg = "darkgray" }
//! selected = { fg = "black", bg = "#87d7ff", modifiers = ["bold"] }
//! cpu-nice = { fg = 33 }    # 0-255 palette index
//! ```
//!
//! A slot that is given replaces the inherited slot entirely (no merging of `fg`/`bg`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use super::{ConfigError, Location};

/// Built-in themes: (name, file text). The file `themes/<name>.toml` is the source of each.
const BUILTINS: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
];

const BUILTIN_NAMES: &[&str] = &["default", "light", "high-contrast", "monochrome"];

/// How deep `inherits` may chain (built-ins inherit at most once; this only stops a cycle).
const MAX_INHERIT_DEPTH: usize = 4;

macro_rules! theme_slots {
    ($( $(#[doc = $doc:literal])* $slot:ident => $key:literal ),* $(,)?) => {
        /// The slot names as written in theme files, in declaration order.
        pub const SLOT_NAMES: &[&str] = &[ $( $key, )* ];

        /// Every style the UI draws with. Build one with [`Theme::load`], [`Theme::builtin`] or
        /// [`Theme::default`].
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Theme {
            /// The theme's name (`default`, or a user theme's `name`/file name).
            pub name: String,
            $( $(#[doc = $doc])* pub $slot: Style, )*
        }

        /// The `[styles]` table of a theme file.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct StylesFile {
            $( #[serde(rename = $key)] $slot: Option<StyleFile>, )*
        }

        impl StylesFile {
            /// The kebab-case names of the slots left out of the file.
            #[cfg(test)]
            fn missing(&self) -> Vec<String> {
                let mut missing = Vec::new();
                $( if self.$slot.is_none() { missing.push($key.to_string()); } )*
                missing
            }

            /// Applies the slots given in the file over `base`.
            fn apply(self, mut base: Theme) -> Theme {
                $( if let Some(style) = self.$slot { base.$slot = style.into_style(); } )*
                base
            }
        }

        impl Theme {
            /// A theme with every slot unstyled (the terminal's own colours).
            fn blank(name: &str) -> Theme {
                Theme { name: name.to_string(), $( $slot: Style::new(), )* }
            }

            /// Every slot as `(name as written in theme files, style)`, in declaration order.
            pub fn slots(&self) -> Vec<(&'static str, Style)> {
                vec![ $( ($key, self.$slot), )* ]
            }
        }
    };
}

theme_slots! {
    /// Text and background of the whole screen.
    base => "base",
    /// Pane borders.
    border => "border",
    /// The border of the focused pane.
    border_focused => "border-focused",
    /// Pane titles.
    title => "title",
    /// Table header rows.
    header => "header",
    /// The selected row.
    selected => "selected",
    /// Secondary text: units, stale values, unreachable hosts' last numbers.
    dim => "dim",
    /// Healthy: host up, load below the warning line.
    ok => "ok",
    /// Load within the warning margin of the core count; a host slow to answer.
    warning => "warning",
    /// Load above the core count; a host down; a real server drained.
    critical => "critical",
    /// CPU time in user space.
    cpu_user => "cpu-user",
    /// CPU time in niced (low-priority) user space.
    cpu_nice => "cpu-nice",
    /// CPU time in the kernel.
    cpu_system => "cpu-system",
    /// CPU idle waiting for I/O.
    cpu_iowait => "cpu-iowait",
    /// CPU time in hardware interrupts.
    cpu_irq => "cpu-irq",
    /// CPU time in soft interrupts (network receive lands here on a busy node).
    cpu_softirq => "cpu-softirq",
    /// CPU time stolen by the hypervisor.
    cpu_steal => "cpu-steal",
    /// The unfilled part of a bar or gauge.
    gauge_empty => "gauge-empty",
    /// The mark for the alert threshold (load = cores) on a load gauge.
    threshold_mark => "threshold-mark",
    /// Sparklines (rates, load history).
    sparkline => "sparkline",
    /// The status bar at the bottom.
    status_bar => "status-bar",
    /// Keys in the footer and the help screen.
    key_hint => "key-hint",
    /// The recording indicator.
    recording => "recording",
    /// The replay indicator and timeline.
    replay => "replay",
    /// Popups: help, confirm, weight prompt.
    popup => "popup",
    /// Text being typed: filter, weight, go-to-time.
    input => "input",
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::builtin("default").expect("the embedded default theme is valid (tested)")
    }
}

impl Theme {
    /// Names of the themes built into the binary.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        builtin_at_depth(name, 0).and_then(Result::ok)
    }

    /// The theme without any colour, for `NO_COLOR` and monochrome terminals.
    pub fn monochrome() -> Theme {
        Theme::builtin("monochrome").expect("the embedded monochrome theme is valid (tested)")
    }

    /// A built-in theme by name, else a theme file by path.
    pub fn load(name_or_path: &str) -> Result<Theme, ConfigError> {
        if let Some(theme) = Theme::builtin(name_or_path) {
            return Ok(theme);
        }
        let path = Path::new(name_or_path);
        let looks_like_path = name_or_path.contains(std::path::MAIN_SEPARATOR)
            || name_or_path.contains('/')
            || path.extension().is_some();
        if looks_like_path || path.exists() {
            Theme::from_file(path)
        } else {
            Err(ConfigError::UnknownTheme {
                name: name_or_path.to_string(),
            })
        }
    }

    /// A theme file.
    pub(crate) fn from_file(path: &Path) -> Result<Theme, ConfigError> {
        let text = crate::fsutil::read_text(path, crate::fsutil::SMALL_FILE_BYTES)?;
        Theme::from_toml_str(&text, path)
    }

    /// A theme from TOML text; `origin` names the file in errors and gives the default name.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Theme, ConfigError> {
        parse_theme(text, origin, 0, false)
    }
}

fn builtin_at_depth(name: &str, depth: usize) -> Option<Result<Theme, ConfigError>> {
    let (name, text) = BUILTINS.iter().find(|(n, _)| *n == name)?;
    let origin = PathBuf::from(format!("themes/{name}.toml"));
    Some(parse_theme(text, &origin, depth, *name == "default"))
}

/// A theme file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ThemeFile {
    name: Option<String>,
    inherits: Option<toml::Spanned<String>>,
    #[serde(default)]
    styles: StylesFile,
}

/// `is_root`: this is the built-in default theme, the root of inheritance, whose own missing slots
/// stay unstyled.
fn parse_theme(
    text: &str,
    origin: &Path,
    depth: usize,
    is_root: bool,
) -> Result<Theme, ConfigError> {
    let file: ThemeFile =
        toml::from_str(text).map_err(|error| ConfigError::from_toml(&error, text, origin))?;
    let default_name = origin.file_stem().map_or_else(
        || "custom".to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let name = file.name.unwrap_or(default_name);
    let base = match &file.inherits {
        _ if is_root => Theme::blank("default"),
        None => match builtin_at_depth("default", depth + 1) {
            Some(result) => result?,
            None => Theme::blank("default"),
        },
        Some(parent) => {
            let value_error = |message: String| ConfigError::Value {
                location: Location::from_span(origin, text, parent.span()),
                key: "inherits".to_string(),
                message,
            };
            if depth >= MAX_INHERIT_DEPTH {
                return Err(value_error("themes inherit each other in a cycle".into()));
            }
            match builtin_at_depth(parent.get_ref(), depth + 1) {
                Some(result) => result?,
                None => {
                    return Err(value_error(format!(
                        "`{}` is not a built-in theme ({})",
                        parent.get_ref(),
                        BUILTIN_NAMES.join(", ")
                    )));
                }
            }
        }
    };
    let mut theme = file.styles.apply(base);
    theme.name = name;
    Ok(theme)
}

/// One slot in a theme file: `{ fg = "...", bg = "...", modifiers = ["bold", ...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StyleFile {
    fg: Option<ColorSpec>,
    bg: Option<ColorSpec>,
    #[serde(default)]
    modifiers: Vec<ModifierName>,
}

impl StyleFile {
    fn into_style(self) -> Style {
        let mut style = Style::new();
        if let Some(fg) = self.fg {
            style = style.fg(fg.0);
        }
        if let Some(bg) = self.bg {
            style = style.bg(bg.0);
        }
        for modifier in self.modifiers {
            style = style.add_modifier(modifier.modifier());
        }
        style
    }
}

/// A colour: a name (`red`, `darkgray`, `light-blue`, `reset`), `#rrggbb`, or a 0-255 palette index
/// (as a number or a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ColorSpec(Color);

const COLOR_HELP: &str = "use a colour name (black, red, green, yellow, blue, magenta, cyan, gray, \
     darkgray, white, light-red …, reset), #rrggbb, or a palette index 0-255";

impl<'de> Deserialize<'de> for ColorSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ColorSpec, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ColorSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a colour name, #rrggbb, or a palette index 0-255")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<ColorSpec, E> {
                Color::from_str(text)
                    .map(ColorSpec)
                    .map_err(|_| E::custom(format!("unknown colour `{text}`: {COLOR_HELP}")))
            }
            fn visit_i64<E: serde::de::Error>(self, index: i64) -> Result<ColorSpec, E> {
                u8::try_from(index)
                    .map(|i| ColorSpec(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {index} is not in 0-255")))
            }
            fn visit_u64<E: serde::de::Error>(self, index: u64) -> Result<ColorSpec, E> {
                u8::try_from(index)
                    .map(|i| ColorSpec(Color::Indexed(i)))
                    .map_err(|_| E::custom(format!("colour index {index} is not in 0-255")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Text attributes a slot can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ModifierName {
    Bold,
    Dim,
    Italic,
    #[serde(alias = "underline")]
    Underlined,
    SlowBlink,
    RapidBlink,
    #[serde(alias = "reverse")]
    Reversed,
    Hidden,
    CrossedOut,
}

impl ModifierName {
    fn modifier(self) -> Modifier {
        match self {
            ModifierName::Bold => Modifier::BOLD,
            ModifierName::Dim => Modifier::DIM,
            ModifierName::Italic => Modifier::ITALIC,
            ModifierName::Underlined => Modifier::UNDERLINED,
            ModifierName::SlowBlink => Modifier::SLOW_BLINK,
            ModifierName::RapidBlink => Modifier::RAPID_BLINK,
            ModifierName::Reversed => Modifier::REVERSED,
            ModifierName::Hidden => Modifier::HIDDEN,
            ModifierName::CrossedOut => Modifier::CROSSED_OUT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_file_sets_every_slot() {
        for (name, text) in BUILTINS {
            let file: ThemeFile = toml::from_str(text).expect("parses");
            assert!(
                file.styles.missing().is_empty(),
                "themes/{name}.toml leaves out {:?}",
                file.styles.missing()
            );
        }
    }

    #[test]
    fn builtin_table_and_names_agree() {
        let names: Vec<&str> = BUILTINS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, BUILTIN_NAMES);
    }

    #[test]
    fn slot_names_match_the_struct() {
        let theme = Theme::blank("x");
        let names: Vec<&str> = theme.slots().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, SLOT_NAMES);
    }

    #[test]
    fn a_slot_left_out_falls_back_to_the_inherited_theme() {
        let theme = Theme::from_toml_str(
            "[styles]\nborder = { fg = \"red\" }\n",
            Path::new("mine.toml"),
        )
        .expect("valid");
        let default = Theme::default();
        assert_eq!(theme.name, "mine");
        assert_eq!(theme.border, Style::new().fg(Color::Red));
        assert_eq!(theme.selected, default.selected);

        let light =
            Theme::from_toml_str("inherits = \"light\"\n", Path::new("x.toml")).expect("valid");
        assert_eq!(
            light.selected,
            Theme::builtin("light").expect("builtin").selected
        );
    }

    #[test]
    fn colours_by_name_hex_and_index() {
        let theme = Theme::from_toml_str(
            "[styles]\nbase = { fg = \"light-blue\", bg = \"#102030\" }\nok = { fg = 208, bg = \"17\", modifiers = [\"bold\", \"underline\"] }\n",
            Path::new("x.toml"),
        )
        .expect("valid");
        assert_eq!(
            theme.base,
            Style::new()
                .fg(Color::LightBlue)
                .bg(Color::Rgb(0x10, 0x20, 0x30))
        );
        assert_eq!(
            theme.ok,
            Style::new()
                .fg(Color::Indexed(208))
                .bg(Color::Indexed(17))
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        );
    }
}
