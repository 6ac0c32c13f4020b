//! Poll and search requests and the page they return.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::ClientError;

/// The poll endpoints Tradecloud documents since 2024 (`filters.lastUpdatedAfter`; whether
/// "after" is strict is not defined, docs/tradecloud.md §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PollEndpoint {
    /// `POST /order-search/poll`: orders in delivery-schedule form.
    Orders,
    /// `POST /order-search/poll/single-delivery`: orders in single-delivery form.
    SingleDeliveryOrders,
    /// `POST /shipment/poll`.
    Shipments,
}

impl PollEndpoint {
    /// The path below the API base.
    pub fn path(self) -> &'static str {
        match self {
            Self::Orders => "order-search/poll",
            Self::SingleDeliveryOrders => "order-search/poll/single-delivery",
            Self::Shipments => "shipment/poll",
        }
    }
}

/// The older search endpoints that accounts polled before 2024 (`filters.lastUpdatedSince`,
/// inclusive by our reading of "since", docs/tradecloud.md §6.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SearchEndpoint {
    /// `POST /order-search/search`.
    Orders,
    /// `POST /shipment/search`.
    Shipments,
}

impl SearchEndpoint {
    /// The path below the API base.
    pub fn path(self) -> &'static str {
        match self {
            Self::Orders => "order-search/search",
            Self::Shipments => "shipment/search",
        }
    }
}

/// One page request: the cursor, paging, and extra filters passed to Tradecloud unchanged.
#[derive(Clone, Debug, PartialEq)]
pub struct PollQuery {
    /// The cursor: a `lastUpdatedAt` string Tradecloud returned (or the configured start date).
    pub last_updated: String,
    /// Items to skip (only for paging inside one timestamp).
    pub offset: u32,
    /// Page size; Tradecloud allows at most 100.
    pub limit: u32,
    /// More members of `filters`, e.g. `"status": {"processStatus": ["Confirmed"]}` or
    /// `"buyerOrder": {"companyId": "…"}`. The cursor member set by the client wins over one here.
    pub filters: Map<String, Value>,
}

impl PollQuery {
    /// A query for the first page after `last_updated`, 100 items, no extra filters.
    pub fn new(last_updated: impl Into<String>) -> Self {
        Self {
            last_updated: last_updated.into(),
            offset: 0,
            limit: 100,
            filters: Map::new(),
        }
    }

    pub(crate) fn poll_body(&self) -> Value {
        let mut filters = self.filters.clone();
        filters.insert("lastUpdatedAfter".into(), self.last_updated.clone().into());
        json!({ "filters": filters, "offset": self.offset, "limit": self.limit })
    }

    pub(crate) fn search_body(&self, endpoint: SearchEndpoint) -> Value {
        let mut filters = self.filters.clone();
        filters.insert("lastUpdatedSince".into(), self.last_updated.clone().into());
        let order = json!({ "field": "lastUpdatedAt", "order": "asc" });
        // Order search takes a list of sort keys, shipment search a single object.
        let sort = match endpoint {
            SearchEndpoint::Orders => Value::Array(vec![order]),
            SearchEndpoint::Shipments => order,
        };
        json!({ "filters": filters, "sort": sort, "offset": self.offset, "limit": self.limit })
    }
}

/// One page of a poll or search answer.
#[derive(Clone, Debug)]
pub struct Page {
    /// The orders or shipments, each its JSON text exactly as Tradecloud sent it (every field,
    /// key order and escapes kept), each a JSON object. Kept as text: a consumer reads the few
    /// fields it needs from it and forwards it as it is, instead of building a value tree per
    /// object (the poller's largest cost when it did).
    pub items: Vec<Box<RawValue>>,
    /// Matches in total, independent of paging, when Tradecloud said.
    pub total: Option<u64>,
    /// The answer's top-level `lastUpdatedAt` (which Tradecloud suggests as the next
    /// `lastUpdatedAfter`, docs/tradecloud.md §6.3), else the last item's; `None` on an empty
    /// page without one. The exact string Tradecloud wrote, never re-formatted. Not necessarily
    /// the newest item's: Tradecloud no longer promises any order of the items (§6.5), so a
    /// caller that moves a cursor decides from the items themselves what is safe to move to.
    pub last_updated_at: Option<String>,
}

/// The `lastUpdatedAt` of one order or shipment: top-level, else under `meta`.
pub fn item_last_updated_at(item: &Value) -> Option<&str> {
    item.get("lastUpdatedAt")
        .and_then(Value::as_str)
        .or_else(|| item.pointer("/meta/lastUpdatedAt").and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

impl Page {
    /// Each item decoded into a value, for callers that want to look inside them.
    pub fn item_values(&self) -> serde_json::Result<Vec<Value>> {
        self.items
            .iter()
            .map(|item| serde_json::from_str(item.get()))
            .collect()
    }
}

/// A page answer's members as read: the items as texts, the rest as small values. A member
/// sent twice counts as its last (as a parse into a value reads it).
#[derive(Default)]
struct Members {
    total: Option<Value>,
    data: Option<List>,
    orders: Option<List>,
    last_updated_at: Option<Value>,
}

/// What `data` (or `orders`) held.
enum List {
    Null,
    Items(Vec<Box<RawValue>>),
    /// Not a list.
    Other,
}

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Page;
        impl<'de> Visitor<'de> for Page {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Members::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "total" => members.total = Some(map.next_value()?),
                        "data" => members.data = Some(map.next_value()?),
                        "orders" => members.orders = Some(map.next_value()?),
                        "lastUpdatedAt" => members.last_updated_at = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(members)
            }
        }
        de.deserialize_map(Page)
    }
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Items;
        impl<'de> Visitor<'de> for Items {
            type Value = List;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of items")
            }
            fn visit_unit<E: de::Error>(self) -> Result<List, E> {
                Ok(List::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
                while let Some(item) = seq.next_element::<Box<RawValue>>()? {
                    items.push(item);
                }
                Ok(List::Items(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<List, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(List::Other)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<List, E> {
                Ok(List::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<List, E> {
                Ok(List::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<List, E> {
                Ok(List::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<List, E> {
                Ok(List::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<List, E> {
                Ok(List::Other)
            }
        }
        de.deserialize_any(Items)
    }
}

/// Reads a page: its items as texts (each checked to be an object), the total and the answer's
/// `lastUpdatedAt`. No value tree is built for the items.
///
/// What an empty answer looks like is not documented (docs/tradecloud.md §9; presumably
/// `{"data":[],"total":0}`), so every way of saying "nothing" is an empty page: an empty body
/// (a `204 No Content`), `{}`, and a `data` (or `orders`) that is missing or `null`, unless a
/// `total` above zero says there are matches. An empty page leaves the cursor where it was, so
/// reading a quiet period that way loses nothing, where refusing it would fail every run.
pub(crate) fn parse_page(body: &[u8]) -> Result<Page, ClientError> {
    let body = without_bom(body);
    let not_json = |e: serde_json::Error| ClientError::Malformed {
        reason: format!("page is not JSON: {e}"),
    };
    if body.trim_ascii().is_empty() {
        return Ok(Page {
            items: Vec::new(),
            total: None,
            last_updated_at: None,
        });
    }
    if body.trim_ascii_start().first() != Some(&b'{') {
        serde_json::from_slice::<IgnoredAny>(body).map_err(not_json)?;
        return Err(malformed("page is not a JSON object"));
    }
    let members: Members = serde_json::from_slice(body).map_err(not_json)?;
    let total = match &members.total {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .ok_or_else(|| malformed("page total is not a non-negative integer"))?,
        ),
        // Tradecloud once sent numbers in quotes (TC-6431).
        Some(Value::String(s)) => Some(
            s.parse()
                .map_err(|_| malformed("page total is not a non-negative integer"))?,
        ),
        Some(_) => return Err(malformed("page total is not a number")),
    };
    // Old Tradecloud answers named the list `orders`.
    let list = match members.data {
        Some(List::Null) | None => members.orders,
        found => found,
    };
    let items = match list {
        Some(List::Items(items)) => items,
        // Matches claimed but none given: a broken answer, not a quiet period.
        Some(List::Null) | None if total.is_some_and(|t| t > 0) => {
            return Err(malformed("page has no `data` list"));
        }
        Some(List::Null) | None => Vec::new(),
        Some(List::Other) => return Err(malformed("page `data` is not a list")),
    };
    // A raw value's text starts at its first token.
    if let Some(i) = items.iter().position(|item| !item.get().starts_with('{')) {
        return Err(ClientError::Malformed {
            reason: format!("page item {i} is not a JSON object"),
        });
    }
    let last_updated_at = match &members.last_updated_at {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(Value::String(_)) => None,
        Some(_) => return Err(malformed("page lastUpdatedAt is not a string")),
    }
    .or_else(|| {
        let last = read_value(items.last()?.get().as_bytes()).ok()?;
        item_last_updated_at(&last).map(str::to_owned)
    });
    Ok(Page {
        items,
        total,
        last_updated_at,
    })
}

/// Reads a fetched order or shipment.
pub(crate) fn parse_object(body: &[u8]) -> Result<Value, ClientError> {
    let value = read_value(without_bom(body)).map_err(|e| ClientError::Malformed {
        reason: format!("answer is not JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(malformed("answer is not a JSON object"));
    }
    Ok(value)
}

/// Reads JSON text as a value. A lone surrogate escape in it (a Java text cut in the middle of
/// an emoji, as Jackson writes it), which serde_json refuses, is read as U+FFFD, with a WARN:
/// refusing a fetched object would fail every retry of the GET webhook that asked for it (and
/// Tradecloud retries a 502 without end), and a page's last item is where the page's time is
/// read from.
fn read_value(text: &[u8]) -> serde_json::Result<Value> {
    serde_json::from_slice(text).or_else(|e| {
        let Some((mended, offsets)) = tcrelay_json_string::lone_surrogates_mended(text) else {
            return Err(e);
        };
        tracing::warn!(
            escapes = offsets.len(),
            first_at = offsets[0],
            "lone UTF-16 surrogate escapes in Tradecloud's answer, read as U+FFFD"
        );
        serde_json::from_slice(&mended)
    })
}

/// `body` without a UTF-8 byte-order mark: JSON forbids one, but some servers write it, and
/// refusing a poll page over it would stop the stream on every run (the webhook strips it too).
fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

fn malformed(reason: &str) -> ClientError {
    ClientError::Malformed {
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_prefers_response_cursor_and_keeps_items_whole() {
        let page = parse_page(
            br#"{"data":[{"id":"a","lastUpdatedAt":"2025-01-01T00:00:00.001Z","x":{"price":1.10}}],
                "total":7,"lastUpdatedAt":"2025-01-01T00:00:00.002Z"}"#,
        )
        .unwrap();
        assert_eq!(page.total, Some(7));
        assert_eq!(
            page.last_updated_at.as_deref(),
            Some("2025-01-01T00:00:00.002Z")
        );
        // arbitrary_precision keeps the decimal exactly as written.
        assert_eq!(
            page.item_values().unwrap()[0]["x"]["price"].to_string(),
            "1.10"
        );
        // Each item is its text exactly as sent.
        assert_eq!(
            page.items[0].get(),
            r#"{"id":"a","lastUpdatedAt":"2025-01-01T00:00:00.001Z","x":{"price":1.10}}"#
        );
    }

    #[test]
    fn page_falls_back_to_last_item_and_orders_key() {
        let page = parse_page(
            br#"{"orders":[{"id":"a","lastUpdatedAt":"2025-01-01T00:00:00.001Z"},
                {"id":"b","meta":{"lastUpdatedAt":"2025-01-01T00:00:00.005Z"}}],"total":"2"}"#,
        )
        .unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.total, Some(2));
        assert_eq!(
            page.last_updated_at.as_deref(),
            Some("2025-01-01T00:00:00.005Z")
        );
    }

    #[test]
    fn a_member_sent_twice_counts_as_its_last_and_unknown_members_are_skipped() {
        let page = parse_page(
            br#"{"data":null,"data":[{"id":"a"}],"total":"1","total":1,"next":{"x":[1,{}]},"data":[{"id":"b"},{ "id" : "c" }]}"#,
        )
        .unwrap();
        let ids: Vec<&str> = page.items.iter().map(|i| i.get()).collect();
        assert_eq!(ids, [r#"{"id":"b"}"#, r#"{ "id" : "c" }"#]);
        assert_eq!(page.total, Some(1));
    }

    #[test]
    fn a_byte_order_mark_before_a_page_or_an_object_is_read_past() {
        let page = parse_page(b"\xEF\xBB\xBF{\"data\":[{\"id\":\"a\"}],\"total\":1}").unwrap();
        assert_eq!(page.items[0].get(), r#"{"id":"a"}"#);
        assert!(parse_page(b"\xEF\xBB\xBF").unwrap().items.is_empty());
        let object = parse_object(b"\xEF\xBB\xBF{\"id\":\"a\"}").unwrap();
        assert_eq!(object["id"], "a");
        // Only at the start.
        assert!(parse_object(b"{\"id\":\"a\"}\xEF\xBB\xBF").is_err());
    }

    #[test]
    fn empty_page_has_no_cursor() {
        let page = parse_page(br#"{"data":[],"total":0}"#).unwrap();
        assert!(page.items.is_empty());
        assert_eq!(page.last_updated_at, None);
        let page = parse_page(br#"{"total":0}"#).unwrap();
        assert!(page.items.is_empty());
    }

    /// The empty answer's shape is not documented (docs/tradecloud.md §9): every way of saying
    /// "nothing" reads as an empty page, not as a malformed one.
    #[test]
    fn every_empty_shape_is_an_empty_page() {
        for body in [
            &b""[..],
            b" \r\n",
            b"{}",
            br#"{"data":null}"#,
            br#"{"orders":null}"#,
            br#"{"data":null,"total":null}"#,
            br#"{"data":null,"total":0}"#,
            br#"{"data":[]}"#,
            br#"{"total":"0"}"#,
            br#"{"lastUpdatedAt":null}"#,
        ] {
            let page = parse_page(body).unwrap_or_else(|e| panic!("{body:?}: {e:?}"));
            assert!(page.items.is_empty(), "{body:?}");
            assert_eq!(page.last_updated_at, None, "{body:?}");
        }
        // An empty page that states its cursor keeps it.
        let page = parse_page(br#"{"lastUpdatedAt":"2025-01-01T00:00:00.000Z"}"#).unwrap();
        assert_eq!(
            page.last_updated_at.as_deref(),
            Some("2025-01-01T00:00:00.000Z")
        );
    }

    #[test]
    fn wrong_shapes_are_malformed() {
        for body in [
            &b"not json"[..],
            br#"[1,2]"#,
            // Matches claimed, none given.
            br#"{"total":3}"#,
            br#"{"data":null,"total":1}"#,
            b"null",
            br#"{"data":{"id":"a"},"total":1}"#,
            br#"{"data":[1],"total":1}"#,
            br#"{"data":[],"total":-1}"#,
            br#"{"data":[],"total":0,"lastUpdatedAt":5}"#,
            br#"{"data":[{"id":"a"},"b"],"total":2}"#,
            br#"{"data":[{"id":"a"}],"total":1"#,
            br#"{"data":[{"id":"a"}],"total":1} x"#,
            br#"{"data":"list","total":1}"#,
        ] {
            let err = parse_page(body).unwrap_err();
            assert!(
                matches!(err, ClientError::Malformed { .. }),
                "{body:?}: {err:?}"
            );
        }
    }

    #[test]
    fn poll_body_carries_cursor_paging_and_filters() {
        let mut q = PollQuery::new("2025-01-01T00:00:00.000Z");
        q.offset = 100;
        q.limit = 50;
        q.filters
            .insert("status".into(), json!({"processStatus": ["Confirmed"]}));
        q.filters
            .insert("lastUpdatedAfter".into(), json!("ignored"));
        assert_eq!(
            q.poll_body(),
            json!({"filters": {"lastUpdatedAfter": "2025-01-01T00:00:00.000Z",
                               "status": {"processStatus": ["Confirmed"]}},
                   "offset": 100, "limit": 50})
        );
        let search = q.search_body(SearchEndpoint::Orders);
        assert_eq!(
            search["filters"]["lastUpdatedSince"],
            "2025-01-01T00:00:00.000Z"
        );
        assert_eq!(
            search["sort"][0],
            json!({"field": "lastUpdatedAt", "order": "asc"})
        );
        let search = q.search_body(SearchEndpoint::Shipments);
        assert_eq!(
            search["sort"],
            json!({"field": "lastUpdatedAt", "order": "asc"})
        );
    }
}
