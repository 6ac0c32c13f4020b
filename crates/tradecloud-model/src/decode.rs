//! The one decode entry point for webhook bodies, and the decoders for fetched or polled objects.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DecodeError, Location};
use crate::kind::{Format, ObjectKind};
use crate::normalize::normalize;
use crate::num::json_type;
use crate::schema::{ORDER_SHAPE, SHIPMENT_SHAPE, WEBHOOK_BODY_SHAPE};
use crate::txml;
use crate::types::{Meta, Order, Shipment};

/// A decoded webhook body: the typed view the relay reads, and the complete JSON it forwards.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedWebhook {
    /// The typed view.
    pub body: WebhookBody,
    /// The whole body as JSON (tXML converted to the same shape), numbers and booleans typed.
    pub payload: Value,
    /// What Tradecloud sent.
    pub format: Format,
}

/// The typed view of a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    /// Tradecloud's event name; an open set, unknown names are kept.
    pub event_name: String,
    /// The one event object.
    pub event: WebhookEvent,
    /// `meta` at body level, when there (it also occurs inside the event).
    pub meta: Option<Meta>,
}

/// The event object of a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// `orderEvent`: delivery-schedule form, only the affected lines.
    Order(Order),
    /// `singleDeliveryOrderEvent` (or its old name `simpleOrderEvent`).
    SingleDeliveryOrder(Order),
    /// `orderDocumentsEvent`.
    OrderDocuments(Order),
    /// `shipment` (or `shipmentEvent`): always the whole shipment.
    Shipment(Shipment),
}

/// The event keys a webhook body may carry, with the kind each means.
const EVENT_KEYS: [(&str, ObjectKind); 6] = [
    ("orderEvent", ObjectKind::Order),
    ("singleDeliveryOrderEvent", ObjectKind::SingleDeliveryOrder),
    ("simpleOrderEvent", ObjectKind::SingleDeliveryOrder),
    ("orderDocumentsEvent", ObjectKind::OrderDocuments),
    ("shipment", ObjectKind::Shipment),
    ("shipmentEvent", ObjectKind::Shipment),
];

impl WebhookBody {
    /// What the event is about.
    pub fn kind(&self) -> ObjectKind {
        match self.event {
            WebhookEvent::Order(_) => ObjectKind::Order,
            WebhookEvent::SingleDeliveryOrder(_) => ObjectKind::SingleDeliveryOrder,
            WebhookEvent::OrderDocuments(_) => ObjectKind::OrderDocuments,
            WebhookEvent::Shipment(_) => ObjectKind::Shipment,
        }
    }

    /// The order id or shipment id (checked present and non-empty when decoded).
    pub fn object_id(&self) -> &str {
        let id = match &self.event {
            WebhookEvent::Order(o)
            | WebhookEvent::SingleDeliveryOrder(o)
            | WebhookEvent::OrderDocuments(o) => o.object_id(),
            WebhookEvent::Shipment(s) => s.id.as_deref(),
        };
        id.unwrap_or_default()
    }

    /// The object's `lastUpdatedAt`, as Tradecloud wrote it.
    pub fn last_updated_at(&self) -> Option<&str> {
        match &self.event {
            WebhookEvent::Order(o)
            | WebhookEvent::SingleDeliveryOrder(o)
            | WebhookEvent::OrderDocuments(o) => o.last_updated_at.as_deref(),
            WebhookEvent::Shipment(s) => s.last_updated_at(),
        }
    }

    /// The object's `version`.
    pub fn version(&self) -> Option<u64> {
        match &self.event {
            WebhookEvent::Order(o)
            | WebhookEvent::SingleDeliveryOrder(o)
            | WebhookEvent::OrderDocuments(o) => o.version,
            WebhookEvent::Shipment(s) => s.version,
        }
    }

    /// `meta.messageId`: body level first, else inside the event.
    pub fn message_id(&self) -> Option<&str> {
        let event_meta = match &self.event {
            WebhookEvent::Order(o)
            | WebhookEvent::SingleDeliveryOrder(o)
            | WebhookEvent::OrderDocuments(o) => o.meta.as_ref(),
            WebhookEvent::Shipment(s) => s.meta.as_ref(),
        };
        self.meta
            .as_ref()
            .and_then(|m| m.message_id.as_deref())
            .or_else(|| event_meta.and_then(|m| m.message_id.as_deref()))
    }

    /// Identifiers of the lines the event carries: order line ids; for shipments, which have
    /// no line ids, `purchaseOrderNumber/purchaseOrderLinePosition/deliverySchedulePosition`.
    pub fn line_ids(&self) -> Vec<String> {
        match &self.event {
            WebhookEvent::Order(o)
            | WebhookEvent::SingleDeliveryOrder(o)
            | WebhookEvent::OrderDocuments(o) => o
                .lines
                .iter()
                .flatten()
                .filter_map(|l| l.id.clone())
                .collect(),
            WebhookEvent::Shipment(s) => s
                .all_lines()
                .map(|l| {
                    format!(
                        "{}/{}/{}",
                        l.purchase_order_number.as_deref().unwrap_or_default(),
                        l.purchase_order_line_position
                            .as_deref()
                            .unwrap_or_default(),
                        l.delivery_schedule_position.as_deref().unwrap_or_default()
                    )
                })
                .collect(),
        }
    }

    /// Reads the typed view from a webhook body's JSON.
    pub fn from_payload(payload: &Value) -> Result<WebhookBody, DecodeError> {
        let Value::Object(map) = payload else {
            return Err(DecodeError::NotAnObject {
                found: json_type(payload),
            });
        };
        let event_name = match map.get("eventName") {
            None | Some(Value::Null) => return Err(DecodeError::MissingEventName),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(invalid("eventName", "must not be empty"));
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(invalid(
                    "eventName",
                    &format!("expected a string, found {}", json_type(other)),
                ));
            }
        };
        let present: Vec<(&str, ObjectKind, &Value)> = EVENT_KEYS
            .iter()
            .filter_map(|&(key, kind)| match map.get(key) {
                None | Some(Value::Null) => None,
                Some(v) => Some((key, kind, v)),
            })
            .collect();
        let (key, kind, event) = match present.as_slice() {
            [] => return Err(DecodeError::MissingEvent),
            [one] => *one,
            many => {
                return Err(DecodeError::MultipleEvents(
                    many.iter().map(|(k, _, _)| (*k).to_owned()).collect(),
                ));
            }
        };
        if !event.is_object() {
            return Err(invalid(
                key,
                &format!("expected an object, found {}", json_type(event)),
            ));
        }
        let event = match kind {
            ObjectKind::Shipment => {
                let shipment: Shipment = typed(event, key)?;
                require_id(shipment.id.as_deref(), &format!("{key}.id"))?;
                WebhookEvent::Shipment(shipment)
            }
            order_kind => {
                let order: Order = typed(event, key)?;
                require_id(order.object_id(), &format!("{key}.orderId"))?;
                match order_kind {
                    ObjectKind::Order => WebhookEvent::Order(order),
                    ObjectKind::SingleDeliveryOrder => WebhookEvent::SingleDeliveryOrder(order),
                    _ => WebhookEvent::OrderDocuments(order),
                }
            }
        };
        let meta = match map.get("meta") {
            None | Some(Value::Null) => None,
            Some(m) => Some(typed::<Meta>(m, "meta")?),
        };
        Ok(WebhookBody {
            event_name,
            event,
            meta,
        })
    }
}

fn invalid(path: &str, message: &str) -> DecodeError {
    DecodeError::InvalidField {
        path: path.to_owned(),
        message: message.to_owned(),
        at: None,
    }
}

fn require_id(id: Option<&str>, path: &str) -> Result<(), DecodeError> {
    match id {
        Some(id) if !id.trim().is_empty() => Ok(()),
        _ => Err(DecodeError::MissingId {
            path: path.to_owned(),
        }),
    }
}

/// Reads a typed view from JSON, naming the offending field's full path on failure.
fn typed<T: DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        DecodeError::InvalidField {
            path,
            message: e.into_inner().to_string(),
            at: None,
        }
    })
}

/// Decides JSON or tXML from the content type, sniffing the first non-blank byte when the
/// content type is missing or generic.
pub fn detect_format(body: &[u8], content_type: Option<&str>) -> Result<Format, DecodeError> {
    let essence = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match essence.as_str() {
        "application/json" | "text/json" => return Ok(Format::Json),
        "application/xml" | "text/xml" => return Ok(Format::Txml),
        s if s.ends_with("+json") => return Ok(Format::Json),
        s if s.ends_with("+xml") => return Ok(Format::Txml),
        // Missing or generic: look at the body.
        ""
        | "text/plain"
        | "application/octet-stream"
        | "*/*"
        | "application/x-www-form-urlencoded" => {}
        other => return Err(DecodeError::UnsupportedMediaType(other.to_owned())),
    }
    sniff(body)
}

fn sniff(body: &[u8]) -> Result<Format, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => Err(DecodeError::Empty),
        Some(b'{') | Some(b'[') => Ok(Format::Json),
        Some(b'<') => Ok(Format::Txml),
        Some(_) => {
            let text = String::from_utf8_lossy(body);
            let first = text.trim_start().chars().next().unwrap_or('?');
            Err(DecodeError::UnknownFormat(first))
        }
    }
}

/// Parses JSON bytes into a value, with a located error.
pub fn parse_json(body: &[u8]) -> Result<Value, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DecodeError::Empty);
    }
    if let Err(e) = std::str::from_utf8(body) {
        return Err(DecodeError::InvalidUtf8 {
            offset: e.valid_up_to(),
        });
    }
    serde_json::from_slice(body).map_err(|e| DecodeError::Json {
        at: Location {
            line: e.line(),
            column: e.column(),
        },
        message: strip_position(&e.to_string()),
    })
}

/// serde_json appends " at line L column C" to its messages; we report the location apart.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// Decodes a webhook body: JSON or tXML by `content_type` (`application/json`,
/// `application/xml`, `text/xml`; missing or generic: sniffed), into the typed view and the
/// complete JSON payload.
pub fn decode_webhook(
    body: &[u8],
    content_type: Option<&str>,
) -> Result<DecodedWebhook, DecodeError> {
    let format = detect_format(body, content_type)?;
    let mut payload = match format {
        Format::Json => parse_json(body)?,
        Format::Txml => txml::from_txml(body)?,
    };
    normalize(&mut payload, &WEBHOOK_BODY_SHAPE);
    let body = WebhookBody::from_payload(&payload)?;
    Ok(DecodedWebhook {
        body,
        payload,
        format,
    })
}

/// Decodes an order as fetched (`GET /order/{id}`) or polled: typed view and complete JSON.
pub fn decode_order(json: &[u8]) -> Result<(Order, Value), DecodeError> {
    let value = parse_json(json)?;
    order_from_value(value)
}

/// Reads an order from a JSON value (one item of a poll page).
pub fn order_from_value(mut value: Value) -> Result<(Order, Value), DecodeError> {
    if !value.is_object() {
        return Err(DecodeError::NotAnObject {
            found: json_type(&value),
        });
    }
    normalize(&mut value, &ORDER_SHAPE);
    let order: Order = typed(&value, "")?;
    require_id(order.object_id(), "id")?;
    Ok((order, value))
}

/// Decodes a shipment as fetched (`GET /shipment/{id}`) or polled: typed view and complete JSON.
pub fn decode_shipment(json: &[u8]) -> Result<(Shipment, Value), DecodeError> {
    let value = parse_json(json)?;
    shipment_from_value(value)
}

/// Reads a shipment from a JSON value (one item of a poll page).
pub fn shipment_from_value(mut value: Value) -> Result<(Shipment, Value), DecodeError> {
    if !value.is_object() {
        return Err(DecodeError::NotAnObject {
            found: json_type(&value),
        });
    }
    normalize(&mut value, &SHIPMENT_SHAPE);
    let shipment: Shipment = typed(&value, "")?;
    require_id(shipment.id.as_deref(), "id")?;
    Ok((shipment, value))
}
