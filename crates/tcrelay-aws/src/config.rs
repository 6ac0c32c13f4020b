//! Building the AWS SDK configuration and clients, for AWS itself or a local emulator (moto).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::config::SharedHttpClient;
use aws_sdk_sqs::config::StalledStreamProtectionConfig;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The region an emulator is addressed in when none is configured (emulators accept any).
pub const EMULATOR_DEFAULT_REGION: &str = "us-east-1";

/// How to build an [`SdkConfig`]. The default is AWS's standard provider chains (environment,
/// profile, Lambda's role), which is what the Lambda functions use.
#[derive(Debug, Clone, Default)]
pub struct AwsConfigOptions {
    /// Send every call to this endpoint instead of AWS (a local emulator such as moto).
    pub endpoint_url: Option<String>,
    /// The region; `None` takes it from the environment (and, with an endpoint override, falls
    /// back to [`EMULATOR_DEFAULT_REGION`]).
    pub region: Option<String>,
    /// Fixed access key id and secret instead of the provider chain: for emulators, which accept
    /// any, so tests never depend on (or leak) the developer's real credentials.
    pub static_credentials: Option<(String, String)>,
    /// Upper bound of one operation, retries included.
    pub operation_timeout: Option<Duration>,
    /// Upper bound of one attempt of an operation.
    pub operation_attempt_timeout: Option<Duration>,
    /// Upper bound of establishing a connection.
    pub connect_timeout: Option<Duration>,
    /// Attempts per operation, the first included (the SDK's standard retry mode).
    pub max_attempts: Option<u32>,
}

impl AwsConfigOptions {
    /// Options for a local emulator at `endpoint_url`: dummy credentials, the region from the
    /// environment or [`EMULATOR_DEFAULT_REGION`].
    pub fn emulator(endpoint_url: &str) -> Self {
        AwsConfigOptions {
            endpoint_url: Some(endpoint_url.to_owned()),
            static_credentials: Some(("test".to_owned(), "test".to_owned())),
            ..AwsConfigOptions::default()
        }
    }

    /// The options the relay's functions run with: AWS's standard provider chains, or the
    /// emulator at `endpoint_url`, and every call bounded (connect 2 s, attempt 3 s, operation
    /// 8 s with the SDK's retries). A hanging SQS or DynamoDB call then ends in the webhook's own
    /// 503 well before API Gateway's 30 s limit, and every request finishes long before its
    /// dedupe claim expires (120 s by default), so no retry takes over a claim whose request is
    /// still sending.
    pub fn for_relay(endpoint_url: Option<&str>) -> Self {
        let mut options = match endpoint_url {
            Some(url) => AwsConfigOptions::emulator(url),
            None => AwsConfigOptions::default(),
        };
        options.connect_timeout = Some(Duration::from_secs(2));
        options.operation_attempt_timeout = Some(Duration::from_secs(3));
        options.operation_timeout = Some(Duration::from_secs(8));
        options
    }

    /// Loads the configuration.
    pub async fn load(&self) -> SdkConfig {
        // The SDK crates are built without a default HTTPS client (Cargo.toml): without this
        // one every call, and every credential provider that asks a service, would fail.
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if let Some(url) = &self.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some((key_id, secret)) = &self.static_credentials {
            loader = loader.credentials_provider(Credentials::new(
                key_id.clone(),
                secret.clone(),
                None,
                None,
                "tcrelay-static",
            ));
        }
        if self.operation_timeout.is_some()
            || self.operation_attempt_timeout.is_some()
            || self.connect_timeout.is_some()
        {
            let mut timeouts = TimeoutConfig::builder();
            if let Some(t) = self.operation_timeout {
                timeouts = timeouts.operation_timeout(t);
            }
            if let Some(t) = self.operation_attempt_timeout {
                timeouts = timeouts.operation_attempt_timeout(t);
            }
            if let Some(t) = self.connect_timeout {
                timeouts = timeouts.connect_timeout(t);
            }
            loader = loader.timeout_config(timeouts.build());
        }
        if let Some(attempts) = self.max_attempts {
            loader =
                loader.retry_config(RetryConfig::standard().with_max_attempts(attempts.max(1)));
        }
        let config = loader.load().await;
        if self.endpoint_url.is_some() && config.region().is_none() {
            // The emulator's fallback, after the loader's own region chain (environment,
            // profile, IMDS) found none. Not a `RegionProviderChain` of our own given to the
            // loader: that chain's IMDS provider would have no HTTP client (the SDK crates have
            // no default one), and asking IMDS panics in debug builds.
            return config
                .into_builder()
                .region(Region::from_static(EMULATOR_DEFAULT_REGION))
                .build();
        }
        config
    }
}

/// The HTTPS client of the SDK clients and credential providers: hyper and rustls with ring as
/// the crypto provider, the system's root certificates. The SDK's default client would be the
/// same on aws-lc-rs, a much larger library; ring is the Tradecloud client's provider too, so
/// the Lambda bootstraps carry one (docs/architecture.md, TLS; BENCHMARKS.md, zip sizes).
/// Timeouts come from the configuration's timeout settings, as with the default client.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK configuration for AWS (`None`: the standard provider chains, as in Lambda) or for a
/// local emulator such as moto (`Some(url)`: that endpoint, dummy credentials, region from the
/// environment or `us-east-1`).
pub async fn aws_config_for(endpoint_url: Option<&str>) -> SdkConfig {
    match endpoint_url {
        Some(url) => AwsConfigOptions::emulator(url).load().await,
        None => AwsConfigOptions::default().load().await,
    }
}

/// The three clients the adapters need, built from one configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// SQS: the ERP queue and the quarantine queue.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB: dedupe records and poll cursors.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3: claim-checked payloads.
    pub s3: aws_sdk_s3::Client,
}

impl AwsClients {
    /// Builds the clients. With an endpoint override S3 uses path-style addressing, because an
    /// emulator on `127.0.0.1` cannot serve `bucket.127.0.0.1` virtual hosts.
    ///
    /// When every attempt is bounded (an attempt timeout, as [`AwsConfigOptions::for_relay`]
    /// sets), SQS and DynamoDB run without the SDK's stalled-stream protection: their answers
    /// are read within the attempt, so the attempt timeout stops a stalled one first (the
    /// protection's grace period is 20 s), and its timers only wake the thread while a call
    /// waits, CPU that grows with the service's latency (BENCHMARKS.md, "Poll cost", round 5).
    /// S3 keeps it: a claim-checked body is read after its call returned, beyond every timeout.
    pub fn new(config: &SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        let bounded = config
            .timeout_config()
            .is_some_and(|t| t.operation_attempt_timeout().is_some());
        let mut sqs = aws_sdk_sqs::config::Builder::from(config);
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(config);
        if bounded {
            sqs = sqs.stalled_stream_protection(StalledStreamProtectionConfig::disabled());
            dynamodb =
                dynamodb.stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        }
        AwsClients {
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unset means the SDK's default for the behaviour version, which is on.
    fn protected(config: Option<StalledStreamProtectionConfig>) -> bool {
        config.is_none_or(|c| c.is_enabled())
    }

    #[tokio::test]
    async fn bounded_clients_leave_the_stalled_stream_protection_to_s3() {
        // An emulator's address: loading the configuration calls nothing.
        let url = "http://127.0.0.1:9";
        let relay = AwsClients::new(&AwsConfigOptions::for_relay(Some(url)).load().await);
        assert!(!protected(
            relay.sqs.config().stalled_stream_protection().cloned()
        ));
        assert!(!protected(
            relay.dynamodb.config().stalled_stream_protection().cloned()
        ));
        assert!(protected(
            relay.s3.config().stalled_stream_protection().cloned()
        ));

        // Without an attempt timeout nothing else would stop a stalled answer: kept.
        let unbounded = AwsClients::new(&AwsConfigOptions::emulator(url).load().await);
        assert!(protected(
            unbounded.sqs.config().stalled_stream_protection().cloned()
        ));
        assert!(protected(
            unbounded
                .dynamodb
                .config()
                .stalled_stream_protection()
                .cloned()
        ));
    }
}
