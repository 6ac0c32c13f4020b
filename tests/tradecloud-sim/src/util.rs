//! Small helpers shared by the world, the API and the sender.

use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Number, Value};

/// Formats simulated milliseconds since the epoch as Tradecloud's `YYYY-MM-DDThh:mm:ss.SSSZ`.
pub(crate) fn format_ms(ms: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    tradecloud_model::timestamp::format(at)
}

/// Parses a client-supplied date-time; Tradecloud accepts `Z` as well as offsets.
pub(crate) fn parse_ms(text: &str) -> Option<i64> {
    tradecloud_model::timestamp::parse(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The calendar date (`YYYY-MM-DD`) of simulated milliseconds plus a number of days.
pub(crate) fn date_plus_days(ms: i64, days: i64) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    let date: NaiveDate = at.date_naive() + chrono::Duration::days(days);
    date.format("%Y-%m-%d").to_string()
}

/// A decimal JSON number from an integer count of hundredths, written with two decimals
/// (`1250` becomes `12.50`) so the arbitrary-precision text survives into the body unchanged.
pub(crate) fn dec2(hundredths: i64) -> Value {
    let sign = if hundredths < 0 { "-" } else { "" };
    let abs = hundredths.unsigned_abs();
    let text = format!("{sign}{}.{:02}", abs / 100, abs % 100);
    Value::Number(Number::from_str(&text).unwrap_or_else(|_| Number::from(0)))
}

/// A UUID drawn from the seeded generator, so ids repeat with the seed.
pub(crate) fn seeded_uuid(rng: &mut ChaCha8Rng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Picks one element of a non-empty slice.
pub(crate) fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// Locks a mutex; a panic elsewhere while holding it leaves data that is still usable here
/// (every critical section keeps its invariants before anything can panic).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
