//! HTTP client for Tradecloud's API v2: JWT login and refresh, fetch by id, poll.
//!
//! [`TradecloudClient`] logs in with the configured integration user (JWT, refreshed before it
//! expires, one re-login on a 401), fetches orders and shipments by id, and reads poll and search
//! pages. It keeps Tradecloud's rules for API users: sequential calls, at most 10 requests per
//! second, back-off on 429, 5xx and timeouts. Errors come back as [`ClientError`], classified so
//! the webhook can answer 404, 502, 503 or 504.

mod client;
mod config;
mod error;
mod page;
mod rate;

pub use client::TradecloudClient;
pub use config::{ClientConfig, Credentials, DEFAULT_BASE_URL, Secret};
pub use error::{ClientError, ConfigError};
pub use page::{Page, PollEndpoint, PollQuery, SearchEndpoint, item_last_updated_at};
pub use rate::RateLimiter;
