//! The webhook: one axum [`Router`] for Lambda (`lambda_http::run`) and the local runner
//! (hyper's HTTP/1 server, `apps/tcrelay/src/server.rs`).
//!
//! Routes (paths relative to where the router is mounted):
//! - `POST /webhook` (kind from the body), `POST /webhook/orders`, `/webhook/order-documents`,
//!   `/webhook/shipments` (the body's kind must be one the route's connector sends, else 400:
//!   both order routes take order and order-documents events, the shipments route shipments);
//! - `GET /webhook/orders/{orderId}`, `GET /webhook/orders?orderId=…`, and the same for
//!   `shipments` with `shipmentId`: the complete object is fetched from Tradecloud's API.
//!
//! Every request goes: authenticate (401, nothing else done) → read the body within the limit
//! (413) → decode (415/400) → filter (200) → dedupe (200) → enqueue (202). A trailing slash
//! routes as without it (Tradecloud's portal lets one be typed, and a 404 drops every message).
//! HEAD is answered 405 after authentication and does nothing else: on a GET route it would
//! otherwise fetch and enqueue.
//!
//! Every step runs within the request's [`Deadline`] (the Lambda invocation's or
//! [`WebhookSettings::request_budget`], whichever is earlier): when the rest cannot cover the
//! next step, the claims are released and the answer is 503 (504 for the Tradecloud fetch); a
//! queue send under way is not cut off, and settles the claims when it ends. So the function
//! answers before its timeout would leave the answer to API Gateway and the claims in progress
//! until they expire (docs/design.md, "Answers the relay does not give"). What Tradecloud does
//! with each answer is in docs/design.md, "Answer codes": 4xx and 500 drop the message,
//! 502/503/504 make Tradecloud retry. So every transient failure is 502/503/504 with
//! `Retry-After`, a panic is caught and answered 503, and an authenticated request refused with
//! a 4xx is first kept in the quarantine (if that fails: 503, so it comes back).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;
use tradecloud_model::{DecodeError, DecodeLimits, ObjectKind, decode_webhook_with};

use crate::auth::{AuthError, GatewayJwt, WebhookCredentials};
use crate::config::WebhookConfig;
use crate::deadline::{Deadline, OutOfTime};
use crate::envelope::{Payload, Source};
use crate::filter::EventFilter;
use crate::logsafe::escape_control;
use crate::ports::{
    ApiError, DedupeStore, EventSink, Quarantine, QuarantinedRequest, StoreError, TradecloudApi,
};
use crate::problem::Problem;
use crate::relay::{InboundEvent, Outcome, Relay, RelayError};

/// Headers never copied into the quarantine: credentials and session material.
const SECRET_HEADERS: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "x-amz-security-token",
];

/// The request id of one webhook call, as a request extension. The Lambda sets it from API
/// Gateway's request id (so logs and API Gateway's access log agree); otherwise the router
/// takes `x-request-id` or makes a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// What became of a webhook request, attached to its answer as a response extension so a host
/// can count outcomes (the Lambda's metrics, the local runner's counters) without reading
/// bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// What became of it.
    pub outcome: AnswerOutcome,
    /// Whether the request was kept in the quarantine.
    pub quarantined: bool,
}

impl Answered {
    /// The record of an answer the core did not make (a host's own layer answered it):
    /// [`AnswerOutcome::Unavailable`] for a 5xx, [`AnswerOutcome::Invalid`] otherwise.
    pub fn of_status(status: StatusCode) -> Self {
        Self {
            outcome: if status.is_server_error() {
                AnswerOutcome::Unavailable
            } else {
                AnswerOutcome::Invalid
            },
            quarantined: false,
        }
    }
}

/// What became of a webhook request: relayed ([`Self::Enqueued`], [`Self::Duplicate`],
/// [`Self::Filtered`]) or why not. Every host's metrics count by it; [`Self::as_str`] is the
/// logged `outcome` and the metrics' reason label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AnswerOutcome {
    /// Put on the queue (202).
    Enqueued,
    /// Already relayed (200).
    Duplicate,
    /// Left out by the event filter (200).
    Filtered,
    /// No valid credential (401).
    Unauthorized,
    /// Body or line count over the limit (413).
    TooLarge,
    /// A content type we do not read (415).
    UnsupportedMediaType,
    /// No such route, or no such object at Tradecloud (404).
    NotFound,
    /// A method the route does not take (405).
    MethodNotAllowed,
    /// A body that can never be relayed (400).
    Invalid,
    /// Tradecloud failed the fetch of a GET webhook (502).
    UpstreamError,
    /// Tradecloud or a step ran out of time (504).
    UpstreamTimeout,
    /// A store or the queue is unavailable, or the request ran out of time (503).
    Unavailable,
    /// The handler panicked (503).
    Panic,
}

impl AnswerOutcome {
    /// The logged name: `enqueued`, `duplicate`, `filtered`, `unauthorized`, `too-large`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Duplicate => "duplicate",
            Self::Filtered => "filtered",
            Self::Unauthorized => "unauthorized",
            Self::TooLarge => "too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Invalid => "invalid",
            Self::UpstreamError => "upstream-error",
            Self::UpstreamTimeout => "upstream-timeout",
            Self::Unavailable => "unavailable",
            Self::Panic => "panic",
        }
    }
}

impl From<&Outcome> for AnswerOutcome {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Enqueued { .. } => Self::Enqueued,
            Outcome::Duplicate { .. } => Self::Duplicate,
            Outcome::Filtered { .. } => Self::Filtered,
        }
    }
}

/// How many fields of a relayed message had a type the schema does not expect (forwarded as
/// sent), attached to the answer as a response extension so a host can count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenientFields(pub usize);

/// The webhook's settings.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Accepted credentials; must not be empty.
    pub credentials: WebhookCredentials,
    /// Which events are relayed.
    pub filter: EventFilter,
    /// Largest body accepted (413 above).
    pub max_body_bytes: usize,
    /// Most lines an event may carry (413 above, and quarantined).
    pub max_lines: usize,
    /// Seconds announced in `Retry-After` on 502/503/504.
    pub retry_after_seconds: u64,
    /// How long a request may take from its arrival to its answer, when the host gives no
    /// earlier [`Deadline`] (a Lambda gives its invocation's as a request extension).
    pub request_budget: Duration,
}

impl From<&WebhookConfig> for WebhookSettings {
    fn from(config: &WebhookConfig) -> Self {
        Self {
            credentials: config.credentials.clone(),
            filter: config.filter.clone(),
            max_body_bytes: config.max_body_bytes,
            max_lines: config.max_lines,
            retry_after_seconds: config.retry_after.as_secs(),
            request_budget: config.request_budget,
        }
    }
}

/// The webhook's state: settings and ports.
pub struct WebhookApp {
    settings: WebhookSettings,
    relay: Relay,
    quarantine: Arc<dyn Quarantine>,
    api: Option<Arc<dyn TradecloudApi>>,
}

impl std::fmt::Debug for WebhookApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookApp")
            .field("settings", &self.settings)
            .field("api", &self.api.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookApp {
    /// The webhook over these ports. `api` is `None` when no Tradecloud login is configured:
    /// GET requests are then answered 503 (Tradecloud retries until it is configured).
    pub fn new(
        settings: WebhookSettings,
        sink: Arc<dyn EventSink>,
        dedupe: Arc<dyn DedupeStore>,
        quarantine: Arc<dyn Quarantine>,
        api: Option<Arc<dyn TradecloudApi>>,
    ) -> Self {
        let relay = Relay::new(sink, dedupe, settings.filter.clone());
        Self {
            settings,
            relay,
            quarantine,
            api,
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }
}

/// Builds the webhook router.
pub fn webhook_router(app: Arc<WebhookApp>) -> Router {
    let retry_after = app.settings.retry_after_seconds;
    let routes: [(&str, axum::routing::MethodRouter<Arc<WebhookApp>>); 6] = [
        ("/webhook", post(post_any)),
        ("/webhook/orders", post(post_orders).get(get_order_by_query)),
        ("/webhook/orders/{order_id}", get(get_order_by_path)),
        ("/webhook/order-documents", post(post_order_documents)),
        (
            "/webhook/shipments",
            post(post_shipments).get(get_shipment_by_query),
        ),
        (
            "/webhook/shipments/{shipment_id}",
            get(get_shipment_by_path),
        ),
    ];
    let mut router = Router::new();
    for (path, method_router) in routes {
        // The same route with a trailing slash, as typed into Tradecloud's portal.
        router = router
            .route(&format!("{path}/"), method_router.clone())
            .route(path, method_router);
    }
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(app)
        // Inside the trace layer, so a caught panic is logged with its request's fields.
        .layer(CatchPanicLayer::custom(move |panic: Box<dyn std::any::Any + Send>| {
            // Escaped: a panic may format text from the request.
            let message = crate::logsafe::panic_message(&*panic);
            tracing::error!(panic = %message, "handler panicked; answering 503 so Tradecloud retries");
            tracing::Span::current().record("outcome", AnswerOutcome::Panic.as_str());
            let mut problem = WebhookError::Panic.problem();
            problem.retry_after = Some(retry_after);
            let mut response = problem.into_response();
            response.extensions_mut().insert(Answered {
                outcome: AnswerOutcome::Panic,
                quarantined: false,
            });
            response
        }))
        .layer(middleware::from_fn(trace_request))
}

/// One span per request with the fields docs/design.md ("Logs and metrics") asks for (never
/// credentials or payloads), and one log line with the answer.
async fn trace_request(mut request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .or_else(|| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= 200)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    // Anyone can send `x-request-id`, before authentication: it is logged and answered escaped.
    let request_id = escape_control(&request_id).into_owned();
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    let span = tracing::info_span!(
        "webhook",
        request_id = %request_id,
        method = %request.method(),
        // A request line may carry UTF-8 (bidirectional controls, line separators) in its
        // path, before authentication.
        path = %escape_control(request.uri().path()),
        kind = tracing::field::Empty,
        id = tracing::field::Empty,
        event_name = tracing::field::Empty,
        dedupe_key = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let started = Instant::now();
    async move {
        let response = next.run(request).await;
        let status = response.status().as_u16();
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if status >= 500 {
            tracing::warn!(status, elapsed_ms, "answered");
        } else {
            tracing::info!(status, elapsed_ms, "answered");
        }
        response
    }
    .instrument(span)
    .await
}

/// Which kinds a POST route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostRoute {
    Any,
    Orders,
    OrderDocuments,
    Shipments,
}

impl PostRoute {
    fn accepts(self, kind: ObjectKind) -> bool {
        match self {
            PostRoute::Any => true,
            // Both are the order webhook connector's, which Tradecloud's own example sets up
            // with one URL for its order and its order-documents events (the .NET SDK's
            // `SetOrderEventsSettings` and `SetOrderDocumentsEventsSettings`): either route
            // takes all three kinds, or a user who followed it would lose every event of the
            // other setting (a 400 is dropped).
            PostRoute::Orders | PostRoute::OrderDocuments => matches!(
                kind,
                ObjectKind::Order | ObjectKind::SingleDeliveryOrder | ObjectKind::OrderDocuments
            ),
            PostRoute::Shipments => kind == ObjectKind::Shipment,
        }
    }

    fn path(self) -> &'static str {
        match self {
            PostRoute::Any => "/webhook",
            PostRoute::Orders => "/webhook/orders",
            PostRoute::OrderDocuments => "/webhook/order-documents",
            PostRoute::Shipments => "/webhook/shipments",
        }
    }
}

/// Why a webhook request was not relayed; each variant has exactly one answer
/// ([`WebhookError::problem`]).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401.
    #[error("{0}")]
    Unauthorized(AuthError),
    /// 413.
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// 400: the body could not be read to its end.
    #[error("the body could not be read: {0}")]
    BodyRead(String),
    /// 415 or 400, depending on the decode error.
    #[error("{0}")]
    Decode(DecodeError),
    /// 400: a kind-specific route got another kind.
    #[error("{route} accepts {expected} events, but the body carries a {found} event")]
    KindMismatch {
        /// The route.
        route: &'static str,
        /// What it accepts.
        expected: &'static str,
        /// What came.
        found: ObjectKind,
    },
    /// 400: a GET without the id.
    #[error("the {param} is missing: call {route}/{{{param}}} or {route}?{param}=…")]
    MissingId {
        /// `orderId` or `shipmentId`.
        param: &'static str,
        /// The route.
        route: &'static str,
    },
    /// 404: Tradecloud does not know the id.
    #[error("Tradecloud has no {what} with id {id:?}")]
    NotFound {
        /// `order` or `shipment`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// 404: no such route.
    #[error("no webhook route at {0}")]
    UnknownRoute(String),
    /// 405.
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method used.
        method: Method,
        /// The path.
        path: String,
    },
    /// 503, 502 or 504 (see [`RelayError`]).
    #[error("{0}")]
    Relay(#[from] RelayError),
    /// 503, 502 or 504 (see [`ApiError`]).
    #[error("fetching the {what} from Tradecloud failed: {source}")]
    Api {
        /// `order` or `shipment`.
        what: &'static str,
        /// What the API said.
        source: ApiError,
    },
    /// 503: GET without a Tradecloud login configured.
    #[error(
        "GET webhooks need a Tradecloud API login: set TRADECLOUD_USERNAME and TRADECLOUD_PASSWORD \
         or TCRELAY_TRADECLOUD_SECRET_ARN"
    )]
    ApiNotConfigured,
    /// 503: the refused request could not be kept, so it is not refused yet.
    #[error("the request was refused ({reason}) but could not be quarantined: {source}")]
    Quarantine {
        /// Why it was refused.
        reason: String,
        /// The quarantine's failure.
        source: StoreError,
    },
    /// 503: a handler panicked.
    #[error("the webhook failed unexpectedly; Tradecloud will retry")]
    Panic,
    /// 405: HEAD, answered after authentication without doing anything (no fetch, no
    /// enqueue, no quarantine: a HEAD carries no message).
    #[error("HEAD is not served on {path}: the webhook acts only on POST and GET")]
    Head {
        /// The path.
        path: String,
    },
    /// 503: the body did not arrive within the request's deadline (a client that stalls).
    #[error("the body did not arrive in time: {0}")]
    BodyTimeout(OutOfTime),
}

impl WebhookError {
    /// Whether an authenticated request refused with this error is kept in the quarantine:
    /// every final refusal (4xx) except 401 (not authenticated) and an unreadable body (the
    /// client went away, there is nothing complete to keep).
    fn quarantines(&self) -> bool {
        matches!(
            self,
            WebhookError::TooLarge { .. }
                | WebhookError::Decode(_)
                | WebhookError::KindMismatch { .. }
                | WebhookError::MissingId { .. }
                | WebhookError::NotFound { .. }
                | WebhookError::UnknownRoute(_)
                | WebhookError::MethodNotAllowed { .. }
                | WebhookError::Api {
                    source: ApiError::Refused { .. },
                    ..
                }
        )
    }

    /// The one HTTP answer for this error (headers that need settings are added by the caller).
    pub fn problem(&self) -> Problem {
        use StatusCode as S;
        let detail = self.public_detail();
        let (status, slug, title) = match self {
            WebhookError::Unauthorized(_) => (S::UNAUTHORIZED, "unauthorized", "Not authenticated"),
            WebhookError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too-large", "Body too large"),
            WebhookError::Decode(DecodeError::TooManyValues { .. }) => (
                S::PAYLOAD_TOO_LARGE,
                "too-many-values",
                "Too many values for the body's size",
            ),
            WebhookError::Decode(e) if e.is_too_large() => {
                (S::PAYLOAD_TOO_LARGE, "too-many-lines", "Too many lines")
            }
            WebhookError::BodyRead(_) => (S::BAD_REQUEST, "body-unreadable", "Body unreadable"),
            WebhookError::Decode(e) if e.is_unsupported_media_type() => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported content type",
            ),
            WebhookError::Decode(_) => (
                S::BAD_REQUEST,
                "malformed-body",
                "Malformed or invalid body",
            ),
            WebhookError::KindMismatch { .. } => (
                S::BAD_REQUEST,
                "wrong-kind",
                "Event kind does not match the route",
            ),
            WebhookError::MissingId { .. } => (S::BAD_REQUEST, "missing-id", "Object id missing"),
            WebhookError::NotFound { .. } => (S::NOT_FOUND, "not-found", "Unknown at Tradecloud"),
            WebhookError::UnknownRoute(_) => (S::NOT_FOUND, "unknown-route", "No such route"),
            WebhookError::MethodNotAllowed { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            WebhookError::Relay(RelayError::InProgress { .. }) => (
                S::SERVICE_UNAVAILABLE,
                "in-progress",
                "Already being relayed",
            ),
            WebhookError::Relay(RelayError::Dedupe(_)) => (
                S::SERVICE_UNAVAILABLE,
                "dedupe-unavailable",
                "Dedupe store unavailable",
            ),
            WebhookError::Relay(RelayError::Sink(_)) => (
                S::SERVICE_UNAVAILABLE,
                "queue-unavailable",
                "Queue unavailable",
            ),
            WebhookError::Relay(RelayError::OutOfTime(_)) | WebhookError::BodyTimeout(_) => (
                S::SERVICE_UNAVAILABLE,
                "out-of-time",
                "Not finished in time",
            ),
            WebhookError::Head { .. } => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            WebhookError::Api { source, .. } => match source {
                // Not Found is mapped to `NotFound` by the handler; kept total here.
                ApiError::NotFound => (S::NOT_FOUND, "not-found", "Unknown at Tradecloud"),
                // Tradecloud will refuse it again: Tradecloud may as well drop the
                // notification, which the quarantine keeps for an operator.
                ApiError::Refused { .. } => (
                    S::BAD_REQUEST,
                    "upstream-refused",
                    "Tradecloud refused the fetch",
                ),
                ApiError::Upstream { .. } | ApiError::Malformed(_) | ApiError::TooLarge(_) => {
                    (S::BAD_GATEWAY, "upstream-error", "Tradecloud API error")
                }
                ApiError::Timeout => (
                    S::GATEWAY_TIMEOUT,
                    "upstream-timeout",
                    "Tradecloud API timeout",
                ),
                ApiError::Unauthorized | ApiError::Unavailable(_) => (
                    S::SERVICE_UNAVAILABLE,
                    "upstream-unavailable",
                    "Tradecloud API unavailable",
                ),
            },
            WebhookError::ApiNotConfigured => (
                S::SERVICE_UNAVAILABLE,
                "api-not-configured",
                "Tradecloud API not configured",
            ),
            WebhookError::Quarantine { .. } => (
                S::SERVICE_UNAVAILABLE,
                "quarantine-unavailable",
                "Quarantine unavailable",
            ),
            WebhookError::Panic => (
                S::SERVICE_UNAVAILABLE,
                "internal",
                "Temporarily unavailable",
            ),
        };
        Problem::new(status, slug, title, detail)
    }

    /// The answer's `detail`: the error's own text, but for a failure of the relay's own
    /// stores or queue. Their text is the AWS or SQLite error (account id, role, table and
    /// queue names, file paths), which the sender has no use for and should not learn: it
    /// gets what happened and the request id under which the log keeps the cause.
    fn public_detail(&self) -> String {
        const SEE_LOG: &str = "the relay's log has the cause under this answer's requestId; \
                               Tradecloud retries a 503";
        match self {
            WebhookError::Relay(RelayError::Dedupe(_)) => {
                format!("the dedupe store is unavailable: {SEE_LOG}")
            }
            WebhookError::Relay(RelayError::Sink(_)) => {
                format!("the queue did not accept the message: {SEE_LOG}")
            }
            WebhookError::Quarantine { reason, .. } => format!(
                "the request was refused ({reason}) but could not be quarantined, so it is \
                 not refused yet: {SEE_LOG}"
            ),
            other => other.to_string(),
        }
    }

    /// What became of the request, by the status it is answered with.
    fn outcome(&self) -> AnswerOutcome {
        match self.problem().status.as_u16() {
            401 => AnswerOutcome::Unauthorized,
            413 => AnswerOutcome::TooLarge,
            415 => AnswerOutcome::UnsupportedMediaType,
            404 => AnswerOutcome::NotFound,
            405 => AnswerOutcome::MethodNotAllowed,
            400 => AnswerOutcome::Invalid,
            502 => AnswerOutcome::UpstreamError,
            504 => AnswerOutcome::UpstreamTimeout,
            _ => AnswerOutcome::Unavailable,
        }
    }
}

/// What the quarantine needs from the request, taken before the body is consumed.
struct RequestInfo {
    request_id: String,
    received_at: chrono::DateTime<Utc>,
    method: Method,
    uri: String,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    /// When the answer must be out, refusals included.
    deadline: Deadline,
}

impl RequestInfo {
    fn of(
        method: &Method,
        uri: &http::Uri,
        headers: &HeaderMap,
        request_id: Option<&RequestId>,
        deadline: Deadline,
    ) -> Self {
        Self {
            deadline,
            request_id: request_id.map(|r| r.0.clone()).unwrap_or_default(),
            received_at: Utc::now(),
            method: method.clone(),
            uri: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| uri.path().to_owned()),
            content_type: headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            headers: headers
                .iter()
                .filter(|(name, _)| !SECRET_HEADERS.contains(&name.as_str()))
                .map(|(name, value)| {
                    (
                        name.as_str().to_owned(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }
}

impl WebhookApp {
    fn authenticate(&self, parts: &http::request::Parts) -> Result<(), WebhookError> {
        self.settings
            .credentials
            .verify_headers(&parts.headers, parts.extensions.get::<GatewayJwt>())
            .map_err(WebhookError::Unauthorized)
    }

    /// The request's deadline: the host's (a Lambda invocation's) or the configured budget
    /// from now, whichever passes first.
    fn deadline(&self, parts: &http::request::Parts) -> Deadline {
        let budget = Deadline::after(self.settings.request_budget);
        match parts.extensions.get::<Deadline>() {
            Some(host) => budget.earliest(*host),
            None => budget,
        }
    }

    /// Answers an error: quarantines first when the error is a final refusal, adds the headers
    /// the status needs, records the outcome.
    async fn refuse(&self, info: &RequestInfo, body: &[u8], error: WebhookError) -> Response {
        let mut error = error;
        let mut quarantined = false;
        if error.quarantines() {
            let reason = error.to_string();
            let kept = QuarantinedRequest {
                received_at: info.received_at,
                method: info.method.to_string(),
                uri: info.uri.clone(),
                content_type: info.content_type.clone(),
                headers: info.headers.clone(),
                body: body.to_vec(),
                reason: reason.clone(),
            };
            // Within the request's time: a refusal late in the budget (a GET whose fetch was
            // refused after retries) must still be answered before the host's limit.
            let keep = info.deadline.clean_up(self.quarantine.keep(&kept)).await;
            let keep = keep.unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "no time left to keep the request within its deadline".to_owned(),
                ))
            });
            match keep {
                Ok(()) => {
                    quarantined = true;
                    tracing::info!(reason = %escape_control(&reason), "request quarantined");
                }
                Err(source) => {
                    tracing::error!(
                        error = %escape_control(&source.to_string()),
                        reason = %escape_control(&reason),
                        "quarantine failed; answering 503"
                    );
                    error = WebhookError::Quarantine { reason, source };
                }
            }
        }
        let span = tracing::Span::current();
        span.record("outcome", error.outcome().as_str());
        // Refusal reasons quote the request (XML names, ids): escaped, they cannot forge lines.
        let text = error.to_string();
        let text = escape_control(&text);
        match &error {
            WebhookError::Unauthorized(_) => tracing::info!(reason = %text, "not authenticated"),
            e if e.problem().status.is_server_error() => {
                tracing::warn!(error = %text, "transient failure")
            }
            _ => tracing::info!(reason = %text, "refused"),
        }
        let mut problem = error.problem().with_request_id(info.request_id.clone());
        if let WebhookError::Decode(e) = &error
            && let Some(field) = e.field_path()
        {
            // Says which field in a form a program can read, besides the prose in `detail`.
            problem.field = Some(field.to_owned());
        }
        if problem.status.is_server_error() {
            problem.retry_after = Some(self.settings.retry_after_seconds);
        }
        if problem.status == StatusCode::UNAUTHORIZED {
            problem.www_authenticate = self.settings.credentials.challenges();
        }
        if let WebhookError::MethodNotAllowed { path, .. } | WebhookError::Head { path } = &error {
            problem.allow = Some(HeaderValue::from_static(allowed_methods(path)));
        }
        let mut response = problem.into_response();
        response.extensions_mut().insert(Answered {
            outcome: error.outcome(),
            quarantined,
        });
        response
    }

    async fn handle_post(&self, route: PostRoute, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let deadline = self.deadline(&parts);
        let info = RequestInfo::of(
            &parts.method,
            &parts.uri,
            &parts.headers,
            parts.extensions.get(),
            deadline,
        );
        if let Err(e) = self.authenticate(&parts) {
            return self.refuse(&info, &[], e).await;
        }
        let body = match self.read_body(&parts.headers, body, &deadline).await {
            Ok(body) => body,
            Err(e) => return self.refuse(&info, &[], e).await,
        };
        match self.process_post(route, &info, &body, &deadline).await {
            Ok((outcome, lenient)) => {
                let mut response = answer(outcome);
                if lenient > 0 {
                    response.extensions_mut().insert(LenientFields(lenient));
                }
                response
            }
            Err(e) => self.refuse(&info, &body, e).await,
        }
    }

    /// Reads the body within the limit and the deadline: a client that stalls mid-body is
    /// answered 503 (if it is Tradecloud, it retries) instead of holding the request open.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Body,
        deadline: &Deadline,
    ) -> Result<Bytes, WebhookError> {
        let limit = self.settings.max_body_bytes;
        // Refuse early when the client announces too much, without reading it.
        let announced = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > limit as u64) {
            return Err(WebhookError::TooLarge { limit });
        }
        let collected = deadline
            .run("reading the body", Limited::new(body, limit).collect())
            .await
            .map_err(WebhookError::BodyTimeout)?;
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.is::<LengthLimitError>() => Err(WebhookError::TooLarge { limit }),
            Err(e) => Err(WebhookError::BodyRead(e.to_string())),
        }
    }

    async fn process_post(
        &self,
        route: PostRoute,
        info: &RequestInfo,
        body: &[u8],
        deadline: &Deadline,
    ) -> Result<(Outcome, usize), WebhookError> {
        let limits = DecodeLimits {
            max_lines: self.settings.max_lines,
        };
        let decoded = decode_webhook_with(body, info.content_type.as_deref(), &limits)
            .map_err(WebhookError::Decode)?;
        let lenient = decoded.leniencies.total();
        if lenient > 0 {
            warn_lenient(&decoded.leniencies);
        }
        // The body's own text when it is the payload's: forwarded as sent, not written anew.
        let payload = match decoded.payload_text(body) {
            Some(text) => {
                let value = decoded.payload;
                let Ok(payload) = Payload::as_sent(Arc::from(text), |_| Ok::<_, Infallible>(value));
                payload
            }
            None => Payload::value(decoded.payload),
        };
        let event = InboundEvent {
            kind: decoded.body.kind(),
            id: decoded.body.object_id().to_owned(),
            event_name: decoded.body.event_name.clone(),
            version: decoded.body.version(),
            last_updated_at: decoded.body.last_updated_at().map(str::to_owned),
            message_id: decoded.body.message_id().map(str::to_owned),
            line_ids: decoded.body.line_ids(),
            format: decoded.format,
            payload,
        };
        let span = tracing::Span::current();
        span.record("kind", event.kind.as_str());
        span.record("id", escape_control(&event.id).as_ref());
        span.record("event_name", escape_control(&event.event_name).as_ref());
        if !route.accepts(event.kind) {
            return Err(WebhookError::KindMismatch {
                route: route.path(),
                expected: match route {
                    PostRoute::Orders | PostRoute::OrderDocuments => "order and order-documents",
                    PostRoute::Shipments => "shipment",
                    PostRoute::Any => "any",
                },
                found: event.kind,
            });
        }
        Ok((
            self.relay.relay_event(event, body, deadline).await?,
            lenient,
        ))
    }

    async fn handle_get(&self, kind: ObjectKind, id: Option<String>, request: Request) -> Response {
        let (parts, _body) = request.into_parts();
        let deadline = self.deadline(&parts);
        let info = RequestInfo::of(
            &parts.method,
            &parts.uri,
            &parts.headers,
            parts.extensions.get(),
            deadline,
        );
        if let Err(e) = self.authenticate(&parts) {
            return self.refuse(&info, &[], e).await;
        }
        if parts.method == Method::HEAD {
            let path = parts.uri.path().to_owned();
            return self.refuse(&info, &[], WebhookError::Head { path }).await;
        }
        match self.process_get(kind, id, &deadline).await {
            Ok(outcome) => answer(outcome),
            Err(e) => self.refuse(&info, &[], e).await,
        }
    }

    async fn process_get(
        &self,
        kind: ObjectKind,
        id: Option<String>,
        deadline: &Deadline,
    ) -> Result<Outcome, WebhookError> {
        let (what, param, route) = match kind {
            ObjectKind::Shipment => ("shipment", "shipmentId", "/webhook/shipments"),
            _ => ("order", "orderId", "/webhook/orders"),
        };
        let span = tracing::Span::current();
        span.record("kind", kind.as_str());
        let id = id
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .ok_or(WebhookError::MissingId { param, route })?;
        span.record("id", escape_control(&id).as_ref());
        let api = self.api.as_ref().ok_or(WebhookError::ApiNotConfigured)?;
        let fetch = async {
            match kind {
                ObjectKind::Shipment => api.fetch_shipment(&id).await,
                _ => api.fetch_order(&id).await,
            }
        };
        // The client retries within its own budget; the request's deadline cuts it short, so
        // the answer (504, Tradecloud retries) goes out in time.
        let fetched = deadline
            .run("the Tradecloud fetch", fetch)
            .await
            .unwrap_or(Err(ApiError::Timeout));
        let object = match fetched {
            Ok(object) => object,
            Err(ApiError::NotFound) => return Err(WebhookError::NotFound { what, id }),
            Err(source) => return Err(WebhookError::Api { what, source }),
        };
        if !object.is_object() {
            return Err(WebhookError::Api {
                what,
                source: ApiError::Malformed(format!("the {what} is not a JSON object")),
            });
        }
        Ok(self
            .relay
            .relay_object(kind, &id, object, Source::WebhookGet, deadline)
            .await?)
    }
}

/// The success answers: 202 when enqueued, 200 when filtered or a duplicate, each with a small
/// JSON body (no payload).
fn answer(outcome: Outcome) -> Response {
    tracing::Span::current().record("outcome", outcome.as_str());
    tracing::info!("relayed");
    let (status, body) = match &outcome {
        Outcome::Enqueued {
            dedupe_key,
            kind,
            id,
        } => (
            StatusCode::ACCEPTED,
            json!({"outcome": "enqueued", "dedupeKey": dedupe_key, "kind": kind, "id": id}),
        ),
        Outcome::Duplicate {
            dedupe_key,
            kind,
            id,
        } => (
            StatusCode::OK,
            json!({"outcome": "duplicate", "dedupeKey": dedupe_key, "kind": kind, "id": id}),
        ),
        Outcome::Filtered { event_name } => (
            StatusCode::OK,
            json!({"outcome": "filtered", "eventName": event_name}),
        ),
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.extensions_mut().insert(Answered {
        outcome: AnswerOutcome::from(&outcome),
        quarantined: false,
    });
    response
}

/// One WARN per message naming the fields of an unexpected type, which were forwarded as sent.
/// The paths come from the body, so their control characters are escaped.
pub fn warn_lenient(leniencies: &tradecloud_model::Leniencies) {
    let fields = leniencies
        .kept()
        .iter()
        .map(|l| l.to_string().escape_debug().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    tracing::warn!(
        count = leniencies.total(),
        fields = %fields,
        "fields read leniently (each says whether it is forwarded as sent)"
    );
}

fn allowed_methods(path: &str) -> &'static str {
    let path = path.trim_end_matches('/');
    if path == "/webhook/orders" || path == "/webhook/shipments" {
        "GET, POST"
    } else if path.starts_with("/webhook/orders/") || path.starts_with("/webhook/shipments/") {
        "GET"
    } else {
        "POST"
    }
}

type AppState = State<Arc<WebhookApp>>;

async fn post_any(State(app): AppState, request: Request) -> Response {
    app.handle_post(PostRoute::Any, request).await
}

async fn post_orders(State(app): AppState, request: Request) -> Response {
    app.handle_post(PostRoute::Orders, request).await
}

async fn post_order_documents(State(app): AppState, request: Request) -> Response {
    app.handle_post(PostRoute::OrderDocuments, request).await
}

async fn post_shipments(State(app): AppState, request: Request) -> Response {
    app.handle_post(PostRoute::Shipments, request).await
}

// `Path<String>` cannot fail for a single `{id}` segment except on invalid percent-encoding;
// that case falls back to the raw segment so the answer stays ours (problem+json).
async fn get_order_by_path(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let id = id
        .map(|Path(id)| id)
        .ok()
        .or_else(|| last_segment(&request));
    app.handle_get(ObjectKind::Order, id, request).await
}

async fn get_shipment_by_path(
    State(app): AppState,
    id: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let id = id
        .map(|Path(id)| id)
        .ok()
        .or_else(|| last_segment(&request));
    app.handle_get(ObjectKind::Shipment, id, request).await
}

async fn get_order_by_query(
    State(app): AppState,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    request: Request,
) -> Response {
    let id = query.ok().and_then(|Query(mut q)| q.remove("orderId"));
    app.handle_get(ObjectKind::Order, id, request).await
}

async fn get_shipment_by_query(
    State(app): AppState,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    request: Request,
) -> Response {
    let id = query.ok().and_then(|Query(mut q)| q.remove("shipmentId"));
    app.handle_get(ObjectKind::Shipment, id, request).await
}

fn last_segment(request: &Request) -> Option<String> {
    request.uri().path().rsplit('/').next().map(str::to_owned)
}

async fn unknown_route(State(app): AppState, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    app.refuse_route(request, WebhookError::UnknownRoute(path))
        .await
}

async fn method_not_allowed(State(app): AppState, request: Request) -> Response {
    let error = WebhookError::MethodNotAllowed {
        method: request.method().clone(),
        path: request.uri().path().to_owned(),
    };
    app.refuse_route(request, error).await
}

impl WebhookApp {
    /// A request to a wrong route or with a wrong method: authenticated first (strangers learn
    /// nothing about the routes), then refused; a misconfigured Tradecloud URL still sends a
    /// whole message, so the body is read (within the limit) for the quarantine.
    async fn refuse_route(&self, request: Request, error: WebhookError) -> Response {
        let (parts, body) = request.into_parts();
        let deadline = self.deadline(&parts);
        let info = RequestInfo::of(
            &parts.method,
            &parts.uri,
            &parts.headers,
            parts.extensions.get(),
            deadline,
        );
        if let Err(e) = self.authenticate(&parts) {
            return self.refuse(&info, &[], e).await;
        }
        if parts.method == Method::HEAD {
            let path = parts.uri.path().to_owned();
            return self.refuse(&info, &[], WebhookError::Head { path }).await;
        }
        match self.read_body(&parts.headers, body, &deadline).await {
            Ok(body) => self.refuse(&info, &body, error).await,
            // A body that stalled, broke off or is too large is answered as such: a stalled
            // one is 503 (Tradecloud sends it again), and none of them leaves an empty copy
            // in the quarantine under the route's refusal.
            Err(unread) => self.refuse(&info, &[], unread).await,
        }
    }
}
