//! Faults injected on our side of the relay, for the demo and the end-to-end tests: a queue that
//! becomes unavailable on demand, or stalls (accepts the call and does not answer); a dedupe
//! store that slows down (every call takes longer, as DynamoDB throttled and retried by the
//! SDK). Unavailable:
//! the webhook answers 503 (Tradecloud retries) and a poll run stops at the failing page with its
//! cursor at the last checkpoint. Stalled: a webhook request runs out of its budget and is
//! answered 503 before a gateway would give up on it; a poll run waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;

use tcrelay_core::Envelope;
use tcrelay_core::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, EventSink,
    SinkError, StoreError,
};

/// An [`EventSink`] decorator that refuses every batch while switched off, and holds every
/// batch while stalled.
pub struct SwitchableSink {
    inner: Arc<dyn EventSink>,
    down: AtomicBool,
    refused: AtomicU64,
    stalled: AtomicBool,
    held: AtomicU64,
}

impl std::fmt::Debug for SwitchableSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchableSink")
            .field("down", &self.is_down())
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl SwitchableSink {
    /// Wraps `inner`; starts up (passing every batch through).
    pub fn new(inner: Arc<dyn EventSink>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
            refused: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            held: AtomicU64::new(0),
        }
    }

    /// Makes the queue stall (`true`: calls wait, answering nothing, until it is un-stalled,
    /// then go through; a caller that gives up first drops its call) or answer again.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Whether the queue stalls now.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    /// How many batches arrived while the queue stalled.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::SeqCst)
    }

    /// Makes the queue unavailable (`true`) or available again (`false`).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Whether the queue is unavailable now.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// How many batches were refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventSink for SwitchableSink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        if self.is_stalled() {
            self.held.fetch_add(1, Ordering::SeqCst);
            while self.is_stalled() {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        if self.is_down() {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(SinkError {
                failed: (0..envelopes.len()).collect(),
                reason: "queue unavailable (injected fault)".into(),
            });
        }
        self.inner.enqueue(envelopes).await
    }
}

/// A [`DedupeStore`] decorator that delays every call while slowed. A slowed call still
/// completes: the request that made it may have run out of time meanwhile.
pub struct SlowDedupe {
    inner: Arc<dyn DedupeStore>,
    delay: Mutex<Option<Duration>>,
    delayed: AtomicU64,
}

impl std::fmt::Debug for SlowDedupe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlowDedupe")
            .field("delay", &self.delay())
            .field("delayed", &self.delayed())
            .finish_non_exhaustive()
    }
}

impl SlowDedupe {
    /// Wraps `inner`; starts at full speed.
    pub fn new(inner: Arc<dyn DedupeStore>) -> Self {
        Self {
            inner,
            delay: Mutex::new(None),
            delayed: AtomicU64::new(0),
        }
    }

    /// Delays every later call by `delay` (`None`: full speed again).
    pub fn set_delay(&self, delay: Option<Duration>) {
        *self.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    /// The delay now.
    pub fn delay(&self) -> Option<Duration> {
        *self.delay.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many calls were delayed so far.
    pub fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::SeqCst)
    }

    async fn slow(&self) {
        if let Some(delay) = self.delay() {
            self.delayed.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
        }
    }
}

#[async_trait]
impl DedupeStore for SlowDedupe {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.slow().await;
        self.inner.claim_as(key, full_state, by).await
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError> {
        self.slow().await;
        self.inner.complete(key, token).await
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        self.slow().await;
        self.inner.release(key, token).await
    }

    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        self.slow().await;
        self.inner.lookup(key).await
    }
}
