//! With AWS unreachable every adapter answers a transient error, quickly, never a panic.

use std::future::Future;
use std::time::{Duration, Instant};

use tcrelay_aws::testing::moto_options;
use tcrelay_aws::{
    AwsClients, ClaimCheck, DedupeConfig, DynamoCursorStore, DynamoDedupeStore, SqsQuarantine,
    SqsSink, SqsSinkConfig,
};
use tcrelay_core::ports::{
    ClaimToken, CursorStore, DedupeStore, EventSink, Quarantine, StoreError,
};
use tokio::net::TcpSocket;
use tradecloud_model::ObjectKind;

use crate::common::envelope;

/// Clients for a loopback port nobody listens on, and the socket that holds it: bound and never
/// listening, so connections are refused and no other test can take the port while it lives
/// (a port closed again could be).
async fn closed_port_clients() -> (AwsClients, TcpSocket) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", socket.local_addr().unwrap());
    let mut options = moto_options(&url);
    options.operation_timeout = Some(Duration::from_secs(3));
    options.max_attempts = Some(2);
    (AwsClients::new(&options.load().await), socket)
}

/// Runs `call` and asserts it finishes within 5 s.
async fn quickly<T>(what: &str, call: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not give up within 5 s"));
    assert!(started.elapsed() < Duration::from_secs(5));
    result
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what}: {result:?}"
    );
}

#[tokio::test]
async fn sinks_report_every_envelope_failed() {
    let (clients, _port) = closed_port_clients().await;
    let envelopes: Vec<_> = (0..12)
        .map(|n| envelope(ObjectKind::Order, &format!("o-{}", n % 2), n, None))
        .collect();
    for queue in ["q", "q.fifo"] {
        let url = format!("http://127.0.0.1:1/000000000000/{queue}");
        let sink = SqsSink::new(clients.sqs.clone(), SqsSinkConfig::new(url), None);
        let err = quickly(queue, sink.enqueue(&envelopes)).await.unwrap_err();
        assert_eq!(err.failed, (0..12).collect::<Vec<_>>(), "{queue}");
    }
    // A too-large envelope whose S3 upload fails is reported too.
    let mut big = envelope(ObjectKind::Order, "o-big", 1, None);
    big.payload = serde_json::json!({"x": "y".repeat(2_000_000)}).into();
    let sink = SqsSink::new(
        clients.sqs.clone(),
        SqsSinkConfig::new("http://127.0.0.1:1/000000000000/q"),
        Some(ClaimCheck::new(clients.s3.clone(), "bucket")),
    );
    let err = quickly("claim check", sink.enqueue(&[big]))
        .await
        .unwrap_err();
    assert_eq!(err.failed, [0]);
    assert!(err.reason.contains("S3"), "{}", err.reason);
}

#[tokio::test]
async fn quarantine_is_unavailable() {
    let (clients, _port) = closed_port_clients().await;
    let quarantine = SqsQuarantine::new(clients.sqs.clone(), "http://127.0.0.1:1/0/q", None);
    let request = tcrelay_core::ports::QuarantinedRequest {
        received_at: chrono::Utc::now(),
        method: "POST".into(),
        uri: "/webhook".into(),
        content_type: None,
        headers: vec![],
        body: b"garbage".to_vec(),
        reason: "malformed".into(),
    };
    assert_unavailable("keep", quickly("keep", quarantine.keep(&request)).await);
}

#[tokio::test]
async fn dedupe_store_is_unavailable() {
    let (clients, _port) = closed_port_clients().await;
    let store = DynamoDedupeStore::new(clients.dynamodb.clone(), DedupeConfig::new("t"));
    assert_unavailable("claim", quickly("claim", store.claim("k", false)).await);
    let token = ClaimToken::generate(false);
    assert_unavailable(
        "complete",
        quickly("complete", store.complete("k", &token)).await,
    );
    assert_unavailable(
        "release",
        quickly("release", store.release("k", &token)).await,
    );
    assert_unavailable("lookup", quickly("lookup", store.lookup("k")).await);
}

#[tokio::test]
async fn cursor_store_and_table_setup_are_unavailable() {
    let (clients, _port) = closed_port_clients().await;
    let store = DynamoCursorStore::new(clients.dynamodb.clone(), "t");
    let lease = Duration::from_secs(60);
    assert_unavailable(
        "acquire",
        quickly("acquire", store.acquire("s", "o", lease)).await,
    );
    assert_unavailable(
        "checkpoint",
        quickly("checkpoint", store.checkpoint("s", "o", 0, "v", None, None)).await,
    );
    assert_unavailable("release", quickly("release", store.release("s", "o")).await);
    assert_unavailable("read", quickly("read", store.read("s")).await);
    assert_unavailable("set", quickly("set", store.set("s", "v")).await);
    assert_unavailable(
        "create table",
        quickly(
            "create table",
            tcrelay_aws::create_table_if_missing(&clients.dynamodb, "t"),
        )
        .await,
    );
}

#[tokio::test]
async fn following_a_pointer_fails_cleanly() {
    let (clients, _port) = closed_port_clients().await;
    let pointer = tcrelay_aws::PayloadS3Pointer {
        bucket: "b".into(),
        key: "k".into(),
    };
    let mut attributes = std::collections::HashMap::new();
    attributes.insert(
        tcrelay_aws::claim_check::PAYLOAD_SIZE_ATTRIBUTE.to_owned(),
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("Number")
            .string_value("10")
            .build()
            .unwrap(),
    );
    let result = quickly(
        "read",
        tcrelay_aws::read_claim_checked(&clients.s3, &pointer.to_body(), &attributes),
    )
    .await;
    assert!(
        matches!(result, Err(tcrelay_aws::ClaimCheckError::S3(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn the_relays_own_options_end_a_hanging_call_within_their_bound() {
    // A service that accepts connections and never answers (as moto frozen by SIGSTOP, or an
    // AWS endpoint that hangs): without a bound the call would wait forever, holding its dedupe
    // claim. `for_relay` is what the three hosts use.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let options = tcrelay_aws::AwsConfigOptions::for_relay(Some(&url));
    let bound = options.operation_timeout.expect("an operation bound");
    let clients = AwsClients::new(&options.load().await);
    let sink = SqsSink::new(
        clients.sqs.clone(),
        SqsSinkConfig::new(format!("{url}/000000000000/q")),
        None,
    );
    let started = Instant::now();
    let result = tokio::time::timeout(
        bound + Duration::from_secs(5),
        sink.enqueue(&[envelope(ObjectKind::Order, "o-1", 1, None)]),
    )
    .await
    .expect("the call gives up by itself, within its bound");
    assert!(result.is_err(), "nothing answered, yet the send succeeded");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "gave up before waiting for an answer at all"
    );
    held.abort();
}
