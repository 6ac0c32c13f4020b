//! Bounded storage: what `tcrelay serve` deletes on a schedule, and the space it gives back.
//!
//! Without it the file only grows (every acknowledged message and every expired dedupe record
//! stays). [`SqliteStore::housekeep`] deletes acknowledged messages older than
//! [`SqliteOptions::acked_retention`](crate::SqliteOptions::acked_retention) and dedupe records
//! whose expiry has passed (they already count as absent), then returns the freed pages to the
//! file system (incremental auto_vacuum) and truncates the WAL. Pending messages and dedupe
//! records still in force are never touched.

use std::path::Path;

use rusqlite::params;
use serde::Serialize;
use tcrelay_core::ports::StoreError;

use crate::clock::{millis, to_text};
use crate::db::SqliteStore;
use crate::queue::DEDUPLICATION_WINDOW;

/// What one [`SqliteStore::housekeep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HousekeepingReport {
    /// Acknowledged messages deleted (older than the retention).
    pub acked_deleted: u64,
    /// Expired dedupe records deleted.
    pub dedupe_deleted: u64,
}

/// The database's size on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileSizes {
    /// The database file.
    pub db_bytes: u64,
    /// Its write-ahead log (`-wal`), 0 when absent.
    pub wal_bytes: u64,
}

impl FileSizes {
    /// Both files together.
    pub fn total(&self) -> u64 {
        self.db_bytes + self.wal_bytes
    }
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl SqliteStore {
    /// Deletes acknowledged messages acknowledged longer ago than the retention; returns how
    /// many. Pending messages are never deleted, nor one enqueued within the last
    /// [`DEDUPLICATION_WINDOW`], whatever the retention: the queue drops a repeat of it by that
    /// row (a retention of 0 would otherwise let the retry of a process killed before its
    /// claim's completion, right after `serve`'s first housekeeping, reach the ERP twice).
    pub async fn purge_acked(&self) -> Result<u64, StoreError> {
        let deleted = self
            .run("queue purge", |ctx| {
                let cutoff =
                    ctx.now - chrono::TimeDelta::milliseconds(millis(ctx.options.acked_retention));
                let window_start =
                    ctx.now - chrono::TimeDelta::milliseconds(millis(DEDUPLICATION_WINDOW));
                // `acked_at` and `enqueued_at` are RFC 3339 text with a varying number of
                // fraction digits, so they are compared as times (julianday), not as strings.
                let n = ctx.conn.execute(
                    "DELETE FROM outbound \
                     WHERE acked_at IS NOT NULL AND julianday(acked_at) < julianday(?1) \
                       AND julianday(enqueued_at) <= julianday(?2)",
                    params![to_text(cutoff), to_text(window_start)],
                )?;
                Ok(n as u64)
            })
            .await?;
        tracing::debug!(
            deleted,
            "acknowledged messages past their retention deleted"
        );
        Ok(deleted)
    }

    /// Deletes what is no longer needed (acknowledged messages past the retention, expired
    /// dedupe records) and gives the space back: the freed pages to the file system, the WAL
    /// truncated. A file created before auto_vacuum was on is converted once (a full `VACUUM`).
    pub async fn housekeep(&self) -> Result<HousekeepingReport, StoreError> {
        let report = HousekeepingReport {
            acked_deleted: self.purge_acked().await?,
            dedupe_deleted: self.purge_expired_dedupe().await?,
        };
        self.run("reclaim space", |ctx| {
            let mode: i64 = ctx
                .conn
                .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))?;
            // 2 = INCREMENTAL. Anything else is a file from before: switching needs a VACUUM.
            if mode != 2 {
                tracing::info!("converting the database to incremental auto_vacuum (once)");
                ctx.conn
                    .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
            } else {
                ctx.conn.execute_batch("PRAGMA incremental_vacuum;")?;
            }
            // Readers of other processes may keep it from truncating; the next run catches up.
            ctx.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        tracing::debug!(?report, "housekeeping done");
        Ok(report)
    }

    /// The database's size on disk, with its WAL.
    pub fn file_sizes(&self) -> FileSizes {
        let mut wal = self.path().as_os_str().to_owned();
        wal.push("-wal");
        FileSizes {
            db_bytes: size_of(self.path()),
            wal_bytes: size_of(Path::new(&wal)),
        }
    }
}
