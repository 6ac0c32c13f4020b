//! Shared set-up of the router tests: the router over the in-memory fakes, requests, bodies.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use base64::Engine as _;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tcrelay_core::testing::{FakeTradecloud, MemoryDedupe, MemoryQuarantine, MemorySink};
use tcrelay_core::{EventFilter, WebhookApp, WebhookCredentials, WebhookSettings, webhook_router};
use tower::ServiceExt;

/// The two Basic passwords (rotation) and the Bearer token the harness accepts.
pub const USER: &str = "tradecloud";
pub const OLD_PASSWORD: &str = "old-pass";
pub const NEW_PASSWORD: &str = "new-pass";
pub const TOKEN: &str = "bearer-token-1";

pub struct Harness {
    pub router: Router,
    pub sink: Arc<MemorySink>,
    pub dedupe: Arc<MemoryDedupe>,
    pub quarantine: Arc<MemoryQuarantine>,
    pub api: Arc<FakeTradecloud>,
}

pub fn settings() -> WebhookSettings {
    let mut credentials = WebhookCredentials::new();
    credentials
        .add_basic(USER, OLD_PASSWORD)
        .add_basic(USER, NEW_PASSWORD)
        .add_bearer(TOKEN);
    WebhookSettings {
        credentials,
        filter: EventFilter::allow_all(),
        max_body_bytes: 64 * 1024,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 7,
        request_budget: std::time::Duration::from_secs(25),
    }
}

pub fn harness() -> Harness {
    harness_with(settings(), true)
}

pub fn harness_with(settings: WebhookSettings, with_api: bool) -> Harness {
    let sink = Arc::new(MemorySink::new());
    let dedupe = Arc::new(MemoryDedupe::default());
    let quarantine = Arc::new(MemoryQuarantine::new());
    let api = Arc::new(FakeTradecloud::new());
    let app = WebhookApp::new(
        settings,
        sink.clone(),
        dedupe.clone(),
        quarantine.clone(),
        with_api.then(|| api.clone() as Arc<dyn tcrelay_core::ports::TradecloudApi>),
    );
    Harness {
        router: webhook_router(Arc::new(app)),
        sink,
        dedupe,
        quarantine,
        api,
    }
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

pub fn post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(path).header(header::AUTHORIZATION, basic(USER, NEW_PASSWORD));
    if let Some(ct) = content_type {
        builder = builder.header(header::CONTENT_TYPE, ct);
    }
    builder.body(body.into()).unwrap()
}

pub fn post_json(path: &str, body: &Value) -> Request<Body> {
    post(
        path,
        Some("application/json"),
        serde_json::to_vec(body).unwrap(),
    )
}

pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem with this status and the type
    /// `urn:tradecloud-relay:problem:<slug>`, and returns its `detail`. The status says whether
    /// Tradecloud retries (502/503/504, with `Retry-After`) or drops the message; the slug says
    /// why, so an operator can tell a dedupe outage from a queue outage.
    pub fn assert_problem_of(&self, status: u16, slug: &str) -> String {
        let detail = self.assert_problem(status);
        assert_eq!(
            self.body["type"],
            format!("urn:tradecloud-relay:problem:{slug}"),
            "{}",
            self.body
        );
        detail
    }

    /// Asserts an RFC 9457 problem with this status (any type), and returns its `detail`.
    /// Router tests use [`Answer::assert_problem_of`], which checks the cause too.
    pub fn assert_problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["status"], status);
        assert!(
            self.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:tradecloud-relay:problem:"),
            "{}",
            self.body
        );
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        let retry_after = self.headers.get(header::RETRY_AFTER);
        if status >= 500 {
            assert_eq!(
                retry_after.and_then(|v| v.to_str().ok()),
                Some("7"),
                "Retry-After on {status}: {}",
                self.body
            );
        } else {
            assert!(retry_after.is_none(), "Retry-After on {status}");
        }
        self.body["detail"].as_str().unwrap().to_owned()
    }
}

pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("answer is not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// An order event with one line, as Tradecloud sends it in JSON.
pub fn order_event(event_name: &str, line_ids: &[&str]) -> Value {
    let lines: Vec<Value> = line_ids
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "buyerLine": {"position": "0001"},
                "deliverySchedule": [{"position": "1", "date": "2025-05-01", "quantity": 10.5}],
                "status": {"processStatus": "Confirmed"}
            })
        })
        .collect();
    json!({
        "eventName": event_name,
        "orderEvent": {
            "orderId": "o-1",
            "version": 3,
            "lastUpdatedAt": "2025-04-23T10:01:53.812Z",
            "lines": lines
        },
        "meta": {"messageId": "m-1"}
    })
}

/// [`order_event`]`("OrderLinesAcceptedBySupplier", &["l-1"])` in tXML.
pub const ORDER_EVENT_TXML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<WebhookBody>
  <eventName>OrderLinesAcceptedBySupplier</eventName>
  <orderEvent>
    <orderId>o-1</orderId>
    <version>3</version>
    <lastUpdatedAt>2025-04-23T10:01:53.812Z</lastUpdatedAt>
    <line>
      <id>l-1</id>
      <buyerLine><position>0001</position></buyerLine>
      <deliveryScheduleLine>
        <position>1</position><date>2025-05-01</date><quantity>10.5</quantity>
      </deliveryScheduleLine>
      <status><processStatus>Confirmed</processStatus></status>
    </line>
  </orderEvent>
  <meta><messageId>m-1</messageId></meta>
</WebhookBody>
"#;

/// A shipment event.
pub fn shipment_event(event_name: &str) -> Value {
    json!({
        "eventName": event_name,
        "shipment": {
            "id": "s-1",
            "version": 2,
            "meta": {"lastUpdatedAt": "2025-04-24T08:00:00.000Z", "messageId": "ms-1"},
            "lines": [{"purchaseOrderNumber": "PO1", "purchaseOrderLinePosition": "1", "deliverySchedulePosition": "1"}]
        }
    })
}

/// A complete order as `GET /order/{id}` returns it.
pub fn full_order(id: &str, last_updated_at: &str) -> Value {
    json!({
        "id": id,
        "version": 4,
        "lastUpdatedAt": last_updated_at,
        "buyerOrder": {"purchaseOrderNumber": "PO1"},
        "lines": [{"id": "l-1"}, {"id": "l-2"}]
    })
}
