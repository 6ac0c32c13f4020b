//! Shared helpers: receiving, envelopes, a movable clock. Clients for moto and unique resources
//! come from `tcrelay_aws::testing`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use tcrelay_aws::testing::{create_table, moto_clients};
use tcrelay_aws::{AwsClients, DedupeConfig, DynamoCursorStore, DynamoDedupeStore};
use tcrelay_core::clock::ManualClock;
use tcrelay_core::conformance::{cursor_store, dedupe_store};
use tcrelay_core::envelope::{ENVELOPE_SCHEMA, Envelope, Source};
use tcrelay_core::ports::{CursorStore, DedupeStore};
use tradecloud_model::{Format, ObjectKind};

/// Receives (and deletes) `n` messages, with message and system attributes, in delivery order.
pub async fn receive(clients: &AwsClients, queue_url: &str, n: usize) -> Vec<Message> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut messages = Vec::new();
    while messages.len() < n {
        assert!(
            Instant::now() < deadline,
            "received {} of {n} messages",
            messages.len()
        );
        let output = clients
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        for message in output.messages.unwrap_or_default() {
            // Deleting releases a FIFO group, so its next message becomes receivable.
            clients
                .sqs
                .delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete");
            messages.push(message);
        }
    }
    messages
}

/// The queue holds no (further) visible message.
pub async fn assert_empty(clients: &AwsClients, queue_url: &str) {
    let output = clients
        .sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    assert!(
        output.messages.unwrap_or_default().is_empty(),
        "queue should be empty"
    );
}

/// A message's `String`/`Number` attributes as plain strings.
pub fn attributes(message: &Message) -> HashMap<String, (String, String)> {
    message
        .message_attributes()
        .map(|attrs| {
            attrs
                .iter()
                .map(|(name, value)| {
                    (
                        name.clone(),
                        (
                            value.data_type().to_owned(),
                            value.string_value().unwrap_or_default().to_owned(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An envelope of `kind` for object `id`, state number `n`.
pub fn envelope(kind: ObjectKind, id: &str, n: usize, event_name: Option<&str>) -> Envelope {
    Envelope {
        schema: ENVELOPE_SCHEMA.to_owned(),
        source: if event_name.is_some() {
            Source::WebhookPost
        } else {
            Source::Poll
        },
        kind,
        event_name: event_name.map(str::to_owned),
        id: id.to_owned(),
        version: Some(n as u64),
        last_updated_at: Some(format!("2026-03-01T10:00:00.{n:03}Z")),
        message_id: None,
        dedupe_key: format!("{}:{id}:{n}:{}", kind.object_class(), uuid::Uuid::new_v4()),
        received_at: "2026-03-01T10:00:01.000Z".to_owned(),
        format: Format::Json,
        changed_lines: None,
        payload: serde_json::json!({"order": {"id": id, "n": n, "price": "12.3400"}}).into(),
    }
}

/// Both stores on one fresh table (as deployed: cursors share the dedupe table), with the dedupe
/// contract's expiries and one clock the conformance suites move; the subject of both the
/// cursor and the dedupe contract.
pub struct FreshTable {
    pub cursors: DynamoCursorStore,
    pub dedupe: DynamoDedupeStore,
    pub clock: ManualClock,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
}

impl cursor_store::Subject for FreshTable {
    fn store(&self) -> &dyn CursorStore {
        &self.cursors
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl dedupe_store::Subject for FreshTable {
    fn store(&self) -> &dyn DedupeStore {
        &self.dedupe
    }

    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// A [`FreshTable`] in moto.
pub async fn fresh_table() -> FreshTable {
    let clients = moto_clients().await;
    let table = create_table(&clients, "tcrelay").await;
    let clock = ManualClock::starting_now();
    let cursors =
        DynamoCursorStore::new(clients.dynamodb.clone(), &table).with_clock(clock.clock());
    let mut config = DedupeConfig::new(table.clone());
    config.ttl = dedupe_store::TTL;
    config.in_progress_expiry = dedupe_store::IN_PROGRESS_EXPIRY;
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), config).with_clock(clock.clock());
    FreshTable {
        cursors,
        dedupe,
        clock,
        dynamodb: clients.dynamodb.clone(),
        table,
    }
}
