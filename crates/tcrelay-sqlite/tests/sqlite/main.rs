//! Contract tests of the SQLite adapters, on real database files in temporary directories.
//!
//! One test binary (modules below) so the crate links once.

mod common;
mod concurrency;
mod cursor;
mod dedupe;
mod durability;
mod failures;
mod quarantine;
mod queue;
mod relay_lock;
mod retention;
