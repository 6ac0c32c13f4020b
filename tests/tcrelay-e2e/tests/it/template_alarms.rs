//! Every alarm on the relay's own metrics (namespace `TradecloudRelay`) watches a metric the
//! function it names writes: an alarm on a metric nobody writes never fires, and nothing in
//! CloudFormation or CloudWatch says so. The metric names come from the functions' own EMF lines
//! (`webhook::metrics::request_emf`, `poller::stream_emf`), so they cannot drift from the code.

use std::collections::BTreeSet;

use serde_yaml_ng::Value;
use tcrelay_poll::{PollStream, StopReason, StreamSummary};

use crate::template_env::Template;

const NAMESPACE: &str = "TradecloudRelay";

/// The metric names declared on an EMF line, over all its directives.
fn declared(line: &str) -> BTreeSet<String> {
    let line: serde_json::Value = serde_json::from_str(line).expect("an EMF line is JSON");
    line["_aws"]["CloudWatchMetrics"]
        .as_array()
        .expect("EMF directives")
        .iter()
        .flat_map(|directive| directive["Metrics"].as_array().expect("metrics").iter())
        .map(|metric| metric["Name"].as_str().expect("a name").to_owned())
        .collect()
}

/// What `function` (the `Function` dimension) declares on its lines, at their fullest: a
/// refused webhook request (its `Reason` directive too), a poll run with a cursor.
fn written_by(function: &str) -> BTreeSet<String> {
    match function {
        "webhook" => declared(&webhook::metrics::request_emf(None, 503, 0)),
        "poller" => {
            let mut summary = StreamSummary::new(PollStream::Orders, false);
            summary.stop = Some(StopReason::CaughtUp);
            (summary.pages, summary.objects, summary.enqueued) = (1, 1, 1);
            summary.cursor_after = Some("2025-01-01T00:00:00.000Z".to_owned());
            declared(&poller::stream_emf(&summary, 0, chrono::Utc::now()))
        }
        other => panic!("no function {other} writes metrics"),
    }
}

/// A metric an alarm watches: namespace, name, and its `Function` dimension.
#[derive(Debug)]
struct Watched {
    alarm: String,
    namespace: String,
    name: String,
    function: Option<String>,
}

/// The metrics `alarm` (its properties) watches: its single metric, or each `MetricStat` of
/// its metric math.
fn watched(alarm: &str, properties: &Value) -> Vec<Watched> {
    let of = |metric: &Value| Watched {
        alarm: alarm.to_owned(),
        namespace: metric["Namespace"].as_str().unwrap_or_default().to_owned(),
        name: metric["MetricName"].as_str().unwrap_or_default().to_owned(),
        function: metric["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|d| d["Name"] == "Function")
            .and_then(|d| d["Value"].as_str())
            .map(str::to_owned),
    };
    match properties["Metrics"].as_sequence() {
        Some(metrics) => metrics
            .iter()
            .filter(|m| m.get("MetricStat").is_some())
            .map(|m| of(&m["MetricStat"]["Metric"]))
            .collect(),
        None => vec![of(properties)],
    }
}

fn alarms_watching_our_metrics() -> Vec<Watched> {
    let template = Template::load();
    let resources = template.root["Resources"]
        .as_mapping()
        .expect("the template has resources");
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .flat_map(|(name, r)| watched(name.as_str().expect("a name"), &r["Properties"]))
        .filter(|w| w.namespace == NAMESPACE)
        .collect()
}

#[test]
fn every_alarm_on_our_metrics_watches_one_its_function_writes() {
    let watched = alarms_watching_our_metrics();
    assert!(watched.len() >= 4, "{watched:?}");
    for w in &watched {
        let function = w
            .function
            .as_deref()
            .unwrap_or_else(|| panic!("{w:?}: our metrics all have a Function dimension"));
        assert!(
            written_by(function).contains(&w.name),
            "{}: {function} does not write {} ({w:?})",
            w.alarm,
            w.name
        );
    }
}

/// A take-over (the ERP may have a message twice) alarms from either function.
#[test]
fn take_overs_of_both_functions_are_alarmed() {
    let functions: BTreeSet<String> = alarms_watching_our_metrics()
        .into_iter()
        .filter(|w| w.name == "TakeOvers")
        .filter_map(|w| w.function)
        .collect();
    assert_eq!(
        functions,
        BTreeSet::from(["poller".into(), "webhook".into()])
    );
}

/// Every answer API Gateway gives without the function that Tradecloud drops is counted by the
/// access log's metric filter, and an alarm watches that count: its throttling's 429, the 500
/// of an invocation Lambda refused, and, in Entra ID mode, the JWT authorizer's 401 (a token
/// whose issuer, audience or signature it refuses) and 403. The function's own 401s are
/// counted by its `Rejected` metric, but an order webhook the authorizer refused never reaches
/// the function: a misconfigured `EntraIdAudience` dropped every order message unalarmed.
#[test]
fn every_answer_the_gateway_gives_itself_that_tradecloud_drops_is_alarmed() {
    let template = Template::load();
    let resources = template.root["Resources"]
        .as_mapping()
        .expect("the template has resources");
    let filters: Vec<&Value> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::Logs::MetricFilter")
        .filter(|r| {
            r["Properties"]["LogGroupName"]["Ref"] == "HttpApiAccessLogGroup"
                || matches!(&r["Properties"]["LogGroupName"],
                    Value::Tagged(t) if t.value == "HttpApiAccessLogGroup")
        })
        .collect();
    assert_eq!(
        filters.len(),
        1,
        "one filter on the access log: {filters:?}"
    );
    let properties = &filters[0]["Properties"];
    let pattern = properties["FilterPattern"].as_str().expect("a pattern");
    for status in [401, 403, 429, 500] {
        assert!(
            pattern.contains(&format!("$.status = {status}")),
            "the gateway's {status} is not counted: {pattern}"
        );
    }
    let metric = &properties["MetricTransformations"][0];
    let (namespace, name) = (
        metric["MetricNamespace"].as_str().expect("a namespace"),
        metric["MetricName"].as_str().expect("a name"),
    );
    assert!(
        resources
            .values()
            .any(|r| r["Type"] == "AWS::CloudWatch::Alarm"
                && r["Properties"]["Namespace"] == namespace
                && r["Properties"]["MetricName"] == name),
        "no alarm watches {namespace}/{name}"
    );
    // The authorizer's answers go through this filter only if the stage logs them: it logs
    // every request, the authorizer's refusals included.
    assert!(
        template.root["Resources"]["HttpApiStage"]["Properties"]["AccessLogSettings"]["Format"]
            .as_str()
            .is_some_and(|f| f.contains("\"status\":$context.status")),
        "the access log has no status"
    );
}
