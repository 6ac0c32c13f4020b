//! The [`DedupeStore`] contract, as the DynamoDB store implements it and the SQLite store and the
//! memory store follow it:
//!
//! - `claim` of a key that is absent or expired grants it in progress, with a new
//!   [`ClaimToken`]; a live record gives `Exists` with that record, whose `full_state` is the
//!   first claimer's.
//! - An in-progress claim expires [`IN_PROGRESS_EXPIRY`] after it was made (its claimer died); a
//!   completed record [`TTL`] after its completion, or after the last claim that found it with
//!   less than half of the TTL left (such a claim renews it). An expired record reads and
//!   claims exactly like an absent one (expiry is checked by the store, never left to a
//!   sweeper).
//! - `complete` marks the key completed whatever it finds (the message was sent). The record is
//!   a full state when the token's claim was one (what this request sent), or when a live
//!   record another request completed as a full state was there (what that one sent); never
//!   for another claim still in progress, which may never send. It answers `TakenOver` when a
//!   live record of another claim was there, else `Completed`.
//! - `release` removes only an in-progress claim of the token given: never a completed record,
//!   never a claim another request took over after ours expired; on a key never seen it does
//!   nothing.
//! - Of many claims at once on a free key exactly one is granted. Keys of any length work.
//! - `claim_many`, `complete_many` and `release_many` answer each item, in order, exactly as the
//!   single calls made one after the other would (a key given twice in one claim batch is
//!   granted once), for batches of any size.
//! - A claim made by a poll run ([`Claimant`]) is also granted over a claim in progress of
//!   another run of the same stream that took the lease no later, never over anything else;
//!   its token names the run.
//!
//! Each rule is a function taking a [`Subject`]: a fresh, empty store with the expiries above
//! and a way to move its clock. [`dedupe_store_conformance!`](crate::dedupe_store_conformance)
//! expands to one `#[tokio::test]` per rule, so a failure names the rule:
//!
//! ```text
//! tcrelay_core::dedupe_store_conformance!(subject());
//! ```
//!
//! where `subject()` is an async fn (or any expression with `.await`) returning a [`Subject`].

use std::time::Duration;

use crate::ports::{
    ClaimOutcome, ClaimToken, Claimant, Completion, DedupeRecord, DedupeStore, RecordState,
};

/// The in-progress expiry the subject's store must be configured with.
pub const IN_PROGRESS_EXPIRY: Duration = Duration::from_secs(60);
/// The time to live of completed records the subject's store must be configured with.
pub const TTL: Duration = Duration::from_secs(3600);
/// Steps this far from an expiry: DynamoDB keeps the TTL in whole seconds, so the rules stay
/// clear of the exact instant (the adapters test their own precision).
const MARGIN: Duration = Duration::from_secs(2);

/// A store under test. Every rule gets a fresh one whose keys were never written.
pub trait Subject: Send + Sync {
    /// The store, configured with [`IN_PROGRESS_EXPIRY`] and [`TTL`].
    fn store(&self) -> &dyn DedupeStore;
    /// Moves the clock the store checks expiry with forward by `by`, with no time passing
    /// otherwise, so the rules step over an expiry without sleeping.
    fn advance(&self, by: Duration);
}

fn record(state: RecordState, full_state: bool) -> Option<DedupeRecord> {
    Some(DedupeRecord { state, full_state })
}

fn exists(state: RecordState, full_state: bool) -> ClaimOutcome {
    ClaimOutcome::Exists(DedupeRecord { state, full_state })
}

/// Claims `key`, which must be granted; its token.
async fn claimed(s: &dyn Subject, key: &str, full_state: bool) -> ClaimToken {
    let outcome = s
        .store()
        .claim(key, full_state)
        .await
        .unwrap_or_else(|e| panic!("claim of {key}: {e:?}"));
    outcome
        .token()
        .cloned()
        .unwrap_or_else(|| panic!("claim of {key} should be granted, got {outcome:?}"))
}

async fn claim(s: &dyn Subject, key: &str, full_state: bool) -> ClaimOutcome {
    s.store().claim(key, full_state).await.unwrap()
}

async fn lookup(s: &dyn Subject, key: &str) -> Option<DedupeRecord> {
    s.store().lookup(key).await.unwrap()
}

async fn complete(s: &dyn Subject, key: &str, token: &ClaimToken) -> Completion {
    s.store().complete(key, token).await.unwrap()
}

async fn release(s: &dyn Subject, key: &str, token: &ClaimToken) {
    s.store().release(key, token).await.unwrap();
}

/// A key never written reads `None` and is granted, as in progress with the claimer's
/// `full_state`; another key stays independent.
pub async fn an_unseen_key_is_granted_in_progress(s: &dyn Subject) {
    assert_eq!(lookup(s, "k").await, None);
    claimed(s, "k", true).await;
    assert_eq!(lookup(s, "k").await, record(RecordState::InProgress, true));
    assert_eq!(lookup(s, "other").await, None);
    claimed(s, "other", false).await;
    assert_eq!(
        lookup(s, "other").await,
        record(RecordState::InProgress, false)
    );
}

/// Every grant has its own token.
pub async fn every_claim_gets_its_own_token(s: &dyn Subject) {
    let a = claimed(s, "a", false).await;
    let b = claimed(s, "b", false).await;
    assert_ne!(a, b);
}

/// A second claim finds the first one's record, with the first claimer's `full_state`.
pub async fn a_second_claim_finds_the_first(s: &dyn Subject) {
    claimed(s, "k", true).await;
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::InProgress, true)
    );
}

/// After `complete` every claim is a duplicate, and the record keeps its `full_state`.
pub async fn complete_makes_later_claims_duplicates(s: &dyn Subject) {
    let token = claimed(s, "k", true).await;
    assert_eq!(complete(s, "k", &token).await, Completion::Completed);
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, true));
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, true)
    );
}

/// A claim nobody completes or releases (its claimer died) expires after the in-progress
/// expiry, and the key is granted again.
pub async fn an_abandoned_claim_expires_after_the_in_progress_expiry(s: &dyn Subject) {
    claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY - MARGIN);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::InProgress, false)
    );
    s.advance(2 * MARGIN);
    assert_eq!(lookup(s, "k").await, None);
    claimed(s, "k", true).await;
    assert_eq!(lookup(s, "k").await, record(RecordState::InProgress, true));
}

/// A completed record lives for the TTL counted from its completion (not from the claim),
/// unaffected by the in-progress expiry, and is granted again after it.
pub async fn a_completed_record_lives_for_the_ttl_from_completion(s: &dyn Subject) {
    let token = claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY / 2);
    complete(s, "k", &token).await;
    s.advance(IN_PROGRESS_EXPIRY * 2);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, false)
    );
    s.advance(TTL - IN_PROGRESS_EXPIRY * 2 - MARGIN);
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, false));
    s.advance(2 * MARGIN);
    assert_eq!(lookup(s, "k").await, None);
    claimed(s, "k", true).await;
    assert_eq!(lookup(s, "k").await, record(RecordState::InProgress, true));
}

/// A claim that finds a completed record in the second half of its life renews it: the record
/// then lives for the TTL again, counted from that claim. A poll re-asks the state at its
/// cursor on every run for as long as its stream stays quiet (the lookback); without the
/// renewal that state's record expired one TTL after it was sent, and the next run sent the
/// unchanged state again, every TTL. A claim early in a record's life leaves it alone (at most
/// one renewal per half TTL), and a claim in progress is never renewed (its own expiry ends
/// it), single claims and batches alike.
pub async fn a_completed_record_found_late_in_its_life_is_renewed(s: &dyn Subject) {
    let keys = ["single", "batch-a", "batch-b", "batch-c"];
    for key in keys {
        let token = claimed(s, key, key == "single").await;
        complete(s, key, &token).await;
    }
    s.advance(TTL / 2 + MARGIN);
    assert_eq!(
        claim(s, "single", false).await,
        exists(RecordState::Completed, true)
    );
    let outcomes = s
        .store()
        .claim_many(
            &[("batch-a", true), ("batch-b", true), ("batch-c", true)],
            None,
        )
        .await;
    for outcome in &outcomes {
        assert!(
            matches!(outcome, Ok(o) if *o == exists(RecordState::Completed, false)),
            "{outcomes:?}"
        );
    }
    // Past the TTL from the completions: still duplicates, each with its flag.
    s.advance(TTL / 2 + MARGIN);
    assert_eq!(
        lookup(s, "single").await,
        record(RecordState::Completed, true)
    );
    for key in &keys[1..] {
        assert_eq!(
            lookup(s, key).await,
            record(RecordState::Completed, false),
            "{key}"
        );
    }
    // One TTL after the renewing claims, gone.
    s.advance(TTL / 2);
    for key in keys {
        assert_eq!(lookup(s, key).await, None, "{key}");
    }
}

/// Releasing its own claim frees the key for the retry.
pub async fn release_frees_the_claim(s: &dyn Subject) {
    let token = claimed(s, "k", false).await;
    release(s, "k", &token).await;
    assert_eq!(lookup(s, "k").await, None);
    claimed(s, "k", false).await;
}

/// A completed record is never released: its message is on the queue.
pub async fn release_never_removes_a_completed_record(s: &dyn Subject) {
    let token = claimed(s, "k", false).await;
    complete(s, "k", &token).await;
    release(s, "k", &token).await;
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, false)
    );
}

/// Releasing a key never seen does nothing and creates nothing.
pub async fn releasing_an_unseen_key_does_nothing(s: &dyn Subject) {
    release(s, "never", &ClaimToken::generate(false)).await;
    assert_eq!(lookup(s, "never").await, None);
}

/// A request whose claim expired and was taken over by a retry cannot release the retry's
/// claim: that would let a third request enqueue the message too.
pub async fn a_late_release_leaves_the_claim_that_took_over(s: &dyn Subject) {
    let late = claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    let retry = claimed(s, "k", true).await;
    release(s, "k", &late).await;
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::InProgress, true)
    );
    // The retry's own release still works.
    release(s, "k", &retry).await;
    assert_eq!(lookup(s, "k").await, None);
}

/// Completing a claim another request took over completes the key and says so, for both.
pub async fn completing_a_taken_over_claim_reports_it(s: &dyn Subject) {
    let late = claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    let retry = claimed(s, "k", false).await;
    assert_eq!(complete(s, "k", &late).await, Completion::TakenOver);
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, false));
    assert_eq!(complete(s, "k", &retry).await, Completion::TakenOver);
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, false));
}

/// A claim completed after a full-state claim took the key over is recorded as sent, but not
/// as a complete state: that request sent what it claimed (an event), and the full-state claim
/// may never send (a poll run killed). Were the other claim's flag kept, later events of the same
/// state would be answered as duplicates of a complete state that is not on the queue.
pub async fn a_completion_after_a_full_state_take_over_is_not_a_complete_state(s: &dyn Subject) {
    let late = claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    claimed(s, "k", true).await;
    assert_eq!(complete(s, "k", &late).await, Completion::TakenOver);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, false)
    );
}

/// A full-state claim completed after another claim took the key over is a complete state all
/// the same: this request sent one. Cleared, the flag would let a later event of that state
/// reach the ERP beside the state itself; and the other claim's completion keeps it.
pub async fn a_full_state_completion_after_a_take_over_is_a_complete_state(s: &dyn Subject) {
    let late = claimed(s, "k", true).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    let event = claimed(s, "k", false).await;
    assert_eq!(complete(s, "k", &late).await, Completion::TakenOver);
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, true));
    assert_eq!(complete(s, "k", &event).await, Completion::TakenOver);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, true)
    );
}

/// An event's claim completed after another request took the key over and completed it as a
/// full state leaves it a complete state: that request sent one.
pub async fn a_late_event_completion_keeps_the_complete_state_another_request_sent(
    s: &dyn Subject,
) {
    let late = claimed(s, "k", false).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    let poll = claimed(s, "k", true).await;
    assert_eq!(complete(s, "k", &poll).await, Completion::Completed);
    assert_eq!(complete(s, "k", &late).await, Completion::TakenOver);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, true)
    );
    // A complete state that expired says nothing any more: the event records what it sent.
    let later = claimed(s, "old", false).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    let poll = claimed(s, "old", true).await;
    assert_eq!(complete(s, "old", &poll).await, Completion::Completed);
    s.advance(TTL + MARGIN);
    assert_eq!(complete(s, "old", &later).await, Completion::Completed);
    assert_eq!(
        lookup(s, "old").await,
        record(RecordState::Completed, false)
    );
}

/// A claim that lapsed with nobody claiming the key meanwhile completes normally, as the
/// complete state it was claimed as.
pub async fn a_lapsed_claim_nobody_took_completes(s: &dyn Subject) {
    let token = claimed(s, "k", true).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    assert_eq!(complete(s, "k", &token).await, Completion::Completed);
    assert_eq!(
        claim(s, "k", false).await,
        exists(RecordState::Completed, true)
    );
}

/// `complete` of a key with no record (a claim purged meanwhile) records it as sent, as what
/// the token's claim was: an event, or a full state.
pub async fn complete_without_a_record_records_it_as_sent(s: &dyn Subject) {
    assert_eq!(
        complete(s, "k", &ClaimToken::generate(false)).await,
        Completion::Completed
    );
    assert_eq!(lookup(s, "k").await, record(RecordState::Completed, false));
    assert_eq!(
        complete(s, "full", &ClaimToken::generate(true)).await,
        Completion::Completed
    );
    assert_eq!(
        lookup(s, "full").await,
        record(RecordState::Completed, true)
    );
}

/// Of many claims at once on a free key exactly one is granted; none fails.
pub async fn concurrent_claims_have_exactly_one_winner(s: &dyn Subject) {
    let outcomes = super::join_all((0..8).map(|_| s.store().claim("k", false)).collect()).await;
    let granted = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ClaimOutcome::Claimed(_))))
        .count();
    assert_eq!(granted, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

/// Very long keys (a message key with hundreds of line ids) and keys with odd characters work,
/// and stay distinct.
pub async fn long_and_odd_keys_work_and_stay_distinct(s: &dyn Subject) {
    let long_a = format!("order:a:{}", "line-id,".repeat(600));
    let long_b = format!("order:b:{}", "line-id,".repeat(600));
    let odd = "order:ü/🚚:'\"; DROP TABLE dedupe; --\n\t";
    for key in [&long_a, &long_b, odd] {
        claimed(s, key, false).await;
        assert_eq!(
            claim(s, key, false).await,
            exists(RecordState::InProgress, false),
            "{key:?}"
        );
    }
}

fn claimed_token(outcome: &Result<ClaimOutcome, crate::ports::StoreError>) -> ClaimToken {
    match outcome {
        Ok(ClaimOutcome::Claimed(token)) => token.clone(),
        other => panic!("expected a granted claim, got {other:?}"),
    }
}

fn owned(claims: &[(&str, &ClaimToken)]) -> Vec<(String, ClaimToken)> {
    claims
        .iter()
        .map(|(key, token)| ((*key).to_owned(), (*token).clone()))
        .collect()
}

/// A claim batch answers each key as a claim would: new keys granted (with their own tokens
/// and `full_state`), completed and in-progress ones found with their records.
pub async fn a_claim_batch_answers_each_key_as_a_claim_would(s: &dyn Subject) {
    let done = claimed(s, "done", true).await;
    complete(s, "done", &done).await;
    claimed(s, "busy", false).await;
    let outcomes = s
        .store()
        .claim_many(
            &[
                ("new-1", true),
                ("done", false),
                ("busy", true),
                ("new-2", false),
            ],
            None,
        )
        .await;
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
    let (first, second) = (claimed_token(&outcomes[0]), claimed_token(&outcomes[3]));
    assert_ne!(first, second);
    assert_eq!(
        outcomes[1].as_ref().unwrap(),
        &exists(RecordState::Completed, true)
    );
    assert_eq!(
        outcomes[2].as_ref().unwrap(),
        &exists(RecordState::InProgress, false)
    );
    assert_eq!(
        lookup(s, "new-1").await,
        record(RecordState::InProgress, true)
    );
    assert_eq!(
        lookup(s, "new-2").await,
        record(RecordState::InProgress, false)
    );
    // The granted claims are real: their tokens complete and release them.
    complete(s, "new-1", &first).await;
    release(s, "new-2", &second).await;
    assert_eq!(
        lookup(s, "new-1").await,
        record(RecordState::Completed, true)
    );
    assert_eq!(lookup(s, "new-2").await, None);
}

/// A key given twice in one claim batch is granted once: the second finds the first's claim.
pub async fn a_key_twice_in_one_claim_batch_is_granted_once(s: &dyn Subject) {
    let outcomes = s
        .store()
        .claim_many(&[("k", true), ("other", false), ("k", false)], None)
        .await;
    let token = claimed_token(&outcomes[0]);
    claimed_token(&outcomes[1]);
    assert_eq!(
        outcomes[2].as_ref().unwrap(),
        &exists(RecordState::InProgress, true)
    );
    // The one claim granted is the first's.
    release(s, "k", &token).await;
    assert_eq!(lookup(s, "k").await, None);
}

/// A claim batch grants expired keys again, like a claim.
pub async fn a_claim_batch_grants_expired_keys(s: &dyn Subject) {
    claimed(s, "abandoned", false).await;
    let token = claimed(s, "completed", false).await;
    complete(s, "completed", &token).await;
    s.advance(TTL + MARGIN);
    let outcomes = s
        .store()
        .claim_many(&[("abandoned", true), ("completed", true)], None)
        .await;
    claimed_token(&outcomes[0]);
    claimed_token(&outcomes[1]);
    assert_eq!(
        lookup(s, "completed").await,
        record(RecordState::InProgress, true)
    );
}

/// A completion batch completes each claim and reports a take-over among the others; a key
/// completed twice in one batch stays completed.
pub async fn a_completion_batch_completes_each_and_reports_take_overs(s: &dyn Subject) {
    let late = claimed(s, "taken", false).await;
    let late_full = claimed(s, "taken full", true).await;
    s.advance(IN_PROGRESS_EXPIRY + MARGIN);
    claimed(s, "taken", true).await;
    claimed(s, "taken full", false).await;
    let a = claimed(s, "a", true).await;
    let b = claimed(s, "b", false).await;
    let outcomes = s
        .store()
        .complete_many(&owned(&[
            ("a", &a),
            ("taken", &late),
            ("b", &b),
            ("taken full", &late_full),
            ("a", &a),
        ]))
        .await;
    let outcomes: Vec<Completion> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        outcomes,
        [
            Completion::Completed,
            Completion::TakenOver,
            Completion::Completed,
            Completion::TakenOver,
            Completion::Completed
        ]
    );
    assert_eq!(lookup(s, "a").await, record(RecordState::Completed, true));
    assert_eq!(lookup(s, "b").await, record(RecordState::Completed, false));
    // Completed by the late claims, as what each sent: see
    // `a_completion_after_a_full_state_take_over_is_not_a_complete_state` and
    // `a_full_state_completion_after_a_take_over_is_a_complete_state`.
    assert_eq!(
        lookup(s, "taken").await,
        record(RecordState::Completed, false)
    );
    assert_eq!(
        lookup(s, "taken full").await,
        record(RecordState::Completed, true)
    );
}

/// A release batch removes only the in-progress claims of the tokens given: a wrong token, a
/// completed record and a key never seen are left as they are, and none of them stops the
/// others.
pub async fn a_release_batch_removes_only_our_own_claims(s: &dyn Subject) {
    let ours = claimed(s, "ours", false).await;
    claimed(s, "theirs", true).await;
    let done = claimed(s, "done", false).await;
    complete(s, "done", &done).await;
    let last = claimed(s, "last", false).await;
    let outcomes = s
        .store()
        .release_many(&owned(&[
            ("ours", &ours),
            ("theirs", &ClaimToken::generate(true)),
            ("done", &done),
            ("never", &ClaimToken::generate(false)),
            ("last", &last),
            ("ours", &ours),
        ]))
        .await;
    assert_eq!(outcomes.len(), 6);
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(lookup(s, "ours").await, None);
    assert_eq!(lookup(s, "last").await, None);
    assert_eq!(
        lookup(s, "theirs").await,
        record(RecordState::InProgress, true)
    );
    assert_eq!(
        lookup(s, "done").await,
        record(RecordState::Completed, false)
    );
    assert_eq!(lookup(s, "never").await, None);
}

/// Batches of more than a hundred keys (DynamoDB's limit of one transaction) work: every key
/// is claimed, completed or released as if alone.
pub async fn batches_of_more_than_a_hundred_keys_work(s: &dyn Subject) {
    let keys: Vec<String> = (0..230).map(|i| format!("order:o-{i}:t")).collect();
    let batch: Vec<(&str, bool)> = keys.iter().map(|k| (k.as_str(), true)).collect();
    let claims: Vec<(String, ClaimToken)> = keys
        .iter()
        .cloned()
        .zip(
            s.store()
                .claim_many(&batch, None)
                .await
                .iter()
                .map(claimed_token),
        )
        .collect();
    let (to_complete, to_release) = claims.split_at(120);
    let completed = s.store().complete_many(to_complete).await;
    assert!(
        completed
            .iter()
            .all(|c| matches!(c, Ok(Completion::Completed))),
        "{completed:?}"
    );
    let released = s.store().release_many(to_release).await;
    assert!(released.iter().all(Result::is_ok), "{released:?}");
    let again = s.store().claim_many(&batch, None).await;
    for (i, outcome) in again.iter().enumerate() {
        if i < 120 {
            assert_eq!(
                outcome.as_ref().unwrap(),
                &exists(RecordState::Completed, true),
                "{}",
                keys[i]
            );
        } else {
            claimed_token(outcome);
        }
    }
}

/// Empty batches answer nothing.
pub async fn empty_batches_answer_nothing(s: &dyn Subject) {
    assert!(s.store().claim_many(&[], None).await.is_empty());
    assert!(s.store().complete_many(&[]).await.is_empty());
    assert!(s.store().release_many(&[]).await.is_empty());
}

/// The run of `stream` with lease `owner` that took the lease `ms` milliseconds after a fixed
/// instant.
fn run_of(stream: &str, owner: &str, ms: i64) -> Claimant {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z")
        .expect("a fixed instant")
        .to_utc();
    Claimant::poll_run(stream, owner, start + chrono::Duration::milliseconds(ms))
}

/// Claims `keys` `by` a claimant: three or more go in one batch (a transaction in DynamoDB),
/// fewer one by one, so both paths of a store are held to the rule.
async fn claim_as(s: &dyn Subject, keys: &[&str], by: &Claimant) -> Vec<ClaimOutcome> {
    let batch: Vec<(&str, bool)> = keys.iter().map(|key| (*key, true)).collect();
    let mut outcomes = Vec::new();
    if keys.len() >= 3 {
        for outcome in s.store().claim_many(&batch, Some(by)).await {
            outcomes.push(outcome.unwrap());
        }
    } else {
        for key in keys {
            outcomes.push(s.store().claim_as(key, true, Some(by)).await.unwrap());
        }
    }
    outcomes
}

/// A poll run's claims in progress are taken over at once by the next run of the same stream
/// (it holds the stream's lease, so the first run lost it): in a batch and one by one, without
/// waiting for the in-progress expiry. The first run's token no longer holds them: its
/// completion reports the take-over, its release leaves the new claim; the new run's token
/// names it, and the next run takes its claims over in turn.
pub async fn a_poll_run_takes_over_the_claims_another_run_of_its_stream_left(s: &dyn Subject) {
    let (dead, next, third) = (
        run_of("orders", "run-1", 0),
        run_of("orders", "run-2", 6_000),
        run_of("orders", "run-3", 12_000),
    );
    let keys = ["a", "b", "c", "d", "e"];
    let left: Vec<ClaimToken> = claim_as(s, &keys, &dead)
        .await
        .iter()
        .map(|outcome| outcome.token().cloned().expect("fresh keys are granted"))
        .collect();
    assert!(
        left.iter()
            .all(|token| token.as_str().starts_with(dead.own_prefix())),
        "a run's tokens name it: {left:?}"
    );
    // In a batch (a, b, c) and one by one (d, e).
    let mut taken = claim_as(s, &keys[..3], &next).await;
    taken.extend(claim_as(s, &keys[3..], &next).await);
    let taken: Vec<ClaimToken> = taken
        .iter()
        .map(|outcome| {
            outcome
                .token()
                .cloned()
                .unwrap_or_else(|| panic!("taken over at once, got {outcome:?}"))
        })
        .collect();
    assert!(
        taken
            .iter()
            .all(|token| token.as_str().starts_with(next.own_prefix()))
    );
    assert_eq!(lookup(s, "a").await, record(RecordState::InProgress, true));
    // The dead run's token holds nothing now.
    release(s, "b", &left[1]).await;
    assert_eq!(lookup(s, "b").await, record(RecordState::InProgress, true));
    assert_eq!(complete(s, "a", &left[0]).await, Completion::TakenOver);
    // The next run's own claims stay its own; a third run takes them over in turn.
    assert_eq!(
        claim_as(s, &["c"], &next).await,
        vec![exists(RecordState::InProgress, true)]
    );
    assert!(claim_as(s, &["c"], &third).await[0].token().is_some());
    assert_eq!(complete(s, "d", &taken[3]).await, Completion::Completed);
}

/// A poll run takes over nothing else: not a completed record, not its own claims, not the
/// claims of a run of another stream, not a claim made by nobody in particular (a webhook
/// request, whose request may still be running); nor does a claim by nobody take over a run's.
pub async fn a_poll_run_takes_over_no_other_claim(s: &dyn Subject) {
    let run = run_of("orders", "run-1", 0);
    let (next, shipments) = (
        run_of("orders", "run-2", 6_000),
        run_of("shipments", "run-9", 0),
    );
    let done = claimed(s, "done", false).await;
    complete(s, "done", &done).await;
    claimed(s, "webhook", false).await;
    claim_as(s, &["ours"], &run).await;
    claim_as(s, &["shipment"], &shipments).await;
    let keys = ["done", "webhook", "ours", "shipment"];
    let expected = vec![
        exists(RecordState::Completed, false),
        exists(RecordState::InProgress, false),
        exists(RecordState::InProgress, true),
        exists(RecordState::InProgress, true),
    ];
    // Its own claim is not another run's: `run` asks for it, `next` for the rest.
    let mut one_by_one = claim_as(s, &keys[..2], &next).await;
    one_by_one.extend(claim_as(s, &keys[2..3], &run).await);
    one_by_one.extend(claim_as(s, &keys[3..], &next).await);
    assert_eq!(one_by_one, expected);
    let mut batch = claim_as(s, &["done", "webhook", "shipment"], &next).await;
    batch.insert(2, expected[2].clone());
    assert_eq!(batch, expected);
    // Nor a run of a stream whose name sorts after: its tokens' bound (`poll/shipments/…`)
    // lies above this stream's tokens, so only the stream prefix keeps it off them.
    assert_eq!(
        claim_as(s, &["done", "webhook", "ours"], &shipments).await,
        expected[..3]
    );
    assert_eq!(claim_as(s, &["ours"], &shipments).await, expected[2..3]);
    assert_eq!(claim(s, "ours", true).await, expected[2]);
    // An owner that another's starts with is still another owner (parts are escaped).
    let nested = run_of("orders", "run-1/x", 0);
    assert!(claim_as(s, &["ours"], &nested).await[0].token().is_some());
}

/// A run that took the lease earlier never takes over the claims of one that took it after it:
/// the earlier run lost the lease (it may still be claiming, a slow call), and its give-back
/// would free the claims the later run is sending. Runs that took the lease in the same
/// millisecond (a clock held still) take each other's over; a run a millisecond later, the
/// earlier's; a year apart (the time's digits compared by bytes), the same.
pub async fn a_poll_run_never_takes_over_the_claims_of_a_run_that_took_the_lease_after_it(
    s: &dyn Subject,
) {
    let (lost, taker) = (
        run_of("orders", "lost", 0),
        run_of("orders", "taker", 6_000),
    );
    let keys = ["a", "b", "c", "d"];
    let mut held = claim_as(s, &keys[..3], &taker).await;
    held.extend(claim_as(s, &keys[3..], &taker).await);
    let held: Vec<ClaimToken> = held.iter().map(claimed_token_of).collect();
    // In a batch (a, b, c) and one by one (d).
    let mut refused = claim_as(s, &keys[..3], &lost).await;
    refused.extend(claim_as(s, &keys[3..], &lost).await);
    assert_eq!(refused, vec![exists(RecordState::InProgress, true); 4]);
    assert_eq!(complete(s, "a", &held[0]).await, Completion::Completed);
    // The same millisecond: either takes the other's over.
    let twin = run_of("orders", "twin", 6_000);
    assert!(claim_as(s, &["b"], &twin).await[0].token().is_some());
    assert!(claim_as(s, &["b"], &taker).await[0].token().is_some());
    // One millisecond later takes over; one earlier does not.
    let (before, after) = (run_of("orders", "x", 5_999), run_of("orders", "y", 6_001));
    assert_eq!(
        claim_as(s, &["c"], &before).await,
        vec![exists(RecordState::InProgress, true)]
    );
    assert!(claim_as(s, &["c"], &after).await[0].token().is_some());
    // A year later takes over; a year earlier does not.
    let year = 365 * 24 * 3_600_000;
    assert_eq!(
        claim_as(s, &["c"], &run_of("orders", "x", 6_001 - year)).await,
        vec![exists(RecordState::InProgress, true)]
    );
    assert!(
        claim_as(s, &["d"], &run_of("orders", "z", year)).await[0]
            .token()
            .is_some()
    );
}

fn claimed_token_of(outcome: &ClaimOutcome) -> ClaimToken {
    outcome
        .token()
        .cloned()
        .unwrap_or_else(|| panic!("granted, got {outcome:?}"))
}

/// Expands to one `#[tokio::test]` per rule of
/// [`conformance::dedupe_store`](crate::conformance::dedupe_store), each named after its rule
/// and run on a fresh subject from `$subject.await` (a
/// [`Subject`](crate::conformance::dedupe_store::Subject)). The calling crate needs `tokio`.
#[macro_export]
macro_rules! dedupe_store_conformance {
    ($subject:expr) => {
        $crate::dedupe_store_conformance!(@rules $subject;
            an_unseen_key_is_granted_in_progress,
            every_claim_gets_its_own_token,
            a_second_claim_finds_the_first,
            complete_makes_later_claims_duplicates,
            an_abandoned_claim_expires_after_the_in_progress_expiry,
            a_completed_record_lives_for_the_ttl_from_completion,
            a_completed_record_found_late_in_its_life_is_renewed,
            release_frees_the_claim,
            release_never_removes_a_completed_record,
            releasing_an_unseen_key_does_nothing,
            a_late_release_leaves_the_claim_that_took_over,
            completing_a_taken_over_claim_reports_it,
            a_completion_after_a_full_state_take_over_is_not_a_complete_state,
            a_full_state_completion_after_a_take_over_is_a_complete_state,
            a_late_event_completion_keeps_the_complete_state_another_request_sent,
            a_lapsed_claim_nobody_took_completes,
            complete_without_a_record_records_it_as_sent,
            concurrent_claims_have_exactly_one_winner,
            long_and_odd_keys_work_and_stay_distinct,
            a_claim_batch_answers_each_key_as_a_claim_would,
            a_key_twice_in_one_claim_batch_is_granted_once,
            a_claim_batch_grants_expired_keys,
            a_completion_batch_completes_each_and_reports_take_overs,
            a_release_batch_removes_only_our_own_claims,
            batches_of_more_than_a_hundred_keys_work,
            empty_batches_answer_nothing,
            a_poll_run_takes_over_the_claims_another_run_of_its_stream_left,
            a_poll_run_takes_over_no_other_claim,
            a_poll_run_never_takes_over_the_claims_of_a_run_that_took_the_lease_after_it,
        );
    };
    (@rules $subject:expr; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let subject = $subject.await;
                $crate::conformance::dedupe_store::$rule(&subject).await;
            }
        )*
    };
}
