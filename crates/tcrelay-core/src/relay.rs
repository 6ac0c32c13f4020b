//! Relaying one event or object: filter, dedupe, enqueue, complete. No HTTP here; the webhook
//! router (and later the local runner) call this and map [`RelayError`] to their answers.
//!
//! The order of the steps is what makes "exactly once" hold:
//! 1. claim the key (in progress), so a concurrent retry of the same message waits (503);
//! 2. enqueue;
//! 3. complete the key, so later retries are duplicates.
//!
//! A failure before or during enqueue releases the claim, so Tradecloud's retry goes through. A
//! failure to complete *after* the enqueue is not an error of the request: the message is on the
//! queue, so we still acknowledge it; the claim then simply expires (logged as a warning).
//!
//! Each relay holds its object's [`ObjectPass`] from before the first claim until its claims are
//! settled, even when that is after the answer (a send or a completion that outlived its
//! request): the next message of the same object waits for it, so states of one object reach
//! the queue in the order they were relayed and a retry finds the late one completed.
//!
//! Every claim carries a [`ClaimToken`]: completing or releasing goes by it, so a request whose
//! claim expired mid-way (and was taken over by a retry) neither removes the retry's claim nor
//! goes unnoticed. Such a take-over is logged as an error, since the ERP may then get the
//! message twice: the in-progress expiry is shorter than a request can take.

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument;
#[cfg(test)]
use tradecloud_model::ObjectClass;
use tradecloud_model::ObjectKind;

use crate::deadline::{Deadline, OutOfTime};
use crate::dedupe::{self, MessageKeyParts};
use crate::envelope::{Envelope, Source, group_id};
pub use crate::envelope::{InboundEvent, ObjectState};
use crate::filter::EventFilter;
use crate::gate::{ObjectGates, ObjectPass};
use crate::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, EventSink,
    RecordState, SinkError, StoreError,
};

/// The step names a [`RelayError::OutOfTime`] reports.
const CLAIM: &str = "the dedupe claim";
const SEND: &str = "the queue send";
const GATE: &str = "the object's earlier message";

/// What happened to an event or object that was not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Put on the queue under `dedupe_key`.
    Enqueued {
        /// The key it was admitted under.
        dedupe_key: String,
        /// What it is.
        kind: ObjectKind,
        /// Its id.
        id: String,
    },
    /// Its event name is not relayed.
    Filtered {
        /// The event name.
        event_name: String,
    },
    /// Already relayed (or already relayed as a complete state).
    Duplicate {
        /// The key that was found.
        dedupe_key: String,
        /// What it is.
        kind: ObjectKind,
        /// Its id.
        id: String,
    },
}

impl Outcome {
    /// `enqueued`, `filtered` or `duplicate`, for logs and answers.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Enqueued { .. } => "enqueued",
            Outcome::Filtered { .. } => "filtered",
            Outcome::Duplicate { .. } => "duplicate",
        }
    }
}

/// Why an event could not be relayed now. All of them are transient: try again later.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The dedupe store failed.
    #[error("the dedupe store is unavailable: {0}")]
    Dedupe(#[source] StoreError),
    /// The queue refused the envelope.
    #[error("the queue did not accept the message: {0}")]
    Sink(#[source] SinkError),
    /// The request's deadline would pass before the next step finished; what was claimed has
    /// been released.
    #[error("{0}")]
    OutOfTime(#[from] OutOfTime),
    /// Another request holds the claim on this key and has not finished.
    #[error("another request is relaying {key} right now")]
    InProgress {
        /// The claimed key.
        key: String,
    },
}

/// The relay: filter, dedupe store and queue.
#[derive(Clone)]
pub struct Relay {
    sink: Arc<dyn EventSink>,
    dedupe: Arc<dyn DedupeStore>,
    filter: EventFilter,
    gates: ObjectGates,
}

/// The claims one relay holds, with its object's pass: settled together, then the pass goes.
struct Held {
    claims: Claims,
    pass: ObjectPass,
}

/// The dedupe claims held for messages about to be enqueued: the one place of the
/// exactly-once protocol every channel (webhook POST, webhook GET, poll loop) goes through.
/// Claim each key; enqueue; then complete the claims whose message was sent and release the
/// others, so a retry sends what was not sent and finds a duplicate in what was.
pub struct Claims {
    dedupe: Arc<dyn DedupeStore>,
    /// Who makes the claims: a poll run, or nobody in particular (a webhook request).
    by: Option<Claimant>,
    held: Vec<(String, ClaimToken)>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.held.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("Claims").field("held", &keys).finish()
    }
}

impl Claims {
    /// No claim held yet, on this store.
    pub fn new(dedupe: Arc<dyn DedupeStore>) -> Self {
        Self {
            dedupe,
            by: None,
            held: Vec::new(),
        }
    }

    /// Makes the claims from now on `by` a poll run that holds its stream's lease: they also
    /// take over the claims an earlier run of the stream left in progress
    /// ([`Claimant::takes_over`]). `None`: by nobody in particular.
    pub fn made_by(mut self, by: Option<Claimant>) -> Self {
        self.by = by;
        self
    }

    /// Claims `key` (`full_state`: for a complete object, not an event). `Ok(None)`: granted
    /// and held here; `Ok(Some(record))`: the key exists (completed: a duplicate; in progress:
    /// another request is relaying it).
    pub async fn claim(
        &mut self,
        key: &str,
        full_state: bool,
    ) -> Result<Option<DedupeRecord>, StoreError> {
        match self
            .dedupe
            .claim_as(key, full_state, self.by.as_ref())
            .await?
        {
            ClaimOutcome::Claimed(token) => {
                self.held.push((key.to_owned(), token));
                Ok(None)
            }
            ClaimOutcome::Exists(record) => Ok(Some(record)),
        }
    }

    /// Claims every `(key, full_state)` in one call to the store, in order, holding those
    /// granted: one answer per key, as [`Self::claim`] gives it. On an `Err` the granted
    /// claims are held all the same; settle them.
    pub async fn claim_many(
        &mut self,
        keys: &[(&str, bool)],
    ) -> Vec<Result<Option<DedupeRecord>, StoreError>> {
        let outcomes = self.dedupe.claim_many(keys, self.by.as_ref()).await;
        debug_assert_eq!(outcomes.len(), keys.len(), "one answer per key");
        self.held.reserve(keys.len());
        keys.iter()
            .zip(outcomes)
            .map(|((key, _), outcome)| match outcome? {
                ClaimOutcome::Claimed(token) => {
                    self.held.push(((*key).to_owned(), token));
                    Ok(None)
                }
                ClaimOutcome::Exists(record) => Ok(Some(record)),
            })
            .collect()
    }

    /// The keys of the held claims, in the order they were granted (the places
    /// [`Self::split_off`] and [`Self::enqueue_each`] count).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.held.iter().map(|(key, _)| key.as_str())
    }

    /// Moves the held claims that `split(i)` picks out (`i`: the claim's place in the order the
    /// claims were granted, as [`Self::enqueue_each`]'s `owners` counts them) into a new
    /// `Claims` on the same store, and keeps the others here in their order. For settling part
    /// of a batch on its own: a caller that sends the messages of only some of its claims
    /// releases the others' claims through the part split off.
    pub fn split_off(&mut self, mut split: impl FnMut(usize) -> bool) -> Claims {
        let (moved, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .enumerate()
            .partition(|(i, _)| split(*i));
        self.held = kept.into_iter().map(|(_, claim)| claim).collect();
        Claims {
            dedupe: Arc::clone(&self.dedupe),
            by: self.by.clone(),
            held: moved.into_iter().map(|(_, claim)| claim).collect(),
        }
    }

    /// Completes every held claim (`sent`) or releases it, in one call to the store.
    pub async fn settle(self, sent: bool) {
        if sent {
            complete_claims(self.dedupe.as_ref(), &self.held).await;
        } else {
            release_claims(self.dedupe.as_ref(), &self.held).await;
        }
    }

    /// Enqueues `envelopes` as one batch and settles each held claim by the fate of the message
    /// it was taken for: `owners[i]` is the index in `envelopes` of the i-th held claim's
    /// message (claims in the order they were granted; one message may own several claims).
    /// One call to the store completes the claims of what was sent, one releases the others.
    /// Returns the keys completed (their messages are on the queue) and the queue's error, if
    /// any message failed.
    pub async fn enqueue_each(
        self,
        sink: &dyn EventSink,
        envelopes: &[Envelope],
        owners: &[usize],
    ) -> (Vec<String>, Result<(), SinkError>) {
        let (completed, sent) = self
            .enqueue_in_chunks(sink, envelopes, owners, usize::MAX, |_| true)
            .await;
        // One chunk, never stopped: only the queue can have left messages unsent.
        let sent = sent.map_err(|unsent| match unsent {
            Unsent::Queue(e) => e,
            stopped @ Unsent::Stopped { .. } => SinkError {
                failed: stopped.failed(),
                reason: stopped.to_string(),
            },
        });
        (completed, sent)
    }

    /// As [`Self::enqueue_each`], `envelopes` sent in order in chunks of `chunk` (one call to
    /// the sink each), for a caller that must not be cut off mid-send (a poll run whose Lambda
    /// ends at its deadline: the claims it held were taken over by the next run, which sent
    /// every message again). Before each chunk `go_on(took)` is asked (`took`: how long the
    /// chunk before took, zero before the first); when it answers `false`, that chunk and the
    /// rest are not sent ([`Unsent::Stopped`]). After a chunk the queue did not take whole,
    /// nothing more is sent ([`Unsent::Queue`]), so no later message of an object overtakes
    /// one the queue refused. Either way, as for a failure of one batch: the claims of what
    /// was sent are completed (one call to the store) and the others released (one call), so
    /// what was not sent goes with the next attempt and what was is a duplicate then.
    pub async fn enqueue_in_chunks(
        self,
        sink: &dyn EventSink,
        envelopes: &[Envelope],
        owners: &[usize],
        chunk: usize,
        mut go_on: impl FnMut(std::time::Duration) -> bool + Send,
    ) -> (Vec<String>, Result<(), Unsent>) {
        debug_assert_eq!(owners.len(), self.held.len(), "one owner per held claim");
        debug_assert!(
            owners.iter().all(|&o| o < envelopes.len()),
            "owners name envelopes"
        );
        let mut sent = Ok(());
        let mut took = std::time::Duration::ZERO;
        let size = chunk.max(1);
        for (n, part) in envelopes.chunks(size).enumerate() {
            let from = n * size;
            if !go_on(took) {
                sent = Err(Unsent::Stopped {
                    from,
                    of: envelopes.len(),
                });
                break;
            }
            let began = std::time::Instant::now();
            let result = sink.enqueue(part).await;
            took = began.elapsed();
            if let Err(e) = result {
                // Refused in this chunk, and every message after it (never sent).
                let failed = e
                    .failed
                    .iter()
                    .map(|i| from + i)
                    .chain(from + part.len()..envelopes.len())
                    .collect();
                sent = Err(Unsent::Queue(SinkError {
                    failed,
                    reason: e.reason,
                }));
                break;
            }
        }
        let failed = sent.as_ref().err().map(Unsent::failed).unwrap_or_default();
        // A claim without an owner (a caller's mistake) is released: its message's fate is
        // unknown, and a release at worst sends the message again, never loses it.
        let (to_release, to_complete): (Vec<_>, Vec<_>) = self
            .held
            .into_iter()
            .enumerate()
            .partition(|(i, _)| owners.get(*i).is_none_or(|owner| failed.contains(owner)));
        let to_complete: Vec<(String, ClaimToken)> =
            to_complete.into_iter().map(|(_, claim)| claim).collect();
        let to_release: Vec<(String, ClaimToken)> =
            to_release.into_iter().map(|(_, claim)| claim).collect();
        release_claims(self.dedupe.as_ref(), &to_release).await;
        complete_claims(self.dedupe.as_ref(), &to_complete).await;
        let completed = to_complete.into_iter().map(|(key, _)| key).collect();
        (completed, sent)
    }
}

/// Why messages of a [`Claims::enqueue_in_chunks`] were not sent; their claims were released.
#[derive(Debug, thiserror::Error)]
pub enum Unsent {
    /// The queue did not take a chunk whole: `failed` names what it refused and every message
    /// after that chunk (not sent).
    #[error(transparent)]
    Queue(SinkError),
    /// The caller stopped the send before the message at `from`: it and every later one were
    /// not sent.
    #[error("the send stopped before message {from} of {of}")]
    Stopped {
        /// The first message not sent.
        from: usize,
        /// How many messages there were.
        of: usize,
    },
}

impl Unsent {
    /// The indexes of the messages not on the queue.
    pub fn failed(&self) -> Vec<usize> {
        match self {
            Unsent::Queue(e) => e.failed.clone(),
            Unsent::Stopped { from, of } => (*from..*of).collect(),
        }
    }
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay over these ports.
    pub fn new(
        sink: Arc<dyn EventSink>,
        dedupe: Arc<dyn DedupeStore>,
        filter: EventFilter,
    ) -> Self {
        Self {
            sink,
            dedupe,
            filter,
            gates: ObjectGates::new(),
        }
    }

    /// Relays a webhook POST event (source `webhook-post`), keyed by its message key.
    ///
    /// Besides its message key the event claims its state key (`full_state = false`). When
    /// that state key was written by a poll or GET (a complete object in that state) the event
    /// is a duplicate; when it was written by other webhook events it is not, because several
    /// events share one `lastUpdatedAt` and each carries other lines.
    ///
    /// Every step runs within `deadline`; when one cannot, the claims are released and the
    /// answer is [`RelayError::OutOfTime`].
    ///
    /// The relay runs as its own task, so a request dropped mid-way (its client hung up, and
    /// the server dropped the handler) still settles its claims instead of leaving a sent
    /// message's claims to expire, after which a retry would send it again.
    ///
    /// The event is taken by value: its payload moves into the envelope. (A 50-line order's
    /// payload is a tree of thousands of allocations; cloning and dropping copies of it was a
    /// third of the webhook's CPU time.)
    pub async fn relay_event(
        &self,
        event: InboundEvent,
        raw_body: &[u8],
        deadline: &Deadline,
    ) -> Result<Outcome, RelayError> {
        let this = self.clone();
        let raw_body = raw_body.to_vec();
        let deadline = *deadline;
        detached(async move { this.event_task(event, &raw_body, &deadline).await }).await
    }

    async fn event_task(
        &self,
        event: InboundEvent,
        raw_body: &[u8],
        deadline: &Deadline,
    ) -> Result<Outcome, RelayError> {
        if !self.filter.admits(&event.event_name) {
            return Ok(Outcome::Filtered {
                event_name: event.event_name.clone(),
            });
        }
        let class = event.kind.object_class();
        let line_ids: Vec<&str> = event.line_ids.iter().map(String::as_str).collect();
        let message_key = dedupe::message_key(&MessageKeyParts {
            class,
            id: &event.id,
            event_name: &event.event_name,
            last_updated_at: event.last_updated_at.as_deref(),
            message_id: event.message_id.as_deref(),
            line_ids: &line_ids,
            raw_body,
        });
        tracing::Span::current().record("dedupe_key", message_key.as_str());
        let duplicate = |key: &str| Outcome::Duplicate {
            dedupe_key: key.to_owned(),
            kind: event.kind,
            id: event.id.clone(),
        };

        let pass = deadline
            .run(GATE, self.gates.enter(&group_id(class, &event.id)))
            .await?;
        let mut claims = Claims::new(Arc::clone(&self.dedupe));
        match deadline
            .run(CLAIM, claims.claim(&message_key, false))
            .await?
            .map_err(RelayError::Dedupe)?
        {
            None => {}
            Some(record) if record.state == RecordState::Completed => {
                return Ok(duplicate(&message_key));
            }
            // The first attempt is still running (or died less than the claim expiry ago).
            // 503 rather than 200: if that attempt fails, this retry must not have been
            // acknowledged.
            Some(_) => {
                return Err(RelayError::InProgress { key: message_key });
            }
        }
        let mut held = Held { claims, pass };

        // A resend repeats a state on purpose (someone pressed "resend" for the ERP), so a
        // state already relayed by a poll or a GET must not make it a duplicate: only its own
        // message key (its `messageId`) dedupes it, and it leaves the state key alone.
        let state_key = event
            .last_updated_at
            .as_deref()
            .filter(|t| !t.is_empty() && !dedupe::is_resend_event(&event.event_name))
            .map(|at| dedupe::state_key(class, &event.id, at));
        if let Some(state_key) = state_key {
            let claimed = match deadline
                .run(CLAIM, held.claims.claim(&state_key, false))
                .await
            {
                Ok(claimed) => claimed,
                Err(out_of_time) => {
                    self.settle(held, false, deadline).await;
                    return Err(out_of_time.into());
                }
            };
            match claimed {
                Ok(None) => {}
                Ok(Some(record)) if record.full_state => {
                    if record.state == RecordState::Completed {
                        // Mark the message too, so retries stop at the first lookup.
                        self.settle(held, true, deadline).await;
                        return Ok(duplicate(&state_key));
                    }
                    self.settle(held, false, deadline).await;
                    return Err(RelayError::InProgress { key: state_key });
                }
                // Written by other webhook events of the same state: not a duplicate.
                Ok(Some(_)) => {}
                Err(e) => {
                    self.settle(held, false, deadline).await;
                    return Err(RelayError::Dedupe(e));
                }
            }
        }

        let (kind, id) = (event.kind, event.id.clone());
        let envelope = Envelope::of_event(event, message_key.clone());
        self.send(envelope, held, deadline).await?;
        Ok(Outcome::Enqueued {
            dedupe_key: message_key,
            kind,
            id,
        })
    }

    /// Relays a complete object (GET webhook, or a poll result): keyed by its state key with
    /// `full_state = true`; an existing state key from any channel makes it a duplicate. Every
    /// step runs within `deadline`, and the relay runs as its own task, as in
    /// [`Self::relay_event`]. `source` is [`Source::WebhookGet`] or [`Source::Poll`]; a POST
    /// carries an event, not an object, and goes through [`Self::relay_event`] (an object
    /// given as `WebhookPost` is enveloped as fetched).
    pub async fn relay_object(
        &self,
        kind: ObjectKind,
        requested_id: &str,
        object: Value,
        source: Source,
        deadline: &Deadline,
    ) -> Result<Outcome, RelayError> {
        let this = self.clone();
        let requested_id = requested_id.to_owned();
        let deadline = *deadline;
        detached(async move {
            this.object_task(kind, &requested_id, object, source, &deadline)
                .await
        })
        .await
    }

    async fn object_task(
        &self,
        kind: ObjectKind,
        requested_id: &str,
        object: Value,
        source: Source,
        deadline: &Deadline,
    ) -> Result<Outcome, RelayError> {
        let class = kind.object_class();
        let state = ObjectState::of(&object, class, requested_id);
        let key =
            dedupe::object_state_key(class, &state.id, state.last_updated_at.as_deref(), || {
                object.clone()
            });
        tracing::Span::current().record("dedupe_key", key.as_str());
        let pass = deadline
            .run(GATE, self.gates.enter(&group_id(class, &state.id)))
            .await?;
        let mut claims = Claims::new(Arc::clone(&self.dedupe));
        match deadline
            .run(CLAIM, claims.claim(&key, true))
            .await?
            .map_err(RelayError::Dedupe)?
        {
            None => {}
            Some(record) if record.state == RecordState::Completed => {
                return Ok(Outcome::Duplicate {
                    dedupe_key: key,
                    kind,
                    id: state.id,
                });
            }
            Some(_) => return Err(RelayError::InProgress { key }),
        }
        let id = state.id.clone();
        let envelope = match source {
            Source::Poll => Envelope::of_polled(kind, state, key.clone(), None, object.into()),
            Source::WebhookGet | Source::WebhookPost => {
                Envelope::of_fetched(kind, state, key.clone(), object)
            }
        };
        let held = Held { claims, pass };
        self.send(envelope, held, deadline).await?;
        Ok(Outcome::Enqueued {
            dedupe_key: key,
            kind,
            id,
        })
    }

    /// Enqueues one envelope within the deadline, then settles `held`: completed when it was
    /// sent, released when it failed. The send runs as its own task: when the deadline passes
    /// first, the request is answered [`RelayError::OutOfTime`] (503) while the send goes on
    /// holding the claims and the object's pass, and settles them when it ends. Until then a
    /// retry of the same object waits for the pass (503 when its own time runs out), then finds
    /// the message completed (a duplicate, not a second delivery) or released (it enqueues
    /// it). Cutting the send off instead would leave its outcome unknown: the message could
    /// arrive twice, or a newer state of the object before it.
    async fn send(
        &self,
        envelope: Envelope,
        held: Held,
        deadline: &Deadline,
    ) -> Result<(), RelayError> {
        let sink = Arc::clone(&self.sink);
        let mut sending = tokio::spawn(async move { sink.enqueue(&[envelope]).await });
        let sent = match deadline.run(SEND, &mut sending).await {
            Ok(Ok(sent)) => sent.map_err(RelayError::Sink),
            // A panicking queue adapter panics the request, as it did before the send got its
            // own task, so the router's panic handling answers it.
            Ok(Err(join)) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Ok(Err(join)) => Err(RelayError::Sink(SinkError {
                failed: vec![0],
                reason: format!("the send was cancelled: {join}"),
            })),
            Err(out_of_time) => {
                OUTLIVING.spawn(async move {
                    let sent = matches!(sending.await, Ok(Ok(())));
                    held.claims.settle(sent).await;
                    tracing::info!(
                        sent,
                        "a queue send that outlived its request ended; its claims are settled"
                    );
                    drop(held.pass);
                });
                return Err(out_of_time.into());
            }
        };
        self.settle(held, sent.is_ok(), deadline).await;
        sent
    }

    /// Completes (`sent`) or releases the claims in `held`, then lets the pass go. Runs as its
    /// own task, waited for within the deadline's clean-up time: when the store is too slow for
    /// that, the answer goes out and the task goes on, still holding the pass, so the next
    /// message of the object does not find a claim left in progress. Cutting a completion off
    /// would leave a sent message's key in progress until it expires, and a poll could then
    /// relay that state again.
    async fn settle(&self, held: Held, sent: bool, deadline: &Deadline) {
        let settling = OUTLIVING.spawn(async move {
            held.claims.settle(sent).await;
            drop(held.pass);
        });
        if deadline.clean_up(settling).await.is_none() {
            tracing::warn!(
                sent,
                "settling the dedupe claims did not finish within the request's time; it goes on \
                 after the answer"
            );
        }
    }
}

/// The relay's tasks that can outlive the request that started them: a relay whose request was
/// dropped, a queue send that ran past its deadline, a settle slower than the answer. A host
/// shutting down waits for them ([`finish_outliving_work`]): stopped midway, an enqueued
/// message's claim would stay in progress, and after its expiry Tradecloud's retry would be
/// relayed a second time.
static OUTLIVING: std::sync::LazyLock<tokio_util::task::TaskTracker> =
    std::sync::LazyLock::new(tokio_util::task::TaskTracker::new);

/// Waits (at most `limit`) for the relay's work that outlived its requests; `true` when none is
/// left. For a host's graceful shutdown, after it stopped taking requests. Process-wide: every
/// relay of the process is waited for (a process serves one; tests run several).
pub async fn finish_outliving_work(limit: std::time::Duration) -> bool {
    // Watched rather than closed and awaited: closing is process-wide, and two relays shutting
    // down at once would reopen it under each other's wait.
    let deadline = tokio::time::Instant::now() + limit;
    while !OUTLIVING.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    true
}

/// Runs `relay` as its own task in the current span and waits for it: dropping the wait leaves
/// the task running to its end. A panic in it panics the caller, so the router's panic handling
/// answers it as before.
async fn detached<F>(relay: F) -> Result<Outcome, RelayError>
where
    F: std::future::Future<Output = Result<Outcome, RelayError>> + Send + 'static,
{
    match OUTLIVING
        .spawn(relay.instrument(tracing::Span::current()))
        .await
    {
        Ok(outcome) => outcome,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(join) => Err(RelayError::Sink(SinkError {
            failed: vec![0],
            reason: format!("the relay was cancelled: {join}"),
        })),
    }
}

/// Completes the claims (`key`, `token`) after their messages were enqueued, in one call to
/// the store. A failure here does not undo the enqueue, so it is logged, not returned: the
/// claim expires and at worst a later poll relays the state again. A take-over (another request
/// claimed the key after ours expired) is logged as an error: the ERP may get the message
/// twice, and the in-progress expiry should be longer than a request can take.
async fn complete_claims(dedupe: &dyn DedupeStore, claims: &[(String, ClaimToken)]) {
    if claims.is_empty() {
        return;
    }
    for ((key, _), outcome) in claims.iter().zip(dedupe.complete_many(claims).await) {
        match outcome {
            Ok(Completion::Completed) => {}
            Ok(Completion::TakenOver) => tracing::error!(
                dedupe_key = key.as_str(),
                "the dedupe claim expired and another request took it over before this one \
                 completed: the message may be on the queue twice; raise the in-progress expiry"
            ),
            Err(e) => {
                tracing::warn!(dedupe_key = key.as_str(), error = %e, "could not complete the dedupe claim; it will expire");
            }
        }
    }
}

/// Releases the claims (`key`, `token`) after a failure, in one call to the store. If even that
/// fails a claim expires on its own, and until then retries are answered 503 (in progress), so
/// nothing is lost.
async fn release_claims(dedupe: &dyn DedupeStore, claims: &[(String, ClaimToken)]) {
    if claims.is_empty() {
        return;
    }
    for ((key, _), outcome) in claims.iter().zip(dedupe.release_many(claims).await) {
        if let Err(e) = outcome {
            tracing::warn!(dedupe_key = key.as_str(), error = %e, "could not release the dedupe claim; it will expire");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::ports::DedupeRecord;
    use crate::testing::{MemoryDedupe, MemorySink};

    const EXPIRY: Duration = Duration::from_secs(60);

    /// A queue so slow that the relay's claim expires while it sends, and Tradecloud's retry
    /// claims the key meanwhile; then the send fails or succeeds.
    struct OvertakenSink {
        dedupe: Arc<MemoryDedupe>,
        fails: bool,
        retry: Mutex<Option<ClaimToken>>,
    }

    #[async_trait]
    impl EventSink for OvertakenSink {
        async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
            self.dedupe.advance(EXPIRY + Duration::from_secs(1));
            let retry = self
                .dedupe
                .claim(&envelopes[0].dedupe_key, true)
                .await
                .unwrap();
            *self.retry.lock().unwrap() = Some(retry.token().cloned().expect("the retry claims"));
            if self.fails {
                return Err(SinkError {
                    failed: vec![0],
                    reason: "slow, then down".into(),
                });
            }
            Ok(())
        }
    }

    async fn relay_overtaken(
        fails: bool,
    ) -> (Result<Outcome, RelayError>, Arc<MemoryDedupe>, ClaimToken) {
        let dedupe = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        let sink = Arc::new(OvertakenSink {
            dedupe: Arc::clone(&dedupe),
            fails,
            retry: Mutex::default(),
        });
        let relay = Relay::new(sink.clone(), dedupe.clone(), EventFilter::allow_all());
        let order = json!({"id": "o-1", "lastUpdatedAt": "2026-03-01T10:00:00.000Z", "version": 3});
        let result = relay
            .relay_object(
                ObjectKind::Order,
                "o-1",
                order,
                Source::Poll,
                &Deadline::after(Duration::from_secs(30)),
            )
            .await;
        let retry = sink.retry.lock().unwrap().clone().expect("the sink ran");
        (result, dedupe, retry)
    }

    /// Takes what the first call sends, fails the second.
    struct SecondFails;

    #[async_trait]
    impl EventSink for SecondFails {
        async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
            assert_eq!(envelopes.len(), 3);
            Err(SinkError {
                failed: vec![1],
                reason: "one message refused".into(),
            })
        }
    }

    /// A polled order's envelope per key, its id and dedupe key the key.
    fn polled_envelopes(keys: &[&str]) -> Vec<Envelope> {
        keys.iter()
            .map(|key| {
                let state = ObjectState::of(&json!({"id": key}), ObjectClass::Order, key);
                Envelope::of_polled(
                    ObjectKind::Order,
                    state,
                    (*key).to_owned(),
                    None,
                    json!({}).into(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_batch_completes_the_claims_of_what_was_sent_and_releases_the_rest() {
        let dedupe = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        dedupe.insert("taken", RecordState::Completed, true);
        let mut claims = Claims::new(dedupe.clone());
        let envelopes = polled_envelopes(&["a", "b", "c"]);
        for key in ["a", "b", "c"] {
            assert_eq!(claims.claim(key, true).await.unwrap(), None);
        }
        // An existing key is reported, not held: settling leaves it alone.
        assert_eq!(
            claims.claim("taken", true).await.unwrap(),
            Some(DedupeRecord {
                state: RecordState::Completed,
                full_state: true
            })
        );
        let (completed, sent) = claims
            .enqueue_each(&SecondFails, &envelopes, &[0, 1, 2])
            .await;
        assert_eq!(completed, ["a", "c"]);
        assert_eq!(sent.unwrap_err().failed, [1]);
        let records = dedupe.records();
        assert_eq!(records["a"].state, RecordState::Completed);
        assert_eq!(records["c"].state, RecordState::Completed);
        assert_eq!(records["taken"].state, RecordState::Completed);
        // Released: Tradecloud's retry or the next poll relays it.
        assert!(!records.contains_key("b"), "{records:?}");
    }

    #[tokio::test]
    async fn claims_owned_by_one_message_share_its_fate() {
        let dedupe = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        let mut claims = Claims::new(dedupe.clone());
        let envelopes = polled_envelopes(&["a", "b", "c"]);
        // Granted in this order: a's, b's, c's, then two more of b's and one more of a's.
        for key in ["a", "b", "c", "b-1", "b-2", "a-1"] {
            assert_eq!(claims.claim(key, true).await.unwrap(), None);
        }
        let (completed, sent) = claims
            .enqueue_each(&SecondFails, &envelopes, &[0, 1, 2, 1, 1, 0])
            .await;
        assert_eq!(completed, ["a", "c", "a-1"]);
        assert_eq!(sent.unwrap_err().failed, [1]);
        let records = dedupe.records();
        for key in ["a", "c", "a-1"] {
            assert_eq!(records[key].state, RecordState::Completed, "{key}");
        }
        // Every claim of the failed message goes: the next run claims them all again.
        for key in ["b", "b-1", "b-2"] {
            assert!(!records.contains_key(key), "{key}: {records:?}");
        }
    }

    /// Takes what it is given into `inner`, except on its second call: of that chunk it takes
    /// the first message and refuses the second.
    struct SecondChunkFails {
        inner: MemorySink,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl EventSink for SecondChunkFails {
        async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
            if self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                self.inner.enqueue(&envelopes[..1]).await?;
                return Err(SinkError {
                    failed: vec![1],
                    reason: "one message refused".into(),
                });
            }
            self.inner.enqueue(envelopes).await
        }
    }

    /// A store, claims of the keys `a` to `e` held in it, and their envelopes.
    async fn five_claimed() -> (Arc<MemoryDedupe>, Claims, Vec<Envelope>) {
        let dedupe = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        let mut claims = Claims::new(dedupe.clone());
        let keys = ["a", "b", "c", "d", "e"];
        for key in keys {
            assert_eq!(claims.claim(key, true).await.unwrap(), None);
        }
        (dedupe, claims, polled_envelopes(&keys))
    }

    #[tokio::test]
    async fn a_send_in_chunks_stopped_by_its_caller_completes_what_was_sent_and_releases_the_rest()
    {
        let (dedupe, claims, envelopes) = five_claimed().await;
        let sink = MemorySink::new();
        let mut asked = 0;
        // Two chunks of two go; the third is refused its turn.
        let (completed, sent) = claims
            .enqueue_in_chunks(&sink, &envelopes, &[0, 1, 2, 3, 4], 2, |_| {
                asked += 1;
                asked < 3
            })
            .await;
        assert_eq!(asked, 3);
        assert_eq!(completed, ["a", "b", "c", "d"]);
        let unsent = sent.unwrap_err();
        assert!(
            matches!(unsent, Unsent::Stopped { from: 4, of: 5 }),
            "{unsent:?}"
        );
        assert_eq!(unsent.failed(), [4]);
        let on_queue: Vec<String> = sink.envelopes().into_iter().map(|e| e.id).collect();
        assert_eq!(on_queue, ["a", "b", "c", "d"]);
        let records = dedupe.records();
        assert!(!records.contains_key("e"), "released: {records:?}");
        for key in ["a", "b", "c", "d"] {
            assert_eq!(records[key].state, RecordState::Completed, "{key}");
        }
    }

    #[tokio::test]
    async fn a_send_in_chunks_sends_nothing_after_a_chunk_the_queue_refused_part_of() {
        let (dedupe, claims, envelopes) = five_claimed().await;
        let sink = SecondChunkFails {
            inner: MemorySink::new(),
            calls: std::sync::atomic::AtomicUsize::new(0),
        };
        let mut took = Vec::new();
        let (completed, sent) = claims
            .enqueue_in_chunks(&sink, &envelopes, &[0, 1, 2, 3, 4], 2, |t| {
                took.push(t);
                true
            })
            .await;
        // Asked before each chunk sent: zero before the first.
        assert_eq!(took.len(), 2);
        assert_eq!(took[0], Duration::ZERO);
        // d (the second of the refused chunk) and e (never sent) go back.
        let unsent = sent.unwrap_err();
        assert!(matches!(unsent, Unsent::Queue(_)), "{unsent:?}");
        assert_eq!(unsent.failed(), [3, 4]);
        assert_eq!(completed, ["a", "b", "c"]);
        let records = dedupe.records();
        for key in ["d", "e"] {
            assert!(!records.contains_key(key), "{key}: {records:?}");
        }
    }

    #[tokio::test]
    async fn claims_split_off_are_settled_apart_from_the_rest() {
        let dedupe = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        let mut claims = Claims::new(dedupe.clone());
        for key in ["a", "b", "c", "a-1", "b-1"] {
            assert_eq!(claims.claim(key, true).await.unwrap(), None);
        }
        // Held back: b's claims and c's (places 1, 2 and 4); a's stay, in their order.
        let held_back = claims.split_off(|i| ![0, 3].contains(&i));
        assert_eq!(format!("{claims:?}"), r#"Claims { held: ["a", "a-1"] }"#);
        assert_eq!(claims.keys().collect::<Vec<_>>(), ["a", "a-1"]);
        assert_eq!(
            format!("{held_back:?}"),
            r#"Claims { held: ["b", "c", "b-1"] }"#
        );
        let envelopes = polled_envelopes(&["a"]);
        let (completed, sent) = claims
            .enqueue_each(&MemorySink::new(), &envelopes, &[0, 0])
            .await;
        assert!(sent.is_ok());
        assert_eq!(completed, ["a", "a-1"]);
        held_back.settle(false).await;
        let records = dedupe.records();
        assert_eq!(records["a"].state, RecordState::Completed);
        assert_eq!(records["a-1"].state, RecordState::Completed);
        for key in ["b", "c", "b-1"] {
            assert!(!records.contains_key(key), "{key}: {records:?}");
        }
    }

    #[tokio::test]
    async fn a_failed_request_whose_claim_was_taken_over_leaves_the_new_claim_alone() {
        let (result, dedupe, _) = relay_overtaken(true).await;
        assert!(matches!(result, Err(RelayError::Sink(_))), "{result:?}");
        // Releasing the retry's claim would let a third delivery enqueue alongside the retry.
        let records: Vec<DedupeRecord> = dedupe.records().into_values().collect();
        assert_eq!(
            records,
            vec![DedupeRecord {
                state: RecordState::InProgress,
                full_state: true
            }]
        );
    }

    #[tokio::test]
    async fn a_request_whose_claim_was_taken_over_still_completes_the_key() {
        let (result, dedupe, retry) = relay_overtaken(false).await;
        let Ok(Outcome::Enqueued {
            dedupe_key: key, ..
        }) = result
        else {
            panic!("expected enqueued, got {result:?}");
        };
        // Completed as a complete state: this poll result sent one, whatever the claim that
        // took over does next (later events of this state are duplicates of what was sent).
        assert_eq!(
            dedupe.lookup(&key).await.unwrap(),
            Some(DedupeRecord {
                state: RecordState::Completed,
                full_state: true
            })
        );
        // The retry learns it was overtaken too when it completes.
        assert_eq!(
            dedupe.complete(&key, &retry).await.unwrap(),
            Completion::TakenOver
        );
    }
}
