//! `tcrelay-demo`: runs the Tradecloud simulator and the relay together for a while, with
//! faults injected on both sides, and checks the queue against the simulator's ground truth.
//! Exits 0 when the check passes, 1 when it fails or the demo cannot run, 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tcrelay::Ports;
use tcrelay::logging::{LogFormat, init_tracing};
use tcrelay_demo::scenario::{self, ScenarioOptions};
use tcrelay_sqlite::{Durability, SqliteOptions, SqliteStore};

/// mimalloc instead of glibc's malloc: decoding a body builds and drops tens of thousands of
/// small allocations, and glibc's allocator was a quarter to a third of the profile (see
/// docs/architecture.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "tcrelay-demo",
    version,
    about = "Run the Tradecloud simulator and the relay together for a while and check the result."
)]
struct Cli {
    /// How long changes keep coming.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of the simulated world, duplicates and faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Log lines on stderr (the relay's WARN/INFO lines about the injected faults); by
    /// default only the progress and the summary are printed.
    #[arg(long)]
    verbose: bool,
    /// Keep the demo's database in this new file, so the operator commands can be tried on it
    /// (`tcrelay --db FILE queue stats`); by default a temporary one, deleted at the end.
    // Only the flag: `TCRELAY_DB`, set for `tcrelay` in the same shell, must not send the
    // demo's simulated traffic into the operator's database.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Log lines on stderr (with `--verbose`) as text (colours only on a terminal) or as one
    /// JSON object a line.
    #[arg(long, value_enum, env = "TCRELAY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 30s or 5m: {e}"))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The injected faults make the relay log warnings by the hundred; the demo's summary
    // counts them instead.
    init_tracing(if cli.verbose { "info" } else { "off" }, cli.log_format);
    match demo(cli.duration, cli.seed, cli.db.as_deref()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The demo on a temporary database, or on `db` (a new file, kept afterwards so the operator
/// commands can be tried on it).
async fn demo(duration: Duration, seed: u64, db: Option<&Path>) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let path = match db {
        Some(path) => {
            // The check compares the whole queue with what the simulator produced: an earlier
            // run's messages would fail it.
            anyhow::ensure!(
                !path.exists(),
                "the demo's database {} exists already: remove it or give another --db",
                path.display()
            );
            path.to_path_buf()
        }
        None => dir.path().join("demo.db"),
    };
    let store = SqliteStore::open_with(
        &path,
        SqliteOptions {
            in_progress_expiry: Duration::from_secs(5),
            // A throw-away database: commits survive a crash of the process, not a power cut.
            durability: Durability::Normal,
            ..SqliteOptions::default()
        },
    )
    .context("cannot open the demo database")?;
    println!(
        "tcrelay demo: {} of simulated Tradecloud traffic, seed {seed}, database {}",
        humantime::format_duration(duration),
        path.display()
    );
    let options = ScenarioOptions::demo(duration, seed);
    let report = scenario::run(&options, Ports::sqlite(&store), &store).await?;
    println!("{}", report.table());
    if let Some(db) = db {
        let db = db.display();
        println!(
            "the database is kept: try `tcrelay --db {db} queue stats`, `queue list`, \
             `quarantine list`, `trace <object id>`, `doctor`"
        );
    }
    if report.passed() {
        println!("demo passed: every change is on the queue exactly once");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("demo FAILED: see the problems above");
        Ok(ExitCode::FAILURE)
    }
}
