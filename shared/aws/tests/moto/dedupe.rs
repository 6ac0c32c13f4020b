//! The DynamoDB dedupe store against moto.

use std::time::Duration;

use tcrelay_aws::testing::{create_table, moto_clients, unique_name};
use tcrelay_aws::{DedupeConfig, DynamoDedupeStore};
use tcrelay_core::ports::{ClaimOutcome, DedupeRecord, DedupeStore, RecordState};

use crate::common::TestClock;

async fn store() -> (DynamoDedupeStore, TestClock) {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let clock = TestClock::new();
    let mut config = DedupeConfig::new(table);
    config.ttl = Duration::from_secs(3600);
    config.in_progress_expiry = Duration::from_secs(60);
    let store = DynamoDedupeStore::new(clients.dynamodb.clone(), config).with_clock(clock.clock());
    (store, clock)
}

fn exists(state: RecordState, full_state: bool) -> ClaimOutcome {
    ClaimOutcome::Exists(DedupeRecord { state, full_state })
}

#[tokio::test]
async fn second_claim_is_a_duplicate_before_and_after_completion() {
    let (store, _) = store().await;
    let key = unique_name("order:o-1:2026-03-01T10:00:00.000Z");
    assert_eq!(
        store.claim(&key, true).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::InProgress, true)
    );
    assert_eq!(
        store.lookup(&key).await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::InProgress,
            full_state: true
        })
    );
    store.complete(&key).await.unwrap();
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::Completed, true)
    );
    assert_eq!(
        store.lookup(&key).await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::Completed,
            full_state: true
        })
    );
    // Another key is independent.
    assert_eq!(store.lookup(&unique_name("other")).await.unwrap(), None);
}

#[tokio::test]
async fn an_expired_completed_record_is_claimable_again() {
    let (store, clock) = store().await;
    let key = unique_name("k");
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    store.complete(&key).await.unwrap();
    clock.advance(Duration::from_secs(3599));
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::Completed, false)
    );
    // Past the TTL: expiry is checked by us, not left to DynamoDB's sweeper.
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.lookup(&key).await.unwrap(), None);
    assert_eq!(
        store.claim(&key, true).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.lookup(&key).await.unwrap(),
        Some(DedupeRecord {
            state: RecordState::InProgress,
            full_state: true
        })
    );
}

#[tokio::test]
async fn an_abandoned_in_progress_claim_expires_on_its_own() {
    let (store, clock) = store().await;
    let key = unique_name("k");
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::InProgress, false)
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(store.lookup(&key).await.unwrap(), None);
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // The in-progress expiry does not apply to completed records.
    store.complete(&key).await.unwrap();
    clock.advance(Duration::from_secs(120));
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::Completed, false)
    );
}

#[tokio::test]
async fn release_frees_a_claim_but_never_a_completed_record() {
    let (store, _) = store().await;
    let key = unique_name("k");
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    store.release(&key).await.unwrap();
    assert_eq!(store.lookup(&key).await.unwrap(), None);
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    store.complete(&key).await.unwrap();
    store.release(&key).await.unwrap();
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::Completed, false)
    );
    // Releasing a key never claimed is fine.
    store.release(&unique_name("never")).await.unwrap();
}

#[tokio::test]
async fn concurrent_claims_of_one_key_have_exactly_one_winner() {
    let (store, _) = store().await;
    let key = unique_name("k");
    let outcomes = futures::future::join_all((0..8).map(|_| store.claim(&key, false))).await;
    let claimed = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(ClaimOutcome::Claimed)))
        .count();
    assert_eq!(claimed, 1, "{outcomes:?}");
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
}

#[tokio::test]
async fn a_very_long_key_works() {
    let (store, _) = store().await;
    let key = format!("{}:{}", unique_name("order"), "line-id,".repeat(500));
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store.claim(&key, false).await.unwrap(),
        exists(RecordState::InProgress, false)
    );
    let other = format!("{}:{}", unique_name("order"), "line-id,".repeat(500));
    assert_eq!(
        store.claim(&other, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
}

#[tokio::test]
async fn create_table_is_idempotent_and_enables_ttl() {
    let clients = moto_clients().await;
    let name = create_table(&clients, "tcrelay").await;
    tcrelay_aws::create_table_if_missing(&clients.dynamodb, &name)
        .await
        .unwrap();
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name(&name)
        .send()
        .await
        .unwrap();
    let description = ttl.time_to_live_description().unwrap();
    assert_eq!(description.attribute_name(), Some("expiresAt"));
    assert_eq!(
        description.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}
