//! The log output of the runner's binaries (`tcrelay` and `tcrelay-demo`): one place, so both
//! write the same formats.

use clap::ValueEnum;

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line, for a log shipper.
    Json,
}

/// Logs on stderr at `default` level; `RUST_LOG` overrides it. Colours only when stderr is a
/// terminal: escape sequences in a file or a journal are noise.
pub fn init_tracing(default: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
