//! The time source of the DynamoDB stores: the core's (see [`tcrelay_core::clock`]).

pub use tcrelay_core::clock::{Clock, system_clock};
