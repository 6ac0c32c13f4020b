//! Acceptance tests over the real AWS adapters against moto's server (DynamoDB cursor with
//! lease, DynamoDB dedupe, SQS sink) and the simulator over HTTP. Needs `TCRELAY_TEST_MOTO_URL`
//! (set by scripts/test.sh); fails loudly without it.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use tcrelay_aws::testing::{MotoOptions, MotoResources};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore, SqsSink, SqsSinkConfig};
use tcrelay_core::envelope::{Envelope, Source};
use tcrelay_core::ports::{CursorStore, EventSink, SinkError};
use tcrelay_core::{EventFilter, Outcome, Relay};
use tcrelay_poll::{
    NoDeadline, PollError, PollPorts, PollStream, RunRequest, StopReason, run_stream,
};
use tradecloud_model::ObjectKind;

const ORDERS: PollStream = PollStream::Orders;

/// This test's own queue, table and bucket in moto.
async fn aws() -> MotoResources {
    MotoResources::create("poller-moto", MotoOptions::from_env()).await
}

fn dedupe(aws: &MotoResources) -> DynamoDedupeStore {
    DynamoDedupeStore::new(
        aws.clients.dynamodb.clone(),
        DedupeConfig::new(aws.table.clone()),
    )
}

fn cursors(aws: &MotoResources) -> DynamoCursorStore {
    DynamoCursorStore::new(aws.clients.dynamodb.clone(), aws.table.clone())
}

fn sqs_sink(aws: &MotoResources) -> SqsSink {
    SqsSink::new(
        aws.clients.sqs.clone(),
        SqsSinkConfig::new(aws.queue_url.clone()),
        None,
    )
}

/// Receives (and deletes) every message until the queue stays empty; the envelopes.
async fn drain(aws: &MotoResources) -> Vec<Envelope> {
    tcrelay_aws::testing::drain(&aws.clients.sqs, &aws.queue_url, 2, Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|m| serde_json::from_str(m.body().expect("body")).expect("envelope JSON"))
        .collect()
}

fn states(envelopes: &[Envelope]) -> Vec<State> {
    envelopes
        .iter()
        .map(|e| {
            (
                e.kind.object_class().as_str().to_owned(),
                e.id.clone(),
                e.last_updated_at.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Passes the first half of its `fail_on`-th batch to the queue and reports the rest failed.
struct HalfFailing {
    inner: SqsSink,
    calls: AtomicUsize,
    fail_on: usize,
}

#[async_trait]
impl EventSink for HalfFailing {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call != self.fail_on {
            return self.inner.enqueue(envelopes).await;
        }
        let half = envelopes.len() / 2;
        self.inner.enqueue(&envelopes[..half]).await?;
        Err(SinkError {
            failed: (half..envelopes.len()).collect(),
            reason: "injected queue failure".into(),
        })
    }
}

#[tokio::test]
async fn a_sink_failure_after_page_k_keeps_the_dynamodb_cursor_at_page_k_minus_one() {
    let aws = aws().await;
    let sim = simulator(world(21, 230, 0)).await;
    let cursor_store = Arc::new(cursors(&aws));
    let ports = PollPorts {
        api: Arc::new(api(&sim, 1_000)),
        cursors: cursor_store.clone(),
        dedupe: Arc::new(dedupe(&aws)),
        sink: Arc::new(HalfFailing {
            inner: sqs_sink(&aws),
            calls: AtomicUsize::new(0),
            fail_on: 2,
        }),
    };
    let c = config(&[ORDERS]);
    let failure = run_stream(
        &ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("r1"),
        &NoDeadline,
    )
    .await
    .unwrap_err();
    assert!(matches!(failure.error, PollError::Sink(_)), "{failure}");
    // Page 1 was checkpointed, page 2 not.
    let stored = cursor_store.read("orders").await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.value, failure.summary.cursor_after);
    assert!(stored.value < newest(&sim, "order"));
    // The next run (a fresh lease: the failed run released its own) delivers the rest.
    let s = run_stream(
        &ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("r2"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    let envelopes = drain(&aws).await;
    let states = states(&envelopes);
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    assert_eq!(envelopes.len(), 230);
    assert!(
        envelopes
            .iter()
            .all(|e| e.source == Source::Poll && e.kind == ObjectKind::Order)
    );
    let stored = cursor_store.read("orders").await.unwrap().unwrap();
    assert_eq!(stored.value, newest(&sim, "order"));
    sim.shutdown().await;
}

#[tokio::test]
async fn two_runs_started_together_share_one_dynamodb_lease() {
    let aws = aws().await;
    let sim = simulator(world(22, 150, 0)).await;
    let cursor_store = Arc::new(cursors(&aws));
    let ports = PollPorts {
        api: Arc::new(api(&sim, 1_000)),
        cursors: cursor_store.clone(),
        dedupe: Arc::new(dedupe(&aws)),
        sink: Arc::new(sqs_sink(&aws)),
    };
    let c = config(&[ORDERS]);
    let (ra, rb) = (
        RunRequest::scheduled("run-a"),
        RunRequest::scheduled("run-b"),
    );
    let (a, b) = tokio::join!(
        run_stream(&ports, &c, ORDERS, &ra, &NoDeadline),
        run_stream(&ports, &c, ORDERS, &rb, &NoDeadline),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // Either one backed off while the other ran, or the second started after the first had
    // finished and found nothing new; never two writers at once.
    let loser = if a.stop == Some(StopReason::LeaseHeld) {
        &a
    } else {
        &b
    };
    if a.stop == Some(StopReason::LeaseHeld) || b.stop == Some(StopReason::LeaseHeld) {
        assert_eq!((loser.pages, loser.enqueued), (0, 0));
    } else {
        assert_eq!(a.enqueued + b.enqueued, 150);
    }
    let envelopes = drain(&aws).await;
    let states = states(&envelopes);
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    let stored = cursor_store.read("orders").await.unwrap().unwrap();
    assert_eq!(stored.value, newest(&sim, "order"));
    // A lease held by a live run is refused to others: the store itself, directly.
    assert!(
        cursor_store
            .acquire("orders", "x", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let s = run_stream(
        &ports,
        &c,
        ORDERS,
        &RunRequest::scheduled("run-c"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(s.stop, Some(StopReason::LeaseHeld));
    assert_eq!(
        cursor_store.read("orders").await.unwrap().unwrap().version,
        stored.version
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_state_relayed_by_a_webhook_get_is_a_duplicate_for_the_poll() {
    let aws = aws().await;
    let sim = simulator(world(23, 12, 0)).await;
    let dedupe = Arc::new(dedupe(&aws));
    let sink = Arc::new(sqs_sink(&aws));
    // The webhook's GET path relays one order's current state first.
    let id = sim.objects()[0].id.clone();
    let relay = Relay::new(sink.clone(), dedupe.clone(), EventFilter::allow_all());
    let outcome = relay
        .relay_object(
            ObjectKind::Order,
            &id,
            sim.order(&id).unwrap(),
            Source::WebhookGet,
            &tcrelay_core::deadline::Deadline::after(std::time::Duration::from_secs(25)),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Enqueued { .. }));
    let ports = PollPorts {
        api: Arc::new(api(&sim, 1_000)),
        cursors: Arc::new(cursors(&aws)),
        dedupe,
        sink,
    };
    let s = run_stream(
        &ports,
        &config(&[ORDERS]),
        ORDERS,
        &RunRequest::scheduled("r1"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!((s.enqueued, s.duplicates), (11, 1));
    let envelopes = drain(&aws).await;
    assert_no_state_twice(&states(&envelopes));
    assert_eq!(envelopes.len(), 12);
    sim.shutdown().await;
}
