//! The webhook router's integration tests over the in-memory fakes: routes, lenient decoding,
//! the loopback, Tradecloud's published examples and the fuzz corpus.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod common;
// `edges.rs` stays a binary of its own: its log capture misses events next to other tests.
mod envelope_schema;
mod fuzz_router_corpus;
mod lenient;
mod loopback;
mod realworld_router;
mod router;
