//! Tradecloud's own published examples, wrapped into webhook bodies (`realworld_cases`): every
//! JSON example decodes with its payload unchanged, and every tXML example decodes to the shape
//! of its JSON twin, with nothing reported as unexpected.

use crate::liberal::{latin1, utf16};
use crate::realworld_cases;

use tradecloud_model::{Format, decode_webhook};

#[test]
fn tradecloud_examples_decode_as_their_json_twins() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    for case in &cases {
        let d = decode_webhook(&case.body, Some(case.content_type))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let format = if case.is_txml() {
            Format::Txml
        } else {
            Format::Json
        };
        assert_eq!(d.format, format, "{}", case.name);
        assert!(d.leniencies.is_empty(), "{}: {:?}", case.name, d.leniencies);
        assert_eq!(d.body.event_name, case.event_name(), "{}", case.name);
        assert_eq!(d.body.object_id(), case.object_id(), "{}", case.name);
        let departures = realworld_cases::departures(case, &d.payload);
        assert!(departures.is_empty(), "{}: {departures:#?}", case.name);
    }
}

#[test]
fn tradecloud_txml_examples_in_latin1_and_utf16_decode_as_in_utf8() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.is_txml()) {
        let text = std::str::from_utf8(&case.body).unwrap();
        let declaration = "encoding=\"UTF-8\"";
        assert!(text.contains(declaration), "{}", case.name);
        // An accented place name, as a European buyer's tXML would carry.
        let text = text
            .replace("Rotterdam", "Düsseldorf-Süd")
            .replace("Street 123", "Straße 123");
        if !text.contains("Düsseldorf") && !text.contains("Straße") {
            continue;
        }
        let utf8 = decode_webhook(text.as_bytes(), Some("application/xml"))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let rendered = utf8.payload.to_string();
        assert!(
            rendered.contains("Düsseldorf-Süd") || rendered.contains("Straße 123"),
            "{}",
            case.name
        );
        let encoded = [
            (
                "ISO-8859-1",
                latin1(&text.replace(declaration, "encoding=\"ISO-8859-1\"")),
            ),
            (
                "UTF-16LE",
                utf16(
                    &text.replace(declaration, "encoding=\"UTF-16\""),
                    false,
                    true,
                ),
            ),
            (
                "UTF-16BE",
                utf16(
                    &text.replace(declaration, "encoding=\"UTF-16\""),
                    true,
                    true,
                ),
            ),
        ];
        for (encoding, body) in encoded {
            let d = decode_webhook(&body, Some(case.content_type))
                .unwrap_or_else(|e| panic!("{} in {encoding}: {e}", case.name));
            assert_eq!(d.payload, utf8.payload, "{} in {encoding}", case.name);
            assert_eq!(d.body, utf8.body, "{} in {encoding}", case.name);
            assert_eq!(d.leniencies, utf8.leniencies, "{} in {encoding}", case.name);
        }
        checked += 1;
    }
    assert!(
        checked >= 4,
        "only {checked} examples carry the place names"
    );
}

/// A time Tradecloud writes (`YYYY-MM-DDThh:mm:ss.SSSZ`).
const AT: &str = "2025-04-23T10:01:53.812Z";

/// `case`'s JSON twin with the identity a real event carries: `version`, `lastUpdatedAt` and
/// `meta.messageId` in the event (and `meta.messageId` at body level too when `body_meta`),
/// and an `id` and `lastUpdatedAt` on every line.
fn json_with_identity(case: &realworld_cases::Case, body_meta: bool) -> serde_json::Value {
    let mut body = case.json.clone();
    let key = [
        "orderEvent",
        "singleDeliveryOrderEvent",
        "orderDocumentsEvent",
    ]
    .into_iter()
    .find(|k| body.get(*k).is_some())
    .unwrap();
    let event = &mut body[key];
    event["version"] = serde_json::json!(7);
    event["lastUpdatedAt"] = serde_json::json!(AT);
    event["meta"] = serde_json::json!({"messageId": "m-event"});
    if let Some(lines) = event["lines"].as_array_mut() {
        for (i, line) in lines.iter_mut().enumerate() {
            line["id"] = serde_json::json!(format!("l-{i}"));
            line["lastUpdatedAt"] = serde_json::json!(AT);
        }
    }
    if body_meta {
        body["meta"] = serde_json::json!({"messageId": "m-body"});
    }
    body
}

/// The same identity written into `case`'s tXML body, as Tradecloud's XML would carry it.
fn txml_with_identity(case: &realworld_cases::Case, body_meta: bool) -> String {
    let mut xml = String::from_utf8(case.body.clone()).unwrap();
    let order_id = "<orderId>o-realworld</orderId>";
    assert!(xml.contains(order_id), "{}", case.name);
    xml = xml.replace(
        order_id,
        &format!(
            "{order_id}<version>7</version><lastUpdatedAt>{AT}</lastUpdatedAt>\
             <meta><messageId>m-event</messageId></meta>"
        ),
    );
    let mut out = String::new();
    let mut rest = xml.as_str();
    let mut i = 0;
    while let Some(at) = rest.find("<line>") {
        let (before, after) = rest.split_at(at + "<line>".len());
        out.push_str(before);
        out.push_str(&format!(
            "<id>l-{i}</id><lastUpdatedAt>{AT}</lastUpdatedAt>"
        ));
        rest = after;
        i += 1;
    }
    out.push_str(rest);
    if body_meta {
        out = out.replacen(
            "</eventName>",
            "</eventName><meta><messageId>m-body</messageId></meta>",
            1,
        );
    }
    out
}

#[test]
fn tradecloud_txml_examples_read_the_ids_times_and_lines_of_their_json_twins() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.is_txml()) {
        for body_meta in [false, true] {
            let json = serde_json::to_vec(&json_with_identity(case, body_meta)).unwrap();
            let xml = txml_with_identity(case, body_meta);
            let from_json = decode_webhook(&json, Some("application/json"))
                .unwrap_or_else(|e| panic!("{} (JSON): {e}", case.name));
            let from_xml = decode_webhook(xml.as_bytes(), Some("application/xml"))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let what = format!("{} (body meta: {body_meta})", case.name);
            assert_eq!(from_xml.body, from_json.body, "{what}");
            let body = &from_xml.body;
            assert_eq!(body.object_id(), "o-realworld", "{what}");
            assert_eq!(body.version(), Some(7), "{what}");
            assert_eq!(body.last_updated_at(), Some(AT), "{what}");
            let message_id = if body_meta { "m-body" } else { "m-event" };
            assert_eq!(body.message_id(), Some(message_id), "{what}");
            let lines = case
                .json
                .as_object()
                .unwrap()
                .values()
                .find_map(|e| e.get("lines"));
            let count = lines.and_then(|l| l.as_array()).map_or(0, Vec::len);
            let ids: Vec<String> = (0..count).map(|i| format!("l-{i}")).collect();
            assert_eq!(body.line_ids(), ids, "{what}");
            assert_eq!(body.line_count(), count, "{what}");
            assert!(
                from_xml.leniencies.is_empty(),
                "{what}: {:?}",
                from_xml.leniencies
            );
            checked += 1;
        }
    }
    assert!(checked >= 2 * 6, "only {checked} twins");
}

#[test]
fn tradecloud_json_examples_are_forwarded_byte_for_byte() {
    let Some(cases) = realworld_cases::load() else {
        return;
    };
    let mut verbatim = 0;
    for case in cases.iter().filter(|c| !c.is_txml()) {
        // As posted, with a byte-order mark and a line end some senders add.
        let mut body = b"\xEF\xBB\xBF".to_vec();
        body.extend_from_slice(&case.body);
        body.extend_from_slice(b"\r\n");
        let d = decode_webhook(&body, Some(case.content_type))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // Every published example is typed as Tradecloud writes it: nothing to retype, so
        // the payload is the body's own text.
        let text = d
            .payload_text(&body)
            .unwrap_or_else(|| panic!("{}: not forwarded as sent", case.name));
        assert_eq!(text.as_bytes(), &case.body[..], "{}", case.name);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(text).unwrap(),
            d.payload,
            "{}",
            case.name
        );
        verbatim += 1;
    }
    assert!(verbatim > 40, "only {verbatim} JSON examples");
}
