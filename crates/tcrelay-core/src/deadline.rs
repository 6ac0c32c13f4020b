//! The time a request has left, shared by every step of it.
//!
//! A webhook function that reaches its own timeout (29 s in the template, under API Gateway's
//! 30 s) does not answer at all: API Gateway answers for it (502 for a function error, per
//! AWS's Lambda guide), and the request's dedupe claims stay in progress until they expire, so
//! Tradecloud's retries are answered 503 until then. So each request gets a [`Deadline`] (the
//! configured budget, cut shorter by the Lambda invocation's own), and every step (reading the
//! body, the dedupe claims, the Tradecloud fetch, the queue send) runs within what is left of it,
//! minus a margin kept for undoing a claim and answering. A step that cannot finish in time
//! ends with [`OutOfTime`]: any claim is released and the function answers itself (503; 504
//! when it was the Tradecloud fetch), so Tradecloud's retry goes through at once. A queue send is the exception: it is not cut off,
//! since its outcome would be unknown; the request is answered 503 and the send goes on, then
//! settles the claims (`Relay::send` in `relay.rs`).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The longest margin kept for releasing a claim and answering.
pub const MAX_ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// When a request must be answered, and how much of that is kept for the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// The instant the answer must be out by.
    answer_by: Instant,
    /// Kept back from the steps: releasing a claim and writing the answer.
    margin: Duration,
}

/// A step could not run or finish within the request's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no time left for {step} within the request's deadline")]
pub struct OutOfTime {
    /// Which step: `the dedupe claim`, `the queue send`, ….
    pub step: &'static str,
}

impl Deadline {
    /// A deadline `budget` from now, keeping a fifth of it (at most [`MAX_ANSWER_MARGIN`])
    /// for the answer.
    pub fn after(budget: Duration) -> Self {
        Self::at(Instant::now() + budget, budget)
    }

    /// A deadline at `answer_by`; `budget` (the whole time the request has) sizes the margin.
    pub fn at(answer_by: Instant, budget: Duration) -> Self {
        Self {
            answer_by,
            margin: (budget / 5).min(MAX_ANSWER_MARGIN),
        }
    }

    /// Whichever of the two passes first.
    pub fn earliest(self, other: Deadline) -> Deadline {
        if other.answer_by - other.margin < self.answer_by - self.margin {
            other
        } else {
            self
        }
    }

    /// The time left for steps (the margin excluded); zero once spent.
    pub fn remaining(&self) -> Duration {
        (self.answer_by - self.margin).saturating_duration_since(Instant::now())
    }

    /// Runs `step` within the time left, or fails with [`OutOfTime`] when that is spent (the
    /// step is then dropped, so it stops where it was).
    pub async fn run<F: Future>(
        &self,
        step: &'static str,
        future: F,
    ) -> Result<F::Output, OutOfTime> {
        let left = self.remaining();
        if left.is_zero() {
            return Err(OutOfTime { step });
        }
        tokio::time::timeout(left, future)
            .await
            .map_err(|_| OutOfTime { step })
    }

    /// Runs a clean-up (releasing or completing a claim) until half the margin is left, so
    /// the answer still goes out in time when the store hangs; `None` when it did not finish.
    /// A claim left behind expires on its own.
    pub async fn clean_up<F: Future>(&self, future: F) -> Option<F::Output> {
        let left = (self.answer_by - self.margin / 2)
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        tokio::time::timeout(left, future).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about(actual: Duration, expected: Duration) -> bool {
        actual <= expected && expected - actual < Duration::from_millis(500)
    }

    #[tokio::test]
    async fn steps_get_what_is_left_minus_the_margin() {
        let deadline = Deadline::after(Duration::from_millis(500));
        assert!(about(deadline.remaining(), Duration::from_millis(400)));
        assert_eq!(deadline.run("quick", async { 7 }).await, Ok(7));
        let hung = deadline.run("the queue send", std::future::pending::<()>());
        assert_eq!(
            hung.await,
            Err(OutOfTime {
                step: "the queue send"
            })
        );
        assert_eq!(deadline.remaining(), Duration::ZERO);
        // Spent: the next step does not even start, but a clean-up still gets its share.
        assert_eq!(
            deadline.run("next", async { 1 }).await,
            Err(OutOfTime { step: "next" })
        );
        assert_eq!(deadline.clean_up(async { 2 }).await, Some(2));
        assert_eq!(deadline.clean_up(std::future::pending::<()>()).await, None);
    }

    #[tokio::test]
    async fn the_margin_is_a_fifth_of_the_budget_up_to_two_seconds() {
        assert!(about(
            Deadline::after(Duration::from_secs(1)).remaining(),
            Duration::from_millis(800)
        ));
        let long = Deadline::after(Duration::from_secs(25));
        assert!(about(long.remaining(), Duration::from_secs(23)));
        let short = Deadline::after(Duration::from_secs(5));
        assert_eq!(long.earliest(short), short);
        assert_eq!(short.earliest(long), short);
    }
}
