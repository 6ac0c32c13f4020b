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
use tcrelay_aws::{AwsPorts, Secrets};
use tcrelay_core::ports::ApiError;
use tcrelay_core::{CountingTakeOvers, TakeOverCount};
use tcrelay_poll::{DeadlineAt, PageRequest, PollApi, PollConfig, PollPorts, PolledPage};
use tcrelay_tradecloud::{ClientPollApi, client_for};

/// mimalloc instead of glibc's malloc: decoding a body builds and drops tens of thousands of
/// small allocations, and glibc's allocator was a quarter to a third of the profile (see
/// docs/architecture.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// A current-thread runtime: one invocation at a time runs one sequential poll loop, so worker
// threads would only add wake-ups between them (a multi-thread runtime cost 6-18% more CPU per
// order in `bench_poll`; docs/architecture.md, "Runtime").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tcrelay_lambda::init_tracing();
    let (ports, config, take_overs) = match build().await {
        Ok(built) => built,
        Err(e) => {
            tcrelay_lambda::start_failed("poller", &format!("{e:#}")).await;
            return Err(e.into());
        }
    };
    let ports = Arc::new(ports);
    let config = Arc::new(config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (ports, config, take_overs) =
            (Arc::clone(&ports), Arc::clone(&config), take_overs.clone());
        async move { invoke(&ports, &config, &take_overs, event).await }
    }))
    .await
}

async fn invoke(
    ports: &PollPorts,
    config: &PollConfig,
    take_overs: &TakeOverCount,
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
    for line in output.metrics(take_overs, chrono::Utc::now()) {
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
/// and does nothing. Never asked for a page: a manual invoke naming a stream is refused before
/// it runs (`check_streams`), and one without a stream runs the configured ones, none.
struct NoLogin;

#[async_trait::async_trait]
impl PollApi for NoLogin {
    async fn fetch_page(&self, _: &PageRequest) -> Result<PolledPage, ApiError> {
        Err(ApiError::Unauthorized)
    }
}

async fn build() -> anyhow::Result<(PollPorts, PollConfig, TakeOverCount)> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let StartupSettings {
        poll: config,
        aws,
        mut tradecloud,
    } = StartupSettings::from_env(&env)?;

    // Bounded AWS calls: a hanging call fails the page (cursor unchanged) instead of holding
    // its dedupe claims past their expiry.
    let sdk = aws.sdk_config().await;
    Secrets::new(&sdk).resolve(None, &mut tradecloud).await?;

    let api: Arc<dyn PollApi> = match client_for(&tradecloud).context("TRADECLOUD_API_URL")? {
        Some(client) => Arc::new(ClientPollApi(client)),
        None if config.streams.is_empty() => Arc::new(NoLogin),
        None => anyhow::bail!(tcrelay_tradecloud::STREAMS_WITHOUT_LOGIN),
    };

    // The queue's own MaximumMessageSize is asked in the background, once per cold start.
    let ports = AwsPorts::connect(&sdk, &aws);

    let streams: Vec<&str> = config.streams.iter().map(|s| s.as_str()).collect();
    tracing::info!(
        streams = streams.join(","),
        page_limit = config.page_limit,
        lookback_ms = u64::try_from(config.lookback.as_millis()).unwrap_or(u64::MAX),
        echo_filter = ?config.echo_filter,
        mode = ?config.mode,
        "poller ready"
    );
    // Counted for the metric lines: a take-over means the ERP may have a message twice.
    let dedupe = CountingTakeOvers::new(ports.dedupe);
    let take_overs = dedupe.count();
    Ok((
        PollPorts {
            api,
            cursors: ports.cursors,
            dedupe: Arc::new(dedupe),
            sink: ports.sink,
        },
        config,
        take_overs,
    ))
}
