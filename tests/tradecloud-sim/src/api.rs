//! The Tradecloud API under `/v2`: authentication, poll and search, fetch by id.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::SimError;
use crate::auth::{Auth, Denied};
use crate::faults::{Endpoint, Fault, Faults};
use crate::index::{Index, Row, live_order_rows, live_shipment_rows};
use crate::quirks::{Misshape, Quirks, java_time_spellings, misshape, strip_zones};
use crate::sender::Sender;
use crate::util::{format_ms, lock, parse_ms};
use crate::world::{Change, OrderForm, World};

/// One request to the API, as the simulator saw it (for tests of client behaviour such as
/// sequential calls and the 10 requests/s limit).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    /// The endpoint, when the path is one.
    pub endpoint: Option<Endpoint>,
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Status answered.
    pub status: u16,
    /// Whether an injected fault produced the answer (or delayed it).
    pub fault: bool,
    /// Wall-clock milliseconds since start when the request arrived.
    pub received_ms: u64,
    /// Wall-clock milliseconds since start when the answer was ready.
    pub answered_ms: u64,
}

/// State shared by the API, the control API and the [`crate::Simulator`] handle.
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) auth: Mutex<Auth>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) requests: Mutex<Vec<ApiRequest>>,
    pub(crate) changes_per_poll: AtomicUsize,
    /// Most API requests per rolling second before 429s (0: no limit), and when recent ones came.
    pub(crate) rate_limit: AtomicUsize,
    pub(crate) recent: Mutex<VecDeque<Instant>>,
    pub(crate) sender: Arc<Sender>,
    /// The (optionally lagging) index the poll and search endpoints read.
    pub(crate) index: Mutex<Index>,
    pub(crate) started: Instant,
    /// The behaviours beyond the convenient defaults that are switched on ([`Quirks`]).
    pub(crate) quirks: Mutex<Quirks>,
    /// Every object state a poll or search answer carried: (class, id, `lastUpdatedAt` ms).
    pub(crate) served: Mutex<HashSet<(&'static str, String, i64)>>,
    /// The objects (by id) poll and search answers serve misshapen ([`Misshape`]).
    pub(crate) misshapen: Mutex<HashMap<String, Misshape>>,
}

impl Shared {
    /// Applies `count` actions to the world and queues their webhook deliveries.
    pub(crate) fn advance(&self, count: usize) -> Result<Vec<Change>, SimError> {
        let mut world = lock(&self.world);
        self.apply(&mut world, count)
    }

    /// Switches quirks; the token ones reach the authenticator.
    pub(crate) fn set_quirks(&self, quirks: Quirks) {
        lock(&self.auth).exp_only = quirks.exp_only_tokens;
        *lock(&self.quirks) = quirks;
    }

    /// Advances the locked world, tells the index, queues the deliveries.
    fn apply(&self, world: &mut World, count: usize) -> Result<Vec<Change>, SimError> {
        let changes = world.advance(count);
        lock(&self.index).changed(world, &changes);
        self.sender.enqueue(&changes)?;
        Ok(changes)
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/authentication/login", get(login))
        .route("/v2/authentication/refresh", get(refresh))
        .route("/v2/authentication/logout", post(logout))
        .route("/v2/order-search/poll", post(order_poll).get(order_poll))
        .route(
            "/v2/order-search/poll/single-delivery",
            post(order_poll_single).get(order_poll_single),
        )
        .route("/v2/shipment/poll", post(shipment_poll).get(shipment_poll))
        .route("/v2/order-search/search", post(order_search))
        .route("/v2/shipment/search", post(shipment_search))
        .route("/v2/order/{id}", get(get_order))
        .route("/v2/shipment/{id}", get(get_shipment))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            faults_and_log,
        ))
        .with_state(shared)
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"status": status.as_u16(), "message": message.into()});
    (status, axum::Json(body)).into_response()
}

fn unauthorized(denied: Denied, basic_allowed: bool) -> Response {
    let (message, challenge) = match denied {
        Denied::Missing => ("authentication required", None),
        Denied::BadCredentials => ("invalid username or password", None),
        Denied::BadToken => (
            "invalid or expired access token",
            Some(r#"Bearer error="invalid_token""#),
        ),
        Denied::SchemeNotAllowed => ("this endpoint accepts a Bearer token only", None),
    };
    let challenge = challenge.unwrap_or(if basic_allowed {
        r#"Basic realm="tradecloud", Bearer"#
    } else {
        "Bearer"
    });
    let mut response = error(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Applies injected faults and records every API request.
async fn faults_and_log(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let received_ms = shared.started.elapsed().as_millis() as u64;
    let endpoint = Endpoint::classify(request.method(), request.uri().path());
    let method = request.method().to_string();
    let target = request
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let limited = endpoint.is_some() && over_rate_limit(&shared);
    let fault = if limited {
        Some(Fault::TooManyRequests {
            retry_after_secs: 1,
        })
    } else {
        endpoint.and_then(|e| lock(&shared.faults).decide(e))
    };
    let response = match &fault {
        None => next.run(request).await,
        Some(Fault::Delay { ms }) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            next.run(request).await
        }
        Some(Fault::Timeout { ms }) => {
            tokio::time::sleep(Duration::from_millis(*ms)).await;
            error(StatusCode::GATEWAY_TIMEOUT, "upstream request timeout")
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Some(Fault::Status { status }) => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error(status, "injected failure")
        }
        Some(Fault::MalformedJson) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"data":[{"id":"#,
        )
            .into_response(),
        Some(Fault::GatewayPage { status }) => gateway_page(*status),
        Some(Fault::TooManyRequestsUntil { retry_after_secs }) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "too many requests");
            let at = chrono::Utc::now()
                + chrono::Duration::seconds(i64::try_from(*retry_after_secs).unwrap_or(i64::MAX));
            let date = at.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            if let Ok(v) = HeaderValue::from_str(&date) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Some(Fault::BrokenBody) => broken(next.run(request).await).await,
        Some(Fault::Drip { bytes, ms }) => drip(next.run(request).await, *bytes, *ms).await,
    };
    let answered_ms = shared.started.elapsed().as_millis() as u64;
    lock(&shared.requests).push(ApiRequest {
        endpoint,
        method,
        target,
        status: response.status().as_u16(),
        fault: fault.is_some(),
        received_ms,
        answered_ms,
    });
    response
}

/// An HTML error page such as a load balancer writes (this one after Google's front end's),
/// with no `Retry-After`.
fn gateway_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error {code} \
         ({reason})!!1</title>\n  <p><b>{code}.</b> <ins>That\u{2019}s an error.</ins>\n  <p>The \
         server encountered a temporary error and could not complete your request.<p>Please \
         try again in 30 seconds.  <ins>That\u{2019}s all we know.</ins>\n",
        code = status.as_u16(),
        reason = status.canonical_reason().unwrap_or("Error"),
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}

/// `response` with its body cut after the first half and the connection then dropped.
async fn broken(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    // Chunked: the break reads as a body that never ended, not as one that ended early.
    parts.headers.remove(header::CONTENT_LENGTH);
    // The break comes a moment after the half, so the head and the half are on the wire
    // first (an error at once would drop the connection before anything was written).
    let pieces = futures::stream::unfold(Some(half), |half| async move {
        match half {
            Some(half) => Some((Ok(half), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
                Some((Err(reset), None))
            }
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

/// `response` with its body sent `bytes` at a time, each piece after `ms` milliseconds.
async fn drip(response: Response, bytes: usize, ms: u64) -> Response {
    let (mut parts, body) = response.into_parts();
    let whole = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let step = bytes.max(1);
    let pieces = futures::stream::unfold(0usize, move |at| {
        let whole = whole.clone();
        async move {
            if at >= whole.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let end = (at + step).min(whole.len());
            Some((Ok::<_, std::io::Error>(whole.slice(at..end)), end))
        }
    });
    Response::from_parts(parts, axum::body::Body::from_stream(pieces))
}

/// Tradecloud allows 10 requests per second; with a limit set, requests beyond it in any
/// rolling second are answered 429 (and do not count themselves).
fn over_rate_limit(shared: &Shared) -> bool {
    let limit = shared.rate_limit.load(Ordering::Relaxed);
    if limit == 0 {
        return false;
    }
    let now = Instant::now();
    let mut recent = lock(&shared.recent);
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        recent.pop_front();
    }
    if recent.len() >= limit {
        return true;
    }
    recent.push_back(now);
    false
}

fn with_tokens(pair: crate::auth::TokenPair) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    if let (Ok(a), Ok(r)) = (
        HeaderValue::from_str(&pair.access),
        HeaderValue::from_str(&pair.refresh),
    ) {
        headers.insert("Set-Authorization", a);
        headers.insert("Set-Refresh-Token", r);
    }
    response
}

async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut auth = lock(&shared.auth);
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let Some(basic) = value.and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    }) else {
        return unauthorized(Denied::Missing, true);
    };
    if let Err(denied) = auth.check_basic(basic) {
        return unauthorized(denied, true);
    }
    with_tokens(auth.issue())
}

fn refresh_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("Refresh-Token")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

async fn refresh(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = refresh_header(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "Refresh-Token header required");
    };
    let mut auth = lock(&shared.auth);
    if !auth.take_refresh(token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid, used or expired refresh token",
        );
    }
    with_tokens(auth.issue())
}

async fn logout(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let Some(token) = refresh_header(&headers) else {
        return error(StatusCode::UNAUTHORIZED, "Refresh-Token header required");
    };
    if lock(&shared.auth).take_refresh(token) {
        StatusCode::OK.into_response()
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid, used or expired refresh token",
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Orders(OrderForm),
    Shipments,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Poll endpoints: `lastUpdatedAfter` (strict unless [`Quirks::inclusive_after`]), sorted
    /// by `lastUpdatedAt` (unless [`Quirks::unsorted`]), cursor in the answer.
    Poll,
    /// Older search endpoints: `lastUpdatedSince` (inclusive) and `sort`.
    Search,
}

async fn order_poll(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    query(
        &s,
        &headers,
        &body,
        Stream::Orders(OrderForm::Schedule),
        Mode::Poll,
    )
}

async fn order_poll_single(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    query(
        &s,
        &headers,
        &body,
        Stream::Orders(OrderForm::SingleDelivery),
        Mode::Poll,
    )
}

async fn shipment_poll(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    query(&s, &headers, &body, Stream::Shipments, Mode::Poll)
}

async fn order_search(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    query(
        &s,
        &headers,
        &body,
        Stream::Orders(OrderForm::Schedule),
        Mode::Search,
    )
}

async fn shipment_search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    query(&s, &headers, &body, Stream::Shipments, Mode::Search)
}

/// A parsed poll or search request.
struct Query {
    after: Option<i64>,
    since: Option<i64>,
    offset: usize,
    limit: usize,
    process_status: Option<Vec<String>>,
    company_ids: Option<Vec<String>>,
    sort: Option<(String, bool)>,
}

/// Why a poll or search request is malformed (answered with 400).
struct Bad(String);

fn bad(message: impl Into<String>) -> Bad {
    Bad(message.into())
}

/// A string or an array of strings (Tradecloud's filters use both).
fn strings(v: &Value, name: &str) -> Result<Vec<String>, Bad> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("{name} must hold strings")))
            })
            .collect(),
        _ => Err(bad(format!(
            "{name} must be a string or an array of strings"
        ))),
    }
}

fn timestamp(filters: &Map<String, Value>, key: &str) -> Result<Option<i64>, Bad> {
    match filters.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_ms(s)
            .map(Some)
            .ok_or_else(|| bad(format!("filters.{key} is not a date-time: {s}"))),
        Some(_) => Err(bad(format!("filters.{key} must be a string"))),
    }
}

fn count(body: &Map<String, Value>, key: &str, default: usize) -> Result<usize, Bad> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| bad(format!("{key} must be a non-negative integer"))),
        Some(_) => Err(bad(format!("{key} must be a non-negative integer"))),
    }
}

fn parse_query(body: &[u8], stream: Stream, mode: Mode) -> Result<Query, Bad> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON body: {e}")))?;
    let Value::Object(body) = value else {
        return Err(bad("the body must be a JSON object"));
    };
    let empty = Map::new();
    let filters = match body.get("filters") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(f)) => f,
        Some(_) => return Err(bad("filters must be an object")),
    };
    let limit = count(&body, "limit", 100)?;
    if limit > 100 {
        return Err(bad(format!("limit {limit} exceeds the maximum of 100")));
    }
    let offset = count(&body, "offset", 0)?;
    let after = timestamp(filters, "lastUpdatedAfter")?;
    let since = if mode == Mode::Search {
        timestamp(filters, "lastUpdatedSince")?
    } else {
        None
    };
    let process_status = match filters.get("status").and_then(|s| s.get("processStatus")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(strings(v, "filters.status.processStatus")?),
    };
    let mut company_ids: Option<Vec<String>> = None;
    let (party_a, party_b) = match stream {
        Stream::Orders(_) => ("buyerOrder", "supplierOrder"),
        Stream::Shipments => ("buyerShipment", "supplierShipment"),
    };
    let mut candidates = vec![filters.get("companyId")];
    for party in [party_a, party_b] {
        if let Some(p) = filters.get(party) {
            candidates.push(p.get("companyId"));
            candidates.push(p.get("companyIds"));
        }
    }
    for c in candidates.into_iter().flatten() {
        company_ids
            .get_or_insert_with(Vec::new)
            .extend(strings(c, "companyId")?);
    }
    let sort = match (mode, body.get("sort")) {
        (Mode::Search, Some(Value::Array(items))) => items.first().map(sort_key).transpose()?,
        (Mode::Search, Some(v @ Value::Object(_))) => Some(sort_key(v)?),
        (Mode::Search, Some(Value::Null) | None) | (Mode::Poll, _) => None,
        (Mode::Search, Some(_)) => return Err(bad("sort must be an object or an array")),
    };
    Ok(Query {
        after,
        since,
        offset,
        limit,
        process_status,
        company_ids,
        sort,
    })
}

fn sort_key(v: &Value) -> Result<(String, bool), Bad> {
    let field = v
        .get("field")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("sort.field must be a string"))?;
    let ascending = match v.get("order").and_then(Value::as_str) {
        None | Some("asc") => true,
        Some("desc") => false,
        Some(other) => return Err(bad(format!("sort.order must be asc or desc, not {other}"))),
    };
    Ok((field.to_string(), ascending))
}

fn query(
    shared: &Shared,
    headers: &HeaderMap,
    body: &[u8],
    stream: Stream,
    mode: Mode,
) -> Response {
    if let Err(denied) = lock(&shared.auth).authenticate(headers, true) {
        return unauthorized(denied, true);
    }
    let q = match parse_query(body, stream, mode) {
        Ok(q) => q,
        Err(Bad(message)) => return error(StatusCode::BAD_REQUEST, message),
    };
    let quirks = *lock(&shared.quirks);
    let misshapen = lock(&shared.misshapen).clone();
    let mut world = lock(&shared.world);
    let (answer, served) = {
        let mut index = lock(&shared.index);
        index.before_query(&world);
        if index.enabled() {
            let rows = match stream {
                Stream::Orders(_) => index.order_rows(),
                Stream::Shipments => index.shipment_rows(),
            };
            run_query(
                rows,
                &q,
                stream,
                mode,
                (quirks, &misshapen),
                |row| match stream {
                    Stream::Orders(form) => index.order_json(row.index, form),
                    Stream::Shipments => index.shipment_json(row.index),
                },
            )
        } else {
            let rows = match stream {
                Stream::Orders(_) => live_order_rows(&world),
                Stream::Shipments => live_shipment_rows(&world),
            };
            run_query(
                rows,
                &q,
                stream,
                mode,
                (quirks, &misshapen),
                |row| match stream {
                    Stream::Orders(form) => world.order_json(row.index, form),
                    Stream::Shipments => world.shipment_json(row.index),
                },
            )
        }
    };
    let class = match stream {
        Stream::Orders(_) => "order",
        Stream::Shipments => "shipment",
    };
    lock(&shared.served).extend(served.into_iter().map(|(id, ms)| (class, id, ms)));
    // Changes that land while a client pages: applied after this page was read.
    let n = shared.changes_per_poll.load(Ordering::Relaxed);
    if n > 0
        && mode == Mode::Poll
        && let Err(e) = shared.apply(&mut world, n)
    {
        tracing::error!(error = %e, "queueing webhook deliveries failed");
    }
    drop(world);
    axum::Json(answer).into_response()
}

fn run_query(
    rows: Vec<Row>,
    q: &Query,
    stream: Stream,
    mode: Mode,
    (quirks, misshapen): (Quirks, &HashMap<String, Misshape>),
    render: impl Fn(&Row) -> Value,
) -> (Value, Vec<(String, i64)>) {
    let after = |ms: i64| {
        q.after
            .is_none_or(|a| ms > a || (quirks.inclusive_after && ms == a))
    };
    let mut matches: Vec<Row> = rows
        .into_iter()
        .filter(|r| after(r.ms) && q.since.is_none_or(|s| r.ms >= s))
        .filter(|r| {
            q.process_status
                .as_ref()
                .is_none_or(|s| s.contains(&r.status))
                && q.company_ids
                    .as_ref()
                    .is_none_or(|c| c.iter().any(|x| *x == r.buyer || *x == r.supplier))
        })
        .collect();
    // lastUpdatedAt ascending, then id: a stable order within one millisecond, so offset paging
    // inside a tie is well defined.
    let by_time = |a: &Row, b: &Row| a.ms.cmp(&b.ms).then(a.id.cmp(&b.id));
    match (&q.sort, stream) {
        (Some((field, asc)), Stream::Orders(_)) if field == "buyerOrder.purchaseOrderNumber" => {
            matches.sort_by(|a, b| {
                let o = a.po.cmp(&b.po);
                let o = if *asc { o } else { o.reverse() };
                if o == CmpOrdering::Equal {
                    by_time(a, b)
                } else {
                    o
                }
            })
        }
        (Some((field, false)), _) if field.ends_with("lastUpdatedAt") => {
            matches.sort_by(|a, b| by_time(b, a))
        }
        _ if quirks.unsorted => matches.sort_by(|a, b| a.id.cmp(&b.id)),
        _ => matches.sort_by(by_time),
    }
    let total = matches.len();
    let size = quirks
        .page_cap
        .map_or(q.limit, |cap| q.limit.min(cap as usize));
    let page: Vec<&Row> = matches.iter().skip(q.offset).take(size).collect();
    let served = page.iter().map(|r| (r.id.clone(), r.ms)).collect();
    let mut data: Vec<Value> = page
        .iter()
        .map(|r| {
            let mut object = render(r);
            if let Some(how) = misshapen.get(&r.id) {
                misshape(&mut object, *how);
            }
            object
        })
        .collect();
    if quirks.java_time {
        data.iter_mut().for_each(java_time_spellings);
    }
    if quirks.zoneless {
        data.iter_mut().for_each(strip_zones);
    }
    let mut answer = Map::new();
    answer.insert("data".into(), Value::Array(data));
    answer.insert("total".into(), json!(total));
    if mode == Mode::Poll
        && let Some(last) = page.last()
    {
        answer.insert("lastUpdatedAt".into(), json!(format_ms(last.ms)));
    }
    (Value::Object(answer), served)
}

async fn get_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = lock(&shared.auth).authenticate(&headers, false) {
        return unauthorized(denied, false);
    }
    let world = lock(&shared.world);
    match world.order(&id) {
        Some(order) => axum::Json(order).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("order {id} not found")),
    }
}

async fn get_shipment(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(denied) = lock(&shared.auth).authenticate(&headers, false) {
        return unauthorized(denied, false);
    }
    let world = lock(&shared.world);
    match world.shipment(&id) {
        Some(shipment) => axum::Json(shipment).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("shipment {id} not found")),
    }
}
