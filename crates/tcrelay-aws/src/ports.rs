//! The one AWS wiring of the relay's ports, shared by the webhook Lambda, the poller Lambda and
//! the runner's `--backend aws`: bounded SDK clients, the SQS sink and quarantine with the S3
//! claim check, the DynamoDB dedupe store and cursors.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::SQS_MAX_MESSAGE_BYTES;
use crate::claim_check::{ClaimCheck, Threshold};
use crate::config::AwsClients;
use crate::cursor::DynamoCursorStore;
use crate::dedupe::{DedupeConfig, DynamoDedupeStore};
use crate::quarantine::SqsQuarantine;
use crate::settings::AwsSettings;
use crate::sink::{SqsSink, SqsSinkConfig};

/// The AWS adapters of every port, wired from one [`AwsSettings`].
#[derive(Clone)]
pub struct AwsPorts {
    /// The clients the adapters share.
    pub clients: AwsClients,
    /// The ERP's queue (claim-checking what is over its threshold when there is a bucket).
    pub sink: Arc<SqsSink>,
    /// Dedupe records.
    pub dedupe: Arc<DynamoDedupeStore>,
    /// Refused-but-authenticated requests; `None` without a quarantine queue (the poller).
    pub quarantine: Option<Arc<SqsQuarantine>>,
    /// Poll cursors, in the dedupe table.
    pub cursors: Arc<DynamoCursorStore>,
}

impl std::fmt::Debug for AwsPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsPorts")
            .field("quarantine", &self.quarantine.is_some())
            .finish_non_exhaustive()
    }
}

/// The claim-check thresholds of the two queues.
#[derive(Debug, Clone)]
struct Thresholds {
    queue: Threshold,
    quarantine: Threshold,
}

impl AwsPorts {
    /// The ports on the SDK configuration `sdk` (from [`AwsSettings::sdk_config`]), as
    /// [`Self::with_clients`] wires them.
    pub fn connect(sdk: &SdkConfig, settings: &AwsSettings) -> Self {
        Self::with_clients(AwsClients::new(sdk), settings)
    }

    /// The ports on `clients`, each queue's claim-check threshold from its own
    /// `MaximumMessageSize` (or the override), asked once, in the background from now on (see
    /// [`Threshold`]): start-up does not wait for SQS.
    pub fn with_clients(clients: AwsClients, settings: &AwsSettings) -> Self {
        let of_queue = |url: &str| Threshold::of_queue(&clients.sqs, url, &settings.claim_check);
        let thresholds = Thresholds {
            queue: of_queue(&settings.queue_url),
            quarantine: match &settings.quarantine_queue_url {
                Some(url) => of_queue(url),
                None => Threshold::fixed(SQS_MAX_MESSAGE_BYTES),
            },
        };
        thresholds.queue.prefetch();
        thresholds.quarantine.prefetch();
        Self::wire(clients, settings, thresholds)
    }

    /// The ports on `clients` without asking the queues: everything over SQS's largest
    /// message size goes through the claim check (tests on an emulator).
    pub fn with_fixed_thresholds(clients: AwsClients, settings: &AwsSettings) -> Self {
        let fixed = Thresholds {
            queue: Threshold::fixed(SQS_MAX_MESSAGE_BYTES),
            quarantine: Threshold::fixed(SQS_MAX_MESSAGE_BYTES),
        };
        Self::wire(clients, settings, fixed)
    }

    fn wire(clients: AwsClients, settings: &AwsSettings, thresholds: Thresholds) -> Self {
        let claim_check = settings.claim_check_bucket.as_ref().map(|bucket| {
            ClaimCheck::new(clients.s3.clone(), bucket.clone())
                .with_legacy_format(settings.claim_check.legacy_format)
        });
        let mut sink_config = SqsSinkConfig::new(settings.queue_url.clone());
        sink_config.claim_check_threshold = thresholds.queue;
        let sink = SqsSink::new(clients.sqs.clone(), sink_config, claim_check.clone());
        let mut dedupe_config = DedupeConfig::new(settings.dedupe_table.clone());
        dedupe_config.ttl = settings.dedupe_ttl;
        dedupe_config.in_progress_expiry = settings.in_progress_expiry;
        let quarantine = settings.quarantine_queue_url.as_ref().map(|url| {
            Arc::new(
                SqsQuarantine::new(clients.sqs.clone(), url.clone(), claim_check)
                    .with_claim_check_threshold(thresholds.quarantine),
            )
        });
        Self {
            sink: Arc::new(sink),
            dedupe: Arc::new(DynamoDedupeStore::new(
                clients.dynamodb.clone(),
                dedupe_config,
            )),
            quarantine,
            cursors: Arc::new(DynamoCursorStore::new(
                clients.dynamodb.clone(),
                settings.dedupe_table.clone(),
            )),
            clients,
        }
    }
}
