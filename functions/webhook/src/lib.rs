//! The webhook Lambda's glue, kept out of `main.rs` so the tests can run it: the settings it
//! reads at start-up, the Tradecloud client as the core's [`TradecloudApi`] port, the layer
//! that carries API Gateway's request context into the core (request id, verified JWT), and
//! the EMF metrics.
//!
//! The core must not depend on the HTTP client (DESIGN.md: dependencies point down only), so
//! the small adapter from `tradecloud_client::TradecloudClient` to the port lives here.

pub mod metrics;

use async_trait::async_trait;
use axum::Router;
use axum::extract::Request;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;
use serde_json::Value;
use tcrelay_core::env::Env;
use tcrelay_core::ports::{ApiError, TradecloudApi};
use tcrelay_core::{Config, ConfigError, GatewayJwt, RequestId};
use tradecloud_client::{ClientError, TradecloudClient};

/// Everything the function reads from its environment at start-up (besides `RUST_LOG` and the
/// variables the Lambda runtime and the AWS SDK read themselves).
pub fn startup_config(env: &dyn Env) -> Result<Config, ConfigError> {
    Config::from_env_map(env)
}

/// [`TradecloudClient`] as the core's [`TradecloudApi`].
#[derive(Debug, Clone)]
pub struct ClientApi(pub TradecloudClient);

#[async_trait]
impl TradecloudApi for ClientApi {
    async fn fetch_order(&self, id: &str) -> Result<Value, ApiError> {
        self.0.fetch_order(id).await.map_err(api_error)
    }

    async fn fetch_shipment(&self, id: &str) -> Result<Value, ApiError> {
        self.0.fetch_shipment(id).await.map_err(api_error)
    }
}

/// Classifies a client error by the answer the webhook gives Tradecloud.
pub fn api_error(error: ClientError) -> ApiError {
    match error {
        ClientError::NotFound => ApiError::NotFound,
        // An id that cannot name an object in a URL cannot be fetched, now or later.
        ClientError::InvalidId { .. } => ApiError::NotFound,
        ClientError::Unauthorized { .. } => ApiError::Unauthorized,
        ClientError::Upstream { status } => ApiError::Upstream { status },
        // Tradecloud refused our request: its API's problem, not the webhook's; 502 keeps the
        // notification (Tradecloud retries) while an operator looks.
        ClientError::BadRequest { status, .. } => ApiError::Upstream { status },
        ClientError::Timeout => ApiError::Timeout,
        ClientError::Connect { reason } => ApiError::Unavailable(reason),
        ClientError::Malformed { reason } => ApiError::Malformed(reason),
    }
}

/// Adds the layer that carries API Gateway's request context into the core: the
/// [`RequestId`] (API Gateway's request id, else the Lambda invocation id), so a request's log
/// lines and its problem answers name the id an operator finds in API Gateway's access log; and,
/// when the route's JWT authorizer verified a token, a [`GatewayJwt`] with its issuer, which
/// the core accepts in place of a Basic or Bearer credential if that issuer is configured.
///
/// The request context is written by API Gateway, not by the client, so a caller cannot
/// forge either value.
pub fn with_lambda_context(router: Router) -> Router {
    router.layer(axum::middleware::map_request(
        |mut request: Request| async move {
            let (from_gateway, jwt_issuer) = match request.request_context_ref() {
                Some(RequestContext::ApiGatewayV2(ctx)) => (
                    ctx.request_id.clone(),
                    ctx.authorizer
                        .as_ref()
                        .and_then(|a| a.jwt.as_ref())
                        .and_then(|jwt| jwt.claims.get("iss").cloned()),
                ),
                _ => (None, None),
            };
            let id = from_gateway
                .or_else(|| request.lambda_context_ref().map(|c| c.request_id.clone()))
                .filter(|id| !id.is_empty());
            if let Some(id) = id {
                request.extensions_mut().insert(RequestId(id));
            }
            if let Some(issuer) = jwt_issuer.filter(|i| !i.is_empty()) {
                request.extensions_mut().insert(GatewayJwt { issuer });
            }
            request
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_map_to_the_answers_tradecloud_retries_or_drops() {
        assert!(matches!(
            api_error(ClientError::NotFound),
            ApiError::NotFound
        ));
        assert!(matches!(
            api_error(ClientError::InvalidId { id: "..".into() }),
            ApiError::NotFound
        ));
        assert!(matches!(
            api_error(ClientError::Upstream { status: 503 }),
            ApiError::Upstream { status: 503 }
        ));
        assert!(matches!(
            api_error(ClientError::BadRequest {
                status: 400,
                reason: "x".into()
            }),
            ApiError::Upstream { status: 400 }
        ));
        assert!(matches!(api_error(ClientError::Timeout), ApiError::Timeout));
        assert!(matches!(
            api_error(ClientError::Connect { reason: "dns".into() }),
            ApiError::Unavailable(r) if r == "dns"
        ));
        assert!(matches!(
            api_error(ClientError::Unauthorized { status: 403 }),
            ApiError::Unauthorized
        ));
        assert!(matches!(
            api_error(ClientError::Malformed { reason: "x".into() }),
            ApiError::Malformed(_)
        ));
    }
}
