//! What Tradecloud may legitimately send and must never be refused for: tXML in another
//! encoding than UTF-8, content types it does not document, tXML leaves indented inside, and
//! attributes (reported, not forwarded).

use serde_json::json;
use tradecloud_model::{DecodeError, Format, decode_webhook};

/// A small order event as tXML, `{}` where the declaration's encoding goes.
const XML_IN: &str = "<?xml version=\"1.0\" encoding=\"{}\"?>
<WebhookBody>
  <eventName>OrderIssuedByBuyer</eventName>
  <orderEvent>
    <orderId>o-1</orderId>
    <buyerOrder><description>Crème brûlée, 5 µm, 20 °C</description></buyerOrder>
    <line><id>l-1</id></line>
  </orderEvent>
</WebhookBody>
";

fn xml_in(encoding: &str) -> String {
    XML_IN.replace("{}", encoding)
}

/// `text` as ISO-8859-1: every character below U+0100 is its own byte.
pub(crate) fn latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

/// `text` as UTF-16, with its byte-order mark when `bom`.
pub(crate) fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let units = bom.then_some('\u{feff}').into_iter().chain(text.chars());
    let mut out = Vec::new();
    for c in units {
        let mut buf = [0u16; 2];
        for unit in c.encode_utf16(&mut buf) {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
    }
    out
}

#[test]
fn txml_in_latin1_or_utf16_decodes_as_its_utf8_twin() {
    let utf8 = decode_webhook(xml_in("UTF-8").as_bytes(), Some("application/xml")).unwrap();
    assert_eq!(
        utf8.payload["orderEvent"]["buyerOrder"]["description"],
        "Crème brûlée, 5 µm, 20 °C"
    );
    let bodies: [(&str, Vec<u8>, &str); 8] = [
        (
            "ISO-8859-1 declared",
            latin1(&xml_in("ISO-8859-1")),
            "application/xml",
        ),
        (
            "Latin-1 declared by its Java name",
            latin1(&xml_in("ISO8859_1")),
            "application/xml",
        ),
        (
            "windows-1252 declared, charset disagreeing",
            latin1(&xml_in("windows-1252")),
            "text/xml; charset=UTF-8",
        ),
        (
            "Latin-1 by the charset alone",
            latin1(&XML_IN.replace(" encoding=\"{}\"", "")),
            "text/xml; charset=\"iso-8859-1\"",
        ),
        (
            "UTF-16LE with a mark",
            utf16(&xml_in("UTF-16"), false, true),
            "application/xml",
        ),
        (
            "UTF-16BE with a mark, charset disagreeing",
            utf16(&xml_in("UTF-16"), true, true),
            "application/xml; charset=iso-8859-1",
        ),
        (
            "UTF-16LE without a mark",
            utf16(&xml_in("UTF-16"), false, false),
            "application/xml",
        ),
        (
            "UTF-16BE with a mark, sniffed",
            utf16(&xml_in("UTF-16"), true, true),
            "application/octet-stream",
        ),
    ];
    for (what, body, content_type) in bodies {
        let d = decode_webhook(&body, Some(content_type)).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(d.format, Format::Txml, "{what}");
        assert_eq!(d.payload, utf8.payload, "{what}");
        assert_eq!(d.body, utf8.body, "{what}");
        assert!(d.leniencies.is_empty(), "{what}: {:?}", d.leniencies);
    }
}

#[test]
fn an_unknown_encoding_or_bytes_invalid_in_the_encoding_are_named() {
    let body = latin1(&xml_in("x-no-such-encoding"));
    let e = decode_webhook(&body, Some("application/xml")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownEncoding {
            label: "x-no-such-encoding".into()
        }
    );
    assert!(e.to_string().contains("x-no-such-encoding"), "{e}");
    assert!(!e.is_unsupported_media_type() && !e.is_too_large());
    // The same label over a body of ASCII only: read, as any encoding would read it.
    let ascii = xml_in("x-no-such-encoding").replace("Crème brûlée, 5 µm, 20 °C", "Creme brulee");
    assert!(decode_webhook(ascii.as_bytes(), Some("application/xml")).is_ok());
    // An unknown charset is refused the same way.
    let bare = latin1(&XML_IN.replace(" encoding=\"{}\"", ""));
    let e = decode_webhook(&bare, Some("text/xml; charset=klingon")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownEncoding {
            label: "klingon".into()
        }
    );
    // A lone surrogate in UTF-16: refused, naming the encoding and the offset.
    let mut body = utf16(&xml_in("UTF-16"), false, true);
    let at = body.len() - 20;
    body[at..at + 2].copy_from_slice(&[0x00, 0xDC]);
    let e = decode_webhook(&body, Some("application/xml")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::InvalidEncoding {
            encoding: "UTF-16LE",
            offset: at
        }
    );
    assert!(e.to_string().contains("UTF-16LE"), "{e}");
}

#[test]
fn a_transcoded_flood_is_bounded_by_the_value_budget() {
    // Objects of one key, as many as 6 MB of UTF-16 holds: too many values, as in UTF-8.
    let item = "<f><b/></f>";
    let head = "<WebhookBody><eventName>X</eventName><orderEvent><orderId>o-1</orderId>";
    let tail = "</orderEvent></WebhookBody>";
    let text = [head, &item.repeat(3_000_000 / item.len()), tail].concat();
    let e = decode_webhook(&utf16(&text, false, true), Some("application/xml")).unwrap_err();
    assert!(matches!(e, DecodeError::TooManyValues { .. }), "{e:?}");
}

#[test]
fn undocumented_content_types_are_read_by_their_body() {
    let xml = xml_in("UTF-8");
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1"}}"#;
    for content_type in [
        "application/txml",
        "text/txml",
        "application/x-txml",
        "application/vnd.tradecloud.txml",
        "application/vnd.whatever+xml",
        "text/html",
        "multipart/form-data; boundary=xyz",
    ] {
        let d = decode_webhook(xml.as_bytes(), Some(content_type))
            .unwrap_or_else(|e| panic!("{content_type}: {e}"));
        assert_eq!(d.format, Format::Txml, "{content_type}");
        assert_eq!(d.body.object_id(), "o-1");
    }
    for content_type in [
        "application/x-json",
        "application/vnd.tradecloud.v2",
        "application/problem+json",
        "application/pdf",
    ] {
        let d = decode_webhook(json.as_bytes(), Some(content_type))
            .unwrap_or_else(|e| panic!("{content_type}: {e}"));
        assert_eq!(d.format, Format::Json, "{content_type}");
        assert_eq!(d.body.object_id(), "o-1");
    }
}

#[test]
fn txml_leaves_the_relay_reads_are_trimmed_and_the_payload_kept_as_sent() {
    let json = br#"{"eventName":"OrderIssuedByBuyer","meta":{"messageId":"m-1"},
        "orderEvent":{"orderId":"o-1","version":3,"lastUpdatedAt":"2025-01-01T00:00:00Z",
        "lines":[{"id":"l-1"},{"id":"l-2"}]}}"#;
    let xml = "<WebhookBody>
  <eventName>
    OrderIssuedByBuyer
  </eventName>
  <meta><messageId>\tm-1\t</messageId></meta>
  <orderEvent>
    <orderId>
      o-1
    </orderId>
    <version>\n 3\n</version>
    <lastUpdatedAt>
      2025-01-01T00:00:00Z
    </lastUpdatedAt>
    <line><id> l-1 </id></line>
    <line><id>\r\nl-2\r\n</id></line>
  </orderEvent>
</WebhookBody>";
    let from_json = decode_webhook(json, Some("application/json")).unwrap();
    let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml")).unwrap();
    assert_eq!(from_xml.body, from_json.body);
    assert_eq!(from_xml.body.event_name, "OrderIssuedByBuyer");
    assert_eq!(from_xml.body.object_id(), "o-1");
    assert_eq!(from_xml.body.version(), Some(3));
    assert_eq!(
        from_xml.body.last_updated_at(),
        Some("2025-01-01T00:00:00Z")
    );
    assert_eq!(from_xml.body.message_id(), Some("m-1"));
    assert_eq!(from_xml.body.line_ids(), ["l-1", "l-2"]);
    // What is forwarded keeps the text as sent.
    let event = &from_xml.payload["orderEvent"];
    assert_eq!(event["orderId"], "\n      o-1\n    ");
    assert_eq!(event["lines"][0]["id"], " l-1 ");
    assert!(from_xml.leniencies.is_empty(), "{:?}", from_xml.leniencies);

    // Shipments: the line keys made of order number and positions too.
    let shipment = "<WebhookBody><eventName>ShipmentIssuedBySupplier</eventName>
      <shipment><id> s-1 </id>
        <line>
          <purchaseOrderNumber> PO-1 </purchaseOrderNumber>
          <purchaseOrderLinePosition>\n0001\n</purchaseOrderLinePosition>
          <deliverySchedulePosition>1</deliverySchedulePosition>
        </line>
      </shipment></WebhookBody>";
    let d = decode_webhook(shipment.as_bytes(), Some("application/xml")).unwrap();
    assert_eq!(d.body.object_id(), "s-1");
    assert_eq!(d.body.line_ids(), ["PO-1/0001/1"]);
    // An id of white space only is no id.
    let blank = xml.replace("\n      o-1\n    ", "\n  \n");
    assert_eq!(
        decode_webhook(blank.as_bytes(), Some("application/xml")).unwrap_err(),
        DecodeError::MissingId {
            path: "orderEvent.orderId".into()
        }
    );
}

#[test]
fn txml_attributes_are_reported_and_not_forwarded() {
    let xml = r#"<WebhookBody xmlns="urn:tradecloud" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="urn:tradecloud tc.xsd" release="2">
  <eventName>OrderIssuedByBuyer</eventName>
  <orderEvent>
    <orderId>o-1</orderId>
    <reason xsi:nil="true"/>
    <portalUrl xsi:nil="false">https://portal</portalUrl>
    <line>
      <id>l-1</id>
      <deliveryScheduleLine><position>1</position><quantity unit="PCE" xsi:type="decimal">5</quantity></deliveryScheduleLine>
    </line>
  </orderEvent>
</WebhookBody>"#;
    let d = decode_webhook(xml.as_bytes(), Some("application/xml")).unwrap();
    let found: Vec<String> = d.leniencies.kept().iter().map(|l| l.to_string()).collect();
    assert_eq!(
        found,
        [
            "@release: expected no XML attribute, found an XML attribute; not forwarded",
            "orderEvent.lines[0].deliverySchedule[0].quantity@unit: expected no XML attribute, \
             found an XML attribute; not forwarded",
            "orderEvent.lines[0].deliverySchedule[0].quantity@xsi:type: expected no XML \
             attribute, found an XML attribute; not forwarded",
        ]
    );
    assert_eq!(d.leniencies.total(), 3);
    assert!(d.leniencies.kept().iter().all(|l| !l.forwarded));
    // The payload is the elements' JSON, without the attributes.
    let event = &d.payload["orderEvent"];
    assert_eq!(event["reason"], json!(null));
    assert_eq!(event["portalUrl"], "https://portal");
    assert_eq!(
        event["lines"][0]["deliverySchedule"][0],
        json!({"position": "1", "quantity": 5})
    );
}

#[test]
fn numbers_beyond_a_decimal_and_null_list_items_are_left_out_of_the_view_only() {
    // Legitimate JSON the typed view cannot hold: the order is still read (its lines, their
    // ids and times: what the echo filter and changed lines need), its payload as sent.
    let order = json!({
        "id": "o-1",
        "lastUpdatedAt": "2025-01-01T00:00:00.000Z",
        "buyerOrder": {"notes": [null, "n"]},
        "lines": [
            null,
            {
                "id": "l-2",
                "lastUpdatedAt": "2025-01-01T00:00:00.000Z",
                "buyerLine": {
                    "item": {"number": "i"},
                    "prices": {"grossPrice": {"priceInTransactionCurrency": {"value": 1E-30}}},
                    "deliverySchedule": [null, {"position": "1", "quantity": 123456789012345678901234567890u128}]
                }
            }
        ]
    });
    let read = tradecloud_model::read_order(order.clone()).unwrap();
    let lines = read.view.lines.expect("lines");
    assert_eq!(lines.len(), 2, "indices stay the payload's");
    assert_eq!(lines[0].id, None);
    assert_eq!(lines[1].id.as_deref(), Some("l-2"));
    assert_eq!(read.payload, order);

    // The same number written out in full, as its text (not a Rust literal, which would
    // become 1e-30): it fits a decimal by rounding, and must not fail the view either.
    let text = r#"{"id": "o-2", "lines": [{"id": "l-1", "buyerLine": {"prices":
        {"grossPrice": {"priceInTransactionCurrency":
        {"value": 0.000000000000000000000000000001}}}}}]}"#;
    let order: serde_json::Value = serde_json::from_str(text).unwrap();
    let read = tradecloud_model::read_order(order.clone()).unwrap();
    assert_eq!(read.view.lines.unwrap()[0].id.as_deref(), Some("l-1"));
    assert_eq!(read.payload, order);
}

#[test]
fn shipment_line_keys_read_numeric_positions_and_never_join_two_lines_into_one() {
    let ids = |lines: serde_json::Value| {
        let body = json!({"eventName": "ShipmentIssuedBySupplier",
            "shipment": {"id": "s-1", "lines": lines}});
        let d = decode_webhook(body.to_string().as_bytes(), Some("application/json")).unwrap();
        d.body.line_ids()
    };
    // A position sent as a number is read, not left blank (every line of the order alike).
    assert_eq!(
        ids(json!([
            {"purchaseOrderNumber": "PO-1", "purchaseOrderLinePosition": 10},
            {"purchaseOrderNumber": "PO-1", "purchaseOrderLinePosition": 20}
        ])),
        ["PO-1/10/", "PO-1/20/"]
    );
    // `/` inside an order number is escaped: ("A/1", "2") and ("A", "1/2") stay two lines.
    let a = ids(json!([{"purchaseOrderNumber": "A/1", "purchaseOrderLinePosition": "2"}]));
    let b = ids(json!([{"purchaseOrderNumber": "A", "purchaseOrderLinePosition": "1/2"}]));
    assert_ne!(a, b);
    assert_eq!(a, ["A%2F1/2/"]);
}

#[test]
fn empty_number_and_boolean_elements_are_null_as_in_the_json_twin() {
    // An XML writer that writes a null field as an empty element (Jackson's XmlMapper does by
    // default) sends `<version/>` where the JSON twin has `"version": null`. A number or a
    // boolean has no empty value: the element can only mean null.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId><version/><indicators><deliveryOverdue></deliveryOverdue></indicators>\
        <line><id>l-1</id><deliverySchedule><position>1</position><quantity>\n  </quantity>\
        </deliverySchedule></line><reason/></orderEvent></WebhookBody>";
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","version":null,
        "indicators":{"deliveryOverdue":null},
        "lines":[{"id":"l-1","deliverySchedule":[{"position":"1","quantity":null}]}],"reason":""}}"#;
    let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml")).unwrap();
    let from_json = decode_webhook(json.as_bytes(), Some("application/json")).unwrap();
    assert_eq!(from_xml.payload, from_json.payload);
    assert_eq!(from_xml.body, from_json.body);
    assert!(from_xml.leniencies.is_empty(), "{:?}", from_xml.leniencies);
    // A text is another matter: `<reason/>` is the empty text (a split line's empty
    // `position`), and a number that does not read as one is kept as sent and reported.
    assert_eq!(from_xml.payload["orderEvent"]["reason"], "");
    let odd = xml.replace("<version/>", "<version>three</version>");
    let d = decode_webhook(odd.as_bytes(), Some("application/xml")).unwrap();
    assert_eq!(d.payload["orderEvent"]["version"], "three");
    assert!(
        d.leniencies
            .kept()
            .iter()
            .all(|l| l.path == "orderEvent.version"),
        "{:?}",
        d.leniencies
    );
    assert!(!d.leniencies.is_empty());
}

#[test]
fn a_declared_encoding_after_leading_white_space_is_honoured() {
    // The XML reader accepts white space before the declaration; the encoding it names must
    // then be read too, or a Latin-1 body is refused as invalid UTF-8 (a 400 Tradecloud drops).
    let utf8 = decode_webhook(xml_in("UTF-8").as_bytes(), Some("application/xml")).unwrap();
    for lead in ["\n", "\r\n", "  \t"] {
        let body = latin1(&format!("{lead}{}", xml_in("ISO-8859-1")));
        let d = decode_webhook(&body, Some("application/xml"))
            .unwrap_or_else(|e| panic!("{lead:?}: {e}"));
        assert_eq!(d.payload, utf8.payload, "{lead:?}");
        assert_eq!(d.body, utf8.body, "{lead:?}");
    }
}

#[test]
fn a_txml_body_under_another_root_element_is_read_and_the_root_reported() {
    // The root's name is known only from the Swagger UI's example of the order webhook
    // (`<WebhookBody>`, the schema's name); the shipment webhook's tXML is not documented at
    // all. The name carries no data (JSON has no root), so another one must not cost the
    // message: the body is read by its content, and the unexpected name reported.
    let xml = xml_in("UTF-8");
    let expected = decode_webhook(xml.as_bytes(), Some("application/xml")).unwrap();
    for root in ["OrderWebhookBody", "webhookBody", "tc:WebhookEvent"] {
        let body = xml.replace("WebhookBody", root);
        let d = decode_webhook(body.as_bytes(), Some("application/xml"))
            .unwrap_or_else(|e| panic!("<{root}>: {e}"));
        assert_eq!(d.payload, expected.payload, "<{root}>");
        assert_eq!(d.body, expected.body, "<{root}>");
        let found: Vec<String> = d.leniencies.kept().iter().map(|l| l.to_string()).collect();
        let local = root.rsplit(':').next().unwrap();
        assert_eq!(
            found,
            [format!(
                "<{local}>: expected the root element <WebhookBody>, found another root \
                 element; not forwarded"
            )],
            "<{root}>"
        );
    }
    // A prefixed `<WebhookBody>` is the expected root.
    let prefixed = xml
        .replace(
            "<WebhookBody>",
            "<tc:WebhookBody xmlns:tc=\"urn:tradecloud\">",
        )
        .replace("</WebhookBody>", "</tc:WebhookBody>");
    let d = decode_webhook(prefixed.as_bytes(), Some("application/xml")).unwrap();
    assert!(d.leniencies.is_empty(), "{:?}", d.leniencies);
    // A document that is no webhook body is still refused, by what it lacks.
    let not_a_webhook = "<SendOrderByBuyer><order><purchaseOrderNumber>PO-1</purchaseOrderNumber>\
        </order><line><buyerLine><position>1</position></buyerLine></line></SendOrderByBuyer>";
    assert_eq!(
        decode_webhook(not_a_webhook.as_bytes(), Some("application/xml")).unwrap_err(),
        DecodeError::MissingEventName
    );
}

/// Decodes `xml` and its JSON twin `json` and checks they forward the same payload and read
/// the same fields.
fn assert_txml_twin(xml: &str, json: &str) -> tradecloud_model::DecodedWebhook {
    let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml"))
        .unwrap_or_else(|e| panic!("tXML refused: {e}\n{xml}"));
    let from_json = decode_webhook(json.as_bytes(), Some("application/json"))
        .unwrap_or_else(|e| panic!("JSON refused: {e}\n{json}"));
    assert_eq!(from_xml.payload, from_json.payload, "{xml}");
    assert_eq!(from_xml.body, from_json.body, "{xml}");
    from_xml
}

#[test]
fn an_empty_element_under_a_lists_own_name_is_the_empty_list() {
    // Jackson's XmlMapper writes an empty list, with its default wrapping, as the wrapper
    // alone: `<lines/>`. Read as one item, it became a phantom line (`[{}]`), a document or a
    // delivery that the ERP would book; the JSON twin has none.
    for empty in ["<{}/>", "<{}></{}>", "<{}>\n      </{}>"] {
        let el = |name: &str| empty.replace("{}", name);
        let xml = format!(
            "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
             <orderId>o-1</orderId><buyerOrder>{}{}</buyerOrder>{}</orderEvent></WebhookBody>",
            el("documents"),
            el("notes"),
            el("lines"),
        );
        let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
            "buyerOrder":{"documents":[],"notes":[]},"lines":[]}}"#;
        let d = assert_txml_twin(&xml, json);
        assert_eq!(d.body.line_count(), 0, "{xml}");
        // Inside an item too: a line with an empty delivery schedule.
        let xml = format!(
            "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
             <orderId>o-1</orderId><line><id>l-1</id>{}</line></orderEvent></WebhookBody>",
            el("deliverySchedule"),
        );
        let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
            "lines":[{"id":"l-1","deliverySchedule":[]}]}}"#;
        assert_txml_twin(&xml, json);
    }
}

#[test]
fn a_list_of_one_or_of_empty_items_named_by_the_list_stays_a_list_of_items() {
    // One item is still a list, under the item's name or the list's.
    let one = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
        "buyerOrder":{"notes":["n"]},"lines":[{"id":"l-1"}]}}"#;
    for (line, note) in [("line", "note"), ("lines", "notes")] {
        let xml = format!(
            "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
             <orderId>o-1</orderId><buyerOrder><{note}>n</{note}></buyerOrder>\
             <{line}><id>l-1</id></{line}></orderEvent></WebhookBody>"
        );
        assert_txml_twin(&xml, one);
    }
    // Repeated under the list's name (how a writer without wrapping names the items), an
    // empty element beside others is an item: the empty text stays a note.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId><buyerOrder><notes/><notes>b</notes></buyerOrder>\
        <line><id>l-1</id></line></orderEvent></WebhookBody>";
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
        "buyerOrder":{"notes":["","b"]},"lines":[{"id":"l-1"}]}}"#;
    assert_txml_twin(xml, json);
    // Under the item's name, an empty element is an item as before.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId><buyerOrder><note/></buyerOrder></orderEvent></WebhookBody>";
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
        "buyerOrder":{"notes":[""]}}}"#;
    assert_txml_twin(xml, json);
}

#[test]
fn character_references_a_java_writer_makes_read_as_the_json_twin() {
    // A Java text holds UTF-16 units. An XML writer that cannot encode a unit writes it as a
    // character reference, one per unit: an emoji as its two surrogates (`&#xd83d;&#xde00;`),
    // and the half of one cut by a length limit alone; Jackson writes the same text in JSON
    // as `\ud83d\ude00` and `\ud83d`, which the relay reads as 😀 and U+FFFD. `&#0;` is a
    // Java text's U+0000, `\u0000` in JSON. Refused, each cost the message (400, dropped).
    let cases = [
        ("a&#xD83D;&#xDE00;b", r#""a\ud83d\ude00b""#),
        ("a&#55357;&#56832;b", r#""a\ud83d\ude00b""#),
        ("cut &#xd83d;", r#""cut \ufffd""#),
        ("&#xd83d;x", r#""\ufffdx""#),
        ("&#xDE00;", r#""\ufffd""#),
        ("&#xD83D;&#xD83D;&#xDE00;", r#""\ufffd\ud83d\ude00""#),
        ("&#xD83D;&amp;", r#""\ufffd&""#),
        ("a&#0;b", r#""a\u0000b""#),
    ];
    for (xml_text, json_text) in cases {
        let xml = format!(
            "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
             <orderId>o-1</orderId><reason>{xml_text}</reason></orderEvent></WebhookBody>"
        );
        let json = format!(
            r#"{{"eventName":"OrderIssuedByBuyer","orderEvent":{{"orderId":"o-1","reason":{json_text}}}}}"#
        );
        let d = assert_txml_twin(&xml, &json);
        let lone = json_text.contains("fffd");
        assert_eq!(
            !d.leniencies.is_empty(),
            lone,
            "{xml_text}: {:?}",
            d.leniencies
        );
    }
    // A half at the end of an element does not pair with a half in the next one.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId><reason>&#xD83D;</reason><description>&#xDE00;</description>\
        </orderEvent></WebhookBody>";
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
        "reason":"\ufffd","description":"\ufffd"}}"#;
    assert_txml_twin(xml, json);
    // Past Unicode's last code point no Java text reaches: still refused.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId><reason>&#x110000;</reason></orderEvent></WebhookBody>";
    assert!(matches!(
        decode_webhook(xml.as_bytes(), Some("application/xml")),
        Err(DecodeError::Xml { .. })
    ));
}

#[test]
fn a_key_given_twice_in_json_is_read_by_its_last_value_as_downstream_parsers_read_it() {
    // JSON leaves duplicate keys to the reader; serde_json, Jackson, JavaScript, Python, Go and
    // .NET all keep the last. The relay refuses nothing for it (a 400 loses the message) and
    // keys, filters and forwards by the same last value a consumer will read from the text.
    let json = r#"{"eventName":"OrderIssuedByBuyer","eventName":"OrderLinesAcceptedBySupplier",
        "orderEvent":{"orderId":"o-first","version":1,"orderId":"o-last","version":2,
        "lines":[{"id":"l-first","id":"l-last"}],"lastUpdatedAt":"2026-01-01T00:00:00Z",
        "lastUpdatedAt":"2026-01-02T00:00:00Z"}}"#;
    let d = decode_webhook(json.as_bytes(), Some("application/json")).unwrap();
    let last: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(d.body.event_name, "OrderLinesAcceptedBySupplier");
    assert_eq!(d.body.object_id(), "o-last");
    assert_eq!(d.body.version(), Some(2));
    assert_eq!(d.body.line_ids(), ["l-last"]);
    assert_eq!(d.body.last_updated_at(), Some("2026-01-02T00:00:00Z"));
    assert_eq!(d.payload, last);
}

#[test]
fn a_list_wrapped_in_an_element_of_its_own_name_reads_as_the_list() {
    // The wrapping that writes an empty list as `<lines/>` (Jackson's XmlMapper's default)
    // writes a list of items inside the same wrapper: `<lines><line>…</line></lines>`. Read
    // as one item holding a list, it forwarded `lines: [{lines: [...]}]`, items untyped.
    let xml = "<WebhookBody><eventName>OrderIssuedByBuyer</eventName><orderEvent>\
        <orderId>o-1</orderId>\
        <buyerOrder><notes><note>a</note><note>b</note></notes>\
          <documents><document><code>d-1</code></document></documents></buyerOrder>\
        <lines>\
          <line><id>l-1</id><deliverySchedule><deliveryScheduleLine><position>1</position>\
            <quantity>2.50</quantity></deliveryScheduleLine><deliveryScheduleLine>\
            <position>2</position><quantity>1</quantity></deliveryScheduleLine>\
          </deliverySchedule></line>\
          <line><id>l-2</id><buyerLine><item><dimensions><dimension><attribute>mass</attribute>\
            <measure>5</measure></dimension></dimensions></item></buyerLine></line>\
        </lines></orderEvent></WebhookBody>";
    let json = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1",
        "buyerOrder":{"notes":["a","b"],"documents":[{"code":"d-1"}]},
        "lines":[{"id":"l-1","deliverySchedule":[{"position":"1","quantity":2.50},
            {"position":"2","quantity":1}]},
          {"id":"l-2","buyerLine":{"item":{"dimensions":[{"attribute":"mass","measure":5}]}}}]}}"#;
    let d = assert_txml_twin(xml, json);
    assert_eq!(d.body.line_ids(), ["l-1", "l-2"]);
    assert!(d.leniencies.is_empty(), "{:?}", d.leniencies);
}
