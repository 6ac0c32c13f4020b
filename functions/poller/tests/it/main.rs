//! The poller's integration tests: the Lambda binary under the Runtime API emulator, and the
//! poll over moto and the simulator.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod bootstrap;
mod common;
mod moto;
mod quirks;
mod sim;
mod unplaceable;
