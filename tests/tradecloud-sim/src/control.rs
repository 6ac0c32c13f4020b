//! The control API under `/sim`: advance the world, configure webhook targets and faults, read
//! the ground truth. Unauthenticated: the simulator listens on loopback for tests and demos.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::api::{Shared, error};
use crate::faults::FaultRule;
use crate::quirks::Quirks;
use crate::sender::WebhookTarget;
use crate::util::lock;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sim/advance", post(advance))
        .route("/sim/changes", get(changes))
        .route("/sim/objects", get(objects))
        .route("/sim/orders/{id}", get(order))
        .route("/sim/shipments/{id}", get(shipment))
        .route("/sim/webhooks", post(add_webhook).get(webhooks))
        .route("/sim/webhooks/{id}", delete(remove_webhook))
        .route("/sim/webhooks/wait-idle", post(wait_idle))
        .route("/sim/deliveries", get(deliveries))
        .route(
            "/sim/faults",
            post(add_fault).get(faults).delete(clear_faults),
        )
        .route("/sim/faults/{id}", delete(remove_fault))
        .route("/sim/settings", post(settings))
        .route("/sim/tokens/expire", post(expire_tokens))
        .route("/sim/requests", get(requests))
        .route("/sim/quirks", post(set_quirks).get(quirks))
        .route("/sim/served", get(served))
        .with_state(shared)
}

/// Parses a control request body (empty means `{}`); the error is the 400 answer's text.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| format!("bad request body: {e}"))
}

#[derive(Deserialize)]
struct Count {
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

/// `POST /sim/advance {"count": n}`: applies n actions, answers the changes they made.
async fn advance(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let count: Count = match parse(&body) {
        Ok(c) => c,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if count.count > 100_000 {
        return error(StatusCode::BAD_REQUEST, "count must be at most 100000");
    }
    match shared.advance(count.count) {
        Ok(changes) => axum::Json(json!({ "changes": changes })).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangesQuery {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    with_bodies: bool,
}

/// `GET /sim/changes?from=SEQ&withBodies=true`: the ground truth of changes.
async fn changes(State(shared): State<Arc<Shared>>, Query(q): Query<ChangesQuery>) -> Response {
    let world = lock(&shared.world);
    let items: Vec<Value> = world
        .changes()
        .iter()
        .filter(|c| c.seq >= q.from)
        .map(|c| {
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            if q.with_bodies {
                v["webhookBody"] = c.webhook_body(false);
            }
            v
        })
        .collect();
    axum::Json(json!({ "changes": items })).into_response()
}

async fn objects(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "objects": lock(&shared.world).objects() })).into_response()
}

async fn order(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&shared.world).order(&id) {
        Some(o) => axum::Json(o).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such order"),
    }
}

async fn shipment(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match lock(&shared.world).shipment(&id) {
        Some(s) => axum::Json(s).into_response(),
        None => error(StatusCode::NOT_FOUND, "no such shipment"),
    }
}

async fn add_webhook(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let target: WebhookTarget = match parse(&body) {
        Ok(t) => t,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match shared.sender.add_target(target) {
        Ok(id) => (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn webhooks(State(shared): State<Arc<Shared>>) -> Response {
    let items: Vec<Value> = shared
        .sender
        .targets()
        .into_iter()
        .map(|(id, t)| json!({ "id": id, "target": t }))
        .collect();
    axum::Json(json!({ "webhooks": items })).into_response()
}

async fn remove_webhook(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    if shared.sender.remove_target(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such webhook")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitIdle {
    #[serde(default = "five_seconds")]
    timeout_ms: u64,
}

fn five_seconds() -> u64 {
    5_000
}

/// `POST /sim/webhooks/wait-idle {"timeoutMs": n}`: waits until no delivery is pending.
async fn wait_idle(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let q: WaitIdle = match parse(&body) {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let idle = shared
        .sender
        .wait_idle(Duration::from_millis(q.timeout_ms.min(600_000)))
        .await;
    axum::Json(json!({ "idle": idle, "pending": shared.sender.pending() })).into_response()
}

async fn deliveries(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "deliveries": shared.sender.records() })).into_response()
}

async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule: FaultRule = match parse(&body) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let id = lock(&shared.faults).add(rule);
    (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
}

async fn faults(State(shared): State<Arc<Shared>>) -> Response {
    let items: Vec<Value> = lock(&shared.faults)
        .list()
        .into_iter()
        .map(|(id, rule)| json!({ "id": id, "rule": rule }))
        .collect();
    axum::Json(json!({ "faults": items })).into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.faults).clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn remove_fault(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    if lock(&shared.faults).remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such fault")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    changes_per_poll: Option<usize>,
    /// Requests per rolling second; 0 lifts the limit.
    rate_limit_per_second: Option<usize>,
    /// Lifetime of access tokens issued from now on.
    access_token_ttl_ms: Option<u64>,
}

/// `POST /sim/settings {"changesPerPoll": n, "rateLimitPerSecond": n}`.
async fn settings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let s: Settings = match parse(&body) {
        Ok(s) => s,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    if let Some(n) = s.changes_per_poll {
        shared
            .changes_per_poll
            .store(n.min(1_000), Ordering::Relaxed);
    }
    if let Some(n) = s.rate_limit_per_second {
        shared.rate_limit.store(n, Ordering::Relaxed);
    }
    if let Some(ms) = s.access_token_ttl_ms {
        lock(&shared.auth).set_access_ttl(Duration::from_millis(ms.max(1)));
    }
    axum::Json(json!({
        "changesPerPoll": shared.changes_per_poll.load(Ordering::Relaxed),
        "rateLimitPerSecond": shared.rate_limit.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.auth).expire_access_tokens();
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "requests": *lock(&shared.requests) })).into_response()
}

/// `POST /sim/quirks` (a [`Quirks`]): switches the behaviours Tradecloud does not rule out.
async fn set_quirks(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let quirks: Quirks = match parse(&body) {
        Ok(q) => q,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    shared.set_quirks(quirks);
    axum::Json(quirks).into_response()
}

async fn quirks(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(*lock(&shared.quirks)).into_response()
}

/// `GET /sim/served`: every object state a poll or search answer carried.
async fn served(State(shared): State<Arc<Shared>>) -> Response {
    let mut states: Vec<Value> = lock(&shared.served)
        .iter()
        .map(|(class, id, ms)| json!({"class": class, "id": id, "lastUpdatedAt": crate::util::format_ms(*ms)}))
        .collect();
    states.sort_by_key(|v| v.to_string());
    axum::Json(json!({ "served": states })).into_response()
}
