//! A request-rate limiter shared by a client and its clones.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces requests at least `1/rate` seconds apart. Tradecloud asks for sequential calls, so no
/// burst is allowed: the next request may start only one interval after the previous one
/// started. What it spaces is the starts: Tradecloud sees arrivals, which a slow network or a
/// loaded host can delay by differing amounts (the first call also opens the connection), so
/// two may arrive a little closer; ten intervals still span a second, and a 429 is retried.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter for `per_second` requests per second (`0` is treated as `1`).
    pub fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(None),
        }
    }

    /// The minimum gap between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits until a request may start, and books the slot. Waiters queue on the lock in order.
    pub async fn acquire(&self) {
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        *next = Some(Instant::now() + self.interval);
    }
}
