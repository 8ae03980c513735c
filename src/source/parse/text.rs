//! Small helpers shared by the parsers: numbered lines and strict number and address fields.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Lines of `text`, numbered from 1, without the line terminator (`\n` or `\r\n`).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l))
}

/// Value of one ASCII hex digit, either case.
#[inline]
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// 1 to 16 hex digits, nothing else (no sign, no `0x`).
pub(crate) fn hex_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 16 {
        return None;
    }
    b.iter()
        .try_fold(0u64, |acc, &c| Some((acc << 4) | u64::from(hex_digit(c)?)))
}

pub(crate) fn hex_u32(s: &str) -> Option<u32> {
    if s.len() > 8 {
        return None;
    }
    hex_u64(s).and_then(|v| u32::try_from(v).ok())
}

pub(crate) fn hex_u16(s: &str) -> Option<u16> {
    if s.len() > 4 {
        return None;
    }
    hex_u64(s).and_then(|v| u16::try_from(v).ok())
}

/// Exactly eight hex digits, as the kernel prints an IPv4 address with `%08X` (host order).
pub(crate) fn hex_ipv4(s: &str) -> Option<Ipv4Addr> {
    if s.len() != 8 {
        return None;
    }
    hex_u32(s).map(Ipv4Addr::from)
}

/// Decimal digits only (no sign), into a u64.
pub(crate) fn dec_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn dec_u32(s: &str) -> Option<u32> {
    dec_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// A finite, non-negative decimal number such as `0.52` or `320.53`.
pub(crate) fn non_negative_f64(s: &str) -> Option<f64> {
    // `f64::from_str` also accepts `inf`, `NaN` and exponents; the kernel prints none of them.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `[2001:db8::10]` (brackets required) into an address.
pub(crate) fn bracketed_ipv6(s: &str) -> Option<Ipv6Addr> {
    s.strip_prefix('[')?.strip_suffix(']')?.parse().ok()
}

/// Shortens a line for an error message so a huge garbage line does not flood a log.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_fields_reject_empty_signed_and_oversized_input() {
        assert_eq!(hex_u64(""), None);
        assert_eq!(hex_u64("-1"), None);
        assert_eq!(hex_u64("0x10"), None);
        assert_eq!(hex_u64("10000000000000000"), None);
        assert_eq!(hex_u64("FFFFFFFFFFFFFFFF"), Some(u64::MAX));
        assert_eq!(hex_u32("100000000"), None);
        assert_eq!(hex_u16("0050"), Some(80));
        assert_eq!(hex_u16("10000"), None);
    }

    #[test]
    fn hex_ipv4_reads_host_order_eight_digits() {
        assert_eq!(hex_ipv4("0A000001"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(hex_ipv4("A000001"), None);
    }

    #[test]
    fn non_negative_f64_rejects_words_the_std_parser_accepts() {
        assert_eq!(non_negative_f64("inf"), None);
        assert_eq!(non_negative_f64("NaN"), None);
        assert_eq!(non_negative_f64("1e5"), None);
        assert_eq!(non_negative_f64("0.52"), Some(0.52));
    }

    #[test]
    fn excerpt_cuts_on_a_char_boundary() {
        let s = "é".repeat(100);
        assert!(excerpt(&s).ends_with('…'));
    }
}
