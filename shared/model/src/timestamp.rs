//! Tradecloud's date-time format, `YYYY-MM-DDThh:mm:ss.SSSZ`.
//!
//! Cursors always keep the string Tradecloud returned; these helpers are for comparing and
//! for producing timestamps in the simulator and the envelope's `receivedAt`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats as `YYYY-MM-DDThh:mm:ss.SSSZ` (always milliseconds, always `Z`).
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO 8601 date-time with an offset (`Z` or `+02:00`), as Tradecloud accepts.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_milliseconds_and_normalises_offsets() {
        let t = parse("2025-04-23T10:01:53.812Z").unwrap();
        assert_eq!(format(t), "2025-04-23T10:01:53.812Z");
        let shifted = parse("2025-05-12T00:00:00.000+02:00").unwrap();
        assert_eq!(format(shifted), "2025-05-11T22:00:00.000Z");
        assert!(parse("2025-05-12").is_err());
    }
}
