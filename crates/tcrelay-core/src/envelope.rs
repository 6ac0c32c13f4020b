//! The envelope: one JSON document per queue message, the contract with the ERP's consumers.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tradecloud_model::{Format, ObjectClass, ObjectKind, timestamp};

/// The value of [`Envelope::schema`]; bumped only on an incompatible change of the envelope.
pub const ENVELOPE_SCHEMA: &str = "tradecloud-relay/1";

/// Which of the three ways in a message came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Tradecloud POSTed the event to the webhook.
    WebhookPost,
    /// Tradecloud called the webhook with only an id; we fetched the object.
    WebhookGet,
    /// The poller found the object through the poll (or search) API.
    Poll,
}

impl Source {
    /// The wire name (`webhook-post`, `webhook-get`, `poll`), also used as an SQS attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::WebhookPost => "webhook-post",
            Source::WebhookGet => "webhook-get",
            Source::Poll => "poll",
        }
    }
}

/// One message for the ERP. Field names are part of the public contract (`tradecloud-relay/1`).
/// Written out with [`Envelope::to_json`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Always [`ENVELOPE_SCHEMA`].
    pub schema: String,
    /// The channel the message came by.
    pub source: Source,
    /// What the payload is.
    pub kind: ObjectKind,
    /// Tradecloud's `eventName`; `None` for GET and poll, which carry states, not events.
    pub event_name: Option<String>,
    /// The order id or shipment id.
    pub id: String,
    /// Tradecloud's object `version`, when it has one.
    pub version: Option<u64>,
    /// Tradecloud's `lastUpdatedAt`, exactly as Tradecloud wrote it.
    pub last_updated_at: Option<String>,
    /// Tradecloud's `meta.messageId`, when given.
    pub message_id: Option<String>,
    /// The dedupe key this message was admitted under (message key or state key).
    pub dedupe_key: String,
    /// When the relay received or fetched it (UTC, milliseconds).
    pub received_at: String,
    /// The format Tradecloud sent (`json` or `txml`); the payload is JSON either way.
    pub format: Format,
    /// Poll only: ids of the lines that changed since the previous cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_lines: Option<Vec<String>>,
    /// The webhook body (POST) or the object (GET, poll) as JSON, complete.
    pub payload: serde_json::Value,
    /// `payload` exactly as Tradecloud sent it, when its text is a JSON text of `payload` (a
    /// webhook POST in JSON in which nothing needed typing): [`Envelope::to_json`] writes it
    /// as the payload instead of writing `payload` out again, which was a fifth of the
    /// webhook's CPU for a 50-line order. Not a field of the document: it is the document's
    /// `payload`, so two envelopes that differ only here are equal.
    #[serde(skip)]
    pub payload_text: Option<Arc<str>>,
}

/// The envelope's document without its payload, field for field as `Envelope` serialises
/// them ([`Envelope::head`] destructures every field, and a test compares the documents).
#[derive(Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    schema: &'a str,
    source: Source,
    kind: ObjectKind,
    event_name: &'a Option<String>,
    id: &'a str,
    version: Option<u64>,
    last_updated_at: &'a Option<String>,
    message_id: &'a Option<String>,
    dedupe_key: &'a str,
    received_at: &'a str,
    format: Format,
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_lines: &'a Option<Vec<String>>,
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        // Every field but `payload_text`, which is `payload` as sent (see there).
        self.head() == other.head() && self.payload == other.payload
    }
}

/// A decoded webhook POST, in the terms the relay needs.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// What the event is about.
    pub kind: ObjectKind,
    /// The order or shipment id.
    pub id: String,
    /// Tradecloud's `eventName`.
    pub event_name: String,
    /// The object's `version`.
    pub version: Option<u64>,
    /// The object's `lastUpdatedAt`, verbatim.
    pub last_updated_at: Option<String>,
    /// `meta.messageId`.
    pub message_id: Option<String>,
    /// Ids of the lines the event carries.
    pub line_ids: Vec<String>,
    /// JSON or tXML.
    pub format: Format,
    /// The whole body as JSON.
    pub payload: Value,
    /// The body's own text, when it is a JSON text of `payload` (see
    /// [`Envelope::payload_text`]).
    pub payload_text: Option<Arc<str>>,
}

/// The identifying fields of a complete order or shipment, read leniently from its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    /// `id`, else the id it was requested by.
    pub id: String,
    /// `version`, as a number or a numeric string (Tradecloud once quoted numbers, TC-6431).
    pub version: Option<u64>,
    /// `lastUpdatedAt`, else `meta.lastUpdatedAt` (shipments).
    pub last_updated_at: Option<String>,
    /// `meta.messageId`.
    pub message_id: Option<String>,
}

impl ObjectState {
    /// Reads the fields from `object`.
    pub fn of(object: &Value, requested_id: &str) -> Self {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let version = match object.get("version") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Self {
            id: text(object.get("id")).unwrap_or_else(|| requested_id.to_owned()),
            version,
            last_updated_at: text(object.get("lastUpdatedAt"))
                .or_else(|| text(object.pointer("/meta/lastUpdatedAt"))),
            message_id: text(object.pointer("/meta/messageId")),
        }
    }
}

/// One object's group: `<class>:<id>`. The FIFO `MessageGroupId`, and the unit the relay keeps
/// in order ([`crate::gate`]).
pub fn group_id(class: ObjectClass, id: &str) -> String {
    format!("{class}:{id}")
}

impl Envelope {
    /// The envelope of a webhook POST's event, admitted under its message key.
    pub fn of_event(event: InboundEvent, dedupe_key: String) -> Self {
        // By value: the payload (up to megabytes) moves into the envelope instead of being copied.
        Self {
            event_name: Some(event.event_name),
            version: event.version,
            last_updated_at: event.last_updated_at,
            message_id: event.message_id,
            format: event.format,
            payload_text: event.payload_text,
            ..Self::bare(
                Source::WebhookPost,
                event.kind,
                event.id,
                dedupe_key,
                event.payload,
            )
        }
    }

    /// The envelope of a complete object fetched by id for a GET webhook, admitted under its
    /// state key.
    pub fn of_fetched(
        kind: ObjectKind,
        state: ObjectState,
        dedupe_key: String,
        object: Value,
    ) -> Self {
        Self::bare(Source::WebhookGet, kind, String::new(), dedupe_key, object).with_state(state)
    }

    /// The envelope of a polled object, admitted under its state key: `changed_lines` are the
    /// lines that changed since the previous cursor (`None` when the object could not be read
    /// for its lines), `payload` the object as prepared for the ERP.
    pub fn of_polled(
        kind: ObjectKind,
        state: ObjectState,
        dedupe_key: String,
        changed_lines: Option<Vec<String>>,
        payload: Value,
    ) -> Self {
        Self {
            changed_lines,
            ..Self::bare(Source::Poll, kind, String::new(), dedupe_key, payload).with_state(state)
        }
    }

    /// The fields every source fills alike; JSON, received now.
    fn bare(
        source: Source,
        kind: ObjectKind,
        id: String,
        dedupe_key: String,
        payload: Value,
    ) -> Self {
        Self {
            schema: ENVELOPE_SCHEMA.to_owned(),
            source,
            kind,
            event_name: None,
            id,
            version: None,
            last_updated_at: None,
            message_id: None,
            dedupe_key,
            received_at: timestamp::format(Utc::now()),
            format: Format::Json,
            changed_lines: None,
            payload,
            payload_text: None,
        }
    }

    fn with_state(self, state: ObjectState) -> Self {
        Self {
            id: state.id,
            version: state.version,
            last_updated_at: state.last_updated_at,
            message_id: state.message_id,
            ..self
        }
    }

    /// Every field but the payload, borrowed. Destructures the envelope whole, so a field added
    /// to it does not compile until it is placed here (or left out on purpose).
    fn head(&self) -> Head<'_> {
        let Envelope {
            schema,
            source,
            kind,
            event_name,
            id,
            version,
            last_updated_at,
            message_id,
            dedupe_key,
            received_at,
            format,
            changed_lines,
            payload: _,
            payload_text: _,
        } = self;
        Head {
            schema,
            source: *source,
            kind: *kind,
            event_name,
            id,
            version: *version,
            last_updated_at,
            message_id,
            dedupe_key,
            received_at,
            format: *format,
            changed_lines,
        }
    }

    /// The envelope as its JSON document on one line, the body of its queue message. With a
    /// [`payload_text`](Envelope::payload_text) on one line, that text is written as the
    /// payload, as sent; otherwise `payload` is serialised.
    pub fn to_json(&self) -> serde_json::Result<String> {
        // The document stays on one line (exports write JSON Lines, one envelope per line): a
        // text with line breaks (pretty-printed, between its tokens) is written anew.
        let Some(text) = self
            .payload_text
            .as_deref()
            .filter(|t| !t.contains(['\n', '\r']))
        else {
            return serde_json::to_string(self);
        };
        let mut json = serde_json::to_string(&self.head())?;
        // `{…}` becomes `{…,"payload":TEXT}`: the payload is the document's last field.
        json.pop();
        json.reserve(text.len() + 12);
        json.push_str(",\"payload\":");
        json.push_str(text);
        json.push('}');
        Ok(json)
    }

    /// FIFO `MessageGroupId`: object class and id, so both order forms of one order share a group
    /// and the ERP sees one object's changes in order.
    pub fn message_group_id(&self) -> String {
        group_id(self.kind.object_class(), &self.id)
    }

    /// FIFO `MessageDeduplicationId`: the SHA-256 of the dedupe key in hex (64 characters,
    /// inside SQS's 128-character limit whatever the key's length).
    pub fn deduplication_id(&self) -> String {
        hex::encode(Sha256::digest(self.dedupe_key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(changed_lines: Option<Vec<String>>, payload_text: Option<&str>) -> Envelope {
        let text = r#" {"z": 1, "order": {"id": "o-1", "price": 12.50, "note": "a\u00e9\nb"}} "#;
        Envelope {
            schema: ENVELOPE_SCHEMA.to_owned(),
            source: Source::WebhookPost,
            kind: ObjectKind::Order,
            event_name: Some("OrderIssuedByBuyer".to_owned()),
            id: "o-1".to_owned(),
            version: Some(3),
            last_updated_at: Some("2026-03-01T11:59:59Z".to_owned()),
            message_id: Some("m-1".to_owned()),
            dedupe_key: "msg/order/o-1/x".to_owned(),
            received_at: "2026-03-01T12:00:00.000Z".to_owned(),
            format: Format::Json,
            changed_lines,
            payload: serde_json::from_str(text).unwrap(),
            payload_text: payload_text.map(|_| Arc::from(text.trim())),
        }
    }

    #[test]
    fn the_text_as_sent_is_written_as_the_payload_and_reads_as_the_serialised_document() {
        for changed_lines in [None, Some(vec!["1".to_owned(), "2".to_owned()])] {
            let serialised = envelope(changed_lines.clone(), None);
            let as_sent = envelope(changed_lines, Some("text"));
            let written = as_sent.to_json().unwrap();
            // The payload exactly as sent: its key order and escapes, not serde_json's.
            assert!(
                written.ends_with(r#""payload":{"z": 1, "order": {"id": "o-1", "price": 12.50, "note": "a\u00e9\nb"}}}"#),
                "{written}"
            );
            // The same document otherwise, field for field.
            let read: Value = serde_json::from_str(&written).unwrap();
            let expected: Value = serde_json::from_str(&serialised.to_json().unwrap()).unwrap();
            assert_eq!(read, expected);
            let back: Envelope = serde_json::from_str(&written).unwrap();
            assert_eq!(back, as_sent);
            assert_eq!(back.payload_text, None);
        }
    }

    #[test]
    fn without_the_text_the_payload_is_serialised() {
        let e = envelope(None, None);
        assert_eq!(e.to_json().unwrap(), serde_json::to_string(&e).unwrap());
    }

    #[test]
    fn a_text_with_line_breaks_is_written_anew_on_one_line() {
        let mut e = envelope(None, None);
        for pretty in ["{\n  \"z\": 1\n}", "{\r\n\"z\": 1}"] {
            e.payload = serde_json::from_str(pretty).unwrap();
            e.payload_text = Some(Arc::from(pretty));
            let written = e.to_json().unwrap();
            assert!(!written.contains(['\n', '\r']), "{written}");
            assert!(written.ends_with(r#""payload":{"z":1}}"#), "{written}");
        }
    }
}
