//! The webhook Router over the real AWS adapters against moto's server (SQS, DynamoDB, S3):
//! messages and attributes on the queue, duplicates suppressed through DynamoDB, the quarantine,
//! and an outage of the AWS side answered 503 and recovered from without loss or duplicate.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tcrelay_aws::testing::{MotoOptions, MotoResources, receive_all, string_attribute};
use tcrelay_aws::{
    ClaimCheck, DedupeConfig, DynamoDedupeStore, SqsQuarantine, SqsSink, SqsSinkConfig,
};
use tcrelay_core::{EventFilter, WebhookApp, WebhookCredentials, WebhookSettings, webhook_router};
use tcrelay_e2e::{Moto, fixture, serve};

const USER: &str = "tradecloud";
const PASSWORD: &str = "s3cret-for-tests";

struct Setup {
    base: String,
    aws: MotoResources,
}

async fn setup(moto: &Moto) -> Setup {
    let mut options = MotoOptions {
        quarantine: true,
        ..MotoOptions::new(&moto.url)
    };
    // Short bounds, so a frozen service turns into an answer quickly, as the Lambda's own
    // bounds do inside API Gateway's 30 s.
    options.aws.operation_timeout = Some(Duration::from_secs(2));
    options.aws.operation_attempt_timeout = Some(Duration::from_secs(1));
    options.aws.connect_timeout = Some(Duration::from_secs(1));
    options.aws.max_attempts = Some(1);
    let aws = MotoResources::create("e2e-webhook", options).await;
    let clients = &aws.clients;

    let claim_check = ClaimCheck::new(clients.s3.clone(), aws.bucket.clone());
    let sink = SqsSink::new(
        clients.sqs.clone(),
        SqsSinkConfig::new(aws.queue_url.clone()),
        Some(claim_check.clone()),
    );
    let mut dedupe_config = DedupeConfig::new(aws.table.clone());
    // A claim left behind by a request cut off during the outage must free itself quickly.
    dedupe_config.in_progress_expiry = Duration::from_secs(2);
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), dedupe_config);
    let quarantine = SqsQuarantine::new(
        clients.sqs.clone(),
        aws.quarantine().to_owned(),
        Some(claim_check),
    );
    let mut credentials = WebhookCredentials::new();
    credentials.add_basic(USER, PASSWORD);
    let settings = WebhookSettings {
        credentials,
        filter: EventFilter::allow_all(),
        max_body_bytes: 6_000_000,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 5,
        request_budget: Duration::from_secs(25),
    };
    let app = WebhookApp::new(
        settings,
        Arc::new(sink),
        Arc::new(dedupe),
        Arc::new(quarantine),
        None,
    );
    let addr = serve(webhook_router(Arc::new(app))).await;
    Setup {
        base: format!("http://{addr}"),
        aws,
    }
}

fn basic() -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {token}")
}

async fn post(base: &str, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("authorization", basic())
        .header("content-type", content_type)
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("webhook answers")
}

fn attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> Option<String> {
    string_attribute(message, name).map(str::to_owned)
}

#[tokio::test]
async fn events_reach_the_queue_once_with_attributes_and_malformed_ones_the_quarantine() {
    let moto = Moto::start().await;
    let s = setup(&moto).await;

    let json = fixture("webhook/order-issued-by-buyer.json");
    let xml = fixture("webhook/order-issued-by-buyer.xml");
    let first = post(&s.base, "/webhook/orders", "application/json", json).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    // The same message in tXML is the same message: a duplicate, answered 200.
    let again = post(&s.base, "/webhook/orders", "application/xml", xml).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["outcome"], "duplicate");

    let malformed = post(
        &s.base,
        "/webhook/orders",
        "application/json",
        b"{\"eventName\": \"OrderIssuedByBuyer\", \"orderEvent\": {".to_vec(),
    )
    .await;
    assert_eq!(malformed.status(), 400);

    let messages = receive_all(&s.aws.clients.sqs, &s.aws.queue_url).await;
    assert_eq!(messages.len(), 1, "one message, the duplicate suppressed");
    let envelope: Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(envelope["dedupeKey"], first["dedupeKey"]);
    assert_eq!(envelope["source"], "webhook-post");
    assert_eq!(attribute(&messages[0], "kind").as_deref(), Some("order"));
    assert_eq!(
        attribute(&messages[0], "source").as_deref(),
        Some("webhook-post")
    );
    assert_eq!(
        attribute(&messages[0], "eventName").as_deref(),
        envelope["eventName"].as_str()
    );
    assert_eq!(
        attribute(&messages[0], "id").as_deref(),
        envelope["id"].as_str()
    );

    let kept = receive_all(&s.aws.clients.sqs, s.aws.quarantine()).await;
    assert_eq!(kept.len(), 1, "the malformed request is kept");
    let kept: Value = serde_json::from_str(kept[0].body().unwrap()).unwrap();
    let text = kept.to_string().to_ascii_lowercase();
    assert!(
        !text.contains("authorization"),
        "credentials never kept: {text}"
    );
    assert!(!text.contains(&PASSWORD.to_ascii_lowercase()));
    assert!(kept["reason"].as_str().unwrap().contains("JSON"), "{kept}");
}

#[tokio::test]
async fn with_aws_frozen_the_answer_is_503_and_the_retry_is_enqueued_once() {
    let moto = Moto::start().await;
    let s = setup(&moto).await;
    let body = fixture("webhook/shipment-issued.json");

    moto.pause();
    let during = post(&s.base, "/webhook", "application/json", body.clone()).await;
    let status = during.status().as_u16();
    let retry_after = during.headers().get("retry-after").cloned();
    moto.resume();
    assert_eq!(status, 503, "an AWS outage is retryable for Tradecloud");
    assert!(retry_after.is_some(), "503 carries Retry-After");

    // Tradecloud retries until it gets 2xx; a claim the cut-off request may have left
    // behind answers 503 until it expires (2 s here).
    let mut outcome = None;
    for _ in 0..40 {
        let answer = post(&s.base, "/webhook", "application/json", body.clone()).await;
        if answer.status().is_success() {
            outcome = Some(answer.status().as_u16());
            break;
        }
        assert_eq!(answer.status(), 503, "only 503 while recovering");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        outcome,
        Some(202),
        "the retry goes through once AWS is back"
    );
    // And one more retry of the same message is a duplicate.
    let late = post(&s.base, "/webhook", "application/json", body).await;
    assert_eq!(late.status(), 200);

    let messages = receive_all(&s.aws.clients.sqs, &s.aws.queue_url).await;
    assert_eq!(messages.len(), 1, "enqueued exactly once");
    assert_eq!(attribute(&messages[0], "kind").as_deref(), Some("shipment"));
}
