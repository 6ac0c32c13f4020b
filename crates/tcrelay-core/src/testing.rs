//! In-memory fakes of every port, for tests here and in other crates (feature `testing`).
//!
//! Each fake records what it was given and can be switched to fail (as the real service does
//! when it is down) or to panic, so tests can drive every answer the webhook gives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::envelope::Envelope;
use crate::ports::{
    ApiError, ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, EventSink,
    Quarantine, QuarantinedRequest, RecordState, SinkError, StoreError, TradecloudApi,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not poison the fake for the assertions that follow.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a fake behaves on its next calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Works.
    #[default]
    Up,
    /// Fails as if the service were unreachable.
    Down,
    /// Panics (a bug in an adapter), to test that the webhook still answers 503.
    Panic,
    /// Does not answer (a service that accepts the call and stalls), to test that the webhook
    /// still answers within its deadline. The sink answers once switched to another mode, as
    /// that mode; the other fakes never answer.
    Hang,
}

/// An [`EventSink`] that keeps the envelopes in memory.
#[derive(Debug, Default)]
pub struct MemorySink {
    envelopes: Mutex<Vec<Envelope>>,
    mode: Mutex<Mode>,
    refused_event: Mutex<Option<String>>,
}

impl MemorySink {
    /// An empty, working sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything enqueued so far, in order.
    pub fn envelopes(&self) -> Vec<Envelope> {
        lock(&self.envelopes).clone()
    }

    /// Switches the behaviour of later calls.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }

    /// Refuses every later batch holding an envelope with this `eventName` (`None`: none), as
    /// one transaction refuses all of its rows: every envelope of it is reported failed.
    pub fn refuse_event(&self, event_name: Option<&str>) {
        *lock(&self.refused_event) = event_name.map(str::to_owned);
    }
}

#[async_trait]
impl EventSink for MemorySink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        loop {
            let mode = *lock(&self.mode);
            match mode {
                Mode::Up => break,
                Mode::Down => {
                    return Err(SinkError {
                        failed: (0..envelopes.len()).collect(),
                        reason: "fake queue is down".into(),
                    });
                }
                Mode::Panic => panic!("fake sink panics"),
                Mode::Hang => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        if let Some(refused) = lock(&self.refused_event).as_deref()
            && envelopes
                .iter()
                .any(|e| e.event_name.as_deref() == Some(refused))
        {
            return Err(SinkError {
                failed: (0..envelopes.len()).collect(),
                reason: format!("fake queue refuses {refused}"),
            });
        }
        lock(&self.envelopes).extend_from_slice(envelopes);
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct StoredRecord {
    record: DedupeRecord,
    expires: Instant,
    /// The claim that wrote it.
    token: ClaimToken,
}

/// Which [`DedupeStore`] operation a failure applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DedupeOp {
    /// `claim`.
    Claim,
    /// `complete`.
    Complete,
    /// `release`.
    Release,
    /// `lookup`.
    Lookup,
}

/// A [`DedupeStore`] in memory with the real semantics: claims expire after the in-progress
/// expiry, completed records after the TTL, expiry checked on every read.
#[derive(Debug)]
pub struct MemoryDedupe {
    records: Mutex<HashMap<String, StoredRecord>>,
    failing: Mutex<HashMap<DedupeOp, Mode>>,
    in_progress_expiry: Duration,
    ttl: Duration,
    /// How far [`MemoryDedupe::advance`] moved this store's clock ahead of the real one.
    skew: Mutex<Duration>,
}

impl Default for MemoryDedupe {
    fn default() -> Self {
        Self::new(Duration::from_secs(120), Duration::from_secs(30 * 86_400))
    }
}

impl MemoryDedupe {
    /// A store with these expiries.
    pub fn new(in_progress_expiry: Duration, ttl: Duration) -> Self {
        Self {
            records: Mutex::default(),
            failing: Mutex::default(),
            in_progress_expiry,
            ttl,
            skew: Mutex::default(),
        }
    }

    /// Moves this store's clock forward by `by`, so tests step over an expiry without
    /// sleeping.
    pub fn advance(&self, by: Duration) {
        *lock(&self.skew) += by;
    }

    fn now(&self) -> Instant {
        Instant::now() + *lock(&self.skew)
    }

    /// Makes every operation behave as `mode`.
    pub fn set_mode(&self, mode: Mode) {
        for op in [
            DedupeOp::Claim,
            DedupeOp::Complete,
            DedupeOp::Release,
            DedupeOp::Lookup,
        ] {
            self.set_op_mode(op, mode);
        }
    }

    /// Makes one operation behave as `mode`.
    pub fn set_op_mode(&self, op: DedupeOp, mode: Mode) {
        lock(&self.failing).insert(op, mode);
    }

    /// The live records, by key.
    pub fn records(&self) -> HashMap<String, DedupeRecord> {
        let now = self.now();
        lock(&self.records)
            .iter()
            .filter(|(_, r)| r.expires > now)
            .map(|(k, r)| (k.clone(), r.record.clone()))
            .collect()
    }

    /// Stores a record directly (a poll or GET of another process, for instance).
    pub fn insert(&self, key: &str, state: RecordState, full_state: bool) {
        let lifetime = match state {
            RecordState::InProgress => self.in_progress_expiry,
            RecordState::Completed => self.ttl,
        };
        lock(&self.records).insert(
            key.to_owned(),
            StoredRecord {
                record: DedupeRecord { state, full_state },
                expires: self.now() + lifetime,
                token: ClaimToken::generate(full_state),
            },
        );
    }

    async fn check(&self, op: DedupeOp) -> Result<(), StoreError> {
        let mode = lock(&self.failing).get(&op).copied().unwrap_or_default();
        match mode {
            Mode::Up => Ok(()),
            Mode::Down => Err(StoreError::Unavailable(format!(
                "fake dedupe store is down ({op:?})"
            ))),
            Mode::Panic => panic!("fake dedupe store panics ({op:?})"),
            Mode::Hang => std::future::pending().await,
        }
    }
}

/// Claims `keys` on `store` (events), moves `memory` (the memory store under `store`) past the
/// in-progress expiry and has another request take each key over (a full-state claim): the
/// first claims, whose completions are take-overs, as a claim that outlived its expiry makes.
pub async fn overtaken_claims(
    store: &dyn DedupeStore,
    memory: &MemoryDedupe,
    keys: &[&str],
) -> Vec<(String, ClaimToken)> {
    let mut late = Vec::new();
    for key in keys {
        let ClaimOutcome::Claimed(token) = store.claim(key, false).await.unwrap() else {
            panic!("the first claim of {key} is granted");
        };
        late.push(((*key).to_owned(), token));
    }
    memory.advance(memory.in_progress_expiry + Duration::from_secs(1));
    for key in keys {
        let taken = store.claim(key, true).await.unwrap();
        assert!(
            matches!(taken, ClaimOutcome::Claimed(_)),
            "{key}: {taken:?}"
        );
    }
    late
}

#[async_trait]
impl DedupeStore for MemoryDedupe {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.check(DedupeOp::Claim).await?;
        let now = self.now();
        let mut records = lock(&self.records);
        if let Some(existing) = records.get_mut(key)
            && existing.expires > now
            && !by.is_some_and(|by| {
                by.takes_over(existing.record.state, Some(existing.token.as_str()))
            })
        {
            // As the real stores: a completed record found in the second half of its life
            // lives for the TTL again.
            if existing.record.state == RecordState::Completed
                && existing.expires.saturating_duration_since(now) < self.ttl / 2
            {
                existing.expires = now + self.ttl;
            }
            return Ok(ClaimOutcome::Exists(existing.record.clone()));
        }
        let token = ClaimToken::generate_for(full_state, by);
        records.insert(
            key.to_owned(),
            StoredRecord {
                record: DedupeRecord {
                    state: RecordState::InProgress,
                    full_state,
                },
                expires: now + self.in_progress_expiry,
                token: token.clone(),
            },
        );
        Ok(ClaimOutcome::Claimed(token))
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError> {
        self.check(DedupeOp::Complete).await?;
        let now = self.now();
        let mut records = lock(&self.records);
        let live = records.get(key).filter(|r| r.expires > now);
        let completion = match live {
            Some(r) if r.token != *token => Completion::TakenOver,
            _ => Completion::Completed,
        };
        // As the real stores: a lapsed or taken-over claim (or a purged record) is recorded as
        // sent all the same.
        let full_state = token.completes_full_state(live.map(|r| &r.record));
        records.insert(
            key.to_owned(),
            StoredRecord {
                record: DedupeRecord {
                    state: RecordState::Completed,
                    full_state,
                },
                expires: now + self.ttl,
                token: token.clone(),
            },
        );
        Ok(completion)
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        self.check(DedupeOp::Release).await?;
        let mut records = lock(&self.records);
        if records
            .get(key)
            .is_some_and(|r| r.record.state == RecordState::InProgress && r.token == *token)
        {
            records.remove(key);
        }
        Ok(())
    }

    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        self.check(DedupeOp::Lookup).await?;
        let now = self.now();
        Ok(lock(&self.records)
            .get(key)
            .filter(|r| r.expires > now)
            .map(|r| r.record.clone()))
    }
}

/// A [`Quarantine`] in memory.
#[derive(Debug, Default)]
pub struct MemoryQuarantine {
    kept: Mutex<Vec<QuarantinedRequest>>,
    mode: Mutex<Mode>,
}

impl MemoryQuarantine {
    /// An empty, working quarantine.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything kept so far.
    pub fn kept(&self) -> Vec<QuarantinedRequest> {
        lock(&self.kept).clone()
    }

    /// Switches the behaviour of later calls.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.mode) = mode;
    }
}

#[async_trait]
impl Quarantine for MemoryQuarantine {
    async fn keep(&self, request: &QuarantinedRequest) -> Result<(), StoreError> {
        let mode = *lock(&self.mode);
        match mode {
            Mode::Up => {}
            Mode::Down => return Err(StoreError::Unavailable("fake quarantine is down".into())),
            Mode::Panic => panic!("fake quarantine panics"),
            Mode::Hang => std::future::pending::<()>().await,
        }
        lock(&self.kept).push(request.clone());
        Ok(())
    }
}

/// How [`FakeTradecloud`] fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFailure {
    /// [`ApiError::Upstream`] with this status.
    Upstream(u16),
    /// [`ApiError::Timeout`].
    Timeout,
    /// [`ApiError::Unavailable`].
    Unavailable,
    /// [`ApiError::Unauthorized`].
    Unauthorized,
    /// [`ApiError::Malformed`].
    Malformed,
    /// [`ApiError::Refused`] with this status (Tradecloud answered 4xx to our request).
    Refused(u16),
    /// Never answers.
    Hang,
}

impl ApiFailure {
    fn to_error(self) -> ApiError {
        match self {
            ApiFailure::Upstream(status) => ApiError::Upstream { status },
            ApiFailure::Timeout => ApiError::Timeout,
            ApiFailure::Unavailable => ApiError::Unavailable("fake Tradecloud is down".into()),
            ApiFailure::Unauthorized => ApiError::Unauthorized,
            ApiFailure::Malformed => ApiError::Malformed("fake garbage".into()),
            ApiFailure::Refused(status) => ApiError::Refused {
                status,
                reason: "fake refusal".into(),
            },
            // Handled before the call returns (see `fetch`).
            ApiFailure::Hang => ApiError::Timeout,
        }
    }
}

/// A [`TradecloudApi`] serving objects from memory; unknown ids are [`ApiError::NotFound`].
#[derive(Debug, Default)]
pub struct FakeTradecloud {
    orders: Mutex<HashMap<String, Value>>,
    shipments: Mutex<HashMap<String, Value>>,
    failure: Mutex<Option<ApiFailure>>,
    calls: Mutex<Vec<String>>,
}

impl FakeTradecloud {
    /// No objects, working.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `order` for `GET /order/{id}`.
    pub fn put_order(&self, id: &str, order: Value) {
        lock(&self.orders).insert(id.to_owned(), order);
    }

    /// Serves `shipment` for `GET /shipment/{id}`.
    pub fn put_shipment(&self, id: &str, shipment: Value) {
        lock(&self.shipments).insert(id.to_owned(), shipment);
    }

    /// Makes every call fail this way (`None`: work again).
    pub fn set_failure(&self, failure: Option<ApiFailure>) {
        *lock(&self.failure) = failure;
    }

    /// The calls made, as `order/<id>` or `shipment/<id>`.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    async fn fetch(
        &self,
        what: &str,
        map: &Mutex<HashMap<String, Value>>,
        id: &str,
    ) -> Result<Value, ApiError> {
        lock(&self.calls).push(format!("{what}/{id}"));
        let failure = *lock(&self.failure);
        match failure {
            Some(ApiFailure::Hang) => std::future::pending().await,
            Some(failure) => Err(failure.to_error()),
            None => lock(map).get(id).cloned().ok_or(ApiError::NotFound),
        }
    }
}

#[async_trait]
impl TradecloudApi for FakeTradecloud {
    async fn fetch_order(&self, id: &str) -> Result<Value, ApiError> {
        self.fetch("order", &self.orders, id).await
    }

    async fn fetch_shipment(&self, id: &str) -> Result<Value, ApiError> {
        self.fetch("shipment", &self.shipments, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl crate::conformance::dedupe_store::Subject for MemoryDedupe {
        fn store(&self) -> &dyn DedupeStore {
            self
        }

        fn advance(&self, by: Duration) {
            MemoryDedupe::advance(self, by);
        }
    }

    async fn memory_dedupe() -> MemoryDedupe {
        use crate::conformance::dedupe_store::{IN_PROGRESS_EXPIRY, TTL};
        MemoryDedupe::new(IN_PROGRESS_EXPIRY, TTL)
    }

    crate::dedupe_store_conformance!(memory_dedupe());

    /// The memory sink with a consumer that reads what it has not read yet.
    #[derive(Default)]
    struct MemoryQueue {
        sink: MemorySink,
        read: Mutex<usize>,
    }

    #[async_trait]
    impl crate::conformance::event_sink::Subject for MemoryQueue {
        fn sink(&self) -> &dyn EventSink {
            &self.sink
        }

        async fn receive(&self) -> Vec<String> {
            let all = self.sink.envelopes();
            let mut read = lock(&self.read);
            let new = all[*read..]
                .iter()
                .map(|e| e.to_json().expect("the envelope serialises"))
                .collect();
            *read = all.len();
            new
        }

        fn keeps_order(&self) -> bool {
            true
        }

        fn refuse(&self, on: bool) {
            use crate::conformance::event_sink::REFUSED_EVENT;
            self.sink.refuse_event(on.then_some(REFUSED_EVENT));
        }

        fn claim_check_threshold(&self) -> Option<usize> {
            None
        }
    }

    async fn memory_queue() -> MemoryQueue {
        MemoryQueue::default()
    }

    crate::event_sink_conformance!(memory_queue());

    #[async_trait]
    impl crate::conformance::quarantine::Subject for MemoryQuarantine {
        fn quarantine(&self) -> &dyn Quarantine {
            self
        }

        async fn kept(&self) -> Vec<QuarantinedRequest> {
            MemoryQuarantine::kept(self)
        }

        fn claim_check_threshold(&self) -> Option<usize> {
            None
        }
    }

    async fn memory_quarantine() -> MemoryQuarantine {
        MemoryQuarantine::new()
    }

    crate::quarantine_conformance!(memory_quarantine());
}
