//! `tcrelay trace OBJECT_ID`: everything the store holds about one order or shipment, to answer
//! "what happened to order X" — its dedupe records (which states and messages were admitted,
//! and whether they still are), its queue messages, and the quarantined requests that name it.

use chrono::{DateTime, TimeZone as _, Utc};
use serde::Serialize;
use tcrelay_core::ports::StoreError;
// The escape the core's dedupe keys are written with, so the lookup by id finds them.
use tradecloud_model::key_part;

use crate::db::SqliteStore;
use crate::quarantine::QuarantineEntry;
use crate::queue::{ENTRY_COLUMNS, QueueEntry};

/// One dedupe record, expired or not (the store deletes expired ones only at housekeeping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DedupeEntry {
    /// The key (`state/<class>/<id>/…` or `msg/<class>/<id>/…`).
    pub key: String,
    /// `completed` or `in-progress`.
    pub state: String,
    /// When the record stops suppressing duplicates.
    pub expires_at: DateTime<Utc>,
    /// Whether it still suppresses duplicates now.
    pub live: bool,
}

/// What [`SqliteStore::trace`] found, each part in the order it happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectTrace {
    /// Dedupe records of the object, by key.
    pub dedupe: Vec<DedupeEntry>,
    /// Queue messages of the object, acknowledged ones included, in queue order.
    pub queue: Vec<QueueEntry>,
    /// Quarantined requests whose path or body contains the id, in the order kept.
    pub quarantine: Vec<QuarantineEntry>,
}

impl SqliteStore {
    /// Dedupe records, queue messages and quarantine entries of the order or shipment
    /// `object_id`. Dedupe keys longer than the store's limit are kept as a hash and cannot be
    /// found by id.
    pub async fn trace(&self, object_id: &str) -> Result<ObjectTrace, StoreError> {
        let id = object_id.to_owned();
        self.run("trace", move |ctx| {
            let mut trace = ObjectTrace::default();
            let part = key_part(&id);
            let mut dedupe = ctx.conn.prepare_cached(
                "SELECT key, state, expires_at, in_progress_expires_at FROM dedupe \
                 WHERE key >= ?1 AND key < ?2 ORDER BY key",
            )?;
            for scope in ["msg", "state"] {
                for class in ["order", "order-documents", "shipment"] {
                    // Every key under `<scope>/<class>/<id>/`: '0' sorts right after '/'.
                    let prefix = format!("{scope}/{class}/{part}/");
                    let end = format!("{scope}/{class}/{part}0");
                    let mut rows = dedupe.query([&prefix, &end])?;
                    while let Some(row) = rows.next()? {
                        let state: String = row.get(1)?;
                        let expires_ms: i64 = row.get(2)?;
                        let in_progress_ms: Option<i64> = row.get(3)?;
                        let live = expires_ms >= ctx.now_ms
                            && !(state == "in-progress"
                                && in_progress_ms.is_some_and(|at| at < ctx.now_ms));
                        trace.dedupe.push(DedupeEntry {
                            key: row.get(0)?,
                            state,
                            expires_at: Utc
                                .timestamp_millis_opt(expires_ms)
                                .single()
                                .unwrap_or(DateTime::<Utc>::MAX_UTC),
                            live,
                        });
                    }
                }
            }
            let mut queue = ctx.conn.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM outbound WHERE object_id = ?1 ORDER BY id"
            ))?;
            let mut rows = queue.query([&id])?;
            while let Some(row) = rows.next()? {
                trace.queue.push(crate::queue::entry(row)?);
            }
            // The body is a BLOB: comparing with the id as bytes finds it whatever the body's
            // encoding claims.
            let mut quarantine = ctx.conn.prepare_cached(
                "SELECT id, kept_at, received_at, method, uri, content_type, headers, body, reason \
                 FROM quarantine WHERE instr(uri, ?1) > 0 OR instr(body, ?2) > 0 ORDER BY id",
            )?;
            let mut rows = quarantine.query(rusqlite::params![&id, id.as_bytes()])?;
            while let Some(row) = rows.next()? {
                trace.quarantine.push(crate::quarantine::entry(row)?);
            }
            Ok(trace)
        })
        .await
    }
}
