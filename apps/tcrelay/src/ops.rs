//! The operator commands (`queue`, `quarantine`, `cursor`), writing their output to any
//! `Write` so the tests read it without a process.

use std::io::Write;

use tcrelay_core::logsafe::escape_control;
use tcrelay_core::ports::{CursorStore, StoreError};
use tcrelay_poll::PollStream;
use tcrelay_sqlite::SqliteStore;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// An argument is not usable.
    #[error("{0}")]
    Invalid(String),
}

/// `queue list`: one line per message, without payload.
pub async fn queue_list(
    store: &SqliteStore,
    limit: usize,
    include_acked: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let entries = store.list(limit, include_acked).await?;
    writeln!(
        out,
        "{:>8}  {:<21}  {:<12}  {:<38}  {:<34}  enqueued / acked",
        "id", "kind", "source", "object", "event"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:>8}  {:<21}  {:<12}  {:<38}  {:<34}  {}{}",
            e.id,
            e.kind,
            e.source,
            e.object_id,
            e.event_name.as_deref().unwrap_or("-"),
            e.enqueued_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            e.acked_at
                .map(|a| format!(" / acked {}", a.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
                .unwrap_or_default()
        )?;
    }
    Ok(())
}

/// `queue export`: every envelope as one JSON line, in queue order; paged so a large queue is
/// never held in memory at once.
pub async fn queue_export(
    store: &SqliteStore,
    include_acked: bool,
    out: &mut dyn Write,
) -> Result<u64, OpsError> {
    let mut after = 0i64;
    let mut written = 0u64;
    loop {
        let page = store.export_page(after, 500, include_acked).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        for q in &page {
            writeln!(out, "{}", q.json)?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

/// `queue ack`: acknowledges up to an id, or the listed ids; returns how many.
pub async fn queue_ack(
    store: &SqliteStore,
    up_to: Option<i64>,
    ids: &[i64],
    out: &mut dyn Write,
) -> Result<u64, OpsError> {
    let acked = match (up_to, ids.is_empty()) {
        (Some(id), true) => store.ack_up_to(id).await?,
        (None, false) => store.ack_ids(ids).await?,
        _ => {
            return Err(OpsError::Invalid(
                "give either --up-to <ID> or one or more ids".into(),
            ));
        }
    };
    writeln!(out, "acknowledged {acked} message(s)")?;
    Ok(acked)
}

/// `queue stats`: counts in total and per kind (JSON with `json`).
pub async fn queue_stats(
    store: &SqliteStore,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let stats = store.stats().await?;
    let sizes = store.file_sizes();
    if json {
        // The stats and the file sizes in one document.
        let mut value =
            serde_json::to_value(&stats).map_err(|e| OpsError::Invalid(e.to_string()))?;
        value["fileBytes"] = sizes.db_bytes.into();
        value["walBytes"] = sizes.wal_bytes.into();
        writeln!(out, "{value}")?;
        return Ok(());
    }
    writeln!(out, "pending: {}", stats.pending)?;
    writeln!(out, "acked:   {}", stats.acked)?;
    for (kind, c) in &stats.by_kind {
        writeln!(
            out,
            "  {kind:<22} pending {:>7}  acked {:>7}",
            c.pending, c.acked
        )?;
    }
    if let (Some(id), Some(at)) = (stats.oldest_pending_id, stats.oldest_pending_at) {
        writeln!(
            out,
            "oldest pending: id {id}, enqueued {}",
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ")
        )?;
    }
    writeln!(
        out,
        "file:    {} bytes (database {}, WAL {})",
        sizes.total(),
        sizes.db_bytes,
        sizes.wal_bytes
    )?;
    Ok(())
}

/// `serve` on SQLite: [`SqliteStore::housekeep`] at start and then every `interval`, so the
/// file stays bounded (acknowledged messages past the retention and expired dedupe records
/// deleted, space given back). A failure is logged and tried again next time: housekeeping
/// never stops the relay.
pub async fn housekeeping_loop(store: SqliteStore, interval: std::time::Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.housekeep().await {
            Ok(report) => tracing::info!(
                acked_deleted = report.acked_deleted,
                dedupe_deleted = report.dedupe_deleted,
                file_bytes = store.file_sizes().total(),
                "housekeeping"
            ),
            Err(error) => tracing::warn!(%error, "housekeeping failed; trying again later"),
        }
    }
}

/// `quarantine list`: one line per kept request. What the request said (its reason quotes the
/// body) is escaped, so a newline or an ESC sequence in it cannot forge a line or drive the
/// operator's terminal.
pub async fn quarantine_list(store: &SqliteStore, out: &mut dyn Write) -> Result<(), OpsError> {
    let entries = store.quarantine_list(0, usize::MAX).await?;
    writeln!(
        out,
        "{:>6}  {:<24}  {:<6}  {:<32}  reason",
        "id", "kept at", "method", "uri"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:>6}  {:<24}  {:<6}  {:<32}  {}",
            e.id,
            e.kept_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            escape_control(&e.request.method),
            escape_control(&e.request.uri),
            escape_control(&e.request.reason)
        )?;
    }
    Ok(())
}

/// `quarantine export`: every kept request as one JSON line (body in base64).
pub async fn quarantine_export(store: &SqliteStore, out: &mut dyn Write) -> Result<(), OpsError> {
    for line in store.quarantine_export().await? {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// Checks a stream name against the poll streams.
pub fn parse_stream(name: &str) -> Result<PollStream, OpsError> {
    PollStream::parse(name).ok_or_else(|| {
        OpsError::Invalid(format!(
            "unknown stream {name:?}; streams are {}",
            PollStream::ALL.map(PollStream::as_str).join(", ")
        ))
    })
}

/// `cursor show <stream>` (or every stream): value and version.
pub async fn cursor_show(
    cursors: &dyn CursorStore,
    stream: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let streams: Vec<PollStream> = match stream {
        Some(name) => vec![parse_stream(name)?],
        None => PollStream::ALL.to_vec(),
    };
    for stream in streams {
        match cursors.read(stream.as_str()).await? {
            Some(c) => writeln!(
                out,
                "{:<24} {}  (version {})",
                stream.as_str(),
                c.value.as_deref().unwrap_or("-"),
                c.version
            )?,
            None => writeln!(out, "{:<24} -  (never polled)", stream.as_str())?,
        }
    }
    Ok(())
}

/// `cursor set <stream> <value>`: the next run starts after `value` (backfill or skip).
pub async fn cursor_set(
    cursors: &dyn CursorStore,
    stream: &str,
    value: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let stream = parse_stream(stream)?;
    tradecloud_model::timestamp::parse(value).map_err(|e| {
        OpsError::Invalid(format!(
            "{value:?} is not an ISO 8601 date-time with offset ({e}), e.g. 2025-01-01T00:00:00.000Z"
        ))
    })?;
    let cursor = cursors.set(stream.as_str(), value).await?;
    writeln!(
        out,
        "{:<24} {}  (version {})",
        stream.as_str(),
        cursor.value.as_deref().unwrap_or("-"),
        cursor.version
    )?;
    Ok(())
}
