//! Client settings and the secret wrapper that keeps credentials out of logs.

use std::fmt;
use std::time::Duration;

/// Production API base; the acceptance environment is `https://api.accp.tradecloud1.com/v2`.
pub const DEFAULT_BASE_URL: &str = "https://api.tradecloud1.com/v2";

/// A string that must never reach a log: `Debug` prints `***` and there is no `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an unset password, for instance).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// The Tradecloud integration user (it needs the `integration` role).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The user's e-mail address; shown in logs so an operator knows which account failed.
    pub username: String,
    /// The password; `Debug` prints `***`.
    pub password: Secret,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Settings of a [`crate::TradecloudClient`]. Reading them from the environment is the caller's job.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientConfig {
    /// API base including `/v2`, e.g. `https://api.tradecloud1.com/v2` (a trailing `/` is fine).
    pub base_url: String,
    /// The integration user.
    pub credentials: Credentials,
    /// Upper bound for one HTTP request, body included. Tradecloud's own API-side timeout is 5 s.
    pub timeout: Duration,
    /// Wall-clock budget for one call, retries and back-off included. The webhook runs behind
    /// API Gateway's 30 s limit, so the default leaves room to answer 502/503/504 in time.
    pub retry_budget: Duration,
    /// First back-off delay after a 429, 5xx, 408, 425, timeout or connection error; doubled
    /// per retry.
    pub backoff_initial: Duration,
    /// Cap for the back-off delay (a `Retry-After` from Tradecloud is honoured even if larger).
    pub backoff_max: Duration,
    /// Requests per second for this client and its clones (Tradecloud allows at most 10).
    pub max_requests_per_second: u32,
    /// How long an access token is used before it is refreshed. Tradecloud's own connector
    /// refreshes every 9 minutes; a token that states a shorter lifetime is refreshed sooner.
    pub refresh_interval: Duration,
    /// Calls of this client (and its clones) that may wait for Tradecloud at once, token
    /// requests included ([`DEFAULT_MAX_CONCURRENT_REQUESTS`]: 4). Tradecloud asks to "send
    /// requests sequentially" (docs/tradecloud.md §1.2); 1 does exactly that, a call waiting
    /// until the previous one's answer is read. More lets one slow answer not hold up every
    /// other call (a GET webhook behind another's 9 s fetch in `tcrelay serve`), with starts
    /// still spaced by the rate limit.
    pub max_concurrent_requests: usize,
    /// Largest answer body read; a larger one ends the call as [`crate::ClientError::TooLarge`]
    /// without reading the rest (a runaway or hostile answer must not exhaust memory).
    pub max_response_bytes: usize,
}

/// Default for [`ClientConfig::max_concurrent_requests`]: 4. Tradecloud asks for sequential
/// calls, and the hosts mostly make them so (a Lambda sandbox serves one request at a time; a
/// poll run is sequential); in `tcrelay serve`, where GET webhooks and polling share one
/// client, up to four overlap so that one slow answer does not hold up every other GET (the
/// starts stay spaced by the rate limit). Set it to 1 for strictly sequential calls.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 4;
/// Default for [`ClientConfig::max_response_bytes`]: 64 MiB, far above an order of 500 lines or
/// a poll page of 100 orders as Tradecloud sends them, far below the functions' memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            credentials: Credentials::default(),
            timeout: Duration::from_secs(10),
            retry_budget: Duration::from_secs(20),
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            max_requests_per_second: 10,
            refresh_interval: Duration::from_secs(9 * 60),
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl ClientConfig {
    /// Defaults for everything but the base URL and the credentials.
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            base_url: base_url.into(),
            credentials,
            ..Self::default()
        }
    }
}
