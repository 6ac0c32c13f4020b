//! The quarantine: requests we authenticated but could not process, kept for an operator
//! (`tcrelay quarantine list|export`). The body is stored as a BLOB, byte for byte, so binary
//! garbage survives; the export writes it base64 inside the same JSON document the SQS quarantine
//! sends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use serde::Serialize;
use tcrelay_core::ports::{Quarantine, QuarantinedRequest, StoreError};

use crate::clock::{from_text, to_text};
use crate::db::SqliteStore;
use crate::error::DbError;
use crate::queue::count;

/// One kept request, with its place in the quarantine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuarantineEntry {
    /// Its position (ascending = the order kept).
    pub id: i64,
    /// When it was kept.
    pub kept_at: DateTime<Utc>,
    /// The request as the webhook gave it.
    #[serde(flatten)]
    pub request: QuarantinedRequest,
}

impl QuarantineEntry {
    /// The entry as one JSON line: the SQS quarantine's document (`QuarantinedRequest`, body in
    /// base64) plus `id` and `keptAt`.
    pub fn to_json_line(&self) -> Result<String, StoreError> {
        serde_json::to_string(self).map_err(|e| {
            StoreError::Corrupt(format!(
                "quarantined request {} does not serialise: {e}",
                self.id
            ))
        })
    }
}

fn time(text: &str, id: i64, column: &str) -> Result<DateTime<Utc>, DbError> {
    from_text(text).ok_or_else(|| {
        DbError::Corrupt(format!(
            "quarantine row {id}: {column} {text:?} is not RFC 3339"
        ))
    })
}

pub(crate) fn entry(row: &Row<'_>) -> Result<QuarantineEntry, DbError> {
    let id: i64 = row.get(0)?;
    let headers: String = row.get(6)?;
    let headers: Vec<(String, String)> = serde_json::from_str(&headers).map_err(|e| {
        DbError::Corrupt(format!(
            "quarantine row {id}: headers are not a list of pairs: {e}"
        ))
    })?;
    Ok(QuarantineEntry {
        id,
        kept_at: time(&row.get::<_, String>(1)?, id, "kept_at")?,
        request: QuarantinedRequest {
            received_at: time(&row.get::<_, String>(2)?, id, "received_at")?,
            method: row.get(3)?,
            uri: row.get(4)?,
            content_type: row.get(5)?,
            headers,
            body: row.get(7)?,
            reason: row.get(8)?,
        },
    })
}

impl SqliteStore {
    /// The kept requests in the order kept, after `after_id` (0 for the start), at most `limit`.
    pub async fn quarantine_list(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<QuarantineEntry>, StoreError> {
        self.run("quarantine list", move |ctx| {
            let mut stmt = ctx.conn.prepare_cached(
                "SELECT id, kept_at, received_at, method, uri, content_type, headers, body, reason \
                 FROM quarantine WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows =
                stmt.query(params![after_id, i64::try_from(limit).unwrap_or(i64::MAX)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(entry(row)?);
            }
            Ok(out)
        })
        .await
    }

    /// Every kept request as JSON lines (see [`QuarantineEntry::to_json_line`]), in order.
    pub async fn quarantine_export(&self) -> Result<Vec<String>, StoreError> {
        self.quarantine_list(0, usize::MAX)
            .await?
            .iter()
            .map(QuarantineEntry::to_json_line)
            .collect()
    }

    /// The kept request `id`, if it is still kept.
    pub async fn quarantine_get(&self, id: i64) -> Result<Option<QuarantineEntry>, StoreError> {
        Ok(self
            .quarantine_list(id - 1, 1)
            .await?
            .into_iter()
            .find(|e| e.id == id))
    }

    /// Deletes the kept request `id` (replayed, or given up on by an operator); returns
    /// whether it was there.
    pub async fn quarantine_drop(&self, id: i64) -> Result<bool, StoreError> {
        self.run("quarantine drop", move |ctx| {
            Ok(ctx
                .conn
                .prepare_cached("DELETE FROM quarantine WHERE id = ?1")?
                .execute([id])?
                > 0)
        })
        .await
    }

    /// How many requests are kept.
    pub async fn quarantine_count(&self) -> Result<u64, StoreError> {
        self.run("quarantine count", |ctx| {
            ctx.conn
                .query_row("SELECT COUNT(*) FROM quarantine", [], |row| {
                    Ok(count(row, 0))
                })?
        })
        .await
    }
}

#[async_trait]
impl Quarantine for SqliteStore {
    async fn keep(&self, request: &QuarantinedRequest) -> Result<(), StoreError> {
        let headers = serde_json::to_string(&request.headers).map_err(|e| {
            StoreError::Unavailable(format!("quarantined headers do not serialise: {e}"))
        })?;
        let request = request.clone();
        let reason = request.reason.clone();
        let bytes = request.body.len();
        self.run("quarantine keep", move |ctx| {
            ctx.conn
                .prepare_cached(
                    "INSERT INTO quarantine \
                     (kept_at, received_at, method, uri, content_type, headers, body, reason) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    to_text(ctx.now),
                    to_text(request.received_at),
                    request.method,
                    request.uri,
                    request.content_type,
                    headers,
                    request.body,
                    request.reason
                ])?;
            Ok(())
        })
        .await?;
        // The reason quotes the request (XML names, ids): escaped, it cannot forge a log line.
        let reason = tcrelay_core::logsafe::escape_control(&reason);
        tracing::info!(%reason, bytes, "request quarantined");
        Ok(())
    }
}
