//! The four ports on either backend: one SQLite file, or DynamoDB/SQS/S3 as the Lambdas use them.

use std::sync::Arc;

use tcrelay_aws::settings::TCRELAY_QUARANTINE_QUEUE_URL;
use tcrelay_aws::{AwsClients, AwsConfigOptions, AwsPorts};
use tcrelay_core::ConfigError;
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

    /// The AWS adapters, wired as the Lambdas wire them ([`AwsPorts`]); the runner needs
    /// the quarantine queue the webhook does.
    pub fn aws(aws: AwsPorts) -> Result<Self, ConfigError> {
        let quarantine = aws.quarantine.ok_or(ConfigError::Missing {
            var: TCRELAY_QUARANTINE_QUEUE_URL,
        })?;
        Ok(Self {
            sink: aws.sink,
            dedupe: aws.dedupe,
            quarantine,
            cursors: aws.cursors,
        })
    }
}

/// AWS clients for the standard provider chains, or for an emulator at `endpoint_url`, with the
/// same bounded calls as the Lambda functions.
pub async fn aws_clients(endpoint_url: Option<&str>) -> AwsClients {
    AwsClients::new(&AwsConfigOptions::for_relay(endpoint_url).load().await)
}
