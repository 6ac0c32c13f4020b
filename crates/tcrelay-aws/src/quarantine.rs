//! `SqsQuarantine`: requests we authenticated but could not process, kept on a queue for an
//! operator. The body is the `QuarantinedRequest` JSON (the raw body base64 inside); one over the
//! SQS limit (a 6 MB malformed body becomes 8 MB of base64) goes through the S3 claim check, so
//! nothing is lost and Extended Client consumers read it unchanged.

use async_trait::async_trait;
use tcrelay_core::ports::{Quarantine, QuarantinedRequest, StoreError};

use crate::claim_check::{ClaimCheck, Threshold};
use crate::error::unavailable;
use crate::message::{Attribute, OutgoingMessage, sqs_safe_json};
use crate::{SQS_MAX_MESSAGE_BYTES, is_fifo_queue_url};

/// The FIFO group of quarantined requests (one: operators read them in arrival order).
pub const QUARANTINE_GROUP_ID: &str = "quarantine";

/// The quarantine (dead-letter) queue as a [`Quarantine`].
#[derive(Debug, Clone)]
pub struct SqsQuarantine {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    claim_check: Option<ClaimCheck>,
    claim_check_threshold: Threshold,
}

impl SqsQuarantine {
    /// Keeps requests on `queue_url`; large ones go to S3 through `claim_check` (without one a
    /// too-large request is an error, and the webhook answers 503 rather than lose it).
    pub fn new(
        client: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        claim_check: Option<ClaimCheck>,
    ) -> Self {
        SqsQuarantine {
            client,
            queue_url: queue_url.into(),
            claim_check,
            claim_check_threshold: Threshold::fixed(SQS_MAX_MESSAGE_BYTES),
        }
    }

    /// Claim-checks messages larger than `threshold` (body plus attributes) instead of SQS's
    /// limit.
    pub fn with_claim_check_threshold(mut self, threshold: Threshold) -> Self {
        self.claim_check_threshold = threshold;
        self
    }
}

#[async_trait]
impl Quarantine for SqsQuarantine {
    async fn keep(&self, request: &QuarantinedRequest) -> Result<(), StoreError> {
        let body = serde_json::to_string(request).map_err(|e| {
            StoreError::Unavailable(format!("quarantined request does not serialise: {e}"))
        })?;
        let fifo = is_fifo_queue_url(&self.queue_url);
        let message = OutgoingMessage {
            body: sqs_safe_json(body),
            // Lets consumers and subscriptions tell quarantined requests apart without parsing.
            attributes: vec![Attribute::string("kind", "quarantined-request")],
            group_id: fifo.then(|| QUARANTINE_GROUP_ID.to_owned()),
            // Every quarantined request is its own message, even a byte-identical retry.
            deduplication_id: fifo.then(|| uuid::Uuid::new_v4().to_string()),
        }
        .claim_check_if_large(self.claim_check.as_ref(), &self.claim_check_threshold)
        .await
        .map_err(StoreError::Unavailable)?;
        let attributes = message.sqs_attributes().map_err(StoreError::Unavailable)?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&message.body)
            .set_message_attributes(Some(attributes))
            .set_message_group_id(message.group_id)
            .set_message_deduplication_id(message.deduplication_id)
            .send()
            .await
            .map_err(|e| unavailable("SQS SendMessage (quarantine)", &e))?;
        // The reason quotes the request (XML names, ids): escaped, it cannot forge a log line.
        let reason = tcrelay_core::logsafe::escape_control(&request.reason);
        tracing::info!(queue = %self.queue_url, %reason, bytes = request.body.len(), "request quarantined");
        Ok(())
    }
}
