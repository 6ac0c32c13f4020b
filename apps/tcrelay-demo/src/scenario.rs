//! A realistic run against the simulator, used by `tcrelay-demo` and the end-to-end tests: the
//! simulator's world changes at a steady rate and Tradecloud's webhook sender delivers through
//! every channel at once (POST JSON orders, POST tXML order documents, GET shipments by path)
//! while the poll loop runs every few seconds; faults are injected on both sides (API 429/5xx,
//! the queue unavailable for a while, duplicate deliveries, a poll run killed mid-way, a few
//! malformed requests). At the end everything is checked against the simulator's ground truth.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use tcrelay_core::WebhookSettings;
use tcrelay_core::ports::{QuarantinedRequest, TradecloudApi};
use tcrelay_poll::{NoDeadline, PollApi, PollConfig, StopReason};
use tcrelay_sqlite::SqliteStore;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};
use tradecloud_sim::{
    DeliveryOutcome, Endpoint, EventKind, Fault, FaultRule, Integration, SimConfig, Simulator,
    WebhookAuth, WebhookFormat, WebhookMethod, WebhookTarget,
};

use crate::check::{
    CheckOptions, CheckReport, GroundTruth, QueuedMessage, check, check_quarantine,
};
use crate::faults::{SlowDedupe, SwitchableSink};
use tcrelay::Ports;
use tcrelay::metrics::{Channel, Counters};
use tcrelay::server::{RelayParts, ServeOptions, poll_once, start};
use tcrelay::settings::{Backend, Settings};
use tcrelay_tradecloud::{ClientApi, ClientPollApi};

/// Why a scenario could not run (as opposed to running and failing its check).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The simulator did not start or refused a target.
    #[error("simulator: {0}")]
    Sim(#[from] tradecloud_sim::SimError),
    /// The relay's settings were refused.
    #[error("settings: {0}")]
    Settings(#[from] tcrelay_core::ConfigError),
    /// The relay did not start.
    #[error("relay: {0}")]
    Serve(#[from] tcrelay::ServeError),
    /// The Tradecloud client could not be built.
    #[error("Tradecloud client: {0}")]
    Client(String),
    /// The queue or quarantine could not be read back.
    #[error("reading the queue: {0}")]
    Read(String),
    /// A malformed request was not answered as expected.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Reads back what the relay wrote, for the check.
#[async_trait]
pub trait QueueReader: Send + Sync {
    /// Every envelope, in queue order.
    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, String>;
    /// Every quarantined request.
    async fn quarantined(&self) -> Result<Vec<QuarantinedRequest>, String>;
}

#[async_trait]
impl QueueReader for SqliteStore {
    async fn envelopes(&self) -> Result<Vec<QueuedMessage>, String> {
        self.export(true)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|q| {
                q.envelope()
                    .map_err(|e| e.to_string())
                    .map(|envelope| QueuedMessage {
                        position: q.id,
                        envelope,
                    })
            })
            .collect()
    }

    async fn quarantined(&self) -> Result<Vec<QuarantinedRequest>, String> {
        Ok(self
            .quarantine_list(0, usize::MAX)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| e.request)
            .collect())
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ScenarioOptions {
    /// Seed of the world, the duplicates and the faults.
    pub seed: u64,
    /// How long changes keep coming.
    pub duration: Duration,
    /// Changes (events) to make over the duration, about.
    pub changes: usize,
    /// Time between poll runs.
    pub poll_interval: Duration,
    /// Take the queue down for a while (from 30 % to 45 % of the duration).
    pub queue_outage: bool,
    /// Make the queue stall from 50 % of the duration for [`Self::stall_length`], longer than
    /// the webhook's request budget: requests are answered 503 in time while their sends go
    /// on, and the objects' order and "exactly once" still hold (docs/design.md, "Order per
    /// object").
    pub queue_stall: bool,
    /// The webhook's request budget (`TCRELAY_REQUEST_BUDGET_MS`).
    pub request_budget: Duration,
    /// Slow the dedupe store down from 65 % to 80 % of the duration: every call takes a third
    /// of the request budget, so requests run out of time between their steps and their
    /// completions go on after the answer.
    pub dedupe_slow: bool,
    /// Start a poll run and kill it mid-way.
    pub kill_a_poll_run: bool,
    /// Probability that the sender delivers a message twice.
    pub duplicate_rate: f64,
    /// Print progress lines.
    pub progress: bool,
    /// How long to wait for the webhook sender to drain at the end.
    pub drain_timeout: Duration,
    /// Check per-object order within each channel (the queue must keep order: SQLite does, a
    /// standard SQS queue does not).
    pub check_order: bool,
}

impl ScenarioOptions {
    /// How long the queue stalls when [`Self::queue_stall`] is on: twice the request budget,
    /// so requests run out of time and Tradecloud's retries meet the sends still held. It
    /// also ends with the changes.
    pub fn stall_length(&self) -> Duration {
        self.request_budget * 2
    }

    /// The demo's defaults for a duration and seed: about 20 changes a second.
    pub fn demo(duration: Duration, seed: u64) -> Self {
        Self {
            seed,
            duration,
            changes: (duration.as_secs_f64() * 20.0).round() as usize,
            poll_interval: Duration::from_secs(3),
            queue_outage: true,
            // Off in the demo: with the default budget the stall would take most of a short
            // demo. The end-to-end tests switch it on with a short budget.
            queue_stall: false,
            request_budget: Duration::from_millis(tcrelay_core::config::DEFAULT_REQUEST_BUDGET_MS),
            dedupe_slow: false,
            kill_a_poll_run: true,
            duplicate_rate: 0.05,
            progress: true,
            drain_timeout: Duration::from_secs(120),
            check_order: true,
        }
    }
}

/// The outcome: counts, the check and the quarantine comparison.
#[derive(Debug)]
pub struct ScenarioReport {
    /// Changes the simulator made (initial orders and shipments included).
    pub changes: usize,
    /// Changes per kind: orders, order documents, shipments.
    pub changes_by_kind: [usize; 3],
    /// Webhook deliveries (deliberate duplicates included) and how many ended 2xx.
    pub deliveries: (usize, usize),
    /// Deliberate duplicate deliveries the sender made.
    pub duplicate_deliveries: usize,
    /// HTTP attempts the sender made (retries included).
    pub attempts: usize,
    /// Answers the sender got with 503 (queue down) or other 5xx.
    pub retried_answers: usize,
    /// Per channel counts.
    pub channels: Vec<(Channel, tcrelay::metrics::ChannelCounts)>,
    /// Poll runs and pages (final catch-up runs included).
    pub poll_runs: (u64, u64),
    /// Envelopes on the queue.
    pub enqueued: usize,
    /// Requests in the quarantine.
    pub quarantined: usize,
    /// Whether a poll run was killed while running.
    pub poll_run_killed: bool,
    /// Batches that reached the queue while it stalled (their requests ran out of time).
    pub stalled_sends: u64,
    /// Dedupe store calls slowed down.
    pub slowed_dedupe_calls: u64,
    /// API faults the simulator injected (answers 429/5xx).
    pub api_faults: usize,
    /// The ground-truth check.
    pub check: CheckReport,
    /// The quarantine holds exactly the malformed requests sent.
    pub quarantine: Result<(), String>,
    /// The queue, as read for the check.
    pub queue: Vec<QueuedMessage>,
    /// The simulator's ground truth at the end.
    pub truth: GroundTruth,
}

impl ScenarioReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.check.passed() && self.quarantine.is_ok()
    }

    /// The summary table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let [orders, docs, shipments] = self.changes_by_kind;
        let _ = writeln!(
            out,
            "\nchanges made in the simulator: {} (order events {orders}, order documents {docs}, shipment events {shipments})",
            self.changes
        );
        let _ = writeln!(
            out,
            "webhook deliveries: {} ({} answered 2xx, {} deliberate duplicates), {} HTTP attempts, {} answered 5xx and retried",
            self.deliveries.0,
            self.deliveries.1,
            self.duplicate_deliveries,
            self.attempts,
            self.retried_answers
        );
        let _ = writeln!(
            out,
            "API faults injected: {}; sends held by the stalled queue: {}; dedupe calls slowed: {}; poll runs: {} ({} pages){}",
            self.api_faults,
            self.stalled_sends,
            self.slowed_dedupe_calls,
            self.poll_runs.0,
            self.poll_runs.1,
            if self.poll_run_killed {
                ", one killed mid-way"
            } else {
                ""
            }
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>9} {:>11} {:>9} {:>12} {:>13}",
            "channel",
            "received",
            "enqueued",
            "duplicates",
            "filtered",
            "refused 4xx",
            "503 / failed"
        );
        let mut total = tcrelay::metrics::ChannelCounts::default();
        for (channel, c) in &self.channels {
            let _ = writeln!(
                out,
                "{:<10} {:>9} {:>9} {:>11} {:>9} {:>12} {:>13}",
                channel.as_str(),
                c.received,
                c.enqueued,
                c.duplicates,
                c.filtered,
                c.refused,
                c.unavailable
            );
            total.received += c.received;
            total.enqueued += c.enqueued;
            total.duplicates += c.duplicates;
            total.filtered += c.filtered;
            total.refused += c.refused;
            total.unavailable += c.unavailable;
        }
        let _ = writeln!(
            out,
            "{:<10} {:>9} {:>9} {:>11} {:>9} {:>12} {:>13}",
            "total",
            total.received,
            total.enqueued,
            total.duplicates,
            total.filtered,
            total.refused,
            total.unavailable
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "on the queue: {} envelopes", self.enqueued);
        let _ = writeln!(
            out,
            "quarantined: {} ({})",
            self.quarantined,
            match &self.quarantine {
                Ok(()) => "exactly the malformed requests sent".to_owned(),
                Err(e) => format!("MISMATCH: {e}"),
            }
        );
        let _ = writeln!(out, "ground-truth check: {}", self.check);
        out
    }
}

/// The webhook credentials the simulated Tradecloud uses.
const WEBHOOK_USER: &str = "tradecloud";

/// Runs the scenario with the given ports and reader. `settings_env` is extra environment for
/// the relay (the scenario adds the simulator's URL, login, webhook credentials and poll
/// settings).
pub async fn run(
    options: &ScenarioOptions,
    ports: Ports,
    reader: &dyn QueueReader,
) -> Result<ScenarioReport, ScenarioError> {
    // On a terminal the progress line is rewritten in place (one line, not one every two
    // seconds); into a file or a pipe each is a line of its own.
    let in_place = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let progress_shown = std::sync::atomic::AtomicBool::new(false);
    let say = |line: String| {
        if options.progress {
            if progress_shown.swap(false, std::sync::atomic::Ordering::Relaxed) {
                println!();
            }
            println!("{line}");
        }
    };
    let progress = |line: String| {
        if !options.progress {
            return;
        }
        if in_place {
            use std::io::Write as _;
            print!("\r{line}\x1b[K");
            let _ = std::io::stdout().flush();
            progress_shown.store(true, std::sync::atomic::Ordering::Relaxed);
        } else {
            println!("{line}");
        }
    };
    let mut sim_config = SimConfig::seeded(options.seed);
    sim_config.world.initial_orders = 40;
    sim_config.world.initial_shipments = 10;
    sim_config.fault_seed = options.seed;
    let sim = Simulator::start(sim_config).await?;
    let start_time = tradecloud_model::timestamp::format(
        sim.changes()
            .first()
            .and_then(|c| tradecloud_model::timestamp::parse(&c.last_updated_at).ok())
            .unwrap_or_default()
            - chrono::Duration::minutes(1),
    );
    let webhook_password = format!("demo-{}", uuid::Uuid::new_v4().simple());

    let env: HashMap<String, String> = [
        ("TRADECLOUD_API_URL", sim.base_url()),
        ("TRADECLOUD_USERNAME", sim.username().to_owned()),
        ("TRADECLOUD_PASSWORD", sim.password().to_owned()),
        (
            "TCRELAY_WEBHOOK_BASIC",
            format!("{WEBHOOK_USER}:{webhook_password}"),
        ),
        // A realistic filter: this ERP does not want the buyer's resends.
        ("TCRELAY_EVENT_DENY", "OrderResentByBuyer".to_owned()),
        ("TCRELAY_RETRY_AFTER_SECONDS", "1".to_owned()),
        (
            "TCRELAY_REQUEST_BUDGET_MS",
            options.request_budget.as_millis().to_string(),
        ),
        ("TCRELAY_POLL_STREAMS", "orders,shipments".to_owned()),
        ("TCRELAY_POLL_START", start_time),
        // Short, so the lease of the killed run expires within the scenario.
        ("TCRELAY_POLL_LEASE_SECONDS", "4".to_owned()),
        ("TCRELAY_POLL_TIME_MARGIN_SECONDS", "1".to_owned()),
        // A claim of a request cut off by the outage or the kill expires quickly.
        ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let settings = Settings::from_env_map(&env, Backend::Sqlite)?;

    let mut client_config = ClientConfig::new(
        sim.base_url(),
        Credentials::new(sim.username(), sim.password()),
    );
    // The simulator has no rate limit; Tradecloud's 10/s would make GET webhooks the
    // bottleneck of a 30-second demo. `serve` keeps the default.
    client_config.max_requests_per_second = 100;
    client_config.backoff_initial = Duration::from_millis(50);
    client_config.backoff_max = Duration::from_millis(500);
    let client =
        TradecloudClient::new(client_config).map_err(|e| ScenarioError::Client(e.to_string()))?;

    let sink = Arc::new(SwitchableSink::new(Arc::clone(&ports.sink)));
    let dedupe = Arc::new(SlowDedupe::new(Arc::clone(&ports.dedupe)));
    let ports = Ports {
        sink: sink.clone(),
        dedupe: dedupe.clone(),
        ..ports
    };
    let parts = RelayParts {
        webhook: WebhookSettings::from(&settings.webhook),
        ports,
        api: Some(Arc::new(ClientApi(client.clone())) as Arc<dyn TradecloudApi>),
        poll_api: Some(Arc::new(ClientPollApi(client)) as Arc<dyn PollApi>),
        poll: settings.poll.clone(),
    };
    let server = start(
        parts.clone(),
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: Some(options.poll_interval),
            limits: settings.server,
        },
    )
    .await?;
    let addr = server.local_addr();
    let counters = server.counters();
    say(format!(
        "relay listening on http://{addr}/webhook, simulator on {}",
        sim.base_url()
    ));

    let auth = WebhookAuth::Basic {
        username: WEBHOOK_USER.into(),
        password: webhook_password.clone(),
    };
    let targets = [
        WebhookTarget {
            integration: Integration::Orders,
            format: WebhookFormat::Json,
            auth: auth.clone(),
            duplicate_rate: options.duplicate_rate,
            seed: options.seed,
            ..WebhookTarget::new(format!("http://{addr}/webhook/orders"))
        },
        WebhookTarget {
            integration: Integration::OrderDocuments,
            format: WebhookFormat::Txml,
            auth: auth.clone(),
            duplicate_rate: options.duplicate_rate,
            seed: options.seed + 1,
            ..WebhookTarget::new(format!("http://{addr}/webhook/order-documents"))
        },
        WebhookTarget {
            integration: Integration::Shipments,
            method: WebhookMethod::Get,
            auth: auth.clone(),
            duplicate_rate: options.duplicate_rate,
            seed: options.seed + 2,
            ..WebhookTarget::new(format!("http://{addr}/webhook/shipments/{{shipmentId}}"))
        },
    ];
    for target in targets {
        sim.add_webhook(target)?;
    }
    say("webhooks: POST JSON orders, POST tXML order documents, GET shipments by path; polling orders and shipments".into());

    // API faults: a few 429s and 5xx on the poll and fetch endpoints, throughout.
    for (endpoints, fault, rate) in [
        (
            vec![Endpoint::OrderPoll, Endpoint::ShipmentPoll],
            Fault::TooManyRequests {
                retry_after_secs: 0,
            },
            0.1,
        ),
        (
            vec![Endpoint::OrderPoll, Endpoint::ShipmentGet],
            Fault::Status { status: 503 },
            0.05,
        ),
        (
            vec![Endpoint::ShipmentGet],
            Fault::Status { status: 500 },
            0.03,
        ),
    ] {
        sim.add_fault(FaultRule {
            endpoints,
            fault,
            rate,
            count: Some(10),
        });
    }
    // Objects change while the poller pages.
    sim.set_changes_per_poll(1);

    let started = Instant::now();
    let tick = Duration::from_millis(200);
    let ticks = (options.duration.as_millis() / tick.as_millis()).max(1) as usize;
    let mut made = 0usize;
    let mut outage = false;
    let mut stall_started: Option<Duration> = None;
    let mut malformed_sent = Vec::new();
    let mut killed = false;
    let mut next_progress = Duration::ZERO;
    for t in 0..ticks {
        let elapsed = started.elapsed();
        let frac = t as f64 / ticks as f64;
        // Spread the changes evenly over the ticks left.
        let due = ((options.changes as f64) * ((t + 1) as f64 / ticks as f64)).round() as usize;
        while made < due {
            let changes = sim.advance(1)?;
            made += changes.len().max(1);
        }
        if options.queue_outage && !outage && (0.3..0.45).contains(&frac) {
            outage = true;
            sink.set_down(true);
            say(format!(
                "{:>5.1}s  queue unavailable: the webhook answers 503, Tradecloud retries",
                elapsed.as_secs_f64()
            ));
        }
        if outage && sink.is_down() && frac >= 0.45 {
            sink.set_down(false);
            say(format!(
                "{:>5.1}s  queue available again ({} batches refused)",
                elapsed.as_secs_f64(),
                sink.refused()
            ));
        }
        if options.queue_stall && stall_started.is_none() && frac >= 0.5 {
            stall_started = Some(elapsed);
            sink.set_stalled(true);
            say(format!(
                "{:>5.1}s  queue stalls: requests run out of their budget and are answered 503",
                elapsed.as_secs_f64()
            ));
        }
        if let Some(at) = stall_started
            && sink.is_stalled()
            && elapsed >= at + options.stall_length()
        {
            sink.set_stalled(false);
            say(format!(
                "{:>5.1}s  queue answers again ({} batches held meanwhile)",
                elapsed.as_secs_f64(),
                sink.held()
            ));
        }
        let slow = options.dedupe_slow && (0.65..0.8).contains(&frac);
        if slow != dedupe.delay().is_some() {
            dedupe.set_delay(slow.then(|| options.request_budget / 3));
            say(format!(
                "{:>5.1}s  {}",
                elapsed.as_secs_f64(),
                if slow {
                    "dedupe store slows down: requests run out of time between their steps"
                } else {
                    "dedupe store at full speed again"
                }
            ));
        }
        if malformed_sent.is_empty() && frac >= 0.5 {
            malformed_sent = send_malformed(addr, &webhook_password).await?;
            say(format!(
                "{:>5.1}s  sent {} malformed requests (expect 400 and quarantine)",
                elapsed.as_secs_f64(),
                malformed_sent.len()
            ));
        }
        if options.kill_a_poll_run && !killed && frac >= 0.6 {
            killed = kill_a_poll_run(&parts, &settings.poll).await;
            say(format!(
                "{:>5.1}s  {}",
                elapsed.as_secs_f64(),
                if killed {
                    "killed a poll run mid-way (its lease expires, the next run continues from the cursor)"
                } else {
                    "a poll run finished before it could be killed"
                }
            ));
        }
        if elapsed >= next_progress {
            next_progress += Duration::from_secs(2);
            progress(progress_line(elapsed, &sim, &counters));
        }
        let next = tick * (t as u32 + 1);
        if let Some(wait) = next.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    if sink.is_down() {
        sink.set_down(false);
    }
    if sink.is_stalled() {
        sink.set_stalled(false);
    }
    dedupe.set_delay(None);
    if options.kill_a_poll_run && !killed {
        killed = kill_a_poll_run(&parts, &settings.poll).await;
    }
    if malformed_sent.is_empty() {
        malformed_sent = send_malformed(addr, &webhook_password).await?;
    }

    say(format!(
        "{:>5.1}s  changes stopped; waiting for the webhook sender to drain",
        started.elapsed().as_secs_f64()
    ));
    sim.set_changes_per_poll(0);
    if !sim.wait_webhooks_idle(options.drain_timeout).await {
        say("the webhook sender did not drain in time; the check will show what is missing".into());
    }
    sim.clear_faults();
    // Graceful stop: a running poll run finishes its page and saves the cursor.
    server.shutdown().await?;
    // Catch up: poll until every stream is caught up (the killed run's lease may still hold).
    if let Some(poll_ports) = parts.poll_ports() {
        for _ in 0..20 {
            let report = poll_once(&poll_ports, &settings.poll, &NoDeadline).await;
            counters.record_poll(&report);
            let caught_up = report
                .results
                .iter()
                .all(|r| matches!(r, Ok(s) if s.stop == Some(StopReason::CaughtUp)));
            if caught_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    progress(progress_line(started.elapsed(), &sim, &counters));
    if progress_shown.load(std::sync::atomic::Ordering::Relaxed) {
        println!();
    }

    let truth = GroundTruth::from_simulator(&sim);
    let queue = reader.envelopes().await.map_err(ScenarioError::Read)?;
    let kept = reader.quarantined().await.map_err(ScenarioError::Read)?;
    let report = check(
        &truth,
        &queue,
        &CheckOptions {
            filter: settings.webhook.filter.clone(),
            check_order: options.check_order,
        },
    );
    let quarantine = check_quarantine(&kept, &malformed_sent);
    let mut by_kind = [0usize; 3];
    for c in &truth.changes {
        by_kind[match c.kind {
            EventKind::Order => 0,
            EventKind::OrderDocuments => 1,
            EventKind::Shipment => 2,
        }] += 1;
    }
    let api_faults = sim
        .api_requests()
        .iter()
        .filter(|r| r.fault && (r.status == 429 || r.status >= 500))
        .count();
    let out = ScenarioReport {
        changes: truth.changes.len(),
        changes_by_kind: by_kind,
        deliveries: (
            truth.deliveries.len(),
            truth
                .deliveries
                .iter()
                .filter(|d| d.outcome == DeliveryOutcome::Delivered)
                .count(),
        ),
        duplicate_deliveries: truth.deliveries.iter().filter(|d| d.duplicate).count(),
        attempts: truth.deliveries.iter().map(|d| d.attempts.len()).sum(),
        retried_answers: truth
            .deliveries
            .iter()
            .flat_map(|d| &d.attempts)
            .filter(|a| a.status.is_some_and(|s| s > 500))
            .count(),
        channels: Channel::ALL
            .iter()
            .map(|&c| (c, counters.channel(c)))
            .collect(),
        poll_runs: counters.poll_runs(),
        enqueued: queue.len(),
        quarantined: kept.len(),
        poll_run_killed: killed,
        stalled_sends: sink.held(),
        slowed_dedupe_calls: dedupe.delayed(),
        api_faults,
        check: report,
        quarantine,
        queue,
        truth,
    };
    sim.shutdown().await;
    Ok(out)
}

fn progress_line(elapsed: Duration, sim: &Simulator, counters: &Counters) -> String {
    let deliveries = sim.deliveries();
    let delivered = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Delivered)
        .count();
    let pending = deliveries
        .iter()
        .filter(|d| d.outcome == DeliveryOutcome::Pending)
        .count();
    let c = |ch| counters.channel(ch).enqueued;
    format!(
        "{:>5.1}s  changes {:>5}  delivered {:>5} (pending {:>4})  enqueued {:>5} = POST JSON {} + POST tXML {} + GET {} + poll {}",
        elapsed.as_secs_f64(),
        sim.changes().len(),
        delivered,
        pending,
        counters.total().enqueued,
        c(Channel::PostJson),
        c(Channel::PostTxml),
        c(Channel::Get),
        c(Channel::Poll),
    )
}

/// Starts a poll run beside the server's loop and aborts it while it runs (a crash mid-run).
/// Returns whether it was still running when killed.
async fn kill_a_poll_run(parts: &RelayParts, poll: &PollConfig) -> bool {
    let Some(ports) = parts.poll_ports() else {
        return false;
    };
    let config = poll.clone();
    let run = tokio::spawn(async move { poll_once(&ports, &config, &NoDeadline).await });
    tokio::time::sleep(Duration::from_millis(40)).await;
    let running = !run.is_finished();
    run.abort();
    running
}

/// Authenticated requests the webhook must refuse with 400 and quarantine. Returns their bodies.
async fn send_malformed(addr: SocketAddr, password: &str) -> Result<Vec<Vec<u8>>, ScenarioError> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| ScenarioError::Malformed(e.to_string()))?;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{WEBHOOK_USER}:{password}"))
    );
    let requests: [(&str, &str, &[u8]); 3] = [
        (
            "/webhook/orders",
            "application/json",
            br#"{"eventName":"OrderIssuedByBuyer","orderEvent":{"#,
        ),
        (
            "/webhook/order-documents",
            "application/xml",
            b"<tXML><orderDocumentsEvent>",
        ),
        (
            "/webhook/orders",
            "application/json",
            br#"{"eventName":"OrderIssuedByBuyer"}"#,
        ),
    ];
    let mut sent = Vec::new();
    for (path, content_type, body) in requests {
        let response = client
            .post(format!("http://{addr}{path}"))
            .header("authorization", &auth)
            .header("content-type", content_type)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| ScenarioError::Malformed(e.to_string()))?;
        if response.status() != reqwest::StatusCode::BAD_REQUEST {
            return Err(ScenarioError::Malformed(format!(
                "{path} with {:?} was answered {} instead of 400",
                String::from_utf8_lossy(body),
                response.status()
            )));
        }
        sent.push(body.to_vec());
    }
    Ok(sent)
}
