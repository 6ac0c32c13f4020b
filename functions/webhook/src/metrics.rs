//! The webhook's CloudWatch metrics, in the embedded metric format (EMF): one JSON line on
//! stdout per request, which CloudWatch Logs turns into metrics in the `TradecloudRelay`
//! namespace without any API call from the function.
//!
//! Every line counts the request under dimension `Function=webhook` (`Received`, and one of
//! `Enqueued`, `Duplicates`, `Filtered`, `Rejected`, `Unavailable`, plus `Quarantined`);
//! refusals are also counted per `Reason` (the logged outcome: `unauthorized`, `invalid`,
//! `too-large`, `upstream-timeout`, …), so a dashboard shows why requests were turned away.
//! `TakeOvers` counts the dedupe take-overs since the previous line (a completion may finish
//! after its request was answered: it counts on the next line).

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use http::StatusCode;
use serde_json::{Value, json};
use tcrelay_core::{AnswerOutcome, Answered, LenientFields, TakeOverCount};

/// The metric namespace (the template's alarms use it too).
pub const NAMESPACE: &str = "TradecloudRelay";

/// The EMF line for one answered request. `answered` is the core's record of the outcome;
/// without one (an answer the core did not make) the status decides.
pub fn request_emf(answered: Option<&Answered>, status: u16, timestamp_ms: i64) -> String {
    request_emf_with(answered, LineCounts::default(), status, timestamp_ms)
}

/// What a request's line counts besides its answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct LineCounts {
    /// Fields of an unexpected type that were forwarded as sent (`LenientFields`).
    pub lenient: usize,
    /// Dedupe take-overs since the previous line (`TakeOvers`).
    pub take_overs: u64,
}

/// As [`request_emf`], with `counts`.
pub fn request_emf_with(
    answered: Option<&Answered>,
    counts: LineCounts,
    status: u16,
    timestamp_ms: i64,
) -> String {
    let answered = answered.copied().unwrap_or_else(|| {
        Answered::of_status(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
    });
    let (outcome, quarantined) = (answered.outcome, answered.quarantined);
    let (mut enqueued, mut duplicates, mut filtered, mut rejected, mut unavailable) =
        (0, 0, 0, 0, 0);
    match outcome {
        AnswerOutcome::Enqueued => enqueued = 1,
        AnswerOutcome::Duplicate => duplicates = 1,
        AnswerOutcome::Filtered => filtered = 1,
        _ if status >= 500 => unavailable = 1,
        _ => rejected = 1,
    }
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    let mut directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [["Function"]],
        "Metrics": [
            count("Received"), count("Enqueued"), count("Duplicates"), count("Filtered"),
            count("Quarantined"), count("Rejected"), count("Unavailable"),
            count("LenientFields"), count("TakeOvers"),
        ],
    })];
    if rejected + unavailable > 0 {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["Function", "Reason"]],
            "Metrics": [count("Rejected"), count("Unavailable")],
        }));
    }
    let mut line = json!({
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives},
        "Function": "webhook",
        "Outcome": outcome.as_str(),
        "Status": status,
        "Received": 1,
        "Enqueued": enqueued,
        "Duplicates": duplicates,
        "Filtered": filtered,
        "Quarantined": u8::from(quarantined),
        "Rejected": rejected,
        "Unavailable": unavailable,
        "LenientFields": counts.lenient,
        "TakeOvers": counts.take_overs,
    });
    if rejected + unavailable > 0 {
        line["Reason"] = Value::from(outcome.as_str());
    }
    line.to_string()
}

/// Where EMF lines go.
pub type LineSink = Arc<dyn Fn(String) + Send + Sync>;

/// Adds the layer that writes one [`request_emf`] line to stdout per request (Lambda sends
/// stdout to CloudWatch Logs, where the line becomes metrics), with the take-overs `take_overs`
/// counted since the previous line.
pub fn with_emf_metrics(router: Router, take_overs: TakeOverCount) -> Router {
    with_emf_metrics_to(router, take_overs, Arc::new(|line| println!("{line}")))
}

/// As [`with_emf_metrics`], writing the lines to `sink`.
pub fn with_emf_metrics_to(router: Router, take_overs: TakeOverCount, sink: LineSink) -> Router {
    router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let (sink, take_overs) = (Arc::clone(&sink), take_overs.clone());
        async move {
            let response = next.run(request).await;
            let counts = LineCounts {
                lenient: response
                    .extensions()
                    .get::<LenientFields>()
                    .map_or(0, |l| l.0),
                take_overs: take_overs.since_last_report(),
            };
            sink(request_emf_with(
                response.extensions().get::<Answered>(),
                counts,
                response.status().as_u16(),
                chrono::Utc::now().timestamp_millis(),
            ));
            response
        }
    }))
}

#[cfg(test)]
mod tests {
    use tcrelay_lambda::testing::emf_metric_names;

    use super::*;

    fn parse(line: &str) -> Value {
        serde_json::from_str(line).expect("EMF is JSON")
    }

    #[test]
    fn an_enqueued_request_counts_once_without_a_reason() {
        let v = parse(&request_emf(
            Some(&Answered {
                outcome: AnswerOutcome::Enqueued,
                quarantined: false,
            }),
            202,
            1_700_000_000_000,
        ));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        let directives = v["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        assert_eq!(directives[0]["Namespace"], NAMESPACE);
        assert_eq!(directives[0]["Dimensions"], json!([["Function"]]));
        // Every declared metric has its value on the line (CloudWatch drops the line otherwise).
        for name in emf_metric_names(&directives[0]) {
            assert!(v[name].is_number(), "{name} has no value");
        }
        assert_eq!(v["Received"], 1);
        assert_eq!(v["Enqueued"], 1);
        assert_eq!(v["Duplicates"], 0);
        assert_eq!(v["Rejected"], 0);
        assert!(v.get("Reason").is_none());
    }

    #[test]
    fn a_refusal_is_counted_by_reason_and_quarantine() {
        let v = parse(&request_emf(
            Some(&Answered {
                outcome: AnswerOutcome::Invalid,
                quarantined: true,
            }),
            400,
            0,
        ));
        assert_eq!(v["Rejected"], 1);
        assert_eq!(v["Quarantined"], 1);
        assert_eq!(v["Unavailable"], 0);
        assert_eq!(v["Reason"], "invalid");
        let by_reason = &v["_aws"]["CloudWatchMetrics"][1];
        assert_eq!(by_reason["Dimensions"], json!([["Function", "Reason"]]));
        assert_eq!(emf_metric_names(by_reason), ["Rejected", "Unavailable"]);
    }

    #[test]
    fn a_transient_failure_is_unavailable_not_rejected() {
        let v = parse(&request_emf(
            Some(&Answered {
                outcome: AnswerOutcome::UpstreamTimeout,
                quarantined: false,
            }),
            504,
            0,
        ));
        assert_eq!(v["Unavailable"], 1);
        assert_eq!(v["Rejected"], 0);
        assert_eq!(v["Reason"], "upstream-timeout");
        // An answer the core did not make (no record) is classified by its status.
        let v = parse(&request_emf(None, 503, 0));
        assert_eq!(v["Outcome"], "unavailable");
        assert_eq!(v["Unavailable"], 1);
        let v = parse(&request_emf(
            Some(&Answered {
                outcome: AnswerOutcome::Duplicate,
                quarantined: false,
            }),
            200,
            0,
        ));
        assert_eq!(v["Duplicates"], 1);
        assert_eq!(v["Received"], 1);
    }

    #[test]
    fn lenient_fields_and_take_overs_are_counted() {
        let answered = Answered {
            outcome: AnswerOutcome::Enqueued,
            quarantined: false,
        };
        let counts = LineCounts {
            lenient: 3,
            take_overs: 2,
        };
        let v = parse(&request_emf_with(Some(&answered), counts, 202, 0));
        assert_eq!(v["LenientFields"], 3);
        assert_eq!(v["TakeOvers"], 2);
        let names = emf_metric_names(&v["_aws"]["CloudWatchMetrics"][0]);
        assert!(names.contains(&"LenientFields") && names.contains(&"TakeOvers"));
        let v = parse(&request_emf(Some(&answered), 202, 0));
        assert_eq!(v["LenientFields"], 0);
        assert_eq!(v["TakeOvers"], 0);
    }
}
