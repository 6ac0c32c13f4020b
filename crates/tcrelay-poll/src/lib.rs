//! The poll loop: the path for users without a public endpoint and the safety net behind the
//! webhook. A run takes each stream's cursor lease, pages through everything Tradecloud changed
//! after the cursor, relays each object state once (state key shared with the webhook), and
//! checkpoints the cursor after every page whose objects are all enqueued. See [`run`] for
//! how paging avoids skipping updates.
//!
//! The crate knows neither AWS nor HTTP: Tradecloud comes in through [`PollApi`], storage and
//! the queue through `tcrelay_core`'s ports.

pub mod api;
pub mod config;
mod lease;
mod missed;
mod object;
mod progress;
pub mod run;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tie;
mod walk;

pub use api::{EndpointMode, PageRequest, PollApi, PollStream, PolledPage};
pub use config::{EchoFilter, EchoSide, PollConfig};
pub use progress::{kept_page_limit, kept_unsorted, progress_kind};
pub use run::{
    Deadline, DeadlineAt, Deviations, NoDeadline, PlannedEnvelope, PollError, PollPorts, RunReport,
    RunRequest, StopReason, StreamFailure, StreamSummary, run, run_stream,
};
