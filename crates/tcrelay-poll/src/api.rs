//! The port to Tradecloud's poll (and old search) endpoints, as the poll loop needs it.
//!
//! The loop never speaks HTTP: the poller function implements [`PollApi`] with Tradecloud's
//! HTTP client, the tests with a scripted world.

use async_trait::async_trait;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use tcrelay_core::ports::ApiError;
use tradecloud_model::ObjectKind;

/// One poll stream: what is polled, and the name its cursor is stored under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PollStream {
    /// Orders in delivery-schedule form: `POST /order-search/poll` (search: `/order-search/search`).
    Orders,
    /// Orders in single-delivery form: `POST /order-search/poll/single-delivery` (no search form).
    SingleDeliveryOrders,
    /// Shipments: `POST /shipment/poll` (search: `/shipment/search`).
    Shipments,
}

impl PollStream {
    /// Every stream, in the order a run polls them.
    pub const ALL: [PollStream; 3] = [
        PollStream::Orders,
        PollStream::SingleDeliveryOrders,
        PollStream::Shipments,
    ];

    /// The configuration and cursor name: `orders`, `single-delivery-orders`, `shipments`.
    pub fn as_str(self) -> &'static str {
        match self {
            PollStream::Orders => "orders",
            PollStream::SingleDeliveryOrders => "single-delivery-orders",
            PollStream::Shipments => "shipments",
        }
    }

    /// Parses a configuration name (exact, lower case).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The kind of the objects the stream returns, as written into the envelope.
    pub fn kind(self) -> ObjectKind {
        match self {
            PollStream::Orders => ObjectKind::Order,
            PollStream::SingleDeliveryOrders => ObjectKind::SingleDeliveryOrder,
            PollStream::Shipments => ObjectKind::Shipment,
        }
    }

    /// Whether the stream returns orders (either form), which have line statuses and line
    /// `lastUpdatedAt`s, as opposed to shipments.
    pub fn is_orders(self) -> bool {
        !matches!(self, PollStream::Shipments)
    }
}

impl std::fmt::Display for PollStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which family of endpoints is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointMode {
    /// The poll endpoints (since 2024): `filters.lastUpdatedAfter`, strictly after.
    #[default]
    Poll,
    /// The older search endpoints: `filters.lastUpdatedSince`, inclusive, sorted by
    /// `lastUpdatedAt` ascending on request. For accounts that still use them.
    Search,
}

impl EndpointMode {
    /// Whether the time filter includes objects updated exactly at the given time.
    pub fn is_inclusive(self) -> bool {
        matches!(self, EndpointMode::Search)
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// What to poll.
    pub stream: PollStream,
    /// Poll or search endpoints.
    pub mode: EndpointMode,
    /// The time filter: `lastUpdatedAfter` (poll) or `lastUpdatedSince` (search). A string
    /// Tradecloud returned, the configured start, or one of those minus the lookback.
    pub last_updated: String,
    /// Objects to skip; only non-zero while paging inside one timestamp that fills pages.
    pub offset: u32,
    /// Page size, at most 100.
    pub limit: u32,
    /// Further members of `filters` (e.g. `status`), passed to Tradecloud unchanged.
    pub filters: Map<String, Value>,
}

/// One page as Tradecloud answered it.
#[derive(Debug, Clone, Default)]
pub struct PolledPage {
    /// The orders or shipments, each its JSON text complete and exactly as sent (an object),
    /// in the order sent (Tradecloud no longer promises `lastUpdatedAt` order).
    pub items: Vec<Box<RawValue>>,
    /// Matches in total, independent of paging, when Tradecloud said.
    pub total: Option<u64>,
    /// The answer's `lastUpdatedAt` (Tradecloud's suggested next cursor), when given.
    pub last_updated_at: Option<String>,
}

impl PolledPage {
    /// A page of `items` given as values (tests and scripted worlds build pages so).
    pub fn of_values(items: &[Value], total: Option<u64>, last_updated_at: Option<String>) -> Self {
        Self {
            items: items
                .iter()
                .map(|item| {
                    serde_json::value::to_raw_value(item).expect("a JSON value writes as JSON")
                })
                .collect(),
            total,
            last_updated_at,
        }
    }
}

/// Tradecloud's poll API as the loop needs it: one page per call. Implementations keep
/// Tradecloud's rules (at most 10 requests/s, back-off on 429/5xx/timeouts within a budget);
/// the loop only ever has one call outstanding.
#[async_trait]
pub trait PollApi: Send + Sync {
    /// Fetches one page. Errors are classified as the webhook's: `Unavailable`, `Timeout` and
    /// `Upstream` mean Tradecloud could not be reached after retries; `Unauthorized` our
    /// credentials; `Malformed` an answer we cannot read.
    async fn fetch_page(&self, request: &PageRequest) -> Result<PolledPage, ApiError>;
}
