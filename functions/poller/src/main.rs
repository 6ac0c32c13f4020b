//! Poller Lambda (`bootstrap`): wiring only. Settings from the environment (the Tradecloud login
//! optionally from Secrets Manager), the AWS adapters, the Tradecloud client, then
//! `lambda_runtime::run`. The loop lives in `tcrelay-poll`, the event handling in this crate's
//! library.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use lambda_runtime::{LambdaEvent, service_fn};
use poller::{StartupSettings, handle};
use serde_json::Value;
use tcrelay_aws::{
    AwsClients, AwsConfigOptions, ClaimCheck, ClaimCheckSettings, DedupeConfig, DynamoCursorStore,
    DynamoDedupeStore, Secrets, SqsSink, SqsSinkConfig, claim_check_threshold,
};
use tcrelay_core::ports::ApiError;
use tcrelay_poll::{DeadlineAt, PageRequest, PollApi, PollConfig, PollPorts, PolledPage};
use tcrelay_tradecloud::ClientPollApi;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tcrelay_lambda::init_tracing();
    let (ports, config) = match build().await {
        Ok(built) => built,
        Err(e) => {
            tcrelay_lambda::start_failed("poller", &format!("{e:#}")).await;
            return Err(e.into());
        }
    };
    let ports = Arc::new(ports);
    let config = Arc::new(config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ports, config) = (Arc::clone(&ports), Arc::clone(&config));
        async move { invoke(&ports, &config, event).await }
    }))
    .await
}

async fn invoke(
    ports: &PollPorts,
    config: &PollConfig,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let deadline = DeadlineAt(event.context.deadline());
    let output = handle(
        ports,
        config,
        &event.payload,
        &event.context.request_id,
        &deadline,
    )
    .await
    .inspect_err(|e| tracing::error!(error = %e, "poller invocation refused"))?;
    for line in output.metrics(chrono::Utc::now()) {
        // Embedded metric format: CloudWatch reads metrics from this stdout line.
        println!("{line}");
    }
    match output.failure() {
        // Failing the invocation makes the errors alarm fire; the summaries are logged.
        Some(message) => Err(message.into()),
        None => Ok(output.answer()),
    }
}

/// Stands in for Tradecloud when no login is configured and no stream is: the function deploys
/// and does nothing; a manual invoke for a stream gets this clear failure.
struct NoLogin;

#[async_trait::async_trait]
impl PollApi for NoLogin {
    async fn fetch_page(&self, _: &PageRequest) -> Result<PolledPage, ApiError> {
        Err(ApiError::Unauthorized)
    }
}

async fn build() -> anyhow::Result<(PollPorts, PollConfig)> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let StartupSettings {
        poll: config,
        aws,
        mut tradecloud,
    } = StartupSettings::from_env(&env)?;

    // Bounded AWS calls: a hanging call fails the page (cursor unchanged) instead of holding
    // its dedupe claims past their expiry.
    let sdk = AwsConfigOptions::for_relay(aws.endpoint_url.as_deref())
        .load()
        .await;
    Secrets::new(&sdk).resolve(None, &mut tradecloud).await?;

    let api: Arc<dyn PollApi> = match &tradecloud.login {
        Some(login) => {
            // The client's defaults keep Tradecloud's rules: 10 requests/s, back-off within a
            // 20 s budget per call (less than the run's time margin).
            let client = TradecloudClient::new(ClientConfig::new(
                tradecloud.api_url.clone(),
                Credentials::new(login.username.clone(), login.password.expose()),
            ))
            .context("TRADECLOUD_API_URL")?;
            Arc::new(ClientPollApi(client))
        }
        None if config.streams.is_empty() => Arc::new(NoLogin),
        None => anyhow::bail!(
            "TCRELAY_POLL_STREAMS is set but there is no Tradecloud login: set \
             TRADECLOUD_USERNAME and TRADECLOUD_PASSWORD, or TCRELAY_TRADECLOUD_SECRET_ARN"
        ),
    };

    let clients = AwsClients::new(&sdk);
    let claim_settings = ClaimCheckSettings::from_env_map(&env)?;
    let claim_check = aws.claim_check_bucket.clone().map(|bucket| {
        ClaimCheck::new(clients.s3.clone(), bucket).with_legacy_format(claim_settings.legacy_format)
    });
    // The queue's own MaximumMessageSize, once per cold start.
    let mut sink_config = SqsSinkConfig::new(aws.queue_url.clone());
    sink_config.claim_check_threshold =
        claim_check_threshold(&clients.sqs, &aws.queue_url, &claim_settings).await;
    let sink = SqsSink::new(clients.sqs.clone(), sink_config, claim_check);
    let mut dedupe_config = DedupeConfig::new(aws.dedupe_table.clone());
    dedupe_config.ttl = aws.dedupe_ttl;
    dedupe_config.in_progress_expiry = aws.in_progress_expiry;
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), dedupe_config);
    let cursors = DynamoCursorStore::new(clients.dynamodb.clone(), aws.dedupe_table.clone());

    let streams: Vec<&str> = config.streams.iter().map(|s| s.as_str()).collect();
    tracing::info!(
        streams = streams.join(","),
        page_limit = config.page_limit,
        lookback_ms = u64::try_from(config.lookback.as_millis()).unwrap_or(u64::MAX),
        echo_filter = ?config.echo_filter,
        mode = ?config.mode,
        "poller ready"
    );
    Ok((
        PollPorts {
            api,
            cursors: Arc::new(cursors),
            dedupe: Arc::new(dedupe),
            sink: Arc::new(sink),
        },
        config,
    ))
}
