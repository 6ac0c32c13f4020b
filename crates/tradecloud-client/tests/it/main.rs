//! The Tradecloud client's integration tests: the protocol against a scripted fake, the client
//! against the simulator, and its HTTPS against the fake over TLS.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod common;
// `logs.rs` stays a binary of its own: its log capture misses events next to other tests.
mod protocol;
mod sim;
mod tls;
