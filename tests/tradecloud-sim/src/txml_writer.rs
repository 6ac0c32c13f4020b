//! The simulator's own tXML writer: JSON webhook bodies written as Tradecloud writes them.
//!
//! It deliberately shares nothing with the relay's tXML reader (`tradecloud_model`'s schema
//! table): if the two agreed only because they came from one table, the end-to-end tests could
//! not notice the reader drifting from Tradecloud. The convention, as Tradecloud publishes it
//! (docs `api/json-vs-xml.md`: tXML is "a one-to-one mapping of the JSON format"; the SDK's
//! `api-connector/SendOrder/order.xml` beside `order.json`; the webhook screenshot
//! `select-order-webhook-xml-content-type.png` with root `<WebhookBody>`):
//!
//! - the root element is `<WebhookBody>`;
//! - each field of a JSON object is a child element of the same name;
//! - a list has no wrapper element: each item is one repeated element named by the list's
//!   singular ([`list_element`]), the same name wherever the list appears;
//! - numbers and booleans are their JSON text (decimals keep every digit);
//! - an empty list writes nothing, since there is no wrapper element to leave empty.
//!
//! Tradecloud's published examples contain no `null`; it is written as an empty element
//! marked `xsi:nil="true"` (the XML Schema way to say null, which the reader must tell apart
//! from an empty string), with the `xsi` namespace declared on the root only when needed.

use std::borrow::Cow;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Map, Value};

/// The root element of every webhook body (Tradecloud's webhook screenshot).
pub const WEBHOOK_ROOT: &str = "WebhookBody";

const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Tradecloud's element name for each JSON list whose singular is not the generic rule's, or
/// whose singular the examples confirm. Sources are Tradecloud's public repositories:
/// sdk = github.com/tradecloud/tradecloud-sdk-dotnet, docs = github.com/tradecloud/tradecloud-docs-api-v2.
const LIST_ELEMENTS: &[(&str, &str)] = &[
    // sdk api-connector/SendOrder/order.xml (and every other .xml there): `<line>`.
    ("lines", "line"),
    // sdk SendOrder/order.xml, SendOrderResponse/order-response.xml: not a plain singular.
    ("deliverySchedule", "deliveryScheduleLine"),
    // Not in any published example: named like `deliverySchedule`'s item, which it extends
    // with the pending requests (an inference; Tradecloud's Swagger is not public).
    (
        "deliveryScheduleIncludingRequests",
        "deliveryScheduleIncludingRequestsLine",
    ),
    // sdk SendOrder/order.xml, SendOrderResponse/order-response.xml.
    ("chargeLines", "chargeLine"),
    // sdk SendOrder/order.xml: not a plain singular.
    ("deliveryHistory", "deliveryHistoryLine"),
    // sdk SendOrder/order.xml (parties, destination); docs' webhook screenshot (`buyerParty`).
    ("names", "name"),
    // sdk SendOrder/order.xml; docs' webhook screenshot.
    ("addressLines", "addressLine"),
    // sdk SendOrder/order.xml, SendOrderResponse/order-response.xml.
    ("notes", "note"),
    // sdk SendOrder/order.xml.
    ("labels", "label"),
    // sdk SendOrder/order.xml (`<property><key/><value/></property>`): `-ies` → `-y`.
    ("properties", "property"),
    // sdk SendOrder/order.xml, SendOrderResponse/order-response.xml.
    ("documents", "document"),
    // sdk SendOrder/order.xml (`item.dimensions`).
    ("dimensions", "dimension"),
    // The shipment lists have no published tXML example (the shipment webhook lists no tXML
    // format; sdk shipment-webhook-connector/SetShipmentSettings/settings.json has no
    // `format`): named by the plain singular, as every confirmed list above that is one.
    // sdk shipment/UpsertShipment/despatch-advice.json (`header.shipment.destinations`).
    ("destinations", "destination"),
    // sdk shipment/UpsertShipment/despatch-advice.json.
    ("loadCarriers", "loadCarrier"),
    // sdk shipment/UpsertShipment/despatch-advice.json (`supplierHeader`, `buyerHeader`).
    ("contacts", "contact"),
    // sdk shipment/UpsertShipment/despatch-advice.json (`supplierHeader.invoiceNumbers`).
    ("invoiceNumbers", "invoiceNumber"),
];

/// The element Tradecloud repeats for each item of the JSON list `field`: the table's name,
/// else the generic singular (`…ies` → `…y`, a trailing `s` dropped), else `field` itself.
pub fn list_element(field: &str) -> Cow<'_, str> {
    if let Some((_, element)) = LIST_ELEMENTS.iter().find(|(list, _)| *list == field) {
        return Cow::Borrowed(element);
    }
    if let Some(stem) = field.strip_suffix("ies").filter(|s| !s.is_empty()) {
        return Cow::Owned(format!("{stem}y"));
    }
    match field.strip_suffix('s') {
        // `ss` (`address`) is not a plural.
        Some(stem) if !stem.is_empty() && !stem.ends_with('s') => Cow::Borrowed(stem),
        _ => Cow::Borrowed(field),
    }
}

/// Why a JSON value cannot be written as tXML.
#[derive(Debug, thiserror::Error)]
pub enum TxmlWriteError {
    /// A document must be an object.
    #[error("a tXML document must be a JSON object")]
    NotAnObject,
    /// tXML has no way to write a list directly inside a list.
    #[error("{path}: a list inside a list cannot be written as tXML")]
    NestedList {
        /// Where.
        path: String,
    },
    /// A field name that XML cannot use as an element name.
    #[error("{path}: {name:?} is not an XML element name")]
    BadName {
        /// Where.
        path: String,
        /// The name.
        name: String,
    },
    /// A string with a character XML 1.0 cannot carry, even escaped.
    #[error("{path}: U+{code:04X} cannot be written in XML 1.0")]
    BadChar {
        /// Where.
        path: String,
        /// The character.
        code: u32,
    },
    /// Writing into memory failed (it cannot, but the writer's API is io-shaped).
    #[error("writing tXML: {0}")]
    Io(#[from] io::Error),
}

/// Writes a webhook body (a JSON object) as a tXML `<WebhookBody>` document, indented.
pub fn webhook_body_to_txml(body: &Value) -> Result<String, TxmlWriteError> {
    write_document(WEBHOOK_ROOT, body)
}

/// Writes `value` (a JSON object) as a tXML document whose root element is `root`.
pub fn write_document(root: &str, value: &Value) -> Result<String, TxmlWriteError> {
    let Value::Object(fields) = value else {
        return Err(TxmlWriteError::NotAnObject);
    };
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let mut start = BytesStart::new(root);
    if has_null(value) {
        start.push_attribute(("xmlns:xsi", XSI_NAMESPACE));
    }
    writer.write_event(Event::Start(start))?;
    write_fields(&mut writer, fields, "")?;
    writer.write_event(Event::End(BytesEnd::new(root)))?;
    // Every byte came from `&str`s and ASCII markup.
    Ok(String::from_utf8(writer.into_inner()).expect("tXML written from strings is UTF-8"))
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(fields) => fields.values().any(has_null),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

type XmlWriter = Writer<Vec<u8>>;

fn write_fields(
    writer: &mut XmlWriter,
    fields: &Map<String, Value>,
    path: &str,
) -> Result<(), TxmlWriteError> {
    for (name, value) in fields {
        let field_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        match value {
            Value::Array(items) => {
                let element = list_element(name);
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{field_path}[{i}]");
                    if item.is_array() {
                        return Err(TxmlWriteError::NestedList { path: item_path });
                    }
                    write_element(writer, &element, item, &item_path)?;
                }
            }
            _ => write_element(writer, name, value, &field_path)?,
        }
    }
    Ok(())
}

fn write_element(
    writer: &mut XmlWriter,
    name: &str,
    value: &Value,
    path: &str,
) -> Result<(), TxmlWriteError> {
    if !is_element_name(name) {
        return Err(TxmlWriteError::BadName {
            path: path.to_owned(),
            name: name.to_owned(),
        });
    }
    match value {
        Value::Null => {
            let empty = BytesStart::new(name).with_attributes([("xsi:nil", "true")]);
            writer.write_event(Event::Empty(empty))?;
        }
        Value::Bool(b) => write_text(writer, name, if *b { "true" } else { "false" })?,
        // With arbitrary_precision the text is the number exactly as it was read.
        Value::Number(n) => write_text(writer, name, &n.to_string())?,
        Value::String(s) => {
            if let Some(c) = s.chars().find(|c| !is_xml_char(*c)) {
                return Err(TxmlWriteError::BadChar {
                    path: path.to_owned(),
                    code: u32::from(c),
                });
            }
            write_text(writer, name, s)?;
        }
        Value::Object(fields) if fields.is_empty() => {
            writer.write_event(Event::Empty(BytesStart::new(name)))?;
        }
        Value::Object(fields) => {
            writer.write_event(Event::Start(BytesStart::new(name)))?;
            write_fields(writer, fields, path)?;
            writer.write_event(Event::End(BytesEnd::new(name)))?;
        }
        Value::Array(_) => {
            return Err(TxmlWriteError::NestedList {
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

fn write_text(writer: &mut XmlWriter, name: &str, text: &str) -> Result<(), TxmlWriteError> {
    if text.is_empty() {
        writer.write_event(Event::Empty(BytesStart::new(name)))?;
    } else {
        writer.write_event(Event::Start(BytesStart::new(name)))?;
        // BytesText::new escapes `<`, `>`, `&`, `'` and `"`.
        writer.write_event(Event::Text(BytesText::new(text)))?;
        writer.write_event(Event::End(BytesEnd::new(name)))?;
    }
    Ok(())
}

/// XML 1.0's Char production: a reader must refuse anything else, even as `&#…;`.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
        || c >= '\u{10000}'
}

/// A conservative XML Name: a letter or `_` first, then letters, digits, `_`, `-`, `.`; not
/// starting with `xml` (reserved) and no `:` (it would be read as a namespace prefix).
fn is_element_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("xml"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use quick_xml::Reader;
    use serde_json::json;

    use super::*;

    /// A JSON number with its digits as written (`json!` goes through f64).
    fn exact(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn lists_repeat_their_singular_element_at_any_depth_and_empty_lists_vanish() {
        let body = json!({
            "eventName": "OrderIssuedByBuyer",
            "orderEvent": {
                "orderId": "o-1",
                "lines": [
                    {"id": "l-1", "buyerLine": {
                        "deliverySchedule": [{"quantity": exact("1.50")}, {"quantity": 2}],
                        "chargeLines": [],
                        "item": {"dimensions": [{"measure": 5}]}
                    }},
                    {"id": "l-2", "buyerLine": {"notes": ["a"], "widgets": [1], "properties": [{"key": "k"}]}}
                ],
                "buyerOrder": {"buyerParty": {"names": ["A", "B"], "addressLines": ["x"]}}
            }
        });
        let xml = webhook_body_to_txml(&body).unwrap();
        let names = element_names(&xml);
        for expected in [
            "line",
            "deliveryScheduleLine",
            "dimension",
            "note",
            "widget",
            "property",
            "name",
            "addressLine",
        ] {
            assert!(names.contains(expected), "<{expected}> missing in\n{xml}");
        }
        for absent in [
            "lines",
            "deliverySchedule",
            "chargeLines",
            "chargeLine",
            "notes",
            "names",
        ] {
            assert!(!names.contains(absent), "<{absent}> written in\n{xml}");
        }
        assert_eq!(xml.matches("<line>").count(), 2);
        assert_eq!(xml.matches("<name>").count(), 2);
        assert!(xml.contains("<quantity>1.50</quantity>"), "{xml}");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            xml.contains("<WebhookBody>"),
            "no xsi declaration without a null"
        );
    }

    #[test]
    fn scalars_are_text_null_is_nil_and_text_is_escaped() {
        let body = json!({
            "eventName": "E",
            "orderEvent": {"a": true, "b": false, "c": null, "d": "", "e": "<&>\"'", "f": {}}
        });
        let xml = webhook_body_to_txml(&body).unwrap();
        assert!(xml.contains(&format!("<WebhookBody xmlns:xsi=\"{XSI_NAMESPACE}\">")));
        assert!(xml.contains("<a>true</a>") && xml.contains("<b>false</b>"));
        assert!(xml.contains("<c xsi:nil=\"true\"/>"), "{xml}");
        assert!(xml.contains("<d/>") && xml.contains("<f/>"), "{xml}");
        assert!(xml.contains("<e>&lt;&amp;&gt;&quot;&apos;</e>"), "{xml}");
    }

    #[test]
    fn unwritable_values_are_refused_with_their_path() {
        let nested = webhook_body_to_txml(&json!({"orderEvent": {"x": [[1]]}}));
        assert!(
            matches!(&nested, Err(TxmlWriteError::NestedList { path }) if path == "orderEvent.x[0]"),
            "{nested:?}"
        );
        let bad_name = webhook_body_to_txml(&json!({"orderEvent": {"a b": 1}}));
        assert!(
            matches!(&bad_name, Err(TxmlWriteError::BadName { name, .. }) if name == "a b"),
            "{bad_name:?}"
        );
        let bad_char = webhook_body_to_txml(&json!({"e": "\u{1}"}));
        assert!(
            matches!(bad_char, Err(TxmlWriteError::BadChar { code: 1, .. })),
            "{bad_char:?}"
        );
        assert!(matches!(
            webhook_body_to_txml(&json!([1])),
            Err(TxmlWriteError::NotAnObject)
        ));
    }

    #[test]
    fn the_generic_singular_covers_lists_the_table_does_not_name() {
        assert_eq!(list_element("lines"), "line");
        assert_eq!(list_element("deliveryHistory"), "deliveryHistoryLine");
        assert_eq!(list_element("companies"), "company");
        assert_eq!(list_element("widgets"), "widget");
        assert_eq!(list_element("address"), "address");
        assert_eq!(list_element("s"), "s");
        assert_eq!(list_element("schedule"), "schedule");
    }

    /// Each JSON example with a tXML twin in Tradecloud's SDK, how it is wrapped into a webhook
    /// body (as the model's real-world tests wrap it: [`wrap`]), and the elements the twin lacks because the two are not value-for-value
    /// twins (only element paths written from JSON are checked against the twin).
    struct Twin {
        stem: &'static str,
        event: &'static str,
        order_key: &'static str,
        line_key: &'static str,
        /// Paths (after wrapping) the JSON has and the XML twin does not.
        json_only: &'static [&'static str],
    }

    const TWINS: &[Twin] = &[
        Twin {
            stem: "sdk-dotnet__api-connector__SendOrder__order",
            event: "orderEvent",
            order_key: "buyerOrder",
            line_key: "buyerLine",
            json_only: &[],
        },
        Twin {
            stem: "sdk-dotnet__api-connector__SendOrder__minimal-order",
            event: "orderEvent",
            order_key: "buyerOrder",
            line_key: "buyerLine",
            json_only: &[],
        },
        Twin {
            stem: "sdk-dotnet__api-connector__SendOrderResponse__order-response",
            event: "orderEvent",
            order_key: "supplierOrder",
            line_key: "supplierLine",
            json_only: &[
                "WebhookBody/orderEvent/supplierOrder/indicators/shipped",
                "WebhookBody/orderEvent/line/supplierLine/indicators/shipped",
            ],
        },
        Twin {
            stem: "sdk-dotnet__api-connector__SendOrderResponse__minimal-order-response",
            event: "orderEvent",
            order_key: "supplierOrder",
            line_key: "supplierLine",
            json_only: &[],
        },
        Twin {
            stem: "sdk-dotnet__api-connector__SendSimpleOrder__simple-order",
            event: "singleDeliveryOrderEvent",
            order_key: "buyerOrder",
            line_key: "buyerLine",
            json_only: &[],
        },
        Twin {
            stem: "sdk-dotnet__api-connector__SendSimpleOrder__minimal-simple-order",
            event: "singleDeliveryOrderEvent",
            order_key: "buyerOrder",
            line_key: "buyerLine",
            json_only: &[],
        },
    ];

    /// Tradecloud's published examples (docs/tradecloud.md §0 lists their public sources), where
    /// the model's real-world tests read them: the folder `TCRELAY_REALWORLD_DIR` names (a
    /// missing one fails the test on its first file, naming it), else the first ancestor folder
    /// of this crate with `shared/tradecloud/realworld` in it, the folder beside the clone.
    fn realworld_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("TCRELAY_REALWORLD_DIR") {
            return Some(PathBuf::from(dir));
        }
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|dir| dir.join("shared/tradecloud/realworld"))
            .find(|dir| dir.is_dir())
    }

    #[test]
    fn tradecloud_examples_written_from_json_use_the_element_paths_of_their_xml_twins() {
        let Some(dir) = realworld_dir() else {
            let skip = std::env::var("TCRELAY_SKIP_REALWORLD").is_ok_and(|v| v == "1");
            assert!(
                skip,
                "../shared/tradecloud/realworld (Tradecloud's published examples) is missing \
                 beside the repository; set TCRELAY_SKIP_REALWORLD=1 to run the other tests \
                 without them"
            );
            println!(
                "TCRELAY_SKIP_REALWORLD=1: ../shared/tradecloud/realworld not found beside the repository: {} tXML twin cases not run",
                TWINS.len()
            );
            return;
        };
        for twin in TWINS {
            let read = |ext: &str| {
                let path = dir.join(format!("{}.{ext}", twin.stem));
                std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
            };
            let json: Value = serde_json::from_str(&read("json")).unwrap();
            let body = wrap(&json, twin);
            let written = element_paths(&webhook_body_to_txml(&body).unwrap());
            let twin_paths: BTreeSet<String> = element_paths(&read("xml"))
                .iter()
                .map(|p| rewrap_path(p, twin))
                .collect();
            let missing: Vec<&String> = written
                .iter()
                .filter(|p| !twin_paths.contains(*p) && !twin.json_only.contains(&p.as_str()))
                .filter(|p| !is_wrapper_path(p, twin))
                .collect();
            assert!(
                missing.is_empty(),
                "{}: written from JSON but not in the XML twin: {missing:#?}",
                twin.stem
            );
            // The twin's list elements all come out of the JSON under the same name.
            for list in [
                "line",
                "deliveryScheduleLine",
                "chargeLine",
                "deliveryHistoryLine",
            ] {
                let has = |paths: &BTreeSet<String>| {
                    paths.iter().any(|p| p.split('/').any(|step| step == list))
                };
                let (in_twin, in_written) = (has(&twin_paths), has(&written));
                assert_eq!(in_twin, in_written, "{}: <{list}>", twin.stem);
            }
        }
    }

    /// The webhook body an api-connector example becomes: `order` (and the top-level `erp*`
    /// fields) become the event's order echo, each of `lines` the `…Line` of an event line.
    fn wrap(example: &Value, twin: &Twin) -> Value {
        let mut order = example["order"].as_object().cloned().unwrap_or_default();
        for (key, value) in example.as_object().unwrap() {
            if key != "order" && key != "lines" {
                order.insert(key.clone(), value.clone());
            }
        }
        let lines: Vec<Value> = example["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|line| json!({ "id": "line-id", twin.line_key: line }))
                    .collect()
            })
            .unwrap_or_default();
        json!({
            "eventName": "OrderIssuedByBuyer",
            twin.event: { "orderId": "order-id", twin.order_key: order, "lines": lines },
        })
    }

    /// A twin's path (`SendOrderByBuyer/order/…`, `…/line/…`, `…/erpIssuedBy`) as the wrapped
    /// webhook body has it.
    fn rewrap_path(path: &str, twin: &Twin) -> String {
        let mut parts = path.split('/').skip(1);
        let head = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let mut out = vec!["WebhookBody", twin.event];
        match head {
            "" => return "WebhookBody".to_owned(),
            "order" => out.push(twin.order_key),
            "line" => out.extend(["line", twin.line_key]),
            other => out.extend([twin.order_key, other]),
        }
        out.extend(rest);
        out.join("/")
    }

    /// The elements the wrapper adds, which no twin has.
    fn is_wrapper_path(path: &str, twin: &Twin) -> bool {
        let event = format!("WebhookBody/{}", twin.event);
        [
            "WebhookBody".to_owned(),
            "WebhookBody/eventName".to_owned(),
            event.clone(),
            format!("{event}/orderId"),
            format!("{event}/line"),
            format!("{event}/line/id"),
            format!("{event}/{}", twin.order_key),
            format!("{event}/line/{}", twin.line_key),
        ]
        .contains(&path.to_owned())
    }

    fn element_names(xml: &str) -> BTreeSet<String> {
        element_paths(xml)
            .iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_owned))
            .collect()
    }

    /// Every element's path from the root (`Root/child/…`), as a set.
    fn element_paths(xml: &str) -> BTreeSet<String> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<String> = Vec::new();
        let mut paths = BTreeSet::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Start(e) => {
                    stack.push(e.name().into_inner().to_owned());
                    paths.insert(stack.join("/"));
                }
                Event::Empty(e) => {
                    stack.push(e.name().into_inner().to_owned());
                    paths.insert(stack.join("/"));
                    stack.pop();
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Eof => return paths,
                _ => {}
            }
        }
    }
}
