//! The poll loop against in-memory fakes: a scripted Tradecloud whose world can change between
//! pages, the core's memory sink and dedupe store, and a memory cursor store with leases.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tcrelay_core::dedupe::state_key;
use tcrelay_core::envelope::{Envelope, Source};
use tcrelay_core::ports::{ApiError, CursorStore, DedupeStore, EventSink, RecordState, SinkError};
use tcrelay_core::testing::{MemoryDedupe, MemorySink};
use tcrelay_poll::testing::{
    MemoryCursorStore, PagesOfTime, ScriptedPollApi, ScriptedWorld, ms_to_timestamp, order_json,
    shipment_json,
};
use tcrelay_poll::{
    Deadline, EchoFilter, EchoSide, EndpointMode, NoDeadline, PageRequest, PollApi, PollConfig,
    PollError, PollPorts, PollStream, PolledPage, RunRequest, StopReason, StreamFailure,
    StreamSummary, run, run_stream,
};
use tradecloud_model::{ObjectClass, ObjectKind};

/// 2025-01-01T00:00:00.000Z.
const T0: i64 = 1_735_689_600_000;
const START: &str = "2024-12-31T00:00:00.000Z";
const ORDERS: PollStream = PollStream::Orders;

struct Harness {
    api: Arc<ScriptedPollApi>,
    cursors: Arc<MemoryCursorStore>,
    dedupe: Arc<MemoryDedupe>,
    sink: Arc<MemorySink>,
    ports: PollPorts,
}

fn harness_with_sink(sink: Arc<dyn EventSink>, memory: Arc<MemorySink>) -> Harness {
    let api = Arc::new(ScriptedPollApi::new());
    let cursors = Arc::new(MemoryCursorStore::new());
    let dedupe = Arc::new(MemoryDedupe::default());
    let ports = PollPorts {
        api: api.clone(),
        cursors: cursors.clone(),
        dedupe: dedupe.clone(),
        sink,
    };
    Harness {
        api,
        cursors,
        dedupe,
        sink: memory,
        ports,
    }
}

fn harness() -> Harness {
    let sink = Arc::new(MemorySink::new());
    harness_with_sink(sink.clone(), sink)
}

fn config() -> PollConfig {
    PollConfig {
        streams: vec![ORDERS],
        start: Some(START.into()),
        ..PollConfig::default()
    }
}

fn order(id: &str, ms: i64) -> serde_json::Value {
    order_json(id, 1, ms, &[(&format!("{id}-l1"), ms, "Issued", None)])
}

fn put_order(world: &mut ScriptedWorld, id: &str, ms: i64) {
    world.put(ORDERS, id, ms, order(id, ms));
}

async fn poll(
    h: &Harness,
    config: &PollConfig,
    owner: &str,
) -> Result<StreamSummary, StreamFailure> {
    run_stream(
        &h.ports,
        config,
        ORDERS,
        &RunRequest::scheduled(owner),
        &NoDeadline,
    )
    .await
}

/// A run of the orders stream as its own task, to be killed (aborted) or to panic.
fn spawn_poll(
    h: &Harness,
    config: PollConfig,
    owner: &'static str,
) -> tokio::task::JoinHandle<Result<StreamSummary, StreamFailure>> {
    let ports = h.ports.clone();
    tokio::spawn(async move {
        run_stream(
            &ports,
            &config,
            ORDERS,
            &RunRequest::scheduled(owner),
            &NoDeadline,
        )
        .await
    })
}

/// Runs until a run is caught up (bounded), returning the summaries.
async fn poll_until_caught_up(h: &Harness, config: &PollConfig) -> Vec<StreamSummary> {
    let mut summaries = Vec::new();
    for i in 0..20 {
        let s = poll(h, config, &format!("run-{i}"))
            .await
            .expect("run succeeds");
        let done = s.stop == Some(StopReason::CaughtUp);
        summaries.push(s);
        if done {
            return summaries;
        }
    }
    panic!("not caught up after 20 runs: {summaries:#?}");
}

fn sent(sink: &MemorySink) -> Vec<(String, String)> {
    sink.envelopes()
        .iter()
        .map(|e| (e.id.clone(), e.last_updated_at.clone().unwrap_or_default()))
        .collect()
}

/// The first envelope the sink holds of object `id`.
fn first_envelope_of(sink: &MemorySink, id: &str) -> Envelope {
    sink.envelopes()
        .into_iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no envelope of {id}"))
}

/// Every current state of the world was enqueued, and no state twice.
fn assert_exactly_once(h: &Harness, stream: PollStream) {
    assert_exactly_once_but(h, stream, &[]);
}

/// As [`assert_exactly_once`], but for the states `relayed_elsewhere` (`(id, ms)`: another
/// channel relayed them).
fn assert_exactly_once_but(h: &Harness, stream: PollStream, relayed_elsewhere: &[(&str, i64)]) {
    let sent = sent(&h.sink);
    let unique: HashSet<&(String, String)> = sent.iter().collect();
    assert_eq!(
        unique.len(),
        sent.len(),
        "a state was enqueued twice: {sent:?}"
    );
    let elsewhere: Vec<(String, String)> = relayed_elsewhere
        .iter()
        .map(|(id, ms)| ((*id).to_owned(), ms_to_timestamp(*ms)))
        .collect();
    let missing: Vec<(String, String)> = h
        .api
        .with_world(|w| w.states(stream))
        .into_iter()
        .filter(|s| !unique.contains(s) && !elsewhere.contains(s))
        .collect();
    assert!(missing.is_empty(), "states never enqueued: {missing:?}");
}

#[tokio::test]
async fn first_run_starts_at_the_configured_date_and_ends_at_the_last_timestamp() {
    let h = harness();
    h.api.with_world(|w| {
        // Before the start: never asked for.
        put_order(w, "old", T0 - 2 * 86_400_000);
        for i in 0..30 {
            put_order(w, &format!("o{i:02}"), T0 + i * 1000);
        }
    });
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(h.api.requests()[0].last_updated, START);
    assert_eq!(h.api.requests()[0].offset, 0);
    assert_eq!(h.api.requests()[0].limit, 100);
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(
        (s.pages, s.objects, s.enqueued, s.duplicates),
        (1, 30, 30, 0)
    );
    assert_eq!(s.cursor_before, None);
    assert_eq!(
        s.cursor_after.as_deref(),
        Some(ms_to_timestamp(T0 + 29_000).as_str())
    );
    assert_eq!(h.cursors.value("orders"), s.cursor_after);
    let envelopes = h.sink.envelopes();
    assert!(envelopes.iter().all(|e| e.id != "old"));
    let e: &Envelope = &envelopes[0];
    assert_eq!(e.source, Source::Poll);
    assert_eq!(e.kind, ObjectKind::Order);
    assert_eq!(e.event_name, None);
    assert_eq!(e.version, Some(1));
    assert_eq!(
        e.dedupe_key,
        state_key(
            ObjectClass::Order,
            &e.id,
            e.last_updated_at.as_deref().unwrap()
        )
    );
    assert_eq!(e.changed_lines, Some(vec![format!("{}-l1", e.id)]));
    // Claims are completed, as full states.
    let record = h.dedupe.lookup(&e.dedupe_key).await.unwrap().unwrap();
    assert_eq!(record.state, RecordState::Completed);
    assert!(record.full_state);
}

#[tokio::test]
async fn an_empty_answer_leaves_the_cursor_alone() {
    let h = harness();
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!((s.pages, s.enqueued), (1, 0));
    assert_eq!(s.cursor_after, None);
    assert!(h.cursors.checkpoints().is_empty());
    // With a cursor: the re-asked overlap is all duplicates, nothing moves.
    h.api.with_world(|w| put_order(w, "a", T0));
    poll(&h, &config(), "run-2").await.unwrap();
    let checkpoints = h.cursors.checkpoints().len();
    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.duplicates), (0, 1));
    assert_eq!(s.cursor_before, s.cursor_after);
    assert_eq!(h.cursors.checkpoints().len(), checkpoints);
}

#[tokio::test]
async fn each_run_reasks_the_cursor_millisecond_so_late_ties_are_not_skipped() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "a", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    // Lands on the cursor's own millisecond after the run read it, plus a later one.
    h.api.with_world(|w| {
        put_order(w, "b", T0);
        put_order(w, "c", T0 + 5);
    });
    let s = poll(&h, &config(), "run-2").await.unwrap();
    // Asked from the cursor minus the lookback (1 ms), never from our clock.
    assert_eq!(h.api.requests()[1].last_updated, ms_to_timestamp(T0 - 1));
    assert_eq!((s.enqueued, s.duplicates), (2, 1));
    assert_exactly_once(&h, ORDERS);
    // A longer lookback re-asks further back.
    let mut long = config();
    long.lookback = Duration::from_secs(60);
    poll(&h, &long, "run-3").await.unwrap();
    assert_eq!(
        h.api.requests()[2].last_updated,
        ms_to_timestamp(T0 + 5 - 60_000)
    );
}

#[tokio::test]
async fn two_hundred_fifty_objects_on_one_millisecond_are_all_relayed() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..40 {
            put_order(w, &format!("before{i:02}"), T0 + i);
        }
        for i in 0..250 {
            put_order(w, &format!("tie{i:03}"), T0 + 1000);
        }
        for i in 0..40 {
            put_order(w, &format!("after{i:02}"), T0 + 2000 + i);
        }
    });
    let runs = poll_until_caught_up(&h, &config()).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].enqueued, 330);
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 2039)));
    // Offset paging happened only inside the tie, and the cursor never rested inside it.
    let requests = h.api.requests();
    assert!(requests.iter().any(|r| r.offset > 0));
    assert!(
        requests
            .iter()
            .filter(|r| r.offset > 0)
            .all(|r| r.last_updated == ms_to_timestamp(T0 + 39)),
        "{requests:#?}"
    );
}

#[tokio::test]
async fn objects_leaving_a_tie_while_paging_inside_it_do_not_hide_others() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..250 {
            put_order(w, &format!("tie{i:03}"), T0);
        }
    });
    // After the first page inside the tie, 30 of its first objects change (more than the
    // 10-object overlap), shifting the rest under the offset.
    let moved = Arc::new(AtomicUsize::new(0));
    let counter = moved.clone();
    h.api.set_between_pages(Some(Box::new(
        move |w: &mut ScriptedWorld, served: usize| {
            if served == 1 {
                for i in 0..30 {
                    put_order(w, &format!("tie{i:03}"), T0 + 10_000 + i as i64);
                }
                counter.fetch_add(30, Ordering::SeqCst);
            }
        },
    )));
    poll_until_caught_up(&h, &config()).await;
    assert_eq!(moved.load(Ordering::SeqCst), 30);
    assert_exactly_once(&h, ORDERS);
    // 250 first states + the 30 changed ones (their first states were on page one).
    assert_eq!(h.sink.envelopes().len(), 280);
}

#[tokio::test]
async fn changes_landing_between_pages_lose_nothing() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..1000i64 {
            // Groups of up to 7 objects share a millisecond.
            put_order(w, &format!("o{i:04}"), T0 + (i / 7) * 3);
        }
    });
    // After every page, 5 objects change; a third of them on the newest millisecond.
    let mut clock = T0 + 1_000_000;
    let mut next = 0usize;
    h.api.set_between_pages(Some(Box::new(
        move |w: &mut ScriptedWorld, served: usize| {
            if served > 40 {
                return;
            }
            for k in 0..5 {
                let id = format!("o{:04}", (next * 137) % 1000);
                next += 1;
                if k % 3 != 0 {
                    clock += 1;
                }
                put_order(w, &id, clock);
            }
        },
    )));
    let runs = poll_until_caught_up(&h, &config()).await;
    h.api.set_between_pages(None);
    // One more run picks up changes made after the last page of the last run.
    poll_until_caught_up(&h, &config()).await;
    assert_exactly_once(&h, ORDERS);
    let newest = h.api.with_world(|w| w.newest(ORDERS));
    assert_eq!(h.cursors.value("orders"), newest);
    assert!(runs.iter().map(|r| r.pages).sum::<u32>() >= 10);
}

/// A sink that fails on its `fail_on`-th call (1-based) for the second half of the batch.
struct FlakySink {
    inner: Arc<MemorySink>,
    calls: AtomicUsize,
    fail_on: usize,
}

#[async_trait]
impl EventSink for FlakySink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == self.fail_on {
            let half = envelopes.len() / 2;
            self.inner.enqueue(&envelopes[..half]).await?;
            return Err(SinkError {
                failed: (half..envelopes.len()).collect(),
                reason: "fake queue throttled".into(),
            });
        }
        self.inner.enqueue(envelopes).await
    }
}

#[tokio::test]
async fn a_sink_failure_after_page_k_keeps_the_cursor_at_page_k_minus_one() {
    let memory = Arc::new(MemorySink::new());
    let flaky = Arc::new(FlakySink {
        inner: memory.clone(),
        calls: AtomicUsize::new(0),
        fail_on: 3,
    });
    let h = harness_with_sink(flaky, memory);
    h.api.with_world(|w| {
        for i in 0..450 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(matches!(failure.error, PollError::Sink(_)), "{failure}");
    // Pages 1 and 2 (99 settled objects each) were checkpointed, page 3 was not.
    let checkpoints = h.cursors.checkpoints();
    assert_eq!(checkpoints.len(), 2);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 197)));
    assert_eq!(failure.summary.cursor_after, h.cursors.value("orders"));
    // The half that reached the queue is completed, the other half released for the retry.
    // Pages are relayed whole; the last object of each comes again first on the next.
    let sent_now = sent(&h.sink);
    assert_eq!(sent_now.len(), 100 + 99 + 49);
    let released = state_key(ObjectClass::Order, "o297", &ms_to_timestamp(T0 + 297));
    assert_eq!(h.dedupe.lookup(&released).await.unwrap(), None);
    // The lease was given back: the next run goes ahead at once and delivers the rest.
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.sink.envelopes().len(), 450);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 449)));
}

/// A PollApi that waits before answering, so two runs overlap.
struct SlowApi(Arc<ScriptedPollApi>);

#[async_trait]
impl PollApi for SlowApi {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.fetch_page(request).await
    }
}

#[tokio::test]
async fn two_runs_started_together_one_backs_off() {
    let mut h = harness();
    h.ports.api = Arc::new(SlowApi(h.api.clone()));
    h.api.with_world(|w| {
        for i in 0..350 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let c = config();
    let (a, b) = tokio::join!(poll(&h, &c, "run-a"), poll(&h, &c, "run-b"));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (winner, loser) = if a.stop == Some(StopReason::LeaseHeld) {
        (b, a)
    } else {
        (a, b)
    };
    assert_eq!(winner.stop, Some(StopReason::CaughtUp));
    assert_eq!(loser.stop, Some(StopReason::LeaseHeld));
    assert_eq!((loser.pages, loser.enqueued), (0, 0));
    assert_exactly_once(&h, ORDERS);
    // Every checkpoint by one owner, and the versions never raced.
    let owners: HashSet<String> = h.cursors.checkpoints().into_iter().map(|c| c.1).collect();
    assert_eq!(owners.len(), 1);
}

#[tokio::test]
async fn unreachable_tradecloud_fails_the_run_with_the_cursor_unchanged() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "a", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    let before = h.cursors.value("orders");
    h.api.with_world(|w| put_order(w, "b", T0 + 10));
    h.api.set_unreachable(true);
    let failure = poll(&h, &config(), "run-2").await.unwrap_err();
    assert!(
        matches!(failure.error, PollError::Api(ApiError::Unavailable(_))),
        "{failure}"
    );
    assert!(failure.to_string().contains("Tradecloud"), "{failure}");
    assert_eq!(h.cursors.value("orders"), before);
    assert_eq!(failure.summary.cursor_after, before);
    // Other classified failures fail the same way.
    h.api.set_unreachable(false);
    h.api.fail_next([ApiError::Upstream { status: 503 }]);
    let failure = poll(&h, &config(), "run-3").await.unwrap_err();
    assert!(matches!(
        failure.error,
        PollError::Api(ApiError::Upstream { status: 503 })
    ));
    assert_eq!(h.cursors.value("orders"), before);
    // Back up: the next run continues.
    poll(&h, &config(), "run-4").await.unwrap();
    assert_exactly_once(&h, ORDERS);
}

/// A run whose deadline comes after `pages` pages.
async fn poll_for_pages(
    h: &Harness,
    config: &PollConfig,
    owner: &str,
    pages: usize,
) -> StreamSummary {
    let deadline = PagesOfTime(AtomicUsize::new(pages));
    run_stream(
        &h.ports,
        config,
        ORDERS,
        &RunRequest::scheduled(owner),
        &deadline,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_deadline_stops_early_with_the_cursor_saved_and_the_next_run_continues() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..500 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let s = poll_for_pages(&h, &config(), "run-1", 2).await;
    assert_eq!(s.stop, Some(StopReason::Deadline));
    assert_eq!(s.pages, 2);
    // Page 1's move was stored once page 2's `total` allowed it; page 2's waits for page 3's,
    // which the deadline left unasked.
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 98)));
    assert_eq!(s.cursor_after, h.cursors.value("orders"));
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(s.cursor_before, Some(ms_to_timestamp(T0 + 98)));
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.sink.envelopes().len(), 500);
}

#[tokio::test]
async fn a_dry_run_claims_sends_and_moves_nothing() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..150 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let request = RunRequest {
        dry_run: true,
        ..RunRequest::scheduled("dry-1")
    };
    let s = run_stream(&h.ports, &config(), ORDERS, &request, &NoDeadline)
        .await
        .unwrap();
    assert!(s.dry_run);
    assert_eq!((s.enqueued, s.duplicates), (150, 0));
    assert_eq!(s.planned.len(), 150);
    assert_eq!(s.planned[0].id, "o000");
    assert_eq!(s.cursor_after, Some(ms_to_timestamp(T0 + 149)));
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
    assert!(h.cursors.checkpoints().is_empty());
    assert_eq!(h.cursors.read("orders").await.unwrap(), None);
    // After a real run, a dry run sees duplicates.
    poll(&h, &config(), "run-1").await.unwrap();
    let s = run_stream(&h.ports, &config(), ORDERS, &request, &NoDeadline)
        .await
        .unwrap();
    assert_eq!((s.enqueued, s.duplicates), (0, 1));
}

#[tokio::test]
async fn the_echo_filter_skips_own_side_requests_and_passes_the_rest() {
    let h = harness();
    let buyer_reopen = Some("OpenBuyerReopenRequest");
    let supplier_proposal = Some("OpenSupplierProposal");
    h.api.with_world(|w| {
        // Only our own (buyer) request changed: an echo.
        w.put(
            ORDERS,
            "echo",
            T0,
            order_json(
                "echo",
                2,
                T0,
                &[
                    ("e1", T0, "InProgress", buyer_reopen),
                    ("e2", T0 - 86_400_000, "Confirmed", None),
                ],
            ),
        );
        // The supplier's proposal: news for the buyer.
        w.put(
            ORDERS,
            "news",
            T0 + 1,
            order_json(
                "news",
                2,
                T0 + 1,
                &[("n1", T0 + 1, "InProgress", supplier_proposal)],
            ),
        );
        // Both: relayed without the echo line.
        w.put(
            ORDERS,
            "mixed",
            T0 + 2,
            order_json(
                "mixed",
                2,
                T0 + 2,
                &[
                    ("m1", T0 + 2, "InProgress", buyer_reopen),
                    ("m2", T0 + 2, "Confirmed", None),
                ],
            ),
        );
    });
    let mut c = config();
    c.echo_filter = Some(EchoFilter::OwnRequests(EchoSide::Buyer));
    let s = poll(&h, &c, "run-1").await.unwrap();
    assert_eq!((s.enqueued, s.filtered), (2, 1));
    let envelopes = h.sink.envelopes();
    let ids: Vec<&str> = envelopes.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["news", "mixed"]);
    let mixed = &envelopes[1];
    assert_eq!(mixed.changed_lines, Some(vec!["m2".to_owned()]));
    let payload = mixed.payload.to_value().unwrap();
    let lines: Vec<&str> = payload["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(lines, ["m2"]);
    // The cursor still moves past the filtered echo.
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 2)));
}

/// Between two runs our ERP's reopen request made line e1 an echo, and then the supplier
/// attached a document (the order's time moves, no line's does): the state is news and goes
/// out, once, without the echo line. Filtered, it reached no channel, and the cursor passed it.
#[tokio::test]
async fn an_order_changed_after_its_echo_lines_is_relayed_once() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    let mut c = config();
    c.echo_filter = Some(EchoFilter::OwnRequests(EchoSide::Buyer));
    poll(&h, &c, "run-1").await.unwrap();
    let lines = [
        ("e1", T0 + 10, "InProgress", Some("OpenBuyerReopenRequest")),
        ("e2", T0 - 86_400_000, "Confirmed", None),
    ];
    let mut order = order_json("o", 3, T0 + 20, &lines);
    order["documents"] = json!([{"code": "spec", "objectId": "x"}]);
    h.api.with_world(|w| w.put(ORDERS, "o", T0 + 20, order));
    let s = poll(&h, &c, "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.filtered), (1, 0), "{s:#?}");
    let sent = h.sink.envelopes();
    let o = sent.last().unwrap();
    assert_eq!(o.id, "o");
    assert_eq!(o.changed_lines, Some(vec![]));
    let payload = o.payload.to_value().unwrap();
    assert_eq!(payload["lines"].as_array().unwrap().len(), 1, "e2 only");
    assert_eq!(payload["documents"][0]["code"], "spec");
    // Read again (the cursor's millisecond): a duplicate.
    let s = poll(&h, &c, "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.duplicates), (0, 1), "{s:#?}");
}

#[tokio::test]
async fn changed_lines_are_those_after_the_previous_cursor() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    h.api.with_world(|w| {
        w.put(
            ORDERS,
            "o",
            T0 + 100,
            order_json(
                "o",
                3,
                T0 + 100,
                &[
                    ("old", T0 - 5, "Confirmed", None),
                    ("new", T0 + 100, "Confirmed", None),
                ],
            ),
        );
    });
    let mut c = config();
    c.changed_lines_only = true;
    poll(&h, &c, "run-2").await.unwrap();
    let e = first_envelope_of(&h.sink, "o");
    assert_eq!(e.changed_lines, Some(vec!["new".to_owned()]));
    let payload = e.payload.to_value().unwrap();
    assert_eq!(payload["lines"].as_array().unwrap().len(), 1);
    assert_eq!(payload["lines"][0]["id"], "new");
}

#[tokio::test]
async fn an_order_polled_with_an_order_id_in_place_of_its_id_is_relayed_under_it() {
    // Tradecloud's webhook events name an order by `orderId`, its API by `id`: an order polled
    // the other way must not stop the stream (every run failed at it, the cursor held).
    let h = harness();
    h.api.with_world(|w| {
        put_order(w, "o1", T0);
        let mut named = order("o2", T0 + 1);
        let id = named.as_object_mut().unwrap().remove("id").unwrap();
        named["orderId"] = id;
        w.put(ORDERS, "o2", T0 + 1, named);
        put_order(w, "o3", T0 + 2);
    });
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_exactly_once(&h, ORDERS);
    let o2 = first_envelope_of(&h.sink, "o2");
    assert_eq!(
        o2.dedupe_key,
        state_key(ObjectClass::Order, "o2", &ms_to_timestamp(T0 + 1))
    );
    // Forwarded as Tradecloud sent it.
    assert_eq!(o2.payload.to_value().unwrap()["orderId"], "o2");
}

#[tokio::test]
async fn a_state_claimed_elsewhere_stops_the_run_after_sending_the_rest_of_its_page() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    let key_of = |id: &str, at: i64| state_key(ObjectClass::Order, id, &ms_to_timestamp(at));
    let key = key_of("o2", T0 + 2);
    h.dedupe.insert(&key, RecordState::InProgress, false);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(
        s.stop,
        Some(StopReason::InProgressElsewhere {
            key: key.clone(),
            last_updated_at: ms_to_timestamp(T0 + 2),
        })
    );
    // Every other state of the page is sent and its claim completed, those after o2 too: one
    // of them that changes before the next run has had its served state relayed all the same.
    let others = [("o0", T0), ("o1", T0 + 1), ("o3", T0 + 3), ("o4", T0 + 4)];
    let expected: Vec<(String, String)> = others
        .iter()
        .map(|(id, at)| ((*id).to_owned(), ms_to_timestamp(*at)))
        .collect();
    assert_eq!(sent(&h.sink), expected);
    for (id, at) in others {
        let record = h.dedupe.lookup(&key_of(id, at)).await.unwrap().unwrap();
        assert_eq!(record.state, RecordState::Completed, "{id}");
    }
    // o2's own key is left to the channel relaying it.
    assert_eq!(
        h.dedupe.lookup(&key).await.unwrap().map(|r| r.state),
        Some(RecordState::InProgress)
    );
    // Every state of the page looked at, all but o2 sent.
    assert_eq!((s.objects, s.duplicates, s.enqueued), (5, 0, 4));
    // The cursor is not past the page: the next run asks for it again.
    assert_eq!(h.cursors.value("orders"), None);
    // The webhook finishes: the state is a duplicate now, and so is every state sent already.
    h.dedupe.insert(&key, RecordState::Completed, false);
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!((s.enqueued, s.duplicates), (0, 5));
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 4)));
    assert_eq!(
        sent(&h.sink).len(),
        4,
        "o0, o1, o3, o4: o2 went by the webhook"
    );
    assert_exactly_once_but(&h, ORDERS, &[("o2", T0 + 2)]);
}

#[tokio::test]
async fn a_state_served_after_one_claimed_elsewhere_reaches_the_queue_though_it_changes() {
    // One page: o1 is being relayed by another channel (a webhook GET); o3, served after it,
    // changes before the next run.
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + 1 + i);
        }
    });
    let busy = state_key(ObjectClass::Order, "o1", &ms_to_timestamp(T0 + 2));
    h.dedupe.insert(&busy, RecordState::InProgress, true);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(
        s.stop.as_ref().map(StopReason::as_str),
        Some("in-progress-elsewhere"),
        "{s:#?}"
    );
    h.api.with_world(|w| put_order(w, "o3", T0 + 100));
    h.dedupe.insert(&busy, RecordState::Completed, true);
    poll_until_caught_up(&h, &config()).await;
    let served = ("o3".to_owned(), ms_to_timestamp(T0 + 4));
    assert!(sent(&h.sink).contains(&served), "{:?}", sent(&h.sink));
    assert_exactly_once_but(&h, ORDERS, &[("o1", T0 + 2)]);
}

#[tokio::test]
async fn a_queue_failure_sending_the_rest_of_a_page_with_a_state_claimed_elsewhere_fails_the_run() {
    // The queue refuses o3, which comes after the state in progress elsewhere.
    let memory = Arc::new(MemorySink::new());
    let sink = Arc::new(RefusesOne {
        id: "o3",
        refusing: true.into(),
        inner: memory.clone(),
    });
    let h = harness_with_sink(sink.clone(), memory);
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    let key_of = |id: &str, at: i64| state_key(ObjectClass::Order, id, &ms_to_timestamp(at));
    let busy = key_of("o2", T0 + 2);
    h.dedupe.insert(&busy, RecordState::InProgress, false);
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(matches!(failure.error, PollError::Sink(_)), "{failure:?}");
    // What the queue took is counted and completed; o3's claim is released.
    assert_eq!(failure.summary.enqueued, 3, "{failure:?}");
    for (id, at) in [("o0", T0), ("o1", T0 + 1), ("o4", T0 + 4)] {
        let record = h.dedupe.lookup(&key_of(id, at)).await.unwrap().unwrap();
        assert_eq!(record.state, RecordState::Completed, "{id}");
    }
    assert_eq!(h.dedupe.lookup(&key_of("o3", T0 + 3)).await.unwrap(), None);
    assert_eq!(
        h.dedupe.lookup(&busy).await.unwrap().map(|r| r.state),
        Some(RecordState::InProgress)
    );
    assert_eq!(h.cursors.value("orders"), None);
    // The queue takes o3 again and the webhook finishes: the next run sends o3 alone.
    sink.refusing.store(false, Ordering::SeqCst);
    h.dedupe.insert(&busy, RecordState::Completed, false);
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!((s.enqueued, s.duplicates), (1, 4));
    assert_exactly_once_but(&h, ORDERS, &[("o2", T0 + 2)]);
}

#[tokio::test]
async fn states_served_around_one_claimed_elsewhere_reach_the_queue_though_they_change() {
    // Walked by offset, four a page (the pages overlapping by one), newest first: the second
    // page serves `d` again, then `e` at T0 + 5, then `f`, whose state a webhook is relaying
    // right now, then `g` at T0 + 3; `e` and `g` change before the next run.
    let h = harness();
    h.api.with_world(|w| {
        w.unsorted = true;
        for (i, id) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .into_iter()
            .enumerate()
        {
            put_order(w, id, T0 + 9 - i as i64);
        }
    });
    let config = PollConfig {
        page_limit: 4,
        ..config()
    };
    let busy = state_key(ObjectClass::Order, "f", &ms_to_timestamp(T0 + 4));
    h.dedupe.insert(&busy, RecordState::InProgress, false);
    let s = poll(&h, &config, "run-1").await.unwrap();
    assert_eq!(
        s.stop.as_ref().map(StopReason::as_str),
        Some("in-progress-elsewhere"),
        "{s:#?}"
    );
    let before = ("e".to_owned(), ms_to_timestamp(T0 + 5));
    let after = ("g".to_owned(), ms_to_timestamp(T0 + 3));
    assert_eq!(
        sent(&h.sink)[sent(&h.sink).len() - 2..],
        [before.clone(), after.clone()],
        "the page's states but `f`, and nothing of a later page"
    );
    h.api.with_world(|w| {
        put_order(w, "e", T0 + 100);
        put_order(w, "g", T0 + 101);
    });
    h.dedupe.insert(&busy, RecordState::Completed, true);
    poll_until_caught_up(&h, &config).await;
    for served in [&before, &after] {
        assert!(sent(&h.sink).contains(served), "{:?}", sent(&h.sink));
    }
    assert_exactly_once_but(&h, ORDERS, &[("f", T0 + 4)]);
}

#[tokio::test]
async fn search_endpoints_include_the_cursor_and_still_page_past_big_ties() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..120 {
            put_order(w, &format!("a{i:03}"), T0);
        }
        for i in 0..150 {
            put_order(w, &format!("b{i:03}"), T0 + 1 + i / 30);
        }
        for i in 0..230 {
            put_order(w, &format!("c{i:03}"), T0 + 100);
        }
    });
    let mut c = config();
    c.mode = EndpointMode::Search;
    poll_until_caught_up(&h, &c).await;
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.sink.envelopes().len(), 500);
    assert!(
        h.api
            .requests()
            .iter()
            .all(|r| r.mode == EndpointMode::Search)
    );
    // A later run with nothing new sends nothing.
    let s = poll(&h, &c, "again").await.unwrap();
    assert_eq!(s.enqueued, 0);
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
}

#[tokio::test]
async fn an_order_that_reads_as_sent_reaches_the_queue_as_the_bytes_polled() {
    // Keys in Tradecloud's order, escapes, a decimal's digits: what a re-serialisation would
    // change. The second order has a quoted number, so it is typed and written anew.
    const AS_SENT: &str = r#"{"supplierAccountNumber":"S1","id":"o-\u0031","version":2,"lastUpdatedAt":"2025-01-01T00:00:00.005Z","lines":[{"id":"l\/1","lastUpdatedAt":"2025-01-01T00:00:00.005Z","status":{"processStatus":"Issued"},"quantity":12.50}]}"#;
    const QUOTED: &str =
        r#"{"id":"o-2","version":"3","lastUpdatedAt":"2025-01-01T00:00:00.006Z","lines":[]}"#;
    struct AsSent;
    #[async_trait]
    impl PollApi for AsSent {
        async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
            let items = if r.last_updated == START {
                vec![
                    serde_json::value::RawValue::from_string(AS_SENT.to_owned()).unwrap(),
                    serde_json::value::RawValue::from_string(QUOTED.to_owned()).unwrap(),
                ]
            } else {
                Vec::new()
            };
            Ok(PolledPage {
                items,
                total: None,
                last_updated_at: None,
            })
        }
    }
    let mut h = harness();
    h.ports.api = Arc::new(AsSent);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.enqueued, 2);
    let envelopes = h.sink.envelopes();
    let written = envelopes[0].to_json().unwrap();
    assert!(
        written.ends_with(&format!(r#","payload":{AS_SENT}}}"#)),
        "{written}"
    );
    assert_eq!(envelopes[0].id, "o-1");
    assert_eq!(envelopes[0].changed_lines, Some(vec!["l/1".to_owned()]));
    // Typed: the version a number, the document written anew.
    let written = envelopes[1].to_json().unwrap();
    assert!(
        written.ends_with(r#","payload":{"id":"o-2","lastUpdatedAt":"2025-01-01T00:00:00.006Z","lines":[],"version":3}}"#),
        "{written}"
    );
}

#[tokio::test]
async fn an_unsorted_short_page_is_relayed_whole_and_the_cursor_moves_to_its_newest() {
    struct Unsorted;
    #[async_trait]
    impl PollApi for Unsorted {
        async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
            let after = tradecloud_model::timestamp::parse(&r.last_updated).unwrap();
            let items: Vec<Value> = [order("b", T0 + 5), order("a", T0)]
                .into_iter()
                .filter(|o| {
                    tradecloud_model::timestamp::parse(o["lastUpdatedAt"].as_str().unwrap())
                        .unwrap()
                        > after
                })
                .collect();
            Ok(PolledPage::of_values(&items, None, None))
        }
    }
    let mut h = harness();
    h.ports.api = Arc::new(Unsorted);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(s.deviations.unsorted_pages, 1);
    let mut ids: Vec<String> = h.sink.envelopes().into_iter().map(|e| e.id).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 5)));
    // The next run asks after it and finds nothing new: no page repeated forever.
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 0));
}

#[tokio::test]
async fn unsorted_pages_are_walked_to_the_end_and_changes_while_walking_lose_nothing() {
    let h = harness();
    h.api.with_world(|w| {
        w.unsorted = true;
        for i in 0..1000i64 {
            put_order(w, &format!("o{i:04}"), T0 + (i / 7) * 3);
        }
    });
    // After every page, 5 objects change; some share the newest millisecond.
    let mut clock = T0 + 1_000_000;
    let mut next = 0usize;
    h.api.set_between_pages(Some(Box::new(
        move |w: &mut ScriptedWorld, served: usize| {
            if served > 60 {
                return;
            }
            for k in 0..5 {
                let id = format!("o{:04}", (next * 137) % 1000);
                next += 1;
                if k % 3 != 0 {
                    clock += 1;
                }
                put_order(w, &id, clock);
            }
        },
    )));
    let runs = poll_until_caught_up(&h, &config()).await;
    h.api.set_between_pages(None);
    let last = poll_until_caught_up(&h, &config()).await;
    assert_exactly_once(&h, ORDERS);
    let newest = h.api.with_world(|w| w.newest(ORDERS));
    assert_eq!(h.cursors.value("orders"), newest);
    assert!(runs[0].deviations.unsorted_pages > 0, "{:?}", runs[0]);
    // Caught up means caught up: the last run reads a page or two, not the whole set again.
    assert!(last.last().unwrap().pages <= 2, "{last:?}");
}

#[tokio::test]
async fn pages_sorted_by_chance_in_an_unsorted_set_skip_nothing() {
    // Index order is by id: two interleaved series in time, one after the other by id. Each
    // page inside one series looks sorted, so the run pages by time through the first series,
    // past the times of the second; the first page that shows the second series is unsorted.
    let h = harness();
    h.api.with_world(|w| {
        w.unsorted = true;
        for i in 0..60i64 {
            put_order(w, &format!("a{i:03}"), T0 + 2 * i);
            put_order(w, &format!("b{i:03}"), T0 + 2 * i + 1);
        }
    });
    let config = PollConfig {
        page_limit: 20,
        ..config()
    };
    let runs = poll_until_caught_up(&h, &config).await;
    assert_exactly_once(&h, ORDERS);
    assert!(runs[0].deviations.unsorted_pages > 0, "{:?}", runs[0]);
    let newest = h.api.with_world(|w| w.newest(ORDERS));
    assert_eq!(h.cursors.value("orders"), newest);
}

/// A PollApi whose `nth` call (1-based) fails with `error`; every other call is served.
struct FailsCall {
    inner: Arc<ScriptedPollApi>,
    nth: usize,
    error: fn() -> ApiError,
    calls: AtomicUsize,
}

impl FailsCall {
    fn new(inner: Arc<ScriptedPollApi>, nth: usize, error: fn() -> ApiError) -> Self {
        Self {
            inner,
            nth,
            error,
            calls: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl PollApi for FailsCall {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            return Err((self.error)());
        }
        self.inner.fetch_page(r).await
    }
}

/// In id order, after the cursor at T0: `b1`..`b5` (T0+10..T0+50) page by time as if sorted,
/// past `c1` (T0+5, later in id order), until `c2`, `c3` (T0+60, T0+55) show the set unsorted.
fn sorted_by_chance_then_not(w: &mut ScriptedWorld) {
    w.unsorted = true;
    for i in 1..=5 {
        put_order(w, &format!("b{i}"), T0 + 10 * i);
    }
    put_order(w, "c1", T0 + 5);
    put_order(w, "c2", T0 + 60);
    put_order(w, "c3", T0 + 55);
}

/// In id order `b1`..`b5` (T0+10..T0+50), then `c1` (T0+5): every page looks sorted, and paging
/// by time passes `c1` without a page ever showing it. The `total` of the page after the first
/// move is smaller than the first page's less what the move left out: the run walks the set
/// from where it started and relays `c1`.
#[tokio::test]
async fn pages_sorted_by_chance_are_caught_by_their_total() {
    let h = harness();
    let config = PollConfig {
        page_limit: 3,
        ..config()
    };
    h.api.with_world(|w| put_order(w, "a0", T0));
    poll(&h, &config, "run-0").await.unwrap();
    h.api.with_world(|w| {
        w.unsorted = true;
        for i in 1..=5 {
            put_order(w, &format!("b{i}"), T0 + 10 * i);
        }
        put_order(w, "c1", T0 + 5);
    });
    let summaries = poll_until_caught_up(&h, &config).await;
    assert!(
        summaries.iter().any(|s| s.deviations.unsorted_pages > 0),
        "{summaries:#?}"
    );
    assert!(sent(&h.sink).contains(&("c1".into(), ms_to_timestamp(T0 + 5))));
    assert_exact_once_and_newest(&h);
}

/// A run pages by time through pages that look sorted, past `c1`, then meets an unsorted page
/// (or a `total` showing the skip) and goes back to its start to walk the set. The cursor goes
/// back with it (or never moved): a run that stops before that walk ends (a deadline, Tradecloud
/// unreachable) once left the cursor after `c1`, and no later run asked for it.
#[tokio::test]
async fn a_run_stopped_after_finding_pages_unsorted_leaves_the_cursor_where_it_started() {
    // Three pages by time, the unsorted fourth, then the walk's first page: stopped there by a
    // deadline, or failed by an unreachable Tradecloud.
    for fail in [false, true] {
        let mut h = harness();
        let config = PollConfig {
            page_limit: 3,
            ..config()
        };
        h.api.with_world(|w| put_order(w, "a0", T0));
        poll(&h, &config, "run-0").await.unwrap();
        let cursor = Some(ms_to_timestamp(T0));
        assert_eq!(h.cursors.value("orders"), cursor);
        h.api.with_world(sorted_by_chance_then_not);
        let scripted = h.ports.clone();
        let stopped = if fail {
            h.ports.api = Arc::new(FailsCall::new(h.api.clone(), 5, || {
                ApiError::Unavailable("down".into())
            }));
            let failure = poll(&h, &config, "run-1").await.unwrap_err();
            assert!(matches!(failure.error, PollError::Api(_)), "{failure}");
            failure.summary
        } else {
            let deadline = PagesOfTime(AtomicUsize::new(4));
            let request = RunRequest::scheduled("run-1");
            let s = run_stream(&h.ports, &config, ORDERS, &request, &deadline)
                .await
                .unwrap();
            assert_eq!(s.stop, Some(StopReason::Deadline));
            s
        };
        assert!(stopped.deviations.unsorted_pages >= 1, "{stopped:?}");
        // Whatever it checkpointed by time, the cursor it started with is the last written
        // (with the walk it stopped in).
        let written: Vec<String> = h.cursors.checkpoints().into_iter().map(|c| c.2).collect();
        assert_eq!(written.last(), cursor.as_ref(), "{written:?}");
        assert_eq!(h.cursors.value("orders"), cursor);
        assert_eq!(stopped.cursor_after, cursor);
        h.ports = scripted;
        poll_until_caught_up(&h, &config).await;
        assert!(sent(&h.sink).contains(&("c1".into(), ms_to_timestamp(T0 + 5))));
        assert_exact_once_and_newest(&h);
    }
}

/// A page too large to read after the run paged by time: the smaller pages still know where
/// the run started, so the unsorted page that follows sends the run back there, not to where
/// the pages were halved (which had passed `c1` already).
#[tokio::test]
async fn smaller_pages_after_one_too_large_still_walk_from_where_the_run_started() {
    let mut h = harness();
    h.api.with_world(|w| put_order(w, "a0", T0));
    let config = PollConfig {
        page_limit: 6,
        ..config()
    };
    poll(&h, &config, "run-0").await.unwrap();
    h.api.with_world(sorted_by_chance_then_not);
    // Pages of six: b1..b5 and c2 look sorted (c1 is not after b4); the second is too large.
    h.ports.api = Arc::new(FailsCall::new(h.api.clone(), 2, || {
        ApiError::TooLarge("the answer is over 64 MiB".into())
    }));
    let s = poll(&h, &config, "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert!(s.deviations.unsorted_pages > 0, "{s:?}");
    assert!(sent(&h.sink).contains(&("c1".into(), ms_to_timestamp(T0 + 5))));
    assert_exact_once_and_newest(&h);
}

/// A page too large to read while the run walks an unsorted set: the smaller pages walk on. Paging
/// by time again, they looked sorted (the pages that were not had been passed) and moved past
/// `e`, which no page had served yet.
#[tokio::test]
async fn smaller_pages_after_one_too_large_during_a_walk_still_walk() {
    let mut h = harness();
    h.api.with_world(|w| put_order(w, "a0", T0));
    let config = PollConfig {
        page_limit: 4,
        ..config()
    };
    poll(&h, &config, "run-0").await.unwrap();
    // In id order: a0, b, c, d (the first page, unsorted), e, f.
    h.api.with_world(|w| {
        w.unsorted = true;
        put_order(w, "b", T0 + 40);
        put_order(w, "c", T0 + 50);
        put_order(w, "d", T0 + 35);
        put_order(w, "e", T0 + 5);
        put_order(w, "f", T0 + 60);
    });
    h.ports.api = Arc::new(FailsCall::new(h.api.clone(), 2, || {
        ApiError::TooLarge("the answer is over 64 MiB".into())
    }));
    let s = poll(&h, &config, "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert!(sent(&h.sink).contains(&("e".into(), ms_to_timestamp(T0 + 5))));
    assert_exact_once_and_newest(&h);
}

#[tokio::test]
async fn an_inclusive_last_updated_after_is_absorbed_and_the_stream_moves() {
    let h = harness();
    h.api.with_world(|w| {
        w.inclusive_after = true;
        for i in 0..600i64 {
            put_order(w, &format!("o{i:04}"), T0 + (i / 5));
        }
    });
    let runs = poll_until_caught_up(&h, &config()).await;
    assert_eq!(runs.len(), 1, "one run pages through: {runs:?}");
    assert!(runs[0].deviations.inclusive_items > 0);
    assert_eq!(runs[0].deviations.unsorted_pages, 0);
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 119)));
    // About one request per page of new objects: the same page is not asked for forever.
    assert!(runs[0].pages <= 10, "{} pages", runs[0].pages);
    h.api.with_world(|w| put_order(w, "late", T0 + 500));
    let s = poll(&h, &config(), "again").await.unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 1));
    assert_exactly_once(&h, ORDERS);
}

#[tokio::test]
async fn a_full_page_of_inclusive_answers_at_the_position_is_walked_past() {
    let h = harness();
    h.api.with_world(|w| {
        w.inclusive_after = true;
        for i in 0..150i64 {
            put_order(w, &format!("t{i:03}"), T0);
        }
        for i in 0..50i64 {
            put_order(w, &format!("u{i:03}"), T0 + 1 + i);
        }
    });
    let runs = poll_until_caught_up(&h, &config()).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 50)));
    assert!(h.api.requests().iter().any(|r| r.offset > 0));
}

/// Inclusive answers in id order whose first page is all at the position: the walk can vouch
/// for no time after it. While it walks, `a2` (already passed) changes to X+10, then `z` (not
/// yet passed) to X+20; the walk sees only `z`. Moving to the oldest time after the position it
/// saw (X+20) skipped a2's change for good; the run walks again and then moves.
#[tokio::test]
async fn a_walk_of_answers_at_the_position_does_not_move_past_a_change_it_did_not_see() {
    let h = harness();
    let config = PollConfig {
        start: Some(ms_to_timestamp(T0)),
        page_limit: 4,
        ..config()
    };
    h.api.with_world(|w| {
        w.unsorted = true;
        w.inclusive_after = true;
        for i in 1..=5 {
            put_order(w, &format!("a{i}"), T0);
        }
    });
    h.api
        .set_between_pages(Some(Box::new(|w: &mut ScriptedWorld, served: usize| {
            // After the walk's first page (the run's first: it is walked from, not asked again).
            if served == 1 {
                put_order(w, "a2", T0 + 10);
                put_order(w, "z", T0 + 20);
            }
        })));
    let s = poll(&h, &config, "run-1").await.unwrap();
    h.api.set_between_pages(None);
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert!(
        sent(&h.sink).contains(&("a2".into(), ms_to_timestamp(T0 + 10))),
        "{:?}",
        sent(&h.sink)
    );
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 20)));
    // It keeps moving: the next run asks after z and relays nothing again.
    let s = poll(&h, &config, "run-2").await.unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 0));
    assert_exactly_once(&h, ORDERS);
}

#[tokio::test]
async fn zone_less_times_are_forwarded_as_sent_and_the_cursor_is_written_with_a_zone() {
    struct ZoneLess(Arc<ScriptedPollApi>);
    #[async_trait]
    impl PollApi for ZoneLess {
        async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
            let page = self.0.fetch_page(r).await?;
            let mut items = Vec::new();
            for item in &page.items {
                let mut item: Value = serde_json::from_str(item.get()).unwrap();
                let at = item["lastUpdatedAt"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches('Z')
                    .to_owned();
                item["lastUpdatedAt"] = json!(at);
                items.push(item);
            }
            Ok(PolledPage::of_values(
                &items,
                page.total,
                page.last_updated_at,
            ))
        }
    }
    let mut h = harness();
    h.ports.api = Arc::new(ZoneLess(h.api.clone()));
    h.api.with_world(|w| {
        for i in 0..250i64 {
            put_order(w, &format!("o{i:03}"), T0 + i / 2);
        }
    });
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert!(s.deviations.zoneless_timestamps >= 250);
    let envelopes = h.sink.envelopes();
    assert_eq!(envelopes.len(), 250);
    assert!(envelopes.iter().all(|e| {
        let at = e.last_updated_at.as_deref().unwrap();
        !at.ends_with('Z') && e.payload.to_value().unwrap()["lastUpdatedAt"] == at
    }));
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 124)));
    // A webhook of the same state with a zone is the same dedupe key.
    let zoned = state_key(ObjectClass::Order, "o000", &ms_to_timestamp(T0));
    assert_eq!(
        envelopes
            .iter()
            .find(|e| e.id == "o000")
            .unwrap()
            .dedupe_key,
        zoned
    );
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 0));
}

/// A Tradecloud writing zone-less times finer than a millisecond (`LocalDateTime.toString()`
/// keeps microseconds), sorted by time, strictly after `lastUpdatedAfter`.
struct FineZoneLess(Vec<(chrono::DateTime<chrono::Utc>, Value)>);

impl FineZoneLess {
    fn of(times: &[(&str, &str)]) -> Self {
        let mut items: Vec<_> = times
            .iter()
            .map(|(id, text)| {
                let order = json!({"id": id, "version": 1, "lastUpdatedAt": text,
                    "lines": [{"id": format!("{id}-l1"), "lastUpdatedAt": text,
                               "status": {"processStatus": "Issued"}}]});
                (tradecloud_model::timestamp::parse(text).unwrap(), order)
            })
            .collect();
        items.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1["id"].as_str().cmp(&b.1["id"].as_str()))
        });
        Self(items)
    }
}

#[async_trait]
impl PollApi for FineZoneLess {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        let after = tradecloud_model::timestamp::parse(&r.last_updated).unwrap();
        let page: Vec<Value> = (self.0.iter())
            .filter(|(at, _)| *at > after)
            .skip(r.offset as usize)
            .take(r.limit as usize)
            .map(|(_, v)| v.clone())
            .collect();
        Ok(PolledPage::of_values(&page, None, None))
    }
}

/// Zone-less times with digits below the millisecond move the cursor past them: written with
/// milliseconds (`…00.000300` as `…00.000Z`) the cursor stayed where it was, and every run
/// asked for the same page until its page bound, relaying nothing after it.
#[tokio::test]
async fn zone_less_times_finer_than_a_millisecond_move_the_cursor_past_them() {
    // A full page whose settled part ends below a millisecond; and a tie of such a time that
    // fills whole pages.
    let spread = [
        ("y", "2025-01-01T00:00:00.000300"),
        ("a", "2025-01-01T00:00:05.000100"),
        ("b", "2025-01-01T00:00:06.000100"),
    ];
    let tie: Vec<(String, &str)> = (0..6)
        .map(|i| (format!("t{i}"), "2025-01-01T00:00:00.000300"))
        .chain([("after".to_owned(), "2025-01-01T00:00:09.000000")])
        .collect();
    let tie: Vec<(&str, &str)> = tie.iter().map(|(id, t)| (id.as_str(), *t)).collect();
    for (times, page_limit, cursor) in [
        (&spread[..], 2, "2025-01-01T00:00:06.000100Z"),
        (&tie[..], 4, "2025-01-01T00:00:09.000Z"),
    ] {
        let mut h = harness();
        h.ports.api = Arc::new(FineZoneLess::of(times));
        let config = PollConfig {
            page_limit,
            max_pages: 50,
            ..config()
        };
        let s = poll(&h, &config, "run-1").await.unwrap();
        assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
        assert!(s.pages <= 4, "{s:?}");
        let mut ids: Vec<String> = h.sink.envelopes().into_iter().map(|e| e.id).collect();
        ids.sort();
        let mut all: Vec<&str> = times.iter().map(|(id, _)| *id).collect();
        all.sort_unstable();
        assert_eq!(ids, all);
        assert_eq!(h.cursors.value("orders").as_deref(), Some(cursor));
        let s = poll(&h, &config, "run-2").await.unwrap();
        assert_eq!(
            (s.stop.clone(), s.enqueued),
            (Some(StopReason::CaughtUp), 0),
            "{s:?}"
        );
        assert!(s.pages <= 2, "{s:?}");
    }
}

/// A PollApi that takes `delay` per page.
struct Sluggish(Arc<ScriptedPollApi>, Duration);

#[async_trait]
impl PollApi for Sluggish {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        tokio::time::sleep(self.1).await;
        self.0.fetch_page(request).await
    }
}

fn sluggish_harness(pages: i64, delay: Duration) -> Harness {
    let mut h = harness();
    h.ports.api = Arc::new(Sluggish(h.api.clone(), delay));
    h.api.with_world(|w| {
        for i in 0..pages * 99 {
            put_order(w, &format!("o{i:05}"), T0 + i);
        }
    });
    h
}

#[tokio::test]
async fn a_heartbeat_keeps_the_lease_of_a_run_longer_than_the_lease() {
    // 2 s lease, a run of about 3 s: only the heartbeat keeps others out.
    let h = sluggish_harness(35, Duration::from_millis(100));
    let c = PollConfig {
        lease: Duration::from_secs(2),
        time_margin: Duration::ZERO,
        ..config()
    };
    let cursors = h.cursors.clone();
    let contender = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let got = cursors
                .acquire("orders", "contender", Duration::from_secs(2))
                .await
                .unwrap();
            if got.is_some() {
                return std::time::Instant::now();
            }
        }
    });
    let started = std::time::Instant::now();
    let s = poll(&h, &c, "long-run").await.unwrap();
    let ended = std::time::Instant::now();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert!(
        ended - started > Duration::from_secs(3),
        "the run must outlive its lease: {:?}",
        ended - started
    );
    // The contender got the stream only once the run had released it, and then at once.
    let got = contender.await.unwrap();
    assert!(
        got + Duration::from_millis(50) >= ended,
        "the contender took the lease while the run was working"
    );
    assert!(got - ended < Duration::from_millis(500));
    assert_exactly_once(&h, ORDERS);
}

#[tokio::test]
async fn a_run_whose_lease_is_taken_over_stops_and_moves_nothing_more() {
    let h = sluggish_harness(40, Duration::from_millis(50));
    let c = PollConfig {
        lease: Duration::from_millis(600),
        time_margin: Duration::ZERO,
        ..config()
    };
    let cursors = h.cursors.clone();
    let intruder = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        // An operator (or a bug) frees the lease and another run takes it.
        cursors.release("orders", "victim").await.unwrap();
        cursors
            .acquire("orders", "intruder", Duration::from_secs(60))
            .await
            .unwrap()
            .expect("the freed lease")
    });
    let failure = poll(&h, &c, "victim").await.unwrap_err();
    assert!(
        matches!(failure.error, PollError::LostLease(_)),
        "{failure}"
    );
    intruder.await.unwrap();
    // The intruder still holds it: the victim's release at its end was a no-op.
    assert_eq!(
        h.cursors
            .acquire("orders", "third", Duration::from_secs(1))
            .await
            .unwrap(),
        None
    );
    let after: HashSet<String> = h
        .cursors
        .checkpoints()
        .into_iter()
        .map(|(_, owner, _)| owner)
        .collect();
    assert_eq!(after, HashSet::from(["victim".to_owned()]));
}

/// A Tradecloud whose first answer comes only after another run took the stream's lease (freed
/// by an operator, or run out while the fetch hung) and the fetching run's heartbeat found out;
/// or, `unreachable`, after the cursor store went down long enough for the lease to run short
/// (it stays down: a renewal must not land before the run looks at its lease).
struct LeaseTakenDuringFetch {
    inner: Arc<ScriptedPollApi>,
    cursors: Arc<MemoryCursorStore>,
    taken: std::sync::atomic::AtomicBool,
    unreachable: bool,
}

#[async_trait]
impl PollApi for LeaseTakenDuringFetch {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        let page = self.inner.fetch_page(request).await;
        if self.unreachable && !self.taken.swap(true, Ordering::SeqCst) {
            // Renewals fail for more than two of the 300 ms lease's 100 ms beats.
            self.cursors.set_down(true);
            tokio::time::sleep(Duration::from_millis(260)).await;
        } else if !self.taken.swap(true, Ordering::SeqCst) {
            self.cursors.release("orders", "victim").await.unwrap();
            let intruder = self
                .cursors
                .acquire("orders", "intruder", Duration::from_secs(60))
                .await
                .unwrap();
            assert!(intruder.is_some(), "the freed lease");
            // A few heartbeats (every 100 ms of the 300 ms lease).
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        page
    }
}

/// Five orders on one page, a 300 ms lease, and the first fetch answered only after the
/// lease was taken by another run or, `unreachable`, its store went down
/// ([`LeaseTakenDuringFetch`]).
fn five_orders_with_a_lease_fault_during_the_first_fetch(
    unreachable: bool,
) -> (Harness, PollConfig) {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    h.ports.api = Arc::new(LeaseTakenDuringFetch {
        inner: h.api.clone(),
        cursors: h.cursors.clone(),
        taken: false.into(),
        unreachable,
    });
    let c = PollConfig {
        lease: Duration::from_millis(300),
        ..config()
    };
    (h, c)
}

#[tokio::test]
async fn a_run_that_lost_its_lease_during_a_fetch_sends_nothing_of_that_page() {
    // The lease is checked again before a page's claims, not only before its fetch: the run
    // that holds the lease now relays the page, and two runs sending one page at once could
    // put an object's states out of order.
    let (h, c) = five_orders_with_a_lease_fault_during_the_first_fetch(false);
    let failure = poll(&h, &c, "victim").await.unwrap_err();
    assert!(
        matches!(failure.error, PollError::LostLease(_)),
        "{failure}"
    );
    assert_eq!(sent(&h.sink), Vec::new());
    assert!(h.dedupe.records().is_empty(), "{:?}", h.dedupe.records());
    assert!(h.cursors.checkpoints().is_empty());
}

#[tokio::test]
async fn a_run_unsure_of_its_lease_after_a_fetch_stops_lease_unsure_and_sends_nothing_of_that_page()
{
    // The cursor store was unreachable while the fetch hung: the lease may run out before a
    // renewal lands, and another run may take it. The run stops before the page's claims and
    // says why (`lease-unsure`, not `deadline`: there is none), so `tcrelay serve` tries again
    // soon and an operator sees the store, not the time, stopped it.
    let (h, c) = five_orders_with_a_lease_fault_during_the_first_fetch(true);
    let s = poll(&h, &c, "victim").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::LeaseUnsure), "{s:?}");
    assert_eq!(StopReason::LeaseUnsure.as_str(), "lease-unsure");
    assert_eq!(sent(&h.sink), Vec::new());
    assert!(h.dedupe.records().is_empty(), "{:?}", h.dedupe.records());
    // The store is back; the victim's lease, unreleased, runs out; the next run relays the page.
    h.cursors.set_down(false);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let s = poll(&h, &c, "next").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert_eq!(sent(&h.sink).len(), 5);
}

#[tokio::test]
async fn a_page_a_killed_run_claimed_and_never_completed_is_relayed_by_the_next_run_at_once() {
    // The in-progress expiry is 120 s: the next run must not wait for it.
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    // The run claims the page, then hangs in the send until it is killed.
    h.sink.set_mode(tcrelay_core::testing::Mode::Hang);
    let doomed = spawn_poll(&h, config(), "doomed");
    let claimed =
        |records: &std::collections::HashMap<String, tcrelay_core::ports::DedupeRecord>| {
            records
                .values()
                .filter(|r| r.state == RecordState::InProgress)
                .count()
        };
    for _ in 0..200 {
        if claimed(&h.dedupe.records()) == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(claimed(&h.dedupe.records()), 5, "the page is claimed");
    doomed.abort();
    assert!(doomed.await.unwrap_err().is_cancelled());
    h.sink.set_mode(tcrelay_core::testing::Mode::Up);
    // The killed run's lease is gone (released as its future was dropped, or run out); the
    // next run takes its claims over and relays the page.
    let mut next = None;
    for i in 0..50 {
        let s = poll(&h, &config(), &format!("next-{i}")).await.unwrap();
        if s.stop != Some(StopReason::LeaseHeld) {
            next = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = next.expect("the killed run's lease is free");
    assert_eq!(next.stop, Some(StopReason::CaughtUp), "{next:?}");
    assert_exactly_once(&h, ORDERS);
    assert!(
        h.dedupe
            .records()
            .values()
            .all(|r| r.state == RecordState::Completed)
    );
}

/// A memory dedupe store whose claims first go through `before`, which may fail them (`Err`)
/// or hold them (a slow claim call); everything else is memory's.
struct BeforeClaims<F> {
    inner: Arc<MemoryDedupe>,
    before: F,
}

#[async_trait]
impl<F, Fut> DedupeStore for BeforeClaims<F>
where
    F: Fn(String, Option<tcrelay_core::ports::Claimant>) -> Fut + Send + Sync,
    Fut: std::future::Future<Output = Result<(), tcrelay_core::ports::StoreError>> + Send,
{
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&tcrelay_core::ports::Claimant>,
    ) -> Result<tcrelay_core::ports::ClaimOutcome, tcrelay_core::ports::StoreError> {
        (self.before)(key.to_owned(), by.cloned()).await?;
        self.inner.claim_as(key, full_state, by).await
    }

    async fn complete(
        &self,
        key: &str,
        token: &tcrelay_core::ports::ClaimToken,
    ) -> Result<tcrelay_core::ports::Completion, tcrelay_core::ports::StoreError> {
        self.inner.complete(key, token).await
    }

    async fn release(
        &self,
        key: &str,
        token: &tcrelay_core::ports::ClaimToken,
    ) -> Result<(), tcrelay_core::ports::StoreError> {
        self.inner.release(key, token).await
    }

    async fn lookup(
        &self,
        key: &str,
    ) -> Result<Option<tcrelay_core::ports::DedupeRecord>, tcrelay_core::ports::StoreError> {
        self.inner.lookup(key).await
    }
}

/// Holds the claims of one run until the test lets them through: a run's claim call that is
/// slow (a DynamoDB attempt timing out and retried).
struct ClaimGate {
    arrived: tokio::sync::Notify,
    open: tokio::sync::Semaphore,
}

#[tokio::test]
async fn a_run_whose_lease_ran_out_during_its_claims_does_not_send_the_next_runs_claims() {
    // The victim names itself in its page's claims (its lease is sure when the page begins),
    // but the claim call is slow; meanwhile its renewals fail, the lease runs out and the
    // intruder takes it and claims the same state (its send in flight). When the victim's
    // claim lands, it must not take the intruder's claim over and send the state a second
    // time: it no longer holds the lease.
    let mut h = harness();
    h.api.with_world(|w| put_order(w, "o", T0));
    let key = state_key(ObjectClass::Order, "o", &ms_to_timestamp(T0));
    let gate = Arc::new(ClaimGate {
        arrived: tokio::sync::Notify::new(),
        open: tokio::sync::Semaphore::new(0),
    });
    let held = gate.clone();
    h.ports.dedupe = Arc::new(BeforeClaims {
        inner: h.dedupe.clone(),
        before: move |_key, by: Option<tcrelay_core::ports::Claimant>| {
            let gate = held.clone();
            async move {
                if by.is_some_and(|by| by.own_prefix().contains("victim")) {
                    gate.arrived.notify_one();
                    let _pass = gate.open.acquire().await.unwrap();
                }
                Ok(())
            }
        },
    });
    let c = PollConfig {
        lease: Duration::from_millis(600),
        time_margin: Duration::ZERO,
        ..config()
    };
    let ports = h.ports.clone();
    let victim = tokio::spawn(async move {
        run_stream(
            &ports,
            &c,
            ORDERS,
            &RunRequest::scheduled("victim"),
            &NoDeadline,
        )
        .await
    });
    gate.arrived.notified().await;
    h.cursors.set_down(true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    h.cursors.set_down(false);
    assert!(
        h.cursors
            .acquire("orders", "intruder", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some(),
        "the victim's lease ran out"
    );
    let intruder =
        tcrelay_core::ports::Claimant::poll_run("orders", "intruder", chrono::Utc::now());
    let tcrelay_core::ports::ClaimOutcome::Claimed(token) = h
        .dedupe
        .claim_as(&key, true, Some(&intruder))
        .await
        .unwrap()
    else {
        panic!("the intruder claims the state");
    };
    gate.open.add_permits(100);
    // It stops as at its lease's end, or fails if its heartbeat found the lease taken.
    match victim.await.unwrap() {
        Ok(s) => assert_eq!(s.stop, Some(StopReason::LeaseUnsure), "{s:?}"),
        Err(failure) => assert!(
            matches!(failure.error, PollError::LostLease(_)),
            "{failure}"
        ),
    }
    assert!(
        sent(&h.sink).is_empty(),
        "the victim sent the intruder's state: {:?}",
        sent(&h.sink)
    );
    // The intruder's claim is still in progress: the victim took the lease earlier, so it
    // neither took the claim over nor, giving its claims back, freed it under the intruder's
    // send (a webhook or another run could have sent the state again).
    assert_eq!(
        h.dedupe.lookup(&key).await.unwrap(),
        Some(tcrelay_core::ports::DedupeRecord {
            state: RecordState::InProgress,
            full_state: true
        })
    );
    // The intruder's send lands; its completion finds no other claim's send.
    assert_eq!(
        h.dedupe.complete(&key, &token).await.unwrap(),
        tcrelay_core::ports::Completion::Completed
    );
}

#[tokio::test]
async fn a_run_does_not_take_over_a_state_a_webhook_is_relaying() {
    // A webhook GET's claim (a full state, no claimant) may still be sent by its request.
    let h = harness();
    h.api.with_world(|w| put_order(w, "o", T0));
    let key = state_key(ObjectClass::Order, "o", &ms_to_timestamp(T0));
    h.dedupe.insert(&key, RecordState::InProgress, true);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert!(
        matches!(s.stop, Some(StopReason::InProgressElsewhere { .. })),
        "{s:?}"
    );
    assert!(sent(&h.sink).is_empty());
}

#[tokio::test]
async fn a_panicking_run_releases_its_lease_at_once() {
    struct Panics;
    #[async_trait]
    impl PollApi for Panics {
        async fn fetch_page(&self, _: &PageRequest) -> Result<PolledPage, ApiError> {
            panic!("a bug in the poll path");
        }
    }
    let mut h = harness();
    h.ports.api = Arc::new(Panics);
    let c = PollConfig {
        lease: Duration::from_secs(300),
        ..config()
    };
    let crashed = spawn_poll(&h, c, "doomed").await;
    assert!(crashed.unwrap_err().is_panic());
    // Not after 300 s: released in the background right after the panic.
    let mut taken = None;
    for _ in 0..50 {
        taken = h
            .cursors
            .acquire("orders", "next", Duration::from_secs(60))
            .await
            .unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        taken.is_some(),
        "the panicked run's lease was never released"
    );
}

/// Time that passes as the run checks it: `step_ms` per look, from `left_ms`.
struct Ticking {
    left_ms: std::sync::atomic::AtomicU64,
    step_ms: u64,
}

impl Deadline for Ticking {
    fn remaining(&self) -> Option<Duration> {
        let left = self
            .left_ms
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                Some(left.saturating_sub(self.step_ms))
            })
            .unwrap();
        Some(Duration::from_millis(left))
    }
}

/// A backlog in the first stream must not take every invocation's time: the next stream gets
/// its share and its changes are relayed in the same invocation.
#[tokio::test]
async fn a_backlog_in_one_stream_leaves_the_next_stream_its_share_of_the_time() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..5_000 {
            put_order(w, &format!("o{i:04}"), T0 + i);
        }
        for i in 0..3 {
            let id = format!("s{i}");
            w.put(
                PollStream::Shipments,
                &id,
                T0 + i,
                shipment_json(&id, T0 + i),
            );
        }
    });
    let mut c = config();
    c.streams = vec![ORDERS, PollStream::Shipments];
    c.time_margin = Duration::from_secs(30);
    let deadline = Ticking {
        left_ms: 300_000.into(),
        step_ms: 10_000,
    };
    let report = run(&h.ports, &c, &RunRequest::scheduled("r"), &deadline).await;
    assert!(!report.failed());
    let summaries = report.summaries();
    let orders = summaries.iter().find(|s| s.stream == "orders").unwrap();
    let shipments = summaries.iter().find(|s| s.stream == "shipments").unwrap();
    assert_eq!(
        orders.stop,
        Some(StopReason::Deadline),
        "the backlog is not done"
    );
    assert!(orders.enqueued > 0);
    assert_eq!(shipments.enqueued, 3, "{shipments:?}");
    assert_eq!(shipments.stop, Some(StopReason::CaughtUp));
}

#[tokio::test]
async fn run_polls_each_configured_stream_and_reports_each() {
    let h = harness();
    h.api.with_world(|w| {
        put_order(w, "o1", T0);
        w.put(
            PollStream::Shipments,
            "s1",
            T0 + 7,
            shipment_json("s1", T0 + 7),
        );
    });
    let mut c = config();
    c.streams = vec![ORDERS, PollStream::Shipments];
    // A failing cursor store fails both streams, and each is reported.
    h.cursors.set_down(true);
    let report = run(&h.ports, &c, &RunRequest::scheduled("r"), &NoDeadline).await;
    assert!(report.failed());
    assert_eq!(report.results.len(), 2);
    h.cursors.set_down(false);
    let report = run(&h.ports, &c, &RunRequest::scheduled("r"), &NoDeadline).await;
    assert!(!report.failed());
    let streams: Vec<&str> = report.summaries().iter().map(|s| s.stream).collect();
    assert_eq!(streams, ["orders", "shipments"]);
    let shipment = h
        .sink
        .envelopes()
        .into_iter()
        .find(|e| e.kind == ObjectKind::Shipment)
        .unwrap();
    assert_eq!(shipment.changed_lines, Some(vec!["PO-1/1".to_owned()]));
    assert_eq!(h.cursors.value("shipments"), Some(ms_to_timestamp(T0 + 7)));
    // The summary serialises for the Lambda's answer.
    let json = serde_json::to_value(report.summaries()[0]).unwrap();
    assert_eq!(json["stop"], json!({"reason": "caught-up"}));
}

#[tokio::test]
async fn a_failed_claim_in_a_page_batch_releases_the_page_and_fails_the_stream() {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    let failing = state_key(ObjectClass::Order, "o2", &ms_to_timestamp(T0 + 2));
    h.ports.dedupe = Arc::new(BeforeClaims {
        inner: h.dedupe.clone(),
        before: move |key: String, _by| {
            let fails = key == failing;
            async move {
                if fails {
                    return Err(tcrelay_core::ports::StoreError::Unavailable(
                        "claims of this key fail".into(),
                    ));
                }
                Ok(())
            }
        },
    });
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(matches!(failure.error, PollError::Dedupe(_)), "{failure:?}");
    assert!(h.sink.envelopes().is_empty());
    assert_eq!(h.cursors.value("orders"), None);
    // Granted in the same batch, before and after the failed key: none is left in progress.
    for (id, at) in [("o0", T0), ("o1", T0 + 1), ("o3", T0 + 3), ("o4", T0 + 4)] {
        let claimed = state_key(ObjectClass::Order, id, &ms_to_timestamp(at));
        assert_eq!(h.dedupe.lookup(&claimed).await.unwrap(), None, "{id}");
    }
    assert_eq!(failure.summary.enqueued, 0);
}

/// A PollApi whose `nth` page (1-based) comes with the item at `index` stripped of `field`.
/// Tradecloud pages of more than `max` objects are too large for the client to read.
struct TooLargeAbove {
    inner: Arc<ScriptedPollApi>,
    max: u32,
    limits_asked: std::sync::Mutex<Vec<u32>>,
}

#[async_trait]
impl PollApi for TooLargeAbove {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        self.limits_asked.lock().unwrap().push(r.limit);
        if r.limit > self.max {
            return Err(ApiError::TooLarge("the answer is over 64 MiB".into()));
        }
        self.inner.fetch_page(r).await
    }
}

/// A page too large to read (a hundred orders of 500 lines) is asked again in smaller pages,
/// and everything is relayed, instead of the run failing on the same page for ever.
#[tokio::test]
async fn pages_too_large_to_read_are_asked_for_in_smaller_ones() {
    let (h, api) = harness_too_large_above(30, 250);
    let summary = poll(&h, &config(), "run-0").await.unwrap();
    assert_eq!(summary.stop, Some(StopReason::CaughtUp));
    assert_exact_once_and_newest(&h);
    let asked = api.limits_asked.lock().unwrap().clone();
    assert_eq!(&asked[..3], [100, 50, 25], "{asked:?}");
    // Pages of 25 from then on, but for tries of 50 after pages of 25 were served (each too
    // large again, and followed by 25), ever more seldom: after 4 pages, then 8.
    assert!(asked[3..].iter().all(|l| [25, 50].contains(l)), "{asked:?}");
    let tries: Vec<usize> = (3..asked.len()).filter(|&i| asked[i] == 50).collect();
    assert_eq!(tries.first(), Some(&6), "{asked:?}");
    assert!(
        tries.iter().all(|&i| asked.get(i + 1) == Some(&25)),
        "{asked:?}"
    );
    assert!(tries.windows(2).all(|w| w[1] - w[0] > 8), "{asked:?}");

    // Down to pages of two (pages must overlap), which still deliver everything...
    let h = harness_too_large_above(2, 30);
    poll(&h.0, &config(), "run-0").await.unwrap();
    assert_exact_once_and_newest(&h.0);
    let asked = h.1.limits_asked.lock().unwrap().clone();
    assert_eq!(&asked[..7], [100, 50, 25, 12, 6, 3, 2], "{asked:?}");
    // ... and no further: a page of two too large fails as too large, the cursor unmoved.
    let h = harness_too_large_above(1, 30);
    let failure = poll(&h.0, &config(), "run-0").await.unwrap_err();
    assert!(
        matches!(failure.error, PollError::Api(ApiError::TooLarge(_))),
        "{failure}"
    );
    assert_eq!(h.0.cursors.value("orders"), None);
    assert!(h.0.sink.envelopes().is_empty());
}

/// A harness with `orders` orders whose pages of more than `max` are too large to read.
fn harness_too_large_above(max: u32, orders: i64) -> (Harness, Arc<TooLargeAbove>) {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..orders {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let api = Arc::new(TooLargeAbove {
        inner: h.api.clone(),
        max,
        limits_asked: Default::default(),
    });
    h.ports.api = api.clone();
    (h, api)
}

fn assert_exact_once_and_newest(h: &Harness) {
    assert_exactly_once(h, ORDERS);
    let newest = h.api.with_world(|w| w.newest(ORDERS));
    assert_eq!(h.cursors.value("orders"), newest);
}

/// `page` with its items rewritten by `edit` (as JSON values) and `added` more matches in its
/// `total`: a Tradecloud serving what the scripted world holds, changed.
fn rewritten(page: PolledPage, added: u64, edit: impl FnOnce(&mut Vec<Value>)) -> PolledPage {
    let mut items: Vec<Value> = page
        .items
        .iter()
        .map(|i| serde_json::from_str(i.get()).unwrap())
        .collect();
    edit(&mut items);
    PolledPage::of_values(&items, page.total.map(|t| t + added), page.last_updated_at)
}

struct StripsField {
    inner: Arc<ScriptedPollApi>,
    served: AtomicUsize,
    nth: usize,
    index: usize,
    field: &'static str,
}

#[async_trait]
impl PollApi for StripsField {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        let page = self.inner.fetch_page(r).await?;
        if self.served.fetch_add(1, Ordering::SeqCst) + 1 != self.nth {
            return Ok(page);
        }
        Ok(rewritten(page, 0, |items| {
            items[self.index]
                .as_object_mut()
                .unwrap()
                .remove(self.field);
        }))
    }
}

/// Strips `field` from the object `id` on every page that serves it, as a Tradecloud that
/// keeps serving one object misshapen does.
struct StripsFieldOf {
    inner: Arc<ScriptedPollApi>,
    id: &'static str,
    field: &'static str,
}

#[async_trait]
impl PollApi for StripsFieldOf {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        let page = self.inner.fetch_page(r).await?;
        Ok(rewritten(page, 0, |items| {
            for item in items.iter_mut().filter(|item| item["id"] == self.id) {
                item.as_object_mut().unwrap().remove(self.field);
            }
        }))
    }
}

/// A timestamp that fills pages (a bulk change) with an object among them served without its
/// time on every page: paging inside the timestamp checks where each page's first object lay
/// on the page before by its place in the page, and the item left out of the paging must not
/// shift those places (each check failed, the timestamp started over until the run failed,
/// every run).
#[tokio::test]
async fn an_item_without_a_time_inside_a_full_timestamp_does_not_unsettle_its_paging() {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..25 {
            put_order(w, &format!("o{i:03}"), T0);
        }
        for i in 25..30 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    h.ports.api = Arc::new(StripsFieldOf {
        inner: h.api.clone(),
        id: "o003",
        field: "lastUpdatedAt",
    });
    let config = PollConfig {
        page_limit: 10,
        ..config()
    };
    let s = poll(&h, &config, "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    let newest = h.api.with_world(|w| w.newest(ORDERS));
    assert_eq!(h.cursors.value("orders"), newest);
    let sent = sent(&h.sink);
    let unique: HashSet<&(String, String)> = sent.iter().collect();
    assert_eq!(unique.len(), sent.len(), "a state twice: {sent:?}");
    assert_eq!(sent.len(), 30, "{sent:?}");
}

/// Puts `item` into every page at `index` (or at its end), counted in the page's `total`.
struct InsertsItem {
    inner: Arc<ScriptedPollApi>,
    item: Value,
    index: usize,
}

#[async_trait]
impl PollApi for InsertsItem {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        let page = self.inner.fetch_page(r).await?;
        Ok(rewritten(page, 1, |items| {
            items.insert(self.index.min(items.len()), self.item.clone());
        }))
    }
}

/// An item that is no object at all (`null`, a number, a text) carries no order or shipment:
/// it is counted and logged, and nothing goes to the queue for it (an envelope's payload is an
/// object, docs/envelope.schema.json); the stream goes on past it.
#[tokio::test]
async fn an_item_that_is_no_object_is_counted_and_not_relayed() {
    for item in [Value::Null, json!(42), json!("o-1"), json!([1])] {
        let mut h = harness();
        h.api.with_world(|w| {
            for i in 0..30 {
                put_order(w, &format!("o{i:03}"), T0 + i);
            }
        });
        h.ports.api = Arc::new(InsertsItem {
            inner: h.api.clone(),
            item: item.clone(),
            index: 3,
        });
        let config = PollConfig {
            page_limit: 10,
            ..config()
        };
        let s = poll(&h, &config, "run-1").await.unwrap();
        assert_eq!(s.stop, Some(StopReason::CaughtUp), "{item}: {s:?}");
        assert!(s.deviations.unplaceable_items >= 1, "{item}: {s:?}");
        assert_eq!(s.deviations.unsorted_pages, 0, "{item}: {s:?}");
        for e in h.sink.envelopes() {
            assert!(
                e.payload.to_value().unwrap().is_object(),
                "{item}: relayed {:?}",
                e.payload
            );
        }
        assert_exactly_once(&h, ORDERS);
        let newest = h.api.with_world(|w| w.newest(ORDERS));
        assert_eq!(h.cursors.value("orders"), newest, "{item}");
    }
}

/// An item without its id or its lastUpdatedAt (Tradecloud's docs promise both) is relayed as
/// sent, under its content's key, and left out of the paging: the run goes on past it and
/// delivers every other state once, and the move past its page is no skip (it lay among the
/// items the move left out). Before, the run failed at it, every run while Tradecloud served it.
#[tokio::test]
async fn an_item_without_id_or_time_is_relayed_and_the_run_goes_on() {
    for field in ["id", "lastUpdatedAt"] {
        let mut h = harness();
        h.api.with_world(|w| {
            for i in 0..450 {
                put_order(w, &format!("o{i:03}"), T0 + i);
            }
        });
        h.ports.api = Arc::new(StripsField {
            inner: h.api.clone(),
            served: AtomicUsize::new(0),
            nth: 3,
            index: 50,
            field,
        });
        let s = poll(&h, &config(), "run-1").await.unwrap();
        assert_eq!(s.stop, Some(StopReason::CaughtUp), "{field}");
        assert_eq!(s.deviations.unplaceable_items, 1, "{field}: {s:?}");
        // Its page was in time order, and so was every other: no skip read into its total.
        assert_eq!(s.deviations.unsorted_pages, 0, "{field}: {s:?}");
        let newest = h.api.with_world(|w| w.newest(ORDERS));
        assert_eq!(h.cursors.value("orders"), newest, "{field}");
        // Page 3 asked after T0+197 (paging by time, the last timestamp again): its 51st item,
        // o248, went out as served, without the field; no other envelope lacks it.
        let envelopes = h.sink.envelopes();
        let odd: Vec<&Envelope> = envelopes
            .iter()
            .filter(|e| e.id.is_empty() || e.last_updated_at.is_none())
            .collect();
        assert_eq!(odd.len(), 1, "{field}: {odd:?}");
        let payload = odd[0].payload.to_value().unwrap();
        assert!(payload.get(field).is_none(), "{field}: {payload}");
        let others = |e: &&Envelope| !e.id.is_empty() && e.last_updated_at.is_some();
        if field == "id" {
            assert_eq!(payload["lastUpdatedAt"], ms_to_timestamp(T0 + 248));
        } else {
            assert_eq!(odd[0].id, "o248");
        }
        // Every state once besides (o248's whole state came again on no page: it is sent by
        // the next run only if it changes, so it may lack here).
        let sent: Vec<(String, String)> = envelopes
            .iter()
            .filter(others)
            .map(|e| (e.id.clone(), e.last_updated_at.clone().unwrap()))
            .collect();
        let unique: HashSet<&(String, String)> = sent.iter().collect();
        assert_eq!(unique.len(), sent.len(), "{field}: a state twice");
        let missing: Vec<(String, String)> = h
            .api
            .with_world(|w| w.states(ORDERS))
            .into_iter()
            .filter(|s| !unique.contains(s) && s.0 != "o248")
            .collect();
        assert!(missing.is_empty(), "{field}: never enqueued: {missing:?}");
        // A second run sends nothing again.
        h.ports.api = h.api.clone();
        let s = poll(&h, &config(), "run-2").await.unwrap();
        assert_eq!(
            (s.stop, s.enqueued),
            (Some(StopReason::CaughtUp), 0),
            "{field}"
        );
    }
}

/// A stored cursor that is no timestamp fails the run before Tradecloud is asked, tells the
/// operator the fix (`cursor set`), and gives the lease back; once set, the stream runs on.
#[tokio::test]
async fn a_stored_cursor_that_is_no_timestamp_fails_the_run_and_names_the_fix() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "a", T0));
    h.cursors.set("orders", "garbage").await.unwrap();
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(
        matches!(&failure.error, PollError::BadCursor(value) if value == "garbage"),
        "{failure}"
    );
    let message = failure.to_string();
    assert!(
        message.contains(r#""garbage""#) && message.contains("`cursor set`"),
        "{message}"
    );
    assert!(h.api.requests().is_empty());
    assert!(h.sink.envelopes().is_empty());
    assert_eq!(h.cursors.value("orders").as_deref(), Some("garbage"));
    assert_eq!(failure.summary.cursor_after.as_deref(), Some("garbage"));
    // The lease is free at once, not held until it expires.
    let other = h
        .cursors
        .acquire("orders", "operator", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(other.is_some(), "the failed run kept its lease");
    h.cursors.release("orders", "operator").await.unwrap();
    // What `cursor set` does: the next run starts after the value set.
    h.cursors
        .set("orders", &ms_to_timestamp(T0 - 1000))
        .await
        .unwrap();
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 1));
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0)));
}

/// Moves the `n` objects first by id still at `at_ms` to new times after `clock`, as if they
/// changed in Tradecloud: in a result sorted by time they leave their positions for the end.
fn move_out_of(w: &mut ScriptedWorld, at_ms: i64, n: usize, clock: &mut i64) {
    let at = ms_to_timestamp(at_ms);
    let ids: Vec<String> = w
        .states(ORDERS)
        .into_iter()
        .filter(|(_, t)| *t == at)
        .map(|(id, _)| id)
        .take(n)
        .collect();
    for id in ids {
        *clock += 1;
        put_order(w, &id, *clock);
    }
}

/// Objects leaving a big tie after every page (more than the overlap): the run gives up with
/// `TieUnstable` instead of paging for ever, the cursor stays before the tie, and once the
/// world calms the next runs deliver every state once.
#[tokio::test]
async fn a_tie_that_moves_on_every_page_fails_the_run_and_the_next_runs_recover() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..40 {
            put_order(w, &format!("before{i:02}"), T0 - 100 + i);
        }
        for i in 0..1000 {
            put_order(w, &format!("tie{i:04}"), T0);
        }
    });
    let mut clock = T0 + 1_000_000;
    h.api
        .set_between_pages(Some(Box::new(move |w: &mut ScriptedWorld, _: usize| {
            move_out_of(w, T0, 30, &mut clock)
        })));
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    let PollError::TieUnstable { timestamp } = &failure.error else {
        panic!("{failure}");
    };
    assert_eq!(timestamp, &ms_to_timestamp(T0));
    assert!(
        failure.to_string().contains("next run tries again"),
        "{failure}"
    );
    // The objects before the tie were checkpointed; nothing inside it moved the cursor (the
    // checkpoints after the first store the paging inside the timestamp, with the same value).
    let before_tie = ms_to_timestamp(T0 - 100 + 39);
    assert_eq!(h.cursors.value("orders").as_ref(), Some(&before_tie));
    assert_eq!(failure.summary.cursor_after.as_ref(), Some(&before_tie));
    let values: HashSet<String> = h
        .cursors
        .checkpoints()
        .into_iter()
        .map(|(_, _, value)| value)
        .collect();
    assert_eq!(values.into_iter().collect::<Vec<_>>(), vec![before_tie]);
    h.api.set_between_pages(None);
    poll_until_caught_up(&h, &config()).await;
    assert_exact_once_and_newest(&h);
}

/// A walk by offset whose result set shifts after every page (objects leaving the front for the
/// end, more than the overlap): the run gives up with `WalkUnstable`, the cursor stays where it
/// was, and once the world calms the next runs deliver every state once.
#[tokio::test]
async fn a_walk_that_shifts_on_every_page_fails_the_run_and_the_next_runs_recover() {
    let h = harness();
    h.api.with_world(|w| {
        w.inclusive_after = true;
        for i in 0..20 {
            put_order(w, &format!("early{i:02}"), T0 - 1000 + i);
        }
    });
    poll(&h, &config(), "run-0").await.unwrap();
    let before = h.cursors.value("orders");
    assert!(before.is_some());
    h.api.with_world(|w| {
        for i in 0..600 {
            put_order(w, &format!("tie{i:04}"), T0);
        }
    });
    let mut clock = T0 + 1_000_000;
    h.api
        .set_between_pages(Some(Box::new(move |w: &mut ScriptedWorld, _: usize| {
            move_out_of(w, T0, 20, &mut clock)
        })));
    // A backfill from the tie's millisecond, which is after the cursor, so the run starts at
    // the cursor (a backfill never skips ahead); Tradecloud, inclusive, fills whole pages with
    // answers at the tie, so the run walks the result set by offset.
    let request = RunRequest {
        from: Some(ms_to_timestamp(T0)),
        ..RunRequest::scheduled("backfill")
    };
    let failure = run_stream(&h.ports, &config(), ORDERS, &request, &NoDeadline)
        .await
        .unwrap_err();
    let PollError::WalkUnstable { after } = &failure.error else {
        panic!("{failure}");
    };
    assert_eq!(Some(after), before.as_ref());
    assert!(
        failure.to_string().contains("next run tries again"),
        "{failure}"
    );
    assert_eq!(h.cursors.value("orders"), before);
    assert_eq!(failure.summary.cursor_after, before);
    h.api.set_between_pages(None);
    poll_until_caught_up(&h, &config()).await;
    assert_exact_once_and_newest(&h);
}

/// A backfill whose start is after the cursor starts at the cursor: starting at `from` would
/// checkpoint past the changes between the two, and no later run would see them.
#[tokio::test]
async fn a_backfill_from_after_the_cursor_skips_nothing() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "a", T0));
    poll(&h, &config(), "run-0").await.unwrap();
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0)));
    h.api.with_world(|w| {
        put_order(w, "b", T0 + 100);
        put_order(w, "c", T0 + 200);
    });
    let request = RunRequest {
        from: Some(ms_to_timestamp(T0 + 150)),
        ..RunRequest::scheduled("backfill")
    };
    run_stream(&h.ports, &config(), ORDERS, &request, &NoDeadline)
        .await
        .unwrap();
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 200)));
}

/// A cursor store whose `fail_on`-th checkpoint (1-based) fails as unavailable; every other
/// call goes to memory.
struct CheckpointFails {
    inner: Arc<MemoryCursorStore>,
    calls: AtomicUsize,
    fail_on: usize,
}

#[async_trait]
impl CursorStore for CheckpointFails {
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<tcrelay_core::ports::Cursor>, tcrelay_core::ports::StoreError> {
        self.inner.acquire(stream, owner, lease_for).await
    }

    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<tcrelay_core::ports::Cursor, tcrelay_core::ports::StoreError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_on {
            return Err(tcrelay_core::ports::StoreError::Unavailable(
                "fake cursor table throttled".into(),
            ));
        }
        self.inner
            .checkpoint(stream, owner, expected_version, value, window_start, walk)
            .await
    }

    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<(), tcrelay_core::ports::StoreError> {
        self.inner.renew(stream, owner, lease_for).await
    }

    async fn release(
        &self,
        stream: &str,
        owner: &str,
    ) -> Result<(), tcrelay_core::ports::StoreError> {
        self.inner.release(stream, owner).await
    }

    async fn read(
        &self,
        stream: &str,
    ) -> Result<Option<tcrelay_core::ports::Cursor>, tcrelay_core::ports::StoreError> {
        self.inner.read(stream).await
    }

    async fn set(
        &self,
        stream: &str,
        value: &str,
    ) -> Result<tcrelay_core::ports::Cursor, tcrelay_core::ports::StoreError> {
        self.inner.set(stream, value).await
    }
}

/// A checkpoint the cursor store fails (not a conflict) fails the run as a cursor-store
/// failure, not a lost lease; the cursor stays at the checkpoint before, the lease is given
/// back, and the next run delivers the rest, every state once.
#[tokio::test]
async fn a_failed_checkpoint_fails_the_run_at_the_checkpoint_before() {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..450 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    h.ports.cursors = Arc::new(CheckpointFails {
        inner: h.cursors.clone(),
        calls: AtomicUsize::new(0),
        fail_on: 2,
    });
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(
        matches!(
            failure.error,
            PollError::Cursor(tcrelay_core::ports::StoreError::Unavailable(_))
        ),
        "{failure:?}"
    );
    assert!(
        failure.to_string().contains("cursor store failed"),
        "{failure}"
    );
    // Only page 1's checkpoint was stored; the run stopped at the failed one (page 2's move,
    // stored once page 3's `total` allowed it).
    let checkpoints = h.cursors.checkpoints();
    assert_eq!(checkpoints.len(), 1);
    assert_eq!(h.cursors.value("orders").as_ref(), Some(&checkpoints[0].2));
    assert_eq!(failure.summary.cursor_after, h.cursors.value("orders"));
    assert_eq!(h.api.requests().len(), 3);
    // The lease was given back: the next run goes ahead at once and delivers the rest.
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(s.cursor_before.as_ref(), Some(&checkpoints[0].2));
    assert_exactly_once(&h, ORDERS);
    assert_eq!(h.sink.envelopes().len(), 450);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 449)));
}

/// Order `o` at T0 + 200: line `dropped` changed at T0 + 100 (its webhook event lost before the
/// relay: no state key), `relayed` at T0 + 200 (its event relayed: the order's own state key,
/// completed not as a full state), `earlier` at T0 + 50 (its event relayed too). Order `p` at
/// T0 + 300: both of its changes' events were relayed.
fn events_relayed_around_a_lost_one(h: &Harness) -> [String; 4] {
    let key = |id: &str, ms: i64| state_key(ObjectClass::Order, id, &ms_to_timestamp(ms));
    h.api.with_world(|w| {
        w.put(
            ORDERS,
            "o",
            T0 + 200,
            order_json(
                "o",
                4,
                T0 + 200,
                &[
                    ("old", T0 - 5, "Confirmed", None),
                    ("earlier", T0 + 50, "Confirmed", None),
                    ("dropped", T0 + 100, "Confirmed", None),
                    ("relayed", T0 + 200, "Confirmed", None),
                ],
            ),
        );
        w.put(
            ORDERS,
            "p",
            T0 + 300,
            order_json(
                "p",
                3,
                T0 + 300,
                &[
                    ("p1", T0 + 250, "Confirmed", None),
                    ("p2", T0 + 300, "Confirmed", None),
                ],
            ),
        );
    });
    for (id, ms) in [
        ("o", T0 + 50),
        ("o", T0 + 200),
        ("p", T0 + 250),
        ("p", T0 + 300),
    ] {
        h.dedupe.insert(&key(id, ms), RecordState::Completed, false);
    }
    [
        key("o", T0 + 200),
        key("o", T0 + 100),
        key("o", T0 - 5),
        key("p", T0 + 300),
    ]
}

#[tokio::test]
async fn an_order_whose_earlier_change_reached_no_channel_is_sent_whole_once() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    let [own, dropped, old, p] = events_relayed_around_a_lost_one(&h);

    // A dry run tells it as the run will do it.
    let mut request = RunRequest::scheduled("dry");
    request.dry_run = true;
    let planned = run_stream(&h.ports, &config(), ORDERS, &request, &NoDeadline)
        .await
        .unwrap();
    // `first` is asked again (each run re-asks the cursor's millisecond), `p` was relayed.
    assert_eq!(
        (planned.enqueued, planned.recovered, planned.duplicates),
        (1, 1, 2)
    );
    assert_eq!(planned.planned[0].dedupe_key, own);

    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (1, 1, 2), "{s:#?}");
    let sent: Vec<Envelope> = h.sink.envelopes().into_iter().skip(1).collect();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!((sent[0].id.as_str(), sent[0].source), ("o", Source::Poll));
    // Under the state's own key: a consumer deduping by key has not seen it (the event came
    // under its message key), and a repeat of this send would be seen.
    assert_eq!(sent[0].dedupe_key, own);
    let lines = sent[0].payload.to_value().unwrap()["lines"].clone();
    assert_eq!(lines.as_array().unwrap().len(), 4, "the whole order");
    // The lost change's time is now relayed, as a full state: a late retry of its event is a
    // duplicate, and the next run finds nothing to do.
    assert_eq!(
        h.dedupe.lookup(&dropped).await.unwrap(),
        Some(tcrelay_core::ports::DedupeRecord {
            state: RecordState::Completed,
            full_state: true
        })
    );
    // Only the changed lines' times are looked at: not a line older than the run's window.
    assert_eq!(h.dedupe.lookup(&old).await.unwrap(), None);
    assert!(h.dedupe.lookup(&p).await.unwrap().is_some());
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 300)));
    // Read again (a backfill over the same window): the lost change is settled, nothing goes.
    let mut backfill = RunRequest::scheduled("run-3");
    backfill.from = Some(ms_to_timestamp(T0));
    let s = run_stream(&h.ports, &config(), ORDERS, &backfill, &NoDeadline)
        .await
        .unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (0, 0, 2), "{s:#?}");
    assert_eq!(h.sink.envelopes().len(), 2);
}

/// A queue that refuses every message.
struct RefusingSink;

#[async_trait]
impl EventSink for RefusingSink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        Err(SinkError {
            failed: (0..envelopes.len()).collect(),
            reason: "down".into(),
        })
    }
}

#[tokio::test]
async fn a_lost_change_whose_send_fails_or_is_held_elsewhere_is_retried_by_the_next_run() {
    // The queue refuses the recovering send: its claims go, the cursor stays.
    let memory = Arc::new(MemorySink::new());
    let h = harness_with_sink(Arc::new(RefusingSink), memory);
    h.api.with_world(|w| put_order(w, "first", T0));
    let [_, dropped, _, _] = events_relayed_around_a_lost_one(&h);
    let failure = poll(&h, &config(), "run-1").await.unwrap_err();
    assert!(matches!(failure.error, PollError::Sink(_)), "{failure:?}");
    assert_eq!(failure.summary.recovered, 0, "not sent, not counted");
    assert_eq!(h.dedupe.lookup(&dropped).await.unwrap(), None, "released");
    assert_eq!(h.cursors.value("orders"), None);

    // Another channel holds the lost change's key right now (a late retry of its event): the
    // run stops before the order, as for its own key, and the next run decides.
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-0").await.unwrap();
    let [own, dropped, _, _] = events_relayed_around_a_lost_one(&h);
    h.dedupe.insert(&dropped, RecordState::InProgress, false);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(
        s.stop,
        Some(StopReason::InProgressElsewhere {
            key: dropped.clone(),
            last_updated_at: ms_to_timestamp(T0 + 200),
        })
    );
    assert_eq!(h.sink.envelopes().len(), 1, "only `first`");
    // That retry went through: the change reached the queue, so the order is a duplicate.
    h.dedupe.insert(&dropped, RecordState::Completed, false);
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (0, 0, 3), "{s:#?}");
    assert_eq!(h.sink.envelopes().len(), 1, "still only `first`");
    assert_eq!(
        h.dedupe.lookup(&own).await.unwrap().map(|r| r.full_state),
        Some(false),
        "the order's own key is left as the event wrote it"
    );
}

#[tokio::test]
async fn a_lost_change_held_elsewhere_stops_the_run_after_sending_the_rest_of_its_page() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-0").await.unwrap();
    let key = |id: &str, ms: i64| state_key(ObjectClass::Order, id, &ms_to_timestamp(ms));
    let lines = |id: &str, ms: i64, times: &[i64]| {
        let ids: Vec<String> = (0..times.len()).map(|i| format!("{id}{i}")).collect();
        let lines: Vec<(&str, i64, &str, Option<&str>)> = ids
            .iter()
            .zip(times)
            .map(|(line, at)| (line.as_str(), *at, "Confirmed", None))
            .collect();
        order_json(id, 1, ms, &lines)
    };
    h.api.with_world(|w| {
        // Its event was relayed, an earlier change's event was lost: recovered by this page.
        w.put(
            ORDERS,
            "q",
            T0 + 120,
            lines("q", T0 + 120, &[T0 + 110, T0 + 120]),
        );
        w.put(ORDERS, "n", T0 + 150, lines("n", T0 + 150, &[T0 + 150]));
        // Its event was relayed; a late retry of an earlier change's event is being relayed
        // right now, and another change reached no channel.
        w.put(
            ORDERS,
            "o",
            T0 + 200,
            lines("o", T0 + 200, &[T0 + 100, T0 + 180, T0 + 200]),
        );
        w.put(ORDERS, "m", T0 + 250, lines("m", T0 + 250, &[T0 + 250]));
    });
    for (id, ms) in [("q", T0 + 120), ("o", T0 + 200)] {
        h.dedupe.insert(&key(id, ms), RecordState::Completed, false);
    }
    let busy = key("o", T0 + 100);
    h.dedupe.insert(&busy, RecordState::InProgress, false);

    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(
        s.stop,
        Some(StopReason::InProgressElsewhere {
            key: busy.clone(),
            last_updated_at: ms_to_timestamp(T0 + 200),
        })
    );
    // All but `o` is sent: `q` (recovered, its lost change's claim completed with it), `n`, and
    // `m` after `o`.
    assert_eq!(
        sent(&h.sink)[1..],
        [
            ("q".to_owned(), ms_to_timestamp(T0 + 120)),
            ("n".to_owned(), ms_to_timestamp(T0 + 150)),
            ("m".to_owned(), ms_to_timestamp(T0 + 250)),
        ]
    );
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (3, 1, 1), "{s:#?}");
    for completed in [key("q", T0 + 110), key("n", T0 + 150), key("m", T0 + 250)] {
        let record = h.dedupe.lookup(&completed).await.unwrap().unwrap();
        assert_eq!(record.state, RecordState::Completed, "{completed}");
        assert!(record.full_state, "{completed}");
    }
    // `o` is not sent: its missed change's claim is released.
    assert_eq!(h.dedupe.lookup(&key("o", T0 + 180)).await.unwrap(), None);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0)));

    // `q` changes before the next run, and the late retry goes through.
    h.api
        .with_world(|w| w.put(ORDERS, "q", T0 + 400, lines("q", T0 + 400, &[T0 + 400])));
    h.dedupe.insert(&busy, RecordState::Completed, false);
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:#?}");
    // `o` goes whole (its change at T0 + 180 reached no channel), and the new `q`; `m` went.
    assert_eq!((s.enqueued, s.recovered), (2, 1), "{s:#?}");
    assert!(sent(&h.sink).contains(&("q".to_owned(), ms_to_timestamp(T0 + 120))));
    assert_exactly_once(&h, ORDERS);
}

/// A queue that refuses the messages of one object and takes the rest, while `refusing`.
struct RefusesOne {
    id: &'static str,
    refusing: std::sync::atomic::AtomicBool,
    inner: Arc<MemorySink>,
}

#[async_trait]
impl EventSink for RefusesOne {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        if !self.refusing.load(Ordering::SeqCst) {
            return self.inner.enqueue(envelopes).await;
        }
        let (refused, taken): (Vec<_>, Vec<_>) = envelopes
            .iter()
            .cloned()
            .enumerate()
            .partition(|(_, e)| e.id == self.id);
        let taken: Vec<Envelope> = taken.into_iter().map(|(_, e)| e).collect();
        self.inner.enqueue(&taken).await?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(SinkError {
            failed: refused.into_iter().map(|(i, _)| i).collect(),
            reason: "one refused".into(),
        })
    }
}

#[tokio::test]
async fn a_recovery_the_queue_refuses_releases_its_claims_and_the_page_around_it_completes() {
    let memory = Arc::new(MemorySink::new());
    let sink = Arc::new(RefusesOne {
        id: "o",
        refusing: std::sync::atomic::AtomicBool::new(true),
        inner: memory.clone(),
    });
    let h = harness_with_sink(sink.clone(), memory);
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    let [own, dropped, _, _] = events_relayed_around_a_lost_one(&h);
    // A new order in the same page, between o's and p's times: its claim is the page's.
    h.api.with_world(|w| put_order(w, "n", T0 + 250));
    let new = state_key(ObjectClass::Order, "n", &ms_to_timestamp(T0 + 250));

    let failure = poll(&h, &config(), "run-2").await.unwrap_err();
    assert!(matches!(failure.error, PollError::Sink(_)), "{failure:?}");
    // n was sent and completed; o's recovery was refused: its claims went, nothing counted.
    let s = &failure.summary;
    assert_eq!((s.enqueued, s.recovered), (1, 0), "{s:#?}");
    assert_eq!(
        h.dedupe.lookup(&new).await.unwrap().map(|r| r.state),
        Some(RecordState::Completed)
    );
    assert_eq!(h.dedupe.lookup(&dropped).await.unwrap(), None);
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0)));

    sink.refusing.store(false, Ordering::SeqCst);
    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.recovered), (1, 1), "{s:#?}");
    let sent = h.sink.envelopes();
    assert_eq!(sent.last().unwrap().dedupe_key, own);
    assert_eq!(sent.iter().filter(|e| e.id == "n").count(), 1);
}

/// A poll answer holding one order twice, in two states (Tradecloud promises nothing else),
/// once; empty after.
struct OneOrderTwice(std::sync::Mutex<Option<Vec<Value>>>);

#[async_trait]
impl PollApi for OneOrderTwice {
    async fn fetch_page(&self, _: &PageRequest) -> Result<PolledPage, ApiError> {
        let items = self.0.lock().unwrap().take().unwrap_or_default();
        Ok(PolledPage::of_values(&items, None, None))
    }
}

/// Order `o` as polled at `ms`, its lines `(id, time)`.
fn order_with_lines(ms: i64, lines: &[(&str, i64)]) -> Value {
    let lines: Vec<(&str, i64, &str, Option<&str>)> = lines
        .iter()
        .map(|(id, at)| (*id, *at, "Confirmed", None))
        .collect();
    order_json("o", 1, ms, &lines)
}

/// A harness whose Tradecloud answers `items` once, the states in `by_events` written by
/// webhook events.
fn one_page_of(items: Vec<Value>, by_events: &[i64]) -> Harness {
    let mut h = harness();
    h.ports.api = Arc::new(OneOrderTwice(std::sync::Mutex::new(Some(items))));
    for ms in by_events {
        let key = state_key(ObjectClass::Order, "o", &ms_to_timestamp(*ms));
        h.dedupe.insert(&key, RecordState::Completed, false);
    }
    h
}

/// A poll answer holding the same states on every request.
struct SamePage(Vec<Value>);

#[async_trait]
impl PollApi for SamePage {
    async fn fetch_page(&self, _: &PageRequest) -> Result<PolledPage, ApiError> {
        Ok(PolledPage::of_values(&self.0, None, None))
    }
}

#[tokio::test]
async fn a_later_state_of_an_object_claimed_elsewhere_waits_for_it_and_goes_once_in_order() {
    // One page: `o` at T0 + 100, which a webhook GET is relaying right now, `o` again at
    // T0 + 200, and `p`.
    let mut h = harness();
    h.ports.api = Arc::new(SamePage(vec![
        order_with_lines(T0 + 100, &[("a", T0 + 100)]),
        order_with_lines(T0 + 200, &[("a", T0 + 100), ("b", T0 + 200)]),
        order("p", T0 + 300),
    ]));
    let key_of = |id: &str, at: i64| state_key(ObjectClass::Order, id, &ms_to_timestamp(at));
    let busy = key_of("o", T0 + 100);
    h.dedupe.insert(&busy, RecordState::InProgress, true);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(
        s.stop,
        Some(StopReason::InProgressElsewhere {
            key: busy.clone(),
            last_updated_at: ms_to_timestamp(T0 + 100),
        })
    );
    // `p` is sent; `o`'s later state is not, ahead of its earlier one, and its claim is
    // released.
    assert_eq!(sent(&h.sink), [("p".to_owned(), ms_to_timestamp(T0 + 300))]);
    assert_eq!((s.objects, s.enqueued, s.duplicates), (3, 1, 0), "{s:#?}");
    assert_eq!(h.dedupe.lookup(&key_of("o", T0 + 200)).await.unwrap(), None);
    assert_eq!(h.cursors.value("orders"), None);

    // The GET delivers `o` at T0 + 100; the next run sends its later state, once.
    h.dedupe.insert(&busy, RecordState::Completed, true);
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:#?}");
    assert_eq!((s.enqueued, s.duplicates), (1, 2), "{s:#?}");
    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.duplicates), (0, 3), "{s:#?}");
    assert_eq!(
        sent(&h.sink),
        [
            ("p".to_owned(), ms_to_timestamp(T0 + 300)),
            ("o".to_owned(), ms_to_timestamp(T0 + 200)),
        ]
    );
}

#[tokio::test]
async fn an_order_twice_in_one_page_is_not_stopped_by_its_own_claim() {
    // The newer state's event was relayed; the older state's change reached no channel yet.
    let items = || {
        vec![
            order_with_lines(T0 + 100, &[("a", T0 + 100)]),
            order_with_lines(T0 + 200, &[("a", T0 + 100), ("b", T0 + 200)]),
        ]
    };
    let h = one_page_of(items(), &[T0 + 200]);
    let mut dry = RunRequest::scheduled("dry");
    dry.dry_run = true;
    let planned = run_stream(&h.ports, &config(), ORDERS, &dry, &NoDeadline)
        .await
        .unwrap();
    let h = one_page_of(items(), &[T0 + 200]);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    // The older state is this page's to relay: the newer one is not stopped by that claim.
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:#?}");
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (1, 0, 1), "{s:#?}");
    assert_eq!(
        (planned.enqueued, planned.recovered, planned.duplicates),
        (s.enqueued, s.recovered, s.duplicates),
        "the dry run tells it as the run does it"
    );
    assert_eq!(
        h.sink.envelopes()[0].last_updated_at.as_deref(),
        Some(ms_to_timestamp(T0 + 100).as_str())
    );

    // Both states written by events, sharing a line time no event claimed: only the newest
    // state is checked (it carries every line at its latest time), so the shared key is claimed
    // once and the run is not stopped by its own claim.
    let items = vec![
        order_with_lines(T0 + 200, &[("a", T0 + 100), ("b", T0 + 200)]),
        order_with_lines(
            T0 + 300,
            &[("a", T0 + 100), ("b", T0 + 200), ("c", T0 + 300)],
        ),
    ];
    let h = one_page_of(items, &[T0 + 200, T0 + 300]);
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:#?}");
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (1, 1, 1), "{s:#?}");
    assert_eq!(
        h.sink.envelopes()[0].last_updated_at.as_deref(),
        Some(ms_to_timestamp(T0 + 300).as_str())
    );
}

#[tokio::test]
async fn an_order_with_more_line_times_than_checked_is_sent_once_per_state() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    // 102 lines changed at 102 times after the cursor, the order's own time among them.
    let ids: Vec<String> = (0..102).map(|i| format!("l{i}")).collect();
    let lines: Vec<(&str, i64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), T0 + 1 + i as i64))
        .collect();
    let at = T0 + 102;
    h.api
        .with_world(|w| w.put(ORDERS, "o", at, order_with_lines(at, &lines)));
    let own = state_key(ObjectClass::Order, "o", &ms_to_timestamp(at));
    h.dedupe.insert(&own, RecordState::Completed, false);

    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.recovered), (1, 1), "{s:#?}");
    let marker =
        tcrelay_core::dedupe::whole_state_key(ObjectClass::Order, "o", &ms_to_timestamp(at));
    assert_eq!(
        h.dedupe.lookup(&marker).await.unwrap().map(|r| r.state),
        Some(RecordState::Completed)
    );
    // No line time was claimed: only the marker.
    let line_key = state_key(ObjectClass::Order, "o", &ms_to_timestamp(T0 + 1));
    assert_eq!(h.dedupe.lookup(&line_key).await.unwrap(), None);
    // The next run reads the order again (the cursor's millisecond is asked again): it is
    // not sent a second time.
    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (0, 0, 1), "{s:#?}");
    assert_eq!(h.sink.envelopes().iter().filter(|e| e.id == "o").count(), 1);
}

/// Order `o`'s line `dropped` changed at T0 + 100 (its event lost at the gateway), then 150
/// other orders, then its line `relayed` at T0 + 300 (that event relayed): by the time a run
/// fetches the page of T0 + 100, `o` sits at T0 + 300. The world of the tests below.
fn a_backlog_around_a_lost_change(h: &Harness) {
    h.api.with_world(|w| {
        for i in 0..150 {
            put_order(w, &format!("b{i:03}"), T0 + 101 + i);
        }
        w.put(
            ORDERS,
            "o",
            T0 + 300,
            order_json(
                "o",
                3,
                T0 + 300,
                &[
                    ("dropped", T0 + 100, "Confirmed", None),
                    ("relayed", T0 + 300, "Confirmed", None),
                ],
            ),
        );
    });
}

/// Pages of 50, so that a run stopped after two pages has checkpointed the first page's move
/// (the second's waits for the third page's `total`) in the middle of the backlog below.
fn pages_of_50() -> PollConfig {
    PollConfig {
        page_limit: 50,
        ..config()
    }
}

/// A run that stops before it catches up (here its deadline, after two pages) has checkpointed
/// past T0 + 100 without seeing `o`. The next run must still read `o`'s line of T0 + 100 as
/// changed: the cursor keeps the window's start until a run catches up.
#[tokio::test]
async fn a_change_lost_at_the_gateway_behind_a_run_stopped_mid_backlog_is_recovered() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(h.cursors.window_start("orders"), None);
    a_backlog_around_a_lost_change(&h);
    let relayed = state_key(ObjectClass::Order, "o", &ms_to_timestamp(T0 + 300));
    h.dedupe.insert(&relayed, RecordState::Completed, false);

    let s = poll_for_pages(&h, &pages_of_50(), "run-2", 2).await;
    assert_eq!(s.stop, Some(StopReason::Deadline));
    let stopped_at = h.cursors.value("orders").unwrap();
    assert!(stopped_at > ms_to_timestamp(T0 + 100), "{stopped_at}");
    // The window of the stopped run starts where it started: the cursor before it, less the
    // millisecond every run asks again.
    assert_eq!(
        h.cursors.window_start("orders"),
        Some(ms_to_timestamp(T0 - 1))
    );

    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(s.recovered, 1, "{s:#?}");
    let o: Vec<Envelope> = h
        .sink
        .envelopes()
        .into_iter()
        .filter(|e| e.id == "o")
        .collect();
    assert_eq!(o.len(), 1, "o's change of T0 + 100 reached no channel");
    assert_eq!(
        o[0].changed_lines,
        Some(vec!["dropped".to_owned(), "relayed".to_owned()])
    );
    // Caught up: the next window starts at the cursor, and a run finds nothing to do.
    assert_eq!(h.cursors.window_start("orders"), None);
    let s = poll(&h, &config(), "run-4").await.unwrap();
    assert_eq!((s.enqueued, s.recovered), (0, 0), "{s:#?}");
    assert_eq!(h.sink.envelopes().len(), 152);
}

/// Without webhooks, with only the changed lines forwarded: after a run stopped mid-backlog
/// the next one forwards `o` with the line that changed before the stop, not only the one
/// after it.
#[tokio::test]
async fn changed_lines_only_keeps_the_lines_changed_before_a_run_stopped_mid_backlog() {
    let h = harness();
    let mut c = pages_of_50();
    c.changed_lines_only = true;
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &c, "run-1").await.unwrap();
    a_backlog_around_a_lost_change(&h);
    let s = poll_for_pages(&h, &c, "run-2", 2).await;
    assert_eq!(s.stop, Some(StopReason::Deadline));
    poll_until_caught_up(&h, &c).await;
    let o = first_envelope_of(&h.sink, "o");
    assert_eq!(
        o.changed_lines,
        Some(vec!["dropped".to_owned(), "relayed".to_owned()])
    );
    let payload = o.payload.to_value().unwrap();
    assert_eq!(payload["lines"].as_array().unwrap().len(), 2);
    assert_exactly_once(&h, ORDERS);
}

/// A window start the store holds is cleared by a run that catches up without moving the
/// cursor, and an operator's `cursor set` clears it too.
#[tokio::test]
async fn a_run_that_catches_up_clears_the_window_start_even_when_nothing_moved() {
    let h = harness();
    h.api.with_world(|w| {
        for i in 0..150 {
            put_order(w, &format!("b{i:03}"), T0 + i);
        }
    });
    let s = poll_for_pages(&h, &pages_of_50(), "run-1", 2).await;
    assert_eq!(s.stop, Some(StopReason::Deadline));
    assert_eq!(h.cursors.window_start("orders"), Some(START.to_owned()));
    poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(h.cursors.window_start("orders"), None);
    // Stopped again, then a run with nothing new: no checkpoint moves, the window still closes.
    h.api.with_world(|w| {
        for i in 0..150 {
            put_order(w, &format!("c{i:03}"), T0 + 1000 + i);
        }
    });
    poll_for_pages(&h, &pages_of_50(), "run-3", 2).await;
    assert!(h.cursors.window_start("orders").is_some());
    let before = h.cursors.checkpoints().len();
    poll(&h, &config(), "run-4").await.unwrap();
    assert_eq!(h.cursors.window_start("orders"), None);
    assert!(h.cursors.checkpoints().len() > before);
    assert_exactly_once(&h, ORDERS);
    h.cursors
        .checkpoint("orders", "run-5", 0, "x", Some(START), None)
        .await
        .unwrap_err();
    let set = h.cursors.set("orders", START).await.unwrap();
    assert_eq!(set.window_start, None);
}

/// Order `o`'s line `timeless` changed (the poll shows it without a `lastUpdatedAt`, against
/// Tradecloud's contract) and its event was lost at the gateway; line `relayed` then changed
/// and its event was relayed. The poll cannot tell which event carried `timeless`: it sends the
/// order, once per state (its whole-state marker), rather than take the state for relayed.
#[tokio::test]
async fn a_changed_line_without_a_time_behind_an_event_is_sent_once_per_state() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    let mut order = order_with_lines(T0 + 200, &[("timeless", T0), ("relayed", T0 + 200)]);
    order["lines"][0]
        .as_object_mut()
        .unwrap()
        .remove("lastUpdatedAt");
    h.api.with_world(|w| w.put(ORDERS, "o", T0 + 200, order));
    let own = state_key(ObjectClass::Order, "o", &ms_to_timestamp(T0 + 200));
    h.dedupe.insert(&own, RecordState::Completed, false);

    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.recovered), (1, 1), "{s:#?}");
    let o = h.sink.envelopes().pop().unwrap();
    assert_eq!((o.id.as_str(), o.dedupe_key.as_str()), ("o", own.as_str()));
    assert_eq!(
        o.changed_lines,
        Some(vec!["timeless".to_owned(), "relayed".to_owned()])
    );
    // Read again (the cursor's millisecond): that state is not sent a second time.
    let s = poll(&h, &config(), "run-3").await.unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (0, 0, 1), "{s:#?}");
    assert_eq!(h.sink.envelopes().iter().filter(|e| e.id == "o").count(), 1);
}

/// The events of `o`'s two changes were both relayed, their times spelled as the webhook got
/// them (an offset, `java.time`'s zone id); the poll shows the same instants zone-less and
/// with fewer digits. One instant is one state key: nothing is missed, nothing goes twice.
/// `q`, the same but for its earlier event lost, is sent: the check is live.
#[tokio::test]
async fn line_times_spelled_otherwise_than_their_events_are_found_relayed() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "first", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    for id in ["o", "q"] {
        let lines = [
            ("a", T0 + 120, "Confirmed", None),
            ("b", T0 + 200, "Confirmed", None),
        ];
        let mut order = order_json(id, 1, T0 + 200, &lines);
        // T0 + 120 ms and T0 + 200 ms, as the poll spells them.
        order["lines"][0]["lastUpdatedAt"] = json!("2025-01-01T00:00:00.12");
        order["lines"][1]["lastUpdatedAt"] = json!("2025-01-01T01:00:00.2+01:00");
        h.api.with_world(|w| w.put(ORDERS, id, T0 + 200, order));
    }
    for (id, at) in [
        ("o", "2025-01-01T00:00:00.120+00:00"),
        ("o", "2025-01-01T00:00:00.200Z[UTC]"),
        ("q", "2025-01-01T00:00:00.200Z[UTC]"),
    ] {
        let key = state_key(ObjectClass::Order, id, at);
        h.dedupe.insert(&key, RecordState::Completed, false);
    }
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.recovered, s.duplicates), (1, 1, 2), "{s:#?}");
    assert_eq!(h.sink.envelopes().last().unwrap().id, "q");
}

/// Tradecloud serving at most `cap` items a page whatever the limit asked, with the `total` of
/// all matches (plus `overcount`, for a `total` that counts more than it serves).
struct Capped {
    inner: Arc<ScriptedPollApi>,
    cap: u32,
    overcount: u64,
}

#[async_trait]
impl PollApi for Capped {
    async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
        let mut r = r.clone();
        r.limit = r.limit.min(self.cap);
        let mut page = self.inner.fetch_page(&r).await?;
        page.total = page.total.map(|t| t + self.overcount);
        Ok(page)
    }
}

/// A Tradecloud that serves fewer objects than asked (a page cap below the page size) while its
/// `total` counts more: the short page is not the end of the result set. Taken for it, an
/// unsorted set's walk ended after its first page and moved the cursor to the newest time
/// seen, every object past that page lost (here all but 40 of 450); paging by time, each run
/// fetched one page. Pages of the size served go on, in the same run, losing nothing, while
/// objects change between pages.
#[tokio::test]
async fn a_page_cap_below_the_page_size_is_not_the_end_of_the_result_set() {
    for unsorted in [true, false] {
        let mut h = harness();
        h.api.with_world(|w| {
            w.unsorted = unsorted;
            for i in 0..450i64 {
                put_order(w, &format!("o{i:04}"), T0 + ((i * 7919) % 450));
            }
        });
        let mut clock = T0 + 1_000_000;
        let mut next = 0usize;
        h.api.set_between_pages(Some(Box::new(
            move |w: &mut ScriptedWorld, served: usize| {
                if served > 10 {
                    return;
                }
                for _ in 0..3 {
                    let id = format!("o{:04}", (next * 137) % 450);
                    next += 1;
                    clock += 1;
                    put_order(w, &id, clock);
                }
            },
        )));
        h.ports.api = Arc::new(Capped {
            inner: h.api.clone(),
            cap: 40,
            overcount: 0,
        });
        let first = poll(&h, &config(), "run-1").await.unwrap();
        poll_until_caught_up(&h, &config()).await;
        assert_exactly_once(&h, ORDERS);
        let newest = h.api.with_world(|w| w.newest(ORDERS));
        assert_eq!(h.cursors.value("orders"), newest, "unsorted {unsorted}");
        // The first run pages on through the backlog instead of one page per run.
        assert!(first.pages > 10, "unsorted {unsorted}: {first:?}");
        // Counted once per short page, whatever page size it then asks (pages of 40 are full):
        // once, and once more for each try of larger pages after pages of 40 were served
        // (paging by time only; each after twice as many pages as the one before).
        let short = first.deviations.short_pages;
        if unsorted {
            assert_eq!(short, 1, "unsorted {unsorted}: {first:?}");
        } else {
            assert!((1..=3).contains(&short), "unsorted {unsorted}: {first:?}");
        }
    }
}

/// A Tradecloud answering no objects while its `total` counts matches (`{"data":[],
/// "total":5}`) holds the stream where it is (the cursor moves no further than what a page
/// showed) and says so: the run counts a short page (a WARN, and the `ShortPages` metric), so
/// an operator sees why nothing arrives. Once it serves them, every state goes out once.
#[tokio::test]
async fn an_empty_page_while_objects_match_is_counted_and_loses_nothing() {
    let mut h = harness();
    h.api.with_world(|w| {
        for i in 0..5i64 {
            put_order(w, &format!("o{i}"), T0 + i);
        }
    });
    h.ports.api = Arc::new(Capped {
        inner: h.api.clone(),
        cap: 0,
        overcount: 0,
    });
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!((s.enqueued, s.deviations.short_pages), (0, 1), "{s:?}");
    assert!(h.sink.envelopes().is_empty());
    h.ports.api = h.api.clone();
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!((s.enqueued, s.deviations.short_pages), (5, 0), "{s:?}");
    assert_exactly_once(&h, ORDERS);
}

/// A `total` that counts a few more objects than Tradecloud ever serves makes the run ask
/// smaller pages at the end of the result set, and still catch up, every state once.
#[tokio::test]
async fn a_total_counting_more_than_is_served_still_catches_up() {
    for unsorted in [false, true] {
        let mut h = harness();
        h.api.with_world(|w| {
            w.unsorted = unsorted;
            for i in 0..250i64 {
                put_order(w, &format!("o{i:04}"), T0 + ((i * 7919) % 250));
            }
        });
        h.ports.api = Arc::new(Capped {
            inner: h.api.clone(),
            cap: 100,
            overcount: 3,
        });
        let runs = poll_until_caught_up(&h, &config()).await;
        assert_exactly_once(&h, ORDERS);
        let s = poll(&h, &config(), "again").await.unwrap();
        assert_eq!(s.stop, Some(StopReason::CaughtUp), "{runs:?}");
        assert!(s.pages <= 4, "unsorted {unsorted}: {s:?}");
        assert!(s.deviations.short_pages >= 1, "unsorted {unsorted}: {s:?}");
    }
}

/// A stream that stays quiet re-asks the state at its cursor on every run (the lookback), and
/// its dedupe record absorbs it. That record lived one TTL from the send: a run after that
/// (a stream quiet for 30 days, or a weekend with `TCRELAY_DEDUPE_TTL_DAYS=1`) sent the
/// unchanged state again, and again every TTL while the stream stayed quiet. A run that finds
/// it in the second half of the record's life renews the record.
#[tokio::test]
async fn a_quiet_stream_does_not_send_its_last_state_again_when_its_first_record_expires() {
    let h = harness();
    h.api.with_world(|w| put_order(w, "a", T0));
    poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(h.sink.envelopes().len(), 1);
    // Runs go on while nothing changes, past the TTL (30 days) of the record written by the
    // send, and past the TTL of the renewed one.
    let mut today = 0;
    for day in [20, 35, 50, 65] {
        h.dedupe
            .advance(Duration::from_secs((day - today) * 86_400));
        today = day;
        let s = poll(&h, &config(), &format!("day-{day}")).await.unwrap();
        assert_eq!((s.enqueued, s.duplicates), (0, 1), "day {day}: {s:?}");
    }
    assert_eq!(
        h.sink.envelopes().len(),
        1,
        "the unchanged state was sent again"
    );
}

/// A Tradecloud whose `n`-th page (1-based) takes `slow` to answer; the others answer at once.
struct SlowNthPage {
    inner: Arc<ScriptedPollApi>,
    calls: AtomicUsize,
    n: usize,
    slow: Duration,
}

#[async_trait]
impl PollApi for SlowNthPage {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            tokio::time::sleep(self.slow).await;
        }
        self.inner.fetch_page(request).await
    }
}

/// Puts `n` orders, one a millisecond from `T0`.
fn put_orders(h: &Harness, n: i64) {
    h.api.with_world(|w| {
        for i in 0..n {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
}

/// One invocation of `invocation` under `c`, ended at its deadline whatever the run is doing
/// (as Lambda ends it), then the next invocation five minutes later (the lease of the ended
/// one has run out), which must catch up with every state on the queue exactly once: nothing
/// the first sent is sent again. Returns the first run's summary.
async fn an_invocation_ended_at_its_deadline_then_the_next(
    h: &Harness,
    c: &PollConfig,
    invocation: Duration,
) -> StreamSummary {
    let deadline = tcrelay_poll::DeadlineAt(std::time::SystemTime::now() + invocation);
    let request = RunRequest::scheduled("run-1");
    let first = tokio::time::timeout(
        invocation,
        run_stream(&h.ports, c, ORDERS, &request, &deadline),
    )
    .await;
    h.cursors.advance(Duration::from_secs(300));
    let s = poll(h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_exactly_once(h, ORDERS);
    first
        .expect("the run stops before the invocation ends")
        .expect("the run succeeds")
}

/// A queue that takes each batch of up to ten messages (SQS's `SendMessageBatch`) at once but
/// answers those in `slow` (batches counted from 0 over every call) `delay` later (SQS slow to
/// answer, or an S3 put before it): what it took is on the queue even when the sender is ended
/// before the answer.
struct LateAnswers {
    inner: Arc<MemorySink>,
    delay: Duration,
    slow: std::ops::Range<usize>,
    batches: AtomicUsize,
}

#[async_trait]
impl EventSink for LateAnswers {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        for batch in envelopes.chunks(10) {
            self.inner.enqueue(batch).await?;
            if self
                .slow
                .contains(&self.batches.fetch_add(1, Ordering::SeqCst))
            {
                tokio::time::sleep(self.delay).await;
            }
        }
        Ok(())
    }
}

/// A harness whose queue answers each batch of ten `delay` after taking it.
fn harness_with_late_sends(delay: Duration) -> Harness {
    harness_with_sends_late_in(0..usize::MAX, delay)
}

/// A harness whose queue answers the batches of ten in `slow` (counted from 0) `delay` after
/// taking them, the others at once: a queue that turns slow for a while.
fn harness_with_sends_late_in(slow: std::ops::Range<usize>, delay: Duration) -> Harness {
    let memory = Arc::new(MemorySink::new());
    let sink = Arc::new(LateAnswers {
        inner: memory.clone(),
        delay,
        slow,
        batches: AtomicUsize::new(0),
    });
    harness_with_sink(sink, memory)
}

/// A page whose fetch took most of the margin leaves too little time for its sends: Lambda
/// would end the invocation mid-send, with the page's claims still in progress, and the next
/// run (taking over the claims of the earlier run of its stream) sent it again, each state
/// twice on a standard queue. Such a page is neither claimed nor sent; the next run sends it.
#[tokio::test]
async fn a_page_fetched_too_late_to_send_is_left_whole_to_the_next_run() {
    let mut h = harness_with_late_sends(Duration::from_millis(100));
    // Two pages; the second takes long to come.
    h.ports.api = Arc::new(SlowNthPage {
        inner: h.api.clone(),
        calls: AtomicUsize::new(0),
        n: 2,
        slow: Duration::from_millis(2400),
    });
    put_orders(&h, 150);
    // A margin of 2 s in an invocation of 4 s: the first page is sent by about 1 s, the second
    // is asked for with 3 s left (more than the margin) and comes with 0.6 s left at most, less
    // than the send reserve of 0.67 s; its sends would take 1 s.
    let c = PollConfig {
        time_margin: Duration::from_secs(2),
        ..config()
    };
    let s = an_invocation_ended_at_its_deadline_then_the_next(&h, &c, Duration::from_secs(4)).await;
    assert_eq!(
        (s.stop, s.pages, s.enqueued),
        (Some(StopReason::Deadline), 2, 100)
    );
}

/// A dedupe store whose `n`-th `claim_many` (1-based) takes `slow` to answer.
struct SlowNthClaims {
    inner: Arc<MemoryDedupe>,
    calls: AtomicUsize,
    n: usize,
    slow: Duration,
}

#[async_trait]
impl DedupeStore for SlowNthClaims {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&tcrelay_core::ports::Claimant>,
    ) -> Result<tcrelay_core::ports::ClaimOutcome, tcrelay_core::ports::StoreError> {
        self.inner.claim_as(key, full_state, by).await
    }
    async fn complete(
        &self,
        key: &str,
        token: &tcrelay_core::ports::ClaimToken,
    ) -> Result<tcrelay_core::ports::Completion, tcrelay_core::ports::StoreError> {
        self.inner.complete(key, token).await
    }
    async fn release(
        &self,
        key: &str,
        token: &tcrelay_core::ports::ClaimToken,
    ) -> Result<(), tcrelay_core::ports::StoreError> {
        self.inner.release(key, token).await
    }
    async fn lookup(
        &self,
        key: &str,
    ) -> Result<Option<tcrelay_core::ports::DedupeRecord>, tcrelay_core::ports::StoreError> {
        self.inner.lookup(key).await
    }
    async fn claim_many(
        &self,
        keys: &[(&str, bool)],
        by: Option<&tcrelay_core::ports::Claimant>,
    ) -> Vec<Result<tcrelay_core::ports::ClaimOutcome, tcrelay_core::ports::StoreError>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            tokio::time::sleep(self.slow).await;
        }
        self.inner.claim_many(keys, by).await
    }
}

/// As a page fetched too late: claims that took the time the sends need are given back and
/// the page is left whole to the next run, not sent by a run that Lambda ends mid-send (its
/// claims then taken over by the next run, which sent the page again).
#[tokio::test]
async fn a_page_whose_claims_took_the_time_to_send_is_left_whole_to_the_next_run() {
    let mut h = harness_with_late_sends(Duration::from_millis(100));
    h.ports.dedupe = Arc::new(SlowNthClaims {
        inner: h.dedupe.clone(),
        calls: AtomicUsize::new(0),
        n: 2,
        slow: Duration::from_millis(2400),
    });
    put_orders(&h, 150);
    // As in the test above, with the second page's claims taking the time its fetch took
    // there: they are answered with 0.6 s left at most, less than the send reserve of 0.67 s.
    let c = PollConfig {
        time_margin: Duration::from_secs(2),
        ..config()
    };
    let s = an_invocation_ended_at_its_deadline_then_the_next(&h, &c, Duration::from_secs(4)).await;
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::Deadline), 100));
    // Its claims were given back, not left in progress.
    let key = state_key(ObjectClass::Order, "o120", &ms_to_timestamp(T0 + 120));
    assert_eq!(
        h.dedupe.lookup(&key).await.unwrap().map(|r| r.state),
        Some(RecordState::Completed),
        "sent by the next run"
    );
}

/// A Tradecloud that cannot serve pages of more than `most` objects in time: larger ones end
/// in a timeout (the client's, or its gateway's 504), every time.
struct SlowAbove {
    inner: Arc<ScriptedPollApi>,
    most: u32,
    gateway: bool,
}

#[async_trait]
impl PollApi for SlowAbove {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        if request.limit > self.most {
            return Err(if self.gateway {
                ApiError::Upstream { status: 504 }
            } else {
                ApiError::Timeout
            });
        }
        self.inner.fetch_page(request).await
    }
}

/// A page Tradecloud cannot serve in time (large orders, a slow query) timed out on every run
/// with the same page size: the stream stalled, every run failing at the same page. Smaller
/// pages are asked for, as after a page too large to read.
#[tokio::test]
async fn a_page_tradecloud_cannot_serve_in_time_is_asked_for_in_smaller_pages() {
    for gateway in [false, true] {
        let mut h = harness();
        h.ports.api = Arc::new(SlowAbove {
            inner: h.api.clone(),
            most: 30,
            gateway,
        });
        h.api.with_world(|w| {
            for i in 0..70 {
                put_order(w, &format!("o{i:03}"), T0 + i);
            }
        });
        let mut stops = Vec::new();
        for i in 0..4 {
            let stop = poll(&h, &config(), &format!("run-{i}"))
                .await
                .map(|s| s.stop);
            let done = matches!(stop, Ok(Some(StopReason::CaughtUp)));
            stops.push(stop.map_err(|f| f.error.to_string()));
            if done {
                break;
            }
        }
        assert!(
            matches!(stops.last(), Some(Ok(Some(StopReason::CaughtUp)))),
            "gateway {gateway}: {stops:?}"
        );
        assert_exactly_once(&h, ORDERS);
        // 100 and 50 timed out, 25 is served, in the first run.
        assert_eq!(stops.len(), 1, "{stops:?}");
        let limits: Vec<u32> = h.api.requests().iter().map(|r| r.limit).collect();
        assert!(limits.iter().all(|&l| l == 25), "{limits:?}");
    }
}

/// A Tradecloud that answers every request with a timeout while `down` (an outage whose
/// gateway times out rather than refusing).
struct Outage {
    inner: Arc<ScriptedPollApi>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl PollApi for Outage {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(ApiError::Timeout);
        }
        self.inner.fetch_page(request).await
    }
}

/// After an outage that timed out at every size, the runs went on with pages of two until one
/// caught up: the backlog the outage left was asked for two objects a request (one a
/// request, paging by time, as the last timestamp is asked again), a hundred times the calls,
/// and a backlog larger than a run's page bound took many runs. Pages served grow back,
/// doubling, to the configured size.
#[tokio::test]
async fn pages_grow_back_to_the_configured_size_once_tradecloud_serves_them_again() {
    let mut h = harness();
    let outage = Arc::new(Outage {
        inner: h.api.clone(),
        down: false.into(),
    });
    h.ports.api = outage.clone();
    h.api.with_world(|w| {
        for i in 0..5 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    let s = poll(&h, &config(), "run-0").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    // The outage: the run halves its pages down to two and fails; the size is kept.
    outage.down.store(true, Ordering::SeqCst);
    h.api.with_world(|w| {
        for i in 5..600 {
            put_order(w, &format!("o{i:03}"), T0 + i);
        }
    });
    poll(&h, &config(), "run-1").await.unwrap_err();
    outage.down.store(false, Ordering::SeqCst);
    let before = h.api.requests().len();
    let s = poll(&h, &config(), "run-2").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert_exactly_once(&h, ORDERS);
    let limits: Vec<u32> = h.api.requests()[before..].iter().map(|r| r.limit).collect();
    assert_eq!(limits.first(), Some(&2), "{limits:?}");
    assert!(limits.contains(&100), "never grew back: {limits:?}");
    // A few pages at each size on the way up, then pages of a hundred.
    assert!(limits.len() < 50, "{} requests: {limits:?}", limits.len());
    assert!(limits.windows(2).all(|w| w[1] >= w[0]), "{limits:?}");
}

/// A Tradecloud whose pages take `busy` of the thread to read (a page of large orders parsed
/// on the poller's single-threaded runtime, as the Lambda runs it): the heartbeat's task gets
/// no turn meanwhile.
struct BusyPages {
    inner: Arc<ScriptedPollApi>,
    busy: Duration,
}

#[async_trait]
impl PollApi for BusyPages {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        let page = self.inner.fetch_page(request).await;
        std::thread::sleep(self.busy);
        page
    }
}

/// With the shortest lease (2 s, renewed every 0.67 s), a page that keeps the thread busy for
/// 1.5 s left the heartbeat no turn, and the run found less than a beat of its lease left
/// before the page's claims: it stopped `lease-unsure` (no error, no alarm) before sending
/// anything, and so did every run after it at the same page: the stream stalled. The lease is
/// still the run's (nobody may take it before it runs out, and only its owner renews it): the
/// run renews it there and then, and goes on.
#[tokio::test]
async fn a_page_that_keeps_the_thread_busy_does_not_stop_a_run_with_a_short_lease() {
    let mut h = harness();
    h.ports.api = Arc::new(BusyPages {
        inner: h.api.clone(),
        busy: Duration::from_millis(1500),
    });
    put_orders(&h, 150);
    let c = PollConfig {
        lease: Duration::from_secs(2),
        ..config()
    };
    for run in ["run-1", "run-2"] {
        let s = poll(&h, &c, run).await.unwrap();
        assert_eq!(s.stop, Some(StopReason::CaughtUp), "{run}: {s:?}");
    }
    assert_exactly_once(&h, ORDERS);
}

/// The time a page's sends took is what the next page's sends are given at least: a queue
/// slow this invocation (SQS and S3 calls answering in seconds, up to their 8 s timeouts)
/// took longer than the send reserve, and a page sent with less time left than that was cut
/// off by Lambda mid-send, its claims taken over by the next run, which sent it again.
#[tokio::test]
async fn a_page_is_not_sent_with_less_time_left_than_the_last_pages_sends_took() {
    let h = harness_with_late_sends(Duration::from_millis(200));
    put_orders(&h, 250);
    // Pages sent by 2 s and 4 s; the third is asked for with 1.5 s left, more than the margin
    // of 1 s and its reserve of 0.33 s, less than the 2 s the sends took.
    let c = PollConfig {
        time_margin: Duration::from_secs(1),
        ..config()
    };
    let s = an_invocation_ended_at_its_deadline_then_the_next(&h, &c, Duration::from_millis(5500))
        .await;
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::Deadline), 199));
}

/// A queue that turns slow in the middle of a page (SQS and S3 answering in seconds, up to
/// their 8 s timeouts), on the run's first page (no send measured yet) or on a later one after
/// quick pages: the page's sends, one call for the whole page, outlasted the invocation;
/// Lambda ended the run mid-send with the page's claims in progress, and the next run took
/// them over and sent the whole page again, each state already sent twice on a standard
/// queue. A page is sent in chunks of one SQS batch, each only with time left for it (as long
/// as the slowest before it) and the send reserve: the run stops `deadline` between two, the
/// claims of what was sent completed and the others released, and the next run sends the rest.
#[tokio::test]
async fn a_queue_that_turns_slow_mid_page_does_not_get_the_page_twice() {
    // (orders, batches answered late): the first page's fourth to eighth; the second page's
    // second to sixth (its first batch is the eleventh, the first page's ten quick).
    for (orders, slow) in [(100, 3..8), (150, 11..16)] {
        let h = harness_with_sends_late_in(slow.clone(), Duration::from_millis(1500));
        put_orders(&h, orders);
        // A margin of 3 s (a send reserve of 1 s) in an invocation of 5 s: the page is sent
        // with about 5 s left, and its late batches, 1.5 s each, would take 6 s or more.
        let c = PollConfig {
            time_margin: Duration::from_secs(3),
            ..config()
        };
        let s =
            an_invocation_ended_at_its_deadline_then_the_next(&h, &c, Duration::from_secs(5)).await;
        assert_eq!(s.stop, Some(StopReason::Deadline), "{slow:?}: {s:?}");
        // Part of the page went, in whole batches.
        let first_page = if orders == 100 { 0 } else { 100 };
        let of_page = s.enqueued - first_page;
        assert!(
            (10..=90).contains(&of_page) && of_page % 10 == 0,
            "{slow:?}: {s:?}"
        );
    }
}

/// A `lastUpdatedAt` far ahead of this host's clock (a test order dated 3000, a clock or a
/// time zone gone wrong at Tradecloud) is no place to move the cursor to: every later run
/// asked for objects updated after the year 3000, found none and reported itself caught up;
/// the cursor-age gauge went negative, so no alarm fired. Such an item is relayed as sent and
/// left out of the paging, as an item without a readable time is; later changes still come.
#[tokio::test]
async fn an_item_dated_far_ahead_of_the_clock_does_not_move_the_cursor_past_later_changes() {
    let h = harness();
    // 3000-01-01T00:00:00Z.
    let far = 32_503_680_000_000;
    h.api.with_world(|w| {
        put_order(w, "a", T0);
        put_order(w, "future", far);
        put_order(w, "b", T0 + 1);
    });
    let s = poll(&h, &config(), "run-1").await.unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp), "{s:?}");
    assert_eq!(s.deviations.unplaceable_items, 1, "{s:?}");
    assert_eq!(h.cursors.value("orders"), Some(ms_to_timestamp(T0 + 1)));
    h.api.with_world(|w| put_order(w, "c", T0 + 2));
    poll(&h, &config(), "run-2").await.unwrap();
    let mut sent: Vec<(String, Option<String>)> = h
        .sink
        .envelopes()
        .into_iter()
        .map(|e| (e.id, e.last_updated_at))
        .collect();
    sent.sort();
    let want = |id: &str, ms: i64| (id.to_owned(), Some(ms_to_timestamp(ms)));
    assert_eq!(
        sent,
        [
            want("a", T0),
            want("b", T0 + 1),
            want("c", T0 + 2),
            want("future", far)
        ],
        "each state once, the change after the first run too"
    );
}
