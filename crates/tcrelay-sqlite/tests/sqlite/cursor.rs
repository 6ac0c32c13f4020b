//! Poll cursors: the `CursorStore` contract (`tcrelay_core::conformance::cursor_store`), then
//! what only this store has: `cursor show`'s listing, durability, two connections.

use std::sync::Arc;

use tcrelay_core::conformance::cursor_store::{LEASE, cursor};
use tcrelay_core::ports::CursorStore;
use tcrelay_sqlite::SqliteStore;
use tokio::sync::Barrier;

use crate::common::{new_clock, open_with_clock, temp_db};

mod contract {
    tcrelay_core::cursor_store_conformance!(crate::common::fresh_db());
}

#[tokio::test]
async fn cursor_show_lists_every_stream_with_its_lease() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    store
        .set("shipments", "2025-01-01T00:00:00.000Z")
        .await
        .unwrap();
    let c = store
        .acquire("orders", "run-a", LEASE)
        .await
        .unwrap()
        .unwrap();
    store
        .checkpoint("orders", "run-a", c.version, "t1", None)
        .await
        .unwrap();

    let listed = store.cursors().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.stream.as_str()).collect::<Vec<_>>(),
        ["orders", "shipments"]
    );
    assert_eq!(listed[0].cursor(), cursor(Some("t1"), 1));
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
    let clock = new_clock();
    {
        let store = open_with_clock(&path, &clock);
        let c = store
            .acquire("orders", "run-a", LEASE)
            .await
            .unwrap()
            .unwrap();
        store
            .checkpoint("orders", "run-a", c.version, "t1", None)
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

/// A cursor written before window starts (schema version 2) reads without one after the
/// upgrade, and takes one from then on.
#[tokio::test]
async fn a_cursor_from_before_window_starts_is_read_without_one() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    {
        let store = open_with_clock(&path, &clock);
        let c = store
            .acquire("orders", "run-a", LEASE)
            .await
            .unwrap()
            .unwrap();
        store
            .checkpoint("orders", "run-a", c.version, "t1", Some("t0"))
            .await
            .unwrap();
        store.release("orders", "run-a").await.unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch("ALTER TABLE cursor DROP COLUMN window_start; PRAGMA user_version = 2;")
        .unwrap();
    drop(raw);
    let store = open_with_clock(&path, &clock);
    let c = store
        .acquire("orders", "run-b", LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c, cursor(Some("t1"), 1));
    let moved = store
        .checkpoint("orders", "run-b", c.version, "t2", Some("t1"))
        .await
        .unwrap();
    assert_eq!(moved.window_start.as_deref(), Some("t1"));
    let listed = store.cursors().await.unwrap();
    assert_eq!(listed[0].window_start.as_deref(), Some("t1"));
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
