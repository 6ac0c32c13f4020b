//! Bounded storage: a steady stream of messages, acknowledged by a consumer, through simulated
//! weeks with housekeeping as `serve` runs it. The file stays bounded, and nothing pending and no
//! dedupe record still in force is ever removed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tcrelay_core::ports::{ClaimOutcome, DedupeStore, EventSink};
use tcrelay_sqlite::{Durability, SqliteOptions, SqliteStore};

use crate::common::{new_clock, order, temp_db};

const HOUR: Duration = Duration::from_secs(3600);
const DEDUPE_TTL: Duration = Duration::from_secs(2 * 24 * 3600);
const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Messages per simulated hour, each with a payload of about 8 KB.
const PER_HOUR: usize = 4;

#[tokio::test]
async fn weeks_of_traffic_keep_the_file_bounded_and_lose_nothing_in_force() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            dedupe_ttl: DEDUPE_TTL,
            acked_retention: RETENTION,
            // Test speed only: the crash guarantees are not what this test is about.
            durability: Durability::Normal,
            ..SqliteOptions::default()
        },
    )
    .unwrap()
    .with_clock(clock.clock());

    let filler = "x".repeat(8 * 1024);
    // Keys completed, with the hour they completed (their record is in force for DEDUPE_TTL).
    let mut completed: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending_forever = Vec::new();
    let mut size_after_first_week = 0;
    let mut largest_after = 0;
    let hours: u64 = 4 * 7 * 24;
    for hour in 0..hours {
        let mut batch = Vec::new();
        for n in 0..PER_HOUR {
            let key = format!("k-{hour}-{n}");
            let ClaimOutcome::Claimed(token) = store.claim(&key, false).await.unwrap() else {
                panic!("{key} is new");
            };
            let mut envelope = order(&key);
            envelope.payload = json!({ "filler": filler, "hour": hour }).into();
            batch.push((key, token, envelope));
        }
        let envelopes: Vec<_> = batch.iter().map(|(_, _, e)| e.clone()).collect();
        let ids = store.enqueue_returning_ids(&envelopes).await.unwrap();
        for (key, token, _) in &batch {
            store.complete(key, token).await.unwrap();
            completed.insert(key.clone(), hour);
        }
        // The consumer acknowledges everything but one message a day, which stays pending.
        store.record_exported(*ids.last().unwrap()).await.unwrap();
        if hour % 24 == 0 {
            pending_forever.push(ids[0]);
            store.ack_ids(&ids[1..]).await.unwrap();
        } else {
            store.ack_ids(&ids).await.unwrap();
        }

        clock.advance(HOUR);
        if hour % 6 == 5 {
            store.housekeep().await.unwrap();
            let size = store.file_sizes().total();
            if hour == 7 * 24 - 1 {
                size_after_first_week = size;
            } else if hour > 7 * 24 {
                largest_after = largest_after.max(size);
            }
        }
    }

    // Bounded: three more weeks of traffic did not grow the file beyond the first week's
    // steady state (plus a little slack for page allocation), though they wrote three times
    // as much as the file holds.
    let written = hours * (PER_HOUR as u64) * 8 * 1024;
    assert!(size_after_first_week > 0);
    assert!(
        largest_after <= size_after_first_week + size_after_first_week / 4 + 256 * 1024,
        "the file grew from {size_after_first_week} to {largest_after} bytes"
    );
    assert!(
        largest_after < written / 5,
        "{largest_after} bytes on disk for {written} bytes written"
    );

    // Nothing pending was removed, in queue order.
    let pending: Vec<i64> = store
        .export(false)
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(pending, pending_forever);
    // Acknowledged messages within the retention are still there; older ones are gone.
    let stats = store.stats().await.unwrap();
    let kept_acked = stats.acked;
    assert!(
        (RETENTION.as_secs() / 3600 - 6..=RETENTION.as_secs() / 3600 + 6)
            .contains(&(kept_acked / PER_HOUR as u64)),
        "{kept_acked} acknowledged messages kept"
    );

    // Every record still in force is there; the expired ones are gone from the table, not
    // just ignored.
    let now_hour = hours;
    let ttl_hours = DEDUPE_TTL.as_secs() / 3600;
    for (key, done) in &completed {
        let live = store.lookup(key).await.unwrap();
        if now_hour - done < ttl_hours {
            assert!(live.is_some(), "{key} (completed hour {done}) was removed");
        }
    }
    store.housekeep().await.unwrap();
    assert_eq!(
        store.purge_expired_dedupe().await.unwrap(),
        0,
        "housekeeping left expired records behind"
    );
    store.check_integrity().await.unwrap();
}

#[tokio::test]
async fn a_database_from_before_auto_vacuum_is_converted_by_housekeeping() {
    let (_dir, path) = temp_db();
    {
        // An older file: made without auto_vacuum, as every file before it was.
        let conn = rusqlite_connection(&path);
        conn.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE t (x); DROP TABLE t;")
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let batch: Vec<_> = (0..50).map(|i| order(&format!("v{i}"))).collect();
    store.enqueue(&batch).await.unwrap();
    store.housekeep().await.unwrap();
    drop(store);
    let conn = rusqlite_connection(&path);
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM outbound", [], |row| row.get(0))
        .unwrap();
    assert_eq!(rows, 50, "pending messages survive the conversion");
}

fn rusqlite_connection(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}
