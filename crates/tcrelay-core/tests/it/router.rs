//! The webhook router against in-memory fakes: every answer code and what each one does (or
//! does not do) to the queue, the dedupe store and the quarantine.

use crate::common;

use axum::body::Body;
use common::*;
use http::{Request, StatusCode, header};
use serde_json::json;
use tcrelay_core::dedupe::state_key;
use tcrelay_core::ports::RecordState;
use tcrelay_core::testing::{ApiFailure, DedupeOp, Mode};
use tcrelay_core::{EventFilter, RequestId, Source};
use tradecloud_model::{Format, ObjectClass, ObjectKind};

#[tokio::test]
async fn post_json_is_enqueued_with_a_complete_envelope() {
    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1", "l-2"]);
    let a = send(&h.router, post_json("/webhook", &body)).await;

    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["outcome"], "enqueued");
    assert_eq!(a.body["kind"], "order");
    assert_eq!(a.body["id"], "o-1");
    let key = a.body["dedupeKey"].as_str().unwrap();
    assert!(
        key.starts_with("msg/order/o-1/2025-04-23T10:01:53.812Z/OrderLinesAcceptedBySupplier/L2-"),
        "{key}"
    );

    let sent = h.sink.envelopes();
    assert_eq!(sent.len(), 1);
    let e = &sent[0];
    assert_eq!(e.schema, "tradecloud-relay/1");
    assert_eq!(e.source, Source::WebhookPost);
    assert_eq!(e.kind, ObjectKind::Order);
    assert_eq!(
        e.event_name.as_deref(),
        Some("OrderLinesAcceptedBySupplier")
    );
    assert_eq!(e.id, "o-1");
    assert_eq!(e.version, Some(3));
    assert_eq!(
        e.last_updated_at.as_deref(),
        Some("2025-04-23T10:01:53.812Z")
    );
    assert_eq!(e.message_id.as_deref(), Some("m-1"));
    assert_eq!(e.dedupe_key, key);
    assert_eq!(e.format, Format::Json);
    assert_eq!(e.payload, body);
    assert!(tradecloud_model::timestamp::parse(&e.received_at).is_ok());

    // Both keys are now completed: the message key, and the state key marked as partial.
    let records = h.dedupe.records();
    assert_eq!(records[key].state, RecordState::Completed);
    let state = &records[&state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z")];
    assert_eq!(state.state, RecordState::Completed);
    assert!(!state.full_state);
    assert!(h.quarantine.kept().is_empty());
}

#[tokio::test]
async fn json_and_txml_of_one_message_give_the_same_payload() {
    let json_side = harness();
    let txml_side = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let a = send(&json_side.router, post_json("/webhook/orders", &body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let b = send(
        &txml_side.router,
        post("/webhook/orders", Some("application/xml"), ORDER_EVENT_TXML),
    )
    .await;
    assert_eq!(b.status, StatusCode::ACCEPTED, "{}", b.body);

    let (j, x) = (
        &json_side.sink.envelopes()[0],
        &txml_side.sink.envelopes()[0],
    );
    assert_eq!(j.format, Format::Json);
    assert_eq!(x.format, Format::Txml);
    assert_eq!(j.payload, x.payload);
    assert_eq!(j.dedupe_key, x.dedupe_key);
    assert_eq!(
        (j.version, &j.last_updated_at, &j.message_id),
        (x.version, &x.last_updated_at, &x.message_id)
    );

    // Sniffed without a content type, and the same message again is a duplicate.
    let again = send(&json_side.router, post("/webhook", None, ORDER_EVENT_TXML)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["outcome"], "duplicate");
    assert_eq!(json_side.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn a_retry_is_a_duplicate_answered_200_and_not_enqueued_again() {
    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let first = send(&h.router, post_json("/webhook", &body)).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // Tradecloud's retry may carry a new messageId; it is still the same message.
    let mut retry = body.clone();
    retry["meta"]["messageId"] = json!("m-2");
    let second = send(&h.router, post_json("/webhook", &retry)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["outcome"], "duplicate");
    assert_eq!(second.body["dedupeKey"], first.body["dedupeKey"]);
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn events_of_one_action_sharing_a_state_are_all_relayed() {
    let h = harness();
    let accepted = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let rejected = order_event("OrderLinesRejectedBySupplier", &["l-2"]);
    assert_eq!(
        send(&h.router, post_json("/webhook", &accepted))
            .await
            .status,
        202
    );
    assert_eq!(
        send(&h.router, post_json("/webhook", &rejected))
            .await
            .status,
        202
    );
    assert_eq!(h.sink.envelopes().len(), 2);
}

#[tokio::test]
async fn an_event_whose_complete_state_was_relayed_by_poll_or_get_is_a_duplicate() {
    let h = harness();
    let key = state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z");
    h.dedupe.insert(&key, RecordState::Completed, true);
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["outcome"], "duplicate");
    assert_eq!(a.body["dedupeKey"], key);
    assert!(h.sink.envelopes().is_empty());

    // While a poll or GET of that state is still in flight, the event waits (503), so it is
    // neither lost (the poll may fail) nor relayed twice.
    let h = harness();
    h.dedupe.insert(&key, RecordState::InProgress, true);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    a.assert_problem_of(503, "in-progress");
    assert!(h.sink.envelopes().is_empty());
    // ... and its own claim was released, so the retry goes through once the state is free.
    h.dedupe.insert(&key, RecordState::Completed, false);
    assert_eq!(
        send(&h.router, post_json("/webhook", &body)).await.status,
        202
    );
}

#[tokio::test]
async fn a_resend_of_a_state_a_poll_or_get_relayed_goes_through() {
    // A resend repeats an unchanged state on purpose; polling beside the webhook must not
    // swallow it as a duplicate of the state the poll relayed.
    let h = harness();
    let key = state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z");
    h.dedupe.insert(&key, RecordState::Completed, true);
    let resend = order_event("OrderResentByBuyer", &["l-1"]);
    let a = send(&h.router, post_json("/webhook", &resend)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(h.sink.envelopes().len(), 1);
    // Its retry is still a duplicate, by its message key.
    let again = send(&h.router, post_json("/webhook", &resend)).await;
    assert_eq!(again.body["outcome"], "duplicate", "{}", again.body);
    assert_ne!(again.body["dedupeKey"], key);
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn resend_events_go_through_once_per_message_id() {
    let h = harness();
    let mut resend = order_event("OrderResentByBuyer", &["l-1"]);
    assert_eq!(
        send(&h.router, post_json("/webhook", &resend)).await.status,
        202
    );
    // Its retry (same messageId) is a duplicate.
    assert_eq!(
        send(&h.router, post_json("/webhook", &resend)).await.status,
        200
    );
    // The user presses "resend" again: same state, new messageId, relayed again.
    resend["meta"]["messageId"] = json!("m-2");
    let a = send(&h.router, post_json("/webhook", &resend)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.body["dedupeKey"], "msg/order/o-1/resend/m-2");
    assert_eq!(h.sink.envelopes().len(), 2);
}

#[tokio::test]
async fn shipments_are_keyed_on_their_meta_last_updated_at() {
    let h = harness();
    let a = send(
        &h.router,
        post_json(
            "/webhook/shipments",
            &shipment_event("ShipmentIssuedBySupplier"),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["kind"], "shipment");
    let e = &h.sink.envelopes()[0];
    assert_eq!(
        e.last_updated_at.as_deref(),
        Some("2025-04-24T08:00:00.000Z")
    );
    assert!(
        e.dedupe_key
            .starts_with("msg/shipment/s-1/2025-04-24T08:00:00.000Z/ShipmentIssuedBySupplier/L1-")
    );
    assert_eq!(e.message_group_id(), "shipment:s-1");
}

#[tokio::test]
async fn a_filtered_event_is_answered_200_and_not_enqueued() {
    let mut s = settings();
    s.filter = EventFilter::new(
        EventFilter::parse_list("Order*"),
        EventFilter::parse_list("*ByBuyer"),
    );
    let h = harness_with(s, true);
    let a = send(
        &h.router,
        post_json("/webhook", &order_event("OrderIssuedByBuyer", &["l-1"])),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        json!({"outcome": "filtered", "eventName": "OrderIssuedByBuyer"})
    );
    let a = send(
        &h.router,
        post_json("/webhook", &shipment_event("ShipmentIssuedBySupplier")),
    )
    .await;
    assert_eq!(a.body["outcome"], "filtered");
    assert!(h.sink.envelopes().is_empty());
    assert!(
        h.dedupe.records().is_empty(),
        "a filtered event claims nothing"
    );
    let a = send(
        &h.router,
        post_json(
            "/webhook",
            &order_event("OrderLinesAcceptedBySupplier", &["l-1"]),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn an_invalid_body_is_400_naming_the_field_and_quarantined_without_credentials() {
    let h = harness();
    let mut body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    body["orderEvent"]
        .as_object_mut()
        .unwrap()
        .remove("orderId");
    let raw = serde_json::to_vec(&body).unwrap();
    let request = Request::post("/webhook?source=test")
        .header(header::AUTHORIZATION, basic(USER, OLD_PASSWORD))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "req-42")
        .header(header::COOKIE, "session=abc")
        .body(Body::from(raw.clone()))
        .unwrap();
    let a = send(&h.router, request).await;
    let detail = a.assert_problem_of(400, "malformed-body");
    assert!(detail.contains("orderEvent.orderId"), "{detail}");
    assert_eq!(a.body["field"], "orderEvent.orderId");
    assert_eq!(a.body["requestId"], "req-42");
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());

    let kept = h.quarantine.kept();
    assert_eq!(kept.len(), 1);
    let q = &kept[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.uri, "/webhook?source=test");
    assert_eq!(q.content_type.as_deref(), Some("application/json"));
    assert_eq!(q.body, raw);
    assert_eq!(q.reason, detail);
    let names: Vec<&str> = q.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"x-request-id") && names.contains(&"content-type"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"authorization") && !names.contains(&"cookie"),
        "{names:?}"
    );
    // Not even the encoded credential survives anywhere in the record.
    let encoded = basic(USER, OLD_PASSWORD);
    let token = encoded.trim_start_matches("Basic ");
    assert!(!serde_json::to_string(q).unwrap().contains(token));
}

#[tokio::test]
async fn malformed_json_and_xml_are_400_with_the_place() {
    let h = harness();
    let a = send(
        &h.router,
        post("/webhook", Some("application/json"), "{\"eventName\": "),
    )
    .await;
    let detail = a.assert_problem_of(400, "malformed-body");
    assert!(detail.contains("line 1"), "{detail}");
    let a = send(
        &h.router,
        post(
            "/webhook",
            Some("text/xml"),
            "<WebhookBody><eventName>x</WebhookBody>",
        ),
    )
    .await;
    a.assert_problem_of(400, "malformed-body");
    let a = send(&h.router, post("/webhook", Some("application/json"), "")).await;
    a.assert_problem_of(400, "malformed-body");
    assert_eq!(h.quarantine.kept().len(), 3);
    assert!(h.sink.envelopes().is_empty());
}

#[tokio::test]
async fn a_kind_the_route_does_not_take_is_400_and_quarantined() {
    let h = harness();
    let order = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let a = send(&h.router, post_json("/webhook/shipments", &order)).await;
    let detail = a.assert_problem_of(400, "wrong-kind");
    assert!(
        detail.contains("/webhook/shipments") && detail.contains("order"),
        "{detail}"
    );
    for path in ["/webhook/orders", "/webhook/order-documents"] {
        let a = send(
            &h.router,
            post_json(path, &shipment_event("ShipmentIssuedBySupplier")),
        )
        .await;
        let detail = a.assert_problem_of(400, "wrong-kind");
        assert!(
            detail.contains(path) && detail.contains("shipment"),
            "{detail}"
        );
    }
    assert_eq!(h.quarantine.kept().len(), 3);
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
}

/// Tradecloud's own example sets up the order connector's order events and its
/// order-documents events with one URL; whichever order route it is, both kinds go through.
#[tokio::test]
async fn both_order_routes_take_order_and_order_documents_events() {
    let h = harness();
    let mut documents = order_event("OrderDocumentsAttachedBySupplier", &["l-1"]);
    let event = documents
        .as_object_mut()
        .unwrap()
        .remove("orderEvent")
        .unwrap();
    documents["orderDocumentsEvent"] = event;
    let cases = [
        ("/webhook/orders", &documents, "order-documents"),
        (
            "/webhook/order-documents",
            &order_event("OrderLinesAcceptedBySupplier", &["l-1"]),
            "order",
        ),
    ];
    for (path, body, kind) in cases {
        let a = send(&h.router, post_json(path, body)).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{path}: {}", a.body);
        assert_eq!(a.body["kind"], kind, "{path}");
    }
    assert_eq!(h.sink.envelopes().len(), 2);
    assert!(h.quarantine.kept().is_empty());
}

#[tokio::test]
async fn missing_wrong_or_other_scheme_credentials_are_401_and_nothing_else_happens() {
    let h = harness();
    let body = serde_json::to_vec(&order_event("OrderLinesAcceptedBySupplier", &["l-1"])).unwrap();
    let cases: [Option<String>; 6] = [
        None,
        Some(basic(USER, "wrong")),
        Some(basic("someone", NEW_PASSWORD)),
        Some("Bearer wrong-token".into()),
        Some("Digest username=\"tradecloud\"".into()),
        Some("Basic not-base64!".into()),
    ];
    for auth in cases {
        let mut builder =
            Request::post("/webhook").header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = &auth {
            builder = builder.header(header::AUTHORIZATION, auth);
        }
        let a = send(&h.router, builder.body(Body::from(body.clone())).unwrap()).await;
        a.assert_problem_of(401, "unauthorized");
        let challenges: Vec<&str> = a
            .headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(challenges.len(), 2, "{auth:?}");
        assert!(challenges[0].starts_with("Basic realm=\"tradecloud-relay\""));
        assert!(challenges[1].starts_with("Bearer realm=\"tradecloud-relay\""));
    }
    // GET, unknown routes and wrong methods authenticate first too.
    for request in [
        Request::get("/webhook/orders/o-1")
            .body(Body::empty())
            .unwrap(),
        Request::post("/nowhere").body(Body::empty()).unwrap(),
        Request::delete("/webhook").body(Body::empty()).unwrap(),
    ] {
        send(&h.router, request)
            .await
            .assert_problem_of(401, "unauthorized");
    }
    assert!(h.sink.envelopes().is_empty());
    assert!(
        h.quarantine.kept().is_empty(),
        "unauthenticated requests are not kept"
    );
    assert!(h.dedupe.records().is_empty());
    assert!(h.api.calls().is_empty());
}

#[tokio::test]
async fn every_configured_credential_is_accepted() {
    let h = harness();
    for (n, auth) in [
        basic(USER, OLD_PASSWORD),
        basic(USER, NEW_PASSWORD),
        format!("Bearer {TOKEN}"),
    ]
    .into_iter()
    .enumerate()
    {
        let line = format!("l-{n}");
        let body = order_event("OrderLinesAcceptedBySupplier", &[line.as_str()]);
        let request = Request::post("/webhook")
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        assert_eq!(send(&h.router, request).await.status, StatusCode::ACCEPTED);
    }
    assert_eq!(h.sink.envelopes().len(), 3);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_not_enqueued() {
    let mut s = settings();
    s.max_body_bytes = 1000;
    let h = harness_with(s, true);
    let mut body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    body["orderEvent"]["padding"] = json!("x".repeat(2000));
    // Announced by Content-Length ...
    let a = send(&h.router, post_json("/webhook", &body)).await;
    let detail = a.assert_problem_of(413, "too-large");
    assert!(detail.contains("1000"), "{detail}");
    // ... and streamed without one.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..2)
        .map(|_| Ok(bytes::Bytes::from(vec![b' '; 800])))
        .collect();
    let streamed = Body::from_stream(futures::stream::iter(chunks));
    let a = send(
        &h.router,
        post("/webhook", Some("application/json"), streamed),
    )
    .await;
    a.assert_problem_of(413, "too-large");
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
    // Kept for the operator, without the (unread) body.
    let kept = h.quarantine.kept();
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter()
            .all(|q| q.body.is_empty() && q.reason.contains("1000"))
    );
    // A body under the limit goes through.
    let small = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    assert_eq!(
        send(&h.router, post_json("/webhook", &small)).await.status,
        202
    );
}

#[tokio::test]
async fn an_unknown_content_type_is_415_and_not_enqueued_only_when_the_body_is_neither_json_nor_xml()
 {
    let h = harness();
    // Neither JSON nor XML, of a type that is neither: 415, kept in the quarantine.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    let a = send(&h.router, post("/webhook", Some("image/png"), png.clone())).await;
    let detail = a.assert_problem_of(415, "unsupported-media-type");
    assert!(detail.contains("image/png"), "{detail}");
    assert!(h.sink.envelopes().is_empty());
    assert_eq!(h.quarantine.kept()[0].body, png);
    // Tradecloud's tXML type is undocumented: a JSON or XML body of any type is relayed.
    let body = serde_json::to_vec(&order_event("OrderLinesAcceptedBySupplier", &["l-1"])).unwrap();
    let a = send(&h.router, post("/webhook", Some("image/png"), body)).await;
    assert_eq!(a.status, 202);
    assert_eq!(h.sink.envelopes().len(), 1);
    let txml = harness();
    let a = send(
        &txml.router,
        post(
            "/webhook/orders",
            Some("application/txml"),
            ORDER_EVENT_TXML,
        ),
    )
    .await;
    assert_eq!(a.status, 202);
    assert_eq!(txml.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn queue_down_is_503_and_the_retry_is_enqueued_exactly_once() {
    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    h.sink.set_mode(Mode::Down);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    a.assert_problem_of(503, "queue-unavailable");
    assert!(
        h.dedupe.records().is_empty(),
        "both claims released: {:?}",
        h.dedupe.records()
    );
    h.sink.set_mode(Mode::Up);
    assert_eq!(
        send(&h.router, post_json("/webhook", &body)).await.status,
        202
    );
    assert_eq!(
        send(&h.router, post_json("/webhook", &body)).await.status,
        200
    );
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn dedupe_store_down_is_503_and_nothing_is_enqueued() {
    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    h.dedupe.set_mode(Mode::Down);
    send(&h.router, post_json("/webhook", &body))
        .await
        .assert_problem_of(503, "dedupe-unavailable");
    assert!(h.sink.envelopes().is_empty());
    h.dedupe.set_mode(Mode::Up);
    h.dedupe.set_op_mode(DedupeOp::Complete, Mode::Down);
    // Completing fails after the enqueue: the message is on the queue, so it is still 202.
    let a = send(&h.router, post_json("/webhook", &body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(h.sink.envelopes().len(), 1);
    // The claim stays in progress until it expires: a retry meanwhile waits with 503 rather
    // than being enqueued twice.
    h.dedupe.set_op_mode(DedupeOp::Complete, Mode::Up);
    send(&h.router, post_json("/webhook", &body))
        .await
        .assert_problem_of(503, "in-progress");
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn a_claim_in_progress_is_answered_503() {
    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let first = send(&h.router, post_json("/webhook", &body)).await;
    let key = first.body["dedupeKey"].as_str().unwrap().to_owned();
    // Pretend the first attempt is still running.
    h.dedupe.insert(&key, RecordState::InProgress, false);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    let detail = a.assert_problem_of(503, "in-progress");
    assert!(detail.contains(&key), "{detail}");
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn quarantine_down_turns_the_refusal_into_503() {
    let h = harness();
    h.quarantine.set_mode(Mode::Down);
    let a = send(
        &h.router,
        post("/webhook", Some("application/json"), "not json"),
    )
    .await;
    let detail = a.assert_problem_of(503, "quarantine-unavailable");
    assert!(detail.contains("could not be quarantined"), "{detail}");
    assert!(h.sink.envelopes().is_empty());
    // Once the quarantine is back, the retry is refused for good.
    h.quarantine.set_mode(Mode::Up);
    send(
        &h.router,
        post("/webhook", Some("application/json"), "not json"),
    )
    .await
    .assert_problem_of(400, "malformed-body");
    assert_eq!(h.quarantine.kept().len(), 1);
}

#[tokio::test]
async fn a_panic_in_a_handler_is_answered_503_problem() {
    let h = harness();
    h.sink.set_mode(Mode::Panic);
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let a = send(&h.router, post_json("/webhook", &body)).await;
    a.assert_problem_of(503, "internal");
    assert!(
        !a.body["detail"].as_str().unwrap().contains("fake sink"),
        "no internals leak"
    );
    // The router keeps working afterwards.
    h.sink.set_mode(Mode::Up);
    h.quarantine.set_mode(Mode::Panic);
    send(&h.router, post("/webhook", None, "garbage"))
        .await
        .assert_problem_of(503, "internal");
}

#[tokio::test]
async fn get_by_path_and_by_query_fetch_and_enqueue_the_complete_object() {
    let h = harness();
    h.api
        .put_order("o-1", full_order("o-1", "2025-04-23T10:01:53.812Z"));
    let a = send(&h.router, get("/webhook/orders/o-1")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let key = state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z");
    assert_eq!(a.body["dedupeKey"], key);
    let e = &h.sink.envelopes()[0];
    assert_eq!(e.source, Source::WebhookGet);
    assert_eq!(e.kind, ObjectKind::Order);
    assert_eq!(e.event_name, None);
    assert_eq!(e.version, Some(4));
    assert_eq!(e.dedupe_key, key);
    assert_eq!(e.payload, full_order("o-1", "2025-04-23T10:01:53.812Z"));
    assert!(h.dedupe.records()[&key].full_state);

    // The same state again (by query this time) is a duplicate ...
    let a = send(&h.router, get("/webhook/orders?orderId=o-1")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["outcome"], "duplicate");
    // ... and so is a webhook event of that state.
    let a = send(
        &h.router,
        post_json(
            "/webhook",
            &order_event("OrderLinesAcceptedBySupplier", &["l-1"]),
        ),
    )
    .await;
    assert_eq!(a.body["outcome"], "duplicate");
    assert_eq!(h.sink.envelopes().len(), 1);
    assert_eq!(h.api.calls(), ["order/o-1", "order/o-1"]);

    h.api.put_shipment(
        "s 1/x",
        json!({"id": "s 1/x", "meta": {"lastUpdatedAt": "2025-04-24T08:00:00.000Z"}}),
    );
    let a = send(&h.router, get("/webhook/shipments?shipmentId=s%201%2Fx")).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["kind"], "shipment");
    let a = send(&h.router, get("/webhook/shipments/s%201%2Fx")).await;
    assert_eq!(a.body["outcome"], "duplicate", "{}", a.body);
}

#[tokio::test]
async fn get_of_an_unknown_id_is_404_and_quarantined() {
    let h = harness();
    let a = send(&h.router, get("/webhook/orders/nope")).await;
    let detail = a.assert_problem_of(404, "not-found");
    assert!(detail.contains("nope"), "{detail}");
    assert_eq!(h.quarantine.kept()[0].uri, "/webhook/orders/nope");
    assert!(h.sink.envelopes().is_empty());
}

#[tokio::test]
async fn get_without_an_id_is_400() {
    let h = harness();
    for uri in [
        "/webhook/orders",
        "/webhook/orders?orderId=",
        "/webhook/shipments?orderId=o-1",
    ] {
        let detail = send(&h.router, get(uri))
            .await
            .assert_problem_of(400, "missing-id");
        assert!(detail.contains("Id is missing"), "{uri}: {detail}");
    }
    assert!(h.api.calls().is_empty());
}

#[tokio::test]
async fn tradecloud_api_failures_are_502_503_504_and_retryable() {
    let h = harness();
    h.api
        .put_order("o-1", full_order("o-1", "2025-04-23T10:01:53.812Z"));
    // Each failure with its own type: a timeout must not read as an outage, nor Tradecloud's
    // 5xx as ours.
    for (failure, status, slug) in [
        (ApiFailure::Upstream(500), 502, "upstream-error"),
        (ApiFailure::Upstream(503), 502, "upstream-error"),
        (ApiFailure::Malformed, 502, "upstream-error"),
        (ApiFailure::Timeout, 504, "upstream-timeout"),
        (ApiFailure::Unavailable, 503, "upstream-unavailable"),
        (ApiFailure::Unauthorized, 503, "upstream-unavailable"),
    ] {
        h.api.set_failure(Some(failure));
        for uri in ["/webhook/orders/o-1", "/webhook/shipments?shipmentId=s-1"] {
            send(&h.router, get(uri))
                .await
                .assert_problem_of(status, slug);
        }
    }
    h.api.set_failure(None);
    // An answer that is not an object is Tradecloud's error too, not a malformed request.
    h.api.put_order("o-2", json!(["not", "an", "order"]));
    let detail = send(&h.router, get("/webhook/orders/o-2"))
        .await
        .assert_problem_of(502, "upstream-error");
    assert!(detail.contains("not a JSON object"), "{detail}");
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
    assert!(
        h.quarantine.kept().is_empty(),
        "transient failures are retried, not quarantined"
    );
    assert_eq!(
        send(&h.router, get("/webhook/orders/o-1")).await.status,
        202
    );
}

#[tokio::test]
async fn get_with_the_queue_down_releases_the_state_claim() {
    let h = harness();
    h.api
        .put_order("o-1", full_order("o-1", "2025-04-23T10:01:53.812Z"));
    h.sink.set_mode(Mode::Down);
    send(&h.router, get("/webhook/orders/o-1"))
        .await
        .assert_problem_of(503, "queue-unavailable");
    h.sink.set_mode(Mode::Up);
    assert_eq!(
        send(&h.router, get("/webhook/orders/o-1")).await.status,
        202
    );
    assert_eq!(h.sink.envelopes().len(), 1);
}

#[tokio::test]
async fn get_without_a_tradecloud_login_is_503() {
    let h = harness_with(settings(), false);
    let detail = send(&h.router, get("/webhook/orders/o-1"))
        .await
        .assert_problem_of(503, "api-not-configured");
    assert!(detail.contains("TRADECLOUD_USERNAME"), "{detail}");
}

// Protects the cause named when the dedupe store refuses a GET: its outage is
// dedupe-unavailable (neither the queue's nor Tradecloud's), a state already in flight is
// in-progress; both 503 with Retry-After, nothing enqueued or quarantined.
#[tokio::test]
async fn get_with_the_dedupe_store_down_or_the_state_in_flight_is_503_naming_it() {
    let h = harness();
    h.api
        .put_order("o-1", full_order("o-1", "2025-04-23T10:01:53.812Z"));
    h.dedupe.set_mode(Mode::Down);
    let detail = send(&h.router, get("/webhook/orders/o-1"))
        .await
        .assert_problem_of(503, "dedupe-unavailable");
    assert!(detail.contains("dedupe store"), "{detail}");
    h.dedupe.set_mode(Mode::Up);
    let key = state_key(ObjectClass::Order, "o-1", "2025-04-23T10:01:53.812Z");
    h.dedupe.insert(&key, RecordState::InProgress, true);
    let detail = send(&h.router, get("/webhook/orders/o-1"))
        .await
        .assert_problem_of(503, "in-progress");
    assert!(detail.contains(&key), "{detail}");
    assert!(h.sink.envelopes().is_empty());
    assert!(h.quarantine.kept().is_empty());
}

// Protects "refused for good only once kept": while the quarantine is down, every refusal that
// is quarantined (each 4xx but 401) is answered 503 quarantine-unavailable, so Tradecloud
// retries instead of dropping a message nobody kept; 401 is never kept, so it stays 401.
#[tokio::test]
async fn every_kept_refusal_is_503_quarantine_unavailable_while_the_quarantine_is_down() {
    let mut s = settings();
    s.max_body_bytes = 1000;
    s.max_lines = 1;
    let h = harness_with(s, true);
    h.quarantine.set_mode(Mode::Down);
    let order = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let mut large = order.clone();
    large["orderEvent"]["padding"] = json!("x".repeat(2000));
    let refusals: Vec<(&str, Request<Body>)> = vec![
        (
            "a malformed body",
            post("/webhook", Some("application/json"), "{"),
        ),
        (
            "an unknown content type",
            post("/webhook", Some("image/png"), "x"),
        ),
        ("a body over the limit", post_json("/webhook", &large)),
        (
            "more lines than the cap",
            post_json(
                "/webhook",
                &order_event("OrderLinesAcceptedBySupplier", &["l-1", "l-2"]),
            ),
        ),
        (
            "a kind the route does not take",
            post_json("/webhook/shipments", &order),
        ),
        ("a GET without an id", get("/webhook/orders")),
        ("a GET of an unknown id", get("/webhook/orders/nope")),
        (
            "an unknown route",
            post("/webhook/invoices", Some("application/json"), "{}"),
        ),
        ("a wrong method", get("/webhook")),
    ];
    for (refusal, request) in refusals {
        let detail = send(&h.router, request)
            .await
            .assert_problem_of(503, "quarantine-unavailable");
        assert!(
            detail.contains("could not be quarantined"),
            "{refusal}: {detail}"
        );
    }
    // Tradecloud refusing our fetch is kept too.
    h.api.set_failure(Some(ApiFailure::Refused(400)));
    send(&h.router, get("/webhook/orders/o-1"))
        .await
        .assert_problem_of(503, "quarantine-unavailable");
    let unauthenticated = Request::post("/webhook")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{"))
        .unwrap();
    send(&h.router, unauthenticated)
        .await
        .assert_problem_of(401, "unauthorized");
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
}

// Protects the answer to a body that breaks off mid-way: 400 body-unreadable (not a decode
// error of the half that came), and nothing is kept or enqueued: there is no whole message.
#[tokio::test]
async fn a_body_that_breaks_off_is_400_body_unreadable_and_not_kept() {
    let h = harness();
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from_static(b"{\"eventName\": ")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )),
    ];
    let broken = Body::from_stream(futures::stream::iter(chunks));
    let a = send(
        &h.router,
        post("/webhook", Some("application/json"), broken),
    )
    .await;
    let detail = a.assert_problem_of(400, "body-unreadable");
    assert!(detail.contains("connection reset"), "{detail}");
    assert!(h.quarantine.kept().is_empty());
    assert!(h.sink.envelopes().is_empty());
    assert!(h.dedupe.records().is_empty());
}

#[tokio::test]
async fn unknown_routes_and_methods_are_refused_after_authentication() {
    let h = harness();
    let a = send(
        &h.router,
        post("/webhook/invoices", Some("application/json"), "{\"a\":1}"),
    )
    .await;
    a.assert_problem_of(404, "unknown-route");
    let a = send(&h.router, get("/webhook")).await;
    a.assert_problem_of(405, "method-not-allowed");
    assert_eq!(a.headers.get(header::ALLOW).unwrap(), "POST");
    let a = send(&h.router, post("/webhook/orders/o-1", None, "{}")).await;
    a.assert_problem_of(405, "method-not-allowed");
    assert_eq!(a.headers.get(header::ALLOW).unwrap(), "GET");
    let kept = h.quarantine.kept();
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].body, b"{\"a\":1}");
}

#[tokio::test]
async fn the_request_id_comes_from_the_extension_or_is_generated() {
    let h = harness();
    let mut request = post("/webhook", Some("application/json"), "{");
    request
        .extensions_mut()
        .insert(RequestId("apigw-123".into()));
    let a = send(&h.router, request).await;
    a.assert_problem_of(400, "malformed-body");
    assert_eq!(a.body["requestId"], "apigw-123");
    let a = send(&h.router, post("/webhook", Some("application/json"), "{")).await;
    a.assert_problem_of(400, "malformed-body");
    let generated = a.body["requestId"].as_str().unwrap();
    assert_eq!(generated.len(), 36, "{generated}");
}

#[tokio::test]
async fn an_order_documents_event_is_its_own_class() {
    let h = harness();
    let mut body = order_event("OrderDocumentsAttachedBySupplier", &["l-1"]);
    let event = body.as_object_mut().unwrap().remove("orderEvent").unwrap();
    body["orderDocumentsEvent"] = event;
    let a = send(&h.router, post_json("/webhook/order-documents", &body)).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["kind"], "order-documents");
    assert!(
        a.body["dedupeKey"]
            .as_str()
            .unwrap()
            .starts_with("msg/order-documents/o-1/")
    );
}

/// docs/design.md promises that a JSON or XML body is read whatever its content type: a sender
/// that labels its tXML `application/json` (or its JSON `application/xml`) must not lose the
/// message to a 400. The body's first character decides when it contradicts the label.
#[tokio::test]
async fn a_body_labelled_with_the_other_format_is_read_by_what_it_is() {
    let h = harness();
    let a = send(
        &h.router,
        post("/webhook", Some("application/json"), ORDER_EVENT_TXML),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(h.sink.envelopes()[0].format, Format::Txml);

    let h = harness();
    let body = order_event("OrderLinesAcceptedBySupplier", &["l-1"]);
    let a = send(
        &h.router,
        post(
            "/webhook",
            Some("application/xml; charset=UTF-8"),
            serde_json::to_vec(&body).unwrap(),
        ),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(h.sink.envelopes()[0].format, Format::Json);
    assert!(h.quarantine.kept().is_empty());

    // A body that is neither is still refused by the label's reader.
    let h = harness();
    let a = send(&h.router, post("/webhook", Some("application/json"), "x")).await;
    a.assert_problem_of(400, "malformed-body");
}
