//! The shape of Tradecloud's messages, as one table that drives the tXML reader and writer and
//! the normalisation of JSON bodies.
//!
//! tXML cannot say on its own whether `<name>` is one value or one element of a list, nor
//! whether `<quantity>10</quantity>` is a number: this table says so, so that a tXML body
//! decodes to exactly the JSON that the same message in JSON gives. Fields not listed here
//! still pass through (forward compatibility): in tXML, repeated siblings become an array and
//! leaves stay strings.
//!
//! List element names come from Tradecloud's tXML examples (`lines` → `<line>`,
//! `deliverySchedule` → `<deliveryScheduleLine>`, …). Where Tradecloud has not published the
//! name (for example `deliveryScheduleIncludingRequests`) we use the field name plus `Line`
//! for schedule lists and the singular otherwise, and the reader also accepts the plural
//! field name repeated.

/// The type of a value.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A string (ids, codes, dates, free text).
    Str,
    /// A decimal or integer number.
    Num,
    /// A boolean.
    Bool,
    /// An object with these known fields.
    Obj(&'static [Field]),
    /// A list whose tXML elements are called `item`.
    List {
        /// The tXML element name of one item.
        item: &'static str,
        /// The shape of one item.
        of: &'static Shape,
    },
}

/// A named field of an object.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The JSON name (camelCase), also the tXML element name of a non-list field.
    pub name: &'static str,
    /// Its shape.
    pub shape: Shape,
}

impl Shape {
    /// The known fields, for an object shape.
    pub fn fields(&self) -> &'static [Field] {
        match self {
            Shape::Obj(fields) => fields,
            _ => &[],
        }
    }
}

/// Looks a field up by JSON name.
pub fn field(fields: &'static [Field], name: &str) -> Option<&'static Field> {
    fields.iter().find(|f| same_name(f.name, name))
}

/// Name equality that rules most candidates out by length and first byte, inline: every key
/// of a body is looked up in its object's table, and a `memcmp` call per same-length candidate
/// showed in the decode's profile.
#[inline]
fn same_name(known: &str, name: &str) -> bool {
    known.len() == name.len()
        && known.as_bytes().first() == name.as_bytes().first()
        && known == name
}

/// Looks a field up by tXML element name: its own name, or its list item name.
pub fn field_for_element(fields: &'static [Field], element: &str) -> Option<&'static Field> {
    // One pass: no two fields of an object claim the same element name (a test checks), so
    // the first field whose name or item name matches is the one.
    fields.iter().find(|f| {
        same_name(f.name, element)
            || matches!(f.shape, Shape::List { item, .. } if same_name(item, element))
    })
}

const fn f(name: &'static str, shape: Shape) -> Field {
    Field { name, shape }
}
const fn list(item: &'static str, of: &'static Shape) -> Shape {
    Shape::List { item, of }
}

use std::collections::HashMap;
use std::sync::OnceLock;

use Shape::{Bool, Num, Obj, Str};

const STR: Shape = Str;

/// Message meta (§4.6), also `meta.lastUpdatedAt` on shipments and their lines and documents.
pub const META: &[Field] = &[
    f("messageId", Str),
    f("createdDateTime", Str),
    f("lastUpdatedAt", Str),
    f(
        "source",
        Obj(&[
            f("traceId", Str),
            f("userId", Str),
            f("companyId", Str),
            f("origin", Str),
        ]),
    ),
    f(
        "supplierErpMeta",
        Obj(&[f("despatchAdviceErpIssueDateTime", Str)]),
    ),
];

/// A party (buyer, accounting, supplier).
pub const PARTY: &[Field] = &[
    f("id", Str),
    f("idScheme", Str),
    f("names", list("name", &STR)),
    f("addressLines", list("addressLine", &STR)),
    f("postalCode", Str),
    f("city", Str),
    f("countryCodeIso2", Str),
    f("countryName", Str),
];

/// An order's destination.
pub const DESTINATION: &[Field] = &[
    f("code", Str),
    f("names", list("name", &STR)),
    f("addressLines", list("addressLine", &STR)),
    f("postalCode", Str),
    f("city", Str),
    f("countryCodeIso2", Str),
    f("countryName", Str),
    f("locationType", Str),
];

/// A contact person.
pub const CONTACT: &[Field] = &[
    f("userId", Str),
    f("email", Str),
    f("firstName", Str),
    f("lastName", Str),
    f("position", Str),
    f("phoneNumber", Str),
];

/// A custom key/value property.
pub const PROPERTY: &[Field] = &[f("key", Str), f("value", Str)];

/// A document reference (the file itself is in Tradecloud's object storage or at `url`).
pub const DOCUMENT: &[Field] = &[
    f("code", Str),
    f("revision", Str),
    f("name", Str),
    f("description", Str),
    f("type", Str),
    f("objectId", Str),
    f("url", Str),
    f("meta", Obj(META)),
];

/// Order and purchase-order terms.
pub const TERMS: &[Field] = &[
    f("incotermsCode", Str),
    f("incoterms", Str),
    f("paymentTermsCode", Str),
    f("paymentTerms", Str),
];

/// Indicators on orders and lines.
pub const INDICATORS: &[Field] = &[
    f("deliveryOverdue", Bool),
    f("shipped", Bool),
    f("delivered", Bool),
    f("completed", Bool),
    f("cancelled", Bool),
    f("cancelLineWhenMissing", Bool),
    f("autoConfirm", Bool),
    f("noDeliveryExpected", Bool),
    // In Tradecloud's order and order response examples (tradecloud-sdk-dotnet api-connector
    // SendOrder, SendOrderResponse).
    f("confirmed", Bool),
    f("proposeWhenAccepted", Bool),
    f("accepted", Bool),
    f("rejected", Bool),
];

/// Process, logistics and in-progress status.
pub const STATUS: &[Field] = &[
    f("processStatus", Str),
    f("inProgressStatus", Str),
    f("logisticsStatus", Str),
    f("processStatusReason", Str),
];

const PROPERTY_SHAPE: Shape = Obj(PROPERTY);
const DOCUMENT_SHAPE: Shape = Obj(DOCUMENT);
const CONTACT_SHAPE: Shape = Obj(CONTACT);

/// An amount in one currency.
pub const MONEY: &[Field] = &[f("value", Num), f("currencyIso", Str)];

/// A price in transaction and base currency.
pub const PRICE: &[Field] = &[
    f("priceInTransactionCurrency", Obj(MONEY)),
    f("priceInBaseCurrency", Obj(MONEY)),
];

/// A line's prices.
pub const PRICES: &[Field] = &[
    f("grossPrice", Obj(PRICE)),
    f("discountPercentage", Num),
    f("netPrice", Obj(PRICE)),
    f("priceUnitOfMeasureIso", Str),
    f("priceUnitQuantity", Num),
];

/// One delivery of a delivery schedule.
pub const DELIVERY_SCHEDULE_LINE: &[Field] = &[
    f("position", Str),
    f("date", Str),
    f("quantity", Num),
    f("status", Str),
    f("etd", Str),
    f("eta", Str),
    f("transportMode", Str),
];

/// A charge line (deprecated by Tradecloud, still sent).
pub const CHARGE_LINE: &[Field] = &[
    f("position", Str),
    f("chargeTypeCode", Str),
    f("chargeDescription", Str),
    f("quantity", Num),
    f("price", Obj(PRICE)),
    f("priceUnitOfMeasureIso", Str),
];

const DELIVERY_SCHEDULE_LINE_SHAPE: Shape = Obj(DELIVERY_SCHEDULE_LINE);
const CHARGE_LINE_SHAPE: Shape = Obj(CHARGE_LINE);

/// A proposal or reopen request on a line.
pub const REQUEST: &[Field] = &[
    f(
        "deliverySchedule",
        list("deliveryScheduleLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f("prices", Obj(PRICES)),
    f("chargeLines", list("chargeLine", &CHARGE_LINE_SHAPE)),
    f("reason", Str),
    f("status", Str),
];

/// The buyer's order header.
pub const BUYER_ORDER: &[Field] = &[
    f("companyId", Str),
    f("purchaseOrderNumber", Str),
    f("supplierAccountNumber", Str),
    f("description", Str),
    f("orderType", Str),
    f("buyerParty", Obj(PARTY)),
    f("buyerAccountingParty", Obj(PARTY)),
    f("supplierParty", Obj(PARTY)),
    f("destination", Obj(DESTINATION)),
    f("contact", Obj(CONTACT)),
    f("supplierContact", Obj(CONTACT)),
    f("terms", Obj(TERMS)),
    f("indicators", Obj(INDICATORS)),
    f("properties", list("property", &PROPERTY_SHAPE)),
    f("notes", list("note", &STR)),
    f("labels", list("label", &STR)),
    f("documents", list("document", &DOCUMENT_SHAPE)),
    f("erpIssueDateTime", Str),
    f("erpIssuedBy", Obj(CONTACT)),
];

/// The supplier's order header.
pub const SUPPLIER_ORDER: &[Field] = &[
    f("companyId", Str),
    f("purchaseOrderNumber", Str),
    f("indicators", Obj(INDICATORS)),
    f("buyerAccountNumber", Str),
    f("description", Str),
    f("contact", Obj(CONTACT)),
    f("properties", list("property", &PROPERTY_SHAPE)),
    f("notes", list("note", &STR)),
    f("labels", list("label", &STR)),
    f("documents", list("document", &DOCUMENT_SHAPE)),
];

/// A measured dimension of an item (`item.dimensions[]`, tXML `<dimension>`).
pub const DIMENSION: &[Field] = &[
    f("attribute", Str),
    f("measure", Num),
    f("unitOfMeasureUnece", Str),
];

const DIMENSION_SHAPE: Shape = Obj(DIMENSION);

/// The buyer's part of a line.
pub const BUYER_LINE: &[Field] = &[
    f("position", Str),
    f("originalPosition", Str),
    f("description", Str),
    f(
        "item",
        Obj(&[
            f("number", Str),
            f("revision", Str),
            f("name", Str),
            f("description", Str),
            f("purchaseUnitOfMeasureIso", Str),
            f("supplierItemNumber", Str),
            f("dimensions", list("dimension", &DIMENSION_SHAPE)),
        ]),
    ),
    f("requests", Obj(&[f("reopenRequest", Obj(REQUEST))])),
    // The buyer's own order fields, echoed (Tradecloud: "`buyerLine` is an echo of your order
    // fields"; tradecloud-sdk-dotnet api-connector/SendOrder and SendOrderSingleDelivery).
    f(
        "deliverySchedule",
        list("deliveryScheduleLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f(
        "deliveryHistory",
        list("deliveryHistoryLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f("scheduledDelivery", Obj(SCHEDULED_DELIVERY)),
    f("actualDelivery", Obj(SCHEDULED_DELIVERY)),
    f("prices", Obj(PRICES)),
    f("chargeLines", list("chargeLine", &CHARGE_LINE_SHAPE)),
    f("itemDetails", Obj(ITEM_DETAILS)),
    f("reason", Str),
    f(
        "terms",
        Obj(&[f("contractNumber", Str), f("contractPosition", Str)]),
    ),
    f("projectNumber", Str),
    f("productionNumber", Str),
    f("salesOrderNumber", Str),
    f("indicators", Obj(INDICATORS)),
    f("properties", list("property", &PROPERTY_SHAPE)),
    f("notes", list("note", &STR)),
    f("labels", list("label", &STR)),
    f("documents", list("document", &DOCUMENT_SHAPE)),
];

/// The supplier's part of a line.
pub const SUPPLIER_LINE: &[Field] = &[
    f("salesOrderNumber", Str),
    f("salesOrderPosition", Str),
    f("salesOrderLinePosition", Str),
    f("description", Str),
    f(
        "requests",
        Obj(&[
            f("proposal", Obj(REQUEST)),
            f("reopenRequest", Obj(REQUEST)),
        ]),
    ),
    f("properties", list("property", &PROPERTY_SHAPE)),
    f("notes", list("note", &STR)),
    f("labels", list("label", &STR)),
    f("documents", list("document", &DOCUMENT_SHAPE)),
    // The supplier's own order response fields, echoed (tradecloud-sdk-dotnet
    // api-connector/SendOrderResponse).
    f(
        "deliverySchedule",
        list("deliveryScheduleLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f("scheduledDelivery", Obj(SCHEDULED_DELIVERY)),
    f("prices", Obj(PRICES)),
    f("chargeLines", list("chargeLine", &CHARGE_LINE_SHAPE)),
    f("itemDetails", Obj(ITEM_DETAILS)),
    f("indicators", Obj(INDICATORS)),
    f("reason", Str),
];

/// Item details (`itemDetails` as the buyer or supplier sends them, `mergedItemDetails` as
/// Tradecloud merges them).
pub const ITEM_DETAILS: &[Field] = &[
    f("countryOfOriginCodeIso2", Str),
    f("combinedNomenclatureCode", Str),
    f("netWeight", Num),
    f("netWeightUnitOfMeasureIso", Str),
    f("dangerousGoodsCodeUnece", Str),
    f("serialNumber", Str),
    f("batchNumber", Str),
];

/// A single-delivery line's one delivery.
pub const SCHEDULED_DELIVERY: &[Field] = &[
    f("date", Str),
    f("quantity", Num),
    f("status", Str),
    f("etd", Str),
    f("eta", Str),
];

/// An order line, in either order form.
pub const ORDER_LINE: &[Field] = &[
    f("id", Str),
    f("lineType", Str),
    f("chargeReasonCode", Str),
    f("buyerLine", Obj(BUYER_LINE)),
    f("supplierLine", Obj(SUPPLIER_LINE)),
    f(
        "confirmedLine",
        Obj(&[
            f(
                "deliverySchedule",
                list("deliveryScheduleLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
            ),
            f("prices", Obj(PRICES)),
            f("chargeLines", list("chargeLine", &CHARGE_LINE_SHAPE)),
        ]),
    ),
    f(
        "deliverySchedule",
        list("deliveryScheduleLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f(
        "deliveryScheduleIncludingRequests",
        list(
            "deliveryScheduleIncludingRequestsLine",
            &DELIVERY_SCHEDULE_LINE_SHAPE,
        ),
    ),
    // Deliveries made so far (`OrderLinesDeliveryHistory…` events); tXML `<deliveryHistoryLine>`.
    f(
        "deliveryHistory",
        list("deliveryHistoryLine", &DELIVERY_SCHEDULE_LINE_SHAPE),
    ),
    f("prices", Obj(PRICES)),
    f("pricesIncludingRequests", Obj(PRICES)),
    f(
        "statusLine",
        Obj(&[
            f("scheduledDelivery", Obj(SCHEDULED_DELIVERY)),
            f("scheduledDeliveryInclRequests", Obj(SCHEDULED_DELIVERY)),
            f("prices", Obj(PRICES)),
            f("pricesInclRequests", Obj(PRICES)),
        ]),
    ),
    f("indicators", Obj(INDICATORS)),
    f("status", Obj(STATUS)),
    f("mergedItemDetails", Obj(ITEM_DETAILS)),
    f("scheduledDelivery", Obj(SCHEDULED_DELIVERY)),
    f("actualDelivery", Obj(SCHEDULED_DELIVERY)),
    f("reason", Str),
    f("portalUrl", Str),
    f("lastUpdatedAt", Str),
];

const ORDER_LINE_SHAPE: Shape = Obj(ORDER_LINE);

/// An order: `orderEvent`, `singleDeliveryOrderEvent`, `orderDocumentsEvent` (with `orderId`),
/// or the polled/fetched order (with `id`).
pub const ORDER: &[Field] = &[
    f("id", Str),
    f("orderId", Str),
    f("legacyOrderId", Str),
    f("buyerOrder", Obj(BUYER_ORDER)),
    f("supplierOrder", Obj(SUPPLIER_ORDER)),
    f("lines", list("line", &ORDER_LINE_SHAPE)),
    f("indicators", Obj(INDICATORS)),
    f("status", Obj(STATUS)),
    f("version", Num),
    f("meta", Obj(META)),
    f("reason", Str),
    f("portalUrl", Str),
    f("lastUpdatedAt", Str),
];

/// A shipment location.
pub const SHIPMENT_LOCATION: &[Field] = &[
    f("locationType", Str),
    f("id", Str),
    f("idScheme", Str),
    f("names", list("name", &STR)),
    f("addressLines", list("addressLine", &STR)),
    f("postalCode", Str),
    f("city", Str),
    f("countryCodeIso", Str),
    f("countryCodeIso2", Str),
];

/// A shipment line.
pub const SHIPMENT_LINE: &[Field] = &[
    f("purchaseOrderNumber", Str),
    f("purchaseOrderLinePosition", Str),
    f("deliverySchedulePosition", Str),
    f(
        "item",
        Obj(&[
            f("buyerItemNumber", Str),
            f("buyerItemRevision", Str),
            f("buyerItemName", Str),
            f("supplierItemNumber", Str),
            f("supplierItemRevision", Str),
            f("supplierItemName", Str),
            f("purchaseUnitOfMeasureIso", Str),
        ]),
    ),
    f(
        "supplierLine",
        Obj(&[
            f("despatchAdviceNumber", Str),
            f("despatchAdviceLinePosition", Str),
            f("despatchQuantity", Num),
            f("backorderQuantity", Num),
        ]),
    ),
    // The despatch advice's own quantities, as the supplier sends them (tradecloud-sdk-dotnet
    // api-connector/SendDespatchAdvice).
    f("despatchQuantity", Num),
    f("backorderQuantity", Num),
    f("meta", Obj(META)),
];

const SHIPMENT_LINE_SHAPE: Shape = Obj(SHIPMENT_LINE);

/// A load carrier (container or package) and the lines in it.
pub const LOAD_CARRIER: &[Field] = &[
    f("containerNumber", Str),
    f("containerSizeAndType", Str),
    f("packageSSCC", Str),
    f("packageType", Str),
    f("lines", list("line", &SHIPMENT_LINE_SHAPE)),
];

const LOAD_CARRIER_SHAPE: Shape = Obj(LOAD_CARRIER);

/// A shipment destination stop.
pub const SHIPMENT_DESTINATION: &[Field] = &[
    f("location", Obj(SHIPMENT_LOCATION)),
    f("etaStartDate", Str),
    f("etaStartTime", Str),
    f("etaEndDate", Str),
    f("etaEndTime", Str),
    f("ataDate", Str),
    f("etdDate", Str),
    f("atdDate", Str),
];

const SHIPMENT_DESTINATION_SHAPE: Shape = Obj(SHIPMENT_DESTINATION);

/// A shipment (§4.5): webhook `shipment`, polled or fetched.
pub const SHIPMENT: &[Field] = &[
    f("id", Str),
    f(
        "identifiers",
        Obj(&[
            f("billOfLadingNumber", Str),
            f("imoNumber", Str),
            f("carrierShipmentNumber", Str),
            f("trackingNumber", Str),
        ]),
    ),
    f("transportMode", Str),
    f(
        "supplierShipment",
        Obj(&[
            f("companyId", Str),
            f("supplierParty", Obj(PARTY)),
            f("buyerAccountNumber", Str),
            f("shipmentNumber", Str),
            f("invoiceNumbers", list("invoiceNumber", &STR)),
            f("documents", list("document", &DOCUMENT_SHAPE)),
            f("contacts", list("contact", &CONTACT_SHAPE)),
        ]),
    ),
    f(
        "buyerShipment",
        Obj(&[
            f("companyId", Str),
            f("buyerParty", Obj(PARTY)),
            f("supplierAccountNumber", Str),
            f("documents", list("document", &DOCUMENT_SHAPE)),
            f("contacts", list("contact", &CONTACT_SHAPE)),
            f("purchaseOrderTerms", Obj(TERMS)),
        ]),
    ),
    f("loadCarriers", list("loadCarrier", &LOAD_CARRIER_SHAPE)),
    f("lines", list("line", &SHIPMENT_LINE_SHAPE)),
    f(
        "locations",
        Obj(&[
            f(
                "departure",
                Obj(&[
                    f("location", Obj(SHIPMENT_LOCATION)),
                    f("etdDate", Str),
                    f("atdDate", Str),
                ]),
            ),
            f(
                "destinations",
                list("destination", &SHIPMENT_DESTINATION_SHAPE),
            ),
        ]),
    ),
    f("status", Obj(STATUS)),
    f("version", Num),
    f("meta", Obj(META)),
    f("lastUpdatedAt", Str),
];

/// The webhook body: `eventName`, one event object, and `meta` at body level.
pub const WEBHOOK_BODY: &[Field] = &[
    f("eventName", Str),
    f("orderEvent", Obj(ORDER)),
    f("singleDeliveryOrderEvent", Obj(ORDER)),
    f("simpleOrderEvent", Obj(ORDER)),
    f("orderDocumentsEvent", Obj(ORDER)),
    f("shipment", Obj(SHIPMENT)),
    f("shipmentEvent", Obj(SHIPMENT)),
    f("meta", Obj(META)),
];

/// The root element of a tXML webhook body.
pub const WEBHOOK_ROOT: &str = "WebhookBody";

/// The shape of a whole webhook body.
pub const WEBHOOK_BODY_SHAPE: Shape = Obj(WEBHOOK_BODY);
/// The shape of an order (any form).
pub const ORDER_SHAPE: Shape = Obj(ORDER);
/// The shape of a shipment.
pub const SHIPMENT_SHAPE: Shape = Obj(SHIPMENT);

/// What a name means wherever it appears: the fallback for places the tables above do not
/// list, built once from the tables themselves.
struct Globals {
    /// JSON field name → its shape, where every place that names it agrees.
    by_name: HashMap<&'static str, Shape, Fnv>,
    /// tXML list element name → (JSON list name, item shape when every list agrees on it).
    by_element: HashMap<&'static str, (&'static str, Option<&'static Shape>), Fnv>,
}

/// FNV-1a: the tables are looked up for every field a decode meets outside the schema, with
/// short keys fixed at build time, where SipHash's cost shows and its DoS resistance buys
/// nothing (a body cannot add keys to these tables).
#[derive(Default, Clone, Copy)]
struct Fnv;

struct FnvHasher(u64);

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| {
        // `None` marks a name whose places disagree: no fallback for it.
        let mut by_name: HashMap<&'static str, Option<Shape>> = HashMap::new();
        let mut by_element: HashMap<&'static str, Option<(&'static str, Option<&'static Shape>)>> =
            HashMap::new();
        collect(WEBHOOK_BODY, &mut by_name, &mut by_element);
        let by_element = by_element
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            // `<name>` is a list item in a party and a plain field of an item or a document:
            // where the place is unknown, such an element cannot be told apart.
            .filter(|(k, _)| match by_name.get(k) {
                None => true,
                Some(shape) => matches!(shape, Some(Shape::List { .. })),
            })
            .collect();
        let by_name = by_name
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        Globals {
            by_name,
            by_element,
        }
    })
}

fn collect(
    fields: &'static [Field],
    by_name: &mut HashMap<&'static str, Option<Shape>>,
    by_element: &mut HashMap<&'static str, Option<(&'static str, Option<&'static Shape>)>>,
) {
    for fld in fields {
        by_name
            .entry(fld.name)
            .and_modify(|known| {
                if known.is_some_and(|k| !same(&k, &fld.shape)) {
                    *known = None;
                }
            })
            .or_insert(Some(fld.shape));
        let inner = match &fld.shape {
            Shape::List { item, of } => {
                by_element
                    .entry(item)
                    .and_modify(|known| match known {
                        Some((list, _)) if *list != fld.name => *known = None,
                        Some((_, shape)) if shape.is_some_and(|s| !same(s, of)) => {
                            *known = Some((fld.name, None))
                        }
                        _ => {}
                    })
                    .or_insert(Some((fld.name, Some(*of))));
                *of
            }
            other => other,
        };
        if let Shape::Obj(sub) = inner {
            collect(sub, by_name, by_element);
        }
    }
}

/// Structural equality (the same `const` table may live at several addresses).
fn same(a: &Shape, b: &Shape) -> bool {
    match (a, b) {
        (Shape::Str, Shape::Str) | (Shape::Num, Shape::Num) | (Shape::Bool, Shape::Bool) => true,
        (Shape::Obj(x), Shape::Obj(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p.name == q.name && same(&p.shape, &q.shape))
        }
        (Shape::List { item: i, of: x }, Shape::List { item: j, of: y }) => i == j && same(x, y),
        _ => false,
    }
}

/// The shape a field name has everywhere it is listed, when all those places agree: the
/// fallback for a field in a place the tables do not describe (a known number gets its type,
/// a known list its items' types, at any depth).
pub fn global_field(name: &str) -> Option<&'static Shape> {
    globals().by_name.get(name)
}

/// The JSON list a tXML element is an item of, wherever it appears (`deliveryScheduleLine` →
/// `deliverySchedule`, `chargeLine` → `chargeLines`, `line` → `lines`, …), with the items'
/// shape when all such lists agree on it. Names that are also plain fields (`name`) are left
/// out: outside a known place they cannot be told apart.
pub fn global_list_element(element: &str) -> Option<(&'static str, Option<&'static Shape>)> {
    globals().by_element.get(element).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_tables_know_unambiguous_names_only() {
        assert!(matches!(global_field("quantity"), Some(Shape::Num)));
        assert!(matches!(global_field("despatchQuantity"), Some(Shape::Num)));
        assert!(matches!(global_field("cancelled"), Some(Shape::Bool)));
        assert!(matches!(global_field("prices"), Some(Shape::Obj(_))));
        // A number in money, a string in a property; a string in a schedule, an object on a line.
        assert!(global_field("value").is_none());
        assert!(global_field("status").is_none());
        assert_eq!(
            global_list_element("deliveryScheduleLine").map(|(list, s)| (list, s.is_some())),
            Some(("deliverySchedule", true))
        );
        assert_eq!(
            global_list_element("chargeLine").map(|(l, _)| l),
            Some("chargeLines")
        );
        // Order lines and shipment lines differ: a list, items untyped.
        assert_eq!(
            global_list_element("line").map(|(l, s)| (l, s.is_some())),
            Some(("lines", false))
        );
        assert!(global_list_element("name").is_none());
        assert!(global_list_element("contact").is_none());
    }

    /// Two fields of one object must never claim the same tXML element name, or the reader
    /// could not tell them apart.
    #[test]
    fn element_names_are_unambiguous_in_every_object() {
        fn check(fields: &'static [Field], path: &str, seen_objects: &mut Vec<usize>) {
            let addr = fields.as_ptr() as usize;
            if seen_objects.contains(&addr) {
                return;
            }
            seen_objects.push(addr);
            let mut names: Vec<&str> = Vec::new();
            for fld in fields {
                let mut own = vec![fld.name];
                if let Shape::List { item, .. } = fld.shape {
                    own.push(item);
                }
                for n in own {
                    assert!(!names.contains(&n), "{path}: element <{n}> is ambiguous");
                    names.push(n);
                }
                let inner = match fld.shape {
                    Shape::List { of, .. } => *of,
                    other => other,
                };
                if let Shape::Obj(sub) = inner {
                    check(sub, &format!("{path}/{}", fld.name), seen_objects);
                }
            }
        }
        check(WEBHOOK_BODY, "", &mut Vec::new());
    }
}
