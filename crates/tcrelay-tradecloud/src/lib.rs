//! Tradecloud's API as the relay's ports: [`TradecloudClient`] as the webhook's
//! [`TradecloudApi`] (GET webhooks fetch the object by id) and as the poll loop's [`PollApi`].
//!
//! The adapters live here, not in the client (which knows nothing of the relay) nor in the core
//! (which must not depend on an HTTP client): one copy for the Lambda functions and the local
//! runner. The client keeps Tradecloud's rules (JWT login and refresh, at most 10 requests/s,
//! back-off within a retry budget), so nothing here limits or retries again.

use async_trait::async_trait;
use serde_json::Value;
use tcrelay_core::config::TradecloudSettings;
use tcrelay_core::ports::{ApiError, TradecloudApi};
use tcrelay_poll::{EndpointMode, PageRequest, PollApi, PollStream, PolledPage};
use tradecloud_client::{
    ClientConfig, ClientError, ConfigError, Credentials, PollEndpoint, PollQuery, SearchEndpoint,
    TradecloudClient,
};

/// Why a host refuses to start with poll streams set but no Tradecloud login: polling could
/// only fail, and an operator who set streams expects them polled. Both hosts (the poller
/// Lambda and `tcrelay serve`) stop with it.
pub const STREAMS_WITHOUT_LOGIN: &str = "TCRELAY_POLL_STREAMS is set but there is no Tradecloud \
     login: set TRADECLOUD_USERNAME and TRADECLOUD_PASSWORD, or TCRELAY_TRADECLOUD_SECRET_ARN";

/// The one Tradecloud client of the relay's hosts, for the login of `settings`; `None` without
/// a login. The client's defaults keep Tradecloud's rules: 10 requests/s, back-off within a
/// 20 s budget per call (less than the poll run's time margin). Clones share the login and
/// the rate limit, so one client serves both GET webhooks and polling.
pub fn client_for(settings: &TradecloudSettings) -> Result<Option<TradecloudClient>, ConfigError> {
    settings
        .login
        .as_ref()
        .map(|login| {
            TradecloudClient::new(ClientConfig::new(
                settings.api_url.clone(),
                Credentials::new(login.username.clone(), login.password()),
            ))
        })
        .transpose()
}

/// [`TradecloudClient`] as the webhook's [`TradecloudApi`].
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

/// [`TradecloudClient`] as the poll loop's [`PollApi`].
#[derive(Debug, Clone)]
pub struct ClientPollApi(pub TradecloudClient);

#[async_trait]
impl PollApi for ClientPollApi {
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError> {
        let query = PollQuery {
            last_updated: request.last_updated.clone(),
            offset: request.offset,
            limit: request.limit,
            filters: request.filters.clone(),
        };
        let page = match request.mode {
            EndpointMode::Poll => self.0.poll(poll_endpoint(request.stream), &query).await,
            EndpointMode::Search => match search_endpoint(request.stream) {
                Some(endpoint) => self.0.search(endpoint, &query).await,
                // The poll configuration refuses this combination at start-up.
                None => {
                    return Err(ApiError::Malformed(format!(
                        "Tradecloud has no search endpoint for {}",
                        request.stream
                    )));
                }
            },
        }
        .map_err(api_error)?;
        Ok(PolledPage {
            items: page.items,
            total: page.total,
            last_updated_at: page.last_updated_at,
        })
    }
}

fn poll_endpoint(stream: PollStream) -> PollEndpoint {
    match stream {
        PollStream::Orders => PollEndpoint::Orders,
        PollStream::SingleDeliveryOrders => PollEndpoint::SingleDeliveryOrders,
        PollStream::Shipments => PollEndpoint::Shipments,
    }
}

fn search_endpoint(stream: PollStream) -> Option<SearchEndpoint> {
    match stream {
        PollStream::Orders => Some(SearchEndpoint::Orders),
        PollStream::SingleDeliveryOrders => None,
        PollStream::Shipments => Some(SearchEndpoint::Shipments),
    }
}

/// Classifies a client error by what the relay does next: the webhook answers Tradecloud from
/// it (404 drops, 502/503/504 retry), the poll loop stops the stream at its last checkpoint.
pub fn api_error(error: ClientError) -> ApiError {
    match error {
        ClientError::NotFound => ApiError::NotFound,
        // An id that cannot name an object in a URL cannot be fetched, now or later.
        ClientError::InvalidId { .. } => ApiError::NotFound,
        ClientError::Unauthorized { .. } => ApiError::Unauthorized,
        // The session could not start (a wrong base URL, say): nothing is known about the
        // object, so the webhook answers 503 and Tradecloud retries once it is mended.
        error @ ClientError::Login { .. } => ApiError::Unavailable(error.to_string()),
        ClientError::Upstream { status } => ApiError::Upstream { status },
        ClientError::BadRequest { status, reason } => {
            // Tradecloud refused our request: a functional refusal that a retry meets again.
            // The webhook quarantines the GET and answers 400 (retrying it forever as a 502
            // helped nobody); the poll run stops the stream at its cursor for the operator.
            let reason = tcrelay_core::logsafe::escape_control(&reason).into_owned();
            tracing::error!(status, reason, "Tradecloud rejected the request");
            ApiError::Refused { status, reason }
        }
        // A GET: retried by Tradecloud (502) rather than dropped. A poll page: asked again in
        // smaller pages.
        error @ ClientError::TooLarge { .. } => ApiError::TooLarge(error.to_string()),
        ClientError::Timeout => ApiError::Timeout,
        ClientError::Connect { reason } => ApiError::Unavailable(reason),
        ClientError::Malformed { reason } => ApiError::Malformed(reason),
    }
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
                reason: "bad filter".into()
            }),
            ApiError::Refused { status: 400, reason } if reason == "bad filter"
        ));
        assert!(matches!(
            api_error(ClientError::TooLarge { limit: 10 }),
            ApiError::TooLarge(_)
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
        // What the operator reads in the webhook's answer and the poll's log says what to check.
        let message = api_error(ClientError::Unauthorized { status: 403 }).to_string();
        for hint in ["TRADECLOUD_USERNAME", "TRADECLOUD_PASSWORD", "integration"] {
            assert!(message.contains(hint), "{message}");
        }
        assert!(matches!(
            api_error(ClientError::Login { status: 404, url: "u".into() }),
            ApiError::Unavailable(r) if r.contains("HTTP 404")
        ));
        assert!(matches!(
            api_error(ClientError::Malformed { reason: "x".into() }),
            ApiError::Malformed(_)
        ));
    }

    #[test]
    fn single_delivery_orders_have_a_poll_endpoint_but_no_search_endpoint() {
        assert_eq!(
            poll_endpoint(PollStream::SingleDeliveryOrders),
            PollEndpoint::SingleDeliveryOrders
        );
        assert_eq!(search_endpoint(PollStream::SingleDeliveryOrders), None);
        assert_eq!(
            search_endpoint(PollStream::Shipments),
            Some(SearchEndpoint::Shipments)
        );
    }
}
