//! Helpers shared by the `tcrelay` tests: the built binary with a clean environment,
//! `tcrelay serve` as a child process that is killed on drop, a webhook POST to it, and the
//! end-to-end scenario both backends run.

// Each test binary compiles this module on its own and uses only its part of it (cli.rs the
// command, kill.rs and serve_secrets.rs the `serve` process, the e2e tests the scenario).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use tcrelay::metrics::Channel;
use tcrelay::scenario::{ScenarioOptions, ScenarioReport};
use tcrelay_core::Source;
use tradecloud_model::Format;

/// The built `tcrelay` with only the variables given (and PATH): a developer's own TCRELAY_*
/// settings must not leak in.
pub fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tcrelay"));
    cmd.env_clear().envs(env.iter().copied());
    if let Ok(path) = std::env::var("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// Runs the built `tcrelay` (see [`command`]) to the end.
pub fn tcrelay(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    command(env).args(args).output().expect("run tcrelay")
}

/// A finished command's stdout.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The relay on `store`'s ports as the in-process server tests start it: Basic `tc:pw`, every
/// event relayed, no Tradecloud, no polling.
pub async fn start_sqlite(
    store: &tcrelay_sqlite::SqliteStore,
    limits: tcrelay::ServerLimits,
) -> tcrelay::RunningServer {
    let mut credentials = tcrelay_core::WebhookCredentials::new();
    credentials.add_basic("tc", "pw");
    let parts = tcrelay::RelayParts {
        webhook: tcrelay_core::WebhookSettings {
            credentials,
            filter: tcrelay_core::EventFilter::allow_all(),
            max_body_bytes: 1_000_000,
            max_lines: tradecloud_model::DEFAULT_MAX_LINES,
            retry_after_seconds: 1,
            request_budget: Duration::from_secs(5),
        },
        ports: tcrelay::Ports::sqlite(store),
        api: None,
        poll_api: None,
        poll: Default::default(),
    };
    tcrelay::start(
        parts,
        tcrelay::ServeOptions {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            poll_interval: None,
            limits,
        },
    )
    .await
    .unwrap()
}

/// How long `serve` may take to print its address (start-up reads secrets, opens the database).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `tcrelay serve`; killed (SIGKILL) when dropped, so a failing test leaves no
/// process behind.
#[derive(Debug)]
pub struct Serve {
    child: Child,
    /// Where it listens: `127.0.0.1:port`.
    pub addr: String,
    /// The threads copying its stdout and stderr into the test's output.
    copies: Vec<JoinHandle<String>>,
}

/// A `serve` that ended before it printed an address.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stderr.
    pub stderr: String,
}

/// Starts `tcrelay --db <db> serve` on a free port of 127.0.0.1 without polling, with only the
/// variables given (and PATH, `RUST_LOG=warn`), and waits for the address it prints first.
/// Its stdout and stderr go on to the test's output (shown when the test fails).
pub fn serve(db: &str, env: &[(&str, &str)]) -> Result<Serve, Exited> {
    serve_polling(db, env, "0")
}

/// As [`serve`], polling every `poll_interval` (humantime, e.g. `500ms`; `0` turns polling off)
/// the streams and Tradecloud that `env` configures.
pub fn serve_polling(db: &str, env: &[(&str, &str)], poll_interval: &str) -> Result<Serve, Exited> {
    let mut child = command(&[("RUST_LOG", "warn")])
        .envs(env.iter().copied())
        .args([
            "--db",
            db,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--poll-interval",
            poll_interval,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcrelay serve");
    let (first_line, listen_line) = mpsc::channel();
    let copies = vec![
        copy(child.stdout.take().unwrap(), Some(first_line)),
        copy(child.stderr.take().unwrap(), None),
    ];
    let mut serve = Serve {
        child,
        addr: String::new(),
        copies,
    };
    let line = match listen_line.recv_timeout(LISTEN_TIMEOUT) {
        Ok(line) => line,
        // stdout closed without a line: start-up failed.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = serve.child.wait().expect("wait for tcrelay serve");
            let stderr = serve.copies.pop().unwrap().join().unwrap();
            return Err(Exited { status, stderr });
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("tcrelay serve printed no address within {LISTEN_TIMEOUT:?}")
        }
    };
    serve.addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Ok(serve)
}

/// Copies a pipe of the child line by line into the test's output (threads inherit the test's
/// capture), sends the first line to `first`, and returns all of it at the end. Reading to the
/// end also keeps the child from blocking on a full pipe.
fn copy(
    pipe: impl Read + Send + 'static,
    first: Option<mpsc::Sender<String>>,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut first = first;
        let mut all = String::new();
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            eprintln!("[tcrelay serve] {line}");
            if let Some(first) = first.take() {
                let _ = first.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

impl Serve {
    /// Kills it with SIGKILL (std's `kill()` on Unix) and waits until it is gone.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL tcrelay serve");
        self.child.wait().expect("wait for tcrelay serve");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Already gone after kill(): nothing to do, so errors are not of interest.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POSTs a JSON body to the orders webhook at `addr` with Basic credentials (`user:password`).
pub async fn post_order(
    client: &reqwest::Client,
    addr: &str,
    credentials: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Result<reqwest::Response> {
    let auth = base64::engine::general_purpose::STANDARD.encode(credentials);
    client
        .post(format!("http://{addr}/webhook/orders"))
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
}

/// The demo's scenario, with everything on (every channel, a queue outage, a poll run killed
/// mid-way, duplicate deliveries), at a test's volume: each backend chooses `seed`, `duration`
/// and `changes`, and may turn off what its queue cannot keep. The faults come from the demo:
/// if it turned one off, e2e_sqlite's assertions that each happened would fail. What would
/// weaken a test silently instead is pinned here.
pub fn every_fault(seed: u64, duration: Duration, changes: usize) -> ScenarioOptions {
    ScenarioOptions {
        changes,
        poll_interval: Duration::from_secs(2),
        // e2e_moto's 45 s in-progress expiry relies on claims left behind freeing up within this.
        drain_timeout: Duration::from_secs(120),
        // Order per object is part of the promise: checked unless a backend cannot keep it.
        check_order: true,
        ..ScenarioOptions::demo(duration, seed)
    }
}

/// Prints the report's table and asserts what every [`every_fault`] run must show: the check
/// and the quarantine passed, at least `changes` changes, every channel put something on the queue,
/// the queue outage was answered 503, and exactly the three malformed requests are
/// quarantined. Returns the table for the caller's own assertions.
pub fn assert_every_fault_passed(report: &ScenarioReport, changes: usize) -> String {
    let table = report.table();
    println!("{table}");
    assert!(report.check.passed(), "{table}");
    assert_eq!(report.quarantine, Ok(()), "{table}");
    // The scenario really exercised what it claims, so a pass means something.
    assert!(report.changes >= changes, "{table}");
    // Counted on the queue, not from the answers: a relay whose client hung up (the
    // simulator's 2 s request timeout) still finishes, but nobody sees its answer.
    for channel in Channel::ALL {
        let on_queue = report.queue.iter().any(|m| {
            let e = &m.envelope;
            match channel {
                Channel::PostJson => e.source == Source::WebhookPost && e.format == Format::Json,
                Channel::PostTxml => e.source == Source::WebhookPost && e.format == Format::Txml,
                Channel::Get => e.source == Source::WebhookGet,
                Channel::Poll => e.source == Source::Poll,
            }
        });
        assert!(
            on_queue,
            "nothing of {} is on the queue\n{table}",
            channel.as_str()
        );
    }
    assert!(
        report.retried_answers > 0,
        "the queue outage answered no 503\n{table}"
    );
    assert_eq!(report.quarantined, 3, "{table}");
    table
}

/// Asserts that the queue stall and the slowed dedupe store of a run really happened, so its
/// pass means something about them.
pub fn assert_stalled_and_slowed(report: &ScenarioReport, table: &str) {
    assert!(
        report.stalled_sends > 0,
        "nothing reached the stalled queue\n{table}"
    );
    assert!(
        report.slowed_dedupe_calls > 0,
        "no dedupe call was slowed\n{table}"
    );
}
