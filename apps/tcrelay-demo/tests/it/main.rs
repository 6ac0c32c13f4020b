//! The integration tests of `tcrelay-demo`, in one test binary: each binary links the whole AWS
//! SDK, and the links dominated the test build. The one process-wide state, the log subscriber
//! of the scenario tests, is the same for all of them (see `common::show_relay_logs`); the
//! demo itself runs as a child process.

mod common;

mod demo;
mod e2e_moto;
mod e2e_sqlite;
