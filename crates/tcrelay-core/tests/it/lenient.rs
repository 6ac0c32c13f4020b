//! Lenient reading through the webhook router: a field the relay does not need never costs the
//! message. Each bad input below is answered 202 and its payload reaches the queue exactly as
//! sent; an event with more lines than the cap is answered 413 and kept in the quarantine.

use crate::common;

use common::*;
use http::StatusCode;
use serde_json::{Value, json};

/// Posts `body` (JSON) and asserts it was relayed with its payload unchanged.
async fn relayed_unchanged(case: &str, body: &Value) {
    let h = harness();
    let a = send(&h.router, post_json("/webhook", body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{case}: {}", a.body);
    let sent = h.sink.envelopes();
    assert_eq!(sent.len(), 1, "{case}");
    assert_eq!(&sent[0].payload, body, "{case}: the payload changed");
    assert!(h.quarantine.kept().is_empty(), "{case}");
}

#[tokio::test]
async fn wrongly_typed_fields_the_relay_does_not_need_are_202_and_forwarded_as_sent() {
    let cases: [(&str, &str, Value); 9] = [
        (
            "a quantity that is text",
            "/orderEvent/lines/0/deliverySchedule/0/quantity",
            json!("lots"),
        ),
        (
            "a boolean that is text",
            "/orderEvent/lines/0/indicators",
            json!({"deliveryOverdue": "maybe"}),
        ),
        (
            "a list that is an object",
            "/orderEvent/lines/0/deliverySchedule",
            json!({"quantity": 1}),
        ),
        (
            "an object that is a number",
            "/orderEvent/lines/0/buyerLine",
            json!(5),
        ),
        (
            "a string that is a number",
            "/orderEvent/lines/0/status/processStatus",
            json!(3),
        ),
        (
            "a header that is a list",
            "/orderEvent/buyerOrder",
            json!(["PO-1"]),
        ),
        (
            "a version that is not whole",
            "/orderEvent/version",
            json!(2.5),
        ),
        ("a version in quotes", "/orderEvent/version", json!("7")),
        ("body meta that is text", "/meta", json!("m-1")),
    ];
    for (case, pointer, value) in cases {
        let mut body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        body.pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .unwrap_or_else(|| panic!("{case}: no {parent}"))
            .insert(key.to_owned(), value);
        if case == "a version in quotes" {
            // Typed like every quoted number, and read as the version.
            let h = harness();
            let a = send(&h.router, post_json("/webhook", &body)).await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{case}: {}", a.body);
            let e = &h.sink.envelopes()[0];
            assert_eq!(e.version, Some(7));
            assert_eq!(e.payload.to_value().unwrap()["orderEvent"]["version"], 7);
            continue;
        }
        relayed_unchanged(case, &body).await;
    }
}

#[tokio::test]
async fn zone_less_times_are_read_as_utc_and_forwarded_as_sent() {
    let mut body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    body["orderEvent"]["lastUpdatedAt"] = json!("2019-12-31T10:11:12");
    body["orderEvent"]["buyerOrder"] = json!({"erpIssueDateTime": "2019-12-31T10:11:12"});
    relayed_unchanged("zone-less times", &body).await;
    let h = harness();
    send(&h.router, post_json("/webhook", &body)).await;
    let e = &h.sink.envelopes()[0];
    assert_eq!(e.last_updated_at.as_deref(), Some("2019-12-31T10:11:12"));
    // The same instant with a zone is the same object state: a duplicate.
    body["orderEvent"]["lastUpdatedAt"] = json!("2019-12-31T10:11:12Z");
    let a = send(&h.router, post_json("/webhook", &body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["outcome"], "duplicate");
}

#[tokio::test]
async fn a_numeric_id_and_wrongly_typed_txml_values_are_202() {
    let mut body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    body["orderEvent"]["orderId"] = json!(1234);
    relayed_unchanged("a numeric order id", &body).await;
    let h = harness();
    send(&h.router, post_json("/webhook", &body)).await;
    assert_eq!(h.sink.envelopes()[0].id, "1234");

    let xml = ORDER_EVENT_TXML.replace("<quantity>10.5</quantity>", "<quantity>lots</quantity>");
    assert_ne!(
        xml, ORDER_EVENT_TXML,
        "the fixture has the quantity replaced"
    );
    let h = harness();
    let a = send(&h.router, post("/webhook", Some("application/xml"), xml)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let e = &h.sink.envelopes()[0];
    assert_eq!(
        e.payload.to_value().unwrap()["orderEvent"]["lines"][0]["deliverySchedule"][0]["quantity"],
        "lots"
    );
}

#[tokio::test]
async fn more_lines_than_the_cap_is_413_and_quarantined_with_the_body() {
    let mut s = settings();
    s.max_lines = 2;
    let h = harness_with(s, true);
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1", "l-2", "l-3"]);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    // Too many lines (DecodeError::TooManyLines), not too many values: the slug is settled.
    let detail = a.assert_problem_of(413, "too-many-lines");
    assert!(detail.contains("3 lines"), "{detail}");
    assert!(h.sink.envelopes().is_empty());
    let kept = h.quarantine.kept();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&kept[0].body).unwrap(),
        body,
        "kept with its body"
    );
    // At the cap it goes through.
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1", "l-2"]);
    assert_eq!(
        send(&h.router, post_json("/webhook", &body)).await.status,
        StatusCode::ACCEPTED
    );
}

/// Jackson (Tradecloud's platform is on the JVM) writes a UTF-16 surrogate that is not half of
/// a pair as a `\uXXXX` escape of its own (`UTF8JsonGenerator`): a free text cut in the middle
/// of an emoji reaches the webhook as `"…\ud83d"`. That is JSON by RFC 8259's grammar, but no
/// Unicode text; serde_json refused it, and the 400 cost the message. Such an escape is read as
/// U+FFFD (nothing the relay reads is in it), a pair is read as the character it is, and a
/// backslash written `\\` before a `u` is no escape at all.
#[tokio::test]
async fn a_lone_surrogate_escape_in_a_text_is_read_as_a_replacement_character() {
    let h = harness();
    let body = r#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"orderId":"o-1","lastUpdatedAt":"2025-04-23T10:01:53.812Z","reason":"late \ud83d","lines":[{"id":"l-1","buyerLine":{"description":"\ude00 ok \ud83d\ude00 \\ud800 \ud800\ud800"}}]},"meta":{"messageId":"m-1"}}"#;
    let a = send(&h.router, post("/webhook", Some("application/json"), body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert!(h.quarantine.kept().is_empty());
    let sent = h.sink.envelopes();
    assert_eq!(sent.len(), 1);
    let payload = sent[0].payload.to_value().unwrap().into_owned();
    assert_eq!(payload["orderEvent"]["reason"], "late \u{FFFD}");
    assert_eq!(
        payload["orderEvent"]["lines"][0]["buyerLine"]["description"],
        "\u{FFFD} ok 😀 \\ud800 \u{FFFD}\u{FFFD}"
    );
    // What the relay reads is read as ever.
    assert_eq!(sent[0].id, "o-1");
    assert_eq!(sent[0].message_id.as_deref(), Some("m-1"));
    // The envelope is JSON every consumer reads.
    let envelope = sent[0].to_json().unwrap();
    let read: Value = serde_json::from_str(&envelope).unwrap();
    assert_eq!(read["payload"], payload);
}
