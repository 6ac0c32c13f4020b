//! Counts of what the relay did, per channel, for the demo's progress lines and summary, the
//! tests, and `tcrelay serve --admin-listen`'s `/metrics` (Prometheus text). The webhook counts
//! come from a layer around the core's router that reads each answer (status, and the
//! [`Answered`] extension the core attaches), so the core needs no hook for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::Serialize;
use tcrelay_core::ports::CursorStore;
use tcrelay_core::{AnswerOutcome, Answered, TakeOverCount};
use tcrelay_poll::{PollStream, RunReport};

/// The ways in, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// Webhook POST with a JSON body.
    PostJson,
    /// Webhook POST with a tXML body.
    PostTxml,
    /// Webhook GET (id only; the object is fetched).
    Get,
    /// The poll loop.
    Poll,
}

impl Channel {
    /// Every channel, in table order.
    pub const ALL: [Channel; 4] = [
        Channel::PostJson,
        Channel::PostTxml,
        Channel::Get,
        Channel::Poll,
    ];

    /// The `channel` label of the metrics.
    pub fn label(self) -> &'static str {
        match self {
            Channel::PostJson => "post-json",
            Channel::PostTxml => "post-txml",
            Channel::Get => "get",
            Channel::Poll => "poll",
        }
    }

    /// Display name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::PostJson => "POST JSON",
            Channel::PostTxml => "POST tXML",
            Channel::Get => "GET",
            Channel::Poll => "poll",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counts of one channel.
#[derive(Debug, Default)]
struct ChannelCounters {
    received: AtomicU64,
    enqueued: AtomicU64,
    duplicates: AtomicU64,
    filtered: AtomicU64,
    refused: AtomicU64,
    unavailable: AtomicU64,
}

/// A snapshot of one channel's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChannelCounts {
    /// Requests answered (webhook) or object states looked at (poll).
    pub received: u64,
    /// Envelopes enqueued.
    pub enqueued: u64,
    /// Suppressed as duplicates.
    pub duplicates: u64,
    /// Left out by the event filter (poll: the echo filter).
    pub filtered: u64,
    /// Refused with 4xx (webhook only; quarantined or unauthenticated).
    pub refused: u64,
    /// Answered 5xx so Tradecloud retries (webhook), or failed runs (poll).
    pub unavailable: u64,
}

/// The labels of one labelled count: channel, kind, outcome.
type Labels = (&'static str, &'static str, &'static str);

/// The counts `/metrics` shows, by channel, kind and outcome.
#[derive(Debug, Default)]
struct Labelled {
    received: BTreeMap<Labels, u64>,
    enqueued: BTreeMap<Labels, u64>,
    quarantined: BTreeMap<Labels, u64>,
    /// Failed poll runs by stream.
    failed_runs: BTreeMap<&'static str, u64>,
    /// Orders the poll sent because no event claimed an earlier change of theirs, by stream.
    recovered: BTreeMap<&'static str, u64>,
    /// Tradecloud's answers that differ from its docs, by stream and kind (docs/polling.md).
    deviations: BTreeMap<(&'static str, &'static str), u64>,
}

/// Shared counters; cheap to clone behind an `Arc`.
#[derive(Debug, Default)]
pub struct Counters {
    channels: [ChannelCounters; 4],
    poll_runs: AtomicU64,
    poll_pages: AtomicU64,
    labelled: Mutex<Labelled>,
    take_overs: TakeOverCount,
    /// The streams the poll loop polls, for the series `/metrics` shows from the start.
    polled: Vec<PollStream>,
    /// Where a stream without a cursor starts (`TCRELAY_POLL_START`), read.
    poll_start: Option<chrono::DateTime<chrono::Utc>>,
}

impl Counters {
    /// Counters that also report the dedupe take-overs of `take_overs` (the count of the
    /// server's [`tcrelay_core::CountingTakeOvers`] store).
    pub fn with_take_overs(take_overs: TakeOverCount) -> Self {
        Counters {
            take_overs,
            ..Counters::default()
        }
    }

    /// These counters with the poll loop's `streams` and their `start` (`TCRELAY_POLL_START`),
    /// so `/metrics` reports on each stream from the first scrape: its failed runs (0 until
    /// one fails) and, before its first successful run saved a cursor, the age of `start`.
    /// Otherwise a stream that never polled successfully (a wrong password from the first
    /// day) would show nothing to alert on.
    pub fn polling(mut self, streams: &[PollStream], start: Option<&str>) -> Self {
        self.polled = streams.to_vec();
        self.poll_start = start.and_then(|s| tradecloud_model::timestamp::parse(s).ok());
        self
    }

    /// Dedupe take-overs since the start: each means the ERP may have a message twice.
    pub fn take_overs(&self) -> u64 {
        self.take_overs.total()
    }

    /// A snapshot of `channel`.
    pub fn channel(&self, channel: Channel) -> ChannelCounts {
        let c = &self.channels[channel.index()];
        ChannelCounts {
            received: c.received.load(Ordering::Relaxed),
            enqueued: c.enqueued.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            filtered: c.filtered.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            unavailable: c.unavailable.load(Ordering::Relaxed),
        }
    }

    /// The sum over every channel.
    pub fn total(&self) -> ChannelCounts {
        Channel::ALL
            .iter()
            .map(|&c| self.channel(c))
            .fold(ChannelCounts::default(), |a, b| ChannelCounts {
                received: a.received + b.received,
                enqueued: a.enqueued + b.enqueued,
                duplicates: a.duplicates + b.duplicates,
                filtered: a.filtered + b.filtered,
                refused: a.refused + b.refused,
                unavailable: a.unavailable + b.unavailable,
            })
    }

    /// Poll runs finished (failed ones included) and pages fetched.
    pub fn poll_runs(&self) -> (u64, u64) {
        (
            self.poll_runs.load(Ordering::Relaxed),
            self.poll_pages.load(Ordering::Relaxed),
        )
    }

    /// Counts a poll run that panicked (a bug): a run, and a failure of the poll channel.
    pub fn record_poll_panic(&self) {
        self.poll_runs.fetch_add(1, Ordering::Relaxed);
        self.channels[Channel::Poll.index()]
            .unavailable
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a poll run's report.
    pub fn record_poll(&self, report: &RunReport) {
        let c = &self.channels[Channel::Poll.index()];
        self.poll_runs.fetch_add(1, Ordering::Relaxed);
        for s in report.summaries() {
            self.poll_pages
                .fetch_add(u64::from(s.pages), Ordering::Relaxed);
            c.received.fetch_add(s.objects, Ordering::Relaxed);
            c.enqueued.fetch_add(s.enqueued, Ordering::Relaxed);
            c.duplicates.fetch_add(s.duplicates, Ordering::Relaxed);
            c.filtered.fetch_add(s.filtered, Ordering::Relaxed);
        }
        let failed = report.results.iter().filter(|r| r.is_err()).count() as u64;
        c.unavailable.fetch_add(failed, Ordering::Relaxed);
        let mut labelled = self.labelled();
        for failure in report.results.iter().filter_map(|r| r.as_ref().err()) {
            *labelled
                .failed_runs
                .entry(failure.summary.stream)
                .or_default() += 1;
        }
        for s in report.summaries() {
            if s.recovered > 0 {
                *labelled.recovered.entry(s.stream).or_default() += s.recovered;
            }
            for (deviation, n) in s.deviations.counts() {
                if n > 0 {
                    *labelled
                        .deviations
                        .entry((s.stream, deviation))
                        .or_default() += n;
                }
            }
            let kind = stream_kind(s.stream);
            let seen = [
                ("enqueued", s.enqueued),
                ("duplicate", s.duplicates),
                ("filtered", s.filtered),
            ];
            let counted: u64 = seen.iter().map(|(_, n)| n).sum();
            // States looked at but neither relayed nor left out: the run stopped on them.
            let other = ("not-relayed", s.objects.saturating_sub(counted));
            for (outcome, n) in seen.into_iter().chain([other]) {
                if n > 0 {
                    *labelled
                        .received
                        .entry(("poll", kind, outcome))
                        .or_default() += n;
                }
            }
            if s.enqueued > 0 {
                *labelled
                    .enqueued
                    .entry(("poll", kind, "enqueued"))
                    .or_default() += s.enqueued;
            }
        }
    }

    fn labelled(&self) -> std::sync::MutexGuard<'_, Labelled> {
        // Only counts behind the lock: a panic elsewhere cannot leave them inconsistent.
        self.labelled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one webhook answer under its labels.
    fn record_labelled(&self, channel: Channel, kind: &'static str, answered: Answered) {
        let labels = (channel.label(), kind, answered.outcome.as_str());
        let mut labelled = self.labelled();
        *labelled.received.entry(labels).or_default() += 1;
        if answered.outcome == AnswerOutcome::Enqueued {
            *labelled.enqueued.entry(labels).or_default() += 1;
        }
        if answered.quarantined {
            *labelled.quarantined.entry(labels).or_default() += 1;
        }
    }

    /// Writes a counter labelled `stream`, every polled stream from the start (0 until it
    /// counts), so an alert on an increase has a series to watch; a stream no longer polled
    /// keeps its count.
    fn per_stream(
        &self,
        out: &mut String,
        name: &str,
        help: &str,
        counts: &BTreeMap<&'static str, u64>,
    ) {
        let mut all: BTreeMap<&'static str, u64> =
            self.polled.iter().map(|s| (s.as_str(), 0)).collect();
        all.extend(counts);
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (stream, n) in all {
            let _ = writeln!(out, "{name}{{stream=\"{stream}\"}} {n}");
        }
    }

    /// The counts in Prometheus' text format, the failed runs of each polled stream, and the
    /// age of each stream's poll cursor (seconds since the `lastUpdatedAt` the next run starts
    /// after) read from `cursors`; for a polled stream without a cursor yet, the age of
    /// `TCRELAY_POLL_START` (see [`Self::polling`]).
    pub async fn prometheus(&self, cursors: Option<&dyn CursorStore>) -> String {
        let mut out = String::new();
        {
            let labelled = self.labelled();
            let families = [
                (
                    "tcrelay_received_total",
                    "Webhook requests answered and polled object states looked at.",
                    &labelled.received,
                ),
                (
                    "tcrelay_enqueued_total",
                    "Envelopes put on the queue.",
                    &labelled.enqueued,
                ),
                (
                    "tcrelay_quarantined_total",
                    "Requests refused with 4xx and kept in the quarantine.",
                    &labelled.quarantined,
                ),
            ];
            for (name, help, counts) in families {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for ((channel, kind, outcome), n) in counts {
                    let _ = writeln!(
                        out,
                        "{name}{{channel=\"{channel}\",kind=\"{kind}\",outcome=\"{outcome}\"}} {n}"
                    );
                }
            }
        }
        let (runs, pages) = self.poll_runs();
        let _ = writeln!(
            out,
            "# HELP tcrelay_poll_runs_total Poll runs finished, failed ones included.\n\
             # TYPE tcrelay_poll_runs_total counter\ntcrelay_poll_runs_total {runs}\n\
             # HELP tcrelay_poll_pages_total Pages fetched by the poll loop.\n\
             # TYPE tcrelay_poll_pages_total counter\ntcrelay_poll_pages_total {pages}\n\
             # HELP tcrelay_dedupe_take_overs_total Messages sent under a dedupe claim that had expired and been taken over by another request: the ERP may have them twice.\n\
             # TYPE tcrelay_dedupe_take_overs_total counter\ntcrelay_dedupe_take_overs_total {}",
            self.take_overs()
        );
        {
            // The lock is not held past this block: the cursor reads below await.
            let labelled = self.labelled();
            self.per_stream(
                &mut out,
                "tcrelay_poll_failed_runs_total",
                "Poll runs of a stream that failed (the cursor stayed where it was).",
                &labelled.failed_runs,
            );
            self.per_stream(
                &mut out,
                "tcrelay_poll_recovered_states_total",
                "Orders the poll sent although a webhook event had relayed their state, because no event claimed an earlier change of theirs (an event lost before the relay, filtered, or switched off in Tradecloud).",
                &labelled.recovered,
            );
            let name = "tcrelay_poll_deviations_total";
            let _ = writeln!(
                out,
                "# HELP {name} Poll answers that differ from what Tradecloud's docs promise, by stream and kind (unsorted-page, inclusive-item, zoneless-timestamp, short-page, unplaceable-item; docs/polling.md): handled, counted so an operator sees how Tradecloud behaves.\n\
                 # TYPE {name} counter"
            );
            for ((stream, deviation), n) in &labelled.deviations {
                let _ = writeln!(
                    out,
                    "{name}{{stream=\"{stream}\",deviation=\"{deviation}\"}} {n}"
                );
            }
        }
        let Some(cursors) = cursors else {
            return out;
        };
        let _ = writeln!(
            out,
            "# HELP tcrelay_poll_cursor_age_seconds Seconds since the lastUpdatedAt a stream's next poll run starts after.\n\
             # TYPE tcrelay_poll_cursor_age_seconds gauge"
        );
        let now = chrono::Utc::now();
        for stream in PollStream::ALL {
            let value = match cursors.read(stream.as_str()).await {
                Ok(cursor) => cursor.and_then(|c| c.value),
                Err(error) => {
                    tracing::warn!(%error, stream = stream.as_str(), "cannot read the poll cursor for /metrics");
                    continue;
                }
            };
            let at = match value {
                Some(v) => tradecloud_model::timestamp::parse(&v).ok(),
                // No cursor yet: the stream's next run starts at TCRELAY_POLL_START, and it
                // ages as long as no run succeeds (a wrong password from the first day).
                None if self.polled.contains(&stream) => self.poll_start,
                None => None,
            };
            let Some(at) = at else {
                continue;
            };
            let age = (now - at).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(
                out,
                "tcrelay_poll_cursor_age_seconds{{stream=\"{}\"}} {age}",
                stream.as_str()
            );
        }
        out
    }

    fn record_answer(&self, channel: Channel, status: u16, outcome: AnswerOutcome) {
        let c = &self.channels[channel.index()];
        c.received.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            AnswerOutcome::Enqueued => &c.enqueued,
            AnswerOutcome::Duplicate => &c.duplicates,
            AnswerOutcome::Filtered => &c.filtered,
            _ if status >= 500 => &c.unavailable,
            _ if status >= 400 => &c.refused,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Wraps the webhook router with the counting layer.
pub fn counted(router: Router, counters: Arc<Counters>) -> Router {
    router.layer(middleware::from_fn(move |request: Request, next: Next| {
        let counters = Arc::clone(&counters);
        async move { count(counters, request, next).await }
    }))
}

/// The `kind` label of a webhook request, from its route.
fn route_kind(path: &str) -> &'static str {
    let rest = path.strip_prefix("/webhook").unwrap_or("");
    if rest.starts_with("/order-documents") {
        "order-documents"
    } else if rest.starts_with("/orders") {
        "order"
    } else if rest.starts_with("/shipments") {
        "shipment"
    } else if rest.is_empty() || rest == "/" {
        // POST /webhook: the body says which; the label does not read it.
        "any"
    } else {
        "unknown-route"
    }
}

/// The `kind` label of a poll stream.
fn stream_kind(stream: &str) -> &'static str {
    match PollStream::parse(stream) {
        Some(PollStream::Orders) => "order",
        Some(PollStream::SingleDeliveryOrders) => "single-delivery-order",
        Some(PollStream::Shipments) => "shipment",
        None => "unknown",
    }
}

async fn count(counters: Arc<Counters>, request: Request, next: Next) -> Response {
    let kind = route_kind(request.uri().path());
    let channel = if request.method() == http::Method::GET {
        Channel::Get
    } else {
        let xml = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("xml"));
        if xml {
            Channel::PostTxml
        } else {
            Channel::PostJson
        }
    };
    let response = next.run(request).await;
    let answered = response
        .extensions()
        .get::<Answered>()
        .copied()
        .unwrap_or_else(|| Answered::of_status(response.status()));
    counters.record_labelled(channel, kind, answered);
    counters.record_answer(channel, response.status().as_u16(), answered.outcome);
    response
}

#[cfg(test)]
mod tests {
    use tcrelay_core::CountingTakeOvers;
    use tcrelay_core::ports::DedupeStore;
    use tcrelay_core::testing::{MemoryDedupe, overtaken_claims};

    use super::*;

    #[tokio::test]
    async fn recovered_states_are_a_counter_per_polled_stream() {
        let counters =
            Counters::default().polling(&[PollStream::Orders, PollStream::Shipments], None);
        let series = "tcrelay_poll_recovered_states_total{stream=\"orders\"}";
        let text = counters.prometheus(None).await;
        assert!(text.contains(&format!("{series} 0\n")), "{text}");
        let mut summary = tcrelay_poll::StreamSummary::new(PollStream::Orders, false);
        summary.stop = Some(tcrelay_poll::StopReason::CaughtUp);
        (summary.pages, summary.objects, summary.enqueued) = (1, 4, 3);
        (summary.recovered, summary.duplicates, summary.duration_ms) = (2, 1, 1);
        counters.record_poll(&RunReport {
            results: vec![Ok(summary)],
        });
        let text = counters.prometheus(None).await;
        assert!(
            text.contains(&format!(
                "# TYPE tcrelay_poll_recovered_states_total counter\n{series} 2\n\
                 tcrelay_poll_recovered_states_total{{stream=\"shipments\"}} 0\n"
            )),
            "{text}"
        );
    }

    /// Each deviation a poll run counted (docs/polling.md) is a counter by stream and kind,
    /// summed over runs, as the poller Lambda's metrics count them.
    #[tokio::test]
    async fn poll_deviations_are_a_counter_per_stream_and_kind() {
        let counters = Counters::default().polling(&[PollStream::Orders], None);
        let run = |unsorted_pages, unplaceable_items| {
            let mut summary = tcrelay_poll::StreamSummary::new(PollStream::Orders, false);
            summary.stop = Some(tcrelay_poll::StopReason::CaughtUp);
            (summary.pages, summary.objects, summary.enqueued) = (1, 1, 1);
            summary.deviations.unsorted_pages = unsorted_pages;
            summary.deviations.unplaceable_items = unplaceable_items;
            RunReport {
                results: vec![Ok(summary)],
            }
        };
        counters.record_poll(&run(2, 0));
        counters.record_poll(&run(1, 3));
        let text = counters.prometheus(None).await;
        let name = "tcrelay_poll_deviations_total";
        assert!(text.contains(&format!("# TYPE {name} counter\n")), "{text}");
        assert!(
            text.contains(&format!(
                "{name}{{stream=\"orders\",deviation=\"unplaceable-item\"}} 3\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{name}{{stream=\"orders\",deviation=\"unsorted-page\"}} 3\n"
            )),
            "{text}"
        );
        assert!(
            !text.contains("zoneless-timestamp\"}"),
            "none counted: {text}"
        );
    }

    #[tokio::test]
    async fn take_overs_of_the_counting_store_are_a_prometheus_counter() {
        let memory = Arc::new(MemoryDedupe::default());
        let store = CountingTakeOvers::new(memory.clone());
        let counters = Counters::with_take_overs(store.count());
        let late = overtaken_claims(&store, &memory, &["a", "b"]).await;
        store.complete_many(&late).await;
        let text = counters.prometheus(None).await;
        assert!(
            text.contains(
                "# TYPE tcrelay_dedupe_take_overs_total counter\ntcrelay_dedupe_take_overs_total 2\n"
            ),
            "{text}"
        );
        assert_eq!(counters.take_overs(), 2);
    }
}
