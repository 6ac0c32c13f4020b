//! Credentials from AWS Secrets Manager: the functions read the secrets named by
//! `TCRELAY_WEBHOOK_SECRET_ARN` and `TCRELAY_TRADECLOUD_SECRET_ARN` once per cold start, so no
//! credential is in the template or the function's environment.

use aws_config::SdkConfig;
use tcrelay_core::ConfigError;
use tcrelay_core::config::{
    TCRELAY_TRADECLOUD_SECRET_ARN, TCRELAY_WEBHOOK_SECRET_ARN, TradecloudSettings, WebhookConfig,
};

/// A secret that could not be read. The message names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager refused or failed the call (no such secret, no permission, unreachable).
    #[error("cannot read secret {arn}: {reason}")]
    Read {
        /// The secret's ARN.
        arn: String,
        /// Secrets Manager's error.
        reason: String,
    },
    /// The secret holds binary data; the relay's secrets are JSON text.
    #[error("secret {arn} has no string value (store it as JSON text)")]
    NotText {
        /// The secret's ARN.
        arn: String,
    },
}

/// Reads secrets from Secrets Manager.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: aws_sdk_secretsmanager::Client,
}

impl Secrets {
    /// A reader with the functions' AWS configuration.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(sdk),
        }
    }

    /// The current string value of the secret `arn` (an ARN or a name).
    pub async fn read(&self, arn: &str) -> Result<String, SecretError> {
        let answer = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretError::Read {
                arn: arn.to_owned(),
                reason: crate::error::causes(&e),
            })?;
        answer
            .secret_string()
            .map(str::to_owned)
            .ok_or_else(|| SecretError::NotText {
                arn: arn.to_owned(),
            })
    }
}

/// Why the credentials named by `…_SECRET_ARN` could not be applied; the message names the
/// variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The secret could not be read. Its message carries the cause's (not a `source`, which
    /// `{:#}` would print a second time).
    #[error("{var}: {error}")]
    Secret {
        /// `TCRELAY_WEBHOOK_SECRET_ARN` or `TCRELAY_TRADECLOUD_SECRET_ARN`.
        var: &'static str,
        /// What Secrets Manager said.
        error: SecretError,
    },
    /// The secret was read but its content is not usable.
    #[error(transparent)]
    Content(#[from] ConfigError),
}

impl Secrets {
    /// Reads the secrets named by [`TCRELAY_WEBHOOK_SECRET_ARN`] (when `webhook` is given: the
    /// poller has no webhook credentials) and [`TCRELAY_TRADECLOUD_SECRET_ARN`], and applies
    /// them to the settings. Settings without a secret ARN are left as they are.
    pub async fn resolve(
        &self,
        webhook: Option<&mut WebhookConfig>,
        tradecloud: &mut TradecloudSettings,
    ) -> Result<(), CredentialsError> {
        if let Some(webhook) = webhook
            && let Some(arn) = webhook.secret_arn.clone()
        {
            let text = self.read_for(TCRELAY_WEBHOOK_SECRET_ARN, &arn).await?;
            webhook.apply_secret(&text)?;
        }
        if let Some(arn) = tradecloud.secret_arn.clone() {
            let text = self.read_for(TCRELAY_TRADECLOUD_SECRET_ARN, &arn).await?;
            tradecloud.apply_secret(&text)?;
        }
        Ok(())
    }

    async fn read_for(&self, var: &'static str, arn: &str) -> Result<String, CredentialsError> {
        self.read(arn)
            .await
            .map_err(|error| CredentialsError::Secret { var, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_failure_names_the_variable_and_gives_its_cause_once() {
        let err = CredentialsError::Secret {
            var: TCRELAY_WEBHOOK_SECRET_ARN,
            error: SecretError::Read {
                arn: "arn:aws:secretsmanager:eu-west-1:1:secret:x".into(),
                reason: "dispatch failure: no credentials".into(),
            },
        };
        let text = err.to_string();
        assert!(text.starts_with("TCRELAY_WEBHOOK_SECRET_ARN: cannot read secret arn:"));
        // Printed with its causes (`{:#}` in the binaries), the reason is not repeated.
        assert!(std::error::Error::source(&err).is_none());
        assert_eq!(text.matches("no credentials").count(), 1, "{text}");
    }
}
