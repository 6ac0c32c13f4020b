//! The relay core: the envelope put on the queue, the dedupe rules, the event filter, the ports
//! (traits the adapters implement), the webhook router and the poll loop.
//!
//! Nothing in here knows AWS or SQLite: adapters in other crates implement [`ports`].

pub mod envelope;
pub mod ports;

pub use envelope::{Envelope, Source};
