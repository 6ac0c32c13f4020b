//! A small emulator of the [AWS Lambda Runtime API], so tests can run the real function
//! binaries (what cargo-lambda packages as `bootstrap`) the way Lambda runs them.
//!
//! [`RuntimeApi::start`] serves the Runtime API on a loopback port. A function process is
//! pointed at it with `AWS_LAMBDA_RUNTIME_API` ([`RuntimeApi::address`]); it long-polls
//! `GET /2018-06-01/runtime/invocation/next`, gets the event queued by
//! [`RuntimeApi::invoke`] with Lambda's headers (`Lambda-Runtime-Aws-Request-Id`,
//! `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn`,
//! `Lambda-Runtime-Trace-Id`), and answers on `POST …/invocation/{id}/response` or
//! `…/invocation/{id}/error`. A failed start-up may be reported on `POST …/init/error`
//! ([`RuntimeApi::init_error`]).
//!
//! [`FunctionProcess`] spawns a function binary as a child process with the environment Lambda
//! gives it (and nothing from the test's own environment but `PATH`), captures its stdout and
//! stderr line by line, and kills it when dropped. Its [`FunctionProcess::invoke`] fails with
//! the captured output when the process exits before answering, instead of waiting. Set
//! `LAMBDA_EMULATOR_ECHO=1` ([`ECHO_VAR`]) to see a function's output while a test runs.
//!
//! For a test of a function binary: [`FunctionProcess::cold_start`] starts it under a Runtime
//! API of its own, [`read_event`] reads a sample event file,
//! [`FunctionProcess::invoke_for_response`] takes the answer (an error answer fails with the
//! function's output), [`ApiGatewayResponse`] decodes what a function behind API Gateway
//! answered, and [`FunctionProcess::assert_init_fails_naming`] checks that a function which
//! cannot start says why.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use lambda_runtime_emulator::{FunctionProcess, RuntimeApi};
//!
//! let api = RuntimeApi::start().await?;
//! let function = FunctionProcess::command("target/debug/my-function")
//!     .env("MY_SETTING", "value")
//!     .spawn(&api)?;
//! let invocation = function
//!     .invoke(serde_json::json!({"hello": "world"}), Duration::from_secs(30))
//!     .await?;
//! println!("{:?} {:?}", invocation.outcome, function.stdout_lines());
//! # Ok(()) }
//! ```
//!
//! Not emulated: several concurrent invocations of one process (Lambda sends one at a time
//! too), response streaming, SnapStart's restore endpoints, extensions and the telemetry API.
//!
//! [AWS Lambda Runtime API]: https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html

mod api_gateway;
mod event;
mod process;
#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use api_gateway::{ApiGatewayResponse, ApiGatewayResponseError};
pub use event::read_event;
pub use process::{ECHO_VAR, FunctionCommand, FunctionProcess, InitFailure};

/// A function timeout for callers with no reason to pick one: API Gateway's 30 s limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The header that names the request in `next`'s answer.
pub const REQUEST_ID_HEADER: &str = "Lambda-Runtime-Aws-Request-Id";
/// The header with the invocation's deadline, epoch milliseconds.
pub const DEADLINE_HEADER: &str = "Lambda-Runtime-Deadline-Ms";
/// The header with the invoked function's ARN.
pub const FUNCTION_ARN_HEADER: &str = "Lambda-Runtime-Invoked-Function-Arn";
/// The header with the X-Ray trace id.
pub const TRACE_ID_HEADER: &str = "Lambda-Runtime-Trace-Id";
/// The header a runtime may send with `/error` and `/init/error`.
pub const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";

/// Largest response or error body accepted (Lambda's synchronous limit is 6 MB).
const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// The function the emulated Runtime API serves, as Lambda would describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// `AWS_LAMBDA_FUNCTION_NAME`, and the last part of the function's ARN.
    pub function_name: String,
    /// `AWS_REGION`, and the region in the ARN.
    pub region: String,
    /// The account in the ARN.
    pub account_id: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_mb: u32,
    /// How much longer than an invocation's timeout [`RuntimeApi::invoke`] waits, for the
    /// function to pick the event up (a cold start) before it reports a timeout.
    pub pickup_grace: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            function_name: "function".into(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            memory_mb: 128,
            pickup_grace: Duration::from_secs(10),
        }
    }
}

impl RuntimeConfig {
    /// The defaults with another function name.
    pub fn named(function_name: impl Into<String>) -> Self {
        Self {
            function_name: function_name.into(),
            ..Self::default()
        }
    }

    /// `arn:aws:lambda:REGION:ACCOUNT:function:NAME`.
    pub fn function_arn(&self) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{}",
            self.region, self.account_id, self.function_name
        )
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The function posted to `/invocation/{id}/response`: its body (JSON; a body that is not
    /// JSON is kept as a JSON string).
    Response(Value),
    /// The function posted to `/invocation/{id}/error`: its body, usually
    /// `{"errorType": …, "errorMessage": …}`.
    Error(Value),
}

/// One finished invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The `Lambda-Runtime-Aws-Request-Id` it was sent with.
    pub request_id: String,
    /// The answer.
    pub outcome: Outcome,
    /// The `Lambda-Runtime-Function-Error-Type` header of an error answer, if any.
    pub error_type: Option<String>,
    /// From queueing the event to the answer.
    pub duration: Duration,
}

impl Invocation {
    /// The response body, `None` for an error.
    pub fn response(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Response(v) => Some(v),
            Outcome::Error(_) => None,
        }
    }

    /// The error body, `None` for a response.
    pub fn error(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Error(v) => Some(v),
            Outcome::Response(_) => None,
        }
    }
}

/// What a runtime posted to `/init/error`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    /// The `Lambda-Runtime-Function-Error-Type` header, if any.
    pub error_type: Option<String>,
    /// The body (JSON, or the text as a JSON string).
    pub body: Value,
}

/// Why [`RuntimeApi::invoke`] or [`FunctionProcess::invoke`] has no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No answer within the timeout plus [`RuntimeConfig::pickup_grace`].
    #[error("invocation {request_id} got no answer within {waited:?}{output}")]
    Timeout {
        /// The request id the event was queued with.
        request_id: String,
        /// How long the invoker waited.
        waited: Duration,
        /// The function's captured output (empty without a [`FunctionProcess`]).
        output: String,
    },
    /// The runtime reported an init error instead of taking events.
    #[error("the function reported an init error: {error:?}{output}")]
    InitFailed {
        /// What it reported.
        error: InitError,
        /// The function's captured output (empty without a [`FunctionProcess`]).
        output: String,
    },
    /// The function process exited before answering (Lambda's `Runtime.ExitError`).
    #[error("function {function} exited before answering ({status}){output}")]
    FunctionExited {
        /// The function's name.
        function: String,
        /// How it exited, e.g. `exit status: 1`.
        status: String,
        /// Its captured output.
        output: String,
    },
    /// The function answered with an error (`/invocation/{id}/error`) where a response was
    /// wanted ([`FunctionProcess::invoke_for_response`]).
    #[error(
        "function {function} answered an error{}: {error}{output}",
        type_note(.error_type)
    )]
    ErrorAnswer {
        /// The function's name.
        function: String,
        /// The error body, usually `{"errorType": …, "errorMessage": …}`.
        error: Value,
        /// The `Lambda-Runtime-Function-Error-Type` header, if any.
        error_type: Option<String>,
        /// The function's captured output.
        output: String,
    },
    /// The emulator stopped serving.
    #[error("the Runtime API emulator is shut down")]
    Closed,
}

/// ` (type T)` for an error answer's type header, nothing without one.
fn type_note(error_type: &Option<String>) -> String {
    error_type
        .as_deref()
        .map(|t| format!(" (type {t})"))
        .unwrap_or_default()
}

impl InvokeError {
    fn with_output(self, text: String) -> Self {
        match self {
            InvokeError::Timeout {
                request_id, waited, ..
            } => InvokeError::Timeout {
                request_id,
                waited,
                output: text,
            },
            InvokeError::InitFailed { error, .. } => InvokeError::InitFailed {
                error,
                output: text,
            },
            other => other,
        }
    }
}

/// The emulated Lambda Runtime API of one function, serving on a loopback port until the last
/// clone is dropped.
#[derive(Clone)]
pub struct RuntimeApi {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.inner.addr)
            .field("config", &self.inner.shared.config)
            .finish()
    }
}

struct Inner {
    addr: SocketAddr,
    queue: mpsc::UnboundedSender<Queued>,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An event waiting for the function's `next`.
struct Queued {
    request_id: String,
    event: Bytes,
    timeout: Duration,
    reply: oneshot::Sender<Answer>,
}

enum Answer {
    Response(Bytes),
    Error {
        error_type: Option<String>,
        body: Bytes,
    },
}

/// The axum handlers' state.
struct Shared {
    config: RuntimeConfig,
    function_arn: String,
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<InitError>>,
    init_reported: watch::Sender<bool>,
    /// When the runtime first asked for an event: the end of its init (Lambda's Init Duration).
    first_next: watch::Sender<Option<Instant>>,
    delivered: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RuntimeApi {
    /// Starts serving for a function with the default [`RuntimeConfig`] on `127.0.0.1`, on a
    /// free port. Needs a Tokio runtime.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(RuntimeConfig::default()).await
    }

    /// Starts serving for the function `config` describes.
    pub async fn start_with(config: RuntimeConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            function_arn: config.function_arn(),
            config,
            queue: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            init_reported: watch::channel(false).0,
            first_next: watch::channel(None).0,
            delivered: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            // Ends only when aborted (the last RuntimeApi dropped) or the listener fails.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self {
            inner: Arc::new(Inner {
                addr,
                queue: tx,
                shared,
                server,
            }),
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.inner.addr.to_string()
    }

    /// The function this API serves.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.shared.config
    }

    /// What the runtime posted to `/init/error`, if it did.
    pub fn init_error(&self) -> Option<InitError> {
        lock(&self.inner.shared.init_error).clone()
    }

    /// When the runtime first called `next`, once it has.
    pub fn first_next_at(&self) -> Option<Instant> {
        *self.inner.shared.first_next.borrow()
    }

    /// Waits for the runtime's first `next` and returns when it came: a process started at `t`
    /// finished its init (Lambda's Init Duration) after `first_next().await - t`.
    pub async fn first_next(&self) -> Instant {
        let mut first = self.inner.shared.first_next.subscribe();
        match first.wait_for(Option::is_some).await {
            Ok(at) => at.unwrap_or_else(Instant::now),
            // Unreachable while `self` holds the sender; never wait forever all the same.
            Err(_) => Instant::now(),
        }
    }

    /// The request ids handed out by `next` so far, in order.
    pub fn delivered(&self) -> Vec<String> {
        lock(&self.inner.shared.delivered).clone()
    }

    /// Queues `event` for the function's next `next` and waits for its answer. The function
    /// gets a deadline `timeout` after it picks the event up; the caller waits at most
    /// `timeout` plus [`RuntimeConfig::pickup_grace`]. Fails at once when an init error was
    /// or gets reported. Dropping the future withdraws an event not yet picked up.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Invocation, InvokeError> {
        let shared = &self.inner.shared;
        let mut init_reported = shared.init_reported.subscribe();
        if let Some(error) = self.init_error() {
            return Err(InvokeError::InitFailed {
                error,
                output: String::new(),
            });
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        let started = Instant::now();
        self.inner
            .queue
            .send(Queued {
                request_id: request_id.clone(),
                event: Bytes::from(event.to_string()),
                timeout,
                reply,
            })
            .map_err(|_| InvokeError::Closed)?;
        let waited = timeout + shared.config.pickup_grace;
        let answer = tokio::select! {
            answer = tokio::time::timeout(waited, answer) => match answer {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => return Err(InvokeError::Closed),
                Err(_) => {
                    return Err(InvokeError::Timeout {
                        request_id,
                        waited,
                        output: String::new(),
                    });
                }
            },
            _ = init_reported.wait_for(|reported| *reported) => {
                return Err(InvokeError::InitFailed {
                    error: self.init_error().unwrap_or(InitError {
                        error_type: None,
                        body: Value::Null,
                    }),
                    output: String::new(),
                });
            }
        };
        let duration = started.elapsed();
        Ok(match answer {
            Answer::Response(body) => Invocation {
                request_id,
                outcome: Outcome::Response(json_or_text(&body)),
                error_type: None,
                duration,
            },
            Answer::Error { error_type, body } => Invocation {
                request_id,
                outcome: Outcome::Error(json_or_text(&body)),
                error_type,
                duration,
            },
        })
    }
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn epoch_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// An X-Ray trace header as Lambda passes it: `Root=1-<8 hex time>-<24 hex>;Parent=…;Sampled=0`.
fn trace_id() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "Root=1-{seconds:08x}-{};Parent={};Sampled=0",
        &random[..24],
        &random[16..32]
    )
}

fn problem(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"errorType": error_type, "errorMessage": message})),
    )
        .into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `GET /invocation/next`: waits for an event; events whose invoker gave up are skipped.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    shared.first_next.send_if_modified(|first| {
        let unset = first.is_none();
        if unset {
            *first = Some(Instant::now());
        }
        unset
    });
    let mut queue = shared.queue.lock().await;
    loop {
        let Some(queued) = queue.recv().await else {
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "the emulator is shutting down",
            );
        };
        if queued.reply.is_closed() {
            continue;
        }
        let deadline = epoch_ms() + queued.timeout.as_millis();
        lock(&shared.in_flight).insert(queued.request_id.clone(), queued.reply);
        lock(&shared.delivered).push(queued.request_id.clone());
        let mut response = (StatusCode::OK, queued.event).into_response();
        let headers = response.headers_mut();
        let values = [
            (header::CONTENT_TYPE.as_str(), "application/json".to_owned()),
            (REQUEST_ID_HEADER, queued.request_id),
            (DEADLINE_HEADER, deadline.to_string()),
            (FUNCTION_ARN_HEADER, shared.function_arn.clone()),
            (TRACE_ID_HEADER, trace_id()),
        ];
        for (name, value) in values {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::try_from(name),
                HeaderValue::try_from(value),
            ) {
                headers.insert(name, value);
            }
        }
        return response;
    }
}

/// Hands an answer to the invoker waiting for request `id`.
fn answer(shared: &Shared, id: &str, answer: Answer) -> Response {
    let Some(reply) = lock(&shared.in_flight).remove(id) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {id} is waiting for an answer"),
        );
    };
    // The invoker may have given up (timeout); Lambda accepts the late answer all the same.
    let _ = reply.send(answer);
    accepted()
}

/// `POST /invocation/{id}/response`.
async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    answer(&shared, &id, Answer::Response(body))
}

/// `POST /invocation/{id}/error`.
async fn fail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = header_text(&headers, ERROR_TYPE_HEADER);
    answer(&shared, &id, Answer::Error { error_type, body })
}

/// `POST /init/error`.
async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    *lock(&shared.init_error) = Some(InitError {
        error_type: header_text(&headers, ERROR_TYPE_HEADER),
        body: json_or_text(&body),
    });
    shared.init_reported.send_replace(true);
    accepted()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Client, header};

    #[tokio::test]
    async fn next_hands_out_the_event_with_lambda_headers_and_response_answers_it() {
        let api = RuntimeApi::start_with(RuntimeConfig::named("echo"))
            .await
            .unwrap();
        let started = Instant::now();
        assert_eq!(api.first_next_at(), None);
        let client = Client::new(&api);
        let runtime = tokio::spawn(async move {
            let (headers, event) = client.next().await;
            let id = header(&headers, REQUEST_ID_HEADER).to_owned();
            let deadline: u128 = header(&headers, DEADLINE_HEADER).parse().unwrap();
            let arn = header(&headers, FUNCTION_ARN_HEADER).to_owned();
            let trace = header(&headers, TRACE_ID_HEADER).to_owned();
            let status = client
                .post(
                    &format!("/invocation/{id}/response"),
                    json!({"echo": event}),
                    None,
                )
                .await;
            // A second answer for the same request is refused.
            let again = client
                .post(&format!("/invocation/{id}/response"), json!({}), None)
                .await;
            (id, deadline, arn, trace, status, again)
        });
        let before = epoch_ms();
        let invocation = api
            .invoke(json!({"n": 1}), Duration::from_secs(7))
            .await
            .unwrap();
        let (id, deadline, arn, trace, status, again) = runtime.await.unwrap();
        assert_eq!(invocation.request_id, id);
        assert_eq!(
            invocation.outcome,
            Outcome::Response(json!({"echo": {"n": 1}}))
        );
        assert_eq!(invocation.response(), Some(&json!({"echo": {"n": 1}})));
        assert_eq!((status, again), (202, 400));
        assert!(
            deadline >= before + 7000 && deadline <= epoch_ms() + 7000,
            "{deadline}"
        );
        assert_eq!(arn, "arn:aws:lambda:us-east-1:123456789012:function:echo");
        assert!(trace.starts_with("Root=1-"), "{trace}");
        assert_eq!(api.delivered(), vec![id]);
        assert_eq!(api.init_error(), None);
        let first = api.first_next_at().expect("next was called");
        assert!(first >= started && first <= Instant::now(), "{first:?}");
        assert_eq!(api.first_next().await, first);
    }

    #[tokio::test]
    async fn next_long_polls_until_an_event_is_queued_and_errors_are_reported() {
        let api = RuntimeApi::start().await.unwrap();
        let client = Client::new(&api);
        let runtime = tokio::spawn(async move {
            for _ in 0..2 {
                let (headers, event) = client.next().await;
                let id = header(&headers, REQUEST_ID_HEADER).to_owned();
                if event["fail"] == true {
                    let body = json!({"errorType": "Boom", "errorMessage": "it failed"});
                    let status = client
                        .post(&format!("/invocation/{id}/error"), body, Some("Unhandled"))
                        .await;
                    assert_eq!(status, 202);
                } else {
                    client
                        .post(&format!("/invocation/{id}/response"), json!("ok"), None)
                        .await;
                }
            }
        });
        // The runtime is already waiting in `next` when the event comes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let failed = api
            .invoke(json!({"fail": true}), DEFAULT_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            failed.error(),
            Some(&json!({"errorType": "Boom", "errorMessage": "it failed"}))
        );
        assert_eq!(failed.error_type.as_deref(), Some("Unhandled"));
        assert_eq!(failed.response(), None);
        let ok = api.invoke(json!({}), DEFAULT_TIMEOUT).await.unwrap();
        assert_eq!(ok.outcome, Outcome::Response(json!("ok")));
        runtime.await.unwrap();
        assert_eq!(api.delivered().len(), 2);
    }

    #[tokio::test]
    async fn an_unanswered_invocation_times_out_and_a_withdrawn_event_is_never_delivered() {
        let api = RuntimeApi::start_with(RuntimeConfig {
            pickup_grace: Duration::from_millis(100),
            ..RuntimeConfig::default()
        })
        .await
        .unwrap();
        let error = api
            .invoke(json!({"lost": true}), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(
            matches!(error, InvokeError::Timeout { waited, .. } if waited == Duration::from_millis(300)),
            "{error}"
        );
        // The timed-out event was withdrawn: the next runtime poll gets the next event.
        let client = Client::new(&api);
        let runtime = tokio::spawn(async move {
            let (headers, event) = client.next().await;
            let id = header(&headers, REQUEST_ID_HEADER).to_owned();
            client
                .post(&format!("/invocation/{id}/response"), event, None)
                .await;
        });
        let ok = api
            .invoke(json!({"lost": false}), DEFAULT_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(ok.response(), Some(&json!({"lost": false})));
        runtime.await.unwrap();
        assert_eq!(api.delivered().len(), 1);
    }

    #[tokio::test]
    async fn an_init_error_is_kept_and_fails_waiting_and_later_invocations() {
        let api = RuntimeApi::start().await.unwrap();
        let waiting = {
            let api = api.clone();
            tokio::spawn(async move { api.invoke(json!({}), DEFAULT_TIMEOUT).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = Client::new(&api)
            .post(
                "/init/error",
                json!({"errorType": "Config", "errorMessage": "X is required"}),
                Some("Runtime.Config"),
            )
            .await;
        assert_eq!(status, 202);
        let expected = InitError {
            error_type: Some("Runtime.Config".into()),
            body: json!({"errorType": "Config", "errorMessage": "X is required"}),
        };
        assert_eq!(api.init_error(), Some(expected.clone()));
        let error = waiting.await.unwrap().unwrap_err();
        assert!(matches!(&error, InvokeError::InitFailed { error, .. } if *error == expected));
        assert!(error.to_string().contains("X is required"), "{error}");
        let later = api.invoke(json!({}), DEFAULT_TIMEOUT).await.unwrap_err();
        assert!(matches!(later, InvokeError::InitFailed { .. }));
    }

    #[tokio::test]
    async fn answers_for_unknown_requests_are_refused() {
        let api = RuntimeApi::start().await.unwrap();
        let client = Client::new(&api);
        assert_eq!(
            client
                .post("/invocation/nope/response", json!({}), None)
                .await,
            400
        );
        assert_eq!(
            client.post("/invocation/nope/error", json!({}), None).await,
            400
        );
    }
}
