//! Poll cost: N changed orders in the simulator, polled by the real poll loop and Tradecloud
//! client, relayed to moto's SQS and DynamoDB by the real adapters. Prints the calls each
//! service got (counted exactly: the simulator logs every API request, an SDK interceptor counts
//! every AWS HTTP request by operation, retries included), the wall time, and the relay's own
//! CPU per order.
//!
//! The relay runs on its own runtime (current-thread by default, as the poller Lambda runs it:
//! the poll loop, the client, the AWS SDK and their HTTP all on the main thread; `multi` as the
//! second argument for a multi-thread runtime), the simulator on its own runtime's threads
//! (named `simulator`), moto in its own process; the CPU time of every thread but the
//! simulator's (Linux's `/proc/self/task/*/schedstat`) is therefore the relay's CPU only. moto
//! answers a few hundred requests per second, so the wall time says more about moto than about
//! the relay.
//!
//! ```text
//! source scripts/venv.sh   # moto in .venv
//! .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p 5123 --keep-alive --at-scale &
//! cargo build --release -p poller --example bench_poll
//! TCRELAY_TEST_MOTO_URL=http://127.0.0.1:5123 target/release/examples/bench_poll 20000 [current|multi]
//! ```
//!
//! It builds in CI (`cargo clippy --all-targets`) and is never run there: moto takes minutes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use tcrelay_aws::testing::{MotoOptions, MotoResources};
use tcrelay_aws::{DedupeConfig, DynamoCursorStore, DynamoDedupeStore, SqsSink, SqsSinkConfig};
use tcrelay_core::envelope::{Envelope, ObjectState, Payload};
use tcrelay_core::ports::{DedupeStore, EventSink};
use tcrelay_poll::{
    EndpointMode, NoDeadline, PageRequest, PollApi, PollConfig, PollPorts, PollStream, RunRequest,
    StopReason,
};
use tcrelay_tradecloud::ClientPollApi;
use tradecloud_client::{ClientConfig, Credentials, TradecloudClient};
use tradecloud_sim::{Endpoint, SimConfig, Simulator, WorldConfig};

/// The allocator the `poller` bootstrap runs on, so the CPU per order is the shipped one's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counts AWS HTTP requests by their `X-Amz-Target` operation (DynamoDB's and SQS's JSON
/// protocols both name the operation there).
#[derive(Debug, Default, Clone)]
struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown")
            .rsplit('.')
            .next()
            .unwrap_or("unknown")
            .to_owned();
        // A transaction writes each of its items (and DynamoDB bills each at twice a single
        // write's capacity): counted apart, under the operation's name with " items".
        let items = (operation == "TransactWriteItems")
            .then(|| context.request().body().bytes())
            .flatten()
            .and_then(|body| serde_json::from_slice::<Transaction>(body).ok())
            .map(|transaction| transaction.items.len());
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(items) = items {
            *counts.entry(format!("{operation} items")).or_default() += items as u64;
        }
        *counts.entry(operation).or_default() += 1;
        Ok(())
    }
}

/// A `TransactWriteItems` request as far as the counter reads it: its items are skipped, not
/// built (building each body's JSON tree was a tenth of the AWS floor's CPU).
#[derive(serde::Deserialize)]
struct Transaction {
    #[serde(rename = "TransactItems")]
    items: Vec<serde::de::IgnoredAny>,
}

impl CallCounter {
    fn get(&self, operation: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// Every request counted (item counts excluded).
    fn total(&self) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|(operation, _)| !operation.ends_with(" items"))
            .map(|(_, n)| n)
            .sum()
    }
}

/// CPU time the relay's threads have run: every thread of the process but the simulator's
/// (named [`SIMULATOR_THREAD`]), from Linux's `/proc/self/task/*/schedstat` (its first field is
/// nanoseconds on a CPU); `None` where those files do not exist. The main thread runs the poll;
/// a multi-thread runtime's workers and any runtime's blocking pool run parts of it too.
fn relay_cpu() -> Option<Duration> {
    let ns = sum_over_relay_threads("schedstat", |text| text.split_whitespace().next())?;
    Some(Duration::from_nanos(ns))
}

/// The part of [`relay_cpu`] spent in the kernel (system time: syscalls, and the loopback TCP
/// that a send runs for its receiver too, moto's side included), from the same threads'
/// `/proc/self/task/*/stat` (clock ticks of 1/100 s); `None` where those files do not exist.
fn relay_kernel_cpu() -> Option<Duration> {
    // stime is field 15 of the line, 13 after the name (in parentheses, may hold spaces) and
    // the state.
    let ticks = sum_over_relay_threads("stat", |text| {
        text[text.rfind(')')? + 2..].split_whitespace().nth(12)
    })?;
    Some(Duration::from_millis(ticks * 10))
}

/// The sum over the relay's threads (all but the simulator's) of the number `field` finds in
/// each thread's `/proc/self/task/*/<file>`; `None` where those files do not exist.
fn sum_over_relay_threads(file: &str, field: impl Fn(&str) -> Option<&str>) -> Option<u64> {
    let mut sum = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let task = task.ok()?.path();
        let Ok(name) = std::fs::read_to_string(task.join("comm")) else {
            continue; // the thread ended between the listing and the read
        };
        if name.trim_end() == SIMULATOR_THREAD {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(task.join(file)) else {
            continue;
        };
        sum += field(&text)?.parse::<u64>().ok()?;
    }
    Some(sum)
}

/// The name of the simulator's threads, whose CPU is not the relay's.
const SIMULATOR_THREAD: &str = "simulator";

/// CPU time (user + system) of the whole process, from `/proc/self/stat` (clock ticks of
/// 1/100 s, as Linux reports them to user space).
fn process_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    Some(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The AWS work of a poll alone: `envelopes` claimed, sent and completed in groups of 99, as
/// the poll loop does for full pages. `Err` names the first call that failed (moto times out
/// on transactions once its table holds some thousands of items).
async fn floor(
    dedupe: &DynamoDedupeStore,
    sink: &SqsSink,
    envelopes: &[Envelope],
) -> Result<(), String> {
    for group in envelopes.chunks(99) {
        let keys: Vec<(&str, bool)> = group
            .iter()
            .map(|e| (e.dedupe_key.as_str(), true))
            .collect();
        let mut claims = Vec::with_capacity(group.len());
        for (outcome, e) in dedupe.claim_many(&keys, None).await.into_iter().zip(group) {
            let outcome = outcome.map_err(|e| format!("a claim failed: {e}"))?;
            let token = outcome
                .token()
                .cloned()
                .ok_or("a fresh key was found taken")?;
            claims.push((e.dedupe_key.clone(), token));
        }
        sink.enqueue(group)
            .await
            .map_err(|e| format!("a send failed: {e}"))?;
        for completion in dedupe.complete_many(&claims).await {
            completion.map_err(|e| format!("a completion failed: {e}"))?;
        }
    }
    Ok(())
}

/// The envelopes the poll sent for the first `n` orders (read again from the simulator by
/// offset, not timed), under dedupe keys of their own so they claim anew.
async fn envelopes_of(api: &ClientPollApi, config: &PollConfig, n: usize) -> Vec<Envelope> {
    let mut envelopes = Vec::with_capacity(n);
    while envelopes.len() < n {
        let page = api
            .fetch_page(&PageRequest {
                stream: PollStream::Orders,
                mode: EndpointMode::Poll,
                last_updated: config.start.clone().expect("a start"),
                offset: u32::try_from(envelopes.len()).expect("fewer than 4 billion"),
                limit: 100,
                filters: Default::default(),
            })
            .await
            .expect("a page");
        if page.items.is_empty() {
            break;
        }
        for item in page.items {
            let state =
                ObjectState::of_text(item.get(), PollStream::Orders.kind().object_class(), "")
                    .expect("JSON");
            let key = format!("floor/order/{}/{}", state.id, envelopes.len());
            let payload =
                Payload::as_sent(Arc::from(item.get()), |t| serde_json::from_str(t)).expect("JSON");
            envelopes.push(Envelope::of_polled(
                PollStream::Orders.kind(),
                state,
                key,
                Some(Vec::new()),
                payload,
            ));
        }
    }
    envelopes.truncate(n);
    envelopes
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N, a number of orders"))
        .unwrap_or(20_000);
    let runtime = std::env::args().nth(2).unwrap_or_else(|| "current".into());
    let moto = std::env::var("TCRELAY_TEST_MOTO_URL")
        .expect("TCRELAY_TEST_MOTO_URL: moto's URL (see the doc comment)");

    // The simulator on its own runtime and threads, so its CPU is not the relay's.
    let sim_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SIMULATOR_THREAD)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let generated = Instant::now();
    let sim = sim_runtime
        .block_on(Simulator::start(SimConfig {
            world: WorldConfig {
                seed: 20,
                initial_orders: n,
                initial_shipments: 0,
                max_lines: 3,
                ..WorldConfig::default()
            },
            ..SimConfig::default()
        }))
        .expect("simulator starts");
    eprintln!(
        "simulator: {n} orders generated in {:?}",
        generated.elapsed()
    );

    // The poller's runtime: current-thread, as the poller Lambda's `main` builds it; "multi"
    // for comparison. Idle blocking threads are kept, so that none ends with its CPU uncounted.
    let relay = match runtime.as_str() {
        "current" => tokio::runtime::Builder::new_current_thread(),
        "multi" => tokio::runtime::Builder::new_multi_thread(),
        other => panic!("runtime {other:?}: current or multi"),
    }
    .thread_name("relay")
    .thread_keep_alive(Duration::from_secs(3600))
    .enable_all()
    .build()
    .expect("relay runtime");
    eprintln!("relay runtime: {runtime}-thread");
    relay.block_on(async {
        let aws = MotoResources::create("bench-poll", MotoOptions::new(&moto)).await;
        let counter = CallCounter::default();
        let sdk = MotoOptions::new(&moto).aws.load().await;
        // Stalled-stream protection off in both clients, as the relay's own clients run
        // (`AwsClients::new` with the relay's attempt timeout): its timers wake the thread while
        // a request waits, so its CPU grows with moto's latency (tens of milliseconds a call,
        // and growing with moto's tables), not with the relay's work; with it on, the floor below
        // measured 130-178 µs per order in three runs, off 117-119 (BENCHMARKS.md, round 5).
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&sdk)
                .stalled_stream_protection(
                    aws_sdk_dynamodb::config::StalledStreamProtectionConfig::disabled(),
                )
                .interceptor(counter.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .stalled_stream_protection(
                    aws_sdk_sqs::config::StalledStreamProtectionConfig::disabled(),
                )
                .interceptor(counter.clone())
                .build(),
        );
        let client = TradecloudClient::new(ClientConfig {
            // The simulator is local; Tradecloud's 10/s would only measure the limiter.
            max_requests_per_second: 10_000,
            ..ClientConfig::new(
                sim.base_url(),
                Credentials::new(sim.username(), sim.password()),
            )
        })
        .expect("client");
        let poll_api = Arc::new(ClientPollApi(client));
        let dedupe = Arc::new(DynamoDedupeStore::new(
            dynamodb.clone(),
            DedupeConfig::new(aws.table.clone()),
        ));
        let sink = Arc::new(SqsSink::new(
            sqs.clone(),
            SqsSinkConfig::new(aws.queue_url.clone()),
            None,
        ));
        let ports = PollPorts {
            api: poll_api.clone(),
            cursors: Arc::new(DynamoCursorStore::new(dynamodb.clone(), aws.table.clone())),
            dedupe: dedupe.clone(),
            sink: sink.clone(),
        };
        let config = PollConfig {
            streams: vec![PollStream::Orders],
            start: Some("2025-01-01T00:00:00.000Z".into()),
            ..PollConfig::default()
        };
        let before = counter.total();
        assert_eq!(before, 0, "set-up calls went through other clients");
        let cpu = relay_cpu();
        let kernel = relay_kernel_cpu();
        let process = process_cpu();
        let wall = Instant::now();
        let mut enqueued = 0;
        let mut runs = 0;
        loop {
            runs += 1;
            let report = tcrelay_poll::run(
                &ports,
                &config,
                &RunRequest::scheduled(format!("bench-{runs}")),
                &NoDeadline,
            )
            .await;
            let summary = report.summaries()[0].clone();
            assert!(!report.failed(), "{:?}", report.results);
            enqueued += summary.enqueued;
            if summary.stop == Some(StopReason::CaughtUp) {
                break;
            }
        }
        let wall = wall.elapsed();
        let cpu = relay_cpu().zip(cpu).map(|(after, before)| after - before);
        let kernel = relay_kernel_cpu()
            .zip(kernel)
            .map(|(after, before)| after - before);
        let process = process_cpu()
            .zip(process)
            .map(|(after, before)| after - before);
        let api: Vec<_> = sim.api_requests();
        let polls = api
            .iter()
            .filter(|r| r.endpoint == Some(Endpoint::OrderPoll))
            .count();
        let n64 = n as u64;
        let per_order = |calls: u64| calls as f64 / n as f64;
        let floor_api = n64.div_ceil(100);
        let floor_sqs = n64.div_ceil(10);
        let sqs_calls = counter.get("SendMessageBatch") + counter.get("SendMessage");
        let single_writes =
            counter.get("PutItem") + counter.get("UpdateItem") + counter.get("DeleteItem");
        let write_calls =
            single_writes + counter.get("BatchWriteItem") + counter.get("TransactWriteItems");
        let transacted = counter.get("TransactWriteItems items");
        let item_writes = single_writes + transacted;
        println!("orders: {n}, enqueued: {enqueued}, runs: {runs}");
        println!(
            "Tradecloud API calls: {} ({polls} poll pages, floor {floor_api}: {:.1}% over)",
            api.len(),
            (api.len() as f64 / floor_api as f64 - 1.0) * 100.0
        );
        println!(
            "SQS calls: {sqs_calls} (floor {floor_sqs}: {:.1}% over)",
            (sqs_calls as f64 / floor_sqs as f64 - 1.0) * 100.0
        );
        println!(
            "DynamoDB calls: {} ({:.2} per order), write calls {write_calls} ({:.2} per order)",
            counter.total() - sqs_calls,
            per_order(counter.total() - sqs_calls),
            per_order(write_calls)
        );
        println!(
            "DynamoDB item writes: {item_writes} ({:.2} per order; {transacted} of them in \
             transactions), write capacity units {} ({:.2} per order; items under 1 KB, a \
             transactional write 2 WCU)",
            per_order(item_writes),
            single_writes + 2 * transacted,
            per_order(single_writes + 2 * transacted)
        );
        println!("AWS calls by operation: {:?}", counter.0.lock().unwrap());
        println!(
            "wall time: {wall:?} ({:.0} orders/s)",
            n as f64 / wall.as_secs_f64()
        );
        match cpu {
            Some(cpu) => println!(
                "relay CPU: {cpu:?} ({:.1} µs per order)",
                cpu.as_secs_f64() * 1e6 / n as f64
            ),
            None => println!("relay CPU: not measured (no /proc/thread-self/schedstat)"),
        }
        if let Some(kernel) = kernel {
            println!(
                "relay CPU in the kernel: {kernel:?} ({:.1} µs per order)",
                kernel.as_secs_f64() * 1e6 / n as f64
            );
        }
        if let Some(process) = process {
            println!("process CPU, simulator included: {process:?}");
        }

        // The floor under that CPU: the same AWS work alone. The same orders' envelopes, as the
        // poll built them, are claimed, sent and completed in the poll's groups of 99 (a full
        // page relays 99), by the same adapters on the same connections, with no Tradecloud
        // call, no reading and no preparation. What the relay spends above it is its own.
        let envelopes = envelopes_of(poll_api.as_ref(), &config, n).await;
        let before = counter.total();
        let floor_cpu = relay_cpu();
        let floor_kernel = relay_kernel_cpu();
        let floor_run = floor(dedupe.as_ref(), sink.as_ref(), &envelopes).await;
        let floor_kernel = relay_kernel_cpu()
            .zip(floor_kernel)
            .map(|(after, before)| after - before);
        let floor_calls = counter.total() - before;
        match (floor_run, relay_cpu().zip(floor_cpu).zip(cpu)) {
            (Err(e), _) => println!("AWS floor: not measured ({e})"),
            (Ok(()), Some(((after, before), relay))) => {
                let floor = after - before;
                let per_order = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
                println!(
                    "AWS floor: {floor:?} ({:.1} µs per order; {floor_calls} calls: the same \
                     claims, sends and completions alone)",
                    per_order(floor)
                );
                if let Some(kernel) = floor_kernel {
                    println!(
                        "AWS floor in the kernel: {kernel:?} ({:.1} µs per order)",
                        per_order(kernel)
                    );
                }
                println!(
                    "relay CPU above the floor: {:.1} µs per order ({:.0}% of the relay's)",
                    per_order(relay.saturating_sub(floor)),
                    100.0 * relay.saturating_sub(floor).as_secs_f64() / relay.as_secs_f64()
                );
            }
            (Ok(()), None) => println!("AWS floor: not measured (no /proc/thread-self/schedstat)"),
        }
    });
    drop(sim);
}
