//! What the relay's two Lambda functions share as Lambda hosts: JSON logs for CloudWatch
//! ([`init_tracing`]) and, when a function cannot start, the report of why to the Lambda
//! Runtime API ([`report_init_error`]).
//!
//! A function whose settings are wrong stops before its runtime loop starts. Exiting alone
//! would show as `Runtime.ExitError`, the reason only in the logs; reporting it first makes
//! Lambda answer every invocation (a console test, API Gateway's logged error) with the
//! message naming the variable, as the Runtime API asks of a custom runtime.

#[cfg(feature = "testing")]
pub mod testing;

use http::{Method, Request};
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;

/// The `errorType` a failed start-up is reported with.
pub const INIT_ERROR_TYPE: &str = "Runtime.ConfigError";

/// JSON log lines on stdout (CloudWatch), the level from `RUST_LOG` (default `info`), each line
/// with its current span's fields: the webhook's request span (request id, kind, id, event
/// name, dedupe key, outcome), or lambda_runtime's invocation span (`requestId`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .init();
}

/// A function that cannot start: one log line naming the setting, and the same message to the
/// Runtime API ([`report_init_error`]), which answers every invocation with it until the
/// configuration is fixed. The caller exits afterwards.
pub async fn start_failed(function: &str, message: &str) {
    tracing::error!(error = message, "{function} cannot start");
    if let Err(report) = report_init_error(message).await {
        tracing::warn!(error = report, "could not report the init error");
    }
}

/// Reports a failed start-up to the Runtime API named by `AWS_LAMBDA_RUNTIME_API`
/// (`POST /2018-06-01/runtime/init/error`). The caller exits afterwards either way; a report
/// that fails is returned for the caller to log.
pub async fn report_init_error(message: &str) -> Result<(), String> {
    let body = serde_json::json!({
        "errorMessage": message,
        "errorType": INIT_ERROR_TYPE,
        "stackTrace": [],
    })
    .to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", INIT_ERROR_TYPE)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    // Lambda names the Runtime API as `host:port`.
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set: not running under Lambda".to_owned())?;
    let endpoint: http::Uri = format!("http://{address}")
        .parse()
        .map_err(|e| format!("AWS_LAMBDA_RUNTIME_API {address:?}: {e}"))?;
    let response = PooledClient::builder()
        .with_endpoint(endpoint)
        .build()
        .call(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered {}", response.status()))
    }
}
