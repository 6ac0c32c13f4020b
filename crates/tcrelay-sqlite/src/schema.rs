//! The schema and its migrations, versioned with `PRAGMA user_version`.
//!
//! Migration `n` (1-based) takes a file from version `n - 1` to `n`. Each runs in one immediate
//! transaction together with the `user_version` bump, so a crash mid-migration leaves the old
//! version intact and two processes opening the same new file cannot both apply it. Never edit a
//! released migration: append a new one.

use rusqlite::{Connection, TransactionBehavior};

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Times are stored two ways, each for its use: instants that are only shown (`enqueued_at`,
/// `acked_at`, `received_at`, `kept_at`) as RFC 3339 text, readable in `sqlite3`; expiries that
/// SQL compares with "now" (`expires_at`, `in_progress_expires_at`, `lease_expires_at`) as
/// integer epoch milliseconds.
const MIGRATIONS: &[&str] = &[
    // 1: the four ports.
    r#"
    -- The outbound queue. AUTOINCREMENT (not just the rowid) so an id is never reused, even after
    -- the newest rows are deleted: `ack up to id` and exported ids stay unambiguous for ever.
    CREATE TABLE outbound (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        envelope    TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        event_name  TEXT,
        object_id   TEXT    NOT NULL,
        source      TEXT    NOT NULL,
        dedupe_key  TEXT    NOT NULL,
        enqueued_at TEXT    NOT NULL,
        acked_at    TEXT
    );
    -- Consumers and `queue list` read pending rows in id order; acked rows pile up behind them.
    CREATE INDEX outbound_pending ON outbound (id) WHERE acked_at IS NULL;

    CREATE TABLE dedupe (
        key                    TEXT    PRIMARY KEY NOT NULL,
        state                  TEXT    NOT NULL,
        full_state             INTEGER NOT NULL,
        expires_at             INTEGER NOT NULL,
        in_progress_expires_at INTEGER
    ) WITHOUT ROWID;
    -- For purging expired records; lookups go by key.
    CREATE INDEX dedupe_expiry ON dedupe (expires_at);

    CREATE TABLE quarantine (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kept_at      TEXT NOT NULL,
        received_at  TEXT NOT NULL,
        method       TEXT NOT NULL,
        uri          TEXT NOT NULL,
        content_type TEXT,
        headers      TEXT NOT NULL,
        body         BLOB NOT NULL,
        reason       TEXT NOT NULL
    );

    CREATE TABLE cursor (
        stream           TEXT    PRIMARY KEY NOT NULL,
        value            TEXT,
        version          INTEGER NOT NULL,
        lease_owner      TEXT,
        lease_expires_at INTEGER
    ) WITHOUT ROWID;
    "#,
    // 2: the claim token of each dedupe record, so complete and release go by the claim that
    // wrote it. Records from before have none: nobody's claim, so they only expire.
    r#"
    ALTER TABLE dedupe ADD COLUMN claim_token TEXT;
    "#,
    // 3: where the poll window of the runs since the last caught-up one began. Cursors from
    // before have none: their last run's window starts at the cursor, as it did then.
    r#"
    ALTER TABLE cursor ADD COLUMN window_start TEXT;
    "#,
    // 4: where a walk of a result set by offset stood when the run that wrote the cursor
    // stopped in it (the poll run's text, verbatim). Cursors from before have none: the next
    // run starts its walks from the beginning, as runs did then.
    r#"
    ALTER TABLE cursor ADD COLUMN walk TEXT;
    "#,
    // 5: the newest message of a dedupe key, which each enqueue looks up to drop a repeat
    // within SQS FIFO's deduplication window (`queue::DEDUPLICATION_WINDOW`).
    r#"
    CREATE INDEX outbound_dedupe_key ON outbound (dedupe_key);
    "#,
    // 6: the highest queue id `queue export` has handed to a consumer, above which `queue ack`
    // refuses (a mistyped id would take in messages nobody exported). One row at most. A file
    // from before starts with every id given so far, which is what `ack` accepted then: a
    // consumer that exported with the older build acknowledges that batch after the upgrade.
    r#"
    CREATE TABLE queue_export (
        singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        up_to     INTEGER NOT NULL
    );
    INSERT INTO queue_export (singleton, up_to)
        SELECT 1, seq FROM sqlite_sequence WHERE name = 'outbound';
    "#,
];

/// What [`migrate`] found.
pub(crate) enum Migration {
    /// The file is at [`SCHEMA_VERSION`] now; `from` is the version it had.
    Done {
        /// The version before.
        from: i64,
    },
    /// The file is newer than this build.
    TooNew(i64),
}

/// Brings the schema to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migration> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if from > SCHEMA_VERSION {
        return Ok(Migration::TooNew(from));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        tx.execute_batch(sql)?;
        // PRAGMA takes no bound parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tracing::info!(version = index + 1, "SQLite schema migrated");
    }
    tx.commit()?;
    Ok(Migration::Done { from })
}
