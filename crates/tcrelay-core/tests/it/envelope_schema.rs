//! docs/envelope.schema.json against what the relay writes, without Python: every webhook
//! fixture (each kind, JSON and tXML) through the router, a GET of an order and of a shipment,
//! a polled envelope of every kind (with and without `changedLines`), and the example of
//! docs/consumers.md. The Python consumer test (apps/tcrelay/tests/it/consumers.rs) checks the
//! same schema with Python's jsonschema, but only for webhook POSTs and only where moto and the
//! venv of scripts/test.sh are there (it fails without them); this one needs neither and runs
//! with every `cargo test`.
//!
//! The schema is read by the `jsonschema` crate, as a consumer's validator would read it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tcrelay_core::envelope::{Envelope, ObjectState, Payload};
use tcrelay_core::{EventFilter, WebhookSettings};
use tradecloud_model::{ObjectClass, ObjectKind};

use crate::common::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/tcrelay-core sits two levels below the workspace root")
        .to_path_buf()
}

fn schema() -> Value {
    let path = workspace_root().join("docs/envelope.schema.json");
    serde_json::from_slice(&std::fs::read(&path).expect("read the schema")).expect("JSON")
}

/// The schema, compiled.
fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::validator_for(schema).expect("docs/envelope.schema.json is a valid JSON Schema")
}

/// The reasons `value` does not conform to `schema` (empty when it does).
fn violations(schema: &Value, value: &Value) -> Vec<String> {
    validator(schema)
        .iter_errors(value)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// Asserts that `json` (one envelope as written) conforms to the schema and writes only fields
/// the schema documents.
fn assert_conforms(schema: &Value, json: &str, what: &str) {
    let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{what}: {e}"));
    let found = violations(schema, &value);
    assert!(found.is_empty(), "{what}: {found:#?}\n{json}");
    let documented: &Map<String, Value> = schema["properties"].as_object().unwrap();
    for field in value.as_object().unwrap().keys() {
        assert!(
            documented.contains_key(field),
            "{what}: field {field:?} is not in docs/envelope.schema.json"
        );
    }
}

#[test]
fn the_schema_refuses_what_no_envelope_may_be() {
    // The schema itself is strict on what consumers rely on: a schema loosened so far that it
    // refuses none of these would let the tests below pass whatever the relay writes.
    let schema = schema();
    let good: Value = serde_json::from_str(
        r#"{"schema":"tradecloud-relay/1","source":"poll","kind":"order","eventName":null,
            "id":"o-1","version":3,"lastUpdatedAt":null,"messageId":null,"dedupeKey":"state/x",
            "receivedAt":"2026-01-01T00:00:00.000Z","format":"json","changedLines":["l-1"],
            "payload":{}}"#,
    )
    .unwrap();
    assert!(violations(&schema, &good).is_empty());
    for (field, bad) in [
        ("schema", Value::from("tradecloud-relay/2")),
        ("source", Value::from("webhook")),
        ("kind", Value::from("orders")),
        ("version", Value::from(-1)),
        ("version", serde_json::from_str("3.5").unwrap()),
        ("receivedAt", Value::from("2026-01-01T00:00:00Z")),
        ("changedLines", serde_json::json!([1])),
        ("payload", serde_json::json!([])),
        ("format", Value::from("xml")),
    ] {
        let mut envelope = good.clone();
        envelope[field] = bad.clone();
        assert!(
            !violations(&schema, &envelope).is_empty(),
            "{field}: {bad} passed"
        );
    }
    // An empty id only on a polled object (one Tradecloud served without an id, relayed as
    // sent): a webhook envelope always names its object.
    let mut idless = good.clone();
    idless["id"] = Value::from("");
    assert!(violations(&schema, &idless).is_empty());
    for source in ["webhook-get", "webhook-post"] {
        idless["source"] = Value::from(source);
        assert!(!violations(&schema, &idless).is_empty(), "{source}");
    }
    let mut missing = good;
    missing.as_object_mut().unwrap().remove("eventName");
    assert!(!violations(&schema, &missing).is_empty());
}

/// Every kind (the match fails to compile when a kind is added, so it is added here too).
fn all_kinds() -> [ObjectKind; 4] {
    use ObjectKind::*;
    let kinds = [Order, SingleDeliveryOrder, OrderDocuments, Shipment];
    for kind in kinds {
        match kind {
            Order | SingleDeliveryOrder | OrderDocuments | Shipment => {}
        }
    }
    kinds
}

/// The route each webhook fixture goes to, by what its body is.
fn route_of(body: &str) -> &'static str {
    if body.contains("shipment") && !body.contains("orderEvent") {
        "/webhook/shipments"
    } else if body.contains("orderDocumentsEvent") {
        "/webhook/order-documents"
    } else {
        "/webhook/orders"
    }
}

#[tokio::test]
async fn every_envelope_the_webhook_writes_conforms_to_the_published_schema() {
    let schema = schema();
    let harness = || {
        harness_with(
            WebhookSettings {
                max_body_bytes: 8 * 1024 * 1024,
                filter: EventFilter::allow_all(),
                ..settings()
            },
            true,
        )
    };
    // One relay per format: the tXML fixtures are the JSON ones' twins, duplicates to one relay.
    let (json, harness) = (harness(), harness());
    let fixtures = workspace_root().join("tests/fixtures/webhook");
    let mut names: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") || n.ends_with(".xml"))
        .collect();
    names.sort();
    for name in &names {
        let body = std::fs::read_to_string(fixtures.join(name)).unwrap();
        let (content_type, relay) = if name.ends_with(".xml") {
            ("application/xml", &harness)
        } else {
            ("application/json", &json)
        };
        let answer = send(
            &relay.router,
            post(route_of(&body), Some(content_type), body.clone()),
        )
        .await;
        assert_eq!(answer.status, 202, "{name}: {}", answer.body);
    }

    // The GET webhook: Tradecloud calls with an id, the relay fetches the object.
    let api = workspace_root().join("tests/fixtures/api");
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(api.join(name)).unwrap()).unwrap()
    };
    let order = read("order-fetched.json");
    let order_id = order["id"].as_str().unwrap().to_owned();
    harness.api.put_order(&order_id, order);
    let shipment = read("shipment-fetched.json");
    let shipment_id = shipment["id"].as_str().unwrap().to_owned();
    harness.api.put_shipment(&shipment_id, shipment);
    for uri in [
        format!("/webhook/orders/{order_id}"),
        format!("/webhook/shipments/{shipment_id}"),
    ] {
        let answer = send(&harness.router, get(&uri)).await;
        assert!(answer.status.is_success(), "{uri}: {}", answer.body);
    }

    let mut envelopes = json.sink.envelopes();
    envelopes.extend(harness.sink.envelopes());
    let mut seen = std::collections::BTreeSet::new();
    for envelope in &envelopes {
        let json = envelope.to_json().unwrap();
        let what = format!(
            "{} {} {}",
            envelope.source.as_str(),
            envelope.kind,
            envelope.id
        );
        assert_conforms(&schema, &json, &what);
        seen.insert((
            envelope.source.as_str(),
            envelope.kind.as_str(),
            envelope.format.as_str(),
        ));
    }
    // Every kind in both formats by POST, and both objects by GET, were checked.
    let mut expected = std::collections::BTreeSet::new();
    for kind in all_kinds() {
        for format in ["json", "txml"] {
            expected.insert(("webhook-post", kind.as_str(), format));
        }
    }
    expected.insert(("webhook-get", "order", "json"));
    expected.insert(("webhook-get", "shipment", "json"));
    assert_eq!(seen, expected);
}

#[test]
fn polled_envelopes_of_every_kind_conform_to_the_published_schema() {
    // The poller builds its envelopes with `Envelope::of_polled` (crates/tcrelay-poll); here
    // each kind, without `changedLines` (an object it could not read for its lines), with none
    // changed, and with some, and its payload both as sent and as a value.
    let schema = schema();
    let object = r#"{"id":"o-1","version":2,"lastUpdatedAt":"2026-01-01T10:00:00+02:00","lines":[{"id":"l-1","price":87.30}]}"#;
    let value: Value = serde_json::from_str(object).unwrap();
    for kind in all_kinds() {
        for changed in [
            None,
            Some(vec![]),
            Some(vec!["l-1".to_owned(), "#1".to_owned()]),
        ] {
            for payload in [
                Payload::as_sent(object.into(), |t| serde_json::from_str(t)).unwrap(),
                Payload::value(value.clone()),
            ] {
                let envelope = Envelope::of_polled(
                    kind,
                    ObjectState::of(&value, kind.object_class(), "o-1"),
                    "state/order/o-1/2026-01-01T08:00:00.000Z".to_owned(),
                    changed.clone(),
                    payload,
                );
                let json = envelope.to_json().unwrap();
                assert_conforms(&schema, &json, &format!("poll {kind} {changed:?}"));
                assert!(json.contains("87.30"), "{json}");
            }
        }
    }
}

/// A polled object Tradecloud served without an id, or without a `lastUpdatedAt` (or with a
/// numeric one), is relayed as sent rather than holding its stream (docs/polling.md): its
/// envelope, with an empty `id` or a null or digit `lastUpdatedAt`, is one the published
/// schema admits, so a consumer that validates does not refuse the message it was promised.
#[test]
fn polled_envelopes_of_objects_without_an_id_or_a_time_conform_to_the_published_schema() {
    let schema = schema();
    for object in [
        r#"{"lastUpdatedAt":"2026-01-01T10:00:00.000Z","buyerOrder":{"purchaseOrderNumber":"PO1"}}"#,
        r#"{"id":"o-1","buyerOrder":{"purchaseOrderNumber":"PO1"}}"#,
        r#"{"id":"o-1","lastUpdatedAt":1767261600000}"#,
    ] {
        let value: Value = serde_json::from_str(object).unwrap();
        let state = ObjectState::of(&value, ObjectClass::Order, "");
        let key = tcrelay_core::dedupe::object_state_key(
            ObjectClass::Order,
            &state.id,
            state.last_updated_at.as_deref(),
            || value.clone(),
        );
        let envelope = Envelope::of_polled(
            ObjectKind::Order,
            state,
            key,
            None,
            Payload::as_sent(object.into(), |t| serde_json::from_str(t)).unwrap(),
        );
        let json = envelope.to_json().unwrap();
        assert_conforms(&schema, &json, object);
    }
}

#[test]
fn the_example_envelope_of_consumers_md_conforms_and_reads_as_an_envelope() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/consumers.md")).unwrap();
    let start = doc.find("```json\n").expect("the example envelope") + "```json\n".len();
    let example = &doc[start..start + doc[start..].find("```").unwrap()];
    let value: Value = serde_json::from_str(example).expect("the example is JSON");
    assert_conforms(&schema(), &value.to_string(), "docs/consumers.md example");
    let envelope: Envelope = serde_json::from_value(value).expect("the example is an envelope");
    // Its dedupe key is the message key of its own fields (docs/consumers.md, the key table).
    let at = envelope.last_updated_at.as_deref().unwrap();
    let event = envelope.event_name.as_deref().unwrap();
    // (the example shortens the id in the key with an ellipsis).
    let key = &envelope.dedupe_key;
    let class = envelope.kind.object_class();
    assert!(key.starts_with(&format!("msg/{class}/")), "{key}");
    assert!(key.contains(&format!("/{at}/{event}/L")), "{key}");
}
