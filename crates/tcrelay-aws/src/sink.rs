//! `SqsSink`: the ERP's queue, standard or FIFO, through `SendMessageBatch`.
//!
//! Batches hold at most 10 entries and at most 1 MiB (bodies plus attributes). A batch call can
//! answer HTTP 200 and still refuse entries: every entry is checked, entries refused through no
//! fault of ours (`SenderFault=false`) are retried with back-off a bounded number of times, and
//! what still failed is reported by index in `SinkError::failed`.
//!
//! FIFO queues keep each group's order: a group's messages go out one at a time, each only after
//! the previous one of its group was accepted (one batch holds at most one message per group,
//! batches fill up with other groups), and after a group's first failure its later messages are
//! not sent at all (they are reported as failed), so a retry can never overtake them.
//!
//! The batch requests are written by `request`, not the SDK's serializer: the same bytes,
//! for a fraction of the CPU.
//!
//! Messages are prepared (and large ones stored in S3) a few at a time, in order: a poll page
//! of large orders is a hundred S3 uploads, which one after the other could take longer than
//! the poller's time for the page.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt as _;
use futures::stream::FuturesOrdered;
use tcrelay_core::envelope::Envelope;
use tcrelay_core::ports::{EventSink, SinkError};

use crate::claim_check::{ClaimCheck, Threshold};
use crate::error::describe;
use crate::message::{Attribute, OutgoingMessage, sqs_safe_json};
use crate::{SQS_MAX_MESSAGE_BYTES, is_fifo_queue_url};

mod request;

/// SQS's limit of entries per `SendMessageBatch`.
pub const SQS_MAX_BATCH_ENTRIES: usize = 10;

/// How many messages are prepared at once: their S3 uploads, when large, overlap this much.
/// A batch's worth, so a batch's uploads take about one upload's time, without opening a
/// connection per message of a page.
const PREPARED_AT_ONCE: usize = SQS_MAX_BATCH_ENTRIES;

/// Settings of an [`SqsSink`].
#[derive(Debug, Clone)]
pub struct SqsSinkConfig {
    /// The queue URL; a name ending in `.fifo` makes it a FIFO queue.
    pub queue_url: String,
    /// Messages larger than this (body plus attributes, in bytes) go through the S3 claim check.
    /// Default: SQS's limit, [`SQS_MAX_MESSAGE_BYTES`].
    pub claim_check_threshold: Threshold,
    /// The most bytes (bodies plus attributes) one batch carries. Default: SQS's limit.
    pub max_batch_bytes: usize,
    /// How often an entry refused with `SenderFault=false` is sent again before it counts as
    /// failed. Default: 3.
    pub entry_retries: u32,
    /// Back-off before the first retry; doubled for each further one. Default: 50 ms.
    pub retry_base_delay: Duration,
}

impl SqsSinkConfig {
    /// Defaults for `queue_url`.
    pub fn new(queue_url: impl Into<String>) -> Self {
        SqsSinkConfig {
            queue_url: queue_url.into(),
            claim_check_threshold: Threshold::fixed(SQS_MAX_MESSAGE_BYTES),
            max_batch_bytes: SQS_MAX_MESSAGE_BYTES,
            entry_retries: 3,
            retry_base_delay: Duration::from_millis(50),
        }
    }
}

/// The ERP queue as an [`EventSink`].
pub struct SqsSink {
    transport: Arc<dyn BatchTransport>,
    config: SqsSinkConfig,
    claim_check: Option<ClaimCheck>,
    fifo: bool,
}

impl std::fmt::Debug for SqsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsSink")
            .field("config", &self.config)
            .field("claim_check", &self.claim_check)
            .field("fifo", &self.fifo)
            .finish_non_exhaustive()
    }
}

impl SqsSink {
    /// A sink sending to `config.queue_url` with `client`; envelopes over the threshold go to
    /// S3 through `claim_check` (without one they fail, reported by index).
    pub fn new(
        client: aws_sdk_sqs::Client,
        config: SqsSinkConfig,
        claim_check: Option<ClaimCheck>,
    ) -> Self {
        let transport = Arc::new(SqsTransport {
            client: request::with_batch_requests(client),
            queue_url: config.queue_url.clone(),
        });
        Self::with_transport(transport, config, claim_check)
    }

    fn with_transport(
        transport: Arc<dyn BatchTransport>,
        config: SqsSinkConfig,
        claim_check: Option<ClaimCheck>,
    ) -> Self {
        let fifo = is_fifo_queue_url(&config.queue_url);
        SqsSink {
            transport,
            config,
            claim_check,
            fifo,
        }
    }

    /// Whether the queue is FIFO (its URL ends in `.fifo`).
    pub fn is_fifo(&self) -> bool {
        self.fifo
    }

    /// The message for one envelope: the envelope JSON as body, attributes for filtering, FIFO
    /// ids, and the claim check when it is too large.
    async fn prepare(&self, envelope: &Envelope) -> Result<OutgoingMessage, String> {
        let body = envelope
            .to_json()
            .map_err(|e| format!("envelope does not serialise: {e}"))?;
        let mut attributes = Vec::with_capacity(5);
        // SQS refuses empty attribute values; an empty one carries nothing to filter on anyway.
        let mut push = |name: &str, value: &str| {
            if !value.is_empty() {
                attributes.push(Attribute::string(name, value));
            }
        };
        push("kind", envelope.kind.as_str());
        if let Some(event_name) = &envelope.event_name {
            push("eventName", event_name);
        }
        push("id", &envelope.id);
        push("source", envelope.source.as_str());
        let (group_id, deduplication_id) = if self.fifo {
            (
                Some(envelope.message_group_id()),
                Some(envelope.deduplication_id()),
            )
        } else {
            (None, None)
        };
        OutgoingMessage {
            body: sqs_safe_json(body),
            attributes,
            group_id,
            deduplication_id,
        }
        .claim_check_if_large(
            self.claim_check.as_ref(),
            &self.config.claim_check_threshold,
        )
        .await
    }

    /// [`Self::prepare`] of each envelope, in order, [`PREPARED_AT_ONCE`] at a time.
    async fn prepare_all(&self, envelopes: &[&Envelope]) -> Vec<Result<OutgoingMessage, String>> {
        let mut prepared = Vec::with_capacity(envelopes.len());
        for chunk in envelopes.chunks(PREPARED_AT_ONCE) {
            let mut preparing = FuturesOrdered::new();
            for envelope in chunk {
                preparing.push_back(self.prepare(envelope));
            }
            while let Some(outcome) = preparing.next().await {
                prepared.push(outcome);
            }
        }
        prepared
    }

    /// Splits messages (in the given order) into batches within SQS's limits.
    fn pack<'a>(&self, messages: Vec<(usize, &'a OutgoingMessage)>) -> Vec<Batch<'a>> {
        let mut batches = Vec::new();
        let mut current: Batch<'a> = Vec::new();
        let mut bytes = 0;
        for (index, message) in messages {
            let size = message.size();
            if !current.is_empty()
                && (current.len() == SQS_MAX_BATCH_ENTRIES
                    || bytes + size > self.config.max_batch_bytes)
            {
                batches.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push((index, message));
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }

    /// Sends one batch, retrying entries refused with `SenderFault=false`.
    async fn send_batch(&self, batch: Batch<'_>) -> BatchReport {
        let mut report = BatchReport::default();
        let mut pending = batch;
        let mut retries = 0;
        loop {
            let answer = match self.transport.send(&pending).await {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::warn!(queue = %self.config.queue_url, entries = pending.len(), %error, "SendMessageBatch failed");
                    report
                        .failed
                        .extend(pending.iter().map(|(index, _)| (*index, error.clone())));
                    report.call_failed = true;
                    return report;
                }
            };
            let succeeded: HashSet<&str> = answer.succeeded.iter().map(String::as_str).collect();
            let refused: HashMap<&str, &EntryFailure> =
                answer.failed.iter().map(|f| (f.id.as_str(), f)).collect();
            let mut again = Vec::new();
            for (index, message) in pending {
                let id = entry_id(index);
                if succeeded.contains(id.as_str()) {
                    report.delivered.push(index);
                    continue;
                }
                match refused.get(id.as_str()) {
                    Some(failure) if failure.sender_fault => {
                        tracing::warn!(queue = %self.config.queue_url, index, code = %failure.code, "SQS refused a message");
                        report.failed.push((index, failure.describe()));
                    }
                    Some(failure) => again.push((index, message, failure.describe())),
                    None => again.push((
                        index,
                        message,
                        "SQS answered neither success nor failure for the entry".to_owned(),
                    )),
                }
            }
            if again.is_empty() {
                return report;
            }
            if retries >= self.config.entry_retries {
                tracing::warn!(queue = %self.config.queue_url, entries = again.len(), "SQS kept refusing messages, giving up");
                report
                    .failed
                    .extend(again.into_iter().map(|(index, _, reason)| (index, reason)));
                return report;
            }
            let delay = self.config.retry_base_delay * 2u32.saturating_pow(retries);
            retries += 1;
            tracing::debug!(queue = %self.config.queue_url, entries = again.len(), retry = retries, "retrying messages SQS refused transiently");
            tokio::time::sleep(delay).await;
            pending = again
                .into_iter()
                .map(|(index, message, _)| (index, message))
                .collect();
        }
    }

    /// Standard queue: batches in order; a refused entry does not hold the others back, but a
    /// failed call stops the rest (the queue is unreachable; don't wait out every timeout).
    async fn enqueue_standard(&self, envelopes: &[Envelope], failures: &mut Failures) {
        let mut prepared = Vec::with_capacity(envelopes.len());
        let all: Vec<&Envelope> = envelopes.iter().collect();
        for (index, outcome) in self.prepare_all(&all).await.into_iter().enumerate() {
            match outcome {
                Ok(message) => prepared.push((index, message)),
                Err(reason) => {
                    failures.insert(index, reason);
                }
            }
        }
        let messages = prepared.iter().map(|(i, m)| (*i, m)).collect();
        let mut call_failed = false;
        for batch in self.pack(messages) {
            if call_failed {
                for (index, _) in batch {
                    failures.insert(index, "not sent: an earlier batch call failed".to_owned());
                }
                continue;
            }
            let report = self.send_batch(batch).await;
            failures.extend(report.failed);
            call_failed = report.call_failed;
        }
    }

    /// FIFO queue: rounds of one message per group (the oldest unsent one), batched; a group
    /// stops at its first failure.
    async fn enqueue_fifo(&self, envelopes: &[Envelope], failures: &mut Failures) {
        // Groups in order of first appearance, each with its messages in the caller's order.
        let mut groups: Vec<VecDeque<usize>> = Vec::new();
        let mut group_of: HashMap<String, usize> = HashMap::new();
        for (index, envelope) in envelopes.iter().enumerate() {
            let slot = *group_of
                .entry(envelope.message_group_id())
                .or_insert_with(|| {
                    groups.push(VecDeque::new());
                    groups.len() - 1
                });
            groups[slot].push_back(index);
        }
        let block = |group: &mut VecDeque<usize>, failures: &mut Failures, first: usize| {
            for later in group.drain(..) {
                failures.entry(later).or_insert_with(|| {
                    format!("not sent: message {first} of the same FIFO group failed first")
                });
            }
        };
        loop {
            let heads: Vec<(usize, usize)> = groups
                .iter()
                .enumerate()
                .filter_map(|(slot, group)| group.front().map(|&head| (slot, head)))
                .collect();
            let of_heads: Vec<&Envelope> =
                heads.iter().map(|&(_, head)| &envelopes[head]).collect();
            let prepared = self.prepare_all(&of_heads).await;
            let mut round = Vec::new();
            for (&(slot, head), outcome) in heads.iter().zip(prepared) {
                match outcome {
                    Ok(message) => round.push((slot, head, message)),
                    Err(reason) => {
                        failures.insert(head, reason);
                        block(&mut groups[slot], failures, head);
                    }
                }
            }
            if round.is_empty() {
                return;
            }
            let slot_of: HashMap<usize, usize> =
                round.iter().map(|(slot, head, _)| (*head, *slot)).collect();
            let messages = round.iter().map(|(_, head, m)| (*head, m)).collect();
            for batch in self.pack(messages) {
                let report = self.send_batch(batch).await;
                for index in report.delivered {
                    groups[slot_of[&index]].pop_front();
                }
                for (index, reason) in report.failed {
                    failures.insert(index, reason);
                    block(&mut groups[slot_of[&index]], failures, index);
                }
                if report.call_failed {
                    for group in &mut groups {
                        for index in group.drain(..) {
                            failures.entry(index).or_insert_with(|| {
                                "not sent: an earlier batch call failed".to_owned()
                            });
                        }
                    }
                    return;
                }
            }
        }
    }
}

#[async_trait]
impl EventSink for SqsSink {
    async fn enqueue(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        if envelopes.is_empty() {
            return Ok(());
        }
        let mut failures = Failures::new();
        if self.fifo {
            self.enqueue_fifo(envelopes, &mut failures).await;
        } else {
            self.enqueue_standard(envelopes, &mut failures).await;
        }
        let Some((first, reason)) = failures.iter().next() else {
            tracing::debug!(queue = %self.config.queue_url, messages = envelopes.len(), "enqueued");
            return Ok(());
        };
        let reason = format!("first failure, message {first}: {reason}");
        tracing::warn!(queue = %self.config.queue_url, failed = failures.len(), of = envelopes.len(), %reason, "enqueue incomplete");
        Err(SinkError {
            failed: failures.into_keys().collect(),
            reason,
        })
    }
}

/// Failed indexes (sorted) and why.
type Failures = BTreeMap<usize, String>;

/// Messages of one batch call, each with its index in the caller's slice.
type Batch<'a> = Vec<(usize, &'a OutgoingMessage)>;

/// What became of one batch (after retries).
#[derive(Debug, Default)]
struct BatchReport {
    delivered: Vec<usize>,
    failed: Vec<(usize, String)>,
    /// The call itself failed (not single entries): stop sending.
    call_failed: bool,
}

/// The batch entry id of a message: its index in the caller's slice, unique within a batch.
fn entry_id(index: usize) -> String {
    format!("m{index}")
}

/// A refused entry as SQS reports it.
#[derive(Debug, Clone)]
struct EntryFailure {
    id: String,
    sender_fault: bool,
    code: String,
    message: Option<String>,
}

impl EntryFailure {
    fn describe(&self) -> String {
        format!(
            "SQS refused the message ({}, sender fault: {}): {}",
            self.code,
            self.sender_fault,
            self.message.as_deref().unwrap_or("no message")
        )
    }
}

/// The answer to one batch call, by entry id.
#[derive(Debug, Default)]
struct BatchAnswer {
    succeeded: Vec<String>,
    failed: Vec<EntryFailure>,
}

/// One `SendMessageBatch` call; a seam so the retry and ordering logic can be tested with
/// scripted answers SQS emulators cannot produce (transient per-entry failures).
#[async_trait]
trait BatchTransport: Send + Sync {
    async fn send(&self, batch: &[(usize, &OutgoingMessage)]) -> Result<BatchAnswer, String>;
}

struct SqsTransport {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

#[async_trait]
impl BatchTransport for SqsTransport {
    async fn send(&self, batch: &[(usize, &OutgoingMessage)]) -> Result<BatchAnswer, String> {
        let entries = batch
            .iter()
            .map(|(index, message)| message.to_batch_entry(&entry_id(*index)))
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| describe("SQS SendMessageBatch", &e))?;
        Ok(BatchAnswer {
            succeeded: output
                .successful()
                .iter()
                .map(|s| s.id().to_owned())
                .collect(),
            failed: output
                .failed()
                .iter()
                .map(|f| EntryFailure {
                    id: f.id().to_owned(),
                    sender_fault: f.sender_fault(),
                    code: f.code().to_owned(),
                    message: f.message().map(str::to_owned),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
