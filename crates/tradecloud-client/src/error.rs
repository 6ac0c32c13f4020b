//! The errors a call can end with, classified so callers can pick an HTTP answer.

/// Why a call to Tradecloud failed. Transient failures (429, 5xx, 408, 425, timeouts, connection
/// errors) have already been retried within the budget when one of these comes back.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// Tradecloud answered 404: no such order or shipment (for this account).
    #[error("not found at Tradecloud")]
    NotFound,
    /// Tradecloud refused our credentials (401 after one fresh login, or a login answered 401), or the
    /// account may not use the API (403, e.g. the `integration` role is missing).
    #[error("Tradecloud refused the credentials (HTTP {status})")]
    Unauthorized {
        /// The status Tradecloud answered (401 or 403).
        status: u16,
    },
    /// Tradecloud's login answered a status that neither refuses the credentials (401, 403)
    /// nor is transient: a 404 from a base URL without `/v2`, say, or a 400 from its
    /// authentication service. It says nothing about the object asked for, so it must not
    /// read as [`Self::NotFound`] or [`Self::BadRequest`], which a webhook answers with a 4xx
    /// that Tradecloud drops. Not retried: the same URL gives the same answer.
    #[error(
        "Tradecloud's login at {url} answered HTTP {status}: check the API base URL (it ends \
         in /v2, e.g. https://api.tradecloud1.com/v2)"
    )]
    Login {
        /// The status the login answered.
        status: u16,
        /// The login URL asked (it holds no credential).
        url: String,
    },
    /// Tradecloud kept answering a transient status (429, 5xx, `408 Request Timeout`, `425 Too
    /// Early`) until the retry budget was spent.
    #[error("Tradecloud answered HTTP {status} until the retry budget was spent")]
    Upstream {
        /// The last status Tradecloud answered.
        status: u16,
    },
    /// Tradecloud did not answer in time, until the retry budget was spent.
    #[error("Tradecloud did not answer in time")]
    Timeout,
    /// Tradecloud could not be reached (DNS, TCP, TLS, connection dropped), until the retry budget
    /// was spent.
    #[error("cannot reach Tradecloud: {reason}")]
    Connect {
        /// What the transport reported.
        reason: String,
    },
    /// Tradecloud answered success with a body or headers we cannot use.
    #[error("malformed answer from Tradecloud: {reason}")]
    Malformed {
        /// What was wrong with the answer.
        reason: String,
    },
    /// Tradecloud rejected the request (a 4xx other than 401, 403, 404 and the transient 408,
    /// 425 and 429).
    #[error("Tradecloud rejected the request with HTTP {status}: {reason}")]
    BadRequest {
        /// The status Tradecloud answered.
        status: u16,
        /// The start of Tradecloud's error body (only its first few KiB are read).
        reason: String,
    },
    /// Tradecloud's answer was larger than [`crate::ClientConfig::max_response_bytes`]; the
    /// rest was not read. Not retried: the same object gives the same answer.
    #[error("Tradecloud's answer is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// An id that cannot name an object in a URL path (empty, `.` or `..`); nothing was sent.
    #[error("invalid object id {id:?}")]
    InvalidId {
        /// The id as given.
        id: String,
    },
}

impl ClientError {
    /// Whether trying again later may succeed (Tradecloud or the network was unavailable),
    /// as opposed to an answer that will stay the same.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Upstream { .. } | Self::Timeout | Self::Connect { .. }
        )
    }
}

/// A [`crate::ClientConfig`] the client cannot work with.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid Tradecloud base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL as configured.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid Tradecloud client setting {setting}: {reason}")]
    Invalid {
        /// The field of [`crate::ClientConfig`].
        setting: &'static str,
        /// Why it was rejected.
        reason: String,
    },
}
