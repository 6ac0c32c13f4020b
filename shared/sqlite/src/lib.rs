//! Embedded SQLite adapters of every relay port, for the local runner (`tcrelay serve`) and its
//! operator commands: the outbound queue ([`EventSink`](tcrelay_core::ports::EventSink)), the
//! dedupe records ([`DedupeStore`](tcrelay_core::ports::DedupeStore)), the quarantine
//! ([`Quarantine`](tcrelay_core::ports::Quarantine)) and the poll cursors
//! ([`CursorStore`](tcrelay_core::ports::CursorStore)), all in one database file.
//!
//! One [`SqliteStore`] implements all four traits; clone it (cheaply) into each place that needs
//! a port. The semantics match the DynamoDB adapters in `tcrelay-aws` exactly (expiry checked
//! explicitly, in-progress claims that expire, leases with owner and expiry, checkpoints
//! conditional on version and owner), so the core behaves the same on either backend.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tcrelay_sqlite::SqliteStore;
//! let store = SqliteStore::open("tcrelay.db")?;
//! let stats = store.stats().await?;
//! println!("{} pending, {} acknowledged", stats.pending, stats.acked);
//! # Ok(()) }
//! ```
//!
//! Durability: WAL journal, `synchronous=FULL` by default, so every call that returned `Ok`
//! (an enqueue before the webhook's 202, a completed dedupe record, a checkpoint) survives a
//! `kill -9` of the process and a power loss. See [`Durability`].

mod clock;
mod cursor;
mod db;
mod dedupe;
mod error;
mod quarantine;
mod queue;
mod schema;

pub use clock::{Clock, system_clock};
pub use cursor::CursorInfo;
pub use db::{Durability, SqliteOptions, SqliteStore};
pub use error::OpenError;
pub use quarantine::QuarantineEntry;
pub use queue::{KindCounts, QueueEntry, QueueStats, QueuedEnvelope};
pub use schema::SCHEMA_VERSION;
