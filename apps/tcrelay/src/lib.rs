//! The local runner: hosts the webhook and the poll loop in one process on embedded SQLite (or on
//! DynamoDB/SQS/S3 with `--backend aws`), the operator commands, and the demo against the
//! simulator. `main.rs` only parses the command line and wires these modules.

pub mod backend;
pub mod check;
pub mod error;
pub mod faults;
pub mod metrics;
pub mod ops;
pub mod replay;
pub mod scenario;
pub mod server;
pub mod settings;

pub use backend::Ports;
pub use server::{RelayParts, RunningServer, ServeError, ServeOptions, ServerLimits, start};
pub use settings::{Backend, Settings};
