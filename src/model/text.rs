//! Text from other hosts made safe to show: control characters (which a terminal would obey) and
//! invisible direction marks are escaped, and the length is bounded.

/// `s` with every control or bidirectional-formatting character escaped (`\u{1b}`), cut to at
/// most `max_chars` characters.
pub(crate) fn printable(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    for c in s.chars().take(max_chars) {
        if c.is_control() || is_invisible_format(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Zero-width and direction-changing marks, which can make shown text differ from what it is.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// A count or a rate, short: `1234567` → `1.2M`, at most 5 characters, SI steps of 1000.
/// The screen's cells and the report's tables both use it.
pub fn si(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let units = ["", "K", "M", "G", "T", "P"];
    let mut v = v.abs();
    let mut u = 0;
    while v >= 999.5 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        if v.fract() == 0.0 || v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    } else if v < 10.0 {
        format!("{v:.1}{}", units[u])
    } else {
        format!("{v:.0}{}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_and_bidi_marks_are_shown_escaped_and_length_is_bounded() {
        assert_eq!(printable("ok\x1b[2J", 80), "ok\\u{1b}[2J");
        assert_eq!(printable("a\u{202e}b", 80), "a\\u{202e}b");
        assert_eq!(printable("wéb1", 80), "wéb1");
        assert_eq!(printable(&"x".repeat(500), 10), "x".repeat(10));
    }
}
