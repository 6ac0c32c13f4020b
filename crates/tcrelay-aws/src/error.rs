//! Mapping of AWS SDK failures onto the ports' errors.
//!
//! Every SDK failure (throttling, 5xx, connection refused, timeout, but also a missing table or
//! queue) is reported as transient: the caller answers 503 and Tradecloud retries until the
//! operator fixes the cause, which loses nothing. A 4xx answer would make Tradecloud drop it.

use std::fmt::Debug;

use aws_sdk_dynamodb::error::SdkError;
use tcrelay_core::ports::StoreError;

/// Describes an SDK failure for logs and error messages: the class of failure and the service's
/// error code and message. Never contains request payloads (AWS error messages do not echo them).
pub(crate) fn describe<E, R>(operation: &str, err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: Debug + 'static,
{
    let class = match err {
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(_) => "dispatch failure",
        SdkError::ResponseError(_) => "unreadable response",
        SdkError::ServiceError(_) => "service error",
        SdkError::ConstructionFailure(_) => "request construction failed",
        _ => "sdk error",
    };
    let causes = causes(err);
    // The SDK error's own text is often the kind itself ("dispatch failure"): named once.
    if causes.starts_with(class) {
        format!("{operation}: {causes}")
    } else {
        format!("{operation}: {class}: {causes}")
    }
}

/// Longest text kept of one cause: some print a whole HTTP response.
const CAUSE_CHARS: usize = 300;

/// Longest text kept of what a credential provider reports: the default chain names every
/// provider it tried and why each gave nothing (around 500 characters), which is what tells
/// the operator what to fix; it holds no credential (only which were missing or unreadable).
const CREDENTIALS_CHARS: usize = 2000;

/// What to set when no provider of the chain found credentials: the ways the SDK's default
/// chain looks, which its report names only as provider names.
const CREDENTIALS_HINT: &str = "no AWS credentials: set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_PROFILE naming a \
     profile of ~/.aws/credentials or ~/.aws/config, or run where a role provides them (EC2 \
     instance profile, ECS task role, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)";

/// `err` and its causes, each once, on one line and shortened. An SDK error nests one failure
/// several levels deep (the same text at each), and some levels print raw responses or `Debug`
/// structures, so `DisplayErrorContext` gave lines of kilobytes with the cause buried. A
/// credential provider's report is kept whole (it lists the providers tried), and when no
/// provider found credentials, what to set follows.
pub(crate) fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    use aws_credential_types::provider::error::CredentialsError;

    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    let mut from_credentials = false;
    let mut no_credentials = false;
    while let Some(e) = next {
        let credentials = e.downcast_ref::<CredentialsError>();
        no_credentials |= matches!(credentials, Some(CredentialsError::CredentialsNotLoaded(_)));
        let limit = if from_credentials || credentials.is_some() {
            CREDENTIALS_CHARS
        } else {
            CAUSE_CHARS
        };
        from_credentials |= credentials.is_some();
        let text = e.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = match text.char_indices().nth(limit) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        };
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if no_credentials {
        parts.push(CREDENTIALS_HINT.to_owned());
    }
    parts.join(": ")
}

/// An SDK failure as the transient `StoreError::Unavailable`.
pub(crate) fn unavailable<E, R>(operation: &str, err: &SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: Debug + 'static,
{
    let message = describe(operation, err);
    tracing::warn!(error = %message, "AWS call failed");
    StoreError::Unavailable(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(String, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_each_given_once_on_one_short_line() {
        let dump = format!(
            "Response {{ headers: {{\n{}\n}} }}",
            "x-amz: y, ".repeat(200)
        );
        let err = Layer(
            "dispatch failure".into(),
            Some(Box::new(Layer(
                "failed to load credentials".into(),
                Some(Box::new(Layer(
                    "failed to load credentials".into(),
                    Some(Box::new(Layer(dump, None))),
                ))),
            ))),
        );
        let text = causes(&err);
        assert!(
            text.starts_with("dispatch failure: failed to load credentials: Response {"),
            "{text}"
        );
        assert_eq!(
            text.matches("failed to load credentials").count(),
            1,
            "{text}"
        );
        assert!(!text.contains('\n'));
        assert!(text.chars().count() < 400, "{}", text.len());
        assert!(text.ends_with('…'));
    }

    /// Without credentials the SDK's error is the chain's report of every provider it tried
    /// and why each gave none, several hundred characters long: cut at 300, the operator of
    /// `--backend aws` saw "EcsContainer: the credenti…", not the rest of the providers, nor
    /// what to set. The whole report is shown, with the variables to set (never a value).
    #[tokio::test]
    async fn missing_credentials_name_every_provider_tried_and_what_to_set() {
        use aws_config::meta::credentials::CredentialsProviderChain;
        use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError};
        use aws_smithy_runtime_api::client::result::ConnectorError;

        fn none(reason: &'static str) -> impl ProvideCredentials {
            aws_credential_types::credential_fn::provide_credentials_fn(move || async move {
                Err(CredentialsError::not_loaded(reason))
            })
        }
        // The default chain's providers in its order, with the reasons they give on a machine
        // with nothing configured.
        let providers = [
            ("Environment", "environment variable not set"),
            ("Profile", "No profiles were defined"),
            (
                "WebIdentityToken",
                "$AWS_WEB_IDENTITY_TOKEN_FILE was not set",
            ),
            ("EcsContainer", "ECS provider not configured"),
            (
                "Ec2InstanceMetadata",
                "IMDS disabled by AWS_EC2_METADATA_DISABLED env var",
            ),
        ];
        let mut chain = CredentialsProviderChain::first_try(providers[0].0, none(providers[0].1));
        for (name, reason) in &providers[1..] {
            chain = chain.or_else(*name, none(reason));
        }
        let missing = chain.provide_credentials().await.unwrap_err();
        let err: SdkError<Layer, ()> =
            SdkError::dispatch_failure(ConnectorError::other(missing.into(), None));
        let text = describe("GetItem", &err);
        assert!(!text.contains('…'), "cut: {text}");
        for (name, reason) in providers {
            assert!(text.contains(&format!("{name}: ")), "{name}: {text}");
            assert!(text.contains(reason), "{reason}: {text}");
        }
        for what in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] {
            assert!(text.contains(what), "what to set, {what}: {text}");
        }
        assert!(!text.contains('\n'), "{text}");
    }

    /// `describe` names the kind of SDK failure, which the SDK error's own text often is:
    /// doctor's lines and the WARN logs read "DescribeTable: dispatch failure: dispatch
    /// failure: …" and "service error: service error: …".
    #[test]
    fn the_kind_of_failure_is_named_once() {
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err: SdkError<Layer, ()> = SdkError::dispatch_failure(ConnectorError::io(io.into()));
        let text = describe("DescribeTable", &err);
        assert_eq!(text.matches("dispatch failure").count(), 1, "{text}");
        assert!(
            text.starts_with("DescribeTable: dispatch failure: "),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        let err: SdkError<Layer, ()> =
            SdkError::service_error(Layer("QueueDoesNotExist".into(), None), ());
        let text = describe("GetQueueAttributes", &err);
        assert_eq!(text.matches("service error").count(), 1, "{text}");
        assert!(text.contains("QueueDoesNotExist"), "{text}");
        // A kind whose own text differs keeps both.
        let err: SdkError<Layer, ()> = SdkError::timeout_error(Layer("slow".into(), None));
        let text = describe("PutObject", &err);
        assert!(text.starts_with("PutObject: timeout: "), "{text}");
    }
}
