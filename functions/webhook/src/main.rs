//! Webhook Lambda (`bootstrap`): wiring only. Configuration from the environment (credentials
//! optionally from Secrets Manager), the AWS adapters, the Tradecloud client, then the core's
//! router under `lambda_http::run`. All behaviour lives in `tcrelay-core`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use tcrelay_aws::{
    AwsClients, AwsConfigOptions, ClaimCheck, ClaimCheckSettings, DedupeConfig, DynamoDedupeStore,
    Secrets, SqsQuarantine, SqsSink, SqsSinkConfig, claim_check_threshold,
};
use tcrelay_core::ports::TradecloudApi;
use tcrelay_core::{WebhookApp, WebhookSettings, webhook_router};
use tcrelay_tradecloud::ClientApi;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};
use webhook::metrics::with_emf_metrics;
use webhook::{startup_config, with_lambda_context};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tcrelay_lambda::init_tracing();
    let router = match build().await {
        Ok(router) => router,
        Err(e) => {
            tcrelay_lambda::start_failed("webhook", &format!("{e:#}")).await;
            return Err(e.into());
        }
    };
    lambda_http::run(router).await
}

async fn build() -> anyhow::Result<axum::Router> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let mut config = startup_config(&env)?;

    // Bounded AWS calls: a hanging SQS or DynamoDB call ends in our own 503 well before
    // API Gateway's 30 s limit. With an endpoint override (moto), dummy credentials.
    let sdk = AwsConfigOptions::for_relay(config.aws.endpoint_url.as_deref())
        .load()
        .await;
    // The credentials named by `…_SECRET_ARN`, once per cold start.
    Secrets::new(&sdk)
        .resolve(Some(&mut config.webhook), &mut config.tradecloud)
        .await?;

    let clients = AwsClients::new(&sdk);
    let claim_settings = ClaimCheckSettings::from_env_map(&env)?;
    let claim_check = ClaimCheck::new(clients.s3.clone(), config.aws.claim_check_bucket.clone())
        .with_legacy_format(claim_settings.legacy_format);
    // Each queue's own MaximumMessageSize, once per cold start.
    let mut sink_config = SqsSinkConfig::new(config.aws.queue_url.clone());
    sink_config.claim_check_threshold =
        claim_check_threshold(&clients.sqs, &config.aws.queue_url, &claim_settings).await;
    let quarantine_threshold = claim_check_threshold(
        &clients.sqs,
        &config.aws.quarantine_queue_url,
        &claim_settings,
    )
    .await;
    let sink = SqsSink::new(clients.sqs.clone(), sink_config, Some(claim_check.clone()));
    let mut dedupe_config = DedupeConfig::new(config.aws.dedupe_table.clone());
    dedupe_config.ttl = config.aws.dedupe_ttl;
    dedupe_config.in_progress_expiry = config.aws.in_progress_expiry;
    let dedupe = DynamoDedupeStore::new(clients.dynamodb.clone(), dedupe_config);
    let quarantine = SqsQuarantine::new(
        clients.sqs.clone(),
        config.aws.quarantine_queue_url.clone(),
        Some(claim_check),
    )
    .with_claim_check_threshold(quarantine_threshold);

    let api: Option<Arc<dyn TradecloudApi>> = match &config.tradecloud.login {
        Some(login) => {
            let client = TradecloudClient::new(ClientConfig::new(
                config.tradecloud.api_url.clone(),
                Credentials::new(login.username.clone(), login.password.expose()),
            ))
            .context("TRADECLOUD_API_URL")?;
            Some(Arc::new(ClientApi(client)))
        }
        None => {
            tracing::warn!("no Tradecloud login configured: GET webhooks will be answered 503");
            None
        }
    };

    let app = WebhookApp::new(
        WebhookSettings::from(&config.webhook),
        Arc::new(sink),
        Arc::new(dedupe),
        Arc::new(quarantine),
        api,
    );
    tracing::info!(
        basic_credentials = config.webhook.credentials.basic_count(),
        bearer_tokens = config.webhook.credentials.bearer_count(),
        fifo = config.aws.queue_fifo,
        gateway_jwt_issuer = config.webhook.credentials.gateway_issuer(),
        max_body_bytes = config.webhook.max_body_bytes,
        "webhook ready"
    );
    // The metrics layer outermost, so it also counts answers made by the layers inside it.
    Ok(with_emf_metrics(with_lambda_context(webhook_router(
        Arc::new(app),
    ))))
}
