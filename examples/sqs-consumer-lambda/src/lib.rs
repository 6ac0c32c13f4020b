//! An example consumer of tradecloud-relay's queue: a Lambda function triggered by SQS that
//! reads each envelope (following the S3 claim check of large ones), hands it to the ERP import,
//! and reports the messages it could not import as partial batch failures, so SQS redelivers
//! only those. The contract it relies on is docs/consumers.md.
//!
//! Configure the event source mapping with `FunctionResponseTypes: [ReportBatchItemFailures]`;
//! without it Lambda ignores the response and a single failure redelivers the whole batch.
//!
//! FIFO queues: a failed message must not be overtaken by the later messages of its group, so
//! once one message fails, every later message of the batch is reported failed too (AWS's
//! advice for FIFO partial batch responses; a batch can hold several groups, and this keeps the
//! rule simple).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use serde::Deserialize;

/// The envelope versions this consumer understands.
pub const KNOWN_SCHEMAS: [&str; 1] = ["tradecloud-relay/1"];

/// The message attribute of a claim-checked message (Extended Client 2.x and later).
pub const PAYLOAD_SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
/// The same attribute as the Extended Client 1.x names it.
pub const LEGACY_PAYLOAD_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// The fields of an envelope this consumer uses; the others are ignored, as the contract asks.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// `tradecloud-relay/1`.
    pub schema: String,
    /// `order`, `single-delivery-order`, `order-documents` or `shipment`.
    pub kind: String,
    /// The order id or shipment id.
    pub id: String,
    /// Tradecloud's event name (webhook POST only).
    pub event_name: Option<String>,
    /// Tradecloud's object version.
    pub version: Option<u64>,
    /// The key the relay admitted the message under; the same key means the same message.
    pub dedupe_key: String,
    /// The Tradecloud message or object.
    pub payload: serde_json::Value,
}

/// Why one message could not be handled (it stays on the queue and comes back).
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// The message has no body.
    #[error("message without a body")]
    NoBody,
    /// The claim-check pointer or the envelope is not what the contract says.
    #[error("not an envelope: {0}")]
    NotAnEnvelope(String),
    /// An envelope version this consumer does not know: upgrade the consumer.
    #[error("unknown envelope schema {0:?}")]
    UnknownSchema(String),
    /// The S3 object of a claim check could not be read.
    #[error("claim check: {0}")]
    ClaimCheck(String),
    /// The ERP import failed.
    #[error("import: {0}")]
    Import(String),
}

/// Reads the S3 objects claim-check pointers name.
#[async_trait]
pub trait PayloadStore: Send + Sync {
    /// The object's content.
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String>;
}

/// [`PayloadStore`] on S3.
#[derive(Debug, Clone)]
pub struct S3Payloads(pub aws_sdk_s3::Client);

#[async_trait]
impl PayloadStore for S3Payloads {
    async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
        let object = self
            .0
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("GetObject s3://{bucket}/{key}: {e}"))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| format!("GetObject s3://{bucket}/{key}: {e}"))?;
        Ok(bytes.into_bytes().to_vec())
    }
}

/// The pointer body `["software.amazon.payloadoffloading.PayloadS3Pointer", {...}]`.
#[derive(Debug, Deserialize)]
struct Pointer {
    #[serde(rename = "s3BucketName")]
    bucket: String,
    #[serde(rename = "s3Key")]
    key: String,
}

/// The message's envelope text: its body, or the S3 object its claim check points to.
pub async fn envelope_text(
    message: &SqsMessage,
    payloads: &dyn PayloadStore,
) -> Result<String, ConsumeError> {
    let body = message.body.as_deref().ok_or(ConsumeError::NoBody)?;
    let attributes = &message.message_attributes;
    let Some(size) = attributes
        .get(PAYLOAD_SIZE_ATTRIBUTE)
        .or_else(|| attributes.get(LEGACY_PAYLOAD_SIZE_ATTRIBUTE))
    else {
        return Ok(body.to_owned());
    };
    let (_class, pointer): (String, Pointer) = serde_json::from_str(body)
        .map_err(|e| ConsumeError::NotAnEnvelope(format!("claim-check pointer: {e}")))?;
    let bytes = payloads
        .get(&pointer.bucket, &pointer.key)
        .await
        .map_err(ConsumeError::ClaimCheck)?;
    let announced = size.string_value.as_deref().unwrap_or_default();
    if announced.trim() != bytes.len().to_string() {
        return Err(ConsumeError::ClaimCheck(format!(
            "object has {} bytes, the message announced {announced}",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|_| ConsumeError::ClaimCheck("not UTF-8".into()))
}

/// Parses an envelope and checks its schema version.
pub fn parse_envelope(text: &str) -> Result<Envelope, ConsumeError> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| ConsumeError::NotAnEnvelope(e.to_string()))?;
    if !KNOWN_SCHEMAS.contains(&envelope.schema.as_str()) {
        return Err(ConsumeError::UnknownSchema(envelope.schema));
    }
    Ok(envelope)
}

/// Handles one batch: each message's envelope goes to `import`; the ids of the messages that
/// failed (and, on a FIFO queue, every message after the first failure) are returned as batch
/// item failures.
pub async fn handle_batch<F>(
    event: SqsEvent,
    payloads: &dyn PayloadStore,
    mut import: F,
) -> SqsBatchResponse
where
    F: FnMut(&Envelope) -> Result<(), String>,
{
    let mut response = SqsBatchResponse::default();
    let mut failed_fifo = false;
    for message in &event.records {
        let id = message.message_id.clone().unwrap_or_default();
        let fifo = message.attributes.contains_key("MessageGroupId");
        if failed_fifo {
            response.batch_item_failures.push(failure(id));
            continue;
        }
        let result = match envelope_text(message, payloads).await {
            Ok(text) => parse_envelope(&text)
                .and_then(|envelope| import(&envelope).map_err(ConsumeError::Import)),
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            tracing::warn!(message_id = %id, %error, "message not imported; SQS redelivers it");
            response.batch_item_failures.push(failure(id));
            failed_fifo |= fifo;
        }
    }
    response
}

fn failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

/// Message attributes by name, as `String` values (for logging or routing by `kind`).
pub fn string_attributes(message: &SqsMessage) -> HashMap<&str, &str> {
    message
        .message_attributes
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.string_value.as_deref()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_lambda_events::event::sqs::SqsMessageAttribute;
    use tcrelay_core::{Envelope as RelayEnvelope, Source};
    use tradecloud_model::{Format, ObjectKind};

    use super::*;

    /// Payloads in memory, as S3 would hold them.
    struct Memory(HashMap<(String, String), Vec<u8>>);

    #[async_trait]
    impl PayloadStore for Memory {
        async fn get(&self, bucket: &str, key: &str) -> Result<Vec<u8>, String> {
            self.0
                .get(&(bucket.to_owned(), key.to_owned()))
                .cloned()
                .ok_or_else(|| format!("no object {bucket}/{key}"))
        }
    }

    /// An envelope exactly as the relay serialises it.
    fn relay_envelope(id: &str, schema: &str) -> String {
        // A webhook POST's envelope: its payload written as Tradecloud sent it.
        let sent = r#"{ "orderEvent": {"lines": [{"quantity": 12.50}]} }"#;
        RelayEnvelope {
            schema: schema.to_owned(),
            source: Source::WebhookPost,
            kind: ObjectKind::Order,
            event_name: Some("OrderIssuedByBuyer".into()),
            id: id.to_owned(),
            version: Some(3),
            last_updated_at: Some("2026-11-22T16:45:10.001Z".into()),
            message_id: None,
            dedupe_key: format!("msg/order/{id}/x"),
            received_at: "2026-11-22T16:45:11.000Z".into(),
            format: Format::Json,
            changed_lines: None,
            payload: tcrelay_core::envelope::Payload::as_sent(sent.into(), |t| {
                serde_json::from_str(t)
            })
            .unwrap(),
        }
        .to_json()
        .unwrap()
    }

    fn message(id: &str, body: &str, fifo: bool) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.to_owned());
        message.body = Some(body.to_owned());
        if fifo {
            message
                .attributes
                .insert("MessageGroupId".into(), "order:o".into());
        }
        message
    }

    fn claim_checked(id: &str, size: usize, attribute: &str) -> SqsMessage {
        let mut m = message(
            id,
            r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#,
            false,
        );
        let mut value = SqsMessageAttribute::default();
        value.data_type = Some("Number".into());
        value.string_value = Some(size.to_string());
        m.message_attributes.insert(attribute.into(), value);
        m
    }

    fn event(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }

    #[test]
    fn knows_the_schema_the_relay_writes() {
        assert!(KNOWN_SCHEMAS.contains(&tcrelay_core::envelope::ENVELOPE_SCHEMA));
    }

    #[tokio::test]
    async fn imports_envelopes_with_exact_decimals_and_reports_only_failures() {
        let store = Memory(HashMap::new());
        let imported = Mutex::new(Vec::new());
        let records = vec![
            message("m1", &relay_envelope("o1", "tradecloud-relay/1"), false),
            message("m2", "not json", false),
            message("m3", &relay_envelope("o3", "tradecloud-relay/2"), false),
            message("m4", &relay_envelope("o4", "tradecloud-relay/1"), false),
        ];
        let response = handle_batch(event(records), &store, |e| {
            imported.lock().unwrap().push((
                e.id.clone(),
                e.payload["orderEvent"]["lines"][0]["quantity"].to_string(),
            ));
            Ok(())
        })
        .await;
        assert_eq!(failed(&response), ["m2", "m3"]);
        assert_eq!(
            *imported.lock().unwrap(),
            [
                ("o1".to_owned(), "12.50".to_owned()),
                ("o4".to_owned(), "12.50".to_owned())
            ]
        );
    }

    #[tokio::test]
    async fn on_fifo_everything_after_a_failure_is_reported_failed() {
        let store = Memory(HashMap::new());
        let records = ["o1", "o2", "o3"]
            .iter()
            .enumerate()
            .map(|(i, id)| {
                message(
                    &format!("m{}", i + 1),
                    &relay_envelope(id, "tradecloud-relay/1"),
                    true,
                )
            })
            .collect();
        let response = handle_batch(event(records), &store, |e| {
            if e.id == "o2" {
                Err("ERP down".into())
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(failed(&response), ["m2", "m3"]);
    }

    #[tokio::test]
    async fn claim_checks_are_followed_under_either_attribute_name() {
        let envelope = relay_envelope("big", "tradecloud-relay/1");
        let store = Memory(HashMap::from([(
            ("b".to_owned(), "k".to_owned()),
            envelope.clone().into_bytes(),
        )]));
        for attribute in [PAYLOAD_SIZE_ATTRIBUTE, LEGACY_PAYLOAD_SIZE_ATTRIBUTE] {
            let text = envelope_text(&claim_checked("m", envelope.len(), attribute), &store)
                .await
                .unwrap();
            assert_eq!(parse_envelope(&text).unwrap().id, "big");
        }
        let wrong_size = claim_checked("m", envelope.len() + 1, PAYLOAD_SIZE_ATTRIBUTE);
        assert!(matches!(
            envelope_text(&wrong_size, &store).await,
            Err(ConsumeError::ClaimCheck(_))
        ));
        let missing = Memory(HashMap::new());
        let response = handle_batch(
            event(vec![claim_checked(
                "m9",
                envelope.len(),
                PAYLOAD_SIZE_ATTRIBUTE,
            )]),
            &missing,
            |_| Ok(()),
        )
        .await;
        assert_eq!(failed(&response), ["m9"]);
    }
}
