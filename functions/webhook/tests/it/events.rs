//! The sample API Gateway v2 events in `events/` through lambda_http's event decoding and the
//! Lambda's router (with in-memory ports): what `cargo lambda invoke --data-file` would do.

use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use serde_json::Value;
use tcrelay_core::ports::DedupeStore;
use tcrelay_core::testing::{
    FakeTradecloud, MemoryDedupe, MemoryQuarantine, MemorySink, overtaken_claims,
};
use tcrelay_core::{
    CountingTakeOvers, EventFilter, Source, WebhookApp, WebhookCredentials, WebhookSettings,
    webhook_router,
};
use tower::ServiceExt;
use webhook::metrics::with_emf_metrics_to;
use webhook::with_lambda_context;

const ORDER_ID: &str = "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189";

struct Lambda {
    router: axum::Router,
    metrics: Arc<Mutex<Vec<Value>>>,
    sink: Arc<MemorySink>,
    quarantine: Arc<MemoryQuarantine>,
    /// The store as the app sees it (counting take-overs), and the memory store under it.
    dedupe: Arc<CountingTakeOvers>,
    memory: Arc<MemoryDedupe>,
}

/// The issuer in `post-order-entra-id.json`'s authorizer claims.
const ENTRA_ISSUER: &str =
    "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";

/// The client (`azp`) in `post-order-entra-id.json`'s authorizer claims: Tradecloud's app
/// registration.
const ENTRA_CLIENT: &str = "11111111-1111-1111-1111-111111111111";

fn basic_credentials() -> WebhookCredentials {
    // The credential the events carry; docs/config.md gives the same for `cargo lambda invoke`.
    let mut credentials = WebhookCredentials::new();
    credentials.add_basic("tradecloud", "change-me");
    credentials
}

fn lambda() -> Lambda {
    lambda_with(basic_credentials())
}

fn lambda_with(credentials: WebhookCredentials) -> Lambda {
    let sink = Arc::new(MemorySink::new());
    let quarantine = Arc::new(MemoryQuarantine::new());
    let api = Arc::new(FakeTradecloud::new());
    api.put_order(
        ORDER_ID,
        serde_json::json!({"id": ORDER_ID, "version": 3, "lastUpdatedAt": "2025-04-23T10:01:53.812Z"}),
    );
    let memory = Arc::new(MemoryDedupe::default());
    let dedupe = Arc::new(CountingTakeOvers::new(memory.clone()));
    let take_overs = dedupe.count();
    let app = WebhookApp::new(
        WebhookSettings {
            credentials,
            filter: EventFilter::allow_all(),
            max_body_bytes: 6_000_000,
            max_lines: tradecloud_model::DEFAULT_MAX_LINES,
            retry_after_seconds: 30,
            request_budget: std::time::Duration::from_secs(25),
        },
        sink.clone(),
        dedupe.clone(),
        quarantine.clone(),
        Some(api),
    );
    let metrics = Arc::new(Mutex::new(Vec::new()));
    let lines = Arc::clone(&metrics);
    Lambda {
        // Layered as in main.rs.
        router: with_emf_metrics_to(
            with_lambda_context(webhook_router(Arc::new(app))),
            take_overs,
            Arc::new(move |line: String| {
                lines
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }),
        ),
        metrics,
        sink,
        quarantine,
        dedupe,
        memory,
    }
}

/// Invokes the router with one file of `events/` and returns status and JSON body.
async fn invoke(lambda: &Lambda, file: &str) -> (u16, Value) {
    invoke_text(lambda, file, &read_event(file)).await
}

fn read_event(file: &str) -> String {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn invoke_text(lambda: &Lambda, file: &str, text: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(text).unwrap_or_else(|e| panic!("{file}: {e}"));
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
    assert_eq!(json_side.metrics.lock().unwrap()[0]["Enqueued"], 1);

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
    assert_eq!(json_side.metrics.lock().unwrap()[1]["Duplicates"], 1);
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

    // One EMF line per request, from the core's record of the outcome.
    let metrics = l.metrics.lock().unwrap();
    assert_eq!(metrics.len(), 2);
    assert_eq!(
        (
            &metrics[0]["Reason"],
            &metrics[0]["Rejected"],
            &metrics[0]["Quarantined"]
        ),
        (
            &Value::from("unauthorized"),
            &Value::from(1),
            &Value::from(0)
        )
    );
    assert_eq!(
        (
            &metrics[1]["Reason"],
            &metrics[1]["Rejected"],
            &metrics[1]["Quarantined"]
        ),
        (&Value::from("invalid"), &Value::from(1), &Value::from(1))
    );
}

#[tokio::test]
async fn a_token_verified_by_the_gateway_authorizer_is_accepted_only_from_the_trusted_issuer() {
    // Entra ID mode: API Gateway's JWT authorizer verified the token and put its claims in the
    // request context; the function accepts it in place of a Basic credential.
    let mut trusting = basic_credentials();
    trusting.trust_gateway_jwt(ENTRA_ISSUER, &[ENTRA_CLIENT]);
    let l = lambda_with(trusting);
    let (status, body) = invoke(&l, "post-order-entra-id.json").await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(l.sink.envelopes().len(), 1);

    // Not configured for gateway tokens: the Bearer token itself is not a credential.
    let l = lambda();
    let (status, body) = invoke(&l, "post-order-entra-id.json").await;
    assert_eq!(status, 401, "{body}");
    assert!(l.sink.envelopes().is_empty());

    // A token from another issuer (another tenant) is refused.
    let mut other = basic_credentials();
    other.trust_gateway_jwt(
        "https://login.microsoftonline.com/another-tenant/v2.0",
        &[ENTRA_CLIENT],
    );
    let l = lambda_with(other);
    let (status, _) = invoke(&l, "post-order-entra-id.json").await;
    assert_eq!(status, 401);

    // The same request without the authorizer's context (a route without the authorizer, or a
    // caller reaching the function some other way) is refused: only the gateway vouches.
    let mut event: Value = serde_json::from_str(&read_event("post-order-entra-id.json")).unwrap();
    event["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let mut trusting = basic_credentials();
    trusting.trust_gateway_jwt(ENTRA_ISSUER, &[ENTRA_CLIENT]);
    let l = lambda_with(trusting);
    let (status, body) = invoke_text(&l, "entra-id without authorizer", &event.to_string()).await;
    assert_eq!(status, 401, "{body}");
    assert!(l.sink.envelopes().is_empty());
}

/// Entra ID issues an app-only token for the relay's audience to any client of the tenant that
/// asks (client credentials; a multi-tenant app someone consented to is such a client, and its
/// owner holds its secret): issuer and audience alone let them all in. The function also
/// checks the client the token was issued to (`azp` in v2.0 tokens, `appid` in v1.0), which
/// is Tradecloud's app registration only. Configured as the template configures it.
#[tokio::test]
async fn a_gateway_token_issued_to_another_client_of_the_tenant_is_refused() {
    let config = tcrelay_core::config::WebhookConfig::from_env_map(&tcrelay_core::env::env_map(&[
        (
            tcrelay_core::config::TCRELAY_WEBHOOK_BASIC,
            "tradecloud:change-me",
        ),
        (
            tcrelay_core::config::TCRELAY_WEBHOOK_JWT_ISSUER,
            ENTRA_ISSUER,
        ),
        (
            tcrelay_core::config::TCRELAY_WEBHOOK_JWT_CLIENT_ID,
            ENTRA_CLIENT,
        ),
    ]))
    .unwrap();
    let event: Value = serde_json::from_str(&read_event("post-order-entra-id.json")).unwrap();
    assert_eq!(
        event["requestContext"]["authorizer"]["jwt"]["claims"]["azp"],
        ENTRA_CLIENT
    );
    let claims = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut event = event.clone();
        edit(
            event["requestContext"]["authorizer"]["jwt"]["claims"]
                .as_object_mut()
                .unwrap(),
        );
        event.to_string()
    };

    // Tradecloud's client, by azp (v2.0 token) or by appid (v1.0 token).
    let l = lambda_with(config.credentials.clone());
    let (status, body) = invoke(&l, "post-order-entra-id.json").await;
    assert_eq!(status, 202, "{body}");
    let v1 = claims(&|c| {
        let azp = c.remove("azp").unwrap();
        c.insert("appid".into(), azp);
    });
    let l = lambda_with(config.credentials.clone());
    let (status, body) = invoke_text(&l, "v1.0 token", &v1).await;
    assert_eq!(status, 202, "{body}");

    // Another client of the same tenant, or a token that names no client: refused.
    for (what, text) in [
        (
            "another client",
            claims(&|c| {
                c.insert("azp".into(), "33333333-3333-3333-3333-333333333333".into());
            }),
        ),
        (
            "another client, v1.0",
            claims(&|c| {
                c.remove("azp");
                c.insert(
                    "appid".into(),
                    "33333333-3333-3333-3333-333333333333".into(),
                );
            }),
        ),
        (
            "no client",
            claims(&|c| {
                c.remove("azp");
            }),
        ),
    ] {
        let l = lambda_with(config.credentials.clone());
        let (status, body) = invoke_text(&l, what, &text).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(l.sink.envelopes().is_empty(), "{what}");
    }
}

/// A dedupe take-over (a claim that outlived the in-progress expiry and was claimed by another
/// request, then completed) counts once, on the next request's metric line.
#[tokio::test]
async fn a_take_over_counts_once_on_the_next_metric_line() {
    let lambda = lambda();
    let late = overtaken_claims(lambda.dedupe.as_ref(), &lambda.memory, &["k"]).await;
    lambda.dedupe.complete("k", &late[0].1).await.unwrap();

    for _ in 0..2 {
        invoke(&lambda, "post-order-json.json").await;
    }
    let metrics = lambda.metrics.lock().unwrap();
    let take_overs: Vec<&Value> = metrics.iter().map(|line| &line["TakeOvers"]).collect();
    assert_eq!(take_overs, [1, 0]);
}
