//! `tcrelay`: the command line. Parses arguments and the environment, wires the library's
//! modules, and maps errors to one readable line and a non-zero exit code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum};
use tcrelay::backend::{Ports, aws_clients};
use tcrelay::logging::{self, LogFormat, init_tracing};
use tcrelay::ops::{Access, UntilReaderLeaves};
use tcrelay::settings::DedupeTimings;
use tcrelay::settings::aws_endpoint;
use tcrelay::{Backend, RelayParts, ServeOptions, Settings, ops};
use tcrelay_aws::{AwsConfigOptions, AwsPorts, Secrets};
use tcrelay_core::ports::{CursorStore, TradecloudApi};
use tcrelay_core::{ConfigError, WebhookSettings};
use tcrelay_poll::PollApi;
use tcrelay_sqlite::{SqliteOptions, SqliteStore};
use tcrelay_tradecloud::{ClientApi, ClientPollApi, client_for};

/// mimalloc instead of glibc's malloc: decoding a body builds and drops tens of thousands of
/// small allocations, and glibc's allocator was a quarter to a third of the profile (see
/// docs/architecture.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "tcrelay",
    version,
    about = "Relays Tradecloud orders and shipments to a queue, exactly once, in order per object.",
    after_help = "The demo (the Tradecloud simulator and the relay in one process, checked against \
                  the simulator's ground truth) is its own binary: `cargo run --release -p tcrelay-demo`."
)]
struct Cli {
    /// The SQLite database (queue, dedupe records, quarantine, cursors).
    #[arg(
        long,
        global = true,
        env = "TCRELAY_DB",
        default_value = "./tcrelay.db"
    )]
    db: PathBuf,
    /// Where the ports live: the local SQLite file, or DynamoDB/SQS/S3 (configured by the
    /// Lambdas' environment variables; TCRELAY_AWS_ENDPOINT_URL overrides the endpoint).
    #[arg(long, global = true, value_enum, default_value_t = BackendArg::Sqlite)]
    backend: BackendArg,
    /// Log lines on stderr: `text` (colours only on a terminal) or `json`, one JSON object a
    /// line.
    #[arg(
        long,
        global = true,
        env = "TCRELAY_LOG_FORMAT",
        value_parser = parse_log_format,
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum BackendArg {
    Sqlite,
    Aws,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the webhook and run the poll loop (configuration from the environment).
    Serve {
        /// Address of the webhook endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Time between poll runs (`30s`, `5m`); `0` turns polling off.
        #[arg(long, default_value = "5m", value_parser = parse_interval)]
        poll_interval: Duration,
        /// Also serve `/metrics` (Prometheus text) and `/health` on this address, e.g.
        /// 127.0.0.1:9090; off when not given.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// The local outbound queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Requests refused with 4xx after authentication.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Poll cursors (`orders`, `single-delivery-orders`, `shipments`).
    Cursor {
        #[command(subcommand)]
        command: CursorCommand,
    },
    /// Everything the database holds about one order or shipment: dedupe records, queue
    /// messages (acknowledged ones included) and quarantined requests.
    Trace {
        /// The order or shipment id.
        object_id: String,
        /// As one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Check the database (file, schema version, integrity) or, with `--backend aws`, the
    /// table, queues, bucket and secrets the settings name; one line per check.
    Doctor,
    /// The dead-letter queue of TCRELAY_QUEUE_URL (`--backend aws`).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Print a shell completion script (e.g. `tcrelay completions bash > /etc/bash_completion.d/tcrelay`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum QueueCommand {
    /// Messages in queue order, without payload (at most `--limit`; stderr says how many more
    /// there are).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Include acknowledged messages.
        #[arg(long)]
        all: bool,
        /// One JSON document per message and line.
        #[arg(long)]
        json: bool,
    },
    /// Envelopes as JSON lines, in queue order; records the highest id written, the most
    /// `queue ack` accepts.
    Export {
        /// Include acknowledged messages.
        #[arg(long)]
        all: bool,
        /// Only messages with an id up to and including this one (the id to acknowledge
        /// afterwards). The id of the last message written is printed on stderr either way.
        #[arg(long)]
        up_to: Option<i64>,
    },
    /// Acknowledge messages up to an id, or by id (only ids `queue export` has written).
    // One of the two forms, not both: a wrong command line (exit code 2, with the usage), not
    // a failure of the acknowledgement (exit code 1).
    #[command(group(clap::ArgGroup::new("which").required(true).args(["up_to", "ids"])))]
    Ack {
        /// Acknowledge every message with an id up to and including this one.
        #[arg(long)]
        up_to: Option<i64>,
        /// Ids to acknowledge.
        ids: Vec<i64>,
    },
    /// Pending and acknowledged counts.
    Stats {
        /// As one JSON document.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum QuarantineCommand {
    /// One line per kept request.
    List {
        /// One JSON document per request and line (as `export`).
        #[arg(long)]
        json: bool,
    },
    /// Kept requests as JSON lines (body in base64).
    Export,
    /// Send kept requests through the relay again, as if they had just arrived (same
    /// configuration as `serve`); each leaves the quarantine only when the relay accepts it.
    Replay {
        /// The ids to replay (see `quarantine list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Replay every kept request, in the order kept.
        #[arg(long)]
        all: bool,
        /// One JSON document per request and line.
        #[arg(long)]
        json: bool,
    },
    /// Delete kept requests for good.
    Drop {
        /// The ids to delete.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

#[derive(Subcommand, Debug)]
enum DlqCommand {
    /// Move messages back to the queue, FIFO included: same group and deduplication ids,
    /// order kept within each group, each deleted from the DLQ after it was sent.
    Redrive {
        /// The DLQ; default: the one the queue's RedrivePolicy names.
        #[arg(long)]
        from: Option<String>,
        /// Leave messages sent less than this long ago (SQS drops a FIFO message sent again
        /// with the same deduplication id within five minutes).
        #[arg(long, default_value = "6m", value_parser = parse_interval)]
        min_age: Duration,
        /// At most this many messages.
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
enum CursorCommand {
    /// A stream's cursor, or every stream's.
    Show {
        /// The stream.
        stream: Option<String>,
        /// One JSON document per stream and line.
        #[arg(long)]
        json: bool,
    },
    /// Set a stream's cursor (backfill from an earlier time, or skip ahead).
    Set {
        /// The stream.
        stream: String,
        /// A `lastUpdatedAt`, e.g. 2025-01-01T00:00:00.000Z (without an offset: UTC).
        value: String,
        /// Backfill from further back than the dedupe records reach (TCRELAY_DEDUPE_TTL_DAYS):
        /// the ERP then receives again the states relayed before then.
        #[arg(long)]
        force: bool,
    },
}

/// How often `serve` deletes what the SQLite store no longer needs and gives the space back.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration like 30s or 5m: {e}"))
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// The global flags whose value may come from a variable, with the variable.
const FLAG_VARIABLES: [(&str, &str); 2] =
    [("db", "TCRELAY_DB"), ("log_format", "TCRELAY_LOG_FORMAT")];

/// The command line, where a variable of [`FLAG_VARIABLES`] set empty counts as unset (as every
/// other setting's does, docs/config.md): clap would refuse it as a missing value of the flag,
/// which the operator never gave, in a unit whose environment file only left it blank.
fn cli_command() -> clap::Command {
    FLAG_VARIABLES
        .into_iter()
        .fold(Cli::command(), |command, (arg, variable)| {
            let empty = std::env::var_os(variable)
                .is_some_and(|value| value.to_string_lossy().trim().is_empty());
            if empty {
                command.mut_arg(arg, |arg| arg.env(None::<&str>))
            } else {
                command
            }
        })
}

/// `--log-format` / `TCRELAY_LOG_FORMAT`: the refusal names both, as the value may come from
/// either.
fn parse_log_format(text: &str) -> Result<LogFormat, String> {
    LogFormat::from_str(text.trim(), false).map_err(|_| {
        "give text or json (--log-format, or the variable TCRELAY_LOG_FORMAT)".to_owned()
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli_command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .unwrap_or_else(|e| e.exit());
    // Only `serve` logs INFO by default: the operator commands print their own output, and an
    // INFO line about opening the store would only get in its way. Nor do they log the WARN of
    // a failed AWS call (`tcrelay_aws::error`): they return that error and print it as their
    // `error:` line, which would follow the same text twice. (`serve` logs it: there the error
    // becomes a 503 and the log is where its reason shows.)
    let level = match cli.command {
        Command::Serve { .. } => format!("info,{}", logging::QUIET_SDK),
        _ => format!("warn,{},tcrelay_aws::error=error", logging::QUIET_SDK),
    };
    init_tracing(&level, cli.log_format);
    tcrelay_core::logsafe::install_panic_hook();
    match run(cli).await {
        Ok(code) => code,
        // `tcrelay queue list | head`: the reader has all it wanted; not an error. (Only the
        // listings end so: the commands whose work or exit code matter write through
        // `UntilReaderLeaves`, which never fails on a closed pipe.)
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the error is the output pipe closed by its reader.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let backend = match cli.backend {
        BackendArg::Sqlite => Backend::Sqlite,
        BackendArg::Aws => Backend::Aws,
    };
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Serve {
            listen,
            poll_interval,
            admin_listen,
        } => {
            drop(stdout);
            serve(&env, backend, &cli.db, listen, poll_interval, admin_listen).await?;
        }
        Command::Queue { command } => {
            let access = match command {
                // Export writes too: the highest id it handed out, the most `ack` accepts.
                QueueCommand::Ack { .. } | QueueCommand::Export { .. } => Access::Write,
                _ => Access::Read,
            };
            let store = open_local(&cli.db, backend, access)?;
            match command {
                QueueCommand::List { limit, all, json } => {
                    let left_out = ops::queue_list(&store, limit, all, json, &mut stdout).await?;
                    // On stderr, so stdout stays the listing alone; a silent cut at the limit
                    // would pass for the whole queue.
                    if left_out > 0 {
                        eprintln!(
                            "{} more message(s) not shown (--limit {limit}): list more with \
                             --limit N, or all of them with `queue export{}`",
                            left_out,
                            if all { " --all" } else { "" }
                        );
                    }
                }
                QueueCommand::Export { all, up_to } => {
                    let exported = ops::queue_export(&store, all, up_to, &mut stdout).await?;
                    // On stderr, so stdout stays the envelopes alone: what to acknowledge.
                    match exported.last_id {
                        Some(last) => eprintln!(
                            "exported {} envelopes, the last with id {last} \
                             (acknowledge with: queue ack --up-to {last})",
                            exported.count
                        ),
                        None => eprintln!("exported 0 envelopes"),
                    }
                }
                QueueCommand::Ack { up_to, ids } => {
                    let mut out = UntilReaderLeaves::new(&mut stdout);
                    ops::queue_ack(&store, up_to, &ids, &mut out).await?;
                }
                QueueCommand::Stats { json } => ops::queue_stats(&store, json, &mut stdout).await?,
            }
        }
        Command::Quarantine { command } => {
            let open = |access| open_local(&cli.db, backend, access);
            match command {
                QuarantineCommand::List { json } => {
                    ops::quarantine_list(&open(Access::Read)?, json, &mut stdout).await?;
                }
                QuarantineCommand::Export => {
                    ops::quarantine_export(&open(Access::Read)?, &mut stdout).await?;
                }
                QuarantineCommand::Drop { ids } => {
                    let mut out = UntilReaderLeaves::new(&mut stdout);
                    ops::quarantine_drop(&open(Access::Write)?, &ids, &mut out).await?;
                }
                QuarantineCommand::Replay { ids, all, json } => {
                    ensure_local(backend)?;
                    // Opens the database itself, once `serve`'s environment is known to be
                    // loaded.
                    let (store, replayer) = replayer(&env, &cli.db).await?;
                    let _relay_lock = ops::start_relaying(&store).await?;
                    let ids = (!all).then_some(ids.as_slice());
                    let mut out = UntilReaderLeaves::new(&mut stdout);
                    if !ops::quarantine_replay(&store, &replayer, ids, json, &mut out).await? {
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
        }
        Command::Trace { object_id, json } => {
            let store = open_local(&cli.db, backend, Access::Read)?;
            if !ops::trace(&store, &object_id, json, &mut stdout).await? {
                // On stderr, so stdout stays the (empty) trace; exit code 1, as a lookup that
                // finds nothing, so a script tells a mistyped id from an object's history.
                eprintln!(
                    "nothing found for {}: no dedupe record, queue message or quarantined \
                     request names it (check the id; expired dedupe records and old \
                     acknowledged messages are deleted by housekeeping)",
                    tcrelay_core::logsafe::escape_control(&object_id)
                );
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Doctor => {
            let mut out = UntilReaderLeaves::new(&mut stdout);
            let passed = match backend {
                Backend::Sqlite => ops::doctor_sqlite(&cli.db, &mut out).await?,
                Backend::Aws => doctor_aws(&env, &mut out).await?,
            };
            if !passed {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Dlq {
            command:
                DlqCommand::Redrive {
                    from,
                    min_age,
                    limit,
                },
        } => {
            anyhow::ensure!(
                backend == Backend::Aws,
                "dlq redrive works on SQS: add --backend aws"
            );
            let queue = env
                .get(tcrelay_aws::settings::TCRELAY_QUEUE_URL)
                .map(|q| q.trim().to_owned())
                .filter(|q| !q.is_empty())
                .context("TCRELAY_QUEUE_URL is required: the queue the messages go back to")?;
            let clients = aws_clients(aws_endpoint(&env).as_deref()).await;
            let from = match from {
                Some(from) => from,
                None => tcrelay_aws::redrive::dead_letter_queue_of(&clients.sqs, &queue)
                    .await
                    .map_err(anyhow::Error::msg)?,
            };
            let options = tcrelay_aws::redrive::RedriveOptions {
                min_age,
                limit: limit.unwrap_or(usize::MAX),
                ..tcrelay_aws::redrive::RedriveOptions::new(from, queue)
            };
            let report = tcrelay_aws::redrive::redrive(&clients.sqs, &options).await?;
            use std::io::Write as _;
            let mut stdout = UntilReaderLeaves::new(&mut stdout);
            writeln!(
                stdout,
                "moved {} message(s) back to the queue",
                report.moved
            )?;
            if report.stopped_at_young {
                writeln!(
                    stdout,
                    "stopped at a message sent less than {} ago; run again later for the rest",
                    humantime::format_duration(min_age)
                )?;
            }
        }
        Command::Completions { shell } => {
            // clap_complete panics on a write error: a closed pipe is discarded instead.
            let mut out = UntilReaderLeaves::new(&mut stdout);
            clap_complete::generate(shell, &mut Cli::command(), "tcrelay", &mut out);
        }
        Command::Cursor {
            command:
                CursorCommand::Set {
                    stream,
                    value,
                    force,
                },
        } => {
            // The dedupe records' lifetime `serve` uses: how far back a backfill can go
            // without sending the ERP states it already has. Checked before the database is
            // opened (or created), so a refused value leaves nothing behind.
            let ttl = DedupeTimings::from_env_map(&env)?.ttl;
            let stream = ops::check_cursor_set(&stream, &value, ttl, force)?;
            // `cursor set` may prepare a database before the first `serve` (a backfill start).
            let cursors = open_cursors(&env, backend, &cli.db, Access::WriteOrCreate).await?;
            let mut out = UntilReaderLeaves::new(&mut stdout);
            ops::cursor_set(cursors.as_ref(), stream, &value, &mut out).await?;
        }
        Command::Cursor {
            command: CursorCommand::Show { stream, json },
        } => {
            let cursors = open_cursors(&env, backend, &cli.db, Access::Read).await?;
            ops::cursor_show(cursors.as_ref(), stream.as_deref(), json, &mut stdout).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The local database of a queue, quarantine or trace command, opened for `access`
/// ([`ops::open_database`]: never created, read-only to read).
fn open_local(
    path: &std::path::Path,
    backend: Backend,
    access: Access,
) -> anyhow::Result<SqliteStore> {
    ensure_local(backend)?;
    Ok(ops::open_database(path, access, SqliteOptions::default())?)
}

/// The cursors of a `cursor` command: in the local database, opened for `access`
/// ([`ops::open_database`]), or in the DynamoDB dedupe table with `--backend aws`.
async fn open_cursors(
    env: &HashMap<String, String>,
    backend: Backend,
    db: &std::path::Path,
    access: Access,
) -> anyhow::Result<Arc<dyn CursorStore>> {
    Ok(match backend {
        Backend::Sqlite => Arc::new(ops::open_database(db, access, SqliteOptions::default())?),
        Backend::Aws => {
            let table = env
                .get(tcrelay_aws::settings::TCRELAY_DEDUPE_TABLE)
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .context("TCRELAY_DEDUPE_TABLE is required with --backend aws (the cursors live in the dedupe table)")?;
            let clients = aws_clients(aws_endpoint(env).as_deref()).await;
            Arc::new(tcrelay_aws::DynamoCursorStore::new(clients.dynamodb, table))
        }
    })
}

/// The queue, quarantine and trace commands work on the local SQLite file only.
fn ensure_local(backend: Backend) -> anyhow::Result<()> {
    anyhow::ensure!(
        backend == Backend::Sqlite,
        "queue and quarantine commands read the local SQLite database; with --backend aws use \
         the SQS console or CLI on TCRELAY_QUEUE_URL / TCRELAY_QUARANTINE_QUEUE_URL"
    );
    Ok(())
}

async fn serve(
    env: &HashMap<String, String>,
    backend: Backend,
    db: &std::path::Path,
    listen: SocketAddr,
    poll_interval: Duration,
    admin_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut settings = Settings::from_env_map(env, backend)?;
    // As the webhook Lambda: a claim that expired while its request still sends lets
    // Tradecloud's retry enqueue the message a second time.
    settings.dedupe.check_outlives(&settings.webhook)?;
    resolve_secrets(&mut settings, env).await?;

    // Held while `serve` relays: other processes then leave its claims in progress alone.
    let mut _relay_lock = None;
    let ports = match backend {
        Backend::Sqlite => {
            // Created when missing, as before; but another application's database (a
            // mistyped path) is refused, not switched to WAL and given our tables.
            // Its errors name the file already.
            let store = ops::open_database(db, Access::WriteOrCreate, sqlite_options(&settings))?;
            tracing::info!(db = %db.display(), "local SQLite backend");
            _relay_lock = Some(ops::start_relaying(&store).await?);
            tokio::spawn(ops::housekeeping_loop(store.clone(), HOUSEKEEPING_INTERVAL));
            Ports::sqlite(&store)
        }
        Backend::Aws => {
            let resources = settings.aws.as_ref().context("AWS settings missing")?;
            tracing::info!(queue = %resources.queue_url, table = %resources.dedupe_table, "AWS backend");
            let sdk = resources.sdk_config().await;
            // Wiring calls no AWS, so without a region `serve` would announce itself and then
            // answer every webhook 503 ("Missing Region" in a WARN). A Lambda always has one;
            // a VM outside EC2 may not.
            anyhow::ensure!(
                sdk.region().is_some(),
                "no AWS region is configured: set AWS_REGION (or a region in the profile \
                 AWS_PROFILE names) to the region of TCRELAY_QUEUE_URL and the table"
            );
            Ports::aws(AwsPorts::connect(&sdk, resources))?
        }
    };

    let (api, poll_api) = tradecloud_apis(&settings)?;
    if api.is_none() {
        tracing::warn!(
            "no Tradecloud login (TRADECLOUD_USERNAME/TRADECLOUD_PASSWORD): GET webhooks are \
             answered 503"
        );
    }
    // Both addresses bound before anything serves or start-up is announced: a taken admin
    // address stops `serve` before the webhook answered anything.
    let admin_listener = match admin_listen {
        Some(admin) => Some(bind(admin, "--admin-listen").await?),
        None => None,
    };
    let listener = bind(listen, "--listen").await?;
    let parts = RelayParts {
        webhook: WebhookSettings::from(&settings.webhook),
        ports,
        api,
        poll_api,
        poll: settings.poll.clone(),
    };
    let mut server = tcrelay::server::start_on(
        parts,
        ServeOptions {
            listen,
            poll_interval: (!poll_interval.is_zero()).then_some(poll_interval),
            limits: settings.server,
        },
        listener,
    )
    .await?;
    let admin = match admin_listener {
        Some(listener) => Some(server.start_admin_on(listener)?),
        None => None,
    };
    let addr = server.local_addr();
    println!(
        "tcrelay listening on http://{addr} (webhook: http://{addr}/webhook/orders, /webhook/order-documents, /webhook/shipments)"
    );
    if let Some(admin) = admin {
        println!("tcrelay metrics on http://{admin}/metrics");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(
        %addr,
        poll_interval = %humantime::format_duration(poll_interval),
        streams = ?settings.poll.streams,
        "tcrelay serving"
    );

    // A server task that ends on its own leaves its address deaf while the process lives on
    // (and a supervisor never restarts it): stop, with an error, as on a signal otherwise.
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        failure = server.failed() => Some(failure),
    };
    match &failure {
        None => {
            tracing::info!("shutting down: finishing in-flight requests and the current poll page");
        }
        Some(error) => tracing::error!(%error, "shutting down the rest"),
    }
    // A second Ctrl-C (an operator at a terminal who will not wait up to a request's budget
    // and the sends that outlived one) stops at once. Only SIGINT: a supervisor's repeated
    // SIGTERM keeps the graceful wait, and its SIGKILL comes when it will wait no longer.
    // What is cut off is as after `kill -9`: nothing answered 2xx is lost, and Tradecloud
    // retries the rest (docs/local-runner.md, "Stopping").
    let stopped = tokio::select! {
        stopped = server.shutdown() => stopped,
        () = second_interrupt(), if failure.is_none() => {
            anyhow::bail!(
                "interrupted again: stopped without waiting for the requests in flight \
                 (Tradecloud retries those it had no answer to)"
            );
        }
    };
    if let Some(failure) = failure {
        return Err(failure.into());
    }
    stopped?;
    tracing::info!("stopped");
    Ok(())
}

/// Binds the address of `flag`; a refusal names the flag, since `serve` binds two addresses
/// and the OS's reason ("Address already in use") names neither.
async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tcrelay::server::bind(addr).await.map_err(|e| {
        let in_use = matches!(
            &e,
            tcrelay::server::ServeError::Bind { error, .. }
                if error.kind() == std::io::ErrorKind::AddrInUse
        );
        let what = if in_use {
            "stop what listens there (another tcrelay serve?) or give another"
        } else {
            "give another address with"
        };
        anyhow::anyhow!("{e}: {what} {flag}")
    })
}

/// The relay as `serve` builds it, on the local database, for `quarantine replay`.
///
/// The replay presents its own credential, but it needs `serve`'s environment all the same:
/// the event filter and the limits decide what happens to each entry, and a filter answer
/// removes the entry from the quarantine. Run with defaults instead (a plain shell), an entry
/// `serve` would filter or refuse could be enqueued, and one it would relay could be filtered
/// out and lost. So without any of the credential variables `serve` requires (the sign its
/// environment is not loaded) the replay is refused; and the settings in force are printed on
/// stderr, so a different filter shows.
async fn replayer(
    env: &HashMap<String, String>,
    db: &std::path::Path,
) -> anyhow::Result<(SqliteStore, tcrelay::replay::Replayer)> {
    let mut settings = Settings::from_env_map(env, Backend::Sqlite).map_err(|e| match e {
        ConfigError::NoWebhookCredential => tcrelay::replay::needs_serve_environment(&e).into(),
        other => anyhow::Error::from(other),
    })?;
    // The replay relays through the same router under the same budget as `serve`.
    settings.dedupe.check_outlives(&settings.webhook)?;
    resolve_secrets(&mut settings, env).await?;
    let (api, _) = tradecloud_apis(&settings)?;
    // The dedupe timings `serve` uses, so a replayed message is remembered as long.
    let store = ops::open_database(db, Access::Write, sqlite_options(&settings))?;
    eprintln!(
        "{}",
        tcrelay::replay::settings_in_force(&settings, api.is_some())
    );
    let replayer = tcrelay::replay::Replayer::new(
        WebhookSettings::from(&settings.webhook),
        &Ports::sqlite(&store),
        api,
    );
    Ok((store, replayer))
}

/// `doctor --backend aws`: the resources of the settings, one line per check.
async fn doctor_aws(
    env: &HashMap<String, String>,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<bool> {
    use tcrelay_core::config::{TCRELAY_TRADECLOUD_SECRET_ARN, TCRELAY_WEBHOOK_SECRET_ARN};
    let resources = match tcrelay_aws::AwsSettings::from_env_map(env) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "FAIL  settings: {e}")?;
            return Ok(false);
        }
    };
    let sdk = resources.sdk_config().await;
    let clients = tcrelay_aws::AwsClients::new(&sdk);
    let arns: Vec<(&str, String)> = [TCRELAY_WEBHOOK_SECRET_ARN, TCRELAY_TRADECLOUD_SECRET_ARN]
        .into_iter()
        .filter_map(|var| {
            let arn = env.get(var)?.trim();
            (!arn.is_empty()).then(|| (var, arn.to_owned()))
        })
        .collect();
    let checks = tcrelay_aws::doctor::check(&clients, &Secrets::new(&sdk), &resources, &arns).await;
    for check in &checks {
        let mark = if check.ok { "ok   " } else { "FAIL " };
        writeln!(
            out,
            "{mark} {}",
            tcrelay_core::logsafe::escape_control(&check.detail)
        )?;
    }
    Ok(checks.iter().all(|c| c.ok))
}

/// The store's options from the settings `serve` reads.
fn sqlite_options(settings: &Settings) -> SqliteOptions {
    SqliteOptions {
        dedupe_ttl: settings.dedupe.ttl,
        in_progress_expiry: settings.dedupe.in_progress_expiry,
        acked_retention: settings.acked_retention,
        ..SqliteOptions::default()
    }
}

/// Tradecloud for GET webhooks, and for polling.
type TradecloudApis = (Option<Arc<dyn TradecloudApi>>, Option<Arc<dyn PollApi>>);

/// Tradecloud for GET webhooks and for polling, when a login is configured.
fn tradecloud_apis(settings: &Settings) -> anyhow::Result<TradecloudApis> {
    Ok(
        match client_for(&settings.tradecloud).context("TRADECLOUD_API_URL")? {
            Some(client) => (
                Some(Arc::new(ClientApi(client.clone())) as Arc<dyn TradecloudApi>),
                Some(Arc::new(ClientPollApi(client)) as Arc<dyn PollApi>),
            ),
            None if !settings.poll.streams.is_empty() => {
                anyhow::bail!(tcrelay_tradecloud::STREAMS_WITHOUT_LOGIN)
            }
            // `serve` warns about it; a replay reports the 503 per GET entry instead.
            None => (None, None),
        },
    )
}

/// The next SIGINT (Ctrl-C) after the one that started the shutdown; never when it cannot be
/// listened for.
async fn second_interrupt() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Reads the credential secrets named by `TCRELAY_WEBHOOK_SECRET_ARN` and
/// `TCRELAY_TRADECLOUD_SECRET_ARN` from Secrets Manager, as the Lambdas do: with AWS's standard
/// credential chain (or the emulator of `TCRELAY_AWS_ENDPOINT_URL`), whichever backend holds
/// the queue.
async fn resolve_secrets(
    settings: &mut Settings,
    env: &HashMap<String, String>,
) -> anyhow::Result<()> {
    if settings.webhook.secret_arn.is_none() && settings.tradecloud.secret_arn.is_none() {
        return Ok(());
    }
    let endpoint = aws_endpoint(env);
    let sdk = AwsConfigOptions::for_relay(endpoint.as_deref())
        .load()
        .await;
    Secrets::new(&sdk)
        .resolve(Some(&mut settings.webhook), &mut settings.tradecloud)
        .await?;
    Ok(())
}
