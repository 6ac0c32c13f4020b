//! One fuzz case of the webhook router (feature `testing`): the bytes a fuzzer produces are read
//! as a request (method, credentials, path, headers, body), sent through the router over the
//! in-memory fakes, and the answer is checked against what the router promises a stranger or a
//! buggy sender. The coverage-guided target `router` in `fuzz/` and the regression test over its
//! corpus (`crates/tcrelay-core/tests/it/fuzz_router_corpus.rs`) both call [`run_case`], so a crash found
//! by the fuzzer stays a test once its input is committed.
//!
//! The promises ([`run_case`] panics when one is broken):
//! - the answer's status is one of [`DOCUMENTED_STATUSES`] (never 500, which Tradecloud drops);
//! - no handler panicked (the router would answer 503, which hides the bug from the fuzzer);
//! - without one valid credential nothing is fetched, enqueued, claimed or quarantined;
//! - HEAD does nothing either, even with valid credentials.

use std::sync::Arc;

use axum::body::Body;
use http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::testing::{FakeTradecloud, MemoryDedupe, MemoryQuarantine, MemorySink};
use crate::webhook::Answered;
use crate::{EventFilter, WebhookApp, WebhookCredentials, WebhookSettings, webhook_router};

/// Every status the webhook answers (docs/config.md, "Answers the webhook gives").
pub const DOCUMENTED_STATUSES: [u16; 11] = [200, 202, 400, 401, 404, 405, 413, 415, 502, 503, 504];

const USER: &str = "tradecloud";
const PASSWORD: &str = "fuzz-password";
const TOKEN: &str = "fuzz-token";

const METHODS: [&str; 8] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW",
];

const PATHS: [&str; 10] = [
    "/webhook",
    "/webhook/orders",
    "/webhook/orders/",
    "/webhook/order-documents",
    "/webhook/shipments",
    "/webhook/shipments/",
    "/webhook/orders?orderId=",
    "/webhook/shipments?shipmentId=",
    "/",
    "",
];

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("application/xml"),
    Some("text/plain"),
    Some("application/json; charset=utf-16"),
];

/// The credentials a case sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    ValidBasic,
    ValidBearer,
    WrongBasic,
    /// A valid and a wrong header: must be refused.
    Two,
    /// Header bytes from the input.
    Raw,
}

impl Auth {
    fn of(byte: u8) -> Self {
        match byte % 6 {
            0 => Auth::None,
            1 => Auth::ValidBasic,
            2 => Auth::ValidBearer,
            3 => Auth::WrongBasic,
            4 => Auth::Two,
            _ => Auth::Raw,
        }
    }
}

/// Reads the input front to back; past its end every read is empty.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte()).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken
    }
}

fn basic(user: &str, password: &str) -> HeaderValue {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a header value")
}

/// The request a fuzz input describes: byte 0 the method, byte 1 the credentials, byte 2 a
/// known path, then a length-prefixed path suffix, a content type, up to eight length-prefixed
/// header names and values, and the rest as the body.
fn request_of(data: &[u8]) -> (Request<Body>, Auth, bool) {
    let mut input = Input(data);
    let method = Method::from_bytes(METHODS[usize::from(input.byte()) % METHODS.len()].as_bytes())
        .expect("the methods are tokens");
    let auth = Auth::of(input.byte());
    let base = PATHS[usize::from(input.byte()) % PATHS.len()];
    let suffix = input.bytes();
    let raw = format!("{base}{}", String::from_utf8_lossy(suffix));
    let uri = Uri::try_from(raw.as_str()).unwrap_or_else(|_| {
        Uri::try_from(format!("/webhook/orders/{}", hex::encode(suffix)))
            .unwrap_or(Uri::from_static("/"))
    });
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .expect("method and URI are valid");
    let headers = request.headers_mut();
    match auth {
        Auth::None => {}
        Auth::ValidBasic => {
            headers.insert(header::AUTHORIZATION, basic(USER, PASSWORD));
        }
        Auth::ValidBearer => {
            headers.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {TOKEN}")).expect("a header value"),
            );
        }
        Auth::WrongBasic => {
            headers.insert(header::AUTHORIZATION, basic(USER, "guess"));
        }
        Auth::Two => {
            headers.append(header::AUTHORIZATION, basic(USER, PASSWORD));
            headers.append(header::AUTHORIZATION, basic(USER, "guess"));
        }
        Auth::Raw => {
            if let Ok(value) = HeaderValue::from_bytes(input.bytes()) {
                headers.insert(header::AUTHORIZATION, value);
            }
        }
    }
    if let Some(content_type) = CONTENT_TYPES[usize::from(input.byte()) % CONTENT_TYPES.len()] {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    for _ in 0..(input.byte() % 9) {
        let name = HeaderName::from_bytes(input.bytes());
        let value = HeaderValue::from_bytes(input.bytes());
        if let (Ok(name), Ok(value)) = (name, value) {
            // The credentials are the case's choice above; a fuzzed one would blur "valid".
            if name != header::AUTHORIZATION {
                headers.append(name, value);
            }
        }
    }
    // Raw bytes may spell a valid credential (the fuzzer is good at finding constants).
    let valid = match auth {
        Auth::ValidBasic | Auth::ValidBearer => true,
        Auth::Raw => credentials()
            .verify(request.headers().get(header::AUTHORIZATION))
            .is_ok(),
        _ => false,
    };
    let body = input.0.to_vec();
    *request.body_mut() = Body::from(body);
    (request, auth, valid)
}

fn credentials() -> WebhookCredentials {
    let mut credentials = WebhookCredentials::new();
    credentials.add_basic(USER, PASSWORD).add_bearer(TOKEN);
    credentials
}

/// Runs one fuzz case and panics if the router broke a promise (module docs).
pub fn run_case(data: &[u8]) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(check(data)));
}

async fn check(data: &[u8]) {
    let (request, auth, valid) = request_of(data);
    let head = request.method() == Method::HEAD;
    let described = format!(
        "{} {} auth={auth:?} headers={:?}",
        request.method(),
        request.uri(),
        request.headers()
    );
    let settings = WebhookSettings {
        credentials: credentials(),
        filter: EventFilter::allow_all(),
        max_body_bytes: 64 * 1024,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 1,
        request_budget: std::time::Duration::from_secs(5),
    };
    let sink = Arc::new(MemorySink::new());
    let dedupe = Arc::new(MemoryDedupe::default());
    let quarantine = Arc::new(MemoryQuarantine::new());
    let api = Arc::new(FakeTradecloud::new());
    api.put_order(
        "o-1",
        serde_json::json!({"id": "o-1", "version": 1, "lastUpdatedAt": "2025-01-01T00:00:00.000Z"}),
    );
    let app = WebhookApp::new(
        settings,
        sink.clone(),
        dedupe.clone(),
        quarantine.clone(),
        Some(api.clone() as Arc<dyn crate::ports::TradecloudApi>),
    );
    let router = webhook_router(Arc::new(app));
    let response = router
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status().as_u16();
    let answered = response.extensions().get::<Answered>().copied();
    // The body is part of the answer: reading it must work too.
    let _ = response.into_body().collect().await;
    assert!(
        DOCUMENTED_STATUSES.contains(&status),
        "undocumented status {status} for {described}"
    );
    assert_ne!(
        answered.map(|a| a.outcome),
        Some(crate::webhook::AnswerOutcome::Panic),
        "a handler panicked on {described}"
    );
    if head {
        assert!(
            sink.envelopes().is_empty() && api.calls().is_empty() && quarantine.kept().is_empty(),
            "HEAD had a side effect: {described}"
        );
    }
    if !valid {
        assert!(
            sink.envelopes().is_empty(),
            "enqueued without valid credentials: {described}"
        );
        assert!(
            quarantine.kept().is_empty(),
            "quarantined without valid credentials: {described}"
        );
        assert!(
            api.calls().is_empty(),
            "fetched without valid credentials: {described}"
        );
        assert!(
            dedupe.records().is_empty(),
            "claimed without valid credentials: {described}"
        );
        assert_eq!(
            status, 401,
            "answered {status} without valid credentials: {described}"
        );
    }
}
