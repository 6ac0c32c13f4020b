//! The integration tests of `tcrelay`, in one test binary: each binary links the whole AWS SDK,
//! and the links dominated the test build. None of these tests changes process-wide state (no
//! environment variable set, no global logger or allocator, no measure of the process itself):
//! each runs `tcrelay` as a child process with its own environment, or starts the relay
//! in-process on its own database and port.

mod common;

mod admin;
mod cli;
mod consumers;
mod crash_poll;
mod kill;
mod operators;
mod operators_aws;
mod serve_limits;
mod serve_secrets;
mod shutdown;
mod webhook_and_poll;
