//! Acceptance tests of the poller against the simulator over HTTP with the real Tradecloud
//! client. Sink, dedupe store and cursor store are in-memory here (the volume would take
//! minutes against moto); `moto.rs` runs the same path with the DynamoDB and SQS adapters.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use common::*;
use serde_json::Value;
use tcrelay_core::ports::{ApiError, DedupeStore};
use tcrelay_core::testing::{MemoryDedupe, overtaken_claims};
use tcrelay_core::{CountingTakeOvers, TakeOverCount};
use tcrelay_poll::{
    EchoFilter, EchoSide, NoDeadline, PollConfig, PollError, PollStream, RunRequest, StopReason,
    StreamSummary, run, run_stream,
};
use tradecloud_model::timestamp;
use tradecloud_sim::{Endpoint, Fault, FaultRule, WorldConfig};

const ORDERS: PollStream = PollStream::Orders;
const SHIPMENTS: PollStream = PollStream::Shipments;

/// One scheduled run of `stream` without a deadline, which must succeed.
async fn scheduled(m: &MemoryPorts, c: &PollConfig, stream: PollStream, id: &str) -> StreamSummary {
    run_stream(&m.ports, c, stream, &RunRequest::scheduled(id), &NoDeadline)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_orders_and_a_thousand_shipments_changing_over_time_each_state_once() {
    let sim = simulator(WorldConfig {
        max_step_ms: 2_000,
        ..world(11, 5_000, 1_000)
    })
    .await;
    // The rate limit is the client's and tested there; here it would only make this slow.
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    let config = config(&[ORDERS, SHIPMENTS]);
    let mut runs = 0;
    for round in 0..8 {
        if round > 0 {
            sim.advance(400).unwrap();
        }
        // In some rounds objects also change while the run pages.
        sim.set_changes_per_poll(if round % 3 == 2 { 4 } else { 0 });
        let report = run(
            &m.ports,
            &config,
            &RunRequest::scheduled(format!("run-{round}")),
            &NoDeadline,
        )
        .await;
        runs += 1;
        assert!(!report.failed(), "round {round}: {:?}", report.results);
        for s in report.summaries() {
            assert_eq!(s.stop, Some(StopReason::CaughtUp), "round {round}: {s:?}");
        }
        if round % 3 != 2 {
            // Nothing changed during the run: every state current at its start is relayed.
            let states = m.sink.states();
            assert_current_states_enqueued(&sim, "order", &states);
            assert_current_states_enqueued(&sim, "shipment", &states);
        }
    }
    sim.set_changes_per_poll(0);
    run(
        &m.ports,
        &config,
        &RunRequest::scheduled("final"),
        &NoDeadline,
    )
    .await;
    let states = m.sink.states();
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    assert_current_states_enqueued(&sim, "shipment", &states);
    assert_eq!(m.cursors.value("orders"), newest(&sim, "order"));
    assert_eq!(m.cursors.value("shipments"), newest(&sim, "shipment"));
    // Each polled state is a real state of the simulator's history.
    let history: std::collections::HashSet<(String, String)> = sim
        .changes()
        .into_iter()
        .map(|c| (c.id, c.last_updated_at))
        .collect();
    assert!(
        states
            .iter()
            .all(|(_, id, at)| history.contains(&(id.clone(), at.clone())))
    );
    assert!(states.len() > 6_000, "{} states", states.len());
    assert!(runs >= 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn two_hundred_fifty_orders_on_one_millisecond_changing_while_paged_none_lost() {
    // Every action lands on the same millisecond as the one before (unless it would give one
    // object two states in one millisecond), so the 250 initial orders share one timestamp.
    let sim = simulator(WorldConfig {
        same_millisecond_probability: 1.0,
        ..world(12, 250, 0)
    })
    .await;
    let objects = sim.objects();
    assert!(
        objects
            .iter()
            .all(|o| o.last_updated_at == objects[0].last_updated_at)
    );
    let recording = Arc::new(Recording::new(api(&sim, 1_000)));
    let m = memory_ports(recording.clone(), KeySink::new());
    sim.set_changes_per_poll(3);
    let c = config(&[ORDERS]);
    for i in 0..10 {
        let s = run_stream(
            &m.ports,
            &c,
            ORDERS,
            &RunRequest::scheduled(format!("r{i}")),
            &NoDeadline,
        )
        .await
        .expect("run succeeds");
        assert_eq!(s.stop, Some(StopReason::CaughtUp));
    }
    sim.set_changes_per_poll(0);
    scheduled(&m, &c, ORDERS, "final").await;
    let states = m.sink.states();
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    assert_eq!(m.cursors.value("orders"), newest(&sim, "order"));
    // It did page by offset inside the shared timestamp.
    assert!(recording.requests().iter().any(|r| r.offset > 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn first_run_starts_at_the_configured_date_then_an_empty_answer_keeps_the_cursor() {
    let sim = simulator(world(13, 30, 5)).await;
    let recording = Arc::new(Recording::new(api(&sim, 1_000)));
    let m = memory_ports(recording.clone(), KeySink::new());
    let c = config(&[ORDERS]);
    let s = scheduled(&m, &c, ORDERS, "r1").await;
    assert_eq!(recording.requests()[0].last_updated, START);
    assert_eq!(s.enqueued, 30);
    let cursor = m.cursors.value("orders");
    assert_eq!(cursor, newest(&sim, "order"));
    let checkpoints = m.cursors.checkpoints().len();
    let s = scheduled(&m, &c, ORDERS, "r2").await;
    assert_eq!(s.enqueued, 0);
    assert_eq!(m.cursors.value("orders"), cursor);
    assert_eq!(m.cursors.checkpoints().len(), checkpoints);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_deadline_stops_early_with_the_cursor_saved_and_the_next_run_continues() {
    let sim = simulator(world(14, 450, 0)).await;
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    let c = config(&[ORDERS]);
    let s = run_stream(
        &m.ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("r1"),
        &PagesOfTime(AtomicUsize::new(2)),
    )
    .await
    .unwrap();
    assert_eq!(s.stop, Some(StopReason::Deadline));
    assert_eq!(s.pages, 2);
    let saved = m.cursors.value("orders").expect("cursor saved");
    assert!(saved < newest(&sim, "order").unwrap());
    assert_eq!(s.cursor_after.as_deref(), Some(saved.as_str()));
    let s = scheduled(&m, &c, ORDERS, "r2").await;
    assert_eq!(s.cursor_before.as_deref(), Some(saved.as_str()));
    let states = m.sink.states();
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    sim.shutdown().await;
}

#[tokio::test]
async fn rate_limits_server_errors_and_timeouts_are_retried_within_the_budget() {
    let sim = simulator(world(15, 120, 0)).await;
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    sim.add_fault(FaultRule::next(
        Endpoint::OrderPoll,
        1,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    ));
    sim.add_fault(FaultRule::next(
        Endpoint::OrderPoll,
        2,
        Fault::Status { status: 503 },
    ));
    // Longer than the client's 1.5 s timeout.
    sim.add_fault(FaultRule::next(
        Endpoint::OrderPoll,
        1,
        Fault::Timeout { ms: 2_500 },
    ));
    let s = run_stream(
        &m.ports,
        &config(&[ORDERS]),
        ORDERS,
        &RunRequest::scheduled("r1"),
        &NoDeadline,
    )
    .await
    .expect("retried to success");
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_current_states_enqueued(&sim, "order", &m.sink.states());
    let polls: Vec<_> = sim
        .api_requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::OrderPoll))
        .collect();
    assert!(polls.iter().any(|r| r.status == 429));
    assert!(polls.iter().filter(|r| r.status == 503).count() >= 2);
    // Retry-After was honoured: the retry after the 429 came at least a second later.
    let after_429 = polls.iter().position(|r| r.status == 429).unwrap();
    assert!(polls[after_429 + 1].received_ms >= polls[after_429].answered_ms + 900);
    sim.shutdown().await;
}

#[tokio::test]
async fn persistent_failures_fail_the_run_with_the_cursor_unchanged() {
    let sim = simulator(world(16, 20, 0)).await;
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    let c = config(&[ORDERS]);
    scheduled(&m, &c, ORDERS, "r1").await;
    let before = m.cursors.value("orders");
    sim.advance(20).unwrap();
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::OrderPoll],
        fault: Fault::Status { status: 502 },
        rate: 1.0,
        count: None,
    });
    let failure = run_stream(
        &m.ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("r2"),
        &NoDeadline,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            failure.error,
            PollError::Api(ApiError::Upstream { status: 502 })
        ),
        "{failure}"
    );
    assert_eq!(m.cursors.value("orders"), before);
    assert_eq!(failure.summary.cursor_after, before);
    sim.clear_faults();
    // A Tradecloud that cannot be reached at all: nothing listens on the address any more.
    let base = sim.base_url();
    sim.shutdown().await;
    let gone = tcrelay_tradecloud::ClientPollApi(
        tradecloud_client::TradecloudClient::new(tradecloud_client::ClientConfig {
            retry_budget: Duration::from_millis(500),
            ..tradecloud_client::ClientConfig::new(
                base,
                tradecloud_client::Credentials::new("u", "p"),
            )
        })
        .unwrap(),
    );
    let mut ports = m.ports.clone();
    ports.api = Arc::new(gone);
    let failure = run_stream(
        &ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("r3"),
        &NoDeadline,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            failure.error,
            PollError::Api(ApiError::Unavailable(_) | ApiError::Timeout)
        ),
        "{failure}"
    );
    assert_eq!(m.cursors.value("orders"), before);
}

/// How much later than sent a call may reach the simulator on a loaded test machine.
const ARRIVAL_JITTER_MS: u64 = 30;

#[tokio::test]
async fn calls_are_sequential_and_at_most_ten_per_second() {
    let sim = simulator(world(17, 720, 0)).await;
    // The client's default rate: 10 requests per second.
    let m = memory_ports(Arc::new(api(&sim, 10)), KeySink::new());
    let mut c = config(&[ORDERS]);
    c.page_limit = 60;
    scheduled(&m, &c, ORDERS, "r1").await;
    let requests = sim.api_requests();
    assert!(requests.len() >= 12, "{} requests", requests.len());
    for pair in requests.windows(2) {
        assert!(
            pair[1].received_ms >= pair[0].answered_ms,
            "overlapping calls: {pair:?}"
        );
    }
    // The client starts each call 100 ms after the previous one started; the simulator sees
    // arrivals, which a loaded machine delays by up to some tens of ms (the first call also
    // opens the connection), so one gap may look that much shorter, never a whole interval
    // as without the limiter. Over ten gaps the delays do not add up: no eleven calls within a
    // second (Tradecloud's rule is at most ten per second).
    for pair in requests.windows(2) {
        assert!(
            pair[1].received_ms + ARRIVAL_JITTER_MS >= pair[0].received_ms + 100,
            "too fast: {pair:?}"
        );
    }
    for eleven in requests.windows(11) {
        assert!(
            eleven[10].received_ms + ARRIVAL_JITTER_MS >= eleven[0].received_ms + 1000,
            "eleven calls within a second: {:?}",
            eleven.iter().map(|r| r.received_ms).collect::<Vec<_>>()
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn the_echo_filter_skips_own_side_requests_and_passes_everything_else() {
    let sim = simulator(world(18, 60, 0)).await;
    sim.advance(600).unwrap();
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::keeping_envelopes());
    let mut c = config(&[ORDERS]);
    c.echo_filter = Some(EchoFilter::OwnRequests(EchoSide::Buyer));
    let s = scheduled(&m, &c, ORDERS, "r1").await;
    let own = EchoSide::Buyer.own_request_statuses();
    let is_own = |line: &Value| {
        line.pointer("/status/inProgressStatus")
            .and_then(Value::as_str)
            .is_some_and(|s| own.contains(&s))
    };
    let envelopes = m.sink.envelopes();
    let mut removed = 0;
    for order in sim.objects().into_iter().filter(|o| o.class == "order") {
        let full = sim.order(&order.id).unwrap();
        let lines = full["lines"].as_array().unwrap();
        let relayed = envelopes.iter().find(|e| e.id == order.id);
        // The first run's window starts at START: every line changed. An order changed after
        // its echo lines (documents attached, which move no line) has something new: relayed.
        let latest_is_echo = lines
            .iter()
            .any(|l| l["lastUpdatedAt"] == full["lastUpdatedAt"]);
        if !lines.is_empty() && lines.iter().all(is_own) && latest_is_echo {
            assert!(
                relayed.is_none(),
                "echo-only order {} was relayed",
                order.id
            );
            continue;
        }
        let relayed = relayed.unwrap_or_else(|| panic!("order {} was not relayed", order.id));
        let payload = relayed.payload.to_value().unwrap();
        let sent: Vec<&str> = payload["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = lines
            .iter()
            .filter(|l| !is_own(l))
            .map(|l| l["id"].as_str().unwrap())
            .collect();
        assert_eq!(sent, expected, "order {}", order.id);
        removed += lines.len() - sent.len();
    }
    assert!(
        removed > 0 || s.filtered > 0,
        "the simulator produced no buyer request to filter; pick another seed"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn dry_run_and_backfill_invocations_through_the_handler() {
    let sim = simulator(world(19, 40, 0)).await;
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    let c = config(&[ORDERS]);
    let read = |name: &str| -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../events")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let out = poller::handle(
        &m.ports,
        &c,
        &read("poller-dry-run.json"),
        "dry",
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(out.failure(), None);
    let answer = out.answer();
    assert_eq!(answer["dryRun"], true);
    assert_eq!(answer["streams"][0]["enqueued"], 40);
    assert_eq!(
        answer["streams"][0]["planned"].as_array().unwrap().len(),
        40
    );
    assert!(m.sink.states().is_empty());
    assert!(m.dedupe.records().is_empty());
    assert_eq!(m.cursors.value("orders"), None);
    assert!(
        out.metrics(&TakeOverCount::default(), chrono::Utc::now())
            .is_empty()
    );

    let out = poller::handle(
        &m.ports,
        &c,
        &read("poller-scheduled.json"),
        "sched",
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(out.failure(), None);
    // A take-over counted before this line is on it, once.
    let memory = Arc::new(MemoryDedupe::default());
    let counting = CountingTakeOvers::new(memory.clone());
    let late = overtaken_claims(&counting, &memory, &["k"]).await;
    counting.complete_many(&late).await;
    let take_overs = counting.count();
    let lines = out.metrics(&take_overs, chrono::Utc::now());
    assert_eq!(lines.len(), 1);
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["TakeOvers"], 1);
    let again: Value =
        serde_json::from_str(&out.metrics(&take_overs, chrono::Utc::now())[0]).unwrap();
    assert_eq!(again["TakeOvers"], 0);
    let cursor = m.cursors.value("orders");
    assert_eq!(m.sink.states().len(), 40);
    // Backfill from before everything: all duplicates, and the cursor does not move back.
    let out = poller::handle(
        &m.ports,
        &c,
        &read("poller-backfill.json"),
        "backfill",
        &NoDeadline,
    )
    .await
    .unwrap();
    let answer = out.answer();
    assert_eq!(answer["streams"][0]["duplicates"], 40);
    assert_eq!(answer["streams"][0]["enqueued"], 0);
    assert_eq!(m.cursors.value("orders"), cursor);
    let from = timestamp::parse("2025-01-01T00:00:00.000Z").unwrap();
    assert!(timestamp::parse(cursor.as_deref().unwrap()).unwrap() > from);
    sim.shutdown().await;
}
