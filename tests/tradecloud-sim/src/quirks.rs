//! Ways real Tradecloud may answer that its docs do not rule out, each a switch, so the poller
//! is tested against all of them (alone and together). With all off the simulator shows the
//! convenient case (sorted pages, a strict `lastUpdatedAfter`, zoned times, tokens with `iat`),
//! which is no more documented than the switches (docs/tradecloud.md §2, §6.2, §6.5, §9).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The switches; all off is the convenient case, not Tradecloud's documented behaviour: its docs
/// promise neither sorting nor a strict `lastUpdatedAfter` any more, and its own sample token
/// has no `iat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Quirks {
    /// Poll and search answers in id order instead of by `lastUpdatedAt` (Tradecloud removed
    /// the sorting guarantee from its polling docs on 2025-04-09). The order is stable between
    /// requests, as an index without a sort clause gives it.
    pub unsorted: bool,
    /// `lastUpdatedAfter` includes objects updated exactly at the given time (the docs never
    /// say whether it is strict).
    pub inclusive_after: bool,
    /// Every `lastUpdatedAt` in poll and search answers is written without a zone
    /// (`2025-01-01T10:00:00.123`), as in some of Tradecloud's own examples.
    pub zoneless: bool,
    /// Access tokens carry `exp` but no `iat` (a token in Tradecloud's own SDK sample has none).
    pub exp_only_tokens: bool,
    /// Every `lastUpdatedAt` in poll and search answers is written as java.time's
    /// `ZonedDateTime.toString()` writes a UTC time (the zone-less time in Tradecloud's own
    /// examples is what `LocalDateTime.toString()` prints): the zone id
    /// after the offset, no fraction when it is zero, no seconds when they are zero too
    /// (`2025-01-01T10:11:12.120Z[UTC]`, `2025-01-01T10:11Z[UTC]`). With [`Self::zoneless`],
    /// as `LocalDateTime.toString()` writes it (`2025-01-01T10:11`).
    pub java_time: bool,
    /// Poll and search answers hold at most this many objects, whatever `limit` asked for,
    /// with the `total` of every match (the docs name 100 the largest `limit`, but promise no
    /// page filled to it: a size cap on large orders, say).
    pub page_cap: Option<u32>,
}

/// `at` as java.time's `ZonedDateTime.toString()` writes it in UTC.
pub(crate) fn java_time_text(at: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike as _;
    let nanos = at.nanosecond();
    let local = if nanos == 0 && at.second() == 0 {
        at.format("%Y-%m-%dT%H:%M").to_string()
    } else if nanos == 0 {
        at.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else if nanos.is_multiple_of(1_000_000) {
        at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S%.9f").to_string()
    };
    format!("{local}Z[UTC]")
}

/// Rewrites every `lastUpdatedAt` in `value`, at any depth, with [`java_time_text`].
pub(crate) fn java_time_spellings(value: &mut Value) {
    respell(value, &|s| {
        tradecloud_model::timestamp::parse(s)
            .ok()
            .map(java_time_text)
    });
}

/// Drops the zone (`Z`, or java.time's `Z[UTC]`) of every `lastUpdatedAt` in `value`, at any
/// depth.
pub(crate) fn strip_zones(value: &mut Value) {
    respell(value, &|s| {
        s.strip_suffix("Z[UTC]")
            .or_else(|| s.strip_suffix('Z'))
            .map(str::to_owned)
    });
}

/// A way one object is misshapen in poll and search answers (its GET stays whole): what a fault
/// in Tradecloud might serve though its docs rule it out (`lastUpdatedAt` is "a `String` with
/// format `YYYY-MM-DDThh:mm:ss.SSSZ`"; every object has an `id`). The simulator still sorts
/// and filters the object by its real time; only what the answer says of it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Misshape {
    /// Its `lastUpdatedAt` (and `meta.lastUpdatedAt`) written as epoch milliseconds, a JSON
    /// number, as a Java `Instant` serialised with Jackson's timestamps on would be.
    EpochMillisTime,
    /// No `lastUpdatedAt` and no `meta.lastUpdatedAt`.
    NoTime,
    /// No `id` (nor `orderId`).
    NoId,
}

/// `value` (an object as answered) misshapen `how`.
pub(crate) fn misshape(value: &mut Value, how: Misshape) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    match how {
        Misshape::EpochMillisTime => {
            let millis = |v: &Value| {
                v.as_str()
                    .and_then(|s| tradecloud_model::timestamp::parse(s).ok())
                    .map(|at| Value::from(at.timestamp_millis()))
            };
            if let Some(ms) = object.get("lastUpdatedAt").and_then(millis) {
                object.insert("lastUpdatedAt".into(), ms);
            }
            if let Some(meta) = object.get_mut("meta").and_then(Value::as_object_mut)
                && let Some(ms) = meta.get("lastUpdatedAt").and_then(millis)
            {
                meta.insert("lastUpdatedAt".into(), ms);
            }
        }
        Misshape::NoTime => {
            object.remove("lastUpdatedAt");
            if let Some(meta) = object.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("lastUpdatedAt");
            }
        }
        Misshape::NoId => {
            object.remove("id");
            object.remove("orderId");
        }
    }
}

/// Replaces every `lastUpdatedAt` string in `value`, at any depth, with what `respelt` makes of
/// it (`None`: kept).
fn respell(value: &mut Value, respelt: &dyn Fn(&str) -> Option<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "lastUpdatedAt" => {
                        if let Some(new) = respelt(s) {
                            *s = new;
                        }
                    }
                    _ => respell(v, respelt),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| respell(v, respelt)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn zones_are_stripped_from_every_last_updated_at_only() {
        let mut v = json!({"lastUpdatedAt": "2025-01-01T00:00:00.000Z", "other": "xZ",
            "lines": [{"lastUpdatedAt": "2025-01-01T00:00:01.000Z"}],
            "meta": {"lastUpdatedAt": "2025-01-01T00:00:02.000Z"}});
        strip_zones(&mut v);
        assert_eq!(v["lastUpdatedAt"], "2025-01-01T00:00:00.000");
        assert_eq!(v["lines"][0]["lastUpdatedAt"], "2025-01-01T00:00:01.000");
        assert_eq!(v["meta"]["lastUpdatedAt"], "2025-01-01T00:00:02.000");
        assert_eq!(v["other"], "xZ");
    }

    #[test]
    fn java_time_spellings_drop_what_java_time_drops_and_name_the_zone() {
        let mut v = json!({"lastUpdatedAt": "2025-01-01T10:11:12.120Z",
            "lines": [{"lastUpdatedAt": "2025-01-01T10:11:00.000Z"}],
            "meta": {"lastUpdatedAt": "2025-01-01T10:11:12.000Z"}, "other": "2025-01-01T10:11:12.120Z"});
        java_time_spellings(&mut v);
        assert_eq!(v["lastUpdatedAt"], "2025-01-01T10:11:12.120Z[UTC]");
        assert_eq!(v["lines"][0]["lastUpdatedAt"], "2025-01-01T10:11Z[UTC]");
        assert_eq!(v["meta"]["lastUpdatedAt"], "2025-01-01T10:11:12Z[UTC]");
        assert_eq!(v["other"], "2025-01-01T10:11:12.120Z");
        strip_zones(&mut v);
        assert_eq!(v["lines"][0]["lastUpdatedAt"], "2025-01-01T10:11");
    }

    #[test]
    fn misshapes_change_only_the_id_or_the_objects_own_times() {
        let whole = json!({"id": "o-1", "lastUpdatedAt": "2025-01-01T00:00:00.001Z",
            "meta": {"lastUpdatedAt": "2025-01-01T00:00:00.001Z", "messageId": "m"},
            "lines": [{"lastUpdatedAt": "2025-01-01T00:00:00.000Z"}]});
        let mut v = whole.clone();
        misshape(&mut v, Misshape::EpochMillisTime);
        assert_eq!(v["lastUpdatedAt"], json!(1_735_689_600_001_i64));
        assert_eq!(v["meta"]["lastUpdatedAt"], json!(1_735_689_600_001_i64));
        assert_eq!(v["lines"], whole["lines"]);
        let mut v = whole.clone();
        misshape(&mut v, Misshape::NoTime);
        assert!(v.get("lastUpdatedAt").is_none() && v["meta"].get("lastUpdatedAt").is_none());
        assert_eq!(v["meta"]["messageId"], "m");
        let mut v = whole.clone();
        misshape(&mut v, Misshape::NoId);
        assert!(v.get("id").is_none());
        assert_eq!(v["lastUpdatedAt"], whole["lastUpdatedAt"]);
    }

    #[test]
    fn quirks_read_from_camel_case_json_with_defaults() {
        let q: Quirks =
            serde_json::from_str(r#"{"unsorted": true, "expOnlyTokens": true}"#).unwrap();
        assert!(q.unsorted && q.exp_only_tokens && !q.zoneless && !q.inclusive_after);
    }
}
