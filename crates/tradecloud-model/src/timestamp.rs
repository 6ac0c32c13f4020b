//! Tradecloud's date-time format, `YYYY-MM-DDThh:mm:ss.SSSZ`.
//!
//! Cursors always keep the string Tradecloud returned; these helpers are for comparing and
//! for producing timestamps in the simulator and the envelope's `receivedAt`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats as `YYYY-MM-DDThh:mm:ss.SSSZ` (always milliseconds, always `Z`): a finer part of
/// the instant is cut off. For an instant that must survive the round trip (a poll cursor, a
/// key), [`format_exact`].
pub fn format(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats the very instant, in UTC with `Z`: as [`format`] (exactly three fraction digits)
/// when the instant falls on a whole millisecond, else with six or nine digits
/// (`2025-01-01T00:00:00.000300Z`), never cut to milliseconds. [`parse`] of the text gives
/// `at` back, so a position written so is never before the time it names: a zone-less
/// `…00.000300` that Tradecloud wrote becomes `…00.000300Z`, not `…00.000Z`.
pub fn format_exact(at: DateTime<Utc>) -> String {
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        format(at)
    } else {
        at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }
}

/// Parses an ISO 8601 date-time as Tradecloud writes it: with an offset (`Z` or `+02:00`), or
/// without one (`2019-12-31T10:11:12`, as in Tradecloud's own published examples), which is read
/// as UTC. Tradecloud's standards page calls date-times without a zone local; the relay runs in no
/// one's local time zone, and UTC is what every zoned Tradecloud timestamp we have seen uses, so UTC
/// is the one reading that compares them consistently. Fractions keep every digit given.
///
/// Besides RFC 3339 it reads what `java.time` writes (Tradecloud runs on the JVM): no seconds
/// when they are zero (`LocalDateTime.toString()` gives `2019-12-31T10:11`), an offset without
/// a colon or minutes (`+0200`, `+02`) or with seconds (`+02:00:00`), and a zone id after the
/// offset (`ZonedDateTime.toString()` gives `2025-01-01T10:11:12Z[UTC]`; the offset decides the
/// instant). A poll item whose time cannot be read stops its stream, so every legitimate
/// spelling must read.
pub fn parse(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Ok(t.with_timezone(&Utc)),
        Err(rfc3339_error) => java_time(text).ok_or(rfc3339_error),
    }
}

/// Whether `text` carries its own zone (`Z` or an offset); `false` for a zone-less date-time
/// that [`parse`] reads as UTC, so callers can say so in a warning.
pub fn has_zone(text: &str) -> bool {
    is_rfc3339(text) || split_zone(text).is_some_and(|(_, offset)| offset.is_some())
}

/// Whether `text` is an RFC 3339 date-time (`YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm)`), the form
/// Tradecloud documents; the other spellings [`parse`] reads are sent back to it in that form.
pub fn is_rfc3339(text: &str) -> bool {
    DateTime::parse_from_rfc3339(text).is_ok()
}

/// The forms `java.time` writes that RFC 3339 does not allow (see [`parse`]).
fn java_time(text: &str) -> Option<DateTime<Utc>> {
    let (local, offset) = split_zone(text)?;
    let naive = chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M"))
        .ok()?;
    match offset {
        None => Some(naive.and_utc()),
        Some(seconds) => {
            let offset = chrono::FixedOffset::east_opt(seconds)?;
            Some(
                naive
                    .and_local_timezone(offset)
                    .single()?
                    .with_timezone(&Utc),
            )
        }
    }
}

/// Splits `text` into its local date-time and its offset in seconds east of UTC (`None`: no
/// zone), after dropping a `[zone id]` suffix; `None` for an offset that is malformed.
fn split_zone(text: &str) -> Option<(&str, Option<i32>)> {
    let (text, zone_id) = match text.strip_suffix(']') {
        Some(rest) => (&rest[..rest.rfind('[')?], true),
        None => (text, false),
    };
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, Some(0)));
    }
    // The date's own dashes come before the `T`; a sign after it starts the offset.
    let time_start = text.find(['T', 't'])?;
    let Some(sign_at) = text[time_start..].rfind(['+', '-']).map(|i| time_start + i) else {
        // A zone id without an offset names an instant only with a zone database (which the
        // relay has none of); java.time never writes one so. Unreadable, not UTC.
        return (!zone_id).then_some((text, None));
    };
    let (local, offset) = text.split_at(sign_at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits = &offset[1..];
    // `hh`, `hhmm`, `hh:mm`, `hhmmss` or `hh:mm:ss`: java.time's ZoneOffset forms.
    let parts: Vec<&str> = if digits.contains(':') {
        digits.split(':').collect()
    } else if digits.len().is_multiple_of(2) {
        (0..digits.len())
            .step_by(2)
            .map(|i| digits.get(i..i + 2))
            .collect::<Option<_>>()?
    } else {
        return None;
    };
    let [hours, rest @ ..] = parts.as_slice() else {
        return None;
    };
    if rest.len() > 2 || [*hours].iter().chain(rest).any(|p| p.len() != 2) {
        return None;
    }
    let number = |p: &str| {
        p.parse::<i32>()
            .ok()
            .filter(|_| p.bytes().all(|b| b.is_ascii_digit()))
    };
    let hours = number(hours).filter(|h| *h <= 18)?;
    let minutes = rest
        .first()
        .map_or(Some(0), |m| number(m).filter(|m| *m < 60))?;
    let seconds = rest
        .get(1)
        .map_or(Some(0), |s| number(s).filter(|s| *s < 60))?;
    Some((local, Some(sign * (hours * 3600 + minutes * 60 + seconds))))
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
    fn what_java_time_writes_reads_as_the_same_instant() {
        let at = parse("2025-05-12T00:00:00.000+02:00").unwrap();
        for text in [
            // LocalDateTime/OffsetDateTime.toString() leave out zero seconds.
            "2025-05-12T00:00+02:00",
            "2025-05-12T00:00:00+0200",
            "2025-05-12T00:00:00.000+02",
            "2025-05-12T00:00:00+02:00:00",
            "2025-05-12T00:00:00.000+02:00[Europe/Amsterdam]",
            "2025-05-11T22:00Z",
            "2025-05-11T22:00:00Z[UTC]",
            "2025-05-11T22:00:00.000000000Z",
            "2025-05-11T20:30:00-0130",
        ] {
            assert_eq!(parse(text), Ok(at), "{text}");
            assert!(has_zone(text), "{text}");
        }
        // A zone-less time without seconds is UTC, as one with them.
        assert_eq!(parse("2025-05-11T22:00"), Ok(at));
        assert!(!has_zone("2025-05-11T22:00"));
        for broken in [
            "2025-05-11T22:00+2",
            "2025-05-11T22:00+020",
            "2025-05-11T22:00+19:00",
            "2025-05-11T22:00+02:60",
            "2025-05-11T22:00+02:00:00:00",
            "2025-05-11T22:00+0a:00",
            "2025-05-11T22:00Z[UTC",
            "2025-05-11T22",
            "2025-05-11",
            "2025-05-11T22:00:00Zgarbage",
            "2025-05-11T22:00[Europe/Amsterdam]",
            "2025-05-11T22:00:00.000[UTC]",
        ] {
            assert!(parse(broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn exact_format_keeps_a_finer_part_and_is_the_millisecond_form_otherwise() {
        for (text, exact) in [
            ("2025-01-01T00:00:00.000300", "2025-01-01T00:00:00.000300Z"),
            ("2025-01-01T00:00:05.0001", "2025-01-01T00:00:05.000100Z"),
            (
                "2025-01-01T00:00:05.000000001Z",
                "2025-01-01T00:00:05.000000001Z",
            ),
            (
                "2025-01-01T01:00:00.123456789+01:00",
                "2025-01-01T00:00:00.123456789Z",
            ),
            ("2025-01-01T00:00:09.000000", "2025-01-01T00:00:09.000Z"),
            ("2025-01-01T00:00:09", "2025-01-01T00:00:09.000Z"),
            ("2025-01-01T00:00:09.5Z[UTC]", "2025-01-01T00:00:09.500Z"),
        ] {
            let at = parse(text).unwrap();
            assert_eq!(format_exact(at), exact, "{text}");
            assert_eq!(parse(&format_exact(at)), Ok(at), "{text}");
        }
        // `format` cuts to milliseconds: before the instant it was given.
        let fine = parse("2025-01-01T00:00:00.000300").unwrap();
        assert_eq!(format(fine), "2025-01-01T00:00:00.000Z");
        assert!(parse(&format(fine)).unwrap() < fine);
    }

    #[test]
    fn fractions_keep_every_digit() {
        assert!(
            parse("2025-04-23T10:01:53.1239Z").unwrap()
                > parse("2025-04-23T10:01:53.1231Z").unwrap()
        );
    }
}
