//! A Tradecloud simulator over HTTP: the API, a changing world of orders and shipments, and the webhook sender.
//!
//! Start it in-process with [`Simulator::start`]; it listens on loopback (port 0 by default):
//!
//! ```no_run
//! # async fn demo() -> Result<(), tradecloud_sim::SimError> {
//! use tradecloud_sim::{SimConfig, Simulator, WebhookTarget};
//! let sim = Simulator::start(SimConfig::seeded(42)).await?;
//! let api = sim.base_url(); // "http://127.0.0.1:PORT/v2"; Basic auth with sim.username()/password()
//! sim.add_webhook(WebhookTarget::new("http://127.0.0.1:9/webhook"))?;
//! let changes = sim.advance(10)?; // ten actions, each one or more events
//! sim.wait_webhooks_idle(std::time::Duration::from_secs(5)).await;
//! let deliveries = sim.deliveries(); // every attempt and its answer
//! sim.shutdown().await;
//! # let _ = (api, changes, deliveries); Ok(()) }
//! ```
//!
//! # The API (`/v2`)
//! - `GET /authentication/login` (Basic) answers 200 with the tokens in the `Set-Authorization`
//!   and `Set-Refresh-Token` headers (empty body). Access tokens are JWT-shaped with `iat` and
//!   `exp` claims (only `exp` with [`Quirks::exp_only_tokens`], as in Tradecloud's own sample
//!   token) and live [`SimConfig::access_token_ttl`]. `GET /authentication/refresh` with only
//!   `Refresh-Token:` issues a new pair; a refresh token works once. `POST
//!   /authentication/logout` with `Refresh-Token:` revokes it (the access token stays valid).
//! - `POST` (or `GET` with a body) `/order-search/poll`, `/order-search/poll/single-delivery`,
//!   `/shipment/poll`: Basic or Bearer; body `{filters:{lastUpdatedAfter, status.processStatus,
//!   companyId | buyerOrder.companyId | …}, offset, limit}`; `lastUpdatedAfter` accepts offsets
//!   and is strict, and answers are sorted by `lastUpdatedAt` ascending, then id: the convenient
//!   case, which Tradecloud does not promise (docs/tradecloud.md §6.2, §6.5); the [`Quirks`]
//!   switch on what it does not rule out (unsorted, inclusive). `limit` at most 100 (default
//!   100; more is a 400); answer `{data, total, lastUpdatedAt}` where `lastUpdatedAt` is the last
//!   item's on this page and is absent when `data` is empty.
//! - `POST /order-search/search`, `/shipment/search`: `filters.lastUpdatedSince` (inclusive),
//!   `sort` (`[{field, order}]` or `{field, order}`; `lastUpdatedAt`,
//!   `buyerOrder.purchaseOrderNumber`), answer `{data, total}`.
//! - `GET /order/{id}`, `GET /shipment/{id}`: Bearer only (Basic is a 401), 404 for unknown ids.
//! - Errors are `{status, message}` JSON: 400 malformed, 401 (with `WWW-Authenticate`) bad
//!   credentials or tokens, 404 unknown. Optional rate limit ([`SimConfig::rate_limit_per_second`])
//!   and injected [`Fault`]s (429 + `Retry-After` in seconds or as an HTTP-date, any status,
//!   a load balancer's HTML page without `Retry-After`, delays, 504 after a wait, truncated
//!   JSON, a body broken off mid-way or dripping) per [`Endpoint`]: what Tradecloud does not
//!   promise as well as what it documents.
//!
//! # The world
//! [`World`] is seeded (ChaCha) and runs on simulated time from [`WorldConfig::start_time`], so
//! a seed reproduces the same objects, changes and message ids. Each action follows Tradecloud's
//! flows and produces one or more [`Change`]s (events) sharing one `version` and `lastUpdatedAt`;
//! resend events keep both. Actions on different objects may share a millisecond
//! ([`WorldConfig::same_millisecond_probability`]); [`SimConfig::changes_per_poll`] applies
//! actions after each poll request so objects change while a client pages, and
//! [`SimConfig::index_lag_queries`] makes the poll/search index lag behind commits, so a late
//! state can appear behind a cursor that already moved on (what a poller's look-back is for).
//!
//! # The webhook sender
//! Per [`WebhookTarget`]: POST (JSON or tXML) or GET (`{orderId}`/`{shipmentId}` in path or
//! query), Basic or Bearer, event selection, duplicate rate, legacy body keys. Deliveries of one
//! object go in order; 2xx is delivered, 4xx and 500 are dropped, other 5xx and connection errors
//! are retried forever with capped exponential back-off ([`RetryPolicy`]). Every attempt is in
//! [`Simulator::deliveries`].
//!
//! # The control API (`/sim`, unauthenticated, loopback)
//! `POST /sim/advance {"count"}` → `{changes}`; `GET /sim/changes?from=SEQ&withBodies=true`;
//! `GET /sim/objects`; `GET /sim/orders/{id}`, `/sim/shipments/{id}`; `POST /sim/webhooks`
//! (a [`WebhookTarget`] as JSON, camelCase) → `{id}`; `GET /sim/webhooks`; `DELETE
//! /sim/webhooks/{id}`; `POST /sim/webhooks/wait-idle {"timeoutMs"}` → `{idle, pending}`; `GET
//! /sim/deliveries`; `POST /sim/faults` (a [`FaultRule`]) → `{id}`; `GET`/`DELETE /sim/faults`;
//! `DELETE /sim/faults/{id}`; `POST /sim/settings {"changesPerPoll", "rateLimitPerSecond"}`;
//! `POST /sim/tokens/expire`; `GET /sim/requests` (every API request with its answer);
//! `POST /sim/quirks` (a [`Quirks`], camelCase: `unsorted`, `inclusiveAfter`, `zoneless`,
//! `expOnlyTokens`, `javaTime`, `pageCap`) and `GET /sim/quirks`; `GET /sim/served` (every object state a poll or
//! search answer carried); `POST /sim/settings {"accessTokenTtlMs"}` too.

mod api;
mod auth;
mod control;
mod faults;
mod index;
mod quirks;
mod sender;
pub mod txml_writer;
mod util;
mod world;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use api::ApiRequest;
pub use faults::{Endpoint, Fault, FaultRule};
pub use quirks::{Misshape, Quirks};
pub use sender::{
    Attempt, DeliveryOutcome, DeliveryRecord, Integration, RetryPolicy, WebhookAuth, WebhookFormat,
    WebhookMethod, WebhookTarget,
};
pub use world::{Change, EventKind, ORDER_EVENT_NAMES, ObjectState, World, WorldConfig};

use crate::api::Shared;
use crate::util::lock;

/// Errors of the simulator's library API.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// No Tokio runtime is running.
    #[error("no Tokio runtime: {0}")]
    Runtime(String),
    /// The HTTP client for webhooks could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
    /// A webhook target is not usable.
    #[error("invalid webhook target: {0}")]
    InvalidTarget(String),
    /// A webhook body could not be encoded (tXML).
    #[error("cannot encode webhook body: {0}")]
    Encode(String),
}

/// Everything the simulator needs to start.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The world: seed, start time, size, ties.
    pub world: WorldConfig,
    /// User name of the integration user (Basic auth and login).
    pub username: String,
    /// Password of the integration user.
    pub password: String,
    /// Lifetime of access tokens (Tradecloud: 1 h); short in tests to exercise refresh.
    pub access_token_ttl: Duration,
    /// Lifetime of refresh tokens (Tradecloud: 24 h).
    pub refresh_token_ttl: Duration,
    /// Actions applied after each poll request, so objects change while a client pages.
    pub changes_per_poll: usize,
    /// Retry and timeout behaviour of the webhook sender; scale it down in tests.
    pub retry: RetryPolicy,
    /// Seed of the fault rates.
    pub fault_seed: u64,
    /// API requests allowed per rolling second before `429 Too Many Requests` (Tradecloud's
    /// rule is 10); `None` for no limit.
    pub rate_limit_per_second: Option<u32>,
    /// Commit lag of the poll and search endpoints, in queries: a changed object keeps its
    /// previous state there for up to this many further poll/search requests (drawn per change
    /// from the fault seed), then shows up with its original `lastUpdatedAt`, possibly behind a
    /// cursor that a later change already moved on. 0: no lag. Fetch by id and webhooks always
    /// see the current state.
    pub index_lag_queries: usize,
    /// Behaviours Tradecloud does not rule out, beyond the convenient defaults (sorted pages, a
    /// strict `lastUpdatedAfter`, zoned times, tokens with `iat`); all off by default.
    pub quirks: Quirks,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            world: WorldConfig::default(),
            username: "integration@example.com".into(),
            password: "sim-password".into(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            changes_per_poll: 0,
            retry: RetryPolicy::default(),
            fault_seed: 7,
            rate_limit_per_second: None,
            index_lag_queries: 0,
            quirks: Quirks::default(),
        }
    }
}

impl SimConfig {
    /// The defaults with a world seed, a smaller world and test-speed webhook back-off
    /// ([`RetryPolicy::fast`]): what most tests want.
    pub fn seeded(seed: u64) -> Self {
        Self {
            world: WorldConfig {
                seed,
                initial_orders: 30,
                initial_shipments: 5,
                max_lines: 30,
                ..WorldConfig::default()
            },
            retry: RetryPolicy::fast(),
            ..Self::default()
        }
    }
}

/// A running simulator: the API on `/v2`, the control API on `/sim`, the webhook sender.
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    username: String,
    password: String,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Generates the world and starts serving; returns once the socket is bound.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        let started = Instant::now();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let sender = Arc::new(sender::Sender::new(
            config.retry.clone(),
            shutdown_rx.clone(),
            started,
        )?);
        let world = World::new(config.world.clone());
        let index = index::Index::new(config.index_lag_queries, config.fault_seed, &world);
        let mut auth = auth::Auth::new(
            &config.username,
            &config.password,
            config.access_token_ttl,
            config.refresh_token_ttl,
        );
        auth.exp_only = config.quirks.exp_only_tokens;
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            index: Mutex::new(index),
            auth: Mutex::new(auth),
            faults: Mutex::new(faults::Faults::new(config.fault_seed)),
            requests: Mutex::new(Vec::new()),
            changes_per_poll: AtomicUsize::new(config.changes_per_poll),
            rate_limit: AtomicUsize::new(config.rate_limit_per_second.unwrap_or(0) as usize),
            recent: Mutex::new(std::collections::VecDeque::new()),
            sender,
            started,
            quirks: Mutex::new(config.quirks),
            served: Mutex::new(std::collections::HashSet::new()),
            misshapen: Mutex::new(std::collections::HashMap::new()),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| SimError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: config.listen,
            source,
        })?;
        let app = api::router(Arc::clone(&shared)).merge(control::router(Arc::clone(&shared)));
        let mut stop = shutdown_rx;
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "simulator server failed");
            }
        });
        tracing::info!(%addr, seed = config.world.seed, "tradecloud simulator listening");
        Ok(Self {
            shared,
            addr,
            username: config.username,
            password: config.password,
            shutdown,
            server: Some(server),
        })
    }

    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base including `/v2`, e.g. `http://127.0.0.1:PORT/v2`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v2", self.addr)
    }

    /// The control API base, e.g. `http://127.0.0.1:PORT/sim`.
    pub fn control_url(&self) -> String {
        format!("http://{}/sim", self.addr)
    }

    /// The integration user's name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The integration user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Applies `count` actions to the world (each one or more events) and queues their webhook
    /// deliveries; returns the changes.
    pub fn advance(&self, count: usize) -> Result<Vec<Change>, SimError> {
        self.shared.advance(count)
    }

    /// Every change so far (the ground truth), oldest first.
    pub fn changes(&self) -> Vec<Change> {
        lock(&self.shared.world).changes().to_vec()
    }

    /// The current state of every order and shipment.
    pub fn objects(&self) -> Vec<ObjectState> {
        lock(&self.shared.world).objects()
    }

    /// An order as `GET /order/{id}` returns it.
    pub fn order(&self, id: &str) -> Option<Value> {
        lock(&self.shared.world).order(id)
    }

    /// An order in the single-delivery form, as `/poll/single-delivery` returns it.
    pub fn order_single_delivery(&self, id: &str) -> Option<Value> {
        lock(&self.shared.world).order_single_delivery(id)
    }

    /// A shipment as `GET /shipment/{id}` returns it.
    pub fn shipment(&self, id: &str) -> Option<Value> {
        lock(&self.shared.world).shipment(id)
    }

    /// Adds a webhook target; changes from now on are delivered to it. Returns its id.
    pub fn add_webhook(&self, target: WebhookTarget) -> Result<u64, SimError> {
        self.shared.sender.add_target(target)
    }

    /// Removes a webhook target and cancels its queued deliveries.
    pub fn remove_webhook(&self, id: u64) -> bool {
        self.shared.sender.remove_target(id)
    }

    /// Every webhook delivery with its attempts and outcome.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.sender.records()
    }

    /// Waits until no webhook delivery is pending (delivered, dropped or given up); returns
    /// false if the timeout passed first.
    pub async fn wait_webhooks_idle(&self, timeout: Duration) -> bool {
        self.shared.sender.wait_idle(timeout).await
    }

    /// Adds a fault rule for the API; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        lock(&self.shared.faults).add(rule)
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Sets how many actions are applied after each poll request.
    pub fn set_changes_per_poll(&self, count: usize) {
        self.shared.changes_per_poll.store(count, Ordering::Relaxed);
    }

    /// Sets the API rate limit (requests per rolling second; `None` for no limit).
    pub fn set_rate_limit(&self, per_second: Option<u32>) {
        let limit = per_second.unwrap_or(0) as usize;
        self.shared.rate_limit.store(limit, Ordering::Relaxed);
    }

    /// Invalidates every access token issued so far (refresh tokens stay valid).
    pub fn expire_access_tokens(&self) {
        lock(&self.shared.auth).expire_access_tokens();
    }

    /// Switches the behaviours Tradecloud does not rule out ([`Quirks`]) on or off, from the
    /// next request on.
    pub fn set_quirks(&self, quirks: Quirks) {
        self.shared.set_quirks(quirks);
    }

    /// Serves the object `id` misshapen `how` in poll and search answers from the next request
    /// on (its GET stays whole); `None` serves it whole again.
    pub fn misshape(&self, id: &str, how: Option<Misshape>) {
        let mut misshapen = lock(&self.shared.misshapen);
        match how {
            Some(how) => misshapen.insert(id.to_owned(), how),
            None => misshapen.remove(id),
        };
    }

    /// The [`Quirks`] switched on.
    pub fn quirks(&self) -> Quirks {
        *lock(&self.shared.quirks)
    }

    /// Sets the lifetime of access tokens issued from now on (the JWT's `exp` says it too).
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        lock(&self.shared.auth).set_access_ttl(ttl);
    }

    /// Every object state a poll or search answer ever carried, as `(class, id,
    /// lastUpdatedAt)` with the time in Tradecloud's zoned form, sorted.
    pub fn served(&self) -> Vec<(String, String, String)> {
        let mut states: Vec<(String, String, String)> = lock(&self.shared.served)
            .iter()
            .map(|(class, id, ms)| ((*class).to_owned(), id.clone(), util::format_ms(*ms)))
            .collect();
        states.sort();
        states
    }

    /// Every API request so far with its answer.
    pub fn api_requests(&self) -> Vec<ApiRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Stops serving and cancels pending webhook deliveries; waits for the server to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // A test that forgets shutdown() must not leave a server and retry loops behind.
        let _ = self.shutdown.send(true);
    }
}
