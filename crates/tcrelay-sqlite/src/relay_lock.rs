//! The lock every process that relays through one database holds while it runs
//! (`tcrelay serve`, `tcrelay quarantine replay`), so a `tcrelay serve` that starts alone can
//! tell that the dedupe claims it finds in progress were left by a process that ended.
//!
//! A claim in progress holds its state until it expires (`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`,
//! 120 s by default): a webhook request's claim may still be sent by its request, which no
//! lease fences. A process killed while it relayed (`kill -9`, a power cut) leaves its claims so,
//! and the poll of the restarted process stops at the first of those states (each object's
//! order is kept) until they expire. But a claim whose process is gone can never be completed:
//! a process that holds this lock alone knows every claim in progress is such a claim, and
//! releases them all before it relays anything, so the restarted poll goes on at once. If the
//! killed process had sent a state before its claim's completion, that state is sent again:
//! the at-least-once window of an expired claim, which the local queue closes (it drops a
//! repeat of a dedupe key within five minutes of the first).
//!
//! The lock is an advisory file lock (`flock` on Unix, `LockFileEx` on Windows) on a file beside
//! the database (`<database>-relay.lock`, empty; beside the target of a symbolic link to it, so every
//! path to one database locks one file), which the operating system releases when the
//! process ends, however it ends. Every relaying process holds it shared while it runs; a
//! starting one first tries to take it alone, and only then releases the claims. (Not
//! `<database>.lock`: SQLite's dot-file locking, on file systems without POSIX locks, takes that
//! name, and a file of ours there would read to it as a database locked for good.)

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use rusqlite::params;
use tcrelay_core::ports::StoreError;

use crate::db::SqliteStore;

/// The shared hold of the relay lock of one database: kept for as long as the process relays
/// (dropping it, or the process ending, lets it go).
#[derive(Debug)]
pub struct RelayLock {
    /// `None` when the file could not be locked (a file system without locks): the process
    /// relays all the same, and releases nothing at its start.
    _file: Option<File>,
}

/// What taking the relay lock found.
#[derive(Debug)]
pub struct RelayStart {
    /// The lock, held shared.
    pub lock: RelayLock,
    /// How many claims in progress this process released, alone on the database at its
    /// start; `None` when another relaying process held the lock (nothing was released).
    pub released: Option<u64>,
}

impl SqliteStore {
    /// The file locked by the processes that relay through this database: beside the file its
    /// path leads to, a symbolic link followed (as SQLite does for its WAL), so processes that
    /// name one database by different paths lock one file.
    pub fn relay_lock_path(&self) -> PathBuf {
        // A process started on a link would otherwise lock a file of its own, find itself
        // alone, and release the claims a process on the target is relaying.
        let file = std::fs::canonicalize(self.path()).unwrap_or_else(|_| self.path().to_owned());
        let mut path = file.into_os_string();
        path.push("-relay.lock");
        PathBuf::from(path)
    }

    /// Takes the relay lock for a process that relays through this database. When no other
    /// relaying process holds it, first releases every dedupe claim in progress (their
    /// processes ended before completing them). Call it before relaying anything.
    ///
    /// A lock file that cannot be opened or locked is no reason not to relay: the process goes
    /// on without the lock (WARN), and claims left in progress expire as before.
    pub async fn start_relaying(&self) -> Result<RelayStart, StoreError> {
        let path = self.relay_lock_path();
        let file = match OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|e| match e.kind() {
                // Made by another user (root's `quarantine replay` before the service's first
                // `serve`): a lock needs the file open, not writable. Without it this process
                // would relay unseen, and the next one started would release its live claims.
                std::io::ErrorKind::PermissionDenied => File::open(&path),
                _ => Err(e),
            }) {
            Ok(file) => file,
            Err(e) => return Ok(unlocked(&path, &e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                // Another process relays: its claims may be live. Shared, beside it.
                return match lock_shared(file).await {
                    Ok(lock) => Ok(RelayStart {
                        lock,
                        released: None,
                    }),
                    Err(e) => Ok(unlocked(&path, &e)),
                };
            }
            Err(TryLockError::Error(e)) => return Ok(unlocked(&path, &e)),
        }
        // Alone: no claim in progress can be completed by anyone.
        let released = self.release_claims_in_progress().await?;
        // Shared from now on, so other relaying processes may start beside this one. Between the
        // two, another starting process may take it alone: it finds no claim of ours (we made
        // none yet) and this process waits for it.
        let _ = file.unlock();
        match lock_shared(file).await {
            Ok(lock) => Ok(RelayStart {
                lock,
                released: Some(released),
            }),
            Err(e) => Ok(RelayStart {
                released: Some(released),
                ..unlocked(&path, &e)
            }),
        }
    }

    /// Releases every dedupe claim in progress (a completed record stays); how many.
    async fn release_claims_in_progress(&self) -> Result<u64, StoreError> {
        self.run("dedupe release of claims left in progress", |ctx| {
            let n = ctx.conn.execute(
                "DELETE FROM dedupe WHERE state = ?1",
                params![crate::dedupe::IN_PROGRESS],
            )?;
            Ok(n as u64)
        })
        .await
    }
}

/// Waits for the shared lock (a process that starts alone holds it only while it releases).
async fn lock_shared(file: File) -> std::io::Result<RelayLock> {
    tokio::task::spawn_blocking(move || {
        file.lock_shared()?;
        Ok(RelayLock { _file: Some(file) })
    })
    .await
    .map_err(std::io::Error::other)?
}

fn unlocked(path: &std::path::Path, error: &std::io::Error) -> RelayStart {
    tracing::warn!(
        lock = %path.display(),
        error = %error,
        "cannot lock the relay lock file; relaying without it (claims a killed process left in \
         progress wait for their expiry)"
    );
    RelayStart {
        lock: RelayLock { _file: None },
        released: None,
    }
}
