//! A function binary as a child process, with the environment Lambda gives it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{oneshot, watch};

use crate::{
    DEFAULT_TIMEOUT, InitError, Invocation, InvokeError, Outcome, RuntimeApi, RuntimeConfig, lock,
};

/// Set this variable (to anything) in the test's environment to echo every captured line to
/// the test's stderr as it arrives, prefixed with the function's name.
pub const ECHO_VAR: &str = "LAMBDA_EMULATOR_ECHO";

/// The dummy credentials a function gets unless the caller sets others.
const DUMMY_ACCESS_KEY_ID: &str = "test";
const DUMMY_SECRET_ACCESS_KEY: &str = "test";

/// How a function process is started: program, arguments and the caller's variables. Made by
/// [`FunctionProcess::command`].
#[derive(Debug, Clone)]
pub struct FunctionCommand {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
}

impl FunctionCommand {
    /// Adds a command-line argument (Lambda passes none; useful for stand-in functions).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets a variable; it wins over the ones Lambda sets.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets several variables, as [`Self::env`].
    pub fn envs<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The environment the process gets: Lambda's variables for `api`'s function, `PATH` from
    /// the test's environment, then the caller's variables. Nothing else is inherited.
    pub fn environment(&self, api: &RuntimeApi) -> Vec<(String, String)> {
        let config = api.config();
        let mut env: Vec<(String, String)> = vec![
            ("AWS_LAMBDA_RUNTIME_API".into(), api.address()),
            (
                "AWS_LAMBDA_FUNCTION_NAME".into(),
                config.function_name.clone(),
            ),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
                config.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME".into(),
                format!("/aws/lambda/{}", config.function_name),
            ),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME".into(),
                format!("2026/01/01/[$LATEST]{}", uuid::Uuid::new_v4().simple()),
            ),
            ("AWS_LAMBDA_INITIALIZATION_TYPE".into(), "on-demand".into()),
            ("AWS_REGION".into(), config.region.clone()),
            ("AWS_DEFAULT_REGION".into(), config.region.clone()),
            ("AWS_ACCESS_KEY_ID".into(), DUMMY_ACCESS_KEY_ID.into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                DUMMY_SECRET_ACCESS_KEY.into(),
            ),
            ("_HANDLER".into(), "bootstrap".into()),
            ("TZ".into(), ":UTC".into()),
        ];
        if let Some(path) = std::env::var_os("PATH") {
            env.push(("PATH".into(), path.to_string_lossy().into_owned()));
        }
        for (name, value) in &self.env {
            env.retain(|(n, _)| n != name);
            env.push((name.clone(), value.clone()));
        }
        env
    }

    /// Starts the process against `api`: stdin closed, stdout and stderr captured line by
    /// line. Needs a Tokio runtime.
    pub fn spawn(self, api: &RuntimeApi) -> std::io::Result<FunctionProcess> {
        let env = self.environment(api);
        let name = api.config().function_name.clone();
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the watcher task is dropped with its runtime, the process still dies.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", self.program.display()),
                )
            })?;
        let echo = std::env::var_os(ECHO_VAR).is_some();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let out_task = child.stdout.take().map(|pipe| {
            tokio::spawn(capture(
                pipe,
                Arc::clone(&stdout),
                echo.then(|| format!("[{name} stdout]")),
            ))
        });
        let err_task = child.stderr.take().map(|pipe| {
            tokio::spawn(capture(
                pipe,
                Arc::clone(&stderr),
                echo.then(|| format!("[{name} stderr]")),
            ))
        });
        let (exit_tx, exit_rx) = watch::channel(Life::Running);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let pid = child.id();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                // A kill request, or the FunctionProcess dropped.
                _ = kill_rx => {
                    let _ = child.kill().await;
                    child.wait().await.ok()
                }
            };
            // The pipes close with the process; let the readers take the last lines.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                if let Some(task) = out_task {
                    let _ = task.await;
                }
                if let Some(task) = err_task {
                    let _ = task.await;
                }
            })
            .await;
            exit_tx.send_replace(Life::Exited(status));
        });
        Ok(FunctionProcess {
            api: api.clone(),
            name: api.config().function_name.clone(),
            pid,
            stdout,
            stderr,
            exit: exit_rx,
            kill: Mutex::new(Some(kill_tx)),
        })
    }
}

/// Reads `pipe` line by line into `lines` (invalid UTF-8 replaced), until it closes.
async fn capture(
    pipe: impl AsyncRead + Unpin,
    lines: Arc<Mutex<Vec<String>>>,
    echo: Option<String>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_owned();
                if let Some(prefix) = &echo {
                    eprintln!("{prefix} {line}");
                }
                lock(&lines).push(line);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Life {
    Running,
    /// `None` when waiting for the process failed.
    Exited(Option<ExitStatus>),
}

/// A running function binary, killed when dropped.
pub struct FunctionProcess {
    api: RuntimeApi,
    name: String,
    pid: Option<u32>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    exit: watch::Receiver<Life>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for FunctionProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionProcess")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("exit", &*self.exit.borrow())
            .finish()
    }
}

impl FunctionProcess {
    /// How to start `program` (for the workspace's functions: `env!("CARGO_BIN_EXE_<name>")`).
    pub fn command(program: impl Into<PathBuf>) -> FunctionCommand {
        FunctionCommand {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Starts `program` against `api` with the caller's variables `env`; see
    /// [`FunctionCommand::spawn`].
    pub fn spawn<K, V>(
        api: &RuntimeApi,
        program: impl Into<PathBuf>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> std::io::Result<Self>
    where
        K: Into<String>,
        V: Into<String>,
    {
        Self::command(program).envs(env).spawn(api)
    }

    /// A cold start of the function `function_name`: a Runtime API of its own
    /// ([`RuntimeApi::start_with`] with [`RuntimeConfig::named`]) and `program` started against
    /// it with the caller's variables `env`, as [`Self::spawn`]. Needs a Tokio runtime.
    pub async fn cold_start<K, V>(
        function_name: &str,
        program: impl Into<PathBuf>,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> std::io::Result<Self>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let api = RuntimeApi::start_with(RuntimeConfig::named(function_name)).await?;
        Self::spawn(&api, program, env)
    }

    /// The Runtime API this process talks to.
    pub fn api(&self) -> &RuntimeApi {
        &self.api
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Invokes the function through its Runtime API (see [`RuntimeApi::invoke`]), failing with
    /// [`InvokeError::FunctionExited`] and the captured output if the process exits before it
    /// answers. Other errors carry the captured output too.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Invocation, InvokeError> {
        let mut exit = self.exit.clone();
        let exited = tokio::select! {
            biased;
            result = self.api.invoke(event, timeout) => {
                return result.map_err(|e| e.with_output(self.output_section()));
            }
            life = exit.wait_for(|life| matches!(life, Life::Exited(_))) => {
                life.map(|life| *life).unwrap_or(Life::Exited(None))
            }
        };
        Err(InvokeError::FunctionExited {
            function: self.name.clone(),
            status: describe(exited),
            output: self.output_section(),
        })
    }

    /// Invokes the function as [`Self::invoke`] and returns its response body; an error answer
    /// fails with [`InvokeError::ErrorAnswer`], which carries the error and the captured output,
    /// for a test that wants a response and should say why there is none.
    pub async fn invoke_for_response(
        &self,
        event: Value,
        timeout: Duration,
    ) -> Result<Value, InvokeError> {
        let invocation = self.invoke(event, timeout).await?;
        match invocation.outcome {
            Outcome::Response(response) => Ok(response),
            Outcome::Error(error) => Err(InvokeError::ErrorAnswer {
                function: self.name.clone(),
                error,
                error_type: invocation.error_type,
                output: self.output_section(),
            }),
        }
    }

    /// Asserts that the function cannot start and says why, naming `needle` (say, the missing
    /// variable) everywhere Lambda and its operator would look:
    ///
    /// - the process exits unsuccessfully within `wait`;
    /// - it reported an init error (`/init/error`) of type `error_type` whose `errorMessage`
    ///   contains `needle`, so Lambda answers invocations with the reason, not just
    ///   `Runtime.ExitError`;
    /// - a JSON line on stdout (its CloudWatch logs) with `"level": "ERROR"` contains `needle`
    ///   in its text (any field: where a logging format puts it is the caller's to check, with
    ///   [`InitFailure::logged_at`]);
    /// - invoking it with `event` fails at once with [`InvokeError::InitFailed`], whose message
    ///   contains `needle`.
    ///
    /// Returns what it found, for the caller's own checks.
    ///
    /// # Panics
    ///
    /// When one of these does not hold, with the function's output.
    pub async fn assert_init_fails_naming(
        &self,
        error_type: &str,
        needle: &str,
        event: Value,
        wait: Duration,
    ) -> InitFailure {
        let status = self.wait_exit(wait).await.unwrap_or_else(|| {
            panic!(
                "function {} did not stop within {wait:?}:\n{}",
                self.name,
                self.output()
            )
        });
        assert!(!status.success(), "{status}\n{}", self.output());
        let init_error = self.api.init_error().unwrap_or_else(|| {
            panic!(
                "function {} reported no init error:\n{}",
                self.name,
                self.output()
            )
        });
        assert_eq!(
            init_error.error_type.as_deref(),
            Some(error_type),
            "{init_error:?}"
        );
        assert!(
            init_error.body["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "the init error does not name {needle}: {init_error:?}"
        );
        // The process has exited, so its output is fully captured: no waiting for lines.
        let error_lines: Vec<Value> = self
            .stdout_lines()
            .iter()
            .filter(|line| line.contains(needle))
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["level"] == "ERROR")
            .collect();
        assert!(
            !error_lines.is_empty(),
            "no JSON ERROR line naming {needle}:\n{}",
            self.output()
        );
        let invoke_error = self
            .invoke(event, DEFAULT_TIMEOUT)
            .await
            .expect_err("the function that cannot start answered an invocation");
        assert!(
            matches!(invoke_error, InvokeError::InitFailed { .. }),
            "{invoke_error}"
        );
        assert!(invoke_error.to_string().contains(needle), "{invoke_error}");
        InitFailure {
            needle: needle.to_owned(),
            init_error,
            error_lines,
        }
    }

    /// Waits up to `timeout` for the process to exit; its status, `None` if it still runs (or
    /// waiting for it failed).
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut exit = self.exit.clone();
        match tokio::time::timeout(
            timeout,
            exit.wait_for(|life| matches!(life, Life::Exited(_))),
        )
        .await
        {
            Ok(Ok(life)) => match *life {
                Life::Exited(status) => status,
                Life::Running => None,
            },
            _ => None,
        }
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        match *self.exit.borrow() {
            Life::Exited(status) => status,
            Life::Running => None,
        }
    }

    /// Whether the process has exited (and its output is fully captured).
    pub fn has_exited(&self) -> bool {
        matches!(*self.exit.borrow(), Life::Exited(_))
    }

    /// Kills the process and waits (up to 5 s) until it is gone.
    pub async fn kill(&self) -> Option<ExitStatus> {
        if let Some(kill) = lock(&self.kill).take() {
            let _ = kill.send(());
        }
        self.wait_exit(Duration::from_secs(5)).await
    }

    /// Every stdout line so far (the function's logs and metric lines).
    pub fn stdout_lines(&self) -> Vec<String> {
        lock(&self.stdout).clone()
    }

    /// Waits up to `timeout` until `done` holds for the stdout lines captured so far; whether
    /// it did. A function writes a line before it answers, but the line is captured by a task
    /// of its own, so right after [`Self::invoke`] returns it may not be there yet: assert on
    /// output through this.
    pub async fn wait_for_stdout(
        &self,
        timeout: Duration,
        done: impl Fn(&[String]) -> bool,
    ) -> bool {
        let give_up = tokio::time::Instant::now() + timeout;
        loop {
            if done(&lock(&self.stdout)) {
                return true;
            }
            if tokio::time::Instant::now() >= give_up || self.has_exited() {
                return done(&lock(&self.stdout));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// The stdout lines that are JSON objects, parsed (others are left out).
    pub fn stdout_json(&self) -> Vec<Value> {
        lock(&self.stdout)
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Both streams as one text, for failure messages.
    pub fn output(&self) -> String {
        let stdout = lock(&self.stdout).join("\n");
        let stderr = lock(&self.stderr).join("\n");
        format!("--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
    }

    fn output_section(&self) -> String {
        format!("\n{}", self.output())
    }
}

/// What [`FunctionProcess::assert_init_fails_naming`] found of a function that cannot start.
#[derive(Debug, Clone, PartialEq)]
pub struct InitFailure {
    needle: String,
    /// What the function reported to `/init/error`.
    pub init_error: InitError,
    /// The JSON stdout lines with `"level": "ERROR"` whose text names the needle.
    pub error_lines: Vec<Value>,
}

impl InitFailure {
    /// Whether one of [`Self::error_lines`] has, at the JSON pointer `pointer` (RFC 6901, e.g.
    /// `/fields/error` for tracing-subscriber's JSON lines), a string that contains the needle:
    /// that the reason is logged where the logging format puts it.
    pub fn logged_at(&self, pointer: &str) -> bool {
        self.error_lines.iter().any(|line| {
            line.pointer(pointer)
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains(&self.needle))
        })
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        // The watcher kills the process when the sender goes away.
        lock(&self.kill).take();
    }
}

fn describe(life: Life) -> String {
    match life {
        Life::Exited(Some(status)) => status.to_string(),
        Life::Exited(None) => "exit status unknown".into(),
        Life::Running => "still running".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::testing::{Client, header};
    use crate::{REQUEST_ID_HEADER, RuntimeConfig};

    fn sh(script: &str) -> FunctionCommand {
        FunctionProcess::command("/bin/sh").arg("-c").arg(script)
    }

    /// A Runtime API for the function `name`.
    async fn api_named(name: &str) -> RuntimeApi {
        RuntimeApi::start_with(RuntimeConfig::named(name))
            .await
            .unwrap()
    }

    /// Plays the runtime of a function for one invocation: answers it with `answer` on
    /// `/invocation/{id}/{path}` (`response` or `error`).
    fn answer_once(
        api: &RuntimeApi,
        path: &'static str,
        answer: Value,
        error_type: Option<&'static str>,
    ) -> tokio::task::JoinHandle<()> {
        let client = Client::new(api);
        tokio::spawn(async move {
            let (headers, _) = client.next().await;
            let id = header(&headers, REQUEST_ID_HEADER).to_owned();
            let status = client
                .post(&format!("/invocation/{id}/{path}"), answer, error_type)
                .await;
            assert_eq!(status, 202);
        })
    }

    /// A stand-in for a function that cannot start: its runtime part (this test) reports the
    /// init error `X_URL is required`; the process logs it as a JSON ERROR line (or `log`
    /// instead) and on stderr, and exits 1.
    async fn failing_start(log: &str, error_type: &str) -> FunctionProcess {
        let script = format!("printf '%s\\n' '{log}'; echo 'X_URL is required' >&2; exit 1");
        let api = api_named("broken").await;
        let status = Client::new(&api)
            .post(
                "/init/error",
                json!({"errorType": error_type, "errorMessage": "X_URL is required"}),
                Some(error_type),
            )
            .await;
        assert_eq!(status, 202);
        sh(&script).spawn(&api).unwrap()
    }

    /// The assertion under test, for a `Runtime.ConfigError` naming `X_URL`.
    async fn expect_config_error_naming_x_url(
        function: &FunctionProcess,
        wait: Duration,
    ) -> InitFailure {
        function
            .assert_init_fails_naming("Runtime.ConfigError", "X_URL", json!({}), wait)
            .await
    }

    const ERROR_LINE: &str = r#"{"level":"ERROR","fields":{"message":"broken cannot start","error":"X_URL is required"}}"#;

    #[tokio::test]
    async fn the_process_gets_lambdas_environment_and_nothing_of_the_tests() {
        let api = api_named("env-dump").await;
        let function = sh("env")
            .env("MY_SETTING", "42")
            .env("AWS_REGION", "eu-west-1")
            .spawn(&api)
            .unwrap();
        let status = function.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert!(status.success());
        let env: HashMap<String, String> = function
            .stdout_lines()
            .into_iter()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], api.address());
        assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "env-dump");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
        assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
        assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/env-dump");
        assert!(env.contains_key("AWS_LAMBDA_LOG_STREAM_NAME"));
        assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
        // The caller's variables win over Lambda's.
        assert_eq!(env["AWS_REGION"], "eu-west-1");
        assert_eq!(env["AWS_ACCESS_KEY_ID"], "test");
        assert_eq!(env["AWS_SECRET_ACCESS_KEY"], "test");
        assert_eq!(env["MY_SETTING"], "42");
        // cargo sets CARGO_* (and the shell HOME) for the test itself: none leaks through.
        let leaked: Vec<&String> = env
            .keys()
            .filter(|k| k.starts_with("CARGO") || *k == "HOME" || *k == "RUST_LOG")
            .collect();
        assert!(leaked.is_empty(), "{leaked:?}");
    }

    #[tokio::test]
    async fn an_exit_before_answering_fails_the_invocation_with_the_output() {
        let api = api_named("quitter").await;
        let function = sh("echo starting; echo 'SETTING_X is required' >&2; sleep 0.3; exit 3")
            .spawn(&api)
            .unwrap();
        let error = function
            .invoke(json!({}), DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(
            matches!(&error, InvokeError::FunctionExited { function, status, .. }
                if function == "quitter" && status.contains('3')),
            "{text}"
        );
        assert!(text.contains("starting"), "{text}");
        assert!(text.contains("SETTING_X is required"), "{text}");
        assert_eq!(function.exit_status().and_then(|s| s.code()), Some(3));
        assert_eq!(function.stderr_lines(), vec!["SETTING_X is required"]);
        assert!(function.has_exited());
        // The event was withdrawn, never handed out.
        assert!(api.delivered().is_empty());
    }

    #[tokio::test]
    async fn kill_and_drop_stop_the_process() {
        let api = RuntimeApi::start().await.unwrap();
        let function = sh("echo up; sleep 30").spawn(&api).unwrap();
        let pid = function.pid().unwrap();
        // Killed on request.
        let status = function.kill().await.unwrap();
        assert!(!status.success());
        assert!(function.has_exited());

        let function = sh("sleep 30").spawn(&api).unwrap();
        let pid2 = function.pid().unwrap();
        drop(function);
        // Killed on drop: gone from /proc shortly after.
        let gone = async {
            while std::path::Path::new(&format!("/proc/{pid2}")).exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), gone)
            .await
            .unwrap_or_else(|_| panic!("process {pid2} (after {pid}) still runs after drop"));
    }

    #[tokio::test]
    async fn wait_for_stdout_sees_lines_as_they_come() {
        let api = RuntimeApi::start().await.unwrap();
        let function = sh("sleep 0.2; echo late; sleep 30").spawn(&api).unwrap();
        let seen = function
            .wait_for_stdout(Duration::from_secs(10), |lines| {
                lines.iter().any(|l| l == "late")
            })
            .await;
        assert!(seen, "{}", function.output());
        let never = function
            .wait_for_stdout(Duration::from_millis(100), |lines| lines.len() > 1)
            .await;
        assert!(!never);
    }

    #[tokio::test]
    async fn a_cold_start_runs_the_program_under_a_runtime_api_of_its_own() {
        let function = FunctionProcess::cold_start("cold", "/usr/bin/env", [("MY_SETTING", "7")])
            .await
            .unwrap();
        assert_eq!(function.api().config().function_name, "cold");
        let status = function.wait_exit(Duration::from_secs(10)).await.unwrap();
        assert!(status.success());
        let lines = function.stdout_lines();
        for expected in [
            "AWS_LAMBDA_FUNCTION_NAME=cold".to_owned(),
            format!("AWS_LAMBDA_RUNTIME_API={}", function.api().address()),
            "MY_SETTING=7".to_owned(),
        ] {
            assert!(lines.contains(&expected), "{expected} not in {lines:?}");
        }
        let missing = FunctionProcess::cold_start("cold", "/nonexistent/bootstrap", [("A", "b")])
            .await
            .unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/bootstrap"),
            "{missing}"
        );
    }

    #[tokio::test]
    async fn invoke_for_response_returns_the_response_and_fails_on_an_error_answer() {
        let api = api_named("answerer").await;
        let function = sh("echo 'handler says hello'; sleep 30")
            .spawn(&api)
            .unwrap();
        let runtime = answer_once(&api, "response", json!({"ok": true}), None);
        let response = function
            .invoke_for_response(json!({}), DEFAULT_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(response, json!({"ok": true}));
        runtime.await.unwrap();

        function
            .wait_for_stdout(Duration::from_secs(10), |lines| !lines.is_empty())
            .await;
        let body = json!({"errorType": "Boom", "errorMessage": "it failed"});
        let runtime = answer_once(&api, "error", body.clone(), Some("Unhandled"));
        let error = function
            .invoke_for_response(json!({}), DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        runtime.await.unwrap();
        let text = error.to_string();
        assert!(
            matches!(&error, InvokeError::ErrorAnswer { function, error, error_type, .. }
                if function == "answerer" && *error == body
                    && error_type.as_deref() == Some("Unhandled")),
            "{text}"
        );
        // What a failing test prints: the error, its type and the function's output.
        for part in [
            "it failed",
            "Boom",
            "(type Unhandled)",
            "handler says hello",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
    }

    #[tokio::test]
    async fn a_start_that_fails_naming_the_setting_passes_the_assertion() {
        let function = failing_start(ERROR_LINE, "Runtime.ConfigError").await;
        let failure = expect_config_error_naming_x_url(&function, Duration::from_secs(10)).await;
        assert_eq!(failure.init_error.body["errorType"], "Runtime.ConfigError");
        assert_eq!(failure.error_lines.len(), 1);
        assert!(failure.logged_at("/fields/error"));
        assert!(!failure.logged_at("/fields/message"));
        assert!(!failure.logged_at("/nothing"));
    }

    #[tokio::test]
    #[should_panic(expected = "no JSON ERROR line naming X_URL")]
    async fn the_assertion_wants_a_json_error_line_naming_it() {
        // Named on an INFO line only: not enough.
        let function = failing_start(
            r#"{"level":"INFO","fields":{"error":"X_URL is required"}}"#,
            "Runtime.ConfigError",
        )
        .await;
        expect_config_error_naming_x_url(&function, Duration::from_secs(10)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "right: Some(\"Runtime.ConfigError\")")]
    async fn the_assertion_wants_the_error_type() {
        let function = failing_start(ERROR_LINE, "Runtime.Unknown").await;
        expect_config_error_naming_x_url(&function, Duration::from_secs(10)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "reported no init error")]
    async fn the_assertion_wants_an_init_error_report() {
        // Exits naming the variable, but never tells the Runtime API.
        let api = RuntimeApi::start().await.unwrap();
        let function = sh(&format!("echo '{ERROR_LINE}'; exit 1"))
            .spawn(&api)
            .unwrap();
        expect_config_error_naming_x_url(&function, Duration::from_secs(10)).await;
    }

    #[tokio::test]
    #[should_panic(expected = "did not stop within")]
    async fn the_assertion_wants_the_process_to_stop() {
        let api = RuntimeApi::start().await.unwrap();
        let function = sh("sleep 30").spawn(&api).unwrap();
        expect_config_error_naming_x_url(&function, Duration::from_millis(300)).await;
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let api = RuntimeApi::start().await.unwrap();
        let error =
            FunctionProcess::spawn(&api, "/nonexistent/bootstrap", [("A", "b")]).unwrap_err();
        assert!(
            error.to_string().contains("/nonexistent/bootstrap"),
            "{error}"
        );
    }
}
