//! The relay core: the envelope put on the queue, the dedupe rules, the event filter, the ports
//! (traits the adapters implement), the webhook router and the poll loop.
//!
//! Nothing in here knows AWS or SQLite: adapters in other crates implement [`ports`].

pub mod auth;
pub mod clock;
pub mod config;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod deadline;
pub mod dedupe;
pub mod env;
pub mod envelope;
pub mod filter;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
pub mod gate;
pub mod logsafe;
pub mod ports;
pub mod problem;
pub mod relay;
pub mod take_overs;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhook;

pub use auth::{GatewayJwt, WebhookCredentials};
pub use config::Config;
pub use env::ConfigError;
pub use envelope::{Envelope, Source};
pub use filter::EventFilter;
pub use relay::{InboundEvent, Outcome, Relay, RelayError};
pub use take_overs::{CountingTakeOvers, TakeOverCount};
pub use webhook::{
    AnswerOutcome, Answered, LenientFields, RequestId, WebhookApp, WebhookError, WebhookSettings,
    warn_lenient, webhook_router,
};
