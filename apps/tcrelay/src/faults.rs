//! Faults injected on our side of the relay, for the demo and the end-to-end tests: a queue that
//! becomes unavailable on demand. The webhook then answers 503 (Tradecloud retries) and a poll
//! run stops at the failing page with its cursor at the last checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use tcrelay_core::Envelope;
use tcrelay_core::ports::{EventSink, SinkError};

/// An [`EventSink`] decorator that refuses every batch while switched off.
pub struct SwitchableSink {
    inner: Arc<dyn EventSink>,
    down: AtomicBool,
    refused: AtomicU64,
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
        }
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
