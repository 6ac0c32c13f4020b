//! Mapping of SQLite failures onto the ports' errors, and the error of opening a database.
//!
//! The ports' contract: `Unavailable` is transient (the webhook answers 503, Tradecloud retries,
//! nothing is lost), `Corrupt` means stored data cannot be read back. So only failures that say
//! the *stored bytes* are bad map to `Corrupt`; everything else (busy, locked, I/O, disk full,
//! read-only, and anything unexpected) maps to `Unavailable`, because a retry loses nothing while
//! a 4xx would make Tradecloud drop the message.

use std::path::PathBuf;

use rusqlite::ErrorCode;
use tcrelay_core::ports::StoreError;

/// A failure inside one blocking database call, before it becomes a [`StoreError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// SQLite (or rusqlite's conversion of a column) failed. A lock held by another process
    /// says what may hold it ([`lock_hint`]): the message reaches the operator (a command's
    /// error, `serve`'s WARN beside its 503s).
    #[error("{0}{hint}", hint = lock_hint(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// A row was read but its content makes no sense (bad state, bad JSON, negative version).
    #[error("{0}")]
    Corrupt(String),
    /// The blocking task running the call died (panicked or was cancelled at shutdown).
    #[error("database task failed: {0}")]
    Task(String),
    /// The batch a call was committed in failed (see `batch`): the same failure, told to each
    /// call in it.
    #[error("{message}")]
    Batch {
        /// The batch's failure.
        message: String,
        /// Whether it says the stored data is unreadable.
        corrupt: bool,
    },
}

impl DbError {
    /// The port error for a failure of `operation` (named in the message and the log line).
    pub(crate) fn into_store(self, operation: &str) -> StoreError {
        let corrupt = self.is_corrupt();
        let message = format!("SQLite {operation}: {self}");
        if corrupt {
            tracing::error!(error = %message, "stored data is unreadable");
            StoreError::Corrupt(message)
        } else {
            tracing::warn!(error = %message, "SQLite call failed");
            StoreError::Unavailable(message)
        }
    }
}

impl DbError {
    fn is_corrupt(&self) -> bool {
        match self {
            DbError::Sqlite(e) => is_corrupt(e),
            DbError::Corrupt(_) => true,
            DbError::Task(_) => false,
            DbError::Batch { corrupt, .. } => *corrupt,
        }
    }

    /// The same failure again, for another call of a failed batch (rusqlite's error is not
    /// `Clone`).
    pub(crate) fn shared(&self) -> DbError {
        DbError::Batch {
            message: self.to_string(),
            corrupt: self.is_corrupt(),
        }
    }
}

/// Whether a rusqlite error says the stored data (file or a column's value) is unreadable.
fn is_corrupt(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        }
        // A column holds a value of the wrong type or range: someone wrote it by hand, or a
        // future schema did.
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => true,
        _ => false,
    }
}

/// What to do when another process holds the database's write lock longer than a call waits
/// for it (`busy_timeout`): SQLite says only "database is locked", which names neither the
/// usual holders (an operator's `sqlite3` shell left inside a transaction, a backup, another
/// process writing for long) nor that the lock is someone else's to let go. Empty for every
/// other failure.
pub(crate) fn lock_hint(e: &rusqlite::Error) -> &'static str {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            " (another process holds its write lock: an sqlite3 shell inside a transaction, a \
             backup, or another program writing to it; end that, or wait for it, and try again)"
        }
        _ => "",
    }
}

/// Why [`SqliteStore::open`](crate::SqliteStore::open) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// SQLite could not open the file, set it up, or migrate its schema (a directory that does
    /// not exist, no permission, not a database, locked by another process for too long).
    #[error("cannot open SQLite database {path}: {reason}{hint}", hint = lock_hint(reason))]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// SQLite's reason. Quoted in the message, so not a `source` too: a report of the
        /// cause chain (`{:#}`) would print it again, and SQLite's own code a third time.
        reason: rusqlite::Error,
    },
    /// The file's schema is newer than this build knows: refuse rather than misread it.
    #[error(
        "SQLite database {path} has schema version {found}, this build knows up to {supported}: \
         use a newer tcrelay"
    )]
    SchemaTooNew {
        /// The file.
        path: PathBuf,
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build writes.
        supported: i64,
    },
    /// SQLite refused to switch the file to WAL journaling (a file system without shared memory
    /// support, for instance); without WAL, readers and the writer would block each other.
    #[error("SQLite database {path} cannot use WAL journaling (journal mode stays {mode})")]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// [`SqliteStore::open_existing`](crate::SqliteStore::open_existing) found no database at
    /// the path (a mistyped `--db`): nothing was created.
    #[error("no database at {path} (give the path of an existing one with --db or TCRELAY_DB)")]
    Missing {
        /// The path that was asked for.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_locked_and_io_are_transient() {
        for code in [
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_LOCKED,
            rusqlite::ffi::SQLITE_IOERR,
            rusqlite::ffi::SQLITE_FULL,
            rusqlite::ffi::SQLITE_READONLY,
        ] {
            assert!(matches!(
                DbError::from(failure(code)).into_store("test"),
                StoreError::Unavailable(_)
            ));
        }
        assert!(matches!(
            DbError::Task("cancelled".into()).into_store("test"),
            StoreError::Unavailable(_)
        ));
    }

    /// Another process's lock says what to do, in a call's error and in an open's; other
    /// failures carry no such hint.
    #[test]
    fn a_lock_held_elsewhere_says_what_may_hold_it() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let StoreError::Unavailable(message) = DbError::from(failure(code)).into_store("ack")
            else {
                panic!("not transient")
            };
            assert!(message.contains("another process holds"), "{message}");
            let open = OpenError::Sqlite {
                path: "t.db".into(),
                reason: failure(code),
            };
            assert!(open.to_string().contains("sqlite3 shell"), "{open}");
        }
        let StoreError::Unavailable(message) =
            DbError::from(failure(rusqlite::ffi::SQLITE_IOERR)).into_store("ack")
        else {
            panic!("not transient")
        };
        assert!(!message.contains("another process"), "{message}");
    }

    #[test]
    fn unreadable_data_is_corrupt() {
        for code in [rusqlite::ffi::SQLITE_CORRUPT, rusqlite::ffi::SQLITE_NOTADB] {
            assert!(matches!(
                DbError::from(failure(code)).into_store("test"),
                StoreError::Corrupt(_)
            ));
        }
        let wrong_type =
            rusqlite::Error::InvalidColumnType(0, "version".into(), rusqlite::types::Type::Text);
        let err = DbError::from(wrong_type).into_store("cursor read");
        assert!(matches!(&err, StoreError::Corrupt(m) if m.contains("cursor read")));
    }
}
