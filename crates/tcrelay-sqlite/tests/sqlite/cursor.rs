//! Poll cursors: the `CursorStore` contract (`tcrelay_core::conformance::cursor_store`), then
//! what only this store has: `cursor show`'s listing, durability, two connections.

use std::sync::Arc;

use tcrelay_core::conformance::cursor_store::{LEASE, a_walk, cursor};
use tcrelay_core::ports::{Cursor, CursorStore};
use tcrelay_sqlite::SqliteStore;
use tempfile::TempDir;
use tokio::sync::Barrier;

use crate::common::{DOWNGRADE_TO_4, new_clock, open_with_clock, temp_db};

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
        .checkpoint("orders", "run-a", c.version, "t1", None, None)
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
            .checkpoint("orders", "run-a", c.version, "t1", None, None)
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

/// A database whose `orders` cursor run-a checkpointed at `t1` with `window_start` and `walk`
/// and released, turned back into an older schema by the SQL `downgrade`, then opened (so
/// migrated): the store, and the cursor as run-b acquires it.
async fn a_cursor_migrated_from(
    window_start: Option<&str>,
    walk: Option<&str>,
    downgrade: &str,
) -> (TempDir, SqliteStore, Cursor) {
    let (dir, path) = temp_db();
    let clock = new_clock();
    {
        let store = open_with_clock(&path, &clock);
        let c = store
            .acquire("orders", "run-a", LEASE)
            .await
            .unwrap()
            .unwrap();
        store
            .checkpoint("orders", "run-a", c.version, "t1", window_start, walk)
            .await
            .unwrap();
        store.release("orders", "run-a").await.unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(DOWNGRADE_TO_4).unwrap();
    raw.execute_batch(downgrade).unwrap();
    drop(raw);
    let store = open_with_clock(&path, &clock);
    let c = store
        .acquire("orders", "run-b", LEASE)
        .await
        .unwrap()
        .unwrap();
    (dir, store, c)
}

/// A cursor written before window starts (schema version 2) reads without one after the
/// upgrade, and takes one from then on.
#[tokio::test]
async fn a_cursor_from_before_window_starts_is_read_without_one() {
    let (_dir, store, c) = a_cursor_migrated_from(
        Some("t0"),
        None,
        "ALTER TABLE cursor DROP COLUMN walk; ALTER TABLE cursor DROP COLUMN window_start; \
         PRAGMA user_version = 2;",
    )
    .await;
    assert_eq!(c, cursor(Some("t1"), 1));
    let moved = store
        .checkpoint("orders", "run-b", c.version, "t2", Some("t1"), None)
        .await
        .unwrap();
    assert_eq!(moved.window_start.as_deref(), Some("t1"));
    let listed = store.cursors().await.unwrap();
    assert_eq!(listed[0].window_start.as_deref(), Some("t1"));
}

/// A cursor written before walks were stored (schema version 3) reads without one after the
/// upgrade, keeping its window start, and takes one from then on.
#[tokio::test]
async fn a_cursor_from_before_walks_is_read_without_one() {
    let (_dir, store, c) = a_cursor_migrated_from(
        Some("t0"),
        Some("{}"),
        "ALTER TABLE cursor DROP COLUMN walk; PRAGMA user_version = 3;",
    )
    .await;
    assert_eq!(c.walk, None);
    assert_eq!(c.window_start.as_deref(), Some("t0"));
    assert_eq!(c.value.as_deref(), Some("t1"));
    let walk = a_walk();
    let moved = store
        .checkpoint("orders", "run-b", c.version, "t2", None, Some(&walk))
        .await
        .unwrap();
    assert_eq!(moved.walk.as_deref(), Some(walk.as_str()));
    let listed = store.cursors().await.unwrap();
    assert_eq!(listed[0].walk.as_deref(), Some(walk.as_str()));
    assert_eq!(listed[0].cursor(), moved);
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

/// A walk with every field the poll run stores (both marks, the newest time) and a page of
/// long ids, 1 MB in all, survives a checkpoint, a take-over by another run, a release and a
/// reopen verbatim: none of them rewrites, cuts or drops the progress text.
#[tokio::test]
async fn a_large_progress_text_survives_take_over_release_and_reopen_verbatim() {
    let (_dir, path) = temp_db();
    let page: Vec<String> = (0..100)
        .map(|i| {
            format!(
                "[\"{}-{i}\",\"2025-01-01T23:59:59.{i:03}Z\"]",
                "ü".repeat(5_000)
            )
        })
        .collect();
    let text = format!(
        "{{\"cursor\":\"2025-01-02T00:00:00.000Z\",\"endpoint\":\"poll\",\"filters\":{{\"status\":{{\"buyer\":[\"Issued\"]}}}},\"unsorted\":true,\"pageLimit\":25,\"after\":\"2025-01-01T23:59:59.000Z\",\"offset\":200,\"page\":[{}],\"known\":\"2025-01-02T00:00:00.000Z\",\"anyAfter\":true,\"newest\":\"2025-01-02T00:00:00.500Z\",\"pages\":3}}",
        page.join(",")
    );
    assert!(text.len() > 1_000_000);
    let store = SqliteStore::open(&path).unwrap();
    let c = store.acquire("orders", "a", LEASE).await.unwrap().unwrap();
    let value = "2025-01-02T00:00:00.000Z";
    let made = store
        .checkpoint("orders", "a", c.version, value, Some("w"), Some(&text))
        .await
        .unwrap();
    assert_eq!(made.walk.as_deref(), Some(text.as_str()));
    // "a" stops heartbeating; "b" takes the lease over once it ran out, "a" releases late.
    let b = store
        .acquire("orders", "b", std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(b.is_none(), "a's lease is still live");
    store.release("orders", "a").await.unwrap();
    let b = store.acquire("orders", "b", LEASE).await.unwrap().unwrap();
    assert_eq!(b.walk.as_deref(), Some(text.as_str()));
    store.release("orders", "a").await.unwrap();
    store.release("orders", "b").await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    let read = store.read("orders").await.unwrap().unwrap();
    assert_eq!(read.walk.as_deref(), Some(text.as_str()));
    assert_eq!(read.window_start.as_deref(), Some("w"));
    assert_eq!(read.value.as_deref(), Some(value));
}
