//! The time source of the stores (the core's, see [`tcrelay_core::clock`]; expiries are
//! compared with it in SQL), and how times are written to text columns.

use chrono::{DateTime, SecondsFormat, Utc};
pub use tcrelay_core::clock::{Clock, system_clock};

/// A timestamp as stored in text columns: RFC 3339, UTC, `Z`, with as many fraction digits as
/// needed, so it reads well in `sqlite3` and parses back to the same instant.
pub(crate) fn to_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a text timestamp written by [`to_text`]; `None` when it is not RFC 3339.
pub(crate) fn from_text(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// A duration in milliseconds for SQL arithmetic, saturating far in the future rather than
/// overflowing (a TTL of `Duration::MAX` means "never").
pub(crate) fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_timestamps_round_trip_to_the_nanosecond() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T19:11:12.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_text(&to_text(at)), Some(at));
        assert_eq!(from_text("yesterday"), None);
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(millis(std::time::Duration::from_millis(1500)), 1500);
        let never = millis(std::time::Duration::MAX);
        assert!(never > 0 && never.checked_add(i64::MAX / 2).is_some());
    }
}
