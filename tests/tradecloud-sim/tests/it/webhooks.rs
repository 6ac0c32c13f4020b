//! The webhook sender against a receiver over real HTTP: retry and drop rules, per-object order,
//! GET forms, authentication, formats, event selection, duplicates.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Received, Receiver, start};
use serde_json::Value;
use tradecloud_sim::{
    DeliveryOutcome, Integration, RetryPolicy, SimConfig, Simulator, WebhookAuth, WebhookFormat,
    WebhookMethod, WebhookTarget,
};

fn message_id(r: &Received) -> String {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let event = body
        .as_object()
        .and_then(|m| {
            m.iter()
                .find(|(k, _)| *k != "eventName")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or(Value::Null);
    event["meta"]["messageId"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn path(r: &Received) -> String {
    r.target.split('?').next().unwrap_or("").to_string()
}

/// Key: path + message id, so each message of each target counts its own attempts.
fn key(r: &Received) -> String {
    format!("{}|{}", path(r), message_id(r))
}

/// `/status/N` always answers N; `/flaky/N` answers N twice per message, then 200;
/// `/drop` drops the connection twice per message, then answers 202.
fn decide() -> common::Decide {
    Arc::new(|r: &Received, seen: usize| {
        let p = path(r);
        let mut parts = p.trim_start_matches('/').split('/');
        match (
            parts.next(),
            parts.next().and_then(|n| n.parse::<u16>().ok()),
        ) {
            (Some("status"), Some(n)) => Answer::Status(n),
            (Some("flaky"), Some(n)) if seen < 2 => Answer::Status(n),
            (Some("flaky"), Some(_)) => Answer::Status(200),
            (Some("drop"), _) if seen < 2 => Answer::Drop,
            (Some("drop"), _) => Answer::Status(202),
            _ => Answer::Status(404),
        }
    })
}

#[tokio::test]
async fn the_answer_decides_delivered_dropped_or_retried_and_order_per_object_holds() {
    let receiver = Receiver::start(key, decide()).await;
    let sim = start(11).await;
    let paths = [
        "/status/200",
        "/status/202",
        "/status/400",
        "/status/401",
        "/status/500",
        "/flaky/502",
        "/flaky/503",
        "/flaky/504",
        "/drop",
    ];
    let mut targets = HashMap::new();
    for p in paths {
        let id = sim
            .add_webhook(WebhookTarget::new(receiver.url(p)))
            .unwrap();
        targets.insert(id, p);
    }
    let changes = sim.advance(25).unwrap();
    let order_changes: Vec<_> = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::Order)
        .collect();
    assert!(order_changes.len() >= 10);
    assert!(
        sim.wait_webhooks_idle(Duration::from_secs(30)).await,
        "all deliveries finished"
    );

    let deliveries = sim.deliveries();
    assert_eq!(
        deliveries.len(),
        order_changes.len() * paths.len(),
        "one delivery per order event per target"
    );
    for d in &deliveries {
        let p = targets[&d.target];
        let statuses: Vec<Option<u16>> = d.attempts.iter().map(|a| a.status).collect();
        match p {
            "/status/200" | "/status/202" => {
                assert_eq!(d.outcome, DeliveryOutcome::Delivered);
                assert_eq!(statuses.len(), 1);
            }
            "/status/400" | "/status/401" | "/status/500" => {
                assert_eq!(d.outcome, DeliveryOutcome::Dropped, "{p}: never retried");
                assert_eq!(statuses.len(), 1, "{p}");
            }
            "/drop" => {
                assert_eq!(d.outcome, DeliveryOutcome::Delivered);
                assert_eq!(statuses, vec![None, None, Some(202)]);
                assert!(d.attempts[0].error.is_some());
            }
            flaky => {
                let n: u16 = flaky.rsplit('/').next().unwrap().parse().unwrap();
                assert_eq!(
                    d.outcome,
                    DeliveryOutcome::Delivered,
                    "{flaky}: retried until 2xx"
                );
                assert_eq!(statuses, vec![Some(n), Some(n), Some(200)]);
                // Back-off: at least the initial wait between attempts, doubling.
                let gaps: Vec<u64> = d
                    .attempts
                    .windows(2)
                    .map(|w| w[1].started_ms - w[0].started_ms)
                    .collect();
                assert!(gaps[0] >= 20 && gaps[1] >= 40, "{gaps:?}");
            }
        }
    }
    // The receiver saw exactly the attempts the ground truth records.
    let received = receiver.received();
    let attempts: usize = deliveries.iter().map(|d| d.attempts.len()).sum();
    assert_eq!(received.len(), attempts);

    // Per object and target, messages arrive in change order, and a message that is being
    // retried holds back the later ones of the same object.
    let seq_of: HashMap<&str, u64> = changes
        .iter()
        .map(|c| (c.message_id.as_str(), c.seq))
        .collect();
    for p in paths {
        let mut last: HashMap<String, (u64, bool)> = HashMap::new();
        for r in received.iter().filter(|r| path(r) == p) {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let id = body["orderEvent"]["orderId"].as_str().unwrap().to_string();
            let seq = seq_of[message_id(r).as_str()];
            let done = matches!(r.answer, Answer::Status(s) if s < 300 || s == 500 || (400..500).contains(&s));
            if let Some((prev, prev_done)) = last.get(&id) {
                assert!(seq >= *prev, "{p}: {id} went back from {prev} to {seq}");
                if seq > *prev {
                    assert!(prev_done, "{p}: {id} moved on before {prev} was finished");
                }
            }
            last.insert(id, (seq, done));
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_failing_target_is_retried_forever_unless_capped_and_shutdown_cancels() {
    let receiver = Receiver::start(key, Arc::new(|_: &Received, _| Answer::Status(503))).await;
    let sim = Simulator::start(SimConfig {
        retry: RetryPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(10),
            max_attempts: Some(6),
            request_timeout: Duration::from_secs(2),
        },
        ..common::config(12)
    })
    .await
    .unwrap();
    sim.add_webhook(WebhookTarget::new(receiver.url("/down")))
        .unwrap();
    sim.advance(3).unwrap();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(20)).await);
    let deliveries = sim.deliveries();
    assert!(!deliveries.is_empty());
    // Per object, the first message is abandoned after 6 attempts, then the next one is tried.
    for d in &deliveries {
        assert_eq!(d.outcome, DeliveryOutcome::Abandoned);
        assert_eq!(d.attempts.len(), 6);
        assert!(d.attempts.iter().all(|a| a.status == Some(503)));
    }
    sim.shutdown().await;

    // Without a cap it keeps trying until shutdown, which cancels it.
    let sim = start(12).await;
    sim.add_webhook(WebhookTarget::new(receiver.url("/down-forever")))
        .unwrap();
    sim.advance(1).unwrap();
    assert!(
        !sim.wait_webhooks_idle(Duration::from_millis(800)).await,
        "still retrying"
    );
    let d = sim.deliveries();
    assert!(d.iter().all(|d| d.outcome == DeliveryOutcome::Pending));
    // (The cap of the back-off is checked by the unit test of RetryPolicy::backoff.)
    assert!(
        d[0].attempts.len() >= 3,
        "kept retrying: {}",
        d[0].attempts.len()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn get_webhooks_carry_the_id_in_the_path_or_the_query() {
    let receiver = Receiver::start(
        |r| r.target.clone(),
        Arc::new(|_: &Received, _| Answer::Status(200)),
    )
    .await;
    let sim = start(13).await;
    let mut path_form = WebhookTarget::new(receiver.url("/orders/{orderId}"));
    path_form.method = WebhookMethod::Get;
    let mut query_form = WebhookTarget::new(receiver.url("/hook?orderId={orderId}"));
    query_form.method = WebhookMethod::Get;
    let mut shipments = WebhookTarget::new(receiver.url("/shipments/{shipmentId}"));
    shipments.method = WebhookMethod::Get;
    shipments.integration = Integration::Shipments;
    sim.add_webhook(path_form).unwrap();
    sim.add_webhook(query_form).unwrap();
    sim.add_webhook(shipments).unwrap();
    let mut bad = WebhookTarget::new(receiver.url("/no-placeholder"));
    bad.method = WebhookMethod::Get;
    assert!(sim.add_webhook(bad).is_err(), "GET needs the placeholder");

    let changes = sim.advance(30).unwrap();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(20)).await);
    let received = receiver.received();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .unwrap()
            .to_string()
    };
    let mut from_path = Vec::new();
    let mut from_query = Vec::new();
    let mut from_shipments = Vec::new();
    for r in &received {
        assert_eq!(r.method, "GET");
        assert!(r.body.is_empty());
        if let Some(id) = r.target.strip_prefix("/orders/") {
            from_path.push(decode(id));
        } else if let Some(id) = r.target.strip_prefix("/hook?orderId=") {
            from_query.push(decode(id));
        } else if let Some(id) = r.target.strip_prefix("/shipments/") {
            from_shipments.push(decode(id));
        }
    }
    let order_ids: Vec<String> = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::Order)
        .map(|c| c.id.clone())
        .collect();
    let shipment_ids: Vec<String> = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::Shipment)
        .map(|c| c.id.clone())
        .collect();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(from_path), sorted(order_ids.clone()));
    assert_eq!(sorted(from_query), sorted(order_ids));
    assert_eq!(sorted(from_shipments), sorted(shipment_ids));
    sim.shutdown().await;
}

#[tokio::test]
async fn auth_format_event_selection_and_duplicates_are_honoured() {
    let receiver = Receiver::start(
        |r| r.target.clone(),
        Arc::new(|_: &Received, _| Answer::Status(202)),
    )
    .await;
    let sim = start(14).await;
    let mut basic = WebhookTarget::new(receiver.url("/basic"));
    basic.auth = WebhookAuth::Basic {
        username: "tc".into(),
        password: "s3cret".into(),
    };
    basic.event_names = Some(vec![
        "OrderIssuedByBuyer".into(),
        "OrderLinesAcceptedBySupplier".into(),
    ]);
    let mut bearer = WebhookTarget::new(receiver.url("/bearer"));
    bearer.auth = WebhookAuth::Bearer {
        token: "static-token".into(),
    };
    bearer.format = WebhookFormat::Txml;
    bearer.single_delivery = true;
    let mut docs = WebhookTarget::new(receiver.url("/docs"));
    docs.integration = Integration::OrderDocuments;
    let mut dup = WebhookTarget::new(receiver.url("/dup"));
    dup.duplicate_rate = 0.5;
    dup.seed = 3;
    let mut legacy = WebhookTarget::new(receiver.url("/legacy"));
    legacy.single_delivery = true;
    legacy.legacy_event_keys = true;
    legacy.meta_in_body = true;
    let mut legacy_shipments = WebhookTarget::new(receiver.url("/legacy-shipments"));
    legacy_shipments.integration = Integration::Shipments;
    legacy_shipments.legacy_event_keys = true;
    for t in [basic, bearer, docs, dup, legacy, legacy_shipments] {
        sim.add_webhook(t).unwrap();
    }
    let changes = sim.advance(120).unwrap();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(30)).await);
    let received = receiver.received();
    let at = |p: &str| {
        received
            .iter()
            .filter(|r| r.target == p)
            .cloned()
            .collect::<Vec<_>>()
    };

    let basic = at("/basic");
    let wanted = changes
        .iter()
        .filter(|c| {
            c.event_name == "OrderIssuedByBuyer" || c.event_name == "OrderLinesAcceptedBySupplier"
        })
        .count();
    assert!(wanted > 0);
    assert_eq!(basic.len(), wanted, "only the selected events");
    for r in &basic {
        assert_eq!(r.header("authorization"), Some("Basic dGM6czNjcmV0"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let d = tradecloud_model::decode_webhook(&r.body, r.header("content-type")).unwrap();
        assert!(
            ["OrderIssuedByBuyer", "OrderLinesAcceptedBySupplier"]
                .contains(&d.body.event_name.as_str())
        );
    }

    let bearer = at("/bearer");
    let order_events = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::Order)
        .count();
    assert_eq!(bearer.len(), order_events);
    for r in &bearer {
        assert_eq!(r.header("authorization"), Some("Bearer static-token"));
        assert_eq!(r.header("content-type"), Some("application/xml"));
        assert!(r.body.starts_with(b"<?xml"));
    }
    // The model's tXML reader is slow on large bodies in debug builds: decode the three
    // smallest here (tests/it/bodies.rs checks the tXML of many more).
    let mut smallest = bearer.clone();
    smallest.sort_by_key(|r| r.body.len());
    for r in smallest.iter().take(3) {
        let d = tradecloud_model::decode_webhook(&r.body, r.header("content-type")).unwrap();
        assert_eq!(d.format, tradecloud_model::Format::Txml);
        assert_eq!(
            d.body.kind(),
            tradecloud_model::ObjectKind::SingleDeliveryOrder
        );
    }

    let docs = at("/docs");
    let doc_events = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::OrderDocuments)
        .count();
    assert!(doc_events > 0);
    assert_eq!(docs.len(), doc_events);
    for r in &docs {
        let d = tradecloud_model::decode_webhook(&r.body, r.header("content-type")).unwrap();
        assert_eq!(d.body.kind(), tradecloud_model::ObjectKind::OrderDocuments);
        assert!(r.header("authorization").is_none());
    }

    // Old body keys and body-level meta, still understood by the model.
    let legacy = at("/legacy");
    assert_eq!(legacy.len(), order_events);
    for r in &legacy {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            body.get("simpleOrderEvent").is_some()
                && body.get("singleDeliveryOrderEvent").is_none()
        );
        assert_eq!(body["meta"], body["simpleOrderEvent"]["meta"]);
        let d = tradecloud_model::decode_webhook(&r.body, r.header("content-type")).unwrap();
        assert_eq!(
            d.body.kind(),
            tradecloud_model::ObjectKind::SingleDeliveryOrder
        );
    }
    let legacy_shipments = at("/legacy-shipments");
    let shipment_events = changes
        .iter()
        .filter(|c| c.kind == tradecloud_sim::EventKind::Shipment)
        .count();
    assert!(shipment_events > 0);
    assert_eq!(legacy_shipments.len(), shipment_events);
    for r in &legacy_shipments {
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(body.get("shipmentEvent").is_some() && body.get("shipment").is_none());
        let d = tradecloud_model::decode_webhook(&r.body, r.header("content-type")).unwrap();
        assert_eq!(d.body.kind(), tradecloud_model::ObjectKind::Shipment);
    }

    // Duplicates: the same body twice in a row, about half of the messages.
    let dup = at("/dup");
    let twice = dup.len() - order_events;
    assert!(
        twice > order_events / 5 && twice < order_events * 4 / 5,
        "{twice} of {order_events}"
    );
    let records = sim.deliveries();
    let dup_records: Vec<_> = records.iter().filter(|d| d.url.ends_with("/dup")).collect();
    for pair in dup_records.windows(2) {
        if pair[1].duplicate {
            assert_eq!(pair[0].message_id, pair[1].message_id);
            assert_eq!(pair[0].body, pair[1].body);
        }
    }
    assert_eq!(dup_records.iter().filter(|d| d.duplicate).count(), twice);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_target_slower_than_the_request_timeout_is_retried() {
    // Each message is answered after 3 s the first time, at once the second time.
    let receiver = Receiver::start(
        key,
        Arc::new(|_: &Received, seen| {
            if seen == 0 {
                Answer::Slow(3_000, 200)
            } else {
                Answer::Status(202)
            }
        }),
    )
    .await;
    let sim = Simulator::start(SimConfig {
        retry: RetryPolicy {
            request_timeout: Duration::from_millis(600),
            ..RetryPolicy::fast()
        },
        ..common::config(15)
    })
    .await
    .unwrap();
    sim.add_webhook(WebhookTarget::new(receiver.url("/slow")))
        .unwrap();
    sim.advance(5).unwrap();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(20)).await);
    let deliveries = sim.deliveries();
    assert!(!deliveries.is_empty());
    for d in &deliveries {
        assert_eq!(d.outcome, DeliveryOutcome::Delivered);
        let statuses: Vec<Option<u16>> = d.attempts.iter().map(|a| a.status).collect();
        assert_eq!(statuses, vec![None, Some(202)], "a timeout, then the retry");
        assert!(
            d.attempts[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("timed out") || e.contains("timeout")),
            "{:?}",
            d.attempts[0].error
        );
    }
    sim.shutdown().await;
}
