//! Settings from environment variables, shared by the functions.
//!
//! Parsing works on a plain map ([`Config::from_env_map`]) so it is tested without touching the
//! process environment; `main` passes `std::env::vars().collect()`. A missing or invalid setting
//! is an error naming the variable, so a bad deployment stops at start-up, not at the first
//! message. An empty value counts as unset, because templates pass `""` for optional parameters.
//!
//! Credentials may come in plain text or from AWS Secrets Manager (`…_SECRET_ARN`); the secrets
//! are fetched by the function's `main` (no AWS code here) and applied with
//! [`WebhookConfig::apply_secret`] and [`TradecloudSettings::apply_secret`].

use std::time::Duration;

use serde::Deserialize;

use crate::auth::WebhookCredentials;
use crate::env::{ConfigError, Env, get, https_url_unless_local, number};
use crate::filter::EventFilter;

/// Tradecloud's API base (fixed name).
pub const TRADECLOUD_API_URL: &str = "TRADECLOUD_API_URL";
/// The Tradecloud integration user's e-mail (fixed name).
pub const TRADECLOUD_USERNAME: &str = "TRADECLOUD_USERNAME";
/// The Tradecloud integration user's password (fixed name).
pub const TRADECLOUD_PASSWORD: &str = "TRADECLOUD_PASSWORD";
/// Secrets Manager secret with `{"username": …, "password": …}` for the Tradecloud API.
pub const TCRELAY_TRADECLOUD_SECRET_ARN: &str = "TCRELAY_TRADECLOUD_SECRET_ARN";
/// Webhook Basic credentials, `user:password`, one per line (fixed name).
pub const TCRELAY_WEBHOOK_BASIC: &str = "TCRELAY_WEBHOOK_BASIC";
/// Webhook Bearer tokens, one per line (fixed name).
pub const TCRELAY_WEBHOOK_BEARER: &str = "TCRELAY_WEBHOOK_BEARER";
/// Secrets Manager secret with `{"basic": ["user:password", …], "bearer": ["token", …]}`.
pub const TCRELAY_WEBHOOK_SECRET_ARN: &str = "TCRELAY_WEBHOOK_SECRET_ARN";
/// The issuer of the JWTs that API Gateway's authorizer verified (Tradecloud's OAuth2 mode,
/// Entra ID). Set only behind such a gateway: requests it let through with a token from this
/// issuer are accepted without a Basic or Bearer credential.
pub const TCRELAY_WEBHOOK_JWT_ISSUER: &str = "TCRELAY_WEBHOOK_JWT_ISSUER";
/// The application (client) ids whose verified tokens are accepted, comma-separated: the app
/// registration Tradecloud obtains its tokens with. Required with
/// [`TCRELAY_WEBHOOK_JWT_ISSUER`]: Entra ID issues a token for the relay's audience to any
/// client of the tenant that asks, so only the client tells Tradecloud's apart.
pub const TCRELAY_WEBHOOK_JWT_CLIENT_ID: &str = "TCRELAY_WEBHOOK_JWT_CLIENT_ID";
/// Event names to relay (patterns with `*`); empty relays all.
pub const TCRELAY_EVENT_ALLOW: &str = "TCRELAY_EVENT_ALLOW";
/// Event names never to relay (patterns with `*`); wins over the allow list.
pub const TCRELAY_EVENT_DENY: &str = "TCRELAY_EVENT_DENY";
/// Largest accepted webhook body in bytes.
pub const TCRELAY_MAX_BODY_BYTES: &str = "TCRELAY_MAX_BODY_BYTES";
/// Seconds announced in `Retry-After` on 502/503/504.
pub const TCRELAY_RETRY_AFTER_SECONDS: &str = "TCRELAY_RETRY_AFTER_SECONDS";
/// Milliseconds a webhook request may take from arrival to answer (every step within it).
pub const TCRELAY_REQUEST_BUDGET_MS: &str = "TCRELAY_REQUEST_BUDGET_MS";
/// Days a completed dedupe record is kept.
pub const TCRELAY_DEDUPE_TTL_DAYS: &str = "TCRELAY_DEDUPE_TTL_DAYS";
/// Seconds after which an unfinished claim is considered abandoned.
pub const TCRELAY_IN_PROGRESS_EXPIRY_SECONDS: &str = "TCRELAY_IN_PROGRESS_EXPIRY_SECONDS";
/// Default for [`TRADECLOUD_API_URL`]: production.
pub const DEFAULT_TRADECLOUD_API_URL: &str = "https://api.tradecloud1.com/v2";
/// Default body limit: 6 MiB (6,291,456 bytes), Lambda's limit for a synchronous invocation's
/// whole event. A body that reaches the function is within it, so in a Lambda the relay
/// refuses none that Lambda delivered: whatever the relay answers 413, Tradecloud drops. The
/// limit was half of it once (API Gateway can write the body escaped, up to twice its size),
/// but a body too large for the event never reaches the function whatever this limit is, and
/// a tXML order of 500 lines as Tradecloud's own examples fill them is about 3.6 MB (its JSON
/// twin about 2 MB). Decoding a body of this size stays within the memory bound
/// (`tradecloud-model`'s `tests/memory.rs`).
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
/// Most lines a webhook event may carry; more are answered 413 and quarantined.
pub const TCRELAY_MAX_LINES: &str = "TCRELAY_MAX_LINES";
/// Default `Retry-After`: 30 s.
pub const DEFAULT_RETRY_AFTER_SECONDS: u64 = 30;
/// Default request budget: 25 s, under the webhook function's 29 s timeout (and API Gateway's
/// 30 s): a function that times out leaves the answer to API Gateway and its dedupe claims in
/// progress until they expire, so Tradecloud's retries are answered 503 until then.
pub const DEFAULT_REQUEST_BUDGET_MS: u64 = 25_000;
/// Default dedupe record lifetime: 30 days.
pub const DEFAULT_DEDUPE_TTL_DAYS: u64 = 30;
/// Default claim expiry: 120 s, well above the 30 s API Gateway limit on one request, so a
/// claim is never taken over while its request can still finish.
pub const DEFAULT_IN_PROGRESS_EXPIRY_SECONDS: u64 = 120;

/// The webhook's settings that do not depend on where its ports live (the adapters read
/// their own: `tcrelay_aws::AwsSettings`, the runner's SQLite file).
#[derive(Debug, Clone)]
pub struct Config {
    /// Tradecloud's API (for GET webhooks and the poller).
    pub tradecloud: TradecloudSettings,
    /// The webhook endpoint itself.
    pub webhook: WebhookConfig,
}

impl Config {
    /// Reads every section from the map.
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        Ok(Self {
            tradecloud: TradecloudSettings::from_env_map(env)?,
            webhook: WebhookConfig::from_env_map(env)?,
        })
    }
}

/// The integration user. `Debug` prints the password as `***`; the one secret wrapper the
/// client keeps it in is `tradecloud_client::Secret`, which the core does not depend on.
#[derive(Clone, PartialEq, Eq)]
pub struct TradecloudLogin {
    /// E-mail address of the user with the `integration` role.
    pub username: String,
    password: String,
}

impl TradecloudLogin {
    /// The login of `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The password, for the one place that sends it (the client's credentials).
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl std::fmt::Debug for TradecloudLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TradecloudLogin")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Tradecloud API settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradecloudSettings {
    /// API base including `/v2`.
    pub api_url: String,
    /// The login, when given in plain text or after [`Self::apply_secret`]. Without one the
    /// webhook's GET routes answer 503 (retried by Tradecloud) until it is configured.
    pub login: Option<TradecloudLogin>,
    /// Secrets Manager ARN to read the login from, still to be resolved by `main`.
    pub secret_arn: Option<String>,
}

impl TradecloudSettings {
    /// Reads [`TRADECLOUD_API_URL`], [`TRADECLOUD_USERNAME`], [`TRADECLOUD_PASSWORD`] and
    /// [`TCRELAY_TRADECLOUD_SECRET_ARN`]. A username without a password (or the reverse) is an
    /// error, so a half-configured login is noticed at start-up.
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let api_url = get(env, TRADECLOUD_API_URL)
            .unwrap_or(DEFAULT_TRADECLOUD_API_URL)
            .to_owned();
        https_url_unless_local(TRADECLOUD_API_URL, &api_url)?;
        let password = crate::env::credential(env, TRADECLOUD_PASSWORD);
        let login = match (get(env, TRADECLOUD_USERNAME), password) {
            (Some(username), Some(password)) => Some(TradecloudLogin::new(username, password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Missing {
                    var: TRADECLOUD_PASSWORD,
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Missing {
                    var: TRADECLOUD_USERNAME,
                });
            }
        };
        Ok(Self {
            api_url,
            login,
            secret_arn: get(env, TCRELAY_TRADECLOUD_SECRET_ARN).map(str::to_owned),
        })
    }

    /// Applies the secret's JSON, `{"username": "…", "password": "…"}`; it replaces a
    /// plain-text login.
    pub fn apply_secret(&mut self, json: &str) -> Result<(), ConfigError> {
        #[derive(Deserialize)]
        struct LoginSecret {
            username: String,
            password: String,
        }
        let invalid = |reason: String| ConfigError::Invalid {
            var: TCRELAY_TRADECLOUD_SECRET_ARN,
            reason,
        };
        // serde's message could quote the secret's text; keep only the position.
        let parsed: LoginSecret = serde_json::from_str(json).map_err(|e| {
            invalid(format!(
                "the secret is not JSON with string fields \"username\" and \"password\" \
                 (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if parsed.username.is_empty() || parsed.password.is_empty() {
            return Err(invalid(
                "username or password in the secret is empty".into(),
            ));
        }
        self.login = Some(TradecloudLogin::new(parsed.username, parsed.password));
        Ok(())
    }
}

/// The webhook endpoint's settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Accepted credentials (plain text so far, plus the secret once applied).
    pub credentials: WebhookCredentials,
    /// Secrets Manager ARN with more credentials, still to be resolved by `main`.
    pub secret_arn: Option<String>,
    /// Which events are relayed.
    pub filter: EventFilter,
    /// Largest accepted body; larger ones are answered 413.
    pub max_body_bytes: usize,
    /// Most lines an event may carry; more are answered 413 (and quarantined).
    pub max_lines: usize,
    /// Announced in `Retry-After` on 502/503/504.
    pub retry_after: Duration,
    /// How long one request may take; the Lambda's invocation deadline cuts it shorter.
    pub request_budget: Duration,
}

impl WebhookConfig {
    /// Reads [`TCRELAY_WEBHOOK_BASIC`], [`TCRELAY_WEBHOOK_BEARER`],
    /// [`TCRELAY_WEBHOOK_SECRET_ARN`], [`TCRELAY_WEBHOOK_JWT_ISSUER`],
    /// [`TCRELAY_WEBHOOK_JWT_CLIENT_ID`], [`TCRELAY_EVENT_ALLOW`],
    /// [`TCRELAY_EVENT_DENY`],
    /// [`TCRELAY_MAX_BODY_BYTES`], [`TCRELAY_MAX_LINES`], [`TCRELAY_RETRY_AFTER_SECONDS`] and
    /// [`TCRELAY_REQUEST_BUDGET_MS`]. At least one credential
    /// or a secret ARN is required.
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let mut credentials = WebhookCredentials::new();
        if let Some(text) = crate::env::credential(env, TCRELAY_WEBHOOK_BASIC) {
            add_basic_lines(&mut credentials, text.lines(), TCRELAY_WEBHOOK_BASIC)?;
        }
        if let Some(text) = get(env, TCRELAY_WEBHOOK_BEARER) {
            add_bearer_lines(&mut credentials, text.lines(), TCRELAY_WEBHOOK_BEARER)?;
        }
        let secret_arn = get(env, TCRELAY_WEBHOOK_SECRET_ARN).map(str::to_owned);
        let clients: Vec<&str> = get(env, TCRELAY_WEBHOOK_JWT_CLIENT_ID)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        match get(env, TCRELAY_WEBHOOK_JWT_ISSUER) {
            Some(issuer) => {
                if !issuer.starts_with("https://") {
                    return Err(invalid(
                        TCRELAY_WEBHOOK_JWT_ISSUER,
                        "must be the token issuer's https URL, as configured on the gateway's JWT authorizer",
                    ));
                }
                // An issuer alone would trust every application of the tenant.
                if clients.is_empty() {
                    return Err(invalid(
                        TCRELAY_WEBHOOK_JWT_CLIENT_ID,
                        "must name the client id of the app registration Tradecloud gets its \
                         tokens with (TCRELAY_WEBHOOK_JWT_ISSUER is set): the issuer alone \
                         would accept a token of any application of the tenant",
                    ));
                }
                credentials.trust_gateway_jwt(issuer, &clients);
            }
            None if !clients.is_empty() => {
                return Err(invalid(
                    TCRELAY_WEBHOOK_JWT_CLIENT_ID,
                    "is set without TCRELAY_WEBHOOK_JWT_ISSUER, so no token would be accepted",
                ));
            }
            None => {}
        }
        if credentials.is_empty() && secret_arn.is_none() {
            return Err(ConfigError::NoWebhookCredential);
        }
        let filter = EventFilter::new(
            EventFilter::parse_list(get(env, TCRELAY_EVENT_ALLOW).unwrap_or("")),
            EventFilter::parse_list(get(env, TCRELAY_EVENT_DENY).unwrap_or("")),
        );
        let max_body_bytes = number(env, TCRELAY_MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES as u64)?;
        if max_body_bytes == 0 {
            return Err(invalid(TCRELAY_MAX_BODY_BYTES, "must be at least 1"));
        }
        let max_body_bytes = usize::try_from(max_body_bytes)
            .map_err(|_| invalid(TCRELAY_MAX_BODY_BYTES, "too large for this platform"))?;
        let max_lines = number(
            env,
            TCRELAY_MAX_LINES,
            tradecloud_model::DEFAULT_MAX_LINES as u64,
        )?;
        if max_lines == 0 {
            return Err(invalid(TCRELAY_MAX_LINES, "must be at least 1"));
        }
        let max_lines = usize::try_from(max_lines)
            .map_err(|_| invalid(TCRELAY_MAX_LINES, "too large for this platform"))?;
        let retry_after = number(
            env,
            TCRELAY_RETRY_AFTER_SECONDS,
            DEFAULT_RETRY_AFTER_SECONDS,
        )?;
        let request_budget = number(env, TCRELAY_REQUEST_BUDGET_MS, DEFAULT_REQUEST_BUDGET_MS)?;
        // Below a tenth of a second nothing but a refusal could finish; past 29 s the webhook
        // function's timeout (and then API Gateway's 30 s limit) would end the request first.
        if !(100..=29_000).contains(&request_budget) {
            return Err(invalid(
                TCRELAY_REQUEST_BUDGET_MS,
                "must be between 100 and 29000 (API Gateway gives up at 30 s)",
            ));
        }
        Ok(Self {
            credentials,
            secret_arn,
            filter,
            max_body_bytes,
            max_lines,
            retry_after: Duration::from_secs(retry_after),
            request_budget: Duration::from_millis(request_budget),
        })
    }

    /// Adds the credentials from the secret's JSON: `{"basic": [...], "bearer": [...]}`, each
    /// a list of strings or one string with one entry per line; either may be absent. Fails if
    /// the secret is unreadable or, in the end, no credential is configured at all.
    pub fn apply_secret(&mut self, json: &str) -> Result<(), ConfigError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            Many(Vec<String>),
            One(String),
        }
        impl OneOrMany {
            fn entries(&self) -> Vec<&str> {
                match self {
                    OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
                    OneOrMany::One(s) => s.lines().collect(),
                }
            }
        }
        #[derive(Deserialize)]
        struct CredentialSecret {
            basic: Option<OneOrMany>,
            bearer: Option<OneOrMany>,
        }
        let parsed: CredentialSecret = serde_json::from_str(json).map_err(|e| {
            invalid(
                TCRELAY_WEBHOOK_SECRET_ARN,
                &format!(
                    "the secret is not JSON with \"basic\" and/or \"bearer\" lists of strings \
                     (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let mut added = WebhookCredentials::new();
        if let Some(basic) = &parsed.basic {
            add_basic_lines(&mut added, basic.entries(), TCRELAY_WEBHOOK_SECRET_ARN)?;
        }
        if let Some(bearer) = &parsed.bearer {
            add_bearer_lines(&mut added, bearer.entries(), TCRELAY_WEBHOOK_SECRET_ARN)?;
        }
        self.credentials.extend(&added);
        if self.credentials.is_empty() {
            return Err(ConfigError::NoWebhookCredential);
        }
        Ok(())
    }
}

/// How long dedupe records live, whatever stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupeTimings {
    /// How long a completed record lives: a copy arriving later is relayed again.
    pub ttl: Duration,
    /// How long an unfinished claim blocks its key before another request may take it over.
    pub in_progress_expiry: Duration,
}

impl Default for DedupeTimings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(DEFAULT_DEDUPE_TTL_DAYS * 86_400),
            in_progress_expiry: Duration::from_secs(DEFAULT_IN_PROGRESS_EXPIRY_SECONDS),
        }
    }
}

impl DedupeTimings {
    /// Reads [`TCRELAY_DEDUPE_TTL_DAYS`] (1–365) and [`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`]
    /// (1–86400).
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let days = number(env, TCRELAY_DEDUPE_TTL_DAYS, DEFAULT_DEDUPE_TTL_DAYS)?;
        if !(1..=365).contains(&days) {
            return Err(invalid(
                TCRELAY_DEDUPE_TTL_DAYS,
                "must be between 1 and 365",
            ));
        }
        let expiry = number(
            env,
            TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
            DEFAULT_IN_PROGRESS_EXPIRY_SECONDS,
        )?;
        if !(1..=86_400).contains(&expiry) {
            return Err(invalid(
                TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
                "must be between 1 and 86400",
            ));
        }
        Ok(Self {
            ttl: Duration::from_secs(days * 86_400),
            in_progress_expiry: Duration::from_secs(expiry),
        })
    }
}

impl DedupeTimings {
    /// Checks that an unfinished claim outlives the webhook request that holds it: the
    /// in-progress expiry above [`TCRELAY_REQUEST_BUDGET_MS`]. A claim that expires while its
    /// request still sends can be taken over by Tradecloud's retry or a poll, and both enqueue:
    /// the ERP gets the message twice. The error names [`TCRELAY_IN_PROGRESS_EXPIRY_SECONDS`],
    /// the budget and what to do.
    pub fn check_outlives(&self, webhook: &WebhookConfig) -> Result<(), ConfigError> {
        if self.in_progress_expiry > webhook.request_budget {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            var: TCRELAY_IN_PROGRESS_EXPIRY_SECONDS,
            reason: format!(
                "{} s is not above {TCRELAY_REQUEST_BUDGET_MS} ({} ms): a claim could expire \
                 while its request still sends, and a retry take it over and enqueue the \
                 message a second time; set it above the budget, and above the function's \
                 timeout in a Lambda",
                self.in_progress_expiry.as_secs(),
                webhook.request_budget.as_millis()
            ),
        })
    }
}

fn add_basic_lines<'a>(
    credentials: &mut WebhookCredentials,
    lines: impl IntoIterator<Item = &'a str>,
    var: &'static str,
) -> Result<(), ConfigError> {
    for (n, line) in lines.into_iter().enumerate() {
        // Only line breaks around an entry are cosmetic; spaces inside a password are not
        // trimmed away.
        let line = line.trim_matches(['\r', '\n']);
        if line.trim().is_empty() {
            continue;
        }
        let (user, password) = line.split_once(':').ok_or_else(|| ConfigError::Invalid {
            var,
            reason: format!("entry {} is not user:password", n + 1),
        })?;
        if user.is_empty() || password.is_empty() {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("entry {} has an empty user or password", n + 1),
            });
        }
        credentials.add_basic(user, password);
    }
    Ok(())
}

fn add_bearer_lines<'a>(
    credentials: &mut WebhookCredentials,
    lines: impl IntoIterator<Item = &'a str>,
    var: &'static str,
) -> Result<(), ConfigError> {
    for (n, line) in lines.into_iter().enumerate() {
        let token = line.trim();
        if token.is_empty() {
            continue;
        }
        if token.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid {
                var,
                reason: format!("token {} contains whitespace", n + 1),
            });
        }
        // The header is read as ASCII (RFC 9110 field values; obs-text is refused as
        // malformed), so a token with any other character could never match: every webhook
        // would be answered 401, which Tradecloud drops. Not echoed: it is a credential.
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::Invalid {
                var,
                reason: format!(
                    "token {} has a character outside visible ASCII, which no Authorization \
                     header can carry: every webhook would be refused 401",
                    n + 1
                ),
            });
        }
        credentials.add_bearer(token);
    }
    Ok(())
}

fn invalid(var: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use base64::Engine as _;
    use http::HeaderValue;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        crate::env::env_map(pairs)
    }

    fn full() -> HashMap<String, String> {
        env(&[(TCRELAY_WEBHOOK_BASIC, "tc:pw1\ntc:pw2\n")])
    }

    fn basic(user: &str, pass: &str) -> HeaderValue {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
    }

    #[test]
    fn defaults() {
        let c = Config::from_env_map(&full()).unwrap();
        assert_eq!(c.tradecloud.api_url, DEFAULT_TRADECLOUD_API_URL);
        assert_eq!(c.tradecloud.login, None);
        assert_eq!(c.webhook.max_body_bytes, 6_291_456);
        assert_eq!(c.webhook.retry_after, Duration::from_secs(30));
        assert_eq!(c.webhook.credentials.basic_count(), 2);
        assert!(c.webhook.filter.admits("Anything"));
    }

    #[test]
    fn passwords_keep_their_spaces_and_lose_only_line_breaks() {
        let e = env(&[
            (TCRELAY_WEBHOOK_BASIC, " tc:pw one \r\n"),
            (TRADECLOUD_USERNAME, "int@example.com"),
            (TRADECLOUD_PASSWORD, " secret \n"),
        ]);
        let c = Config::from_env_map(&e).unwrap();
        // Tradecloud sends the password it was given, spaces included.
        let credentials = &c.webhook.credentials;
        assert!(credentials.verify(Some(&basic(" tc", "pw one "))).is_ok());
        assert!(credentials.verify(Some(&basic("tc", "pw one"))).is_err());
        assert_eq!(c.tradecloud.login.unwrap().password(), " secret ");
        // Blank is unset.
        let e = env(&[
            (TCRELAY_WEBHOOK_BASIC, " \n"),
            (TCRELAY_WEBHOOK_BEARER, "t"),
        ]);
        assert_eq!(
            Config::from_env_map(&e)
                .unwrap()
                .webhook
                .credentials
                .basic_count(),
            0
        );
    }

    #[test]
    fn every_setting_is_read() {
        let mut e = full();
        for (k, v) in [
            (TRADECLOUD_API_URL, "https://api.accp.tradecloud1.com/v2"),
            (TRADECLOUD_USERNAME, "int@example.com"),
            (TRADECLOUD_PASSWORD, "secret"),
            (TCRELAY_WEBHOOK_BEARER, "t1\n t2 \n"),
            (TCRELAY_EVENT_ALLOW, "Order*"),
            (TCRELAY_EVENT_DENY, "*ByBuyer"),
            (TCRELAY_MAX_BODY_BYTES, "1024"),
            (TCRELAY_RETRY_AFTER_SECONDS, "5"),
            (
                TCRELAY_WEBHOOK_JWT_ISSUER,
                "https://login.microsoftonline.com/t/v2.0",
            ),
            (TCRELAY_WEBHOOK_JWT_CLIENT_ID, " c1 ,c2,"),
        ] {
            e.insert(k.into(), v.into());
        }
        let c = Config::from_env_map(&e).unwrap();
        assert_eq!(
            c.webhook.credentials.gateway_issuer(),
            Some("https://login.microsoftonline.com/t/v2.0")
        );
        assert_eq!(c.webhook.credentials.gateway_clients(), ["c1", "c2"]);
        assert_eq!(c.tradecloud.api_url, "https://api.accp.tradecloud1.com/v2");
        let login = c.tradecloud.login.unwrap();
        assert_eq!(login.username, "int@example.com");
        assert_eq!(login.password(), "secret");
        assert_eq!(c.webhook.credentials.bearer_count(), 2);
        assert!(
            c.webhook
                .credentials
                .verify(Some(&HeaderValue::from_static("Bearer t2")))
                .is_ok()
        );
        assert!(c.webhook.filter.admits("OrderLinesAcceptedBySupplier"));
        assert!(!c.webhook.filter.admits("OrderIssuedByBuyer"));
        assert!(!c.webhook.filter.admits("ShipmentIssuedBySupplier"));
        assert_eq!(c.webhook.max_body_bytes, 1024);
        assert_eq!(c.webhook.retry_after, Duration::from_secs(5));
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            (TCRELAY_MAX_BODY_BYTES, "6MB"),
            (TCRELAY_MAX_BODY_BYTES, "0"),
            (TCRELAY_MAX_LINES, "0"),
            (TCRELAY_MAX_LINES, "many"),
            (TCRELAY_REQUEST_BUDGET_MS, "99"),
            (TCRELAY_REQUEST_BUDGET_MS, "29001"),
            (TCRELAY_RETRY_AFTER_SECONDS, "soon"),
            (TRADECLOUD_API_URL, "api.tradecloud1.com"),
            (TCRELAY_WEBHOOK_BASIC, "no-colon"),
            (TCRELAY_WEBHOOK_BASIC, ":pw"),
            (TCRELAY_WEBHOOK_BEARER, "two words"),
            (
                TCRELAY_WEBHOOK_JWT_ISSUER,
                "login.microsoftonline.com/t/v2.0",
            ),
            // A client without an issuer trusts nothing.
            (TCRELAY_WEBHOOK_JWT_CLIENT_ID, "c1"),
        ] {
            let mut e = full();
            e.insert(var.into(), value.into());
            let err = Config::from_env_map(&e).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var: v, .. } if *v == var),
                "{var}={value}: {err:?}"
            );
            assert!(err.to_string().starts_with(var), "{err}");
        }
    }

    /// An HTTP header carries visible ASCII only (the router reads `Authorization` as ASCII):
    /// a token with any other character can never match, so every webhook would be answered
    /// 401 and dropped by Tradecloud. Refused at start, naming the variable and why, without
    /// echoing the token; a Basic credential travels base64-encoded and may hold any character.
    #[test]
    fn a_bearer_token_no_header_can_carry_is_refused_at_start() {
        for token in ["tökén", "tok\u{7f}en", "tok\u{1}en", "t\u{202e}ok"] {
            let mut e = full();
            e.insert(TCRELAY_WEBHOOK_BEARER.into(), format!("good\n{token}"));
            let err = Config::from_env_map(&e).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var, .. } if *var == TCRELAY_WEBHOOK_BEARER),
                "{token:?}: {err:?}"
            );
            let text = err.to_string();
            assert!(text.contains("token 2") && text.contains("ASCII"), "{text}");
            assert!(!text.contains(token), "the error echoes the token: {text}");

            let mut c = Config::from_env_map(&full()).unwrap();
            let secret = serde_json::json!({ "bearer": [token] }).to_string();
            let err = c.webhook.apply_secret(&secret).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var, .. } if *var == TCRELAY_WEBHOOK_SECRET_ARN),
                "{token:?}: {err:?}"
            );
        }
        // Every visible ASCII character is carried, and matches.
        let token: String = ('!'..='~').collect();
        let mut e = full();
        e.insert(TCRELAY_WEBHOOK_BEARER.into(), token.clone());
        let c = Config::from_env_map(&e).unwrap();
        let header = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        assert!(c.webhook.credentials.verify(Some(&header)).is_ok());
        // A non-ASCII Basic password is carried in base64 (as UTF-8, the charset the
        // challenge names, RFC 7617) and matches.
        let mut e = full();
        e.insert(TCRELAY_WEBHOOK_BASIC.into(), "tc:pässwört".into());
        let c = Config::from_env_map(&e).unwrap();
        assert!(
            c.webhook
                .credentials
                .verify(Some(&basic("tc", "pässwört")))
                .is_ok()
        );
    }

    /// A Basic credential's characters travel as bytes in base64, and RFC 7617 leaves their
    /// encoding to the sender: our challenge asks for UTF-8, but a Java sender's default (and
    /// older browsers') is ISO-8859-1. A non-ASCII password typed the same on both sides
    /// matches in either encoding, and counts as one credential.
    #[test]
    fn a_non_ascii_basic_credential_matches_in_utf8_and_in_latin1() {
        let mut e = full();
        e.insert(
            TCRELAY_WEBHOOK_BASIC.into(),
            "tc:pässwört\nüser:€uro".into(),
        );
        let c = Config::from_env_map(&e).unwrap();
        let credentials = &c.webhook.credentials;
        assert_eq!(credentials.basic_count(), 2);
        let header = |bytes: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
        };
        let latin1 = |text: &str| -> Vec<u8> { text.chars().map(|c| c as u8).collect() };
        assert!(credentials.verify(Some(&basic("tc", "pässwört"))).is_ok());
        assert!(
            credentials
                .verify(Some(&header(&latin1("tc:pässwört"))))
                .is_ok(),
            "the Latin-1 encoding of the password is refused"
        );
        assert!(
            credentials
                .verify(Some(&header(&latin1("tc:passwort"))))
                .is_err()
        );
        // € is not in Latin-1: only its UTF-8 form can be meant.
        assert!(credentials.verify(Some(&basic("üser", "€uro"))).is_ok());
        assert!(
            credentials
                .verify(Some(&header(&latin1("üser:uro"))))
                .is_err()
        );
        // From the secret too, added to the plain-text ones: still one credential each.
        let mut c = Config::from_env_map(&e).unwrap();
        c.webhook
            .apply_secret(r#"{"basic": ["änother:pw"]}"#)
            .unwrap();
        assert_eq!(c.webhook.credentials.basic_count(), 3);
        let credentials = &c.webhook.credentials;
        assert!(
            credentials
                .verify(Some(&header(&latin1("änother:pw"))))
                .is_ok()
        );
    }

    /// Entra ID issues a token for the relay's audience to any client of the tenant that asks:
    /// an issuer without the client ids to accept would let every one of them in.
    #[test]
    fn a_jwt_issuer_without_a_client_id_is_refused_naming_the_client_id() {
        for clients in [None, Some(""), Some(" , ")] {
            let mut e = full();
            e.insert(
                TCRELAY_WEBHOOK_JWT_ISSUER.into(),
                "https://login.microsoftonline.com/t/v2.0".into(),
            );
            if let Some(clients) = clients {
                e.insert(TCRELAY_WEBHOOK_JWT_CLIENT_ID.into(), clients.into());
            }
            let err = Config::from_env_map(&e).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var, .. }
                    if *var == TCRELAY_WEBHOOK_JWT_CLIENT_ID),
                "{clients:?}: {err:?}"
            );
        }
    }

    #[test]
    fn credential_values_never_appear_in_errors_or_debug() {
        let mut e = full();
        e.insert(TCRELAY_WEBHOOK_BASIC.into(), "good:pw\nleaky-secret".into());
        let err = Config::from_env_map(&e).unwrap_err();
        assert!(!err.to_string().contains("leaky-secret"), "{err}");

        e = full();
        e.insert(TRADECLOUD_USERNAME.into(), "u".into());
        e.insert(TRADECLOUD_PASSWORD.into(), "hunter2".into());
        let c = Config::from_env_map(&e).unwrap();
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("pw1"),
            "{debug}"
        );
    }

    #[test]
    fn a_half_login_is_refused() {
        let mut e = full();
        e.insert(TRADECLOUD_USERNAME.into(), "u".into());
        assert_eq!(
            Config::from_env_map(&e).unwrap_err(),
            ConfigError::Missing {
                var: TRADECLOUD_PASSWORD
            }
        );
        let mut e = full();
        e.insert(TRADECLOUD_PASSWORD.into(), "p".into());
        assert_eq!(
            Config::from_env_map(&e).unwrap_err(),
            ConfigError::Missing {
                var: TRADECLOUD_USERNAME
            }
        );
    }

    #[test]
    fn at_least_one_webhook_credential_or_a_secret() {
        let mut e = full();
        e.remove(TCRELAY_WEBHOOK_BASIC);
        assert_eq!(
            Config::from_env_map(&e).unwrap_err(),
            ConfigError::NoWebhookCredential
        );
        e.insert(TCRELAY_WEBHOOK_BASIC.into(), "\n\n".into());
        assert_eq!(
            Config::from_env_map(&e).unwrap_err(),
            ConfigError::NoWebhookCredential
        );
        e.insert(
            TCRELAY_WEBHOOK_SECRET_ARN.into(),
            "arn:aws:secretsmanager:x".into(),
        );
        let mut c = Config::from_env_map(&e).unwrap();
        assert!(c.webhook.credentials.is_empty());
        assert_eq!(
            c.webhook.secret_arn.as_deref(),
            Some("arn:aws:secretsmanager:x")
        );
        // A secret that yields nothing still leaves the endpoint open: refused.
        assert_eq!(
            c.webhook.apply_secret("{}").unwrap_err(),
            ConfigError::NoWebhookCredential
        );
        c.webhook
            .apply_secret(r#"{"basic": ["a:b", "c:d"], "bearer": "t1\nt2"}"#)
            .unwrap();
        assert_eq!(c.webhook.credentials.basic_count(), 2);
        assert_eq!(c.webhook.credentials.bearer_count(), 2);
        assert!(c.webhook.credentials.verify(Some(&basic("c", "d"))).is_ok());
    }

    #[test]
    fn secret_json_errors_do_not_echo_the_secret() {
        let mut c = Config::from_env_map(&full()).unwrap();
        let err = c
            .webhook
            .apply_secret(r#"{"basic": [42, "s3cr3t-value"]}"#)
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { var, .. } if var == TCRELAY_WEBHOOK_SECRET_ARN)
        );
        assert!(!err.to_string().contains("s3cr3t"), "{err}");

        let err = c
            .tradecloud
            .apply_secret(r#"{"username":"u"}"#)
            .unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { var, .. } if var == TCRELAY_TRADECLOUD_SECRET_ARN)
        );
        c.tradecloud
            .apply_secret(r#"{"username":"u@x","password":"p"}"#)
            .unwrap();
        assert_eq!(c.tradecloud.login.as_ref().unwrap().username, "u@x");
        // An empty field is no login either, and says so without the other field's value.
        for empty in [
            r#"{"username":"","password":"s3cr3t-value"}"#,
            r#"{"username":"u","password":""}"#,
        ] {
            let err = c.tradecloud.apply_secret(empty).unwrap_err();
            assert!(err.to_string().contains("empty"), "{err}");
            assert!(!err.to_string().contains("s3cr3t"), "{err}");
        }
    }

    #[test]
    fn limits_are_read() {
        let mut e = full();
        e.insert(TCRELAY_REQUEST_BUDGET_MS.into(), "1234".into());
        e.insert(TCRELAY_MAX_LINES.into(), "7".into());
        let c = Config::from_env_map(&e).unwrap();
        assert_eq!(c.webhook.request_budget, Duration::from_millis(1234));
        assert_eq!(c.webhook.max_lines, 7);
        for edge in ["100", "29000"] {
            e.insert(TCRELAY_REQUEST_BUDGET_MS.into(), edge.into());
            assert!(Config::from_env_map(&e).is_ok(), "{edge}");
        }
    }

    #[test]
    fn dedupe_timings_are_read_and_bounded() {
        let t = DedupeTimings::from_env_map(&env(&[
            (TCRELAY_DEDUPE_TTL_DAYS, "365"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "86400"),
        ]))
        .unwrap();
        assert_eq!(t.ttl, Duration::from_secs(365 * 86_400));
        assert_eq!(t.in_progress_expiry, Duration::from_secs(86_400));
        for (var, value) in [
            (TCRELAY_DEDUPE_TTL_DAYS, "0"),
            (TCRELAY_DEDUPE_TTL_DAYS, "366"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "0"),
            (TCRELAY_IN_PROGRESS_EXPIRY_SECONDS, "86401"),
        ] {
            let err = DedupeTimings::from_env_map(&env(&[(var, value)])).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { var: v, .. } if *v == var),
                "{var}={value}: {err:?}"
            );
        }
    }
}
