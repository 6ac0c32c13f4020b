//! End to end on SQLite: thousands of changes through every channel at once, with faults on both
//! sides, checked against the simulator's ground truth.

use crate::common;

use std::time::Duration;

use tcrelay::Ports;
use tcrelay::metrics::Channel;
use tcrelay_demo::scenario::{self, ScenarioOptions};
use tcrelay_sqlite::{Durability, SqliteOptions, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_changes_through_every_channel_arrive_exactly_once() {
    common::show_relay_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        dir.path().join("e2e.db"),
        SqliteOptions {
            in_progress_expiry: Duration::from_secs(5),
            durability: Durability::Normal,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    // Thousands of changes: SQLite keeps up, and a standard SQS queue on moto would not. The
    // queue keeps order, so the order rule is checked here (every_fault's default).
    // On top: the queue stalls for twice a short request budget (longer than the claims'
    // 5 s in-progress expiry) and the dedupe store slows down, so requests run out of time
    // with their sends and completions going on after the answer.
    let options = ScenarioOptions {
        queue_stall: true,
        request_budget: Duration::from_secs(3),
        dedupe_slow: true,
        ..common::every_fault(42, Duration::from_secs(20), 2_000)
    };
    let report = scenario::run(&options, Ports::sqlite(&store), &store)
        .await
        .expect("scenario runs");
    let table = common::assert_every_fault_passed(&report, 2_000);

    // Beyond the shared checks: the duplicates, outage, API faults and killed poll run really
    // happened, and the report matches what the SQLite queue holds.
    let post = report
        .channels
        .iter()
        .find(|(c, _)| *c == Channel::PostJson)
        .unwrap()
        .1;
    assert!(post.duplicates > 0, "no duplicate was suppressed\n{table}");
    assert!(
        post.unavailable > 0,
        "the queue outage answered no 503\n{table}"
    );
    assert!(report.duplicate_deliveries > 0, "{table}");
    assert!(report.api_faults > 0, "no API fault was injected\n{table}");
    common::assert_stalled_and_slowed(&report, &table);
    assert!(
        report.poll_run_killed,
        "the poll run was not killed mid-way\n{table}"
    );
    // Envelopes are what the sqlite queue holds, in id order.
    assert_eq!(
        report.enqueued,
        store.stats().await.unwrap().pending as usize
    );
    assert!(
        report
            .queue
            .windows(2)
            .all(|w| w[0].position < w[1].position)
    );
}

/// The check itself must catch what it is there to catch: a lost envelope, a doubled one, one
/// that never happened, and one out of order. Uses a short real run as the baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_check_catches_lost_doubled_invented_and_reordered_envelopes() {
    use tcrelay_demo::check::{CheckOptions, check};

    common::show_relay_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_with(
        dir.path().join("small.db"),
        SqliteOptions {
            durability: Durability::Normal,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let options = ScenarioOptions {
        seed: 7,
        duration: Duration::from_secs(3),
        changes: 150,
        poll_interval: Duration::from_secs(1),
        queue_outage: false,
        queue_stall: false,
        // Below the 5 s in-progress expiry the scenario's settings carry.
        request_budget: Duration::from_secs(4),
        dedupe_slow: false,
        kill_a_poll_run: false,
        duplicate_rate: 0.0,
        progress: false,
        drain_timeout: Duration::from_secs(60),
        check_order: true,
    };
    let report = scenario::run(&options, Ports::sqlite(&store), &store)
        .await
        .unwrap();
    assert!(report.passed(), "{}", report.table());
    let truth = &report.truth;
    let queue = report.queue.clone();
    let opts = CheckOptions {
        filter: tcrelay_core::EventFilter::new(
            Vec::new(),
            tcrelay_core::EventFilter::parse_list("OrderResentByBuyer"),
        ),
        check_order: true,
    };
    assert!(check(truth, &queue, &opts).passed());

    // Lost: drop a webhook POST envelope.
    let post = queue
        .iter()
        .position(|m| m.envelope.source == tcrelay_core::Source::WebhookPost)
        .expect("a POST envelope");
    let mut lost = queue.clone();
    lost.remove(post);
    let r = check(truth, &lost, &opts);
    assert!(
        !r.passed() && r.failures.iter().any(|f| f.contains("not on the queue")),
        "{r}"
    );

    // Doubled.
    let mut doubled = queue.clone();
    let mut copy = doubled[post].clone();
    copy.position = i64::MAX;
    doubled.push(copy);
    let r = check(truth, &doubled, &opts);
    assert!(r.failures.iter().any(|f| f.contains("twice")), "{r}");

    // Invented: a poll state the object never had.
    let poll = queue
        .iter()
        .position(|m| m.envelope.source == tcrelay_core::Source::Poll)
        .expect("a poll envelope");
    let mut invented = queue.clone();
    invented[poll].envelope.last_updated_at = Some("2001-01-01T00:00:00.000Z".into());
    let r = check(truth, &invented, &opts);
    assert!(r.failures.iter().any(|f| f.contains("never had")), "{r}");

    // Reordered: swap the positions of two envelopes of one object and channel.
    let mut reordered = queue.clone();
    let pair = (0..reordered.len()).find_map(|i| {
        (i + 1..reordered.len()).find_map(|j| {
            let (a, b) = (&reordered[i].envelope, &reordered[j].envelope);
            (a.id == b.id
                && a.source == b.source
                && a.kind.object_class() == b.kind.object_class()
                && a.last_updated_at != b.last_updated_at)
                .then_some((i, j))
        })
    });
    let (i, j) = pair.expect("an object with two states in one channel");
    let (pi, pj) = (reordered[i].position, reordered[j].position);
    reordered[i].position = pj;
    reordered[j].position = pi;
    let r = check(truth, &reordered, &opts);
    assert!(r.failures.iter().any(|f| f.contains("comes after")), "{r}");
}
