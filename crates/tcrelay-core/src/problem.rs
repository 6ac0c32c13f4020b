//! RFC 9457 problem details (`application/problem+json`), the body of every error answer.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

/// The media type of a problem body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Prefix of every problem `type`. A URN rather than a URL: it names the problem and promises
/// no page to fetch (RFC 9457 §3.1.1 allows both); docs/config.md lists them.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:tradecloud-relay:problem:";

/// One problem answer: the RFC 9457 members plus the headers some statuses need.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// `urn:tradecloud-relay:problem:<slug>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short, fixed per type.
    pub title: &'static str,
    /// The HTTP status, repeated in the body as RFC 9457 recommends.
    #[serde(serialize_with = "serialize_status")]
    pub status: StatusCode,
    /// What went wrong with this request, naming the field or setting to fix.
    pub detail: String,
    /// The offending field's path (e.g. `orderEvent.lines[3].id`), when one field is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id, also in the logs, so an operator can find the request.
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `Retry-After` in seconds (502/503/504).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// `WWW-Authenticate` challenges (401).
    #[serde(skip)]
    pub www_authenticate: Vec<HeaderValue>,
    /// `Allow` (405).
    #[serde(skip)]
    pub allow: Option<HeaderValue>,
}

fn serialize_status<S: serde::Serializer>(status: &StatusCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u16(status.as_u16())
}

impl Problem {
    /// A problem of type `slug`.
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            type_uri: format!("{PROBLEM_TYPE_PREFIX}{slug}"),
            title,
            status,
            detail: detail.into(),
            field: None,
            request_id: None,
            retry_after: None,
            www_authenticate: Vec::new(),
            allow: None,
        }
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        for challenge in self.www_authenticate {
            headers.append(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}
