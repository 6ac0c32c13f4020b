//! The poller's settings, read from environment variables (documented in
//! `docs/poller-config.md`).
//!
//! Parsing works on a plain map so it is tested without touching the process environment. An
//! empty value counts as unset, because deployment templates pass `""` for optional parameters.
//! Every error names the variable, so a bad deployment fails at start-up with a clear line.

use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::{Map, Value};
use tcrelay_core::env::{ConfigError, Env, get, number};
use tradecloud_model::timestamp;

use crate::api::{EndpointMode, PollStream};

/// Streams to poll: a comma list of `orders`, `single-delivery-orders`, `shipments`.
pub const TCRELAY_POLL_STREAMS: &str = "TCRELAY_POLL_STREAMS";
/// Where the first run starts (a stream without a stored cursor), `YYYY-MM-DDThh:mm:ss.SSSZ`.
pub const TCRELAY_POLL_START: &str = "TCRELAY_POLL_START";
/// How far before the stored cursor each run re-asks, in milliseconds (at least 1).
pub const TCRELAY_POLL_LOOKBACK_MS: &str = "TCRELAY_POLL_LOOKBACK_MS";
/// JSON object passed to Tradecloud as `filters.status` for the order streams.
pub const TCRELAY_POLL_ORDER_STATUS_FILTER: &str = "TCRELAY_POLL_ORDER_STATUS_FILTER";
/// JSON object passed to Tradecloud as `filters.status` for the shipment stream.
pub const TCRELAY_POLL_SHIPMENT_STATUS_FILTER: &str = "TCRELAY_POLL_SHIPMENT_STATUS_FILTER";
/// Page size, 2 to 100.
pub const TCRELAY_POLL_PAGE_LIMIT: &str = "TCRELAY_POLL_PAGE_LIMIT";
/// Seconds before the Lambda deadline at which a run stops fetching.
pub const TCRELAY_POLL_TIME_MARGIN_SECONDS: &str = "TCRELAY_POLL_TIME_MARGIN_SECONDS";
/// `true` forwards only the changed lines of each object instead of all of them.
pub const TCRELAY_POLL_CHANGED_LINES_ONLY: &str = "TCRELAY_POLL_CHANGED_LINES_ONLY";
/// Our side for the echo filter: `buyer` or `supplier`.
pub const TCRELAY_POLL_ECHO_SIDE: &str = "TCRELAY_POLL_ECHO_SIDE";
/// Echo filter mode: `own-requests` (default when a side is set) or `in-progress`.
pub const TCRELAY_POLL_ECHO_MODE: &str = "TCRELAY_POLL_ECHO_MODE";
/// `poll` (default) or `search` (the older search endpoints, inclusive `lastUpdatedSince`).
pub const TCRELAY_POLL_ENDPOINTS: &str = "TCRELAY_POLL_ENDPOINTS";
/// Seconds a stream's cursor lease lasts past its last heartbeat (a run renews it every third).
pub const TCRELAY_POLL_LEASE_SECONDS: &str = "TCRELAY_POLL_LEASE_SECONDS";
/// Upper bound of pages per stream and run.
pub const TCRELAY_POLL_MAX_PAGES: &str = "TCRELAY_POLL_MAX_PAGES";

/// Default lookback: 1 ms, so objects that land on the cursor's own millisecond after a run
/// read it are asked for again by the next run.
pub const DEFAULT_LOOKBACK_MS: u64 = 1;
/// Default page size: Tradecloud's maximum.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// Default margin: 30 s, more than one Tradecloud call may take with its retries (20 s budget).
pub const DEFAULT_TIME_MARGIN_SECONDS: u64 = 30;
/// Default lease: 6 s, renewed every 2 s while a run works. A killed runner (or a Lambda that
/// timed out) blocks its stream for at most this long, so a restarted one polls within seconds.
pub const DEFAULT_LEASE_SECONDS: u64 = 6;
/// Default page bound per stream and run (a million objects at 100 per page).
pub const DEFAULT_MAX_PAGES: u32 = 10_000;

/// Whose own requests the echo filter recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoSide {
    /// We are the buyer: skip lines with an open buyer reopen or reconfirmation request.
    Buyer,
    /// We are the supplier: skip lines with an open supplier proposal, reopen or reschedule
    /// request.
    Supplier,
}

impl EchoSide {
    /// The `inProgressStatus` values that mean "a request our side opened is still open"
    /// (docs/tradecloud.md §8.1, option 2).
    pub fn own_request_statuses(self) -> &'static [&'static str] {
        match self {
            EchoSide::Buyer => &["OpenBuyerReopenRequest", "OpenBuyerReconfirmationRequest"],
            EchoSide::Supplier => &[
                "OpenSupplierProposal",
                "OpenSupplierReopenRequest",
                "OpenSupplierShipmentRescheduleRequest",
            ],
        }
    }
}

/// The echo filter (docs/tradecloud.md §8.1): order lines whose values are stale because our own
/// ERP's change is still an open request are left out, so the ERP does not overwrite it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoFilter {
    /// Skip lines with an open request of this side (option 2).
    OwnRequests(EchoSide),
    /// Skip every line whose `processStatus` is `InProgress` (option 1).
    InProgress,
}

impl EchoFilter {
    /// Whether a line with these statuses is an echo to skip.
    pub fn skips(self, process_status: Option<&str>, in_progress_status: Option<&str>) -> bool {
        match self {
            EchoFilter::OwnRequests(side) => {
                in_progress_status.is_some_and(|s| side.own_request_statuses().contains(&s))
            }
            EchoFilter::InProgress => process_status == Some("InProgress"),
        }
    }
}

/// Everything the poll loop needs besides its ports.
#[derive(Debug, Clone, PartialEq)]
pub struct PollConfig {
    /// Streams polled by a scheduled run; empty: nothing to poll.
    pub streams: Vec<PollStream>,
    /// Start of a stream without a cursor; required when `streams` is not empty.
    pub start: Option<String>,
    /// Each run re-asks from the cursor minus this, so late commits and objects sharing the
    /// cursor's millisecond are not skipped; the dedupe store absorbs the overlap.
    pub lookback: Duration,
    /// `filters.status` for the order streams.
    pub order_status_filter: Option<Value>,
    /// `filters.status` for the shipment stream.
    pub shipment_status_filter: Option<Value>,
    /// Page size, 2 to 100 (two, so paging inside one timestamp can overlap by one).
    pub page_limit: u32,
    /// Stop fetching when less than this is left before the deadline.
    pub time_margin: Duration,
    /// Forward only the changed lines instead of the whole object.
    pub changed_lines_only: bool,
    /// The echo filter, if on.
    pub echo_filter: Option<EchoFilter>,
    /// Poll or search endpoints.
    pub mode: EndpointMode,
    /// How long a stream's lease lasts past its last renewal (the heartbeat renews it every
    /// third of this).
    pub lease: Duration,
    /// Upper bound of pages per stream and run.
    pub max_pages: u32,
    /// How long the dedupe store keeps a claim in progress before another channel may take
    /// it over (`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`, read with the store's settings and set
    /// here by the host's wiring; `None`: not known). A page's claims are held until its sends
    /// end, as long as a run lives at most: the poller refuses an invocation that may outlive
    /// them (`poller::handle`).
    pub in_progress_expiry: Option<Duration>,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            streams: Vec::new(),
            start: None,
            lookback: Duration::from_millis(DEFAULT_LOOKBACK_MS),
            order_status_filter: None,
            shipment_status_filter: None,
            page_limit: DEFAULT_PAGE_LIMIT,
            time_margin: Duration::from_secs(DEFAULT_TIME_MARGIN_SECONDS),
            changed_lines_only: false,
            echo_filter: None,
            mode: EndpointMode::Poll,
            lease: Duration::from_secs(DEFAULT_LEASE_SECONDS),
            max_pages: DEFAULT_MAX_PAGES,
            in_progress_expiry: None,
        }
    }
}

impl PollConfig {
    /// Reads every `TCRELAY_POLL_*` variable from the map, section by section. The sections
    /// are read in this order, which decides the error reported when several values are bad.
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let (streams, start) = read_streams(env)?;
        let limits = Limits::from_env(env)?;
        let changed_lines_only = boolean(env, TCRELAY_POLL_CHANGED_LINES_ONLY)?;
        let echo_filter = read_echo_filter(env)?;
        let mode = read_endpoint_mode(env, &streams)?;
        let order_status_filter = status_filter(env, TCRELAY_POLL_ORDER_STATUS_FILTER)?;
        let shipment_status_filter = status_filter(env, TCRELAY_POLL_SHIPMENT_STATUS_FILTER)?;
        Ok(Self {
            streams,
            start,
            lookback: limits.lookback,
            order_status_filter,
            shipment_status_filter,
            page_limit: limits.page_limit,
            time_margin: limits.time_margin,
            changed_lines_only,
            echo_filter,
            mode,
            lease: limits.lease,
            max_pages: limits.max_pages,
            in_progress_expiry: None,
        })
    }

    /// The extra `filters` members sent for `stream` (its status filter, if any).
    pub fn filters_for(&self, stream: PollStream) -> Map<String, Value> {
        let status = if stream.is_orders() {
            &self.order_status_filter
        } else {
            &self.shipment_status_filter
        };
        let mut filters = Map::new();
        if let Some(status) = status {
            filters.insert("status".into(), status.clone());
        }
        filters
    }
}

/// The streams to poll and where a stream without a cursor starts; the start is required
/// once any stream is set, and kept as written (it is a string for Tradecloud).
fn read_streams(env: &dyn Env) -> Result<(Vec<PollStream>, Option<String>), ConfigError> {
    let streams = parse_streams(get(env, TCRELAY_POLL_STREAMS).unwrap_or(""))?;
    let start = match get(env, TCRELAY_POLL_START) {
        Some(text) => {
            let at = timestamp::parse(text).map_err(|e| {
                invalid(
                    TCRELAY_POLL_START,
                    format!("not an ISO 8601 date-time ({e}), e.g. 2025-01-01T00:00:00.000Z"),
                )
            })?;
            // A stream without a cursor asks from here on every run, and Tradecloud has nothing
            // after a future time: a mistyped year would silence the streams until then.
            if at > chrono::Utc::now() {
                return Err(invalid(
                    TCRELAY_POLL_START,
                    format!("{text} is in the future: no change would be polled until then"),
                ));
            }
            Some(text.to_owned())
        }
        None if streams.is_empty() => None,
        None => {
            return Err(ConfigError::Missing {
                var: TCRELAY_POLL_START,
            });
        }
    };
    Ok((streams, start))
}

/// The paging and timing limits of a run.
struct Limits {
    lookback: Duration,
    page_limit: u32,
    time_margin: Duration,
    lease: Duration,
    max_pages: u32,
}

impl Limits {
    /// Reads the lookback, page size, time margin, lease and page bound, each within its range.
    fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let lookback_ms = number_in(
            env,
            TCRELAY_POLL_LOOKBACK_MS,
            DEFAULT_LOOKBACK_MS,
            1..=7 * 86_400_000,
            "must be between 1 and 604800000 (7 days)",
        )?;
        let page_limit = number_in(
            env,
            TCRELAY_POLL_PAGE_LIMIT,
            DEFAULT_PAGE_LIMIT.into(),
            2..=100,
            "must be between 2 and 100 (Tradecloud's maximum)",
        )?;
        let margin = number_in(
            env,
            TCRELAY_POLL_TIME_MARGIN_SECONDS,
            DEFAULT_TIME_MARGIN_SECONDS,
            0..=900,
            "must be at most 900 (a Lambda runs at most 15 minutes)",
        )?;
        // At least 2 s: the heartbeat renews every third of it, and a renewal is a store call.
        let lease = number_in(
            env,
            TCRELAY_POLL_LEASE_SECONDS,
            DEFAULT_LEASE_SECONDS,
            2..=86_400,
            "must be between 2 and 86400",
        )?;
        let max_pages = number_in(
            env,
            TCRELAY_POLL_MAX_PAGES,
            DEFAULT_MAX_PAGES.into(),
            1..=1_000_000,
            "must be between 1 and 1000000",
        )?;
        Ok(Self {
            lookback: Duration::from_millis(lookback_ms),
            page_limit: u32::try_from(page_limit).unwrap_or(DEFAULT_PAGE_LIMIT),
            time_margin: Duration::from_secs(margin),
            lease: Duration::from_secs(lease),
            max_pages: u32::try_from(max_pages).unwrap_or(DEFAULT_MAX_PAGES),
        })
    }
}

/// A whole number within `range`, `default` when unset; `reason` says why when it is not.
fn number_in(
    env: &dyn Env,
    var: &'static str,
    default: u64,
    range: RangeInclusive<u64>,
    reason: &str,
) -> Result<u64, ConfigError> {
    let value = number(env, var, default)?;
    if !range.contains(&value) {
        return Err(invalid(var, reason.into()));
    }
    Ok(value)
}

/// The echo filter: our side (`buyer` or `supplier`) and the mode, `own-requests` (the default
/// once a side is set, and it needs one) or `in-progress`.
fn read_echo_filter(env: &dyn Env) -> Result<Option<EchoFilter>, ConfigError> {
    let side = match get(env, TCRELAY_POLL_ECHO_SIDE) {
        None => None,
        Some("buyer") => Some(EchoSide::Buyer),
        Some("supplier") => Some(EchoSide::Supplier),
        Some(other) => {
            return Err(invalid(
                TCRELAY_POLL_ECHO_SIDE,
                format!("{other:?} is neither \"buyer\" nor \"supplier\""),
            ));
        }
    };
    match (get(env, TCRELAY_POLL_ECHO_MODE), side) {
        (None, None) => Ok(None),
        (None | Some("own-requests"), Some(side)) => Ok(Some(EchoFilter::OwnRequests(side))),
        (Some("own-requests"), None) => Err(ConfigError::Missing {
            var: TCRELAY_POLL_ECHO_SIDE,
        }),
        (Some("in-progress"), _) => Ok(Some(EchoFilter::InProgress)),
        (Some(other), _) => Err(invalid(
            TCRELAY_POLL_ECHO_MODE,
            format!("{other:?} is neither \"own-requests\" nor \"in-progress\""),
        )),
    }
}

/// The endpoints to use, `poll` or `search`; search has no single-delivery stream.
fn read_endpoint_mode(env: &dyn Env, streams: &[PollStream]) -> Result<EndpointMode, ConfigError> {
    let mode = match get(env, TCRELAY_POLL_ENDPOINTS) {
        None | Some("poll") => EndpointMode::Poll,
        Some("search") => EndpointMode::Search,
        Some(other) => {
            return Err(invalid(
                TCRELAY_POLL_ENDPOINTS,
                format!("{other:?} is neither \"poll\" nor \"search\""),
            ));
        }
    };
    if mode == EndpointMode::Search && streams.contains(&PollStream::SingleDeliveryOrders) {
        return Err(invalid(
            TCRELAY_POLL_ENDPOINTS,
            "Tradecloud has no search endpoint for single-delivery-orders; \
             use \"poll\" or the orders stream"
                .into(),
        ));
    }
    Ok(mode)
}

fn parse_streams(text: &str) -> Result<Vec<PollStream>, ConfigError> {
    let mut streams = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let stream = PollStream::parse(name).ok_or_else(|| {
            invalid(
                TCRELAY_POLL_STREAMS,
                format!(
                    "unknown stream {name:?}; known: orders, single-delivery-orders, shipments"
                ),
            )
        })?;
        if !streams.contains(&stream) {
            streams.push(stream);
        }
    }
    Ok(streams)
}

fn status_filter(env: &dyn Env, var: &'static str) -> Result<Option<Value>, ConfigError> {
    let Some(text) = get(env, var) else {
        return Ok(None);
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(var, format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid(
            var,
            "must be a JSON object such as {\"processStatus\": [\"Confirmed\"]}".into(),
        ));
    }
    Ok(Some(value))
}

fn invalid(var: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { var, reason }
}

fn boolean(env: &dyn Env, var: &'static str) -> Result<bool, ConfigError> {
    match get(env, var).map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(invalid(var, format!("{other:?} is not true or false"))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        tcrelay_core::env::env_map(pairs)
    }

    #[test]
    fn empty_environment_polls_nothing_with_defaults() {
        let config = PollConfig::from_env_map(&env(&[])).unwrap();
        assert_eq!(config, PollConfig::default());
        assert!(config.streams.is_empty());
    }

    #[test]
    fn streams_need_a_start() {
        let err = PollConfig::from_env_map(&env(&[(TCRELAY_POLL_STREAMS, "orders")])).unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                var: TCRELAY_POLL_START
            }
        );
        assert!(err.to_string().contains(TCRELAY_POLL_START));
    }

    #[test]
    fn a_start_in_the_future_is_refused_naming_it() {
        let soon = chrono::Utc::now() + chrono::Duration::hours(1);
        let future = soon.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        for start in [future.as_str(), "2205-01-01T00:00:00.000Z"] {
            let err = PollConfig::from_env_map(&env(&[
                (TCRELAY_POLL_STREAMS, "orders"),
                (TCRELAY_POLL_START, start),
            ]))
            .unwrap_err();
            assert!(
                err.to_string().contains(TCRELAY_POLL_START) && err.to_string().contains("future"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_setting_is_read() {
        let config = PollConfig::from_env_map(&env(&[
            (TCRELAY_POLL_STREAMS, " shipments, orders ,shipments"),
            (TCRELAY_POLL_START, "2025-01-01T00:00:00.000+01:00"),
            (TCRELAY_POLL_LOOKBACK_MS, "5000"),
            (
                TCRELAY_POLL_ORDER_STATUS_FILTER,
                r#"{"processStatus":["Confirmed","InProgress"]}"#,
            ),
            (
                TCRELAY_POLL_SHIPMENT_STATUS_FILTER,
                r#"{"processStatus":["Issued"]}"#,
            ),
            (TCRELAY_POLL_PAGE_LIMIT, "50"),
            (TCRELAY_POLL_TIME_MARGIN_SECONDS, "10"),
            (TCRELAY_POLL_CHANGED_LINES_ONLY, "TRUE"),
            (TCRELAY_POLL_ECHO_SIDE, "supplier"),
            (TCRELAY_POLL_ENDPOINTS, "search"),
            (TCRELAY_POLL_LEASE_SECONDS, "120"),
            (TCRELAY_POLL_MAX_PAGES, "7"),
        ]))
        .unwrap();
        assert_eq!(
            config.streams,
            vec![PollStream::Shipments, PollStream::Orders]
        );
        // Kept as written: the start is a string for Tradecloud, not re-formatted.
        assert_eq!(
            config.start.as_deref(),
            Some("2025-01-01T00:00:00.000+01:00")
        );
        assert_eq!(config.lookback, Duration::from_secs(5));
        assert_eq!(config.page_limit, 50);
        assert_eq!(config.time_margin, Duration::from_secs(10));
        assert!(config.changed_lines_only);
        assert_eq!(
            config.echo_filter,
            Some(EchoFilter::OwnRequests(EchoSide::Supplier))
        );
        assert_eq!(config.mode, EndpointMode::Search);
        assert_eq!(config.lease, Duration::from_secs(120));
        assert_eq!(config.max_pages, 7);
        assert_eq!(
            Value::Object(config.filters_for(PollStream::Orders)),
            serde_json::json!({"status": {"processStatus": ["Confirmed", "InProgress"]}})
        );
        assert_eq!(
            Value::Object(config.filters_for(PollStream::Shipments)),
            serde_json::json!({"status": {"processStatus": ["Issued"]}})
        );
    }

    #[test]
    fn echo_modes() {
        let base = [
            (TCRELAY_POLL_STREAMS, "orders"),
            (TCRELAY_POLL_START, "2025-01-01T00:00:00.000Z"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            PollConfig::from_env_map(&env(&pairs))
        };
        assert_eq!(
            with(&[(TCRELAY_POLL_ECHO_MODE, "in-progress")])
                .unwrap()
                .echo_filter,
            Some(EchoFilter::InProgress)
        );
        assert_eq!(
            with(&[
                (TCRELAY_POLL_ECHO_SIDE, "buyer"),
                (TCRELAY_POLL_ECHO_MODE, "own-requests")
            ])
            .unwrap()
            .echo_filter,
            Some(EchoFilter::OwnRequests(EchoSide::Buyer))
        );
        assert_eq!(
            with(&[(TCRELAY_POLL_ECHO_MODE, "own-requests")]).unwrap_err(),
            ConfigError::Missing {
                var: TCRELAY_POLL_ECHO_SIDE
            }
        );
        let buyer = EchoFilter::OwnRequests(EchoSide::Buyer);
        assert!(buyer.skips(Some("InProgress"), Some("OpenBuyerReopenRequest")));
        assert!(!buyer.skips(Some("InProgress"), Some("OpenSupplierProposal")));
        assert!(EchoFilter::InProgress.skips(Some("InProgress"), Some("OpenSupplierProposal")));
        assert!(!EchoFilter::InProgress.skips(Some("Confirmed"), None));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let base = [
            (TCRELAY_POLL_STREAMS, "orders"),
            (TCRELAY_POLL_START, "2025-01-01T00:00:00.000Z"),
        ];
        for (var, value) in [
            (TCRELAY_POLL_STREAMS, "orders,invoices"),
            (TCRELAY_POLL_START, "2025-01-01"),
            (TCRELAY_POLL_LOOKBACK_MS, "0"),
            (TCRELAY_POLL_LOOKBACK_MS, "soon"),
            (TCRELAY_POLL_ORDER_STATUS_FILTER, "[\"Confirmed\"]"),
            (TCRELAY_POLL_SHIPMENT_STATUS_FILTER, "{"),
            (TCRELAY_POLL_PAGE_LIMIT, "101"),
            (TCRELAY_POLL_PAGE_LIMIT, "1"),
            (TCRELAY_POLL_TIME_MARGIN_SECONDS, "901"),
            (TCRELAY_POLL_CHANGED_LINES_ONLY, "maybe"),
            (TCRELAY_POLL_ECHO_SIDE, "both"),
            (TCRELAY_POLL_ECHO_MODE, "all"),
            (TCRELAY_POLL_ENDPOINTS, "graphql"),
            (TCRELAY_POLL_LEASE_SECONDS, "1"),
            (TCRELAY_POLL_MAX_PAGES, "0"),
        ] {
            let mut pairs = base.to_vec();
            pairs.retain(|(k, _)| *k != var);
            pairs.push((var, value));
            let err = PollConfig::from_env_map(&env(&pairs)).unwrap_err();
            match &err {
                ConfigError::Invalid { var: named, .. } => {
                    assert_eq!(*named, var, "{var}={value}: {err}")
                }
                other => panic!("{var}={value}: expected Invalid, got {other:?}"),
            }
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    #[test]
    fn search_mode_has_no_single_delivery_endpoint() {
        let err = PollConfig::from_env_map(&env(&[
            (TCRELAY_POLL_STREAMS, "single-delivery-orders"),
            (TCRELAY_POLL_START, "2025-01-01T00:00:00.000Z"),
            (TCRELAY_POLL_ENDPOINTS, "search"),
        ]))
        .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { var, .. } if var == TCRELAY_POLL_ENDPOINTS));
    }
}
