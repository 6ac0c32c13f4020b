//! What the poller reads at start-up: the poll loop's settings, Tradecloud's, and the AWS
//! resources (from the same variables as the webhook's, read by `tcrelay_aws::AwsSettings`
//! without the quarantine queue: nothing reaches the poller unauthenticated).

use tcrelay_aws::AwsSettings;
use tcrelay_core::ConfigError;
use tcrelay_core::config::TradecloudSettings;
use tcrelay_core::env::Env;
use tcrelay_poll::PollConfig;

/// Everything the function reads from its environment at start-up (besides `RUST_LOG` and the
/// variables the Lambda runtime and the AWS SDK read themselves).
#[derive(Debug, Clone)]
pub struct StartupSettings {
    /// The poll loop.
    pub poll: PollConfig,
    /// Queue, table, bucket, dedupe timings, claim check.
    pub aws: AwsSettings,
    /// Tradecloud's API and login (the login may still come from Secrets Manager).
    pub tradecloud: TradecloudSettings,
}

impl StartupSettings {
    /// Reads every section; the error names the variable.
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let mut poll = PollConfig::from_env_map(env)?;
        let aws = AwsSettings::for_poller(env)?;
        // The run's invocation must not outlive its claims (`crate::handle`).
        poll.in_progress_expiry = Some(aws.in_progress_expiry);
        Ok(Self {
            poll,
            aws,
            tradecloud: TradecloudSettings::from_env_map(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tcrelay_aws::settings::{TCRELAY_DEDUPE_TABLE, TCRELAY_QUEUE_URL};
    use tcrelay_core::config::TCRELAY_IN_PROGRESS_EXPIRY_SECONDS;
    use tcrelay_core::env::env_map;

    use super::*;

    /// The poll loop's settings carry the store's in-progress expiry, so the handler can refuse
    /// an invocation that would outlive its claims (`crate::handle`).
    #[test]
    fn the_poll_settings_carry_the_claims_expiry() {
        let env = env_map(&[
            (
                TCRELAY_QUEUE_URL,
                "https://sqs.eu-west-1.amazonaws.com/1/erp",
            ),
            (TCRELAY_DEDUPE_TABLE, "relay"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "300"),
        ]);
        let settings = StartupSettings::from_env(&env).unwrap();
        assert_eq!(
            settings.poll.in_progress_expiry,
            Some(Duration::from_secs(300))
        );
        assert_eq!(settings.aws.in_progress_expiry, Duration::from_secs(300));
    }
}
