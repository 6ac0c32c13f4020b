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
        Ok(Self {
            poll: PollConfig::from_env_map(env)?,
            aws: AwsSettings::for_poller(env)?,
            tradecloud: TradecloudSettings::from_env_map(env)?,
        })
    }
}
