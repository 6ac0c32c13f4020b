//! The sample API Gateway v2 events in `events/` through lambda_http's event decoding and the
//! Lambda's router (with in-memory ports): what `cargo lambda invoke --data-file` would do.

use std::sync::Arc;

use http_body_util::BodyExt;
use serde_json::Value;
use tcrelay_core::testing::{FakeTradecloud, MemoryDedupe, MemoryQuarantine, MemorySink};
use tcrelay_core::{
    EventFilter, Source, WebhookApp, WebhookCredentials, WebhookSettings, webhook_router,
};
use tower::ServiceExt;
use webhook::with_lambda_request_id;

const ORDER_ID: &str = "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189";

struct Lambda {
    router: axum::Router,
    sink: Arc<MemorySink>,
    quarantine: Arc<MemoryQuarantine>,
}

fn lambda() -> Lambda {
    // The credential the events carry; docs/config.md gives the same for `cargo lambda invoke`.
    let mut credentials = WebhookCredentials::new();
    credentials.add_basic("tradecloud", "change-me");
    let sink = Arc::new(MemorySink::new());
    let quarantine = Arc::new(MemoryQuarantine::new());
    let api = Arc::new(FakeTradecloud::new());
    api.put_order(
        ORDER_ID,
        serde_json::json!({"id": ORDER_ID, "version": 3, "lastUpdatedAt": "2025-04-23T10:01:53.812Z"}),
    );
    let app = WebhookApp::new(
        WebhookSettings {
            credentials,
            filter: EventFilter::allow_all(),
            max_body_bytes: 6_000_000,
            retry_after_seconds: 30,
        },
        sink.clone(),
        Arc::new(MemoryDedupe::default()),
        quarantine.clone(),
        Some(api),
    );
    Lambda {
        router: with_lambda_request_id(webhook_router(Arc::new(app))),
        sink,
        quarantine,
    }
}

/// Invokes the router with one file of `events/` and returns status and JSON body.
async fn invoke(lambda: &Lambda, file: &str) -> (u16, Value) {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let request = lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let response = lambda.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn post_json_and_base64_txml_events_give_the_same_envelope_payload() {
    let json_side = lambda();
    let (status, body) = invoke(&json_side, "post-order-json.json").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], ORDER_ID);

    let txml_side = lambda();
    let (status, body) = invoke(&txml_side, "post-order-txml.json").await;
    assert_eq!(status, 202, "{body}");
    let (j, x) = (
        &json_side.sink.envelopes()[0],
        &txml_side.sink.envelopes()[0],
    );
    assert_eq!(j.payload, x.payload);
    assert_eq!(j.dedupe_key, x.dedupe_key);
    assert_eq!(x.format, tradecloud_model::Format::Txml);

    // The same message in the other format is a duplicate.
    let (status, body) = invoke(&json_side, "post-order-txml.json").await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
}

#[tokio::test]
async fn get_events_by_path_and_by_query_fetch_the_order() {
    let l = lambda();
    let (status, body) = invoke(&l, "get-order-by-path.json").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(l.sink.envelopes()[0].source, Source::WebhookGet);
    let (status, body) = invoke(&l, "get-order-by-query.json").await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );

    let fresh = lambda();
    let (status, _) = invoke(&fresh, "get-order-by-query.json").await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn bad_credentials_event_is_401_and_malformed_body_event_is_400_with_gateway_request_id() {
    let l = lambda();
    let (status, body) = invoke(&l, "post-bad-credentials.json").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["requestId"], "bad-credentials-1");
    assert!(l.quarantine.kept().is_empty());

    let (status, body) = invoke(&l, "post-malformed-body.json").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["requestId"], "malformed-1");
    let kept = l.quarantine.kept();
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0]
            .headers
            .iter()
            .all(|(name, _)| name != "authorization")
    );
    assert!(l.sink.envelopes().is_empty());
}
