//! Tradecloud's date-time format, `YYYY-MM-DDThh:mm:ss.SSSZ`.
//!
//! Cursors always keep the string Tradecloud returned; these helpers are for comparing and
//! for producing timestamps in the simulator and the envelope's `receivedAt`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats as `YYYY-MM-DDThh:mm:ss.SSSZ` (always milliseconds, always `Z`).
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses an ISO 8601 date-time as Tradecloud writes it: with an offset (`Z` or `+02:00`), or
/// without one (`2019-12-31T10:11:12`, as in Tradecloud's own published examples), which is read
/// as UTC. Tradecloud's standards page calls date-times without a zone local; the relay runs in no
/// one's local time zone, and UTC is what every zoned Tradecloud timestamp we have seen uses, so UTC
/// is the one reading that compares them consistently. Fractions keep every digit given.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(zoned_error) => {
            // Only a text that has no offset at all is read as UTC; a malformed offset stays an error.
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                .map(|naive| naive.and_utc())
                .map_err(|_| zoned_error)
        }
    }
}

/// Whether `text` carries its own zone (`Z` or an offset); `false` for a zone-less date-time
/// that [`parse`] reads as UTC, so callers can say so in a warning.
pub fn has_zone(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
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

    #[test]
    fn zone_less_times_read_as_utc_and_compare_with_zoned_ones() {
        let zone_less = parse("2019-12-31T10:11:12").unwrap();
        assert_eq!(format(zone_less), "2019-12-31T10:11:12.000Z");
        assert_eq!(zone_less, parse("2019-12-31T10:11:12Z").unwrap());
        assert!(parse("2019-12-31T10:11:12.5").unwrap() > zone_less);
        assert!(!has_zone("2019-12-31T10:11:12"));
        assert!(has_zone("2019-12-31T10:11:12+01:00"));
        // A broken offset is not mistaken for a zone-less time.
        assert!(parse("2019-12-31T10:11:12+1").is_err());
        assert!(parse("2019-12-31 10:11:12").is_err());
    }

    #[test]
    fn fractions_keep_every_digit() {
        assert!(
            parse("2025-04-23T10:01:53.1239Z").unwrap()
                > parse("2025-04-23T10:01:53.1231Z").unwrap()
        );
    }
}
