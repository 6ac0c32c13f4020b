//! `tcrelay serve` polling the simulator, killed with SIGKILL in the middle of a poll run (its
//! cursor lease held and fresh, a page asked for), then restarted on the same database: the first change made
//! while it was down is on the queue within 10 s of the restart, once. With a lease that only a
//! heartbeat keeps alive, the dead run's lease runs out within seconds instead of blocking the
//! stream for minutes, and the dedupe claims the dead process left in progress (a webhook
//! request's here) are released by the restarted process, alone on the database, instead of
//! holding their states until they expire.

use crate::common;

use std::time::{Duration, Instant};

use tcrelay_core::dedupe::state_key;
use tcrelay_core::ports::DedupeStore;
use tcrelay_sqlite::SqliteStore;
use tradecloud_model::ObjectClass;
use tradecloud_sim::{Endpoint, Fault, FaultRule, SimConfig, Simulator, WorldConfig};

const CREDENTIALS: &str = "tc:crash-poll-pw";

/// The dedupe keys on the queue, in queue order.
async fn queued_keys(db: &std::path::Path) -> Vec<String> {
    let store = SqliteStore::open(db).unwrap();
    store
        .export(true)
        .await
        .unwrap()
        .iter()
        .map(|q| q.envelope().unwrap().dedupe_key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_change_made_during_a_crash_is_on_the_queue_within_ten_seconds_of_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let db = path.to_str().unwrap().to_owned();
    let sim = Simulator::start(SimConfig {
        world: WorldConfig {
            // A backlog of a few pages behind the cursor at the kill: the test times the
            // resumption, not how fast a debug build relays thousands of orders.
            initial_orders: 300,
            initial_shipments: 0,
            max_lines: 3,
            ..WorldConfig::default()
        },
        ..SimConfig::seeded(41)
    })
    .await
    .unwrap();
    // Slow pages, so a run is still paging when it is killed.
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::OrderPoll],
        fault: Fault::Delay { ms: 300 },
        rate: 1.0,
        count: None,
    });
    let api = sim.base_url();
    let env = [
        ("TCRELAY_WEBHOOK_BASIC", CREDENTIALS),
        ("TRADECLOUD_API_URL", api.as_str()),
        ("TRADECLOUD_USERNAME", sim.username()),
        ("TRADECLOUD_PASSWORD", sim.password()),
        ("TCRELAY_POLL_STREAMS", "orders"),
        ("TCRELAY_POLL_START", "2025-01-01T00:00:00.000Z"),
        ("TCRELAY_POLL_PAGE_LIMIT", "25"),
        // The lease is the default one: what a user gets.
    ];
    let serve = common::serve_polling(&db, &env, "500ms").expect("tcrelay serve starts");

    // Kill it once the run has checkpointed a few pages and still holds its lease.
    let store = SqliteStore::open(&path).unwrap();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the poll run never got going"
        );
        let cursors = store.cursors().await.unwrap();
        if let Some(c) = cursors.iter().find(|c| c.stream == "orders")
            && c.version >= 3
            && c.lease_owner.is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Killed while it waits for a page: the next page is held back for long (in place of the
    // 300 ms: the first rule that fires wins), and the kill comes once any page in flight has
    // been relayed, so the lease is surely live at the kill. Where a kill between a page's
    // claims and their completion leaves the stream is made below, not left to chance.
    sim.clear_faults();
    sim.add_fault(FaultRule {
        endpoints: vec![Endpoint::OrderPoll],
        fault: Fault::Delay { ms: 5_000 },
        rate: 1.0,
        count: None,
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    serve.kill();
    let at_kill = store.cursors().await.unwrap();
    let lease = at_kill.iter().find(|c| c.stream == "orders").unwrap();
    assert!(
        lease.lease_owner.is_some()
            && lease
                .lease_expires_at
                .is_some_and(|until| until > chrono::Utc::now()),
        "the killed run must leave a live lease behind, or this test proves nothing: {lease:?}"
    );
    let queued_at_kill = queued_keys(&path).await.len();
    assert!(
        queued_at_kill > 0 && queued_at_kill < 300,
        "{queued_at_kill} on the queue at the kill"
    );

    // While it is down, orders change; the first of these changes is the one we time.
    // One action at a time until one changes an order, and nothing after it, so that state is
    // the order's current one (a later change to it would replace it in the poll answers).
    let first = loop {
        let changes = sim.advance(1).unwrap();
        if let Some(c) = changes
            .iter()
            .find(|c| c.kind == tradecloud_sim::EventKind::Order)
        {
            break c.clone();
        }
    };
    let key = state_key(ObjectClass::Order, &first.id, &first.last_updated_at);
    // What a process killed while it relayed leaves behind: dedupe claims in progress, of a
    // webhook request cut off (here, of the very state we time) or of a poll run killed
    // between a page's claims and their completion. The kill above lands there by chance only,
    // so the claim is made as such a request makes it. A webhook request's claim is never taken
    // over early (no lease fences a request that may still be running), so the restarted poll
    // stopped at it for the in-progress expiry (120 s); the restarted `serve`, alone on the
    // database (the relay lock), releases every claim in progress at its start.
    let left = store.claim(&key, true).await.unwrap();
    assert!(left.token().is_some(), "{left:?}");
    sim.clear_faults();

    let restarted = Instant::now();
    let serve = common::serve_polling(&db, &env, "500ms").expect("tcrelay serve restarts");
    let delivered_after = loop {
        if queued_keys(&path).await.contains(&key) {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(30),
            "{key} not on the queue 30 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    serve.kill();
    println!(
        "the first change made during the crash was on the queue {delivered_after:?} after the restart"
    );
    assert!(
        delivered_after < Duration::from_secs(10),
        "the first change made during the crash reached the queue {delivered_after:?} after the restart"
    );
    let keys = queued_keys(&path).await;
    assert_eq!(keys.iter().filter(|k| **k == key).count(), 1, "{key} once");
    sim.shutdown().await;
}
