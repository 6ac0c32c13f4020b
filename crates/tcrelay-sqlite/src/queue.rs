//! The outbound queue: the local runner's stand-in for SQS, as an [`EventSink`], and the operator
//! API behind `tcrelay queue list|export|ack|stats`.
//!
//! The row id (AUTOINCREMENT) is the queue order: one batch is inserted in its given order in one
//! transaction, and later batches get higher ids, across restarts too. A consumer reads pending
//! rows in id order and acknowledges them (`acked_at`); acknowledged rows stay for the record
//! until the retention has passed (see [`SqliteStore::housekeep`]).
//!
//! Like a FIFO queue, it drops a message whose dedupe key was enqueued within the last
//! [`DEDUPLICATION_WINDOW`], so the local runner shows what an ERP on SQS would receive.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};
use serde::Serialize;
use tcrelay_core::Envelope;
use tcrelay_core::ports::{EventSink, SinkError, StoreError};

use crate::clock::{from_text, millis, to_text};
use crate::db::SqliteStore;
use crate::error::DbError;

/// One queued message as `queue list` shows it: the envelope's routing fields, without payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntry {
    /// The queue position (ascending = enqueue order).
    pub id: i64,
    /// The envelope's `kind` (`order`, `single-delivery-order`, `order-documents`, `shipment`).
    pub kind: String,
    /// The envelope's `eventName` (`None` for GET and poll).
    pub event_name: Option<String>,
    /// The order or shipment id.
    pub object_id: String,
    /// The channel (`webhook-post`, `webhook-get`, `poll`).
    pub source: String,
    /// The dedupe key the message was admitted under.
    pub dedupe_key: String,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// When it was acknowledged; `None` while pending.
    pub acked_at: Option<DateTime<Utc>>,
}

/// One queued envelope as `queue export` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEnvelope {
    /// The queue position.
    pub id: i64,
    /// Whether it was acknowledged.
    pub acked: bool,
    /// The envelope, exactly the JSON document the ERP would have received from SQS (one line:
    /// compact JSON has no raw newlines).
    pub json: String,
}

impl QueuedEnvelope {
    /// The envelope parsed; `Corrupt` when the stored document is not a valid envelope.
    pub fn envelope(&self) -> Result<Envelope, StoreError> {
        serde_json::from_str(&self.json).map_err(|e| {
            StoreError::Corrupt(format!(
                "queued envelope {} is not an envelope: {e}",
                self.id
            ))
        })
    }
}

/// Pending and acknowledged counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Not yet acknowledged.
    pub pending: u64,
    /// Acknowledged.
    pub acked: u64,
}

/// What [`SqliteStore::ack_ids`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AckedIds {
    /// How many were pending and are acknowledged now (already acknowledged ones keep their
    /// time and are not counted).
    pub newly: u64,
    /// The ids not on the queue, in the order given.
    pub missing: Vec<i64>,
    /// The ids above the export mark ([`SqliteStore::exported_up_to`]), in the order given:
    /// no export handed them out, so they were not acknowledged (a consumer cannot have
    /// processed them; a typo would lose them).
    pub not_exported: Vec<i64>,
    /// The export mark the ids were checked against (`None`: nothing exported yet).
    pub exported_up_to: Option<i64>,
}

/// What [`SqliteStore::ack_up_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckedUpTo {
    /// How many were pending and are acknowledged now (already acknowledged ones keep their
    /// time and are not counted).
    Acked(u64),
    /// The id is above the highest id `queue export` has handed out ([`SqliteStore::exported_up_to`];
    /// `None` before the first export), so the consumer cannot have received it: mistyped, or
    /// read off `queue list`. Nothing was acknowledged, since up to it would take in messages
    /// no consumer received, which housekeeping then deletes.
    NotExported {
        /// The highest id exported so far.
        exported_up_to: Option<i64>,
    },
}

/// What `queue stats` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Messages not yet acknowledged.
    pub pending: u64,
    /// Messages acknowledged.
    pub acked: u64,
    /// The counts per envelope `kind`.
    pub by_kind: BTreeMap<String, KindCounts>,
    /// The id of the oldest pending message, the next a consumer reads.
    pub oldest_pending_id: Option<i64>,
    /// When the oldest pending message was enqueued (how far behind the consumer is).
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// The highest id ever given out in the table as it stands.
    pub last_id: Option<i64>,
    /// The highest id `queue export` has handed out, the highest `queue ack` accepts (`None`
    /// before the first export).
    pub exported_up_to: Option<i64>,
}

/// How long after a message is enqueued another with its dedupe key is dropped: SQS FIFO's
/// deduplication interval (fixed by SQS at five minutes), because on AWS the envelope's
/// `MessageDeduplicationId` is derived from its dedupe key. So the repeat of the relay's
/// at-least-once window (a process killed between the enqueue and the completion of its claim,
/// whose retry enqueues again) reaches the ERP once here as there, and a repeat after the window
/// is kept here as there.
pub const DEDUPLICATION_WINDOW: Duration = Duration::from_secs(5 * 60);

pub(crate) const ENTRY_COLUMNS: &str =
    "id, kind, event_name, object_id, source, dedupe_key, enqueued_at, acked_at";

fn time_column(row: &Row<'_>, index: usize, id: i64) -> Result<Option<DateTime<Utc>>, DbError> {
    match row.get::<_, Option<String>>(index)? {
        None => Ok(None),
        Some(text) => from_text(&text).map(Some).ok_or_else(|| {
            DbError::Corrupt(format!(
                "queue row {id}: timestamp {text:?} is not RFC 3339"
            ))
        }),
    }
}

pub(crate) fn entry(row: &Row<'_>) -> Result<QueueEntry, DbError> {
    let id: i64 = row.get(0)?;
    Ok(QueueEntry {
        id,
        kind: row.get(1)?,
        event_name: row.get(2)?,
        object_id: row.get(3)?,
        source: row.get(4)?,
        dedupe_key: row.get(5)?,
        enqueued_at: time_column(row, 6, id)?
            .ok_or_else(|| DbError::Corrupt(format!("queue row {id}: no enqueued_at")))?,
        acked_at: time_column(row, 7, id)?,
    })
}

fn queued(row: &Row<'_>) -> Result<QueuedEnvelope, DbError> {
    let id: i64 = row.get(0)?;
    let json: String = row.get(1)?;
    // Checked here so that an export never writes a line a consumer cannot parse.
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&json) {
        return Err(DbError::Corrupt(format!(
            "queue row {id}: envelope is not JSON: {e}"
        )));
    }
    Ok(QueuedEnvelope {
        id,
        acked: row.get::<_, Option<String>>(2)?.is_some(),
        json,
    })
}

/// A COUNT or SUM column (never negative; SQLite has no unsigned type).
pub(crate) fn count(row: &Row<'_>, index: usize) -> Result<u64, DbError> {
    let n: i64 = row.get(index)?;
    u64::try_from(n).map_err(|_| DbError::Corrupt(format!("negative count {n}")))
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl SqliteStore {
    /// Enqueues `envelopes` in one transaction, in order, and returns their queue ids. All or
    /// nothing: on `Err` none of them is in the queue. Durable once it returns `Ok` (see
    /// [`Durability`](crate::Durability)).
    ///
    /// An envelope whose dedupe key was enqueued (acknowledged since or not) within the last
    /// [`DEDUPLICATION_WINDOW`], earlier in the same batch included, is not inserted: its id is
    /// that earlier message's, and it counts as enqueued, as SQS FIFO answers success for the
    /// repeat it drops.
    pub async fn enqueue_returning_ids(
        &self,
        envelopes: &[Envelope],
    ) -> Result<Vec<i64>, StoreError> {
        // Serialised before taking the connection: the lock is held only for the inserts.
        let rows = envelopes
            .iter()
            .map(|e| {
                let json = e.to_json().map_err(|err| {
                    StoreError::Unavailable(format!("envelope {} does not serialise: {err}", e.id))
                })?;
                Ok((
                    json,
                    e.kind.as_str(),
                    e.event_name.clone(),
                    e.id.clone(),
                    e.source.as_str(),
                    e.dedupe_key.clone(),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let count = rows.len();
        let ids = self
            // Batched: all rows in one savepoint of one transaction, so all or none.
            .run_batched("enqueue", move |ctx| {
                let enqueued_at = to_text(ctx.now);
                let window_start =
                    ctx.now - chrono::TimeDelta::milliseconds(millis(DEDUPLICATION_WINDOW));
                let tx = &*ctx.conn;
                let mut ids = Vec::with_capacity(rows.len());
                {
                    let mut insert = tx.prepare_cached(
                        "INSERT INTO outbound \
                         (envelope, kind, event_name, object_id, source, dedupe_key, enqueued_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?;
                    // The newest message of the key is the one whose window counts: a later one
                    // is kept only after that window, as SQS does not restart it for a repeat.
                    // Rows inserted earlier in this transaction are seen too, so a key given
                    // twice in one batch is kept once.
                    let mut newest = tx.prepare_cached(
                        "SELECT id, enqueued_at FROM outbound \
                         WHERE dedupe_key = ?1 ORDER BY id DESC LIMIT 1",
                    )?;
                    for (json, kind, event_name, object_id, source, dedupe_key) in rows {
                        if let Some(row) = newest.query(params![dedupe_key])?.next()? {
                            let id: i64 = row.get(0)?;
                            // `enqueued_at` has a varying number of fraction digits, so it is
                            // compared as an instant, not as text. One that does not read (a
                            // hand edit) counts as outside the window: the message is kept, as
                            // without the window, rather than refused for good.
                            let at = time_column(row, 1, id).ok().flatten();
                            if at.is_some_and(|at| at > window_start) {
                                tracing::info!(
                                    dedupe_key = dedupe_key.as_str(),
                                    id,
                                    "repeat within the deduplication window dropped, as SQS FIFO does"
                                );
                                ids.push(id);
                                continue;
                            }
                        }
                        insert.execute(params![
                            json,
                            kind,
                            event_name,
                            object_id,
                            source,
                            dedupe_key,
                            enqueued_at
                        ])?;
                        ids.push(tx.last_insert_rowid());
                    }
                }
                Ok(ids)
            })
            .await?;
        tracing::debug!(count, first_id = ids.first(), "enqueued to the local queue");
        Ok(ids)
    }

    /// Up to `limit` messages in queue order: the pending ones, or all with `include_acked`.
    pub async fn list(
        &self,
        limit: usize,
        include_acked: bool,
    ) -> Result<Vec<QueueEntry>, StoreError> {
        self.run("queue list", move |ctx| {
            let sql = if include_acked {
                format!("SELECT {ENTRY_COLUMNS} FROM outbound ORDER BY id LIMIT ?1")
            } else {
                format!(
                    "SELECT {ENTRY_COLUMNS} FROM outbound WHERE acked_at IS NULL ORDER BY id LIMIT ?1"
                )
            };
            let mut stmt = ctx.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query([limit_param(limit)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(entry(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// Every envelope in queue order (pending ones, or all with `include_acked`), as JSON lines.
    /// For queues too large to hold in memory, page with [`export_page`](Self::export_page).
    pub async fn export(&self, include_acked: bool) -> Result<Vec<QueuedEnvelope>, StoreError> {
        self.export_page(0, usize::MAX, include_acked).await
    }

    /// Up to `limit` envelopes with ids above `after_id`, in queue order; pass the last id seen
    /// as the next `after_id`.
    pub async fn export_page(
        &self,
        after_id: i64,
        limit: usize,
        include_acked: bool,
    ) -> Result<Vec<QueuedEnvelope>, StoreError> {
        self.run("queue export", move |ctx| {
            let sql = if include_acked {
                "SELECT id, envelope, acked_at FROM outbound WHERE id > ?1 ORDER BY id LIMIT ?2"
            } else {
                "SELECT id, envelope, acked_at FROM outbound \
                 WHERE id > ?1 AND acked_at IS NULL ORDER BY id LIMIT ?2"
            };
            let mut stmt = ctx.conn.prepare_cached(sql)?;
            let mut rows = stmt.query(params![after_id, limit_param(limit)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(queued(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// Acknowledges every pending message with an id up to and including `up_to_id`; returns how
    /// many were newly acknowledged (already acknowledged ones keep their time), or, for an id
    /// above the export mark ([`exported_up_to`](Self::exported_up_to)), acknowledges nothing
    /// ([`AckedUpTo::NotExported`]).
    pub async fn ack_up_to(&self, up_to_id: i64) -> Result<AckedUpTo, StoreError> {
        let acked = self
            .run("queue ack", move |ctx| {
                let tx = ctx
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                // Read in the write transaction, so an export recording a higher mark meanwhile
                // is either seen whole or not at all.
                let exported_up_to = export_mark(&tx)?;
                if exported_up_to.is_none_or(|mark| up_to_id > mark) {
                    return Ok(AckedUpTo::NotExported { exported_up_to });
                }
                let n = tx.execute(
                    "UPDATE outbound SET acked_at = ?1 WHERE id <= ?2 AND acked_at IS NULL",
                    params![to_text(ctx.now), up_to_id],
                )?;
                tx.commit()?;
                Ok(AckedUpTo::Acked(n as u64))
            })
            .await?;
        tracing::info!(up_to_id, ?acked, "queue acknowledged");
        Ok(acked)
    }

    /// Acknowledges the pending messages among `ids` in one transaction; tells how many were
    /// newly acknowledged, which ids are not on the queue at all (mistyped, or acknowledged
    /// and since pruned) and which are above the export mark (no export handed them out: left
    /// pending), so the caller can say so instead of reporting success.
    pub async fn ack_ids(&self, ids: &[i64]) -> Result<AckedIds, StoreError> {
        let ids = ids.to_vec();
        let acked = self
            .run("queue ack", move |ctx| {
                let now = to_text(ctx.now);
                let tx = ctx
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?;
                let exported_up_to = export_mark(&tx)?;
                let mut acked = AckedIds {
                    exported_up_to,
                    ..AckedIds::default()
                };
                {
                    let mut ack = tx.prepare_cached(
                        "UPDATE outbound SET acked_at = ?1 WHERE id = ?2 AND acked_at IS NULL",
                    )?;
                    let mut known = tx.prepare_cached("SELECT 1 FROM outbound WHERE id = ?1")?;
                    for id in ids {
                        if exported_up_to.is_none_or(|mark| id > mark) {
                            acked.not_exported.push(id);
                            continue;
                        }
                        match ack.execute(params![now, id])? {
                            0 if !known.exists(params![id])? => acked.missing.push(id),
                            n => acked.newly += n as u64,
                        }
                    }
                }
                tx.commit()?;
                Ok(acked)
            })
            .await?;
        tracing::info!(
            acked = acked.newly,
            missing = acked.missing.len(),
            not_exported = acked.not_exported.len(),
            "queue acknowledged by id"
        );
        Ok(acked)
    }

    /// Records that an export has handed the messages up to `up_to_id` to a consumer, so `ack`
    /// accepts ids up to it. Call it only once those messages are written out (flushed): a mark
    /// recorded before an export cut short would let a consumer acknowledge messages it never
    /// received. The mark only rises: an export of an older range (`--up-to`) or a second
    /// consumer's does not take back what was handed out. One short write of its own, not in
    /// `serve`'s group commit, so it waits for `serve`'s batch like `ack` does.
    pub async fn record_exported(&self, up_to_id: i64) -> Result<(), StoreError> {
        self.run("queue export mark", move |ctx| {
            ctx.conn.execute(
                "INSERT INTO queue_export (singleton, up_to) VALUES (1, ?1) \
                 ON CONFLICT (singleton) DO UPDATE SET up_to = MAX(up_to, excluded.up_to)",
                params![up_to_id],
            )?;
            Ok(())
        })
        .await?;
        tracing::debug!(up_to_id, "queue export recorded");
        Ok(())
    }

    /// The highest id an export has handed out ([`record_exported`](Self::record_exported)),
    /// above which `ack` refuses; `None` before the first export.
    pub async fn exported_up_to(&self) -> Result<Option<i64>, StoreError> {
        self.run("queue export mark", |ctx| export_mark(ctx.conn))
            .await
    }

    /// Counts of pending and acknowledged messages, in total and per kind.
    pub async fn stats(&self) -> Result<QueueStats, StoreError> {
        self.run("queue stats", |ctx| {
            // One read transaction, so the counts and the oldest row are one consistent snapshot.
            let tx = ctx.conn.transaction()?;
            let mut stats = QueueStats::default();
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT kind, \
                            COALESCE(SUM(acked_at IS NULL), 0), \
                            COALESCE(SUM(acked_at IS NOT NULL), 0) \
                     FROM outbound GROUP BY kind",
                )?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let counts = KindCounts {
                        pending: count(row, 1)?,
                        acked: count(row, 2)?,
                    };
                    stats.pending += counts.pending;
                    stats.acked += counts.acked;
                    stats.by_kind.insert(row.get(0)?, counts);
                }
            }
            let oldest = tx
                .query_row(
                    "SELECT id, enqueued_at FROM outbound WHERE acked_at IS NULL ORDER BY id LIMIT 1",
                    [],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                )
                .optional()?;
            if let Some((id, at)) = oldest {
                stats.oldest_pending_id = Some(id);
                stats.oldest_pending_at = Some(from_text(&at).ok_or_else(|| {
                    DbError::Corrupt(format!("queue row {id}: timestamp {at:?} is not RFC 3339"))
                })?);
            }
            stats.last_id = tx.query_row("SELECT MAX(id) FROM outbound", [], |row| row.get(0))?;
            stats.exported_up_to = export_mark(&tx)?;
            tx.commit()?;
            Ok(stats)
        })
        .await
    }
}

/// The export mark as stored (`None`: no export recorded).
fn export_mark(conn: &rusqlite::Connection) -> Result<Option<i64>, DbError> {
    Ok(conn
        .query_row(
            "SELECT up_to FROM queue_export WHERE singleton = 1",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

#[async_trait]
impl EventSink for SqliteStore {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        // One transaction: on failure nothing of the batch is in the queue, so every index is
        // reported as not enqueued and the caller releases every claim.
        self.enqueue_returning_ids(envelopes)
            .await
            .map(drop)
            .map_err(|e| SinkError {
                failed: (0..envelopes.len()).collect(),
                reason: e.to_string(),
            })
    }
}
