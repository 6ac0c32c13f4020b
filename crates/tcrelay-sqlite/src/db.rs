//! The database handle: one file, one connection, calls run off the async runtime.
//!
//! **One connection behind a mutex, each call on `tokio::task::spawn_blocking`**, rather than a
//! pool: SQLite admits one writer at a time whatever we do, and nearly every call here writes
//! (enqueue, claim, complete, checkpoint), so a pool would only add connections that wait on each
//! other's write lock, inside SQLite, where a wait longer than `busy_timeout` surfaces as
//! `SQLITE_BUSY`. With one connection per process, the in-process waiting happens on our mutex
//! instead, which never times out into an error, and needs no pool dependency. Reads (`lookup`,
//! `read`, the operator listings) are indexed and short, so queueing them behind the writes costs
//! little. `busy_timeout` still matters for *other* processes on the same file: the operator CLI
//! (`tcrelay queue ack`) while `tcrelay serve` runs, and tests opening two handles.
//!
//! The webhook's hot writes (dedupe claims, completions, releases, enqueues) do not take the
//! mutex one by one: they go through a group commit (`batch`), so concurrent requests share
//! one transaction and one fsync. Everything else runs alone through `SqliteStore::run`.
//!
//! Every write transaction is `BEGIN IMMEDIATE`: it takes the write lock up front, where the busy
//! handler waits for it, instead of upgrading a read transaction later, which in WAL mode fails
//! at once with `SQLITE_BUSY` when another connection wrote in between.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tcrelay_core::ports::StoreError;

use crate::batch::{Batcher, Pending};
use crate::clock::{Clock, system_clock};
use crate::error::{DbError, OpenError};
use crate::schema::{self, Migration};

/// How hard a commit waits for the disk (`PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit fsyncs the WAL before it returns. A call that returned
    /// `Ok` survives `kill -9` *and* an OS crash or power loss. The default, because a webhook
    /// answers 202 right after the enqueue and Tradecloud never sends that message again: a
    /// commit lost to a power cut would be an event lost for good. Costs one fsync per commit.
    #[default]
    Full,
    /// `synchronous=NORMAL`: commits reach the WAL through the OS page cache, fsynced only at
    /// checkpoints. Still survives `kill -9` of the process (the kernel keeps the written pages),
    /// and the database never corrupts, but the last commits before a power loss may roll back.
    /// For throughput on a machine where that risk is accepted.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// The WAL file is truncated to this many bytes after a checkpoint.
const WAL_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

/// Settings of a [`SqliteStore`]. The dedupe expiries default to those of the DynamoDB store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a completed dedupe record suppresses duplicates. Default: 30 days.
    pub dedupe_ttl: Duration,
    /// How long an in-progress claim blocks others before it counts as abandoned; longer than a
    /// request may take. Default: 60 s.
    pub in_progress_expiry: Duration,
    /// How long a call waits for another process's write lock before it fails as
    /// `StoreError::Unavailable` (the webhook then answers 503). Default: 5 s, well inside
    /// Tradecloud's patience and API Gateway's 30 s.
    pub busy_timeout: Duration,
    /// Commit durability. Default: [`Durability::Full`].
    pub durability: Durability,
    /// How long an acknowledged message stays in the outbound queue before
    /// [`purge`](SqliteStore::purge) deletes it (for `queue list --all` and `queue export --all`
    /// after the fact). Pending messages are never deleted. Default: 7 days.
    pub acked_retention: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            dedupe_ttl: Duration::from_secs(30 * 24 * 3600),
            in_progress_expiry: Duration::from_secs(60),
            busy_timeout: Duration::from_secs(5),
            durability: Durability::Full,
            acked_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// All four ports (and the operator API) on one SQLite file. Cheap to clone: clones share the
/// connection.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) conn: Arc<Mutex<Connection>>,
    /// The calls waiting for the next group commit (see `batch`).
    pub(crate) batch: Arc<Batcher>,
    path: Arc<PathBuf>,
    pub(crate) options: Arc<SqliteOptions>,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// What a blocking call gets: the connection and "now" read under the lock, so that expiry
/// comparisons use the instant the transaction actually runs.
pub(crate) struct Ctx<'a> {
    pub(crate) conn: &'a mut Connection,
    pub(crate) now_ms: i64,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    pub(crate) options: &'a SqliteOptions,
}

impl SqliteStore {
    /// Opens (creating if absent) the database at `path` with default [`SqliteOptions`]: WAL
    /// journal, `synchronous=FULL`, schema migrated to [`SCHEMA_VERSION`](crate::SCHEMA_VERSION).
    /// Blocks briefly (file I/O); call it at start-up.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if absent) the database at `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        let path = path.as_ref();
        let conn = connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            &options,
        )?;
        Self::prepare(conn, path.to_path_buf(), options)
    }

    /// Opens the database at `path` only if it exists: [`OpenError::Missing`] otherwise, and
    /// nothing is created. For the operator commands, where a mistyped path must not turn into
    /// an empty database that reports "pending: 0".
    pub fn open_existing(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        ExistingFile::read_write(path, options)?.into_store()
    }

    /// Opens the database at `path` read-only, for the operator commands that only read
    /// (`queue list`, `trace`, `cursor show`, …): nothing is created, migrated or written, so
    /// looking at a file never changes it (a file of an older schema stays usable by the older
    /// `serve` that may still run on it). [`OpenError::Missing`] when there is no file;
    /// [`OpenError::SchemaTooNew`] when its schema is newer than this build, which could
    /// misread it. The caller checks for an older schema or a file that is not a tcrelay
    /// database ([`ExistingFile`], on the connection the store then uses): their queries
    /// would fail or answer about nothing. Every write through the store fails (SQLite
    /// refuses it).
    pub fn open_read_only(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        ExistingFile::read_only(path, options)?.into_store()
    }

    /// The names of the tables in the file at `path` (SQLite's own left out), read without
    /// creating, migrating or writing anything. With a [`schema_version_of`](Self::schema_version_of)
    /// of 0 it tells a new, empty file (none: opening it creates the schema) from another
    /// application's database (some: not to be touched).
    pub fn tables_of(path: impl AsRef<Path>) -> Result<Vec<String>, OpenError> {
        let path = path.as_ref();
        must_exist(path)?;
        let (conn, sqlite) = Self::read_only(path)?;
        table_names(&conn).map_err(sqlite)
    }

    /// The schema version of the file at `path` as it is (`PRAGMA user_version`), read without
    /// migrating, creating or writing anything (`tcrelay doctor`). 0 is a file this relay never
    /// opened.
    pub fn schema_version_of(path: impl AsRef<Path>) -> Result<i64, OpenError> {
        let path = path.as_ref();
        must_exist(path)?;
        let (conn, sqlite) = Self::read_only(path)?;
        user_version(&conn).map_err(sqlite)
    }

    /// A read-only connection to the file at `path`, and the error mapping for its calls.
    fn read_only(
        path: &Path,
    ) -> Result<
        (
            Connection,
            impl Fn(rusqlite::Error) -> OpenError + Copy + '_,
        ),
        OpenError,
    > {
        let sqlite = move |source| OpenError::Sqlite {
            path: path.to_path_buf(),
            reason: source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite)?;
        Ok((conn, sqlite))
    }

    /// `PRAGMA integrity_check` of the file at `path` on a read-only connection: nothing is
    /// migrated, created or written (`tcrelay doctor` on a file of an older schema, which a
    /// running older `serve` may still use). `Ok(None)` when SQLite finds nothing; otherwise
    /// what it found.
    pub fn integrity_of(path: impl AsRef<Path>) -> Result<Option<String>, OpenError> {
        let (conn, sqlite) = Self::read_only(path.as_ref())?;
        let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(sqlite)?;
        let findings = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .map_err(sqlite)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sqlite)?;
        Ok((findings != ["ok"]).then(|| findings.join("; ")))
    }

    /// The store on `conn`, a read-write connection to the file at `path` ([`connect`]): the
    /// file switched to WAL, the pragmas of `options` set, the schema migrated.
    fn prepare(
        mut conn: Connection,
        path: PathBuf,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            reason: source,
        };
        // The busy timeout is in force since `connect`, so switching to WAL and migrating wait
        // for another process's lock too.
        let deadline = Instant::now() + clamped_busy_timeout(&options);
        let mode: String = retry_busy(deadline, || {
            conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        })
        .map_err(sqlite)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(OpenError::NoWal { path, mode });
        }
        // auto_vacuum takes effect only on a file without tables yet (a new one); older files
        // are converted by the first `purge`. journal_size_limit truncates the WAL back to
        // 16 MiB after each checkpoint, so one large burst does not keep a large WAL for ever.
        conn.execute_batch(&format!(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA synchronous = {}; \
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};",
            options.durability.pragma()
        ))
        .map_err(sqlite)?;
        match retry_busy(deadline, || schema::migrate(&mut conn)).map_err(sqlite)? {
            Migration::TooNew(found) => {
                return Err(OpenError::SchemaTooNew {
                    path,
                    found,
                    supported: schema::SCHEMA_VERSION,
                });
            }
            Migration::Done { from } => {
                tracing::info!(
                    path = %path.display(),
                    schema_from = from,
                    schema = schema::SCHEMA_VERSION,
                    durability = options.durability.pragma(),
                    "SQLite store open"
                );
            }
        }
        Ok(Self::on(conn, path, options))
    }

    /// The store on an open connection.
    fn on(conn: Connection, path: PathBuf, options: SqliteOptions) -> Self {
        SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            batch: Arc::default(),
            path: Arc::new(path),
            options: Arc::new(options),
            clock: system_clock(),
        }
    }

    /// Uses `clock` for "now" (tests move it to expire records and leases without waiting).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings in force.
    pub fn options(&self) -> &SqliteOptions {
        &self.options
    }

    /// Runs `f` on the connection in a blocking task, and maps a failure to the port error for
    /// `operation`.
    pub(crate) async fn run<T, F>(&self, operation: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Ctx<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let options = Arc::clone(&self.options);
        let clock = Arc::clone(&self.clock);
        let result = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            let now = clock();
            f(Ctx {
                conn: &mut guard,
                now_ms: now.timestamp_millis(),
                now,
                options: &options,
            })
        })
        .await
        .unwrap_or_else(|join| Err(DbError::Task(join.to_string())));
        result.map_err(|e| e.into_store(operation))
    }

    /// Runs `f` as one call of a group commit (see `batch`): inside a transaction that is
    /// already open (so `f` must not begin or commit one), resolving only after that
    /// transaction committed. For the short writes every webhook request makes.
    pub(crate) async fn run_batched<T, F>(
        &self,
        operation: &'static str,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Ctx<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.batch.push(Box::new(Pending::new(f, reply))) {
            let batch = Arc::clone(&self.batch);
            let conn = Arc::clone(&self.conn);
            let options = Arc::clone(&self.options);
            let clock = Arc::clone(&self.clock);
            tokio::task::spawn_blocking(move || batch.lead(&conn, &options, &clock));
        }
        let result = answer.await.unwrap_or_else(|_| {
            Err(DbError::Task(
                "the batch ended without answering the call".to_owned(),
            ))
        });
        result.map_err(|e| e.into_store(operation))
    }

    /// Runs SQLite's `PRAGMA integrity_check` over the whole file: `Ok` when it reports `ok`,
    /// `Corrupt` with its findings otherwise (operators, and the crash tests).
    pub async fn check_integrity(&self) -> Result<(), StoreError> {
        self.run("integrity check", |ctx| {
            let mut stmt = ctx.conn.prepare("PRAGMA integrity_check")?;
            let findings = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            if findings == ["ok"] {
                Ok(())
            } else {
                Err(DbError::Corrupt(findings.join("; ")))
            }
        })
        .await
    }
}

/// An existing database file on the one connection a [`SqliteStore`] will use, before the
/// store is made of it: what the file holds ([`schema_version`](Self::schema_version),
/// [`tables`](Self::tables)) can be checked first, on the file the store then uses, with one
/// open. Until [`into_store`](Self::into_store) nothing in the file is created, migrated or
/// written.
pub struct ExistingFile {
    conn: Connection,
    path: PathBuf,
    options: SqliteOptions,
    read_only: bool,
}

impl std::fmt::Debug for ExistingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExistingFile")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl ExistingFile {
    /// The file at `path` for a store that writes ([`SqliteStore::open_existing`]):
    /// [`OpenError::Missing`] when there is none, and nothing is created.
    pub fn read_write(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        Self::open(path.as_ref(), options, false)
    }

    /// The file at `path` for a store that only reads ([`SqliteStore::open_read_only`]):
    /// [`OpenError::Missing`] when there is none.
    pub fn read_only(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        Self::open(path.as_ref(), options, true)
    }

    fn open(path: &Path, options: SqliteOptions, read_only: bool) -> Result<Self, OpenError> {
        must_exist(path)?;
        let access = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        Ok(Self {
            conn: connect(path, access, &options)?,
            path: path.to_path_buf(),
            options,
            read_only,
        })
    }

    /// The file's schema version as it is (`PRAGMA user_version`); 0 is a file this relay
    /// never opened.
    pub fn schema_version(&self) -> Result<i64, OpenError> {
        user_version(&self.conn).map_err(|e| self.sqlite(e))
    }

    /// The names of the file's tables, SQLite's own left out. With a
    /// [`schema_version`](Self::schema_version) of 0 it tells a new, empty file (none: the
    /// store creates the schema) from another application's database (some: not to be
    /// touched).
    pub fn tables(&self) -> Result<Vec<String>, OpenError> {
        table_names(&self.conn).map_err(|e| self.sqlite(e))
    }

    /// The store on this connection. Read-only: [`OpenError::SchemaTooNew`] for a schema newer
    /// than this build, which it could misread; nothing else is checked or changed. Read-write:
    /// switched to WAL and migrated, as [`SqliteStore::open_with`] does (a newer schema is
    /// refused too).
    pub fn into_store(self) -> Result<SqliteStore, OpenError> {
        if !self.read_only {
            return SqliteStore::prepare(self.conn, self.path, self.options);
        }
        let found = self.schema_version()?;
        if found > schema::SCHEMA_VERSION {
            return Err(OpenError::SchemaTooNew {
                path: self.path,
                found,
                supported: schema::SCHEMA_VERSION,
            });
        }
        Ok(SqliteStore::on(self.conn, self.path, self.options))
    }

    fn sqlite(&self, source: rusqlite::Error) -> OpenError {
        OpenError::Sqlite {
            path: self.path.clone(),
            reason: source,
        }
    }
}

/// A connection to the file at `path` with `access` (read-only, read-write, and whether to
/// create), waiting as long as `options` says for another process's lock.
fn connect(
    path: &Path,
    access: OpenFlags,
    options: &SqliteOptions,
) -> Result<Connection, OpenError> {
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        reason: source,
    };
    // Our mutex serialises use of the connection; SQLite's own would be redundant.
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(sqlite)?;
    conn.busy_timeout(clamped_busy_timeout(options))
        .map_err(sqlite)?;
    Ok(conn)
}

/// `PRAGMA user_version`: the schema version (0 in a file this relay never opened).
fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// The names of the tables, SQLite's own left out, sorted.
fn table_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    stmt.query_map([], |row| row.get::<_, String>(0))?.collect()
}

/// Retries `step` while SQLite answers `SQLITE_BUSY`/`SQLITE_LOCKED`, until `deadline`.
///
/// Only for opening: when several processes open a *new* file at once, switching it to WAL and
/// creating the schema can fail with `SQLITE_BUSY` at once, without SQLite calling the busy
/// handler (it does not wait where waiting could deadlock, e.g. while another connection is
/// changing the journal mode). Everything after opening goes through `BEGIN IMMEDIATE`, where
/// the busy handler does wait.
fn retry_busy<T>(
    deadline: Instant,
    mut step: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let mut pause = Duration::from_millis(2);
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(e, msg))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                if Instant::now() >= deadline {
                    return Err(rusqlite::Error::SqliteFailure(e, msg));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Locks the connection. A panic while it was held (a bug) poisons the mutex; the connection
/// itself is still sound, because rusqlite's `Transaction` rolls back when dropped during the
/// unwind, so take it back, and roll back explicitly in case the panic struck outside one.
pub(crate) fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    match conn.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            let guard = poisoned.into_inner();
            conn.clear_poison();
            if !guard.is_autocommit()
                && let Err(e) = guard.execute_batch("ROLLBACK")
            {
                tracing::warn!(error = %e, "rollback after a panic failed");
            }
            guard
        }
    }
}

/// SQLite takes the busy timeout as an i32 of milliseconds (rusqlite panics above that):
/// clamped, ~24 days is "wait for ever" in practice.
fn clamped_busy_timeout(options: &SqliteOptions) -> Duration {
    options
        .busy_timeout
        .min(Duration::from_millis(i32::MAX as u64))
}

/// [`OpenError::Missing`] unless `path` is a file. SQLite without `SQLITE_OPEN_CREATE` refuses
/// a missing file too, but with a message ("unable to open database file") that does not say
/// which.
fn must_exist(path: &Path) -> Result<(), OpenError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(OpenError::Missing {
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::TransactionBehavior;
    use tcrelay_core::ports::CursorStore;

    use super::*;

    #[tokio::test]
    async fn a_panic_inside_a_call_is_unavailable_and_leaves_no_lock_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path).unwrap();

        // Inside a rusqlite transaction: its drop during the unwind rolls back.
        let err = store
            .run("test", |ctx| -> Result<(), DbError> {
                let tx = ctx
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute("INSERT INTO cursor (stream, version) VALUES ('a', 7)", [])?;
                panic!("bug inside a transaction");
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(store.read("a").await.unwrap(), None);

        // A raw BEGIN with no guard: the next lock sees the open transaction and rolls it back.
        let err = store
            .run("test", |ctx| -> Result<(), DbError> {
                ctx.conn.execute_batch(
                    "BEGIN IMMEDIATE; INSERT INTO cursor (stream, version) VALUES ('b', 7);",
                )?;
                panic!("bug outside a guard");
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(store.read("b").await.unwrap(), None);

        // The write lock is free again: another connection can write at once.
        let other = Connection::open(&path).unwrap();
        other
            .execute("INSERT INTO cursor (stream, version) VALUES ('c', 1)", [])
            .unwrap();
        assert_eq!(store.set("c", "t").await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn a_read_only_store_reads_and_neither_writes_nor_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let store = SqliteStore::open(&path).unwrap();
        store
            .set("orders", "2025-01-01T00:00:00.000Z")
            .await
            .unwrap();
        drop(store);
        let user_version = |path: &Path| -> i64 {
            Connection::open(path)
                .unwrap()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        // An older schema stays as it is (an older `serve` may still use the file).
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 1")
            .unwrap();
        let reader = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap();
        let cursor = reader.read("orders").await.unwrap().unwrap();
        assert_eq!(cursor.value.as_deref(), Some("2025-01-01T00:00:00.000Z"));
        assert!(
            reader
                .set("orders", "2025-02-01T00:00:00.000Z")
                .await
                .is_err()
        );
        drop(reader);
        assert_eq!(user_version(&path), 1);

        // A newer schema is refused; a missing file is not created.
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        let err = SqliteStore::open_read_only(&path, SqliteOptions::default()).unwrap_err();
        assert!(
            matches!(err, OpenError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        let missing = dir.path().join("missing.db");
        let err = SqliteStore::open_read_only(&missing, SqliteOptions::default()).unwrap_err();
        assert!(matches!(err, OpenError::Missing { .. }), "{err}");
        assert!(!missing.exists());
    }

    /// The names and bytes of every file in `dir`, to show nothing was created or changed.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn an_existing_file_is_checked_on_the_connection_of_its_store_and_changed_only_by_it() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::default;
        // One at a time: a connection still open would keep the WAL's files beside the file.
        let open = |path: &Path, read_only: bool| {
            if read_only {
                ExistingFile::read_only(path, options())
            } else {
                ExistingFile::read_write(path, options())
            }
        };

        // Another application's database, in either journal mode: seen as it is, by a
        // connection of either kind, and its bytes left as they were when no store is made of
        // it. The read-write connection leaves nothing beside it either; a read-only one leaves
        // a WAL file's (empty) `-wal` and its index `-shm`, which it may not delete (SQLite's
        // way, as before the checks ran on the store's connection).
        for journal in ["DELETE", "WAL"] {
            let other = dir.path().join(format!("other-{journal}.db"));
            Connection::open(&other)
                .unwrap()
                .execute_batch(&format!(
                    "PRAGMA journal_mode = {journal}; CREATE TABLE accounts (id INTEGER); \
                     INSERT INTO accounts VALUES (1);"
                ))
                .unwrap();
            let before = files(dir.path());
            for read_only in [false, true] {
                let file = open(&other, read_only).unwrap();
                assert_eq!(file.schema_version().unwrap(), 0, "{file:?}");
                assert_eq!(file.tables().unwrap(), ["accounts"], "{file:?}");
                drop(file);
                let mut after = files(dir.path());
                if read_only {
                    after.retain(|(name, _)| !name.ends_with("-wal") && !name.ends_with("-shm"));
                }
                assert_eq!(after, before, "{journal}, read-only: {read_only}");
            }
        }

        // An empty file, for a store that writes: the store made of the checked connection
        // creates the schema.
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let file = ExistingFile::read_write(&empty, options()).unwrap();
        assert_eq!(file.schema_version().unwrap(), 0);
        assert_eq!(file.tables().unwrap(), Vec::<String>::new());
        drop(file.into_store().unwrap());
        assert_eq!(
            SqliteStore::schema_version_of(&empty).unwrap(),
            schema::SCHEMA_VERSION
        );

        // An older schema (as far as `user_version` tells): read as it is, and left as it is by
        // a store that reads.
        let older = dir.path().join("older.db");
        drop(SqliteStore::open(&older).unwrap());
        Connection::open(&older)
            .unwrap()
            .execute_batch("PRAGMA user_version = 1")
            .unwrap();
        let file = ExistingFile::read_only(&older, options()).unwrap();
        assert_eq!(file.schema_version().unwrap(), 1);
        drop(file.into_store().unwrap());
        assert_eq!(SqliteStore::schema_version_of(&older).unwrap(), 1);

        // A newer schema is refused by either store; a missing file is not created.
        Connection::open(&older)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        for read_only in [true, false] {
            let err = open(&older, read_only).unwrap().into_store().unwrap_err();
            assert!(
                matches!(err, OpenError::SchemaTooNew { found: 99, .. }),
                "{err}"
            );
        }
        let missing = dir.path().join("missing.db");
        for read_only in [true, false] {
            let err = open(&missing, read_only).unwrap_err();
            assert!(matches!(err, OpenError::Missing { .. }), "{err}");
        }
        assert!(!missing.exists());
    }

    #[test]
    fn tables_of_tells_an_empty_file_from_another_applications_database() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            SqliteStore::tables_of(&empty).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            std::fs::metadata(&empty).unwrap().len(),
            0,
            "nothing written"
        );

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE accounts (id INTEGER)")
            .unwrap();
        assert_eq!(SqliteStore::tables_of(&other).unwrap(), ["accounts"]);
        assert_eq!(SqliteStore::schema_version_of(&other).unwrap(), 0);

        let ours = dir.path().join("ours.db");
        drop(SqliteStore::open(&ours).unwrap());
        let tables = SqliteStore::tables_of(&ours).unwrap();
        assert!(tables.contains(&"outbound".to_owned()), "{tables:?}");
        assert!(
            !tables.iter().any(|t| t.starts_with("sqlite_")),
            "SQLite's own tables are left out: {tables:?}"
        );
    }

    #[test]
    fn the_pragmas_are_in_force_on_the_store_connection() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, expected) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let store = SqliteStore::open_with(
                dir.path().join("p.db"),
                SqliteOptions {
                    durability,
                    busy_timeout: Duration::from_millis(1234),
                    ..SqliteOptions::default()
                },
            )
            .unwrap();
            let conn = lock(&store.conn);
            let sync: i64 = conn
                .query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap();
            assert_eq!(sync, expected, "{durability:?}");
            let busy: i64 = conn
                .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
                .unwrap();
            assert_eq!(busy, 1234);
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
        // An absurd timeout is clamped, not a panic.
        let store = SqliteStore::open_with(
            dir.path().join("p.db"),
            SqliteOptions {
                busy_timeout: Duration::MAX,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        let busy: i64 = lock(&store.conn)
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy, i64::from(i32::MAX));
    }
}
