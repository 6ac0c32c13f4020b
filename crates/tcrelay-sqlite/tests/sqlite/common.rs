//! Helpers shared by the tests: stores in temp dirs, a movable clock, envelopes.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
pub use tcrelay_core::clock::ManualClock;
use tcrelay_core::conformance::{cursor_store, dedupe_store, event_sink, quarantine};
use tcrelay_core::envelope::ENVELOPE_SCHEMA;
use tcrelay_core::ports::{CursorStore, DedupeStore, EventSink, Quarantine, QuarantinedRequest};
use tcrelay_core::{Envelope, Source};
use tcrelay_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;
use tradecloud_model::{Format, ObjectKind};

/// One millisecond, the stores' resolution: the step over an expiry or window boundary.
pub const MS: Duration = Duration::from_millis(1);

/// Turns a file of the current schema back into one of schema version 4, before the index of
/// the queue's dedupe keys: the first step of every test's downgrade to an older version.
pub const DOWNGRADE_TO_4: &str =
    "DROP TABLE queue_export; DROP INDEX outbound_dedupe_key; PRAGMA user_version = 4;";

/// A database file in a fresh temporary directory (removed when the `TempDir` drops).
pub fn temp_db() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("tcrelay.db");
    (dir, path)
}

/// A clock standing at a fixed instant, so stored times are the same in every run.
pub fn new_clock() -> ManualClock {
    ManualClock::at(
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00.000Z")
            .unwrap()
            .with_timezone(&Utc),
    )
}

/// Short, distinct expiries so the tests can step over their boundaries: the ones the dedupe
/// contract expects.
pub fn test_options() -> SqliteOptions {
    SqliteOptions {
        dedupe_ttl: dedupe_store::TTL,
        in_progress_expiry: dedupe_store::IN_PROGRESS_EXPIRY,
        ..SqliteOptions::default()
    }
}

/// A store in a fresh database file, on a clock the conformance suites move; the subject of
/// both the cursor and the dedupe contract.
pub struct FreshDb {
    _dir: TempDir,
    store: SqliteStore,
    clock: ManualClock,
}

impl cursor_store::Subject for FreshDb {
    fn store(&self) -> &dyn CursorStore {
        &self.store
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl dedupe_store::Subject for FreshDb {
    fn store(&self) -> &dyn DedupeStore {
        &self.store
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// A [`FreshDb`] with [`test_options`].
pub async fn fresh_db() -> FreshDb {
    let (dir, path) = temp_db();
    let clock = new_clock();
    let store = open_with_clock(&path, &clock);
    FreshDb {
        _dir: dir,
        store,
        clock,
    }
}

/// A store on `path` with [`test_options`] and `clock`.
pub fn open_with_clock(path: &std::path::Path, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with(path, test_options())
        .expect("open")
        .with_clock(clock.clock())
}

/// Opens the store on `path`, a file of an older schema, and checks that opening migrated it
/// to [`SCHEMA_VERSION`](tcrelay_sqlite::SCHEMA_VERSION); the raw connection is for looking at
/// the file after.
pub fn open_migrated(
    path: &std::path::Path,
    clock: &ManualClock,
) -> (SqliteStore, rusqlite::Connection) {
    let store = open_with_clock(path, clock);
    let raw = rusqlite::Connection::open(path).unwrap();
    let version: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        version,
        tcrelay_sqlite::SCHEMA_VERSION,
        "the file was migrated"
    );
    (store, raw)
}

/// An envelope for object `id`, admitted under `dedupe_key`. The payload carries a decimal with
/// a trailing zero, which must come back exactly as written (arbitrary precision).
pub fn envelope(kind: ObjectKind, id: &str, dedupe_key: &str) -> Envelope {
    let source = if kind == ObjectKind::Shipment {
        Source::Poll
    } else {
        Source::WebhookPost
    };
    Envelope {
        schema: ENVELOPE_SCHEMA.to_owned(),
        source,
        kind,
        event_name: (source == Source::WebhookPost).then(|| "OrderIssuedByBuyer".to_owned()),
        id: id.to_owned(),
        version: Some(3),
        last_updated_at: Some("2026-03-01T11:59:59.123Z".to_owned()),
        message_id: None,
        dedupe_key: dedupe_key.to_owned(),
        received_at: "2026-03-01T12:00:00.000Z".to_owned(),
        format: Format::Json,
        changed_lines: (source == Source::Poll).then(|| vec!["1".to_owned(), "2".to_owned()]),
        payload: json!({
            "order": { "id": id, "lines": [ { "price": serde_json::from_str::<serde_json::Value>("12.50").unwrap(), "note": "line\nbreak ✓" } ] }
        })
        .into(),
    }
}

/// An order envelope with key `key`.
pub fn order(key: &str) -> Envelope {
    envelope(ObjectKind::Order, &format!("o-{key}"), key)
}

#[async_trait::async_trait]
impl event_sink::Subject for FreshDb {
    fn sink(&self) -> &dyn EventSink {
        &self.store
    }

    /// The pending envelopes in queue order, as `queue export` writes them, then acknowledged.
    async fn receive(&self) -> Vec<String> {
        let pending = self.store.export(false).await.expect("export");
        let ids: Vec<i64> = pending.iter().map(|q| q.id).collect();
        if let Some(&last) = ids.last() {
            self.store.record_exported(last).await.expect("export mark");
        }
        self.store.ack_ids(&ids).await.expect("ack");
        pending.into_iter().map(|q| q.json).collect()
    }

    fn keeps_order(&self) -> bool {
        true
    }

    /// A trigger, written on a connection of its own, that aborts the insert of such a row.
    fn refuse(&self, on: bool) {
        let raw = rusqlite::Connection::open(self.store.path()).expect("open the file");
        let sql = if on {
            format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbound \
                 WHEN NEW.event_name = '{}' BEGIN SELECT RAISE(ABORT, 'refused'); END",
                event_sink::REFUSED_EVENT
            )
        } else {
            "DROP TRIGGER IF EXISTS refuse".to_owned()
        };
        raw.execute_batch(&sql).expect("the trigger");
    }

    fn claim_check_threshold(&self) -> Option<usize> {
        None
    }
}

#[async_trait::async_trait]
impl quarantine::Subject for FreshDb {
    fn quarantine(&self) -> &dyn Quarantine {
        &self.store
    }

    /// What `quarantine export` reads.
    async fn kept(&self) -> Vec<QuarantinedRequest> {
        self.store
            .quarantine_list(0, usize::MAX)
            .await
            .expect("quarantine list")
            .into_iter()
            .map(|entry| entry.request)
            .collect()
    }

    fn claim_check_threshold(&self) -> Option<usize> {
        None
    }
}
