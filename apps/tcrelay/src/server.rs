//! `tcrelay serve` as a library: the webhook router under an HTTP/1 server and the poll loop on
//! an interval, both stopping gracefully. In-flight requests finish; a poll run finishes the
//! page it is on and saves the cursor (it sees a deadline that has passed, the same way a Lambda
//! run stops before its deadline).
//!
//! The server is exposed to whoever can reach the port, so it bounds what a client can hold:
//! the time to send a request's head (and to start the next one on a kept-alive connection),
//! the time a connection may sit idle, and the number of connections at once ([`ServerLimits`]).
//! The body's time is bounded by the webhook's request budget. `axum::serve` has none of
//! these, which let a half-sent request line or a few hundred idle sockets stop the service.
//!
//! `GET /health` answers 200 without credentials and without details (a load balancer's or
//! systemd's probe); [`RunningServer::start_admin`] serves `/metrics` on a second address, so
//! the counts need not be exposed where Tradecloud calls.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tcrelay_core::ConfigError;
use tcrelay_core::env::{Env, number};
use tcrelay_core::ports::{CursorStore, TradecloudApi};
use tcrelay_core::{CountingTakeOvers, WebhookApp, WebhookSettings, webhook_router};
use tcrelay_poll::{Deadline, PollApi, PollConfig, PollPorts, RunReport, RunRequest};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backend::Ports;
use crate::metrics::{Counters, counted};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound. The cause is in the message, not a `source`,
    /// which `{:#}` would print a second time.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// The HTTP server failed (the cause in the message, as for [`ServeError::Bind`]).
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    /// The limits cannot be served ([`ServerLimits::check`]: the error names the variable
    /// that sets the limit).
    #[error(transparent)]
    Limits(ConfigError),
    /// One of the HTTP servers ended, or panicked, without a shutdown asked for: nothing
    /// listens on its address any more, so the process must stop (and its supervisor restart
    /// it) rather than live on deaf.
    #[error("the {server} HTTP server stopped unexpectedly: {reason}")]
    Ended {
        /// `webhook` or `admin`.
        server: &'static str,
        /// How it ended.
        reason: String,
    },
}

/// What the relay is built from.
#[derive(Clone)]
pub struct RelayParts {
    /// The webhook's settings.
    pub webhook: WebhookSettings,
    /// The ports.
    pub ports: Ports,
    /// Tradecloud for GET webhooks; `None` answers them 503.
    pub api: Option<Arc<dyn TradecloudApi>>,
    /// Tradecloud for polling; `None` turns polling off.
    pub poll_api: Option<Arc<dyn PollApi>>,
    /// The poll loop's settings.
    pub poll: PollConfig,
}

impl std::fmt::Debug for RelayParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayParts")
            .field("webhook", &self.webhook)
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

impl RelayParts {
    /// The ports of a poll run, if polling is possible.
    pub fn poll_ports(&self) -> Option<PollPorts> {
        self.poll_api.as_ref().map(|api| PollPorts {
            api: Arc::clone(api),
            cursors: Arc::clone(&self.ports.cursors),
            dedupe: Arc::clone(&self.ports.dedupe),
            sink: Arc::clone(&self.ports.sink),
        })
    }
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the webhook listens.
    pub listen: SocketAddr,
    /// Time between poll runs; `None` (or no streams) turns polling off.
    pub poll_interval: Option<Duration>,
    /// What one client may hold of the server.
    pub limits: ServerLimits,
}

/// Milliseconds a client has to send a request's head, counted from the connection's start
/// or the previous answer.
pub const TCRELAY_HEADER_TIMEOUT_MS: &str = "TCRELAY_HEADER_TIMEOUT_MS";
/// Milliseconds a connection may go without a byte read or written before it is closed.
pub const TCRELAY_IDLE_TIMEOUT_MS: &str = "TCRELAY_IDLE_TIMEOUT_MS";
/// Connections served at once; more wait in the listen backlog.
pub const TCRELAY_MAX_CONNECTIONS: &str = "TCRELAY_MAX_CONNECTIONS";
/// The most [`TCRELAY_MAX_CONNECTIONS`] admits: above any file-descriptor limit a machine
/// sets (so it bounds nothing less than the kernel would), and far below what the server's
/// connection slots can count (a larger value made the server task panic after start-up).
pub const MAX_CONNECTIONS_LIMIT: usize = 1_048_576;

/// What one client may hold of `tcrelay serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Time to send a request's head (the request line and headers), from the connection's
    /// start or the previous answer: a half-sent request line is closed after this.
    pub header_timeout: Duration,
    /// Time a connection may go without a byte read or written; a kept-alive connection is
    /// closed after it (one still answering finishes first).
    pub idle_timeout: Duration,
    /// Connections served at once. More wait in the kernel's listen backlog rather than take
    /// file descriptors, so idle sockets cannot exhaust them.
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 256,
        }
    }
}

impl ServerLimits {
    /// Reads [`TCRELAY_HEADER_TIMEOUT_MS`] (default 10000) and [`TCRELAY_IDLE_TIMEOUT_MS`]
    /// (default 60000), each at least 1, and [`TCRELAY_MAX_CONNECTIONS`] (default 256, from 1
    /// to [`MAX_CONNECTIONS_LIMIT`], as [`Self::check`] checks it).
    pub fn from_env_map(env: &dyn Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let positive = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
            match number(env, var, default)? {
                0 => Err(ConfigError::Invalid {
                    var,
                    reason: "must be at least 1".into(),
                }),
                n => Ok(n),
            }
        };
        let limits = Self {
            header_timeout: Duration::from_millis(positive(
                TCRELAY_HEADER_TIMEOUT_MS,
                defaults.header_timeout.as_millis() as u64,
            )?),
            idle_timeout: Duration::from_millis(positive(
                TCRELAY_IDLE_TIMEOUT_MS,
                defaults.idle_timeout.as_millis() as u64,
            )?),
            // Past `usize` (a 32-bit target) is past the limit too: `check` refuses it.
            max_connections: usize::try_from(number(
                env,
                TCRELAY_MAX_CONNECTIONS,
                defaults.max_connections as u64,
            )?)
            .unwrap_or(usize::MAX),
        };
        limits.check()?;
        Ok(limits)
    }

    /// Whether these limits can be served: `max_connections` from 1 to
    /// [`MAX_CONNECTIONS_LIMIT`], the error naming [`TCRELAY_MAX_CONNECTIONS`], which sets it.
    /// [`Self::from_env_map`] checks the limits it reads, and [`start`] those built otherwise:
    /// the server would fail only once it runs, after start-up was announced.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&self.max_connections) {
            return Err(ConfigError::Invalid {
                var: TCRELAY_MAX_CONNECTIONS,
                reason: format!(
                    "{} is not between 1 and {MAX_CONNECTIONS_LIMIT}",
                    self.max_connections
                ),
            });
        }
        Ok(())
    }
}

/// A running relay.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    /// `None` once [`RunningServer::failed`] saw it end.
    http: Option<JoinHandle<Result<(), ServeError>>>,
    poller: Option<JoinHandle<()>>,
    admin: Option<JoinHandle<Result<(), ServeError>>>,
    counters: Arc<Counters>,
    cursors: Arc<dyn CursorStore>,
    limits: ServerLimits,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters of this server.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Asks both parts to stop (idempotent); [`Self::wait`] then returns when they have.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Serves `GET /metrics` (Prometheus text: [`Counters::prometheus`]) and `GET /health` on
    /// `listen`, under the same limits as the webhook, until shutdown. Returns the bound
    /// address.
    pub async fn start_admin(&mut self, listen: SocketAddr) -> Result<SocketAddr, ServeError> {
        let listener = bind(listen).await?;
        self.start_admin_on(listener)
    }

    /// As [`Self::start_admin`], on a listener already bound ([`bind`]): `serve` binds every
    /// address before it starts anything, so a taken admin address stops it before the webhook
    /// has served a request or start-up was announced.
    pub fn start_admin_on(
        &mut self,
        listener: tokio::net::TcpListener,
    ) -> Result<SocketAddr, ServeError> {
        let addr = listener.local_addr().map_err(ServeError::Serve)?;
        let counters = Arc::clone(&self.counters);
        let cursors = Arc::clone(&self.cursors);
        let metrics = move || async move {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                counters.prometheus(Some(cursors.as_ref())).await,
            )
        };
        let router = axum::Router::new()
            .route("/metrics", probe(axum::routing::get(metrics)))
            .route("/health", probe(axum::routing::get(health)));
        self.admin = Some(tokio::spawn(serve_http(
            listener,
            router,
            self.limits,
            self.shutdown.subscribe(),
        )));
        Ok(addr)
    }

    /// Returns when the webhook's or the admin's HTTP server has ended although no shutdown
    /// was asked for (a panic, or an error it cannot serve through), saying which and how.
    /// Never returns while both serve. Cancel-safe: `serve` selects on it and on the signals,
    /// then shuts the rest down gracefully with [`Self::shutdown`] either way.
    pub async fn failed(&mut self) -> ServeError {
        async fn watch(
            handle: &mut Option<JoinHandle<Result<(), ServeError>>>,
        ) -> Result<Result<(), ServeError>, tokio::task::JoinError> {
            match handle.as_mut() {
                Some(running) => {
                    let ended = running.await;
                    // Finished: not to be awaited again by `wait`.
                    *handle = None;
                    ended
                }
                None => std::future::pending().await,
            }
        }
        let (server, ended) = tokio::select! {
            ended = watch(&mut self.http) => ("webhook", ended),
            ended = watch(&mut self.admin) => ("admin", ended),
        };
        let reason = match ended {
            Ok(Ok(())) => "it returned without a shutdown asked for".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(join) => ended_task(join),
        };
        ServeError::Ended { server, reason }
    }

    /// Waits until the HTTP servers and the poll loop have stopped, then for the relay's work
    /// that outlived its requests (a send past its request's deadline, a slow settle).
    pub async fn wait(self) -> Result<(), ServeError> {
        // Already ended (and reported by `failed`): nothing more to say about it.
        let http = match self.http {
            Some(http) => http.await,
            None => Ok(Ok(())),
        };
        if let Some(poller) = self.poller {
            let _ = poller.await;
        }
        if !tcrelay_core::relay::finish_outliving_work(OUTLIVING_WORK_LIMIT).await {
            tracing::warn!(
                "sends or settles still running at shutdown after {OUTLIVING_WORK_LIMIT:?}; \
                 their claims expire on their own"
            );
        }
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        match http {
            Ok(result) => result,
            Err(e) => Err(ServeError::Serve(std::io::Error::other(e.to_string()))),
        }
    }

    /// Stops gracefully and waits.
    pub async fn shutdown(self) -> Result<(), ServeError> {
        self.trigger_shutdown();
        self.wait().await
    }
}

/// How long a shutdown waits for sends and settles that outlived their requests: longer than
/// an AWS call's operation timeout (8 s) with room for its claims' settle.
const OUTLIVING_WORK_LIMIT: Duration = Duration::from_secs(30);

/// Binds, then serves the webhook and (when configured) runs the poll loop in the background.
pub async fn start(parts: RelayParts, options: ServeOptions) -> Result<RunningServer, ServeError> {
    let listener = bind(options.listen).await?;
    start_on(parts, options, listener).await
}

/// Binds `listen` (for [`start_on`] and [`RunningServer::start_admin_on`]).
pub async fn bind(listen: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|error| ServeError::Bind {
            addr: listen,
            error,
        })
}

/// As [`start`], on a listener already bound ([`bind`]); `options.listen` is not used.
pub async fn start_on(
    mut parts: RelayParts,
    options: ServeOptions,
    listener: tokio::net::TcpListener,
) -> Result<RunningServer, ServeError> {
    options.limits.check().map_err(ServeError::Limits)?;
    let addr = listener.local_addr().map_err(|error| ServeError::Bind {
        addr: options.listen,
        error,
    })?;
    // The webhook and the poll loop share one counting store: a take-over means the ERP may
    // have a message twice, and /metrics shows it.
    let dedupe = CountingTakeOvers::new(Arc::clone(&parts.ports.dedupe));
    let mut counters = Counters::with_take_overs(dedupe.count());
    parts.ports.dedupe = Arc::new(dedupe);
    let poll = match (options.poll_interval, parts.poll_ports()) {
        (Some(interval), Some(ports)) if !interval.is_zero() && !parts.poll.streams.is_empty() => {
            // /metrics reports on the streams polled from the start, failing ones included.
            counters = counters.polling(&parts.poll.streams, parts.poll.start.as_deref());
            Some((interval, ports))
        }
        _ => None,
    };
    let counters = Arc::new(counters);
    let app = WebhookApp::new(
        parts.webhook.clone(),
        Arc::clone(&parts.ports.sink),
        Arc::clone(&parts.ports.dedupe),
        Arc::clone(&parts.ports.quarantine),
        parts.api.clone(),
    );
    // Outside the counting layer: probes are not traffic.
    let router = axum::Router::new()
        .route("/health", probe(axum::routing::get(health)))
        .merge(counted(
            webhook_router(Arc::new(app)),
            Arc::clone(&counters),
        ));
    let (shutdown, shutdown_rx) = watch::channel(false);

    let http = tokio::spawn(serve_http(
        listener,
        router,
        options.limits,
        shutdown_rx.clone(),
    ));

    let poller = match poll {
        Some((interval, ports)) => {
            let config = parts.poll.clone();
            let counters = Arc::clone(&counters);
            Some(tokio::spawn(poll_loop(
                ports,
                config,
                interval,
                shutdown_rx,
                counters,
            )))
        }
        _ => {
            tracing::info!(
                "polling is off (--poll-interval 0, no TCRELAY_POLL_STREAMS, or no Tradecloud login)"
            );
            None
        }
    };
    Ok(RunningServer {
        addr,
        shutdown,
        http: Some(http),
        poller,
        admin: None,
        counters,
        cursors: Arc::clone(&parts.ports.cursors),
        limits: options.limits,
    })
}

/// A GET-only route whose other methods are answered 405 as problem+json with `Allow`, like
/// every other refusal of the server (axum's own 405 has an empty body).
fn probe(route: axum::routing::MethodRouter) -> axum::routing::MethodRouter {
    route.fallback(|method: http::Method| async move {
        let mut problem = tcrelay_core::problem::Problem::new(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
            format!("{method} is not served here: use GET"),
        );
        problem.allow = Some(http::HeaderValue::from_static("GET, HEAD"));
        problem
    })
}

/// `GET /health`: the process serves. Nothing more is said, to anyone, so it needs no
/// credentials.
async fn health() -> &'static str {
    "ok\n"
}

/// Accepts connections while fewer than `limits.max_connections` are open and serves each with
/// the limits; on shutdown stops accepting, lets every connection finish its request, and
/// returns when all are closed.
async fn serve_http(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let http1 = Arc::new(http1);
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // not the server's end. A short pause keeps a persistent error from spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let http1 = Arc::clone(&http1);
        let service = TowerToHyperService::new(router.clone());
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let connection = http1.serve_connection(io, service);
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stopped(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
                _ = activity.idle_for(limits.idle_timeout) => {
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                // A client that went away or sent garbage; hyper has answered what it could.
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    // Every slot back means every connection has closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Returns once shutdown is asked for (or the server is gone). Yields `()`, not the watch's
/// guard, so a `select!` arm may await after it (the guard is not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// When a connection last read or wrote a byte.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Returns once nothing was read or written for `limit`.
    async fn idle_for(&self, limit: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet = last.elapsed();
            if quiet >= limit {
                return;
            }
            tokio::time::sleep(limit - quiet).await;
        }
    }
}

/// A TCP stream that records its activity for the idle timeout.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A deadline that passes when shutdown is asked for, so a run stops before its next page.
#[derive(Debug, Clone)]
pub struct ShutdownDeadline(pub watch::Receiver<bool>);

impl Deadline for ShutdownDeadline {
    fn remaining(&self) -> Option<Duration> {
        (*self.0.borrow()).then_some(Duration::ZERO)
    }
}

/// One poll run of the configured streams under a fresh lease owner.
pub async fn poll_once(
    ports: &PollPorts,
    config: &PollConfig,
    deadline: &dyn Deadline,
) -> RunReport {
    let owner = format!("tcrelay-{}", uuid::Uuid::new_v4());
    tcrelay_poll::run(ports, config, &RunRequest::scheduled(owner), deadline).await
}

async fn poll_loop(
    ports: PollPorts,
    mut config: PollConfig,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
    counters: Arc<Counters>,
) {
    // The loop stops a run when `remaining < time_margin`; a zero margin would never stop on
    // shutdown, so keep it above zero.
    config.time_margin = config.time_margin.max(Duration::from_millis(1));
    let deadline = ShutdownDeadline(shutdown.clone());
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut soon = SoonAgain::new(config.lease);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        if *shutdown.borrow() {
            break;
        }
        // Its own task, so a panic in a run (a bug) fails that run, loudly, and the loop polls
        // again at the next tick: unwinding through the loop would end polling for good while
        // the webhook went on serving, with nothing to show for it.
        let run = tokio::spawn({
            let (ports, config, deadline) = (ports.clone(), config.clone(), deadline.clone());
            async move { poll_once(&ports, &config, &deadline).await }
        });
        let report = match run.await {
            Ok(report) => report,
            Err(join) => {
                tracing::error!(
                    reason = ended_task(join),
                    "a poll run ended abnormally; polling goes on at the next tick"
                );
                counters.record_poll_panic();
                continue;
            }
        };
        counters.record_poll(&report);
        if let Some(retry) = soon.after(&report).filter(|retry| *retry < interval) {
            ticker.reset_after(retry);
        }
    }
    tracing::info!("poll loop stopped");
}

/// How a task ended that did not return: its panic's message, or why it was cancelled.
fn ended_task(join: tokio::task::JoinError) -> String {
    if !join.is_panic() {
        return join.to_string();
    }
    let payload = join.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|m| (*m).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("it panicked: {message}")
}

/// When to poll again before the interval is up, for a run that stopped on something that
/// passes within seconds: the interval is 5 minutes by default, and all later changes of the
/// stream wait with it.
///
/// - A stream whose lease another run holds is tried again once that lease can have run out:
///   restarted right after a crash, the first run finds the dead run's lease (live for up to
///   one lease). Against a live run elsewhere this costs one lease attempt per lease, and one
///   page per stream once that run is done.
/// - A stream stopped at a state another channel is relaying (a webhook request's claim in
///   progress), or a run that failed (Tradecloud down for a while, the store unavailable), is
///   tried again after one lease, then after twice as long each time it stops so again: the
///   request is usually done within seconds (its budget is 25 s), but one that died leaves its
///   claim until the in-progress expiry (120 s); an outage may last; and each try asks
///   Tradecloud for a page.
struct SoonAgain {
    lease: Duration,
    /// The wait after the last stop at a state in progress or failed run, while they follow
    /// one another.
    backing_off: Option<Duration>,
}

impl SoonAgain {
    fn new(lease: Duration) -> Self {
        Self {
            lease,
            backing_off: None,
        }
    }

    /// The wait before the next run after `report`; `None`: the interval.
    fn after(&mut self, report: &RunReport) -> Option<Duration> {
        let stopped = |at: fn(&tcrelay_poll::StopReason) -> bool| {
            report
                .summaries()
                .iter()
                .any(|s| s.stop.as_ref().is_some_and(at))
        };
        let one_lease = self.lease + Duration::from_millis(250);
        let held = stopped(|stop| *stop == tcrelay_poll::StopReason::LeaseHeld);
        // A run stopped unsure of its lease (the store unreachable) is tried again as a failed
        // one is: the store may be back in a moment.
        if report.failed()
            || stopped(|stop| {
                matches!(
                    stop,
                    tcrelay_poll::StopReason::InProgressElsewhere { .. }
                        | tcrelay_poll::StopReason::LeaseUnsure
                )
            })
        {
            // Saturating: past the interval the wait no longer counts, but a stream that stops
            // there run after run must not overflow it (a panic ends the poll loop for good).
            let wait = self
                .backing_off
                .map_or(one_lease, |last| last.saturating_mul(2));
            self.backing_off = Some(wait);
            // A stream of the same report whose lease is held is still tried one lease later.
            return Some(if held { wait.min(one_lease) } else { wait });
        }
        self.backing_off = None;
        held.then_some(one_lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose webhook task is `http`, on a throwaway store.
    fn running(http: JoinHandle<Result<(), ServeError>>, dir: &tempfile::TempDir) -> RunningServer {
        let store = tcrelay_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap();
        RunningServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown: watch::channel(false).0,
            http: Some(http),
            poller: None,
            admin: None,
            counters: Arc::default(),
            cursors: Arc::new(store),
            limits: ServerLimits::default(),
        }
    }

    #[tokio::test]
    async fn a_server_task_that_panics_or_returns_is_reported_and_shutdown_still_completes() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = running(
            tokio::spawn(async { panic!("a semaphore may not have more than MAX_PERMITS") }),
            &dir,
        );
        let failure = tokio::time::timeout(Duration::from_secs(10), server.failed())
            .await
            .expect("the panic is noticed");
        let text = failure.to_string();
        assert!(
            text.contains("webhook") && text.contains("panicked") && text.contains("MAX_PERMITS"),
            "{text}"
        );
        // The finished task is not awaited again.
        server.shutdown().await.unwrap();

        let mut server = running(tokio::spawn(async { Ok(()) }), &dir);
        let failure = tokio::time::timeout(Duration::from_secs(10), server.failed())
            .await
            .expect("the end is noticed");
        assert!(
            matches!(
                failure,
                ServeError::Ended {
                    server: "webhook",
                    ..
                }
            ),
            "{failure}"
        );

        // While it serves, nothing is reported.
        let mut server = running(tokio::spawn(std::future::pending()), &dir);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), server.failed())
                .await
                .is_err()
        );
    }

    #[test]
    fn max_connections_is_bounded_with_the_range_named() {
        for (value, ok) in [
            ("1", true),
            ("1048576", true),
            ("0", false),
            ("1048577", false),
            ("9999999999999999999", false),
        ] {
            let env = tcrelay_core::env::env_map(&[(TCRELAY_MAX_CONNECTIONS, value)]);
            match ServerLimits::from_env_map(&env) {
                Ok(limits) => {
                    assert!(ok, "{value} accepted");
                    assert!(limits.check().is_ok());
                }
                Err(e) => {
                    assert!(!ok, "{value}: {e}");
                    // One message, from `check`, whatever the value past the range.
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "{TCRELAY_MAX_CONNECTIONS} is invalid: {value} is not between 1 and \
                             1048576"
                        )
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn start_refuses_limits_it_cannot_serve() {
        let dir = tempfile::tempdir().unwrap();
        let store = tcrelay_sqlite::SqliteStore::open(dir.path().join("l.db")).unwrap();
        let mut credentials = tcrelay_core::WebhookCredentials::new();
        credentials.add_basic("tc", "pw");
        let parts = RelayParts {
            webhook: WebhookSettings {
                credentials,
                filter: tcrelay_core::EventFilter::allow_all(),
                max_body_bytes: 1000,
                max_lines: 10,
                retry_after_seconds: 1,
                request_budget: Duration::from_secs(1),
            },
            ports: Ports::sqlite(&store),
            api: None,
            poll_api: None,
            poll: PollConfig::default(),
        };
        let err = start(
            parts,
            ServeOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                poll_interval: None,
                limits: ServerLimits {
                    max_connections: usize::MAX,
                    ..ServerLimits::default()
                },
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ServeError::Limits(_)), "{err}");
        // The same message as a value read from the environment: it names the variable.
        assert_eq!(
            err.to_string(),
            format!(
                "{TCRELAY_MAX_CONNECTIONS} is invalid: {} is not between 1 and 1048576",
                usize::MAX
            )
        );
    }

    /// Counts the pages asked for; every page is empty (nothing changed).
    #[derive(Default)]
    struct CountingApi(AtomicU64);

    #[async_trait::async_trait]
    impl PollApi for CountingApi {
        async fn fetch_page(
            &self,
            _: &tcrelay_poll::PageRequest,
        ) -> Result<tcrelay_poll::PolledPage, tcrelay_core::ports::ApiError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(tcrelay_poll::PolledPage::default())
        }
    }

    /// Panics on the first page asked for (a bug in the poll path), then answers empty pages.
    #[derive(Default)]
    struct PanicsOnce(AtomicU64);

    #[async_trait::async_trait]
    impl PollApi for PanicsOnce {
        async fn fetch_page(
            &self,
            _: &tcrelay_poll::PageRequest,
        ) -> Result<tcrelay_poll::PolledPage, tcrelay_core::ports::ApiError> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a bug in the poll path");
            }
            Ok(tcrelay_poll::PolledPage::default())
        }
    }

    /// A run that panics fails alone: the loop polls again at the next tick, counting the
    /// failure, instead of unwinding and leaving `tcrelay serve` serving webhooks with no poll.
    #[tokio::test]
    async fn a_panicking_poll_run_does_not_end_the_poll_loop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(tcrelay_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
        let api = Arc::new(PanicsOnce::default());
        let counters = Arc::new(Counters::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        let poller = tokio::spawn(poll_loop(
            poll_ports(api.clone(), store),
            orders_config(Duration::from_secs(1)),
            Duration::from_millis(200),
            shutdown_rx,
            counters.clone(),
        ));
        let started = Instant::now();
        while api.0.load(Ordering::SeqCst) < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no page asked for after the panicking run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(counters.poll_runs().0 >= 1);
        shutdown.send(true).unwrap();
        poller.await.unwrap();
    }

    /// The poll ports of `api` and `store` (cursors, dedupe and queue).
    fn poll_ports(api: Arc<dyn PollApi>, store: Arc<tcrelay_sqlite::SqliteStore>) -> PollPorts {
        PollPorts {
            api,
            cursors: store.clone(),
            dedupe: store.clone(),
            sink: store,
        }
    }

    /// Polling the orders stream from 2025 with `lease`.
    fn orders_config(lease: Duration) -> PollConfig {
        PollConfig {
            streams: vec![tcrelay_poll::PollStream::Orders],
            start: Some("2025-01-01T00:00:00.000Z".into()),
            lease,
            ..PollConfig::default()
        }
    }

    /// `tcrelay serve`'s poll loop of the orders stream on `store`, every hour (so a run
    /// sooner than that is the loop's own retry), with `lease`; stopped by the sender.
    fn hourly_poll_loop(
        api: Arc<dyn PollApi>,
        store: Arc<tcrelay_sqlite::SqliteStore>,
        lease: Duration,
    ) -> (watch::Sender<bool>, JoinHandle<()>) {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let poller = tokio::spawn(poll_loop(
            poll_ports(api, store),
            orders_config(lease),
            Duration::from_secs(3600),
            shutdown_rx,
            Arc::default(),
        ));
        (shutdown, poller)
    }

    /// A Tradecloud with one order, changed at the instant returned (epoch ms), after the
    /// start of [`orders_config`].
    fn one_order() -> (Arc<tcrelay_poll::testing::ScriptedPollApi>, i64) {
        let api = Arc::new(tcrelay_poll::testing::ScriptedPollApi::new());
        let at = 1_735_689_600_000 + 1_000;
        api.with_world(|w| {
            w.put(
                tcrelay_poll::PollStream::Orders,
                "o-1",
                at,
                tcrelay_poll::testing::order_json("o-1", 1, at, &[("l-1", at, "Issued", None)]),
            );
        });
        (api, at)
    }

    /// A poll run that stops at a state a webhook request is relaying is tried again within
    /// seconds, not a whole interval later: every later change of the stream waits with it.
    #[tokio::test]
    async fn a_state_a_webhook_was_relaying_is_polled_again_soon_after_it_is_free() {
        use tcrelay_core::ports::DedupeStore;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(tcrelay_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
        let (api, at) = one_order();
        // A webhook request relays that very state; it fails after a second and lets it go.
        let key = tcrelay_core::dedupe::state_key(
            tradecloud_model::ObjectClass::Order,
            "o-1",
            &tcrelay_poll::testing::ms_to_timestamp(at),
        );
        let webhook = store.claim(&key, false).await.unwrap();
        let token = webhook.token().cloned().expect("a fresh key");
        let (shutdown, poller) =
            hourly_poll_loop(api.clone(), store.clone(), Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(1)).await;
        DedupeStore::release(store.as_ref(), &key, &token)
            .await
            .unwrap();
        let released = Instant::now();
        while store.export(true).await.unwrap().is_empty() {
            assert!(
                released.elapsed() < Duration::from_secs(10),
                "the order is not on the queue 10 s after the webhook let it go"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.send(true).unwrap();
        poller.await.unwrap();
    }

    /// A run that failed (Tradecloud unreachable for a moment) is tried again within seconds,
    /// not a whole interval later.
    #[tokio::test]
    async fn a_failed_run_is_tried_again_soon() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(tcrelay_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
        let (api, _) = one_order();
        api.fail_next([tcrelay_core::ports::ApiError::Unavailable(
            "connection refused".into(),
        )]);
        let started = Instant::now();
        let (shutdown, poller) =
            hourly_poll_loop(api.clone(), store.clone(), Duration::from_secs(1));
        while store.export(true).await.unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the order is not on the queue 10 s after a failed run"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.send(true).unwrap();
        poller.await.unwrap();
    }

    /// `tcrelay serve` restarted right after a crash finds the dead run's lease still live on
    /// its first run: it must poll as soon as that lease runs out (within one lease), not one
    /// whole poll interval (5 minutes by default) later.
    #[tokio::test]
    async fn a_restart_that_finds_a_dead_runs_lease_polls_once_it_runs_out_not_an_interval_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(tcrelay_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap());
        let lease = Duration::from_secs(2);
        // The killed run's lease, fresh: nobody releases it.
        assert!(
            store
                .acquire("orders", "tcrelay-killed", lease)
                .await
                .unwrap()
                .is_some()
        );
        let api = Arc::new(CountingApi::default());
        let (shutdown, poller) = hourly_poll_loop(api.clone(), store.clone(), lease);
        let started = Instant::now();
        while api.0.load(Ordering::SeqCst) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no page asked for 10 s after the restart; the dead run's lease ran out after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.send(true).unwrap();
        poller.await.unwrap();
    }

    /// A report of one stream per stop given.
    fn stopped_at(stops: &[tcrelay_poll::StopReason]) -> RunReport {
        let summary = |stop: &tcrelay_poll::StopReason| {
            let mut summary =
                tcrelay_poll::StreamSummary::new(tcrelay_poll::PollStream::Orders, false);
            summary.stop = Some(stop.clone());
            summary
        };
        RunReport {
            results: stops.iter().map(summary).map(Ok).collect(),
        }
    }

    fn in_progress() -> tcrelay_poll::StopReason {
        tcrelay_poll::StopReason::InProgressElsewhere {
            key: "order:o-1:2025-01-01T00:00:01.000Z".into(),
            last_updated_at: "2025-01-01T00:00:01.000Z".into(),
        }
    }

    /// A stream that stops at a state in progress run after run (a busy webhook, every run
    /// an interval apart once the wait passed it) must not panic the poll loop: the doubled
    /// wait overflowed `Duration` after about 60 such runs, and the loop's task died with
    /// polling off for good while the webhook served on.
    #[test]
    fn many_stops_in_a_row_at_a_state_in_progress_do_not_overflow_the_wait() {
        let mut soon = SoonAgain::new(Duration::from_secs(6));
        let report = stopped_at(&[in_progress()]);
        let mut last = Duration::ZERO;
        for _ in 0..200 {
            let wait = soon.after(&report).expect("a wait");
            assert!(wait >= last);
            last = wait;
        }
    }

    /// A run that stopped unsure of its lease (its store unreachable while it worked) is tried
    /// again one lease later, backing off while it keeps stopping so, not an interval later;
    /// a run that caught up ends the back-off. A run that stopped at its bound of pages is
    /// not: the next is an interval later, as configured.
    #[test]
    fn a_run_unsure_of_its_lease_is_tried_again_soon() {
        let lease = Duration::from_secs(6);
        let mut soon = SoonAgain::new(lease);
        let unsure = stopped_at(&[tcrelay_poll::StopReason::LeaseUnsure]);
        let first = soon.after(&unsure).expect("a wait");
        assert_eq!(first, lease + Duration::from_millis(250));
        assert_eq!(soon.after(&unsure), Some(first * 2));
        assert_eq!(
            soon.after(&stopped_at(&[tcrelay_poll::StopReason::CaughtUp])),
            None
        );
        assert_eq!(soon.after(&unsure), Some(first));
        assert_eq!(
            soon.after(&stopped_at(&[tcrelay_poll::StopReason::MaxPages])),
            None
        );
    }

    /// A stream whose lease another run holds is tried one lease later even when another
    /// stream of the same report stopped at a state in progress for the third time.
    #[test]
    fn a_held_lease_is_tried_one_lease_later_beside_a_state_in_progress() {
        let lease = Duration::from_secs(6);
        let mut soon = SoonAgain::new(lease);
        for _ in 0..3 {
            soon.after(&stopped_at(&[in_progress()]));
        }
        let wait = soon
            .after(&stopped_at(&[
                in_progress(),
                tcrelay_poll::StopReason::LeaseHeld,
            ]))
            .expect("a wait");
        assert!(wait <= lease + Duration::from_millis(250), "{wait:?}");
    }
}
