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
//! Operator API (for `tcrelay queue|quarantine|cursor`), all `async`, on [`SqliteStore`]:
//! - queue: [`list`](SqliteStore::list), [`export`](SqliteStore::export) and
//!   [`export_page`](SqliteStore::export_page) (envelopes as JSON lines, in order),
//!   [`record_exported`](SqliteStore::record_exported) (what an export handed out, the most
//!   `ack` accepts), [`ack_up_to`](SqliteStore::ack_up_to), [`ack_ids`](SqliteStore::ack_ids),
//!   [`stats`](SqliteStore::stats), and [`enqueue_returning_ids`](SqliteStore::enqueue_returning_ids);
//! - quarantine: [`quarantine_list`](SqliteStore::quarantine_list),
//!   [`quarantine_export`](SqliteStore::quarantine_export),
//!   [`quarantine_count`](SqliteStore::quarantine_count),
//!   [`quarantine_get`](SqliteStore::quarantine_get),
//!   [`quarantine_drop`](SqliteStore::quarantine_drop);
//! - [`trace`](SqliteStore::trace): dedupe records, queue messages and quarantine entries of
//!   one order or shipment;
//! - cursors: `read` and `set` of the [`CursorStore`](tcrelay_core::ports::CursorStore) trait,
//!   and [`cursors`](SqliteStore::cursors) for all streams with their leases;
//! - relaying processes: [`start_relaying`](SqliteStore::start_relaying) (the relay lock;
//!   alone on the file, the claims a killed process left in progress are released);
//! - housekeeping: [`housekeep`](SqliteStore::housekeep) (acknowledged messages past
//!   [`SqliteOptions::acked_retention`], expired dedupe records, space given back; `serve` runs
//!   it on a schedule), [`purge_acked`](SqliteStore::purge_acked),
//!   [`purge_expired_dedupe`](SqliteStore::purge_expired_dedupe),
//!   [`file_sizes`](SqliteStore::file_sizes), [`check_integrity`](SqliteStore::check_integrity).
//!
//! Durability: WAL journal, `synchronous=FULL` by default, so every call that returned `Ok`
//! (an enqueue before the webhook's 202, a completed dedupe record, a checkpoint) survives a
//! `kill -9` of the process and a power loss. See [`Durability`].

mod batch;
mod clock;
mod cursor;
mod db;
mod dedupe;
mod error;
mod quarantine;
mod queue;
mod relay_lock;
mod retention;
mod schema;
mod trace;

pub use clock::{Clock, system_clock};
pub use cursor::CursorInfo;
pub use db::{Durability, ExistingFile, SqliteOptions, SqliteStore};
pub use error::OpenError;
pub use quarantine::QuarantineEntry;
pub use queue::{
    AckedIds, AckedUpTo, DEDUPLICATION_WINDOW, KindCounts, QueueEntry, QueueStats, QueuedEnvelope,
};
pub use relay_lock::{RelayLock, RelayStart};
pub use retention::{FileSizes, HousekeepingReport};
pub use schema::SCHEMA_VERSION;
pub use trace::{DedupeEntry, ObjectTrace};
