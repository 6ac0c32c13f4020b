//! The webhook Router over the real AWS adapters against moto's server (SQS, DynamoDB, S3):
//! messages and attributes on the queue, duplicates suppressed through DynamoDB, the quarantine,
//! and an outage of the AWS side (all of it, or S3 alone) answered 503 and recovered from
//! without loss or duplicate.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine as _;
use serde_json::Value;
use tcrelay_aws::testing::{
    MotoOptions, MotoResources, moto_options, receive_all, string_attribute,
};
use tcrelay_aws::{
    AwsClients, ClaimCheck, DedupeConfig, DynamoDedupeStore, PayloadS3Pointer, SqsQuarantine,
    SqsSink, SqsSinkConfig,
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
    let base = serve_app(
        &aws,
        aws.clients.s3.clone(),
        SqsSinkConfig::new(aws.queue_url.clone()),
    )
    .await;
    Setup { base, aws }
}

/// The webhook over `aws`'s queue, table and quarantine, with its claim check writing through
/// `s3` (moto's, or one that points at a broken endpoint), served on loopback; its base URL.
async fn serve_app(
    aws: &MotoResources,
    s3: aws_sdk_s3::Client,
    sink_config: SqsSinkConfig,
) -> String {
    let clients = &aws.clients;
    let claim_check = ClaimCheck::new(s3, aws.bucket.clone());
    let sink = SqsSink::new(clients.sqs.clone(), sink_config, Some(claim_check.clone()));
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
    format!("http://{}", serve(webhook_router(Arc::new(app))).await)
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

/// A JSON body nothing needed typing in reaches the ERP exactly as sent (its key order, its
/// escapes); a pretty-printed one, or one with a quoted number, is written anew on one line.
#[tokio::test]
async fn a_json_payload_is_forwarded_as_sent_on_one_line() {
    let moto = Moto::start().await;
    let s = setup(&moto).await;

    let as_sent = r#"{"orderEvent":{"version":2,"orderId":"verbatim-1","note":"caf\u00e9"},"eventName":"OrderIssuedByBuyer"}"#;
    let pretty = "{\n  \"eventName\": \"OrderIssuedByBuyer\",\n  \"orderEvent\": {\"orderId\": \"verbatim-2\", \"version\": 2}\n}";
    let quoted =
        r#"{"orderEvent":{"version":"2","orderId":"verbatim-3"},"eventName":"OrderIssuedByBuyer"}"#;
    for body in [as_sent, pretty, quoted] {
        let answer = post(&s.base, "/webhook/orders", "application/json", body.into()).await;
        assert_eq!(answer.status(), 202, "{body}");
    }

    let messages = receive_all(&s.aws.clients.sqs, &s.aws.queue_url).await;
    assert_eq!(messages.len(), 3);
    let by_id = |id: &str| {
        let m = messages
            .iter()
            .find(|m| attribute(m, "id").as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no message for {id}"));
        m.body().unwrap().to_owned()
    };

    let sent = by_id("verbatim-1");
    assert!(
        sent.ends_with(&format!(r#""payload":{as_sent}}}"#)),
        "{sent}"
    );
    let envelope: Value = serde_json::from_str(&sent).unwrap();
    assert_eq!(
        envelope["payload"],
        serde_json::from_str::<Value>(as_sent).unwrap()
    );

    for id in ["verbatim-2", "verbatim-3"] {
        let written = by_id(id);
        assert!(!written.contains('\n'), "{written}");
        let envelope: Value = serde_json::from_str(&written).unwrap();
        // Written from the decoded value: keys in serde_json's order, numbers typed.
        assert!(
            written.contains(r#""payload":{"eventName":"OrderIssuedByBuyer","orderEvent":{"#),
            "{written}"
        );
        assert_eq!(envelope["payload"]["orderEvent"]["version"], 2, "{written}");
    }
}

/// Messages on the queue, visible or not (moto counts exactly); reading them would hide them
/// from the final read.
async fn queue_depth(aws: &MotoResources) -> usize {
    let answer = aws
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&aws.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let attributes = answer.attributes().expect("attributes");
    [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|name| attributes[name].parse::<usize>().expect("a count"))
    .sum()
}

/// An S3 client with the test's tight bounds for an endpoint that is broken on purpose.
async fn s3_at(addr: std::net::SocketAddr) -> aws_sdk_s3::Client {
    let mut options = moto_options(&format!("http://{addr}"));
    options.operation_timeout = Some(Duration::from_secs(2));
    options.operation_attempt_timeout = Some(Duration::from_secs(1));
    options.connect_timeout = Some(Duration::from_secs(1));
    options.max_attempts = Some(1);
    AwsClients::new(&options.load().await).s3
}

/// S3 alone broken while SQS and DynamoDB work, first stopped (nothing listens on its port),
/// then hanging (it accepts connections and never answers): a message that needs the claim
/// check is answered 503 in time with nothing on the queue, and once S3 is back Tradecloud's
/// retry is enqueued once, its payload readable through the pointer.
#[tokio::test]
async fn with_s3_alone_stopped_or_hanging_a_claim_checked_message_is_answered_503_and_the_retry_enqueued_once()
 {
    let moto = Moto::start().await;
    let s = setup(&moto).await;
    // Every message through the claim check: the fixtures are far below SQS's 1 MiB.
    let claim_check_everything = || SqsSinkConfig {
        claim_check_threshold: 1024.into(),
        ..SqsSinkConfig::new(s.aws.queue_url.clone())
    };
    let stopped = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_addr = hanging.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = hanging.accept().await {
            held.push(connection);
        }
    });
    let healthy = serve_app(&s.aws, s.aws.clients.s3.clone(), claim_check_everything()).await;

    let cases = [
        (
            stopped,
            "/webhook/orders",
            fixture("webhook/order-issued-by-buyer.json"),
        ),
        (
            hanging_addr,
            "/webhook/shipments",
            fixture("webhook/shipment-issued.json"),
        ),
    ];
    // Before each case, the messages of the cases before it are on the queue.
    for (enqueued, (broken, path, body)) in cases.into_iter().enumerate() {
        let base = serve_app(&s.aws, s3_at(broken).await, claim_check_everything()).await;
        let started = std::time::Instant::now();
        let during = post(&base, path, "application/json", body.clone()).await;
        assert_eq!(during.status(), 503, "S3 at {broken} unusable: retryable");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered within the client's bounds, took {:?}",
            started.elapsed()
        );
        assert_eq!(
            queue_depth(&s.aws).await,
            enqueued,
            "nothing on the queue without its payload in S3"
        );

        // S3 is back: Tradecloud's retry reaches a relay whose claim check works.
        let mut outcome = None;
        for _ in 0..40 {
            let answer = post(&healthy, path, "application/json", body.clone()).await;
            if answer.status().is_success() {
                outcome = Some(answer.status().as_u16());
                break;
            }
            assert_eq!(answer.status(), 503, "only 503 while recovering");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(outcome, Some(202), "the retry goes through once S3 is back");
        let late = post(&healthy, path, "application/json", body).await;
        assert_eq!(late.status(), 200, "and a further retry is a duplicate");
    }
    holder.abort();

    let messages = receive_all(&s.aws.clients.sqs, &s.aws.queue_url).await;
    assert_eq!(messages.len(), 2, "each message enqueued exactly once");
    let mut kinds = Vec::new();
    for message in &messages {
        let pointer = PayloadS3Pointer::from_body(message.body().unwrap())
            .expect("the message is a claim-check pointer");
        let object = s
            .aws
            .clients
            .s3
            .get_object()
            .bucket(&pointer.bucket)
            .key(&pointer.key)
            .send()
            .await
            .expect("the pointer's payload is in S3");
        let bytes = object.body.collect().await.unwrap().into_bytes();
        let envelope: Value = serde_json::from_slice(&bytes).expect("an envelope");
        kinds.push(envelope["kind"].as_str().unwrap().to_owned());
    }
    kinds.sort();
    assert_eq!(kinds, ["order", "shipment"]);
}
