//! Tradecloud's authentication: Basic credentials, JWT access tokens, single-use refresh tokens.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::HeaderMap;
use http::header::AUTHORIZATION;

/// A pair of tokens as login and refresh hand them out.
pub(crate) struct TokenPair {
    pub(crate) access: String,
    pub(crate) refresh: String,
}

/// Issued tokens and when they stop working. Token lifetimes run on the wall clock (they are
/// about the client's session, not about the simulated world).
pub(crate) struct Auth {
    username: String,
    password: String,
    access_ttl: Duration,
    refresh_ttl: Duration,
    access: HashMap<String, Instant>,
    refresh: HashMap<String, Instant>,
    /// Leave `iat` out of access tokens, as in Tradecloud's SDK sample.
    pub(crate) exp_only: bool,
}

/// Why a request is not authenticated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No usable `Authorization` header.
    Missing,
    /// Basic credentials that do not match.
    BadCredentials,
    /// A bearer token that was never issued, has expired or was revoked.
    BadToken,
    /// A scheme the endpoint does not accept (Basic on fetch-by-id).
    SchemeNotAllowed,
}

impl Auth {
    pub(crate) fn new(
        username: &str,
        password: &str,
        access_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Self {
        Self {
            username: username.to_string(),
            password: password.to_string(),
            access_ttl,
            refresh_ttl,
            access: HashMap::new(),
            refresh: HashMap::new(),
            exp_only: false,
        }
    }

    /// Checks `Authorization: Basic ...` against the configured credentials.
    pub(crate) fn check_basic(&self, value: &str) -> Result<(), Denied> {
        let decoded = STANDARD
            .decode(value.trim())
            .map_err(|_| Denied::BadCredentials)?;
        let text = String::from_utf8(decoded).map_err(|_| Denied::BadCredentials)?;
        let (user, password) = text.split_once(':').ok_or(Denied::BadCredentials)?;
        if user == self.username && password == self.password {
            Ok(())
        } else {
            Err(Denied::BadCredentials)
        }
    }

    /// Checks a bearer access token.
    pub(crate) fn check_bearer(&mut self, token: &str) -> Result<(), Denied> {
        let now = Instant::now();
        self.access.retain(|_, until| *until > now);
        if self.access.contains_key(token.trim()) {
            Ok(())
        } else {
            Err(Denied::BadToken)
        }
    }

    /// Authenticates a request; `allow_basic` is false on endpoints that take JWT only.
    pub(crate) fn authenticate(
        &mut self,
        headers: &HeaderMap,
        allow_basic: bool,
    ) -> Result<(), Denied> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Denied::Missing)?;
        let (scheme, rest) = value.split_once(' ').ok_or(Denied::Missing)?;
        if scheme.eq_ignore_ascii_case("bearer") {
            self.check_bearer(rest)
        } else if scheme.eq_ignore_ascii_case("basic") {
            if allow_basic {
                self.check_basic(rest)
            } else {
                Err(Denied::SchemeNotAllowed)
            }
        } else {
            Err(Denied::Missing)
        }
    }

    /// Issues a new access and refresh token.
    pub(crate) fn issue(&mut self) -> TokenPair {
        let now = Instant::now();
        let access = self.jwt(self.access_ttl);
        let refresh = format!("rt-{}", uuid::Uuid::new_v4().simple());
        self.access.insert(access.clone(), now + self.access_ttl);
        self.refresh.insert(refresh.clone(), now + self.refresh_ttl);
        TokenPair { access, refresh }
    }

    /// A JWT-shaped token whose `exp` claim tells clients when to refresh, as Tradecloud's do.
    /// The signature is random: only this simulator validates the token, by lookup.
    fn jwt(&self, ttl: Duration) -> String {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let mut claims = serde_json::json!({
            "sub": self.username,
            "iat": iat,
            "exp": iat + ttl.as_secs(),
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        if self.exp_only
            && let Some(map) = claims.as_object_mut()
        {
            map.remove("iat");
        }
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signature = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        format!("{header}.{claims}.{signature}")
    }

    /// Uses a refresh token: valid once, then gone.
    pub(crate) fn take_refresh(&mut self, token: &str) -> bool {
        let now = Instant::now();
        self.refresh.retain(|_, until| *until > now);
        self.refresh.remove(token.trim()).is_some()
    }

    /// Sets the lifetime of access tokens issued from now on.
    pub(crate) fn set_access_ttl(&mut self, ttl: Duration) {
        self.access_ttl = ttl;
    }

    /// Makes every issued access token invalid at once (refresh tokens stay valid), so tests
    /// can exercise a client's re-login without waiting.
    pub(crate) fn expire_access_tokens(&mut self) {
        self.access.clear();
    }
}
