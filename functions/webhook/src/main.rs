//! Webhook Lambda (`bootstrap`): wiring only. Configuration from the environment (credentials
//! optionally from Secrets Manager), the AWS adapters, the Tradecloud client, then the core's
//! router under `lambda_http::run`. All behaviour lives in `tcrelay-core`.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use tcrelay_aws::{AwsPorts, Secrets};
use tcrelay_core::ports::TradecloudApi;
use tcrelay_core::{CountingTakeOvers, WebhookApp, WebhookSettings, webhook_router};
use tcrelay_tradecloud::{ClientApi, client_for};
use webhook::metrics::with_emf_metrics;
use webhook::{startup_config, with_lambda_context};

/// mimalloc instead of glibc's malloc: decoding a body builds and drops tens of thousands of
/// small allocations, and glibc's allocator was a quarter to a third of the profile (see
/// docs/architecture.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let startup = startup_config(&env)?;
    let (mut config, aws) = (startup.core, startup.aws);

    // Bounded AWS calls: a hanging SQS or DynamoDB call ends in our own 503 well before
    // API Gateway's 30 s limit.
    let sdk = aws.sdk_config().await;
    // The credentials named by `…_SECRET_ARN`, once per cold start.
    Secrets::new(&sdk)
        .resolve(Some(&mut config.webhook), &mut config.tradecloud)
        .await?;
    // Each queue's own MaximumMessageSize is asked in the background, once per cold start.
    let ports = AwsPorts::connect(&sdk, &aws);
    let quarantine = ports
        .quarantine
        .context("the webhook needs TCRELAY_QUARANTINE_QUEUE_URL")?;

    let api: Option<Arc<dyn TradecloudApi>> =
        match client_for(&config.tradecloud).context("TRADECLOUD_API_URL")? {
            Some(client) => Some(Arc::new(ClientApi(client))),
            None => {
                tracing::warn!("no Tradecloud login configured: GET webhooks will be answered 503");
                None
            }
        };

    // Counted for the metric lines: a take-over means the ERP may have a message twice.
    let dedupe = CountingTakeOvers::new(ports.dedupe);
    let take_overs = dedupe.count();
    let app = WebhookApp::new(
        WebhookSettings::from(&config.webhook),
        ports.sink,
        Arc::new(dedupe),
        quarantine,
        api,
    );
    tracing::info!(
        basic_credentials = config.webhook.credentials.basic_count(),
        bearer_tokens = config.webhook.credentials.bearer_count(),
        fifo = aws.queue_fifo,
        gateway_jwt_issuer = config.webhook.credentials.gateway_issuer(),
        gateway_jwt_clients = ?config.webhook.credentials.gateway_clients(),
        max_body_bytes = config.webhook.max_body_bytes,
        "webhook ready"
    );
    // The metrics layer outermost, so it also counts answers made by the layers inside it.
    Ok(with_emf_metrics(
        with_lambda_context(webhook_router(Arc::new(app))),
        take_overs,
    ))
}
