//! The envelope: one JSON document per queue message, the contract with the ERP's consumers.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tradecloud_model::fields::{self, Member};
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub payload: Payload,
}

/// An envelope's payload: the JSON value the relay decoded, or the JSON text Tradecloud sent
/// when that text is the payload (nothing in it needed typing or filtering). Written out as
/// text it is forwarded as sent, key order and escapes included, and costs the relay no
/// value tree: building, writing and dropping one was over half of the poller's CPU and a
/// fifth of the webhook's.
#[derive(Debug, Clone)]
pub struct Payload(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Value(Value),
    /// A JSON text on one line.
    Text(Arc<str>),
}

impl Payload {
    /// A payload the relay decoded or changed.
    pub fn value(value: Value) -> Self {
        Self(Repr::Value(value))
    }

    /// Tradecloud's own JSON text of the payload, forwarded as sent. A text with line breaks
    /// (pretty-printed, between its tokens) is decoded by `value` instead, so an envelope
    /// stays one line (exports write JSON Lines, one envelope per line). `text` must be a
    /// JSON text: the caller read it as one. A caller that holds the value already hands it
    /// over with an infallible `value`.
    pub fn as_sent<E>(
        text: Arc<str>,
        value: impl FnOnce(&str) -> Result<Value, E>,
    ) -> Result<Self, E> {
        if text.contains(['\n', '\r']) {
            return value(&text).map(Self::value);
        }
        Ok(Self(Repr::Text(text)))
    }

    /// The text as sent, when this payload is one.
    pub fn text(&self) -> Option<&str> {
        match &self.0 {
            Repr::Text(text) => Some(text),
            Repr::Value(_) => None,
        }
    }

    /// The payload as a JSON value; a text is parsed.
    pub fn to_value(&self) -> serde_json::Result<std::borrow::Cow<'_, Value>> {
        Ok(match &self.0 {
            Repr::Value(value) => std::borrow::Cow::Borrowed(value),
            Repr::Text(text) => std::borrow::Cow::Owned(serde_json::from_str(text)?),
        })
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self::value(value)
    }
}

impl PartialEq for Payload {
    /// Equal when they are the same JSON value, however each is held.
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Value(a), Repr::Value(b)) => a == b,
            _ => matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b),
        }
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        matches!(self.to_value(), Ok(value) if *value == *other)
    }
}

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Value(value) => value.serialize(serializer),
            Repr::Text(text) => serde_json::from_str::<&serde_json::value::RawValue>(text)
                .map_err(serde::ser::Error::custom)?
                .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::value)
    }
}

/// The envelope's document without its payload, field for field as `Envelope` serialises
/// them ([`Envelope::head`] destructures every field, and a test compares the documents).
#[derive(Serialize)]
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
    /// The whole body as JSON: its own text when that is the payload ([`Payload::as_sent`]).
    pub payload: Payload,
}

/// The identifying fields of a complete order or shipment, read leniently from its JSON by the
/// rules every channel reads them by ([`tradecloud_model::fields`]): a webhook POST's event
/// gives the same fields for the same state, so one state has one key on every channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    /// An order's `orderId`, else its `id` (a shipment's `id`), else the id it was requested by.
    pub id: String,
    /// `version`, as a number or a numeric string (Tradecloud once quoted numbers, TC-6431).
    pub version: Option<u64>,
    /// `lastUpdatedAt`, else `meta.lastUpdatedAt` (shipments).
    pub last_updated_at: Option<String>,
    /// `meta.messageId`.
    pub message_id: Option<String>,
}

/// The members of an object's text an [`ObjectState`] is read from, each as the text holds it
/// (`None`: absent): for a reader that takes them in the same pass as other members of the
/// object (the poller, with an order's lines).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawMembers<'a> {
    /// `orderId`: give it for orders only (a shipment is named by its `id`).
    pub order_id: Option<&'a RawValue>,
    /// `id`.
    pub id: Option<&'a RawValue>,
    /// `version`.
    pub version: Option<&'a RawValue>,
    /// `lastUpdatedAt`.
    pub last_updated_at: Option<&'a RawValue>,
    /// `meta.lastUpdatedAt`.
    pub meta_last_updated_at: Option<&'a RawValue>,
    /// `meta.messageId`.
    pub message_id: Option<&'a RawValue>,
}

impl ObjectState {
    /// Reads the fields from `object`, an object of `class`.
    pub fn of(object: &Value, class: ObjectClass, requested_id: &str) -> Self {
        fn member(value: Option<&Value>) -> Option<Member<'_>> {
            value.and_then(Member::of_value)
        }
        let meta = |key: &str| object.get("meta").and_then(|meta| meta.get(key));
        Self::from_members(
            [
                member(is_order(class).then(|| object.get("orderId")).flatten()),
                member(object.get("id")),
                member(object.get("version")),
                member(object.get("lastUpdatedAt")),
                member(meta("lastUpdatedAt")),
                member(meta("messageId")),
            ],
            requested_id,
        )
    }

    /// Reads the fields from the JSON text of an object of `class` without building the object
    /// (a poll page's item): only the members read are decoded, by the same rules as
    /// [`ObjectState::of`]. `Err` when `json` is not JSON.
    pub fn of_text(json: &str, class: ObjectClass, requested_id: &str) -> serde_json::Result<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Members<'a> {
            #[serde(borrow)]
            order_id: Option<&'a RawValue>,
            #[serde(borrow)]
            id: Option<&'a RawValue>,
            #[serde(borrow)]
            version: Option<&'a RawValue>,
            #[serde(borrow)]
            last_updated_at: Option<&'a RawValue>,
            #[serde(borrow)]
            meta: Option<Meta<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta<'a> {
            #[serde(borrow)]
            last_updated_at: Option<&'a RawValue>,
            #[serde(borrow)]
            message_id: Option<&'a RawValue>,
        }

        let Ok(members) = serde_json::from_str::<Members<'_>>(json) else {
            // Not an object of this shape (a repeated key, a `meta` that is no object): read
            // whole, as `of` reads it.
            return Ok(Self::of(&serde_json::from_str(json)?, class, requested_id));
        };
        let meta = members.meta.as_ref();
        Self::of_raw_members(
            RawMembers {
                order_id: members.order_id.filter(|_| is_order(class)),
                id: members.id,
                version: members.version,
                last_updated_at: members.last_updated_at,
                meta_last_updated_at: meta.and_then(|m| m.last_updated_at),
                message_id: meta.and_then(|m| m.message_id),
            },
            requested_id,
        )
    }

    /// Reads the fields from the members as an object's text holds them, by the same rules as
    /// [`ObjectState::of`], without building values for them (a string without escapes is
    /// read where it lies). `Err` when one is not JSON.
    pub fn of_raw_members(members: RawMembers<'_>, requested_id: &str) -> serde_json::Result<Self> {
        fn member(raw: Option<&RawValue>) -> serde_json::Result<Option<Member<'_>>> {
            raw.map(Member::of_raw).transpose().map(Option::flatten)
        }
        Ok(Self::from_members(
            [
                member(members.order_id)?,
                member(members.id)?,
                member(members.version)?,
                member(members.last_updated_at)?,
                member(members.meta_last_updated_at)?,
                member(members.message_id)?,
            ],
            requested_id,
        ))
    }

    /// The rules ([`tradecloud_model::fields`]), from the members `orderId` (orders only),
    /// `id`, `version`, `lastUpdatedAt`, `meta.lastUpdatedAt` and `meta.messageId`.
    fn from_members(members: [Option<Member<'_>>; 6], requested_id: &str) -> Self {
        let [
            order_id,
            id,
            version,
            last_updated_at,
            meta_last_updated_at,
            message_id,
        ] = members;
        let (_, id) = fields::order_id_member(order_id, id);
        Self {
            id: fields::id(id).unwrap_or_else(|| requested_id.to_owned()),
            version: fields::version(version),
            last_updated_at: fields::last_updated_at(last_updated_at, || meta_last_updated_at),
            message_id: fields::text(message_id),
        }
    }
}

/// Whether objects of `class` are orders, named by `orderId` when they carry one (as the
/// webhook's order and order-documents events are).
fn is_order(class: ObjectClass) -> bool {
    class != ObjectClass::Shipment
}

/// One object's group: `<class>:<id>`. The FIFO `MessageGroupId`, and the unit the relay keeps
/// in order ([`crate::gate`]).
///
/// SQS takes a group id of at most 128 characters, each an ASCII letter, digit or punctuation
/// mark, and refuses the message otherwise, again on every retry: a stalled poll stream, a
/// webhook message answered 503 on every retry (Tradecloud retries a 503 without end).
/// Tradecloud's ids are not always bare UUIDs (`…-PO2189` ends in the buyer's order number,
/// which may hold a space or an accent), so an id SQS would refuse is replaced by its SHA-256
/// (`<class>:sha256-<hex>`): still one group per object, and a text no plain id has (ids with
/// `-` after `sha256` are hashed too, so the two forms cannot meet).
pub fn group_id(class: ObjectClass, id: &str) -> String {
    let plain = format!("{class}:{id}");
    let sqs_safe = plain.len() <= MAX_GROUP_ID_LEN
        && plain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation())
        && !id.starts_with("sha256-");
    if sqs_safe {
        plain
    } else {
        format!(
            "{class}:sha256-{}",
            hex::encode(Sha256::digest(id.as_bytes()))
        )
    }
}

/// SQS's limit on `MessageGroupId`.
const MAX_GROUP_ID_LEN: usize = 128;

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
        Self::bare(
            Source::WebhookGet,
            kind,
            String::new(),
            dedupe_key,
            Payload::value(object),
        )
        .with_state(state)
    }

    /// The envelope of a polled object, admitted under its state key: `changed_lines` are the
    /// lines that changed since the previous cursor (`None` when the object could not be read
    /// for its lines), `payload` the object as prepared for the ERP.
    pub fn of_polled(
        kind: ObjectKind,
        state: ObjectState,
        dedupe_key: String,
        changed_lines: Option<Vec<String>>,
        payload: Payload,
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
        payload: Payload,
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

    /// The envelope as its JSON document on one line, the body of its queue message. A payload
    /// held as text ([`Payload::as_sent`]) is written as that text.
    pub fn to_json(&self) -> serde_json::Result<String> {
        let Some(text) = self.payload.text() else {
            return serde_json::to_string(self);
        };
        // The text is not checked again (serialising `self` would): it was read as JSON.
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

    /// What SQS accepts as a `MessageGroupId`.
    fn sqs_accepts(group: &str) -> bool {
        group.len() <= 128
            && !group.is_empty()
            && group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation())
    }

    #[test]
    fn every_group_id_is_one_sqs_accepts_and_plain_ids_stay_readable() {
        let uuid_po = "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189";
        assert_eq!(
            group_id(ObjectClass::Order, uuid_po),
            format!("order:{uuid_po}")
        );
        let long = "x".repeat(123);
        for id in [
            "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO 2189",
            "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189-Müller",
            "tab\there",
            long.as_str(),
            "sha256-looks-hashed",
        ] {
            for class in [
                ObjectClass::Order,
                ObjectClass::OrderDocuments,
                ObjectClass::Shipment,
            ] {
                let group = group_id(class, id);
                assert!(sqs_accepts(&group), "{id:?}: {group}");
                assert_eq!(group, group_id(class, id), "stable");
                assert!(group.starts_with(&format!("{class}:sha256-")), "{group}");
            }
        }
        // Distinct ids stay distinct groups, and a plain id cannot meet a hashed one.
        assert_ne!(
            group_id(ObjectClass::Order, "a b"),
            group_id(ObjectClass::Order, "a  b")
        );
        let hashed = group_id(ObjectClass::Order, "a b");
        let spelled = hashed.trim_start_matches("order:");
        assert_ne!(group_id(ObjectClass::Order, spelled), hashed);
    }

    const TEXT: &str = r#"{"z": 1, "order": {"id": "o-1", "price": 12.50, "note": "a\u00e9\nb"}}"#;

    fn envelope(changed_lines: Option<Vec<String>>, payload: Payload) -> Envelope {
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
            payload,
        }
    }

    fn as_sent(text: &str) -> Payload {
        Payload::as_sent(Arc::from(text), |t| serde_json::from_str(t)).unwrap()
    }

    #[test]
    fn the_text_as_sent_is_written_as_the_payload_and_reads_as_the_serialised_document() {
        for changed_lines in [None, Some(vec!["1".to_owned(), "2".to_owned()])] {
            let value = Payload::value(serde_json::from_str(TEXT).unwrap());
            let serialised = envelope(changed_lines.clone(), value);
            let as_sent = envelope(changed_lines, as_sent(TEXT));
            let written = as_sent.to_json().unwrap();
            // The payload exactly as sent: its key order and escapes, not serde_json's.
            assert!(
                written.ends_with(&format!(r#""payload":{TEXT}}}"#)),
                "{written}"
            );
            // The same document otherwise, field for field, and the same by serde.
            let read: Value = serde_json::from_str(&written).unwrap();
            let expected: Value = serde_json::from_str(&serialised.to_json().unwrap()).unwrap();
            assert_eq!(read, expected);
            assert_eq!(serde_json::to_string(&as_sent).unwrap(), written);
            let back: Envelope = serde_json::from_str(&written).unwrap();
            assert_eq!(back, as_sent);
            assert_eq!(back, serialised);
            // Read back, the payload is a value again.
            assert_eq!(back.payload.text(), None);
        }
    }

    #[test]
    fn payloads_are_equal_when_their_values_are() {
        let value = Payload::value(serde_json::from_str(TEXT).unwrap());
        assert_eq!(as_sent(TEXT), value);
        assert_eq!(value, as_sent(TEXT));
        assert_ne!(as_sent(r#"{"z": 2}"#), value);
        assert_ne!(as_sent(r#"{"z": 2}"#), as_sent(r#"{"z": 1}"#));
        assert_eq!(as_sent(r#"{"z": 1}"#), as_sent(r#"{ "z" : 1 }"#));
    }

    #[test]
    fn without_the_text_the_payload_is_serialised() {
        let e = envelope(None, Payload::value(serde_json::from_str(TEXT).unwrap()));
        assert_eq!(e.to_json().unwrap(), serde_json::to_string(&e).unwrap());
        assert!(
            e.to_json().unwrap().ends_with(
                r#""payload":{"order":{"id":"o-1","note":"aé\nb","price":12.50},"z":1}}"#
            )
        );
    }

    #[test]
    fn a_text_with_line_breaks_is_written_anew_on_one_line() {
        for pretty in ["{\n  \"z\": 1\n}", "{\r\n\"z\": 1}"] {
            let payload = as_sent(pretty);
            assert_eq!(payload.text(), None);
            let written = envelope(None, payload).to_json().unwrap();
            assert!(!written.contains(['\n', '\r']), "{written}");
            assert!(written.ends_with(r#""payload":{"z":1}}"#), "{written}");
        }
        // A webhook's event with such a text goes as its decoded value.
        let event = InboundEvent {
            kind: ObjectKind::Order,
            id: "o-1".to_owned(),
            event_name: "OrderIssuedByBuyer".to_owned(),
            version: None,
            last_updated_at: None,
            message_id: None,
            line_ids: Vec::new(),
            format: Format::Json,
            payload: as_sent("{\n\"z\": 1}"),
        };
        let written = Envelope::of_event(event, "k".to_owned()).to_json().unwrap();
        assert!(written.ends_with(r#""payload":{"z":1}}"#), "{written}");
    }

    #[test]
    fn the_state_reads_alike_from_text_and_value() {
        for text in [
            r#"{"id":"o-1","version":3,"lastUpdatedAt":"2025-01-01T00:00:00Z","meta":{"messageId":"m"}}"#,
            r#"{"id":"o-1","version":"4 ","meta":{"lastUpdatedAt":"2025-01-01T00:00:00","messageId":""}}"#,
            r#"{"id":"","version":-1,"lastUpdatedAt":"","meta":null,"lines":[{"id":"x"}]}"#,
            r#"{"id":5,"version":3.5,"lastUpdatedAt":7,"meta":{"lastUpdatedAt":"t","messageId":9}}"#,
            r#"{"id":"o-\u0031","version":null,"id":"o-2","meta":"text"}"#,
            r#"{"id":"o-1","meta":[1]}"#,
            r#"{"orderId":"o-9","id":"o-1","lastUpdatedAt":" ","meta":{"lastUpdatedAt":"t"}}"#,
            r#"{"orderId":null,"id":"o-1","meta":{"messageId":" "}}"#,
            r#"{"orderId":7,"id":"o-1","id":"o-2"}"#,
            r#"{}"#,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            for class in [ObjectClass::Order, ObjectClass::Shipment] {
                assert_eq!(
                    ObjectState::of_text(text, class, "asked").unwrap(),
                    ObjectState::of(&value, class, "asked"),
                    "{text}"
                );
            }
        }
        assert_eq!(
            ObjectState::of_text(r#"{"id":"o-\u0031"}"#, ObjectClass::Order, "")
                .unwrap()
                .id,
            "o-1"
        );
        assert!(ObjectState::of_text("{", ObjectClass::Order, "").is_err());
    }

    #[test]
    fn the_state_reads_padded_members_as_the_webhook_decoder_does() {
        // The webhook trims the ids and times it reads; a polled or fetched object is read alike,
        // so one state has one key whichever channel brings it.
        let state = ObjectState::of_text(
            "{\"id\":\" o-1\\n\",\"lastUpdatedAt\":\"\\t2025-01-01T00:00:00.000Z \",\"meta\":{\"messageId\":\" m \"}}",
            ObjectClass::Order,
            "asked",
        )
        .unwrap();
        assert_eq!(state.id, "o-1");
        assert_eq!(
            state.last_updated_at.as_deref(),
            Some("2025-01-01T00:00:00.000Z")
        );
        assert_eq!(state.message_id.as_deref(), Some("m"));
        assert_eq!(
            ObjectState::of_text(r#"{"id":"  "}"#, ObjectClass::Order, "asked")
                .unwrap()
                .id,
            "  "
        );
    }
}
