//! Helpers shared by the demo's tests: the relay's logs, and the end-to-end scenario both
//! backends run.

use std::time::Duration;

use tcrelay::metrics::Channel;
use tcrelay_core::Source;
use tcrelay_demo::scenario::{ScenarioOptions, ScenarioReport};
use tradecloud_model::Format;

/// The relay's INFO lines (the injected faults, the retries) in the output of the test that
/// fails, for every scenario test. The subscriber is process-wide and these tests share one
/// process: so each of them installs the same one (the first wins), and it writes through the
/// test harness's capture, which follows the threads a test starts, so a line lands in the
/// output of the test whose runtime logged it, not on the terminal of every run.
pub fn show_relay_logs() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
}

/// The demo's scenario, with everything on (every channel, a queue outage, a poll run killed
/// mid-way, duplicate deliveries), at a test's volume: each backend chooses `seed`, `duration`
/// and `changes`, and may turn off what its queue cannot keep. The faults come from the demo:
/// if it turned one off, e2e_sqlite's assertions that each happened would fail. What would
/// weaken a test silently instead is pinned here.
pub fn every_fault(seed: u64, duration: Duration, changes: usize) -> ScenarioOptions {
    ScenarioOptions {
        changes,
        poll_interval: Duration::from_secs(2),
        // e2e_moto's 45 s in-progress expiry relies on claims left behind freeing up within this.
        drain_timeout: Duration::from_secs(120),
        // Order per object is part of the promise: checked unless a backend cannot keep it.
        check_order: true,
        ..ScenarioOptions::demo(duration, seed)
    }
}

/// Prints the report's table and asserts what every [`every_fault`] run must show: the check
/// and the quarantine passed, at least `changes` changes, every channel put something on the queue,
/// the queue outage was answered 503, and exactly the three malformed requests are
/// quarantined. Returns the table for the caller's own assertions.
pub fn assert_every_fault_passed(report: &ScenarioReport, changes: usize) -> String {
    let table = report.table();
    println!("{table}");
    assert!(report.check.passed(), "{table}");
    assert_eq!(report.quarantine, Ok(()), "{table}");
    // The scenario really exercised what it claims, so a pass means something.
    assert!(report.changes >= changes, "{table}");
    // Counted on the queue, not from the answers: a relay whose client hung up (the
    // simulator's 2 s request timeout) still finishes, but nobody sees its answer.
    for channel in Channel::ALL {
        let on_queue = report.queue.iter().any(|m| {
            let e = &m.envelope;
            match channel {
                Channel::PostJson => e.source == Source::WebhookPost && e.format == Format::Json,
                Channel::PostTxml => e.source == Source::WebhookPost && e.format == Format::Txml,
                Channel::Get => e.source == Source::WebhookGet,
                Channel::Poll => e.source == Source::Poll,
            }
        });
        assert!(
            on_queue,
            "nothing of {} is on the queue\n{table}",
            channel.as_str()
        );
    }
    assert!(
        report.retried_answers > 0,
        "the queue outage answered no 503\n{table}"
    );
    assert_eq!(report.quarantined, 3, "{table}");
    table
}

/// Asserts that the queue stall and the slowed dedupe store of a run really happened, so its
/// pass means something about them.
pub fn assert_stalled_and_slowed(report: &ScenarioReport, table: &str) {
    assert!(
        report.stalled_sends > 0,
        "nothing reached the stalled queue\n{table}"
    );
    assert!(
        report.slowed_dedupe_calls > 0,
        "no dedupe call was slowed\n{table}"
    );
}
