//! The outbound queue: the sink contract (`tcrelay_core::conformance::event_sink`), then order, durability across reopen, ack, stats, export, and the drop of a
//! repeat within SQS FIFO's deduplication window.

use tcrelay_core::ports::EventSink;
use tcrelay_sqlite::{AckedUpTo, DEDUPLICATION_WINDOW, SqliteStore};
use tempfile::TempDir;
use tradecloud_model::ObjectKind;

use crate::common::{
    DOWNGRADE_TO_4, MS, ManualClock, envelope, new_clock, open_migrated, open_with_clock, order,
    temp_db,
};

mod contract {
    tcrelay_core::event_sink_conformance!(crate::common::fresh_db());
}

#[tokio::test]
async fn order_is_kept_across_batches_and_reopen() {
    let (_dir, path) = temp_db();
    let first: Vec<_> = (0..3).map(|i| order(&format!("a{i}"))).collect();
    let second: Vec<_> = (0..2).map(|i| order(&format!("b{i}"))).collect();
    let third: Vec<_> = (0..4)
        .map(|i| envelope(ObjectKind::Shipment, &format!("s{i}"), &format!("c{i}")))
        .collect();
    {
        let store = SqliteStore::open(&path).unwrap();
        store.enqueue(&first).await.unwrap();
        store.enqueue(&second).await.unwrap();
    }
    // A new process on the same file continues the same order.
    let store = SqliteStore::open(&path).unwrap();
    let ids = store.enqueue_returning_ids(&third).await.unwrap();
    assert_eq!(ids.len(), 4);

    let exported = store.export(false).await.unwrap();
    let expected: Vec<_> = first.iter().chain(&second).chain(&third).cloned().collect();
    let got: Vec<_> = exported.iter().map(|q| q.envelope().unwrap()).collect();
    // The whole envelope comes back equal, payload decimals and newlines included.
    assert_eq!(got, expected);
    assert!(exported.windows(2).all(|w| w[0].id < w[1].id), "ids ascend");
    assert_eq!(
        &exported[5..].iter().map(|q| q.id).collect::<Vec<_>>(),
        &ids
    );
    // The exported line is the JSON document, one line, number written as given.
    assert!(exported.iter().all(|q| !q.json.contains('\n')));
    assert!(
        exported[0].json.contains("\"price\":12.50"),
        "{}",
        exported[0].json
    );
}

#[tokio::test]
async fn an_empty_batch_is_accepted_and_adds_nothing() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    store.enqueue(&[]).await.unwrap();
    assert_eq!(store.stats().await.unwrap().pending, 0);
    assert!(store.export(true).await.unwrap().is_empty());
}

#[tokio::test]
async fn list_shows_routing_fields_and_honours_limit_and_acks() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let batch = vec![
        order("k1"),
        envelope(ObjectKind::Shipment, "ship-1", "k2"),
        order("k3"),
    ];
    let ids = store.enqueue_returning_ids(&batch).await.unwrap();

    let listed = store.list(2, false).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, ids[0]);
    assert_eq!(listed[0].kind, "order");
    assert_eq!(listed[0].event_name.as_deref(), Some("OrderIssuedByBuyer"));
    assert_eq!(listed[0].object_id, "o-k1");
    assert_eq!(listed[0].source, "webhook-post");
    assert_eq!(listed[0].dedupe_key, "k1");
    assert_eq!(listed[0].acked_at, None);
    assert_eq!(listed[1].kind, "shipment");
    assert_eq!(listed[1].event_name, None);
    assert_eq!(listed[1].source, "poll");

    store.record_exported(ids[0]).await.unwrap();
    assert_eq!(store.ack_up_to(ids[0]).await.unwrap(), AckedUpTo::Acked(1));
    let pending = store.list(10, false).await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), &ids[1..]);
    let all = store.list(10, true).await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[0].acked_at.is_some() && all[1].acked_at.is_none());
}

#[tokio::test]
async fn ack_and_stats() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let batch = vec![
        order("k1"),
        order("k2"),
        envelope(ObjectKind::Shipment, "s1", "k3"),
        envelope(ObjectKind::OrderDocuments, "d1", "k4"),
        envelope(ObjectKind::Shipment, "s2", "k5"),
    ];
    let ids = store.enqueue_returning_ids(&batch).await.unwrap();

    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.acked), (5, 0));
    assert_eq!(stats.by_kind["order"].pending, 2);
    assert_eq!(stats.by_kind["shipment"].pending, 2);
    assert_eq!(stats.by_kind["order-documents"].pending, 1);
    assert_eq!(stats.oldest_pending_id, Some(ids[0]));
    assert_eq!(stats.last_id, Some(ids[4]));
    assert!(stats.oldest_pending_at.is_some());

    // Up to the third: three newly acknowledged; again: none.
    store.record_exported(ids[4]).await.unwrap();
    assert_eq!(store.ack_up_to(ids[2]).await.unwrap(), AckedUpTo::Acked(3));
    assert_eq!(store.ack_up_to(ids[2]).await.unwrap(), AckedUpTo::Acked(0));
    // By id: one pending, one already acked, one never given (above the export mark: named,
    // not counted).
    let acked = store
        .ack_ids(&[ids[4], ids[0], ids[4] + 1000])
        .await
        .unwrap();
    assert_eq!(acked.newly, 1);
    assert_eq!(acked.not_exported, vec![ids[4] + 1000]);
    assert!(acked.missing.is_empty());

    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.acked), (1, 4));
    assert_eq!(stats.by_kind["order"].acked, 2);
    assert_eq!(stats.by_kind["shipment"].acked, 2);
    assert_eq!(stats.by_kind["order-documents"].pending, 1);
    assert_eq!(stats.oldest_pending_id, Some(ids[3]));

    // Export without acked shows only the pending one; with acked, all in order.
    let pending = store.export(false).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].envelope().unwrap().dedupe_key, "k4");
    assert!(!pending[0].acked);
    let all = store.export(true).await.unwrap();
    assert_eq!(all.iter().filter(|q| q.acked).count(), 4);

    // Acks survive a reopen.
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.stats().await.unwrap().acked, 4);
}

#[tokio::test]
async fn export_pages_from_an_id() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    let batch: Vec<_> = (0..7).map(|i| order(&format!("k{i}"))).collect();
    store.enqueue(&batch).await.unwrap();
    let mut after = 0;
    let mut keys = Vec::new();
    loop {
        let page = store.export_page(after, 3, false).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        after = page.last().unwrap().id;
        keys.extend(page.iter().map(|q| q.envelope().unwrap().dedupe_key));
    }
    assert_eq!(
        keys,
        batch
            .iter()
            .map(|e| e.dedupe_key.clone())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn one_store_serves_every_port_as_a_shared_trait_object() {
    use std::sync::Arc;
    use std::time::Duration;

    use tcrelay_core::ports::{CursorStore, DedupeStore, Quarantine};

    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    // How the runner wires it: one store, four ports, shared across tasks.
    let sink: Arc<dyn EventSink> = Arc::new(store.clone());
    let dedupe: Arc<dyn DedupeStore> = Arc::new(store.clone());
    let quarantine: Arc<dyn Quarantine> = Arc::new(store.clone());
    let cursors: Arc<dyn CursorStore> = Arc::new(store.clone());

    let claim = dedupe.claim("k", false).await.unwrap();
    sink.enqueue(&[order("k")]).await.unwrap();
    dedupe
        .complete("k", claim.token().expect("a fresh key is free"))
        .await
        .unwrap();
    let lease = cursors
        .acquire("orders", "run", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    cursors
        .checkpoint("orders", "run", lease.version, "t", None, None)
        .await
        .unwrap();
    quarantine
        .keep(&tcrelay_core::ports::QuarantinedRequest {
            received_at: chrono::Utc::now(),
            method: "POST".into(),
            uri: "/webhook".into(),
            content_type: Some("text/plain".into()),
            headers: vec![],
            body: b"junk".to_vec(),
            reason: "not JSON or tXML".into(),
        })
        .await
        .unwrap();

    // All of it went to the one file, visible to a fresh handle.
    let fresh = SqliteStore::open(&path).unwrap();
    assert_eq!(fresh.stats().await.unwrap().pending, 1);
    assert!(fresh.lookup("k").await.unwrap().is_some());
    assert_eq!(fresh.read("orders").await.unwrap().unwrap().version, 1);
    assert_eq!(fresh.quarantine_count().await.unwrap(), 1);
}

/// The keys of every message on the queue, acknowledged ones too, in queue order.
async fn queued_keys(store: &SqliteStore) -> Vec<String> {
    let all = store.list(usize::MAX, true).await.unwrap();
    all.into_iter().map(|e| e.dedupe_key).collect()
}

/// A store on a movable clock with one message of key `k` enqueued, and that message's id.
async fn k_enqueued() -> (TempDir, ManualClock, SqliteStore, Vec<i64>) {
    let (dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    let first = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    (dir, clock, store, first)
}

/// What a process killed between the enqueue and the completion of its claim leaves to the
/// retry: SQS FIFO drops the repeat within its deduplication interval and answers success, and
/// so does the local queue, with the first message's id.
#[tokio::test]
async fn a_repeat_within_the_deduplication_window_is_dropped_and_answers_the_first_id() {
    let (_dir, clock, store, first) = k_enqueued().await;
    clock.advance(DEDUPLICATION_WINDOW - MS);
    let again = store
        .enqueue_returning_ids(&[order("k"), order("j")])
        .await
        .unwrap();
    assert_eq!(again[0], first[0]);
    assert!(again[1] > first[0]);
    // Through the port too: Ok, and nothing added.
    store.enqueue(&[order("k")]).await.unwrap();
    assert_eq!(queued_keys(&store).await, ["k", "j"]);
}

/// SQS FIFO keeps a repeat sent once the interval has passed; its window runs from the message
/// it kept, not from a repeat it dropped.
#[tokio::test]
async fn a_repeat_after_the_deduplication_window_is_kept() {
    let (_dir, clock, store, first) = k_enqueued().await;
    clock.advance(DEDUPLICATION_WINDOW / 2);
    store.enqueue(&[order("k")]).await.unwrap();
    // Half a second past the window: as text, `…12:00:00Z` sorts after `…12:00:00.5Z`.
    clock.advance(DEDUPLICATION_WINDOW / 2 + 500 * MS);
    let second = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert!(second[0] > first[0]);
    // The window of the second message is its own, and ends exactly five minutes after it.
    clock.advance(DEDUPLICATION_WINDOW - MS);
    let dropped = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert_eq!(dropped, second);
    clock.advance(MS);
    let third = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert!(third[0] > second[0]);
    assert_eq!(queued_keys(&store).await, ["k", "k", "k"]);
}

#[tokio::test]
async fn a_key_given_twice_in_one_batch_is_kept_once() {
    let (_dir, path) = temp_db();
    let store = open_with_clock(&path, &new_clock());
    let ids = store
        .enqueue_returning_ids(&[order("k"), order("j"), order("k")])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], ids[0]);
    assert_ne!(ids[1], ids[0]);
    assert_eq!(queued_keys(&store).await, ["k", "j"]);
}

/// SQS drops a repeat of a message already received and deleted, too.
#[tokio::test]
async fn an_acknowledged_message_counts_for_the_deduplication_window() {
    let (_dir, clock, store, first) = k_enqueued().await;
    store.record_exported(first[0]).await.unwrap();
    assert_eq!(
        store.ack_up_to(first[0]).await.unwrap(),
        AckedUpTo::Acked(1)
    );
    clock.advance(DEDUPLICATION_WINDOW - MS);
    let again = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert_eq!(again, first);
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.pending, stats.acked), (0, 1));
}

/// `ack` accepts only ids an export handed out ([`SqliteStore::record_exported`]): up to an id
/// above that mark, or such ids one by one, it acknowledges nothing of them (a typo, or an id
/// off `queue list`, would take in messages no consumer received); an id exported, since
/// pruned, is no typo.
#[tokio::test]
async fn ack_accepts_only_ids_an_export_handed_out() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = keeping_no_acknowledged(&path, &clock);
    assert_eq!(
        store.ack_up_to(1).await.unwrap(),
        AckedUpTo::NotExported {
            exported_up_to: None
        }
    );
    let ids = store
        .enqueue_returning_ids(&[order("a"), order("b"), order("c")])
        .await
        .unwrap();
    // Enqueued, not exported: refused, by `--up-to` and one by one.
    assert_eq!(
        store.ack_up_to(ids[0]).await.unwrap(),
        AckedUpTo::NotExported {
            exported_up_to: None
        }
    );
    store.record_exported(ids[1]).await.unwrap();
    // A second, older export (`--up-to`) does not take the mark back.
    store.record_exported(ids[0]).await.unwrap();
    assert_eq!(store.exported_up_to().await.unwrap(), Some(ids[1]));
    assert_eq!(store.stats().await.unwrap().exported_up_to, Some(ids[1]));
    assert_eq!(
        store.ack_up_to(ids[2]).await.unwrap(),
        AckedUpTo::NotExported {
            exported_up_to: Some(ids[1])
        }
    );
    let acked = store.ack_ids(&[ids[2], ids[0]]).await.unwrap();
    assert_eq!(acked.newly, 1);
    assert_eq!(acked.not_exported, vec![ids[2]]);
    assert_eq!(acked.exported_up_to, Some(ids[1]));
    assert!(acked.missing.is_empty());
    assert_eq!(store.stats().await.unwrap().pending, 2);
    assert_eq!(store.ack_up_to(ids[1]).await.unwrap(), AckedUpTo::Acked(1));
    // Pruned, every one: their ids were handed out all the same.
    clock.advance(DEDUPLICATION_WINDOW);
    assert_eq!(store.housekeep().await.unwrap().acked_deleted, 2);
    assert_eq!(store.ack_up_to(ids[1]).await.unwrap(), AckedUpTo::Acked(0));
    assert_eq!(store.stats().await.unwrap().pending, 1);
}

/// A file from before the export mark (schema version 5): its consumer exported with the
/// older build, whose `ack` accepted every id given. After the upgrade the first `ack` of that
/// batch still works; an id given after the upgrade needs an export.
#[tokio::test]
async fn an_upgraded_file_accepts_the_ids_given_before_it() {
    let (_dir, path) = temp_db();
    let ids = {
        let store = SqliteStore::open(&path).unwrap();
        store
            .enqueue_returning_ids(&[order("a"), order("b")])
            .await
            .unwrap()
    };
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE queue_export; PRAGMA user_version = 5")
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.exported_up_to().await.unwrap(), Some(ids[1]));
    let later = store.enqueue_returning_ids(&[order("c")]).await.unwrap();
    assert_eq!(
        store.ack_up_to(later[0]).await.unwrap(),
        AckedUpTo::NotExported {
            exported_up_to: Some(ids[1])
        }
    );
    assert_eq!(store.ack_up_to(ids[1]).await.unwrap(), AckedUpTo::Acked(2));
}

/// With `TCRELAY_ACKED_RETENTION_DAYS=0` housekeeping deletes acknowledged messages at once,
/// and `serve` housekeeps first thing at its start: right where a process killed between an
/// enqueue and its claim's completion restarts, and Tradecloud's retry comes. A message still
/// within its deduplication window must stay, or the retry reaches the ERP a second time.
#[tokio::test]
async fn housekeeping_keeps_an_acknowledged_message_within_its_deduplication_window() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let store = keeping_no_acknowledged(&path, &clock);
    let first = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    store.record_exported(first[0]).await.unwrap();
    assert_eq!(
        store.ack_up_to(first[0]).await.unwrap(),
        AckedUpTo::Acked(1)
    );
    clock.advance(DEDUPLICATION_WINDOW / 2);
    assert_eq!(store.housekeep().await.unwrap().acked_deleted, 0);
    let again = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert_eq!(again, first, "the retry's repeat is dropped");
    assert_eq!(queued_keys(&store).await, ["k"]);
    // Once the window has passed, retention 0 deletes it at the next housekeeping.
    clock.advance(DEDUPLICATION_WINDOW / 2);
    assert_eq!(store.housekeep().await.unwrap().acked_deleted, 1);
    assert!(queued_keys(&store).await.is_empty());
}
/// A queue written before the index of its dedupe keys (schema version 4) migrates, and its
/// messages count for the deduplication window at once.
#[tokio::test]
async fn a_queue_from_before_the_dedupe_key_index_migrates() {
    let (_dir, path) = temp_db();
    let clock = new_clock();
    let first = {
        let store = open_with_clock(&path, &clock);
        store.enqueue_returning_ids(&[order("k")]).await.unwrap()
    };
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(DOWNGRADE_TO_4).unwrap();
    drop(raw);

    let (store, raw) = open_migrated(&path, &clock);
    let plan: String = raw
        .query_row(
            "EXPLAIN QUERY PLAN SELECT id FROM outbound WHERE dedupe_key = 'k'",
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("outbound_dedupe_key"), "{plan}");
    assert_eq!(
        store.enqueue_returning_ids(&[order("k")]).await.unwrap(),
        first
    );
    assert_eq!(queued_keys(&store).await, ["k"]);
}

/// A message whose `enqueued_at` does not read (a hand edit) counts as outside the window: the
/// repeat is kept, not refused for good (every retry of it would fail, and the webhook answer
/// 503 until someone mends the row).
#[tokio::test]
async fn a_message_whose_time_does_not_read_keeps_no_repeat_out() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    store.enqueue(&[order("k")]).await.unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE outbound SET enqueued_at = 'soon' WHERE dedupe_key = 'k'")
        .unwrap();
    let ids = store.enqueue_returning_ids(&[order("k")]).await.unwrap();
    assert_eq!(ids.len(), 1);
    let count: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM outbound WHERE dedupe_key = 'k'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(count, 2);
}

/// A store on `path` whose housekeeping keeps no acknowledged message past its deduplication
/// window (`TCRELAY_ACKED_RETENTION_DAYS=0`), on `clock`.
fn keeping_no_acknowledged(path: &std::path::Path, clock: &ManualClock) -> SqliteStore {
    tcrelay_sqlite::SqliteStore::open_with(
        path,
        tcrelay_sqlite::SqliteOptions {
            acked_retention: std::time::Duration::ZERO,
            ..crate::common::test_options()
        },
    )
    .unwrap()
    .with_clock(clock.clock())
}
