//! Cold-start benchmark (BENCHMARKS.md, "Cold start"): execs a Lambda bootstrap under a fresh
//! Runtime API emulator on loopback, `--runs` times (default 20), and measures what Lambda
//! reports for a cold start:
//!
//! - init: from exec to the runtime's first `GET /invocation/next` (Lambda's Init Duration);
//! - the first invocation: from queueing the event to the answer;
//! - peak RSS: `VmHWM` of the process after that invocation.
//!
//! Every run is a real cold start against real services: a fresh queue and table in moto's
//! server (`TCRELAY_TEST_MOTO_URL`, as in scripts/test.sh), for the Rust functions a fresh
//! Tradecloud simulator, and an event naming an object no earlier run sent, so each first
//! invocation does the whole job (claim, send, complete); each run checks that the message
//! reached the queue.
//!
//! ```text
//! coldstart [--runs N] [--out FILE.json] \
//!   [--webhook PATH] [--poller PATH] [--peer PYTHON SCRIPT]
//! ```
//!
//! `--peer` runs the Python peer (bench/peer/bootstrap.py) with the interpreter given, on the
//! same webhook event. Prints one line per run and the medians; `--out` writes every sample and
//! the medians as JSON for scripts/bench.sh. Not run in CI: scripts/bench.sh runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use lambda_runtime_emulator::{
    ApiGatewayResponse, FunctionProcess, RuntimeApi, RuntimeConfig, read_event,
};
use serde_json::{Value, json};
use tcrelay_aws::testing::{MotoOptions, MotoResources, create_queue, receive_all, unique_name};
use tradecloud_sim::{SimConfig, Simulator};

type Error = Box<dyn std::error::Error>;

/// The order the sample webhook event names; each run renames it so its message is new.
const ORDER_ID: &str = "cb0cef0b-6538-4828-b45e-5ad8ea69b5cd-PO2189";
/// The Basic credential the sample events carry.
const WEBHOOK_BASIC: &str = "tradecloud:change-me";
/// The function timeout: the poller keeps a reserve of its remaining time for a clean stop, so
/// it gets the minute its template gives it; far more than any cold start here needs.
const TIMEOUT: Duration = Duration::from_secs(60);

/// What is benchmarked.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Webhook,
    Poller,
    Peer,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook",
            Kind::Poller => "poller",
            Kind::Peer => "python-peer",
        }
    }
}

/// One bootstrap to start: the program and its arguments.
struct Target {
    kind: Kind,
    program: PathBuf,
    args: Vec<String>,
}

/// One cold start's figures.
struct Sample {
    init: Duration,
    invoke: Duration,
    peak_rss_kib: u64,
}

fn usage() -> Error {
    "usage: coldstart [--runs N] [--out FILE.json] [--webhook PATH] [--poller PATH] \
     [--peer PYTHON SCRIPT]"
        .into()
}

fn parse_args() -> Result<(usize, Option<PathBuf>, Vec<Target>), Error> {
    let mut args = std::env::args().skip(1);
    let (mut runs, mut out, mut targets) = (20, None, Vec::new());
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(usage);
        match arg.as_str() {
            "--runs" => runs = value()?.parse()?,
            "--out" => out = Some(PathBuf::from(value()?)),
            "--webhook" | "--poller" => targets.push(Target {
                kind: if arg == "--webhook" {
                    Kind::Webhook
                } else {
                    Kind::Poller
                },
                program: value()?.into(),
                args: Vec::new(),
            }),
            "--peer" => {
                let program = value()?.into();
                targets.push(Target {
                    kind: Kind::Peer,
                    program,
                    args: vec![value()?],
                });
            }
            _ => return Err(usage()),
        }
    }
    if targets.is_empty() || runs == 0 {
        return Err(usage());
    }
    Ok((runs, out, targets))
}

/// The repository's root (this crate is tests/lambda-runtime-emulator).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The sample webhook event with the order renamed to `order_id`.
fn webhook_event(order_id: &str) -> Value {
    let mut event = read_event(repo_root().join("events/post-order-json.json"));
    let body = event["body"]
        .as_str()
        .unwrap_or_default()
        .replace(ORDER_ID, order_id);
    event["body"] = Value::String(body);
    event
}

/// A simulator with a few objects to poll: the poller's first invocation is a real, short poll.
async fn simulator() -> Result<Simulator, Error> {
    let mut config = SimConfig::seeded(17);
    config.world.initial_orders = 3;
    config.world.initial_shipments = 1;
    Ok(Simulator::start(config).await?)
}

/// The Python peer's idempotency table: Powertools' default schema, key `id`.
async fn peer_table(aws: &MotoResources) -> Result<String, Error> {
    let name = unique_name("peer-idempotency");
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    aws.clients
        .dynamodb
        .create_table()
        .table_name(&name)
        .attribute_definitions(attribute("id")?)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    Ok(name)
}

/// `VmHWM` (peak resident set) of a running process, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmHWM for process {pid}").into())
}

/// One cold start of `target` with fresh resources; checks the job was done.
async fn cold_start(target: &Target, run: usize) -> Result<Sample, Error> {
    let mut options = MotoOptions::from_env();
    options.quarantine = true;
    let aws = MotoResources::create(&format!("cold-{}", target.kind.name()), options).await;
    let order_id = format!("{ORDER_ID}-run{run}-{}", uuid::Uuid::new_v4().simple());
    let mut sim = None;
    let (env, event): (Vec<(&str, String)>, Value) = match target.kind {
        Kind::Webhook | Kind::Poller => {
            let s = sim.insert(simulator().await?);
            let mut env = vec![
                ("TRADECLOUD_API_URL", s.base_url()),
                ("TRADECLOUD_USERNAME", s.username().to_owned()),
                ("TRADECLOUD_PASSWORD", s.password().to_owned()),
                ("TCRELAY_QUEUE_URL", aws.queue_url.clone()),
                ("TCRELAY_DEDUPE_TABLE", aws.table.clone()),
                ("TCRELAY_CLAIM_CHECK_BUCKET", aws.bucket.clone()),
                ("TCRELAY_AWS_ENDPOINT_URL", aws.url.clone()),
                ("RUST_LOG", "info".to_owned()),
            ];
            if target.kind == Kind::Webhook {
                env.push(("TCRELAY_WEBHOOK_BASIC", WEBHOOK_BASIC.to_owned()));
                env.push(("TCRELAY_QUARANTINE_QUEUE_URL", aws.quarantine().to_owned()));
                (env, webhook_event(&order_id))
            } else {
                env.push(("TCRELAY_POLL_STREAMS", "orders,shipments".to_owned()));
                env.push(("TCRELAY_POLL_START", "2025-01-01T00:00:00.000Z".to_owned()));
                let event = read_event(repo_root().join("events/poller-scheduled.json"));
                (env, event)
            }
        }
        Kind::Peer => {
            let queue = create_queue(&aws.clients, "cold-peer", false).await;
            let env = vec![
                ("QUEUE_URL", queue),
                ("IDEMPOTENCY_TABLE", peer_table(&aws).await?),
                ("WEBHOOK_BASIC", WEBHOOK_BASIC.to_owned()),
                ("AWS_ENDPOINT_URL", aws.url.clone()),
                ("POWERTOOLS_LOG_LEVEL", "INFO".to_owned()),
            ];
            (env, webhook_event(&order_id))
        }
    };
    let queue_url = env
        .iter()
        .find(|(k, _)| *k == "QUEUE_URL" || *k == "TCRELAY_QUEUE_URL")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let api = RuntimeApi::start_with(RuntimeConfig::named(target.kind.name())).await?;
    let mut command = FunctionProcess::command(&target.program).envs(env);
    for arg in &target.args {
        command = command.arg(arg);
    }

    let started = Instant::now();
    let function = command.spawn(&api)?;
    let first_next = tokio::select! {
        at = api.first_next() => at,
        _ = function.wait_exit(TIMEOUT) => {
            return Err(format!("the function never asked for an event:{}", function.output()).into());
        }
    };
    let init = first_next - started;
    let invocation = function.invoke(event, TIMEOUT).await?;
    let pid = function.pid().ok_or("the process has no pid")?;
    let peak_rss_kib = peak_rss_kib(pid)?;
    check_answer(target.kind, &invocation, &function)?;
    drop(function);
    let messages = receive_all(&aws.clients.sqs, &queue_url).await;
    let wanted = match target.kind {
        // What the poll says it enqueued, and it must have found something.
        Kind::Poller => invocation.response().map_or(0, |answer| {
            answer["streams"].as_array().map_or(0, |streams| {
                streams.iter().filter_map(|s| s["enqueued"].as_u64()).sum()
            })
        }),
        Kind::Webhook | Kind::Peer => 1,
    };
    if wanted == 0 || messages.len() as u64 != wanted {
        return Err(format!("{} messages on the queue, not {wanted}", messages.len()).into());
    }
    drop(sim);
    Ok(Sample {
        init,
        invoke: invocation.duration,
        peak_rss_kib,
    })
}

/// The answer of a function that did its job: 202 for a new webhook message, a poll summary.
fn check_answer(
    kind: Kind,
    invocation: &lambda_runtime_emulator::Invocation,
    function: &FunctionProcess,
) -> Result<(), Error> {
    // An error answer has no response: it fails below with the error and the output.
    let response = invocation
        .response()
        .cloned()
        .unwrap_or_else(|| json!({"error": invocation.error()}));
    let ok = match kind {
        Kind::Webhook | Kind::Peer => ApiGatewayResponse::from_response(&response)
            .is_ok_and(|r| r.status == 202 && r.json()["outcome"] == "enqueued"),
        Kind::Poller => response["dryRun"] == false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("unexpected answer {response}:{}", function.output()).into())
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (runs, out, targets) = parse_args()?;
    let mut report = serde_json::Map::new();
    for target in &targets {
        let name = target.kind.name();
        let mut samples = Vec::with_capacity(runs);
        for run in 0..runs {
            let sample = cold_start(target, run)
                .await
                .map_err(|e| format!("{name} run {run}: {e}"))?;
            println!(
                "{name} run {run}: init {:.1} ms, first invocation {:.1} ms, peak RSS {:.1} MiB",
                ms(sample.init),
                ms(sample.invoke),
                sample.peak_rss_kib as f64 / 1024.0
            );
            samples.push(sample);
        }
        let mut init: Vec<f64> = samples.iter().map(|s| ms(s.init)).collect();
        let mut invoke: Vec<f64> = samples.iter().map(|s| ms(s.invoke)).collect();
        let mut rss: Vec<f64> = samples
            .iter()
            .map(|s| s.peak_rss_kib as f64 / 1024.0)
            .collect();
        let entry = json!({
            "program": as_recorded(&target.program),
            "args": target.args.iter().map(|a| as_recorded(Path::new(a))).collect::<Vec<_>>(),
            "runs": runs,
            "init_ms": init,
            "invoke_ms": invoke,
            "peak_rss_mib": rss,
        });
        let (init, invoke, rss) = (median(&mut init), median(&mut invoke), median(&mut rss));
        let mut entry = entry;
        entry["median_init_ms"] = json!(init);
        entry["median_invoke_ms"] = json!(invoke);
        entry["median_peak_rss_mib"] = json!(rss);
        println!(
            "{name}: median of {runs}: init {init:.1} ms, first invocation {invoke:.1} ms, \
             peak RSS {rss:.1} MiB"
        );
        report.insert(name.to_owned(), entry);
    }
    if let Some(out) = out {
        std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

/// A path as the results file records it: relative to the directory the bench ran in (the
/// repository's root, under `scripts/bench.sh`), or, outside it, only its last two parts (a
/// target directory elsewhere: `release/webhook`), so the committed results name no folder of
/// the machine that made them. Anything else (a flag) is kept as it is.
fn as_recorded(path: &Path) -> String {
    let here = std::env::current_dir().unwrap_or_default();
    if let Ok(inside) = path.strip_prefix(&here) {
        return inside.display().to_string();
    }
    if !path.is_absolute() {
        return path.display().to_string();
    }
    let parts: Vec<_> = path.components().rev().take(2).collect();
    parts
        .iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
