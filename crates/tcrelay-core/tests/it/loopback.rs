//! The router served over a real loopback socket with `axum::serve` (the local runner serves the
//! same router with hyper's server),
//! called with an HTTP client: the happy path and error paths with their headers on the wire.

use crate::common;

use common::*;
use serde_json::Value;

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

#[tokio::test]
async fn over_a_socket_post_is_202_and_bad_credentials_are_401() {
    let h = harness();
    let base = serve(h.router.clone()).await;
    let client = reqwest::Client::new();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);

    let answer = client
        .post(format!("{base}/webhook/orders"))
        .header("authorization", basic(USER, OLD_PASSWORD))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 202);
    assert_eq!(answer.headers()["content-type"], "application/json");
    let json: Value = answer.json().await.unwrap();
    assert_eq!(json["outcome"], "enqueued");
    assert_eq!(h.sink.envelopes().len(), 1);
    assert_eq!(h.sink.envelopes()[0].payload, body);

    let answer = client
        .post(format!("{base}/webhook/orders"))
        .header("authorization", "Bearer nope")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    assert_eq!(
        answer.headers().get_all("www-authenticate").iter().count(),
        2
    );
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["type"], "urn:tradecloud-relay:problem:unauthorized");
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn over_a_socket_a_large_body_is_413_and_an_outage_is_503_with_retry_after() {
    let mut s = settings();
    s.max_body_bytes = 2048;
    let h = harness_with(s, true);
    let base = serve(h.router.clone()).await;
    let client = reqwest::Client::new();

    let answer = client
        .post(format!("{base}/webhook"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(vec![b' '; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 413);
    assert!(answer.headers().get("retry-after").is_none());
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["type"], "urn:tradecloud-relay:problem:too-large");

    h.sink.set_mode(tcrelay_core::testing::Mode::Down);
    let answer = client
        .post(format!("{base}/webhook"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .json(&order_event("OrderLinesAcceptedBySupplier", &["l-1"]))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    assert_eq!(answer.headers()["retry-after"], "7");
    let problem: Value = answer.json().await.unwrap();
    assert_eq!(problem["status"], 503);
    assert_eq!(
        problem["type"],
        "urn:tradecloud-relay:problem:queue-unavailable"
    );
    assert!(h.sink.envelopes().is_empty());
}
