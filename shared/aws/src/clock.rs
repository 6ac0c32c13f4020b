//! The time source of the DynamoDB stores. Expiry is compared with this clock, never left to
//! DynamoDB's TTL sweeper; tests inject a clock they can move to check expiry without sleeping.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A shared source of "now".
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock (UTC).
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}
