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

/// The AWS SDK's WARNs that only repeat, as a `Debug` dump of raw responses, what the failed
/// call's own error then says in one line: the region asked of EC2's instance metadata where
/// there is none (a workstation, a VM elsewhere; a call without a region then fails with
/// "Missing Region"), and a credential provider's failure (the chain's error, which the call
/// returns). Quieted to ERROR in every command, `serve` included; `RUST_LOG` brings them back.
pub const QUIET_SDK: &str = "aws_config::imds=error,aws_config::meta::credentials::chain=error";

/// Logs on stderr at `default` level (a level, or `EnvFilter` directives); `RUST_LOG` overrides it. Colours only when stderr is a
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
