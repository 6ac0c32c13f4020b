//! AWS adapters of the relay ports: SQS sink and quarantine, DynamoDB dedupe and cursor, S3 claim
//! check; and the credentials from Secrets Manager.
//!
//! Every adapter takes an `aws_sdk_*::Client`; [`AwsPorts::connect`] is the one wiring of all
//! of them from [`AwsSettings`], used by both Lambdas and the runner.
//! Every failure of an AWS call maps to a transient error of the port (`StoreError::Unavailable`,
//! `SinkError`): the webhook answers 503 and Tradecloud retries, so nothing is lost.

pub mod claim_check;
pub mod clock;
pub mod config;
pub mod cursor;
pub mod dedupe;
pub mod doctor;
mod error;
mod message;
pub mod ports;
pub mod quarantine;
pub mod redrive;
pub mod secrets;
pub mod settings;
pub mod sink;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use claim_check::{
    ClaimCheck, ClaimCheckError, ClaimCheckSettings, PayloadS3Pointer, Threshold,
    claim_check_threshold, read_claim_checked,
};
pub use clock::{Clock, system_clock};
pub use config::{AwsClients, AwsConfigOptions, aws_config_for};
pub use cursor::DynamoCursorStore;
pub use dedupe::{DedupeConfig, DynamoDedupeStore};
pub use ports::AwsPorts;
pub use quarantine::SqsQuarantine;
pub use secrets::{CredentialsError, SecretError, Secrets};
pub use settings::{AwsSettings, is_fifo_queue_url};
pub use sink::{SqsSink, SqsSinkConfig};
pub use table::create_table_if_missing;

/// SQS's limit for one message and for the sum of one batch: 1 MiB (body plus message attributes).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1_048_576;
