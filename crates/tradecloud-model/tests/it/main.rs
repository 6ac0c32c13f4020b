//! The decoders' integration tests: bad input, the fixtures, the fuzz regressions, the one-pass
//! JSON reader, Tradecloud's published examples and round trips.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod bad_input;
mod fixtures;
mod fuzz_regressions;
mod growth;
mod json_one_pass;
mod liberal;
// `memory.rs` stays a binary of its own: it re-runs its binary to measure the process's peak RSS.
mod realworld;
mod realworld_cases;
mod roundtrip;
