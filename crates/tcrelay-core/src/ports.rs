//! The ports: what the core needs from the outside world. Adapters (SQS, DynamoDB, S3, SQLite,
//! Tradecloud's HTTP API) implement these traits; the core and its tests depend only on them.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::envelope::Envelope;

/// A storage or queue failure. Every variant except `Conflict` is transient: the webhook answers
/// 503 so Tradecloud retries, and the poller leaves its cursor where it was.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing service could not be reached or refused the call; try again later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// An optimistic-concurrency check failed: someone else wrote first.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The stored data could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// A failure to enqueue part or all of a batch.
#[derive(Debug, thiserror::Error)]
#[error("enqueue failed for {} of the envelopes: {reason}", failed.len())]
pub struct SinkError {
    /// Indexes (into the batch given) of the envelopes that were *not* enqueued. The others were.
    pub failed: Vec<usize>,
    /// Why, for the log.
    pub reason: String,
}

/// Where envelopes go: the ERP's queue.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Enqueues the envelopes, in order. `Ok` only when every one is durably accepted; on `Err`
    /// the error lists exactly which were not, so the caller can release their dedupe claims.
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError>;
}

/// The state of a dedupe record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    /// Claimed by a request that has not finished; it expires on its own if that request dies.
    InProgress,
    /// Enqueued: later arrivals with the same key are duplicates until the record expires.
    Completed,
}

/// A dedupe record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeRecord {
    /// In progress or completed.
    pub state: RecordState,
    /// True when written for a complete object (poll or GET), false for a webhook event.
    pub full_state: bool,
}

/// Proof of one claim on a dedupe key: only the request holding it may complete or release
/// that claim. Without it a request whose claim had expired (and been taken over by a retry)
/// would release or overwrite the retry's claim, and the ERP could get the message twice
/// without anyone noticing.
///
/// It also says whether the claim was for a full state: the completion records what this
/// request sent, which the record may no longer say once another claim took the key over.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimToken {
    id: String,
    full_state: bool,
}

impl ClaimToken {
    /// A new, unique token (a random UUID) for a claim of a full state or not, made by a store
    /// when it grants a claim.
    pub fn generate(full_state: bool) -> Self {
        Self::generate_for(full_state, None)
    }

    /// A new, unique token for a claim made `by` a poll run (see [`Claimant`]): its text starts
    /// with the run's [`Claimant::own_prefix`], then a random UUID. Without a claimant, the UUID
    /// alone, as [`Self::generate`].
    pub fn generate_for(full_state: bool, by: Option<&Claimant>) -> Self {
        let uuid = uuid::Uuid::new_v4();
        let id = match by {
            Some(claimant) => format!("{}{uuid}", claimant.own),
            None => uuid.to_string(),
        };
        Self { id, full_state }
    }

    /// The token's text, as stored.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Whether the claim was for a full state (a poll or GET result).
    pub fn full_state(&self) -> bool {
        self.full_state
    }

    /// Whether the completion under this token records a full state, given the key's live
    /// record when there is one: when this claim was for one, or when another request already
    /// completed one (it was sent). Never because another claim still in progress is for one:
    /// a poll run killed before it sent would make later events of that state duplicates that
    /// never reach the queue.
    pub fn completes_full_state(&self, live: Option<&DedupeRecord>) -> bool {
        self.full_state
            || live
                .is_some_and(|record| record.state == RecordState::Completed && record.full_state)
    }
}

/// A poll run as the maker of its claims: the stream it polls, when it took the stream's lease
/// and its lease owner, written at the start of each claim's token
/// (`poll/<stream>/<taken>/<owner>/<uuid>`, the stream and owner escaped, the time UTC to the
/// millisecond in a fixed width, so tokens sort by it).
///
/// A run holds its stream's lease while it claims, and a lease has one owner at a time. So a
/// claim still in progress under a run of the same stream that took the lease earlier belongs
/// to a run that no longer holds it: it was killed between a page's claims and their
/// completion, or it lost the lease and stops at its next heartbeat. A claim made by a claimant
/// takes such a claim over at once ([`Self::takes_over`]) instead of waiting for the
/// in-progress expiry (`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`, minutes), which held the restarted
/// stream that long. If the old run had sent the state before it died, the new run sends it
/// again: the same at-least-once window as a claim that expired (a FIFO queue drops the repeat,
/// whose deduplication id is the same, within its five minutes, and so does the local queue).
///
/// Never the other way round: a run that lost the lease may still be claiming (a slow claim
/// call), and the claims of the run that took the lease after it are not its to take; taken,
/// its give-back would free them under the new run's send. A lease is taken only after the last
/// one ran out, at least one lease (seconds) after it was taken, so the times order the runs
/// while the runners' clocks agree within a lease. Runs that took the lease in the same
/// millisecond (only a clock held still, in tests) take each other's over, as before the times
/// were written. A webhook's claims have no claimant and are never taken over early: their
/// request may still be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    /// `poll/<stream>/`: what the tokens of every run of the stream start with.
    runs: String,
    /// `poll/<stream>/<taken>/<owner>/`: what this run's tokens start with.
    own: String,
    /// `poll/<stream>/<taken>0`: every token of a run that took the lease at or before this
    /// one sorts below it (`0` follows the `/` after the time), every later one above.
    taken_by: String,
}

impl Claimant {
    /// The run of `stream` whose lease owner is `owner`, which took the lease at `taken`.
    pub fn poll_run(stream: &str, owner: &str, taken: DateTime<Utc>) -> Self {
        let runs = format!("poll/{}/", tradecloud_model::key_part(stream));
        let taken = taken.format("%Y%m%dT%H%M%S%.3fZ");
        let own = format!("{runs}{taken}/{}/", tradecloud_model::key_part(owner));
        let taken_by = format!("{runs}{taken}0");
        Self {
            runs,
            own,
            taken_by,
        }
    }

    /// What the claim tokens of every run of this claimant's stream start with.
    pub fn runs_prefix(&self) -> &str {
        &self.runs
    }

    /// What the claim tokens of this run start with.
    pub fn own_prefix(&self) -> &str {
        &self.own
    }

    /// What the claim tokens of every run of the stream that took the lease at or before this
    /// one sort below (byte order, as DynamoDB compares strings).
    pub fn taken_by_bound(&self) -> &str {
        &self.taken_by
    }

    /// Whether this run may take over a live record in `state` written under the claim token
    /// `token` (`None`: the record has none): a claim in progress of another run of the same
    /// stream that took the lease no later than this one. Never a completed record, a claim of
    /// this run or of a later run, or one without a claimant. (DynamoDB's claim condition says
    /// the same in its own terms.)
    pub fn takes_over(&self, state: RecordState, token: Option<&str>) -> bool {
        state == RecordState::InProgress
            && token.is_some_and(|token| {
                token.starts_with(&self.runs)
                    && !token.starts_with(&self.own)
                    && token < self.taken_by.as_str()
            })
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The key was free (absent or expired): the caller now owns it, proven by the token, and
    /// must complete or release it.
    Claimed(ClaimToken),
    /// The key exists and is not expired: this is a duplicate.
    Exists(DedupeRecord),
}

impl ClaimOutcome {
    /// The token of a granted claim, `None` when the key exists.
    pub fn token(&self) -> Option<&ClaimToken> {
        match self {
            ClaimOutcome::Claimed(token) => Some(token),
            ClaimOutcome::Exists(_) => None,
        }
    }
}

/// What completing a claim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The claim was still ours (or had lapsed with nobody else claiming the key): the key is
    /// now completed and later arrivals are duplicates.
    Completed,
    /// Our claim had expired and another request claimed the key before we completed. Both
    /// may have enqueued, so the ERP may see this message twice. The key is completed all
    /// the same (the message was sent), so no third request enqueues it; the caller reports
    /// the take-over, which means the in-progress expiry is shorter than a request can take.
    TakenOver,
}

/// The dedupe table: conditional claim, complete, release, each record with an expiry.
#[async_trait]
pub trait DedupeStore: Send + Sync {
    /// Atomically claims `key` as in progress. Succeeds when the key is absent, its record has
    /// expired, or its in-progress claim has expired (the claimer died); expiry is checked
    /// explicitly, never left to the store's TTL sweeper, which may lag by days.
    async fn claim(&self, key: &str, full_state: bool) -> Result<ClaimOutcome, StoreError> {
        self.claim_as(key, full_state, None).await
    }
    /// [`Self::claim`] made `by` a poll run (or by nobody in particular: `None`, what
    /// [`Self::claim`] is): it is also granted over a claim in progress that
    /// [`Claimant::takes_over`], and its token names the claimant
    /// ([`ClaimToken::generate_for`]).
    async fn claim_as(
        &self,
        key: &str,
        full_state: bool,
        by: Option<&Claimant>,
    ) -> Result<ClaimOutcome, StoreError>;
    /// Marks `key` completed, with the configured time to live, after the message was enqueued
    /// under the claim `token`. Over any record, another claim's too (the message was sent, so
    /// the record must say so); it reports whether another claim had taken the key over
    /// meanwhile. The record is a full state when the token's claim was one, or when it
    /// already was a live completed full state (another request sent it); never for another
    /// claim still in progress, which may never send.
    async fn complete(&self, key: &str, token: &ClaimToken) -> Result<Completion, StoreError>;
    /// Removes the claim `token` holds after a failure, so the retry goes through. Does
    /// nothing when the key is completed or claimed under another token (a retry took over
    /// our expired claim): removing that would let a third request enqueue the message again.
    async fn release(&self, key: &str, token: &ClaimToken) -> Result<(), StoreError>;
    /// Reads the live (not expired) record under `key`.
    async fn lookup(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError>;

    /// Claims each `(key, full_state)` as [`Self::claim`] would, one after the other in the
    /// order given (a key given twice is granted at most once: the second finds the first's
    /// claim). One answer per key, in order. An `Err` means that key holds no claim of ours;
    /// the `Ok(Claimed)` answers are held even when others failed, so the caller must complete
    /// or release them. Stores override it to claim many keys in one round trip.
    /// `by`: the claimant of them all, as [`Self::claim_as`] takes it.
    async fn claim_many(
        &self,
        keys: &[(&str, bool)],
        by: Option<&Claimant>,
    ) -> Vec<Result<ClaimOutcome, StoreError>> {
        let mut outcomes = Vec::with_capacity(keys.len());
        for (key, full_state) in keys {
            outcomes.push(self.claim_as(key, *full_state, by).await);
        }
        outcomes
    }

    /// Completes each `(key, token)` as [`Self::complete`] would, in order; one answer per
    /// claim, in order. Stores override it to complete many claims in one round trip.
    async fn complete_many(
        &self,
        claims: &[(String, ClaimToken)],
    ) -> Vec<Result<Completion, StoreError>> {
        let mut outcomes = Vec::with_capacity(claims.len());
        for (key, token) in claims {
            outcomes.push(self.complete(key, token).await);
        }
        outcomes
    }

    /// Releases each `(key, token)` as [`Self::release`] would, in order; one answer per
    /// claim, in order. Stores override it to release many claims in one round trip.
    async fn release_many(&self, claims: &[(String, ClaimToken)]) -> Vec<Result<(), StoreError>> {
        let mut outcomes = Vec::with_capacity(claims.len());
        for (key, token) in claims {
            outcomes.push(self.release(key, token).await);
        }
        outcomes
    }
}

/// A request we authenticated but could not process, kept for an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantinedRequest {
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
    /// All headers except `Authorization` (and other credential headers).
    pub headers: Vec<(String, String)>,
    /// The raw body, base64 in JSON so binary garbage survives.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Why it was refused, as told to Tradecloud.
    pub reason: String,
}

mod base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        use base64::Engine;
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Where refused-but-authenticated requests go before the 4xx answer.
#[async_trait]
pub trait Quarantine: Send + Sync {
    /// Keeps the request durably; on `Err` the webhook answers 503 instead of the 4xx.
    async fn keep(&self, request: &QuarantinedRequest) -> Result<(), StoreError>;
}

/// A failure of a call to Tradecloud's API, classified by what the webhook answers.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the id is unknown to Tradecloud (webhook answers 404).
    #[error("not found")]
    NotFound,
    /// Our API credentials were refused, even after logging in again (webhook answers 503).
    #[error(
        "Tradecloud refused our API login (401) or access (403): check TRADECLOUD_USERNAME and \
         TRADECLOUD_PASSWORD (or the secret of TCRELAY_TRADECLOUD_SECRET_ARN), and that the \
         user has Tradecloud's `integration` role"
    )]
    Unauthorized,
    /// Tradecloud answered with an error status and kept doing so within the retry budget (502).
    #[error("Tradecloud answered {status}")]
    Upstream {
        /// The last status seen.
        status: u16,
    },
    /// Tradecloud did not answer in time (504).
    #[error("Tradecloud did not answer in time")]
    Timeout,
    /// Tradecloud could not be reached (503).
    #[error("Tradecloud unreachable: {0}")]
    Unavailable(String),
    /// Tradecloud refused our request with a 4xx other than 401/403/404/429: a functional
    /// refusal that will not succeed on a retry. The webhook keeps the request in the
    /// quarantine and answers 400; the poll loop stops the stream for an operator.
    #[error("Tradecloud refused the request with {status}: {reason}")]
    Refused {
        /// Tradecloud's status.
        status: u16,
        /// The start of Tradecloud's answer, for the operator.
        reason: String,
    },
    /// Tradecloud answered 2xx with a body we cannot read (502).
    #[error("Tradecloud sent a malformed answer: {0}")]
    Malformed(String),
    /// Tradecloud's answer was larger than the client reads (502 for a GET; the poll asks for
    /// smaller pages).
    #[error("Tradecloud's answer is too large: {0}")]
    TooLarge(String),
}

/// Tradecloud's API as the core needs it.
#[async_trait]
pub trait TradecloudApi: Send + Sync {
    /// `GET /order/{id}`: the complete order, all lines, as JSON.
    async fn fetch_order(&self, id: &str) -> Result<serde_json::Value, ApiError>;
    /// `GET /shipment/{id}`: the complete shipment as JSON.
    async fn fetch_shipment(&self, id: &str) -> Result<serde_json::Value, ApiError>;
}

/// A poll stream's cursor as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last `lastUpdatedAt` string Tradecloud returned, verbatim; `None` before the first run.
    pub value: Option<String>,
    /// Incremented by every checkpoint; a checkpoint is conditional on the version it read.
    pub version: u64,
    /// Where the window of the runs since the last one that ended caught up began, verbatim:
    /// a run that stops before it catches up (its deadline, a failed page, a state in progress
    /// elsewhere) has checkpointed past objects it never saw, because they had changed again
    /// before their page was fetched; the next run reads their lines as changed since here,
    /// not since the cursor. `None` when the last run that wrote the cursor caught up, before
    /// the first checkpoint, and after [`CursorStore::set`].
    pub window_start: Option<String>,
    /// Where the run that wrote the cursor stood when it stopped part-way, in the poll run's
    /// own format (stored verbatim): a walk of a result set by offset, paging inside one
    /// timestamp, or a move by time still to be checked. A result set or a timestamp too large
    /// for one run is so paged on by the next instead of from its start again, which would
    /// never end. `None` when the last checkpoint stored no such progress, before the first
    /// checkpoint, and after [`CursorStore::set`].
    pub walk: Option<String>,
}

/// Per-stream cursor with a lease, so overlapping poll runs cannot both advance it.
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// Takes the stream's lease for `owner` until now + `lease_for`, if free or expired, and
    /// returns the cursor; `None` when another owner holds a live lease (back off, write nothing).
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: std::time::Duration,
    ) -> Result<Option<Cursor>, StoreError>;
    /// Stores `value`, `window_start` and `walk` (each absent when `None`) if the stored version is still
    /// `expected_version` and `owner` is the lease's owner; returns the new cursor. `Conflict`
    /// otherwise. An owner whose lease expired may still checkpoint until another run acquires
    /// the stream (which fences it). Values are not compared: an earlier one is stored too (the
    /// poll run's rewind). The contract is `conformance::cursor_store`.
    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<Cursor, StoreError>;
    /// Extends the lease `owner` holds to now + `lease_for` (the heartbeat of a running run).
    /// Only the lease's recorded owner renews, whether or not its lease ran out meanwhile;
    /// `Conflict` when the lease was released, taken over, or never held, writing nothing: the
    /// run has lost the stream and stops. Unlike `acquire`, it never takes a free lease.
    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: std::time::Duration,
    ) -> Result<(), StoreError>;
    /// Gives the lease up (end of run); a no-op for anyone but the owner.
    async fn release(&self, stream: &str, owner: &str) -> Result<(), StoreError>;
    /// Reads the cursor without taking the lease (operators' `cursor show`).
    async fn read(&self, stream: &str) -> Result<Option<Cursor>, StoreError>;
    /// Sets the cursor unconditionally, bumping the version and clearing the window start and
    /// the walk (operators' `cursor set`, backfill).
    async fn set(&self, stream: &str, value: &str) -> Result<Cursor, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: RecordState, full_state: bool) -> DedupeRecord {
        DedupeRecord { state, full_state }
    }

    #[test]
    fn a_completion_is_a_full_state_when_its_claim_or_a_completed_record_was_one() {
        let full = ClaimToken::generate(true);
        let event = ClaimToken::generate(false);
        for live in [
            None,
            Some(record(RecordState::InProgress, false)),
            Some(record(RecordState::InProgress, true)),
            Some(record(RecordState::Completed, false)),
            Some(record(RecordState::Completed, true)),
        ] {
            assert!(full.completes_full_state(live.as_ref()), "{live:?}");
        }
        assert!(!event.completes_full_state(None));
        assert!(!event.completes_full_state(Some(&record(RecordState::Completed, false))));
        assert!(event.completes_full_state(Some(&record(RecordState::Completed, true))));
        // Another claim in progress may never send: its flag is not taken over.
        assert!(!event.completes_full_state(Some(&record(RecordState::InProgress, true))));
    }
}
