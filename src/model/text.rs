//! Text from other hosts made safe to show: control characters (which a terminal would obey) and
//! invisible direction marks are escaped, and the length is bounded.

/// `s` with every control or bidirectional-formatting character escaped (`\u{1b}`), cut to at
/// most `max_chars` characters, escapes included (an escape that would not fit is left out
/// whole). Printable text comes back unchanged: `printable(printable(s, n), n)` is
/// `printable(s, n)`.
pub(crate) fn printable(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars));
    let mut len = 0;
    for c in s.chars() {
        if shown_raw(c) {
            if len + 1 > max_chars {
                break;
            }
            out.push(c);
            len += 1;
        } else {
            let escaped = c.escape_default();
            let n = escaped.len();
            if len + n > max_chars {
                break;
            }
            out.extend(escaped);
            len += n;
        }
    }
    out
}

/// Whether `s` is what [`printable`] makes of it: nothing to escape, at most `max_chars`.
pub(crate) fn is_printable(s: &str, max_chars: usize) -> bool {
    let mut chars = 0;
    s.chars().all(|c| {
        chars += 1;
        chars <= max_chars && shown_raw(c)
    })
}

/// Makes `s` [`printable`] in place; text that already is stays as it is, with no copy.
pub(crate) fn make_printable(s: &mut String, max_chars: usize) {
    if !is_printable(s, max_chars) {
        *s = printable(s, max_chars);
    }
}

/// Whether a character may reach a terminal as it is.
fn shown_raw(c: char) -> bool {
    !c.is_control() && !is_invisible_format(c)
}

/// Zero-width, direction-changing and line-separating marks, which can make shown text differ
/// from what it is or break a layout.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
    )
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
    use super::{make_printable, printable};

    #[test]
    fn escapes_and_bidi_marks_are_shown_escaped_and_length_is_bounded() {
        assert_eq!(printable("ok\x1b[2J", 80), "ok\\u{1b}[2J");
        assert_eq!(printable("a\u{202e}b", 80), "a\\u{202e}b");
        assert_eq!(printable("wéb1", 80), "wéb1");
        assert_eq!(printable(&"x".repeat(500), 10), "x".repeat(10));
        // Line separators and the other invisible marks; escapes count in the length, and one
        // that does not fit is left out whole.
        assert_eq!(printable("a\u{2028}b\u{2060}", 80), "a\\u{2028}b\\u{2060}");
        assert_eq!(printable("ab\x1b", 5), "ab");
        assert_eq!(printable("ab\x1b", 8), "ab\\u{1b}");
        for s in ["ok\x1b[2J", "a\u{202e}b", &"é\x07".repeat(50)] {
            for n in [3, 10, 80] {
                let once = printable(s, n);
                assert!(once.chars().count() <= n, "{once:?}");
                assert_eq!(printable(&once, n), once);
                let mut in_place = s.to_string();
                make_printable(&mut in_place, n);
                assert_eq!(in_place, once);
            }
        }
        let mut clean = String::from("web1");
        let at = clean.as_ptr();
        make_printable(&mut clean, 80);
        assert_eq!(clean.as_ptr(), at, "clean text is not copied");
    }
}
