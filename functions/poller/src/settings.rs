//! What the poller reads at start-up, and the AWS resources it uses (from the same variables
//! as the webhook's). The poller
//! needs no quarantine queue (nothing reaches it unauthenticated), so it does not require one.

use std::time::Duration;

use tcrelay_core::config::TradecloudSettings;
use tcrelay_core::config::{
    ConfigError, DedupeTimings, TCRELAY_AWS_ENDPOINT_URL, TCRELAY_CLAIM_CHECK_BUCKET,
    TCRELAY_DEDUPE_TABLE, TCRELAY_QUEUE_URL,
};
use tcrelay_core::env::{Env, get, http_url, required};
use tcrelay_poll::PollConfig;

/// A setting the poller cannot start with; the message names the variable.
pub type SettingsError = ConfigError;

/// Why the poller cannot start; the message names the variable.
pub type StartupError = ConfigError;

/// Everything the function reads from its environment at start-up (besides `RUST_LOG` and the
/// variables the Lambda runtime and the AWS SDK read themselves).
#[derive(Debug, Clone)]
pub struct StartupSettings {
    /// The poll loop.
    pub poll: PollConfig,
    /// Queue, table, bucket.
    pub aws: PollerAws,
    /// Tradecloud's API and login (the login may still come from Secrets Manager).
    pub tradecloud: TradecloudSettings,
}

impl StartupSettings {
    /// Reads every section.
    pub fn from_env(env: &dyn Env) -> Result<Self, StartupError> {
        Ok(Self {
            poll: PollConfig::from_env_map(env)?,
            aws: PollerAws::from_env_map(env)?,
            tradecloud: TradecloudSettings::from_env_map(env)?,
        })
    }
}

/// Queue, table, bucket and dedupe timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerAws {
    /// The ERP's queue.
    pub queue_url: String,
    /// The table of dedupe records and cursors.
    pub dedupe_table: String,
    /// The claim-check bucket for envelopes over SQS's size limit; without one such envelopes
    /// fail (and the run with them, cursor unchanged).
    pub claim_check_bucket: Option<String>,
    /// How long a completed dedupe record lives.
    pub dedupe_ttl: Duration,
    /// How long an unfinished claim blocks its key.
    pub in_progress_expiry: Duration,
    /// Endpoint override for every AWS client (moto).
    pub endpoint_url: Option<String>,
}

impl PollerAws {
    /// Reads `TCRELAY_QUEUE_URL` and `TCRELAY_DEDUPE_TABLE` (required),
    /// `TCRELAY_CLAIM_CHECK_BUCKET`, `TCRELAY_DEDUPE_TTL_DAYS`,
    /// `TCRELAY_IN_PROGRESS_EXPIRY_SECONDS` and `TCRELAY_AWS_ENDPOINT_URL`.
    pub fn from_env_map(env: &dyn Env) -> Result<Self, SettingsError> {
        let queue_url = required(env, TCRELAY_QUEUE_URL)?;
        http_url(TCRELAY_QUEUE_URL, &queue_url)?;
        let dedupe = DedupeTimings::from_env_map(env)?;
        let endpoint_url = get(env, TCRELAY_AWS_ENDPOINT_URL).map(str::to_owned);
        if let Some(endpoint) = &endpoint_url {
            http_url(TCRELAY_AWS_ENDPOINT_URL, endpoint)?;
        }
        Ok(Self {
            queue_url,
            dedupe_table: required(env, TCRELAY_DEDUPE_TABLE)?,
            claim_check_bucket: get(env, TCRELAY_CLAIM_CHECK_BUCKET).map(str::to_owned),
            dedupe_ttl: dedupe.ttl,
            in_progress_expiry: dedupe.in_progress_expiry,
            endpoint_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tcrelay_core::config::{DEFAULT_IN_PROGRESS_EXPIRY_SECONDS, TCRELAY_DEDUPE_TTL_DAYS};

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        tcrelay_core::env::env_map(pairs)
    }

    #[test]
    fn reads_the_resources_without_a_quarantine_queue() {
        let aws = PollerAws::from_env_map(&env(&[
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
        assert_eq!(aws.claim_check_bucket, None);
        assert_eq!(aws.dedupe_ttl, Duration::from_secs(7 * 86_400));
        assert_eq!(
            aws.in_progress_expiry,
            Duration::from_secs(DEFAULT_IN_PROGRESS_EXPIRY_SECONDS)
        );
        assert_eq!(aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    }

    #[test]
    fn errors_name_the_variable() {
        let err = PollerAws::from_env_map(&env(&[(TCRELAY_DEDUPE_TABLE, "t")])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                var: TCRELAY_QUEUE_URL
            }
        );
        let err = PollerAws::from_env_map(&env(&[
            (TCRELAY_QUEUE_URL, "https://q"),
            (TCRELAY_DEDUPE_TABLE, "t"),
            (TCRELAY_AWS_ENDPOINT_URL, "localhost:5000"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { var, .. } if var == TCRELAY_AWS_ENDPOINT_URL));
    }
}
