//! AWS adapters of the relay ports: SQS sink and quarantine, DynamoDB dedupe and cursor, S3 claim
//! check; and the credentials from Secrets Manager.
//!
//! Every adapter takes an `aws_sdk_*::Client` built by the caller (the functions' `main.rs`, or
//! [`config::AwsClients`]), so the binaries decide about endpoints, credentials and timeouts.
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
pub mod quarantine;
pub mod redrive;
pub mod secrets;
pub mod sink;
pub mod table;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use claim_check::{
    ClaimCheck, ClaimCheckError, ClaimCheckSettings, PayloadS3Pointer, claim_check_threshold,
    read_claim_checked,
};
pub use clock::{Clock, system_clock};
pub use config::{AwsClients, AwsConfigOptions, aws_config_for};
pub use cursor::DynamoCursorStore;
pub use dedupe::{DedupeConfig, DynamoDedupeStore};
pub use quarantine::SqsQuarantine;
pub use secrets::{CredentialsError, SecretError, Secrets};
pub use sink::{SqsSink, SqsSinkConfig};
pub use table::create_table_if_missing;

/// SQS's limit for one message and for the sum of one batch: 1 MiB (body plus message attributes).
pub const SQS_MAX_MESSAGE_BYTES: usize = 1_048_576;

/// Whether a queue URL names a FIFO queue (SQS requires FIFO queue names to end in `.fifo`).
pub fn is_fifo_queue_url(queue_url: &str) -> bool {
    queue_url.trim_end_matches('/').ends_with(".fifo")
}
