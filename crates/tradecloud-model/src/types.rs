//! The typed view of Tradecloud's messages (docs/tradecloud.md §4–§7).
//!
//! Every field is optional and unknown fields are ignored, because Tradecloud may add fields
//! and values at any time. The typed view is what the relay reads (ids, timestamps, line
//! statuses); what it forwards is the complete JSON payload, so nothing it does not model is
//! lost. Status values and event names are open strings for the same reason.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::num::{opt_bool, opt_decimal, opt_u64};

/// Message meta (§4.6); on shipments also `lastUpdatedAt`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Tradecloud's id of this message.
    pub message_id: Option<String>,
    /// When the message was created.
    pub created_date_time: Option<String>,
    /// Last change (shipments, shipment lines and documents).
    pub last_updated_at: Option<String>,
    /// Who started the flow this message belongs to.
    pub source: Option<MetaSource>,
    /// The supplier ERP's despatch advice meta (shipments).
    pub supplier_erp_meta: Option<SupplierErpMeta>,
}

/// `meta.source`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetaSource {
    /// Shared by all messages of one flow.
    pub trace_id: Option<String>,
    /// The user who triggered the first message of the flow.
    pub user_id: Option<String>,
    /// That user's company.
    pub company_id: Option<String>,
    /// Where the flow started.
    pub origin: Option<String>,
}

/// `meta.supplierErpMeta` on shipments.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierErpMeta {
    /// When the supplier's ERP issued the despatch advice.
    pub despatch_advice_erp_issue_date_time: Option<String>,
}

/// A party: buyer, accounting party, supplier.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    /// The party's identifier in `id_scheme`.
    pub id: Option<String>,
    /// The identifier scheme (GLN, KvK, …).
    pub id_scheme: Option<String>,
    /// Name lines.
    pub names: Option<Vec<String>>,
    /// Address lines.
    pub address_lines: Option<Vec<String>>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// ISO 3166 alpha-2 country code.
    pub country_code_iso2: Option<String>,
    /// Country name.
    pub country_name: Option<String>,
}

/// An order's destination.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The buyer's location code.
    pub code: Option<String>,
    /// Name lines.
    pub names: Option<Vec<String>>,
    /// Address lines.
    pub address_lines: Option<Vec<String>>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// ISO 3166 alpha-2 country code.
    pub country_code_iso2: Option<String>,
    /// Country name.
    pub country_name: Option<String>,
    /// Kind of location (warehouse, …).
    pub location_type: Option<String>,
}

/// A contact person.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Tradecloud user id.
    pub user_id: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Job title.
    pub position: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
}

/// A custom key/value property.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Property {
    /// Key.
    pub key: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// A document reference; the file is in Tradecloud's object storage (`object_id`) or at `url`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Document code.
    pub code: Option<String>,
    /// Revision.
    pub revision: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Type, e.g. `General`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Tradecloud object-storage id.
    pub object_id: Option<String>,
    /// External URL.
    pub url: Option<String>,
    /// Meta (`lastUpdatedAt` on shipment documents).
    pub meta: Option<Meta>,
}

/// Incoterms and payment terms.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terms {
    /// Incoterms code.
    pub incoterms_code: Option<String>,
    /// Incoterms place.
    pub incoterms: Option<String>,
    /// Payment terms code.
    pub payment_terms_code: Option<String>,
    /// Payment terms text.
    pub payment_terms: Option<String>,
}

/// Indicators on orders and lines.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicators {
    /// At least one delivery is overdue.
    #[serde(default, with = "opt_bool")]
    pub delivery_overdue: Option<bool>,
    /// Shipped.
    #[serde(default, with = "opt_bool")]
    pub shipped: Option<bool>,
    /// Delivered.
    #[serde(default, with = "opt_bool")]
    pub delivered: Option<bool>,
    /// Completed.
    #[serde(default, with = "opt_bool")]
    pub completed: Option<bool>,
    /// Cancelled.
    #[serde(default, with = "opt_bool")]
    pub cancelled: Option<bool>,
    /// Lines missing from a re-sent order are cancelled.
    #[serde(default, with = "opt_bool")]
    pub cancel_line_when_missing: Option<bool>,
    /// The buyer confirms supplier changes automatically.
    #[serde(default, with = "opt_bool")]
    pub auto_confirm: Option<bool>,
    /// No delivery is expected for this line.
    #[serde(default, with = "opt_bool")]
    pub no_delivery_expected: Option<bool>,
    /// Confirmed.
    #[serde(default, with = "opt_bool")]
    pub confirmed: Option<bool>,
    /// The buyer proposes when the supplier accepts.
    #[serde(default, with = "opt_bool")]
    pub propose_when_accepted: Option<bool>,
    /// Accepted by the supplier.
    #[serde(default, with = "opt_bool")]
    pub accepted: Option<bool>,
    /// Rejected by the supplier.
    #[serde(default, with = "opt_bool")]
    pub rejected: Option<bool>,
}

/// Status of an order, a line or a shipment (§7). Values are open strings.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `Issued`, `InProgress`, `Confirmed`, `Rejected`, `Completed`, `Cancelled`, … (shipments:
    /// `Issued`, `Approved`, `Rejected`, …).
    pub process_status: Option<String>,
    /// Which request is open, when `process_status` is `InProgress`.
    pub in_progress_status: Option<String>,
    /// `Open`, `Produced`, `ReadyToShip`, `Shipped`, `Delivered`, `Cancelled`, ….
    pub logistics_status: Option<String>,
    /// Why (shipments).
    pub process_status_reason: Option<String>,
}

/// An amount in one currency.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// The amount.
    #[serde(default, with = "opt_decimal")]
    pub value: Option<Decimal>,
    /// ISO 4217 currency code.
    pub currency_iso: Option<String>,
}

/// A price in transaction and base currency.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// In the order's currency.
    pub price_in_transaction_currency: Option<Money>,
    /// In the company's base currency.
    pub price_in_base_currency: Option<Money>,
}

/// A line's prices.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    /// Gross price.
    pub gross_price: Option<Price>,
    /// Discount in percent.
    #[serde(default, with = "opt_decimal")]
    pub discount_percentage: Option<Decimal>,
    /// Net price.
    pub net_price: Option<Price>,
    /// Unit the price is per.
    pub price_unit_of_measure_iso: Option<String>,
    /// Quantity the price is per.
    #[serde(default, with = "opt_decimal")]
    pub price_unit_quantity: Option<Decimal>,
}

/// One delivery of a delivery schedule.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryScheduleLine {
    /// Position within the schedule.
    pub position: Option<String>,
    /// Delivery date, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// Quantity.
    #[serde(default, with = "opt_decimal")]
    pub quantity: Option<Decimal>,
    /// Logistics status of this delivery.
    pub status: Option<String>,
    /// Estimated time of departure.
    pub etd: Option<String>,
    /// Estimated time of arrival.
    pub eta: Option<String>,
    /// Transport mode.
    pub transport_mode: Option<String>,
}

/// A charge line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeLine {
    /// Position.
    pub position: Option<String>,
    /// Charge type code.
    pub charge_type_code: Option<String>,
    /// Description.
    pub charge_description: Option<String>,
    /// Quantity.
    #[serde(default, with = "opt_decimal")]
    pub quantity: Option<Decimal>,
    /// Price.
    pub price: Option<Price>,
    /// Unit the price is per.
    pub price_unit_of_measure_iso: Option<String>,
}

/// A proposal or reopen request on a line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineRequest {
    /// Requested delivery schedule.
    pub delivery_schedule: Option<Vec<DeliveryScheduleLine>>,
    /// Requested prices.
    pub prices: Option<Prices>,
    /// Requested charge lines.
    pub charge_lines: Option<Vec<ChargeLine>>,
    /// Why.
    pub reason: Option<String>,
    /// `Open`, `Approved`, `Rejected`, `Closed`, ….
    pub status: Option<String>,
}

/// The item a line is about (buyer side).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Buyer's item number.
    pub number: Option<String>,
    /// Revision.
    pub revision: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Unit of measure.
    pub purchase_unit_of_measure_iso: Option<String>,
    /// Supplier's item number.
    pub supplier_item_number: Option<String>,
    /// Measured dimensions.
    pub dimensions: Option<Vec<Dimension>>,
}

/// A measured dimension of an item.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dimension {
    /// What is measured, e.g. `mass`.
    pub attribute: Option<String>,
    /// The measure.
    #[serde(default, with = "opt_decimal")]
    pub measure: Option<Decimal>,
    /// UNECE unit code, e.g. `KGM`.
    pub unit_of_measure_unece: Option<String>,
}

/// `buyerLine.requests`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerLineRequests {
    /// The buyer's reopen request.
    pub reopen_request: Option<LineRequest>,
}

/// `supplierLine.requests`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierLineRequests {
    /// The supplier's proposal.
    pub proposal: Option<LineRequest>,
    /// The supplier's reopen request.
    pub reopen_request: Option<LineRequest>,
}

/// `buyerLine.terms`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineTerms {
    /// Contract number.
    pub contract_number: Option<String>,
    /// Contract position.
    pub contract_position: Option<String>,
}

/// The buyer's part of an order line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerLine {
    /// The buyer's line key; empty for a newly split line.
    pub position: Option<String>,
    /// The line a split line was split from.
    pub original_position: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Item.
    pub item: Option<Item>,
    /// Open requests by the buyer.
    pub requests: Option<BuyerLineRequests>,
    /// Contract terms.
    pub terms: Option<LineTerms>,
    /// Project number.
    pub project_number: Option<String>,
    /// Production number.
    pub production_number: Option<String>,
    /// Sales order number.
    pub sales_order_number: Option<String>,
    /// Indicators.
    pub indicators: Option<Indicators>,
    /// Properties.
    pub properties: Option<Vec<Property>>,
    /// Notes.
    pub notes: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
    /// Delivery schedule (the echo of the side's own order or response).
    pub delivery_schedule: Option<Vec<DeliveryScheduleLine>>,
    /// One delivery (single-delivery form).
    pub scheduled_delivery: Option<ScheduledDelivery>,
    /// Prices.
    pub prices: Option<Prices>,
    /// Charge lines.
    pub charge_lines: Option<Vec<ChargeLine>>,
    /// Item details.
    pub item_details: Option<MergedItemDetails>,
    /// Why.
    pub reason: Option<String>,
    /// Deliveries made so far.
    pub delivery_history: Option<Vec<DeliveryScheduleLine>>,
    /// The delivery made (single-delivery form).
    pub actual_delivery: Option<ScheduledDelivery>,
}

/// The supplier's part of an order line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierLine {
    /// Sales order number.
    pub sales_order_number: Option<String>,
    /// Sales order position (docs' name).
    pub sales_order_position: Option<String>,
    /// Sales order position (name in Tradecloud's connector and the supplier's send format).
    pub sales_order_line_position: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Open requests by the supplier.
    pub requests: Option<SupplierLineRequests>,
    /// Properties.
    pub properties: Option<Vec<Property>>,
    /// Notes.
    pub notes: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
    /// Delivery schedule (the echo of the side's own order or response).
    pub delivery_schedule: Option<Vec<DeliveryScheduleLine>>,
    /// One delivery (single-delivery form).
    pub scheduled_delivery: Option<ScheduledDelivery>,
    /// Prices.
    pub prices: Option<Prices>,
    /// Charge lines.
    pub charge_lines: Option<Vec<ChargeLine>>,
    /// Item details.
    pub item_details: Option<MergedItemDetails>,
    /// Why.
    pub reason: Option<String>,
    /// Indicators.
    pub indicators: Option<Indicators>,
}

/// The agreed values of a confirmed line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmedLine {
    /// Agreed delivery schedule.
    pub delivery_schedule: Option<Vec<DeliveryScheduleLine>>,
    /// Agreed prices.
    pub prices: Option<Prices>,
    /// Agreed charge lines.
    pub charge_lines: Option<Vec<ChargeLine>>,
}

/// One delivery of a single-delivery line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledDelivery {
    /// Delivery date.
    pub date: Option<String>,
    /// Quantity.
    #[serde(default, with = "opt_decimal")]
    pub quantity: Option<Decimal>,
    /// Logistics status.
    pub status: Option<String>,
    /// Estimated time of departure.
    pub etd: Option<String>,
    /// Estimated time of arrival.
    pub eta: Option<String>,
}

/// `statusLine` of a single-delivery line (note Tradecloud's `InclRequests` spelling here).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusLine {
    /// Current delivery.
    pub scheduled_delivery: Option<ScheduledDelivery>,
    /// Delivery including open requests.
    pub scheduled_delivery_incl_requests: Option<ScheduledDelivery>,
    /// Current prices.
    pub prices: Option<Prices>,
    /// Prices including open requests.
    pub prices_incl_requests: Option<Prices>,
}

/// `mergedItemDetails`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MergedItemDetails {
    /// Country of origin.
    pub country_of_origin_code_iso2: Option<String>,
    /// Combined nomenclature (customs) code.
    pub combined_nomenclature_code: Option<String>,
    /// Net weight.
    #[serde(default, with = "opt_decimal")]
    pub net_weight: Option<Decimal>,
    /// Unit of the net weight.
    pub net_weight_unit_of_measure_iso: Option<String>,
    /// UN dangerous goods code.
    pub dangerous_goods_code_unece: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Batch number.
    pub batch_number: Option<String>,
}

/// An order line, in delivery-schedule form (`delivery_schedule`, `prices`) or single-delivery
/// form (`status_line`).
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// Tradecloud line id.
    pub id: Option<String>,
    /// `Item`, `Service`, `Charge`.
    pub line_type: Option<String>,
    /// UNCL7161 charge reason.
    pub charge_reason_code: Option<String>,
    /// Buyer's part.
    pub buyer_line: Option<BuyerLine>,
    /// Supplier's part.
    pub supplier_line: Option<SupplierLine>,
    /// Agreed values.
    pub confirmed_line: Option<ConfirmedLine>,
    /// Current schedule, without open requests.
    pub delivery_schedule: Option<Vec<DeliveryScheduleLine>>,
    /// Schedule including open requests.
    pub delivery_schedule_including_requests: Option<Vec<DeliveryScheduleLine>>,
    /// Deliveries made so far.
    pub delivery_history: Option<Vec<DeliveryScheduleLine>>,
    /// Current prices, without open requests.
    pub prices: Option<Prices>,
    /// Prices including open requests.
    pub prices_including_requests: Option<Prices>,
    /// Single-delivery form: the one delivery and its prices.
    pub status_line: Option<StatusLine>,
    /// Indicators.
    pub indicators: Option<Indicators>,
    /// Status.
    pub status: Option<Status>,
    /// Merged item details.
    pub merged_item_details: Option<MergedItemDetails>,
    /// One delivery (single-delivery form).
    pub scheduled_delivery: Option<ScheduledDelivery>,
    /// The delivery made (single-delivery form).
    pub actual_delivery: Option<ScheduledDelivery>,
    /// Reason of the last change.
    pub reason: Option<String>,
    /// Link to the line in Tradecloud's portal.
    pub portal_url: Option<String>,
    /// Latest change of this line.
    pub last_updated_at: Option<String>,
}

/// The buyer's order header.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerOrder {
    /// Buyer's Tradecloud company id.
    pub company_id: Option<String>,
    /// Purchase order number.
    pub purchase_order_number: Option<String>,
    /// The buyer's account number for the supplier.
    pub supplier_account_number: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// `Purchase`, `Forecast`, `RFQ`.
    pub order_type: Option<String>,
    /// Buyer party.
    pub buyer_party: Option<Party>,
    /// Accounting party.
    pub buyer_accounting_party: Option<Party>,
    /// Supplier party.
    pub supplier_party: Option<Party>,
    /// Destination.
    pub destination: Option<Destination>,
    /// Buyer contact.
    pub contact: Option<Contact>,
    /// Supplier contact as known by the buyer.
    pub supplier_contact: Option<Contact>,
    /// Terms.
    pub terms: Option<Terms>,
    /// Indicators.
    pub indicators: Option<Indicators>,
    /// Properties.
    pub properties: Option<Vec<Property>>,
    /// Notes.
    pub notes: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
    /// When the buyer's ERP issued the order.
    pub erp_issue_date_time: Option<String>,
    /// Who issued it in the ERP.
    pub erp_issued_by: Option<Contact>,
}

/// The supplier's order header.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierOrder {
    /// Supplier's Tradecloud company id.
    pub company_id: Option<String>,
    /// The buyer's purchase order number.
    pub purchase_order_number: Option<String>,
    /// Indicators.
    pub indicators: Option<Indicators>,
    /// The supplier's account number for the buyer.
    pub buyer_account_number: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Supplier contact.
    pub contact: Option<Contact>,
    /// Properties.
    pub properties: Option<Vec<Property>>,
    /// Notes.
    pub notes: Option<Vec<String>>,
    /// Labels.
    pub labels: Option<Vec<String>>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
}

/// An order. One type serves the order event (`order_id`), the polled or fetched order (`id`),
/// both order forms and the order-documents event, whose schema Tradecloud has not published
/// beyond being an order carrying documents.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    /// Order id in polled or fetched orders.
    pub id: Option<String>,
    /// Order id in webhook events.
    pub order_id: Option<String>,
    /// Legacy platform id.
    pub legacy_order_id: Option<String>,
    /// Buyer's header.
    pub buyer_order: Option<BuyerOrder>,
    /// Supplier's header.
    pub supplier_order: Option<SupplierOrder>,
    /// Lines: all of them when polled or fetched, the affected ones in an event.
    pub lines: Option<Vec<OrderLine>>,
    /// Indicators.
    pub indicators: Option<Indicators>,
    /// Aggregate status.
    pub status: Option<Status>,
    /// Tradecloud's order version number.
    #[serde(default, with = "opt_u64")]
    pub version: Option<u64>,
    /// Meta, when inside the event.
    pub meta: Option<Meta>,
    /// Reason of the last change.
    pub reason: Option<String>,
    /// Link to the order in the portal.
    pub portal_url: Option<String>,
    /// Latest change of the order.
    pub last_updated_at: Option<String>,
}

impl Order {
    /// The order id: `orderId` in events, `id` in polled or fetched orders.
    pub fn object_id(&self) -> Option<&str> {
        self.order_id.as_deref().or(self.id.as_deref())
    }
}

/// `shipment.identifiers`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentIdentifiers {
    /// Bill of lading.
    pub bill_of_lading_number: Option<String>,
    /// Vessel IMO number.
    pub imo_number: Option<String>,
    /// Carrier's shipment number.
    pub carrier_shipment_number: Option<String>,
    /// Tracking number.
    pub tracking_number: Option<String>,
}

/// The supplier's part of a shipment.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupplierShipment {
    /// Supplier company id.
    pub company_id: Option<String>,
    /// Supplier party.
    pub supplier_party: Option<Party>,
    /// Supplier's account number for the buyer.
    pub buyer_account_number: Option<String>,
    /// Supplier's shipment number.
    pub shipment_number: Option<String>,
    /// Invoice numbers.
    pub invoice_numbers: Option<Vec<String>>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
    /// Contacts.
    pub contacts: Option<Vec<Contact>>,
}

/// The buyer's part of a shipment.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuyerShipment {
    /// Buyer company id.
    pub company_id: Option<String>,
    /// Buyer party.
    pub buyer_party: Option<Party>,
    /// Buyer's account number for the supplier.
    pub supplier_account_number: Option<String>,
    /// Documents.
    pub documents: Option<Vec<Document>>,
    /// Contacts.
    pub contacts: Option<Vec<Contact>>,
    /// Terms of the purchase orders.
    pub purchase_order_terms: Option<Terms>,
}

/// A shipment location.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentLocation {
    /// `AgreedPlace`, `PortOfLoading`, `PortOfDestination`, `PlaceOfDestination`, `FinalDestination`.
    pub location_type: Option<String>,
    /// Identifier.
    pub id: Option<String>,
    /// Identifier scheme.
    pub id_scheme: Option<String>,
    /// Name lines.
    pub names: Option<Vec<String>>,
    /// Address lines.
    pub address_lines: Option<Vec<String>>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country code (shipment events).
    pub country_code_iso: Option<String>,
    /// Country code (despatch advice form).
    pub country_code_iso2: Option<String>,
}

/// `locations.departure`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Departure {
    /// Where.
    pub location: Option<ShipmentLocation>,
    /// Estimated departure date.
    pub etd_date: Option<String>,
    /// Actual departure date.
    pub atd_date: Option<String>,
}

/// One of `locations.destinations`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentDestination {
    /// Where.
    pub location: Option<ShipmentLocation>,
    /// Arrival window start date.
    pub eta_start_date: Option<String>,
    /// Arrival window start time.
    pub eta_start_time: Option<String>,
    /// Arrival window end date.
    pub eta_end_date: Option<String>,
    /// Arrival window end time.
    pub eta_end_time: Option<String>,
    /// Actual arrival date.
    pub ata_date: Option<String>,
    /// Estimated departure date (onward).
    pub etd_date: Option<String>,
    /// Actual departure date (onward).
    pub atd_date: Option<String>,
}

/// `shipment.locations`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentLocations {
    /// Departure.
    pub departure: Option<Departure>,
    /// Destinations.
    pub destinations: Option<Vec<ShipmentDestination>>,
}

/// The item on a shipment line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentItem {
    /// Buyer's item number.
    pub buyer_item_number: Option<String>,
    /// Buyer's item revision.
    pub buyer_item_revision: Option<String>,
    /// Buyer's item name.
    pub buyer_item_name: Option<String>,
    /// Supplier's item number.
    pub supplier_item_number: Option<String>,
    /// Supplier's item revision.
    pub supplier_item_revision: Option<String>,
    /// Supplier's item name.
    pub supplier_item_name: Option<String>,
    /// Unit of measure.
    pub purchase_unit_of_measure_iso: Option<String>,
}

/// The supplier's part of a shipment line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentSupplierLine {
    /// Despatch advice number.
    pub despatch_advice_number: Option<String>,
    /// Position in the despatch advice.
    pub despatch_advice_line_position: Option<String>,
    /// Quantity despatched.
    #[serde(default, with = "opt_decimal")]
    pub despatch_quantity: Option<Decimal>,
    /// Quantity still to come.
    #[serde(default, with = "opt_decimal")]
    pub backorder_quantity: Option<Decimal>,
}

/// A shipment line.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentLine {
    /// Purchase order number.
    pub purchase_order_number: Option<String>,
    /// Order line position.
    pub purchase_order_line_position: Option<String>,
    /// Delivery schedule position.
    pub delivery_schedule_position: Option<String>,
    /// Item.
    pub item: Option<ShipmentItem>,
    /// Supplier's part.
    pub supplier_line: Option<ShipmentSupplierLine>,
    /// Quantity despatched, as the supplier's despatch advice gives it.
    #[serde(default, with = "opt_decimal")]
    pub despatch_quantity: Option<Decimal>,
    /// Quantity still to come, as the despatch advice gives it.
    #[serde(default, with = "opt_decimal")]
    pub backorder_quantity: Option<Decimal>,
    /// Meta; `meta.lastUpdatedAt` after the poll run's starting point marks a changed line.
    pub meta: Option<Meta>,
}

/// A load carrier: a container or a package, and the lines in it.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadCarrier {
    /// Container number.
    pub container_number: Option<String>,
    /// Container size and type.
    pub container_size_and_type: Option<String>,
    /// Package SSCC.
    #[serde(rename = "packageSSCC")]
    pub package_sscc: Option<String>,
    /// Package type.
    pub package_type: Option<String>,
    /// Lines in this carrier.
    pub lines: Option<Vec<ShipmentLine>>,
}

/// A shipment (§4.5): always complete, all lines and documents.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    /// Tradecloud shipment id.
    pub id: Option<String>,
    /// Identifiers.
    pub identifiers: Option<ShipmentIdentifiers>,
    /// Transport mode (UNECE Rec. 19).
    pub transport_mode: Option<String>,
    /// Supplier's part.
    pub supplier_shipment: Option<SupplierShipment>,
    /// Buyer's part.
    pub buyer_shipment: Option<BuyerShipment>,
    /// Load carriers.
    pub load_carriers: Option<Vec<LoadCarrier>>,
    /// Lines not in a load carrier.
    pub lines: Option<Vec<ShipmentLine>>,
    /// Departure and destinations.
    pub locations: Option<ShipmentLocations>,
    /// Status.
    pub status: Option<Status>,
    /// Version, when Tradecloud sends one.
    #[serde(default, with = "opt_u64")]
    pub version: Option<u64>,
    /// Meta, with `lastUpdatedAt`.
    pub meta: Option<Meta>,
    /// Latest change, when given at top level.
    pub last_updated_at: Option<String>,
}

impl Shipment {
    /// The shipment's last change: top-level `lastUpdatedAt`, else `meta.lastUpdatedAt`.
    pub fn last_updated_at(&self) -> Option<&str> {
        self.last_updated_at
            .as_deref()
            .or_else(|| self.meta.as_ref()?.last_updated_at.as_deref())
    }

    /// Every line, loose and in load carriers.
    pub fn all_lines(&self) -> impl Iterator<Item = &ShipmentLine> {
        let loose = self.lines.iter().flatten();
        let carried = self
            .load_carriers
            .iter()
            .flatten()
            .flat_map(|c| c.lines.iter().flatten());
        loose.chain(carried)
    }
}
