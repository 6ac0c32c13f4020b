//! `tcrelay serve`'s probes: `GET /health` without credentials, and
//! `/metrics` on the admin address with the counts by channel, kind and outcome and the poll
//! cursor's age. Over real TCP on loopback, with the SQLite ports.

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tcrelay::{RunningServer, ServerLimits};
use tcrelay_core::ports::{ApiError, CursorStore};
use tcrelay_poll::{PageRequest, PollApi, PollConfig, PolledPage};
use tcrelay_sqlite::SqliteStore;

const CREDENTIALS: &str = "tc:pw";

async fn serve() -> (RunningServer, SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("admin.db")).unwrap();
    let server = common::start_sqlite(&store, ServerLimits::default()).await;
    (server, store, dir)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/fixtures/webhook/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The value of the sample `line_start` (name and labels) in a Prometheus text.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn health_answers_200_without_credentials_and_the_webhook_still_asks_for_them() {
    let (server, _store, _dir) = serve().await;
    let client = reqwest::Client::new();
    let addr = server.local_addr();
    let health = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n", "no details");
    // Another method is refused as every refusal is: problem+json naming what is served.
    let post = client
        .post(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD");
    assert_eq!(post.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = post.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "urn:tradecloud-relay:problem:method-not-allowed"
    );
    let webhook = client
        .get(format!("http://{addr}/webhook/orders/o-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 401);
    // A probe is not traffic: nothing counted for it.
    let text = server.counters().prometheus(None).await;
    assert!(!text.contains("kind=\"unknown-route\""), "{text}");
    assert_eq!(server.counters().total().received, 1, "{text}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_by_channel_kind_and_outcome_and_show_the_cursor_age() {
    let (mut server, store, _dir) = serve().await;
    let admin = server
        .start_admin(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    assert_ne!(admin, server.local_addr());
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    store
        .set(
            "orders",
            &an_hour_ago.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        )
        .await
        .unwrap();

    let client = reqwest::Client::new();
    let addr = server.local_addr().to_string();
    let body = fixture("order-issued-by-buyer.json");
    // Enqueued, then the same event again (a duplicate), then a body that is not an event
    // (refused 400 and quarantined).
    for (body, status) in [
        (body.clone(), 202),
        (body, 200),
        (b"{\"not\": \"an event\"}".to_vec(), 400),
    ] {
        let response = common::post_order(&client, &addr, CREDENTIALS, body)
            .await
            .unwrap();
        assert_eq!(response.status(), status);
    }

    let response = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let labels =
        |outcome: &str| format!("{{channel=\"post-json\",kind=\"order\",outcome=\"{outcome}\"}}");
    let received =
        |outcome: &str| sample(&text, &format!("tcrelay_received_total{}", labels(outcome)));
    assert_eq!(received("enqueued"), Some(1.0), "{text}");
    assert_eq!(received("duplicate"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("tcrelay_enqueued_total{}", labels("enqueued"))
        ),
        Some(1.0),
        "{text}"
    );
    let quarantined: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("tcrelay_quarantined_total{"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{text}");
    assert!(
        quarantined[0]
            .starts_with("tcrelay_quarantined_total{channel=\"post-json\",kind=\"order\",")
            && quarantined[0].ends_with(" 1"),
        "{text}"
    );
    assert_eq!(store.quarantine_count().await.unwrap(), 1);
    assert!(
        text.contains("# TYPE tcrelay_received_total counter"),
        "{text}"
    );
    // No claim outlived its expiry here.
    assert_eq!(
        sample(&text, "tcrelay_dedupe_take_overs_total"),
        Some(0.0),
        "{text}"
    );

    let age = sample(&text, "tcrelay_poll_cursor_age_seconds{stream=\"orders\"}")
        .expect("the orders cursor's age");
    assert!((3600.0..3700.0).contains(&age), "{age}\n{text}");
    // Never polled: no age to tell.
    assert!(!text.contains("stream=\"shipments\""), "{text}");

    // The admin address answers /health too; the webhook address has no /metrics.
    let health = client
        .get(format!("http://{admin}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let leaked = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_ne!(leaked.status(), 200);
    server.shutdown().await.unwrap();
}

/// Tradecloud refusing our login on every page, as with a wrong TRADECLOUD_PASSWORD.
struct WrongPassword;

#[async_trait::async_trait]
impl PollApi for WrongPassword {
    async fn fetch_page(&self, _request: &PageRequest) -> Result<PolledPage, ApiError> {
        Err(ApiError::Unauthorized)
    }
}

#[tokio::test]
async fn a_stream_that_never_polled_successfully_shows_its_failed_runs_and_the_start_age() {
    // A fresh deployment with a wrong password: no run ever saves a cursor. The alert on the
    // cursor's age must still fire, and the failed runs must show.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("never.db")).unwrap();
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let poll = PollConfig::from_env_map(&tcrelay_core::env::env_map(&[
        ("TCRELAY_POLL_STREAMS", "orders"),
        ("TCRELAY_POLL_START", &two_hours_ago),
    ]))
    .unwrap();
    let parts = tcrelay::RelayParts {
        webhook: crate::common::webhook_settings(),
        ports: tcrelay::Ports::sqlite(&store),
        api: None,
        poll_api: Some(Arc::new(WrongPassword)),
        poll,
    };
    let mut server = tcrelay::start(
        parts,
        tcrelay::ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: Some(Duration::from_millis(50)),
            limits: ServerLimits::default(),
        },
    )
    .await
    .unwrap();
    let admin = server
        .start_admin(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let scrape = || async {
        client
            .get(format!("http://{admin}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let failed = "tcrelay_poll_failed_runs_total{stream=\"orders\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = scrape().await;
        if sample(&text, failed).is_some_and(|n| n >= 2.0) {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed runs counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        text.contains("# TYPE tcrelay_poll_failed_runs_total counter"),
        "{text}"
    );
    assert_eq!(
        store.read("orders").await.unwrap().and_then(|c| c.value),
        None
    );
    let age = sample(&text, "tcrelay_poll_cursor_age_seconds{stream=\"orders\"}")
        .expect("the age of TCRELAY_POLL_START, with no cursor yet");
    assert!((7200.0..7300.0).contains(&age), "{age}\n{text}");
    // A stream not polled has neither series.
    assert!(!text.contains("stream=\"shipments\""), "{text}");
    server.shutdown().await.unwrap();
}
