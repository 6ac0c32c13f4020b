//! The AWS resources the poller uses, from the same variables as the webhook's. The poller
//! needs no quarantine queue (nothing reaches it unauthenticated), so it does not require one.

use std::collections::HashMap;
use std::time::Duration;

use tcrelay_core::config::{
    ConfigError, DEFAULT_DEDUPE_TTL_DAYS, DEFAULT_IN_PROGRESS_EXPIRY_SECONDS,
    TCRELAY_AWS_ENDPOINT_URL, TCRELAY_CLAIM_CHECK_BUCKET, TCRELAY_DEDUPE_TABLE,
    TCRELAY_DEDUPE_TTL_DAYS, TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, TCRELAY_QUEUE_URL,
};

/// A setting the poller cannot start with; the message names the variable.
pub type SettingsError = ConfigError;

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
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let queue_url = required(env, TCRELAY_QUEUE_URL)?;
        url(TCRELAY_QUEUE_URL, &queue_url)?;
        let ttl_days = number(env, TCRELAY_DEDUPE_TTL_DAYS, DEFAULT_DEDUPE_TTL_DAYS)?;
        if !(1..=365).contains(&ttl_days) {
            return Err(invalid(
                TCRELAY_DEDUPE_TTL_DAYS,
                "must be between 1 and 365",
            ));
        }
        let expiry = number(
            env,
            TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
            DEFAULT_IN_PROGRESS_EXPIRY_SECONDS,
        )?;
        if !(1..=86_400).contains(&expiry) {
            return Err(invalid(
                TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
                "must be between 1 and 86400",
            ));
        }
        let endpoint_url = get(env, TCRELAY_AWS_ENDPOINT_URL).map(str::to_owned);
        if let Some(endpoint) = &endpoint_url {
            url(TCRELAY_AWS_ENDPOINT_URL, endpoint)?;
        }
        Ok(Self {
            queue_url,
            dedupe_table: required(env, TCRELAY_DEDUPE_TABLE)?,
            claim_check_bucket: get(env, TCRELAY_CLAIM_CHECK_BUCKET).map(str::to_owned),
            dedupe_ttl: Duration::from_secs(ttl_days * 86_400),
            in_progress_expiry: Duration::from_secs(expiry),
            endpoint_url,
        })
    }
}

fn get<'a>(env: &'a HashMap<String, String>, var: &str) -> Option<&'a str> {
    env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required(env: &HashMap<String, String>, var: &'static str) -> Result<String, SettingsError> {
    get(env, var)
        .map(str::to_owned)
        .ok_or(ConfigError::Missing { var })
}

fn invalid(var: &'static str, reason: &str) -> SettingsError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

fn url(var: &'static str, text: &str) -> Result<(), SettingsError> {
    if text.starts_with("https://") || text.starts_with("http://") {
        Ok(())
    } else {
        Err(invalid(var, "must be an http(s) URL"))
    }
}

fn number(
    env: &HashMap<String, String>,
    var: &'static str,
    default: u64,
) -> Result<u64, SettingsError> {
    match get(env, var) {
        None => Ok(default),
        Some(text) => text
            .parse()
            .map_err(|_| invalid(var, "must be a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
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
