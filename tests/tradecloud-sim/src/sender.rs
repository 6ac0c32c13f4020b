//! The webhook sender: delivers each change to the configured targets the way Tradecloud's
//! connector does (in order per object, retrying >500 and connection errors forever with capped
//! exponential back-off, dropping 4xx and 500), and records every attempt.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::SimError;
use crate::util::lock;
use crate::world::{Change, EventKind};

/// Which webhook integration a target is (each has its own events).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Integration {
    /// The Orders Webhook Integration: order events.
    #[default]
    Orders,
    /// The Order Documents Webhook Integration: `OrderDocumentsAttachedBy…` events.
    OrderDocuments,
    /// The Shipments Webhook Integration: shipment events.
    Shipments,
}

impl Integration {
    fn accepts(self, kind: EventKind) -> bool {
        matches!(
            (self, kind),
            (Self::Orders, EventKind::Order)
                | (Self::OrderDocuments, EventKind::OrderDocuments)
                | (Self::Shipments, EventKind::Shipment)
        )
    }
}

/// HTTP method of the webhook.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// The event in the body.
    #[default]
    Post,
    /// Only the id, in the URL (`{orderId}` / `{shipmentId}` placeholder, path or query).
    Get,
}

/// Body format of POST webhooks.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `application/json`.
    #[default]
    #[serde(rename = "JSON")]
    Json,
    /// Tradecloud's XML, `application/xml`.
    #[serde(rename = "tXML")]
    Txml,
}

/// How the sender authenticates at the target.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WebhookAuth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// User name typed into the portal.
        username: String,
        /// Password typed into the portal.
        password: String,
    },
    /// `Authorization: Bearer <token>` with a static token.
    Bearer {
        /// The token typed into the portal.
        token: String,
    },
}

/// One webhook integration as configured in Tradecloud's portal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookTarget {
    /// Target URL; for GET it must contain `{orderId}` or `{shipmentId}`.
    pub url: String,
    /// Which events the integration receives.
    #[serde(default)]
    pub integration: Integration,
    /// POST (event in the body) or GET (id in the URL).
    #[serde(default)]
    pub method: WebhookMethod,
    /// JSON or tXML body.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Orders in the single-delivery form (`singleDeliveryOrderEvent`).
    #[serde(default)]
    pub single_delivery: bool,
    /// Authentication at the target.
    #[serde(default)]
    pub auth: WebhookAuth,
    /// Enabled event names; `None` enables all.
    #[serde(default)]
    pub event_names: Option<Vec<String>>,
    /// Probability that a message is delivered twice in a row (for downstream dedupe tests).
    #[serde(default)]
    pub duplicate_rate: f64,
    /// Seed of the duplicate decisions; the same seed and changes give the same duplicates.
    #[serde(default)]
    pub seed: u64,
    /// Use the old body keys `simpleOrderEvent` (single-delivery orders, before 2024-04) and
    /// `shipmentEvent` (shipments, 2023), which receivers should still accept.
    #[serde(default)]
    pub legacy_event_keys: bool,
    /// Also put the event's `meta` at body level, where Tradecloud's docs show it (the event
    /// object always carries it, as in Tradecloud's own connector model).
    #[serde(default)]
    pub meta_in_body: bool,
}

impl WebhookTarget {
    /// A POST/JSON target for order events without authentication.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            integration: Integration::Orders,
            method: WebhookMethod::Post,
            format: WebhookFormat::Json,
            single_delivery: false,
            auth: WebhookAuth::None,
            event_names: None,
            duplicate_rate: 0.0,
            seed: 0,
            legacy_event_keys: false,
            meta_in_body: false,
        }
    }

    fn validate(&self) -> Result<(), SimError> {
        let parsed = reqwest::Url::parse(&self.url.replace(['{', '}'], ""))
            .map_err(|e| SimError::InvalidTarget(format!("url {}: {e}", self.url)))?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(SimError::InvalidTarget("url must be http or https".into()));
        }
        if self.method == WebhookMethod::Get {
            let placeholder = self.placeholder();
            if !self.url.contains(placeholder) {
                return Err(SimError::InvalidTarget(format!(
                    "a GET webhook url needs {placeholder}"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.duplicate_rate) {
            return Err(SimError::InvalidTarget(
                "duplicateRate must be within 0..=1".into(),
            ));
        }
        Ok(())
    }

    fn placeholder(&self) -> &'static str {
        match self.integration {
            Integration::Shipments => "{shipmentId}",
            _ => "{orderId}",
        }
    }
}

/// Back-off of the sender: the first wait, doubling up to a cap, forever (Tradecloud's rule).
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt.
    pub initial: Duration,
    /// Largest wait between attempts.
    pub max: Duration,
    /// Give up after this many attempts; `None` retries forever as Tradecloud does. Only for
    /// tests that must end while a target keeps failing.
    pub max_attempts: Option<u32>,
    /// Timeout of one webhook request; a timeout counts as a connection error.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: None,
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Back-off scaled down for tests: 10 ms doubling to 100 ms, 2 s request timeout, forever.
    pub fn fast() -> Self {
        Self {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_attempts: None,
            request_timeout: Duration::from_secs(2),
        }
    }

    /// The wait after `failures` failed attempts.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// What became of a delivery.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryOutcome {
    /// Not finished yet (waiting, or retrying).
    Pending,
    /// A 2xx answer.
    Delivered,
    /// A 4xx, 500 or other non-retryable answer: dropped, never retried.
    Dropped,
    /// Gave up after `RetryPolicy::max_attempts` (never happens with the default policy).
    Abandoned,
    /// The simulator shut down or the target was removed first.
    Cancelled,
}

/// One HTTP attempt of a delivery.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// The connection error or timeout, if no answer came.
    pub error: Option<String>,
    /// Wall-clock milliseconds since the simulator started, when the attempt began.
    pub started_ms: u64,
}

/// One message the sender delivers to one target, with every attempt.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// Position among all deliveries.
    pub id: u64,
    /// The target's id.
    pub target: u64,
    /// `seq` of the change delivered.
    pub change_seq: u64,
    /// Order or shipment id.
    pub object_id: String,
    /// Event name of the change.
    pub event_name: String,
    /// `meta.messageId` of the change.
    pub message_id: String,
    /// `lastUpdatedAt` of the change.
    pub last_updated_at: String,
    /// Whether this is the deliberate second copy of the previous delivery.
    pub duplicate: bool,
    /// `POST` or `GET`.
    pub method: String,
    /// The URL called (placeholders filled in).
    pub url: String,
    /// `Content-Type` sent with a POST.
    pub content_type: Option<String>,
    /// The body sent with a POST.
    pub body: Option<String>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<Attempt>,
    /// What became of it.
    pub outcome: DeliveryOutcome,
}

struct TargetState {
    target: WebhookTarget,
    rng: ChaCha8Rng,
}

#[derive(Default)]
struct State {
    targets: BTreeMap<u64, TargetState>,
    next_target: u64,
    records: Vec<DeliveryRecord>,
    /// Per (target, object) queue of record indexes; `running` while a worker drains it.
    queues: HashMap<(u64, String), VecDeque<usize>>,
    pending: usize,
}

pub(crate) struct Sender {
    state: Mutex<State>,
    client: reqwest::Client,
    retry: RetryPolicy,
    idle: Notify,
    shutdown: watch::Receiver<bool>,
    started: Instant,
    runtime: tokio::runtime::Handle,
}

enum Verdict {
    Done,
    Drop,
    Retry,
}

impl Sender {
    pub(crate) fn new(
        retry: RetryPolicy,
        shutdown: watch::Receiver<bool>,
        started: Instant,
    ) -> Result<Self, SimError> {
        // reqwest has no crypto provider of its own here (the workspace's Cargo.toml); an error
        // only says one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(retry.request_timeout)
            .user_agent("tradecloud-sim")
            .build()
            .map_err(|e| SimError::Http(e.to_string()))?;
        Ok(Self {
            state: Mutex::new(State {
                next_target: 1,
                ..State::default()
            }),
            client,
            retry,
            idle: Notify::new(),
            shutdown,
            started,
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|e| SimError::Runtime(e.to_string()))?,
        })
    }

    pub(crate) fn add_target(&self, target: WebhookTarget) -> Result<u64, SimError> {
        target.validate()?;
        let mut state = lock(&self.state);
        let id = state.next_target;
        state.next_target += 1;
        let rng = ChaCha8Rng::seed_from_u64(target.seed);
        state.targets.insert(id, TargetState { target, rng });
        Ok(id)
    }

    /// Removes a target; its queued deliveries are cancelled.
    pub(crate) fn remove_target(&self, id: u64) -> bool {
        let mut state = lock(&self.state);
        let removed = state.targets.remove(&id).is_some();
        let keys: Vec<(u64, String)> = state.queues.keys().filter(|k| k.0 == id).cloned().collect();
        for key in keys {
            let queued: Vec<usize> = state
                .queues
                .get_mut(&key)
                .map(|q| q.drain(..).collect())
                .unwrap_or_default();
            for index in queued {
                state.records[index].outcome = DeliveryOutcome::Cancelled;
                state.pending -= 1;
            }
        }
        drop(state);
        self.idle.notify_waiters();
        removed
    }

    pub(crate) fn targets(&self) -> Vec<(u64, WebhookTarget)> {
        lock(&self.state)
            .targets
            .iter()
            .map(|(id, t)| (*id, t.target.clone()))
            .collect()
    }

    pub(crate) fn records(&self) -> Vec<DeliveryRecord> {
        lock(&self.state).records.clone()
    }

    pub(crate) fn pending(&self) -> usize {
        lock(&self.state).pending
    }

    /// Queues the deliveries of new changes for every target that wants them. Called with the
    /// world locked, so deliveries are queued in the order the changes happened.
    pub(crate) fn enqueue(self: &Arc<Self>, changes: &[Change]) -> Result<(), SimError> {
        let mut state = lock(&self.state);
        let mut start = Vec::new();
        let target_ids: Vec<u64> = state.targets.keys().copied().collect();
        for change in changes {
            for &tid in &target_ids {
                let Some(target) = state.targets.get(&tid).map(|t| t.target.clone()) else {
                    continue;
                };
                if !target.integration.accepts(change.kind) {
                    continue;
                }
                if let Some(names) = &target.event_names
                    && !names.iter().any(|n| n == &change.event_name)
                {
                    continue;
                }
                let (method, url, content_type, body) = build_request(&target, change)?;
                let twice = target.duplicate_rate > 0.0
                    && state
                        .targets
                        .get_mut(&tid)
                        .is_some_and(|t| t.rng.random_bool(target.duplicate_rate));
                let copies = if twice { 2 } else { 1 };
                for copy in 0..copies {
                    let index = state.records.len();
                    state.records.push(DeliveryRecord {
                        id: index as u64,
                        target: tid,
                        change_seq: change.seq,
                        object_id: change.id.clone(),
                        event_name: change.event_name.clone(),
                        message_id: change.message_id.clone(),
                        last_updated_at: change.last_updated_at.clone(),
                        duplicate: copy == 1,
                        method: method.to_string(),
                        url: url.clone(),
                        content_type: content_type.map(str::to_string),
                        body: body.clone(),
                        attempts: Vec::new(),
                        outcome: DeliveryOutcome::Pending,
                    });
                    state.pending += 1;
                    let key = (tid, change.id.clone());
                    let queue = state.queues.entry(key.clone()).or_default();
                    queue.push_back(index);
                    if queue.len() == 1 && !start.contains(&key) {
                        start.push(key);
                    }
                }
            }
        }
        drop(state);
        for key in start {
            let sender = Arc::clone(self);
            self.runtime.spawn(async move { sender.drain(key).await });
        }
        Ok(())
    }

    /// Delivers one object's queue front to back; the front stays queued while it is being
    /// delivered, so a new change for the object waits behind it rather than starting a
    /// second worker.
    async fn drain(self: Arc<Self>, key: (u64, String)) {
        loop {
            let index = {
                let mut state = lock(&self.state);
                match state.queues.get(&key).and_then(|q| q.front().copied()) {
                    Some(index) => index,
                    None => {
                        state.queues.remove(&key);
                        return;
                    }
                }
            };
            let outcome = self.deliver(index).await;
            let mut state = lock(&self.state);
            if state.records[index].outcome == DeliveryOutcome::Pending {
                state.records[index].outcome = outcome;
                state.pending -= 1;
            }
            let empty = match state.queues.get_mut(&key) {
                Some(q) => {
                    if q.front() == Some(&index) {
                        q.pop_front();
                    }
                    q.is_empty()
                }
                None => true,
            };
            if empty {
                state.queues.remove(&key);
            }
            drop(state);
            self.idle.notify_waiters();
            if empty || outcome == DeliveryOutcome::Cancelled {
                return;
            }
        }
    }

    async fn deliver(&self, index: usize) -> DeliveryOutcome {
        let (record, auth) = {
            let state = lock(&self.state);
            let record = state.records[index].clone();
            let Some(target) = state.targets.get(&record.target) else {
                return DeliveryOutcome::Cancelled;
            };
            (record, target.target.auth.clone())
        };
        let mut shutdown = self.shutdown.clone();
        let mut failures = 0u32;
        loop {
            if *shutdown.borrow() {
                return DeliveryOutcome::Cancelled;
            }
            if let Some(max) = self.retry.max_attempts
                && failures >= max
            {
                return DeliveryOutcome::Abandoned;
            }
            let mut request = if record.method == "GET" {
                self.client.get(&record.url)
            } else {
                self.client.post(&record.url)
            };
            request = match &auth {
                WebhookAuth::None => request,
                WebhookAuth::Basic { username, password } => request.header(
                    http::header::AUTHORIZATION,
                    format!(
                        "Basic {}",
                        STANDARD.encode(format!("{username}:{password}"))
                    ),
                ),
                WebhookAuth::Bearer { token } => request.bearer_auth(token),
            };
            if let (Some(ct), Some(body)) = (&record.content_type, &record.body) {
                request = request
                    .header(http::header::CONTENT_TYPE, ct)
                    .body(body.clone());
            }
            let started_ms = self.started.elapsed().as_millis() as u64;
            let result = tokio::select! {
                r = request.send() => r,
                _ = shutdown.changed() => return DeliveryOutcome::Cancelled,
            };
            let (attempt, verdict) = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the answer so the connection can be reused.
                    let _ = response.bytes().await;
                    let verdict = match status {
                        200..=299 => Verdict::Done,
                        501..=599 => Verdict::Retry,
                        _ => Verdict::Drop,
                    };
                    (
                        Attempt {
                            status: Some(status),
                            error: None,
                            started_ms,
                        },
                        verdict,
                    )
                }
                Err(e) => (
                    Attempt {
                        status: None,
                        error: Some(error_chain(&e)),
                        started_ms,
                    },
                    Verdict::Retry,
                ),
            };
            {
                let mut state = lock(&self.state);
                if !state.targets.contains_key(&record.target) {
                    return DeliveryOutcome::Cancelled;
                }
                state.records[index].attempts.push(attempt.clone());
            }
            match verdict {
                Verdict::Done => {
                    tracing::debug!(url = %record.url, status = ?attempt.status, "webhook delivered");
                    return DeliveryOutcome::Delivered;
                }
                Verdict::Drop => {
                    tracing::warn!(url = %record.url, status = ?attempt.status, event = %record.event_name,
                        "webhook answer is final: message dropped");
                    return DeliveryOutcome::Dropped;
                }
                Verdict::Retry => {
                    failures += 1;
                    let wait = self.retry.backoff(failures);
                    tracing::info!(url = %record.url, status = ?attempt.status, error = ?attempt.error,
                        wait_ms = wait.as_millis() as u64, "webhook failed, retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => return DeliveryOutcome::Cancelled,
                    }
                }
            }
        }
    }

    /// Waits until no delivery is pending, or the timeout passes; true when idle.
    pub(crate) async fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.pending() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.pending() == 0;
            }
        }
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

type Request = (&'static str, String, Option<&'static str>, Option<String>);

fn build_request(target: &WebhookTarget, change: &Change) -> Result<Request, SimError> {
    match target.method {
        WebhookMethod::Get => {
            let id = utf8_percent_encode(&change.id, NON_ALPHANUMERIC).to_string();
            Ok((
                "GET",
                target.url.replace(target.placeholder(), &id),
                None,
                None,
            ))
        }
        WebhookMethod::Post => {
            let body = shape_body(target, change);
            match target.format {
                WebhookFormat::Json => Ok((
                    "POST",
                    target.url.clone(),
                    Some("application/json"),
                    Some(body.to_string()),
                )),
                WebhookFormat::Txml => {
                    // Our own writer, not the relay's: see txml_writer's module docs.
                    let xml = crate::txml_writer::webhook_body_to_txml(&body)
                        .map_err(|e| SimError::Encode(e.to_string()))?;
                    Ok((
                        "POST",
                        target.url.clone(),
                        Some("application/xml"),
                        Some(xml),
                    ))
                }
            }
        }
    }
}

/// The body for a target: the change's body with the target's legacy key and meta options.
fn shape_body(target: &WebhookTarget, change: &Change) -> serde_json::Value {
    let mut body = change.webhook_body(target.single_delivery);
    let Some(map) = body.as_object_mut() else {
        return body;
    };
    if target.legacy_event_keys {
        for (new, old) in [
            ("singleDeliveryOrderEvent", "simpleOrderEvent"),
            ("shipment", "shipmentEvent"),
        ] {
            if let Some(event) = map.remove(new) {
                map.insert(old.to_string(), event);
            }
        }
    }
    if target.meta_in_body {
        let meta = map
            .iter()
            .find(|(k, _)| *k != "eventName")
            .and_then(|(_, event)| event.get("meta").cloned());
        if let Some(meta) = meta {
            map.insert("meta".to_string(), meta);
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_cap() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        let waits: Vec<u128> = (1..=7).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(
            policy.backoff(u32::MAX),
            Duration::from_millis(1000),
            "no overflow"
        );
    }
}
