//! A graceful shutdown waits for the relay's work that outlived its request: a queue send past
//! the request's deadline is answered 503 and goes on; stopped with the process, its claim
//! would stay in progress, and Tradecloud's retry would wait for its expiry and then be
//! relayed a second time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tcrelay_core::envelope::Envelope;
use tcrelay_core::ports::{EventSink, SinkError};
use tcrelay_sqlite::SqliteStore;

use crate::common::post_order;

/// The SQLite queue, slower than the request's budget.
struct SlowQueue(SqliteStore);

#[async_trait]
impl EventSink for SlowQueue {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        self.0.enqueue(envelopes).await
    }
}

async fn start(store: &SqliteStore, sink: Arc<dyn EventSink>) -> tcrelay::RunningServer {
    let mut ports = tcrelay::Ports::sqlite(store);
    ports.sink = sink;
    tcrelay::start(
        tcrelay::RelayParts {
            webhook: tcrelay_core::WebhookSettings {
                request_budget: Duration::from_millis(300),
                ..crate::common::webhook_settings()
            },
            ports,
            api: None,
            poll_api: None,
            poll: Default::default(),
        },
        tcrelay::ServeOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: None,
            limits: tcrelay::ServerLimits::default(),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn shutdown_waits_for_a_send_that_outlived_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let body = serde_json::json!({
        "eventName": "OrderIssuedByBuyer",
        "orderEvent": {"orderId": "o-1", "lastUpdatedAt": "2025-01-01T00:00:00.000Z"},
        "meta": {"messageId": "m-1"}
    })
    .to_string();
    let client = reqwest::Client::new();

    let server = start(&store, Arc::new(SlowQueue(store.clone()))).await;
    let addr = server.local_addr().to_string();
    let first = post_order(&client, &addr, "tc:pw", body.clone())
        .await
        .unwrap();
    assert_eq!(first.status(), 503, "answered before the slow send ended");
    server.shutdown().await.unwrap();

    // The send went through and settled its claim before the shutdown ended: Tradecloud's
    // retry, at the next start, is a duplicate, not "in progress" and later a second copy.
    let server = start(&store, Arc::new(store.clone())).await;
    let addr = server.local_addr().to_string();
    let retry = post_order(&client, &addr, "tc:pw", body).await.unwrap();
    assert_eq!(retry.status(), 200);
    let answer: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(answer["outcome"], "duplicate", "{answer}");
    assert_eq!(store.stats().await.unwrap().pending, 1);
    server.shutdown().await.unwrap();
}
