//! A small fake Tradecloud (axum on 127.0.0.1:0) for protocol tests: login, single-use refresh
//! tokens, Bearer checks, scripted failures, and a request log with raw targets.
#![allow(dead_code)] // each test binary uses a part

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};

pub const USER: &str = "integration@example.com";
pub const PASSWORD: &str = "pa55-w0rd-s3cret";

/// What the fake answers on a non-auth endpoint, one step per request; `Ok` when the script is
/// empty.
#[derive(Clone, Debug)]
pub enum Step {
    Status(u16, Option<&'static str>),
    Sleep(Duration),
    Raw(&'static str),
    Redirect,
    /// `204 No Content`, no body.
    NoContent,
    /// This status with an error body that never ends.
    EndlessError(u16),
    /// `200 OK` announcing a JSON body whose first bytes arrive and the rest never does.
    StallingBody,
    /// `200 OK` whose body breaks off after its first bytes: the connection is dropped
    /// mid-body, as a reset or a proxy giving up does.
    BrokenBody,
    /// This status with an HTML page as the body, as a load balancer or proxy writes one.
    Html(u16),
}

/// The start of an order, then an error: hyper drops the connection mid-body.
struct Broken(bool);

impl hyper::body::Body for Broken {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Ready(Some(Err(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            ))));
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(
            axum::body::Bytes::from_static(br#"{"id":"a","lines":[{"#),
        ))))
    }
}

/// The start of a poll page, then nothing: the connection stays open, the body never ends.
struct Stalling(bool);

impl hyper::body::Body for Stalling {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(
            axum::body::Bytes::from_static(br#"{"data":[{"id":"a","#),
        ))))
    }
}

/// A body of `x`s that never ends, for error answers that must not be read whole.
struct Endless;

impl hyper::body::Body for Endless {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        static CHUNK: [u8; 16 * 1024] = [b'x'; 16 * 1024];
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(
            axum::body::Bytes::from_static(&CHUNK),
        ))))
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The request target exactly as the client sent it.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

#[derive(Default)]
pub struct Fake {
    pub seen: Mutex<Vec<Seen>>,
    pub access: Mutex<HashSet<String>>,
    pub refresh: Mutex<HashSet<String>>,
    pub issued: AtomicU32,
    pub script: Mutex<VecDeque<Step>>,
    pub in_flight: AtomicU32,
    pub max_in_flight: AtomicU32,
    /// Token lifetime stated in JWT claims; opaque tokens when `None`. `exp` saturates at
    /// `u64::MAX`.
    pub jwt_lifetime: Option<u64>,
    /// JWTs with `exp` only, no `iat`, as in Tradecloud's SDK sample (docs/tradecloud.md §2).
    pub jwt_exp_only: bool,
    /// Written in front of the access token in `Set-Authorization` (e.g. `"Bearer "`).
    pub access_scheme: Option<&'static str>,
    /// Items the poll endpoints page through.
    pub items: Vec<Value>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self, target_prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.target.starts_with(target_prefix))
            .count()
    }

    pub fn api_requests(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| !s.target.starts_with("/v2/authentication/"))
            .collect()
    }

    pub fn script(&self, steps: impl IntoIterator<Item = Step>) {
        self.script.lock().unwrap().extend(steps);
    }

    pub fn issue(&self) -> (String, String) {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let access = match self.jwt_lifetime {
            None => format!("access-{n}"),
            Some(lifetime) => {
                let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
                let iat = 1_700_000_000 + u64::from(n);
                let exp = iat.saturating_add(lifetime);
                let claims = if self.jwt_exp_only {
                    format!(r#"{{"exp":{exp}}}"#)
                } else {
                    format!(r#"{{"iat":{iat},"exp":{exp}}}"#)
                };
                format!(
                    "{}.{}.sig{n}",
                    b64(r#"{"alg":"HS256","typ":"JWT"}"#.into()),
                    b64(claims)
                )
            }
        };
        let refresh = format!("refresh-{n}");
        self.access.lock().unwrap().insert(access.clone());
        self.refresh.lock().unwrap().insert(refresh.clone());
        (access, refresh)
    }

    /// The access token as `Set-Authorization` carries it.
    pub fn with_scheme(&self, access: String) -> String {
        format!("{}{access}", self.access_scheme.unwrap_or_default())
    }

    pub fn revoke_access(&self) {
        self.access.lock().unwrap().clear();
    }

    pub fn revoke_refresh(&self) {
        self.refresh.lock().unwrap().clear();
    }
}

pub fn tokens(access: String, refresh: String) -> Response {
    (
        StatusCode::OK,
        [
            ("set-authorization", access),
            ("set-refresh-token", refresh),
        ],
    )
        .into_response()
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(State(fake): State<Arc<Fake>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_default();
    fake.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        target: target.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        at: Instant::now(),
    });
    let headers = &parts.headers;
    match target.as_str() {
        "/v2/authentication/login" => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
            );
            if header(headers, "authorization") != Some(expected.as_str()) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let (access, refresh) = fake.issue();
            return tokens(fake.with_scheme(access), refresh);
        }
        "/v2/authentication/refresh" => {
            if headers.contains_key("authorization") {
                return StatusCode::BAD_REQUEST.into_response();
            }
            let given = header(headers, "refresh-token")
                .unwrap_or_default()
                .to_owned();
            // Single-use: the token is gone once it was used.
            if !fake.refresh.lock().unwrap().remove(&given) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let (access, refresh) = fake.issue();
            return tokens(fake.with_scheme(access), refresh);
        }
        "/v2/authentication/logout" => {
            let given = header(headers, "refresh-token")
                .unwrap_or_default()
                .to_owned();
            fake.refresh.lock().unwrap().remove(&given);
            return StatusCode::OK.into_response();
        }
        _ => {}
    }
    let bearer = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if !fake.access.lock().unwrap().contains(&bearer) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    fake.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = answer(&fake, &parts.method, &target, &body).await;
    fake.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

pub async fn answer(
    fake: &Fake,
    method: &axum::http::Method,
    target: &str,
    body: &[u8],
) -> Response {
    let step = fake.script.lock().unwrap().pop_front();
    match step {
        Some(Step::Status(code, retry_after)) => {
            let mut response = Response::new(Body::from("{\"error\":\"scripted failure\"}"));
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            return response;
        }
        Some(Step::Sleep(d)) => tokio::time::sleep(d).await,
        Some(Step::Raw(text)) => {
            return ([("content-type", "application/json")], text).into_response();
        }
        Some(Step::Redirect) => {
            return (StatusCode::FOUND, [("location", "/v2/elsewhere")]).into_response();
        }
        Some(Step::NoContent) => return StatusCode::NO_CONTENT.into_response(),
        Some(Step::StallingBody) => return Response::new(Body::new(Stalling(false))),
        Some(Step::BrokenBody) => {
            return (
                [("content-type", "application/json")],
                Body::new(Broken(false)),
            )
                .into_response();
        }
        Some(Step::Html(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                [("content-type", "text/html; charset=UTF-8")],
                "<html><head><title>Error</title></head><body>\n<h1>Server Error</h1>\n\
                 <p>The server encountered a temporary error.</p></body></html>",
            )
                .into_response();
        }
        Some(Step::EndlessError(code)) => {
            let mut response = Response::new(Body::new(Endless));
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
            return response;
        }
        None => {}
    }
    if method == axum::http::Method::GET {
        let segment = target.rsplit('/').next().unwrap_or_default();
        if segment == "missing" {
            return StatusCode::NOT_FOUND.into_response();
        }
        // Written by hand: the decimal must reach the client exactly as `12.50`.
        let body = format!(
            r#"{{"id":{},"lines":[{{"price":12.50}}]}}"#,
            Value::from(segment)
        );
        return ([("content-type", "application/json")], body).into_response();
    }
    // Poll and search: page through `items` by offset and limit.
    let request: Value = serde_json::from_slice(body).unwrap();
    let offset = request["offset"].as_u64().unwrap() as usize;
    let limit = request["limit"].as_u64().unwrap() as usize;
    if limit > 100 {
        return (StatusCode::BAD_REQUEST, "limit may not exceed 100").into_response();
    }
    let page: Vec<Value> = fake
        .items
        .iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    axum::Json(json!({"data": page, "total": fake.items.len()})).into_response()
}

pub async fn start(fake: Fake) -> (Arc<Fake>, String) {
    let fake = Arc::new(fake);
    let app = Router::new().fallback(handle).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (fake, format!("http://{addr}/v2"))
}

/// Settings scaled down so a test runs in well under a second.
pub fn config(base: &str) -> ClientConfig {
    ClientConfig {
        timeout: Duration::from_millis(500),
        retry_budget: Duration::from_millis(800),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_requests_per_second: 1000,
        ..ClientConfig::new(base, Credentials::new(USER, PASSWORD))
    }
}

pub async fn client(fake: Fake) -> (Arc<Fake>, TradecloudClient) {
    let (fake, base) = start(fake).await;
    (fake, TradecloudClient::new(config(&base)).unwrap())
}
