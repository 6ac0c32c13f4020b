//! Tradecloud's own published examples (files of its .NET SDK and API docs repositories, listed
//! with their commits in docs/tradecloud.md §0), wrapped into the webhook bodies Tradecloud would
//! post, for every test that relays real messages: this crate's decode test
//! (`tests/it/realworld.rs`) and the webhook router's
//! (`crates/tcrelay-core/tests/it/realworld_router.rs`, which includes this file by path). An
//! api-connector order or order response becomes the echo in an order event
//! ([`wrap_order_json`], [`wrap_order_xml`]), a despatch advice a shipment event
//! ([`wrap_shipment`]), a documents fragment the object of its documents event, and every event
//! name of the webhook settings examples is posted with a minimal body.
//!
//! The files are read at test time from the folder `TCRELAY_REALWORLD_DIR` names, by default
//! `shared/tradecloud/realworld/` beside the clone, and never copied into the repository. Where
//! the folder is absent, [`load`] fails the test, naming it, unless `TCRELAY_SKIP_REALWORLD=1`
//! asks to run without it (then it says so in one line and gives nothing to run).

#![allow(dead_code)] // each including test uses its own part

use std::collections::BTreeMap;
use std::path::PathBuf;

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value, json};

/// How many bodies the folder gives: checked, so a file that stops being read is noticed.
pub const EXPECTED_CASES: usize = 92;

/// One webhook body made of a real example.
pub struct Case {
    /// The example file (or the event name, for the event-name sweep) and its format.
    pub name: String,
    /// The body as posted.
    pub body: Vec<u8>,
    /// `application/json` or `application/xml`.
    pub content_type: &'static str,
    /// JSON: the body itself, which must arrive unchanged. tXML: its JSON twin, whose shape
    /// the payload must have.
    pub json: Value,
}

impl Case {
    /// True for a tXML body (compared with its JSON twin by shape).
    pub fn is_txml(&self) -> bool {
        self.content_type == "application/xml"
    }

    /// The event name the body carries.
    pub fn event_name(&self) -> &str {
        self.json["eventName"].as_str().expect("every case has one")
    }

    /// The id of the object the body carries.
    pub fn object_id(&self) -> &'static str {
        if self.json.get("shipment").is_some() {
            "s-realworld"
        } else {
            "o-realworld"
        }
    }

    fn json(name: String, body: Value) -> Case {
        Case {
            name,
            body: serde_json::to_vec(&body).unwrap(),
            content_type: "application/json",
            json: body,
        }
    }

    fn txml(name: String, xml: String, twin: Value) -> Case {
        Case {
            name,
            body: xml.into_bytes(),
            content_type: "application/xml",
            json: twin,
        }
    }
}

fn folder() -> PathBuf {
    if let Ok(dir) = std::env::var("TCRELAY_REALWORLD_DIR") {
        return PathBuf::from(dir);
    }
    // Both including crates sit two levels below the workspace root; `shared/` is beside the
    // clone.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tradecloud/realworld")
}

/// Every case, or `None` (after saying so in one line) when the folder is absent and
/// `TCRELAY_SKIP_REALWORLD=1` asks to run without it; absent without that, the test fails, so a
/// missing folder is never a silent pass.
pub fn load() -> Option<Vec<Case>> {
    let dir = folder();
    if !dir.join("SOURCES.md").is_file() {
        let skip = std::env::var("TCRELAY_SKIP_REALWORLD").is_ok_and(|v| v == "1");
        assert!(
            skip,
            "Tradecloud's published examples are missing at {} (they sit beside the clone in \
             ../shared/tradecloud/realworld, or where TCRELAY_REALWORLD_DIR points; \
             docs/tradecloud.md lists their sources); set TCRELAY_SKIP_REALWORLD=1 to run \
             the other tests without them",
            dir.display()
        );
        println!(
            "TCRELAY_SKIP_REALWORLD=1: Tradecloud's examples are not at {}: {EXPECTED_CASES} real-world cases not run",
            dir.display()
        );
        return None;
    }
    let cases = cases(&Examples { dir });
    assert_eq!(cases.len(), EXPECTED_CASES, "cases made");
    Some(cases)
}

struct Examples {
    dir: PathBuf,
}

impl Examples {
    fn text(&self, name: &str) -> String {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_str(&self.text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// A fragment such as `"documents": [ … ],` wrapped in `{}` without its trailing comma.
    fn fragment(&self, name: &str) -> Value {
        let text = self.text(name);
        let text = text.trim().trim_end_matches(',');
        serde_json::from_str(&format!("{{{text}}}")).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// Which side of an order an api-connector example comes from.
#[derive(Clone, Copy)]
enum Side {
    Buyer,
    Supplier,
}

impl Side {
    fn order_key(self) -> &'static str {
        match self {
            Side::Buyer => "buyerOrder",
            Side::Supplier => "supplierOrder",
        }
    }
    fn line_key(self) -> &'static str {
        match self {
            Side::Buyer => "buyerLine",
            Side::Supplier => "supplierLine",
        }
    }
}

/// An api-connector order (`{order, lines, erp…}`) as the echo in an order event: `order` and
/// the top-level `erp…` fields → `<event>.<side>Order`, each line → `lines[i].<side>Line`.
fn wrap_order_json(example: &Value, event_key: &str, event_name: &str, side: Side) -> Value {
    let mut header = example["order"].as_object().cloned().unwrap_or_default();
    for (k, v) in example.as_object().unwrap() {
        if k != "order" && k != "lines" {
            header.insert(k.clone(), v.clone());
        }
    }
    let lines: Vec<Value> = example["lines"]
        .as_array()
        .map(|ls| ls.iter().map(|l| json!({ side.line_key(): l })).collect())
        .unwrap_or_default();
    let mut event = Map::new();
    event.insert("orderId".into(), json!("o-realworld"));
    event.insert(side.order_key().into(), Value::Object(header));
    if !lines.is_empty() {
        event.insert("lines".into(), Value::Array(lines));
    }
    json!({"eventName": event_name, event_key: event})
}

/// The root's children of an XML document, each as (name, the element's text, its content).
fn children(xml: &str) -> Vec<(String, String, String)> {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut open: Option<(String, usize, usize)> = None;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().expect("the example is well-formed XML");
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 {
                    let name = e.local_name().as_ref().to_owned();
                    open = Some((name, before, after));
                }
            }
            Event::Empty(e) if depth == 1 => {
                let name = e.local_name().as_ref().to_owned();
                out.push((name, xml[before..after].to_owned(), String::new()));
            }
            Event::End(_) => {
                if depth == 2 {
                    let (name, start, content) = open.take().unwrap();
                    out.push((
                        name,
                        xml[start..after].to_owned(),
                        xml[content..before].to_owned(),
                    ));
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

/// The same wrapping in tXML: root → `<WebhookBody>`, `<order>` (and the `erp…` elements) →
/// `<event><sideOrder>`, each `<line>` → `<line><sideLine>`.
fn wrap_order_xml(xml: &str, event_key: &str, event_name: &str, side: Side) -> String {
    let (order_key, line_key) = (side.order_key(), side.line_key());
    let mut header = String::new();
    let mut lines = String::new();
    for (name, element, content) in children(xml) {
        match name.as_str() {
            "order" => header.push_str(&content),
            "line" => lines.push_str(&format!("<line><{line_key}>{content}</{line_key}></line>")),
            _ => header.push_str(&element),
        }
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<WebhookBody><eventName>{event_name}</eventName>\
         <{event_key}><orderId>o-realworld</orderId><{order_key}>{header}</{order_key}>{lines}</{event_key}></WebhookBody>"
    )
}

/// A despatch advice or shipment upsert as a `shipment` event: `header.shipment` → `shipment`
/// with an id, `supplierHeader`/`buyerHeader` → `supplierShipment`/`buyerShipment`,
/// `lines` and `loadCarriers` as they are.
fn wrap_shipment(example: &Value, event_name: &str) -> Value {
    let mut shipment = example["header"]["shipment"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    shipment.insert("id".into(), json!("s-realworld"));
    for (from, to) in [
        ("supplierHeader", "supplierShipment"),
        ("buyerHeader", "buyerShipment"),
        ("lines", "lines"),
        ("loadCarriers", "loadCarriers"),
    ] {
        if let Some(v) = example.get(from).or_else(|| example["header"].get(from)) {
            shipment.insert(to.into(), v.clone());
        }
    }
    json!({"eventName": event_name, "shipment": shipment})
}

const RESPONSE: &str = "sdk-dotnet__api-connector__SendOrderResponse__";
const ORDER: &str = "sdk-dotnet__api-connector__SendOrder__";
const SIMPLE: &str = "sdk-dotnet__api-connector__SendSimpleOrder__";
const SINGLE: &str = "sdk-dotnet__api-connector__SendOrderSingleDelivery__";
const DESPATCH: &str = "sdk-dotnet__api-connector__SendDespatchAdvice__";

fn cases(ex: &Examples) -> Vec<Case> {
    let mut cases = Vec::new();
    // Orders with a tXML twin: buyer orders, the old single-delivery name, supplier responses.
    let twins = [
        (
            ORDER,
            "order",
            "orderEvent",
            "OrderIssuedByBuyer",
            Side::Buyer,
        ),
        (
            ORDER,
            "minimal-order",
            "orderEvent",
            "OrderIssuedByBuyer",
            Side::Buyer,
        ),
        (
            SIMPLE,
            "simple-order",
            "singleDeliveryOrderEvent",
            "OrderIssuedByBuyer",
            Side::Buyer,
        ),
        (
            SIMPLE,
            "minimal-simple-order",
            "singleDeliveryOrderEvent",
            "OrderIssuedByBuyer",
            Side::Buyer,
        ),
        (
            RESPONSE,
            "order-response",
            "orderEvent",
            "OrderLinesConfirmedBySupplier",
            Side::Supplier,
        ),
        (
            RESPONSE,
            "minimal-order-response",
            "orderEvent",
            "OrderLinesConfirmedBySupplier",
            Side::Supplier,
        ),
    ];
    for (prefix, name, event_key, event_name, side) in twins {
        let file = format!("{prefix}{name}");
        let body = wrap_order_json(
            &ex.json(&format!("{file}.json")),
            event_key,
            event_name,
            side,
        );
        let xml = wrap_order_xml(
            &ex.text(&format!("{file}.xml")),
            event_key,
            event_name,
            side,
        );
        cases.push(Case::txml(format!("{file}.xml"), xml, body.clone()));
        cases.push(Case::json(format!("{file}.json"), body));
    }
    // JSON only: single-delivery orders and order documents.
    for name in ["single-delivery-order", "minimal-single-delivery-order"] {
        let file = format!("{SINGLE}{name}.json");
        let body = wrap_order_json(
            &ex.json(&file),
            "singleDeliveryOrderEvent",
            "OrderIssuedByBuyer",
            Side::Buyer,
        );
        cases.push(Case::json(file, body));
    }
    let docs = "sdk-dotnet__api-connector__AttachOrderDocuments__order-documents.json";
    let body = wrap_order_json(
        &ex.json(docs),
        "orderDocumentsEvent",
        "OrderDocumentsAttachedByBuyer",
        Side::Buyer,
    );
    cases.push(Case::json(docs.to_owned(), body));
    // Shipments.
    for file in [
        format!("{DESPATCH}despatch-advice.json"),
        format!("{DESPATCH}minimal-despatch-advice.json"),
        "sdk-dotnet__shipment__UpsertShipment__despatch-advice.json".to_owned(),
    ] {
        let body = wrap_shipment(&ex.json(&file), "ShipmentIssuedBySupplier");
        cases.push(Case::json(file, body));
    }
    // Document fragments: order documents under the supplier's order, shipment documents
    // (with a zone-less `meta.lastUpdatedAt`) under the supplier's shipment.
    for kind in ["objectId", "url"] {
        let file = format!(
            "docs-api-v2__order__buyer__receive__download-document.md__documents-{kind}.fragment.txt"
        );
        let body = json!({"eventName": "OrderDocumentsAttachedBySupplier",
            "orderDocumentsEvent": {"orderId": "o-realworld", "supplierOrder": ex.fragment(&file)}});
        cases.push(Case::json(file, body));
        let file = format!(
            "docs-api-v2__shipment__buyer__receive__download-document.md__documents-{kind}.fragment.txt"
        );
        let body = json!({"eventName": "ShipmentDocumentAttachedBySupplier",
            "shipment": {"id": "s-realworld", "supplierShipment": ex.fragment(&file)}});
        cases.push(Case::json(file, body));
    }
    // Every event name of the webhook settings, each with the minimal wrapper of its kind.
    let minimal_order = ex.json(&format!("{ORDER}minimal-order.json"));
    let minimal_order_xml = ex.text(&format!("{ORDER}minimal-order.xml"));
    let names = |file: &str| -> Vec<String> {
        let settings = ex.json(file);
        let mut names: Vec<String> = settings["enabledEventNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        // One name is listed twice in Tradecloud's example.
        names.sort();
        names.dedup();
        names
    };
    for event_name in names(
        "sdk-dotnet__order-webhook-connector__SetOrderEventsSettings__order-events-settings.json",
    ) {
        let body = wrap_order_json(&minimal_order, "orderEvent", &event_name, Side::Buyer);
        let xml = wrap_order_xml(&minimal_order_xml, "orderEvent", &event_name, Side::Buyer);
        cases.push(Case::txml(
            format!("{event_name} (tXML)"),
            xml,
            body.clone(),
        ));
        cases.push(Case::json(format!("{event_name} (JSON)"), body));
    }
    for event_name in names(
        "sdk-dotnet__order-webhook-connector__SetOrderDocumentsEventsSettings__order-documents-events-settings.json",
    ) {
        let body = wrap_order_json(
            &ex.json(docs),
            "orderDocumentsEvent",
            &event_name,
            Side::Buyer,
        );
        cases.push(Case::json(format!("{event_name} (JSON)"), body));
    }
    let minimal_despatch = ex.json(&format!("{DESPATCH}minimal-despatch-advice.json"));
    for event_name in
        names("sdk-dotnet__shipment-webhook-connector__SetShipmentSettings__settings.json")
    {
        let body = wrap_shipment(&minimal_despatch, &event_name);
        cases.push(Case::json(format!("{event_name} (JSON)"), body));
    }
    cases
}

/// What a value looks like without its values: objects by key, lists by the merged shape of
/// their items, leaves by JSON type.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Leaf(&'static str),
    List(Box<Shape>),
    Obj(BTreeMap<String, Shape>),
    Empty,
}

fn shape(v: &Value) -> Shape {
    match v {
        Value::Object(m) => Shape::Obj(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => {
            Shape::List(Box::new(items.iter().map(shape).fold(Shape::Empty, merge)))
        }
        Value::Null => Shape::Leaf("null"),
        Value::Bool(_) => Shape::Leaf("boolean"),
        Value::Number(_) => Shape::Leaf("number"),
        Value::String(_) => Shape::Leaf("string"),
    }
}

/// Every field path of a shape (list items under the list's own path) with its type: lists
/// are `list`, so a list read as an object shows as a type difference at the same path.
fn flat(shape: &Shape) -> BTreeMap<String, &'static str> {
    fn walk(shape: &Shape, path: String, out: &mut BTreeMap<String, &'static str>) {
        match shape {
            Shape::Leaf(t) => {
                out.insert(path, t);
            }
            Shape::Empty => {}
            Shape::List(item) => {
                out.insert(path.clone(), "list");
                if let Shape::List(_) = **item {
                    walk(item, format!("{path}[]"), out);
                } else {
                    // Items' fields under the list's path; a leaf item's type as `<list>[]`.
                    match &**item {
                        Shape::Obj(m) => {
                            for (k, v) in m {
                                walk(v, format!("{path}.{k}"), out);
                            }
                        }
                        other => walk(other, format!("{path}[]"), out),
                    }
                }
            }
            Shape::Obj(m) => {
                out.insert(path.clone(), "object");
                for (k, v) in m {
                    walk(v, format!("{path}.{k}"), out);
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(shape, String::new(), &mut out);
    out
}

fn merge(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Empty, x) | (x, Shape::Empty) => x,
        (Shape::Obj(mut x), Shape::Obj(y)) => {
            for (k, v) in y {
                let merged = match x.remove(&k) {
                    Some(old) => merge(old, v),
                    None => v,
                };
                x.insert(k, merged);
            }
            Shape::Obj(x)
        }
        (Shape::List(x), Shape::List(y)) => Shape::List(Box::new(merge(*x, *y))),
        (x, _) => x,
    }
}

/// Fields Tradecloud's JSON example has and its tXML twin does not.
const ONLY_IN_JSON_TWIN: &[(&str, &str)] = &[
    (
        "sdk-dotnet__api-connector__SendOrderResponse__order-response.xml",
        ".orderEvent.lines.supplierLine.indicators.shipped",
    ),
    (
        "sdk-dotnet__api-connector__SendOrderResponse__order-response.xml",
        ".orderEvent.supplierOrder.indicators.shipped",
    ),
];

/// How a payload read from a case departs from what it must be, one line per departure (none:
/// it is right). JSON: the payload is the body unchanged. tXML: the payload has the shape of
/// its JSON twin, the same JSON types at the same paths, lists as lists at the same places;
/// Tradecloud's twins differ in some values and in a few fields only one of them carries, so
/// values are not compared, and fields only the tXML twin carries are not either.
pub fn departures(case: &Case, payload: &Value) -> Vec<String> {
    if !case.is_txml() {
        return if *payload == case.json {
            Vec::new()
        } else {
            vec![format!("the payload is not the body as sent: {payload}")]
        };
    }
    let (got, want) = (flat(&shape(payload)), flat(&shape(&case.json)));
    let mut out: Vec<String> = want
        .iter()
        .filter_map(|(path, json_type)| {
            let txml_type = got.get(path)?;
            (txml_type != json_type).then(|| format!("{path}: JSON {json_type}, tXML {txml_type}"))
        })
        .collect();
    // Every field of the JSON twin is in the tXML payload (a list read under its item's name
    // would be missing under its own).
    out.extend(
        want.keys()
            .filter(|p| !got.contains_key(*p))
            .filter(|p| !ONLY_IN_JSON_TWIN.contains(&(case.name.as_str(), p.as_str())))
            .map(|p| format!("{p}: in the JSON twin, missing from the tXML payload")),
    );
    out
}
