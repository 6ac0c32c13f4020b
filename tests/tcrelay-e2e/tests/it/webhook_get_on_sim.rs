//! GET webhooks end to end: the webhook Router with the real Tradecloud client against the
//! simulator over HTTP, and the real SQLite queue. Token login and refresh, 404, and
//! Tradecloud's failures answered 502/503/504 so that Tradecloud retries.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tcrelay_core::ports::TradecloudApi;
use tcrelay_core::{EventFilter, WebhookApp, WebhookCredentials, WebhookSettings, webhook_router};
use tcrelay_e2e::serve;
use tcrelay_sqlite::SqliteStore;
use tcrelay_tradecloud::ClientApi;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};
use tradecloud_sim::{Endpoint, Fault, FaultRule, SimConfig, Simulator};

const TOKEN: &str = "bearer-token-for-tests";

struct Setup {
    sim: Simulator,
    store: SqliteStore,
    base: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    setup_with_api_url(Simulator::base_url).await
}

/// [`setup`] with the client's API base made from the simulator's by `api_url`.
async fn setup_with_api_url(api_url: fn(&Simulator) -> String) -> Setup {
    let sim = Simulator::start(SimConfig::seeded(11))
        .await
        .expect("simulator");
    let mut config = ClientConfig::new(
        api_url(&sim),
        Credentials::new(sim.username(), sim.password()),
    );
    // Tradecloud's failures must end within a test's patience, as they must within API
    // Gateway's 30 s in production.
    config.timeout = Duration::from_millis(500);
    config.retry_budget = Duration::from_secs(2);
    config.backoff_initial = Duration::from_millis(20);
    config.backoff_max = Duration::from_millis(200);
    let client = TradecloudClient::new(config).expect("client");
    let api: Arc<dyn TradecloudApi> = Arc::new(ClientApi(client));

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("relay.db")).expect("sqlite");
    let mut credentials = WebhookCredentials::new();
    credentials.add_bearer(TOKEN);
    let settings = WebhookSettings {
        credentials,
        filter: EventFilter::allow_all(),
        max_body_bytes: 1_000_000,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 7,
        request_budget: Duration::from_secs(25),
    };
    let app = WebhookApp::new(
        settings,
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Some(api),
    );
    let addr = serve(webhook_router(Arc::new(app))).await;
    Setup {
        sim,
        store,
        base: format!("http://{addr}"),
        _dir: dir,
    }
}

async fn get(base: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("webhook answers")
}

fn ids(sim: &Simulator, class: &str) -> Vec<String> {
    sim.objects()
        .into_iter()
        .filter(|o| o.class == class)
        .map(|o| o.id)
        .collect()
}

async fn queued(store: &SqliteStore) -> Vec<Value> {
    store
        .export(true)
        .await
        .unwrap()
        .into_iter()
        .map(|e| serde_json::from_str(&e.json).unwrap())
        .collect()
}

#[tokio::test]
async fn get_by_path_and_query_enqueue_the_complete_object_and_tokens_renew() {
    let s = setup().await;
    let orders = ids(&s.sim, "order");
    let shipments = ids(&s.sim, "shipment");

    let by_path = get(&s.base, &format!("/webhook/orders/{}", orders[0])).await;
    assert_eq!(by_path.status(), 202);
    // The access token is revoked by Tradecloud: the client logs in again, once.
    s.sim.expire_access_tokens();
    let by_query = get(
        &s.base,
        &format!("/webhook/shipments?shipmentId={}", shipments[0]),
    )
    .await;
    assert_eq!(by_query.status(), 202);
    // The same state again is a duplicate.
    let again = get(&s.base, &format!("/webhook/orders?orderId={}", orders[0])).await;
    assert_eq!(again.status(), 200);

    let envelopes = queued(&s.store).await;
    assert_eq!(envelopes.len(), 2);
    assert_eq!(envelopes[0]["source"], "webhook-get");
    assert_eq!(envelopes[0]["kind"], "order");
    assert_eq!(envelopes[0]["payload"], s.sim.order(&orders[0]).unwrap());
    assert_eq!(envelopes[1]["kind"], "shipment");
    assert_eq!(
        envelopes[1]["payload"],
        s.sim.shipment(&shipments[0]).unwrap()
    );

    let logins = s
        .sim
        .api_requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(Endpoint::Login))
        .count();
    assert_eq!(
        logins, 2,
        "one login, one more after the tokens were revoked"
    );
}

#[tokio::test]
async fn unknown_ids_are_404_and_tradecloud_trouble_is_retryable() {
    let s = setup().await;
    let orders = ids(&s.sim, "order");

    let unknown = get(&s.base, "/webhook/orders/no-such-order").await;
    assert_eq!(unknown.status(), 404);

    // Tradecloud keeps failing past the client's budget: 502, so Tradecloud retries.
    s.sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1_000,
        Fault::Status { status: 503 },
    ));
    let failing = get(&s.base, &format!("/webhook/orders/{}", orders[1])).await;
    assert_eq!(failing.status(), 502);
    assert!(failing.headers().contains_key("retry-after"));
    s.sim.clear_faults();

    // Tradecloud hangs past the client's timeout: 504.
    s.sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1_000,
        Fault::Delay { ms: 3_000 },
    ));
    let hanging = get(&s.base, &format!("/webhook/orders/{}", orders[1])).await;
    assert_eq!(hanging.status(), 504);
    s.sim.clear_faults();

    // After the trouble the same GET goes through, and only once.
    let recovered = get(&s.base, &format!("/webhook/orders/{}", orders[1])).await;
    assert_eq!(recovered.status(), 202);
    assert_eq!(queued(&s.store).await.len(), 1);

    // Tradecloud unreachable altogether: 503.
    let base = s.base.clone();
    s.sim.shutdown().await;
    let unreachable = get(&base, &format!("/webhook/orders/{}", orders[2])).await;
    assert_eq!(unreachable.status(), 503);
    assert_eq!(
        queued(&s.store).await.len(),
        1,
        "nothing enqueued on failure"
    );
}

/// A login Tradecloud answers 404 (an API base URL without `/v2`, or its gateway mid-deploy)
/// or 400 says nothing about the order: answered 404 or 400, Tradecloud would drop the
/// message. Answered 503, Tradecloud retries it until the login works.
#[tokio::test]
async fn a_failed_login_is_answered_503_never_as_a_missing_or_refused_object() {
    let wrong_base =
        setup_with_api_url(|sim| sim.base_url().trim_end_matches("/v2").to_owned()).await;
    let order = ids(&wrong_base.sim, "order").remove(0);
    let answer = get(&wrong_base.base, &format!("/webhook/orders/{order}")).await;
    assert_eq!(answer.status(), 503, "{:?}", answer.text().await);
    assert!(queued(&wrong_base.store).await.is_empty());

    let s = setup().await;
    let orders = ids(&s.sim, "order");
    for (i, status) in [404, 400, 405].into_iter().enumerate() {
        s.sim.add_fault(FaultRule::next(
            Endpoint::Login,
            1,
            Fault::Status { status },
        ));
        let answer = get(&s.base, &format!("/webhook/orders/{}", orders[i])).await;
        assert_eq!(answer.status(), 503, "login answered {status}");
        assert!(answer.headers().contains_key("retry-after"));
    }
    // Once the login works, the retried GET goes through.
    let retried = get(&s.base, &format!("/webhook/orders/{}", orders[0])).await;
    assert_eq!(retried.status(), 202);
    assert_eq!(queued(&s.store).await.len(), 1);
}

/// Tradecloud's odd answers that outlast the client's retries (HTML error pages without
/// `Retry-After`, a 500 among them, bodies broken off or dripping past the timeout): each GET
/// is answered 502, 503 or 504, which Tradecloud retries, never a 4xx or 500 that it drops.
#[tokio::test]
async fn odd_answers_that_persist_are_answered_so_that_tradecloud_retries() {
    let s = setup().await;
    let order = ids(&s.sim, "order").remove(0);
    for fault in [
        Fault::GatewayPage { status: 429 },
        Fault::GatewayPage { status: 500 },
        Fault::GatewayPage { status: 503 },
        Fault::TooManyRequestsUntil {
            retry_after_secs: 60,
        },
        Fault::BrokenBody,
        Fault::Drip { bytes: 8, ms: 50 },
    ] {
        s.sim
            .add_fault(FaultRule::next(Endpoint::OrderGet, 1_000, fault.clone()));
        let answer = get(&s.base, &format!("/webhook/orders/{order}")).await;
        assert!(
            [502, 503, 504].contains(&answer.status().as_u16()),
            "{fault:?}: {}",
            answer.status()
        );
        assert!(answer.headers().contains_key("retry-after"), "{fault:?}");
        s.sim.clear_faults();
    }
    assert!(queued(&s.store).await.is_empty());
    let recovered = get(&s.base, &format!("/webhook/orders/{order}")).await;
    assert_eq!(recovered.status(), 202);
}

/// A login that never answers (Tradecloud's authentication service hanging) holds no GET past
/// the client's budget: the answer is 504, which Tradecloud retries, in time.
#[tokio::test]
async fn a_hanging_login_is_answered_504_within_the_budget() {
    let s = setup().await;
    let order = ids(&s.sim, "order").remove(0);
    s.sim.add_fault(FaultRule::next(
        Endpoint::Login,
        1_000,
        Fault::Delay { ms: 60_000 },
    ));
    let started = std::time::Instant::now();
    let answer = get(&s.base, &format!("/webhook/orders/{order}")).await;
    assert_eq!(answer.status(), 504);
    // The client's budget is 2 s (one attempt may start just before it ends: 0.5 s more).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(queued(&s.store).await.is_empty());
}
