//! What the relay's two Lambda functions share as Lambda hosts: logs for CloudWatch in the
//! format and at the level of the function's logging configuration ([`init_tracing`]; never
//! lambda_runtime's TRACE dump of a raw event, [`NEVER_TRACED`], since a webhook's event holds
//! the request's credential) and, when a function cannot start, the report of why to the Lambda
//! Runtime API ([`report_init_error`]).
//!
//! A function whose settings are wrong stops before its runtime loop starts. Exiting alone
//! would show as `Runtime.ExitError`, the reason only in the logs; reporting it first makes
//! Lambda answer every invocation (a console test, API Gateway's logged error) with the
//! message naming the variable, as the Runtime API asks of a custom runtime.

#[cfg(feature = "testing")]
pub mod testing;

use http::{Method, Request};
use lambda_runtime_api_client::PooledClient;
use lambda_runtime_api_client::body::Body;

/// The `errorType` a failed start-up is reported with.
pub const INIT_ERROR_TYPE: &str = "Runtime.ConfigError";

/// How a function logs, from Lambda's logging settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// One JSON object a line (the default, and `AWS_LAMBDA_LOG_FORMAT=JSON`), or plain text
    /// (`Text`).
    pub json: bool,
    /// The `EnvFilter` directives.
    pub filter: String,
}

impl LogSettings {
    /// Reads `AWS_LAMBDA_LOG_FORMAT` (`JSON` | `Text`, any case; JSON otherwise) and the level
    /// from `AWS_LAMBDA_LOG_LEVEL` (`TRACE` … `ERROR`, `FATAL` as `error`), which Lambda sets
    /// from the function's logging configuration, else `RUST_LOG`, else `info`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let set = |var: &str| {
            get(var)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let json = !set("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("text"));
        let lambda_level = set("AWS_LAMBDA_LOG_LEVEL").and_then(|level| {
            match level.to_ascii_lowercase().as_str() {
                "fatal" => Some("error".to_owned()),
                l @ ("trace" | "debug" | "info" | "warn" | "error") => Some(l.to_owned()),
                _ => None,
            }
        });
        let filter = lambda_level
            .or_else(|| set("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        Self { json, filter }
    }
}

/// Targets whose TRACE lines carry credentials, never written whatever the filter (held at
/// DEBUG by [`LogSettings::env_filter`], and dropped by a layer of [`LogSettings::subscriber`]
/// that span directives cannot get past):
/// `lambda_runtime` writes every raw invocation event at TRACE ("raw JSON event received from
/// Lambda"), and a webhook's event holds the request's headers, `Authorization` among them
/// (Tradecloud's Basic credential or Bearer token).
pub const NEVER_TRACED: [&str; 1] = ["lambda_runtime::layers::api_response"];

impl LogSettings {
    /// The filter of [`Self::filter`] (`info` when it does not parse), with every target of
    /// [`NEVER_TRACED`] held at DEBUG when the filter lets anything TRACE through: a more
    /// specific directive than any level or crate name the filter gives, so it wins over
    /// `trace` and `lambda_runtime=trace` alike (and, added only then, it turns on nothing a
    /// quieter filter leaves off).
    pub fn env_filter(&self) -> tracing_subscriber::EnvFilter {
        use tracing_subscriber::filter::LevelFilter;
        let filter = tracing_subscriber::EnvFilter::try_new(&self.filter)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        if filter
            .max_level_hint()
            .is_some_and(|level| level < LevelFilter::TRACE)
        {
            return filter;
        }
        NEVER_TRACED.iter().fold(filter, |filter, target| {
            filter.add_directive(
                format!("{target}=debug")
                    .parse()
                    .expect("a target and a level make a directive"),
            )
        })
    }
}

/// Log lines on stdout (CloudWatch) as [`LogSettings::from_env`] reads them from the process
/// environment, never coloured. JSON lines carry their current span's fields: the webhook's
/// request span (request id, kind, id, event name, dedupe key, outcome), or lambda_runtime's
/// invocation span (`requestId`). A panic is logged there too, escaped
/// ([`tcrelay_core::logsafe::install_panic_hook`]), instead of raw on stderr.
pub fn init_tracing() {
    let settings = LogSettings::from_env(|var| std::env::var(var).ok());
    use tracing_subscriber::util::SubscriberInitExt as _;
    settings.subscriber(std::io::stdout).init();
    tcrelay_core::logsafe::install_panic_hook();
}

impl LogSettings {
    /// The subscriber [`init_tracing`] installs, writing to `writer`: filtered by
    /// [`Self::env_filter`], JSON lines with the current span's fields or plain text, never
    /// coloured; and never a TRACE event of a [`NEVER_TRACED`] target, whatever the filter
    /// says. The `EnvFilter` directive alone did not hold: a span directive
    /// (`[Lambda runtime invoke]=trace`) enables every event inside the span before any target
    /// directive is consulted, and lambda_runtime dumps the raw event inside its invocation
    /// span. This filter is a layer of its own, which every event must pass.
    pub fn subscriber<W>(&self, writer: W) -> Box<dyn tracing::Subscriber + Send + Sync>
    where
        W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
    {
        use tracing_subscriber::layer::SubscriberExt as _;
        let never_traced = tracing_subscriber::filter::filter_fn(|metadata| {
            *metadata.level() != tracing::Level::TRACE || !NEVER_TRACED.contains(&metadata.target())
        });
        let builder = tracing_subscriber::fmt()
            .with_env_filter(self.env_filter())
            .with_ansi(false)
            .with_target(false)
            .with_writer(writer);
        if self.json {
            Box::new(
                builder
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .finish()
                    .with(never_traced),
            )
        } else {
            Box::new(builder.finish().with(never_traced))
        }
    }
}

/// A function that cannot start: one log line naming the setting, and the same message to the
/// Runtime API ([`report_init_error`]), which answers every invocation with it until the
/// configuration is fixed. The caller exits afterwards.
pub async fn start_failed(function: &str, message: &str) {
    tracing::error!(error = message, "{function} cannot start");
    if let Err(report) = report_init_error(message).await {
        tracing::warn!(error = report, "could not report the init error");
    }
}

/// Reports a failed start-up to the Runtime API named by `AWS_LAMBDA_RUNTIME_API`
/// (`POST /2018-06-01/runtime/init/error`). The caller exits afterwards either way; a report
/// that fails is returned for the caller to log.
pub async fn report_init_error(message: &str) -> Result<(), String> {
    let body = serde_json::json!({
        "errorMessage": message,
        "errorType": INIT_ERROR_TYPE,
        "stackTrace": [],
    })
    .to_string();
    let request = Request::builder()
        .method(Method::POST)
        .uri("/2018-06-01/runtime/init/error")
        .header("lambda-runtime-function-error-type", INIT_ERROR_TYPE)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    // Lambda names the Runtime API as `host:port`.
    let address = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set: not running under Lambda".to_owned())?;
    let endpoint: http::Uri = format!("http://{address}")
        .parse()
        .map_err(|e| format!("AWS_LAMBDA_RUNTIME_API {address:?}: {e}"))?;
    let response = PooledClient::builder()
        .with_endpoint(endpoint)
        .build()
        .call(request)
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the Runtime API answered {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> LogSettings {
        LogSettings::from_env(|var| {
            pairs
                .iter()
                .find(|(k, _)| *k == var)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn the_raw_event_is_never_traced_whatever_the_level() {
        for filter in [
            "trace",
            "lambda_runtime=trace",
            "info,lambda_runtime=trace",
            "bogus[",
        ] {
            let settings = LogSettings {
                json: true,
                filter: filter.to_owned(),
            };
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(settings.env_filter())
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(
                        target: "lambda_runtime::layers::api_response",
                        tracing::Level::TRACE
                    ),
                    "{filter}: the raw event (with its Authorization header) would be logged"
                );
                assert_eq!(
                    tracing::enabled!(
                        target: "lambda_runtime::layers::api_response",
                        tracing::Level::DEBUG
                    ),
                    filter.contains("trace") || filter == "debug",
                    "{filter}: its DEBUG lines keep the level asked for"
                );
            });
        }
    }

    /// A filter can turn TRACE on by span as well as by target or level (`[span]=trace`), and
    /// lambda_runtime dumps the raw event inside its invocation span ("Lambda runtime invoke"):
    /// a span directive let the dump, with the request's `Authorization` header, into the logs
    /// past the target held at DEBUG. Checked on what the installed subscriber writes.
    #[test]
    fn the_raw_event_is_never_written_even_when_a_span_directive_asks_for_trace() {
        use std::io::Write;
        use std::sync::{Arc, Mutex};

        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        for filter in [
            "[Lambda runtime invoke]=trace",
            "info,[Lambda runtime invoke]=trace",
            "[{requestId}]=trace",
            "lambda_runtime[Lambda runtime invoke]=trace",
            "trace",
        ] {
            for json in [true, false] {
                let buffer = Buffer::default();
                let writer = buffer.clone();
                let settings = LogSettings {
                    json,
                    filter: filter.to_owned(),
                };
                let subscriber = settings.subscriber(move || writer.clone());
                tracing::subscriber::with_default(subscriber, || {
                    // As lambda_runtime::layers::trace opens it.
                    let span = tracing::info_span!(
                        target: "lambda_runtime::layers::trace",
                        "Lambda runtime invoke",
                        requestId = "r-1"
                    );
                    let _entered = span.enter();
                    // As lambda_runtime::layers::api_response writes it.
                    tracing::trace!(
                        target: "lambda_runtime::layers::api_response",
                        body = "{\"headers\":{\"authorization\":\"Basic c2VjcmV0\"}}",
                        "raw JSON event received from Lambda"
                    );
                    // The span directive still works for everything else.
                    tracing::trace!(target: "lambda_runtime::runtime", "other trace line");
                });
                let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
                assert!(
                    !logs.contains("c2VjcmV0"),
                    "{filter} (json: {json}): the raw event was written:\n{logs}"
                );
                assert!(
                    logs.contains("other trace line"),
                    "{filter} (json: {json}): the filter did not apply:\n{logs}"
                );
            }
        }
    }

    /// Set in the child process of [`a_panic_writes_nothing_raw`], which panics there.
    const PANIC_CHILD: &str = "TCRELAY_LAMBDA_TEST_PANIC_CHILD";

    /// A panic's message reaches the function's log (stdout and stderr both go to CloudWatch)
    /// with its line breaks and bidirectional controls escaped: Rust's default panic hook
    /// wrote it raw to stderr, so a panic formatting text from a request could start a forged
    /// log line. Run in a child process, since the function's set-up is global (the
    /// subscriber, the panic hook); the child is this same test, the variable telling it to
    /// panic.
    #[test]
    fn a_panic_writes_nothing_raw() {
        const FORGED: &str = "{\"level\":\"INFO\",\"fields\":{\"message\":\"enqueued\"}}";
        if std::env::var_os(PANIC_CHILD).is_some() {
            init_tracing();
            let _ = std::thread::Builder::new()
                .name("worker".into())
                .spawn(|| panic!("cannot send PO-1\n{FORGED} \u{202e}202=sutats"))
                .unwrap()
                .join();
            return;
        }
        // A filter that turns ERROR off too: the panic still goes to stderr, escaped.
        for (format, level) in [("JSON", "info"), ("Text", "info"), ("JSON", "off")] {
            let output = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "tests::a_panic_writes_nothing_raw",
                    "--nocapture",
                ])
                .env(PANIC_CHILD, "1")
                .env("AWS_LAMBDA_LOG_FORMAT", format)
                .env_remove("AWS_LAMBDA_LOG_LEVEL")
                .env("RUST_LOG", level)
                .env("RUST_BACKTRACE", "0")
                .output()
                .expect("the test binary runs");
            let format = format!("{format} at {level}");
            assert!(output.status.success(), "{format}: {output:?}");
            let logs = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(!logs.contains('\u{202e}'), "{format}: raw U+202E:\n{logs}");
            assert!(
                !logs.lines().any(|line| line.starts_with(FORGED)),
                "{format}: a forged line:\n{logs}"
            );
            // The panic is in the log, escaped: the child did panic, and the hook wrote it.
            assert!(
                logs.contains("cannot send PO-1") && logs.contains("202=sutats"),
                "{format}: the panic is not in the log:\n{logs}"
            );
        }
    }

    #[test]
    fn lambdas_log_format_and_level_are_honoured() {
        assert_eq!(
            settings(&[]),
            LogSettings {
                json: true,
                filter: "info".into()
            }
        );
        assert!(!settings(&[("AWS_LAMBDA_LOG_FORMAT", "Text")]).json);
        assert!(settings(&[("AWS_LAMBDA_LOG_FORMAT", "JSON")]).json);
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("RUST_LOG", "warn")]).filter,
            "debug",
            "the function's logging configuration wins"
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "FATAL")]).filter,
            "error"
        );
        assert_eq!(
            settings(&[("AWS_LAMBDA_LOG_LEVEL", "loud"), ("RUST_LOG", "warn")]).filter,
            "warn",
            "an unknown level falls back"
        );
        assert_eq!(
            settings(&[("RUST_LOG", "tcrelay_core=debug")]).filter,
            "tcrelay_core=debug"
        );
    }
}
