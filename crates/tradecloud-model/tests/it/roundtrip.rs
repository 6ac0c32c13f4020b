//! Property tests: any webhook body the schema describes, written as JSON and as tXML (by the
//! model's writer), decodes back to exactly the value it was made from; and the typed view
//! reads and writes every schema field with the schema's type.
//!
//! The generator walks `tradecloud_model::schema::WEBHOOK_BODY`, so a field added to the
//! schema is generated without touching this file. Values: random subsets of each object's
//! fields; strings with XML's special characters, non-ASCII, white space at the edges and
//! empty strings; decimals with exact digits (`12.50`, `0.001`, 28-digit integers); booleans;
//! lists of 0 to 4 items (an empty one written as `<lines/>`, a wrapping writer's empty list).

use proptest::prelude::*;
use proptest::strategy::Union;
use serde_json::{Map, Value};

use tradecloud_model::schema::{Field, META, SHIPMENT, Shape, WEBHOOK_BODY, field};
use tradecloud_model::txml::to_txml;
use tradecloud_model::{Meta, Order, Shipment, decode_webhook};

/// Strings as Tradecloud might send them, XML-hostile ones included.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => "[A-Za-z0-9 ./:-]{1,16}",
        2 => "[a-z<>&'\" ]{0,10}",
        1 => Just(String::new()),
        1 => "[ \t\n]{1,3}[a-zé]{1,5}[ \t\n]{0,3}",
        1 => "[øéüß€中文😀ÆΩ]{1,6}",
        1 => prop::sample::select(vec![
            "]]>", "<![CDATA[x]]>", "&amp;", "&#233;", "&lt;a&gt;", "a\r\nb", "\r",
            "<!-- c -->", "<?pi x?>", "x=\"1\"", "'", "\"",
        ])
        .prop_map(str::to_owned),
    ]
    .boxed()
}

/// Non-blank strings, for ids and the event name.
fn id() -> BoxedStrategy<String> {
    text()
        .prop_filter("non-blank", |s| !s.trim().is_empty())
        .boxed()
}

/// JSON number text with exact digits.
fn decimal_text() -> BoxedStrategy<String> {
    let fraction = (0u64..1_000_000, 1usize..=6).prop_map(|(f, width)| {
        let digits = format!("{f:06}");
        digits[..width].to_owned()
    });
    prop_oneof![
        any::<u32>().prop_map(|n| n.to_string()),
        (0u64..100_000, fraction).prop_map(|(i, f)| format!("{i}.{f}")),
        Just("12.50".to_owned()),
        Just("0.001".to_owned()),
        Just("0".to_owned()),
        // Large integers up to rust_decimal's 28 digits.
        "[1-9][0-9]{19,27}",
        (1u64..1000, 1u32..4).prop_map(|(i, s)| format!("-{i}.{}", "5".repeat(s as usize))),
    ]
    .boxed()
}

fn number(text: &str) -> Value {
    Value::Number(text.parse().expect("a JSON number"))
}

/// A value of `shape`; `name` is the field's name, for the few fields the typed view reads
/// more strictly than the schema (`version` is a whole number).
fn value(name: &str, shape: &Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Str => text().prop_map(Value::String).boxed(),
        Shape::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Shape::Num if name == "version" => any::<u64>().prop_map(Value::from).boxed(),
        Shape::Num => decimal_text().prop_map(|t| number(&t)).boxed(),
        Shape::List { of, .. } => prop::collection::vec(value(name, of), 0..=4)
            .prop_map(Value::Array)
            .boxed(),
        Shape::Obj(fields) => object(fields, &[]),
    }
}

/// An object with a random subset of `fields`, plus the `required` fields (non-blank strings).
fn object(fields: &'static [Field], required: &[&'static str]) -> BoxedStrategy<Value> {
    let members: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .iter()
        .map(|f| {
            let name = f.name.to_owned();
            if required.contains(&f.name) {
                id().prop_map(move |v| Some((name.clone(), Value::String(v))))
                    .boxed()
            } else {
                prop::option::weighted(0.4, value(f.name, &f.shape))
                    .prop_map(move |v| v.map(|v| (name.clone(), v)))
                    .boxed()
            }
        })
        .collect();
    members
        .prop_map(|members| Value::Object(members.into_iter().flatten().collect::<Map<_, _>>()))
        .boxed()
}

/// Shipments have load carriers, orders do not. (Schema constants are inlined where used, so
/// their addresses cannot tell them apart.)
fn is_shipment(fields: &'static [Field]) -> bool {
    field(fields, "loadCarriers").is_some() && SHIPMENT.len() == fields.len()
}

/// The event keys with the object shape and id field each needs.
fn event_keys() -> Vec<(&'static str, &'static [Field], &'static str)> {
    WEBHOOK_BODY
        .iter()
        .filter(|f| !matches!(f.name, "eventName" | "meta"))
        .map(|f| {
            let fields = f.shape.fields();
            let id = if is_shipment(fields) {
                "id"
            } else {
                assert!(
                    field(fields, "orderId").is_some(),
                    "{} is a new kind of event",
                    f.name
                );
                "orderId"
            };
            (f.name, fields, id)
        })
        .collect()
}

/// A webhook body: `eventName`, exactly one event, and maybe body-level `meta`.
fn webhook_body() -> BoxedStrategy<Value> {
    let events = Union::new(event_keys().into_iter().map(|(key, fields, id_field)| {
        object(fields, &[id_field])
            .prop_map(move |event| (key, event))
            .boxed()
    }));
    (id(), events, prop::option::of(object(META, &[])))
        .prop_map(|(event_name, (key, event), meta)| {
            let mut body = Map::new();
            body.insert("eventName".into(), Value::String(event_name));
            body.insert(key.into(), event);
            if let Some(meta) = meta {
                body.insert("meta".into(), meta);
            }
            Value::Object(body)
        })
        .boxed()
}

/// Checks that `body` survives JSON and tXML unchanged, and that both decodes agree.
fn assert_round_trip(body: &Value) -> Result<(), TestCaseError> {
    let json = serde_json::to_vec(body).unwrap();
    let xml = to_txml(body).map_err(|e| TestCaseError::fail(format!("to_txml: {e}")))?;
    let from_json = decode_webhook(&json, Some("application/json"))
        .map_err(|e| TestCaseError::fail(format!("JSON does not decode: {e}")))?;
    let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml"))
        .map_err(|e| TestCaseError::fail(format!("tXML does not decode: {e}\n{xml}")))?;
    prop_assert_eq!(&from_json.payload, body);
    prop_assert_eq!(&from_xml.payload, body, "tXML was:\n{}", xml);
    prop_assert_eq!(&from_json.body, &from_xml.body);
    Ok(())
}

/// Checks that the typed view reads every field of `body` and writes back the same JSON.
fn assert_typed_round_trip(body: &Value) -> Result<(), TestCaseError> {
    let map = body.as_object().unwrap();
    for (key, fields, _) in event_keys() {
        let Some(event) = map.get(key) else { continue };
        let back = if is_shipment(fields) {
            let typed: Shipment = serde_json::from_value(event.clone())
                .map_err(|e| TestCaseError::fail(format!("{key}: {e}")))?;
            serde_json::to_value(&typed).unwrap()
        } else {
            let typed: Order = serde_json::from_value(event.clone())
                .map_err(|e| TestCaseError::fail(format!("{key}: {e}")))?;
            serde_json::to_value(&typed).unwrap()
        };
        prop_assert_eq!(&back, event, "{} through the typed view", key);
    }
    if let Some(meta) = map.get("meta") {
        let typed: Meta = serde_json::from_value(meta.clone()).unwrap();
        prop_assert_eq!(&serde_json::to_value(&typed).unwrap(), meta);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn json_and_txml_decode_to_the_generated_value(body in webhook_body()) {
        assert_round_trip(&body)?;
    }

    #[test]
    fn typed_view_reads_and_writes_every_generated_field(body in webhook_body()) {
        assert_typed_round_trip(&body)?;
    }
}

/// The value of `shape` with every field present, lists of two: so that every schema field is
/// exercised on every run, whatever the random subsets above happen to pick.
fn full(name: &str, shape: &Shape, n: &mut u64) -> Value {
    *n += 1;
    match shape {
        Shape::Str => Value::String(format!("{name} <{n}> & 'é'")),
        Shape::Bool => Value::Bool(n.is_multiple_of(2)),
        Shape::Num if name == "version" => Value::from(*n),
        Shape::Num => number(&format!("{n}.{:02}", *n % 100)),
        Shape::List { of, .. } => Value::Array(vec![full(name, of, n), full(name, of, n)]),
        Shape::Obj(fields) => Value::Object(
            fields
                .iter()
                .map(|f| (f.name.to_owned(), full(f.name, &f.shape, n)))
                .collect(),
        ),
    }
}

#[test]
fn every_schema_field_of_every_event_round_trips() {
    let mut n = 0;
    for (key, fields, _) in event_keys() {
        let event = full(key, &Shape::Obj(fields), &mut n);
        let body = serde_json::json!({
            "eventName": "OrderIssuedByBuyer",
            key: event,
            "meta": full("meta", &Shape::Obj(META), &mut n),
        });
        assert_round_trip(&body).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_typed_round_trip(&body).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

#[test]
fn strings_with_carriage_returns_survive_txml() {
    let body = serde_json::json!({
        "eventName": "OrderIssuedByBuyer",
        "orderEvent": {"orderId": "o-1", "buyerOrder": {"notes": ["line 1\r\nline 2", "\r", "a\rb"]}},
    });
    assert_round_trip(&body).unwrap();
}

/// JSON `null` for a field of each shape (Tradecloud's serializers may write nulls): `to_txml`
/// writes `xsi:nil="true"`, and reading it back gives `null` again, not a list holding null.
#[test]
fn null_fields_survive_txml() {
    let body = serde_json::json!({
        "eventName": "OrderIssuedByBuyer",
        "orderEvent": {
            "orderId": "o-1",
            "legacyOrderId": null,
            "version": null,
            "buyerOrder": {"notes": null, "documents": null, "buyerParty": null},
            "lines": [{"id": "l-1", "deliverySchedule": null, "prices": {"grossPrice": null, "priceUnitQuantity": null}}],
        },
        "meta": null,
    });
    assert_round_trip(&body).unwrap();
}

/// Every list of every event empty (`[]`), items and all: each reads back as `[]`, not as a
/// list of one empty item nor left out.
#[test]
fn every_schema_list_empty_round_trips() {
    fn emptied(value: &mut Value) {
        match value {
            Value::Array(items) => items.clear(),
            Value::Object(map) => map.values_mut().for_each(emptied),
            _ => {}
        }
    }
    let mut n = 0;
    for (key, fields, _) in event_keys() {
        let mut event = full(key, &Shape::Obj(fields), &mut n);
        emptied(&mut event);
        let body = serde_json::json!({"eventName": "OrderIssuedByBuyer", key: event});
        assert!(body.to_string().contains("[]"), "{key} has lists");
        assert_round_trip(&body).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
}

/// `body` as tXML from a writer that wraps every schema list in an element of the list's own
/// name (`<lines><line>…</line></lines>`, an empty one `<lines/>`): Jackson's XmlMapper with
/// its default wrapping. Fields the schema does not know are not generated.
fn to_wrapped_txml(body: &Value) -> String {
    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\r', "&#13;")
    }
    fn element(out: &mut String, name: &str, value: &Value, shape: &Shape) {
        match (value, shape) {
            (Value::Null, _) => out.push_str(&format!("<{name} xsi:nil=\"true\"/>")),
            (Value::Array(items), Shape::List { item, of }) => {
                out.push_str(&format!("<{name}>"));
                for v in items {
                    element(out, item, v, of);
                }
                out.push_str(&format!("</{name}>"));
            }
            (Value::Object(map), Shape::Obj(fields)) => {
                out.push_str(&format!("<{name}>"));
                for (key, v) in map {
                    let f = field(fields, key).expect("a schema field");
                    element(out, key, v, &f.shape);
                }
                out.push_str(&format!("</{name}>"));
            }
            (Value::String(s), _) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
            (other, _) => out.push_str(&format!("<{name}>{other}</{name}>")),
        }
    }
    let mut out =
        String::from("<WebhookBody xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">");
    for (key, v) in body.as_object().unwrap() {
        let f = field(WEBHOOK_BODY, key).expect("a webhook body field");
        element(&mut out, key, v, &f.shape);
    }
    out.push_str("</WebhookBody>");
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn txml_with_wrapped_lists_decodes_to_the_generated_value(body in webhook_body()) {
        let xml = to_wrapped_txml(&body);
        let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml"))
            .map_err(|e| TestCaseError::fail(format!("tXML does not decode: {e}\n{xml}")))?;
        prop_assert_eq!(&from_xml.payload, &body, "tXML was:\n{}", xml);
    }
}

#[test]
fn every_schema_field_of_every_event_round_trips_with_wrapped_lists() {
    let mut n = 0;
    for (key, fields, _) in event_keys() {
        let event = full(key, &Shape::Obj(fields), &mut n);
        let body = serde_json::json!({"eventName": "OrderIssuedByBuyer", key: event});
        let xml = to_wrapped_txml(&body);
        let d = decode_webhook(xml.as_bytes(), Some("application/xml"))
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(d.payload, body, "{key}");
    }
}
