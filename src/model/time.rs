//! Times as the operator types them, for `g` in replay and `--from`/`--to` in export.
//!
//! - `+30s`, `-5m`: relative to the current position;
//! - `90s`, `1h5m`, `0s`: from the start of the recording;
//! - `14:05` or `14:05:30`: that clock time in UTC (the clock the screen shows), on the day the
//!   recording starts on, or the next day when that is nearer the start (`00:15` for a recording
//!   that starts at 23:00);
//! - `2026-01-01T14:05:30Z` or `2026-01-01 14:05:30`: RFC 3339, UTC.

use crate::model::sample::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// Resolves `text` against a recording that starts at `start`, now at `current`.
pub fn parse(text: &str, start: Timestamp, current: Timestamp) -> Result<Timestamp, String> {
    let t = text.trim();
    let dur = |s: &str| -> Result<i64, String> {
        humantime::parse_duration(s.trim())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .map_err(|e| format!("{t:?}: {e}"))
    };
    if let Some(rest) = t.strip_prefix('+') {
        return Ok(Timestamp(current.0.saturating_add(dur(rest)?)));
    }
    if let Some(rest) = t.strip_prefix('-') {
        return Ok(Timestamp(current.0.saturating_sub(dur(rest)?)));
    }
    if let Some(clock) = parse_clock(t) {
        // The recording's start may be any time its file says: at the ends of the i64 range the
        // day's start or the next day is past it, and the time is the nearest one there is.
        // Of that clock time on the start's day and on the next, the one nearer the start: a
        // time a little before the start (`03:00` for a recording from 03:00:54) means the start,
        // not the next day, past the end; one well before it (`00:15` for 23:00) the next day.
        let day = i128::from(start.0.div_euclid(DAY_MS)) * i128::from(DAY_MS);
        let mut at = day + i128::from(clock);
        let s = i128::from(start.0);
        if at < s && (s - at) > (at + i128::from(DAY_MS) - s) {
            at += i128::from(DAY_MS);
        }
        let at = at.clamp(i128::from(i64::MIN), i128::from(i64::MAX));
        return Ok(Timestamp(i64::try_from(at).unwrap_or(i64::MAX)));
    }
    if let Ok(st) = humantime::parse_rfc3339_weak(t) {
        return Ok(Timestamp::from_system(st));
    }
    match dur(t) {
        Ok(ms) => Ok(Timestamp(start.0.saturating_add(ms))),
        Err(_) => Err(format!(
            "{t:?} is not a time: use +30s/-5m (from here), 90s (from the start), 14:05:30 (UTC) or 2026-01-01T14:05:30Z"
        )),
    }
}

/// Whole seconds from a second on (`3s`, not `2s 999ms`); milliseconds below: a duration as
/// `lbtop record` says it and the report shows it.
pub fn round_to_seconds(d: std::time::Duration) -> std::time::Duration {
    if d < std::time::Duration::from_secs(1) {
        std::time::Duration::from_millis(d.as_millis() as u64)
    } else {
        std::time::Duration::from_secs(d.as_secs_f64().round() as u64)
    }
}

/// `HH:MM` or `HH:MM:SS` as milliseconds into the day.
fn parse_clock(t: &str) -> Option<i64> {
    let parts: Vec<&str> = t.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let n: Vec<i64> = parts.iter().filter_map(|p| p.parse().ok()).collect();
    let (h, m, s) = (n[0], n[1], n.get(2).copied().unwrap_or(0));
    (h < 24 && m < 60 && s < 60).then_some(((h * 60 + m) * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Timestamp = Timestamp(1_767_225_600_000 + 3_600_000 * 23); // 2026-01-01 23:00Z

    #[test]
    fn every_form_resolves() {
        let cur = Timestamp(START.0 + 60_000);
        assert_eq!(parse("+30s", START, cur), Ok(Timestamp(cur.0 + 30_000)));
        assert_eq!(parse("-1m", START, cur), Ok(START));
        assert_eq!(parse("90s", START, cur), Ok(Timestamp(START.0 + 90_000)));
        assert_eq!(
            parse("23:30", START, cur),
            Ok(Timestamp(START.0 + 1_800_000))
        );
        // A little before the start: that time (a seek clamps it to the start), not tomorrow.
        assert_eq!(
            parse("22:59:06", START, cur),
            Ok(Timestamp(START.0 - 54_000))
        );
        // Past midnight: the next day.
        assert_eq!(
            parse("00:15:00", START, cur),
            Ok(Timestamp(START.0 + 3_600_000 + 900_000))
        );
        assert_eq!(
            parse("2026-01-01T23:00:10Z", START, cur),
            Ok(Timestamp(START.0 + 10_000))
        );
        assert!(parse("soon", START, cur).is_err());
        // At the ends of the range: the nearest time there is, not an overflow.
        let (min, max) = (Timestamp(i64::MIN), Timestamp(i64::MAX));
        assert_eq!(parse("23:59", max, max), Ok(max));
        assert!(parse("00:00", min, min).is_ok_and(|t| t >= min));
        assert_eq!(parse("+1h", max, max), Ok(max));
        assert_eq!(parse("-1h", min, min), Ok(min));
        assert!(parse("25:00", START, cur).is_err());
    }
}
