//! The runner's settings: the same environment variables as the Lambdas, read section by section
//! so the local SQLite backend does not demand the AWS-only ones (queue URL, table, bucket).
//!
//! The core's section parsers and `tcrelay_aws::AwsSettings` are public, so this module calls
//! only those it needs (the dedupe timings, `TCRELAY_DEDUPE_TTL_DAYS` and
//! `TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`, serve both backends).

use tcrelay_aws::AwsSettings;
use tcrelay_aws::settings::TCRELAY_AWS_ENDPOINT_URL;
use tcrelay_core::ConfigError;
pub use tcrelay_core::config::DedupeTimings;
use tcrelay_core::config::{TradecloudSettings, WebhookConfig};
use tcrelay_core::env::{Env, get, number};
use tcrelay_poll::PollConfig;

use crate::server::ServerLimits;

/// Where the ports live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// One SQLite file: queue, dedupe, quarantine, cursors.
    #[default]
    Sqlite,
    /// DynamoDB, SQS and S3, as the Lambdas use them.
    Aws,
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
    pub aws: Option<AwsSettings>,
    /// The HTTP server's timeouts and connection cap.
    pub server: ServerLimits,
    /// How long the SQLite queue keeps acknowledged messages ([`TCRELAY_ACKED_RETENTION_DAYS`]).
    pub acked_retention: std::time::Duration,
}

/// Days the local queue keeps acknowledged messages before `serve` deletes them (0 to 3650;
/// default [`DEFAULT_ACKED_RETENTION_DAYS`]). Pending messages are never deleted.
pub const TCRELAY_ACKED_RETENTION_DAYS: &str = "TCRELAY_ACKED_RETENTION_DAYS";
/// Long enough to look back at last week's traffic with `queue export --all`.
pub const DEFAULT_ACKED_RETENTION_DAYS: u64 = 7;

impl Settings {
    /// Reads the sections `backend` needs.
    pub fn from_env_map(env: &dyn Env, backend: Backend) -> Result<Self, ConfigError> {
        let tradecloud = TradecloudSettings::from_env_map(env)?;
        let webhook = WebhookConfig::from_env_map(env)?;
        let poll = PollConfig::from_env_map(env)?;
        let (dedupe, aws) = match backend {
            Backend::Sqlite => (DedupeTimings::from_env_map(env)?, None),
            Backend::Aws => {
                let aws = AwsSettings::from_env_map(env)?;
                (aws.dedupe_timings(), Some(aws))
            }
        };
        let days = number(
            env,
            TCRELAY_ACKED_RETENTION_DAYS,
            DEFAULT_ACKED_RETENTION_DAYS,
        )?;
        if days > 3650 {
            return Err(ConfigError::Invalid {
                var: TCRELAY_ACKED_RETENTION_DAYS,
                reason: "must be between 0 and 3650".to_owned(),
            });
        }
        Ok(Self {
            tradecloud,
            webhook,
            poll,
            dedupe,
            aws,
            server: ServerLimits::from_env_map(env)?,
            acked_retention: std::time::Duration::from_secs(days * 86_400),
        })
    }
}

/// The AWS endpoint override alone (`cursor` commands with `--backend aws` need no queue).
pub fn aws_endpoint(env: &dyn Env) -> Option<String> {
    get(env, TCRELAY_AWS_ENDPOINT_URL).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        tcrelay_core::env::env_map(pairs)
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
        assert_eq!(
            s.acked_retention,
            Duration::from_secs(DEFAULT_ACKED_RETENTION_DAYS * 86_400)
        );
        assert_eq!(s.dedupe.ttl, Duration::from_secs(2 * 86_400));
        assert_eq!(s.dedupe.in_progress_expiry, Duration::from_secs(9));
        for (var, value) in [
            ("TCRELAY_DEDUPE_TTL_DAYS", "0"),
            ("TCRELAY_DEDUPE_TTL_DAYS", "x"),
            ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "0"),
            (TCRELAY_ACKED_RETENTION_DAYS, "3651"),
            (TCRELAY_ACKED_RETENTION_DAYS, "a week"),
        ] {
            let mut e = e.clone();
            e.insert(var.into(), value.into());
            let err = Settings::from_env_map(&e, Backend::Sqlite).unwrap_err();
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn acked_retention_is_read() {
        for (days, kept) in [("0", 0), ("3650", 3650 * 86_400)] {
            let e = env(&[
                ("TCRELAY_WEBHOOK_BASIC", "tc:pw"),
                (TCRELAY_ACKED_RETENTION_DAYS, days),
            ]);
            let s = Settings::from_env_map(&e, Backend::Sqlite).unwrap();
            assert_eq!(s.acked_retention, Duration::from_secs(kept), "{days}");
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
