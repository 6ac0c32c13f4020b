//! A minimal Runtime API client for the crate's own tests, as a function's runtime library
//! would be: the tests play the function's side with it.

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::{ERROR_TYPE_HEADER, RuntimeApi};

/// Talks to one [`RuntimeApi`] as a runtime does.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    pub(crate) fn new(api: &RuntimeApi) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("http://{}/2018-06-01/runtime", api.address()),
        }
    }

    /// `GET /invocation/next`: the headers and the event.
    pub(crate) async fn next(&self) -> (HeaderMap, Value) {
        let response = self
            .http
            .get(format!("{}/invocation/next", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        (headers, response.json().await.unwrap())
    }

    /// POSTs `body` to `path` (below `/runtime`); the status.
    pub(crate) async fn post(&self, path: &str, body: Value, error_type: Option<&str>) -> u16 {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = error_type {
            request = request.header(ERROR_TYPE_HEADER, t);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

/// The text of header `name`; panics when it is missing.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .to_str()
        .unwrap()
}
