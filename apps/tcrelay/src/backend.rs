//! The four ports on either backend: one SQLite file, or DynamoDB/SQS/S3 as the Lambdas use them.

use std::sync::Arc;

use tcrelay_aws::{
    AwsClients, AwsConfigOptions, ClaimCheck, ClaimCheckSettings, DedupeConfig, DynamoCursorStore,
    DynamoDedupeStore, SQS_MAX_MESSAGE_BYTES, SqsQuarantine, SqsSink, SqsSinkConfig,
    claim_check_threshold,
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
    /// Messages over SQS's largest size go through the claim check; [`Self::aws_for_queues`]
    /// asks the queues instead.
    pub fn aws(clients: &AwsClients, resources: &AwsResources) -> Self {
        let fixed = Thresholds {
            queue: SQS_MAX_MESSAGE_BYTES,
            quarantine: SQS_MAX_MESSAGE_BYTES,
            legacy_format: false,
        };
        Self::aws_with(clients, resources, fixed)
    }

    /// As [`Self::aws`], with the claim-check thresholds from each queue's
    /// `MaximumMessageSize` (or the override) and the pointer format of `settings`.
    pub async fn aws_for_queues(
        clients: &AwsClients,
        resources: &AwsResources,
        settings: &ClaimCheckSettings,
    ) -> Self {
        let thresholds = Thresholds {
            queue: claim_check_threshold(&clients.sqs, &resources.queue_url, settings).await,
            quarantine: claim_check_threshold(
                &clients.sqs,
                &resources.quarantine_queue_url,
                settings,
            )
            .await,
            legacy_format: settings.legacy_format,
        };
        Self::aws_with(clients, resources, thresholds)
    }

    fn aws_with(clients: &AwsClients, resources: &AwsResources, thresholds: Thresholds) -> Self {
        let claim_check = ClaimCheck::new(clients.s3.clone(), resources.claim_check_bucket.clone())
            .with_legacy_format(thresholds.legacy_format);
        let mut sink_config = SqsSinkConfig::new(resources.queue_url.clone());
        sink_config.claim_check_threshold = thresholds.queue;
        let sink = SqsSink::new(clients.sqs.clone(), sink_config, Some(claim_check.clone()));
        let mut dedupe_config = DedupeConfig::new(resources.dedupe_table.clone());
        dedupe_config.ttl = resources.dedupe_ttl;
        dedupe_config.in_progress_expiry = resources.in_progress_expiry;
        Self {
            sink: Arc::new(sink),
            dedupe: Arc::new(DynamoDedupeStore::new(
                clients.dynamodb.clone(),
                dedupe_config,
            )),
            quarantine: Arc::new(
                SqsQuarantine::new(
                    clients.sqs.clone(),
                    resources.quarantine_queue_url.clone(),
                    Some(claim_check),
                )
                .with_claim_check_threshold(thresholds.quarantine),
            ),
            cursors: Arc::new(DynamoCursorStore::new(
                clients.dynamodb.clone(),
                resources.dedupe_table.clone(),
            )),
        }
    }
}

/// The claim-check thresholds and format of the AWS ports.
struct Thresholds {
    queue: usize,
    quarantine: usize,
    legacy_format: bool,
}

/// AWS clients for the standard provider chains, or for an emulator at `endpoint_url`, with the
/// same bounded calls as the Lambda functions.
pub async fn aws_clients(endpoint_url: Option<&str>) -> AwsClients {
    AwsClients::new(&AwsConfigOptions::for_relay(endpoint_url).load().await)
}
