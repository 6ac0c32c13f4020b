//! The bodies and objects the world produces are valid for the model crate's decoder and say
//! what the ground truth says.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use tradecloud_model::{ObjectKind, decode_order, decode_shipment, decode_webhook};
use tradecloud_sim::{Change, EventKind, World, WorldConfig};

/// tXML bodies decoded per run. The model's tXML reader is slow on large documents in debug
/// builds; every body is still encoded, and this many are decoded and compared with JSON.
const TXML_DECODES: usize = 15;

/// `max_lines` keeps the thousands of bodies small enough for a quick debug-build test.
fn world(max_lines: usize) -> World {
    World::new(WorldConfig {
        seed: 21,
        initial_orders: 50,
        initial_shipments: 10,
        max_lines,
        same_millisecond_probability: 0.1,
        ..WorldConfig::default()
    })
}

/// Tradecloud bodies never hold empty arrays (tXML cannot write them) or nulls.
fn assert_no_empty_arrays_or_nulls(v: &Value, path: &str) {
    match v {
        Value::Null => panic!("null at {path}"),
        Value::Array(items) => {
            assert!(!items.is_empty(), "empty array at {path}");
            for (i, item) in items.iter().enumerate() {
                assert_no_empty_arrays_or_nulls(item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                assert_no_empty_arrays_or_nulls(item, &format!("{path}.{k}"));
            }
        }
        _ => {}
    }
}

fn check_decoded(
    change: &Change,
    single: bool,
    bytes: &[u8],
    content_type: &str,
) -> tradecloud_model::DecodedWebhook {
    let decoded = decode_webhook(bytes, Some(content_type)).unwrap_or_else(|e| {
        panic!(
            "change {} ({}) does not decode: {e}",
            change.seq, change.event_name
        )
    });
    let body = &decoded.body;
    assert_eq!(body.event_name, change.event_name);
    assert_eq!(body.object_id(), change.id);
    assert_eq!(
        body.last_updated_at(),
        Some(change.last_updated_at.as_str())
    );
    assert_eq!(body.message_id(), Some(change.message_id.as_str()));
    let kind = match (change.kind, single) {
        (EventKind::Order, false) => ObjectKind::Order,
        (EventKind::Order, true) => ObjectKind::SingleDeliveryOrder,
        (EventKind::OrderDocuments, _) => ObjectKind::OrderDocuments,
        (EventKind::Shipment, _) => ObjectKind::Shipment,
    };
    assert_eq!(body.kind(), kind);
    if change.kind != EventKind::Shipment {
        assert_eq!(body.version(), Some(change.version));
    }
    if change.kind == EventKind::Order {
        assert_eq!(body.line_ids(), change.line_ids, "only the affected lines");
    }
    decoded
}

#[test]
fn thousands_of_webhook_bodies_decode_and_match_the_ground_truth() {
    let mut world = world(6);
    world.advance(1100);
    let changes = world.changes().to_vec();
    let mut decoded = 0;
    let mut txml_decoded = 0;
    let mut split_lines = 0;
    for change in &changes {
        let forms: &[bool] = if change.kind == EventKind::Order {
            &[false, true]
        } else {
            &[false]
        };
        for &single in forms {
            let body = change.webhook_body(single);
            assert_no_empty_arrays_or_nulls(&body, "");
            let json = body.to_string();
            let from_json = check_decoded(change, single, json.as_bytes(), "application/json");
            decoded += 1;
            if let Some(lines) = body
                .as_object()
                .and_then(|b| b.values().find_map(|e| e["lines"].as_array()))
            {
                split_lines += lines
                    .iter()
                    .filter(|l| {
                        l["buyerLine"]["position"] == ""
                            && l["buyerLine"]["originalPosition"].is_string()
                    })
                    .count();
            }
            // tXML for a fifth of the bodies keeps the debug-build test quick.
            if decoded % 5 != 0 {
                continue;
            }
            // The sender's own writer (Tradecloud's element names), not the model's: the
            // reader must understand what Tradecloud sends, not what the relay would write.
            let xml = tradecloud_sim::txml_writer::webhook_body_to_txml(&body)
                .expect("bodies encode as tXML");
            assert!(xml.contains("<WebhookBody>"));
            if txml_decoded < TXML_DECODES && xml.len() < 7_000 {
                let from_xml = check_decoded(change, single, xml.as_bytes(), "application/xml");
                assert_eq!(
                    from_xml.payload, from_json.payload,
                    "tXML says the same as JSON (change {})",
                    change.seq
                );
                txml_decoded += 1;
            }
        }
    }
    assert!(decoded >= 2000, "decoded {decoded} bodies");
    assert_eq!(txml_decoded, TXML_DECODES);
    assert!(split_lines > 0, "split lines occur");
    for kind in [
        EventKind::Order,
        EventKind::OrderDocuments,
        EventKind::Shipment,
    ] {
        assert!(
            changes.iter().any(|c| c.kind == kind),
            "{kind:?} events occur"
        );
    }
}

#[test]
fn polled_and_fetched_objects_decode_and_match_their_last_change() {
    let mut world = world(15);
    world.advance(300);
    let mut last: HashMap<String, &Change> = HashMap::new();
    for c in world.changes() {
        last.insert(c.id.clone(), c);
    }
    for object in world.objects() {
        let change = last[&object.id];
        assert_eq!(object.last_updated_at, change.last_updated_at);
        if object.class == "order" {
            for value in [
                world.order(&object.id).unwrap(),
                world.order_single_delivery(&object.id).unwrap(),
            ] {
                assert_no_empty_arrays_or_nulls(&value, &object.id);
                let (order, _) = decode_order(value.to_string().as_bytes()).expect("order decodes");
                assert_eq!(order.object_id(), Some(object.id.as_str()));
                assert_eq!(order.version, Some(object.version));
                assert_eq!(
                    order.last_updated_at.as_deref(),
                    Some(object.last_updated_at.as_str())
                );
            }
        } else {
            let value = world.shipment(&object.id).unwrap();
            assert_no_empty_arrays_or_nulls(&value, &object.id);
            let (shipment, _) =
                decode_shipment(value.to_string().as_bytes()).expect("shipment decodes");
            assert_eq!(shipment.id.as_deref(), Some(object.id.as_str()));
            assert_eq!(
                shipment.last_updated_at(),
                Some(object.last_updated_at.as_str())
            );
        }
    }
}

#[test]
fn history_follows_the_rules_of_versions_timestamps_and_multi_event_actions() {
    let mut world = world(10);
    world.advance(1000);
    let changes = world.changes();
    let mut state: HashMap<&str, (u64, &str)> = HashMap::new();
    let mut multi = 0;
    let mut ms_owners: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut previous: Option<&Change> = None;
    for c in changes {
        if let Some((version, at)) = state.get(c.id.as_str()) {
            let same_action = previous.is_some_and(|p| {
                p.id == c.id && p.last_updated_at == c.last_updated_at && p.version == c.version
            });
            if same_action {
                multi += 1;
            } else if c.state_changed {
                assert_eq!(c.version, version + 1, "{}: one version per action", c.id);
                assert!(
                    c.last_updated_at.as_str() > *at,
                    "{}: time moves forward",
                    c.id
                );
            } else {
                assert!(
                    c.event_name.contains("Resent"),
                    "only resends keep the state"
                );
                assert_eq!((c.version, c.last_updated_at.as_str()), (*version, *at));
            }
        }
        state.insert(&c.id, (c.version, &c.last_updated_at));
        ms_owners
            .entry(&c.last_updated_at)
            .or_default()
            .insert(&c.id);
        previous = Some(c);
    }
    assert!(
        multi > 0,
        "some actions emit several events at one lastUpdatedAt"
    );
    assert!(
        ms_owners.values().any(|ids| ids.len() > 1),
        "objects share a millisecond"
    );
    let ids: HashSet<&str> = changes.iter().map(|c| c.message_id.as_str()).collect();
    assert_eq!(ids.len(), changes.len(), "message ids are unique");
    let timestamps_ok = changes.iter().all(|c| {
        tradecloud_model::timestamp::parse(&c.last_updated_at)
            .map(|t| tradecloud_model::timestamp::format(t) == c.last_updated_at)
            .unwrap_or(false)
    });
    assert!(timestamps_ok, "YYYY-MM-DDThh:mm:ss.SSSZ throughout");
}

#[test]
fn order_sizes_range_up_to_the_configured_maximum() {
    let line_counts = |max_lines: usize| -> Vec<usize> {
        let world = World::new(WorldConfig {
            seed: 8,
            initial_orders: 150,
            initial_shipments: 0,
            max_lines,
            ..WorldConfig::default()
        });
        world
            .objects()
            .iter()
            .map(|o| {
                world.order(&o.id).unwrap()["lines"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect()
    };
    let big = line_counts(500);
    assert!(big.iter().all(|n| (1..=500).contains(n)));
    assert!(
        big.iter().any(|n| *n > 100),
        "some orders are large: {big:?}"
    );
    assert!(
        big.iter().filter(|n| **n <= 5).count() > big.len() / 2,
        "most are small"
    );
    let small = line_counts(3);
    assert!(small.iter().all(|n| (1..=3).contains(n)));
    assert!(small.contains(&3));
}
