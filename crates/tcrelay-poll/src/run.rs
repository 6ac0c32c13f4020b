//! The poll run: lease, page, dedupe, enqueue, checkpoint. The same code serves the Lambda and
//! the local runner; everything outside (Tradecloud, the cursor table, the dedupe table, the
//! queue, the clock's deadline) comes in through ports.
//!
//! ## Paging without skipping (docs/polling.md has the whole argument)
//! Offset paging alone loses objects that change while we page: they move to the end and the
//! rest shifts under the offset. So while pages come sorted, the loop pages by time:
//! - Each request asks for objects after a position `pos` (a `lastUpdatedAt` Tradecloud
//!   returned, or the configured start, or the stored cursor minus the lookback).
//! - A page shorter than the limit holds everything after `pos`: all of it is relayed, the
//!   cursor moves to its last `lastUpdatedAt`, and the run is caught up.
//! - A full page may continue with more objects of its last timestamp on the next page. The
//!   page is relayed whole and `pos` moves to the last object before that timestamp (the
//!   previous distinct timestamp); the last timestamp's objects are asked for again.
//! - A full page of one timestamp cannot be passed by time: only then the loop pages by offset
//!   inside that timestamp, with pages overlapping by a tenth, and checks that the first object
//!   of each page was seen on the page before, at or after the page's offset. If not, objects
//!   left the timestamp and the rest shifted back under the offset, or one joined it at an
//!   offset passed (committed late) and the rest shifted forward: the timestamp starts again
//!   from offset 0 (at most a few times).
//! - The older search endpoints include `pos` itself (`lastUpdatedSince`): there a stored cursor
//!   means "everything before it was relayed", and the loop moves `pos` to a page's last
//!   timestamp, whose objects come back first on the next request.
//! - Every run starts at the stored cursor minus the lookback (at least 1 ms), so objects that
//!   Tradecloud commits late, or that land on the cursor's own millisecond after it was read,
//!   are asked for again. The dedupe store absorbs all overlap.
//!
//! Tradecloud no longer promises sorted results, nor says whether `lastUpdatedAfter` is strict.
//! Neither stops the stream:
//! - Items at or before `pos` are relayed like any other (the dedupe store absorbs them) and
//!   left out of the paging decision.
//! - A page may look sorted by chance (a stretch of an index order that is not by time). After
//!   a move by time, the next page's `total` must count at least the matches the move left in
//!   a sorted set; fewer show the move passed objects no page showed (`Moved`). Either that
//!   or the first unsorted page of a run sends it back to where it started: everything it paged
//!   past by time is walked again, and the cursor checkpointed meanwhile is written back to
//!   the value the run found, so a run stopped before that walk ends leaves no skip behind.
//!   A move so checked is stored only once the next page allowed it: a run stopping right
//!   after it leaves the cursor before it.
//! - From the first unsorted page on, the run trusts no order: it keeps the filter fixed and
//!   walks the result set by offset to its end (overlapping pages, restarting when the overlap
//!   check fails), then moves the position to the largest `lastUpdatedAt` that existed when the
//!   walk began: of the walk's *first* page, or of anything the run fetched before it. Any
//!   object changing during the walk gets a later `lastUpdatedAt` and is asked for again; every
//!   object that did not change was seen by the walk. A full page that cannot move the position
//!   by time (inclusive answers filling it) is walked the same way; when no time known at the
//!   walk's start is after the position, the run walks once more, and that walk knows the
//!   times the first one saw.
//! - A walk of the result set the next run starts with stores its progress with the cursor after
//!   each full page (the `walk` module), so a set too large for one run is walked on by the next
//!   instead of from its start again, which would never end; so does a walk about to begin or
//!   begun again, so the next run does not page by time (or look for a place) into the same
//!   finding again. Paging inside one timestamp is stored the same way (the `tie` module), and
//!   a run that stops paging by time stores a move its next page was to check, or a position
//!   it reached that the cursor did not (the `progress` module): so a run's page bound or time
//!   never leaves the next run to fetch the same pages again, every run.
//! - Each kind of deviation is logged once per run as a WARN and counted in
//!   [`StreamSummary::deviations`].
//!
//! The cursor only ever stores a `lastUpdatedAt` Tradecloud returned (a zone-less one written
//! in UTC, with `Z`) or the run's start, never ends a run before the value the run found,
//! and moves only after every object up to it is enqueued.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use tcrelay_core::dedupe::{state_key, whole_state_key};
use tcrelay_core::envelope::{Envelope, Payload};
use tcrelay_core::ports::{
    ApiError, CursorStore, DedupeRecord, DedupeStore, EventSink, RecordState, SinkError, StoreError,
};
use tcrelay_core::relay::{Claims, Unsent};
use tradecloud_model::timestamp;

use crate::api::{PageRequest, PollApi, PollStream};
use crate::config::PollConfig;
use crate::lease::HeldLease;
use crate::missed::{MissedChanges, OrderTimes, Unsettled, Verdict};
use crate::object::{Polled, Preparation, Prepared};
use crate::progress::{self, Belongs, Origin, Resumed, Stored, StoredMove};
use crate::tie::Tie;
use crate::walk::{Bound, Walk};

/// How often a walk by offset may start over before the run gives up.
const MAX_TIE_RESTARTS: u32 = 5;

/// Pages served at a page size smaller than the configured one before the run asks pages of
/// twice that size ([`StreamRun::grow_page_limit`]); doubled each time a grown size fails.
const GROW_AFTER_PAGES: u32 = 4;

/// The largest page size at which a move by time is checked by its old position's `total`
/// too ([`StreamRun::old_total_shows_a_skip`]): one more request a move.
const OLD_TOTAL_PAGES: u32 = 2;

/// How many times that check asks again when something added between its requests leaves it
/// open ([`StreamRun::old_total_shows_a_skip`]).
const OLD_TOTAL_ROUNDS: u32 = 3;

/// Dry runs list at most this many planned envelopes (the counts stay exact).
pub const MAX_PLANNED: usize = 1000;

/// The time left to a run, from the Lambda context's deadline or none at all.
pub trait Deadline: Send + Sync {
    /// Time left; `None` when there is no deadline.
    fn remaining(&self) -> Option<Duration>;
}

/// No deadline (the local runner, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDeadline;

impl Deadline for NoDeadline {
    fn remaining(&self) -> Option<Duration> {
        None
    }
}

/// A deadline at a wall-clock time, as the Lambda context gives it.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineAt(pub SystemTime);

impl Deadline for DeadlineAt {
    fn remaining(&self) -> Option<Duration> {
        Some(
            self.0
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// The ports a run uses.
#[derive(Clone)]
pub struct PollPorts {
    /// Tradecloud's poll API.
    pub api: Arc<dyn PollApi>,
    /// Cursors with leases.
    pub cursors: Arc<dyn CursorStore>,
    /// The dedupe table shared with the webhook.
    pub dedupe: Arc<dyn DedupeStore>,
    /// The ERP's queue.
    pub sink: Arc<dyn EventSink>,
}

impl std::fmt::Debug for PollPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollPorts").finish_non_exhaustive()
    }
}

/// What one run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// Streams to poll; empty: the configured ones.
    pub streams: Vec<PollStream>,
    /// Backfill: start at this timestamp instead of the cursor (which still never moves back).
    pub from: Option<String>,
    /// Report what would be sent without claiming, sending or moving the cursor.
    pub dry_run: bool,
    /// Who holds the lease (unique per run, e.g. the Lambda request id).
    pub owner: String,
}

impl RunRequest {
    /// A scheduled run of the configured streams.
    pub fn scheduled(owner: impl Into<String>) -> Self {
        Self {
            streams: Vec::new(),
            from: None,
            dry_run: false,
            owner: owner.into(),
        }
    }
}

/// Why a stream's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "reason")]
pub enum StopReason {
    /// Everything Tradecloud had was relayed.
    CaughtUp,
    /// Too little time was left before the deadline; the cursor is saved.
    Deadline,
    /// The run could no longer be sure of its stream's lease: renewals failed (the cursor
    /// store unreachable) until less than a heartbeat of it was left, so another run may take
    /// it. It stopped before its next fetch or page's sends, with the cursor where its last
    /// checkpoint put it; the next run continues there.
    LeaseUnsure,
    /// The page bound per run was reached; the cursor is saved.
    MaxPages,
    /// Another run holds the stream's lease: nothing was read or written.
    LeaseHeld,
    /// Another channel is relaying this state right now; the next run continues here.
    InProgressElsewhere {
        /// The dedupe key that is claimed.
        key: String,
        /// That state's `lastUpdatedAt`: the oldest change the run leaves waiting.
        last_updated_at: String,
    },
}

impl StopReason {
    /// Short name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::CaughtUp => "caught-up",
            StopReason::Deadline => "deadline",
            StopReason::LeaseUnsure => "lease-unsure",
            StopReason::MaxPages => "max-pages",
            StopReason::LeaseHeld => "lease-held",
            StopReason::InProgressElsewhere { .. } => "in-progress-elsewhere",
        }
    }
}

/// An envelope a dry run would send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedEnvelope {
    /// Order or shipment id.
    pub id: String,
    /// Its `lastUpdatedAt`.
    pub last_updated_at: String,
    /// The state key it would be admitted under.
    pub dedupe_key: String,
    /// The changed lines it would list.
    pub changed_lines: Option<Vec<String>>,
}

/// How Tradecloud's answers departed from what its docs promise, counted over one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deviations {
    /// Pages not sorted by `lastUpdatedAt` (the docs no longer promise it since 2025-04-09).
    pub unsorted_pages: u64,
    /// Items at or before the `lastUpdatedAfter` asked for (the docs say "after").
    pub inclusive_items: u64,
    /// Items whose `lastUpdatedAt` has no zone, read as UTC.
    pub zoneless_timestamps: u64,
    /// Pages shorter than asked for while their `total` counts matches past them (a page cap
    /// below the page size, or no objects at all while some match): the docs promise pages
    /// of the size asked until the result set ends.
    pub short_pages: u64,
    /// Items without an id, or without a `lastUpdatedAt` that reads as a date-time (the docs
    /// promise both): relayed as sent, under their content's key when they lack either, and
    /// left out of the paging.
    pub unplaceable_items: u64,
}

impl Deviations {
    /// Whether there was any.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    /// Each kind of deviation, by a name for metric labels (kebab case), with its count.
    pub fn counts(&self) -> [(&'static str, u64); 5] {
        [
            ("unsorted-page", self.unsorted_pages),
            ("inclusive-item", self.inclusive_items),
            ("zoneless-timestamp", self.zoneless_timestamps),
            ("short-page", self.short_pages),
            ("unplaceable-item", self.unplaceable_items),
        ]
    }
}

/// What a stream's run did; logged as one line and returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSummary {
    /// The stream.
    pub stream: &'static str,
    /// Whether nothing was claimed, sent or moved.
    pub dry_run: bool,
    /// Why it ended (`None` only inside a failure).
    pub stop: Option<StopReason>,
    /// Pages fetched.
    pub pages: u32,
    /// Distinct object states looked at.
    pub objects: u64,
    /// Envelopes enqueued (dry run: that would be).
    pub enqueued: u64,
    /// Of `enqueued`: orders sent although a webhook event had relayed their state, because no
    /// event claimed the time of an earlier change of their lines (an event lost before the
    /// relay, filtered, or switched off in Tradecloud; see the crate's `missed` module).
    pub recovered: u64,
    /// States already relayed, by any channel.
    pub duplicates: u64,
    /// States left out by the echo filter.
    pub filtered: u64,
    /// The stored cursor when the run started.
    pub cursor_before: Option<String>,
    /// The stored cursor when it ended (dry run: where it would be).
    pub cursor_after: Option<String>,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
    /// Departures from Tradecloud's documented behaviour seen in this run.
    pub deviations: Deviations,
    /// Dry run only: the first [`MAX_PLANNED`] envelopes it would send.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<PlannedEnvelope>,
}

impl StreamSummary {
    /// The summary of a run of `stream` before it did anything.
    pub fn new(stream: PollStream, dry_run: bool) -> Self {
        Self {
            stream: stream.as_str(),
            dry_run,
            stop: None,
            pages: 0,
            objects: 0,
            enqueued: 0,
            recovered: 0,
            duplicates: 0,
            filtered: 0,
            cursor_before: None,
            cursor_after: None,
            duration_ms: 0,
            deviations: Deviations::default(),
            planned: Vec::new(),
        }
    }
}

/// Why a stream's run failed. In every case the cursor stays at the last checkpoint, which
/// covers only objects that are enqueued.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// Tradecloud could not be reached, refused us, or answered garbage (after retries).
    #[error("Tradecloud poll failed: {0}")]
    Api(#[source] ApiError),
    /// A page broke Tradecloud's contract beyond reading (an item that is not JSON).
    #[error("Tradecloud sent a page we cannot use: {0}")]
    Malformed(String),
    /// The cursor store failed.
    #[error("cursor store failed: {0}")]
    Cursor(#[source] StoreError),
    /// Our checkpoint was refused: another run took the lease or moved the cursor.
    #[error("lost the cursor lease to another run: {0}")]
    LostLease(#[source] StoreError),
    /// The dedupe store failed.
    #[error("dedupe store failed: {0}")]
    Dedupe(#[source] StoreError),
    /// The queue did not take every envelope of a page.
    #[error("queue failed: {0}")]
    Sink(#[source] SinkError),
    /// The stored cursor is not a timestamp.
    #[error("the stored cursor {0:?} is not a timestamp; fix it with `cursor set`")]
    BadCursor(String),
    /// The manual `from` is not a timestamp.
    #[error("\"from\" {0:?} is not an ISO 8601 date-time with offset")]
    BadFrom(String),
    /// Neither cursor nor start: the configuration lacks `TCRELAY_POLL_START`.
    #[error("stream has no cursor yet and TCRELAY_POLL_START is not set")]
    NoStart,
    /// Objects kept moving while we walked a result set by offset.
    #[error(
        "objects after {after} kept moving while walking the result by offset \
         ({MAX_TIE_RESTARTS} restarts); the next run tries again"
    )]
    WalkUnstable {
        /// The fixed `lastUpdatedAfter` of the walk.
        after: String,
    },
    /// Objects kept leaving one timestamp while we paged inside it.
    #[error(
        "objects at {timestamp} kept changing while paging inside that timestamp \
         ({MAX_TIE_RESTARTS} restarts); the next run tries again"
    )]
    TieUnstable {
        /// The timestamp.
        timestamp: String,
    },
}

/// A failed stream run: the error and what had been done until then.
#[derive(Debug, thiserror::Error)]
#[error("poll of {} failed: {error}", summary.stream)]
pub struct StreamFailure {
    /// What went wrong.
    #[source]
    pub error: PollError,
    /// Counts until the failure; `cursor_after` is where the cursor stays.
    pub summary: StreamSummary,
}

/// The result of a run over several streams.
#[derive(Debug)]
pub struct RunReport {
    /// One result per stream, in the order polled.
    pub results: Vec<Result<StreamSummary, StreamFailure>>,
}

impl RunReport {
    /// Whether any stream failed.
    pub fn failed(&self) -> bool {
        self.results.iter().any(Result::is_err)
    }

    /// The summaries, failed streams' included.
    pub fn summaries(&self) -> Vec<&StreamSummary> {
        self.results
            .iter()
            .map(|r| match r {
                Ok(s) => s,
                Err(f) => &f.summary,
            })
            .collect()
    }
}

/// Under a deadline, the streams whose cursors are the newest go first: a caught-up stream
/// takes a page or two, and a stream with a backlog (the first runs from an early
/// `TCRELAY_POLL_START`) then uses what is left. In the configured order, a backlog of the
/// first stream would take every invocation's time and the others would not be polled at all
/// until it caught up. Streams without a cursor count as the oldest; when a cursor cannot be
/// read the configured order stays (the run reports the store's failure itself).
async fn newest_cursor_first(
    ports: &PollPorts,
    streams: Vec<PollStream>,
    deadline: &dyn Deadline,
) -> Vec<PollStream> {
    if streams.len() < 2 || deadline.remaining().is_none() {
        return streams;
    }
    let mut positions = Vec::with_capacity(streams.len());
    for stream in &streams {
        match ports.cursors.read(stream.as_str()).await {
            Ok(cursor) => positions.push(
                cursor
                    .and_then(|c| c.value)
                    .and_then(|v| timestamp::parse(&v).ok()),
            ),
            Err(_) => return streams,
        }
    }
    let mut ordered: Vec<(PollStream, Option<DateTime<Utc>>)> =
        streams.into_iter().zip(positions).collect();
    // Stable: equal positions keep the configured order.
    ordered.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
    ordered.into_iter().map(|(stream, _)| stream).collect()
}

/// Polls the requested streams (or the configured ones), one after the other: Tradecloud asks
/// for sequential calls. A failed stream does not stop the others.
pub async fn run(
    ports: &PollPorts,
    config: &PollConfig,
    request: &RunRequest,
    deadline: &dyn Deadline,
) -> RunReport {
    let streams = if request.streams.is_empty() {
        config.streams.clone()
    } else {
        request.streams.clone()
    };
    if streams.is_empty() {
        tracing::info!("no poll streams configured (TCRELAY_POLL_STREAMS is empty); nothing to do");
    }
    let streams = newest_cursor_first(ports, streams, deadline).await;
    let mut results = Vec::with_capacity(streams.len());
    let count = streams.len();
    for (i, stream) in streams.into_iter().enumerate() {
        let share = Share::of(deadline, config.time_margin, count - i);
        results.push(run_stream(ports, config, stream, request, &share).await);
    }
    RunReport { results }
}

/// A stream's share of the invocation's time: of what is left when it starts (the margin
/// kept), an equal part for it and each stream after it. A stream that finishes early leaves
/// its time to the next; the last gets all that is left. So no stream takes every invocation's
/// time while another waits.
struct Share<'a> {
    inner: &'a dyn Deadline,
    /// The inner deadline's time left at which this share is used up.
    used_up_below: Duration,
    margin: Duration,
}

impl<'a> Share<'a> {
    fn of(inner: &'a dyn Deadline, margin: Duration, streams_left: usize) -> Self {
        let used_up_below = inner.remaining().map_or(Duration::ZERO, |left| {
            let usable = left.saturating_sub(margin);
            let share = usable / u32::try_from(streams_left.max(1)).unwrap_or(u32::MAX);
            left - share
        });
        Self {
            inner,
            used_up_below,
            margin,
        }
    }
}

impl Deadline for Share<'_> {
    fn remaining(&self) -> Option<Duration> {
        // The run stops when this is under the margin: once the invocation's own time is, or
        // once this share is spent.
        self.inner.remaining().map(|left| {
            left.min(
                left.checked_sub(self.used_up_below)
                    .map_or(Duration::ZERO, |over| over + self.margin),
            )
        })
    }
}

/// Polls one stream: lease, pages, checkpoints, release; logs one summary line.
pub async fn run_stream(
    ports: &PollPorts,
    config: &PollConfig,
    stream: PollStream,
    request: &RunRequest,
    deadline: &dyn Deadline,
) -> Result<StreamSummary, StreamFailure> {
    let started = Instant::now();
    let mut summary = StreamSummary::new(stream, request.dry_run);
    let result = lease_and_poll(ports, config, stream, request, deadline, &mut summary).await;
    summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(stop) => {
            summary.stop = Some(stop);
            log_summary(&summary, None);
            Ok(summary)
        }
        Err(error) => {
            log_summary(&summary, Some(&error));
            Err(StreamFailure { error, summary })
        }
    }
}

fn log_summary(s: &StreamSummary, error: Option<&PollError>) {
    let stop = s.stop.as_ref().map_or("failed", StopReason::as_str);
    let before = s.cursor_before.as_deref().unwrap_or("-");
    let after = s.cursor_after.as_deref().unwrap_or("-");
    match error {
        None => tracing::info!(
            stream = s.stream,
            dry_run = s.dry_run,
            stop,
            pages = s.pages,
            objects = s.objects,
            enqueued = s.enqueued,
            recovered = s.recovered,
            duplicates = s.duplicates,
            filtered = s.filtered,
            cursor_before = before,
            cursor_after = after,
            duration_ms = s.duration_ms,
            "poll run summary"
        ),
        Some(error) => tracing::error!(
            stream = s.stream,
            dry_run = s.dry_run,
            stop,
            pages = s.pages,
            objects = s.objects,
            enqueued = s.enqueued,
            recovered = s.recovered,
            duplicates = s.duplicates,
            filtered = s.filtered,
            cursor_before = before,
            cursor_after = after,
            duration_ms = s.duration_ms,
            error = %error,
            "poll run failed; the cursor stays at cursor_after"
        ),
    }
}

async fn lease_and_poll(
    ports: &PollPorts,
    config: &PollConfig,
    stream: PollStream,
    request: &RunRequest,
    deadline: &dyn Deadline,
    summary: &mut StreamSummary,
) -> Result<StopReason, PollError> {
    let name = stream.as_str();
    let (acquired_at, taken) = (Instant::now(), chrono::Utc::now());
    let mut lease = None;
    let cursor = if request.dry_run {
        // A dry run writes nothing, not even a lease.
        ports
            .cursors
            .read(name)
            .await
            .map_err(PollError::Cursor)?
            .unwrap_or(tcrelay_core::ports::Cursor {
                value: None,
                version: 0,
                window_start: None,
                walk: None,
            })
    } else {
        match ports
            .cursors
            .acquire(name, &request.owner, config.lease)
            .await
            .map_err(PollError::Cursor)?
        {
            Some(cursor) => {
                lease = Some(HeldLease::start(
                    ports.cursors.clone(),
                    name,
                    &request.owner,
                    config.lease,
                    acquired_at,
                    taken,
                ));
                cursor
            }
            None => return Ok(StopReason::LeaseHeld),
        }
    };
    summary.cursor_before = cursor.value.clone();
    summary.cursor_after = cursor.value.clone();

    let result = async {
        let committed_at = match &cursor.value {
            Some(text) => {
                Some(timestamp::parse(text).map_err(|_| PollError::BadCursor(text.clone()))?)
            }
            None => None,
        };
        let resume_at = committed_at.map(|at| at - lookback(config));
        let pos = match (&request.from, resume_at) {
            (Some(from), resume_at) => {
                let from_at =
                    timestamp::parse(from).map_err(|_| PollError::BadFrom(from.clone()))?;
                match resume_at {
                    // A backfill goes back, never forward: starting after the cursor would
                    // checkpoint past changes nobody has relayed yet.
                    Some(resume_at) if from_at > resume_at => {
                        tracing::warn!(
                            stream = stream.as_str(),
                            from = %tcrelay_core::logsafe::escape_control(from),
                            "the backfill's start is after the cursor: starting at the cursor"
                        );
                        timestamp::format(resume_at)
                    }
                    _ => from.clone(),
                }
            }
            (None, Some(resume_at)) => timestamp::format(resume_at),
            (None, None) => config.start.clone().ok_or(PollError::NoStart)?,
        };
        let filters = config.filters_for(stream);
        // Progress the last run stored where it stopped goes on (the `progress` module); a
        // backfill asks another result set.
        let resume = match (&request.from, &cursor.walk) {
            // A backfill asks another result set: it goes on with no stored progress, but
            // keeps the mark that the answers were found unsorted (it writes the cursor record,
            // and the runs after it must still walk).
            (Some(_), Some(text)) => {
                progress::resume(text, cursor.value.as_deref(), config.mode, &filters).map(|r| {
                    progress::Resume {
                        progress: None,
                        marks: r.marks,
                    }
                })
            }
            (None, Some(text)) => {
                let resume = progress::resume(text, cursor.value.as_deref(), config.mode, &filters);
                match &resume {
                    Some(progress::Resume {
                        progress: Some(r),
                        marks,
                    }) => tracing::info!(
                        stream = stream.as_str(),
                        kind = r.kind(),
                        after = r.after(),
                        offset = r.offset(),
                        unsorted = marks.unsorted,
                        page_limit = marks.page_limit,
                        "going on where the last run stopped (a walk of the result set by \
                         offset, paging inside one timestamp, or a move by time to check)"
                    ),
                    Some(progress::Resume {
                        progress: None,
                        marks,
                    }) => tracing::info!(
                        stream = stream.as_str(),
                        unsorted = marks.unsorted,
                        page_limit = marks.page_limit,
                        "going on with what earlier runs found: Tradecloud's answers out of \
                         time order (walking the result set by offset), or pages too large to \
                         read (asking for smaller ones until a run catches up)"
                    ),
                    None => tracing::info!(
                        stream = stream.as_str(),
                        "the progress stored with the cursor cannot be gone on with (stored \
                         with another cursor, endpoint or filter, or unreadable); starting \
                         from the cursor"
                    ),
                }
                resume
            }
            _ => None,
        };
        let marks = resume.as_ref().map(|r| r.marks).unwrap_or_default();
        let resume = resume.and_then(|r| r.progress);
        let pos = match &resume {
            Some(r @ (Resumed::Walk { .. } | Resumed::Tie { .. })) => r.after().to_owned(),
            _ => pos,
        };
        let pos_at = timestamp::parse(&pos).map_err(|_| PollError::BadFrom(pos.clone()))?;
        // Runs since the last caught-up one checkpointed past objects they never saw (they had
        // changed again before their page was fetched): their lines count as changed since
        // that window's start, not since the cursor (`Cursor::window_start`).
        let (window_start, changed_since) = match &cursor.window_start {
            Some(text) => {
                let at = timestamp::parse(text).map_err(|_| PollError::BadCursor(text.clone()))?;
                if at < pos_at {
                    (text.clone(), at)
                } else {
                    (pos.clone(), pos_at)
                }
            }
            None => (pos.clone(), pos_at),
        };
        let start = (pos.clone(), pos_at);
        let (go_on, checked_move) = match resume {
            Some(Resumed::Walk { walk, .. }) => (Some(GoOn::Walk(walk)), None),
            Some(Resumed::Tie { tie, .. }) => (Some(GoOn::Tie(tie)), None),
            Some(Resumed::Move {
                to,
                expected_total,
                from,
            }) => (
                None,
                Some((
                    to,
                    Moved {
                        expected_total,
                        from,
                    },
                )),
            ),
            None => (None, None),
        };
        let mut run = StreamRun {
            ports,
            config,
            stream,
            request,
            deadline,
            lease: lease.as_ref(),
            filters,
            prep: Preparation {
                changed_since,
                changed_lines_only: config.changed_lines_only,
                echo_filter: config.echo_filter,
            },
            pos,
            pos_at,
            committed_at,
            version: cursor.version,
            window_start,
            stored_window: cursor.window_start.clone(),
            stored_walk: cursor.walk.clone(),
            done: HashSet::new(),
            // Smaller pages, after an earlier run found pages of the configured size too large
            // to read and no run caught up since (`progress::Marks`).
            page_limit: marks
                .page_limit
                .and_then(|limit| smaller_page_limit(limit, config.page_limit))
                .unwrap_or(config.page_limit),
            pages_at_limit: 0,
            grow_after: GROW_AFTER_PAGES,
            grown: false,
            caught_up: false,
            summary: &mut *summary,
            // A walk gone on with knows the times its earlier runs saw: a walk begun after it
            // ends must know them too (its bound), or one that ends in a run that saw only its
            // last page would begin the next knowing only that page's times, and walk again
            // and again to the same bound.
            seen_newest: match &go_on {
                Some(GoOn::Walk(w)) => w.newest().cloned(),
                _ => None,
            },
            moved: None,
            unconfirmed: None,
            start,
            // A run after one that found the answers unsorted trusts no order either (a stored
            // walk goes on as a walk whatever the run that stored it found).
            distrust: marks.unsorted,
            resume: go_on,
            page_began: None,
            slowest_send: Duration::ZERO,
            slowest_chunk: Duration::ZERO,
        };
        if let Some((to, moved)) = checked_move {
            // The last run's move by time, not yet checked: the first request asks what that
            // run would have asked next, and its `total` decides whether the move is stored.
            (run.pos, run.pos_at) = to.clone();
            run.unconfirmed = Some(to);
            run.moved = Some(moved);
        }
        let stop = run.pages().await?;
        if stop == StopReason::CaughtUp {
            run.close_window().await;
        }
        Ok(stop)
    }
    .await;

    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

/// `limit` when it is a page size smaller than the `configured` one that still lets pages
/// overlap (two at least): the only page sizes kept for the next runs.
fn smaller_page_limit(limit: u32, configured: u32) -> Option<u32> {
    (2..configured).contains(&limit).then_some(limit)
}

/// The part of the time margin kept for a fetched page's claims, queue sends and checkpoint: a
/// third (10 s of the default 30 s; the rest covers the Tradecloud call before them). A page
/// fetched with less than this left is not sent ([`StreamRun::too_late_to_send`]), and a chunk
/// of its sends only with this left beyond the slowest chunk ([`StreamRun::time_for_a_chunk`]).
pub fn send_reserve(config: &PollConfig) -> Duration {
    config.time_margin / 3
}

/// How many of a page's envelopes go to the queue in one call under a deadline: one SQS
/// `SendMessageBatch` (its most entries), so the time left is looked at between every two
/// batch calls ([`StreamRun::send_page`]) and the SQS sink makes the calls it made for a page
/// in one.
const SEND_CHUNK: usize = 10;

/// The configured lookback (at least 1 ms, as the configuration checks).
fn lookback(config: &PollConfig) -> chrono::Duration {
    chrono::Duration::from_std(config.lookback).unwrap_or(chrono::Duration::milliseconds(1))
}

/// A stream's run in progress.
struct StreamRun<'a> {
    ports: &'a PollPorts,
    config: &'a PollConfig,
    stream: PollStream,
    request: &'a RunRequest,
    deadline: &'a dyn Deadline,
    /// The lease and its heartbeat; `None` in a dry run.
    lease: Option<&'a HeldLease>,
    filters: Map<String, Value>,
    prep: Preparation,
    /// The position asked from: a timestamp string.
    pos: String,
    pos_at: DateTime<Utc>,
    /// The stored cursor's instant; the cursor never moves to or before it.
    committed_at: Option<DateTime<Utc>>,
    /// The stored cursor's version, for the conditional checkpoint.
    version: u64,
    /// Where this run's window starts, as stored with its checkpoints until it catches up.
    window_start: String,
    /// The window start the store holds now.
    stored_window: Option<String>,
    /// What the store holds now as the run's progress ([`tcrelay_core::ports::Cursor::walk`]).
    stored_walk: Option<String>,
    /// The paging by offset to go on with at the first page: the one the last run stopped in,
    /// or this run's after pages too large to read.
    resume: Option<GoOn>,
    /// State keys handled in this run, so overlapping pages do not ask the dedupe store again.
    done: HashSet<String>,
    /// Objects asked per page: the configured limit, halved while pages are too large to read
    /// (kept for the next runs until one catches up: [`Self::marks`]), doubled back after
    /// pages are served again ([`Self::grow_page_limit`]).
    page_limit: u32,
    /// Pages moved past by time at `page_limit` since it last changed.
    pages_at_limit: u32,
    /// How many such pages make the run try pages twice as large.
    grow_after: u32,
    /// Whether `page_limit` was grown since it was last made smaller: a smaller page after a
    /// grown one doubles `grow_after`, so a Tradecloud that serves only small pages costs a
    /// failed page ever more seldom.
    grown: bool,
    /// Whether the run caught up: the next run asks pages of the configured size again.
    caught_up: bool,
    summary: &'a mut StreamSummary,
    /// After a move by time: what the next page's `total` must count (see [`Moved`]); kept
    /// across smaller pages after one too large to read.
    moved: Option<Moved>,
    /// The position that move went to, stored once the next page's `total` allows it.
    unconfirmed: Option<(String, DateTime<Utc>)>,
    /// The newest `lastUpdatedAt` of any object this run fetched (see [`Walk::before`]).
    seen_newest: Option<(String, DateTime<Utc>)>,
    /// Where the run started (`pos` and its instant), for the walk after an unsorted page.
    start: (String, DateTime<Utc>),
    /// Whether the run met an unsorted page: from then on it trusts no page's order, as a page
    /// that looks sorted may be so by chance, and paging by time over an unsorted set skips
    /// objects. Kept for the whole run (smaller pages after one too large to read included),
    /// and for later runs with every checkpoint ([`Self::at_rest`]).
    distrust: bool,
    /// The time left before the deadline when the page in hand was about to be fetched, and
    /// when that was: what is left now follows without asking the deadline again. `None`
    /// without a deadline.
    page_began: Option<(Duration, Instant)>,
    /// The longest a page's sends took in this run (the queue's and S3's calls, the claims'
    /// completion): a queue slow now is slow for the next page too.
    slowest_send: Duration,
    /// The longest one chunk of a page's sends ([`SEND_CHUNK`]) took in this run: what the
    /// next chunk is given at least ([`StreamRun::time_for_a_chunk`]).
    slowest_chunk: Duration,
}

/// Paging by offset a run goes on with at its first page.
enum GoOn {
    /// A walk of the result set.
    Walk(Walk),
    /// Paging inside one timestamp.
    Tie(Tie),
}

/// A move of the position by time past a full page that looked sorted, and what the next
/// page's `total` must count if the result set really is sorted by time.
#[derive(Debug, Clone)]
struct Moved {
    /// The page's `total`, less its objects the next request leaves out (those at or before
    /// the new position; before it, for an inclusive endpoint). In a result set sorted by
    /// time every match the move leaves out was on that page, and a change or a new object
    /// only adds matches: a smaller `total` next means the move passed objects the page never
    /// showed, a page sorted by chance in an unsorted set.
    expected_total: u64,
    /// The position the move went from, and the page's objects the next request leaves out,
    /// with pages small enough for the check of [`StreamRun::old_total_shows_a_skip`]. A new
    /// object, or any object changing, between the page and the next one keeps the next
    /// `total` up over a skip; asked again right after that next page, the old position's
    /// `total` less the next page's counts the objects now between the two positions (and
    /// what was added in between, which only raises it): more than the page showed there
    /// means the move passed objects it never saw.
    from: Option<Origin>,
}

impl Moved {
    /// The objects of `items` (those it placed) the request after a move to `to_at` leaves out.
    fn left_out(items: &[Polled], to_at: DateTime<Utc>, inclusive: bool) -> Vec<&Polled> {
        items
            .iter()
            .filter(|i| {
                if inclusive {
                    i.at < to_at
                } else {
                    i.at <= to_at
                }
            })
            .collect()
    }

    /// How many of a page's `unplaceable` items the same request leaves out: those that lie
    /// before an item of `passed` (what [`Self::left_out`] found). The move is made on a page
    /// in time order, where Tradecloud's own time for such an item (which it filters by) is no
    /// later than that of an item after it, so it is left out too; one after every item left
    /// out may be either, and counts as still matching: a shortfall it explains reads as a
    /// skip, and the run walks (the safe side). Counted as matching, every such item read as a
    /// skip, and one odd item sent the stream to walk its result sets for good.
    fn odd_left_out(unplaceable: &[Polled], passed: &[&Polled]) -> u64 {
        let last_left = passed.iter().map(|i| i.index).max();
        unplaceable
            .iter()
            .filter(|u| last_left.is_some_and(|last| u.index < last))
            .count() as u64
    }

    /// Whether the next page's `total` shows the move passed objects it never saw; logged.
    fn shows_a_skip(self, total: Option<u64>, stream: PollStream, after: &str) -> bool {
        let Some(total) = total else {
            return false;
        };
        let skipped = total < self.expected_total;
        if skipped {
            tracing::warn!(
                stream = stream.as_str(),
                after,
                total,
                expected_at_least = self.expected_total,
                "the matches after a move by time are fewer than the pages before it left: the \
                 pages were sorted by chance; walking the result set from where the run started"
            );
        }
        skipped
    }
}

/// The kinds of [`Deviations`].
#[derive(Debug, Clone, Copy)]
enum Deviation {
    Unsorted,
    Inclusive,
    Zoneless,
    Short,
    Unplaceable,
}

/// Of the items the paging leaves out, those relayed: an item that is no object carries no
/// order or shipment (nothing to relay; an envelope's payload is an object), and is only
/// counted and logged ([`Deviation::Unplaceable`]).
fn relayable(unplaceable: &[Polled]) -> impl Iterator<Item = &Polled> {
    unplaceable.iter().filter(|i| i.object)
}

/// A page as the loop reads it.
struct Fetched {
    /// The items it can place in time and key by id and time, in page order: the ones the
    /// paging decides by.
    items: Vec<Polled>,
    /// The others ([`Polled::unplaceable`]), in page order: relayed ([`relayable`]), and left
    /// out of the paging as inclusive answers are.
    unplaceable: Vec<Polled>,
    /// How many items the page served, both kinds: whether it is full, or short of its
    /// `total`, is a matter of its size, not of what its items say.
    served: usize,
    /// Tradecloud's `total` of matches, if it gave one.
    total: Option<u64>,
}

impl Fetched {
    /// What of the page is relayed: the items it placed, then those it could not place but
    /// can send ([`relayable`]).
    fn relayed(&self) -> Vec<&Polled> {
        self.items
            .iter()
            .chain(relayable(&self.unplaceable))
            .collect()
    }
}

/// Whether a page of `served` objects at `offset`, asked with `limit`, is shorter than asked
/// while its `total` counts matches past it (a page cap, or no page at all while objects
/// match): not the end of the result set.
fn is_short(offset: u32, served: usize, limit: u32, total: Option<u64>) -> bool {
    served < limit as usize && total.is_some_and(|t| u64::from(offset) + (served as u64) < t)
}

/// Whether Tradecloud failed to serve a page in time: our client's timeout, or its gateway's
/// 504 (each after the client's retries).
fn is_too_slow(error: &ApiError) -> bool {
    matches!(
        error,
        ApiError::Timeout | ApiError::Upstream { status: 504 }
    )
}

fn is_sorted(items: &[Polled]) -> bool {
    items.windows(2).all(|w| w[0].at <= w[1].at)
}

/// How processing a page ends early.
enum Halt {
    Stop(StopReason),
    Fail(PollError),
    /// Tradecloud served fewer objects than asked for while its `total` counts more past
    /// them; `page_limit` is now the size it served, and the run asks that page again.
    Capped,
    /// Pages were served at a size smaller than the configured one; `page_limit` is now twice
    /// that, and the run goes on by time from where it got to.
    Grown,
}

impl From<PollError> for Halt {
    fn from(e: PollError) -> Self {
        Halt::Fail(e)
    }
}

impl StreamRun<'_> {
    async fn pages(&mut self) -> Result<StopReason, PollError> {
        loop {
            match self.page_loop().await {
                Ok(stop) => return Ok(stop),
                // A state in progress elsewhere, or the lease gone: the run stops part-way, and
                // keeps what it learned of the stream as at its deadline.
                Err(Halt::Stop(stop)) => {
                    self.keep_marks().await?;
                    return Ok(stop);
                }
                // A page of large orders (Tradecloud allows 500 lines each) can exceed what the
                // client reads; asking the same page again would fail for ever. Smaller pages
                // from where the run got to (its pages so far are relayed and checkpointed); the
                // run's start and its distrust of the order stay as they were.
                // Not below two: a page must overlap the next for the paging by time and by
                // offset to work; a page of two too large to read fails as it is.
                Err(Halt::Capped) => self.made_smaller(),
                // Larger pages from where the run got to, paging by time (no walk nor paging
                // inside a timestamp under way, whose offsets rest on the page size).
                Err(Halt::Grown) => {}
                // A page Tradecloud cannot serve in time (many large orders, a slow query) timed
                // out at the same size every run: the stream stalled there. Smaller pages, as
                // above (the margin before the deadline bounds the tries: each may take a
                // call's whole budget). A Tradecloud that is down times out at any size: the run
                // fails at pages of two, and the runs after it ask pages of two until one
                // catches up.
                Err(Halt::Fail(PollError::Api(ref error)))
                    if is_too_slow(error) && self.page_limit > 2 =>
                {
                    self.page_limit = (self.page_limit / 2).max(2);
                    self.made_smaller();
                    tracing::warn!(
                        stream = self.stream.as_str(),
                        after = self.pos,
                        page_limit = self.page_limit,
                        %error,
                        "Tradecloud did not serve a poll page in time; asking for smaller pages"
                    );
                }
                Err(Halt::Fail(PollError::Api(ApiError::TooLarge(reason))))
                    if self.page_limit > 2 =>
                {
                    self.page_limit = (self.page_limit / 2).max(2);
                    self.made_smaller();
                    tracing::warn!(
                        stream = self.stream.as_str(),
                        after = self.pos,
                        page_limit = self.page_limit,
                        reason = %tcrelay_core::logsafe::escape_control(&reason),
                        "a poll page was too large to read; asking for smaller pages"
                    );
                }
                // A failure stops the run part-way too: it keeps what it learned of the stream
                // (a run that found the answers unsorted and failed before any checkpoint since,
                // on the queue say, left the next to page by time again), unless the cursor store
                // or the lease failed it (the store would fail or refuse that too), and only
                // beside a stored cursor (a failed run writes none where there was none). A
                // failure to keep is logged: the run's own error is what it reports.
                Err(Halt::Fail(e)) => {
                    if !matches!(e, PollError::Cursor(_) | PollError::LostLease(_))
                        && self.summary.cursor_after.is_some()
                        && let Err(keep) = self.keep_marks().await
                    {
                        tracing::warn!(
                            stream = self.stream.as_str(),
                            error = %keep,
                            "the failed poll run could not keep what it learned of the stream \
                             (answers out of time order, a smaller page size) with the cursor"
                        );
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn page_loop(&mut self) -> Result<StopReason, Halt> {
        let limit = self.page_limit;
        let overlap = (limit / 10).max(1);
        let step = limit.saturating_sub(overlap).max(1);
        let inclusive = self.config.mode.is_inclusive();
        let mut walk: Option<Walk> = None;
        let mut tie: Option<Tie> = None;
        let mut offset = match self.resume.take() {
            Some(GoOn::Walk(mut w)) => {
                let offset = w.go_on(step);
                walk = Some(w);
                offset
            }
            Some(GoOn::Tie(mut t)) => {
                let offset = t.go_on(step);
                tie = Some(t);
                offset
            }
            None => 0,
        };
        let mut restarts = 0u32;
        // The bound is the run's, over smaller pages after one too large to read too.
        while self.summary.pages < self.config.max_pages {
            if let Some(stop) = self.out_of_time().await? {
                self.keep_for_next_run(walk.as_ref(), tie.as_ref()).await?;
                return Ok(stop);
            }
            let seen_before = self.seen_newest.clone();
            let Fetched {
                items,
                unplaceable,
                served,
                total,
            } = match self.fetch(offset).await {
                Ok(page) => page,
                Err(e) => {
                    if matches!(&e, PollError::Api(ApiError::TooLarge(_)))
                        || matches!(&e, PollError::Api(error) if is_too_slow(error))
                    {
                        // Smaller pages go on with the walk, or inside the timestamp, from its
                        // last page, instead of from the start (progress continued from an
                        // earlier run would otherwise be lost with the first page too large to
                        // read).
                        self.resume = match (walk.take(), tie.take()) {
                            // A walk stored to begin too: it knows the newest time the run
                            // that stored it saw (its bound).
                            (Some(w), _) => Some(GoOn::Walk(w)),
                            (_, Some(t)) => Some(GoOn::Tie(t)),
                            _ => None,
                        };
                    }
                    return Err(e.into());
                }
            };
            if self.too_late_to_send() {
                // Stopped as if before the fetch: nothing of the page claimed, sent or noted.
                self.seen_newest = seen_before;
                self.keep_for_next_run(walk.as_ref(), tie.as_ref()).await?;
                return Ok(StopReason::Deadline);
            }
            // A short page is the end of the result set only when nothing matches past it: a
            // Tradecloud that serves fewer than asked (a page cap below our page size; its docs
            // name 100 the most, but promise no page filled) while its `total` counts more would
            // otherwise end a walk by offset with the objects past the page unseen, and move
            // the cursor past their times: lost for good in an unsorted set (and, paging by
            // time, one page per run). The run asks again in pages of the size served, from
            // where it got to, as after a page too large to read. Not below two (a page must
            // overlap the next).
            // Whatever a page served is relayed, whatever the paging then decides: a state
            // served once may be replaced before it is served again. The items that cannot be
            // placed too, though the paging leaves them out.
            let all: Vec<&Polled> = items.iter().chain(relayable(&unplaceable)).collect();
            let served_count = served;
            let served = u32::try_from(served).unwrap_or(u32::MAX);
            if served >= 2 && is_short(offset, served_count, limit, total) {
                // Counted and logged as a deviation by `fetch`.
                // Relayed all the same: a state served once may be replaced before it is
                // served again.
                self.process(&all).await?;
                self.page_limit = served;
                self.resume = match (walk.take(), tie.take()) {
                    (Some(w), _) => Some(GoOn::Walk(w)),
                    (_, Some(t)) => Some(GoOn::Tie(t)),
                    _ => None,
                };
                return Err(Halt::Capped);
            }
            // Full by what it served: a page of `limit` objects some of which cannot be placed
            // is no end of the result set.
            let full = served_count >= limit as usize;
            if self.settle_move(total, &items).await? {
                let first = !self.distrust;
                self.distrust = true;
                if first && self.pos_at > self.start.1 {
                    // The run paged by time so far, trusting pages that looked sorted. In an
                    // unsorted result set such a page may be sorted by chance (a run of objects
                    // in index order), and moving past its times skipped whatever lies between
                    // them elsewhere in the set. Walk again from where the run started; the
                    // dedupe absorbs what was relayed already. The cursor goes back first, so a
                    // run that stops before that walk ends leaves no skip behind.
                    self.rewind().await?;
                    self.process(&all).await?;
                    (self.pos, self.pos_at) = self.start.clone();
                    tie = None;
                    let w = self.new_walk();
                    // Stored before its first page: a run with no page left (its bound, its
                    // deadline) would otherwise leave the next to page by time into the same
                    // finding, and none would ever walk.
                    self.keep_walk(&w).await?;
                    walk = Some(w);
                    offset = 0;
                    continue;
                }
                if walk.is_none() {
                    tie = None;
                    let w = self.new_walk();
                    if offset != 0 {
                        // Mid-way through a walk inside one timestamp: start over unsorted.
                        self.process(&all).await?;
                        // Stored to begin (in place of paging inside the timestamp that a
                        // run may have stored): the next run walks instead of finding the same.
                        self.keep_walk(&w).await?;
                        walk = Some(w);
                        offset = 0;
                        continue;
                    }
                    walk = Some(w);
                }
            } else if self.distrust && walk.is_none() && tie.is_none() {
                walk = Some(self.new_walk());
            }

            if let Some(w) = walk.as_mut() {
                if !w.continues(&items, offset) {
                    if let Some(next) = w.look_further(offset, full, step) {
                        // A continued walk looking for its place (`walk::Finding`).
                        self.process(&all).await?;
                        offset = next;
                        continue;
                    }
                    // Objects left earlier positions and the rest shifted past our overlap.
                    restarts += 1;
                    if restarts > MAX_TIE_RESTARTS {
                        // What it served is relayed all the same: it may change before the
                        // next run asks again.
                        self.process(&all).await?;
                        return Err(PollError::WalkUnstable {
                            after: self.pos.clone(),
                        }
                        .into());
                    }
                    tracing::warn!(
                        stream = self.stream.as_str(),
                        after = self.pos,
                        offset,
                        restarts,
                        "objects moved while walking the result by offset; starting the walk over"
                    );
                    self.process(&all).await?;
                    *w = self.new_walk();
                    // Stored as started over: a run whose pages ran out here (one that spent
                    // them looking for a continued walk's place) leaves the next to begin at
                    // offset 0, not to look again.
                    self.keep_walk(w).await?;
                    offset = 0;
                    continue;
                }
                self.process(&all).await?;
                w.note(&items, offset, self.pos_at);
                if full {
                    self.keep_walk(w).await?;
                    offset += step;
                    continue;
                }
                // The end of the result set: everything after `pos` was seen.
                let done = walk.take().unwrap_or_default();
                offset = 0;
                restarts = 0;
                let (to, to_at) = match done.bound(self.pos_at) {
                    Bound::To(to, to_at) => (to, to_at),
                    Bound::Again => {
                        // Objects after `pos`, none of a time known before the walk began: the
                        // next walk knows them, so it moves.
                        walk = Some(self.walk_again().await?);
                        continue;
                    }
                    Bound::Nothing => return Ok(StopReason::CaughtUp),
                };
                // Only a walk of one page saw every object of its window: over several pages, an
                // object that changed during the walk may have moved to an offset already
                // passed, its earlier lines not seen; a walk from the bound follows (usually one
                // page) and catches up, so the window start stays until then. A walk whose
                // bound the cursor holds already (the walk from the bound, or a run's walk from
                // the lookback before its cursor) that saw nothing newer catches up however
                // many pages it took: every object up to the bound was seen by then, and
                // what changed since has a later time, for the next run. Walking again would
                // take the same pages every time, when as many objects as a page share the
                // bound's millisecond, until the page bound.
                // Also for a walk continued from an earlier run, though what changed between the
                // runs may lie at offsets passed before this run: such a change has a time after
                // the bound (the walk began before it), so the next run, from the lookback before
                // the bound, asks for it. Walking again here could not end either when the walk
                // takes more pages than a run may fetch.
                let held = self.committed_at.is_some_and(|c| to_at <= c);
                let caught_up = (done.pages <= 1 || held) && done.saw_nothing_after(to_at);
                self.advance(to, to_at, caught_up).await?;
                if caught_up {
                    return Ok(StopReason::CaughtUp);
                }
                // The next walk asks from the lookback before the bound, as the next run would:
                // an object that changed during this walk within the bound's own millisecond
                // (or that Tradecloud committed late) is not after the bound, and walking on
                // from the bound itself would pass it for good (the cursor moves on past it).
                self.look_back();
                if self.distrust || held {
                    // A walk that did not move the cursor is followed by one that must, as is
                    // one of a run that trusts no order: begun now and stored.
                    walk = Some(self.walk_again().await?);
                }
                continue;
            }

            if let Some(t) = tie.as_mut() {
                // The page after one that seemed to end the timestamp (below), begun by the
                // object after it that page ended with: nothing of the timestamp on it, in
                // time order, and the end stands. Begun by another (objects shifted, or a page
                // size of its own), it is checked as any page inside the timestamp.
                let ended = t.ending.take().is_some_and(|(id, at)| {
                    items.first().is_some_and(|i| i.id == id && i.at == at)
                        && items.iter().all(|i| i.at > t.at)
                });
                if !ended && !t.overlaps(&items, offset) {
                    if let Some(next) = t.look_further() {
                        // Paging continued from an earlier run looking for its place
                        // (`tie::Look`).
                        self.process(&all).await?;
                        offset = next;
                        continue;
                    }
                    // Objects left this timestamp and the rest shifted back past our overlap,
                    // or one joined it at an offset passed and the rest shifted forward.
                    restarts += 1;
                    if restarts > MAX_TIE_RESTARTS {
                        self.process(&all).await?;
                        return Err(PollError::TieUnstable {
                            timestamp: t.last_updated_at.clone(),
                        }
                        .into());
                    }
                    tracing::warn!(
                        stream = self.stream.as_str(),
                        timestamp = t.last_updated_at,
                        offset,
                        restarts,
                        "objects moved while paging inside one timestamp; starting that timestamp over"
                    );
                    self.process(&all).await?;
                    // What a run stored of it no longer finds its place: a run with no page
                    // left would leave the next to look for it again, and fail the same way.
                    self.forget_walk().await?;
                    tie = None;
                    offset = 0;
                    continue;
                }
                // Relayed whole, as a page paged by time is: an object after the timestamp
                // served here may change before it is asked for again.
                self.process(&all).await?;
                let beyond = if ended {
                    items.first()
                } else {
                    t.note(&items, offset);
                    items.iter().find(|i| i.at > t.at)
                };
                if beyond.is_none() && full {
                    self.keep_tie(t).await?;
                    offset += step;
                    continue;
                }
                if let Some(next) = items.get(step as usize).filter(|_| {
                    !ended && full && items[..step as usize].iter().all(|i| i.at == t.at)
                }) {
                    // The page's objects after the timestamp all lie where the next page would
                    // begin (its last, with pages of up to ten): in an index order they may be
                    // objects of the timestamp that changed while the run paged it, with more
                    // of the timestamp past them; counted as seen, and their change keeping the
                    // `total` up, they hid those from the check after the move (the randomized
                    // search's seeds 59501, pages of two, and 239167, of four). The next page
                    // shows it: one with an object of the timestamp after them is not in time
                    // order (the run walks the set), one of later objects only ends the
                    // timestamp. One request more for such an end of a timestamp paged inside
                    // (a tenth of them with pages of 100).
                    // Stored so: a run whose pages end here leaves the next to ask that page.
                    t.ending = Some((next.id.clone(), next.at));
                    self.keep_tie(t).await?;
                    offset += step;
                    continue;
                }
                // Every object of the timestamp is relayed.
                let (to, to_at) = match (inclusive, beyond) {
                    (true, Some(next)) => (next.last_updated_at.clone(), next.at),
                    _ => (t.last_updated_at.clone(), t.at),
                };
                if beyond.is_some() {
                    // The move leaves out the timestamp's objects, on this page and the pages
                    // before it: in an unsorted set (an index order with a bulk change in it)
                    // objects of other times may lie past this page, and the next page's
                    // `total` shows whether the move passed any ([`Moved`]).
                    self.moved = self.check_totals(
                        total,
                        t.counted(),
                        t.seen_ids().map(|id| (id.to_owned(), t.at)),
                    );
                    if inclusive
                        && let Some(Moved {
                            from: Some(from), ..
                        }) = self.moved.as_mut()
                    {
                        // The search endpoints move to the first object after the timestamp,
                        // past whatever lies between the two: nothing, in time order. The old
                        // position's check asks for exactly that range (the timestamp's own
                        // objects are for the page after its end, above): counting them by
                        // what this run saw of them missed those an earlier run saw change
                        // (the randomized search's seed 39179 under a page cap).
                        let after = t.at + chrono::Duration::milliseconds(1);
                        *from = Origin {
                            after: timestamp::format_exact(after),
                            at: after,
                            passed: 0,
                            seen: Vec::new(),
                        };
                    }
                }
                // The end of the result set, unless paging went on from an earlier run: what
                // changed between the runs may lie at offsets this run never asked for (in an
                // order that is not by time), so the run asks once more after the timestamp;
                // unless the page's `total` counts no more than the timestamp's objects seen
                // (nothing else matches). The search endpoints include the timestamp itself:
                // asking again would page it again, every run.
                let caught_up =
                    beyond.is_none() && (!t.continued() || total.is_some_and(|n| n <= t.counted()));
                tie = None;
                restarts = 0;
                offset = 0;
                self.advance(to, to_at, caught_up).await?;
                if caught_up {
                    return Ok(StopReason::CaughtUp);
                }
                continue;
            }

            let Some(last) = items.last() else {
                // Nothing served, or only items that cannot be placed: those are relayed, and
                // the position stays (they name no time to move to).
                self.process(&all).await?;
                return Ok(StopReason::CaughtUp);
            };
            if !full {
                self.process(&all).await?;
                self.advance(last.last_updated_at.clone(), last.at, true)
                    .await?;
                return Ok(StopReason::CaughtUp);
            }
            // Sorted: items at or before `pos` (an inclusive answer) come first. They are
            // relayed with the rest but cannot move the position.
            let stale = if inclusive {
                0
            } else {
                items.partition_point(|i| i.at <= self.pos_at)
            };
            if items.get(stale).is_some_and(|first| first.at < last.at) {
                // Relayed whole: the last timestamp's objects come again on the next page, but
                // one that changes before then would never have its served state relayed.
                self.process(&all).await?;
                // Poll: up to the previous distinct timestamp; the last timestamp is asked
                // again. Search (inclusive): the last timestamp comes back first.
                let to = if inclusive {
                    last
                } else {
                    items
                        .iter()
                        .take_while(|i| i.at < last.at)
                        .last()
                        .unwrap_or(last)
                };
                let passed = Moved::left_out(&items, to.at, inclusive);
                self.moved = self.check_totals(
                    total,
                    passed.len() as u64 + Moved::odd_left_out(&unplaceable, &passed),
                    passed.iter().map(|i| (i.id.clone(), i.at)),
                );
                self.advance(to.last_updated_at.clone(), to.at, false)
                    .await?;
                if self.grow_page_limit() {
                    return Err(Halt::Grown);
                }
                continue;
            }
            if inclusive && self.pos_at < last.at {
                self.process(&all).await?;
                let passed = Moved::left_out(&items, last.at, inclusive);
                self.moved = self.check_totals(
                    total,
                    passed.len() as u64 + Moved::odd_left_out(&unplaceable, &passed),
                    passed.iter().map(|i| (i.id.clone(), i.at)),
                );
                self.advance(last.last_updated_at.clone(), last.at, false)
                    .await?;
                if self.grow_page_limit() {
                    return Err(Halt::Grown);
                }
                continue;
            }
            if stale > 0 {
                // A full page that time cannot move past (answers at `pos` fill it): walk the
                // result set by offset from here, this page its first (stored: a run that may
                // fetch one page would otherwise ask this page again every run).
                self.process(&all).await?;
                let mut w = self.new_walk();
                w.note(&items, 0, self.pos_at);
                self.keep_walk(&w).await?;
                walk = Some(w);
                offset = step;
                continue;
            }
            // A whole page of one timestamp: page by offset inside it.
            self.process(&all).await?;
            let t = Tie::begin(last, &items);
            // Stored from its first page on: a run that may fetch one page would otherwise
            // begin this timestamp again every run.
            self.keep_tie(&t).await?;
            tie = Some(t);
            offset = step;
        }
        self.check_last_move(offset).await?;
        self.keep_for_next_run(walk.as_ref(), tie.as_ref()).await?;
        Ok(StopReason::MaxPages)
    }

    /// What a run that stops part-way (its deadline, its page bound) keeps for the next, beside
    /// what its walk or paging inside a timestamp stored after each page: that it was still
    /// looking for its place ([`Self::stop_looking`]), or, paging by time, where it got to
    /// ([`Self::keep_position`]).
    async fn keep_for_next_run(
        &mut self,
        walk: Option<&Walk>,
        tie: Option<&Tie>,
    ) -> Result<(), PollError> {
        self.stop_looking(walk, tie).await?;
        if walk.is_none() && tie.is_none() {
            self.keep_position().await?;
        }
        self.keep_marks().await
    }

    /// A run that stops part-way (or fails, but for the cursor store or the lease) keeps what
    /// it learned of the stream ([`progress::Marks`]) with whatever the store holds:
    /// - the smaller page size after pages too large to read: a run whose time ends right
    ///   after halving (a deadline that leaves it one request) would otherwise leave the next
    ///   to ask the same page too large again, every run;
    /// - that the answers were found unsorted: a run that found it and stopped before its
    ///   first checkpoint since (a state in progress elsewhere on the page that showed it, the
    ///   cursor not yet moved) kept nothing, and the next run paged by time again, where a
    ///   change elsewhere can hide the same skip from the `total` check for good.
    ///
    /// Progress stored with the cursor keeps them too (every store writes the marks); this is
    /// for a run that stored none since it learned them. Not in a dry run, nor in a backfill
    /// (as [`Self::keep`]: it asks another result set, and on a stream it has not moved it
    /// would store its `from` as the window start, or as the cursor of a stream that had none),
    /// nor with the lease lost (the store would refuse it).
    async fn keep_marks(&mut self) -> Result<(), PollError> {
        let marks = self.marks();
        if marks.is_empty()
            || self.request.dry_run
            || self.request.from.is_some()
            || self.lease.is_some_and(HeldLease::lost)
        {
            return Ok(());
        }
        let value = self.kept_cursor();
        let text = self
            .stored_walk
            .as_deref()
            .and_then(|stored| {
                progress::with_marks(stored, &value, self.config.mode, &self.filters, marks)
            })
            .or_else(|| self.at_rest(&value));
        if text == self.stored_walk {
            return Ok(());
        }
        self.store_kept(&value, text.as_deref()).await
    }

    /// A run that stops while a continued walk looks for its place (`walk::Finding`) stores
    /// the walk as begun again: the next run would otherwise look at the same pages again (a
    /// stored page whose objects all changed is never found; a bound of one page never gets
    /// past the first look), every run. Paging continued inside a timestamp that is still
    /// looking (`tie::Look`) is forgotten for the same reason: the next run begins that
    /// timestamp again from the cursor. Only once a page was looked at: a run that stops before
    /// its first request leaves the stored progress as it is.
    async fn stop_looking(
        &mut self,
        walk: Option<&Walk>,
        tie: Option<&Tie>,
    ) -> Result<(), PollError> {
        if walk.is_some_and(Walk::is_looking) {
            let fresh = self.new_walk();
            self.keep_walk(&fresh).await?;
        }
        if tie.is_some_and(Tie::is_looking) {
            self.forget_walk().await?;
        }
        Ok(())
    }

    /// At the page bound, with a move by time not yet allowed by a page's `total`: one more
    /// request, for its `total`. Without it a run whose bound ends right after such a move (a
    /// bound of one page: every run) would never store one. Not when time is short. What it is
    /// served is relayed, like any page (an object served may change before it is asked for
    /// again); a failure to fetch it leaves the move unstored and the run as it was, as if the
    /// request had not been made.
    async fn check_last_move(&mut self, offset: u32) -> Result<(), Halt> {
        if self.unconfirmed.is_none() || self.out_of_time().await?.is_some() {
            return Ok(());
        }
        let seen_before = self.seen_newest.clone();
        let Fetched {
            items,
            unplaceable,
            total,
            ..
        } = match self.fetch(offset).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(
                    stream = self.stream.as_str(),
                    after = self.pos,
                    error = %error,
                    "the request for the total of the run's last move by time failed; the move \
                     is not stored, and the next run pages past it again"
                );
                return Ok(());
            }
        };
        if self.too_late_to_send() {
            // As a failed request: the move is not stored, and nothing of the page is sent.
            self.seen_newest = seen_before;
            return Ok(());
        }
        let unsorted = match self.settle_move(total, &items).await {
            Ok(unsorted) => unsorted,
            // The request for the old position's `total` failed: the page is relayed, and the
            // move left unchecked, as if that request had not been made.
            Err(Halt::Fail(PollError::Api(error))) => {
                tracing::warn!(
                    stream = self.stream.as_str(),
                    after = self.pos,
                    error = %error,
                    "the request for the total before the run's last move by time failed; the \
                     move is not stored, and the next run checks it"
                );
                return Ok(());
            }
            Err(other) => return Err(other),
        };
        if unsorted {
            // As in the page loop, before the page is relayed: a run that stops on it (a state
            // in progress elsewhere) leaves the cursor where the run started, and keeps the
            // finding ([`Self::keep_marks`]).
            self.distrust = true;
            self.rewind().await?;
        }
        let all: Vec<&Polled> = items.iter().chain(relayable(&unplaceable)).collect();
        self.process(&all).await?;
        if unsorted {
            // With no page left to walk: the walk from the run's start is stored to begin, so
            // the next run walks instead of paging by time into this again.
            (self.pos, self.pos_at) = self.start.clone();
            let walk = self.new_walk();
            self.keep_walk(&walk).await?;
        }
        Ok(())
    }

    /// Settles the move by time waiting for this page's `total` ([`Moved`]) and tells whether
    /// the page shows the answers are not in time order: its `total` shows the move skipped
    /// objects (counted as an unsorted page), or the page itself is unsorted. Either way the
    /// move is dropped (the caller walks from the run's start, or stores a walk to begin):
    /// paging by time rests on that order, and a change elsewhere can keep the `total` up over
    /// a skip that the page's own order still shows (at the page bound only the `total` was
    /// looked at, and such a move was stored: a state lost). Otherwise the position it moved
    /// to is stored.
    async fn settle_move(&mut self, total: Option<u64>, items: &[Polled]) -> Result<bool, Halt> {
        let moved = self.moved.take();
        let mut skipped = moved
            .clone()
            .is_some_and(|m| m.shows_a_skip(total, self.stream, &self.pos));
        let unconfirmed = self.unconfirmed.take();
        let sorted = is_sorted(items);
        if !skipped
            && sorted
            && let (Some(moved), Some(total)) = (moved, total)
        {
            skipped = self
                .old_total_shows_a_skip(moved, total, items, &unconfirmed)
                .await?;
        }
        if skipped {
            self.deviate(Deviation::Unsorted, 1, items);
        } else if let Some((to, to_at)) = unconfirmed.filter(|_| sorted) {
            self.store_position(to, to_at, false).await?;
        }
        Ok(skipped || !sorted)
    }

    /// After the page at a move's position allowed it by its `total` ([`Moved`]): whether the
    /// position the move went from, asked again, counts more objects between the two
    /// positions than the move's page showed there. Asked only with pages of at most
    /// [`OLD_TOTAL_PAGES`] objects, where a page sorted by chance is common and a move passes
    /// one object at a time (one more request a move).
    ///
    /// The `total` check misses a skip when something is added meanwhile: a new object, or one
    /// changed from before the old position (each comes back as a newer match). Asked after
    /// the page at the new position, the old position's `total` less that page's counts the
    /// objects now between the two positions, plus what was added between the two requests.
    /// In a result set sorted by time every object between them was on the move's page (less
    /// those seen again since with a newer time: they left), so a larger count means either
    /// an addition or a skip. The new position is then asked again: the old position's
    /// `total` less that one counts the objects between them, less what was added in between.
    /// Still larger, it proves a skip (the answers are not in time order); an addition each
    /// time leaves it open, and after [`OLD_TOTAL_ROUNDS`] such rounds the move stands, as the
    /// `total` check let it (a sorted Tradecloud is never taken for an unsorted one).
    ///
    /// The pages are relayed in the order they were served, the page at the new position
    /// first; when they prove a skip, the cursor is written back first (as for any page that
    /// refutes a move). A failed request leaves the move as it was, unchecked (the run's
    /// error, or a page too large to read, decides what comes next); one answered too late
    /// to send is not relayed and leaves the move standing.
    async fn old_total_shows_a_skip(
        &mut self,
        moved: Moved,
        total: u64,
        items: &[Polled],
        unconfirmed: &Option<(String, DateTime<Utc>)>,
    ) -> Result<bool, Halt> {
        let Some(origin) = moved.from.clone() else {
            return Ok(false);
        };
        if self.page_limit > OLD_TOTAL_PAGES {
            return Ok(false);
        }
        let all: Vec<&Polled> = items.iter().collect();
        self.process(&all).await?;
        // Every object served since the move's page, to tell which of its objects changed.
        let mut since: Vec<Polled> = items.to_vec();
        let mut newer_total = total;
        let to = (self.pos.clone(), self.pos_at);
        for _ in 0..OLD_TOTAL_ROUNDS {
            let Some(extra) = self
                .fetch_aside(&origin.after, origin.at, &moved, unconfirmed)
                .await?
            else {
                return Ok(false);
            };
            let old_total = extra.total;
            since.extend(extra.items.iter().cloned());
            let passed = origin.still_between(&since);
            if old_total.is_none_or(|t| t.saturating_sub(newer_total) <= passed) {
                self.process(&extra.relayed()).await?;
                return Ok(false);
            }
            self.process(&extra.relayed()).await?;
            // More than the page showed: an addition between the two requests, or a skip.
            let Some(again) = self.fetch_aside(&to.0, to.1, &moved, unconfirmed).await? else {
                return Ok(false);
            };
            let again_total = again.total;
            since.extend(again.items.iter().cloned());
            let passed = origin.still_between(&since);
            let again = again.relayed();
            let (Some(old_total), Some(again_total)) = (old_total, again_total) else {
                self.process(&again).await?;
                return Ok(false);
            };
            let between = old_total.saturating_sub(again_total);
            if between > passed {
                tracing::warn!(
                    stream = self.stream.as_str(),
                    from = origin.after,
                    after = self.pos,
                    between,
                    seen = passed,
                    "after a move by time, more objects lie between its two positions than its \
                     page showed there: the pages were sorted by chance; walking the result set \
                     from where the run started"
                );
                self.rewind().await?;
                self.process(&again).await?;
                return Ok(true);
            }
            self.process(&again).await?;
            newer_total = again_total;
        }
        Ok(false)
    }

    /// The first page after `after` (not the run's position), for
    /// [`Self::old_total_shows_a_skip`]: `None` when it came too late to send (not relayed);
    /// a failure puts the move back as it was, unchecked.
    async fn fetch_aside(
        &mut self,
        after: &str,
        after_at: DateTime<Utc>,
        moved: &Moved,
        unconfirmed: &Option<(String, DateTime<Utc>)>,
    ) -> Result<Option<Fetched>, Halt> {
        let pos = std::mem::replace(&mut self.pos, after.to_owned());
        let pos_at = std::mem::replace(&mut self.pos_at, after_at);
        let seen_before = self.seen_newest.clone();
        let fetched = self.fetch(0).await;
        self.pos = pos;
        self.pos_at = pos_at;
        match fetched {
            Err(error) => {
                self.moved = Some(moved.clone());
                self.unconfirmed = unconfirmed.clone();
                Err(error.into())
            }
            Ok(_) if self.too_late_to_send() => {
                self.seen_newest = seen_before;
                Ok(None)
            }
            Ok(page) => Ok(Some(page)),
        }
    }

    /// Why the run must stop fetching, if it must: the lease about to run out unrenewed, or
    /// the deadline near; `Err` when the lease is lost (another run owns the stream now).
    ///
    /// What it reads of the deadline is kept as the time the next page begins with
    /// ([`Self::too_late_to_send`]).
    async fn out_of_time(&mut self) -> Result<Option<StopReason>, PollError> {
        if self.lease_gone().await? {
            return Ok(Some(StopReason::LeaseUnsure));
        }
        let margin = self.config.time_margin;
        let left = self.deadline.remaining();
        self.page_began = left.map(|left| (left, Instant::now()));
        Ok(left
            .is_some_and(|left| left < margin)
            .then_some(StopReason::Deadline))
    }

    /// Whether the page just fetched came too late to be sent before the deadline: less than
    /// [`send_reserve`] is left of the time the page began with. A Tradecloud call may take
    /// most of the margin (20 s of the default 30 s with its retries), and a page's claims,
    /// queue sends and checkpoint then need time too: a Lambda ended mid-send left the page's
    /// claims in progress, and the next run took them over and sent the page again (twice on a
    /// standard queue). Such a page is neither claimed nor sent; the next run fetches it again.
    ///
    /// Nor when less is left than the longest a page's sends took in this run: a queue slow
    /// this invocation (calls answering in seconds, up to the SDK's 8 s timeouts) needs more
    /// than the reserve, and the next page's sends would take as long.
    fn too_late_to_send(&self) -> bool {
        let needed = send_reserve(self.config).max(self.slowest_send);
        self.page_began
            .is_some_and(|(left, at)| left.saturating_sub(at.elapsed()) < needed)
    }

    /// Whether the lease may be gone: `Err` when it was found taken over (another run owns
    /// the stream now), `true` when less than one beat of it is left and renewing it now
    /// failed ([`HeldLease::confirm`]).
    async fn lease_gone(&self) -> Result<bool, PollError> {
        let Some(lease) = self.lease else {
            return Ok(false);
        };
        let sure = lease.confirm().await;
        if lease.taken_over() {
            return Err(PollError::LostLease(StoreError::Conflict(
                "the heartbeat found the lease taken over".into(),
            )));
        }
        Ok(!sure)
    }

    /// Moves the position back by the lookback (the cursor stays): the next request asks again
    /// for what changed in the position's last moment.
    fn look_back(&mut self) {
        self.pos_at -= lookback(self.config);
        self.pos = timestamp::format_exact(self.pos_at);
    }

    /// A walk starting now, after the objects this run fetched so far.
    fn new_walk(&self) -> Walk {
        Walk::after(self.seen_newest.clone())
    }

    /// What the next page's `total` must count after a move by time that leaves out
    /// `left_out` of the `total` matches before it, unless a status filter is set: an object
    /// that changes to a status outside it leaves the result set and lowers the count without
    /// any skip, and a shortfall would send a sorted backlog back to the run's start to be
    /// walked on every run.
    fn check_totals(
        &self,
        total: Option<u64>,
        left_out: u64,
        passed: impl Iterator<Item = (String, DateTime<Utc>)>,
    ) -> Option<Moved> {
        if !self.filters.is_empty() {
            return None;
        }
        let from = (self.page_limit <= OLD_TOTAL_PAGES).then(|| Origin {
            after: self.pos.clone(),
            at: self.pos_at,
            passed: left_out,
            seen: passed.collect(),
        });
        total.map(|total| Moved {
            expected_total: total.saturating_sub(left_out),
            from,
        })
    }

    /// The page at `offset`: its objects (those the paging decides by apart from those it
    /// cannot place), and the `total` of matches Tradecloud gave, if any.
    async fn fetch(&mut self, offset: u32) -> Result<Fetched, PollError> {
        let request = PageRequest {
            stream: self.stream,
            mode: self.config.mode,
            last_updated: self.pos.clone(),
            offset,
            limit: self.page_limit,
            filters: self.filters.clone(),
        };
        let page = self
            .ports
            .api
            .fetch_page(&request)
            .await
            .map_err(PollError::Api)?;
        self.summary.pages += 1;
        tracing::debug!(
            stream = self.stream.as_str(),
            after = self.pos,
            offset,
            items = page.items.len(),
            total = page.total,
            "poll page"
        );
        let served = page.items.len();
        let horizon = chrono::Utc::now() + chrono::Duration::days(1);
        let (items, unplaceable): (Vec<Polled>, Vec<Polled>) = page
            .items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Polled::read(self.stream, i, &v).map(|p| p.placed_before(horizon)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(PollError::Malformed)?
            .into_iter()
            .partition(|i| i.unplaceable.is_none());
        self.deviate(
            Deviation::Unplaceable,
            unplaceable.len() as u64,
            &unplaceable,
        );
        if let Some(newest) = items.iter().max_by_key(|i| i.at)
            && self
                .seen_newest
                .as_ref()
                .is_none_or(|(_, at)| newest.at > *at)
        {
            self.seen_newest = Some((newest.last_updated_at.clone(), newest.at));
        }
        let zoneless = items.iter().filter(|i| !i.zoned).count() as u64;
        self.deviate(Deviation::Zoneless, zoneless, &items);
        let unsorted = u64::from(!is_sorted(&items));
        self.deviate(Deviation::Unsorted, unsorted, &items);
        if !self.config.mode.is_inclusive() {
            let stale = items.iter().filter(|i| i.at <= self.pos_at).count() as u64;
            self.deviate(Deviation::Inclusive, stale, &items);
        }
        // Served fewer than asked while more match: the page loop asks again in pages of the
        // size served (a cap), or, with fewer than two, takes the page for the end (the cursor
        // does not move past what it did not see; the next run asks again).
        let short = is_short(offset, served, self.page_limit, page.total);
        self.deviate(Deviation::Short, u64::from(short), &items);
        Ok(Fetched {
            items,
            unplaceable,
            served,
            total: page.total,
        })
    }

    /// After a page moved past by time: whether to ask pages twice as large from now on (up to
    /// the configured size), `page_limit` then doubled. A run that halved its pages after
    /// timeouts or pages too large to read (an outage, a slow spell) asked pages of that size
    /// for the rest of the run, and the runs after it too until one caught up: the backlog an
    /// outage left, at pages of two, took a request per object or two, a hundred times the
    /// calls, and a backlog larger than a run's page bound took run after run. Only paging by
    /// time grows: a walk or paging inside a timestamp steps by its page size, and goes on
    /// at the size it began with.
    fn grow_page_limit(&mut self) -> bool {
        if self.page_limit >= self.config.page_limit {
            return false;
        }
        self.pages_at_limit += 1;
        if self.pages_at_limit < self.grow_after {
            return false;
        }
        self.page_limit = self
            .page_limit
            .saturating_mul(2)
            .min(self.config.page_limit);
        self.pages_at_limit = 0;
        self.grown = true;
        tracing::info!(
            stream = self.stream.as_str(),
            after = self.pos,
            page_limit = self.page_limit,
            "Tradecloud serves poll pages again; asking for larger pages"
        );
        true
    }

    /// After `page_limit` was made smaller: counting pages served starts again, and after a
    /// grown size the run waits twice as long before it grows again.
    fn made_smaller(&mut self) {
        self.pages_at_limit = 0;
        if std::mem::take(&mut self.grown) {
            self.grow_after = self.grow_after.saturating_mul(2);
        }
    }

    /// Counts a deviation from Tradecloud's documented behaviour; the first of each kind in a
    /// run is logged as a WARN, so operators see how their Tradecloud behaves without a line
    /// per page.
    fn deviate(&mut self, kind: Deviation, n: u64, items: &[Polled]) {
        if n == 0 {
            return;
        }
        let d = &mut self.summary.deviations;
        let counter = match kind {
            Deviation::Unsorted => &mut d.unsorted_pages,
            Deviation::Inclusive => &mut d.inclusive_items,
            Deviation::Zoneless => &mut d.zoneless_timestamps,
            Deviation::Short => &mut d.short_pages,
            Deviation::Unplaceable => &mut d.unplaceable_items,
        };
        let first = *counter == 0;
        *counter += n;
        if !first {
            return;
        }
        let stream = self.stream.as_str();
        match kind {
            Deviation::Unsorted => tracing::warn!(
                stream,
                after = self.pos,
                "Tradecloud returned a page not sorted by lastUpdatedAt; this run walks each \
                 result set by offset to its end (counted in deviations.unsortedPages)"
            ),
            Deviation::Inclusive => {
                let early = items.iter().find(|i| i.at <= self.pos_at);
                tracing::warn!(
                    stream,
                    after = self.pos,
                    id = early.map(|i| i.id.as_str()),
                    last_updated_at = early.map(|i| i.last_updated_at.as_str()),
                    "Tradecloud returned an object not after lastUpdatedAfter; relaying it \
                     through the dedupe (counted in deviations.inclusiveItems)"
                )
            }
            Deviation::Zoneless => {
                let example = items.iter().find(|i| !i.zoned);
                tracing::warn!(
                    stream,
                    id = example.map(|i| i.id.as_str()),
                    last_updated_at = example.map(|i| i.last_updated_at.as_str()),
                    "Tradecloud returned a lastUpdatedAt without a zone; reading it as UTC and \
                     forwarding it as sent (counted in deviations.zonelessTimestamps)"
                )
            }
            Deviation::Short => tracing::warn!(
                stream,
                after = self.pos,
                asked = self.page_limit,
                served = items.len(),
                "Tradecloud served fewer objects than asked while its total counts more; asking \
                 again in pages of the size served (with fewer than two, the next run asks \
                 again) (counted in deviations.shortPages)"
            ),
            Deviation::Unplaceable => tracing::warn!(
                stream,
                after = self.pos,
                item = items.first().and_then(|i| i.unplaceable.as_deref()),
                "Tradecloud returned an item without an id or without a lastUpdatedAt that \
                 reads as a date-time; relaying it as sent (keyed by its id and time as \
                 written, or by its content when it lacks either; an item that is no object \
                 has nothing to relay), leaving it out of the paging (counted in \
                 deviations.unplaceableItems)"
            ),
        }
    }

    /// Writes the cursor back to the value it had when the run started (the run's start, when
    /// there was no cursor yet), if the run checkpointed past it. Only the walk after the first unsorted
    /// page does so: the run paged by time up to here and may have passed objects elsewhere in
    /// the result set; a run that stopped during that walk (deadline, a state in progress
    /// elsewhere, an error, a kill) would leave them behind the stored cursor for good.
    async fn rewind(&mut self) -> Result<(), PollError> {
        let (to, to_at) = match &self.summary.cursor_before {
            Some(text) => (
                text.clone(),
                timestamp::parse(text).map_err(|_| PollError::BadCursor(text.clone()))?,
            ),
            None => self.start.clone(),
        };
        if self.committed_at.is_none_or(|c| c <= to_at) {
            return Ok(());
        }
        tracing::warn!(
            stream = self.stream.as_str(),
            from = self.summary.cursor_after.as_deref().unwrap_or("-"),
            to,
            "pages looked sorted, then one was not: the cursor goes back to where the run \
             started while it walks the result set from there"
        );
        // The run has not caught up: its window start stays with the cursor.
        self.commit(to, to_at, false).await
    }

    /// Moves the position to `to` and, when that is past the stored cursor, checkpoints it:
    /// with the run's window start, or without one when the run is `caught_up` with this
    /// (the next run's window starts at the cursor).
    async fn advance(
        &mut self,
        to: String,
        to_at: DateTime<Utc>,
        caught_up: bool,
    ) -> Result<(), PollError> {
        if to_at < self.pos_at {
            // Never back (an item before `pos` in an inclusive or unsorted answer).
            return Ok(());
        }
        let (to, to_at) = if timestamp::is_rfc3339(&to) {
            (to, to_at)
        } else {
            // A zone-less time, or one spelt as java.time writes it (`…Z[UTC]`, `+0200`), goes
            // back to Tradecloud and into the cursor in the documented form (UTC, `Z`): whether
            // its API reads the other spellings is not known. It keeps the instant's own
            // precision (`…00.000300` becomes `…00.000300Z`): cut to milliseconds it would lie
            // before the item, at `pos` itself when the item shares `pos`'s millisecond, and
            // the run would ask for the same page until its page bound, every run.
            let text = timestamp::format_exact(to_at);
            match timestamp::parse(&text) {
                // The same instant, or one between `pos` and the item: nothing skipped, and the
                // position moves.
                Ok(at) if at == to_at || (at < to_at && at > self.pos_at) => (text, at),
                // A rewrite that would not move past `pos` (or would pass the item): the time
                // as Tradecloud wrote it.
                _ => (to, to_at),
            }
        };
        self.pos = to.clone();
        self.pos_at = to_at;
        if self.moved.is_some() {
            // A move the next page's `total` checks ([`Moved`]) is stored once that page shows
            // it passed nothing: a run that stops before then (its page bound, its deadline, a
            // state in progress elsewhere, an error) leaves the cursor before the move, and
            // the next run pages past it again, checked.
            self.unconfirmed = Some((to, to_at));
            return Ok(());
        }
        self.store_position(to, to_at, caught_up).await
    }

    /// Checkpoints the position `to` when it is past the stored cursor (see [`Self::advance`]).
    async fn store_position(
        &mut self,
        to: String,
        to_at: DateTime<Utc>,
        caught_up: bool,
    ) -> Result<(), PollError> {
        if self.committed_at.is_some_and(|c| to_at <= c) {
            // The cursor is there already; a walk stored with it has ended all the same.
            return self.forget_walk().await;
        }
        self.commit(to, to_at, caught_up).await
    }

    /// Stores the progress of `walk` with the cursor after each full page it relayed, so that
    /// a run stopping inside a result set too large for one run (its page bound, its time, an
    /// error) leaves the next run to go on from its last page instead of from the set's start
    /// (the `walk` module). Only a walk from a position at or before the stored cursor
    /// ([`Self::pos_is_kept`]).
    async fn keep_walk(&mut self, walk: &Walk) -> Result<(), PollError> {
        if !self.pos_is_kept() {
            return Ok(());
        }
        self.keep(|of, after| Stored::Walk(walk.stored(of, after)))
            .await
    }

    /// A walk begun now, stored before its first page (or, under a position not kept, the walk
    /// stored before forgotten), so that a run with no page left leaves the next to walk
    /// knowing the times this run saw: its own first page may show none newer than the cursor
    /// (answers at the cursor's millisecond filling it), and every run would walk to the same
    /// bound again, one page a run never getting past it.
    async fn walk_again(&mut self) -> Result<Walk, PollError> {
        let w = self.new_walk();
        if self.pos_is_kept() {
            self.keep_walk(&w).await?;
        } else {
            self.forget_walk().await?;
        }
        Ok(w)
    }

    /// Whether progress under the position may be stored: it is at or before the stored
    /// cursor (the cursor written back before a walk from the run's start; on a stream with no
    /// cursor yet, the run's start, written for it), and it keeps the lookback
    /// ([`Self::keeps_the_lookback`]). Paging under a position after the cursor (a move not yet
    /// stored) would be gone on with by the next run past objects not relayed; a move is stored
    /// before paging under it goes on.
    fn pos_is_kept(&self) -> bool {
        let at_or_before_cursor = match self.committed_at {
            Some(committed) => self.pos_at <= committed,
            None => self.pos == self.start.0,
        };
        at_or_before_cursor && self.keeps_the_lookback(self.pos_at)
    }

    /// Stores the progress of paging inside a timestamp with the cursor after each full page it
    /// relayed, so that a timestamp holding more objects than one run may fetch is paged on
    /// by the next run instead of from its start again (the `tie` module); under a position
    /// at or before the stored cursor only ([`Self::pos_is_kept`]).
    async fn keep_tie(&mut self, tie: &Tie) -> Result<(), PollError> {
        if !self.pos_is_kept() {
            return Ok(());
        }
        self.keep(|of, after| Stored::Tie(tie.stored(of, after)))
            .await
    }

    /// A run that stops paging by time (its deadline, its page bound) stores where the next
    /// run goes on from (the `progress` module), when starting from the cursor would take it
    /// over the same pages again:
    /// - with a move by time the next page's `total` has not checked yet ([`Moved`]): the
    ///   next run asks that page first and stores the move if its `total` allows. Without it
    ///   a run whose deadline leaves it one page, every run, would never store a move;
    /// - with a position the run moved to but the cursor did not (it is at or before the
    ///   cursor: the run's pages were those of the lookback before the cursor, a timestamp
    ///   filling pages there, say): the next run would spend its pages there again, every run.
    ///
    /// Not when the lease is lost (the store would refuse it).
    async fn keep_position(&mut self) -> Result<(), PollError> {
        let (to, expected_total, from) = match (self.unconfirmed.clone(), self.moved.clone()) {
            (Some((to, to_at)), Some(moved)) if self.keeps_the_lookback(to_at) => (
                to,
                moved.expected_total,
                moved.from.as_ref().map(Origin::to_stored),
            ),
            (None, _) if self.pos_is_kept() && self.pos_at > self.start.1 => {
                // Everything up to the position is relayed: no count to check.
                (self.pos.clone(), 0, None)
            }
            _ => return Ok(()),
        };
        if self.lease.is_some_and(HeldLease::lost) {
            return Ok(());
        }
        self.keep(|of, _| Stored::Move(StoredMove::new(of, &to, expected_total, from)))
            .await
    }

    /// Whether the next run may go on from `at` instead of from the lookback before the cursor:
    /// the lookback asks again for what changed in the cursor's last moment after it was
    /// stored (an object landing on its millisecond, one Tradecloud committed late), once by a
    /// run that starts after the cursor was stored. So progress is kept only by a run that did
    /// not move the cursor (it started from that lookback itself), or under a position at or
    /// before the lookback of the cursor it moved to. A run that moved the cursor and stopped
    /// part-way leaves the next to start from the lookback, as every run did before progress
    /// was kept; the run after that goes on from what the next one stores.
    fn keeps_the_lookback(&self, at: DateTime<Utc>) -> bool {
        let base = self
            .summary
            .cursor_before
            .as_deref()
            .unwrap_or(&self.start.0);
        let unmoved = self
            .summary
            .cursor_after
            .as_deref()
            .is_none_or(|value| value == base);
        unmoved
            || self
                .committed_at
                .is_some_and(|c| at <= c - lookback(self.config))
    }

    /// Stores the progress `stored` builds (given what it belongs to and the position asked
    /// from) beside the cursor the store holds (the run's start on a stream that had none),
    /// with the run's window start. Not in a dry run or a backfill (another result set).
    async fn keep(
        &mut self,
        stored: impl FnOnce(Belongs, &str) -> Stored,
    ) -> Result<(), PollError> {
        if self.request.dry_run || self.request.from.is_some() {
            return Ok(());
        }
        let value = self.kept_cursor();
        let of = Belongs::new(&value, self.config.mode, &self.filters, self.marks());
        let text = stored(of, &self.pos).to_text();
        self.store_kept(&value, Some(&text)).await
    }

    /// The cursor value kept progress is stored with: the one the store holds, or the run's
    /// start on a stream that had none.
    fn kept_cursor(&self) -> String {
        self.summary
            .cursor_after
            .clone()
            .unwrap_or_else(|| self.start.0.clone())
    }

    /// Stores `text` as the progress beside the cursor `value` ([`Self::kept_cursor`]), with
    /// the run's window start.
    async fn store_kept(&mut self, value: &str, text: Option<&str>) -> Result<(), PollError> {
        let window = self.window_start.clone();
        self.checkpoint(value, Some(&window), text).await?;
        if self.committed_at.is_none() {
            self.committed_at = Some(self.start.1);
        }
        Ok(())
    }

    /// Clears a walk's progress the store still holds once that walk has ended, so no run
    /// goes on with it: the cursor stays, with the window start (the run has not caught up
    /// yet; if it has, [`Self::close_window`] follows). Not in a dry run, nor in a backfill (as
    /// [`Self::keep`]): what the store holds there is the scheduled runs' progress in another
    /// result set, which the backfill neither went on with nor ended; clearing it (a backfill's
    /// move under the cursor) began their walk or paging inside a timestamp again.
    async fn forget_walk(&mut self) -> Result<(), PollError> {
        if self.request.dry_run || self.request.from.is_some() {
            return Ok(());
        }
        let Some(value) = self.summary.cursor_after.clone() else {
            return Ok(());
        };
        if self.stored_walk == self.at_rest(&value) {
            return Ok(());
        }
        let window = self.window_start.clone();
        self.checkpoint(&value, Some(&window), None).await
    }

    /// What the store keeps as progress beside the cursor `value` when there is none: what the
    /// run learned of the stream ([`Self::marks`]), if anything.
    fn at_rest(&self, value: &str) -> Option<String> {
        let marks = self.marks();
        (!marks.is_empty()).then(|| {
            Stored::Marks(Belongs::new(value, self.config.mode, &self.filters, marks)).to_text()
        })
    }

    /// What later runs go on with, stored with every checkpoint (the `progress` module):
    /// - that the answers were found unsorted, once they were, so later runs walk every result
    ///   set instead of paging by time: a page sorted by chance whose `total` a change
    ///   elsewhere keeps up hides a skip from the check ([`Moved`]); `cursor set` clears it;
    /// - the smaller page size after pages too large to read, until a run catches up (the
    ///   next run then asks pages of the configured size again).
    fn marks(&self) -> progress::Marks {
        progress::Marks {
            unsorted: self.distrust,
            page_limit: smaller_page_limit(self.page_limit, self.config.page_limit)
                .filter(|_| !self.caught_up),
        }
    }

    /// Stores `to` as the cursor (a dry run only notes it): with the run's window start, or
    /// without one when the run is `caught_up` with it.
    async fn commit(
        &mut self,
        to: String,
        to_at: DateTime<Utc>,
        caught_up: bool,
    ) -> Result<(), PollError> {
        if self.request.dry_run {
            self.summary.cursor_after = Some(to);
        } else {
            // Before the checkpoint, whose marks ([`Self::marks`]) then drop a kept smaller page
            // size: the next run asks pages of the configured size again.
            self.caught_up |= caught_up;
            let window = (!caught_up).then(|| self.window_start.clone());
            self.checkpoint(&to, window.as_deref(), None).await?;
        }
        self.committed_at = Some(to_at);
        Ok(())
    }

    /// Stores `value`, `window` and `walk` (no progress: [`Self::at_rest`]) as the cursor,
    /// conditional on the version and the lease.
    async fn checkpoint(
        &mut self,
        value: &str,
        window: Option<&str>,
        walk: Option<&str>,
    ) -> Result<(), PollError> {
        let rest;
        let walk = match walk {
            Some(text) => Some(text),
            None => {
                rest = self.at_rest(value);
                rest.as_deref()
            }
        };
        let stored = self
            .ports
            .cursors
            .checkpoint(
                self.stream.as_str(),
                &self.request.owner,
                self.version,
                value,
                window,
                walk,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => PollError::LostLease(e),
                other => PollError::Cursor(other),
            })?;
        self.version = stored.version;
        self.stored_window = stored.window_start;
        self.stored_walk = stored.walk;
        self.summary.cursor_after = stored.value;
        Ok(())
    }

    /// After the run caught up: clears a window start still stored (the run ended on a page
    /// that did not move the cursor, or inherited one and moved nothing), so the next run's
    /// window starts at the cursor, a walk's progress still stored, and a kept smaller page
    /// size (the next run asks pages of the configured size again). A failure only leaves the
    /// next run a wider window (more lines read as changed, more line times checked) and
    /// smaller pages, never a narrower window: logged, not failed.
    async fn close_window(&mut self) {
        if self.request.dry_run {
            return;
        }
        self.caught_up = true;
        let Some(value) = self.summary.cursor_after.clone() else {
            return;
        };
        if self.stored_window.is_none() && self.stored_walk == self.at_rest(&value) {
            return;
        }
        if let Err(e) = self.checkpoint(&value, None, None).await {
            tracing::warn!(
                stream = self.stream.as_str(),
                error = %e,
                "the poll run caught up but could not clear the cursor's window start; the \
                 next run reads changes since it"
            );
        }
    }

    /// The page's objects not handled earlier in this run, each with its state key and what it
    /// would send, in page order. An object repeated within the page is taken once.
    fn candidates<'p>(&self, items: &[&'p Polled]) -> Vec<Candidate<'p>> {
        let class = self.stream.kind().object_class();
        let mut seen = HashSet::with_capacity(items.len());
        items
            .iter()
            .filter_map(|item| {
                let key = item.state_key(class);
                if self.done.contains(&key) || !seen.insert(key.clone()) {
                    return None;
                }
                let prepared = self.prep.prepare(self.stream, item);
                Some(Candidate {
                    item,
                    key,
                    prepared,
                })
            })
            .collect()
    }

    /// Dedupes (one batch of claims for the page), enqueues (one batch, or chunks of one SQS
    /// batch under a deadline: [`Self::send_page`]) and completes (one batch); on any failure,
    /// or a send stopped for time, releases the claims of what was not enqueued.
    ///
    /// An order whose state a webhook event relayed (its state key completed, not as a full
    /// state) is a duplicate only when every change of its lines in the run's window reached
    /// the queue too: an order event carries only its own lines, so an earlier event of the
    /// order that the gateway dropped would otherwise never reach the ERP. Each such time is
    /// the state key an event at that time claimed; one still free (a second batch of claims)
    /// means no event relayed that change, and the order goes out as prepared under its own
    /// state key, those claims completed with it (the `missed` module).
    ///
    /// A state another channel is relaying right now (its key, or one of its missed changes'
    /// keys, in progress) is neither sent nor skipped: it may still fail. Nor are the states of
    /// its object after it in the page (page order), so one object's states never reach the
    /// queue out of order while the other channel delivers the earlier one. Every other state
    /// of the page is sent; the claims of what is held back (and their missed changes') are
    /// released, and the run ends [`StopReason::InProgressElsewhere`] at the first such state
    /// in page order. The cursor stays before the page, so the next run asks for it again; the
    /// states sent already are duplicates then, and one of them that changed meanwhile has had
    /// its served state sent all the same.
    async fn process(&mut self, items: &[&Polled]) -> Result<(), Halt> {
        let candidates = self.candidates(items);
        if self.request.dry_run {
            return self.plan(candidates).await;
        }
        // The lease again, not only before the fetch (which may take long): a run that lost it
        // sends nothing more, as the run that holds it now relays this page too, and the two
        // sending one page at once could put an object's states out of order. The cursor stays
        // before the page.
        if self.lease_gone().await? {
            return Err(Halt::Stop(StopReason::LeaseUnsure));
        }
        // Made by this run while it holds the lease: a page a killed run of the stream claimed
        // and never completed is taken over now, not once its claims expire.
        let by = self.lease.and_then(HeldLease::claimant);
        let named = by.is_some();
        let mut claims = Claims::new(Arc::clone(&self.ports.dedupe)).made_by(by);
        let keys: Vec<(&str, bool)> = candidates
            .iter()
            .filter(|c| c.relays())
            .map(|c| (c.key.as_str(), true))
            .collect();
        let outcomes = claims.claim_many(&keys).await;
        let mut missed = self
            .claim_missed_changes(&candidates, &outcomes, &mut claims)
            .await;
        // The lease was sure when the page began, not necessarily when its claims landed (a
        // slow claim call): a run whose lease may have run out meanwhile may have taken over
        // the claims of the run that took the lease. It sends none of them: it gives its claims
        // back and stops, unsure of its lease (or fails, the lease taken over), unless renewing
        // it now lands (no other run holds it then).
        if named {
            let gone = self.lease_gone().await;
            if !matches!(gone, Ok(false)) {
                claims.settle(false).await;
                gone?;
                return Err(Halt::Stop(StopReason::LeaseUnsure));
            }
        }
        // Slow claims (the dedupe store answering late) may have spent the time the sends
        // need: the claims go back and the page is left to the next run whole, as one fetched
        // too late ([`Self::too_late_to_send`]), rather than sent by a run Lambda may end
        // mid-send (its claims then left in progress, taken over and the page sent again).
        if self.too_late_to_send() {
            claims.settle(false).await;
            return Err(Halt::Stop(StopReason::Deadline));
        }
        // Whose each missed change's key is (the state key of the order it was claimed for),
        // so a state held back releases its missed changes' claims with its own.
        let by_event: Vec<bool> = outcomes
            .iter()
            .map(|outcome| matches!(outcome, Ok(Some(record)) if written_by_events(record)))
            .collect();
        let missed_of: HashMap<String, String> = self
            .orders_to_check(&candidates, &by_event)
            .into_iter()
            .flat_map(|order| {
                let keys: Vec<String> = order.to_claim().0.into_iter().map(str::to_owned).collect();
                keys.into_iter().map(move |key| (key, order.key.clone()))
            })
            .collect();
        let mut outcomes = outcomes.into_iter();
        let mut envelopes = Vec::with_capacity(outcomes.len());
        // Which envelope each held claim is for: the page's claims, then the missed changes'.
        let (mut owners, mut missed_owners) = (Vec::new(), Vec::new());
        // The envelopes sent because a change of the order reached no channel.
        let mut recovering = Vec::new();
        // Where the run stops: at the first state another channel holds in progress.
        let mut stop = None;
        // The objects with a state in progress elsewhere so far in the page, and the state keys
        // held back (those states and their objects' later ones).
        let (mut blocked, mut held_back) = (HashSet::new(), HashSet::new());
        for candidate in candidates {
            let Some((item, key, changed_lines, payload)) = self.admit(candidate) else {
                continue;
            };
            let Some(outcome) = outcomes.next() else {
                unreachable!("Claims::claim_many answers once per key");
            };
            if blocked.contains(item.id.as_str()) {
                // A later state of an object whose earlier state another channel is relaying.
                held_back.insert(key);
                continue;
            }
            let in_progress = match outcome {
                Ok(None) => {
                    owners.push(envelopes.len());
                    None
                }
                Ok(Some(record)) if record.state == RecordState::Completed => {
                    match missed.take(&key) {
                        Ok(Verdict::Relayed) => {
                            self.summary.duplicates += 1;
                            self.done.insert(key);
                            continue;
                        }
                        Ok(Verdict::Missed { claims }) => {
                            missed_owners.extend(std::iter::repeat_n(envelopes.len(), claims));
                            recovering.push((envelopes.len(), false));
                            None
                        }
                        Ok(Verdict::Unchecked) => {
                            missed_owners.push(envelopes.len());
                            recovering.push((envelopes.len(), true));
                            None
                        }
                        Err(Unsettled::InProgress(missed_key)) => Some(missed_key),
                        Err(Unsettled::Store(e)) => {
                            claims.settle(false).await;
                            return Err(PollError::Dedupe(e).into());
                        }
                    }
                }
                // Another channel (a webhook GET, an overlapping run that died) holds the
                // claim: it may still fail, so this state is neither sent nor skipped.
                Ok(Some(_)) => Some(key.clone()),
                Err(e) => {
                    claims.settle(false).await;
                    return Err(PollError::Dedupe(e).into());
                }
            };
            if let Some(in_progress) = in_progress {
                stop.get_or_insert(StopReason::InProgressElsewhere {
                    key: in_progress,
                    last_updated_at: item.last_updated_at.clone(),
                });
                blocked.insert(item.id.as_str());
                held_back.insert(key);
                continue;
            }
            envelopes.push(Envelope::of_polled(
                self.stream.kind(),
                item.state(),
                key,
                changed_lines,
                payload,
            ));
        }
        // The claims no envelope owns: those of the states held back and of their missed
        // changes. Released after the send, so the next run claims them again; none without a
        // stop. What stays is the page's claims of the envelopes, then their missed changes',
        // in the order `owners` names them.
        let hold: Vec<bool> = claims
            .keys()
            .map(|key| {
                held_back.contains(key)
                    || missed_of
                        .get(key)
                        .is_some_and(|owner| held_back.contains(owner))
            })
            .collect();
        let held_back = claims.split_off(|i| hold[i]);
        owners.append(&mut missed_owners);
        let sent = self
            .send_page(claims, envelopes, &owners, &recovering)
            .await;
        held_back.settle(false).await;
        sent?;
        stop.map_or(Ok(()), |stop| Err(Halt::Stop(stop)))
    }

    /// Enqueues a page's `envelopes`, completes the claims of what was sent and releases the
    /// others (`owners`: the envelope of each claim held), and counts what was sent;
    /// `recovering`: the envelopes sent because a change of the order reached no channel (with
    /// whether its line times went unchecked).
    ///
    /// Under a deadline the page goes in chunks of one SQS batch ([`SEND_CHUNK`]), each only
    /// while [`Self::time_for_a_chunk`] allows it: a queue that turns slow mid-page (on the
    /// run's first page, or after quick ones) outlasted the invocation with the page sent in
    /// one call, and the next run took the claims over and sent it again. A send stopped so
    /// stops the run [`StopReason::Deadline`] with the cursor before the page, as a page left
    /// whole: the next run fetches it again and finds what was sent relayed. Without a
    /// deadline nothing ends a run mid-send, and the page goes in one call (one commit of the
    /// local queue).
    async fn send_page(
        &mut self,
        claims: Claims,
        envelopes: Vec<Envelope>,
        owners: &[usize],
        recovering: &[(usize, bool)],
    ) -> Result<(), Halt> {
        if envelopes.is_empty() {
            // Every claim held here belongs to an envelope, so none is held.
            return Ok(());
        }
        // A failure to complete does not undo the enqueue: logged; the claim expires, and at
        // worst a later poll relays that state again. If even a release fails, the claim
        // expires and the next run relays the state then.
        let began = Instant::now();
        let chunk = if self.page_began.is_some() {
            SEND_CHUNK
        } else {
            usize::MAX
        };
        let (page_began, reserve) = (self.page_began, send_reserve(self.config));
        let slowest_chunk = &mut self.slowest_chunk;
        let (completed, sent) = claims
            .enqueue_in_chunks(
                self.ports.sink.as_ref(),
                &envelopes,
                owners,
                chunk,
                |took| {
                    *slowest_chunk = (*slowest_chunk).max(took);
                    Self::time_for_a_chunk(page_began, reserve, *slowest_chunk)
                },
            )
            .await;
        self.slowest_send = self.slowest_send.max(began.elapsed());
        let failed = sent.as_ref().err().map(Unsent::failed).unwrap_or_default();
        for (i, envelope) in envelopes.into_iter().enumerate() {
            if failed.contains(&i) {
                continue;
            }
            self.summary.enqueued += 1;
            if let Some(&(_, unchecked)) = recovering.iter().find(|(at, _)| *at == i) {
                self.summary.recovered += 1;
                log_recovered(&envelope, unchecked);
            }
            self.done.insert(envelope.dedupe_key);
        }
        self.done.extend(completed);
        match sent {
            Ok(()) => Ok(()),
            Err(Unsent::Queue(e)) => Err(PollError::Sink(e).into()),
            Err(stopped @ Unsent::Stopped { .. }) => {
                tracing::info!(
                    stream = self.stream.as_str(),
                    %stopped,
                    slowest_chunk_ms = u64::try_from(self.slowest_chunk.as_millis()).unwrap_or(u64::MAX),
                    "too little time left to send the rest of the page before the deadline; \
                     the next run sends it"
                );
                Err(Halt::Stop(StopReason::Deadline))
            }
        }
    }

    /// Whether the next chunk of a page's sends may begin: what is left of the time the page
    /// began with (`page_began`, read from the deadline before its fetch; a clock read here)
    /// holds the slowest chunk so far in this run and, after it, the send reserve (the claims'
    /// completion and the checkpoint, and a chunk slower than any before it). Sent with less,
    /// a chunk as slow as the last could end with no time to complete its claims, and Lambda
    /// would end the run with them in progress (the next run sends them again).
    fn time_for_a_chunk(
        page_began: Option<(Duration, Instant)>,
        reserve: Duration,
        slowest_chunk: Duration,
    ) -> bool {
        page_began
            .is_none_or(|(left, at)| left.saturating_sub(at.elapsed()) >= reserve + slowest_chunk)
    }

    /// Claims the missed changes ([`crate::missed`]) of each order of the page whose state key
    /// a webhook event completed (`outcomes`: one per candidate to relay).
    async fn claim_missed_changes(
        &self,
        candidates: &[Candidate<'_>],
        outcomes: &[Result<Option<DedupeRecord>, StoreError>],
        claims: &mut Claims,
    ) -> MissedChanges {
        let by_event: Vec<bool> = outcomes
            .iter()
            .map(|outcome| matches!(outcome, Ok(Some(record)) if written_by_events(record)))
            .collect();
        MissedChanges::claim(claims, self.orders_to_check(candidates, &by_event)).await
    }

    /// What to check of each order to relay (`candidates`, filtered ones skipped) whose state
    /// key only webhook events wrote (`by_event`, one per order to relay): the state keys of
    /// its changed lines' times. Only the newest state of an order in the page is checked: it
    /// carries every line in its latest time, so it covers an older state of the same page,
    /// whose keys this run relays itself (claiming them again would find this run's own claim
    /// in progress and stop the run).
    fn orders_to_check(&self, candidates: &[Candidate<'_>], by_event: &[bool]) -> Vec<OrderTimes> {
        let class = self.stream.kind().object_class();
        let relayed: Vec<&Candidate<'_>> = candidates.iter().filter(|c| c.relays()).collect();
        let in_page: HashSet<&str> = relayed.iter().map(|c| c.key.as_str()).collect();
        let mut newest: HashMap<&str, DateTime<Utc>> = HashMap::new();
        for c in &relayed {
            let at = newest.entry(c.item.id.as_str()).or_insert(c.item.at);
            *at = (*at).max(c.item.at);
        }
        relayed
            .iter()
            .zip(by_event)
            .filter(|(c, by_event)| **by_event && newest[c.item.id.as_str()] == c.item.at)
            .filter_map(|(c, _)| {
                let Prepared::Relay {
                    line_times,
                    untimed_change,
                    ..
                } = &c.prepared
                else {
                    return None;
                };
                let times = line_times
                    .iter()
                    .map(|at| state_key(class, &c.item.id, at))
                    .filter(|key| !in_page.contains(key.as_str()))
                    .collect();
                Some(OrderTimes {
                    key: c.key.clone(),
                    whole: whole_state_key(class, &c.item.id, &c.item.last_updated_at),
                    times,
                    untimed: *untimed_change,
                })
            })
            .collect()
    }

    /// Counts `candidate` as an object of the run; a filtered one is counted so and done
    /// (`None`), one to relay comes back in its parts: item, key, changed lines, payload.
    fn admit<'p>(
        &mut self,
        candidate: Candidate<'p>,
    ) -> Option<(&'p Polled, String, Option<Vec<String>>, Payload)> {
        self.summary.objects += 1;
        match candidate.prepared {
            Prepared::Relay {
                changed_lines,
                payload,
                ..
            } => Some((candidate.item, candidate.key, changed_lines, payload)),
            Prepared::Filtered => {
                self.summary.filtered += 1;
                self.done.insert(candidate.key);
                None
            }
        }
    }

    /// A dry run's page: reports what would be sent (a lookup per object) without claiming,
    /// sending or moving the cursor.
    async fn plan(&mut self, candidates: Vec<Candidate<'_>>) -> Result<(), Halt> {
        // As the run decides: each state key looked up, then for those only events wrote, the
        // keys the run would claim (a free one: the run would send the order).
        let mut records = Vec::new();
        for c in candidates.iter().filter(|c| c.relays()) {
            let record = self.ports.dedupe.lookup(&c.key).await;
            records.push(record.map_err(PollError::Dedupe)?);
        }
        let by_event: Vec<bool> = records
            .iter()
            .map(|r| r.as_ref().is_some_and(written_by_events))
            .collect();
        let mut recovers = HashSet::new();
        for order in self.orders_to_check(&candidates, &by_event) {
            for key in order.to_claim().0 {
                let found = self.ports.dedupe.lookup(key).await;
                if found.map_err(PollError::Dedupe)?.is_none() {
                    recovers.insert(order.key.clone());
                    break;
                }
            }
        }
        let mut records = records.into_iter();
        for candidate in candidates {
            let Some((item, key, changed_lines, _)) = self.admit(candidate) else {
                continue;
            };
            let relayed = records.next().flatten().is_some();
            if relayed && !recovers.contains(&key) {
                self.summary.duplicates += 1;
            } else {
                self.summary.enqueued += 1;
                self.summary.recovered += u64::from(relayed);
                if self.summary.planned.len() < MAX_PLANNED {
                    self.summary.planned.push(PlannedEnvelope {
                        id: item.id.clone(),
                        last_updated_at: item.last_updated_at.clone(),
                        dedupe_key: key.clone(),
                        changed_lines,
                    });
                }
            }
            self.done.insert(key);
        }
        Ok(())
    }
}

/// Whether a completed state key was written by webhook events only (not a full state).
fn written_by_events(record: &DedupeRecord) -> bool {
    record.state == RecordState::Completed && !record.full_state
}

/// The WARN of an order sent although a webhook event relayed its state.
fn log_recovered(envelope: &Envelope, unchecked: bool) {
    if unchecked {
        tracing::warn!(
            id = envelope.id,
            last_updated_at = envelope.last_updated_at,
            "a webhook event relayed this order's state, and its changed lines have more times \
             than the poll checks against the dedupe records, or one has no time: relayed the \
             order, once for this state"
        );
    } else {
        tracing::warn!(
            id = envelope.id,
            last_updated_at = envelope.last_updated_at,
            "a webhook event relayed this order's state, but no event claimed the time of an \
             earlier change of its lines (an event lost before the relay, left out by the \
             relay's event filter, or not sent by Tradecloud; or a state already sent whole \
             that a later event superseded): relayed the order"
        );
    }
}

/// One object of a page, ready for the dedupe claim.
struct Candidate<'p> {
    item: &'p Polled,
    key: String,
    prepared: Prepared,
}

impl Candidate<'_> {
    /// Whether it is to be relayed (not left out by the echo filter): it is claimed.
    fn relays(&self) -> bool {
        matches!(self.prepared, Prepared::Relay { .. })
    }
}
