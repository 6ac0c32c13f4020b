//! Counting dedupe take-overs for the hosts' metrics.
//!
//! A completion answered [`Completion::TakenOver`] means a claim outlived the in-progress expiry
//! and another request claimed the key meanwhile: the ERP may have that message twice, the one
//! outcome that breaks exactly-once delivery. The relay logs each at ERROR; the hosts also count
//! them, by wrapping their store in [`CountingTakeOvers`], so an alarm can fire on it. The count
//! sits at the store's edge rather than in the relay's answers because a completion may finish
//! after its request was answered (a slow store), and it still counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, StoreError,
};

/// The take-overs counted by a [`CountingTakeOvers`] store; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct TakeOverCount {
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: AtomicU64,
    reported: AtomicU64,
}

impl TakeOverCount {
    /// Every take-over counted since the start (a Prometheus counter).
    pub fn total(&self) -> u64 {
        self.counts.total.load(Ordering::Relaxed)
    }

    /// The take-overs counted since the previous call (a metric line's count). Meant for one
    /// reporter: two would split the count between them.
    pub fn since_last_report(&self) -> u64 {
        let total = self.total();
        total - self.counts.reported.swap(total, Ordering::Relaxed)
    }

    fn add(&self, take_overs: u64) {
        if take_overs > 0 {
            self.counts.total.fetch_add(take_overs, Ordering::Relaxed);
        }
    }
}

/// A dedupe store that counts the completions answered [`Completion::TakenOver`] and passes
/// everything else through unchanged.
pub struct CountingTakeOvers {
    inner: Arc<dyn DedupeStore>,
    count: TakeOverCount,
}

impl CountingTakeOvers {
    /// Wraps `inner`; [`Self::count`] reads what it counted.
    pub fn new(inner: Arc<dyn DedupeStore>) -> Self {
        CountingTakeOvers {
            inner,
            count: TakeOverCount::default(),
        }
    }

    /// The shared count of this store's take-overs.
    pub fn count(&self) -> TakeOverCount {
        self.count.clone()
    }
}

impl std::fmt::Debug for CountingTakeOvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingTakeOvers")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn is_take_over(outcome: &Result<Completion, StoreError>) -> bool {
    matches!(outcome, Ok(Completion::TakenOver))
}

#[async_trait]
impl DedupeStore for CountingTakeOvers {
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError> {
        self.inner.claim_as(key, full_state, by).await
    }

    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError> {
        let outcome = self.inner.complete(key, token).await;
        self.count.add(u64::from(is_take_over(&outcome)));
        outcome
    }

    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError> {
        self.inner.release(key, token).await
    }

    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        self.inner.lookup(key).await
    }

    async fn claim_many(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        self.inner.claim_many(keys, by).await
    }

    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<Completion, StoreError>> {
        let outcomes = self.inner.complete_many(claims).await;
        let take_overs = outcomes.iter().filter(|o| is_take_over(o)).count();
        self.count.add(take_overs as u64);
        outcomes
    }

    async fn release_many(&self, claims: &[(String, ClaimToken)]) -> Vec<Result<(), StoreError>> {
        self.inner.release_many(claims).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::{MemoryDedupe, overtaken_claims as overtaken};

    const EXPIRY: Duration = Duration::from_secs(60);

    /// A counting store over a memory store, and that memory store (to move its clock).
    fn counting() -> (CountingTakeOvers, Arc<MemoryDedupe>) {
        let inner = Arc::new(MemoryDedupe::new(EXPIRY, Duration::from_secs(3600)));
        (CountingTakeOvers::new(inner.clone()), inner)
    }

    /// Completes each of `claims` alone.
    async fn complete_each(store: &CountingTakeOvers, claims: &[(String, ClaimToken)]) {
        for (key, token) in claims {
            store.complete(key, token).await.unwrap();
        }
    }

    #[tokio::test]
    async fn counts_take_overs_of_single_and_batch_completions_only() {
        let (store, memory) = counting();
        let count = store.count();
        let late = overtaken(&store, &memory, &["a"]).await;
        assert_eq!(
            store.complete("a", &late[0].1).await.unwrap(),
            Completion::TakenOver
        );
        assert_eq!(count.total(), 1);

        let mut claims = overtaken(&store, &memory, &["b", "c"]).await;
        let ClaimOutcome::Claimed(d) = store.claim("d", false).await.unwrap() else {
            panic!("d is granted");
        };
        claims.push(("d".to_owned(), d));
        let outcomes: Vec<Completion> = store
            .complete_many(&claims)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            outcomes,
            [
                Completion::TakenOver,
                Completion::TakenOver,
                Completion::Completed
            ]
        );
        assert_eq!(count.total(), 3);
    }

    #[tokio::test]
    async fn reports_each_take_over_once_and_keeps_the_total() {
        let (store, memory) = counting();
        let count = store.count();
        assert_eq!(count.since_last_report(), 0);
        let late = overtaken(&store, &memory, &["a", "b"]).await;
        complete_each(&store, &late).await;
        assert_eq!(count.since_last_report(), 2);
        assert_eq!(count.since_last_report(), 0);
        let late = overtaken(&store, &memory, &["c"]).await;
        complete_each(&store, &late).await;
        assert_eq!(count.since_last_report(), 1);
        assert_eq!(count.total(), 3);
    }
}
