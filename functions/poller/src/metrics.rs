//! The cursor-age metric the deployment's `CursorAgeAlarm` watches (namespace
//! `TradecloudRelay`, metric `CursorAgeSeconds`, dimension `Function=poller`), written in
//! CloudWatch's embedded metric format: one JSON line on stdout per stream.

use chrono::{DateTime, Utc};
use serde_json::json;
use tcrelay_poll::{StopReason, StreamSummary};
use tradecloud_model::timestamp;

/// The EMF line for one stream's run. A run that caught up reports 0: nothing Tradecloud had
/// is waiting, however old the last change is (a quiet account must not alarm). Any other end
/// (deadline, failure, a claim elsewhere) reports how far the cursor is behind now, so the
/// alarm fires when the poller keeps falling behind or failing. `None` without a usable cursor.
pub fn cursor_age_emf(summary: &StreamSummary, now: DateTime<Utc>) -> Option<String> {
    let age = if summary.stop == Some(StopReason::CaughtUp) {
        0
    } else {
        let cursor = timestamp::parse(summary.cursor_after.as_deref()?).ok()?;
        (now - cursor).num_seconds().max(0)
    };
    let line = json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "TradecloudRelay",
                "Dimensions": [["Function"]],
                "Metrics": [{"Name": "CursorAgeSeconds", "Unit": "Seconds"}]
            }]
        },
        "Function": "poller",
        "Stream": summary.stream,
        "CursorAgeSeconds": age
    });
    Some(line.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn summary(stop: Option<StopReason>, cursor: Option<&str>) -> StreamSummary {
        StreamSummary {
            stream: "orders",
            dry_run: false,
            stop,
            pages: 0,
            objects: 0,
            enqueued: 0,
            duplicates: 0,
            filtered: 0,
            cursor_before: None,
            cursor_after: cursor.map(str::to_owned),
            duration_ms: 0,
            planned: Vec::new(),
        }
    }

    #[test]
    fn caught_up_is_zero_and_behind_is_the_distance_to_now() {
        let now = timestamp::parse("2025-01-01T01:00:00.000Z").unwrap();
        let line = cursor_age_emf(
            &summary(Some(StopReason::CaughtUp), Some("2024-12-01T00:00:00.000Z")),
            now,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["CursorAgeSeconds"], 0);
        assert_eq!(v["Function"], "poller");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "TradecloudRelay"
        );
        let line = cursor_age_emf(
            &summary(Some(StopReason::Deadline), Some("2025-01-01T00:00:00.000Z")),
            now,
        )
        .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["CursorAgeSeconds"], 3600);
        assert_eq!(cursor_age_emf(&summary(None, None), now), None);
    }
}
