//! HTTP client for Tradecloud's API v2: JWT login and refresh, fetch by id, poll.
//!
//! [`TradecloudClient`] logs in with the configured integration user (JWT, refreshed before it
//! expires, one re-login on a 401), fetches orders and shipments by id, and reads poll and search
//! pages. It keeps Tradecloud's rules for API users: at most 10 requests per second, and calls
//! one at a time when so configured (four may wait at once by default), back-off on 429, 5xx and timeouts (408 included).
//! Errors come back as [`ClientError`], classified so the webhook can answer 404, 502, 503 or
//! 504.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tradecloud_client::{ClientConfig, Credentials, PollEndpoint, PollQuery, TradecloudClient};
//!
//! let config = ClientConfig::new(
//!     "https://api.accp.tradecloud1.com/v2",
//!     Credentials::new("integration@example.com", "password"),
//! );
//! // One client per process: clones share the tokens, the rate limiter and the connections.
//! let client = TradecloudClient::new(config)?;
//! let order = client.fetch_order("0d9d3e6a-8a57-4b8b-9d2c-6b1f0c0e5a11").await?;
//! let page = client
//!     .poll(PollEndpoint::Orders, &PollQuery::new("2025-04-23T10:01:53.812Z"))
//!     .await?;
//! // Tradecloud promises neither the items' order nor a strict "after" (docs/tradecloud.md
//! // §6.2, §6.5): where the cursor moves next is the caller's decision.
//! println!("{} of {:?}, lastUpdatedAt {:?}", page.items.len(), page.total, page.last_updated_at);
//! # let _ = order; Ok(()) }
//! ```

mod client;
mod config;
mod error;
mod page;
mod rate;

pub use client::{TradecloudClient, install_crypto_provider};
pub use config::{
    ClientConfig, Credentials, DEFAULT_BASE_URL, DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_RESPONSE_BYTES, Secret,
};
pub use error::{ClientError, ConfigError};
pub use page::{Page, PollEndpoint, PollQuery, SearchEndpoint, item_last_updated_at};
pub use rate::RateLimiter;
