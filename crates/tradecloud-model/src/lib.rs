//! Tradecloud's messages as Rust types: JSON and tXML decoding, tXML encoding.
//!
//! [`decode_webhook`] is the entry point for webhook bodies: bytes and a content type in, the
//! few fields the relay reads ([`WebhookBody`]), the complete JSON payload and the values that
//! did not fit the schema ([`Leniencies`], forwarded as sent) out, or a [`DecodeError`] that
//! names what is wrong and where. [`decode_order`] and [`decode_shipment`] read fetched or
//! polled objects, [`poll`] the poll API, [`txml`] Tradecloud's XML both ways.
//!
//! Forward compatible as Tradecloud asks: unknown fields, values and event names never fail a
//! decode, and the payload keeps every field, modelled or not.

pub mod budget;
pub mod decode;
pub mod error;
pub mod fields;
pub mod json;
pub mod key;
pub mod kind;
pub mod lenient;
pub mod normalize;
pub mod num;
pub mod poll;
pub mod schema;
pub mod timestamp;
pub mod txml;
pub mod types;

pub use decode::{
    DEFAULT_MAX_LINES, DecodeLimits, DecodedObject, DecodedWebhook, WebhookBody, decode_order,
    decode_shipment, decode_webhook, decode_webhook_with, order_from_value, read_order,
    read_shipment, shipment_from_value,
};
pub use error::{DecodeError, Location};
pub use key::key_part;
pub use kind::{Format, ObjectClass, ObjectKind};
pub use lenient::{Leniencies, Leniency};
pub use poll::{PollFilters, PollRequest, PollResponse, decode_poll_response};
pub use types::*;
