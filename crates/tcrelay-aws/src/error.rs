//! Mapping of AWS SDK failures onto the ports' errors.
//!
//! Every SDK failure (throttling, 5xx, connection refused, timeout, but also a missing table or
//! queue) is reported as transient: the caller answers 503 and Tradecloud retries until the
//! operator fixes the cause, which loses nothing. A 4xx answer would make Tradecloud drop it.

use std::fmt::Debug;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use tcrelay_core::ports::StoreError;

/// Describes an SDK failure for logs and error messages: the class of failure and the service's
/// error code and message. Never contains request payloads (AWS error messages do not echo them).
pub(crate) fn describe<E, R>(operation: &str, err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: Debug,
{
    let class = match err {
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "dispatch failure",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ServiceError(_) => "service error",
        SdkError::ConstructionFailure(_) => "request construction failed",
        _ => "sdk error",
    };
    format!("{operation}: {class}: {}", DisplayErrorContext(err))
}

/// An SDK failure as the transient `StoreError::Unavailable`.
pub(crate) fn unavailable<E, R>(operation: &str, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: Debug,
{
    let message = describe(operation, err);
    tracing::warn!(error = %message, "AWS call failed");
    StoreError::Unavailable(message)
}
