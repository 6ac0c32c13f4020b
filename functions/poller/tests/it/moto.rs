//! Acceptance tests over the real AWS adapters against moto's server (DynamoDB cursor with
//! lease, DynamoDB dedupe, SQS sink) and the simulator over HTTP. Needs `TCRELAY_TEST_MOTO_URL`
//! (set by scripts/test.sh); fails loudly without it.

use crate::common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use tcrelay_aws::testing::{MotoOptions, MotoResources};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore, SqsSink, SqsSinkConfig};
use tcrelay_core::envelope::{Envelope, Source};
use tcrelay_core::ports::{ApiError, Cursor, CursorStore, EventSink, SinkError, StoreError};
use tcrelay_core::{EventFilter, Outcome, Relay};
use tcrelay_poll::{
    NoDeadline, PollConfig, PollError, PollPorts, PollStream, RunRequest, StopReason,
    StreamSummary, run_stream,
};
use tradecloud_model::{ObjectKind, timestamp};
use tradecloud_sim::{Endpoint, Fault, FaultRule, Simulator};

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

/// The ports one Lambda invocation builds: its own Tradecloud client and adapters, over this
/// test's table and queue. Runs meant as separate invocations each get their own.
fn invocation(aws: &MotoResources, sim: &Simulator) -> PollPorts {
    invocation_with(aws, sim, Arc::new(cursors(aws)))
}

/// [`invocation`] with the given cursor store.
fn invocation_with(
    aws: &MotoResources,
    sim: &Simulator,
    cursors: Arc<dyn CursorStore>,
) -> PollPorts {
    PollPorts {
        api: Arc::new(api(sim, 1_000)),
        cursors,
        dedupe: Arc::new(dedupe(aws)),
        sink: Arc::new(sqs_sink(aws)),
    }
}

/// The owner of `stream`'s cursor lease as the item in DynamoDB records it; `None` when no run
/// holds it (released) or there is no item.
async fn lease_owner(aws: &MotoResources, stream: &str) -> Option<String> {
    aws.clients
        .dynamodb
        .get_item()
        .table_name(&aws.table)
        .key("pk", AttributeValue::S(format!("cursor#{stream}")))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem of the cursor")
        .item?
        .get("leaseOwner")
        .map(|v| v.as_s().expect("leaseOwner is a string").clone())
}

/// Whether `a` is no later than `b`, both `lastUpdatedAt` strings.
fn not_after(a: &str, b: &str) -> bool {
    timestamp::parse(a).unwrap() <= timestamp::parse(b).unwrap()
}

/// A lease or checkpoint call on the cursor store, as a [`Journaled`] store saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LeaseEvent {
    /// `acquire` gave `owner` the lease, the cursor at `version`; journaled once the store
    /// answered, so after the lease was taken in DynamoDB.
    Acquired { owner: String, version: u64 },
    /// `acquire` refused `owner`: another run held the lease.
    Refused { owner: String },
    /// The store took `owner`'s checkpoint, the cursor now at `version`; journaled once the
    /// store answered.
    Checkpointed { owner: String, version: u64 },
    /// `owner` gives the lease up; journaled before the store is asked, so before the lease is
    /// free in DynamoDB.
    Releasing { owner: String },
}

/// A DynamoDB cursor store that journals leases and checkpoints. Each run gets its own store
/// (each invocation builds its own adapters); the runs share the journal.
struct Journaled {
    inner: DynamoCursorStore,
    journal: Arc<Mutex<Vec<LeaseEvent>>>,
}

impl Journaled {
    fn note(&self, event: LeaseEvent) {
        self.journal.lock().unwrap().push(event);
    }
}

#[async_trait]
impl CursorStore for Journaled {
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<Cursor>, StoreError> {
        let cursor = self.inner.acquire(stream, owner, lease_for).await?;
        let owner = owner.to_owned();
        self.note(match &cursor {
            Some(c) => LeaseEvent::Acquired {
                owner,
                version: c.version,
            },
            None => LeaseEvent::Refused { owner },
        });
        Ok(cursor)
    }

    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<Cursor, StoreError> {
        let cursor = self
            .inner
            .checkpoint(stream, owner, expected_version, value, window_start, walk)
            .await?;
        self.note(LeaseEvent::Checkpointed {
            owner: owner.to_owned(),
            version: cursor.version,
        });
        Ok(cursor)
    }

    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        self.inner.renew(stream, owner, lease_for).await
    }

    async fn release(&self, stream: &str, owner: &str) -> Result<(), StoreError> {
        self.note(LeaseEvent::Releasing {
            owner: owner.to_owned(),
        });
        self.inner.release(stream, owner).await
    }

    async fn read(&self, stream: &str) -> Result<Option<Cursor>, StoreError> {
        self.inner.read(stream).await
    }

    async fn set(&self, stream: &str, value: &str) -> Result<Cursor, StoreError> {
        self.inner.set(stream, value).await
    }
}

/// Never two writers at once, from a journal of one stream's runs on a new table: each run's
/// window, from its lease taken to its lease given up, closes before the next one opens; every
/// checkpoint is its window owner's and moves the version by exactly one; each run starts from
/// the version the last checkpoint left. The journal's windows lie inside the real ones in
/// DynamoDB (taken before journaled, given up after), so windows interleaving in the journal
/// did in DynamoDB too.
fn assert_one_writer_at_a_time(journal: &[LeaseEvent]) {
    let mut holder: Option<&str> = None;
    let mut version = 0;
    for (i, event) in journal.iter().enumerate() {
        match event {
            LeaseEvent::Acquired { owner, version: v } => {
                assert!(
                    holder.is_none(),
                    "{owner} took the lease while {holder:?} held it (event {i}): {journal:#?}"
                );
                assert_eq!(
                    *v, version,
                    "{owner} started from another version than the last checkpoint's: {journal:#?}"
                );
                holder = Some(owner);
            }
            LeaseEvent::Checkpointed { owner, version: v } => {
                assert_eq!(
                    holder,
                    Some(owner.as_str()),
                    "checkpoint outside its owner's window (event {i}): {journal:#?}"
                );
                assert_eq!(*v, version + 1, "event {i}: {journal:#?}");
                version = *v;
            }
            LeaseEvent::Releasing { owner } => {
                assert_eq!(
                    holder,
                    Some(owner.as_str()),
                    "release outside its owner's window (event {i}): {journal:#?}"
                );
                holder = None;
            }
            LeaseEvent::Refused { .. } => {}
        }
    }
    assert_eq!(holder, None, "a lease never given up: {journal:#?}");
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

// Protects the checkpoint after a partial queue failure over DynamoDB and SQS: the cursor stays
// at the last page whose envelopes all got onto the queue; the next run delivers the rest once.
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

// Protects the DynamoDB lease: two runs of one stream started together never write at once
// (one backs off, or the second runs after the first gave the lease up), everything is relayed
// once, and a live lease held by someone else is refused.
#[tokio::test]
async fn two_runs_started_together_share_one_dynamodb_lease() {
    let aws = aws().await;
    let sim = simulator(world(22, 150, 0)).await;
    let cursor_store = Arc::new(cursors(&aws));
    let journal = Arc::new(Mutex::new(Vec::new()));
    let journaled = || -> Arc<dyn CursorStore> {
        Arc::new(Journaled {
            inner: cursors(&aws),
            journal: journal.clone(),
        })
    };
    let (pa, pb) = (
        invocation_with(&aws, &sim, journaled()),
        invocation_with(&aws, &sim, journaled()),
    );
    let c = config(&[ORDERS]);
    let (ra, rb) = (
        RunRequest::scheduled("run-a"),
        RunRequest::scheduled("run-b"),
    );
    let (a, b) = tokio::join!(
        run_stream(&pa, &c, ORDERS, &ra, &NoDeadline),
        run_stream(&pb, &c, ORDERS, &rb, &NoDeadline),
    );
    // First, so that two writers at once show as such, not as whatever error they led to.
    let journal = journal.lock().unwrap().clone();
    assert_one_writer_at_a_time(&journal);
    let (a, b) = (a.unwrap(), b.unwrap());
    let acquired: Vec<&str> = journal
        .iter()
        .filter_map(|e| match e {
            LeaseEvent::Acquired { owner, .. } => Some(owner.as_str()),
            _ => None,
        })
        .collect();
    let held = |s: &StreamSummary| s.stop == Some(StopReason::LeaseHeld);
    let (first, second) = match (held(&a), held(&b)) {
        (true, true) => panic!("both runs backed off: {journal:#?}"),
        (false, false) => {
            // The second started after the first had given the lease up: the journal shows the
            // windows one after the other, and the second read the cursor the first left and
            // found nothing new (dedupe would hide two overlapping runs in the total count,
            // not in this split).
            assert_eq!(acquired.len(), 2, "{journal:#?}");
            let (first, second) = if acquired[0] == "run-a" {
                (&a, &b)
            } else {
                (&b, &a)
            };
            assert_eq!(second.cursor_before, first.cursor_after);
            assert_eq!(second.stop, Some(StopReason::CaughtUp));
            (first, Some(second))
        }
        (a_held, _) => {
            // One backed off while the other held the lease: it was refused, never held the
            // lease, and did nothing.
            let (winner, loser, loser_owner) = if a_held {
                (&b, &a, "run-a")
            } else {
                (&a, &b, "run-b")
            };
            assert_eq!((loser.pages, loser.enqueued), (0, 0));
            assert!(
                journal.contains(&LeaseEvent::Refused {
                    owner: loser_owner.into()
                }),
                "{journal:#?}"
            );
            assert_eq!(acquired.len(), 1, "{journal:#?}");
            (winner, None)
        }
    };
    assert_eq!(first.stop, Some(StopReason::CaughtUp));
    assert_eq!(first.enqueued, 150);
    assert_eq!(second.map_or(0, |s| s.enqueued), 0);
    let envelopes = drain(&aws).await;
    let states = states(&envelopes);
    assert_no_state_twice(&states);
    assert_current_states_enqueued(&sim, "order", &states);
    assert_eq!(envelopes.len(), 150);
    let stored = cursor_store.read("orders").await.unwrap().unwrap();
    assert_eq!(stored.value, newest(&sim, "order"));
    // Every write of the cursor went through the journal: it ends at the stored version.
    assert_eq!(
        journal.iter().rev().find_map(|e| match e {
            LeaseEvent::Checkpointed { version, .. } => Some(*version),
            _ => None,
        }),
        Some(stored.version)
    );
    // A lease held by a live run is refused to others: the store itself, directly.
    assert!(
        cursor_store
            .acquire("orders", "x", Duration::from_secs(60))
            .await
            .unwrap()
            .is_some()
    );
    let s = run_stream(
        &invocation(&aws, &sim),
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

// Protects the dedupe shared with the webhook in DynamoDB: a state the webhook relayed is a
// duplicate for the poll, not sent twice.
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

// Protects the checkpoint at the time margin over DynamoDB and SQS: a run that reaches its
// deadline stops with everything up to its cursor on the queue and the cursor in DynamoDB,
// gives the lease up, and the next invocation (new adapters, same table) starts from that
// cursor and delivers the rest; every state exactly once on the queue.
#[tokio::test]
async fn a_deadline_stops_early_with_the_dynamodb_cursor_saved_and_the_next_invocation_continues() {
    let aws = aws().await;
    let sim = simulator(world(24, 450, 0)).await;
    // A lease that outlasts a slow moto under the whole suite's load: a renewal held up for
    // more than two thirds of the default 6 s lease stops the run early (the lease counts as
    // lost), which this test of the deadline would read as a failure.
    let c = PollConfig {
        lease: std::time::Duration::from_secs(60),
        ..config(&[ORDERS])
    };
    let newest_order = newest(&sim, "order").unwrap();
    let first = run_stream(
        &invocation(&aws, &sim),
        &c,
        ORDERS,
        &RunRequest::scheduled("r1"),
        &PagesOfTime(AtomicUsize::new(2)),
    )
    .await
    .unwrap();
    assert_eq!(first.stop, Some(StopReason::Deadline));
    assert_eq!(first.pages, 2);
    let stored = cursors(&aws)
        .read("orders")
        .await
        .unwrap()
        .expect("cursor item");
    let saved = stored.value.clone().expect("cursor saved");
    assert_eq!(first.cursor_after.as_deref(), Some(saved.as_str()));
    assert!(!not_after(&newest_order, &saved), "{saved} is not early");
    // One checkpoint: page 1's move, stored once page 2's `total` allowed it. Page 2's move
    // waits for page 3's `total`, which the deadline left unasked; it is not kept beside the
    // cursor, as this run moved the cursor: the next invocation starts from the lookback
    // before it (docs/polling.md, "The lookback and kept progress").
    assert_eq!(stored.version, 1);
    assert_eq!(stored.walk, None);
    assert_eq!(lease_owner(&aws, "orders").await, None, "lease kept");
    // On the queue: exactly the first run's states, every state up to the cursor among them
    // (the cursor covers only enqueued objects). Pages are relayed whole, so the second page's
    // states (page 1's last timestamp among them, asked for again) are there too, after the
    // cursor: no more than a page.
    let before = drain(&aws).await;
    let before_states = states(&before);
    assert_eq!(before.len() as u64, first.enqueued);
    assert_no_state_twice(&before_states);
    let beyond: Vec<&State> = before_states
        .iter()
        .filter(|(_, _, at)| !not_after(at, &saved))
        .collect();
    assert!(
        beyond.len() <= c.page_limit as usize,
        "more states than a page after the cursor {saved}: {}",
        beyond.len()
    );
    let sent: std::collections::HashSet<&State> = before_states.iter().collect();
    let uncovered: Vec<_> = sim
        .objects()
        .into_iter()
        .filter(|o| o.class == "order" && not_after(&o.last_updated_at, &saved))
        .filter(|o| !sent.contains(&(o.class.clone(), o.id.clone(), o.last_updated_at.clone())))
        .map(|o| o.id)
        .collect();
    assert!(
        uncovered.is_empty(),
        "behind the cursor, never enqueued: {uncovered:?}"
    );

    let second = run_stream(
        &invocation(&aws, &sim),
        &c,
        ORDERS,
        &RunRequest::scheduled("r2"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(second.stop, Some(StopReason::CaughtUp));
    assert_eq!(second.cursor_before.as_deref(), Some(saved.as_str()));
    // It asked again from just before the cursor: the states at the cursor came back and the
    // DynamoDB dedupe of the first invocation's claims held them back.
    assert!(second.duplicates >= 1, "{second:?}");
    assert_eq!(first.enqueued + second.enqueued, 450);
    let after = drain(&aws).await;
    assert_eq!(after.len() as u64, second.enqueued);
    let all = states(&[before, after].concat());
    assert_no_state_twice(&all);
    assert_current_states_enqueued(&sim, "order", &all);
    assert_eq!(all.len(), 450);
    let stored_after = cursors(&aws).read("orders").await.unwrap().unwrap();
    assert_eq!(stored_after.value.as_deref(), Some(newest_order.as_str()));
    assert!(stored_after.version > stored.version);
    sim.shutdown().await;
}

// Protects the cursor against Tradecloud failing over DynamoDB and SQS: persistent 502s, and
// then a Tradecloud that cannot be reached, fail the run with the DynamoDB cursor (value and
// version) unchanged, nothing on the queue and the lease given up; once Tradecloud recovers,
// the next invocation delivers every state that changed meanwhile, everything exactly once.
#[tokio::test]
async fn persistent_failures_fail_the_run_with_the_dynamodb_cursor_unchanged() {
    let aws = aws().await;
    let sim = simulator(world(26, 20, 0)).await;
    let c = config(&[ORDERS]);
    let s = run_stream(
        &invocation(&aws, &sim),
        &c,
        ORDERS,
        &RunRequest::scheduled("r1"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!((s.stop, s.enqueued), (Some(StopReason::CaughtUp), 20));
    let before = cursors(&aws).read("orders").await.unwrap().unwrap();
    assert_eq!(before.value, newest(&sim, "order"));
    let delivered = drain(&aws).await;
    assert_eq!(delivered.len(), 20);
    sim.advance(20).unwrap();
    assert_ne!(newest(&sim, "order"), before.value, "nothing changed");

    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::OrderPoll],
        fault: Fault::Status { status: 502 },
        rate: 1.0,
        count: None,
    });
    let failure = run_stream(
        &invocation(&aws, &sim),
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
    assert_eq!(failure.summary.cursor_after, before.value);
    assert_eq!(failure.summary.enqueued, 0);
    assert_eq!(
        cursors(&aws).read("orders").await.unwrap(),
        Some(before.clone())
    );
    assert_eq!(lease_owner(&aws, "orders").await, None, "lease kept");

    // A Tradecloud that cannot be reached at all: nothing listens on the address.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let gone = tcrelay_tradecloud::ClientPollApi(
        tradecloud_client::TradecloudClient::new(tradecloud_client::ClientConfig {
            retry_budget: Duration::from_millis(500),
            ..tradecloud_client::ClientConfig::new(
                format!("http://{closed}/v2"),
                tradecloud_client::Credentials::new("u", "p"),
            )
        })
        .unwrap(),
    );
    let ports = PollPorts {
        api: Arc::new(gone),
        ..invocation(&aws, &sim)
    };
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
    assert_eq!(failure.summary.cursor_after, before.value);
    assert_eq!(
        cursors(&aws).read("orders").await.unwrap(),
        Some(before.clone())
    );
    assert_eq!(lease_owner(&aws, "orders").await, None, "lease kept");
    // Neither failed run sent anything.
    assert!(drain(&aws).await.is_empty());

    // Recovered: the next invocation starts from the unchanged cursor and delivers the rest.
    sim.clear_faults();
    let s = run_stream(
        &invocation(&aws, &sim),
        &c,
        ORDERS,
        &RunRequest::scheduled("r4"),
        &NoDeadline,
    )
    .await
    .unwrap();
    assert_eq!(s.stop, Some(StopReason::CaughtUp));
    assert_eq!(s.cursor_before, before.value);
    let recovered = drain(&aws).await;
    assert!(!recovered.is_empty());
    assert_eq!(recovered.len() as u64, s.enqueued);
    let all = states(&[delivered, recovered].concat());
    assert_no_state_twice(&all);
    assert_current_states_enqueued(&sim, "order", &all);
    let stored = cursors(&aws).read("orders").await.unwrap().unwrap();
    assert_eq!(stored.value, newest(&sim, "order"));
    assert!(stored.version > before.version);
    sim.shutdown().await;
}
