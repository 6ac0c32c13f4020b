//! The simulator's integration tests: its API, bodies, control endpoints, determinism and
//! webhooks.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod api;
mod bodies;
mod common;
mod control;
mod determinism;
mod webhooks;
