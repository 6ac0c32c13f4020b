//! The DynamoDB cursor store against moto.

use std::time::Duration;

use tcrelay_aws::testing::{create_table, moto_clients, unique_name};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore};
use tcrelay_core::ports::{ClaimOutcome, Cursor, CursorStore, DedupeStore, StoreError};

use crate::common::TestClock;

const LEASE: Duration = Duration::from_secs(300);

async fn store() -> (DynamoCursorStore, TestClock, String) {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let clock = TestClock::new();
    let store = DynamoCursorStore::new(clients.dynamodb.clone(), &table).with_clock(clock.clock());
    (store, clock, table)
}

fn cursor(value: Option<&str>, version: u64) -> Cursor {
    Cursor {
        value: value.map(str::to_owned),
        version,
    }
}

#[tokio::test]
async fn first_acquire_starts_empty_and_checkpoints_advance_the_version() {
    let (store, _, _) = store().await;
    let stream = unique_name("orders");
    assert_eq!(store.read(&stream).await.unwrap(), None);
    let start = store.acquire(&stream, "run-a", LEASE).await.unwrap();
    assert_eq!(start, Some(cursor(None, 0)));
    let c1 = store
        .checkpoint(&stream, "run-a", 0, "2026-03-01T10:00:00.123Z")
        .await
        .unwrap();
    assert_eq!(c1, cursor(Some("2026-03-01T10:00:00.123Z"), 1));
    let c2 = store
        .checkpoint(&stream, "run-a", 1, "2026-03-01T10:05:00.000Z")
        .await
        .unwrap();
    assert_eq!(c2, cursor(Some("2026-03-01T10:05:00.000Z"), 2));
    assert_eq!(store.read(&stream).await.unwrap(), Some(c2.clone()));
    store.release(&stream, "run-a").await.unwrap();
    // The next run starts where the last one ended.
    assert_eq!(
        store.acquire(&stream, "run-b", LEASE).await.unwrap(),
        Some(c2)
    );
}

#[tokio::test]
async fn a_lease_held_by_another_owner_is_refused_until_it_expires() {
    let (store, clock, _) = store().await;
    let stream = unique_name("shipments");
    assert!(
        store
            .acquire(&stream, "run-a", LEASE)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.acquire(&stream, "run-b", LEASE).await.unwrap(), None);
    // The owner itself may renew.
    assert!(
        store
            .acquire(&stream, "run-a", LEASE)
            .await
            .unwrap()
            .is_some()
    );
    clock.advance(LEASE - Duration::from_secs(1));
    assert_eq!(store.acquire(&stream, "run-b", LEASE).await.unwrap(), None);
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        store.acquire(&stream, "run-b", LEASE).await.unwrap(),
        Some(cursor(None, 0))
    );
    // The old owner lost it: its checkpoint conflicts, its release is a no-op.
    assert!(matches!(
        store
            .checkpoint(&stream, "run-a", 0, "2026-01-01T00:00:00Z")
            .await,
        Err(StoreError::Conflict(_))
    ));
    store.release(&stream, "run-a").await.unwrap();
    assert_eq!(store.acquire(&stream, "run-c", LEASE).await.unwrap(), None);
    store.release(&stream, "run-b").await.unwrap();
    assert!(
        store
            .acquire(&stream, "run-c", LEASE)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_checkpoint_on_a_stale_version_conflicts_and_writes_nothing() {
    let (store, _, _) = store().await;
    let stream = unique_name("orders");
    store.acquire(&stream, "run-a", LEASE).await.unwrap();
    store.checkpoint(&stream, "run-a", 0, "t1").await.unwrap();
    assert!(matches!(
        store.checkpoint(&stream, "run-a", 0, "t-stale").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.read(&stream).await.unwrap(),
        Some(cursor(Some("t1"), 1))
    );
    // A checkpoint without the lease conflicts too.
    store.release(&stream, "run-a").await.unwrap();
    assert!(matches!(
        store.checkpoint(&stream, "run-a", 1, "t2").await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn set_moves_the_cursor_and_bumps_the_version_so_a_running_checkpoint_conflicts() {
    let (store, _, _) = store().await;
    let stream = unique_name("orders");
    assert_eq!(
        store.set(&stream, "2026-01-01T00:00:00Z").await.unwrap(),
        cursor(Some("2026-01-01T00:00:00Z"), 1)
    );
    let held = store
        .acquire(&stream, "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held, cursor(Some("2026-01-01T00:00:00Z"), 1));
    let set = store.set(&stream, "2025-06-01T00:00:00Z").await.unwrap();
    assert_eq!(set, cursor(Some("2025-06-01T00:00:00Z"), 2));
    assert!(matches!(
        store
            .checkpoint(&stream, "run-a", held.version, "2026-02-01T00:00:00Z")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.read(&stream).await.unwrap(), Some(set));
}

#[tokio::test]
async fn concurrent_acquires_have_exactly_one_winner() {
    let (store, _, _) = store().await;
    let stream = unique_name("orders");
    let owners: Vec<String> = (0..8).map(|i| format!("run-{i}")).collect();
    let outcomes = futures::future::join_all(
        owners
            .iter()
            .map(|owner| store.acquire(&stream, owner, LEASE)),
    )
    .await;
    let winners: Vec<&String> = owners
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| matches!(o, Ok(Some(_))))
        .map(|(owner, _)| owner)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    // Only the winner can checkpoint.
    for owner in &owners {
        let result = store.checkpoint(&stream, owner, 0, "t").await;
        assert_eq!(result.is_ok(), owner == winners[0], "{owner}: {result:?}");
    }
}

#[tokio::test]
async fn cursor_items_share_the_dedupe_table_without_interfering() {
    let (cursors, _, table) = store().await;
    let clients = moto_clients().await;
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), DedupeConfig::new(&table));
    let stream = unique_name("orders");
    cursors.set(&stream, "t").await.unwrap();
    assert_eq!(dedupe.lookup(&stream).await.unwrap(), None);
    assert_eq!(
        dedupe.claim(&stream, false).await.unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        cursors.read(&stream).await.unwrap(),
        Some(cursor(Some("t"), 1))
    );
    // Cursor items carry no TTL attribute.
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("cursor#{stream}")),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!item.contains_key("expiresAt"), "{item:?}");
}
