//! The time source of the stores. Expiries (dedupe records, cursor leases) are compared with
//! this clock by the adapters themselves, never left to a TTL sweeper or a background job; tests
//! inject a clock they can move to check expiry without sleeping.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// A shared source of "now".
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock (UTC).
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// A clock tests move by hand (feature `testing`): time stands still but for
/// [`ManualClock::advance`].
#[cfg(any(test, feature = "testing"))]
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<std::sync::Mutex<DateTime<Utc>>>);

#[cfg(any(test, feature = "testing"))]
impl ManualClock {
    /// A clock standing at `start`.
    pub fn at(start: DateTime<Utc>) -> Self {
        Self(Arc::new(std::sync::Mutex::new(start)))
    }

    /// A clock standing at the real now.
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Where the clock stands.
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: std::time::Duration) {
        let by = chrono::TimeDelta::from_std(by).expect("a test step fits in chrono's range");
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }

    /// This clock as a [`Clock`] for a store.
    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Arc::new(move || this.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced_and_every_handle_sees_it() {
        let clock = ManualClock::at(DateTime::UNIX_EPOCH);
        let handle = clock.clock();
        assert_eq!(handle(), DateTime::UNIX_EPOCH);
        clock.advance(std::time::Duration::from_millis(1500));
        assert_eq!(handle().timestamp_millis(), 1500);
        assert_eq!(clock.now(), handle());
    }
}
