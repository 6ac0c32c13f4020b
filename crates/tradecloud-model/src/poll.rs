//! The poll and search requests and their answers (docs/tradecloud.md §6).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use crate::decode::parse_json;
use crate::error::DecodeError;
use crate::num::opt_u64;

/// Body of `POST /order-search/poll`, `/poll/single-delivery`, `/shipment/poll`, and of the
/// older `/order-search/search` and `/shipment/search`.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// Filters.
    #[serde(default)]
    pub filters: PollFilters,
    /// Paging offset.
    #[serde(default, with = "opt_u64")]
    pub offset: Option<u64>,
    /// Page size; at most 100.
    #[serde(default, with = "opt_u64")]
    pub limit: Option<u64>,
    /// Sort (search endpoints only), e.g. `[{"field":"lastUpdatedAt","order":"asc"}]`.
    pub sort: Option<Value>,
}

/// `filters` of a poll or search request.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollFilters {
    /// Poll endpoints: only objects changed strictly after this time.
    pub last_updated_after: Option<String>,
    /// Old search endpoints: objects changed at or after this time.
    pub last_updated_since: Option<String>,
    /// Status filters, passed through as given.
    pub status: Option<Value>,
    /// Buyer filter, e.g. `{"companyId": "…"}`.
    pub buyer_order: Option<Value>,
    /// Supplier filter.
    pub supplier_order: Option<Value>,
    /// Shipment buyer filter.
    pub buyer_shipment: Option<Value>,
    /// Shipment supplier filter.
    pub supplier_shipment: Option<Value>,
    /// Company filter, as in the 2025 SDK examples.
    pub company_id: Option<Value>,
}

/// The answer to a poll or search request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// The orders or shipments, complete, as JSON (old Tradecloud called this `orders`).
    #[serde(default, alias = "orders")]
    pub data: Vec<Value>,
    /// Matches in all, independent of paging.
    #[serde(default, with = "opt_u64", skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// The cursor to use next: response level since 2025; else the last item's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<String>,
}

impl PollResponse {
    /// The cursor this page moves to: the response's `lastUpdatedAt`, else the last item's.
    pub fn next_cursor(&self) -> Option<String> {
        self.last_updated_at.clone().or_else(|| {
            self.data
                .last()
                .and_then(|o| o.get("lastUpdatedAt")?.as_str().map(str::to_owned))
        })
    }
}

/// Decodes a poll or search answer.
pub fn decode_poll_response(json: &[u8]) -> Result<PollResponse, DecodeError> {
    let value = parse_json(json)?;
    serde_path_to_error::deserialize(&value).map_err(|e| DecodeError::InvalidField {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
        at: None,
    })
}
