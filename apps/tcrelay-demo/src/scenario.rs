//! A realistic run against the simulator, used by `tcrelay-demo` and the end-to-end tests: the
//! simulator's world changes at a steady rate and Tradecloud's webhook sender delivers through
//! every channel at once (POST JSON orders, POST tXML order documents, GET shipments by path)
//! while the poll loop runs every few seconds; faults are injected on both sides (API 429/5xx,
//! the queue unavailable for a while, duplicate deliveries, a poll run killed mid-way, a few
//! malformed requests). At the end everything is checked against the simulator's ground truth.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
use tcrelay::server::{RelayParts, RunningServer, ServeOptions, poll_once, start};
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
            // Off in the demo: the stall would take most of a short demo. The end-to-end
            // tests switch it on.
            queue_stall: false,
            // Below the demo's 5 s in-progress expiry, as the relay requires
            // (`DedupeTimings::check_outlives`): the default 25 s budget would need claims
            // that outlive it, and a request cut off by the outage or the kill would then hold
            // its claim for most of a short demo.
            request_budget: Duration::from_secs(4),
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

/// Runs the scenario: the relay on `ports` (its settings built by the scenario: the
/// simulator's URL, login, webhook credentials and poll settings), the simulator's changes and
/// faults, then the ground-truth check of what `reader` finds on the queue.
pub async fn run(
    options: &ScenarioOptions,
    ports: Ports,
    reader: &dyn QueueReader,
) -> Result<ScenarioReport, ScenarioError> {
    let out = Progress::new(options.progress);
    let sim = start_simulator(options).await?;
    let webhook_password = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let settings = relay_settings(options, &sim, &webhook_password)?;
    let (server, relay) = start_relay(options, &sim, &settings, ports).await?;
    out.say(format!(
        "relay listening on http://{}/webhook, simulator on {}",
        relay.addr,
        sim.base_url()
    ));
    let scenario = Scenario {
        options,
        out,
        sim,
        settings,
        webhook_password,
        relay,
    };
    scenario.add_webhooks()?;
    scenario.add_api_faults();
    let started = Instant::now();
    let faults = scenario.drive_changes(started).await?;
    scenario.drain_and_stop(server, started).await?;
    scenario.gather_report(reader, faults).await
}

/// The progress output: event lines, and a progress line that on a terminal is rewritten in
/// place (one line, not one every two seconds); into a file or a pipe each is a line of its own.
struct Progress {
    enabled: bool,
    in_place: bool,
    /// A progress line was written in place and not ended yet.
    shown: AtomicBool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            in_place: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            shown: AtomicBool::new(false),
        }
    }

    /// An event line (it ends a progress line written in place first).
    fn say(&self, line: String) {
        if self.enabled {
            if self.shown.swap(false, Ordering::Relaxed) {
                println!();
            }
            println!("{line}");
        }
    }

    /// An event line stamped with the time since the changes started.
    fn say_at(&self, elapsed: Duration, what: &str) {
        self.say(format!("{:>5.1}s  {what}", elapsed.as_secs_f64()));
    }

    fn progress(&self, line: String) {
        if !self.enabled {
            return;
        }
        if self.in_place {
            use std::io::Write as _;
            print!("\r{line}\x1b[K");
            let _ = std::io::stdout().flush();
            self.shown.store(true, Ordering::Relaxed);
        } else {
            println!("{line}");
        }
    }

    /// Ends a progress line written in place.
    fn finish(&self) {
        if self.shown.load(Ordering::Relaxed) {
            println!();
        }
    }
}

async fn start_simulator(options: &ScenarioOptions) -> Result<Simulator, ScenarioError> {
    let mut sim_config = SimConfig::seeded(options.seed);
    sim_config.world.initial_orders = 40;
    sim_config.world.initial_shipments = 10;
    sim_config.fault_seed = options.seed;
    Ok(Simulator::start(sim_config).await?)
}

/// The relay's settings, as `tcrelay serve` would read them from the environment.
fn relay_settings(
    options: &ScenarioOptions,
    sim: &Simulator,
    webhook_password: &str,
) -> Result<Settings, ScenarioError> {
    let start_time = tradecloud_model::timestamp::format(
        sim.changes()
            .first()
            .and_then(|c| tradecloud_model::timestamp::parse(&c.last_updated_at).ok())
            .unwrap_or_default()
            - chrono::Duration::minutes(1),
    );
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
    // The rule `tcrelay serve` and the webhook Lambda enforce at start: a scenario whose claims
    // could expire while their requests still send would show duplicates the relay refuses to
    // risk.
    settings.dedupe.check_outlives(&settings.webhook)?;
    Ok(settings)
}

/// The relay as the scenario drives it once started.
struct Relay {
    /// For the extra poll runs (the killed one, the catch-up).
    parts: RelayParts,
    addr: SocketAddr,
    counters: Arc<Counters>,
    /// The fault switches around the given sink and dedupe store.
    sink: Arc<SwitchableSink>,
    dedupe: Arc<SlowDedupe>,
}

/// Starts the relay on a free local port, its sink and dedupe store wrapped in fault switches.
async fn start_relay(
    options: &ScenarioOptions,
    sim: &Simulator,
    settings: &Settings,
    ports: Ports,
) -> Result<(RunningServer, Relay), ScenarioError> {
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
    let relay = Relay {
        parts,
        addr: server.local_addr(),
        counters: server.counters(),
        sink,
        dedupe,
    };
    Ok((server, relay))
}

/// What the phases after the start share.
struct Scenario<'a> {
    options: &'a ScenarioOptions,
    out: Progress,
    sim: Simulator,
    settings: Settings,
    webhook_password: String,
    relay: Relay,
}

/// The faults' state while the changes run, and what the report needs of it.
#[derive(Default)]
struct Faults {
    /// The queue outage was switched on (it is switched off at 45 % of the duration).
    outage: bool,
    /// When the queue started to stall.
    stall_started: Option<Duration>,
    /// The bodies of the malformed requests sent.
    malformed_sent: Vec<Vec<u8>>,
    /// A poll run was killed while running.
    killed: bool,
}

impl Scenario<'_> {
    /// Tradecloud's webhook sender delivers through every channel at once.
    fn add_webhooks(&self) -> Result<(), ScenarioError> {
        let addr = self.relay.addr;
        let options = self.options;
        let auth = WebhookAuth::Basic {
            username: WEBHOOK_USER.into(),
            password: self.webhook_password.clone(),
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
            self.sim.add_webhook(target)?;
        }
        self.out.say("webhooks: POST JSON orders, POST tXML order documents, GET shipments by path; polling orders and shipments".into());
        Ok(())
    }

    /// The API side's faults, for the whole run.
    fn add_api_faults(&self) {
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
            self.sim.add_fault(FaultRule {
                endpoints,
                fault,
                rate,
                count: Some(10),
            });
        }
        // Objects change while the poller pages.
        self.sim.set_changes_per_poll(1);
    }

    /// Makes the changes in ticks of 200 ms over the duration, switching the relay's faults on
    /// and off on the way; then switches them all off.
    async fn drive_changes(&self, started: Instant) -> Result<Faults, ScenarioError> {
        let tick = Duration::from_millis(200);
        let ticks = (self.options.duration.as_millis() / tick.as_millis()).max(1) as usize;
        let mut made = 0usize;
        let mut faults = Faults::default();
        let mut next_progress = Duration::ZERO;
        for t in 0..ticks {
            let elapsed = started.elapsed();
            let frac = t as f64 / ticks as f64;
            // Spread the changes evenly over the ticks left.
            let due =
                ((self.options.changes as f64) * ((t + 1) as f64 / ticks as f64)).round() as usize;
            while made < due {
                let changes = self.sim.advance(1)?;
                made += changes.len().max(1);
            }
            self.switch_faults(&mut faults, frac, elapsed).await?;
            if elapsed >= next_progress {
                next_progress += Duration::from_secs(2);
                self.out
                    .progress(progress_line(elapsed, &self.sim, &self.relay.counters));
            }
            let next = tick * (t as u32 + 1);
            if let Some(wait) = next.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        self.end_faults(&mut faults).await?;
        Ok(faults)
    }

    /// Switches the relay's faults on and off by `frac`, the part of the duration gone.
    async fn switch_faults(
        &self,
        faults: &mut Faults,
        frac: f64,
        elapsed: Duration,
    ) -> Result<(), ScenarioError> {
        self.switch_queue_outage(faults, frac, elapsed);
        self.switch_queue_stall(faults, frac, elapsed);
        self.switch_dedupe_slowness(frac, elapsed);
        if faults.malformed_sent.is_empty() && frac >= 0.5 {
            faults.malformed_sent = send_malformed(self.relay.addr, &self.webhook_password).await?;
            self.out.say_at(
                elapsed,
                &format!(
                    "sent {} malformed requests (expect 400 and quarantine)",
                    faults.malformed_sent.len()
                ),
            );
        }
        if self.options.kill_a_poll_run && !faults.killed && frac >= 0.6 {
            faults.killed = kill_a_poll_run(&self.relay.parts, &self.settings.poll).await;
            self.out.say_at(
                elapsed,
                if faults.killed {
                    "killed a poll run mid-way (its lease expires, the next run continues from the cursor)"
                } else {
                    "a poll run finished before it could be killed"
                },
            );
        }
        Ok(())
    }

    /// The queue is down from 30 % to 45 % of the duration.
    fn switch_queue_outage(&self, faults: &mut Faults, frac: f64, elapsed: Duration) {
        let sink = &self.relay.sink;
        if self.options.queue_outage && !faults.outage && (0.3..0.45).contains(&frac) {
            faults.outage = true;
            sink.set_down(true);
            self.out.say_at(
                elapsed,
                "queue unavailable: the webhook answers 503, Tradecloud retries",
            );
        }
        if faults.outage && sink.is_down() && frac >= 0.45 {
            sink.set_down(false);
            self.out.say_at(
                elapsed,
                &format!("queue available again ({} batches refused)", sink.refused()),
            );
        }
    }

    /// The queue stalls from 50 % of the duration for [`ScenarioOptions::stall_length`].
    fn switch_queue_stall(&self, faults: &mut Faults, frac: f64, elapsed: Duration) {
        let sink = &self.relay.sink;
        if self.options.queue_stall && faults.stall_started.is_none() && frac >= 0.5 {
            faults.stall_started = Some(elapsed);
            sink.set_stalled(true);
            self.out.say_at(
                elapsed,
                "queue stalls: requests run out of their budget and are answered 503",
            );
        }
        if let Some(at) = faults.stall_started
            && sink.is_stalled()
            && elapsed >= at + self.options.stall_length()
        {
            sink.set_stalled(false);
            self.out.say_at(
                elapsed,
                &format!(
                    "queue answers again ({} batches held meanwhile)",
                    sink.held()
                ),
            );
        }
    }

    /// The dedupe store is slow from 65 % to 80 % of the duration.
    fn switch_dedupe_slowness(&self, frac: f64, elapsed: Duration) {
        let dedupe = &self.relay.dedupe;
        let slow = self.options.dedupe_slow && (0.65..0.8).contains(&frac);
        if slow != dedupe.delay().is_some() {
            dedupe.set_delay(slow.then(|| self.options.request_budget / 3));
            self.out.say_at(
                elapsed,
                if slow {
                    "dedupe store slows down: requests run out of time between their steps"
                } else {
                    "dedupe store at full speed again"
                },
            );
        }
    }

    /// When the changes stop: every fault off, and the one-off faults a short run ended before
    /// reaching are injected now.
    async fn end_faults(&self, faults: &mut Faults) -> Result<(), ScenarioError> {
        let sink = &self.relay.sink;
        if sink.is_down() {
            sink.set_down(false);
        }
        if sink.is_stalled() {
            sink.set_stalled(false);
        }
        self.relay.dedupe.set_delay(None);
        if self.options.kill_a_poll_run && !faults.killed {
            faults.killed = kill_a_poll_run(&self.relay.parts, &self.settings.poll).await;
        }
        if faults.malformed_sent.is_empty() {
            faults.malformed_sent = send_malformed(self.relay.addr, &self.webhook_password).await?;
        }
        Ok(())
    }

    /// Waits for the webhook sender to drain, stops the relay and polls until caught up.
    async fn drain_and_stop(
        &self,
        server: RunningServer,
        started: Instant,
    ) -> Result<(), ScenarioError> {
        self.out.say_at(
            started.elapsed(),
            "changes stopped; waiting for the webhook sender to drain",
        );
        self.sim.set_changes_per_poll(0);
        if !self
            .sim
            .wait_webhooks_idle(self.options.drain_timeout)
            .await
        {
            self.out.say(
                "the webhook sender did not drain in time; the check will show what is missing"
                    .into(),
            );
        }
        self.sim.clear_faults();
        // Graceful stop: a running poll run finishes its page and saves the cursor.
        server.shutdown().await?;
        self.catch_up().await;
        self.out.progress(progress_line(
            started.elapsed(),
            &self.sim,
            &self.relay.counters,
        ));
        self.out.finish();
        Ok(())
    }

    /// Polls until every stream is caught up (the killed run's lease may still hold).
    async fn catch_up(&self) {
        let Some(poll_ports) = self.relay.parts.poll_ports() else {
            return;
        };
        for _ in 0..20 {
            let report = poll_once(&poll_ports, &self.settings.poll, &NoDeadline).await;
            self.relay.counters.record_poll(&report);
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

    /// Reads the ground truth and the queue, checks them, counts, and stops the simulator.
    async fn gather_report(
        self,
        reader: &dyn QueueReader,
        faults: Faults,
    ) -> Result<ScenarioReport, ScenarioError> {
        let truth = GroundTruth::from_simulator(&self.sim);
        let queue = reader.envelopes().await.map_err(ScenarioError::Read)?;
        let kept = reader.quarantined().await.map_err(ScenarioError::Read)?;
        let report = check(
            &truth,
            &queue,
            &CheckOptions {
                filter: self.settings.webhook.filter.clone(),
                check_order: self.options.check_order,
            },
        );
        let quarantine = check_quarantine(&kept, &faults.malformed_sent);
        let api_faults = self
            .sim
            .api_requests()
            .iter()
            .filter(|r| r.fault && (r.status == 429 || r.status >= 500))
            .count();
        let counters = &self.relay.counters;
        let out = ScenarioReport {
            changes: truth.changes.len(),
            changes_by_kind: changes_by_kind(&truth),
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
            poll_run_killed: faults.killed,
            stalled_sends: self.relay.sink.held(),
            slowed_dedupe_calls: self.relay.dedupe.delayed(),
            api_faults,
            check: report,
            quarantine,
            queue,
            truth,
        };
        self.sim.shutdown().await;
        Ok(out)
    }
}

/// Changes per kind: orders, order documents, shipments.
fn changes_by_kind(truth: &GroundTruth) -> [usize; 3] {
    let mut by_kind = [0usize; 3];
    for c in &truth.changes {
        by_kind[match c.kind {
            EventKind::Order => 0,
            EventKind::OrderDocuments => 1,
            EventKind::Shipment => 2,
        }] += 1;
    }
    by_kind
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
    // reqwest has no crypto provider of its own here (the workspace's Cargo.toml).
    tradecloud_client::install_crypto_provider();
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
