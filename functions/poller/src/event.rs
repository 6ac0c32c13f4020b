//! The Lambda's input: an EventBridge scheduled event, or a manual invoke such as
//! `{"stream": "orders", "from": "2025-01-01T00:00:00.000Z"}` (backfill) or `{"dryRun": true}`.

use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

use tcrelay_core::TakeOverCount;
use tcrelay_core::config::TCRELAY_IN_PROGRESS_EXPIRY_SECONDS;
use tcrelay_poll::config::TCRELAY_POLL_TIME_MARGIN_SECONDS;
use tcrelay_poll::{
    Deadline, PollConfig, PollPorts, PollStream, RunReport, RunRequest, StopReason, run,
};
use tradecloud_model::timestamp;

use crate::metrics::stream_emf;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// The schedule fired: poll the configured streams from their cursors.
    Scheduled,
    /// An operator's invoke.
    Manual {
        /// Only this stream (default: the configured ones).
        stream: Option<PollStream>,
        /// Start here instead of the cursor (backfill); the cursor still never moves back.
        from: Option<String>,
        /// Report what would be sent, without claiming, sending or moving the cursor.
        dry_run: bool,
    },
}

impl Invocation {
    /// The run this invocation asks for, under lease owner `owner`.
    pub fn into_request(self, owner: &str) -> RunRequest {
        match self {
            Invocation::Scheduled => RunRequest::scheduled(owner),
            Invocation::Manual {
                stream,
                from,
                dry_run,
            } => RunRequest {
                streams: stream.into_iter().collect(),
                from,
                dry_run,
                owner: owner.to_owned(),
            },
        }
    }
}

/// An invocation payload we cannot act on. Refused before anything is read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Neither a scheduled event nor a manual request.
    #[error(
        "unsupported event: expected an EventBridge scheduled event or \
         {{\"stream\": \"orders\", \"from\": \"<timestamp>\", \"dryRun\": true}} ({0})"
    )]
    Unsupported(String),
    /// `stream` is not one of ours.
    #[error("unknown stream {0:?}; known: orders, single-delivery-orders, shipments")]
    UnknownStream(String),
    /// `stream` is one this function does not poll: a run would start a cursor nothing follows
    /// after it (and, on a stack without a login, fail as if Tradecloud refused it).
    #[error(
        "stream {stream:?} is not one this poller polls (TCRELAY_POLL_STREAMS: {configured}); \
         add it there to poll it"
    )]
    StreamNotConfigured {
        /// The stream asked for.
        stream: String,
        /// The configured ones, comma-separated (`none` when empty).
        configured: String,
    },
    /// `from` is not a timestamp.
    #[error(
        "\"from\" {0:?} is not an ISO 8601 date-time with offset, e.g. 2025-01-01T00:00:00.000Z"
    )]
    BadFrom(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ManualEvent {
    stream: Option<String>,
    from: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// Reads an invocation payload. Unknown fields in a manual invoke are refused: a misspelt
/// `dryRun` must not turn into a real run.
pub fn parse_event(payload: &Value) -> Result<Invocation, EventError> {
    if payload.get("detail-type").is_some()
        || payload.get("source").and_then(Value::as_str) == Some("aws.events")
    {
        // A manual field in a scheduled event (the console's sample edited by hand) must not
        // be ignored: `dryRun` would turn into a real run, `from` into a plain one.
        if let Some(field) = ["stream", "from", "dryRun"]
            .into_iter()
            .find(|field| payload.get(*field).is_some())
        {
            return Err(EventError::Unsupported(format!(
                "a scheduled event (it has `detail-type` or `source: aws.events`) with the \
                 manual field `{field}`: invoke with only {{\"stream\", \"from\", \"dryRun\"}}"
            )));
        }
        return Ok(Invocation::Scheduled);
    }
    if payload.is_null() {
        return Ok(Invocation::Scheduled);
    }
    let manual: ManualEvent = serde_json::from_value(payload.clone())
        .map_err(|e| EventError::Unsupported(e.to_string()))?;
    let stream = match manual
        .stream
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(name) => Some(
            PollStream::parse(name).ok_or_else(|| EventError::UnknownStream(name.to_owned()))?,
        ),
        None => None,
    };
    let from = match manual.from {
        Some(from) if timestamp::parse(&from).is_err() => return Err(EventError::BadFrom(from)),
        other => other,
    };
    Ok(Invocation::Manual {
        stream,
        from,
        dry_run: manual.dry_run,
    })
}

impl Invocation {
    /// Refuses a manual invoke naming a stream outside `configured`.
    pub fn check_streams(&self, configured: &[PollStream]) -> Result<(), EventError> {
        match self {
            Invocation::Manual {
                stream: Some(stream),
                ..
            } if !configured.contains(stream) => Err(EventError::StreamNotConfigured {
                stream: stream.as_str().to_owned(),
                configured: if configured.is_empty() {
                    "none".to_owned()
                } else {
                    configured
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                },
            }),
            _ => Ok(()),
        }
    }
}

/// What a handled invocation did.
#[derive(Debug)]
pub struct RunOutput {
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Per stream.
    pub report: RunReport,
}

impl RunOutput {
    /// The invocation's answer: the summaries as JSON.
    pub fn answer(&self) -> Value {
        json!({ "dryRun": self.dry_run, "streams": self.report.summaries() })
    }

    /// `Some(message)` when a stream failed: the invocation then fails, so the errors alarm
    /// fires and EventBridge's retry policy applies.
    pub fn failure(&self) -> Option<String> {
        let failures: Vec<String> = self
            .report
            .results
            .iter()
            .filter_map(|r| r.as_ref().err().map(ToString::to_string))
            .collect();
        (!failures.is_empty()).then(|| failures.join("; "))
    }

    /// Embedded-metric-format lines with each stream's counts and cursor age (none for dry runs),
    /// the first also with the take-overs `take_overs` counted since the previous line.
    pub fn metrics(
        &self,
        take_overs: &TakeOverCount,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<String> {
        if self.dry_run {
            return Vec::new();
        }
        self.report
            .summaries()
            .into_iter()
            .filter(|s| s.stop != Some(StopReason::LeaseHeld))
            .map(|s| stream_emf(s, take_overs.since_last_report(), now))
            .collect()
    }
}

/// Failure of an invocation before any stream ran.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The payload was refused.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The invocation's whole time is within the margin a run keeps before its deadline
    /// (`TCRELAY_POLL_TIME_MARGIN_SECONDS` at or above the function's timeout): every run would
    /// stop before its first page and report success, and nothing would ever be polled.
    #[error(
        "{var} is {margin} s, but this invocation has {left} s in all, so no run would fetch a \
         page: set it below the function's timeout, leaving room for a page (one Tradecloud \
         call with its retries takes up to 20 s)",
        var = TCRELAY_POLL_TIME_MARGIN_SECONDS,
        margin = .margin.as_secs(),
        left = .left.as_secs()
    )]
    NoTimeBeyondMargin {
        /// The configured margin.
        margin: Duration,
        /// The invocation's time left when it started.
        left: Duration,
    },
    /// A dedupe claim stays in progress (`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`) no longer than
    /// the time margin, and less than the invocation's time: a run ends before its claims
    /// expire (one that expired while a slow queue still took the page could be taken over by
    /// a webhook GET of the same state and enqueued twice), so this run could poll nothing.
    #[error(
        "{var} is {expiry} s, but this invocation has {left} s in all: a page's dedupe claims \
         are held until its sends end, so a run ends before they expire, and with claims that \
         expire within the time margin it could poll nothing: set {var} above the function's \
         timeout",
        var = TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
        expiry = .expiry.as_secs(),
        left = .left.as_secs()
    )]
    ClaimsExpireWithinRun {
        /// The configured in-progress expiry.
        expiry: Duration,
        /// The invocation's time left when it started.
        left: Duration,
    },
}

/// The lease owner of one invocation: its request id (for the logs and `cursor show`) and a
/// random suffix. The request id alone is not unique to an invocation: Lambda retries a failed
/// asynchronous event, and may deliver one more than once, under the same request id, and a
/// lease its owner takes again is a renewal, so two such invocations at once both polled (and a
/// late release of the earlier one's lease, after a panic, gave up the retry's).
pub fn lease_owner(request_id: &str) -> String {
    format!("{request_id}/{}", uuid::Uuid::new_v4().simple())
}

/// An invocation's deadline, brought forward to when a dedupe claim made at its start would
/// expire (`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`), when that comes first.
struct ClaimsLive<'a> {
    invocation: &'a dyn Deadline,
    /// When claims made now expire, if before the invocation's deadline.
    expire: Option<(std::time::Instant, Duration)>,
}

impl<'a> ClaimsLive<'a> {
    fn new(invocation: &'a dyn Deadline, expiry: Option<Duration>) -> Self {
        let expire = match (invocation.remaining(), expiry) {
            (Some(left), Some(expiry)) if left > expiry => {
                Some((std::time::Instant::now() + expiry, expiry))
            }
            _ => None,
        };
        Self { invocation, expire }
    }

    /// The expiry that brings the deadline forward, if it does.
    fn cap(&self) -> Option<Duration> {
        self.expire.map(|(_, expiry)| expiry)
    }
}

impl Deadline for ClaimsLive<'_> {
    fn remaining(&self) -> Option<Duration> {
        let left = self.invocation.remaining()?;
        Some(match self.expire {
            Some((at, _)) => left.min(at.saturating_duration_since(std::time::Instant::now())),
            None => left,
        })
    }
}

/// Handles one invocation: parse, run, report, under a lease owner of its own made from its
/// request id ([`lease_owner`]).
pub async fn handle(
    ports: &PollPorts,
    config: &PollConfig,
    payload: &Value,
    request_id: &str,
    deadline: &dyn Deadline,
) -> Result<RunOutput, HandlerError> {
    let invocation = parse_event(payload)?;
    invocation.check_streams(&config.streams)?;
    // Checked here, not at start-up: Lambda tells a function its timeout only through each
    // invocation's deadline. An invocation starts with its whole timeout left.
    if let Some(left) = deadline.remaining()
        && left <= config.time_margin
        && !config.streams.is_empty()
    {
        return Err(HandlerError::NoTimeBeyondMargin {
            margin: config.time_margin,
            left,
        });
    }
    let request = invocation.into_request(&lease_owner(request_id));
    // A page's claims are held until its sends end: a run that outlived them could have a
    // claim taken over (a webhook GET of the same state) and enqueued twice. So a run with
    // more time than its claims live ends when they would (a dry run claims nothing).
    let claims_live = ClaimsLive::new(deadline, config.in_progress_expiry);
    if let Some(expiry) = claims_live.cap()
        && !request.dry_run
        && !config.streams.is_empty()
    {
        let left = deadline.remaining().unwrap_or_default();
        if expiry <= config.time_margin {
            // Such a run would stop at its first check, every time: nothing would be polled.
            return Err(HandlerError::ClaimsExpireWithinRun { expiry, left });
        }
        tracing::warn!(
            expiry_s = expiry.as_secs(),
            timeout_s = left.as_secs(),
            "{TCRELAY_IN_PROGRESS_EXPIRY_SECONDS} is below the function's timeout: this run \
             ends when its claims would expire; set it above the timeout to use the whole \
             invocation"
        );
    }
    let deadline: &dyn Deadline = if request.dry_run {
        deadline
    } else {
        &claims_live
    };
    let report = run(ports, config, &request, deadline).await;
    Ok(RunOutput {
        dry_run: request.dry_run,
        report,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    fn sample(name: &str) -> Value {
        let text = std::fs::read_to_string(events_dir().join(name)).expect("sample event exists");
        serde_json::from_str(&text).expect("sample event is JSON")
    }

    #[test]
    fn a_manual_stream_must_be_a_configured_one() {
        let configured = [PollStream::Orders, PollStream::Shipments];
        let manual = |stream| Invocation::Manual {
            stream,
            from: None,
            dry_run: false,
        };
        assert_eq!(
            manual(Some(PollStream::Shipments)).check_streams(&configured),
            Ok(())
        );
        assert_eq!(manual(None).check_streams(&configured), Ok(()));
        assert_eq!(Invocation::Scheduled.check_streams(&[]), Ok(()));
        let refused = manual(Some(PollStream::SingleDeliveryOrders))
            .check_streams(&configured)
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "stream \"single-delivery-orders\" is not one this poller polls \
             (TCRELAY_POLL_STREAMS: orders,shipments); add it there to poll it"
        );
        let refused = manual(Some(PollStream::Orders))
            .check_streams(&[])
            .unwrap_err();
        assert!(
            refused.to_string().contains("TCRELAY_POLL_STREAMS: none"),
            "{refused}"
        );
    }

    #[test]
    fn the_sample_events_parse() {
        assert_eq!(
            parse_event(&sample("poller-scheduled.json")),
            Ok(Invocation::Scheduled)
        );
        assert_eq!(
            parse_event(&sample("poller-backfill.json")),
            Ok(Invocation::Manual {
                stream: Some(PollStream::Orders),
                from: Some("2025-01-01T00:00:00.000Z".into()),
                dry_run: false
            })
        );
        assert_eq!(
            parse_event(&sample("poller-dry-run.json")),
            Ok(Invocation::Manual {
                stream: None,
                from: None,
                dry_run: true
            })
        );
    }

    #[test]
    fn manual_requests_become_run_requests() {
        let request = Invocation::Manual {
            stream: Some(PollStream::Shipments),
            from: Some("2025-01-01T00:00:00.000Z".into()),
            dry_run: true,
        }
        .into_request("req-1");
        assert_eq!(request.streams, vec![PollStream::Shipments]);
        assert_eq!(request.from.as_deref(), Some("2025-01-01T00:00:00.000Z"));
        assert!(request.dry_run);
        assert_eq!(request.owner, "req-1");
        assert_eq!(
            Invocation::Scheduled.into_request("r"),
            RunRequest::scheduled("r")
        );
        // An empty manual invoke is a run of the configured streams.
        assert_eq!(
            parse_event(&json!({})).unwrap().into_request("r"),
            RunRequest::scheduled("r")
        );
    }

    #[test]
    fn bad_manual_requests_are_refused() {
        assert!(matches!(
            parse_event(&json!({"dryrun": true})),
            Err(EventError::Unsupported(_))
        ));
        assert_eq!(
            parse_event(&json!({"stream": "invoices"})),
            Err(EventError::UnknownStream("invoices".into()))
        );
        assert_eq!(
            parse_event(&json!({"from": "yesterday"})),
            Err(EventError::BadFrom("yesterday".into()))
        );
        assert!(matches!(
            parse_event(&json!([1])),
            Err(EventError::Unsupported(_))
        ));
        // The scheduled sample with a manual field added by hand: refused, not run for real.
        let mut edited = sample("poller-scheduled.json");
        edited["dryRun"] = json!(true);
        let refused = parse_event(&edited).unwrap_err();
        assert!(refused.to_string().contains("dryRun"), "{refused}");
        for field in ["from", "stream"] {
            let edited = json!({"source": "aws.events", field: "x"});
            assert!(matches!(
                parse_event(&edited),
                Err(EventError::Unsupported(_))
            ));
        }
    }

    /// A scripted Tradecloud holding one order, for the tests of a run's time.
    fn api_with_one_order() -> tcrelay_poll::testing::ScriptedPollApi {
        use tcrelay_poll::testing::{ScriptedPollApi, order_json};
        let api = ScriptedPollApi::new();
        api.with_world(|w| {
            let at = 1_735_689_600_000;
            w.put(
                PollStream::Orders,
                "o1",
                at,
                order_json("o1", 1, at, &[("l1", at, "Issued", None)]),
            );
        });
        api
    }

    /// A margin that takes the invocation's whole time leaves every run nothing to do: it would
    /// stop at its first check and report success (`stop: deadline`, no page), and only the
    /// cursor-age alarm, an hour on, would say something is wrong, without saying what. The
    /// invocation fails instead, naming the setting.
    #[tokio::test]
    async fn a_time_margin_that_takes_the_whole_invocation_is_refused_naming_it() {
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};
        use tcrelay_core::testing::{MemoryDedupe, MemorySink};
        use tcrelay_poll::DeadlineAt;
        use tcrelay_poll::testing::MemoryCursorStore;

        let api = api_with_one_order();
        let sink = Arc::new(MemorySink::new());
        let ports = PollPorts {
            api: Arc::new(api),
            cursors: Arc::new(MemoryCursorStore::new()),
            dedupe: Arc::new(MemoryDedupe::default()),
            sink: sink.clone(),
        };
        let config = PollConfig {
            streams: vec![PollStream::Orders],
            start: Some("2024-12-31T00:00:00.000Z".into()),
            time_margin: Duration::from_secs(30),
            ..PollConfig::default()
        };
        let scheduled = sample("poller-scheduled.json");
        // A function timeout of 20 s under a margin of 30 s.
        let short = DeadlineAt(SystemTime::now() + Duration::from_secs(20));
        let refused = handle(&ports, &config, &scheduled, "req-1", &short)
            .await
            .expect_err("a run with no time to fetch in is a misconfiguration, not a success");
        let message = refused.to_string();
        assert!(
            message.contains("TCRELAY_POLL_TIME_MARGIN_SECONDS") && message.contains("30 s"),
            "{message}"
        );
        assert!(sink.envelopes().is_empty());
        // With time beyond the margin the run polls as before.
        let enough = DeadlineAt(SystemTime::now() + Duration::from_secs(60));
        let output = handle(&ports, &config, &scheduled, "req-2", &enough)
            .await
            .unwrap();
        assert!(output.failure().is_none(), "{:?}", output.failure());
        assert_eq!(sink.envelopes().len(), 1);
    }

    /// A page's dedupe claims are held until its sends end, and a run lived as long as its
    /// invocation: with a function timeout above `TCRELAY_IN_PROGRESS_EXPIRY_SECONDS` (a
    /// timeout raised to 900 s for a backlog, under the template's 300 s expiry), a page
    /// whose sends a slow queue drew out could outlive its claims, and a webhook GET of the
    /// same state took the expired claim over and enqueued it too: the ERP got it twice,
    /// with nothing but the take-over alarm afterwards. Only the template's own values were
    /// checked (`template_grants.rs`). Such a run now ends when its claims would expire (a
    /// WARN names the setting); claims that would expire within the time margin, leaving no
    /// time to poll, fail the invocation naming both.
    #[tokio::test]
    async fn a_run_ends_before_its_claims_expire_and_claims_shorter_than_the_margin_are_refused() {
        use std::sync::Arc;
        use std::time::{Duration, SystemTime};
        use tcrelay_core::ports::ApiError;
        use tcrelay_core::testing::{MemoryDedupe, MemorySink};
        use tcrelay_poll::testing::{MemoryCursorStore, ScriptedPollApi, order_json};
        use tcrelay_poll::{DeadlineAt, PageRequest, PollApi, PolledPage};

        /// Each page takes 1.2 s: a run with one second beyond its margin asks one page.
        struct Slow(ScriptedPollApi);
        #[async_trait::async_trait]
        impl PollApi for Slow {
            async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
                tokio::time::sleep(Duration::from_millis(1200)).await;
                self.0.fetch_page(r).await
            }
        }
        let poll = |expiry: Option<u64>, payload: Value| async move {
            let api = ScriptedPollApi::new();
            api.with_world(|w| {
                for n in 0..4i64 {
                    let at = 1_735_689_600_000 + n;
                    let id = format!("o{n}");
                    let order = order_json(&id, 1, at, &[("l1", at, "Issued", None)]);
                    w.put(PollStream::Orders, &id, at, order);
                }
            });
            let sink = Arc::new(MemorySink::new());
            let ports = PollPorts {
                api: Arc::new(Slow(api)),
                cursors: Arc::new(MemoryCursorStore::new()),
                dedupe: Arc::new(MemoryDedupe::default()),
                sink: sink.clone(),
            };
            let config = PollConfig {
                streams: vec![PollStream::Orders],
                start: Some("2024-12-31T00:00:00.000Z".into()),
                page_limit: 2,
                time_margin: Duration::from_secs(119),
                in_progress_expiry: expiry.map(Duration::from_secs),
                ..PollConfig::default()
            };
            // A function timeout of 300 s.
            let invocation = DeadlineAt(SystemTime::now() + Duration::from_secs(300));
            let output = handle(&ports, &config, &payload, "req-1", &invocation).await;
            (output, sink.envelopes().len())
        };
        let scheduled = sample("poller-scheduled.json");
        // Claims that live as long as the invocation: the run asks every page.
        let (output, sent) = poll(Some(300), scheduled.clone()).await;
        let output = output.unwrap();
        assert!(output.failure().is_none(), "{:?}", output.failure());
        assert_eq!(sent, 4);
        // Claims that expire after 120 s: the run ends with them, a second past its margin.
        let (output, sent) = poll(Some(120), scheduled.clone()).await;
        let summary = output.unwrap().report.summaries()[0].clone();
        assert_eq!(summary.stop, Some(StopReason::Deadline), "{summary:?}");
        assert_eq!((summary.pages, sent), (1, 2), "{summary:?}");
        // Claims that expire within the margin: no run could poll; the setting is named.
        let (refused, sent) = poll(Some(100), scheduled.clone()).await;
        let message = refused.expect_err("no time to poll").to_string();
        assert!(
            message.contains("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS")
                && message.contains("100 s")
                && message.contains("timeout"),
            "{message}"
        );
        assert_eq!(sent, 0);
        // A dry run holds no claims.
        let (dry, _) = poll(Some(100), json!({"dryRun": true})).await;
        assert!(dry.is_ok());
    }

    /// Lambda may deliver one asynchronous event more than once, and retries a failed one,
    /// under the same request id. Two such invocations at once must not share the stream's
    /// lease (a lease taken by the same owner is a renewal): the second finds it held instead
    /// of relaying beside the first.
    #[tokio::test]
    async fn two_invocations_under_one_request_id_do_not_share_the_lease() {
        use std::sync::Arc;
        use tcrelay_core::ports::ApiError;
        use tcrelay_core::testing::{MemoryDedupe, MemorySink};
        use tcrelay_poll::testing::{MemoryCursorStore, ScriptedPollApi};
        use tcrelay_poll::{NoDeadline, PageRequest, PollApi, PolledPage};

        /// Slow pages, so the two invocations overlap.
        struct Slow(ScriptedPollApi);
        #[async_trait::async_trait]
        impl PollApi for Slow {
            async fn fetch_page(&self, r: &PageRequest) -> Result<PolledPage, ApiError> {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                self.0.fetch_page(r).await
            }
        }

        let api = api_with_one_order();
        let ports = PollPorts {
            api: Arc::new(Slow(api)),
            cursors: Arc::new(MemoryCursorStore::new()),
            dedupe: Arc::new(MemoryDedupe::default()),
            sink: Arc::new(MemorySink::new()),
        };
        let config = PollConfig {
            streams: vec![PollStream::Orders],
            start: Some("2024-12-31T00:00:00.000Z".into()),
            ..PollConfig::default()
        };
        let scheduled = sample("poller-scheduled.json");
        let (a, b) = tokio::join!(
            handle(&ports, &config, &scheduled, "req-1", &NoDeadline),
            handle(&ports, &config, &scheduled, "req-1", &NoDeadline),
        );
        let stops: Vec<Option<StopReason>> = [a.unwrap(), b.unwrap()]
            .iter()
            .flat_map(|out| out.report.summaries().into_iter().map(|s| s.stop.clone()))
            .collect();
        assert!(
            stops.contains(&Some(StopReason::LeaseHeld)),
            "both invocations polled under one lease: {stops:?}"
        );
    }
}
