//! The fixture corpus in `tests/fixtures/`: every webhook body comes as a JSON file and a
//! hand-written tXML file, and the two must decode to the same payload and typed view.
//!
//! Equality alone would not catch a bug that the JSON and tXML paths share (or a reader bug
//! mirrored by a fixture written to match it), so every pair also checks a few values by hand
//! against what the fixture says: kind, object id, event name, message id, line ids, a
//! quantity with its exact digits, an empty split-line position.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;

use crate::growth::{LINEAR_GROWTH_BOUND, growth_on_32_times_the_body};
use serde_json::Value;
use tradecloud_model::{
    DecodedWebhook, Format, ObjectKind, decode_order, decode_poll_response, decode_shipment,
    decode_webhook, order_from_value, shipment_from_value,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn read(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn decode(rel: &str, content_type: Option<&str>) -> DecodedWebhook {
    decode_webhook(&read(rel), content_type)
        .unwrap_or_else(|e| panic!("{rel} ({content_type:?}) does not decode: {e}"))
}

/// Decodes both files of a pair (by content type, and sniffed), checks that they agree, and
/// returns the tXML decode (the JSON one is equal).
fn decode_pair(name: &str) -> DecodedWebhook {
    let json_file = format!("webhook/{name}.json");
    let xml_file = format!("webhook/{name}.xml");
    let json = decode(&json_file, Some("application/json; charset=utf-8"));
    let xml = decode(&xml_file, Some("application/xml"));
    assert_eq!(json.format, Format::Json);
    assert_eq!(xml.format, Format::Txml);
    assert_eq!(json.payload, xml.payload, "{name}: payloads differ");
    assert_eq!(json.body, xml.body, "{name}: typed views differ");

    // The other accepted content types, and sniffing, give the same result.
    for (file, ct) in [
        (&xml_file, Some("text/xml")),
        (&xml_file, None),
        (&xml_file, Some("application/octet-stream")),
        (&json_file, None),
        (&json_file, Some("text/plain")),
    ] {
        let again = decode(file, ct);
        assert_eq!(again.payload, json.payload, "{file} with {ct:?}");
        assert_eq!(again.body, json.body, "{file} with {ct:?}");
    }
    xml
}

/// The JSON file as written, without any decoding.
fn raw_json(name: &str) -> Value {
    serde_json::from_slice(&read(&format!("webhook/{name}.json"))).unwrap()
}

/// The event object of the payload.
fn event(d: &DecodedWebhook) -> Value {
    let keys = [
        "orderEvent",
        "singleDeliveryOrderEvent",
        "simpleOrderEvent",
        "orderDocumentsEvent",
        "shipment",
        "shipmentEvent",
    ];
    let key = keys
        .into_iter()
        .find(|k| d.payload.get(k).is_some())
        .expect("an event");
    d.payload[key].clone()
}

/// The typed view of the event's order, read from the payload (leaked: tests borrow from it).
fn order(d: &DecodedWebhook) -> &'static tradecloud_model::Order {
    assert_ne!(
        d.body.kind(),
        ObjectKind::Shipment,
        "expected an order event"
    );
    Box::leak(Box::new(
        order_from_value(event(d)).expect("the order reads").0,
    ))
}

/// The typed view of the event's shipment.
fn shipment(d: &DecodedWebhook) -> &'static tradecloud_model::Shipment {
    assert_eq!(
        d.body.kind(),
        ObjectKind::Shipment,
        "expected a shipment event"
    );
    Box::leak(Box::new(
        shipment_from_value(event(d)).expect("the shipment reads").0,
    ))
}

/// The exact JSON text of the value at `pointer` in the payload (so `12.50` is not `12.5`).
fn text_at(d: &DecodedWebhook, pointer: &str) -> String {
    d.payload
        .pointer(pointer)
        .unwrap_or_else(|| panic!("nothing at {pointer}"))
        .to_string()
}

/// One test per fixture pair; the list of names is also checked against the directory.
macro_rules! pairs {
    ($($test:ident => $name:literal, |$d:ident| $checks:block)*) => {
        const PAIRS: &[&str] = &[$($name),*];
        $(
            #[test]
            fn $test() {
                let $d = decode_pair($name);
                $checks
            }
        )*
    };
}

pairs! {
    order_issued_by_buyer => "order-issued-by-buyer", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.event_name, "OrderIssuedByBuyer");
        assert_eq!(d.body.object_id(), "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189");
        assert_eq!(d.body.message_id(), Some("5b7f3c1e-2a4d-4e8f-9b6a-0c1d2e3f4a5b"));
        assert_eq!(d.body.version(), Some(1));
        assert_eq!(d.body.last_updated_at(), Some("2026-11-23T09:00:01.123Z"));
        assert_eq!(
            d.body.line_ids(),
            ["0001", "0002", "0003"].map(|p| format!("cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189-{p}"))
        );
        // meta at body level, none inside the event.
        assert!(d.payload.get("meta").is_some());
        assert!(order(&d).meta.is_none());
        let ds = "/orderEvent/lines/0/deliverySchedule";
        assert_eq!(text_at(&d, &format!("{ds}/1/quantity")), "250.50");
        assert_eq!(text_at(&d, &format!("{ds}/2/quantity")), "0.001");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/prices/grossPrice/priceInTransactionCurrency/value"), "12.50");
        assert_eq!(text_at(&d, "/orderEvent/lines/1/prices/netPrice/priceInTransactionCurrency/value"), "89.775");
        assert_eq!(text_at(&d, "/orderEvent/lines/1/prices/grossPrice/priceInTransactionCurrency/value"), "95.00");
        let o = order(&d);
        let line = &o.lines.as_ref().unwrap()[0];
        let schedule = line.delivery_schedule.as_ref().unwrap();
        assert_eq!(schedule.len(), 3);
        assert_eq!(schedule[1].quantity.unwrap().to_string(), "250.50");
        assert_eq!(line.delivery_schedule_including_requests.as_ref().unwrap().len(), 3);
        let bo = o.buyer_order.as_ref().unwrap();
        // Escapes, CDATA and character references in the tXML file.
        assert_eq!(bo.description.as_deref(), Some("Spare parts <urgent> & tools"));
        let sp = bo.supplier_party.as_ref().unwrap();
        assert_eq!(sp.names.as_deref(), Some(&["Smith & Sons Métallurgie".to_owned()][..]));
        assert_eq!(sp.address_lines.as_ref().unwrap()[0], "Rue de l'Industrie 7");
        assert_eq!(bo.buyer_accounting_party.as_ref().unwrap().names.as_ref().unwrap().len(), 3);
        assert_eq!(bo.destination.as_ref().unwrap().address_lines.as_ref().unwrap(), &["Harbour road 9", "Gate B"]);
        assert_eq!(bo.documents.as_ref().unwrap()[1].url.as_deref(), Some("https://bluecorp.example/terms.pdf?lang=en&v=3"));
        assert_eq!(bo.indicators.as_ref().unwrap().cancel_line_when_missing, Some(true));
        assert_eq!(bo.properties.as_ref().unwrap()[1].value.as_deref(), Some("Harbour crane refit"));
        assert_eq!(d.payload["orderEvent"]["buyerOrder"]["indicators"]["shipped"], Value::Bool(false));
        // An unmodelled field (eventDates) reaches the payload.
        assert_eq!(d.payload["orderEvent"]["eventDates"]["issuedAt"], "2026-11-23T09:00:01.123Z");
        // Nothing was changed or lost: the payload is the JSON file as written.
        assert_eq!(d.payload, raw_json("order-issued-by-buyer"));
    }

    order_accepted_one_element_lists => "order-accepted-one-element-lists", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.event_name, "OrderLinesAcceptedBySupplier");
        assert_eq!(d.body.object_id(), "5e1f0a2b-3c4d-4e5f-8a9b-7c6d5e4f3a2b-PO3001");
        // meta inside the event, none at body level.
        assert!(d.payload.get("meta").is_none());
        assert_eq!(d.body.message_id(), Some("c0ffee00-1234-4abc-8def-0123456789ab"));
        assert_eq!(d.body.line_ids(), ["5e1f0a2b-3c4d-4e5f-8a9b-7c6d5e4f3a2b-PO3001-0010"]);
        // Every one-element list is still an array in the payload.
        for pointer in [
            "/orderEvent/buyerOrder/buyerParty/names",
            "/orderEvent/buyerOrder/buyerParty/addressLines",
            "/orderEvent/buyerOrder/supplierParty/names",
            "/orderEvent/buyerOrder/destination/names",
            "/orderEvent/buyerOrder/destination/addressLines",
            "/orderEvent/buyerOrder/properties",
            "/orderEvent/buyerOrder/notes",
            "/orderEvent/buyerOrder/labels",
            "/orderEvent/buyerOrder/documents",
            "/orderEvent/supplierOrder/properties",
            "/orderEvent/supplierOrder/notes",
            "/orderEvent/supplierOrder/labels",
            "/orderEvent/supplierOrder/documents",
            "/orderEvent/lines",
            "/orderEvent/lines/0/buyerLine/properties",
            "/orderEvent/lines/0/buyerLine/notes",
            "/orderEvent/lines/0/buyerLine/labels",
            "/orderEvent/lines/0/buyerLine/documents",
            "/orderEvent/lines/0/supplierLine/properties",
            "/orderEvent/lines/0/supplierLine/notes",
            "/orderEvent/lines/0/supplierLine/documents",
            "/orderEvent/lines/0/confirmedLine/deliverySchedule",
            "/orderEvent/lines/0/confirmedLine/chargeLines",
            "/orderEvent/lines/0/deliverySchedule",
            "/orderEvent/lines/0/deliveryScheduleIncludingRequests",
        ] {
            let v = d.payload.pointer(pointer).unwrap_or_else(|| panic!("nothing at {pointer}"));
            assert_eq!(v.as_array().map(Vec::len), Some(1), "{pointer} is not a one-element array: {v}");
        }
        assert_eq!(text_at(&d, "/orderEvent/lines/0/prices/netPrice/priceInTransactionCurrency/value"), "0.0425");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/mergedItemDetails/netWeight"), "0.021");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/deliverySchedule/0/quantity"), "2000");
        let line = &order(&d).lines.as_ref().unwrap()[0];
        assert_eq!(line.status.as_ref().unwrap().process_status.as_deref(), Some("Confirmed"));
        assert_eq!(line.supplier_line.as_ref().unwrap().sales_order_line_position.as_deref(), Some("10"));
        let charge = &line.confirmed_line.as_ref().unwrap().charge_lines.as_ref().unwrap()[0];
        assert_eq!(charge.price.as_ref().unwrap().price_in_transaction_currency.as_ref().unwrap().value.unwrap().to_string(), "4.95");
        assert_eq!(d.payload, raw_json("order-accepted-one-element-lists"));
    }

    single_delivery_split_line => "single-delivery-split-line", |d| {
        assert_eq!(d.body.kind(), ObjectKind::SingleDeliveryOrder);
        assert!(d.payload.get("singleDeliveryOrderEvent").is_some());
        assert_eq!(d.body.event_name, "OrderChangesProposedBySupplier");
        assert_eq!(d.body.object_id(), "77aa88bb-99cc-4dde-8eff-001122334455-PO4711");
        assert_eq!(d.body.message_id(), Some("d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f60"));
        assert_eq!(d.body.version(), Some(4));
        assert_eq!(d.body.line_ids().len(), 2);
        let lines = order(&d).lines.as_ref().unwrap();
        // The split line: `<position/>` is an empty string, not missing, and points back.
        let split = lines[1].buyer_line.as_ref().unwrap();
        assert_eq!(split.position.as_deref(), Some(""));
        assert_eq!(split.original_position.as_deref(), Some("0001"));
        assert_eq!(d.payload["singleDeliveryOrderEvent"]["lines"][1]["buyerLine"]["position"], "");
        let status_line = lines[0].status_line.as_ref().unwrap();
        assert_eq!(status_line.scheduled_delivery.as_ref().unwrap().quantity.unwrap().to_string(), "10");
        assert_eq!(status_line.scheduled_delivery_incl_requests.as_ref().unwrap().quantity.unwrap().to_string(), "6");
        assert_eq!(status_line.scheduled_delivery_incl_requests.as_ref().unwrap().etd.as_deref(), Some("2026-12-08"));
        assert_eq!(
            text_at(&d, "/singleDeliveryOrderEvent/lines/0/statusLine/pricesInclRequests/netPrice/priceInTransactionCurrency/value"),
            "1499.00"
        );
        assert_eq!(lines[1].status.as_ref().unwrap().in_progress_status.as_deref(), Some("OpenSupplierProposal"));
        assert!(lines[1].status_line.as_ref().unwrap().scheduled_delivery.is_none());
        assert_eq!(d.payload, raw_json("single-delivery-split-line"));
    }

    simple_order_event_old_name => "simple-order-event", |d| {
        // The pre-2024 name is the single-delivery event, and the payload keeps the key as sent.
        assert_eq!(d.body.kind(), ObjectKind::SingleDeliveryOrder);
        assert!(d.payload.get("simpleOrderEvent").is_some());
        assert_eq!(d.body.event_name, "OrderLinesConfirmedBySupplier");
        assert_eq!(d.body.object_id(), "0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b-PO1024");
        assert!(d.payload.get("meta").is_none());
        assert_eq!(d.body.message_id(), Some("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"));
        assert_eq!(
            d.body.line_ids(),
            ["0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b-PO1024-0020", "0f9e8d7c-6b5a-4493-8271-605f4e3d2c1b-PO1024-0020-b"]
        );
        let lines = order(&d).lines.as_ref().unwrap();
        // `<position></position>` is an empty string too.
        assert_eq!(lines[1].buyer_line.as_ref().unwrap().position.as_deref(), Some(""));
        assert_eq!(lines[1].buyer_line.as_ref().unwrap().original_position.as_deref(), Some("0020"));
        assert_eq!(text_at(&d, "/simpleOrderEvent/lines/0/statusLine/prices/grossPrice/priceInTransactionCurrency/value"), "87.30");
        assert_eq!(text_at(&d, "/simpleOrderEvent/lines/1/statusLine/scheduledDelivery/quantity"), "20");
        let meta = order(&d).meta.as_ref().unwrap();
        assert_eq!(meta.source.as_ref().unwrap().origin.as_deref(), Some("Portal"));
        assert_eq!(d.payload, raw_json("simple-order-event"));
    }

    quoted_numbers => "quoted-numbers", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.event_name, "OrderLinesDeliveryScheduleLogisticsUpdatedBySupplier");
        assert_eq!(d.body.object_id(), "4c3b2a19-0817-4f6e-9d5c-4b3a29180706-PO5555");
        assert_eq!(d.body.message_id(), Some("11111111-2222-4333-8444-555555555555"));
        assert_eq!(d.body.line_ids(), ["4c3b2a19-0817-4f6e-9d5c-4b3a29180706-PO5555-0001"]);
        // Quoted JSON numbers and booleans become typed, with their exact digits.
        assert_eq!(d.body.version(), Some(3));
        assert_eq!(d.payload["orderEvent"]["version"], serde_json::json!(3));
        assert_eq!(text_at(&d, "/orderEvent/lines/0/deliverySchedule/0/quantity"), "12.50");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/deliverySchedule/1/quantity"), "7.25");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/prices/priceUnitQuantity"), "100");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/mergedItemDetails/netWeight"), "41.241");
        assert_eq!(d.payload["orderEvent"]["indicators"]["deliveryOverdue"], Value::Bool(true));
        assert_eq!(d.payload["orderEvent"]["buyerOrder"]["indicators"]["cancelLineWhenMissing"], Value::Bool(false));
        let o = order(&d);
        assert_eq!(o.indicators.as_ref().unwrap().delivery_overdue, Some(true));
        let line = &o.lines.as_ref().unwrap()[0];
        assert_eq!(line.delivery_schedule.as_ref().unwrap()[0].quantity.unwrap().to_string(), "12.50");
        // Attributes and namespace prefixes in the tXML file do not change the content.
        assert_eq!(line.buyer_line.as_ref().unwrap().description.as_deref(), Some("Copper wire 2.5 mm²"));
        // Ids stay strings even when they look like numbers.
        assert_eq!(d.payload["orderEvent"]["lines"][0]["deliverySchedule"][0]["position"], "0001");
    }

    unknown_fields_and_event_name => "unknown-fields-and-event", |d| {
        // An unknown event name is kept as is; the event key decides the kind.
        assert_eq!(d.body.event_name, "OrderLinesCarbonFootprintDeclaredBySupplier");
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.object_id(), "ab12cd34-ef56-4a78-9b0c-d1e2f3a4b5c6-PO6006");
        assert_eq!(d.body.message_id(), Some("22222222-3333-4444-8555-666666666666"));
        assert_eq!(d.body.line_ids(), ["ab12cd34-ef56-4a78-9b0c-d1e2f3a4b5c6-PO6006-0001"]);
        assert_eq!(text_at(&d, "/orderEvent/lines/0/deliverySchedule/0/quantity"), "3.5");
        // Every unknown field reaches the payload, at every level.
        let p = &d.payload;
        assert_eq!(p["schemaVersion"], "2.7");
        assert_eq!(p["meta"]["deliveryAttempt"], "1");
        assert_eq!(p["meta"]["source"]["region"], "eu-west");
        assert_eq!(p["orderEvent"]["sustainabilityScore"], "B+");
        assert_eq!(p["orderEvent"]["buyerOrder"]["buyerReference"], "REF-6006/A");
        assert_eq!(p["orderEvent"]["buyerOrder"]["buyerParty"]["vatNumber"], "NL123456789B01");
        let line = &p["orderEvent"]["lines"][0];
        assert_eq!(line["buyerLine"]["customerReference"], "CR-0001");
        assert_eq!(line["buyerLine"]["item"]["grade"], "S355J2");
        assert_eq!(line["deliverySchedule"][0]["dockDoor"], "D4");
        assert_eq!(line["carbonFootprint"]["declaredBy"]["method"], "ISO 14067");
        assert_eq!(line["certificate"][0]["issuer"], "TÜV Nord");
        assert_eq!(line["certificate"][1]["issuer"], "Lloyd's Register");
        assert_eq!(line["tag"], serde_json::json!(["low-carbon", "recycled"]));
        assert_eq!(line["status"]["sustainabilityStatus"], "Declared");
        assert_eq!(d.payload, raw_json("unknown-fields-and-event"));
    }

    supplier_proposal => "supplier-proposal", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.event_name, "OrderChangesProposedBySupplier");
        assert_eq!(d.body.object_id(), "e5d4c3b2-a190-4f8e-8d7c-6b5a49382716-PO7070");
        assert_eq!(d.body.message_id(), Some("44444444-5555-4666-8777-888888888888"));
        assert_eq!(d.body.line_ids(), ["e5d4c3b2-a190-4f8e-8d7c-6b5a49382716-PO7070-0001"]);
        let line = &order(&d).lines.as_ref().unwrap()[0];
        let proposal = line.supplier_line.as_ref().unwrap().requests.as_ref().unwrap().proposal.as_ref().unwrap();
        assert_eq!(proposal.status.as_deref(), Some("Open"));
        assert_eq!(proposal.reason.as_deref(), Some("Steel surcharge; capacity in December is full"));
        let proposed: Vec<String> = proposal.delivery_schedule.as_ref().unwrap().iter().map(|l| l.quantity.unwrap().to_string()).collect();
        assert_eq!(proposed, ["40", "60"]);
        assert_eq!(line.delivery_schedule_including_requests.as_ref().unwrap()[1].date.as_deref(), Some("2027-02-05"));
        assert_eq!(text_at(&d, "/orderEvent/lines/0/pricesIncludingRequests/grossPrice/priceInTransactionCurrency/value"), "23.10");
        assert_eq!(text_at(&d, "/orderEvent/lines/0/prices/grossPrice/priceInTransactionCurrency/value"), "21.75");
        assert_eq!(line.supplier_line.as_ref().unwrap().sales_order_position.as_deref(), Some("1"));
        assert_eq!(d.payload, raw_json("supplier-proposal"));
    }

    order_documents_attached => "order-documents-attached", |d| {
        assert_eq!(d.body.kind(), ObjectKind::OrderDocuments);
        assert!(d.payload.get("orderDocumentsEvent").is_some());
        assert_eq!(d.body.event_name, "OrderDocumentsAttachedBySupplier");
        assert_eq!(d.body.object_id(), "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189");
        assert_eq!(d.body.message_id(), Some("66666666-7777-4888-8999-aaaaaaaaaaaa"));
        assert_eq!(d.body.line_ids(), ["cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189-0001"]);
        let o = order(&d);
        let header_docs = o.supplier_order.as_ref().unwrap().documents.as_ref().unwrap();
        assert_eq!(header_docs.len(), 1);
        assert_eq!(header_docs[0].object_id.as_deref(), Some("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"));
        assert_eq!(header_docs[0].kind.as_deref(), Some("OrderConfirmation"));
        let line_docs = o.lines.as_ref().unwrap()[0].supplier_line.as_ref().unwrap().documents.as_ref().unwrap();
        assert_eq!(line_docs.len(), 2);
        assert_eq!(line_docs[1].url.as_deref(), Some("https://smith-sons.example/photos/0001.jpg"));
        assert!(line_docs[1].object_id.is_none());
        assert_eq!(d.payload, raw_json("order-documents-attached"));
    }

    shipment_issued => "shipment-issued", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Shipment);
        assert_eq!(d.body.event_name, "ShipmentIssuedBySupplier");
        assert_eq!(d.body.object_id(), "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a");
        assert_eq!(d.body.message_id(), Some("88888888-9999-4aaa-8bbb-cccccccccccc"));
        // The shipment's last change comes from shipment.meta.
        assert_eq!(d.body.last_updated_at(), Some("2026-11-23T16:00:00.000Z"));
        // Loose lines first, then the lines in the load carriers.
        assert_eq!(
            d.body.line_ids(),
            ["PO4711/0001/", "PO7070/0001/0001", "PO2189/0001/0001", "PO2189/0001/0002", "PO3001/0010/0001"]
        );
        let s = shipment(&d);
        let carriers = s.load_carriers.as_ref().unwrap();
        assert_eq!(carriers.len(), 2);
        assert_eq!(carriers[0].container_number.as_deref(), Some("MSKU1234565"));
        assert_eq!(carriers[1].package_sscc.as_deref(), Some("387123450000000017"));
        assert_eq!(carriers[0].lines.as_ref().unwrap().len(), 2);
        assert_eq!(text_at(&d, "/shipment/loadCarriers/0/lines/1/supplierLine/despatchQuantity"), "200.25");
        assert_eq!(text_at(&d, "/shipment/lines/1/supplierLine/despatchQuantity"), "40.000");
        let ss = s.supplier_shipment.as_ref().unwrap();
        assert_eq!(ss.invoice_numbers.as_deref(), Some(&["INV-90001".to_owned(), "INV-90002".to_owned()][..]));
        assert_eq!(ss.contacts.as_ref().unwrap().len(), 2);
        assert_eq!(ss.contacts.as_ref().unwrap()[0].position.as_deref(), Some("Logistics"));
        assert_eq!(ss.documents.as_ref().unwrap()[0].meta.as_ref().unwrap().last_updated_at.as_deref(), Some("2026-11-23T16:00:00.000Z"));
        let bs = s.buyer_shipment.as_ref().unwrap();
        assert_eq!(bs.contacts.as_ref().unwrap().len(), 1);
        assert_eq!(bs.purchase_order_terms.as_ref().unwrap().incoterms_code.as_deref(), Some("DAP"));
        let locations = s.locations.as_ref().unwrap();
        assert_eq!(locations.departure.as_ref().unwrap().location.as_ref().unwrap().id.as_deref(), Some("FRDKK"));
        let destinations = locations.destinations.as_ref().unwrap();
        assert_eq!(destinations.len(), 2);
        assert_eq!(destinations[1].location.as_ref().unwrap().names.as_ref().unwrap().len(), 2);
        assert_eq!(destinations[0].eta_end_time.as_deref(), Some("16:00"));
        assert_eq!(
            s.meta.as_ref().unwrap().supplier_erp_meta.as_ref().unwrap().despatch_advice_erp_issue_date_time.as_deref(),
            Some("2026-11-23T15:58:12")
        );
        assert_eq!(d.payload, raw_json("shipment-issued"));
    }

    shipment_event_old_name => "shipment-event-old-name", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Shipment);
        assert!(d.payload.get("shipmentEvent").is_some());
        assert_eq!(d.body.event_name, "ShipmentApprovedByBuyer");
        assert_eq!(d.body.object_id(), "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d");
        // Body-level meta.
        assert_eq!(d.payload["meta"]["messageId"], "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee");
        assert_eq!(d.body.message_id(), Some("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"));
        assert_eq!(d.body.line_ids(), ["PO5555/0001/0001"]);
        // A one-element list of strings stays a list.
        assert_eq!(d.payload["shipmentEvent"]["supplierShipment"]["invoiceNumbers"], serde_json::json!(["INV-91001"]));
        assert_eq!(text_at(&d, "/shipmentEvent/lines/0/supplierLine/despatchQuantity"), "12.50");
        let status = shipment(&d).status.as_ref().unwrap();
        assert_eq!(status.process_status.as_deref(), Some("Approved"));
        assert_eq!(status.process_status_reason.as_deref(), Some("Checked at gate"));
        assert_eq!(d.payload, raw_json("shipment-event-old-name"));
    }

    order_500_lines => "order-500-lines", |d| {
        assert_eq!(d.body.kind(), ObjectKind::Order);
        assert_eq!(d.body.event_name, "OrderResentByBuyer");
        assert_eq!(d.body.object_id(), "f00dcafe-0500-4a00-8b00-000000000500-PO500");
        assert_eq!(d.body.message_id(), Some("05000500-0500-4500-8500-050005000500"));
        assert_eq!(d.body.version(), Some(12));
        let ids = d.body.line_ids();
        assert_eq!(ids.len(), 500);
        assert_eq!(ids[0], "f00dcafe-0500-4a00-8b00-000000000500-PO500-0001");
        assert_eq!(ids[499], "f00dcafe-0500-4a00-8b00-000000000500-PO500-0500");
        // Line i has i % 3 + 1 deliveries of quantity (i % 97 + 1).(0|5|25|125), gross price (10 + i % 90).(i % 100).
        let lines = order(&d).lines.as_ref().unwrap();
        assert_eq!(lines[2].delivery_schedule.as_ref().unwrap().len(), 3);
        assert_eq!(text_at(&d, "/orderEvent/lines/3/deliverySchedule/0/quantity"), "4.125");
        assert_eq!(text_at(&d, "/orderEvent/lines/4/deliverySchedule/0/quantity"), "5.0");
        assert_eq!(text_at(&d, "/orderEvent/lines/498/prices/grossPrice/priceInTransactionCurrency/value"), "58.98");
        assert_eq!(lines[7].buyer_line.as_ref().unwrap().description.as_deref(), Some("Part 7 <0> & co"));
        assert_eq!(lines[10].indicators.as_ref().unwrap().delivery_overdue, Some(true));
        assert_eq!(d.payload, raw_json("order-500-lines"));
    }
}

/// Reading tXML is linear in the body size. It once computed a line/column for every element,
/// which made the 1.3 MB 500-line order take minutes in a debug build. Checked by growth, not
/// by a time limit: the order cut to 8 of its lines and to 256 (its head and tail kept) are
/// decoded in the same run, and 32 times the lines may take at most
/// [`LINEAR_GROWTH_BOUND`] times as long (quadratic work would take about a thousand).
#[test]
fn large_txml_decodes_in_linear_time() {
    let body = String::from_utf8(read("webhook/order-500-lines.xml")).unwrap();
    let decoded = decode_webhook(body.as_bytes(), Some("application/xml")).unwrap();
    assert_eq!(decoded.body.line_ids().len(), 500);
    // The order's lines are whole elements of their own, one after the other.
    let first = body.find("\n    <line>\n").unwrap() + 1;
    let end = body.rfind("\n    </line>\n").unwrap() + "\n    </line>\n".len();
    let lines: Vec<&str> = body[first..end]
        .split_inclusive("\n    </line>\n")
        .collect();
    assert_eq!(lines.len(), 500);
    let with_lines =
        |n: usize| format!("{}{}{}", &body[..first], lines[..n].concat(), &body[end..]);
    let growth = growth_on_32_times_the_body(with_lines, 8, |body| {
        let decoded = decode_webhook(body.as_bytes(), Some("application/xml")).unwrap();
        assert!(matches!(decoded.body.line_ids().len(), 8 | 256));
    });
    assert!(
        growth < LINEAR_GROWTH_BOUND,
        "32 times the lines took {growth:.1} times as long"
    );
}

/// Every file in `tests/fixtures/webhook` belongs to a JSON/tXML pair, and every pair has a test.
#[test]
fn every_webhook_fixture_is_a_pair_with_a_test() {
    let mut json = BTreeSet::new();
    let mut xml = BTreeSet::new();
    for entry in std::fs::read_dir(fixtures().join("webhook")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => json.insert(stem),
            Some("xml") => xml.insert(stem),
            other => panic!("unexpected file {} ({other:?})", path.display()),
        };
    }
    assert_eq!(
        json, xml,
        "every JSON fixture needs a tXML twin and the other way round"
    );
    let tested: BTreeSet<String> = PAIRS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(json, tested, "every pair needs its test in fixtures.rs");
}

// ---- API fixtures: fetched objects and poll pages (JSON only; Tradecloud polls in JSON). ----

#[test]
fn fetched_order_decodes_with_id_and_typed_numbers() {
    let (order, payload) = decode_order(&read("api/order-fetched.json")).unwrap();
    assert_eq!(
        order.id.as_deref(),
        Some("cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189")
    );
    assert!(order.order_id.is_none());
    assert_eq!(
        order.object_id(),
        Some("cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189")
    );
    assert_eq!(order.version, Some(6));
    let lines = order.lines.as_ref().unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]
            .status
            .as_ref()
            .unwrap()
            .logistics_status
            .as_deref(),
        Some("Shipped")
    );
    // The quoted quantity and boolean of line 2 are typed in the payload.
    assert_eq!(
        payload["lines"][1]["deliverySchedule"][0]["quantity"],
        serde_json::json!(16)
    );
    assert_eq!(
        payload["lines"][1]["indicators"]["deliveryOverdue"],
        Value::Bool(false)
    );
    assert_eq!(
        payload["lines"][0]["prices"]["netPrice"]["priceInTransactionCurrency"]["value"]
            .to_string(),
        "12.50"
    );
    // Unmodelled fields are kept.
    assert_eq!(
        payload["eventDates"]["issuedAt"],
        "2026-11-23T09:00:01.123Z"
    );
}

#[test]
fn fetched_shipment_decodes() {
    let (shipment, payload) = decode_shipment(&read("api/shipment-fetched.json")).unwrap();
    assert_eq!(
        shipment.id.as_deref(),
        Some("3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a")
    );
    assert_eq!(shipment.last_updated_at(), Some("2026-11-24T09:00:00.000Z"));
    assert_eq!(shipment.all_lines().count(), 2);
    assert_eq!(
        payload["lines"][0]["supplierLine"]["backorderQuantity"],
        serde_json::json!(4)
    );
    let backorder = shipment.lines.as_ref().unwrap()[0]
        .supplier_line
        .as_ref()
        .unwrap()
        .backorder_quantity;
    assert_eq!(backorder.map(|d| d.to_string()).as_deref(), Some("4"));
}

#[test]
fn order_poll_page_decodes_and_each_item_is_an_order() {
    let page = decode_poll_response(&read("api/order-poll-page.json")).unwrap();
    assert_eq!(page.total, Some(2));
    assert_eq!(page.data.len(), 2);
    assert_eq!(
        page.next_cursor().as_deref(),
        Some("2026-11-23T14:20:00.000Z")
    );
    let orders: Vec<_> = page
        .data
        .into_iter()
        .map(|item| order_from_value(item).unwrap())
        .collect();
    assert_eq!(
        orders[0].0.id.as_deref(),
        Some("5e1f0a2b-3c4d-4e5f-8a9b-7c6d5e4f3a2b-PO3001")
    );
    // `"version": "3"` is read as 3 and typed in the payload.
    assert_eq!(orders[1].0.version, Some(3));
    assert_eq!(orders[1].1["version"], serde_json::json!(3));
    let including = orders[1].0.lines.as_ref().unwrap()[0]
        .delivery_schedule_including_requests
        .as_ref()
        .unwrap();
    assert_eq!(including.len(), 2);
}

#[test]
fn old_style_poll_page_with_orders_decodes() {
    let page = decode_poll_response(&read("api/order-poll-page-old.json")).unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(page.data.len(), 1);
    assert!(page.last_updated_at.is_none());
    // Without a response-level cursor, the last item's lastUpdatedAt is the next cursor.
    assert_eq!(
        page.next_cursor().as_deref(),
        Some("2026-11-22T16:45:10.001Z")
    );
    let (order, _) = order_from_value(page.data[0].clone()).unwrap();
    let split = order.lines.as_ref().unwrap()[1]
        .buyer_line
        .as_ref()
        .unwrap();
    assert_eq!(split.position.as_deref(), Some(""));
    assert_eq!(split.original_position.as_deref(), Some("0020"));
}

#[test]
fn shipment_poll_page_decodes_and_each_item_is_a_shipment() {
    let page = decode_poll_response(&read("api/shipment-poll-page.json")).unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(
        page.next_cursor().as_deref(),
        Some("2026-11-23T17:10:00.000Z")
    );
    let (shipment, payload) = shipment_from_value(page.data[0].clone()).unwrap();
    assert_eq!(
        shipment.id.as_deref(),
        Some("6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d")
    );
    assert_eq!(
        payload["lines"][0]["supplierLine"]["despatchQuantity"].to_string(),
        "12.50"
    );
}

/// Every file in `tests/fixtures/api` is covered by a test above.
#[test]
fn every_api_fixture_is_tested() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures().join("api"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "order-fetched.json",
            "order-poll-page-old.json",
            "order-poll-page.json",
            "shipment-fetched.json",
            "shipment-poll-page.json",
        ]
    );
}
