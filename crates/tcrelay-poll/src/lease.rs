//! A stream's cursor lease while a run works: short, renewed by a heartbeat, released on every
//! way out of the run.
//!
//! A lease only has to outlive the gap between two heartbeats, not the whole run, so it can be
//! short (seconds): a runner that is killed (`kill -9`, a Lambda that times out) blocks the
//! stream for at most one lease, and a restarted runner polls again within seconds. Two live
//! runs still never both advance the cursor: a checkpoint is conditional on owner and version,
//! and a run whose heartbeat finds the lease taken over stops.
//!
//! The lease also ends a killed run's dedupe claims: a run that holds it takes over the claims
//! an earlier run of the stream left in progress ([`HeldLease::claimant`]), so a run killed
//! between a page's claims and their completion holds the stream for one lease, not for the
//! in-progress expiry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tcrelay_core::ports::{Claimant, CursorStore, StoreError};
use tokio::task::JoinHandle;

/// The heartbeat renews this many times per lease, so one slow or failed renewal still leaves
/// time for the next before the lease runs out.
pub const BEATS_PER_LEASE: u32 = 3;

/// What the heartbeat tells the run.
#[derive(Debug)]
struct LeaseState {
    /// Until when the lease is known to be ours: the send time of the last successful renewal
    /// (or the acquire) plus the lease.
    valid_until: Mutex<Instant>,
    /// A renewal found the lease released or taken over.
    lost: AtomicBool,
}

/// The lease of one stream held by one run. Dropping it without [`HeldLease::release`] (an
/// error path the run did not expect, a panic, a cancelled future) still stops the heartbeat and
/// releases the lease in the background.
pub(crate) struct HeldLease {
    cursors: Arc<dyn CursorStore>,
    stream: &'static str,
    owner: String,
    /// When the run asked for the lease, by the wall clock: it orders the runs' claims
    /// ([`Claimant`]).
    taken: DateTime<Utc>,
    lease: Duration,
    state: Arc<LeaseState>,
    heartbeat: Option<JoinHandle<()>>,
}

impl HeldLease {
    /// Starts the heartbeat of a lease just acquired (asked for at `acquired_at` and, by the
    /// wall clock, at `taken`, both read before the call).
    pub fn start(
        cursors: Arc<dyn CursorStore>,
        stream: &'static str,
        owner: &str,
        lease: Duration,
        acquired_at: Instant,
        taken: DateTime<Utc>,
    ) -> Self {
        let state = Arc::new(LeaseState {
            valid_until: Mutex::new(acquired_at + lease),
            lost: AtomicBool::new(false),
        });
        let heartbeat = tokio::spawn(beat(
            cursors.clone(),
            stream,
            owner.to_owned(),
            lease,
            state.clone(),
        ));
        Self {
            cursors,
            stream,
            owner: owner.to_owned(),
            taken,
            lease,
            state,
            heartbeat: Some(heartbeat),
        }
    }

    /// Whether the run must stop: the lease was taken over, or renewals failed long enough that
    /// less than one beat is left of it.
    pub fn lost(&self) -> bool {
        if self.state.lost.load(Ordering::SeqCst) {
            return true;
        }
        let valid_until = *self
            .state
            .valid_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        valid_until.saturating_duration_since(Instant::now()) < self.lease / BEATS_PER_LEASE
    }

    /// Whether the lease is still this run's, renewed here and now when less than a beat of it
    /// is left ([`Self::lost`]). The heartbeat is a task of its own, but the poller's runtime
    /// has one thread (Lambda's): a page that keeps it busy (a large page parsed) gives the
    /// heartbeat no turn, and with the shortest lease (2 s) every run stopped at the same
    /// page, `lease-unsure`, sending nothing. The lease is still ours while it has not run out,
    /// and after that until another run takes it: only its recorded owner renews it
    /// ([`CursorStore::renew`]), so a renewal that lands means no other run holds the stream.
    /// `false` when the renewal is refused (the lease taken over: [`Self::taken_over`] says so
    /// from then on) or fails (the store unreachable).
    pub async fn confirm(&self) -> bool {
        if self.taken_over() {
            return false;
        }
        if !self.lost() {
            return true;
        }
        let sent = Instant::now();
        match self
            .cursors
            .renew(self.stream, &self.owner, self.lease)
            .await
        {
            Ok(()) => {
                let mut valid_until = self
                    .state
                    .valid_until
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                *valid_until = (*valid_until).max(sent + self.lease);
                true
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::warn!(
                    stream = self.stream,
                    reason,
                    "cursor lease lost to another run; this run stops"
                );
                self.state.lost.store(true, Ordering::SeqCst);
                false
            }
            Err(e) => {
                tracing::warn!(stream = self.stream, error = %e, "could not renew the cursor lease");
                false
            }
        }
    }

    /// This run as the maker of its dedupe claims while it holds the lease, so they take over
    /// at once the claims an earlier run of the stream left in progress (it died mid-page, or
    /// lost the lease): [`Claimant`]. `None` once the lease may be lost ([`Self::lost`]): a run
    /// that may no longer hold it leaves even those to the run that takes the lease next.
    pub fn claimant(&self) -> Option<Claimant> {
        (!self.lost()).then(|| Claimant::poll_run(self.stream, &self.owner, self.taken))
    }

    /// Whether a renewal found the lease in another owner's hands (or released).
    pub fn taken_over(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst)
    }

    /// Stops the heartbeat and gives the lease up, waiting for the store.
    pub async fn release(mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
            // A renewal in flight must not land after the release.
            let _ = heartbeat.await;
        }
        if let Err(e) = self.cursors.release(self.stream, &self.owner).await {
            // The lease then simply expires, one lease from the last renewal.
            tracing::warn!(stream = self.stream, error = %e, "could not release the cursor lease; it will expire");
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(heartbeat) = self.heartbeat.take() else {
            return;
        };
        heartbeat.abort();
        let (cursors, stream, owner) = (self.cursors.clone(), self.stream, self.owner.clone());
        // Without a runtime (the process is exiting) the lease expires within one lease.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            tracing::warn!(
                stream,
                "poll run ended without releasing its lease (error or panic); releasing it now"
            );
            runtime.spawn(async move {
                let _ = heartbeat.await;
                if let Err(e) = cursors.release(stream, &owner).await {
                    tracing::warn!(stream, error = %e, "could not release the cursor lease; it will expire");
                }
            });
        }
    }
}

async fn beat(
    cursors: Arc<dyn CursorStore>,
    stream: &'static str,
    owner: String,
    lease: Duration,
    state: Arc<LeaseState>,
) {
    let every = (lease / BEATS_PER_LEASE).max(Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        match cursors.renew(stream, &owner, lease).await {
            Ok(()) => {
                *state
                    .valid_until
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = sent + lease;
            }
            Err(StoreError::Conflict(reason)) => {
                tracing::warn!(
                    stream,
                    reason,
                    "cursor lease lost to another run; this run stops"
                );
                state.lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                // The next beat tries again; the run stops if the lease gets too short.
                tracing::warn!(stream, error = %e, "could not renew the cursor lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryCursorStore;

    #[tokio::test]
    async fn a_run_names_itself_in_its_claims_only_while_its_lease_is_sure() {
        let cursors = Arc::new(MemoryCursorStore::new());
        let lease = Duration::from_millis(300);
        let (acquired_at, taken) = (Instant::now(), Utc::now());
        assert!(
            cursors
                .acquire("orders", "run-1", lease)
                .await
                .unwrap()
                .is_some()
        );
        let held = HeldLease::start(
            cursors.clone(),
            "orders",
            "run-1",
            lease,
            acquired_at,
            taken,
        );
        assert_eq!(
            held.claimant(),
            Some(Claimant::poll_run("orders", "run-1", taken))
        );
        // Renewals fail: once less than a beat of the lease is left, another run may take it
        // soon, and this run must not take over that run's claims.
        cursors.set_down(true);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(held.lost());
        assert_eq!(held.claimant(), None);
        cursors.set_down(false);
        held.release().await;
    }
}
