//! Integration tests against the project's Tradecloud simulator over real HTTP.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use tradecloud_client::{
    ClientConfig, ClientError, Credentials, PollEndpoint, PollQuery, SearchEndpoint,
    TradecloudClient, item_last_updated_at,
};
use tradecloud_sim::{
    ApiRequest, Endpoint, Fault, FaultRule, Quirks, SimConfig, Simulator, WorldConfig,
};

const EPOCH: &str = "2000-01-01T00:00:00.000Z";

fn sim_config() -> SimConfig {
    SimConfig {
        world: WorldConfig {
            initial_orders: 12,
            initial_shipments: 4,
            max_lines: 5,
            ..WorldConfig::default()
        },
        ..SimConfig::default()
    }
}

async fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).await.unwrap()
}

/// Settings scaled down for tests, pointing at `sim`.
fn config(sim: &Simulator) -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(500),
        retry_budget: Duration::from_millis(800),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_requests_per_second: 1000,
        ..ClientConfig::new(
            sim.base_url(),
            Credentials::new(sim.username(), sim.password()),
        )
    }
}

fn ids(sim: &Simulator, class: &str) -> Vec<String> {
    sim.objects()
        .into_iter()
        .filter(|o| o.class == class)
        .map(|o| o.id)
        .collect()
}

fn requests_to(sim: &Simulator, endpoint: Endpoint) -> Vec<ApiRequest> {
    sim.api_requests()
        .into_iter()
        .filter(|r| r.endpoint == Some(endpoint))
        .collect()
}

fn trail(sim: &Simulator) -> Vec<(Endpoint, u16)> {
    sim.api_requests()
        .into_iter()
        .map(|r| (r.endpoint.unwrap(), r.status))
        .collect()
}

#[tokio::test]
async fn sim_login_then_fetch_order_and_shipment() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let order_id = ids(&sim, "order").remove(0);
    let shipment_id = ids(&sim, "shipment").remove(0);

    let order = client.fetch_order(&order_id).await.unwrap();
    assert_eq!(Some(order), sim.order(&order_id));
    let shipment = client.fetch_shipment(&shipment_id).await.unwrap();
    assert_eq!(Some(shipment), sim.shipment(&shipment_id));
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::ShipmentGet, 200)
        ]
    );
    client.logout().await.unwrap();
    assert_eq!(requests_to(&sim, Endpoint::Logout)[0].status, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_path_escapes_stay_in_one_segment() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let order_id = ids(&sim, "order").remove(0);
    // Each would address the real order if it escaped its segment.
    for id in [
        format!("x/../{order_id}"),
        format!("../order/{order_id}"),
        format!("{order_id}?a=b"),
        format!("{order_id}#frag"),
    ] {
        assert_eq!(
            client.fetch_order(&id).await,
            Err(ClientError::NotFound),
            "{id}"
        );
    }
    let targets: Vec<_> = requests_to(&sim, Endpoint::OrderGet)
        .into_iter()
        .map(|r| r.target)
        .collect();
    assert_eq!(
        targets,
        [
            format!("/v2/order/x%2F..%2F{order_id}"),
            format!("/v2/order/..%2Forder%2F{order_id}"),
            format!("/v2/order/{order_id}%3Fa%3Db"),
            format!("/v2/order/{order_id}%23frag"),
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_refreshes_before_the_token_expires() {
    // The sim's JWT says 2 s; the client refreshes at three quarters of that, well before the
    // default 9-minute interval.
    let sim = start(SimConfig {
        access_token_ttl: Duration::from_secs(2),
        ..sim_config()
    })
    .await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "order").remove(0);
    client.fetch_order(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    client.fetch_order(&id).await.unwrap();
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::Refresh, 200),
            (Endpoint::OrderGet, 200)
        ]
    );
    sim.shutdown().await;
}

/// Tokens with `exp` and no `iat` (as in Tradecloud's SDK sample) that expire during a run.
fn exp_only(ttl: Duration) -> SimConfig {
    SimConfig {
        access_token_ttl: ttl,
        quirks: Quirks {
            exp_only_tokens: true,
            ..Quirks::default()
        },
        ..sim_config()
    }
}

#[tokio::test]
async fn sim_refreshes_exp_only_tokens_before_they_expire() {
    // The JWT has only `exp`, 2 s ahead (whole seconds, so 1 to 2 s from now): the client
    // refreshes at three quarters of what is left, before the sim stops taking the token.
    let sim = start(exp_only(Duration::from_secs(2))).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "order").remove(0);
    for _ in 0..3 {
        client.fetch_order(&id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1600)).await;
    }
    client.fetch_order(&id).await.unwrap();
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::Refresh, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::Refresh, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::Refresh, 200),
            (Endpoint::OrderGet, 200)
        ],
        "never a 401: each token was replaced before it expired"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_revoked_exp_only_token_means_one_login_again() {
    let sim = start(exp_only(Duration::from_secs(3600))).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "order").remove(0);
    client.fetch_order(&id).await.unwrap();
    sim.expire_access_tokens();
    assert_eq!(Some(client.fetch_order(&id).await.unwrap()), sim.order(&id));
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::OrderGet, 401),
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_configured_refresh_interval_and_dead_refresh_token_mean_login() {
    // Refresh tokens die before the configured refresh time: the refresh fails, a login follows.
    let sim = start(SimConfig {
        refresh_token_ttl: Duration::from_millis(100),
        ..sim_config()
    })
    .await;
    let client = TradecloudClient::new(ClientConfig {
        refresh_interval: Duration::from_millis(200),
        ..config(&sim)
    })
    .unwrap();
    let id = ids(&sim, "shipment").remove(0);
    client.fetch_shipment(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    client.fetch_shipment(&id).await.unwrap();
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::ShipmentGet, 200),
            (Endpoint::Refresh, 401),
            (Endpoint::Login, 200),
            (Endpoint::ShipmentGet, 200)
        ]
    );
    sim.shutdown().await;
}

/// Tradecloud's authentication service fails (5xx: "a server or auth-service problem",
/// docs/tradecloud.md §2) when the token is due for its early refresh: the access token lives
/// an hour and is refreshed after nine minutes, so the calls go on with it instead of failing
/// until the login works again.
#[tokio::test]
async fn sim_an_auth_outage_at_refresh_time_keeps_the_valid_token_in_use() {
    let sim = start(sim_config()).await;
    // The refresh is tried again after `backoff_max`.
    let client = TradecloudClient::new(ClientConfig {
        refresh_interval: Duration::from_millis(200),
        backoff_max: Duration::from_millis(500),
        ..config(&sim)
    })
    .unwrap();
    let id = ids(&sim, "order").remove(0);
    client.fetch_order(&id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let outage = FaultRule {
        endpoints: vec![Endpoint::Login, Endpoint::Refresh],
        fault: Fault::Status { status: 503 },
        rate: 1.0,
        count: None,
    };
    sim.add_fault(outage);
    assert_eq!(Some(client.fetch_order(&id).await.unwrap()), sim.order(&id));
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::Refresh, 503),
            (Endpoint::Login, 503),
            (Endpoint::OrderGet, 200)
        ]
    );
    // The refresh is tried again later, not before every call.
    client.fetch_order(&id).await.unwrap();
    assert_eq!(trail(&sim).last(), Some(&(Endpoint::OrderGet, 200)));
    assert_eq!(trail(&sim).len(), 6);
    // Once the service is back, the next due refresh renews the tokens.
    sim.clear_faults();
    tokio::time::sleep(Duration::from_millis(550)).await;
    client.fetch_order(&id).await.unwrap();
    assert_eq!(
        trail(&sim)[6..],
        [(Endpoint::Refresh, 200), (Endpoint::OrderGet, 200)]
    );
    // A token Tradecloud no longer takes during the outage: one login, which fails, and the
    // call ends as the outage's status rather than as refused credentials.
    tokio::time::sleep(Duration::from_millis(250)).await;
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::Login, Endpoint::Refresh],
        fault: Fault::Status { status: 503 },
        rate: 1.0,
        count: None,
    });
    sim.expire_access_tokens();
    assert_eq!(
        client.fetch_order(&id).await,
        Err(ClientError::Upstream { status: 503 })
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_expired_access_token_means_one_login_again() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "order").remove(0);
    client.fetch_order(&id).await.unwrap();
    sim.expire_access_tokens();
    assert_eq!(Some(client.fetch_order(&id).await.unwrap()), sim.order(&id));
    assert_eq!(
        trail(&sim),
        [
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200),
            (Endpoint::OrderGet, 401),
            (Endpoint::Login, 200),
            (Endpoint::OrderGet, 200)
        ]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_wrong_credentials_are_unauthorized() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(ClientConfig {
        credentials: Credentials::new(sim.username(), "not-the-password"),
        ..config(&sim)
    })
    .unwrap();
    let id = ids(&sim, "order").remove(0);
    assert_eq!(
        client.fetch_order(&id).await,
        Err(ClientError::Unauthorized { status: 401 })
    );
    assert_eq!(
        client
            .poll(PollEndpoint::Orders, &PollQuery::new(EPOCH))
            .await
            .unwrap_err(),
        ClientError::Unauthorized { status: 401 }
    );
    assert_eq!(
        trail(&sim),
        [(Endpoint::Login, 401), (Endpoint::Login, 401)]
    );
    sim.shutdown().await;
}

/// A login answered 404 (a base URL without `/v2`) or another 4xx is a failed login, not an
/// unknown or refused object, and its error names the URL to check.
#[tokio::test]
async fn sim_a_login_answered_404_or_400_is_a_failed_login_not_a_missing_object() {
    let sim = start(sim_config()).await;
    let id = ids(&sim, "order").remove(0);
    let root = sim.base_url().trim_end_matches("/v2").to_owned();
    let client = TradecloudClient::new(ClientConfig {
        base_url: root.clone(),
        ..config(&sim)
    })
    .unwrap();
    let error = client.fetch_order(&id).await.unwrap_err();
    assert_eq!(
        error,
        ClientError::Login {
            status: 404,
            url: format!("{root}/authentication/login")
        }
    );
    assert!(!error.is_transient());
    let message = error.to_string();
    assert!(
        message.contains(&format!("{root}/authentication/login")) && message.contains("/v2"),
        "{message}"
    );

    let client = TradecloudClient::new(config(&sim)).unwrap();
    sim.add_fault(FaultRule::next(
        Endpoint::Login,
        1,
        Fault::Status { status: 400 },
    ));
    assert!(matches!(
        client.fetch_order(&id).await,
        Err(ClientError::Login { status: 400, .. })
    ));
    // Not retried: one login, no fetch. The next call logs in and fetches.
    let logins: Vec<_> = requests_to(&sim, Endpoint::Login)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(logins, [400]);
    assert!(requests_to(&sim, Endpoint::OrderGet).is_empty());
    assert_eq!(Some(client.fetch_order(&id).await.unwrap()), sim.order(&id));
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_unknown_ids_are_not_found() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    assert_eq!(
        client.fetch_order("no-such-order").await,
        Err(ClientError::NotFound)
    );
    assert_eq!(
        client.fetch_shipment("no-such-shipment").await,
        Err(ClientError::NotFound)
    );
    assert_eq!(
        requests_to(&sim, Endpoint::OrderGet).len(),
        1,
        "no retry on 404"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_429_and_5xx_are_retried_within_the_budget() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(ClientConfig {
        retry_budget: Duration::from_secs(3),
        ..config(&sim)
    })
    .unwrap();
    let id = ids(&sim, "order").remove(0);
    client.fetch_order(&id).await.unwrap();
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    ));
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        2,
        Fault::Status { status: 503 },
    ));
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1,
        Fault::Status { status: 500 },
    ));
    assert_eq!(Some(client.fetch_order(&id).await.unwrap()), sim.order(&id));
    let gets = requests_to(&sim, Endpoint::OrderGet);
    let statuses: Vec<_> = gets.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 429, 503, 503, 500, 200]);
    let after_429 = gets[2].received_ms - gets[1].answered_ms;
    assert!(
        after_429 >= 990,
        "Retry-After: 1 honoured, waited {after_429} ms"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_persistent_5xx_is_upstream_at_the_end_of_the_budget() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "shipment").remove(0);
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::ShipmentGet],
        fault: Fault::Status { status: 502 },
        rate: 1.0,
        count: None,
    });
    let started = Instant::now();
    let err = client.fetch_shipment(&id).await.unwrap_err();
    let elapsed = started.elapsed();
    // Upstream, or Timeout when the last attempt's answer was too slow for the budget's end
    // (see the helper).
    crate::protocol::assert_ends_as_upstream_failure(&err, 502);
    assert!(elapsed < Duration::from_millis(1800), "{elapsed:?}");
    let attempts = requests_to(&sim, Endpoint::ShipmentGet).len();
    assert!((4..100).contains(&attempts), "{attempts} attempts");
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_slow_answers_within_the_timeout_succeed_and_hung_ones_time_out() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(ClientConfig {
        timeout: Duration::from_millis(150),
        retry_budget: Duration::from_millis(500),
        ..config(&sim)
    })
    .unwrap();
    let id = ids(&sim, "order").remove(0);
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1,
        Fault::Delay { ms: 50 },
    ));
    client.fetch_order(&id).await.unwrap();
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::OrderGet],
        fault: Fault::Timeout { ms: 2000 },
        rate: 1.0,
        count: None,
    });
    let started = Instant::now();
    assert_eq!(client.fetch_order(&id).await, Err(ClientError::Timeout));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_malformed_json_is_malformed() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    sim.add_fault(FaultRule::next(
        Endpoint::OrderPoll,
        1,
        Fault::MalformedJson,
    ));
    sim.add_fault(FaultRule::next(
        Endpoint::ShipmentGet,
        1,
        Fault::MalformedJson,
    ));
    let err = client
        .poll(PollEndpoint::Orders, &PollQuery::new(EPOCH))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Malformed { .. }), "{err:?}");
    let id = ids(&sim, "shipment").remove(0);
    let err = client.fetch_shipment(&id).await.unwrap_err();
    assert!(matches!(err, ClientError::Malformed { .. }), "{err:?}");
    assert_eq!(
        requests_to(&sim, Endpoint::OrderPoll).len(),
        1,
        "not retried"
    );
    sim.shutdown().await;
}

/// Pages with a fixed cursor and offsets until the total is reached.
async fn page_all(
    client: &TradecloudClient,
    endpoint: PollEndpoint,
    after: &str,
    limit: u32,
) -> (Vec<Value>, Option<String>) {
    let mut query = PollQuery::new(after);
    query.limit = limit;
    let mut items = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = client.poll(endpoint, &query).await.unwrap();
        let total = page.total.unwrap() as usize;
        query.offset += page.items.len() as u32;
        items.extend(page.item_values().unwrap());
        if page.last_updated_at.is_some() {
            cursor = page.last_updated_at;
        }
        if items.len() >= total {
            return (items, cursor);
        }
    }
    panic!("paging did not end");
}

fn truth(sim: &Simulator, class: &str) -> BTreeMap<String, String> {
    sim.objects()
        .into_iter()
        .filter(|o| o.class == class)
        .map(|o| (o.id, o.last_updated_at))
        .collect()
}

fn seen(items: &[Value]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                item_last_updated_at(i).unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn sim_paging_through_polls_returns_every_object_once() {
    let sim = start(SimConfig {
        world: WorldConfig {
            initial_orders: 150,
            initial_shipments: 120,
            max_lines: 3,
            same_millisecond_probability: 0.3,
            ..WorldConfig::default()
        },
        ..SimConfig::default()
    })
    .await;
    sim.advance(100).unwrap();
    let client = TradecloudClient::new(config(&sim)).unwrap();
    for (endpoint, class) in [
        (PollEndpoint::Orders, "order"),
        (PollEndpoint::SingleDeliveryOrders, "order"),
        (PollEndpoint::Shipments, "shipment"),
    ] {
        let (items, cursor) = page_all(&client, endpoint, EPOCH, 100).await;
        let expected = truth(&sim, class);
        assert_eq!(items.len(), expected.len(), "{endpoint:?}: none twice");
        assert_eq!(seen(&items), expected, "{endpoint:?}");
        // Sorted ascending, and the cursor is the newest lastUpdatedAt.
        let stamps: Vec<_> = items
            .iter()
            .map(|i| item_last_updated_at(i).unwrap())
            .collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "{endpoint:?} sorted"
        );
        assert_eq!(
            cursor.as_deref(),
            expected.values().max().map(String::as_str)
        );

        // Strictly after the cursor: nothing is left.
        let rest = client
            .poll(endpoint, &PollQuery::new(cursor.unwrap()))
            .await
            .unwrap();
        assert!(rest.items.is_empty());
        assert_eq!(rest.total, Some(0));
        assert_eq!(rest.last_updated_at, None);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_search_is_inclusive_where_poll_is_strict() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    for (poll, search, class) in [
        (PollEndpoint::Orders, SearchEndpoint::Orders, "order"),
        (
            PollEndpoint::Shipments,
            SearchEndpoint::Shipments,
            "shipment",
        ),
    ] {
        let expected = truth(&sim, class);
        let oldest = expected.values().min().unwrap().clone();
        let at_oldest: HashSet<_> = expected
            .iter()
            .filter(|(_, t)| **t == oldest)
            .map(|(id, _)| id.clone())
            .collect();
        let mut query = PollQuery::new(oldest.clone());
        query.limit = 100;
        let searched = client.search(search, &query).await.unwrap();
        let polled = client.poll(poll, &query).await.unwrap();
        assert_eq!(
            searched.items.len(),
            expected.len(),
            "{class}: search includes the cursor"
        );
        assert_eq!(polled.items.len(), expected.len() - at_oldest.len());
        assert!(
            polled
                .item_values()
                .unwrap()
                .iter()
                .all(|i| !at_oldest.contains(i["id"].as_str().unwrap()))
        );
        // Search answers carry no cursor: the last item's is used.
        assert_eq!(
            searched.last_updated_at.as_deref(),
            expected.values().max().map(String::as_str)
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn sim_status_filters_are_passed_through() {
    let sim = start(sim_config()).await;
    sim.advance(40).unwrap();
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let (all, _) = page_all(&client, PollEndpoint::Orders, EPOCH, 100).await;
    let status = all[0]["status"]["processStatus"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut query = PollQuery::new(EPOCH);
    query.filters.insert(
        "status".into(),
        serde_json::json!({ "processStatus": [status.clone()] }),
    );
    let page = client.poll(PollEndpoint::Orders, &query).await.unwrap();
    let expected = all
        .iter()
        .filter(|o| o["status"]["processStatus"] == status.as_str())
        .count();
    assert!(expected < all.len(), "the filter should narrow something");
    assert_eq!(page.items.len(), expected);
    assert!(
        page.item_values()
            .unwrap()
            .iter()
            .all(|o| o["status"]["processStatus"] == status.as_str())
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sim_at_most_ten_requests_per_second_one_at_a_time() {
    let sim = start(sim_config()).await;
    // Strictly sequential, as Tradecloud asks (the default lets four overlap).
    let client = TradecloudClient::new(ClientConfig {
        max_requests_per_second: 10,
        max_concurrent_requests: 1,
        ..config(&sim)
    })
    .unwrap();
    let order_ids = ids(&sim, "order");
    // Logged in first, and the fetches timed among themselves, for the reason in
    // protocol.rs's requests_respect_the_rate_limit (here a 0 ms gap was seen after the login).
    client.login().await.unwrap();
    // The simulator answers in microseconds, so calls 100 ms apart could never overlap, however
    // many the client let wait at once. The first two fetches take longer than the interval:
    // a client that sends the next call before the answer overlaps them. Only two, so the
    // span below still tells a limiter that is too fast.
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        2,
        Fault::Delay { ms: 250 },
    ));
    let tasks: Vec<_> = (0..3)
        .map(|t| {
            let client = client.clone();
            let order_ids = order_ids.clone();
            tokio::spawn(async move {
                for id in order_ids.iter().skip(t * 4).take(4) {
                    client.fetch_order(id).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let requests = sim.api_requests();
    assert_eq!(requests.len(), 13, "one login and twelve fetches");
    for pair in requests.windows(2) {
        assert!(
            pair[1].received_ms >= pair[0].answered_ms,
            "overlapping calls"
        );
    }
    let fetches = &requests[1..];
    let received: Vec<u64> = fetches.iter().map(|r| r.received_ms).collect();
    // The client books its sends 100 ms apart; the sim sees each one later by the time from its
    // slot to its arrival, which on a loaded CI machine reached 18 ms for a single fetch (3 in
    // 200 runs failed a 90 ms bound). So the bounds leave 50 ms for that delay. The two slow
    // answers put the third fetch at 500 ms, the nine after it 100 ms apart: 1400 ms in all.
    // The bounds still fail a limiter at 20/s (gaps of 50 ms, 950 ms) or at 11/s (1318 ms).
    for pair in received.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= 50,
            "fetches {gap} ms apart: received at {received:?}"
        );
    }
    let span = received[11] - received[0];
    assert!(
        span >= 1350,
        "12 fetches in {span} ms: received at {received:?}"
    );
    sim.shutdown().await;
}

/// What Tradecloud does not promise, as the simulator serves it: HTML error pages without
/// `Retry-After` (429 and 5xx), a `Retry-After` as an HTTP-date, a body broken off mid-way:
/// each retried until the answer comes. A body that drips slower than the timeout allows
/// ends as a timeout within the budget; one that drips within it is read whole.
#[tokio::test]
async fn sim_what_tradecloud_does_not_promise_is_retried_or_times_out() {
    let sim = start(sim_config()).await;
    let client = TradecloudClient::new(config(&sim)).unwrap();
    let id = ids(&sim, "order").remove(0);
    for fault in [
        Fault::GatewayPage { status: 429 },
        Fault::GatewayPage { status: 502 },
        Fault::TooManyRequestsUntil {
            retry_after_secs: 0,
        },
        Fault::BrokenBody,
    ] {
        sim.add_fault(FaultRule::next(Endpoint::OrderGet, 1, fault.clone()));
        assert_eq!(
            client.fetch_order(&id).await,
            Ok(sim.order(&id).unwrap()),
            "{fault:?}"
        );
    }
    let statuses: Vec<u16> = requests_to(&sim, Endpoint::OrderGet)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200, 502, 200, 429, 200, 200, 200]);

    // Within the 500 ms timeout: read whole.
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        1,
        Fault::Drip { bytes: 4096, ms: 5 },
    ));
    assert_eq!(client.fetch_order(&id).await, Ok(sim.order(&id).unwrap()));
    // Every piece in time, the whole not: a timeout, within the 800 ms budget.
    sim.add_fault(FaultRule::next(
        Endpoint::OrderGet,
        100,
        Fault::Drip { bytes: 8, ms: 20 },
    ));
    let started = Instant::now();
    assert_eq!(client.fetch_order(&id).await, Err(ClientError::Timeout));
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    sim.shutdown().await;
}
