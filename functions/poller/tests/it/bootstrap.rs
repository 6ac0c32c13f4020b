//! The real `poller` binary (what cargo-lambda packages as `bootstrap`) run as Lambda runs it:
//! a child process with Lambda's environment, fed `events/poller-*.json` by the Lambda Runtime
//! API emulator, with moto's server as AWS (SQS, DynamoDB, S3) and the Tradecloud simulator as
//! Tradecloud. Checks the answers, the queue (each object state exactly once) and the
//! `CursorAgeSeconds` EMF lines on stdout.
//!
//! Needs `TCRELAY_TEST_MOTO_URL` (set by scripts/test.sh); fails loudly without it.
//! `LAMBDA_EMULATOR_ECHO=1` echoes the function's output while a test runs.

use std::collections::BTreeSet;
use std::time::Duration;

use lambda_runtime_emulator::{FunctionProcess, read_event};
use serde_json::{Value, json};
use tcrelay_aws::testing::{MotoOptions, MotoResources};
use tradecloud_sim::{SimConfig, Simulator, WorldConfig};

/// The function's timeout (the SAM template gives it 240 s; a run stops fetching
/// `TCRELAY_POLL_TIME_MARGIN_SECONDS` before it).
const TIMEOUT: Duration = Duration::from_secs(60);
/// Where a stream without a cursor starts: before the simulator's world (2025-01-06).
const START: &str = "2025-01-01T00:00:00.000Z";
/// How long draining the queue may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// This test's own queue, table and bucket in moto.
async fn aws() -> MotoResources {
    MotoResources::create("poller-boot", MotoOptions::from_env()).await
}

/// A small world that changes only when the test advances it.
async fn simulator() -> Simulator {
    Simulator::start(SimConfig {
        world: WorldConfig {
            seed: 23,
            initial_orders: 7,
            initial_shipments: 3,
            max_lines: 4,
            ..WorldConfig::default()
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// The variables the deployment template gives the function (docs/poller-config.md).
fn poller_env(aws: &MotoResources, sim: &Simulator) -> Vec<(&'static str, String)> {
    vec![
        ("TRADECLOUD_API_URL", sim.base_url()),
        ("TRADECLOUD_USERNAME", sim.username().to_owned()),
        ("TRADECLOUD_PASSWORD", sim.password().to_owned()),
        ("TCRELAY_QUEUE_URL", aws.queue_url.clone()),
        ("TCRELAY_DEDUPE_TABLE", aws.table.clone()),
        ("TCRELAY_CLAIM_CHECK_BUCKET", aws.bucket.clone()),
        ("TCRELAY_AWS_ENDPOINT_URL", aws.url.clone()),
        ("TCRELAY_POLL_STREAMS", "orders,shipments".to_owned()),
        ("TCRELAY_POLL_START", START.to_owned()),
        ("TCRELAY_POLL_TIME_MARGIN_SECONDS", "5".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
}

/// A cold-started `poller` process under its own Runtime API.
async fn cold_start(env: Vec<(&'static str, String)>) -> FunctionProcess {
    FunctionProcess::cold_start("poller", env!("CARGO_BIN_EXE_poller"), env)
        .await
        .expect("poller starts")
}

/// The event in `events/<file>`.
fn event(file: &str) -> Value {
    read_event(format!(
        "{}/../../events/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

/// Invokes the function and returns its answer; panics (with its output) on an error answer.
async fn invoke(function: &FunctionProcess, event: Value) -> Value {
    function
        .invoke_for_response(event, TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("invocation failed: {e}"))
}

/// The summary of `stream` in an answer.
fn stream<'a>(answer: &'a Value, stream: &str) -> &'a Value {
    answer["streams"]
        .as_array()
        .and_then(|streams| streams.iter().find(|s| s["stream"] == stream))
        .unwrap_or_else(|| panic!("no {stream} summary in {answer}"))
}

/// (class, id, lastUpdatedAt): one object state.
type State = (String, String, String);

fn sim_states(sim: &Simulator) -> BTreeSet<State> {
    sim.objects()
        .into_iter()
        .map(|o| (o.class, o.id, o.last_updated_at))
        .collect()
}

fn count(states: &BTreeSet<State>, class: &str) -> u64 {
    states.iter().filter(|(c, _, _)| c == class).count() as u64
}

/// Receives (and deletes) every message until the queue stays empty; their states, in order.
async fn drain(aws: &MotoResources) -> Vec<State> {
    let messages = tcrelay_aws::testing::drain(&aws.clients.sqs, &aws.queue_url, 2, DRAIN_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    messages
        .iter()
        .map(|message| {
            let envelope: Value =
                serde_json::from_str(message.body().expect("body")).expect("envelope JSON");
            assert_eq!(envelope["source"], "poll", "{envelope}");
            let kind = envelope["kind"].as_str().expect("kind").to_owned();
            (
                kind,
                envelope["id"].as_str().expect("id").to_owned(),
                envelope["lastUpdatedAt"]
                    .as_str()
                    .expect("lastUpdatedAt")
                    .to_owned(),
            )
        })
        .collect()
}

/// Asserts every state is on the queue once: no duplicates, nothing missing, nothing else.
fn assert_exactly_once(queued: &[State], expected: &BTreeSet<State>) {
    let distinct: BTreeSet<State> = queued.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        queued.len(),
        "a state was enqueued twice: {queued:?}"
    );
    assert_eq!(&distinct, expected);
}

/// The EMF lines with a `CursorAgeSeconds` metric among `lines`.
fn cursor_age_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["Name"] == "CursorAgeSeconds"))
        })
        .collect()
}

/// The `CursorAgeSeconds` EMF lines on stdout from line `from` on, once there are `n` of them
/// (the function prints them before it answers, but they are captured by a task of their own).
async fn wait_cursor_age_lines(function: &FunctionProcess, from: usize, n: usize) -> Vec<Value> {
    function
        .wait_for_stdout(Duration::from_secs(10), |lines| {
            cursor_age_lines(lines.get(from..).unwrap_or_default()).len() >= n
        })
        .await;
    cursor_age_lines(function.stdout_lines().get(from..).unwrap_or_default())
}

#[tokio::test]
async fn scheduled_runs_relay_every_state_once_with_dry_run_backfill_and_cursor_age_metrics() {
    let aws = aws().await;
    let sim = simulator().await;
    let function = cold_start(poller_env(&aws, &sim)).await;
    let states = sim_states(&sim);
    let (orders, shipments) = (count(&states, "order"), count(&states, "shipment"));
    assert!(orders > 0 && shipments > 0);

    // A dry run first: reports what would be sent, sends nothing, writes no metric.
    let dry = invoke(&function, event("poller-dry-run.json")).await;
    assert_eq!(dry["dryRun"], true, "{dry}");
    assert_eq!(stream(&dry, "orders")["enqueued"], orders, "{dry}");
    assert_eq!(stream(&dry, "shipments")["enqueued"], shipments, "{dry}");
    assert!(
        stream(&dry, "orders")["planned"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{dry}"
    );
    assert!(drain(&aws).await.is_empty(), "a dry run sends nothing");
    assert!(cursor_age_lines(&function.stdout_lines()).is_empty());

    // A stream the function is not configured for is refused, naming the setting.
    match function
        .invoke_for_response(json!({"stream": "single-delivery-orders"}), TIMEOUT)
        .await
    {
        Err(lambda_runtime_emulator::InvokeError::ErrorAnswer { error, .. }) => {
            let message = error["errorMessage"].as_str().unwrap_or_default();
            assert!(
                message.contains("TCRELAY_POLL_STREAMS: orders,shipments"),
                "{error}"
            );
        }
        other => panic!("expected an error answer, got {other:?}"),
    }

    // The schedule fires: every object once, from TCRELAY_POLL_START.
    let lines_before = function.stdout_lines().len();
    let first = invoke(&function, event("poller-scheduled.json")).await;
    assert_eq!(first["dryRun"], false, "{first}");
    for (name, class, n) in [
        ("orders", "order", orders),
        ("shipments", "shipment", shipments),
    ] {
        let summary = stream(&first, name);
        assert_eq!(summary["stop"]["reason"], "caught-up", "{first}");
        assert_eq!(summary["enqueued"], n, "{first}");
        assert_eq!(summary["cursorBefore"], Value::Null, "{first}");
        let newest = states
            .iter()
            .filter(|(c, _, _)| c == class)
            .map(|(_, _, at)| at.clone())
            .max();
        assert_eq!(
            summary["cursorAfter"].as_str(),
            newest.as_deref(),
            "{first}"
        );
    }
    // One EMF line per stream with the cursor age: 0, the run caught up.
    let metrics = wait_cursor_age_lines(&function, lines_before, 2).await;
    let streams: BTreeSet<&str> = metrics
        .iter()
        .filter_map(|m| m["Stream"].as_str())
        .collect();
    assert_eq!(
        streams,
        BTreeSet::from(["orders", "shipments"]),
        "{}",
        function.output()
    );
    for line in &metrics {
        assert_eq!(line["CursorAgeSeconds"], 0, "{line}");
        assert_eq!(line["Function"], "poller", "{line}");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "TradecloudRelay",
            "{line}"
        );
        assert!(line["_aws"]["Timestamp"].is_u64(), "{line}");
    }

    // It fires again and nothing changed at Tradecloud: nothing new is enqueued.
    let lines_before = function.stdout_lines().len();
    let second = invoke(&function, event("poller-scheduled.json")).await;
    for name in ["orders", "shipments"] {
        let summary = stream(&second, name);
        assert_eq!(summary["enqueued"], 0, "{second}");
        assert_eq!(summary["cursorBefore"], stream(&first, name)["cursorAfter"]);
        assert_eq!(summary["cursorAfter"], stream(&first, name)["cursorAfter"]);
    }
    assert_eq!(
        wait_cursor_age_lines(&function, lines_before, 2)
            .await
            .len(),
        2
    );
    assert_exactly_once(&drain(&aws).await, &states);

    // A backfill of the orders from the same start: all already relayed, none sent again, and
    // the cursor does not move back.
    let backfill = invoke(&function, event("poller-backfill.json")).await;
    assert_eq!(
        backfill["streams"].as_array().map(Vec::len),
        Some(1),
        "{backfill}"
    );
    let summary = stream(&backfill, "orders");
    assert_eq!(summary["enqueued"], 0, "{backfill}");
    assert_eq!(summary["duplicates"], orders, "{backfill}");
    assert_eq!(
        summary["cursorAfter"],
        stream(&first, "orders")["cursorAfter"]
    );
    assert!(drain(&aws).await.is_empty(), "the backfill sent nothing");

    // Tradecloud changes: the next scheduled run relays exactly the new states.
    sim.advance(5).expect("the world advances");
    let changed: BTreeSet<State> = sim_states(&sim).difference(&states).cloned().collect();
    assert!(!changed.is_empty());
    let third = invoke(&function, event("poller-scheduled.json")).await;
    let enqueued: u64 = ["orders", "shipments"]
        .iter()
        .map(|name| stream(&third, name)["enqueued"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(enqueued, changed.len() as u64, "{third}");
    assert_exactly_once(&drain(&aws).await, &changed);

    // A manual invoke it cannot act on is answered with an error (the Runtime API's /error),
    // and the function goes on serving.
    let refused = function
        .invoke(json!({"dryrun": true}), TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("invocation failed: {e}"));
    let error = refused.error().unwrap_or_else(|| panic!("{refused:?}"));
    assert!(
        error["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("unsupported event")),
        "{error}"
    );
    let fourth = invoke(&function, event("poller-scheduled.json")).await;
    assert_eq!(stream(&fourth, "orders")["enqueued"], 0, "{fourth}");
    assert!(drain(&aws).await.is_empty());

    // Every stdout line is a JSON object (CloudWatch logs and EMF).
    for line in function.stdout_lines() {
        assert!(
            serde_json::from_str::<Value>(&line).is_ok_and(|v| v.is_object()),
            "stdout line is not a JSON object: {line}"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn streams_without_a_start_stop_the_cold_start_with_a_message_naming_it() {
    // Settings are read before any AWS or Tradecloud call: neither moto nor the simulator is
    // needed.
    let env: Vec<(&str, String)> = vec![
        ("TRADECLOUD_API_URL", "http://127.0.0.1:9/v2".into()),
        ("TRADECLOUD_USERNAME", "integration@example.com".into()),
        ("TRADECLOUD_PASSWORD", "secret".into()),
        (
            "TCRELAY_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/queue".into(),
        ),
        ("TCRELAY_DEDUPE_TABLE", "relay".into()),
        ("TCRELAY_AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
        ("TCRELAY_POLL_STREAMS", "orders".into()),
    ];
    let function = cold_start(env).await;
    // The process stops; the reason goes to the Runtime API's /init/error before it exits, so
    // Lambda answers invocations with it (not just Runtime.ExitError), and to the logs.
    let failure = function
        .assert_init_fails_naming(
            "Runtime.ConfigError",
            "TCRELAY_POLL_START",
            event("poller-scheduled.json"),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(failure.init_error.body["errorType"], "Runtime.ConfigError");
    // tcrelay_lambda::start_failed logs the reason as the line's `error` field.
    assert!(failure.logged_at("/fields/error"), "{failure:?}");
}
