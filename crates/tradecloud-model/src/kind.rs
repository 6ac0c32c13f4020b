//! What a message is about, and how it was written.

use serde::{Deserialize, Serialize};

/// The kind of object a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectKind {
    /// An order in delivery-schedule form (`orderEvent`, `/order-search/poll`, `GET /order/{id}`).
    Order,
    /// An order in single-delivery form (`singleDeliveryOrderEvent`, `/poll/single-delivery`).
    SingleDeliveryOrder,
    /// Documents attached to an order (`orderDocumentsEvent`).
    OrderDocuments,
    /// A shipment (`shipment`, `/shipment/poll`, `GET /shipment/{id}`).
    Shipment,
}

/// The class of Tradecloud object behind a kind: both order forms are the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectClass {
    /// An order, in either form.
    Order,
    /// An order's documents.
    OrderDocuments,
    /// A shipment.
    Shipment,
}

impl ObjectClass {
    /// Short stable name used in dedupe keys and FIFO group ids.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectClass::Order => "order",
            ObjectClass::OrderDocuments => "order-documents",
            ObjectClass::Shipment => "shipment",
        }
    }
}

impl std::fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ObjectKind {
    /// The wire name: `order`, `single-delivery-order`, `order-documents`, `shipment`.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Order => "order",
            ObjectKind::SingleDeliveryOrder => "single-delivery-order",
            ObjectKind::OrderDocuments => "order-documents",
            ObjectKind::Shipment => "shipment",
        }
    }

    /// The object class: both order forms map to [`ObjectClass::Order`].
    pub fn object_class(self) -> ObjectClass {
        match self {
            ObjectKind::Order | ObjectKind::SingleDeliveryOrder => ObjectClass::Order,
            ObjectKind::OrderDocuments => ObjectClass::OrderDocuments,
            ObjectKind::Shipment => ObjectClass::Shipment,
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format a body was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// JSON.
    Json,
    /// Tradecloud's XML (tXML).
    Txml,
}

impl Format {
    /// `json` or `txml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Txml => "txml",
        }
    }
}
