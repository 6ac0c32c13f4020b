//! The poller function's testable parts: Tradecloud's HTTP client as a
//! [`tcrelay_poll::PollApi`], the Lambda event handling (scheduled or manual), the settings
//! only the poller reads, and its metrics. `main.rs` only wires.

pub mod client_api;
pub mod event;
pub mod metrics;
pub mod settings;

pub use client_api::ClientPollApi;
pub use event::{EventError, HandlerError, Invocation, handle, parse_event};
pub use metrics::{cursor_age_seconds, stream_emf};
pub use settings::{PollerAws, SettingsError, StartupError, StartupSettings};
