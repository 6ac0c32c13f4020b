//! The same seed gives the same world, the same changes and the same deliveries.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{Answer, Received, Receiver, basic, post_json};
use serde_json::{Value, json};
use tradecloud_sim::{DeliveryRecord, Simulator, WebhookFormat, WebhookTarget};

/// One run: a simulator with two webhook targets, 40 actions, everything delivered.
async fn run(seed: u64) -> (Value, Value, Vec<Value>, Vec<(String, Vec<u8>)>) {
    // The receiver answers 503 to the first request of each body, so retries happen too.
    let receiver = Receiver::start(
        |r| format!("{}|{}", r.target, String::from_utf8_lossy(&r.body)),
        Arc::new(|_: &Received, seen| {
            if seen == 0 {
                Answer::Status(503)
            } else {
                Answer::Status(200)
            }
        }),
    )
    .await;
    let sim = Simulator::start(common::config(seed)).await.unwrap();
    let mut json_target = WebhookTarget::new(receiver.url("/json"));
    json_target.duplicate_rate = 0.3;
    json_target.seed = 5;
    let mut xml_target = WebhookTarget::new(receiver.url("/xml"));
    xml_target.format = WebhookFormat::Txml;
    sim.add_webhook(json_target).unwrap();
    sim.add_webhook(xml_target).unwrap();
    sim.advance(40).unwrap();
    assert!(sim.wait_webhooks_idle(Duration::from_secs(30)).await);

    let changes = serde_json::to_value(sim.changes()).unwrap();
    let url = format!("{}/order-search/poll", sim.base_url());
    let (_, orders) = post_json(
        &url,
        &basic(),
        &json!({"filters": {"lastUpdatedAfter": "2000-01-01T00:00:00.000Z"}}),
    )
    .await;
    let deliveries: Vec<Value> = sim.deliveries().iter().map(comparable).collect();
    // Per object, what the receiver got, in arrival order (objects are delivered concurrently,
    // so only the per-object order is defined).
    let mut received: Vec<(String, Vec<u8>)> = receiver
        .received()
        .into_iter()
        .map(|r| (format!("{}|{}", r.target, object_of(&r)), r.body))
        .collect();
    received.sort_by(|a, b| a.0.cmp(&b.0));
    sim.shutdown().await;
    (changes, orders, deliveries, received)
}

fn object_of(r: &Received) -> String {
    let text = String::from_utf8_lossy(&r.body);
    let start = text.find("orderId").unwrap_or(0);
    text[start..].chars().take(80).collect()
}

/// A delivery without the wall-clock parts (attempt times).
fn comparable(d: &DeliveryRecord) -> Value {
    json!({
        "id": d.id, "target": d.target, "changeSeq": d.change_seq, "objectId": d.object_id,
        "eventName": d.event_name, "messageId": d.message_id, "duplicate": d.duplicate,
        "body": d.body, "contentType": d.content_type, "outcome": d.outcome,
        "statuses": d.attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn the_same_seed_gives_the_same_world_changes_and_deliveries() {
    let (changes_a, orders_a, deliveries_a, received_a) = run(31).await;
    let (changes_b, orders_b, deliveries_b, received_b) = run(31).await;
    assert!(changes_a.as_array().unwrap().len() > 60);
    assert_eq!(changes_a, changes_b);
    assert_eq!(orders_a, orders_b);
    assert!(deliveries_a.iter().any(|d| d["duplicate"] == json!(true)));
    // The receiver fails each body once; the deliberate duplicate comes after its original
    // succeeded (per-object order), so it succeeds at once.
    for d in &deliveries_a {
        let expected = if d["duplicate"] == json!(true) {
            json!([200])
        } else {
            json!([503, 200])
        };
        assert_eq!(d["statuses"], expected);
    }
    assert_eq!(deliveries_a, deliveries_b);
    assert_eq!(received_a, received_b);

    let (changes_c, orders_c, _, _) = run(32).await;
    assert_ne!(changes_a, changes_c, "another seed, another history");
    assert_ne!(orders_a, orders_c);
}
