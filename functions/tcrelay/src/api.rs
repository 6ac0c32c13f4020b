//! Tradecloud's HTTP client as the core's two API ports.
//!
//! The same adapters exist (or are being written) in the Lambda crates (`webhook::ClientApi`,
//! the poller's client adapter). They are repeated here rather than depending on the Lambda
//! crates, which would pull `lambda_http`/`lambda_runtime` into the local binary; both belong in
//! `tradecloud-client` (or a small shared crate) so there is one copy.

use async_trait::async_trait;
use serde_json::Value;
use tcrelay_core::ports::{ApiError, TradecloudApi};
use tcrelay_poll::{EndpointMode, PageRequest, PollApi, PollStream, PolledPage};
use tradecloud_client::{ClientError, PollEndpoint, PollQuery, SearchEndpoint, TradecloudClient};

/// [`TradecloudClient`] as the webhook's [`TradecloudApi`] (GET webhooks).
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
            EndpointMode::Poll => {
                let endpoint = match request.stream {
                    PollStream::Orders => PollEndpoint::Orders,
                    PollStream::SingleDeliveryOrders => PollEndpoint::SingleDeliveryOrders,
                    PollStream::Shipments => PollEndpoint::Shipments,
                };
                self.0.poll(endpoint, &query).await
            }
            EndpointMode::Search => {
                let endpoint = match request.stream {
                    PollStream::Orders => SearchEndpoint::Orders,
                    PollStream::Shipments => SearchEndpoint::Shipments,
                    // The poll configuration refuses this combination at start-up.
                    PollStream::SingleDeliveryOrders => {
                        return Err(ApiError::Malformed(
                            "Tradecloud has no search endpoint for single-delivery orders".into(),
                        ));
                    }
                };
                self.0.search(endpoint, &query).await
            }
        }
        .map_err(api_error)?;
        Ok(PolledPage {
            items: page.items,
            total: page.total,
            last_updated_at: page.last_updated_at,
        })
    }
}

/// Classifies a client error by the answer the webhook gives Tradecloud (as in the Lambda).
pub fn api_error(error: ClientError) -> ApiError {
    match error {
        ClientError::NotFound => ApiError::NotFound,
        // An id that cannot name an object in a URL cannot be fetched, now or later.
        ClientError::InvalidId { .. } => ApiError::NotFound,
        ClientError::Unauthorized { .. } => ApiError::Unauthorized,
        ClientError::Upstream { status } => ApiError::Upstream { status },
        ClientError::BadRequest { status, .. } => ApiError::Upstream { status },
        ClientError::Timeout => ApiError::Timeout,
        ClientError::Connect { reason } => ApiError::Unavailable(reason),
        ClientError::Malformed { reason } => ApiError::Malformed(reason),
    }
}
