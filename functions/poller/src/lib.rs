//! The poller function's testable parts: the Lambda event handling (scheduled or manual), the
//! settings it reads at start-up, and its metrics. `main.rs` only wires; Tradecloud's client as
//! the poll loop's port is `tcrelay_tradecloud::ClientPollApi`.

pub mod event;
pub mod metrics;
pub mod settings;

pub use event::{EventError, HandlerError, Invocation, handle, lease_owner, parse_event};
pub use metrics::{cursor_age_seconds, stream_emf};
pub use settings::StartupSettings;
