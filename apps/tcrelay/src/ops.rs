//! The operator commands (`queue`, `quarantine`, `cursor`, `trace`), writing their output to
//! any `Write` so the tests read it without a process. Every listing has a `--json` form: one
//! JSON document per line, one line per item.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use tcrelay_core::logsafe::escape_control;
use tcrelay_core::ports::CursorStore;
use tcrelay_poll::{PollStream, kept_page_limit, kept_unsorted, progress_kind};
use tcrelay_sqlite::{AckedUpTo, ExistingFile, SCHEMA_VERSION, SqliteOptions, SqliteStore};

pub use crate::error::OpsError;
use crate::replay::{Replayed, Replayer};

/// What an operator command does with the SQLite database, which decides how it is opened
/// ([`open_database`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads (`queue list|stats`, `quarantine list|export`, `trace`,
    /// `cursor show`): opened read-only, so looking never changes the file; a file of another
    /// schema version is refused rather than migrated.
    Read,
    /// Writes (`queue export`, which records what it handed out, `queue ack`,
    /// `quarantine replay|drop`): the file must exist; it is migrated to
    /// this build's schema, as `serve` would.
    Write,
    /// Writes and may create the file (`serve`; `cursor set`, a backfill start before the
    /// first `serve`).
    WriteOrCreate,
}

/// The output of a command whose work and exit code matter beyond what it prints (`queue ack`,
/// `quarantine drop|replay`, `doctor`, `cursor set`, `dlq redrive`, `completions`): once its
/// reader has gone (`| head -1` has its line), the rest of the output is discarded instead of
/// ending the command. A closed pipe ending it would leave the other ids undone and turn a
/// failure (a missing id, a failed check, a request kept) into exit code 0, since a closed pipe
/// is no error of the command's. The listings need no such care: their only work is the output,
/// so they stop at a closed pipe.
#[derive(Debug)]
pub struct UntilReaderLeaves<W> {
    inner: W,
    gone: bool,
}

impl<W: Write> UntilReaderLeaves<W> {
    /// Writes to `inner` until its reader goes away.
    pub fn new(inner: W) -> Self {
        Self { inner, gone: false }
    }

    /// Runs one write or flush, taking a closed pipe as the reader gone for good.
    fn attempt<T>(
        &mut self,
        discarded: T,
        op: impl FnOnce(&mut W) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        if self.gone {
            return Ok(discarded);
        }
        match op(&mut self.inner) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                Ok(discarded)
            }
            other => other,
        }
    }
}

impl<W: Write> Write for UntilReaderLeaves<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.attempt(buf.len(), |inner| inner.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.attempt((), Write::flush)
    }
}

/// Opens the database of an operator command, refusing before anything is created or
/// written: a `--db` that is a directory or (unless [`Access::WriteOrCreate`]) does not
/// exist; a file that is not a tcrelay database (schema version 0: to read, always; to write,
/// when it holds other tables, another application's database); and to read, a schema older
/// or newer than this build's (a read must not migrate: an older `serve` still using the
/// file would then refuse to start). The file is opened once: the checks run on the
/// connection the store then uses ([`ExistingFile`]).
pub fn open_database(
    path: &Path,
    access: Access,
    options: SqliteOptions,
) -> Result<SqliteStore, OpsError> {
    let shown = path.display();
    if path.is_dir() {
        return Err(OpsError::Invalid(format!(
            "{shown} is a directory, not a database file: give the file's path with --db or \
             TCRELAY_DB"
        )));
    }
    if access == Access::WriteOrCreate && !path.exists() {
        // SQLite says only "unable to open database file": the folder is what to fix (the
        // docs' /var/lib/tcrelay/ is made by no package), and it is not ours to create.
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
            && !folder.exists()
        {
            return Err(OpsError::Invalid(format!(
                "cannot create the database {shown}: the folder {} does not exist; create it \
                 (mkdir -p) or give another path with --db or TCRELAY_DB",
                folder.display()
            )));
        }
        return Ok(SqliteStore::open_with(path, options)?);
    }
    let file = match access {
        Access::Read => ExistingFile::read_only(path, options)?,
        Access::Write | Access::WriteOrCreate => ExistingFile::read_write(path, options)?,
    };
    let version = file.schema_version()?;
    if version == 0 {
        let tables = file.tables()?;
        if access == Access::Read || !tables.is_empty() {
            let what = if tables.is_empty() {
                "it has no tables".to_owned()
            } else {
                format!(
                    "it holds other tables: {}",
                    escape_control(&tables.join(", "))
                )
            };
            return Err(OpsError::Invalid(format!(
                "{shown} is not a tcrelay database ({what}); nothing was changed: check --db or \
                 TCRELAY_DB"
            )));
        }
    }
    // An older schema: to write, the store migrates it as `serve` would; to read, refused.
    if access == Access::Read && version < SCHEMA_VERSION {
        return Err(OpsError::Invalid(format!(
            "{shown} has schema version {version}, older than this build's {SCHEMA_VERSION}: \
             run `tcrelay serve` of this build once to migrate it (this command only reads and \
             migrates nothing; `tcrelay doctor` checks the file as it is)"
        )));
    }
    // A newer schema is refused by the store (to read or to write), with the version found.
    Ok(file.into_store()?)
}

/// `queue list`: one line per message, without payload, at most `limit`; returns how many
/// messages the listing would have included beyond the limit (0: it showed them all), so the
/// caller can say so (a silent cut would pass for the whole queue).
pub async fn queue_list(
    store: &SqliteStore,
    limit: usize,
    include_acked: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<u64, OpsError> {
    // One more than asked tells whether anything was left out without counting every time.
    let mut entries = store.list(limit.saturating_add(1), include_acked).await?;
    let left_out = if entries.len() > limit {
        entries.truncate(limit);
        let stats = store.stats().await?;
        let total = stats.pending + if include_acked { stats.acked } else { 0 };
        // At least one: a consumer acknowledging in between must not turn it into "none".
        total.saturating_sub(limit as u64).max(1)
    } else {
        0
    };
    if json {
        json_lines(&entries, out)?;
        return Ok(left_out);
    }
    // Ids and event names come from request bodies: escaped, they cannot forge a row.
    let rows: Vec<[String; 4]> = entries
        .iter()
        .map(|e| {
            [
                e.kind.clone(),
                e.source.clone(),
                escape_control(&e.object_id).into_owned(),
                escape_control(e.event_name.as_deref().unwrap_or("-")).into_owned(),
            ]
        })
        .collect();
    // Each column as wide as its widest entry (the usual widths at least, so a listing of
    // short ids looks as it always did): a fixed width let a long object id (the demo's are
    // over 40 characters) push the columns after it out of line.
    let mut widths = [21, 12, 38, 34];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let [kind_w, source_w, object_w, event_w] = widths;
    writeln!(
        out,
        "{:>8}  {:<kind_w$}  {:<source_w$}  {:<object_w$}  {:<event_w$}  enqueued / acked",
        "id", "kind", "source", "object", "event"
    )?;
    for (e, [kind, source, object, event]) in entries.iter().zip(&rows) {
        writeln!(
            out,
            "{:>8}  {kind:<kind_w$}  {source:<source_w$}  {object:<object_w$}  {event:<event_w$}  {}{}",
            e.id,
            e.enqueued_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            e.acked_at
                .map(|a| format!(" / acked {}", a.format("%Y-%m-%dT%H:%M:%S%.3fZ")))
                .unwrap_or_default()
        )?;
    }
    Ok(left_out)
}

/// Each item as one JSON line.
fn json_lines<T: serde::Serialize>(items: &[T], out: &mut dyn Write) -> Result<(), OpsError> {
    for item in items {
        let line = serde_json::to_string(item).map_err(|e| OpsError::Invalid(e.to_string()))?;
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// What `queue export` wrote: how many envelopes, and the queue id of the last one (the id a
/// consumer acknowledges up to once it has processed them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// Envelopes written.
    pub count: u64,
    /// The id of the last one written; `None` when none was.
    pub last_id: Option<i64>,
}

/// `queue export`: every envelope (up to id `up_to`, when given) as one JSON line, in queue
/// order; paged so a large queue is never held in memory at once. After each page is written
/// and flushed, the database records its last id as handed out, the most `queue ack` then
/// accepts: an output cut part-way (the error returned) records nothing it did not write.
pub async fn queue_export(
    store: &SqliteStore,
    include_acked: bool,
    up_to: Option<i64>,
    out: &mut dyn Write,
) -> Result<Exported, OpsError> {
    let mut after = 0i64;
    let mut exported = Exported {
        count: 0,
        last_id: None,
    };
    loop {
        let page = store.export_page(after, 500, include_acked).await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id;
        let mut written = None;
        let mut beyond = false;
        for q in &page {
            if up_to.is_some_and(|up_to| q.id > up_to) {
                beyond = true;
                break;
            }
            writeln!(out, "{}", q.json)?;
            exported.count += 1;
            written = Some(q.id);
        }
        // Only once the lines are out of our hands: a mark above an unwritten line would let
        // `ack` take in a message the consumer never received.
        out.flush()?;
        if let Some(id) = written {
            store.record_exported(id).await?;
            exported.last_id = Some(id);
        }
        if beyond {
            break;
        }
    }
    Ok(exported)
}

/// `queue ack`: acknowledges up to an id, or the listed ids; returns how many. Listed ids that
/// are not on the queue are an error after the others are acknowledged: a mistyped id would
/// otherwise leave its message pending while the consumer believes it done.
pub async fn queue_ack(
    store: &SqliteStore,
    up_to: Option<i64>,
    ids: &[i64],
    out: &mut dyn Write,
) -> Result<u64, OpsError> {
    let (acked, refused) = match (up_to, ids.is_empty()) {
        (Some(id), true) => match store.ack_up_to(id).await? {
            AckedUpTo::Acked(acked) => (acked, Vec::new()),
            // A typo, or an id off `queue list`: up to it would take in messages no export
            // handed out, which the ERP then never receives.
            AckedUpTo::NotExported { exported_up_to } => {
                return Err(OpsError::Invalid(format!(
                    "no export has handed out id {id} ({}), so nothing was acknowledged: \
                     acknowledge up to the id `queue export` printed, or run `queue export` \
                     to hand out the messages up to {id} first",
                    exported_mark(exported_up_to)
                )));
            }
        },
        (None, false) => {
            let acked = store.ack_ids(ids).await?;
            let mut refused = Vec::new();
            if !acked.missing.is_empty() {
                refused.push(format!(
                    "not on the queue, so not acknowledged: {} (see `queue list --all`)",
                    joined(&acked.missing)
                ));
            }
            if !acked.not_exported.is_empty() {
                refused.push(format!(
                    "not handed out by any export ({}), so not acknowledged: {} (run `queue \
                     export` first)",
                    exported_mark(acked.exported_up_to),
                    joined(&acked.not_exported)
                ));
            }
            (acked.newly, refused)
        }
        _ => {
            return Err(OpsError::Invalid(
                "give either --up-to <ID> or one or more ids".into(),
            ));
        }
    };
    writeln!(out, "acknowledged {acked} message(s)")?;
    if !refused.is_empty() {
        return Err(OpsError::Invalid(refused.join("; ")));
    }
    Ok(acked)
}

/// The export mark in words, for `ack`'s refusals.
fn exported_mark(exported_up_to: Option<i64>) -> String {
    exported_up_to.map_or_else(
        || "nothing has been exported yet".to_owned(),
        |mark| format!("exported up to {mark}"),
    )
}

/// Ids as a comma-separated list.
fn joined(ids: &[i64]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
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
    if let Some(mark) = stats.exported_up_to {
        writeln!(
            out,
            "exported up to id {mark} (the most `queue ack` accepts)"
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

/// Takes the relay lock of the local database before a process relays through it (`serve`,
/// `quarantine replay`); alone on it, the dedupe claims a killed process left in progress are
/// released first ([`SqliteStore::start_relaying`]), so they do not hold their states, and the
/// poll with them, until they expire. Hold the lock while relaying.
pub async fn start_relaying(store: &SqliteStore) -> Result<tcrelay_sqlite::RelayLock, OpsError> {
    let start = store.start_relaying().await?;
    match start.released {
        Some(0) => {}
        Some(released) => tracing::warn!(
            released,
            "released dedupe claims left in progress by a process that ended (killed while it \
             relayed); a state it had sent may be sent again, and the queue drops a repeat \
             within five minutes"
        ),
        None => tracing::info!(
            "another process relays through this database; claims in progress are left to it"
        ),
    }
    Ok(start.lock)
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
/// With `json`, one line per entry as [`quarantine_export`] writes them.
pub async fn quarantine_list(
    store: &SqliteStore,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    if json {
        return quarantine_export(store, out).await;
    }
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

/// `quarantine drop ID…`: deletes kept requests; an id not kept is an error (after the others
/// are dropped), so a typo does not pass for done.
pub async fn quarantine_drop(
    store: &SqliteStore,
    ids: &[i64],
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let mut missing = Vec::new();
    for &id in ids {
        if store.quarantine_drop(id).await? {
            writeln!(out, "dropped {id}")?;
        } else {
            missing.push(id.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "not in the quarantine: {}",
            missing.join(", ")
        )))
    }
}

/// `quarantine replay ID… | --all`: each request through the relay again ([`Replayer`]), in
/// the order kept. Returns whether every one left the quarantine; one line each (JSON with
/// `json`).
pub async fn quarantine_replay(
    store: &SqliteStore,
    replayer: &Replayer,
    ids: Option<&[i64]>,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool, OpsError> {
    let entries =
        match ids {
            None => store.quarantine_list(0, usize::MAX).await?,
            Some(ids) => {
                let mut entries = Vec::with_capacity(ids.len());
                // An id given twice is replayed once: the second replay would only find its
                // entry gone (or report a duplicate of the first) and fail the command.
                let mut seen = std::collections::HashSet::new();
                for &id in ids.iter().filter(|&&id| seen.insert(id)) {
                    entries.push(store.quarantine_get(id).await?.ok_or_else(|| {
                        OpsError::Invalid(format!("{id} is not in the quarantine"))
                    })?);
                }
                entries
            }
        };
    let mut all = true;
    for entry in &entries {
        let replayed: Replayed = replayer.replay(store, entry).await?;
        all &= replayed.removed;
        if json {
            json_lines(std::slice::from_ref(&replayed), out)?;
            continue;
        }
        let verdict = if replayed.removed {
            "removed from the quarantine"
        } else {
            "kept"
        };
        writeln!(
            out,
            "{:>6}  {} {}  {verdict}{}",
            replayed.id,
            replayed
                .status
                .map_or_else(|| "-".to_owned(), |s| s.to_string()),
            replayed.outcome,
            replayed
                .reason
                .as_deref()
                .map(|r| format!(": {}", escape_control(r)))
                .unwrap_or_default()
        )?;
    }
    Ok(all)
}

/// `trace OBJECT_ID`: the object's dedupe records, queue messages and quarantined requests.
/// Returns whether any was found: a lookup that finds nothing (a mistyped id, or records long
/// deleted) is the caller's to report, with exit code 1, rather than three counts of 0 that
/// pass for an answer.
pub async fn trace(
    store: &SqliteStore,
    object_id: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<bool, OpsError> {
    // The quarantine is searched for the id as a substring: an empty one would match every
    // request and pass them all off as this object's.
    if object_id.trim().is_empty() {
        return Err(OpsError::Invalid(
            "the object id is empty: give the id of an order or shipment".to_owned(),
        ));
    }
    let trace = store.trace(object_id).await?;
    let found = !(trace.dedupe.is_empty() && trace.queue.is_empty() && trace.quarantine.is_empty());
    if json {
        json_lines(std::slice::from_ref(&trace), out)?;
        return Ok(found);
    }
    let time = |at: &chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    writeln!(out, "dedupe records: {}", trace.dedupe.len())?;
    for d in &trace.dedupe {
        writeln!(
            out,
            "  {}  {}  {} {}",
            escape_control(&d.key),
            d.state,
            if d.live { "until" } else { "expired" },
            time(&d.expires_at)
        )?;
    }
    writeln!(out, "queue messages: {}", trace.queue.len())?;
    for e in &trace.queue {
        writeln!(
            out,
            "  {:>8}  {}  {}  {}  enqueued {}{}",
            e.id,
            e.kind,
            e.source,
            escape_control(e.event_name.as_deref().unwrap_or("-")),
            time(&e.enqueued_at),
            e.acked_at
                .map(|a| format!(" / acked {}", time(&a)))
                .unwrap_or_else(|| " / pending".to_owned())
        )?;
    }
    writeln!(out, "quarantined requests: {}", trace.quarantine.len())?;
    for q in &trace.quarantine {
        writeln!(
            out,
            "  {:>6}  {}  {} {}  {}",
            q.id,
            time(&q.kept_at),
            escape_control(&q.request.method),
            escape_control(&q.request.uri),
            escape_control(&q.request.reason)
        )?;
    }
    Ok(found)
}

/// `doctor` on SQLite: the file, its schema version, its integrity, one line per check
/// (`ok` or `FAIL`). Returns whether every check passed; stops at the first failure the
/// others depend on. The version is read before opening, which would migrate it.
pub async fn doctor_sqlite(path: &std::path::Path, out: &mut dyn Write) -> Result<bool, OpsError> {
    let shown = path.display();
    let fail = |out: &mut dyn Write, what: String| -> Result<bool, OpsError> {
        writeln!(out, "FAIL  {}", escape_control(&what))?;
        Ok(false)
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => writeln!(out, "ok    file {shown} ({} bytes)", m.len())?,
        Ok(_) => return fail(out, format!("file {shown} is not a regular file")),
        Err(e) => return fail(out, format!("file {shown}: {e}")),
    }
    let supported = tcrelay_sqlite::SCHEMA_VERSION;
    match SqliteStore::schema_version_of(path) {
        Ok(0) => {
            return fail(
                out,
                format!("schema: {shown} is not a tcrelay database (user_version 0)"),
            );
        }
        Ok(v) if v > supported => {
            return fail(
                out,
                format!(
                    "schema version {v} is newer than this build's {supported}: upgrade tcrelay"
                ),
            );
        }
        Ok(v) if v < supported => {
            // Opening would migrate the file, and an older `serve` that still uses it would
            // then refuse to start: a check must not do that. Read-only from here on.
            writeln!(
                out,
                "ok    schema version {v} (`serve` of this build migrates it to {supported})"
            )?;
            return match SqliteStore::integrity_of(path) {
                Ok(None) => {
                    writeln!(out, "ok    integrity")?;
                    writeln!(out, "ok    queue counts: shown once the schema is migrated")?;
                    Ok(true)
                }
                Ok(Some(findings)) => fail(out, format!("integrity: {findings}")),
                Err(e) => fail(out, format!("integrity: {e}")),
            };
        }
        Ok(v) => writeln!(out, "ok    schema version {v}")?,
        Err(e) => return fail(out, format!("schema: {e}")),
    }
    // Read-only: a check writes nothing.
    let store = match SqliteStore::open_read_only(path, Default::default()) {
        Ok(store) => store,
        Err(e) => return fail(out, format!("open: {e}")),
    };
    if let Err(e) = store.check_integrity().await {
        return fail(out, format!("integrity: {e}"));
    }
    writeln!(out, "ok    integrity")?;
    let stats = store.stats().await?;
    writeln!(
        out,
        "ok    queue: {} pending, {} acknowledged; quarantine: {}",
        stats.pending,
        stats.acked,
        store.quarantine_count().await?
    )?;
    Ok(true)
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

/// What `cursor show` says of the progress a run stored beside the cursor.
fn progress_note(text: &str) -> String {
    let note = progress_kind_note(text);
    match kept_page_limit(text) {
        Some(limit) => format!(
            "{note}; pages of {limit} objects (larger ones were too large to read) until a run \
             catches up"
        ),
        None => note,
    }
}

/// What `cursor show` says of the kind of progress stored (`progress_kind`), and its size.
fn progress_kind_note(text: &str) -> String {
    let bytes = text.len();
    // The mark is mostly kept with a walk (a stream found unsorted walks every result set);
    // a move or paging inside a timestamp stored with it is not gone on with.
    const UNSORTED: &str = "Tradecloud's answers were found out of time order";
    let unsorted = kept_unsorted(text);
    match progress_kind(text) {
        "walk" if unsorted => format!(
            "a walk by offset stored ({bytes} bytes): the next run goes on with it; {UNSORTED}: \
             runs walk each result set"
        ),
        "timestamp" | "move" if unsorted => format!(
            "progress stored ({bytes} bytes), not gone on with: {UNSORTED}, runs walk each \
             result set from the cursor"
        ),
        "walk" => format!("a walk by offset stored ({bytes} bytes): the next run goes on with it"),
        "timestamp" => format!(
            "paging inside one timestamp stored ({bytes} bytes): the next run goes on with it"
        ),
        "move" => {
            format!("a move to check stored ({bytes} bytes): the next run asks its page first")
        }
        "unsorted" => format!("{UNSORTED}: runs walk each result set"),
        "smaller-pages" => "no progress stored".to_owned(),
        _ => format!(
            "progress stored ({bytes} bytes) this build cannot read: the next run starts from \
             the cursor"
        ),
    }
}

/// `cursor show <stream>` (or every stream): value and version, the window start while poll
/// runs have not caught up (docs/polling.md), and whether a run's progress is stored (a walk by
/// offset, paging inside a timestamp, a move to check). It is the poll run's own text, up to a
/// few KB long: only its size is shown.
pub async fn cursor_show(
    cursors: &dyn CursorStore,
    stream: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let streams: Vec<PollStream> = match stream {
        Some(name) => vec![parse_stream(name)?],
        None => PollStream::ALL.to_vec(),
    };
    for stream in streams {
        let cursor = cursors.read(stream.as_str()).await?;
        if json {
            let line = serde_json::json!({
                "stream": stream.as_str(),
                "value": cursor.as_ref().and_then(|c| c.value.clone()),
                "version": cursor.as_ref().map(|c| c.version),
                "windowStart": cursor.as_ref().and_then(|c| c.window_start.clone()),
                "walkBytes": cursor.as_ref().and_then(|c| c.walk.as_ref().map(String::len)),
                "progress": cursor.as_ref().and_then(|c| c.walk.as_deref().map(progress_kind)),
                "pageLimit": cursor.as_ref().and_then(|c| c.walk.as_deref().and_then(kept_page_limit)),
                "unsorted": cursor.as_ref().and_then(|c| c.walk.as_deref()).is_some_and(kept_unsorted),
            });
            writeln!(out, "{line}")?;
            continue;
        }
        match cursor {
            Some(c) => {
                let mut notes = vec![format!("version {}", c.version)];
                if let Some(window_start) = &c.window_start {
                    notes.push(format!("not caught up, changes read since {window_start}"));
                }
                if let Some(walk) = &c.walk {
                    notes.push(progress_note(walk));
                }
                writeln!(
                    out,
                    "{:<24} {}  ({})",
                    stream.as_str(),
                    c.value.as_deref().unwrap_or("-"),
                    notes.join("; ")
                )?
            }
            None => writeln!(out, "{:<24} -  (never polled)", stream.as_str())?,
        }
    }
    Ok(())
}

/// `cursor set <stream> <value>`: the next run starts after `value` (backfill or skip).
/// `stream` and `value` are the ones [`check_cursor_set`] passed.
pub async fn cursor_set(
    cursors: &dyn CursorStore,
    stream: PollStream,
    value: &str,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
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

/// The checks of `cursor set`, without a store, run before it opens (and perhaps creates) the
/// database, so a refused value leaves nothing behind: refuses a time in the future, and one
/// older than `dedupe_ttl` (the dedupe records' lifetime, `TCRELAY_DEDUPE_TTL_DAYS`) unless
/// `force`: the records of states relayed before then are gone, so a backfill from there sends
/// the ERP those states again. Returns the stream to give [`cursor_set`].
pub fn check_cursor_set(
    stream: &str,
    value: &str,
    dedupe_ttl: Duration,
    force: bool,
) -> Result<PollStream, OpsError> {
    let stream = parse_stream(stream)?;
    let at = tradecloud_model::timestamp::parse(value).map_err(|e| {
        OpsError::Invalid(format!(
            "{value:?} is not an ISO 8601 date-time ({e}), e.g. 2025-01-01T00:00:00.000Z \
             (without an offset it is read as UTC)"
        ))
    })?;
    let now = chrono::Utc::now();
    let oldest = chrono::Duration::from_std(dedupe_ttl)
        .ok()
        .and_then(|ttl| now.checked_sub_signed(ttl));
    if !force && oldest.is_some_and(|oldest| at < oldest) {
        return Err(OpsError::Invalid(format!(
            "{value:?} is {} days ago, before the dedupe records reach back \
             (TCRELAY_DEDUPE_TTL_DAYS: {} days): states relayed before then would be sent to \
             the ERP again, as duplicates; check the year, or give --force to backfill from \
             there anyway",
            (now - at).num_days(),
            dedupe_ttl.as_secs() / 86_400
        )));
    }
    // A typo of the year (2205 for 2025) would skip every change until then, and each run
    // would report the stream caught up: nothing would show it.
    if at > now {
        return Err(OpsError::Invalid(format!(
            "{value:?} is in the future: the stream would skip every change until then; to \
             skip ahead, set at most the current time"
        )));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database whose `orders` cursor a run acquired and checkpointed once, at
    /// 2025-01-02, with `window_start` and `walk`.
    async fn checkpointed(
        window_start: Option<&str>,
        walk: Option<&str>,
    ) -> (tempfile::TempDir, SqliteStore, tcrelay_core::ports::Cursor) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("c.db")).unwrap();
        let lease = std::time::Duration::from_secs(60);
        let c = store
            .acquire("orders", "run", lease)
            .await
            .unwrap()
            .unwrap();
        let c = store
            .checkpoint(
                "orders",
                "run",
                c.version,
                "2025-01-02T00:00:00.000Z",
                window_start,
                walk,
            )
            .await
            .unwrap();
        (dir, store, c)
    }

    /// Checkpoints the `orders` cursor (run `run`, at `version`) at 2025-01-02 again with
    /// `progress` stored beside it, as a poll run does; the new version.
    async fn store_progress(store: &SqliteStore, version: u64, progress: Option<&str>) -> u64 {
        store
            .checkpoint(
                "orders",
                "run",
                version,
                "2025-01-02T00:00:00.000Z",
                None,
                progress,
            )
            .await
            .unwrap()
            .version
    }

    /// What `cursor show orders` prints, as text or as its JSON line.
    async fn show(store: &SqliteStore, json: bool) -> String {
        let mut out = Vec::new();
        cursor_show(store, Some("orders"), json, &mut out)
            .await
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The JSON line of `cursor show orders --json`.
    async fn show_json(store: &SqliteStore) -> serde_json::Value {
        serde_json::from_str(show(store, true).await.trim()).unwrap()
    }

    #[tokio::test]
    async fn cursor_show_names_a_window_start_while_runs_have_not_caught_up() {
        let window = "2025-01-01T00:00:00.000Z";
        let (_dir, store, c) = checkpointed(Some(window), None).await;
        let text = show(&store, false).await;
        assert!(
            text.contains(
                "(version 1; not caught up, changes read since 2025-01-01T00:00:00.000Z)"
            ),
            "{text}"
        );
        assert_eq!(show_json(&store).await["windowStart"], window);
        store
            .checkpoint(
                "orders",
                "run",
                c.version,
                "2025-01-03T00:00:00.000Z",
                None,
                None,
            )
            .await
            .unwrap();
        assert!(show(&store, false).await.ends_with("(version 2)\n"));
        let line = show_json(&store).await;
        assert!(line["windowStart"].is_null());
        assert!(line["walkBytes"].is_null());
    }

    #[tokio::test]
    async fn cursor_show_says_a_walk_is_stored_without_printing_it() {
        let walk = tcrelay_core::conformance::cursor_store::a_walk();
        let (_dir, store, c) = checkpointed(Some("2025-01-01T00:00:00.000Z"), Some(&walk)).await;
        let text = show(&store, false).await;
        assert!(
            text.ends_with(&format!(
                "(version 1; not caught up, changes read since 2025-01-01T00:00:00.000Z; \
                 progress stored ({} bytes) this build cannot read: the next run starts from \
                 the cursor)\n",
                walk.len()
            )),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
        let line = show_json(&store).await;
        assert_eq!(line["walkBytes"], walk.len());
        assert_eq!(line["progress"], "unreadable");
        assert!(line.get("walk").is_none(), "{line}");
        // A walk without a window start stands alone in the note.
        store
            .checkpoint(
                "orders",
                "run",
                c.version,
                "2025-01-02T00:00:00.000Z",
                None,
                Some("{}"),
            )
            .await
            .unwrap();
        let text = show(&store, false).await;
        assert!(
            text.ends_with(
                "(version 2; progress stored (2 bytes) this build cannot read: the next run \
                 starts from the cursor)\n"
            ),
            "{text}"
        );
    }

    /// A stream found unsorted walks every result set, so its stored progress is mostly a
    /// walk carrying the mark: `cursor show` must say so (it said only "a walk", and `--json`
    /// had no field for the mark unless it was stored alone); paging inside a timestamp or a
    /// move stored with the mark is not gone on with (the run walks from the cursor).
    #[tokio::test]
    async fn cursor_show_reports_the_unsorted_mark_kept_with_progress() {
        let (_dir, store, c) = checkpointed(None, None).await;
        let mut version = c.version;
        let of = r#""cursor":"2025-01-02T00:00:00.000Z","endpoint":"poll","filters":{}"#;
        for (progress, kind, note) in [
            (
                r#""after":"2025-01-01T23:59:59.000Z","offset":2,"page":[["o-1","2025-01-01T23:59:59.500Z"],["o-2","2025-01-01T23:59:59.700Z"]],"known":"2025-01-02T00:00:00.000Z","anyAfter":true,"pages":2"#,
                "walk",
                "the next run goes on with it; Tradecloud's answers were found out of time \
                 order: runs walk each result set",
            ),
            (
                r#""moveTo":"2025-01-02T00:00:01.000Z","expectedTotal":3"#,
                "move",
                "not gone on with: Tradecloud's answers were found out of time order, runs \
                 walk each result set",
            ),
        ] {
            for unsorted in [false, true] {
                let mark = if unsorted { r#","unsorted":true"# } else { "" };
                let stored = format!("{{{of}{mark},{progress}}}");
                version = store_progress(&store, version, Some(&stored)).await;
                let json = show_json(&store).await;
                assert_eq!(json["progress"], kind, "{stored}");
                assert_eq!(json["unsorted"], unsorted, "{stored}: {json}");
                let text = show(&store, false).await;
                assert_eq!(text.contains(note), unsorted, "{stored}: {text}");
            }
        }
        // The mark alone, and no progress at all.
        version = store_progress(
            &store,
            version,
            Some(&format!(r#"{{{of},"unsorted":true}}"#)),
        )
        .await;
        assert_eq!(show_json(&store).await["unsorted"], true);
        store_progress(&store, version, None).await;
        assert_eq!(show_json(&store).await["unsorted"], false);
    }

    #[tokio::test]
    async fn cursor_show_names_the_kind_of_progress_stored() {
        let (_dir, store, c) = checkpointed(None, None).await;
        let mut version = c.version;
        for (stored, note, kind) in [
            (
                r#"{"cursor":"2025-01-02T00:00:00.000Z","endpoint":"poll","filters":{},"moveTo":"2025-01-02T00:00:01.000Z","expectedTotal":3}"#,
                "a move to check stored",
                "move",
            ),
            (
                r#"{"cursor":"2025-01-02T00:00:00.000Z","endpoint":"poll","filters":{},"unsorted":true}"#,
                "Tradecloud's answers were found out of time order: runs walk each result set)",
                "unsorted",
            ),
            (
                r#"{"cursor":"2025-01-02T00:00:00.000Z","endpoint":"poll","filters":{},"pageLimit":25}"#,
                "no progress stored; pages of 25 objects (larger ones were too large to read) \
                 until a run catches up)",
                "smaller-pages",
            ),
            (
                r#"{"cursor":"2025-01-02T00:00:00.000Z","endpoint":"poll","filters":{},"moveTo":"2025-01-02T00:00:01.000Z","expectedTotal":3,"pageLimit":50}"#,
                "a move to check stored (137 bytes): the next run asks its page first; pages of \
                 50 objects",
                "move",
            ),
        ] {
            version = store_progress(&store, version, Some(stored)).await;
            let text = show(&store, false).await;
            assert!(text.contains(note), "{text}");
            let json = show_json(&store).await;
            assert_eq!(json["progress"], kind);
            let limit = stored.contains("pageLimit").then(|| {
                let v: serde_json::Value = serde_json::from_str(stored).unwrap();
                v["pageLimit"].clone()
            });
            assert_eq!(json["pageLimit"], limit.unwrap_or(serde_json::Value::Null));
        }
    }
}
