//! Bad bodies get a typed error that names the problem and where, never a panic.

use tradecloud_model::{DecodeError, Format, Location, ObjectKind, decode_webhook};

use crate::growth::{LINEAR_GROWTH_BOUND, growth_on_32_times_the_body};

const JSON: Option<&str> = Some("application/json");
const XML: Option<&str> = Some("application/xml");

/// A small valid order event, as JSON.
const GOOD_JSON: &str = r#"{
  "eventName": "OrderIssuedByBuyer",
  "orderEvent": {
    "orderId": "o-1",
    "lines": [{"id": "l-1", "deliverySchedule": [{"position": "0001", "quantity": 12.5}]}]
  }
}"#;

/// The same, as tXML.
const GOOD_XML: &str = "<?xml version=\"1.0\"?>
<WebhookBody>
  <eventName>OrderIssuedByBuyer</eventName>
  <orderEvent>
    <orderId>o-1</orderId>
    <line>
      <id>l-1</id>
      <deliveryScheduleLine><position>0001</position><quantity>12.5</quantity></deliveryScheduleLine>
    </line>
  </orderEvent>
</WebhookBody>
";

fn err(body: impl AsRef<[u8]>, content_type: Option<&str>) -> DecodeError {
    match decode_webhook(body.as_ref(), content_type) {
        Ok(d) => panic!("expected an error, decoded {:?}", d.body),
        Err(e) => e,
    }
}

#[test]
fn the_good_bodies_decode() {
    // The bad bodies below are these with one thing wrong; make sure these are right.
    let json = decode_webhook(GOOD_JSON.as_bytes(), JSON).unwrap();
    let xml = decode_webhook(GOOD_XML.as_bytes(), XML).unwrap();
    assert_eq!(json.payload, xml.payload);
    assert_eq!(json.body.object_id(), "o-1");
}

#[test]
fn empty_body() {
    for ct in [JSON, XML, None, Some("text/xml"), Some("text/plain")] {
        let e = err("", ct);
        assert_eq!(e, DecodeError::Empty, "{ct:?}");
        assert!(e.to_string().contains("empty"), "{e}");
    }
}

#[test]
fn whitespace_only_body() {
    for ct in [JSON, XML, None] {
        assert_eq!(err(" \r\n\t \n", ct), DecodeError::Empty, "{ct:?}");
    }
}

#[test]
fn invalid_utf8_json_names_the_offset() {
    let mut body = br#"{"eventName": "Order"#.to_vec();
    let offset = body.len();
    body.extend_from_slice(b"\xff\xfe\"}");
    for ct in [JSON, None] {
        let e = err(&body, ct);
        assert_eq!(e, DecodeError::InvalidUtf8 { offset }, "{ct:?}");
        assert!(e.to_string().contains(&format!("offset {offset}")), "{e}");
    }
}

#[test]
fn invalid_utf8_xml_names_the_offset() {
    let mut body = b"<WebhookBody><eventName>Caf".to_vec();
    let offset = body.len();
    // Latin-1 "é": a body sent in the wrong encoding.
    body.extend_from_slice(b"\xe9</eventName></WebhookBody>");
    for ct in [XML, None] {
        let e = err(&body, ct);
        assert_eq!(e, DecodeError::InvalidUtf8 { offset }, "{ct:?}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }
}

#[test]
fn truncated_json_is_located() {
    let cut = &GOOD_JSON[..GOOD_JSON.find("\"lines\"").unwrap() + 10];
    let DecodeError::Json { at, message } = err(cut, JSON) else {
        panic!("expected a JSON syntax error");
    };
    assert_eq!(at.line, 5, "{message}");
    assert!(message.contains("EOF"), "{message}");
}

#[test]
fn truncated_xml_is_located() {
    // Cut inside an element's text, and inside a tag.
    let cut_in_text = &GOOD_XML[..GOOD_XML.find("o-1").unwrap() + 2];
    let e = err(cut_in_text, XML);
    let DecodeError::Xml { at, message } = &e else {
        panic!("expected an XML syntax error, got {e:?}");
    };
    assert!(message.contains("ends inside <orderId>"), "{message}");
    assert_eq!(at.line, 5);
    let cut_in_tag = &GOOD_XML[..GOOD_XML.find("<line>").unwrap() + 3];
    let e = err(cut_in_tag, XML);
    assert!(matches!(e, DecodeError::Xml { .. }), "{e:?}");
    assert_eq!(e.location().unwrap().line, 6, "{e}");
}

#[test]
fn mismatched_xml_end_tag_is_located() {
    let body = GOOD_XML.replace("</orderId>", "</orderID>");
    let e = err(body, XML);
    let DecodeError::Xml { at, message } = &e else {
        panic!("expected an XML syntax error, got {e:?}");
    };
    assert_eq!(at.line, 5, "{e}");
    assert!(
        message.contains("expected `</orderId>`, but `</orderID>` was found"),
        "{message}"
    );
}

#[test]
fn end_tags_must_repeat_the_prefix_and_close_an_open_element() {
    // The same local name under another prefix does not close the element.
    let body = GOOD_XML.replace("<orderId>o-1</orderId>", "<a:orderId>o-1</b:orderId>");
    let e = err(body, XML);
    assert!(matches!(e, DecodeError::Xml { .. }), "{e:?}");
    assert_eq!(e.location().unwrap().line, 5, "{e}");
    // The same prefix does, and the element reads by its local name.
    let body = GOOD_XML.replace("<orderId>o-1</orderId>", "<a:orderId>o-1</a:orderId>");
    let decoded = decode_webhook(body.as_bytes(), XML).expect("decodes");
    assert_eq!(decoded.body.object_id(), "o-1");
    // An end tag with nothing open.
    let e = err(format!("{GOOD_XML}</WebhookBody>"), XML);
    let DecodeError::Xml { message, .. } = &e else {
        panic!("expected an XML syntax error, got {e:?}");
    };
    assert!(message.contains("</WebhookBody>"), "{message}");
}

#[test]
fn a_document_that_is_no_webhook_body_is_refused_for_what_it_lacks() {
    // Another root is read (and reported), but Tradecloud's order message is no webhook body.
    let body = "<SendOrderByBuyer><order><purchaseOrderNumber>PO-1</purchaseOrderNumber></order>\
        <line><buyerLine><position>1</position></buyerLine></line></SendOrderByBuyer>";
    let e = err(body, XML);
    assert_eq!(e, DecodeError::MissingEventName);
    // A JSON body that is not an object.
    let e = err(r#"["eventName"]"#, JSON);
    assert_eq!(e, DecodeError::NotAnObject { found: "an array" });
}

#[test]
fn no_event_name() {
    let json = GOOD_JSON.replace(r#""eventName": "OrderIssuedByBuyer","#, "");
    let xml = GOOD_XML.replace("<eventName>OrderIssuedByBuyer</eventName>", "");
    for (body, ct) in [(json, JSON), (xml, XML)] {
        let e = err(body, ct);
        assert_eq!(e, DecodeError::MissingEventName, "{ct:?}");
        assert_eq!(e.field_path(), Some("eventName"));
        assert!(e.to_string().contains("eventName"), "{e}");
    }
}

#[test]
fn event_name_not_a_string() {
    for (value, found) in [("42", "a number"), ("{}", "an object"), ("[]", "an array")] {
        let body = GOOD_JSON.replace(r#""OrderIssuedByBuyer""#, value);
        let e = err(body, JSON);
        let DecodeError::InvalidField { path, message, .. } = &e else {
            panic!("expected InvalidField, got {e:?}");
        };
        assert_eq!(path, "eventName");
        assert!(message.contains(found), "{message}");
    }
    // Empty or blank in either format.
    let e = err(GOOD_XML.replace("OrderIssuedByBuyer", "  "), XML);
    assert_eq!(e.field_path(), Some("eventName"), "{e:?}");
}

#[test]
fn no_event_object() {
    let json = r#"{"eventName": "OrderIssuedByBuyer", "meta": {"messageId": "m"}}"#;
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvnt><orderId>o-1</orderId></orderEvnt></WebhookBody>";
    for (body, ct) in [(json, JSON), (xml, XML)] {
        let e = err(body, ct);
        assert_eq!(e, DecodeError::MissingEvent, "{ct:?}");
        assert!(e.to_string().contains("orderEvent"), "{e}");
    }
    // An event key holding something else than an object.
    let e = err(r#"{"eventName": "X", "shipment": "s-1"}"#, JSON);
    assert_eq!(e.field_path(), Some("shipment"), "{e:?}");
}

#[test]
fn empty_event_siblings_are_absent() {
    // An XML writer that puts out every event field, empty where it has none; and JSON's twin.
    let xml = GOOD_XML.replace(
        "</WebhookBody>",
        "<singleDeliveryOrderEvent/><orderDocumentsEvent></orderDocumentsEvent>\
         <shipment> </shipment><shipmentEvent/></WebhookBody>",
    );
    let json = GOOD_JSON.replacen(
        "{",
        r#"{"shipment": {}, "singleDeliveryOrderEvent": "", "orderDocumentsEvent": null,"#,
        1,
    );
    let good = decode_webhook(GOOD_JSON.as_bytes(), JSON).unwrap();
    for (body, ct) in [(xml.as_str(), XML), (json.as_str(), JSON)] {
        let d = decode_webhook(body.as_bytes(), ct).unwrap_or_else(|e| panic!("{ct:?}: {e}"));
        assert_eq!(d.body.kind(), ObjectKind::Order, "{ct:?}");
        assert_eq!(d.body.object_id(), "o-1", "{ct:?}");
        assert_eq!(d.body.line_ids(), good.body.line_ids(), "{ct:?}");
    }
    // Only empty events: which one was meant is not known.
    let e = err(
        r#"{"eventName": "X", "orderEvent": {}, "shipment": {}}"#,
        JSON,
    );
    assert_eq!(
        e,
        DecodeError::MultipleEvents(vec!["orderEvent".into(), "shipment".into()])
    );
}

#[test]
fn two_event_objects() {
    let json =
        r#"{"eventName": "X", "orderEvent": {"orderId": "o"}, "shipmentEvent": {"id": "s"}}"#;
    let xml = "<WebhookBody><eventName>X</eventName><simpleOrderEvent><orderId>o</orderId></simpleOrderEvent><singleDeliveryOrderEvent><orderId>o</orderId></singleDeliveryOrderEvent></WebhookBody>";
    let e = err(json, JSON);
    assert_eq!(
        e,
        DecodeError::MultipleEvents(vec!["orderEvent".into(), "shipmentEvent".into()])
    );
    assert!(e.to_string().contains("orderEvent, shipmentEvent"), "{e}");
    let e = err(xml, XML);
    assert_eq!(
        e,
        DecodeError::MultipleEvents(vec![
            "singleDeliveryOrderEvent".into(),
            "simpleOrderEvent".into()
        ])
    );
}

#[test]
fn order_event_without_order_id() {
    let json = GOOD_JSON.replace(r#""orderId": "o-1","#, "");
    let xml = GOOD_XML.replace("<orderId>o-1</orderId>", "");
    let blank = GOOD_XML.replace("<orderId>o-1</orderId>", "<orderId> </orderId>");
    for (body, ct) in [(json, JSON), (xml, XML), (blank, XML)] {
        let e = err(body, ct);
        assert_eq!(
            e,
            DecodeError::MissingId {
                path: "orderEvent.orderId".into()
            },
            "{ct:?}"
        );
        assert_eq!(e.to_string(), "orderEvent.orderId is missing or empty");
    }
}

#[test]
fn shipment_without_id() {
    let json =
        r#"{"eventName": "ShipmentIssuedBySupplier", "shipment": {"transportMode": "Road"}}"#;
    let xml = "<WebhookBody><eventName>ShipmentIssuedBySupplier</eventName><shipmentEvent><id/></shipmentEvent></WebhookBody>";
    assert_eq!(
        err(json, JSON),
        DecodeError::MissingId {
            path: "shipment.id".into()
        }
    );
    assert_eq!(
        err(xml, XML),
        DecodeError::MissingId {
            path: "shipmentEvent.id".into()
        }
    );
}

/// Decodes a body that must be accepted and returns the paths of its reported deviations.
fn lenient_paths(
    body: &str,
    content_type: Option<&str>,
) -> (tradecloud_model::DecodedWebhook, Vec<String>) {
    let d = decode_webhook(body.as_bytes(), content_type)
        .unwrap_or_else(|e| panic!("a wrongly typed field the relay does not need refused: {e}"));
    let paths = d.leniencies.kept().iter().map(|l| l.path.clone()).collect();
    (d, paths)
}

#[test]
fn wrongly_typed_json_fields_are_forwarded_as_sent_and_reported_by_path() {
    // Fields the relay does not need, each of a wrong type: the body decodes, the payload is
    // the body exactly as sent, and each deviation is reported with its full path.
    for (from, to, path) in [
        (
            "12.5",
            r#""lots""#,
            "orderEvent.lines[0].deliverySchedule[0].quantity",
        ),
        (
            r#""orderId": "o-1","#,
            r#""orderId": "o-1", "indicators": {"deliveryOverdue": "maybe"},"#,
            "orderEvent.indicators.deliveryOverdue",
        ),
        (
            r#""orderId": "o-1","#,
            r#""orderId": "o-1", "version": 2.5,"#,
            "orderEvent.version",
        ),
        (
            r#""orderId": "o-1","#,
            r#""orderId": "o-1", "buyerOrder": {"notes": {"a": "b"}},"#,
            "orderEvent.buyerOrder.notes",
        ),
        (
            r#""orderId": "o-1","#,
            r#""orderId": "o-1", "buyerOrder": "PO-1","#,
            "orderEvent.buyerOrder",
        ),
        (
            r#""position": "0001""#,
            r#""position": 1"#,
            "orderEvent.lines[0].deliverySchedule[0].position",
        ),
        (
            r#""orderId": "o-1","#,
            r#""orderId": "o-1", "lastUpdatedAt": 20260101,"#,
            "orderEvent.lastUpdatedAt",
        ),
    ] {
        let body = GOOD_JSON.replace(from, to);
        let (d, paths) = lenient_paths(&body, JSON);
        let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            d.payload, sent,
            "{path}: the payload is not the body as sent"
        );
        assert!(paths.contains(&path.to_owned()), "{path} not in {paths:?}");
        assert_eq!(d.body.object_id(), "o-1");
    }
}

#[test]
fn a_quoted_version_and_a_numeric_id_are_read() {
    let body = GOOD_JSON.replace(r#""orderId": "o-1","#, r#""orderId": 17, "version": "7","#);
    let d = decode_webhook(body.as_bytes(), JSON).unwrap();
    assert_eq!(d.body.object_id(), "17");
    assert_eq!(d.body.version(), Some(7));
    // The quoted version is typed like every quoted number; the id is forwarded as sent.
    assert_eq!(d.payload["orderEvent"]["version"], 7);
    assert_eq!(d.payload["orderEvent"]["orderId"], 17);
    assert!(
        d.leniencies
            .kept()
            .iter()
            .any(|l| l.path == "orderEvent.orderId"),
        "{:?}",
        d.leniencies
    );
}

#[test]
fn zone_less_timestamps_are_read_and_forwarded_as_sent() {
    let body = GOOD_JSON.replace(
        r#""orderId": "o-1","#,
        r#""orderId": "o-1", "lastUpdatedAt": "2019-12-31T10:11:12", "buyerOrder": {"erpIssueDateTime": "2019-12-31T10:11:12"},"#,
    );
    let d = decode_webhook(body.as_bytes(), JSON).unwrap();
    assert_eq!(d.body.last_updated_at(), Some("2019-12-31T10:11:12"));
    let sent: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(d.payload, sent);
    assert!(d.leniencies.is_empty(), "{:?}", d.leniencies);
}

#[test]
fn non_numeric_txml_values_are_kept_as_text_and_reported_by_path() {
    let body = GOOD_XML.replace(">12.5<", ">lots<");
    let (d, paths) = lenient_paths(&body, XML);
    assert_eq!(paths, ["orderEvent.lines[0].deliverySchedule[0].quantity"]);
    assert_eq!(
        d.payload["orderEvent"]["lines"][0]["deliverySchedule"][0]["quantity"],
        "lots"
    );
    // A boolean too, and an object where a number belongs.
    let body = GOOD_XML.replace(
        "<id>l-1</id>",
        "<id>l-1</id><indicators><deliveryOverdue>yes</deliveryOverdue></indicators>",
    );
    let (d, paths) = lenient_paths(&body, XML);
    assert_eq!(paths, ["orderEvent.lines[0].indicators.deliveryOverdue"]);
    assert_eq!(
        d.payload["orderEvent"]["lines"][0]["indicators"]["deliveryOverdue"],
        "yes"
    );
    let body = GOOD_XML.replace(">12.5<", "><value>12.5</value><");
    let (d, paths) = lenient_paths(&body, XML);
    assert_eq!(paths, ["orderEvent.lines[0].deliverySchedule[0].quantity"]);
    assert_eq!(
        d.payload["orderEvent"]["lines"][0]["deliverySchedule"][0]["quantity"],
        serde_json::json!({"value": "12.5"})
    );
}

#[test]
fn more_lines_than_the_limit_is_its_own_error() {
    use tradecloud_model::{DecodeLimits, decode_webhook_with};
    let lines = [r#"{"id":"l"}"#; 11].join(",");
    let body = format!(r#"{{"eventName":"X","orderEvent":{{"orderId":"o","lines":[{lines}]}}}}"#);
    let limits = DecodeLimits { max_lines: 10 };
    let e = decode_webhook_with(body.as_bytes(), JSON, &limits).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooManyLines {
            count: 11,
            limit: 10
        }
    );
    assert!(e.is_too_large());
    let limits = DecodeLimits { max_lines: 11 };
    assert!(decode_webhook_with(body.as_bytes(), JSON, &limits).is_ok());
    // Shipment lines count loose and in load carriers.
    let xml = "<WebhookBody><eventName>X</eventName><shipment><id>s</id><line/><line/><loadCarrier><line/><line/></loadCarrier></shipment></WebhookBody>";
    let limits = DecodeLimits { max_lines: 3 };
    assert_eq!(
        decode_webhook_with(xml.as_bytes(), XML, &limits).unwrap_err(),
        DecodeError::TooManyLines { count: 4, limit: 3 }
    );
}

#[test]
fn internal_entity_declaration_is_refused() {
    let body = r#"<?xml version="1.0"?>
<!DOCTYPE WebhookBody [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<WebhookBody><eventName>&lol3;</eventName><orderEvent><orderId>o</orderId></orderEvent></WebhookBody>"#;
    let e = err(body, XML);
    assert_eq!(
        e,
        DecodeError::XmlDoctype {
            at: Location { line: 2, column: 1 }
        }
    );
    assert!(e.to_string().contains("DOCTYPE"), "{e}");
}

#[test]
fn external_entity_is_refused() {
    let body = r#"<?xml version="1.0"?>
<!DOCTYPE WebhookBody [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<WebhookBody><eventName>&xxe;</eventName><orderEvent><orderId>o</orderId></orderEvent></WebhookBody>"#;
    let e = err(body, None);
    assert!(matches!(e, DecodeError::XmlDoctype { .. }), "{e:?}");
    assert!(!e.to_string().contains("root:"), "{e}");
    // A bare DOCTYPE with an external DTD is refused too.
    let body = "<!DOCTYPE WebhookBody SYSTEM \"http://example.com/x.dtd\"><WebhookBody/>";
    assert!(matches!(err(body, XML), DecodeError::XmlDoctype { .. }));
}

#[test]
fn undeclared_entity_reference_is_refused() {
    let body = GOOD_XML.replace("OrderIssuedByBuyer", "Order&foo;Issued");
    let e = err(body, XML);
    assert_eq!(
        e,
        DecodeError::XmlEntity {
            name: "foo".into(),
            at: Location {
                line: 3,
                column: 19
            }
        }
    );
    assert!(e.to_string().contains("&foo;"), "{e}");
}

/// `depth` nested `<a>` elements in a webhook body, closed.
fn nested_elements(depth: usize) -> String {
    format!(
        "<WebhookBody>{}{}</WebhookBody>",
        "<a>".repeat(depth),
        "</a>".repeat(depth)
    )
}

#[test]
fn ten_thousand_nested_elements_fail_fast_with_too_deep() {
    let depth = 10_000;
    let body = nested_elements(depth);
    let e = err(&body, XML);
    let DecodeError::TooDeep { limit, at } = e else {
        panic!("expected TooDeep, got {e:?}");
    };
    assert_eq!(limit, tradecloud_model::txml::MAX_DEPTH);
    // The first element past the limit: the root is depth 1, each <a> is 3 bytes.
    assert_eq!(
        at,
        Location {
            line: 1,
            column: "<WebhookBody>".len() + 3 * (limit - 1) + 1
        }
    );
    // Fast: refused at the limit, never by work that grows faster than the body (250 levels
    // and 32 times that are both past the limit).
    let growth = growth_on_32_times_the_body(nested_elements, 250, |body| {
        assert!(matches!(err(body, XML), DecodeError::TooDeep { .. }));
    });
    assert!(
        growth < LINEAR_GROWTH_BOUND,
        "32 times the nesting took {growth:.1} times as long"
    );
    // Self-closing innermost element, and an unclosed flood, are refused the same way.
    let flood = "<WebhookBody>".to_owned() + &"<a>".repeat(depth) + "<b/>";
    assert!(matches!(err(flood, None), DecodeError::TooDeep { .. }));
}

/// `depth` nested JSON arrays in an order event.
fn nested_arrays(depth: usize) -> String {
    format!(
        r#"{{"eventName":"X","orderEvent":{{"orderId":"o","x":{}{}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

/// `depth` nested JSON objects of one key in an order event.
fn nested_objects(depth: usize) -> String {
    format!(
        r#"{{"eventName":"X","orderEvent":{{"orderId":"o","x":{}1{}}}}}"#,
        r#"{"a":"#.repeat(depth),
        "}".repeat(depth)
    )
}

/// The refusal of a JSON body nested past serde_json's recursion limit.
fn assert_too_deep_json(body: &str) {
    let e = err(body, JSON);
    let DecodeError::Json { message, .. } = &e else {
        panic!("expected a JSON error, got {e:?}");
    };
    assert!(message.contains("recursion limit"), "{message}");
}

#[test]
fn ten_thousand_nested_json_arrays_and_objects_fail_without_overflow() {
    for (shape, make) in [
        ("arrays", nested_arrays as fn(usize) -> String),
        ("objects", nested_objects),
    ] {
        assert_too_deep_json(&make(10_000));
        // Fast: refused at the limit, never by work that grows faster than the body (250 levels
        // and 32 times that are both past serde_json's 128).
        let growth = growth_on_32_times_the_body(make, 250, assert_too_deep_json);
        assert!(
            growth < LINEAR_GROWTH_BOUND,
            "{shape}: 32 times the nesting took {growth:.1} times as long"
        );
    }
}

#[test]
fn unsupported_content_type() {
    // A content type that is neither JSON nor XML is refused only when the body is neither
    // too (a body that is JSON or XML is read whatever its type: see `liberal.rs`).
    for ct in [
        "multipart/form-data; boundary=xyz",
        "application/pdf",
        "text/html",
    ] {
        let e = err("hello", Some(ct));
        assert!(e.is_unsupported_media_type(), "{ct}: {e:?}");
        let essence = ct.split(';').next().unwrap();
        assert_eq!(e, DecodeError::UnsupportedMediaType(essence.into()));
        assert!(e.to_string().contains("application/json"), "{e}");
        assert!(e.to_string().contains("neither JSON nor XML"), "{e}");
        assert!(e.to_string().contains(essence), "{e}");
        assert_eq!(
            decode_webhook(GOOD_JSON.as_bytes(), Some(ct))
                .unwrap()
                .format,
            Format::Json
        );
    }
    // Every other error is about the body, not the content type.
    assert!(!err("", JSON).is_unsupported_media_type());
    assert_eq!(err(" \n", Some("application/pdf")), DecodeError::Empty);
}

#[test]
fn content_types_with_parameters_and_odd_case_are_understood() {
    for (ct, body, format) in [
        ("Application/JSON; charset=UTF-8", GOOD_JSON, Format::Json),
        ("application/vnd.tradecloud+json", GOOD_JSON, Format::Json),
        ("TEXT/XML;charset=utf-8", GOOD_XML, Format::Txml),
        ("application/soap+xml", GOOD_XML, Format::Txml),
    ] {
        let d = decode_webhook(body.as_bytes(), Some(ct)).unwrap();
        assert_eq!(d.format, format, "{ct}");
    }
}

#[test]
fn sniffing_with_no_or_generic_content_type() {
    let bom_json = format!("\u{feff}\n  {GOOD_JSON}");
    let bom_xml = format!("\u{feff}{GOOD_XML}");
    for ct in [
        None,
        Some(""),
        Some("text/plain"),
        Some("application/octet-stream"),
        Some("*/*"),
        Some("application/x-www-form-urlencoded"),
    ] {
        for (body, format) in [
            (GOOD_JSON, Format::Json),
            (GOOD_XML, Format::Txml),
            (bom_json.as_str(), Format::Json),
            (bom_xml.as_str(), Format::Txml),
        ] {
            let d = decode_webhook(body.as_bytes(), ct)
                .unwrap_or_else(|e| panic!("{ct:?} {format:?}: {e}"));
            assert_eq!(d.format, format, "{ct:?}");
            assert_eq!(d.body.object_id(), "o-1");
        }
    }
}

#[test]
fn a_body_that_is_neither_json_nor_xml() {
    for ct in [None, Some("text/plain")] {
        let e = err("hello", ct);
        assert_eq!(e, DecodeError::UnknownFormat('h'));
        assert!(e.to_string().contains("neither JSON nor XML"), "{e}");
    }
    assert_eq!(err("  é", None), DecodeError::UnknownFormat('é'));
    // Declared as JSON but it is not.
    assert!(matches!(err("hello", JSON), DecodeError::Json { .. }));
    // Declared as XML but it is JSON (or the reverse): read as what it is, not refused
    // (docs/design.md, "Reading a body").
    let d = decode_webhook(GOOD_JSON.as_bytes(), XML).unwrap();
    assert_eq!(d.format, tradecloud_model::Format::Json);
    let d = decode_webhook(GOOD_XML.as_bytes(), JSON).unwrap();
    assert_eq!(d.format, tradecloud_model::Format::Txml);
}

#[test]
fn content_after_the_root_element_is_refused() {
    let body = format!("{GOOD_XML}<WebhookBody/>");
    let e = err(body, XML);
    assert!(matches!(e, DecodeError::Xml { .. }), "{e:?}");
    let e = err(format!("{GOOD_XML}trailing"), XML);
    assert!(matches!(e, DecodeError::Xml { .. }), "{e:?}");
}

#[test]
fn text_where_elements_are_expected() {
    let body = GOOD_XML.replace("<orderId>o-1</orderId>", "<orderId>o-1</orderId>stray text");
    let e = err(body, XML);
    assert_eq!(e.field_path(), Some("orderEvent"), "{e:?}");
    // A known single field given twice.
    let body = GOOD_XML.replace(
        "<orderId>o-1</orderId>",
        "<orderId>o-1</orderId><orderId>o-2</orderId>",
    );
    // The id is needed: two of them is no id.
    let e = err(body, XML);
    assert_eq!(e.field_path(), Some("orderEvent.orderId"), "{e:?}");
    // A field the relay does not need, given twice: both kept, as a list, and reported.
    let body = GOOD_XML.replace(
        "<orderId>o-1</orderId>",
        "<orderId>o-1</orderId><reason>a</reason><reason>b</reason>",
    );
    let d = decode_webhook(body.as_bytes(), XML).unwrap();
    assert_eq!(
        d.payload["orderEvent"]["reason"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(d.leniencies.kept()[0].path, "orderEvent.reason");
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic fuzz: every prefix of the good bodies, and the bodies with one
    // byte replaced, give Ok or Err, never a panic.
    for body in [GOOD_JSON, GOOD_XML] {
        let bytes = body.as_bytes();
        for cut in 0..bytes.len() {
            let _ = decode_webhook(&bytes[..cut], None);
        }
        for i in 0..bytes.len() {
            for b in [b'<', b'>', b'&', b'"', b'{', b'}', 0xff, 0] {
                let mut v = bytes.to_vec();
                v[i] = b;
                let _ = decode_webhook(&v, None);
            }
        }
    }
}

#[test]
fn list_items_after_a_nil_list_are_an_error_not_a_panic() {
    let body = GOOD_XML.replace(
        "<orderId>o-1</orderId>",
        "<orderId>o-1</orderId><lines xsi:nil=\"true\"/>",
    );
    let e = err(body, XML);
    assert_eq!(e.field_path(), Some("orderEvent.lines"), "{e:?}");
    assert!(e.to_string().contains("nil"), "{e}");
}

#[test]
fn fetched_and_polled_objects_get_typed_errors_too() {
    use tradecloud_model::{decode_order, decode_poll_response, decode_shipment};
    // A fetched order or shipment needs its `id` (`orderId` also counts for an order).
    let e = decode_order(br#"{"buyerOrder": {"purchaseOrderNumber": "PO1"}}"#).unwrap_err();
    assert_eq!(e, DecodeError::MissingId { path: "id".into() });
    assert!(decode_order(br#"{"orderId": "o-1"}"#).is_ok());
    let e = decode_shipment(br#"{"id": "", "transportMode": "Road"}"#).unwrap_err();
    assert_eq!(e, DecodeError::MissingId { path: "id".into() });
    // Not an object, not JSON, empty.
    assert_eq!(
        decode_order(b"[]").unwrap_err(),
        DecodeError::NotAnObject { found: "an array" }
    );
    assert!(matches!(
        decode_shipment(b"<shipment/>").unwrap_err(),
        DecodeError::Json { .. }
    ));
    assert_eq!(decode_order(b"  ").unwrap_err(), DecodeError::Empty);
    // A wrongly typed field is left out of the typed view, forwarded as sent, and reported
    // with its path from the object's root.
    let sent = serde_json::json!({"id": "o", "lines": [{"id": "l", "prices": {"priceUnitQuantity": "x"}, "status": 7}]});
    let read = tradecloud_model::read_order(sent.clone()).unwrap();
    assert_eq!(read.payload, sent);
    let line = &read.view.lines.as_ref().unwrap()[0];
    assert_eq!(line.id.as_deref(), Some("l"));
    assert!(line.status.is_none());
    let paths: Vec<&str> = read
        .leniencies
        .kept()
        .iter()
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["lines[0].prices.priceUnitQuantity", "lines[0].status"]
    );
    // A poll page whose data is not a list, or whose total is not a number.
    let e = decode_poll_response(br#"{"data": {"id": "o"}, "total": 1}"#).unwrap_err();
    assert_eq!(e.field_path(), Some("data"), "{e}");
    let e = decode_poll_response(br#"{"data": [], "total": "many"}"#).unwrap_err();
    assert_eq!(e.field_path(), Some("total"), "{e}");
    // An empty page is fine and has no cursor of its own.
    let page = decode_poll_response(br#"{"data": [], "total": 0}"#).unwrap();
    assert_eq!(page.next_cursor(), None);
}

/// A tXML order event with `count` distinct unknown empty elements, each given twice in a row
/// and then, after all of them, once more.
fn thrice_repeated_unknown_elements(count: usize) -> String {
    use std::fmt::Write;
    let mut body =
        String::from("<WebhookBody><eventName>X</eventName><orderEvent><orderId>o-1</orderId>");
    for i in 0..count {
        write!(body, "<k{i:x}/><k{i:x}/>").unwrap();
    }
    for i in 0..count {
        write!(body, "<k{i:x}/>").unwrap();
    }
    body.push_str("</orderEvent></WebhookBody>");
    body
}

#[test]
fn many_repeated_unknown_elements_are_read_in_linear_time() {
    // Each third element used to look its name up among every name repeated before it:
    // quadratic, 36 s of CPU for a 6 MB body in a release build. In a debug build these two
    // bodies took 2 s and 29 s (four times the names, fourteen times the work); linear, both
    // take under a second, so a return of the search shows as a test that crawls. Not timed:
    // the machine running the tests is shared.
    let count = 220_000;
    for count in [count / 4, count] {
        let body = thrice_repeated_unknown_elements(count);
        assert!(body.len() <= 6_000_000, "{} bytes", body.len());
        match decode_webhook(body.as_bytes(), XML) {
            Ok(d) => {
                let event = &d.payload["orderEvent"];
                for key in ["k0".to_owned(), format!("k{:x}", count - 1)] {
                    assert_eq!(event[&key], serde_json::json!(["", "", ""]), "{key}");
                }
            }
            // The budget of the largest body may refuse it (413), after the same linear work.
            Err(e) => assert!(matches!(e, DecodeError::TooManyValues { .. }), "{e:?}"),
        }
    }
}

#[test]
fn objects_of_one_key_at_the_size_limit_are_too_many_values() {
    // Each such object allocates a whole map node for a few bytes: charged its cost, a body
    // of them at the size limit runs out of budget (413) long before the memory bound.
    let items = 700_000;
    let json = format!(
        r#"{{"eventName":"X","orderEvent":{{"orderId":"o","filler":[{}]}}}}"#,
        vec![r#"{"a":0}"#; items].join(",")
    );
    let xml = format!(
        "<WebhookBody><eventName>X</eventName><orderEvent><orderId>o</orderId>{}</orderEvent></WebhookBody>",
        "<a><b/></a>".repeat(items / 2)
    );
    for (body, ct) in [(json, JSON), (xml, XML)] {
        assert!(body.len() <= 6_000_000, "{} bytes", body.len());
        let limit = tradecloud_model::budget::value_budget(body.len());
        let e = err(&body, ct);
        assert_eq!(e, DecodeError::TooManyValues { limit }, "{ct:?}");
        assert!(e.is_too_large());
    }
}
