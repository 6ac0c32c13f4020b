//! Poll cursors: leases with owner and expiry, checkpoints conditional on version and owner.

use std::sync::Arc;
use std::time::Duration;

use tcrelay_core::ports::{Cursor, CursorStore, StoreError};
use tcrelay_sqlite::SqliteStore;
use tokio::sync::Barrier;

use crate::common::{ManualClock, open_with_clock, temp_db};

const LEASE: Duration = Duration::from_secs(300);
const MS: Duration = Duration::from_millis(1);

fn cursor(value: Option<&str>, version: u64) -> Cursor {
    Cursor {
        value: value.map(str::to_owned),
        version,
    }
}

#[tokio::test]
async fn a_live_lease_keeps_other_owners_out() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);

    assert_eq!(store.read("orders").await.unwrap(), None);
    assert_eq!(
        store.acquire("orders", "run-a", LEASE).await.unwrap(),
        Some(cursor(None, 0))
    );
    assert_eq!(store.read("orders").await.unwrap(), Some(cursor(None, 0)));
    assert_eq!(store.acquire("orders", "run-b", LEASE).await.unwrap(), None);
    // The holder may renew; another stream is independent.
    assert!(
        store
            .acquire("orders", "run-a", LEASE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .acquire("shipments", "run-b", LEASE)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_expired_lease_can_be_taken_and_the_old_owner_loses_its_checkpoints() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);

    let held = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    // Still live exactly at the expiry.
    clock.advance(LEASE);
    assert_eq!(store.acquire("orders", "run-b", LEASE).await.unwrap(), None);
    clock.advance(MS);
    let taken = store
        .acquire("orders", "run-b", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken, held);

    let err = store
        .checkpoint("orders", "run-a", held.version, "2026-01-01T00:00:00.000Z")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let moved = store
        .checkpoint("orders", "run-b", taken.version, "2026-01-02T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(moved, cursor(Some("2026-01-02T00:00:00.000Z"), 1));
}

#[tokio::test]
async fn checkpoints_need_the_version_read() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let c = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();

    let c1 = store
        .checkpoint("orders", "run-a", c.version, "t1")
        .await
        .unwrap();
    assert_eq!(c1, cursor(Some("t1"), 1));
    let c2 = store
        .checkpoint("orders", "run-a", c1.version, "t2")
        .await
        .unwrap();
    assert_eq!(c2, cursor(Some("t2"), 2));
    // A stale version is refused and changes nothing.
    let err = store
        .checkpoint("orders", "run-a", c1.version, "t0")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.read("orders").await.unwrap(), Some(c2.clone()));
    // Values are kept verbatim, whatever Tradecloud wrote.
    let odd = "2026-03-01T12:00:00.1234567+01:00";
    assert_eq!(
        store.checkpoint("orders", "run-a", 2, odd).await.unwrap(),
        cursor(Some(odd), 3)
    );
    // A stream nobody acquired cannot be checkpointed.
    let err = store
        .checkpoint("nothing", "run-a", 0, "t")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn release_gives_the_lease_up_only_for_its_owner() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();

    store.release("orders", "run-b").await.unwrap();
    assert_eq!(store.acquire("orders", "run-b", LEASE).await.unwrap(), None);
    store.release("orders", "run-a").await.unwrap();
    assert!(
        store
            .acquire("orders", "run-b", LEASE)
            .await
            .unwrap()
            .is_some()
    );
    // After release the old owner cannot checkpoint either.
    let err = store
        .checkpoint("orders", "run-a", 0, "t")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store.release("never-acquired", "run-a").await.unwrap();
}

#[tokio::test]
async fn set_bumps_the_version_and_fences_a_running_poller() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);

    // On a new stream the first set is version 1.
    assert_eq!(
        store
            .set("shipments", "2025-01-01T00:00:00.000Z")
            .await
            .unwrap(),
        cursor(Some("2025-01-01T00:00:00.000Z"), 1)
    );

    let c = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    let c = store
        .checkpoint("orders", "run-a", c.version, "t1")
        .await
        .unwrap();
    let backfill = store
        .set("orders", "2024-06-01T00:00:00.000Z")
        .await
        .unwrap();
    assert_eq!(
        backfill,
        cursor(Some("2024-06-01T00:00:00.000Z"), c.version + 1)
    );
    // The poller's next checkpoint, on the version it read, must not overwrite the backfill.
    let err = store
        .checkpoint("orders", "run-a", c.version, "t2")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The lease is untouched by set.
    assert_eq!(store.acquire("orders", "run-b", LEASE).await.unwrap(), None);
    let re = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(re, backfill);

    let listed = store.cursors().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.stream.as_str()).collect::<Vec<_>>(),
        ["orders", "shipments"]
    );
    assert_eq!(listed[0].lease_owner.as_deref(), Some("run-a"));
    assert!(listed[0].lease_expires_at.is_some());
    assert_eq!(
        listed[1].cursor(),
        cursor(Some("2025-01-01T00:00:00.000Z"), 1)
    );
    assert_eq!(listed[1].lease_owner, None);
}

#[tokio::test]
async fn cursors_and_leases_survive_reopen() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    {
        let store = open_with_clock(&path, &clock);
        let c = store
            .acquire("orders", "run-a", LEASE)
            .await
            .unwrap()
            .unwrap();
        store
            .checkpoint("orders", "run-a", c.version, "t1")
            .await
            .unwrap();
    }
    let store = open_with_clock(&path, &clock);
    assert_eq!(
        store.read("orders").await.unwrap(),
        Some(cursor(Some("t1"), 1))
    );
    assert_eq!(store.acquire("orders", "run-b", LEASE).await.unwrap(), None);
}

#[tokio::test]
async fn of_two_concurrent_acquires_exactly_one_wins() {
    let (_dir, path) = temp_db();
    // Two handles: two connections, as two processes would have.
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    for round in 0..20 {
        let stream = format!("stream-{round}");
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [(a.clone(), "run-a"), (b.clone(), "run-b")]
            .into_iter()
            .map(|(store, owner)| {
                let (barrier, stream) = (Arc::clone(&barrier), stream.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .acquire(&stream, owner, LEASE)
                        .await
                        .unwrap()
                        .map(|_| owner)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        // And the stored lease is the winner's.
        let info = a.cursors().await.unwrap();
        let info = info.iter().find(|c| c.stream == stream).unwrap();
        assert_eq!(info.lease_owner.as_deref(), Some(winners[0]));
    }
}

#[tokio::test]
async fn an_expired_lease_not_taken_over_still_checkpoints_like_dynamodb() {
    let (_dir, path) = temp_db();
    let clock = ManualClock::new();
    let store = open_with_clock(&path, &clock);
    let c = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    clock.advance(LEASE * 2);
    // Nobody took it over: the owner and version still match.
    assert_eq!(
        store
            .checkpoint("orders", "run-a", c.version, "t1")
            .await
            .unwrap(),
        cursor(Some("t1"), 1)
    );
}
