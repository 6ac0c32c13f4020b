//! The four ports on either backend: one SQLite file, or DynamoDB/SQS/S3 as the Lambdas use them.

use std::sync::Arc;

use tcrelay_aws::{
    AwsClients, AwsConfigOptions, ClaimCheck, DedupeConfig, DynamoCursorStore, DynamoDedupeStore,
    SqsQuarantine, SqsSink, SqsSinkConfig,
};
use tcrelay_core::config::AwsResources;
use tcrelay_core::ports::{CursorStore, DedupeStore, EventSink, Quarantine};
use tcrelay_sqlite::SqliteStore;

/// The ports the webhook and the poll loop share.
#[derive(Clone)]
pub struct Ports {
    /// The ERP's queue.
    pub sink: Arc<dyn EventSink>,
    /// Dedupe records, shared by every channel.
    pub dedupe: Arc<dyn DedupeStore>,
    /// Refused-but-authenticated requests.
    pub quarantine: Arc<dyn Quarantine>,
    /// Poll cursors with leases.
    pub cursors: Arc<dyn CursorStore>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

impl Ports {
    /// Every port on one SQLite store (clones share its connection).
    pub fn sqlite(store: &SqliteStore) -> Self {
        Self {
            sink: Arc::new(store.clone()),
            dedupe: Arc::new(store.clone()),
            quarantine: Arc::new(store.clone()),
            cursors: Arc::new(store.clone()),
        }
    }

    /// The AWS adapters, wired exactly as the webhook Lambda wires them (claim check for large
    /// envelopes and quarantined requests; cursors in the dedupe table as the poller keeps them).
    pub fn aws(clients: &AwsClients, resources: &AwsResources) -> Self {
        let claim_check = ClaimCheck::new(clients.s3.clone(), resources.claim_check_bucket.clone());
        let sink = SqsSink::new(
            clients.sqs.clone(),
            SqsSinkConfig::new(resources.queue_url.clone()),
            Some(claim_check.clone()),
        );
        let mut dedupe_config = DedupeConfig::new(resources.dedupe_table.clone());
        dedupe_config.ttl = resources.dedupe_ttl;
        dedupe_config.in_progress_expiry = resources.in_progress_expiry;
        Self {
            sink: Arc::new(sink),
            dedupe: Arc::new(DynamoDedupeStore::new(
                clients.dynamodb.clone(),
                dedupe_config,
            )),
            quarantine: Arc::new(SqsQuarantine::new(
                clients.sqs.clone(),
                resources.quarantine_queue_url.clone(),
                Some(claim_check),
            )),
            cursors: Arc::new(DynamoCursorStore::new(
                clients.dynamodb.clone(),
                resources.dedupe_table.clone(),
            )),
        }
    }
}

/// AWS clients for the standard provider chains, or for an emulator at `endpoint_url`, with the
/// same bounded calls as the Lambda functions.
pub async fn aws_clients(endpoint_url: Option<&str>) -> AwsClients {
    AwsClients::new(&AwsConfigOptions::for_relay(endpoint_url).load().await)
}
