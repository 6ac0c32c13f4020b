//! The webhook Lambda's glue, kept out of `main.rs` so the tests can run it: the settings it
//! reads at start-up, the layer that carries API Gateway's request context into the core
//! (request id, verified JWT, the invocation's deadline), and the EMF metrics.

pub mod metrics;

use axum::Router;
use axum::extract::Request;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use std::time::{Duration, SystemTime};

use tcrelay_aws::AwsSettings;
use tcrelay_core::deadline::Deadline;
use tcrelay_core::env::Env;
use tcrelay_core::{Config, ConfigError, GatewayJwt, RequestId};

/// Everything the function reads from its environment at start-up.
#[derive(Debug, Clone)]
pub struct StartupConfig {
    /// Tradecloud and the webhook endpoint.
    pub core: Config,
    /// Queues, table, bucket, dedupe timings, claim check.
    pub aws: AwsSettings,
}

/// Everything the function reads from its environment at start-up (besides `RUST_LOG` and the
/// variables the Lambda runtime and the AWS SDK read themselves).
/// The dedupe claims must outlive the request holding them (`DedupeTimings::check_outlives`).
pub fn startup_config(env: &dyn Env) -> Result<StartupConfig, ConfigError> {
    let core = Config::from_env_map(env)?;
    let aws = AwsSettings::from_env_map(env)?;
    aws.dedupe_timings().check_outlives(&core.webhook)?;
    Ok(StartupConfig { core, aws })
}

/// Adds the layer that carries API Gateway's request context into the core: the
/// [`RequestId`] (API Gateway's request id, else the Lambda invocation id), so a request's log
/// lines and its problem answers name the id an operator finds in API Gateway's access log; and,
/// when the route's JWT authorizer verified a token, a [`GatewayJwt`] with its issuer and the
/// client it was issued to, which the core accepts in place of a Basic or Bearer credential if
/// that issuer and client are configured;
/// and the invocation's [`Deadline`], so every step of the request fits in the function's
/// timeout (the core also applies its configured budget, whichever passes first).
///
/// The request context is written by API Gateway, not by the client, so a caller cannot
/// forge either value.
pub fn with_lambda_context(router: Router) -> Router {
    router.layer(axum::middleware::map_request(
        |mut request: Request| async move {
            let (from_gateway, jwt) = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(ctx)) => (
                    ctx.request_id.clone(),
                    ctx.authorizer
                        .as_ref()
                        .and_then(|a| a.jwt.as_ref())
                        .and_then(|jwt| {
                            let claim = |name: &str| {
                                jwt.claims.get(name).filter(|v| !v.is_empty()).cloned()
                            };
                            // The client the token was issued to: `azp` in Entra ID's v2.0
                            // tokens, `appid` in v1.0 ones.
                            Some(GatewayJwt {
                                issuer: claim("iss")?,
                                client: claim("azp").or_else(|| claim("appid")),
                            })
                        }),
                ),
                _ => (None, None),
            };
            let id = from_gateway
                .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
                .filter(|id| !id.is_empty());
            if let Some(id) = id {
                request.extensions_mut().insert(RequestId(id));
            }
            if let Some(jwt) = jwt {
                request.extensions_mut().insert(jwt);
            }
            if let Some(deadline) = request
                .lambda_context_ref()
                .map(|c| invocation_deadline(c.deadline(), SystemTime::now()))
            {
                request.extensions_mut().insert(deadline);
            }
            request
        },
    ))
}

/// The invocation's deadline (wall clock, from the Runtime API) as a [`Deadline`] on the
/// monotonic clock the steps are timed with. One already passed leaves no time at all: the
/// request is then answered 503 at once rather than cut off by Lambda.
pub fn invocation_deadline(deadline: SystemTime, now: SystemTime) -> Deadline {
    let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
    Deadline::at(tokio::time::Instant::now() + left, left)
}

#[cfg(test)]
mod tests {
    use tcrelay_aws::settings::{
        TCRELAY_CLAIM_CHECK_BUCKET, TCRELAY_DEDUPE_TABLE, TCRELAY_QUARANTINE_QUEUE_URL,
        TCRELAY_QUEUE_URL,
    };
    use tcrelay_core::config::{
        TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, TCRELAY_REQUEST_BUDGET_MS, TCRELAY_WEBHOOK_BASIC,
    };
    use tcrelay_core::env::env_map;

    use super::*;

    /// A claim that expires while its request still works (a slow queue send) can be taken
    /// over by a retry or a poll, and both enqueue: the ERP gets the message twice. So the
    /// expiry must be above the request budget, and a value that is not stops start-up.
    #[test]
    fn an_in_progress_expiry_within_the_request_budget_is_refused_naming_both() {
        let with = |pairs: &[(&str, &str)]| {
            let mut env = env_map(&[
                (TCRELAY_WEBHOOK_BASIC, "tc:pw"),
                (
                    TCRELAY_QUEUE_URL,
                    "https://sqs.eu-west-1.amazonaws.com/1/erp.fifo",
                ),
                (
                    TCRELAY_QUARANTINE_QUEUE_URL,
                    "https://sqs.eu-west-1.amazonaws.com/1/quarantine",
                ),
                (TCRELAY_DEDUPE_TABLE, "relay"),
                (TCRELAY_CLAIM_CHECK_BUCKET, "claims"),
            ]);
            env.extend(env_map(pairs));
            startup_config(&env)
        };
        // The default budget is 25 s.
        for expiry in ["20", "25"] {
            let err = with(&[(TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, expiry)]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var, .. }
                    if *var == TCRELAY_IN_PROGRESS_EXPIRY_SECONDS),
                "{expiry}: {err:?}"
            );
            assert!(
                err.to_string().contains(TCRELAY_REQUEST_BUDGET_MS),
                "{expiry}: {err}"
            );
        }
        assert!(with(&[(TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "26")]).is_ok());
        assert!(
            with(&[
                (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "20"),
                (TCRELAY_REQUEST_BUDGET_MS, "19999"),
            ])
            .is_ok()
        );
        // The defaults, and the template's values, agree.
        assert!(with(&[]).is_ok());
    }
}
