//! The poller's CloudWatch metrics in the embedded metric format (EMF): one JSON line on stdout
//! per stream and run, namespace `TradecloudRelay`, dimension `Function=poller`. `Pages`,
//! `Objects`, `Enqueued`, `Duplicates` and `Filtered` count the run's work;
//! `CursorAgeSeconds` is what the deployment's `CursorAgeAlarm` watches. `UnsortedPages`,
//! `InclusiveItems`, `ZonelessTimestamps` and `ShortPages` count how Tradecloud's answers
//! departed from its docs (the run copes with each; the counts show an operator how their Tradecloud behaves).
//! `TakeOvers` counts the dedupe take-overs since the previous line (each means the ERP may
//! have a message twice; the deployment's `TakeOverAlarm` watches it).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tcrelay_poll::{StopReason, StreamSummary};
use tradecloud_model::timestamp;

/// The metric namespace (the template's alarms use it too).
pub const NAMESPACE: &str = "TradecloudRelay";

/// How far one stream's cursor is behind `now`, in seconds. A run that caught up reports 0:
/// nothing Tradecloud had is waiting, however old the last change is (a quiet account must not
/// alarm). A run that stopped at a state another channel is relaying right now reports that
/// state's age: it is the oldest change waiting, and the cursor of a quiet account can be days
/// older than it without anything being behind. Any other end (deadline, failure) reports how
/// far the cursor is behind now, so the alarm fires when the poller keeps falling behind or
/// failing. `None` without a usable cursor.
pub fn cursor_age_seconds(summary: &StreamSummary, now: DateTime<Utc>) -> Option<i64> {
    let since = match &summary.stop {
        Some(StopReason::CaughtUp) => return Some(0),
        Some(StopReason::InProgressElsewhere {
            last_updated_at, ..
        }) => last_updated_at.as_str(),
        _ => summary.cursor_after.as_deref()?,
    };
    let since = timestamp::parse(since).ok()?;
    Some((now - since).num_seconds().max(0))
}

/// The EMF line for one stream's run, with `take_overs` dedupe take-overs since the previous
/// line.
pub fn stream_emf(summary: &StreamSummary, take_overs: u64, now: DateTime<Utc>) -> String {
    let age = cursor_age_seconds(summary, now);
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    let mut metrics = vec![
        count("Pages"),
        count("Objects"),
        count("Enqueued"),
        count("RecoveredStates"),
        count("Duplicates"),
        count("Filtered"),
        count("UnsortedPages"),
        count("InclusiveItems"),
        count("ZonelessTimestamps"),
        count("ShortPages"),
        count("UnplaceableItems"),
        count("TakeOvers"),
    ];
    if age.is_some() {
        metrics.push(json!({"Name": "CursorAgeSeconds", "Unit": "Seconds"}));
    }
    let mut line = json!({
        "_aws": {
            "Timestamp": now.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": metrics,
            }]
        },
        "Function": "poller",
        "Stream": summary.stream,
        "Pages": summary.pages,
        "Objects": summary.objects,
        "Enqueued": summary.enqueued,
        "RecoveredStates": summary.recovered,
        "Duplicates": summary.duplicates,
        "Filtered": summary.filtered,
        "UnsortedPages": summary.deviations.unsorted_pages,
        "InclusiveItems": summary.deviations.inclusive_items,
        "ZonelessTimestamps": summary.deviations.zoneless_timestamps,
        "ShortPages": summary.deviations.short_pages,
        "UnplaceableItems": summary.deviations.unplaceable_items,
        "TakeOvers": take_overs,
    });
    if let Some(age) = age {
        line["CursorAgeSeconds"] = Value::from(age);
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use tcrelay_lambda::testing::emf_metric_names;

    use super::*;

    fn summary(stop: Option<StopReason>, cursor: Option<&str>) -> StreamSummary {
        let mut summary = StreamSummary::new(tcrelay_poll::PollStream::Orders, false);
        summary.stop = stop;
        summary.cursor_after = cursor.map(str::to_owned);
        summary
    }

    #[test]
    fn the_run_is_counted_and_every_declared_metric_has_a_value() {
        let now = timestamp::parse("2025-01-01T01:00:00.000Z").unwrap();
        let mut s = summary(Some(StopReason::CaughtUp), Some("2024-12-01T00:00:00.000Z"));
        (s.pages, s.objects, s.enqueued, s.duplicates, s.filtered) = (3, 250, 240, 9, 1);
        s.recovered = 2;
        let v: Value = serde_json::from_str(&stream_emf(&s, 0, now)).unwrap();
        assert_eq!(v["RecoveredStates"], 2);
        assert_eq!(
            (
                &v["Pages"],
                &v["Objects"],
                &v["Enqueued"],
                &v["Duplicates"],
                &v["Filtered"]
            ),
            (
                &Value::from(3),
                &Value::from(250),
                &Value::from(240),
                &Value::from(9),
                &Value::from(1)
            )
        );
        assert_eq!(v["Stream"], "orders");
        assert_eq!(v["UnsortedPages"], 0);
        for name in emf_metric_names(&v["_aws"]["CloudWatchMetrics"][0]) {
            assert!(v[name].is_number(), "{name} has no value");
        }
        // Without a usable cursor there is no age, and the metric is not declared.
        let v: Value = serde_json::from_str(&stream_emf(&summary(None, None), 0, now)).unwrap();
        assert!(
            !emf_metric_names(&v["_aws"]["CloudWatchMetrics"][0]).contains(&"CursorAgeSeconds")
        );
        assert!(v.get("CursorAgeSeconds").is_none());
    }

    #[test]
    fn deviations_from_tradecloud_docs_and_take_overs_are_counted() {
        let now = timestamp::parse("2025-01-01T01:00:00.000Z").unwrap();
        let mut s = summary(Some(StopReason::CaughtUp), None);
        s.deviations.unsorted_pages = 4;
        s.deviations.inclusive_items = 7;
        s.deviations.zoneless_timestamps = 120;
        s.deviations.short_pages = 3;
        s.deviations.unplaceable_items = 2;
        let v: Value = serde_json::from_str(&stream_emf(&s, 2, now)).unwrap();
        let names = emf_metric_names(&v["_aws"]["CloudWatchMetrics"][0]);
        assert!(names.contains(&"TakeOvers"));
        assert_eq!(v["TakeOvers"], 2);
        for (name, n) in [
            ("UnsortedPages", 4),
            ("InclusiveItems", 7),
            ("ZonelessTimestamps", 120),
            ("ShortPages", 3),
            ("UnplaceableItems", 2),
        ] {
            assert!(names.contains(&name), "{name} declared");
            assert_eq!(v[name], n, "{name}");
        }
    }

    #[test]
    fn caught_up_is_zero_and_behind_is_the_distance_to_now() {
        let now = timestamp::parse("2025-01-01T01:00:00.000Z").unwrap();
        let line = stream_emf(
            &summary(Some(StopReason::CaughtUp), Some("2024-12-01T00:00:00.000Z")),
            0,
            now,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["CursorAgeSeconds"], 0);
        assert_eq!(v["Function"], "poller");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "TradecloudRelay"
        );
        let line = stream_emf(
            &summary(Some(StopReason::Deadline), Some("2025-01-01T00:00:00.000Z")),
            0,
            now,
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["CursorAgeSeconds"], 3600);
        assert_eq!(cursor_age_seconds(&summary(None, None), now), None);
    }

    #[test]
    fn a_run_stopped_at_a_state_relayed_elsewhere_reports_that_states_age() {
        // A quiet account's cursor is days old; the webhook relaying the one new change right
        // now must not read as the poller three days behind.
        let now = timestamp::parse("2025-01-04T00:00:10.000Z").unwrap();
        let stopped = StopReason::InProgressElsewhere {
            key: "state/order/o-1/2025-01-04T00:00:00.000Z".into(),
            last_updated_at: "2025-01-04T00:00:00.000Z".into(),
        };
        let s = summary(Some(stopped), Some("2025-01-01T00:00:00.000Z"));
        assert_eq!(cursor_age_seconds(&s, now), Some(10));
    }
}
