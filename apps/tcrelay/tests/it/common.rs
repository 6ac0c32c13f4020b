//! Helpers shared by the `tcrelay` tests: the built binary with a clean environment,
//! `tcrelay serve` as a child process that is killed on drop, and a webhook POST to it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;

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

/// The webhook as the in-process server tests run it: Basic `tc:pw`, every event relayed.
pub fn webhook_settings() -> tcrelay_core::WebhookSettings {
    let mut credentials = tcrelay_core::WebhookCredentials::new();
    credentials.add_basic("tc", "pw");
    tcrelay_core::WebhookSettings {
        credentials,
        filter: tcrelay_core::EventFilter::allow_all(),
        max_body_bytes: 1_000_000,
        max_lines: tradecloud_model::DEFAULT_MAX_LINES,
        retry_after_seconds: 1,
        request_budget: Duration::from_secs(5),
    }
}

/// The relay on `store`'s ports as the in-process server tests start it: Basic `tc:pw`, every
/// event relayed, no Tradecloud, no polling.
pub async fn start_sqlite(
    store: &tcrelay_sqlite::SqliteStore,
    limits: tcrelay::ServerLimits,
) -> tcrelay::RunningServer {
    let parts = tcrelay::RelayParts {
        webhook: webhook_settings(),
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
    serve_with(&[], db, env, poll_interval)
}

/// As [`serve_polling`], with the global flags `global` (e.g. `--backend aws`) first.
pub fn serve_with(
    global: &[&str],
    db: &str,
    env: &[(&str, &str)],
    poll_interval: &str,
) -> Result<Serve, Exited> {
    let mut child = command(&[("RUST_LOG", "warn")])
        .envs(env.iter().copied())
        .args(global)
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

impl Serve {
    /// Sends it `signal` (`INT`, `TERM`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for it to end; its exit status, or `None` while it still runs.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for tcrelay serve") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
