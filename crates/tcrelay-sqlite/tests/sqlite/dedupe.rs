//! Dedupe records: the dedupe contract (`tcrelay_core::conformance::dedupe_store`), then what
//! only the SQLite store has: millisecond expiry boundaries, durability, purging, and records
//! from before claim tokens.

use tcrelay_core::ports::{ClaimOutcome, ClaimToken, DedupeRecord, DedupeStore, RecordState};

use crate::common::{
    DOWNGRADE_TO_4, MS, new_clock, open_migrated, open_with_clock, temp_db, test_options,
};

fn exists(state: RecordState, full_state: bool) -> ClaimOutcome {
    ClaimOutcome::Exists(DedupeRecord { state, full_state })
}

fn is_claimed(outcome: &ClaimOutcome) -> bool {
    outcome.token().is_some()
}

mod contract {
    tcrelay_core::dedupe_store_conformance!(crate::common::fresh_db());
}

#[tokio::test]
async fn a_completed_record_expires_one_millisecond_after_the_ttl() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    let ttl = test_options().dedupe_ttl;

    let token = store.claim("k", false).await.unwrap();
    store.complete("k", token.token().unwrap()).await.unwrap();
    // Exactly at the expiry it still counts (expired means *before* now). Looked up, not
    // claimed: a claim this late in the record's life would renew it.
    clock.advance(ttl);
    assert_eq!(
        store.lookup("k").await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::Completed,
            full_state: false
        })
    );
    clock.advance(MS);
    assert_eq!(store.lookup("k").await.unwrap(), None);
    assert!(is_claimed(&store.claim("k", true).await.unwrap()));
}

#[tokio::test]
async fn an_abandoned_claim_expires_one_millisecond_after_the_in_progress_expiry() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);

    assert!(is_claimed(&store.claim("k", false).await.unwrap()));
    clock.advance(test_options().in_progress_expiry);
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::InProgress, false)
    );
    clock.advance(MS);
    assert_eq!(store.lookup("k").await.unwrap(), None);
    assert!(is_claimed(&store.claim("k", true).await.unwrap()));
}

#[tokio::test]
async fn records_survive_reopen_and_purge_removes_only_expired_ones() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let token = {
        let store = open_with_clock(&path, &clock);
        let done = store.claim("done", true).await.unwrap();
        store.complete("done", done.token().unwrap()).await.unwrap();
        store.claim("abandoned", false).await.unwrap()
    };
    let store = open_with_clock(&path, &clock);
    assert_eq!(
        store.claim("done", false).await.unwrap(),
        exists(RecordState::Completed, true)
    );
    // The claim token survives too: the claimer can still release after a restart.
    store
        .release("abandoned", token.token().unwrap())
        .await
        .unwrap();
    assert_eq!(store.lookup("abandoned").await.unwrap(), None);
    store.claim("abandoned", false).await.unwrap();

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
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    let long = format!(
        "order:o-1:2026-03-01T00:00:00Z:Evt:{}",
        "line,".repeat(2_000)
    );
    let odd = "order:'; DROP TABLE dedupe; --:ü\u{0}x";
    for key in [long.as_str(), odd] {
        assert!(is_claimed(&store.claim(key, false).await.unwrap()));
    }
    // A key that differs only after the first kilobyte is another key.
    let other_long = format!("{long}x");
    assert!(is_claimed(&store.claim(&other_long, false).await.unwrap()));
    assert!(store.lookup(odd).await.unwrap().is_some());
    assert!(store.lookup(&long).await.unwrap().is_some());
}

/// A claim written by a build before claim tokens (schema version 1; an upgrade while a
/// request was in flight) is nobody's claim: no release removes it, and it expires as any
/// claim does.
#[tokio::test]
async fn a_claim_from_before_claim_tokens_is_nobodys_claim() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    assert!(is_claimed(&store.claim("k", false).await.unwrap()));
    drop(store);
    // Turn the file back into schema version 1: the same row, without the token column.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(DOWNGRADE_TO_4).unwrap();
    raw.execute_batch(
        "ALTER TABLE dedupe DROP COLUMN claim_token; ALTER TABLE cursor DROP COLUMN window_start; \
         ALTER TABLE cursor DROP COLUMN walk; PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(raw);

    let (store, _) = open_migrated(&path, &clock);
    store
        .release("k", &ClaimToken::generate(false))
        .await
        .unwrap();
    assert_eq!(
        store.claim("k", false).await.unwrap(),
        exists(RecordState::InProgress, false)
    );
    clock.advance(test_options().in_progress_expiry + MS);
    assert!(is_claimed(&store.claim("k", false).await.unwrap()));
}
