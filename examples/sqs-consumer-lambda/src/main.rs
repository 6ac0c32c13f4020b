//! The example consumer as a Lambda function: `cargo lambda build --release --arm64 -p
//! sqs-consumer-lambda`, an SQS event source mapping on the relay's queue with
//! `ReportBatchItemFailures`, and `s3:GetObject` on the claim-check bucket.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_smithy_http_client::tls;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_consumer_lambda::{Envelope, S3Payloads, handle_batch};

/// Replace with the ERP import. It must be idempotent per `dedupe_key`: SQS delivers at least
/// once, and a redelivered message carries the same key.
fn import(envelope: &Envelope) -> Result<(), String> {
    tracing::info!(kind = %envelope.kind, id = %envelope.id, event = ?envelope.event_name, version = ?envelope.version, "imported");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    // rustls on ring (see Cargo.toml); with aws-config's default features, plain
    // `aws_config::load_from_env()` does the same on aws-lc-rs.
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https)
        .load()
        .await;
    let payloads = S3Payloads(aws_sdk_s3::Client::new(&config));
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let payloads = payloads.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(handle_batch(event.payload, &payloads, import).await)
        }
    }))
    .await
}
