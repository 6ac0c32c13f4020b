//! Faults on demand for the API endpoints: 429s, 5xx, slow answers, timeouts, broken JSON.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The API endpoints of the simulator, for fault rules and the request log.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `GET /v2/authentication/login`.
    Login,
    /// `GET /v2/authentication/refresh`.
    Refresh,
    /// `POST /v2/authentication/logout`.
    Logout,
    /// `POST /v2/order-search/poll`.
    OrderPoll,
    /// `POST /v2/order-search/poll/single-delivery`.
    OrderPollSingleDelivery,
    /// `POST /v2/shipment/poll`.
    ShipmentPoll,
    /// `POST /v2/order-search/search`.
    OrderSearch,
    /// `POST /v2/shipment/search`.
    ShipmentSearch,
    /// `GET /v2/order/{id}`.
    OrderGet,
    /// `GET /v2/shipment/{id}`.
    ShipmentGet,
}

impl Endpoint {
    /// Classifies a request path (below `/v2`) and method.
    pub(crate) fn classify(method: &http::Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/v2/")?;
        let post_or_get = *method == http::Method::POST || *method == http::Method::GET;
        Some(match rest {
            "authentication/login" => Self::Login,
            "authentication/refresh" => Self::Refresh,
            "authentication/logout" => Self::Logout,
            "order-search/poll" if post_or_get => Self::OrderPoll,
            "order-search/poll/single-delivery" if post_or_get => Self::OrderPollSingleDelivery,
            "shipment/poll" if post_or_get => Self::ShipmentPoll,
            "order-search/search" => Self::OrderSearch,
            "shipment/search" => Self::ShipmentSearch,
            _ if rest.starts_with("order/") => Self::OrderGet,
            _ if rest.starts_with("shipment/") => Self::ShipmentGet,
            _ => return None,
        })
    }
}

/// What a fault does to a request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Fault {
    /// `429 Too Many Requests` with a `Retry-After` header in seconds.
    TooManyRequests {
        /// Value of `Retry-After`.
        #[serde(rename = "retryAfterSecs")]
        retry_after_secs: u64,
    },
    /// An error status (e.g. 500, 502, 503) with a JSON error body.
    Status {
        /// The status code to answer.
        status: u16,
    },
    /// Answer normally, but only after a delay.
    Delay {
        /// Milliseconds to wait first.
        ms: u64,
    },
    /// Wait, then answer `504 Gateway Timeout`, like Tradecloud's gateway after its 5 s limit;
    /// a client with a shorter timeout sees a timeout.
    Timeout {
        /// Milliseconds to wait before the 504.
        ms: u64,
    },
    /// `200 OK` with `Content-Type: application/json` and a truncated JSON body.
    MalformedJson,
    /// This status with an HTML error page and no `Retry-After`, as the load balancer in front
    /// of an API writes one: Tradecloud promises neither a JSON error body nor a
    /// `Retry-After` (a 429 without one included).
    GatewayPage {
        /// The status code to answer.
        status: u16,
    },
    /// `429 Too Many Requests` with `Retry-After` as an HTTP-date this many seconds ahead,
    /// the other form RFC 9110 allows.
    TooManyRequestsUntil {
        /// Seconds from now to the date in `Retry-After`.
        #[serde(rename = "retryAfterSecs")]
        retry_after_secs: u64,
    },
    /// The real answer's status and headers and the first half of its body, then the
    /// connection dropped (a reset, a proxy giving up mid-body).
    BrokenBody,
    /// The real answer, its body `bytes` at a time every `ms` milliseconds (a slow link: each
    /// piece comes in time, the whole may not).
    Drip {
        /// Bytes per piece (at least 1).
        bytes: usize,
        /// Milliseconds before each piece.
        ms: u64,
    },
}

/// A fault applied to matching requests with a probability, optionally a limited number of times.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    /// Endpoints the rule applies to; empty means every API endpoint.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// What happens.
    pub fault: Fault,
    /// Probability per matching request, 0.0–1.0 (drawn from the seeded fault generator).
    #[serde(default = "one")]
    pub rate: f64,
    /// How many more times the rule may fire; `None` for no limit.
    #[serde(default)]
    pub count: Option<u32>,
}

fn one() -> f64 {
    1.0
}

impl FaultRule {
    /// A rule that fires on the next `count` requests to `endpoint`.
    pub fn next(endpoint: Endpoint, count: u32, fault: Fault) -> Self {
        Self {
            endpoints: vec![endpoint],
            fault,
            rate: 1.0,
            count: Some(count),
        }
    }
}

/// The active rules and the generator their rates draw from.
pub(crate) struct Faults {
    rules: Vec<(u64, FaultRule)>,
    next_id: u64,
    rng: ChaCha8Rng,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rules: Vec::new(),
            next_id: 1,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub(crate) fn add(&mut self, rule: FaultRule) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.rules.push((id, rule));
        id
    }

    pub(crate) fn remove(&mut self, id: u64) -> bool {
        let before = self.rules.len();
        self.rules.retain(|(i, _)| *i != id);
        self.rules.len() != before
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn list(&self) -> Vec<(u64, FaultRule)> {
        self.rules.clone()
    }

    /// The fault for this request, if a rule fires; the first firing rule wins.
    pub(crate) fn decide(&mut self, endpoint: Endpoint) -> Option<Fault> {
        for (_, rule) in &mut self.rules {
            if !rule.endpoints.is_empty() && !rule.endpoints.contains(&endpoint) {
                continue;
            }
            if rule.count == Some(0) {
                continue;
            }
            if !self.rng.random_bool(rule.rate.clamp(0.0, 1.0)) {
                continue;
            }
            if let Some(c) = &mut rule.count {
                *c -= 1;
            }
            return Some(rule.fault.clone());
        }
        None
    }
}
