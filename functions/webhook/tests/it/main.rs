//! The webhook function's integration tests: the Lambda binary under the Runtime API emulator,
//! and the sample events.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod bootstrap;
mod events;
