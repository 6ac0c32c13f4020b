//! Failures: a locked database is transient (`Unavailable`, the webhook's 503), unreadable data
//! is `Corrupt`, and nothing panics. Bad rows are written with a second, raw connection.

use std::time::Duration;

use rusqlite::Connection;
use tcrelay_core::ports::{
    ClaimToken, CursorStore, DedupeStore, EventSink, Quarantine, QuarantinedRequest, StoreError,
};
use tcrelay_sqlite::{OpenError, SCHEMA_VERSION, SqliteOptions, SqliteStore};

use crate::common::{order, temp_db};

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
}

fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
}

#[tokio::test]
async fn a_database_locked_by_another_process_is_unavailable_then_recovers() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            busy_timeout: Duration::from_millis(150),
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let batch = vec![order("k1"), order("k2")];
    let err = store.enqueue(&batch).await.unwrap_err();
    assert_eq!(
        err.failed,
        vec![0, 1],
        "the whole batch is reported as not enqueued"
    );
    unavailable(store.claim("k1", false).await);
    unavailable(store.complete("k1", &ClaimToken::generate(false)).await);
    unavailable(
        store
            .acquire("orders", "run", Duration::from_secs(60))
            .await,
    );
    unavailable(store.set("orders", "t").await);
    unavailable(
        store
            .keep(&QuarantinedRequest {
                received_at: chrono::Utc::now(),
                method: "POST".into(),
                uri: "/webhook".into(),
                content_type: None,
                headers: vec![],
                body: vec![1, 2, 3],
                reason: "test".into(),
            })
            .await,
    );

    other.execute_batch("COMMIT").unwrap();
    store.enqueue(&batch).await.unwrap();
    assert_eq!(
        store.stats().await.unwrap().pending,
        2,
        "nothing of the failed batch slipped in"
    );
    store.claim("k1", false).await.unwrap();
}

#[tokio::test]
async fn unreadable_rows_are_corrupt_not_panics() {
    let (_dir, path) = temp_db();
    let store = SqliteStore::open(&path).unwrap();
    store.enqueue(&[order("good")]).await.unwrap();
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch(
        "INSERT INTO outbound (envelope, kind, object_id, source, dedupe_key, enqueued_at) \
            VALUES ('{not json', 'order', 'o', 'poll', 'bad-json', '2026-01-01T00:00:00Z');
         INSERT INTO dedupe (key, state, full_state, expires_at) VALUES ('weird', 'maybe', 0, 9e15);
         INSERT INTO dedupe (key, state, full_state, expires_at) VALUES ('typed', 'completed', 'yes', 9e15);
         INSERT INTO cursor (stream, value, version) VALUES ('neg', 't', -1);
         INSERT INTO cursor (stream, value, version) VALUES ('text', 't', 'one');
         INSERT INTO quarantine (kept_at, received_at, method, uri, headers, body, reason) \
            VALUES ('2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'POST', '/', '{', x'00', 'r');",
    )
    .unwrap();

    corrupt(store.export(false).await);
    // The good row's envelope still reads; listing (no payload) still works.
    assert_eq!(store.list(10, false).await.unwrap().len(), 2);
    corrupt(store.claim("weird", false).await);
    corrupt(store.lookup("weird").await);
    corrupt(store.lookup("typed").await);
    corrupt(store.read("neg").await);
    corrupt(store.read("text").await);
    corrupt(store.acquire("neg", "run", Duration::from_secs(1)).await);
    corrupt(store.cursors().await);
    corrupt(store.quarantine_list(0, 10).await);

    // A stored row whose JSON is valid but not an envelope: export passes it through, parsing
    // it says Corrupt.
    raw.execute_batch(
        "DELETE FROM outbound WHERE dedupe_key = 'bad-json';
         INSERT INTO outbound (envelope, kind, object_id, source, dedupe_key, enqueued_at) \
            VALUES ('{\"schema\":1}', 'order', 'o', 'poll', 'not-envelope', 'soon');",
    )
    .unwrap();
    let exported = store.export(false).await.unwrap();
    assert!(exported[0].envelope().is_ok());
    corrupt(exported[1].envelope());
    // Its unparseable enqueued_at is Corrupt for list, too.
    corrupt(store.list(10, false).await);
    corrupt(store.list(10, true).await);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let (_dir, path) = temp_db();
    std::fs::write(
        &path,
        b"this is not an SQLite database, but it is long enough to look like a header",
    )
    .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Sqlite { .. }), "{err:?}");
    assert!(err.to_string().contains("tcrelay.db"), "{err}");
    // A directory that does not exist is an open error too, naming the path.
    let missing = path.with_file_name("no-such-dir").join("x.db");
    assert!(matches!(
        SqliteStore::open(&missing),
        Err(OpenError::Sqlite { .. })
    ));
}

#[tokio::test]
async fn schema_is_versioned_and_a_newer_one_is_refused() {
    let (_dir, path) = temp_db();
    drop(SqliteStore::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    // WAL is a property of the file: a fresh connection sees it.
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // Reopening an up-to-date file migrates nothing and keeps the data.
    let store = SqliteStore::open(&path).unwrap();
    store.enqueue(&[order("k")]).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.stats().await.unwrap().pending, 1);
    store.check_integrity().await.unwrap();
    drop(store);

    raw.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(err, OpenError::SchemaTooNew { found, supported, .. }
            if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
}

#[test]
fn processes_opening_a_new_file_at_once_all_get_one_schema() {
    for _ in 0..5 {
        let (_dir, path) = temp_db();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (path, barrier) = (path.clone(), std::sync::Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).map(drop)
                })
            })
            .collect();
        for opener in openers {
            opener
                .join()
                .unwrap()
                .expect("every concurrent open succeeds");
        }
        let raw = Connection::open(&path).unwrap();
        let version: i64 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let tables: i64 = raw
            .query_row(
                "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' \
                 AND name IN ('outbound', 'dedupe', 'quarantine', 'cursor')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
    }
}
