//! Poll cursors with leases, with the semantics of the DynamoDB store:
//!
//! - `acquire` takes the lease when there is none, it is already the caller's (a renewal), or it
//!   expired (`lease_expires_at` before now); it creates the row at version 0 the first time;
//!   `None` while another owner holds a live lease.
//! - `checkpoint` writes only if the version is still the one read *and* the caller is the lease
//!   owner, bumping the version; `Conflict` otherwise (also when the row does not exist). Like
//!   DynamoDB's condition, it does not look at the lease's expiry: a run whose lease ran out but
//!   was not taken over may still checkpoint (the version guards against lost updates); once
//!   another run takes the lease over, the owner differs and the old run gets `Conflict`.
//! - `renew` extends the lease only for its recorded owner (expired or not); `Conflict` when the
//!   lease was released or taken over.
//! - `release` clears the lease if the caller holds it, and is a no-op otherwise.
//! - `set` (operators) writes the value unconditionally, clears the window start and the walk
//!   and bumps the version (a new row starts at 1), leaving the lease alone, so a running
//!   poller's next checkpoint fails with `Conflict` instead of overwriting the operator's value.
//!
//! Row: `stream`, `value` (the `lastUpdatedAt` Tradecloud returned, verbatim; NULL before the
//! first checkpoint), `version`, `lease_owner`, `lease_expires_at` (epoch ms), `window_start`
//! (the poll window's start while runs have not caught up; NULL otherwise), `walk` (where a
//! walk by offset stood when the last run stopped in it, the poll run's text verbatim; NULL
//! otherwise).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use tcrelay_core::ports::{Cursor, CursorStore, StoreError};

use crate::clock::millis;
use crate::db::SqliteStore;
use crate::error::DbError;

/// A stream's cursor with its lease, as `cursor show` displays it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorInfo {
    /// The stream (`orders`, `single-delivery-orders`, `shipments`).
    pub stream: String,
    /// The last `lastUpdatedAt` checkpointed; `None` before the first.
    pub value: Option<String>,
    /// The version (bumped by every checkpoint and set).
    pub version: u64,
    /// Where the poll window began, while the runs since the last caught-up one have not
    /// caught up ([`Cursor::window_start`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<String>,
    /// Where a walk by offset stood when the last run stopped in it ([`Cursor::walk`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub walk: Option<String>,
    /// The run holding the lease, if any (it may have expired: see `lease_expires_at`).
    pub lease_owner: Option<String>,
    /// When the lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

impl CursorInfo {
    /// The cursor as the port returns it.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            value: self.value.clone(),
            version: self.version,
            window_start: self.window_start.clone(),
            walk: self.walk.clone(),
        }
    }
}

fn version(stream: &str, raw: i64) -> Result<u64, DbError> {
    u64::try_from(raw)
        .map_err(|_| DbError::Corrupt(format!("cursor {stream:?} has negative version {raw}")))
}

fn read_info(conn: &Connection, stream: &str) -> Result<Option<CursorInfo>, DbError> {
    let raw = conn
        .prepare_cached(
            "SELECT value, version, lease_owner, lease_expires_at, window_start, walk \
             FROM cursor WHERE stream = ?1",
        )?
        .query_row([stream], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, Option<i64>>(3)?,
                row.get::<_, Option<String>>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    raw.map(|(value, v, lease_owner, lease_ms, window_start, walk)| {
        Ok(CursorInfo {
            stream: stream.to_owned(),
            value,
            version: version(stream, v)?,
            lease_owner,
            lease_expires_at: lease_ms.and_then(DateTime::<Utc>::from_timestamp_millis),
            window_start,
            walk,
        })
    })
    .transpose()
}

impl SqliteStore {
    /// Every stream's cursor with its lease, by stream name (`cursor show` without a stream).
    pub async fn cursors(&self) -> Result<Vec<CursorInfo>, StoreError> {
        self.run("cursor list", |ctx| {
            let streams = ctx
                .conn
                .prepare_cached("SELECT stream FROM cursor ORDER BY stream")?
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = Vec::with_capacity(streams.len());
            for stream in streams {
                if let Some(info) = read_info(ctx.conn, &stream)? {
                    out.push(info);
                }
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl CursorStore for SqliteStore {
    async fn acquire(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Option<Cursor>, StoreError> {
        let (stream, owner) = (stream.to_owned(), owner.to_owned());
        let acquired = self
            .run("cursor acquire", {
                let (stream, owner) = (stream.clone(), owner.clone());
                move |ctx| {
                    let tx = ctx
                        .conn
                        .transaction_with_behavior(TransactionBehavior::Immediate)?;
                    if let Some(info) = read_info(&tx, &stream)? {
                        let held_by_other = info
                            .lease_owner
                            .as_deref()
                            .is_some_and(|holder| holder != owner);
                        let live = info
                            .lease_expires_at
                            .is_some_and(|until| until.timestamp_millis() >= ctx.now_ms);
                        // A lease without an expiry (hand-edited) counts as live, as in DynamoDB
                        // where a missing `leaseExpiresAt` never compares as expired.
                        let live = live || info.lease_expires_at.is_none();
                        if held_by_other && live {
                            return Ok(None);
                        }
                    }
                    let until = ctx.now_ms.saturating_add(millis(lease_for));
                    tx.prepare_cached(
                        "INSERT INTO cursor (stream, value, version, lease_owner, lease_expires_at) \
                         VALUES (?1, NULL, 0, ?2, ?3) \
                         ON CONFLICT (stream) DO UPDATE SET lease_owner = excluded.lease_owner, \
                            lease_expires_at = excluded.lease_expires_at",
                    )?
                    .execute(params![stream, owner, until])?;
                    let info = read_info(&tx, &stream)?.ok_or_else(|| {
                        DbError::Corrupt(format!("cursor {stream:?} vanished inside its write"))
                    })?;
                    tx.commit()?;
                    Ok(Some(info.cursor()))
                }
            })
            .await?;
        match &acquired {
            Some(cursor) => {
                tracing::debug!(%stream, %owner, version = cursor.version, "cursor lease acquired")
            }
            None => tracing::info!(%stream, %owner, "cursor lease held by another run"),
        }
        Ok(acquired)
    }

    async fn checkpoint(
        &self,
        stream: &str,
        owner: &str,
        expected_version: u64,
        value: &str,
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> Result<Cursor, StoreError> {
        let (stream, owner, value) = (stream.to_owned(), owner.to_owned(), value.to_owned());
        let (window_start, walk) = (window_start.map(str::to_owned), walk.map(str::to_owned));
        let expected = i64::try_from(expected_version).unwrap_or(i64::MAX);
        self.run("cursor checkpoint", move |ctx| {
            // Conditional on the version read and on still being the lease owner: a run whose
            // lease was taken over must not move the cursor under the new owner.
            let written = ctx
                .conn
                .prepare_cached(
                    "UPDATE cursor SET value = ?1, version = version + 1, window_start = ?5, \
                        walk = ?6 \
                     WHERE stream = ?2 AND version = ?3 AND lease_owner = ?4 \
                     RETURNING value, version, window_start, walk",
                )?
                .query_row(
                    params![value, stream, expected, owner, window_start, walk],
                    |row| {
                        Ok((
                            row.get::<_, Option<String>>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, Option<String>>(3)?,
                        ))
                    },
                )
                .optional()?;
            match written {
                Some((value, v, window_start, walk)) => Ok(Ok(Cursor {
                    value,
                    version: version(&stream, v)?,
                    window_start,
                    walk,
                })),
                None => Ok(Err(StoreError::Conflict(format!(
                    "cursor {stream}: version is no longer {expected_version} or {owner} lost the lease"
                )))),
            }
        })
        .await?
    }

    async fn renew(
        &self,
        stream: &str,
        owner: &str,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        let (stream, owner) = (stream.to_owned(), owner.to_owned());
        self.run("cursor renew", move |ctx| {
            let until = ctx.now_ms.saturating_add(millis(lease_for));
            let n = ctx
                .conn
                .prepare_cached(
                    "UPDATE cursor SET lease_expires_at = ?1 \
                     WHERE stream = ?2 AND lease_owner = ?3",
                )?
                .execute(params![until, stream, owner])?;
            Ok(if n == 0 {
                Err(StoreError::Conflict(format!(
                    "cursor {stream}: {owner} no longer holds the lease"
                )))
            } else {
                Ok(())
            })
        })
        .await?
    }

    async fn release(&self, stream: &str, owner: &str) -> Result<(), StoreError> {
        let (stream, owner) = (stream.to_owned(), owner.to_owned());
        self.run("cursor release", move |ctx| {
            let n = ctx
                .conn
                .prepare_cached(
                    "UPDATE cursor SET lease_owner = NULL, lease_expires_at = NULL \
                     WHERE stream = ?1 AND lease_owner = ?2",
                )?
                .execute(params![stream, owner])?;
            if n == 0 {
                // Not ours (expired and taken over, or never held): nothing to give up.
                tracing::debug!(%stream, %owner, "cursor release: lease not held");
            }
            Ok(())
        })
        .await
    }

    async fn read(&self, stream: &str) -> Result<Option<Cursor>, StoreError> {
        let stream = stream.to_owned();
        self.run("cursor read", move |ctx| {
            Ok(read_info(ctx.conn, &stream)?.map(|info| info.cursor()))
        })
        .await
    }

    async fn set(&self, stream: &str, value: &str) -> Result<Cursor, StoreError> {
        let (stream, value) = (stream.to_owned(), value.to_owned());
        let cursor = self
            .run("cursor set", {
                let stream = stream.clone();
                move |ctx| {
                    let (value, v) = ctx
                        .conn
                        .prepare_cached(
                            "INSERT INTO cursor (stream, value, version) VALUES (?1, ?2, 1) \
                             ON CONFLICT (stream) DO UPDATE SET value = excluded.value, \
                                version = version + 1, window_start = NULL, walk = NULL \
                             RETURNING value, version",
                        )?
                        .query_row(params![stream, value], |row| {
                            Ok((row.get::<_, Option<String>>(0)?, row.get::<_, i64>(1)?))
                        })?;
                    Ok(Cursor {
                        value,
                        version: version(&stream, v)?,
                        window_start: None,
                        walk: None,
                    })
                }
            })
            .await?;
        tracing::info!(%stream, version = cursor.version, "cursor set by operator");
        Ok(cursor)
    }
}
