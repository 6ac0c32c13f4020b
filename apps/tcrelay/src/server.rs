//! `tcrelay serve` as a library: the webhook router under `axum::serve` and the poll loop on an
//! interval, both stopping gracefully. In-flight requests finish; a poll run finishes the page
//! it is on and saves the cursor (it sees a deadline that has passed, the same way a Lambda run
//! stops before its deadline).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tcrelay_core::ports::TradecloudApi;
use tcrelay_core::{WebhookApp, WebhookSettings, webhook_router};
use tcrelay_poll::{Deadline, PollApi, PollConfig, PollPorts, RunReport, RunRequest};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::Ports;
use crate::metrics::{Counters, counted};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
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
}

/// A running relay.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    http: JoinHandle<Result<(), ServeError>>,
    poller: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
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

    /// Waits until the HTTP server and the poll loop have stopped.
    pub async fn wait(self) -> Result<(), ServeError> {
        let http = self.http.await;
        if let Some(poller) = self.poller {
            let _ = poller.await;
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

/// Binds, then serves the webhook and (when configured) runs the poll loop in the background.
pub async fn start(parts: RelayParts, options: ServeOptions) -> Result<RunningServer, ServeError> {
    let counters = Arc::new(Counters::default());
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.listen,
        source,
    })?;
    let app = WebhookApp::new(
        parts.webhook.clone(),
        Arc::clone(&parts.ports.sink),
        Arc::clone(&parts.ports.dedupe),
        Arc::clone(&parts.ports.quarantine),
        parts.api.clone(),
    );
    let router = counted(webhook_router(Arc::new(app)), Arc::clone(&counters));
    let (shutdown, shutdown_rx) = watch::channel(false);

    let mut stop = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(ServeError::Serve)
    });

    let poller = match (options.poll_interval, parts.poll_ports()) {
        (Some(interval), Some(ports)) if !interval.is_zero() && !parts.poll.streams.is_empty() => {
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
        http,
        poller,
        counters,
    })
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
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let report = poll_once(&ports, &config, &deadline).await;
        counters.record_poll(&report);
    }
    tracing::info!("poll loop stopped");
}
