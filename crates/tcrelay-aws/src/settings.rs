//! Where the relay's ports live on AWS: queues, table and bucket, the dedupe timings, the
//! claim check and the endpoint override, from the same variables for both Lambdas and the
//! runner's `--backend aws`. The core knows none of these.

use std::time::Duration;

use aws_config::SdkConfig;
use tcrelay_core::ConfigError;
use tcrelay_core::config::DedupeTimings;
use tcrelay_core::env::{Env, get, http_url, required};

use crate::claim_check::ClaimCheckSettings;
use crate::config::AwsConfigOptions;

/// The ERP's SQS queue URL; a `.fifo` suffix selects FIFO behaviour.
pub const TCRELAY_QUEUE_URL: &str = "TCRELAY_QUEUE_URL";
/// The quarantine SQS queue URL: authenticated requests the webhook refused, kept for an
/// operator (not the ERP queue's dead-letter queue, which the stack has besides).
pub const TCRELAY_QUARANTINE_QUEUE_URL: &str = "TCRELAY_QUARANTINE_QUEUE_URL";
/// The DynamoDB table of dedupe records (and poll cursors).
pub const TCRELAY_DEDUPE_TABLE: &str = "TCRELAY_DEDUPE_TABLE";
/// The S3 bucket for envelopes over the SQS size limit.
pub const TCRELAY_CLAIM_CHECK_BUCKET: &str = "TCRELAY_CLAIM_CHECK_BUCKET";
/// Endpoint override for every AWS client (moto, LocalStack).
pub const TCRELAY_AWS_ENDPOINT_URL: &str = "TCRELAY_AWS_ENDPOINT_URL";

/// Queues, table and bucket, the dedupe timings and the claim check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// The ERP's queue.
    pub queue_url: String,
    /// Whether [`Self::queue_url`] is a FIFO queue (its name ends in `.fifo`).
    pub queue_fifo: bool,
    /// The quarantine queue; the poller has none (nothing reaches it unauthenticated).
    pub quarantine_queue_url: Option<String>,
    /// The table of dedupe records and cursors.
    pub dedupe_table: String,
    /// The claim-check bucket; without one (poller only) envelopes over the threshold fail,
    /// and the run with them, cursor unchanged.
    pub claim_check_bucket: Option<String>,
    /// How long a completed dedupe record lives.
    pub dedupe_ttl: Duration,
    /// How long an unfinished claim blocks its key.
    pub in_progress_expiry: Duration,
    /// Endpoint override for all AWS clients (tests against moto).
    pub endpoint_url: Option<String>,
    /// The claim-check threshold override and pointer format.
    pub claim_check: ClaimCheckSettings,
}

impl AwsSettings {
    /// The webhook's and the runner's: reads [`TCRELAY_QUEUE_URL`],
    /// [`TCRELAY_QUARANTINE_QUEUE_URL`], [`TCRELAY_DEDUPE_TABLE`],
    /// [`TCRELAY_CLAIM_CHECK_BUCKET`] (all required), the dedupe timings, the claim-check
    /// settings and [`TCRELAY_AWS_ENDPOINT_URL`].
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        Self::read(env, true)
    }

    /// The poller's: as [`Self::from_env_map`] without a quarantine queue, and with the
    /// claim-check bucket optional.
    pub fn for_poller(env: &dyn Env) -> Result<Self, ConfigError> {
        Self::read(env, false)
    }

    /// `webhook`: the quarantine queue and the bucket are required, else neither is read
    /// (the bucket then optional).
    fn read(env: &dyn Env, webhook: bool) -> Result<Self, ConfigError> {
        let queue_url = required(env, TCRELAY_QUEUE_URL)?;
        http_url(TCRELAY_QUEUE_URL, &queue_url)?;
        let quarantine_queue_url = if webhook {
            let url = required(env, TCRELAY_QUARANTINE_QUEUE_URL)?;
            http_url(TCRELAY_QUARANTINE_QUEUE_URL, &url)?;
            Some(url)
        } else {
            None
        };
        let dedupe = DedupeTimings::from_env_map(env)?;
        let endpoint_url = get(env, TCRELAY_AWS_ENDPOINT_URL).map(str::to_owned);
        if let Some(url) = &endpoint_url {
            http_url(TCRELAY_AWS_ENDPOINT_URL, url)?;
        }
        let dedupe_table = required(env, TCRELAY_DEDUPE_TABLE)?;
        let claim_check_bucket = if webhook {
            Some(required(env, TCRELAY_CLAIM_CHECK_BUCKET)?)
        } else {
            get(env, TCRELAY_CLAIM_CHECK_BUCKET).map(str::to_owned)
        };
        Ok(Self {
            queue_fifo: is_fifo_queue_url(&queue_url),
            queue_url,
            quarantine_queue_url,
            dedupe_table,
            claim_check_bucket,
            dedupe_ttl: dedupe.ttl,
            in_progress_expiry: dedupe.in_progress_expiry,
            endpoint_url,
            claim_check: ClaimCheckSettings::from_env_map(env)?,
        })
    }

    /// The SDK configuration the relay runs with: AWS's standard provider chains, or the
    /// emulator at [`Self::endpoint_url`]; every call bounded
    /// ([`AwsConfigOptions::for_relay`]). For [`crate::AwsPorts::connect`] and
    /// [`crate::Secrets::new`].
    pub async fn sdk_config(&self) -> SdkConfig {
        AwsConfigOptions::for_relay(self.endpoint_url.as_deref())
            .load()
            .await
    }

    /// The dedupe timings, as the other backends take them.
    pub fn dedupe_timings(&self) -> DedupeTimings {
        DedupeTimings {
            ttl: self.dedupe_ttl,
            in_progress_expiry: self.in_progress_expiry,
        }
    }
}

/// Whether a queue URL names a FIFO queue (SQS requires FIFO queue names to end in `.fifo`).
pub fn is_fifo_queue_url(queue_url: &str) -> bool {
    queue_url.trim_end_matches('/').ends_with(".fifo")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tcrelay_core::config::{
        DEFAULT_IN_PROGRESS_EXPIRY_SECONDS, TCRELAY_DEDUPE_TTL_DAYS,
        TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
    };

    use super::*;
    use crate::claim_check::TCRELAY_CLAIM_CHECK_FORMAT;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        tcrelay_core::env::env_map(pairs)
    }

    fn full() -> HashMap<String, String> {
        env(&[
            (
                TCRELAY_QUEUE_URL,
                "https://sqs.eu-west-1.amazonaws.com/1/erp.fifo",
            ),
            (
                TCRELAY_QUARANTINE_QUEUE_URL,
                "https://sqs.eu-west-1.amazonaws.com/1/quarantine",
            ),
            (TCRELAY_DEDUPE_TABLE, "tcrelay-dedupe"),
            (TCRELAY_CLAIM_CHECK_BUCKET, "tcrelay-claims"),
        ])
    }

    #[test]
    fn defaults_and_fifo_detection() {
        let aws = AwsSettings::from_env_map(&full()).unwrap();
        assert!(aws.queue_fifo);
        assert_eq!(aws.dedupe_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(aws.in_progress_expiry, Duration::from_secs(120));
        assert_eq!(aws.endpoint_url, None);
        assert_eq!(aws.claim_check, ClaimCheckSettings::default());
        assert!(!is_fifo_queue_url("https://sqs/1/erp"));
        assert!(is_fifo_queue_url("https://sqs/1/erp.fifo/"));
    }

    #[test]
    fn every_setting_is_read() {
        let mut e = full();
        for (k, v) in [
            (TCRELAY_DEDUPE_TTL_DAYS, "7"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "60"),
            (TCRELAY_AWS_ENDPOINT_URL, "http://127.0.0.1:5000"),
            (TCRELAY_QUEUE_URL, "https://sqs/1/erp"),
            (TCRELAY_CLAIM_CHECK_FORMAT, "1.x"),
        ] {
            e.insert(k.into(), v.into());
        }
        let aws = AwsSettings::from_env_map(&e).unwrap();
        assert_eq!(aws.dedupe_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(aws.in_progress_expiry, Duration::from_secs(60));
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(!aws.queue_fifo);
        assert!(aws.claim_check.legacy_format);
        assert_eq!(
            aws.quarantine_queue_url.as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/1/quarantine")
        );
        assert_eq!(aws.claim_check_bucket.as_deref(), Some("tcrelay-claims"));
    }

    #[test]
    fn errors_name_the_variable() {
        for var in [
            TCRELAY_QUEUE_URL,
            TCRELAY_QUARANTINE_QUEUE_URL,
            TCRELAY_DEDUPE_TABLE,
            TCRELAY_CLAIM_CHECK_BUCKET,
        ] {
            let mut e = full();
            e.insert(var.into(), "  ".into()); // blank counts as unset
            let err = AwsSettings::from_env_map(&e).unwrap_err();
            assert_eq!(err, ConfigError::Missing { var });
            assert!(err.to_string().contains(var));
        }
        for (var, value) in [
            (TCRELAY_DEDUPE_TTL_DAYS, "0"),
            (TCRELAY_DEDUPE_TTL_DAYS, "-1"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "0"),
            (TCRELAY_QUEUE_URL, "erp-queue"),
            (TCRELAY_QUARANTINE_QUEUE_URL, "quarantine"),
            (TCRELAY_AWS_ENDPOINT_URL, "localhost:5000"),
        ] {
            let mut e = full();
            e.insert(var.into(), value.into());
            let err = AwsSettings::from_env_map(&e).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var: v, .. } if *v == var),
                "{var}={value}: {err:?}"
            );
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn the_poller_reads_the_resources_without_a_quarantine_queue() {
        let aws = AwsSettings::for_poller(&env(&[
            (
                TCRELAY_QUEUE_URL,
                "https://sqs.eu-west-1.amazonaws.com/1/erp.fifo",
            ),
            (TCRELAY_DEDUPE_TABLE, "relay"),
            (TCRELAY_CLAIM_CHECK_BUCKET, ""),
            (TCRELAY_DEDUPE_TTL_DAYS, "7"),
            (TCRELAY_AWS_ENDPOINT_URL, "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert_eq!(aws.dedupe_table, "relay");
        assert_eq!(aws.quarantine_queue_url, None);
        assert_eq!(aws.claim_check_bucket, None);
        assert_eq!(aws.dedupe_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(
            aws.in_progress_expiry,
            Duration::from_secs(DEFAULT_IN_PROGRESS_EXPIRY_SECONDS)
        );
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn poller_errors_name_the_variable() {
        let err = AwsSettings::for_poller(&env(&[(TCRELAY_DEDUPE_TABLE, "t")])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                var: TCRELAY_QUEUE_URL
            }
        );
        let err = AwsSettings::for_poller(&env(&[
            (TCRELAY_QUEUE_URL, "https://q"),
            (TCRELAY_DEDUPE_TABLE, "t"),
            (TCRELAY_AWS_ENDPOINT_URL, "localhost:5000"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { var, .. } if var == TCRELAY_AWS_ENDPOINT_URL));
    }
}
