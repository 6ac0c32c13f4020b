//! The envelope: one JSON document per queue message, the contract with the ERP's consumers.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tradecloud_model::{Format, ObjectClass, ObjectKind};

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
    pub payload: serde_json::Value,
}

/// One object's group: `<class>:<id>`. The FIFO `MessageGroupId`, and the unit the relay keeps
/// in order ([`crate::gate`]).
pub fn group_id(class: ObjectClass, id: &str) -> String {
    format!("{class}:{id}")
}

impl Envelope {
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
