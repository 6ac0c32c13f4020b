//! The local runner: hosts the webhook and the poll loop in one process on embedded SQLite (or on
//! DynamoDB/SQS/S3 with `--backend aws`), and the operator commands. `main.rs` only parses the
//! command line and wires these modules. The demo against the simulator lives apart from the
//! product, in `tcrelay-demo`, and starts the relay through this library's [`start`].

pub mod backend;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod replay;
pub mod server;
pub mod settings;

pub use backend::Ports;
pub use server::{RelayParts, RunningServer, ServeError, ServeOptions, ServerLimits, start};
pub use settings::{Backend, Settings};
