//! The control API over HTTP, and the binary.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Received, Receiver, basic, client, post_json, start};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = client().request(method, url);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_control_api_advances_configures_injects_and_reports_ground_truth() {
    use reqwest::Method;
    let receiver = Receiver::start(
        |r| r.target.clone(),
        Arc::new(|_: &Received, _| Answer::Status(202)),
    )
    .await;
    let sim = start(41).await;
    let c = sim.control_url();

    let (status, added) = call(
        Method::POST,
        format!("{c}/webhooks"),
        Some(json!({"url": receiver.url("/hook"), "integration": "orders", "format": "JSON",
                    "auth": {"type": "bearer", "token": "t0k"}, "eventNames": ["OrderIssuedByBuyer", "OrderLinesAcceptedBySupplier"]})),
    )
    .await;
    assert_eq!(status, 201);
    let hook = added["id"].as_u64().unwrap();
    let (status, _) = call(
        Method::POST,
        format!("{c}/webhooks"),
        Some(json!({"url": "not a url"})),
    )
    .await;
    assert_eq!(status, 400);
    let (_, listed) = call(Method::GET, format!("{c}/webhooks"), None).await;
    assert_eq!(
        listed["webhooks"][0]["target"]["auth"]["token"],
        json!("t0k")
    );

    let before = sim.changes().len();
    let (status, advanced) = call(
        Method::POST,
        format!("{c}/advance"),
        Some(json!({"count": 30})),
    )
    .await;
    assert_eq!(status, 200);
    let new = advanced["changes"].as_array().unwrap();
    assert_eq!(sim.changes().len(), before + new.len());
    let issued = new
        .iter()
        .filter(|c| {
            c["eventName"] == json!("OrderIssuedByBuyer")
                || c["eventName"] == json!("OrderLinesAcceptedBySupplier")
        })
        .count();
    assert!(issued > 0);
    for field in [
        "seq",
        "kind",
        "id",
        "version",
        "lastUpdatedAt",
        "eventName",
        "messageId",
    ] {
        assert!(new[0].get(field).is_some(), "{field}");
    }

    let (_, idle) = call(
        Method::POST,
        format!("{c}/webhooks/wait-idle"),
        Some(json!({"timeoutMs": 10000})),
    )
    .await;
    assert_eq!(idle["idle"], json!(true));
    let (_, deliveries) = call(Method::GET, format!("{c}/deliveries"), None).await;
    let deliveries = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), issued);
    assert!(deliveries.iter().all(|d| d["outcome"] == json!("delivered") && d["attempts"][0]["status"] == json!(202)));
    assert_eq!(receiver.received().len(), issued);

    let (_, all) = call(
        Method::GET,
        format!("{c}/changes?from={before}&withBodies=true"),
        None,
    )
    .await;
    let all = all["changes"].as_array().unwrap();
    assert_eq!(all.len(), new.len());
    assert_eq!(all[0]["webhookBody"]["eventName"], all[0]["eventName"]);

    let (_, objects) = call(Method::GET, format!("{c}/objects"), None).await;
    let first = &objects["objects"][0];
    let (status, order) = call(
        Method::GET,
        format!("{c}/orders/{}", first["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(order["lastUpdatedAt"], first["lastUpdatedAt"]);
    assert_eq!(
        call(Method::GET, format!("{c}/orders/nope"), None).await.0,
        404
    );

    // Faults over HTTP.
    let (status, fault) = call(
        Method::POST,
        format!("{c}/faults"),
        Some(json!({"endpoints": ["order-poll"], "fault": {"type": "status", "status": 502}, "count": 1})),
    )
    .await;
    assert_eq!(status, 201);
    let poll = format!("{}/order-search/poll", sim.base_url());
    assert_eq!(post_json(&poll, &basic(), &json!({})).await.0, 502);
    assert_eq!(post_json(&poll, &basic(), &json!({})).await.0, 200);
    let fault_id = fault["id"].as_u64().unwrap();
    assert_eq!(
        call(Method::DELETE, format!("{c}/faults/{fault_id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(Method::DELETE, format!("{c}/faults/{fault_id}"), None)
            .await
            .0,
        404
    );
    call(
        Method::POST,
        format!("{c}/faults"),
        Some(json!({"fault": {"type": "too-many-requests", "retryAfterSecs": 1}})),
    )
    .await;
    assert_eq!(post_json(&poll, &basic(), &json!({})).await.0, 429);
    assert_eq!(
        call(Method::DELETE, format!("{c}/faults"), None).await.0,
        204
    );
    assert_eq!(post_json(&poll, &basic(), &json!({})).await.0, 200);

    // Changes per poll.
    let (_, settings) = call(
        Method::POST,
        format!("{c}/settings"),
        Some(json!({"changesPerPoll": 2})),
    )
    .await;
    assert_eq!(settings["changesPerPoll"], json!(2));
    let n = sim.changes().len();
    post_json(&poll, &basic(), &json!({})).await;
    assert!(sim.changes().len() > n);
    call(
        Method::POST,
        format!("{c}/settings"),
        Some(json!({"changesPerPoll": 0})),
    )
    .await;

    // Tokens.
    let (access, _) = common::login(&sim).await;
    assert_eq!(
        post_json(&poll, &format!("Bearer {access}"), &json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        call(Method::POST, format!("{c}/tokens/expire"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        post_json(&poll, &format!("Bearer {access}"), &json!({}))
            .await
            .0,
        401
    );

    let (_, requests) = call(Method::GET, format!("{c}/requests"), None).await;
    let requests = requests["requests"].as_array().unwrap();
    assert!(
        requests
            .iter()
            .any(|r| r["endpoint"] == json!("order-poll") && r["status"] == json!(502))
    );
    assert!(
        requests
            .iter()
            .all(|r| !r["target"].as_str().unwrap().starts_with("/sim")),
        "control calls are not logged"
    );

    assert_eq!(
        call(Method::DELETE, format!("{c}/webhooks/{hook}"), None)
            .await
            .0,
        204
    );
    call(
        Method::POST,
        format!("{c}/advance"),
        Some(json!({"count": 10})),
    )
    .await;
    assert_eq!(
        sim.deliveries().len(),
        issued,
        "a removed target gets nothing more"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_binary_prints_its_address_first_and_serves_the_api() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tradecloud-sim"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "9",
            "--initial-orders",
            "5",
            "--rate-limit",
            "2",
        ])
        .env("TRADECLOUD_SIM_USERNAME", "bin@example.com")
        .env("TRADECLOUD_SIM_PASSWORD", "bin-pass")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("address within 20 s")
        .unwrap()
        .expect("a first line");
    let addr: std::net::SocketAddr = first.parse().expect("the first line is the address");
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bin@example.com:bin-pass")
    );
    let (status, answer) = post_json(
        &format!("http://{addr}/v2/order-search/poll"),
        &auth,
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["total"], json!(5));
    let (status, _) = post_json(
        &format!("http://{addr}/v2/order-search/poll"),
        &basic(),
        &json!({}),
    )
    .await;
    assert_eq!(status, 401, "credentials come from the environment");
    // --rate-limit 2: of three requests sent together, at least one is refused.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let url = format!("http://{addr}/v2/order-search/poll");
    let empty = json!({});
    let (a, b, c) = tokio::join!(
        post_json(&url, &auth, &empty),
        post_json(&url, &auth, &empty),
        post_json(&url, &auth, &empty)
    );
    let statuses = [a.0, b.0, c.0];
    assert!(statuses.contains(&429), "{statuses:?}");
    child.kill().await.unwrap();
}
