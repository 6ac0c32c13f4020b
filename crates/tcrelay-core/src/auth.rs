//! Webhook authentication: HTTP Basic and Bearer, several credentials at once (rotation).
//!
//! Tradecloud authenticates with one static credential typed into its portal (docs/tradecloud.md
//! §3.2). We keep only SHA-256 digests of the configured credentials and compare the digest of
//! what arrived against every one of them in constant time, without stopping at the first
//! match: neither the time taken nor an early exit tells an attacker how close a guess was or
//! which credential matched. Hashing first also hides the credentials' lengths.

use base64::Engine as _;
use http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The realm announced in `WWW-Authenticate`.
pub const REALM: &str = "tradecloud-relay";

/// Why a request was not authenticated. Every variant is answered 401; the detail tells the
/// operator (not an attacker) what to fix, and never echoes the credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("the Authorization header is missing")]
    Missing,
    /// A scheme we do not accept here (also Basic when only Bearer tokens are configured, and
    /// the other way round).
    /// The scheme is named only when it is a registered scheme name: a header without a
    /// scheme (a bare token, or a tab instead of the space) would otherwise put the credential
    /// into the answer and the log.
    #[error("the Authorization scheme {} is not accepted here", scheme_named(*.0))]
    UnsupportedScheme(Option<&'static str>),
    /// The header could not be read (not ASCII, Basic not base64 or without `:`).
    #[error("the Authorization header is malformed")]
    Malformed,
    /// Well-formed but wrong.
    #[error("the credentials are not valid")]
    Invalid,
    /// More than one `Authorization` header. Checking only the first would let a proxy or
    /// gateway that reads the last one see other credentials than we checked.
    #[error("there is more than one Authorization header")]
    Multiple,
}

/// HTTP authentication scheme names from IANA's registry (and two in common use), the only
/// scheme texts a refusal repeats.
const REGISTERED_SCHEMES: &[&str] = &[
    "Basic",
    "Bearer",
    "Concealed",
    "Digest",
    "DPoP",
    "GNAP",
    "HOBA",
    "Mutual",
    "Negotiate",
    "OAuth",
    "PrivateToken",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
    "vapid",
    "NTLM",
    "AWS4-HMAC-SHA256",
];

fn scheme_named(scheme: Option<&str>) -> String {
    match scheme {
        Some(name) => format!("{name:?}"),
        None => "(not a registered scheme name, so not repeated)".to_owned(),
    }
}

/// A token the API gateway in front of the function has already verified (an HTTP API JWT
/// authorizer, for Tradecloud's OAuth2 mode). The Lambda host reads it from the gateway's
/// request context, which a client cannot write, and adds it to the request's extensions; a
/// host without such a gateway never adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayJwt {
    /// The token's `iss` claim.
    pub issuer: String,
    /// The application the token was issued to: the `azp` claim (Entra ID v2.0 tokens), else
    /// `appid` (v1.0); `None` when the token names neither.
    pub client: Option<String>,
}

/// The configured webhook credentials, as digests.
#[derive(Clone, Default)]
pub struct WebhookCredentials {
    basic: Vec<[u8; 32]>,
    /// How many of `basic` are the ISO-8859-1 form of another entry, not credentials of their
    /// own ([`Self::add_basic`]).
    basic_latin1_forms: usize,
    bearer: Vec<[u8; 32]>,
    gateway_issuer: Option<String>,
    gateway_clients: Vec<String>,
}

impl std::fmt::Debug for WebhookCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Counts only: even digests of short passwords can be brute-forced. Issuer and client
        // ids are public identifiers, not secrets.
        f.debug_struct("WebhookCredentials")
            .field("basic", &self.basic_count())
            .field("bearer", &self.bearer.len())
            .field("gateway_issuer", &self.gateway_issuer)
            .field("gateway_clients", &self.gateway_clients)
            .finish()
    }
}

impl WebhookCredentials {
    /// No credentials; add some with [`Self::add_basic`] and [`Self::add_bearer`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `Authorization: Basic base64(username:password)`, the text encoded as UTF-8 (what
    /// the challenge asks for, RFC 7617) or, when every character is in ISO-8859-1, as that:
    /// RFC 7617 leaves the encoding to the sender, and Java's default (and older browsers') is
    /// ISO-8859-1, so a non-ASCII password typed the same on both sides would otherwise never
    /// match. The two byte strings differ only for non-ASCII text, and the ISO-8859-1 one is
    /// never valid UTF-8, so it cannot be another credential's.
    pub fn add_basic(&mut self, username: &str, password: &str) -> &mut Self {
        let text = format!("{username}:{password}");
        self.basic.push(digest(text.as_bytes()));
        if !text.is_ascii() {
            let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
            if let Some(latin1) = latin1 {
                self.basic.push(digest(&latin1));
                self.basic_latin1_forms += 1;
            }
        }
        self
    }

    /// Accepts `Authorization: Bearer <token>`.
    pub fn add_bearer(&mut self, token: &str) -> &mut Self {
        self.bearer.push(digest(token.as_bytes()));
        self
    }

    /// Accepts requests carrying a [`GatewayJwt`] from `issuer` issued to one of `clients`:
    /// the gateway checked the token's signature, expiry and audience, the function checks it
    /// came from the configured issuer and was issued to a configured client. The client
    /// matters: Entra ID issues an app-only token for an audience to any client of the tenant
    /// that asks (client credentials), so issuer and audience alone would let in every
    /// application registered in, or consented to by, the tenant. With no client, no token
    /// is accepted.
    pub fn trust_gateway_jwt(&mut self, issuer: &str, clients: &[&str]) -> &mut Self {
        self.gateway_issuer = Some(issuer.to_owned());
        self.gateway_clients = clients.iter().map(|&c| c.to_owned()).collect();
        self
    }

    /// The issuer whose gateway-verified tokens are accepted, if any.
    pub fn gateway_issuer(&self) -> Option<&str> {
        self.gateway_issuer.as_deref()
    }

    /// The clients whose gateway-verified tokens are accepted.
    pub fn gateway_clients(&self) -> &[String] {
        &self.gateway_clients
    }

    /// Adds everything from `other` (plain-text settings plus a secret, for instance).
    pub fn extend(&mut self, other: &WebhookCredentials) -> &mut Self {
        self.basic.extend_from_slice(&other.basic);
        self.basic_latin1_forms += other.basic_latin1_forms;
        self.bearer.extend_from_slice(&other.bearer);
        if other.gateway_issuer.is_some() {
            self.gateway_issuer.clone_from(&other.gateway_issuer);
            self.gateway_clients.clone_from(&other.gateway_clients);
        }
        self
    }

    /// Whether no credential at all is configured (an open endpoint, which we refuse to run).
    pub fn is_empty(&self) -> bool {
        self.basic.is_empty() && self.bearer.is_empty()
    }

    /// How many Basic credentials are configured.
    pub fn basic_count(&self) -> usize {
        self.basic.len() - self.basic_latin1_forms
    }

    /// How many Bearer tokens are configured.
    pub fn bearer_count(&self) -> usize {
        self.bearer.len()
    }

    /// Checks a request: a [`GatewayJwt`] from the trusted issuer, issued to a trusted client,
    /// is enough, otherwise the `Authorization` header must carry a configured Basic or
    /// Bearer credential.
    pub fn verify_request(
        &self,
        header: Option<&HeaderValue>,
        gateway: Option<&GatewayJwt>,
    ) -> Result<(), AuthError> {
        if let (Some(trusted), Some(token)) = (&self.gateway_issuer, gateway)
            && *trusted == token.issuer
            && token.client.as_ref().is_some_and(|client| {
                // Client ids are GUIDs, which Entra ID writes in lower case and a portal may
                // show in upper case: a mismatch in case alone would refuse every message.
                self.gateway_clients
                    .iter()
                    .any(|trusted| trusted.eq_ignore_ascii_case(client))
            })
        {
            return Ok(());
        }
        self.verify(header)
    }

    /// Checks a request's headers: exactly one `Authorization` header (several are refused,
    /// whatever they hold), then as [`Self::verify_request`].
    pub fn verify_headers(
        &self,
        headers: &http::HeaderMap,
        gateway: Option<&GatewayJwt>,
    ) -> Result<(), AuthError> {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(AuthError::Multiple);
        }
        self.verify_request(first, gateway)
    }

    /// Checks an `Authorization` header value.
    pub fn verify(&self, header: Option<&HeaderValue>) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let text = header.to_str().map_err(|_| AuthError::Malformed)?.trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim();
        // Schemes are case-insensitive (RFC 9110 §11.1).
        if scheme.eq_ignore_ascii_case("basic") && !self.basic.is_empty() {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| AuthError::Malformed)?;
            if !decoded.contains(&b':') {
                return Err(AuthError::Malformed);
            }
            matches_any(&self.basic, &digest(&decoded))
        } else if scheme.eq_ignore_ascii_case("bearer") && !self.bearer.is_empty() {
            if rest.is_empty() {
                return Err(AuthError::Malformed);
            }
            matches_any(&self.bearer, &digest(rest.as_bytes()))
        } else {
            let registered = REGISTERED_SCHEMES
                .iter()
                .find(|known| known.eq_ignore_ascii_case(scheme));
            Err(AuthError::UnsupportedScheme(registered.copied()))
        }
    }

    /// The `WWW-Authenticate` challenges for a 401: one per configured scheme.
    pub fn challenges(&self) -> Vec<HeaderValue> {
        let mut out = Vec::new();
        if !self.basic.is_empty() {
            out.push(HeaderValue::from_static(
                "Basic realm=\"tradecloud-relay\", charset=\"UTF-8\"",
            ));
        }
        if !self.bearer.is_empty() {
            out.push(HeaderValue::from_static(
                "Bearer realm=\"tradecloud-relay\"",
            ));
        }
        out
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Compares against every candidate, accumulating the result, so the time does not depend on
/// which one (if any) matched.
fn matches_any(candidates: &[[u8; 32]], presented: &[u8; 32]) -> Result<(), AuthError> {
    let mut found = Choice::from(0);
    for candidate in candidates {
        found |= candidate.ct_eq(presented);
    }
    if bool::from(found) {
        Ok(())
    } else {
        Err(AuthError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, pass: &str) -> HeaderValue {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        HeaderValue::from_str(&format!("Basic {b64}")).unwrap()
    }

    fn creds() -> WebhookCredentials {
        let mut c = WebhookCredentials::new();
        c.add_basic("tc", "old-pass")
            .add_basic("tc", "new:pass")
            .add_bearer("token-1")
            .add_bearer("token-2");
        c
    }

    #[test]
    fn a_gateway_verified_token_counts_only_from_the_trusted_issuer_and_client() {
        let issuer = "https://login.microsoftonline.com/t/v2.0";
        let client = "11111111-1111-1111-1111-111111111111";
        let token = GatewayJwt {
            issuer: issuer.into(),
            client: Some(client.into()),
        };
        let stranger = GatewayJwt {
            issuer: "https://login.microsoftonline.com/other/v2.0".into(),
            client: Some(client.into()),
        };
        // Another application of the same tenant, and a token that names none.
        let other_client = GatewayJwt {
            client: Some("33333333-3333-3333-3333-333333333333".into()),
            ..token.clone()
        };
        let no_client = GatewayJwt {
            client: None,
            ..token.clone()
        };
        let jwt_header = HeaderValue::from_static("Bearer eyJ.not-a-configured-token.x");
        // Not trusted: a gateway token is nothing, the header decides.
        let plain = creds();
        assert_eq!(
            plain.verify_request(Some(&jwt_header), Some(&token)),
            Err(AuthError::Invalid)
        );
        let mut trusting = creds();
        trusting.trust_gateway_jwt(issuer, &["22222222-2222-2222-2222-222222222222", client]);
        assert_eq!(
            trusting.verify_request(Some(&jwt_header), Some(&token)),
            Ok(())
        );
        for refused in [&stranger, &other_client, &no_client] {
            assert_eq!(
                trusting.verify_request(Some(&jwt_header), Some(refused)),
                Err(AuthError::Invalid),
                "{refused:?}"
            );
        }
        // A client id as a portal may show it, in upper case, is the same client.
        let mut upper = creds();
        upper.trust_gateway_jwt(issuer, &["11111111-AAAA-1111-1111-111111111111"]);
        let lower = GatewayJwt {
            client: Some("11111111-aaaa-1111-1111-111111111111".into()),
            ..token.clone()
        };
        assert_eq!(
            upper.verify_request(Some(&jwt_header), Some(&lower)),
            Ok(())
        );
        // Trusting an issuer without naming a client trusts no token.
        let mut no_clients = creds();
        no_clients.trust_gateway_jwt(issuer, &[]);
        assert_eq!(
            no_clients.verify_request(Some(&jwt_header), Some(&token)),
            Err(AuthError::Invalid)
        );
        // Without the gateway's word, the same header is just a wrong Bearer token.
        assert_eq!(
            trusting.verify_request(Some(&jwt_header), None),
            Err(AuthError::Invalid)
        );
        // Basic still works beside it (shipment webhooks have no OAuth mode).
        assert_eq!(
            trusting.verify_request(Some(&basic("tc", "old-pass")), None),
            Ok(())
        );
    }

    #[test]
    fn every_configured_credential_is_accepted() {
        let c = creds();
        assert_eq!(c.verify(Some(&basic("tc", "old-pass"))), Ok(()));
        // A colon in the password is legal in Basic (only the first one separates).
        assert_eq!(c.verify(Some(&basic("tc", "new:pass"))), Ok(()));
        for t in ["Bearer token-1", "bearer token-2", "BEARER  token-1 "] {
            assert_eq!(c.verify(Some(&HeaderValue::from_static(t))), Ok(()), "{t}");
        }
    }

    #[test]
    fn wrong_missing_or_malformed_credentials_are_refused() {
        let c = creds();
        assert_eq!(c.verify(None), Err(AuthError::Missing));
        assert_eq!(
            c.verify(Some(&basic("tc", "wrong"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            c.verify(Some(&basic("other", "old-pass"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            c.verify(Some(&HeaderValue::from_static("Bearer token-3"))),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            c.verify(Some(&HeaderValue::from_static("Basic !!!"))),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            c.verify(Some(&HeaderValue::from_static("Bearer"))),
            Err(AuthError::Malformed)
        );
        assert_eq!(
            c.verify(Some(&HeaderValue::from_static("Digest x=1"))),
            Err(AuthError::UnsupportedScheme(Some("Digest")))
        );
        // A credential without its scheme is never repeated in the refusal (which is logged
        // and answered): a bare token, Basic's base64 alone, a tab for the space.
        for header in [
            "token-1",
            "dGM6c2VjcmV0LXBhc3M=",
            "Basic\tdGM6c2VjcmV0LXBhc3M=",
            "x tok",
        ] {
            let refused = c
                .verify(Some(&HeaderValue::from_str(header).unwrap()))
                .unwrap_err()
                .to_string();
            for secret in ["token-1", "dGM6", "x"] {
                assert!(
                    !refused.contains(&format!("\"{secret}")),
                    "{header:?} echoed: {refused}"
                );
            }
            assert!(refused.contains("not repeated"), "{refused}");
        }
    }

    #[test]
    fn a_scheme_without_credentials_is_refused_even_if_the_value_would_match() {
        let mut only_bearer = WebhookCredentials::new();
        only_bearer.add_bearer("dG9rZW4=");
        assert!(matches!(
            only_bearer.verify(Some(&basic("a", "b"))),
            Err(AuthError::UnsupportedScheme(_))
        ));
        assert_eq!(only_bearer.challenges().len(), 1);
        assert!(creds().challenges().len() == 2);
    }

    #[test]
    fn several_authorization_headers_are_refused_even_if_one_is_valid() {
        let c = creds();
        let mut headers = http::HeaderMap::new();
        headers.append(http::header::AUTHORIZATION, basic("tc", "old-pass"));
        assert_eq!(c.verify_headers(&headers, None), Ok(()));
        for second in [basic("tc", "wrong"), basic("tc", "new:pass")] {
            let mut two = headers.clone();
            two.append(http::header::AUTHORIZATION, second);
            assert_eq!(c.verify_headers(&two, None), Err(AuthError::Multiple));
        }
        assert_eq!(
            c.verify_headers(&http::HeaderMap::new(), None),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn debug_shows_no_secret_material() {
        let text = format!("{:?}", creds());
        assert_eq!(
            text,
            "WebhookCredentials { basic: 2, bearer: 2, gateway_issuer: None, gateway_clients: [] }"
        );
    }
}
