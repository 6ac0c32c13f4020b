//! The runner's settings: the same environment variables as the Lambdas, read section by section
//! so the local SQLite backend does not demand the AWS-only ones (queue URL, table, bucket).
//!
//! `tcrelay_core::Config::from_env_map` parses every section at once and requires the AWS
//! resources; its section parsers are public, so this module calls only those it needs. The
//! dedupe timings (`TCRELAY_DEDUPE_TTL_DAYS`, `TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`) live in the
//! core's AWS section; for SQLite they are read here with the same names, defaults and bounds.

use std::collections::HashMap;
use std::time::Duration;

use tcrelay_core::ConfigError;
use tcrelay_core::config::{
    AwsResources, DEFAULT_DEDUPE_TTL_DAYS, DEFAULT_IN_PROGRESS_EXPIRY_SECONDS,
    TCRELAY_AWS_ENDPOINT_URL, TCRELAY_DEDUPE_TTL_DAYS, TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
    TradecloudSettings, WebhookConfig,
};
use tcrelay_poll::{PollConfig, PollConfigError};

/// A setting the runner cannot start with; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A webhook, Tradecloud or AWS setting.
    #[error(transparent)]
    Core(#[from] ConfigError),
    /// A `TCRELAY_POLL_*` setting.
    #[error(transparent)]
    Poll(#[from] PollConfigError),
}

/// Where the ports live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// One SQLite file: queue, dedupe, quarantine, cursors.
    #[default]
    Sqlite,
    /// DynamoDB, SQS and S3, as the Lambdas use them.
    Aws,
}

/// How long dedupe records live (both backends use the same variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeTimings {
    /// Lifetime of a completed record.
    pub ttl: Duration,
    /// After this an unfinished claim counts as abandoned.
    pub in_progress_expiry: Duration,
}

impl Default for DedupeTimings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(DEFAULT_DEDUPE_TTL_DAYS * 86_400),
            in_progress_expiry: Duration::from_secs(DEFAULT_IN_PROGRESS_EXPIRY_SECONDS),
        }
    }
}

impl DedupeTimings {
    /// Reads [`TCRELAY_DEDUPE_TTL_DAYS`] (1–365) and [`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`]
    /// (1–86400) with the core's defaults and bounds.
    pub fn from_env_map(env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let days = number(env, TCRELAY_DEDUPE_TTL_DAYS, DEFAULT_DEDUPE_TTL_DAYS)?;
        if !(1..=365).contains(&days) {
            return Err(ConfigError::Invalid {
                var: TCRELAY_DEDUPE_TTL_DAYS,
                reason: "must be between 1 and 365".into(),
            });
        }
        let expiry = number(
            env,
            TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
            DEFAULT_IN_PROGRESS_EXPIRY_SECONDS,
        )?;
        if !(1..=86_400).contains(&expiry) {
            return Err(ConfigError::Invalid {
                var: TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
                reason: "must be between 1 and 86400".into(),
            });
        }
        Ok(Self {
            ttl: Duration::from_secs(days * 86_400),
            in_progress_expiry: Duration::from_secs(expiry),
        })
    }
}

/// Everything `tcrelay serve` reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tradecloud's API and login (GET webhooks and polling).
    pub tradecloud: TradecloudSettings,
    /// The webhook endpoint: credentials, filter, limits.
    pub webhook: WebhookConfig,
    /// The poll loop.
    pub poll: PollConfig,
    /// Dedupe record lifetimes.
    pub dedupe: DedupeTimings,
    /// Queues, table and bucket; only with [`Backend::Aws`].
    pub aws: Option<AwsResources>,
}

impl Settings {
    /// Reads the sections `backend` needs.
    pub fn from_env_map(
        env: &HashMap<String, String>,
        backend: Backend,
    ) -> Result<Self, SettingsError> {
        let tradecloud = TradecloudSettings::from_env_map(env)?;
        let webhook = WebhookConfig::from_env_map(env)?;
        let poll = PollConfig::from_env_map(env)?;
        let (dedupe, aws) = match backend {
            Backend::Sqlite => (DedupeTimings::from_env_map(env)?, None),
            Backend::Aws => {
                let aws = AwsResources::from_env_map(env)?;
                (
                    DedupeTimings {
                        ttl: aws.dedupe_ttl,
                        in_progress_expiry: aws.in_progress_expiry,
                    },
                    Some(aws),
                )
            }
        };
        Ok(Self {
            tradecloud,
            webhook,
            poll,
            dedupe,
            aws,
        })
    }
}

/// The AWS endpoint override alone (`cursor` commands with `--backend aws` need no queue).
pub fn aws_endpoint(env: &HashMap<String, String>) -> Option<String> {
    env.get(TCRELAY_AWS_ENDPOINT_URL)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn number(
    env: &HashMap<String, String>,
    var: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
            var,
            reason: format!("{text:?} is not a whole non-negative number"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sqlite_needs_no_aws_resources_but_aws_does() {
        let e = env(&[("TCRELAY_WEBHOOK_BASIC", "tc:pw")]);
        let s = Settings::from_env_map(&e, Backend::Sqlite).unwrap();
        assert!(s.aws.is_none());
        assert_eq!(s.dedupe, DedupeTimings::default());
        assert!(s.poll.streams.is_empty());
        let err = Settings::from_env_map(&e, Backend::Aws).unwrap_err();
        assert!(err.to_string().contains("TCRELAY_QUEUE_URL"), "{err}");
    }

    #[test]
    fn dedupe_timings_are_read_and_bounded() {
        let e = env(&[
            ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
            ("TCRELAY_DEDUPE_TTL_DAYS", "2"),
            ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "9"),
        ]);
        let s = Settings::from_env_map(&e, Backend::Sqlite).unwrap();
        assert_eq!(s.dedupe.ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(s.dedupe.in_progress_expiry, Duration::from_secs(9));
        for (var, value) in [
            ("TCRELAY_DEDUPE_TTL_DAYS", "0"),
            ("TCRELAY_DEDUPE_TTL_DAYS", "x"),
            ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "0"),
        ] {
            let mut e = e.clone();
            e.insert(var.into(), value.into());
            let err = Settings::from_env_map(&e, Backend::Sqlite).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn poll_errors_name_the_variable() {
        let e = env(&[
            ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
            ("TCRELAY_POLL_STREAMS", "orders"),
        ]);
        let err = Settings::from_env_map(&e, Backend::Sqlite).unwrap_err();
        assert!(err.to_string().contains("TCRELAY_POLL_START"), "{err}");
    }
}
