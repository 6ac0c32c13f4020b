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
}

/// Drops the `Z` of every `lastUpdatedAt` in `value`, at any depth.
pub(crate) fn strip_zones(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "lastUpdatedAt"
                    && let Value::String(s) = v
                    && let Some(bare) = s.strip_suffix('Z')
                {
                    *s = bare.to_owned();
                } else {
                    strip_zones(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_zones),
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
    fn quirks_read_from_camel_case_json_with_defaults() {
        let q: Quirks =
            serde_json::from_str(r#"{"unsorted": true, "expOnlyTokens": true}"#).unwrap();
        assert!(q.unsorted && q.exp_only_tokens && !q.zoneless && !q.inclusive_after);
    }
}
