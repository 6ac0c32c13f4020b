//! The client: sessions (login, refresh, re-login), retries within a budget, rate limiting.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::page::{Page, PollEndpoint, PollQuery, SearchEndpoint, parse_object, parse_page};
use crate::{ClientConfig, ClientError, ConfigError, RateLimiter, Secret};

/// Everything but RFC 3986's unreserved characters is escaped, so an id is always one path
/// segment: `/`, `?`, `#` and `%` cannot end or re-interpret it.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const SET_AUTHORIZATION: &str = "set-authorization";
const SET_REFRESH_TOKEN: &str = "set-refresh-token";
const REFRESH_TOKEN: &str = "refresh-token";

/// The HTTP client for Tradecloud's API v2.
///
/// Cheap to clone; clones share the tokens, the rate limiter and the connection pool, so one
/// client per process (kept across warm Lambda invocations) logs in once. Calls of one client
/// (and its clones) start at most `max_requests_per_second` apart, and at most
/// `max_concurrent_requests` wait at once (4 by default; 1 makes them strictly sequential, as
/// Tradecloud asks, docs/tradecloud.md §1.2).
#[derive(Clone, Debug)]
pub struct TradecloudClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Built on the first request (see [`Inner::http`]).
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
    config: ClientConfig,
    /// `base_url` without a trailing `/`.
    base: String,
    limiter: Arc<RateLimiter>,
    /// Held while tokens are checked, obtained or refreshed (not during the request itself), so
    /// a single login or refresh serves everyone waiting.
    session: Mutex<Session>,
    /// One permit per request waiting for Tradecloud's answer.
    in_flight: Semaphore,
}

#[derive(Debug, Default)]
struct Session {
    tokens: Option<Tokens>,
}

#[derive(Debug)]
struct Tokens {
    access: Secret,
    refresh: Secret,
    refresh_at: Instant,
    /// The same moment on the wall clock: a frozen or snapshotted Lambda sandbox may not see
    /// the monotonic clock advance while it sleeps, the tokens' lifetime runs on regardless.
    refresh_at_wall: SystemTime,
}

/// How a failed attempt continues.
struct Failure {
    error: ClientError,
    retry: Retry,
}

enum Retry {
    No,
    Backoff,
    /// Tradecloud said when (`Retry-After`).
    After(Duration),
}

impl Failure {
    fn fatal(error: ClientError) -> Self {
        Self {
            error,
            retry: Retry::No,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Self::fatal(error)
    }
}

struct ApiRequest<'a> {
    method: Method,
    path: &'a str,
    body: Option<&'a Value>,
}

impl TradecloudClient {
    /// A client with its own rate limiter.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        let limiter = Arc::new(RateLimiter::new(config.max_requests_per_second));
        Self::with_rate_limiter(config, limiter)
    }

    /// A client that shares `limiter` with other clients of the same Tradecloud account, since
    /// the 10 requests/s limit is Tradecloud's, not ours. `max_requests_per_second` is then unused.
    pub fn with_rate_limiter(
        config: ClientConfig,
        limiter: Arc<RateLimiter>,
    ) -> Result<Self, ConfigError> {
        let base = config.base_url.trim_end_matches('/').to_owned();
        let parsed = url::Url::parse(&base).map_err(|e| ConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
            return Err(ConfigError::BaseUrl {
                url: config.base_url.clone(),
                reason: "not an http(s) URL".into(),
            });
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(ConfigError::BaseUrl {
                url: config.base_url.clone(),
                reason: "a base URL has no query or fragment".into(),
            });
        }
        for (setting, value) in [
            ("timeout", config.timeout),
            ("retry_budget", config.retry_budget),
            ("refresh_interval", config.refresh_interval),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: "must be more than zero".into(),
                });
            }
        }
        if config.max_concurrent_requests == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_concurrent_requests",
                reason: "must be at least 1".into(),
            });
        }
        if config.max_response_bytes == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_response_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if config.max_requests_per_second == 0 {
            return Err(ConfigError::Invalid {
                setting: "max_requests_per_second",
                reason: "must be at least 1".into(),
            });
        }
        if config.backoff_initial > config.backoff_max {
            return Err(ConfigError::Invalid {
                setting: "backoff_initial",
                reason: "must not exceed backoff_max".into(),
            });
        }
        let in_flight = Semaphore::new(config.max_concurrent_requests);
        Ok(Self {
            inner: Arc::new(Inner {
                http: std::sync::OnceLock::new(),
                config,
                base,
                limiter,
                session: Mutex::new(Session::default()),
                in_flight,
            }),
        })
    }

    /// The settings the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The complete order with all lines: `GET {base}/order/{id}`.
    pub async fn fetch_order(&self, id: &str) -> Result<Value, ClientError> {
        self.fetch("order", id).await
    }

    /// The complete shipment: `GET {base}/shipment/{id}`.
    pub async fn fetch_shipment(&self, id: &str) -> Result<Value, ClientError> {
        self.fetch("shipment", id).await
    }

    /// One page from a poll endpoint: objects updated after `query.last_updated`. Tradecloud
    /// neither says whether "after" is strict (docs/tradecloud.md §6.2) nor promises any order
    /// of the results any more (§6.5): a caller must cope with objects updated exactly at the
    /// cursor and with a page in any order.
    pub async fn poll(
        &self,
        endpoint: PollEndpoint,
        query: &PollQuery,
    ) -> Result<Page, ClientError> {
        let body = query.poll_body();
        let bytes = self
            .call(ApiRequest {
                method: Method::POST,
                path: endpoint.path(),
                body: Some(&body),
            })
            .await?;
        parse_page(&bytes)
    }

    /// One page from an older search endpoint: objects updated since `query.last_updated`
    /// (inclusive, by our reading of "since": docs/tradecloud.md §6.2). The request asks for
    /// `lastUpdatedAt` ascending; the page is returned in whatever order Tradecloud sends.
    pub async fn search(
        &self,
        endpoint: SearchEndpoint,
        query: &PollQuery,
    ) -> Result<Page, ClientError> {
        let body = query.search_body(endpoint);
        let bytes = self
            .call(ApiRequest {
                method: Method::POST,
                path: endpoint.path(),
                body: Some(&body),
            })
            .await?;
        parse_page(&bytes)
    }

    /// Logs in now (retrying within the budget), replacing any cached tokens. Calls log in by
    /// themselves; this is for checking the credentials at start-up.
    pub async fn login(&self) -> Result<(), ClientError> {
        let deadline = Instant::now() + self.inner.config.retry_budget;
        let mut attempt = 0u32;
        loop {
            let failure = {
                let mut session = within(deadline, self.inner.session.lock())
                    .await
                    .map_err(|f| f.error)?;
                match self.inner.login(&mut session, deadline).await {
                    Ok(()) => return Ok(()),
                    Err(failure) => failure,
                }
            };
            self.inner
                .back_off(failure, &mut attempt, deadline, "login")
                .await?;
        }
    }

    /// Ends the session: `POST {base}/authentication/logout` with the refresh token, once, and
    /// forgets the tokens whatever the answer. Without a session this does nothing.
    pub async fn logout(&self) -> Result<(), ClientError> {
        let mut session = self.inner.session.lock().await;
        let Some(tokens) = session.tokens.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.inner.config.retry_budget;
        let _permit = self.inner.slot(deadline).await.map_err(|f| f.error)?;
        let response = self
            .inner
            .send(
                Method::POST,
                "authentication/logout",
                refresh_header(&tokens.refresh),
                deadline,
            )
            .await
            .map_err(|f| f.error)?;
        let status = response.status();
        if status.is_success() {
            info!("logged out of Tradecloud");
            Ok(())
        } else {
            Err(status_error(status, response).await.error)
        }
    }

    async fn fetch(&self, kind: &str, id: &str) -> Result<Value, ClientError> {
        // The URL parser resolves `.` and `..` segments even when percent-encoded, so such ids
        // could only ever address another resource.
        if id.is_empty() || id == "." || id == ".." {
            return Err(ClientError::InvalidId { id: id.to_owned() });
        }
        let path = format!("{kind}/{}", utf8_percent_encode(id, SEGMENT));
        let bytes = self
            .call(ApiRequest {
                method: Method::GET,
                path: &path,
                body: None,
            })
            .await?;
        parse_object(&bytes)
    }

    /// One API call with Bearer auth: retried on 429, 5xx, 408, 425, timeouts and connection
    /// errors until the budget is spent; one fresh login on a 401.
    async fn call(&self, request: ApiRequest<'_>) -> Result<Vec<u8>, ClientError> {
        let inner = &self.inner;
        let started = Instant::now();
        let deadline = started + inner.config.retry_budget;
        let mut attempt = 0u32;
        let mut relogged = false;
        loop {
            let failure = {
                match inner.attempt(&request, deadline, &mut relogged).await {
                    Ok(bytes) => {
                        debug!(
                            method = %request.method,
                            path = request.path,
                            attempts = attempt + 1,
                            elapsed_ms = started.elapsed().as_millis() as u64,
                            "Tradecloud call done"
                        );
                        return Ok(bytes);
                    }
                    Err(failure) => failure,
                }
            };
            inner
                .back_off(failure, &mut attempt, deadline, request.path)
                .await?;
        }
    }
}

impl Inner {
    /// Sleeps before the next attempt, or ends the call with the failure's error when it is not
    /// retryable or the wait would pass the deadline.
    async fn back_off(
        &self,
        failure: Failure,
        attempt: &mut u32,
        deadline: Instant,
        what: &str,
    ) -> Result<(), ClientError> {
        let delay = match failure.retry {
            Retry::No => return Err(failure.error),
            // At least what Tradecloud asked for; a `Retry-After: 0` still backs off a little.
            Retry::After(after) => after.max(self.backoff_delay(*attempt)),
            Retry::Backoff => self.backoff_delay(*attempt),
        };
        *attempt += 1;
        // Compared as durations: `now + delay` overflows `Instant` for an absurd `Retry-After`
        // (10^19 seconds), and a wait beyond the budget gives up at once whatever its size.
        if delay >= deadline.saturating_duration_since(Instant::now()) {
            warn!(
                what,
                attempts = *attempt,
                error = %failure.error,
                "Tradecloud call failed, retry budget spent"
            );
            return Err(failure.error);
        }
        warn!(
            what,
            attempt = *attempt,
            delay_ms = delay.as_millis() as u64,
            error = %failure.error,
            "Tradecloud call failed, retrying"
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// Exponential, capped, with "equal jitter": half the step is fixed so retries keep backing
    /// off, the other half random so clients that failed together do not retry together.
    fn backoff_delay(&self, attempt: u32) -> Duration {
        let step = self
            .config
            .backoff_initial
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.config.backoff_max);
        let half = step / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=nanos))
    }

    async fn attempt(
        &self,
        request: &ApiRequest<'_>,
        deadline: Instant,
        relogged: &mut bool,
    ) -> Result<Vec<u8>, Failure> {
        loop {
            let access = {
                let mut session = within(deadline, self.session.lock()).await?;
                self.access_token(&mut session, deadline).await?
            };
            let mut headers = HeaderMap::new();
            let mut bearer =
                HeaderValue::try_from(format!("Bearer {}", access.expose())).map_err(|_| {
                    malformed("Tradecloud sent an access token that is not a header value")
                })?;
            bearer.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, bearer);
            let mut builder_body = None;
            if let Some(body) = request.body {
                builder_body = Some(serde_json::to_vec(body).map_err(|e| {
                    Failure::fatal(ClientError::Malformed {
                        reason: format!("cannot encode the request: {e}"),
                    })
                })?);
                headers.insert(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            // Held until the body is read: it bounds the answers being waited for.
            let permit = self.slot(deadline).await?;
            let response = self
                .send_with_body(
                    request.method.clone(),
                    request.path,
                    headers,
                    builder_body,
                    deadline,
                )
                .await?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !*relogged {
                // Given back before the session is locked: a login under the session lock waits
                // for a slot, so holding one here while waiting for that lock would deadlock.
                drop(response);
                drop(permit);
                // The token may have expired or been revoked early: log in afresh, once per call.
                *relogged = true;
                info!(
                    path = request.path,
                    "Tradecloud answered 401, logging in again"
                );
                let mut session = within(deadline, self.session.lock()).await?;
                // Only the token this call used: another call may have logged in meanwhile.
                if session
                    .tokens
                    .as_ref()
                    .is_some_and(|t| t.access.expose() == access.expose())
                {
                    session.tokens = None;
                }
                continue;
            }
            if status.is_success() {
                return read_body(response, self.config.max_response_bytes).await;
            }
            return Err(status_error(status, response).await);
        }
    }

    /// A slot among the `max_concurrent_requests` requests that may wait for Tradecloud at
    /// once. Every request takes one, the token requests too, so with a bound of one they are
    /// all sequential as Tradecloud asks. Taken before the rate limiter's slot, so waiting
    /// here does not use up the limiter's intervals. Lock order: the session, then a slot;
    /// nothing waits for the session while holding a slot.
    ///
    /// Waited for until `deadline` at most, as every wait of a call for the client's shared
    /// parts ([`within`]).
    async fn slot(&self, deadline: Instant) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        within(deadline, self.in_flight.acquire())
            .await?
            .map_err(|_| malformed("the client's request bound was closed"))
    }

    /// A usable access token, logging in or refreshing first when needed.
    async fn access_token(
        &self,
        session: &mut Session,
        deadline: Instant,
    ) -> Result<Secret, Failure> {
        self.ensure_tokens(session, deadline).await?;
        session
            .tokens
            .as_ref()
            .map(|tokens| tokens.access.clone())
            .ok_or_else(|| malformed("no token after logging in"))
    }

    /// Leaves valid tokens in the session: logs in when there are none, refreshes when they are
    /// due, and logs in when the refresh fails (refresh tokens are single-use, so a lost answer
    /// leaves us with a dead one).
    async fn ensure_tokens(&self, session: &mut Session, deadline: Instant) -> Result<(), Failure> {
        let due = match &session.tokens {
            None => return self.login(session, deadline).await,
            Some(tokens) => {
                Instant::now() >= tokens.refresh_at || SystemTime::now() >= tokens.refresh_at_wall
            }
        };
        if !due {
            return Ok(());
        }
        let Some(old) = session.tokens.take() else {
            return self.login(session, deadline).await;
        };
        match self.refresh(&old.refresh, deadline).await {
            Ok(tokens) => {
                debug!("refreshed the Tradecloud token");
                session.tokens = Some(tokens);
                Ok(())
            }
            Err(error) => {
                info!(%error, "Tradecloud token refresh failed, logging in again");
                match self.login(session, deadline).await {
                    // Tradecloud's authentication service is failing (a 5xx, a timeout), but the
                    // refresh was an early one (after 9 minutes, of a token that lives an hour):
                    // the call goes on with the access token it has, and the refresh is tried
                    // again after the longest back-off. Should Tradecloud refuse that token, its
                    // 401 logs in again as any 401 does.
                    Err(failure) if !matches!(failure.retry, Retry::No) => {
                        let retry_in = self.config.backoff_max;
                        warn!(
                            error = %failure.error,
                            retry_in_ms = retry_in.as_millis() as u64,
                            "Tradecloud's login failed; going on with the current access token"
                        );
                        session.tokens = Some(Tokens {
                            refresh_at: Instant::now() + retry_in,
                            refresh_at_wall: SystemTime::now() + retry_in,
                            ..old
                        });
                        Ok(())
                    }
                    result => result,
                }
            }
        }
    }

    async fn refresh(&self, refresh: &Secret, deadline: Instant) -> Result<Tokens, ClientError> {
        let _permit = self.slot(deadline).await.map_err(|f| f.error)?;
        let response = self
            .send(
                Method::GET,
                "authentication/refresh",
                refresh_header(refresh),
                deadline,
            )
            .await
            .map_err(|f| f.error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(status_error(status, response).await.error);
        }
        self.tokens_from(response.headers())
    }

    async fn login(&self, session: &mut Session, deadline: Instant) -> Result<(), Failure> {
        session.tokens = None;
        // The username is logged (an operator needs to know which account failed) with its
        // control characters escaped: a line break in it (a secret file's trailing newline)
        // would otherwise start a line of its own in a text log.
        let credentials = &self.config.credentials;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            credentials.username,
            credentials.password.expose()
        ));
        let mut value = HeaderValue::try_from(format!("Basic {basic}"))
            .map_err(|_| malformed("credentials do not fit in a header"))?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let _permit = self.slot(deadline).await?;
        let response = self
            .send(Method::GET, "authentication/login", headers, deadline)
            .await?;
        let status = response.status();
        if !status.is_success() {
            let failure = status_error(status, response).await;
            return Err(match failure.error {
                ClientError::Unauthorized { status } => {
                    warn!(
                        username = %credentials.username.escape_debug(),
                        status,
                        "Tradecloud refused the login"
                    );
                    failure
                }
                // Transient (429, 5xx, 408, 425): retried within the budget as before.
                ClientError::Upstream { .. } => failure,
                // A 404, another 4xx or a redirect answers the login, not the object the call
                // is about: as `NotFound` or `BadRequest` it would have the webhook answer 404
                // or 400, and Tradecloud drop the message.
                _ => {
                    let error = ClientError::Login {
                        status: status.as_u16(),
                        url: without_userinfo(&format!("{}/authentication/login", self.base)),
                    };
                    warn!(
                        username = %credentials.username.escape_debug(),
                        %error,
                        "Tradecloud's login failed"
                    );
                    Failure::fatal(error)
                }
            });
        }
        let tokens = self.tokens_from(response.headers())?;
        info!(username = %credentials.username.escape_debug(), "logged in to Tradecloud");
        session.tokens = Some(tokens);
        Ok(())
    }

    fn tokens_from(&self, headers: &HeaderMap) -> Result<Tokens, ClientError> {
        let header = |name: &str| -> Result<Secret, ClientError> {
            let value = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .unwrap_or_default();
            // Tolerate a `Bearer` scheme in front of the token.
            let value = strip_bearer(value);
            if value.is_empty() {
                return Err(ClientError::Malformed {
                    reason: format!("Tradecloud's token answer lacks the {name} header"),
                });
            }
            Ok(Secret::new(value))
        };
        let access = header(SET_AUTHORIZATION)?;
        let refresh = header(SET_REFRESH_TOKEN)?;
        let lifetime = refresh_after(
            self.config.refresh_interval,
            jwt_lifetime(access.expose(), SystemTime::now()),
        );
        Ok(Tokens {
            access,
            refresh,
            refresh_at: Instant::now() + lifetime,
            refresh_at_wall: SystemTime::now() + lifetime,
        })
    }

    /// The HTTPS client, built on first use: building it loads the system's root certificates
    /// (several milliseconds), which a webhook Lambda that never fetches from Tradecloud (only
    /// GET webhooks do) would otherwise pay on every cold start. Building fails only when
    /// the TLS stack cannot start, which is treated like an unreachable Tradecloud.
    fn http(&self) -> Result<&reqwest::Client, Failure> {
        let built = self.http.get_or_init(|| {
            install_crypto_provider();
            reqwest::Client::builder()
                // A redirect would carry our token to wherever it points; Tradecloud's API
                // never redirects, so one is treated as a malformed answer.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("tradecloud-relay/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(self.config.timeout)
                .build()
                .map_err(|e| error_chain(&e))
        });
        built.as_ref().map_err(|reason| Failure {
            error: ClientError::Connect {
                reason: format!("cannot set up HTTPS: {reason}"),
            },
            retry: Retry::Backoff,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        deadline: Instant,
    ) -> Result<reqwest::Response, Failure> {
        self.send_with_body(method, path, headers, None, deadline)
            .await
    }

    /// One HTTP request, after the rate limiter, with a timeout that also respects the deadline.
    async fn send_with_body(
        &self,
        method: Method,
        path: &str,
        headers: HeaderMap,
        body: Option<Vec<u8>>,
        deadline: Instant,
    ) -> Result<reqwest::Response, Failure> {
        // Built (the first time: the system's root certificates loaded) before the rate
        // limiter's slot is taken, so the set-up does not delay this request into the next
        // one's slot: Tradecloud must see the calls `max_requests_per_second` apart.
        let http = self.http()?;
        within(deadline, self.limiter.acquire()).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        // Even a spent budget gets a short try rather than none, so the answer is a real one.
        let timeout = self
            .config
            .timeout
            .min(remaining.max(Duration::from_millis(50)));
        let url = format!("{}/{path}", self.base);
        let mut builder = http
            .request(method.clone(), url)
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = body {
            builder = builder.body(body);
        }
        let started = Instant::now();
        let result = builder.send().await;
        match result {
            Ok(response) => {
                debug!(
                    %method,
                    path,
                    status = response.status().as_u16(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "Tradecloud answered"
                );
                Ok(response)
            }
            Err(e) => Err(transport_failure(&e)),
        }
    }
}

/// `wait` (for the session, a request slot, the rate limiter's turn), given up as a timeout at
/// the call's `deadline`. A call's budget counts its waits for the client's shared parts: in
/// `tcrelay serve`, where webhook GETs and the poll share the client, a call that found them
/// held by calls begun after it waited for those calls' budgets to end, past its own (up to
/// twice its budget). Not retried: the budget is spent.
async fn within<T>(deadline: Instant, wait: impl Future<Output = T>) -> Result<T, Failure> {
    tokio::time::timeout_at(deadline, wait)
        .await
        .map_err(|_| Failure::fatal(ClientError::Timeout))
}

/// `url` without a user name or password in it (a base URL may carry them): it is shown in
/// errors and logs.
fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            // Only fails for URLs that cannot have userinfo, which then have none.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => url.to_owned(),
    }
}

fn refresh_header(refresh: &Secret) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(mut value) = HeaderValue::try_from(refresh.expose()) {
        value.set_sensitive(true);
        headers.insert(REFRESH_TOKEN, value);
    }
    headers
}

/// Installs ring as rustls' crypto provider of the process, unless one is installed already
/// (that one then serves). reqwest is built without a provider of its own (the workspace's
/// Cargo.toml): its default, aws-lc-rs, would be a second crypto library beside the AWS SDK's
/// ring in the Lambda bootstraps, and without any provider building the client panics. Public
/// for the other reqwest clients of the workspace's binaries (the demo's), so the choice of
/// provider is made here only.
pub fn install_crypto_provider() {
    // An error only says a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    let error = if e.is_timeout() {
        ClientError::Timeout
    } else {
        // Connection refused, reset, TLS and dropped connections alike: Tradecloud was not
        // reachable for this attempt. reqwest's messages hold no credentials.
        ClientError::Connect {
            reason: error_chain(e),
        }
    };
    Failure {
        error,
        retry: Retry::Backoff,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Reads an answer's body up to `limit` bytes; a larger one (announced or as it arrives) ends
/// the call without reading the rest.
async fn read_body(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, Failure> {
    let too_large = || Failure::fatal(ClientError::TooLarge { limit });
    if response
        .content_length()
        .is_some_and(|announced| announced > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(transport_failure(&e)),
        }
    }
}

/// How much of a 4xx answer's body is read for [`ClientError::BadRequest`]'s reason: enough for
/// the 300 characters kept (at most 4 bytes each), so a huge or endless error body cannot
/// exhaust memory or hold the call until its timeout.
const ERROR_BODY_LIMIT: usize = 4 * 1024;

/// Whether an answer is transient: Tradecloud asks to retry "on a 5xx, a 429 or a timeout"
/// (docs/tradecloud.md §1.2). `408 Request Timeout` is such a timeout, and `425 Too Early`
/// asks by definition (RFC 8470) for the same request again later; neither is a refusal.
fn is_transient_status(status: StatusCode) -> bool {
    status.is_server_error()
        || matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_EARLY
        )
}

/// Classifies a non-success answer.
async fn status_error(status: StatusCode, response: reqwest::Response) -> Failure {
    let code = status.as_u16();
    if is_transient_status(status) {
        let retry = retry_after(response.headers()).map_or(Retry::Backoff, Retry::After);
        return Failure {
            error: ClientError::Upstream { status: code },
            retry,
        };
    }
    match status {
        StatusCode::NOT_FOUND => Failure::fatal(ClientError::NotFound),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            Failure::fatal(ClientError::Unauthorized { status: code })
        }
        s if s.is_client_error() => {
            let body = read_prefix(response, ERROR_BODY_LIMIT).await;
            let text = String::from_utf8_lossy(&body);
            let reason: String = text.trim().chars().take(300).collect();
            Failure::fatal(ClientError::BadRequest {
                status: code,
                reason,
            })
        }
        // A redirect is not followed (the token would go along): where it points is what an
        // operator needs, should Tradecloud have moved its API to a new base URL.
        s if s.is_redirection() => {
            let location = response.headers().get(reqwest::header::LOCATION).map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .escape_debug()
                    .to_string()
            });
            Failure::fatal(ClientError::Malformed {
                reason: match location {
                    Some(location) => format!(
                        "HTTP {code} redirecting to \"{location}\", which the client does not \
                         follow: if Tradecloud moved its API, set the base URL to the new address"
                    ),
                    None => format!("HTTP {code} without a Location"),
                },
            })
        }
        _ => Failure::fatal(ClientError::Malformed {
            reason: format!("unexpected HTTP status {code}"),
        }),
    }
}

/// The first `limit` bytes of an answer's body (fewer if it ends sooner or breaks off); the
/// rest is left unread and the connection dropped with the response.
async fn read_prefix(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            // The body only explains the status; a broken one leaves the reason shorter.
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// `Retry-After` as delta-seconds or an HTTP date. A date is on Tradecloud's clock, so it is
/// read against the answer's own `Date` (RFC 9110 §6.6.1: when the answer was made) where
/// there is a readable one: a skew between the clocks would otherwise stretch a short wait
/// past the budget (ours behind) or shrink it to nothing (ours ahead).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is still a number of seconds, only a very large one: it
        // saturates (and then exceeds any retry budget) rather than being ignored.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let date = http_date(value)?;
    let sent = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| http_date(v.trim()))
        .unwrap_or_else(chrono::Utc::now);
    let wait = date.signed_duration_since(sent);
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three forms RFC 9110 §5.6.7 obliges a recipient to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, read with RFC 2822's more liberal grammar),
/// the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`). chrono checks the weekday against the date: a date with the
/// wrong weekday is not read, and the ordinary back-off applies instead.
fn http_date(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{Datelike as _, NaiveDateTime, Utc};
    if let Ok(date) = chrono::DateTime::parse_from_rfc2822(value) {
        return Some(date.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDateTime::parse_from_str(value, "%A, %d-%b-%y %H:%M:%S GMT") {
        // RFC 9110: a two-digit year more than 50 years in the future is the most recent past
        // year with those digits (chrono's own pivot reads 69..=99 as 19xx, 00..=68 as 20xx).
        let date = date.and_utc();
        let limit = Utc::now().year() + 50;
        return Some(if date.year() > limit {
            date.with_year(date.year() - 100)?
        } else if date.year() + 100 <= limit {
            date.with_year(date.year() + 100)?
        } else {
            date
        });
    }
    // asctime pads a one-digit day with a space; the whitespace is collapsed first.
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    NaiveDateTime::parse_from_str(&words.join(" "), "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|date| date.and_utc())
}

/// A token header's value without its `Bearer` scheme, should Tradecloud put one in front of
/// the access token. Auth schemes are case-insensitive (RFC 9110 §11.1), so `BEARER x` is the
/// token `x` too; the scheme and the token may be separated by more than one space.
fn strip_bearer(value: &str) -> &str {
    match value.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => value,
    }
}

/// How long tokens are used before they are refreshed: the configured interval (Tradecloud's
/// connector refreshes every 9 minutes), or three quarters of a shorter lifetime the token
/// states, so it is refreshed before it dies. Computed as `stated - stated / 4`, which cannot
/// overflow for a token that states a lifetime of billions of years.
fn refresh_after(interval: Duration, stated: Option<Duration>) -> Duration {
    match stated {
        Some(stated) => interval.min(stated - stated / 4),
        None => interval,
    }
}

/// The lifetime a JWT states, if the token is a JWT with an `exp` claim: `exp - iat` when it
/// has `iat` too (independent of our clock), else from `now` until `exp`. Tradecloud's tokens
/// may carry only `exp` (one in its own SDK sample does). `None` when the token is opaque or
/// already expired by our clock (then the configured interval applies and a 401 logs in again).
/// An `exp` beyond what the system clock can represent states [`Duration::MAX`].
fn jwt_lifetime(token: &str, now: SystemTime) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    let lifetime = match claims.get("iat").and_then(Value::as_u64) {
        Some(iat) => Duration::from_secs(exp.checked_sub(iat)?),
        // `UNIX_EPOCH + exp` overflows `SystemTime` for an absurd `exp` (u64::MAX): such a
        // token lives, for our purposes, forever.
        None => match UNIX_EPOCH.checked_add(Duration::from_secs(exp)) {
            Some(expires) => expires.duration_since(now).ok()?,
            None => Duration::MAX,
        },
    };
    Some(lifetime).filter(|d| !d.is_zero())
}

fn malformed(reason: &str) -> Failure {
    Failure::fatal(ClientError::Malformed {
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A webhook Lambda that never fetches must not pay for the root certificates at start.
    #[tokio::test]
    async fn the_https_stack_is_built_on_the_first_request_not_with_the_client() {
        // Nothing listens on the discard port: the request fails fast, after the build.
        let mut config = ClientConfig::new(
            "http://127.0.0.1:9".to_owned(),
            crate::Credentials::new("user", "secret"),
        );
        config.retry_budget = Duration::from_millis(100);
        let client = TradecloudClient::new(config).unwrap();
        assert!(client.inner.http.get().is_none());
        assert!(client.fetch_order("o-1").await.is_err());
        assert!(matches!(client.inner.http.get(), Some(Ok(_))));
    }

    /// A `Retry-After` date is Tradecloud's clock: read against the answer's own `Date`, so
    /// a skew between the clocks neither stretches a one-second wait beyond the budget nor
    /// shrinks a long one to nothing.
    #[test]
    fn a_retry_after_date_is_read_against_the_answers_date_not_our_clock() {
        let imf = |at: chrono::DateTime<chrono::Utc>| {
            HeaderValue::try_from(at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).unwrap()
        };
        let now = chrono::Utc::now();
        for skew in [600, -600, 0] {
            let theirs = now + chrono::Duration::seconds(skew);
            let mut headers = HeaderMap::new();
            headers.insert(reqwest::header::DATE, imf(theirs));
            headers.insert(RETRY_AFTER, imf(theirs + chrono::Duration::seconds(2)));
            assert_eq!(
                retry_after(&headers),
                Some(Duration::from_secs(2)),
                "their clock {skew} s from ours"
            );
        }
        // Without a readable `Date`, our clock is all there is.
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::DATE, HeaderValue::from_static("garbage"));
        headers.insert(RETRY_AFTER, imf(now + chrono::Duration::seconds(30)));
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        let date = later.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        headers.insert(RETRY_AFTER, HeaderValue::try_from(date).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    /// RFC 9110 §5.6.7: a recipient accepts all three forms of an HTTP-date.
    #[test]
    fn http_dates_are_read_in_all_three_forms() {
        let expected = chrono::DateTime::parse_from_rfc3339("1994-11-06T08:49:37Z").unwrap();
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(http_date(form), Some(expected.to_utc()), "{form}");
        }
        // A two-digit year is read within RFC 9110's window: next year's is next year.
        let next_year = chrono::Utc::now() + chrono::Duration::days(366);
        let rfc850 = next_year.format("%A, %d-%b-%y %H:%M:%S GMT").to_string();
        assert_eq!(
            http_date(&rfc850).map(|d| d.timestamp()),
            Some(next_year.timestamp()),
            "{rfc850}"
        );
        assert_eq!(http_date("Sun Nov 6 08:49:37"), None);
        assert_eq!(
            http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            None,
            "wrong weekday"
        );
        assert_eq!(http_date("yesterday"), None);
    }

    #[test]
    fn retry_after_reads_the_obsolete_date_forms() {
        let later = chrono::Utc::now() + chrono::Duration::seconds(30);
        for format in ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"] {
            let mut headers = HeaderMap::new();
            let date = later.format(format).to_string();
            headers.insert(RETRY_AFTER, HeaderValue::try_from(date.clone()).unwrap());
            let wait = retry_after(&headers);
            assert!(
                wait.is_some_and(|w| w > Duration::from_secs(25) && w <= Duration::from_secs(30)),
                "{date}: {wait:?}"
            );
        }
    }

    #[test]
    fn an_absurd_retry_after_saturates() {
        let mut headers = HeaderMap::new();
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("10000000000000000000"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::from_secs(10_000_000_000_000_000_000))
        );
        // Beyond u64: still a (very long) number of seconds, not an unreadable header.
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("99999999999999999999999999999"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(u64::MAX)));
    }

    #[test]
    fn transient_statuses_are_429_5xx_408_and_425() {
        for code in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(
                is_transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409, 410, 413, 422, 426, 431] {
            assert!(
                !is_transient_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn the_bearer_scheme_is_stripped_in_any_case() {
        for value in [
            "Bearer x",
            "bearer x",
            "BEARER x",
            "bEaReR   x",
            "Bearer\tx",
            "x",
        ] {
            assert_eq!(strip_bearer(value), "x", "{value:?}");
        }
        // Only the scheme word: a token that merely starts with it stays whole.
        assert_eq!(strip_bearer("Bearerx"), "Bearerx");
        assert_eq!(strip_bearer("Basic x"), "Basic x");
    }

    /// A JWT that states an absurd lifetime (`exp` at `i64::MAX` or `u64::MAX` seconds) must
    /// neither panic nor stretch the refresh beyond the configured interval.
    #[test]
    fn a_far_future_exp_is_capped_by_the_refresh_interval() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let interval = Duration::from_secs(9 * 60);
        let now = SystemTime::now();
        for exp in [i64::MAX as u64, u64::MAX] {
            for claims in [
                format!(r#"{{"exp":{exp}}}"#),
                format!(r#"{{"iat":1700000000,"exp":{exp}}}"#),
            ] {
                let token = format!("{}.{}.sig", b64("{}"), b64(&claims));
                let stated = jwt_lifetime(&token, now);
                assert!(
                    stated.is_some_and(|d| d > Duration::from_secs(100 * 365 * 86_400)),
                    "{claims}: {stated:?}"
                );
                assert_eq!(refresh_after(interval, stated), interval, "{claims}");
            }
        }
        assert_eq!(refresh_after(interval, Some(Duration::MAX)), interval);
        // A shorter stated lifetime still refreshes at three quarters of it.
        assert_eq!(
            refresh_after(interval, Some(Duration::from_secs(60))),
            Duration::from_secs(45)
        );
        assert_eq!(refresh_after(interval, None), interval);
    }

    #[test]
    fn jwt_lifetime_reads_exp_minus_iat_or_exp_alone() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"HS256"}"#),
            b64(r#"{"iat":1000,"exp":1600}"#)
        );
        let now = UNIX_EPOCH + Duration::from_millis(1_200_500);
        // With iat: exp - iat, whatever our clock says.
        assert_eq!(jwt_lifetime(&token, now), Some(Duration::from_secs(600)));
        assert_eq!(jwt_lifetime("opaque-token", now), None);
        // Without iat: from now until exp, to the millisecond.
        let no_iat = format!("{}.{}.sig", b64("{}"), b64(r#"{"exp":1600}"#));
        assert_eq!(
            jwt_lifetime(&no_iat, now),
            Some(Duration::from_millis(399_500))
        );
        // Already past exp by our clock: no stated lifetime (the interval and 401 take over).
        let later = UNIX_EPOCH + Duration::from_secs(1601);
        assert_eq!(jwt_lifetime(&no_iat, later), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let config = ClientConfig {
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(800),
            ..ClientConfig::default()
        };
        let client = TradecloudClient::new(config).unwrap();
        for (attempt, step) in [(0, 100), (1, 200), (2, 400), (3, 800), (10, 800), (40, 800)] {
            let step = Duration::from_millis(step);
            let samples: Vec<_> = (0..50)
                .map(|_| client.inner.backoff_delay(attempt))
                .collect();
            assert!(
                samples.iter().all(|d| *d >= step / 2 && *d <= step),
                "attempt {attempt}: {samples:?}"
            );
            assert!(samples.iter().any(|d| *d != samples[0]), "no jitter");
        }
    }

    #[test]
    fn urls_in_errors_carry_no_userinfo() {
        assert_eq!(
            without_userinfo("https://user:pa55@api.example.com/v2/authentication/login"),
            "https://api.example.com/v2/authentication/login"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:8080/v2/authentication/login"),
            "http://127.0.0.1:8080/v2/authentication/login"
        );
    }

    #[test]
    fn ids_become_one_segment() {
        let enc = |id: &str| utf8_percent_encode(id, SEGMENT).to_string();
        assert_eq!(enc("../x"), "..%2Fx");
        assert_eq!(enc("a/b?c#d"), "a%2Fb%3Fc%23d");
        assert_eq!(enc("%2e%2e"), "%252e%252e");
        assert_eq!(enc("ab-12_3.x~"), "ab-12_3.x~");
    }
}
