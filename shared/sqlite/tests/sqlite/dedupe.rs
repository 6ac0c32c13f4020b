//! Dedupe records: the claim/complete/release/lookup contract with explicit expiry.

use std::time::Duration;

use tcrelay_core::ports::{ClaimOutcome, DedupeRecord, DedupeStore, RecordState};

use crate::common::{ManualClock, open_with_clock, temp_db, test_options};

const MS: Duration = Duration::from_millis(1);

fn exists(state: RecordState, full_state: bool) -> ClaimOutcome {
    ClaimOutcome::Exists(DedupeRecord { state, full_state })
}

#[tokio::test]
async fn a_second_claim_finds_the_first_then_the_completed_record() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);

    assert_eq!(store.claim("k", true).await.unwrap(), ClaimOutcome::Claimed);
    // full_state is the first claimer's, whatever the second says.
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::InProgress, true)
    );
    store.complete("k").await.unwrap();
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::Completed, true)
    );
    assert_eq!(
        store.lookup("k").await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::Completed,
            full_state: true
        })
    );
    // Another key is independent.
    assert_eq!(
        store.claim("k2", false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(store.lookup("absent").await.unwrap(), None);
}

#[tokio::test]
async fn a_completed_record_expires_after_the_ttl() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let ttl = test_options().dedupe_ttl;

    assert_eq!(
        store.claim("k", false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    store.complete("k").await.unwrap();
    // Exactly at the expiry it still counts (expired means *before* now).
    clock.advance(ttl);
    assert_eq!(
        store.claim("k", true).await.unwrap(),
        exists(RecordState::Completed, false)
    );
    clock.advance(MS);
    // lookup hides it, and a claim takes it over.
    assert_eq!(store.lookup("k").await.unwrap(), None);
    assert_eq!(store.claim("k", true).await.unwrap(), ClaimOutcome::Claimed);
    assert_eq!(
        store.lookup("k").await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::InProgress,
            full_state: true
        })
    );
}

#[tokio::test]
async fn completion_restarts_the_ttl() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let ttl = test_options().dedupe_ttl;
    store.claim("k", false).await.unwrap();
    clock.advance(Duration::from_secs(30));
    store.complete("k").await.unwrap();
    // The claim's TTL would have run out here; the completion's has not.
    clock.advance(ttl - Duration::from_secs(10));
    assert!(store.lookup("k").await.unwrap().is_some());
}

#[tokio::test]
async fn an_abandoned_claim_expires_after_the_in_progress_expiry() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let expiry = test_options().in_progress_expiry;

    assert_eq!(
        store.claim("k", false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    clock.advance(expiry);
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::InProgress, false)
    );
    clock.advance(MS);
    assert_eq!(store.lookup("k").await.unwrap(), None);
    assert_eq!(store.claim("k", true).await.unwrap(), ClaimOutcome::Claimed);
    // The new claim is the new claimer's.
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::InProgress, true)
    );
}

#[tokio::test]
async fn release_frees_a_claim_but_never_a_completed_record() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);

    store.claim("k", false).await.unwrap();
    store.release("k").await.unwrap();
    assert_eq!(store.lookup("k").await.unwrap(), None);
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        ClaimOutcome::Claimed
    );

    store.complete("k").await.unwrap();
    store.release("k").await.unwrap();
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::Completed, false)
    );
    // Releasing what was never claimed is fine.
    store.release("never").await.unwrap();
}

#[tokio::test]
async fn complete_without_a_claim_records_a_webhook_event() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    // The claim expired and was purged (or released) before the sink answered: the message was
    // sent all the same, so it must count as a duplicate from now on.
    store.complete("k").await.unwrap();
    assert_eq!(
        store.lookup("k").await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::Completed,
            full_state: false
        })
    );
}

#[tokio::test]
async fn records_survive_reopen_and_purge_removes_only_expired_ones() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    {
        let store = open_with_clock(&path, &clock);
        store.claim("done", true).await.unwrap();
        store.complete("done").await.unwrap();
        store.claim("abandoned", false).await.unwrap();
    }
    let store = open_with_clock(&path, &clock);
    assert_eq!(
        store.claim("done", false).await.unwrap(),
        exists(RecordState::Completed, true)
    );
    assert_eq!(store.purge_expired_dedupe().await.unwrap(), 0);
    clock.advance(test_options().in_progress_expiry + MS);
    assert_eq!(store.purge_expired_dedupe().await.unwrap(), 1);
    assert!(store.lookup("done").await.unwrap().is_some());
    clock.advance(test_options().dedupe_ttl);
    assert_eq!(store.purge_expired_dedupe().await.unwrap(), 1);
    assert_eq!(store.lookup("done").await.unwrap(), None);
}

#[tokio::test]
async fn long_and_odd_keys_are_kept_verbatim() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let long = format!(
        "order:o-1:2026-03-01T00:00:00Z:Evt:{}",
        "line,".repeat(2_000)
    );
    let odd = "order:'; DROP TABLE dedupe; --:ü\u{0}x";
    for key in [long.as_str(), odd] {
        assert_eq!(
            store.claim(key, false).await.unwrap(),
            ClaimOutcome::Claimed
        );
    }
    // A key that differs only after the first kilobyte is another key.
    let other_long = format!("{long}x");
    assert_eq!(
        store.claim(&other_long, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert!(store.lookup(odd).await.unwrap().is_some());
    assert!(store.lookup(&long).await.unwrap().is_some());
}
