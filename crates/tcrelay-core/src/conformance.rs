//! Conformance suites (feature `testing`): a port's contract written once, as one async function
//! per rule, and run against every implementation of the port from that adapter's own tests.

pub mod cursor_store;
pub mod dedupe_store;
pub mod event_sink;
pub mod quarantine;

use std::future::Future;
use std::task::Poll;

/// Polls every future until all are done; their outputs in order (so the rules need no
/// runtime of their own).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(out) => *output = Some(out),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
