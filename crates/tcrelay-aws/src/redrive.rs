//! `tcrelay dlq redrive`: messages back from the dead-letter queue to the queue, for FIFO queues
//! too (AWS's own redrive does not serve FIFO, the relay's default).
//!
//! Each message is received from the DLQ, sent to the queue with its body, its message
//! attributes (a claim-check pointer stays a pointer) and, on FIFO, the same group and
//! deduplication ids, and deleted from the DLQ only after the send succeeded. One message at a
//! time, in the order received: a FIFO DLQ hands out each group's messages in order and holds
//! a group back while one of its messages is in flight, so order within a group is kept. A
//! crash between send and delete leaves the message in both queues; on FIFO the same
//! deduplication id makes SQS drop the second send within its five-minute window.
//!
//! The same id is also why a message is left alone while younger than
//! [`RedriveOptions::min_age`]: sent again within five minutes of its first send, SQS would
//! accept it and deliver nothing.

use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use crate::error::describe;
use crate::is_fifo_queue_url;

/// How to redrive.
#[derive(Debug, Clone)]
pub struct RedriveOptions {
    /// The dead-letter queue.
    pub from: String,
    /// The queue the messages go back to.
    pub to: String,
    /// Messages sent (first enqueued) less than this long ago are left in the DLQ. Default:
    /// six minutes, beyond SQS's five-minute deduplication window.
    pub min_age: Duration,
    /// At most this many messages.
    pub limit: usize,
}

impl RedriveOptions {
    /// Every message from `from` back to `to`, with the default minimum age.
    pub fn new(from: impl Into<String>, to: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            min_age: Duration::from_secs(360),
            limit: usize::MAX,
        }
    }
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Messages sent back and deleted from the DLQ.
    pub moved: u64,
    /// Whether it stopped at a message too young to send again (left in the DLQ with the rest).
    pub stopped_at_young: bool,
}

/// Why a redrive stopped; what was moved before stays moved (see the report in the message).
#[derive(Debug, thiserror::Error)]
#[error("redrive stopped after {moved} message(s): {reason}")]
pub struct RedriveError {
    /// Messages moved before the failure.
    pub moved: u64,
    /// What failed.
    pub reason: String,
}

/// Moves messages from the DLQ back to the queue (see the module's documentation).
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    options: &RedriveOptions,
) -> Result<RedriveReport, RedriveError> {
    let fifo = is_fifo_queue_url(&options.to);
    let mut report = RedriveReport::default();
    let fail = |moved, reason| RedriveError { moved, reason };
    let mut empty_rounds = 0;
    // A short poll samples some of SQS's servers: two empty answers in a row mean empty.
    while empty_rounds < 2 && (report.moved as usize) < options.limit {
        let wanted = (options.limit - report.moved as usize).min(10) as i32;
        let batch = sqs
            .receive_message()
            .queue_url(&options.from)
            .max_number_of_messages(wanted)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .visibility_timeout(120)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| fail(report.moved, describe("SQS ReceiveMessage", &e)))?
            .messages
            .unwrap_or_default();
        if batch.is_empty() {
            empty_rounds += 1;
            continue;
        }
        empty_rounds = 0;
        for (index, message) in batch.iter().enumerate() {
            if too_young(message, options.min_age) {
                // This one and the rest of the batch (later messages of its group among them)
                // become visible again at once.
                release(sqs, &options.from, &batch[index..]).await;
                report.stopped_at_young = true;
                return Ok(report);
            }
            if let Err(reason) = move_one(sqs, options, fifo, message).await {
                release(sqs, &options.from, &batch[index + 1..]).await;
                return Err(fail(report.moved, reason));
            }
            report.moved += 1;
        }
    }
    Ok(report)
}

fn too_young(message: &Message, min_age: Duration) -> bool {
    let sent_ms = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|t| t.parse::<i64>().ok());
    let Some(sent_ms) = sent_ms else {
        return false;
    };
    let age_ms = chrono::Utc::now().timestamp_millis() - sent_ms;
    age_ms < i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX)
}

async fn move_one(
    sqs: &aws_sdk_sqs::Client,
    options: &RedriveOptions,
    fifo: bool,
    message: &Message,
) -> Result<(), String> {
    let system = |name: MessageSystemAttributeName| {
        message
            .attributes()
            .and_then(|a| a.get(&name))
            .map(String::as_str)
    };
    let mut send = sqs
        .send_message()
        .queue_url(&options.to)
        .message_body(message.body().unwrap_or_default())
        .set_message_attributes(message.message_attributes().cloned());
    if fifo {
        let group = system(MessageSystemAttributeName::MessageGroupId)
            .ok_or("a message from the DLQ has no MessageGroupId: is the DLQ a FIFO queue?")?;
        send = send.message_group_id(group);
        if let Some(dedup) = system(MessageSystemAttributeName::MessageDeduplicationId) {
            send = send.message_deduplication_id(dedup);
        }
    }
    send.send()
        .await
        .map_err(|e| describe("SQS SendMessage", &e))?;
    sqs.delete_message()
        .queue_url(&options.from)
        .receipt_handle(message.receipt_handle().unwrap_or_default())
        .send()
        .await
        .map_err(|e| {
            format!(
                "{} (the message is on the queue and still in the DLQ)",
                describe("SQS DeleteMessage", &e)
            )
        })?;
    Ok(())
}

/// Makes received messages visible again at once; a failure only delays them by the
/// visibility timeout, so it is logged, not returned.
async fn release(sqs: &aws_sdk_sqs::Client, queue_url: &str, messages: &[Message]) {
    for message in messages {
        if let Err(e) = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(message.receipt_handle().unwrap_or_default())
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %describe("SQS ChangeMessageVisibility", &e), "a DLQ message stays hidden until its visibility timeout");
        }
    }
}

/// The DLQ of `queue_url`: the `deadLetterTargetArn` of its `RedrivePolicy`, as a queue URL.
pub async fn dead_letter_queue_of(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<String, String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .map_err(|e| describe("SQS GetQueueAttributes", &e))?;
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| format!("{queue_url} has no RedrivePolicy (no dead-letter queue)"))?;
    let policy: serde_json::Value =
        serde_json::from_str(policy).map_err(|e| format!("RedrivePolicy is not JSON: {e}"))?;
    let arn = policy["deadLetterTargetArn"]
        .as_str()
        .ok_or("RedrivePolicy has no deadLetterTargetArn")?;
    // arn:aws:sqs:<region>:<account>:<name>
    let mut parts = arn.split(':').skip(4);
    let (Some(account), Some(name)) = (parts.next(), parts.next()) else {
        return Err(format!("{arn:?} is not an SQS queue ARN"));
    };
    sqs.get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| describe("SQS GetQueueUrl", &e))?
        .queue_url
        .ok_or_else(|| format!("no URL for the queue {name}"))
}
