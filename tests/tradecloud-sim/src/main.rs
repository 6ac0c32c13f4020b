//! `tradecloud-sim`: runs the Tradecloud simulator as a process for demos and manual tests.
//!
//! Prints the bound address on the first line of stdout, so scripts can start it with
//! `--listen 127.0.0.1:0` and read the port.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tradecloud_sim::{Quirks, RetryPolicy, SimConfig, Simulator, WorldConfig};

/// Command line of the simulator.
#[derive(Parser, Debug)]
#[command(name = "tradecloud-sim", about = "A Tradecloud simulator over HTTP")]
struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed of the world; the same seed gives the same world and changes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// User name of the integration user.
    #[arg(
        long,
        env = "TRADECLOUD_SIM_USERNAME",
        default_value = "integration@example.com"
    )]
    username: String,
    /// Password of the integration user.
    #[arg(
        long,
        env = "TRADECLOUD_SIM_PASSWORD",
        default_value = "sim-password",
        hide_env_values = true
    )]
    password: String,
    /// Orders in the initial world.
    #[arg(long, default_value_t = 20)]
    initial_orders: usize,
    /// Shipments in the initial world.
    #[arg(long, default_value_t = 3)]
    initial_shipments: usize,
    /// Simulated time of the first change (RFC 3339), e.g. 2025-01-06T08:00:00.000Z.
    #[arg(long)]
    start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Probability that an action shares the previous action's millisecond.
    #[arg(long, default_value_t = 0.05)]
    same_millisecond_probability: f64,
    /// Upper bound of lines per order.
    #[arg(long, default_value_t = 500)]
    max_lines: usize,
    /// Access token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    access_token_ttl_secs: u64,
    /// Actions applied after each poll request.
    #[arg(long, default_value_t = 0)]
    changes_per_poll: usize,
    /// API requests allowed per second before 429 (Tradecloud: 10); unlimited when absent.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Commit lag of the poll/search index, in queries (0: none).
    #[arg(long, default_value_t = 0)]
    index_lag_queries: usize,
    /// Apply one action every this many milliseconds (0: only on request via /sim/advance).
    #[arg(long, default_value_t = 0)]
    advance_every_ms: u64,
    /// First webhook retry wait in milliseconds (doubles up to --retry-max-ms).
    #[arg(long, default_value_t = 1000)]
    retry_initial_ms: u64,
    /// Largest webhook retry wait in milliseconds.
    #[arg(long, default_value_t = 300_000)]
    retry_max_ms: u64,
    /// Answer poll and search requests in id order, not by lastUpdatedAt.
    #[arg(long)]
    unsorted: bool,
    /// Make lastUpdatedAfter include objects updated at exactly that time.
    #[arg(long)]
    inclusive_after: bool,
    /// Write lastUpdatedAt without a zone in poll and search answers.
    #[arg(long)]
    zoneless: bool,
    /// Issue access tokens with `exp` but no `iat`.
    #[arg(long)]
    exp_only_tokens: bool,
    /// Write lastUpdatedAt in poll and search answers as java.time does (`…Z[UTC]`, zero
    /// seconds left out).
    #[arg(long)]
    java_time: bool,
    /// Serve at most this many objects a poll or search page, whatever `limit` asks, with the
    /// `total` of every match.
    #[arg(long)]
    page_cap: Option<u32>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = SimConfig {
        listen: args.listen,
        world: WorldConfig {
            seed: args.seed,
            initial_orders: args.initial_orders,
            initial_shipments: args.initial_shipments,
            max_lines: args.max_lines,
            start_time: args.start_time.unwrap_or(WorldConfig::default().start_time),
            same_millisecond_probability: args.same_millisecond_probability,
            ..WorldConfig::default()
        },
        username: args.username,
        password: args.password,
        access_token_ttl: Duration::from_secs(args.access_token_ttl_secs),
        changes_per_poll: args.changes_per_poll,
        rate_limit_per_second: args.rate_limit,
        index_lag_queries: args.index_lag_queries,
        quirks: Quirks {
            unsorted: args.unsorted,
            inclusive_after: args.inclusive_after,
            zoneless: args.zoneless,
            exp_only_tokens: args.exp_only_tokens,
            java_time: args.java_time,
            page_cap: args.page_cap,
        },
        retry: RetryPolicy {
            initial: Duration::from_millis(args.retry_initial_ms),
            max: Duration::from_millis(args.retry_max_ms),
            ..RetryPolicy::default()
        },
        ..SimConfig::default()
    };
    let sim = Simulator::start(config)
        .await
        .context("starting the simulator")?;
    // The address goes first on stdout, alone, for scripts; logs go to stderr.
    let mut out = std::io::stdout();
    writeln!(out, "{}", sim.local_addr())?;
    out.flush()?;
    tracing::info!(api = %sim.base_url(), control = %sim.control_url(), "ready");

    let mut ticker = (args.advance_every_ms > 0)
        .then(|| tokio::time::interval(Duration::from_millis(args.advance_every_ms)));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = async {
                match ticker.as_mut() {
                    Some(t) => { t.tick().await; }
                    None => std::future::pending::<()>().await,
                }
            } => {
                if let Err(e) = sim.advance(1) {
                    tracing::error!(error = %e, "advancing the world failed");
                }
            }
        }
    }
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}
