//! Writes the 500-line order fixture pair, `tests/fixtures/webhook/order-500-lines.{json,xml}`.
//!
//! 500 lines is Tradecloud's maximum per order (docs/tradecloud.md §1). The JSON is built here;
//! the tXML twin is written with `tradecloud_model::txml::to_txml`, so unlike every other tXML
//! fixture it is *not* independent of the model's writer: it tests the reader against the
//! writer at full size (and feeds the benchmark), while the hand-written fixtures test the
//! reader against tXML written by a person.
//!
//! Deterministic: running it again gives the same files.
//!
//! ```text
//! cargo run -p tradecloud-model --example make_large_fixture
//! ```

use std::path::Path;

use serde_json::{Value, json};

const LINES: usize = 500;
const ORDER_ID: &str = "f00dcafe-0500-4a00-8b00-000000000500-PO500";

fn price(value: &str) -> Value {
    let v: Value = serde_json::from_str(value).expect("a JSON number");
    json!({
        "priceInTransactionCurrency": { "value": v, "currencyIso": "EUR" },
        "priceInBaseCurrency": { "value": v, "currencyIso": "EUR" }
    })
}

fn number(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON number")
}

fn line(i: usize) -> Value {
    let position = format!("{:04}", i + 1);
    // Quantities and prices with varied exact digits: 1.5, 10.25, 100.125, …
    let quantity = number(&format!(
        "{}.{}",
        i % 97 + 1,
        ["0", "5", "25", "125"][i % 4]
    ));
    let gross = format!("{}.{:02}", 10 + i % 90, i % 100);
    let deliveries: Vec<Value> = (0..(i % 3 + 1))
        .map(|d| {
            json!({
                "position": format!("{:04}", d + 1),
                "date": format!("2027-{:02}-{:02}", d % 12 + 1, i % 28 + 1),
                "quantity": quantity,
                "status": "Open"
            })
        })
        .collect();
    json!({
        "id": format!("{ORDER_ID}-{position}"),
        "lineType": "Item",
        "buyerLine": {
            "position": position,
            "description": format!("Part {i} <{}> & co", i % 7),
            "item": {
                "number": format!("ITEM-{:05}", i * 7 + 3),
                "revision": "A",
                "name": format!("Component ø{} mm", i % 50 + 10),
                "purchaseUnitOfMeasureIso": "PCE",
                "supplierItemNumber": format!("S-{:05}", i * 11 + 1)
            },
            "notes": [format!("Note for line {position}")],
            "properties": [{ "key": "drawing", "value": format!("DRW-{i}") }]
        },
        "deliverySchedule": deliveries,
        "deliveryScheduleIncludingRequests": deliveries,
        "prices": {
            "grossPrice": price(&gross),
            "discountPercentage": number("0"),
            "netPrice": price(&gross),
            "priceUnitOfMeasureIso": "PCE",
            "priceUnitQuantity": 1
        },
        "indicators": { "deliveryOverdue": i.is_multiple_of(10) },
        "status": { "processStatus": "Issued", "logisticsStatus": "Open" },
        "lastUpdatedAt": "2026-11-23T18:00:00.000Z"
    })
}

fn main() {
    let lines: Vec<Value> = (0..LINES).map(line).collect();
    let body = json!({
        "eventName": "OrderResentByBuyer",
        "orderEvent": {
            "orderId": ORDER_ID,
            "buyerOrder": {
                "companyId": "deea1b30-64b6-4dbf-ad74-51895c4a7695",
                "purchaseOrderNumber": "PO500",
                "supplierAccountNumber": "540830",
                "buyerParty": {
                    "id": "8712345000004",
                    "idScheme": "GLN",
                    "names": ["Blue Corp.", "Ocean District"],
                    "addressLines": ["Main street 1", "Building 6"],
                    "city": "Delft",
                    "countryCodeIso2": "NL"
                },
                "orderType": "Purchase"
            },
            "supplierOrder": { "companyId": "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b" },
            "lines": lines,
            "status": { "processStatus": "Issued", "logisticsStatus": "Open" },
            "version": 12,
            "lastUpdatedAt": "2026-11-23T18:00:00.000Z"
        },
        "meta": {
            "messageId": "05000500-0500-4500-8500-050005000500",
            "createdDateTime": "2026-11-23T18:00:01.000Z",
            "source": { "traceId": "05000500-0500-4500-8500-0500050005ff" }
        }
    });

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/webhook");
    let json_text = serde_json::to_string_pretty(&body).expect("serializable") + "\n";
    let xml_text = tradecloud_model::txml::to_txml(&body).expect("writable as tXML");
    for (name, text) in [
        ("order-500-lines.json", json_text),
        ("order-500-lines.xml", xml_text),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("wrote {}", path.display());
    }
}
