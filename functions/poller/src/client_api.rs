//! [`tradecloud_client::TradecloudClient`] as the poll loop's [`PollApi`].
//!
//! The client keeps Tradecloud's rules (sequential calls, at most 10 requests/s, back-off on
//! 429 with `Retry-After`, 5xx and timeouts within its retry budget), so nothing here limits
//! again; the loop has one call outstanding at a time.

use async_trait::async_trait;
use tcrelay_core::ports::ApiError;
use tcrelay_poll::{EndpointMode, PageRequest, PollApi, PollStream, PolledPage};
use tradecloud_client::{ClientError, PollEndpoint, PollQuery, SearchEndpoint, TradecloudClient};

/// The HTTP client as a [`PollApi`].
#[derive(Debug, Clone)]
pub struct ClientPollApi(pub TradecloudClient);

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

/// Classifies a client error as the core's [`ApiError`].
pub fn api_error(error: ClientError) -> ApiError {
    match error {
        ClientError::NotFound => ApiError::NotFound,
        ClientError::Unauthorized { .. } => ApiError::Unauthorized,
        ClientError::Upstream { status } => ApiError::Upstream { status },
        ClientError::Timeout => ApiError::Timeout,
        ClientError::Connect { reason } => ApiError::Unavailable(reason),
        ClientError::Malformed { reason } => ApiError::Malformed(reason),
        ClientError::BadRequest { status, reason } => {
            // Our request was refused (typically a status filter Tradecloud does not accept):
            // the reason is for the operator, the status for the classification.
            tracing::error!(status, reason, "Tradecloud rejected the poll request");
            ApiError::Upstream { status }
        }
        ClientError::InvalidId { id } => ApiError::Malformed(format!("invalid id {id:?}")),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_keep_their_class() {
        assert!(matches!(
            api_error(ClientError::Connect {
                reason: "refused".into()
            }),
            ApiError::Unavailable(r) if r == "refused"
        ));
        assert!(matches!(api_error(ClientError::Timeout), ApiError::Timeout));
        assert!(matches!(
            api_error(ClientError::Unauthorized { status: 403 }),
            ApiError::Unauthorized
        ));
        assert!(matches!(
            api_error(ClientError::Upstream { status: 429 }),
            ApiError::Upstream { status: 429 }
        ));
        assert!(matches!(
            api_error(ClientError::BadRequest {
                status: 400,
                reason: "bad filter".into()
            }),
            ApiError::Upstream { status: 400 }
        ));
    }
}
